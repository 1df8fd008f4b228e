//! x86_64 System V reverse trampolines ("callbacks"): native code with the
//! C ABI of a signature that writes its arguments to packed slots on its
//! stack and calls `handler(data, slots, ret)`
//! ([`CallbackHandler`](crate::CallbackHandler)), then returns what the
//! handler wrote in the native return registers. The layout is ISA-neutral
//! and documented in `crate::callback`; this file is its instructions.
//!
//! Registers:
//!
//! | register             | on entry                          | in the callback |
//! |----------------------|-----------------------------------|-----------------|
//! | rdi rsi rdx rcx r8 r9 | GP arguments (rdi: a memory return's buffer, the arguments from rsi) | read once each into the slots; then rdi = `data`, rsi = the slots, rdx = the return buffer |
//! | xmm0–xmm7            | FP arguments                      | read once each; xmm0, xmm1 the return |
//! | rax                  | —                                 | scratch: a value on its way to a slot, a copy's address; the return |
//! | rdx                  | —                                 | the return's second eightbyte |
//! | r11                  | —                                 | the handler's address when out of rel32 reach |
//! | rbp (callee-saved)   | the caller's                      | the frame pointer: saved, restored |
//!
//! Nothing else is written: rbx, r12–r15 keep their values without being
//! saved, and the red zone is never used (every store comes after the
//! `sub rsp` that reserves the frame, at or above rsp).
//!
//! Frame (`F` = [`Frame::size`], a multiple of 16; `S` = [`Frame::slots`]):
//!
//! ```text
//!           | caller's stack args |  rbp+16+off   the first at rbp+16
//!           +---------------------+
//!           | return address      |  rbp+8        rsp % 16 == 8 on entry
//!           | saved rbp           |  rbp+0  <- rbp, rsp % 16 == 0 after the push
//!           +---------------------+
//!           | padding to 16       |
//!           | slot n-1            |  rsp+S+8(n-1)
//!           | …                   |
//!           | slot 0              |  rsp+S        <- rsi for the handler
//!           | struct copies       |  rsp+16 …     structs that came in registers
//!           | return buffer       |  rsp+0        <- rdx for the handler (32 bytes);
//!   rsp ->  +---------------------+                a memory return keeps rdi here
//!                                   rsp = rbp - F, 16-byte aligned at the call
//! ```
//!
//! Returns: a scalar from the return buffer into rax (narrow integers
//! extended again from their width to 32 bits, which clang-compiled
//! callers rely on) or xmm0; a struct in registers piece by piece into
//! rax, rdx, xmm0 and xmm1 (each GP piece read whole: the buffer is 16
//! bytes, so an 8-byte read never leaves it); a struct returned through
//! memory was written by the handler to the caller's buffer, whose address
//! the callback passes as `ret` and returns in rax (psABI §3.2.3).

use dynasmrt::{dynasm, DynasmApi};

use super::{branch, Branch, Operand, Ops, GP_ARGS, RAX, RDX};
use crate::callback::{check, Frame, Incoming, Piece};
use crate::unwind::{self, reg};
use crate::{Abi, CallbackPlacement, Emitted, Isa, Loc, Plan, ReturnPass, Type};

/// The return buffer's offset from rsp (`crate::callback::RET_BYTES`
/// bytes), or, for a struct returned through memory, where the caller's
/// buffer address waits for the return.
const RET: i32 = 0;

/// Where the caller's first stack argument is: above the saved rbp and the
/// return address.
const INCOMING: i32 = 16;

