//! AArch64 AAPCS64 reverse trampolines ("callbacks"): native code with the
//! C ABI of a signature that writes its arguments to packed slots on its
//! stack and calls `handler(data, slots, ret)`
//! ([`CallbackHandler`](crate::CallbackHandler)), then returns what the
//! handler wrote in the native return registers. The layout is ISA-neutral
//! and documented in `crate::callback`; this file is its instructions. Like
//! the trampolines, the code is position-independent: it builds the
//! handler's address in x16 and calls it with `blr`.
//!
//! Registers:
//!
//! | register    | on entry                           | in the callback |
//! |-------------|------------------------------------|-----------------|
//! | x0–x7       | GP arguments                       | read once each into the slots; then x0 = `data`, x1 = the slots, x2 = the return buffer; x0, x1 the return |
//! | v0–v7       | FP arguments                       | read once each; v0–v3 the return |
//! | x8          | a memory return's buffer           | passed on as x2, the handler's `ret` |
//! | x16 (ip0)   | —                                  | scratch: a value on its way to a slot, an address; then the handler's address |
//! | x29, x30    | the caller's frame pointer, the return address | the frame record: saved, restored |
//!
//! Nothing else is written: x9–x15, x17, x18, x19–x28 and v8–v31 keep
//! their values (the callee-saved ones without being saved).
//!
//! Frame (`F` = [`Frame::size`], a multiple of 16; `S` = [`Frame::slots`]):
//!
//! ```text
//!                  | caller's stack args |  x29+16+off   the first at the caller's sp
//!   caller's sp -> +---------------------+
//!                  | saved x30 (lr)      |  x29+8
//!                  | saved x29 (fp)      |  x29+0  <- x29
//!                  +---------------------+
//!                  | padding to 16       |
//!                  | slot n-1            |  sp+S+8(n-1)
//!                  | …                   |
//!                  | slot 0              |  sp+S         <- x1 for the handler
//!                  | struct copies       |  sp+16 …      structs that came in registers
//!                  | return buffer       |  sp+0         <- x2 for the handler (32 bytes)
//!           sp ->  +---------------------+  sp = x29 - F, 16-byte aligned
//! ```
//!
//! Returns: a scalar from the return buffer into x0 (narrow integers
//! extended again from their width to 32 bits, as on x86_64) or v0; a
//! struct in registers piece by piece into x0, x1 (each read whole: the
//! buffer is 32 bytes) or v0–v3 (HFA members at their width); a struct
//! returned through memory was written by the handler to the caller's
//! buffer, the x8 it passed, and nothing comes back in registers (AAPCS64
//! §6.9 asks nothing of x8 or x0 on return).
//!
//! Immediates: the return buffer and the copies lie below sp + 160
//! (`crate::callback::RET_BYTES` + `MAX_COPIES`), within `add`'s 12-bit
//! immediate; slot `i` at sp + 160 + 8 `i` at most, within the reach of `str x`'s scaled
//! 12-bit immediate (32,760 bytes) for every `i` below [`MAX_ARGS`]. A
//! stack argument lies below x29 + 16 + 4,080 (`Limits::EMITTER_MAX_STACK`
//! bounds a plan's stack arguments), within a byte load's 12-bit offset
//! (4,095 bytes) and `add`'s. The frame can pass `sub`'s 12-bit immediate
//! (4,240 bytes for 512 arguments): it is reserved in steps of at most
//! 4,080 bytes.

use dynasmrt::{dynasm, DynasmApi};

use super::{call, load_address, pop_record_and_return, push_record, Assembler, CALLEE, MAX_ARGS};
use crate::callback::{check, Frame, Incoming, Piece};
use crate::{Abi, CallbackPlacement, Emitted, Isa, Limits, Loc, Plan, ReturnPass, Type};

/// x16 (ip0): a value on its way to a slot, or an address.
const SCRATCH: u8 = CALLEE;

/// Where the caller's first stack argument is: the caller's sp, just
/// above the frame record.
const INCOMING: u32 = super::RECORD;

/// The return buffer's offset from sp (`crate::callback::RET_BYTES` bytes).
const RET: u32 = 0;