/// Emits the reverse trampoline of `plan` (an x86_64 System V packed
/// plan), placed and linked as `at` says: see [`crate::emit_callback`].
///
/// # Panics
///
/// As [`crate::emit_callback`]: for a plan of another entry kind or of a
/// variadic signature.
pub fn emit_callback(plan: &Plan, at: &CallbackPlacement) -> Emitted {
    check(plan);
    debug_assert_eq!(plan.abi, Abi::SysV64, "a plan for another ABI");
    let frame = Frame::of(plan);
    let mut ops = Ops::new(Isa::X86_64);
    // At most 144 + 8 × Limits::EMITTER_MAX_ARGS (512) bytes, far below
    // i32::MAX; so are all the offsets below.
    let size = frame.size as i32;

    // rsp % 16 == 8 on entry; the push of rbp makes it 0, and the frame,
    // a multiple of 16, keeps it so.
    dynasm!(ops ; .arch x64 ; push rbp);
    ops.frame(unwind::Frame::at(reg::RSP, 16).saving(reg::RBP, -16));
    dynasm!(ops ; .arch x64 ; mov rbp, rsp);
    ops.frame(unwind::Frame::at(reg::RBP, 16).saving(reg::RBP, -16));
    dynasm!(ops ; .arch x64 ; sub rsp, size);
    // A struct returned through memory: the caller's buffer came in rdi,
    // which the callback returns in rax. Keep it before the handler's
    // arguments take rdi.
    if plan.ret_pass == ReturnPass::Memory {
        dynasm!(ops ; .arch x64 ; mov QWORD [rsp + RET], rdi);
    }

    // Each argument to its slot, read where the caller put it. Nothing
    // here writes an argument register, so every one is read intact.
    for (i, arg) in frame.args.iter().enumerate() {
        let slot = frame.slot(i) as i32;
        match *arg {
            Incoming::Scalar { ty, at } => store_slot(&mut ops, ty, incoming(at), slot),
            Incoming::Copy { copy, ref pieces } => {
                let copy = copy as i32;
                for &piece in pieces {
                    store_piece(&mut ops, piece, copy);
                }
                // The slot holds the copy's address.
                dynasm!(ops
                    ; .arch x64
                    ; lea rax, [rsp + copy]
                    ; mov QWORD [rsp + slot], rax
                );
            }
            Incoming::Stack { at } => {
                // The slot holds the address of the struct in the caller's
                // stack arguments.
                let at = INCOMING + at as i32;
                dynasm!(ops
                    ; .arch x64
                    ; lea rax, [rbp + at]
                    ; mov QWORD [rsp + slot], rax
                );
            }
            // The caller's copy (AAPCS64 passes large structs so; the
            // psABI never does): its address is a pointer argument.
            Incoming::Reference { at } => store_slot(&mut ops, Type::Pointer, incoming(at), slot),
        }
    }

    // handler(data, slots, ret): rdi = data, rsi = slot 0's address, rdx =
    // the return buffer (rsp + RET) or the caller's, kept at rsp + RET.
    let slots = frame.slots as i32;
    dynasm!(ops
        ; .arch x64
        ; mov rdi, QWORD at.data as i64
        ; lea rsi, [rsp + slots]
    );
    if plan.ret_pass == ReturnPass::Memory {
        dynasm!(ops ; .arch x64 ; mov rdx, QWORD [rsp + RET]);
    } else {
        dynasm!(ops ; .arch x64 ; lea rdx, [rsp + RET]);
    }
    branch(&mut ops, at.base, at.handler, Branch::Call);

    load_return(&mut ops, plan);

    // Back to the frame record, the caller's rbp restored.
    dynasm!(ops
        ; .arch x64
        ; mov rsp, rbp
        ; pop rbp
    );
    ops.entry_frame();
    dynasm!(ops ; .arch x64 ; ret);
    let (code, unwind) = ops
        .finish()
        .expect("a callback has no labels: its one branch is to the handler");
    Emitted { code, unwind }
}

/// Where an argument the caller passed at `loc` is, once the frame exists.
fn incoming(loc: Loc) -> Operand {
    match loc {
        Loc::Gp(n) => Operand::Gp(GP_ARGS[usize::from(n)]),
        Loc::Fp(n) => Operand::Xmm(n),
        // Below Limits::EMITTER_MAX_STACK (4,080 bytes): the displacement
        // fits.
        Loc::Stack(off) => Operand::Mem(super::RBP, INCOMING + off as i32),
    }
}

/// Writes the `ty` at `from` to the slot at [rsp + slot] in the packed
/// encoding: integers sign- or zero-extended to 64 bits from their declared
/// width (only that width is read), `f32` bits with zeros above, `f64`
/// bits, addresses as they are. Goes through rax, unless a 64-bit value
/// can be stored straight from its register.
fn store_slot(ops: &mut Ops, ty: Type, from: Operand, slot: i32) {
    match (ty, from) {
        (Type::F64, Operand::Xmm(x)) => {
            dynasm!(ops ; .arch x64 ; movsd QWORD [rsp + slot], Rx(x));
            return;
        }
        // movd zero-extends the low 32 bits into rax.
        (Type::F32, Operand::Xmm(x)) => dynasm!(ops ; .arch x64 ; movd eax, Rx(x)),
        // A float in memory moves as an integer of its width.
        (Type::F32, _) => extend(ops, Type::U32, from),
        (Type::F64, _) => extend(ops, Type::U64, from),
        (_, Operand::Gp(s)) if ty.int_width().is_some_and(|(w, _)| w == 64) => {
            dynasm!(ops ; .arch x64 ; mov QWORD [rsp + slot], Rq(s));
            return;
        }
        _ => extend(ops, ty, from),
    }
    dynasm!(ops ; .arch x64 ; mov QWORD [rsp + slot], rax);
}

/// Loads the integer `ty` at `from` into rax, sign- or zero-extended from
/// its declared width to 64 bits (a 32-bit write clears the upper half).
fn extend(ops: &mut Ops, ty: Type, from: Operand) {
    match (ty, from) {
        (Type::I8, Operand::Mem(b, d)) => dynasm!(ops ; .arch x64 ; movsx rax, BYTE [Rq(b) + d]),
        (Type::I8, Operand::Gp(s)) => dynasm!(ops ; .arch x64 ; movsx rax, Rb(s)),
        (Type::U8 | Type::Bool, Operand::Mem(b, d)) => {
            dynasm!(ops ; .arch x64 ; movzx eax, BYTE [Rq(b) + d])
        }
        (Type::U8 | Type::Bool, Operand::Gp(s)) => dynasm!(ops ; .arch x64 ; movzx eax, Rb(s)),
        (Type::I16, Operand::Mem(b, d)) => dynasm!(ops ; .arch x64 ; movsx rax, WORD [Rq(b) + d]),
        (Type::I16, Operand::Gp(s)) => dynasm!(ops ; .arch x64 ; movsx rax, Rw(s)),
        (Type::U16, Operand::Mem(b, d)) => {
            dynasm!(ops ; .arch x64 ; movzx eax, WORD [Rq(b) + d])
        }
        (Type::U16, Operand::Gp(s)) => dynasm!(ops ; .arch x64 ; movzx eax, Rw(s)),
        (Type::I32, Operand::Mem(b, d)) => {
            dynasm!(ops ; .arch x64 ; movsxd rax, DWORD [Rq(b) + d])
        }
        (Type::I32, Operand::Gp(s)) => dynasm!(ops ; .arch x64 ; movsxd rax, Rd(s)),
        (Type::U32, Operand::Mem(b, d)) => dynasm!(ops ; .arch x64 ; mov eax, DWORD [Rq(b) + d]),
        (Type::U32, Operand::Gp(s)) => dynasm!(ops ; .arch x64 ; mov eax, Rd(s)),
        // 64-bit integers, pointers, functions and buffers (a pointer the
        // caller passed).
        (_, Operand::Mem(b, d)) => dynasm!(ops ; .arch x64 ; mov rax, QWORD [Rq(b) + d]),
        (_, Operand::Gp(s)) => dynasm!(ops ; .arch x64 ; mov rax, Rq(s)),
        (_, Operand::Xmm(_)) => unreachable!("classification never sends an integer through xmm"),
    }
}

/// Stores one register piece of a struct to its copy at [rsp + copy]: a
/// GP eightbyte whole (the copy is its struct's size rounded up to 8, so
/// the bytes past the struct stay inside it), an SSE one at its width (4
/// bytes for a last lone `f32`, else 8).
fn store_piece(ops: &mut Ops, piece: Piece, copy: i32) {
    // Below the struct's size, at most 16 bytes.
    let at = copy + piece.offset as i32;
    match (piece.ty, piece.at) {
        (Type::F32, Loc::Fp(n)) => dynasm!(ops ; .arch x64 ; movss DWORD [rsp + at], Rx(n)),
        (Type::F64, Loc::Fp(n)) => dynasm!(ops ; .arch x64 ; movsd QWORD [rsp + at], Rx(n)),
        (_, Loc::Gp(n)) => {
            let reg = GP_ARGS[usize::from(n)];
            dynasm!(ops ; .arch x64 ; mov QWORD [rsp + at], Rq(reg));
        }
        (_, Loc::Stack(_)) => {
            unreachable!("a struct out of registers is passed on the stack whole, never split")
        }
        (ty, Loc::Fp(_)) => unreachable!("an SSE eightbyte is an f32 or an f64, not {ty}"),
    }
}