/// Emits the reverse trampoline of `plan` (an AArch64 AAPCS64 packed
/// plan): see [`crate::emit_callback`]. The code does not depend on
/// `at.base`: the handler's and the data's addresses are built in
/// registers.
///
/// # Panics
///
/// As [`crate::emit_callback`], for a plan of another entry kind or of a
/// variadic signature; and if `plan` has more than [`MAX_ARGS`]
/// arguments.
pub fn emit_callback(plan: &Plan, at: &CallbackPlacement) -> Emitted {
    check(plan);
    assert!(
        plan.arg_types.len() <= MAX_ARGS,
        "the AArch64 emitter handles at most {MAX_ARGS} arguments, not {}",
        plan.arg_types.len()
    );
    debug_assert_eq!(plan.abi, Abi::Aapcs64, "a plan for another ABI");
    let frame = Frame::of(plan);
    let mut ops = Assembler::new(Isa::Aarch64);

    // Frame record, then the frame below it; sp stays 16-byte aligned.
    push_record(&mut ops, 16);
    reserve(&mut ops, frame.size);

    // Each argument to its slot, read where the caller put it. Nothing
    // here writes x0–x8 or v0–v7, so every one is read intact.
    for (i, arg) in frame.args.iter().enumerate() {
        let slot = frame.slot(i);
        match *arg {
            Incoming::Scalar { ty, at } => store_slot(&mut ops, ty, at, slot),
            Incoming::Copy { copy, ref pieces } => {
                for &piece in pieces {
                    store_piece(&mut ops, piece, copy);
                }
                // The slot holds the copy's address.
                asm!(ops
                    ; add XSP(SCRATCH), sp, #copy
                    ; str X(SCRATCH), [sp, #slot]
                );
            }
            Incoming::Stack { at } => {
                // The slot holds the address of the struct in the caller's
                // stack arguments.
                let at = INCOMING + at;
                asm!(ops
                    ; add XSP(SCRATCH), XSP(super::FRAME), #at
                    ; str X(SCRATCH), [sp, #slot]
                );
            }
            // The caller's copy: its address is a pointer argument.
            Incoming::Reference { at } => store_slot(&mut ops, Type::Pointer, at, slot),
        }
    }

    // handler(data, slots, ret): x0 = data, x1 = slot 0's address, x2 =
    // the return buffer at sp + RET, or the caller's, still in x8.
    load_address(&mut ops, 0, at.data);
    let slots = frame.slots;
    asm!(ops
        ; add x1, sp, #slots
    );
    if plan.ret_pass == ReturnPass::Memory {
        asm!(ops ; mov x2, x8);
    } else {
        asm!(ops ; add x2, sp, #RET);
    }
    call(&mut ops, at.handler);

    load_return(&mut ops, plan);

    // Back to the frame record, then the caller's x29 and x30.
    asm!(ops ; mov sp, x29);
    pop_record_and_return(&mut ops, 16);
    let (code, unwind) = ops
        .finish()
        .expect("a callback has no labels: its one branch is to the handler");
    Emitted { code, unwind }
}

/// Lowers sp by `bytes` (a multiple of 16) in steps `sub sp`'s 12-bit
/// immediate encodes, each a multiple of 16, so sp stays aligned.
fn reserve(ops: &mut Assembler, bytes: u32) {
    const STEP: u32 = Limits::EMITTER_MAX_STACK;
    let mut left = bytes;
    while left > 0 {
        let step = left.min(STEP);
        asm!(ops ; sub sp, sp, #step);
        left -= step;
    }
}

/// Writes the `ty` the caller passed at `from` to the slot at [sp + slot]
/// in the packed encoding: integers sign- or zero-extended to 64 bits from
/// their declared width (only that width is read), `f32` bits with zeros
/// above, `f64` bits, addresses as they are. Goes through x16, unless the
/// value can be stored straight from its register.
fn store_slot(ops: &mut Assembler, ty: Type, from: Loc, slot: u32) {
    match from {
        Loc::Gp(n) => match ty {
            Type::I8 => asm!(ops ; sxtb X(SCRATCH), W(n)),
            // Writing a w register clears the upper 32 bits.
            Type::U8 | Type::Bool => asm!(ops ; uxtb W(SCRATCH), W(n)),
            Type::I16 => asm!(ops ; sxth X(SCRATCH), W(n)),
            Type::U16 => asm!(ops ; uxth W(SCRATCH), W(n)),
            Type::I32 => asm!(ops ; sxtw X(SCRATCH), W(n)),
            Type::U32 => asm!(ops ; mov W(SCRATCH), W(n)),
            // 64-bit integers, pointers, functions and buffers (a pointer
            // the caller passed): as they are.
            _ => {
                asm!(ops ; str X(n), [sp, #slot]);
                return;
            }
        },
        Loc::Fp(n) => match ty {
            // The f32 bits into w16, which clears the upper half.
            Type::F32 => asm!(ops ; fmov W(SCRATCH), S(n)),
            _ => {
                asm!(ops ; str D(n), [sp, #slot]);
                return;
            }
        },
        // A stack argument, 8 bytes above x29 + 16 per slot. A float moves
        // as an integer of its width.
        Loc::Stack(off) => {
            let at = INCOMING + off;
            match ty {
                Type::I8 => asm!(ops ; ldrsb X(SCRATCH), [x29, #at]),
                Type::U8 | Type::Bool => asm!(ops ; ldrb W(SCRATCH), [x29, #at]),
                Type::I16 => asm!(ops ; ldrsh X(SCRATCH), [x29, #at]),
                Type::U16 => asm!(ops ; ldrh W(SCRATCH), [x29, #at]),
                Type::I32 => asm!(ops ; ldrsw X(SCRATCH), [x29, #at]),
                Type::U32 | Type::F32 => asm!(ops ; ldr W(SCRATCH), [x29, #at]),
                _ => asm!(ops ; ldr X(SCRATCH), [x29, #at]),
            }
        }
    }
    asm!(ops ; str X(SCRATCH), [sp, #slot]);
}

/// Stores one register piece of a struct to its copy at [sp + copy]: a
/// doubleword from an x register whole (the copy is its struct's size
/// rounded up to 8, so the bytes past the struct stay inside it), an HFA
/// member from a v register at its width. Offsets are multiples of the
/// store's size, as the scaled immediates need.
fn store_piece(ops: &mut Assembler, piece: Piece, copy: u32) {
    let at = copy + piece.offset;
    match (piece.ty, piece.at) {
        (Type::F32, Loc::Fp(n)) => asm!(ops ; str S(n), [sp, #at]),
        (Type::F64, Loc::Fp(n)) => asm!(ops ; str D(n), [sp, #at]),
        (_, Loc::Gp(n)) => asm!(ops ; str X(n), [sp, #at]),
        (_, Loc::Stack(_)) => {
            unreachable!("a struct out of registers is passed on the stack whole, never split")
        }
        (ty, Loc::Fp(_)) => unreachable!("an HFA member is an f32 or an f64, not {ty}"),
    }
}

/// Loads the handler's return value from the return buffer at [sp + RET]
/// into the return registers, as `plan.ret_pass` says.
fn load_return(ops: &mut Assembler, plan: &Plan) {
    match &plan.ret_pass {
        ReturnPass::Value => match plan.ret {
            Type::Void => {}
            Type::F32 => asm!(ops ; ldr s0, [sp, #RET]),
            Type::F64 => asm!(ops ; ldr d0, [sp, #RET]),
            // Narrow integers from their declared width, extended to 32
            // bits (the handler extended them already).
            Type::I8 => asm!(ops ; ldrsb w0, [sp, #RET]),
            Type::U8 | Type::Bool => asm!(ops ; ldrb w0, [sp, #RET]),
            Type::I16 => asm!(ops ; ldrsh w0, [sp, #RET]),
            Type::U16 => asm!(ops ; ldrh w0, [sp, #RET]),
            // 32- and 64-bit integers and addresses: the slot's 64 bits.
            _ => asm!(ops ; ldr x0, [sp, #RET]),
        },
        ReturnPass::Pieces(pieces) => {
            for piece in pieces {
                // Below RET_BYTES: inside the return buffer.
                let (at, reg) = (RET + piece.offset, piece.reg);
                match piece.ty {
                    Type::F32 => asm!(ops ; ldr S(reg), [sp, #at]),
                    Type::F64 => asm!(ops ; ldr D(reg), [sp, #at]),
                    // A doubleword whole: the bits past the struct are the
                    // buffer's, and the caller ignores them.
                    _ => asm!(ops ; ldr X(reg), [sp, #at]),
                }
            }
        }
        // The handler wrote the struct to the caller's buffer at x8.
        ReturnPass::Memory => {}
    }
}

#[cfg(all(test, feature = "disasm"))]
mod tests {
    use super::*;
    use crate::disasm::instructions;
    use crate::{classify, emit_callback_bound, Entry, Passing, Signature, Source};

    const NEAR: u64 = 0x20_0000;
    const FAR: u64 = 0x7f12_3456_789a;
    const DATA: u64 = 0x5566_7788_9900;

    /// Every scalar type in registers and on the stack, every struct
    /// passing (a by-reference struct's pointer in a register and on the
    /// stack) and every return pass.
    const SIGNATURES: &[&str] = &[
        "() -> void",
        "(i32, f64) -> u8",
        "(i8, u16, f32) -> f32",
        "(bool, i8, u8, i16, u16, i32, u32, i64) -> i16",
        "(pointer, buffer, function) -> u64",
        "(u8, u8, u8, u8, u8, u8, u8, u8, bool, i8, u8, i16, u16, i32, u32, u64, pointer) -> bool",
        "(i64, i64, i64, i64, i64, i64, i64, i64, i8, f64, f64, f64, f64, f64, f64, f64, f64, f32) -> u16",
        "({i32, f32}) -> {f64, f64}",
        "({u8, u8, u8}, {i64, u8}) -> {u8, u16, u8, u32, u8}",
        "({i64, i64, i64}) -> {i64, i64, i64}",
        "(i64, i64, i64, i64, i64, i64, i64, i64, {i64, i64, i64}, f32) -> f64",
        "(i64, i64, i64, i64, i64, i64, i64, {i64, i64}, i32) -> i32",
        "({f32, f32, f32}) -> {f32, f32, f32}",
        "({f64, f64, f64, f64}, {f32, f32}) -> {f64, f64, f64, f64}",
        "(f64, f64, f64, f64, f64, f64, f64, {f64, f64}, f32) -> {i64, f64}",
    ];

    fn plan(sig: &str) -> Plan {
        plan_of(&sig.parse().unwrap())
    }

    fn plan_of(sig: &Signature) -> Plan {
        let limits = Limits {
            max_args: MAX_ARGS,
            ..Limits::default()
        };
        classify(sig, Abi::Aapcs64, Entry::Packed, &limits).unwrap()
    }

    fn listing_at(plan: &Plan, handler: u64, data: u64) -> Vec<String> {
        let at = CallbackPlacement {
            base: 0x10_0000,
            handler,
            data,
        };
        let code = crate::emit_callback(plan, &at);
        assert_eq!(code.len() % 4, 0);
        instructions(Abi::Aapcs64, &code, at.base)
    }

    fn listing(plan: &Plan) -> Vec<String> {
        listing_at(plan, NEAR, DATA)
    }

    fn mentions(insn: &str, names: &[String]) -> bool {
        insn.split(|c: char| !c.is_ascii_alphanumeric())
            .any(|t| names.iter().any(|n| n == t))
    }

    /// The immediate of an instruction's last `#` operand.
    fn immediate(insn: &str) -> u32 {
        let imm = insn.rsplit('#').next().unwrap();
        let imm = imm.trim_end_matches(['!', ']']);
        match imm.strip_prefix("0x") {
            Some(hex) => u32::from_str_radix(hex, 16).unwrap(),
            None => imm.parse().unwrap(),
        }
    }

    /// Where the caller puts each argument the callback must read: once
    /// each.
    fn reads(plan: &Plan) -> Vec<Loc> {
        let mut reads = Vec::new();
        for (i, passing) in plan.passing.iter().enumerate() {
            let moves = plan.args.iter().filter(|a| a.index as usize == i);
            match passing {
                Passing::Stack => reads.extend(
                    moves
                        .filter(|a| matches!(a.from, Source::Field { offset: 0, .. }))
                        .map(|a| a.to),
                ),
                Passing::Reference => reads.extend(
                    moves
                        .filter(|a| matches!(a.from, Source::StackAddress(_)))
                        .map(|a| a.to),
                ),
                _ => reads.extend(moves.map(|a| a.to)),
            }
        }
        reads
    }

    #[test]
    fn every_argument_is_read_exactly_once_before_the_handler_call() {
        for sig in SIGNATURES {
            let plan = plan(sig);
            let code = listing(&plan);
            // Everything before the handler's data goes to x0.
            let end = code
                .iter()
                .position(|l| l.starts_with("mov x0, #"))
                .unwrap();
            let prefix = &code[..end];
            let reads = reads(&plan);
            for n in 0..8u8 {
                let want = reads.iter().filter(|&&l| l == Loc::Gp(n)).count();
                let names = [format!("x{n}"), format!("w{n}")];
                let got = prefix.iter().filter(|l| mentions(l, &names)).count();
                assert_eq!(got, want, "{sig}: x{n}: {prefix:#?}");
                let want = reads.iter().filter(|&&l| l == Loc::Fp(n)).count();
                let names = ["s", "d", "q", "v"].map(|r| format!("{r}{n}"));
                let got = prefix.iter().filter(|l| mentions(l, &names)).count();
                assert_eq!(got, want, "{sig}: v{n}: {prefix:#?}");
            }
            for off in (0..plan.stack_bytes).step_by(8) {
                let want = reads.iter().filter(|&&l| l == Loc::Stack(off)).count();
                let at = format!("x29, #{:#x}", 16 + off);
                let got = prefix
                    .iter()
                    .filter(|l| l.ends_with(&at) || l.contains(&format!("{at}]")))
                    .count();
                assert_eq!(got, want, "{sig}: stack +{off}: {prefix:#?}");
            }
            // x8, a memory return's buffer, goes to the handler as `ret`.
            let x8 = ["x8".to_string(), "w8".to_string()];
            let uses: Vec<&String> = code.iter().filter(|l| mentions(l, &x8)).collect();
            if plan.ret_pass == ReturnPass::Memory {
                assert_eq!(uses, ["mov x2, x8"], "{sig}");
            } else {
                assert!(uses.is_empty(), "{sig}: {uses:?}");
            }
        }
    }

    #[test]
    fn every_slot_is_written_once() {
        for sig in SIGNATURES {
            let plan = plan(sig);
            let frame = Frame::of(&plan);
            let code = listing(&plan);
            for i in 0..plan.arg_types.len() {
                let slot = format!("[sp, #{:#x}]", frame.slot(i));
                let stores = code
                    .iter()
                    .filter(|l| l.starts_with("str ") && l.ends_with(&slot))
                    .count();
                assert_eq!(stores, 1, "{sig}: slot {i}: {code:#?}");
            }
            let slots = format!("add x1, sp, #{:#x}", frame.slots);
            assert!(code.contains(&slots), "{sig}: {code:#?}");
        }
    }

    #[test]
    fn sp_moves_in_multiples_of_16_and_the_frame_is_balanced() {
        for sig in SIGNATURES {
            let code = listing(&plan(sig));
            assert_eq!(
                code[..2],
                ["stp x29, x30, [sp, #-0x10]!", "mov x29, sp"],
                "{sig}"
            );
            let call = code.iter().position(|l| l == "blr x16").unwrap();
            for insn in &code[2..call] {
                if insn.starts_with("sub sp, sp, #") {
                    assert_eq!(immediate(insn) % 16, 0, "{sig}: {insn}");
                } else {
                    assert!(
                        !insn.starts_with("mov sp") && !insn.contains("]!"),
                        "{sig}: {insn}"
                    );
                }
            }
            let n = code.len();
            assert_eq!(
                code[n - 3..],
                ["mov sp, x29", "ldp x29, x30, [sp], #0x10", "ret"],
                "{sig}"
            );
        }
    }

    #[test]
    fn only_scratch_registers_and_the_frame_are_written() {
        let forbidden: Vec<String> = (9..=15)
            .chain(17..=28)
            .flat_map(|n| [format!("x{n}"), format!("w{n}")])
            .chain((8..=31).flat_map(|n| ["v", "q", "d", "s"].map(|r| format!("{r}{n}"))))
            .collect();
        let written = [
            "x0", "w0", "x1", "x2", "x16", "w16", "s0", "s1", "s2", "s3", "d0", "d1", "d2", "d3",
        ];
        for sig in SIGNATURES {
            let plan = plan(sig);
            let frame = Frame::of(&plan);
            for handler in [NEAR, FAR] {
                let code = listing_at(&plan, handler, DATA);
                let n = code.len();
                for (k, insn) in code.iter().enumerate() {
                    assert!(!mentions(insn, &forbidden), "{sig}: {insn}");
                    // The frame record, the frame and the epilogue.
                    let frame_code = k < 2
                        || k >= n - 3
                        || insn.starts_with("sub sp, sp, #")
                        || insn == "blr x16";
                    if frame_code {
                        continue;
                    }
                    if insn.starts_with("str") {
                        // Into the frame, at or above sp.
                        let at = insn.split_once("[sp").map(|(_, at)| at);
                        assert!(at.is_some(), "{sig}: {insn}");
                        let offset = if at == Some("]") { 0 } else { immediate(insn) };
                        assert!(offset + 8 <= frame.size, "{sig}: {insn}");
                    } else {
                        let dst = insn
                            .split_once(' ')
                            .and_then(|(_, ops)| ops.split(',').next())
                            .unwrap();
                        assert!(written.contains(&dst), "{sig}: {insn}");
                    }
                }
            }
        }
    }

    #[test]
    fn values_are_extended_from_their_declared_width() {
        // (type, from x0 to x16 or the slot, from the first stack argument)
        let cases = [
            ("bool", "uxtb w16, w0", "ldrb w16, [x29, #0x10]"),
            ("i8", "sxtb x16, w0", "ldrsb x16, [x29, #0x10]"),
            ("u8", "uxtb w16, w0", "ldrb w16, [x29, #0x10]"),
            ("i16", "sxth x16, w0", "ldrsh x16, [x29, #0x10]"),
            ("u16", "uxth w16, w0", "ldrh w16, [x29, #0x10]"),
            ("i32", "sxtw x16, w0", "ldrsw x16, [x29, #0x10]"),
            ("u32", "mov w16, w0", "ldr w16, [x29, #0x10]"),
            ("i64", "str x0, [sp, #0x20]", "ldr x16, [x29, #0x10]"),
            ("buffer", "str x0, [sp, #0x20]", "ldr x16, [x29, #0x10]"),
        ];
        for (ty, reg, stack) in cases {
            let code = listing(&plan(&format!("({ty}) -> void")));
            assert!(code.iter().any(|l| l == reg), "{ty}: {code:#?}");
            let sig = format!("(i64, i64, i64, i64, i64, i64, i64, i64, {ty}) -> void");
            let code = listing(&plan(&sig));
            assert!(code.iter().any(|l| l == stack), "{ty}: {code:#?}");
        }
        // f32: its bits, zeros above; from the stack, 32 bits.
        let code = listing(&plan("(f32) -> void"));
        assert_eq!(code[3..5], ["fmov w16, s0", "str x16, [sp, #0x20]"]);
        let sig = format!("({}, f32) -> void", ["f64"; 8].join(", "));
        let code = listing(&plan(&sig));
        assert!(
            code.iter().any(|l| l == "ldr w16, [x29, #0x10]"),
            "{code:#?}"
        );
    }

    #[test]
    fn scalar_returns_are_loaded_from_the_buffer_and_narrow_ones_extended() {
        let cases = [
            ("void", None),
            ("bool", Some("ldrb w0, [sp]")),
            ("i8", Some("ldrsb w0, [sp]")),
            ("u8", Some("ldrb w0, [sp]")),
            ("i16", Some("ldrsh w0, [sp]")),
            ("u16", Some("ldrh w0, [sp]")),
            ("i32", Some("ldr x0, [sp]")),
            ("u64", Some("ldr x0, [sp]")),
            ("pointer", Some("ldr x0, [sp]")),
            ("f32", Some("ldr s0, [sp]")),
            ("f64", Some("ldr d0, [sp]")),
        ];
        for (ty, load) in cases {
            let code = listing(&plan(&format!("() -> {ty}")));
            let call = code.iter().position(|l| l == "blr x16").unwrap();
            let after: Vec<&str> = code[call + 1..code.len() - 3]
                .iter()
                .map(String::as_str)
                .collect();
            assert_eq!(after, load.into_iter().collect::<Vec<_>>(), "{ty}");
            // The handler's `ret` is the buffer at sp.
            assert_eq!(code[call - 2], "mov x2, sp", "{ty}: {code:#?}");
        }
    }

    #[test]
    fn a_memory_return_passes_x8_and_loads_nothing() {
        let code = listing(&plan("({i64, i64, i64}) -> {i64, i64, i64}"));
        let call = code.iter().position(|l| l == "blr x16").unwrap();
        assert_eq!(
            code[call - 2..=call],
            ["mov x2, x8", "mov x16, #0x200000", "blr x16"]
        );
        assert_eq!(code.len(), call + 4, "{code:#?}");
        // The 24-byte argument: its caller's copy, by the pointer in x0.
        assert_eq!(code[3], "str x0, [sp, #0x20]", "{code:#?}");
    }

    #[test]
    fn struct_pieces_are_copied_at_their_offsets() {
        let code = listing(&plan(
            "({f64, f64, f64, f64}, {f32, f32}) -> {f64, f64, f64, f64}",
        ));
        // The HFAs member by member to their copies at sp+32 and sp+64
        // (the second in s4, s5), each copy's address to its slot at
        // sp+72, sp+80.
        let stores = [
            "str d0, [sp, #0x20]",
            "str d1, [sp, #0x28]",
            "str d2, [sp, #0x30]",
            "str d3, [sp, #0x38]",
            "add x16, sp, #0x20",
            "str x16, [sp, #0x48]",
            "str s4, [sp, #0x40]",
        ];
        for insn in stores {
            assert!(code.iter().any(|l| l == insn), "{insn}: {code:#?}");
        }
        let call = code.iter().position(|l| l == "blr x16").unwrap();
        assert_eq!(
            code[call + 1..call + 5],
            [
                "ldr d0, [sp]",
                "ldr d1, [sp, #0x8]",
                "ldr d2, [sp, #0x10]",
                "ldr d3, [sp, #0x18]"
            ],
            "{code:#?}"
        );
        // Doublewords from x registers, whole, into a copy rounded up to 8.
        let code = listing(&plan("({u8, u8, u8}, {i64, u8}) -> void"));
        for insn in [
            "str x0, [sp, #0x20]",
            "str x1, [sp, #0x28]",
            "str x2, [sp, #0x30]",
        ] {
            assert!(code.iter().any(|l| l == insn), "{insn}: {code:#?}");
        }
        // A struct with too few x registers left: its address on the stack.
        let code = listing(&plan(
            "(i64, i64, i64, i64, i64, i64, i64, {i64, i64}) -> void",
        ));
        assert!(code.iter().any(|l| l == "add x16, x29, #0x10"), "{code:#?}");
    }

    #[test]
    fn the_size_stays_within_the_bound() {
        let placements = [(0, 0), (NEAR, DATA), (FAR, u64::MAX), (0x10, 1)];
        for sig in SIGNATURES {
            let plan = plan(sig);
            let bound = emit_callback_bound(&plan);
            for (handler, data) in placements {
                let len = listing_at(&plan, handler, data).len() * 4;
                assert!(len <= bound, "{sig}: {len} > {bound}");
            }
        }
    }

    #[test]
    fn the_most_arguments_stay_within_the_offsets_encodable() {
        for (ty, ret) in [
            (Type::U8, Type::I8),
            (Type::F32, Type::U16),
            (Type::U64, Type::I32),
        ] {
            let sig = Signature::new(vec![ty; MAX_ARGS], ret);
            let plan = plan_of(&sig);
            let frame = Frame::of(&plan);
            assert!(frame.size > 4095, "the frame needs two `sub`s");
            let code = listing(&plan);
            assert!(!code.iter().any(|l| l == "(bad)"), "{ty}");
            let subs: u32 = code
                .iter()
                .filter(|l| l.starts_with("sub sp, sp, #"))
                .map(|l| immediate(l))
                .sum();
            assert_eq!(subs, frame.size, "{ty}");
            let last = format!("[sp, #{:#x}]", frame.slot(MAX_ARGS - 1));
            assert!(code.iter().any(|l| l.ends_with(&last)), "{ty}: {last}");
            let stack = format!("[x29, #{:#x}]", 16 + plan.stack_bytes - 8);
            assert!(code.iter().any(|l| l.ends_with(&stack)), "{ty}: {stack}");
        }
    }

    #[test]
    #[should_panic(expected = "at most 512 arguments")]
    fn more_than_the_most_arguments_is_refused() {
        // classify() refuses this many, so extend a classified plan by hand.
        let mut plan = plan_of(&Signature::new(vec![Type::I32; MAX_ARGS], Type::Void));
        plan.arg_types.push(Type::I32);
        plan.passing.push(Passing::Scalar);
        let last = *plan.args.last().unwrap();
        plan.args.push(crate::Arg {
            index: MAX_ARGS as u32,
            ..last
        });
        listing(&plan);
    }

    #[test]
    #[should_panic(expected = "a callback cannot be variadic")]
    fn a_variadic_plan_is_refused() {
        let sig = Signature::new_variadic([Type::Pointer], [Type::F64], Type::I32);
        listing(&plan_of(&sig));
    }
}