/// Loads the handler's return value from the return buffer at [rsp + RET]
/// into the return registers, as `plan.ret_pass` says.
fn load_return(ops: &mut Ops, plan: &Plan) {
    match &plan.ret_pass {
        ReturnPass::Value => match plan.ret {
            Type::Void => {}
            Type::F32 => dynasm!(ops ; .arch x64 ; movss xmm0, DWORD [rsp + RET]),
            Type::F64 => dynasm!(ops ; .arch x64 ; movsd xmm0, QWORD [rsp + RET]),
            // Narrow integers from their declared width, extended to 32
            // bits (the handler extended them already; a caller compiled
            // by clang relies on it).
            Type::I8 => dynasm!(ops ; .arch x64 ; movsx eax, BYTE [rsp + RET]),
            Type::U8 | Type::Bool => dynasm!(ops ; .arch x64 ; movzx eax, BYTE [rsp + RET]),
            Type::I16 => dynasm!(ops ; .arch x64 ; movsx eax, WORD [rsp + RET]),
            Type::U16 => dynasm!(ops ; .arch x64 ; movzx eax, WORD [rsp + RET]),
            // 32- and 64-bit integers and addresses: the slot's 64 bits.
            _ => dynasm!(ops ; .arch x64 ; mov rax, QWORD [rsp + RET]),
        },
        ReturnPass::Pieces(pieces) => {
            for piece in pieces {
                // Below RET_BYTES: inside the return buffer.
                let at = RET + piece.offset as i32;
                match piece.ty {
                    Type::F32 => {
                        dynasm!(ops ; .arch x64 ; movss Rx(piece.reg), DWORD [rsp + at])
                    }
                    Type::F64 => {
                        dynasm!(ops ; .arch x64 ; movsd Rx(piece.reg), QWORD [rsp + at])
                    }
                    // A GP eightbyte whole: the bits past the struct are
                    // the buffer's, and the caller ignores them.
                    _ => {
                        let reg = [RAX, RDX][usize::from(piece.reg)];
                        dynasm!(ops ; .arch x64 ; mov Rq(reg), QWORD [rsp + at]);
                    }
                }
            }
        }
        // The handler wrote the struct to the caller's buffer; its address
        // goes back in rax.
        ReturnPass::Memory => dynasm!(ops ; .arch x64 ; mov rax, QWORD [rsp + RET]),
    }
}

#[cfg(all(test, feature = "disasm"))]
mod tests {
    use super::*;
    use crate::disasm::instructions;
    use crate::{classify, emit_callback_bound, Entry, Limits, Passing, Signature, Source};

    const BASE: u64 = 0x10_0000;
    const NEAR: u64 = 0x20_0000;
    const FAR: u64 = 0x7f12_3456_789a;
    const DATA: u64 = 0x5566_7788_9900;

    /// Every scalar type in registers and on the stack, every struct
    /// passing and every return pass.
    const SIGNATURES: &[&str] = &[
        "() -> void",
        "(i32, f64) -> u8",
        "(i8, u16, f32) -> f32",
        "(bool, i8, u8, i16, u16, i32, u32, i64) -> i16",
        "(pointer, buffer, function) -> u64",
        "(u8, u8, u8, u8, u8, u8, i8, u8, i16, u16, i32, u32, u64, bool) -> bool",
        "(i64, i64, i64, i64, i64, i64, i64, i64, i8, f64, f64, f64, f64, f64, f64, f64, f64, f32) -> u16",
        "({i32, f32}) -> {f64, f64}",
        "({u8, u8, u8}, {i64, u8}) -> {u8, u16, u8, u32, u8}",
        "({i64, i64, i64}) -> {i64, i64, i64}",
        "({i64, i64, i64}, i32, {f64, f64}) -> {i64, f64, i32}",
        "(i64, i64, i64, i64, i64, i64, i64, {i64, i64}, i32) -> i32",
        "({f32, f32, f32}) -> {f32, f32, f32}",
        "({f64, i64}, {f32, f32}, f32) -> {f32, i32}",
        "(f64, f64, f64, f64, f64, f64, f64, {f64, f64}, f32) -> {i64, i64}",
    ];

    fn plan(sig: &str) -> Plan {
        let sig: Signature = sig.parse().unwrap();
        let limits = Limits {
            max_args: Limits::EMITTER_MAX_ARGS,
            ..Limits::default()
        };
        classify(&sig, Abi::SysV64, Entry::Packed, &limits).unwrap()
    }

    /// The instructions, lowercase, without offsets and bytes, one space
    /// after the mnemonic.
    fn listing_at(plan: &Plan, at: &CallbackPlacement) -> Vec<String> {
        let code = crate::emit_callback(plan, at);
        instructions(Abi::SysV64, &code, at.base)
            .into_iter()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .map(|l| l.to_ascii_lowercase())
            .collect()
    }

    fn listing(plan: &Plan) -> Vec<String> {
        let at = CallbackPlacement {
            base: BASE,
            handler: NEAR,
            data: DATA,
        };
        listing_at(plan, &at)
    }

    /// A displacement as iced-x86 prints it.
    fn disp(n: u32) -> String {
        if n < 10 {
            n.to_string()
        } else {
            format!("{n:#x}")
        }
    }

    /// The operands of an instruction, split at the commas outside
    /// parentheses.
    fn operands(insn: &str) -> Vec<String> {
        let Some((_, rest)) = insn.split_once(' ') else {
            return Vec::new();
        };
        let (mut out, mut depth, mut current) = (Vec::new(), 0, String::new());
        for c in rest.trim().chars() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                ',' if depth == 0 => {
                    out.push(std::mem::take(&mut current));
                    continue;
                }
                _ => {}
            }
            current.push(c);
        }
        out.push(current);
        out
    }

    /// Each GP argument register's names, by argument position.
    const GP_NAMES: [[&str; 4]; 6] = [
        ["rdi", "edi", "di", "dil"],
        ["rsi", "esi", "si", "sil"],
        ["rdx", "edx", "dx", "dl"],
        ["rcx", "ecx", "cx", "cl"],
        ["r8", "r8d", "r8w", "r8b"],
        ["r9", "r9d", "r9w", "r9b"],
    ];

    fn mentions(insn: &str, names: &[&str]) -> bool {
        insn.split(|c: char| !c.is_ascii_alphanumeric())
            .any(|t| names.contains(&t))
    }

    /// Where the caller puts each argument the callback must read, and
    /// how many times: once each (rdi too, for a memory return's buffer).
    fn reads(plan: &Plan) -> Vec<Loc> {
        let mut reads = Vec::new();
        if plan.ret_pass == ReturnPass::Memory {
            reads.push(Loc::Gp(0));
        }
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
            // Everything before the handler's arguments are set up.
            let data = format!("movabs ${DATA:#x},%rdi");
            let end = code.iter().position(|l| *l == data).unwrap();
            let prefix = &code[..end];
            let reads = reads(&plan);
            for (n, names) in GP_NAMES.iter().enumerate() {
                let want = reads.iter().filter(|&&l| l == Loc::Gp(n as u8)).count();
                let got = prefix.iter().filter(|l| mentions(l, names)).count();
                assert_eq!(got, want, "{sig}: GP argument {n}: {prefix:#?}");
            }
            for n in 0..8u8 {
                let want = reads.iter().filter(|&&l| l == Loc::Fp(n)).count();
                let name = format!("xmm{n}");
                let got = prefix.iter().filter(|l| mentions(l, &[&name])).count();
                assert_eq!(got, want, "{sig}: xmm{n}: {prefix:#?}");
            }
            for off in (0..plan.stack_bytes).step_by(8) {
                let want = reads.iter().filter(|&&l| l == Loc::Stack(off)).count();
                let at = format!("{}(%rbp)", disp(16 + off));
                let got = prefix.iter().filter(|l| operands(l).contains(&at)).count();
                assert_eq!(got, want, "{sig}: stack +{off}: {prefix:#?}");
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
                let slot = format!("{}(%rsp)", disp(frame.slot(i)));
                let stores = code
                    .iter()
                    .filter(|l| l.starts_with("mov") && operands(l).last() == Some(&slot))
                    .count();
                assert_eq!(stores, 1, "{sig}: slot {i}: {code:#?}");
            }
            let slots = format!("lea {}(%rsp),%rsi", disp(frame.slots));
            assert!(code.contains(&slots), "{sig}: {code:#?}");
        }
    }

    #[test]
    fn rsp_is_16_byte_aligned_at_the_handler_call_and_restored() {
        for sig in SIGNATURES {
            let plan = plan(sig);
            for handler in [NEAR, FAR] {
                let at = CallbackPlacement {
                    base: BASE,
                    handler,
                    data: DATA,
                };
                let code = listing_at(&plan, &at);
                assert_eq!(code[..2], ["push %rbp", "mov %rsp,%rbp"], "{sig}");
                // Bytes below the caller's rsp, which is 8 mod 16 on entry.
                let mut below = 8;
                let call = code.iter().position(|l| l.starts_with("call")).unwrap();
                for insn in &code[..call] {
                    if insn == "push %rbp" {
                        below += 8;
                    } else if let Some(imm) = insn.strip_prefix("sub $") {
                        let imm = imm.strip_suffix(",%rsp").unwrap();
                        below += u64::from_str_radix(imm.trim_start_matches("0x"), 16).unwrap();
                    } else {
                        assert!(!insn.ends_with(",%rsp"), "{sig}: {insn}");
                    }
                }
                assert_eq!(below % 16, 0, "{sig}: {code:#?}");
                let n = code.len();
                assert_eq!(code[n - 3..], ["mov %rbp,%rsp", "pop %rbp", "ret"], "{sig}");
            }
        }
    }

    #[test]
    fn only_scratch_registers_and_the_frame_are_written() {
        let allowed = [
            "%rax", "%eax", "%rdi", "%rsi", "%rdx", "%r11", "%xmm0", "%xmm1",
        ];
        let callee_saved = [
            "rbx", "ebx", "bx", "bl", "r12", "r13", "r14", "r15", "r12d", "r13d", "r14d", "r15d",
        ];
        for sig in SIGNATURES {
            let plan = plan(sig);
            let frame = Frame::of(&plan);
            for handler in [NEAR, FAR] {
                let at = CallbackPlacement {
                    base: BASE,
                    handler,
                    data: DATA,
                };
                let code = listing_at(&plan, &at);
                let n = code.len();
                for (k, insn) in code.iter().enumerate() {
                    assert!(!mentions(insn, &callee_saved), "{sig}: {insn}");
                    // The frame record and the epilogue write rsp and rbp.
                    if k < 3 || k >= n - 3 || insn.starts_with("call") {
                        continue;
                    }
                    let ops = operands(insn);
                    let Some(dst) = ops.last().filter(|_| ops.len() > 1) else {
                        continue;
                    };
                    if let Some(at) = dst.strip_suffix("(%rsp)") {
                        // Inside the frame: never the red zone below rsp.
                        let (negative, at) = match at.strip_prefix('-') {
                            Some(at) => (true, at),
                            None => (false, at),
                        };
                        let at = match at.strip_prefix("0x") {
                            Some(hex) => u32::from_str_radix(hex, 16).unwrap(),
                            None if at.is_empty() => 0,
                            None => at.parse().unwrap(),
                        };
                        assert!(!negative && at + 8 <= frame.size, "{sig}: {insn}");
                    } else {
                        assert!(allowed.contains(&dst.as_str()), "{sig}: {insn}");
                    }
                }
            }
        }
    }

    #[test]
    fn values_are_extended_from_their_declared_width() {
        // (type, from rdi, from the first stack argument)
        let cases = [
            ("bool", "movzbl %dil,%eax", "movzbl 0x10(%rbp),%eax"),
            ("i8", "movsbq %dil,%rax", "movsbq 0x10(%rbp),%rax"),
            ("u8", "movzbl %dil,%eax", "movzbl 0x10(%rbp),%eax"),
            ("i16", "movswq %di,%rax", "movswq 0x10(%rbp),%rax"),
            ("u16", "movzwl %di,%eax", "movzwl 0x10(%rbp),%eax"),
            ("i32", "movslq %edi,%rax", "movslq 0x10(%rbp),%rax"),
            ("u32", "mov %edi,%eax", "mov 0x10(%rbp),%eax"),
            ("i64", "mov %rdi,0x20(%rsp)", "mov 0x10(%rbp),%rax"),
            ("buffer", "mov %rdi,0x20(%rsp)", "mov 0x10(%rbp),%rax"),
        ];
        for (ty, reg, stack) in cases {
            let code = listing(&plan(&format!("({ty}) -> void")));
            assert!(code.iter().any(|l| l == reg), "{ty}: {code:#?}");
            let sig = format!("(i64, i64, i64, i64, i64, i64, {ty}) -> void");
            let code = listing(&plan(&sig));
            assert!(code.iter().any(|l| l == stack), "{ty}: {code:#?}");
        }
        // f32: its bits, zeros above; from the stack, 32 bits.
        let code = listing(&plan("(f32) -> void"));
        assert_eq!(code[3..5], ["movd %xmm0,%eax", "mov %rax,0x20(%rsp)"]);
        let sig = format!("({}, f32) -> void", ["f64"; 8].join(", "));
        let code = listing(&plan(&sig));
        assert!(code.iter().any(|l| l == "mov 0x10(%rbp),%eax"), "{code:#?}");
    }

    #[test]
    fn scalar_returns_are_loaded_from_the_buffer_and_narrow_ones_extended() {
        let cases = [
            ("void", None),
            ("bool", Some("movzbl (%rsp),%eax")),
            ("i8", Some("movsbl (%rsp),%eax")),
            ("u8", Some("movzbl (%rsp),%eax")),
            ("i16", Some("movswl (%rsp),%eax")),
            ("u16", Some("movzwl (%rsp),%eax")),
            ("i32", Some("mov (%rsp),%rax")),
            ("u64", Some("mov (%rsp),%rax")),
            ("pointer", Some("mov (%rsp),%rax")),
            ("f32", Some("movss (%rsp),%xmm0")),
            ("f64", Some("movsd (%rsp),%xmm0")),
        ];
        for (ty, load) in cases {
            let code = listing(&plan(&format!("() -> {ty}")));
            let call = code.iter().position(|l| l.starts_with("call")).unwrap();
            let after: Vec<&str> = code[call + 1..code.len() - 3]
                .iter()
                .map(String::as_str)
                .collect();
            assert_eq!(after, load.into_iter().collect::<Vec<_>>(), "{ty}");
        }
    }

    #[test]
    fn a_memory_return_passes_and_returns_the_callers_buffer() {
        let code = listing(&plan("({i64, i64, i64}) -> {i64, i64, i64}"));
        // Kept before anything else, handed to the handler as `ret`, and
        // returned in rax.
        assert_eq!(code[3], "mov %rdi,(%rsp)", "{code:#?}");
        let call = code.iter().position(|l| l.starts_with("call")).unwrap();
        assert_eq!(code[call - 1], "mov (%rsp),%rdx", "{code:#?}");
        assert_eq!(code[call + 1], "mov (%rsp),%rax", "{code:#?}");
        // The MEMORY argument is the caller's stack argument, by address.
        assert!(code.iter().any(|l| l == "lea 0x10(%rbp),%rax"), "{code:#?}");
    }

    #[test]
    fn struct_pieces_are_copied_at_their_offsets() {
        let plan = plan("({f64, i64}, {f32, f32}, f32) -> {f32, i32}");
        let code = listing(&plan);
        // {f64, i64}: xmm0 and rdi to the copy at rsp+32, its address to
        // slot 0; {f32, f32}: one SSE eightbyte, xmm1, to rsp+48.
        for insn in [
            "movsd %xmm0,0x20(%rsp)",
            "mov %rdi,0x28(%rsp)",
            "lea 0x30(%rsp),%rax",
            "movsd %xmm1,0x30(%rsp)",
            "lea 0x30(%rsp),%rax",
            "movd %xmm2,%eax",
        ] {
            assert!(code.iter().any(|l| l == insn), "{insn}: {code:#?}");
        }
        // The return: f32 and i32 share one eightbyte, INTEGER, so rax.
        let call = code.iter().position(|l| l.starts_with("call")).unwrap();
        assert_eq!(code[call + 1], "mov (%rsp),%rax", "{code:#?}");
        let hfa_like = listing(&self::plan("({f32, f32, f32}) -> {f32, f32, f32}"));
        let call = hfa_like.iter().position(|l| l.starts_with("call")).unwrap();
        assert_eq!(
            hfa_like[call + 1..call + 3],
            ["movsd (%rsp),%xmm0", "movss 8(%rsp),%xmm1"],
            "{hfa_like:#?}"
        );
    }

    #[test]
    fn near_handlers_are_called_with_rel32_and_far_ones_through_r11() {
        let plan = plan("(i32) -> i32");
        let near = listing(&plan);
        assert!(
            near.iter().any(|l| l == "call 0x0000000000200000"),
            "{near:#?}"
        );
        let far = listing_at(
            &plan,
            &CallbackPlacement {
                base: BASE,
                handler: FAR,
                data: DATA,
            },
        );
        let call = far.iter().position(|l| l.starts_with("call")).unwrap();
        assert_eq!(
            far[call - 1..=call],
            ["movabs $0x7f123456789a,%r11", "call *%r11"],
            "{far:#?}"
        );
    }

    #[test]
    fn the_size_stays_within_the_bound() {
        let placements = [
            (0, 0, 0),
            (BASE, NEAR, DATA),
            (BASE, FAR, u64::MAX),
            (u64::MAX - 0x1000, 0x10, 1),
            (0x7fff_ffff_0000, 0x7fff_0000_0000, 0),
        ];
        for sig in SIGNATURES {
            let plan = plan(sig);
            let bound = emit_callback_bound(&plan);
            for (base, handler, data) in placements {
                let at = CallbackPlacement {
                    base,
                    handler,
                    data,
                };
                let len = crate::emit_callback(&plan, &at).len();
                assert!(len <= bound, "{sig} at {base:#x}: {len} > {bound}");
            }
        }
    }

    #[test]
    fn the_most_arguments_encode() {
        let limits = Limits {
            max_args: Limits::EMITTER_MAX_ARGS,
            ..Limits::default()
        };
        for (ty, ret) in [
            (Type::U8, Type::I8),
            (Type::F64, Type::U16),
            (Type::I64, Type::F32),
        ] {
            let sig = Signature::new(vec![ty; Limits::EMITTER_MAX_ARGS], ret);
            let plan = classify(&sig, Abi::SysV64, Entry::Packed, &limits).unwrap();
            let frame = Frame::of(&plan);
            let code = listing(&plan);
            assert!(!code.iter().any(|l| l.contains("(bad)")), "{sig}");
            // The last slot, and the last stack argument, are reached.
            let last = format!("{:#x}(%rsp)", frame.slot(Limits::EMITTER_MAX_ARGS - 1));
            assert!(code.iter().any(|l| l.ends_with(&last)), "{sig}: {last}");
            let stack = format!("{:#x}(%rbp)", 16 + plan.stack_bytes - 8);
            assert!(code.iter().any(|l| l.contains(&stack)), "{sig}: {stack}");
        }
    }

    #[test]
    #[should_panic(expected = "a callback cannot be variadic")]
    fn a_variadic_plan_is_refused() {
        let sig = Signature::new_variadic([Type::Pointer], [Type::I32], Type::I32);
        let plan = classify(&sig, Abi::SysV64, Entry::Packed, &Limits::default()).unwrap();
        crate::emit_callback(
            &plan,
            &CallbackPlacement {
                base: 0,
                handler: 0,
                data: 0,
            },
        );
    }

    #[test]
    #[should_panic(expected = "from the packed plan of its signature, not a receiver plan")]
    fn a_receiver_plan_is_refused() {
        let sig: Signature = "(i32) -> i32".parse().unwrap();
        let plan = classify(&sig, Abi::SysV64, Entry::Receiver, &Limits::default()).unwrap();
        crate::emit_callback(
            &plan,
            &CallbackPlacement {
                base: 0,
                handler: 0,
                data: 0,
            },
        );
    }
}
