//! AArch64 trampolines: AAPCS64 as Linux uses it, and Apple's arm64 as a
//! table of differences ([`AbiSpec`](crate::AbiSpec); see "Apple arm64"
//! below).
//!
//! [`emit`] turns a classified [`Plan`] into the code of one trampoline.
//! The code is position-independent: it reaches the target through its
//! absolute address, built in x16, and branches only within itself.
//!
//! # Registers
//!
//! | register    | packed entry                        | receiver entry                          |
//! |-------------|-------------------------------------|-----------------------------------------|
//! | x0          | `args` on entry (moved to x17); argument 0, return | the receiver on entry; argument 0, return |
//! | x1          | `ret` on entry (kept in the frame); argument 1 | argument 0 on entry; argument 1 |
//! | x2–x7       | arguments 2–7                       | arguments 1–6 on entry; arguments 2–7   |
//! | v0–v7       | FP arguments; v0 the FP return      | FP arguments, in place; v0 the return   |
//! | x16 (ip0)   | scratch for stack arguments, then the target's address | the same; or the target from entry ([`THUNK_REGISTER`]) |
//! | x17 (ip1)   | the closed cell (guarded); the `args` slot array | the closed cell (guarded); scratch for stack arguments when x16 holds the target from entry |
//! | v16         | scratch for FP stack arguments      | the same                                |
//! | x29, x30    | frame record                        | frame record, only if a call returns here |
//!
//! x16 and x17 are the intra-procedure-call scratch registers and v16 is a
//! temporary, so a trampoline may clobber them; so are x8–x10, which a
//! packed entry passing structs uses: x9 holds a struct argument's address
//! (then, after the call, the return buffer's for a struct return), x10
//! composes a piece of a struct from its chunks, and x8 takes the return
//! buffer's address for a struct returned through memory. The trampolines
//! write nothing else: x18, x19–x28 and d8–d15 keep their values without
//! being saved.
//!
//! A receiver-entry stub behind a static thunk (`Target::Register`) gets
//! its target in x16 and otherwise runs the receiver entry's code, its
//! stack arguments moved through x17 instead of x16, so that x16 still
//! holds the target at the `br x16` (or `blr x16`, from the frame below,
//! when the return needs narrowing). It has no guard: the closed check
//! would take x16 and x17.
//!
//! # Closed-library check
//!
//! A guarded trampoline ([`Guard`]) starts by loading the library's closed
//! cell, its address built in x17, and branching out of line when it is
//! set; the open path costs the load and a `cbnz` not taken. The closed
//! path, after the trampoline's own code, stores 0 to `*ret` (packed entry,
//! non-void return), calls `on_closed(cell, target)` from a frame record,
//! and returns 0 in x0 and d0:
//!
//! ```text
//!   movz/movk x17, cell ; ldrb w16, [x17] ; cbnz w16, closed
//!   … the trampoline …
//! closed:
//!   [str xzr, [x1]]  stp x29, x30, [sp, #-16]!  mov x29, sp
//!   mov x0, x17  movz/movk x1, target  movz/movk x16, on_closed  blr x16
//!   ldp x29, x30, [sp], #16  mov x0, #0  fmov d0, xzr  ret
//! ```
//!
//! # Frame
//!
//! The packed entry, and the receiver entry when the return value must be
//! narrowed after the call, build a frame record and reserve the target's
//! stack arguments below it:
//!
//! ```text
//!   caller's sp -> +-------------------+  16-byte aligned
//!                  | target or padding |  x29 + 24  \ packed entry with a return
//!                  | ret               |  x29 + 16  / value or a target as data
//!                  | saved x30 (lr)    |  x29 + 8
//!                  | saved x29 (fp)    |  x29 + 0   <- x29
//!                  +-------------------+
//!                  | target's stack    |  stack_bytes rounded up to 16,
//!  sp at the call->| arguments         |  argument at [sp + off]
//!                  +-------------------+
//! ```
//!
//! The receiver entry's own stack arguments lie above the caller's sp, at
//! [x29 + 16 + off] once the frame exists. When the receiver entry
//! tail-calls, it builds no frame: it moves the arguments in place, incoming
//! stack arguments at [sp + off] included (that area belongs to the callee,
//! and the target's are never above the trampoline's), and branches to the
//! target, which returns straight to the trampoline's caller.
//!
//! The value entry (`Entry::Value`: the packed entry's slots, the return
//! left in x0 or v0, a tail call when the target takes no stack
//! arguments) is in `value.rs`, with its own register table and frame
//! diagram; it loads its arguments with the packed entry's
//! `load_arguments`. A callback's reverse trampoline, which C calls and
//! which calls a handler, is in `callback.rs` ([`emit_callback`]), with
//! its own register table and frame diagram.
//!
//! # Apple arm64
//!
//! The same code, with the [`AbiSpec`](crate::AbiSpec) of
//! [`Abi::AppleAarch64`](crate::Abi::AppleAarch64) deciding these
//! differences (Apple's "Writing ARM64 code for Apple platforms"):
//!
//! | | AAPCS64 (Linux) | Apple arm64 |
//! |---|---|---|
//! | stack arguments | 8-byte slots | natural size and alignment (`i8` at +0, `i16` at +2, `i32` at +4 …); an HFA at its members' alignment |
//! | 8- and 16-bit arguments | upper bits unspecified | the caller extends them to 32 bits (the trampolines always do) |
//! | variadic arguments | as fixed ones | all on the stack in 8-byte slots |
//! | x18 | a temporary | reserved: never named by a trampoline |
//! | `char` | unsigned | signed |
//!
//! A stack argument is stored at its own size (`strb`, `strh`, `str w`)
//! where Apple packs it. A receiver entry's caller passes narrow integers
//! as 32-bit ones, so they arrive in 4-byte slots and leave at their own
//! size. The frames are those of AAPCS64.

// dynasm's expansion passes every dynamic register through `.into()` to a
// `u8`, and our register numbers already are `u8`s.
#![allow(clippy::useless_conversion)]

use dynasmrt::aarch64::Aarch64Relocation;
use dynasmrt::{dynasm, DynamicLabel, DynasmApi, DynasmLabelApi};

use crate::unwind::{reg, Frame, Framed};
use crate::{
    chunks, Emitted, Entry, Guard, Isa, Loc, Placement, Plan, ReturnPass, Source, Target, Type,
};

type Assembler = Framed<Aarch64Relocation>;

/// `dynasm!` for AArch64.
macro_rules! asm {
    ($ops:ident $($code:tt)*) => {
        dynasm!($ops ; .arch aarch64 $($code)*)
    };
}

// After `asm!`, which it uses.
mod callback;
mod value;
pub use callback::emit_callback;

/// The most arguments [`emit`] handles, set by the shortest reach among the
/// immediates used: a byte load's unsigned offset reaches 4,095 bytes, so
/// slot 511 at offset 4,088 is the last a packed trampoline can address.
/// Below this count the receiver entry's incoming stack slots stay below
/// [x29 + 4,056] and the target's stack area (at most 4,032 bytes) fits
/// `sub sp`'s 12-bit immediate.
pub const MAX_ARGS: usize = crate::Limits::EMITTER_MAX_ARGS;

/// x16 (ip0): holds the target's address for the call, and serves as the
/// general-purpose scratch register for stack arguments before that.
const CALLEE: u8 = 16;
const SCRATCH: u8 = 16;
/// x16 (ip0): the register a receiver-entry stub behind a static thunk
/// finds its target in ([`Target::Register`]), the one the other
/// trampolines call through. An intra-procedure-call scratch register, so
/// the thunk may load it.
pub const THUNK_REGISTER: u8 = CALLEE;
/// x17 (ip1): the scratch register for a receiver entry's stack arguments
/// while x16 holds the target from entry.
const THUNK_SCRATCH: u8 = 17;
/// x17 (ip1): the packed entry's slot array.
const ARGS: u8 = 17;
/// x17 (ip1): the closed cell's address, from the check at entry to the
/// closed path (which the slot array's use never reaches).
const CELL: u8 = 17;
/// x9: a struct argument's address, then the return buffer's address when
/// a struct comes back in registers.
const STRUCT: u8 = 9;
/// x10: a chunk of a struct piece on its way into its register.
const CHUNK: u8 = 10;
/// v16: the FP scratch register for stack arguments.
const FP_SCRATCH: u8 = 16;
/// x29: the frame pointer.
const FRAME: u8 = 29;
/// Register number 31 names sp when used as a base address.
const SP: u8 = 31;

/// Bytes of a frame record (saved x29 and x30).
const RECORD: u32 = 16;

/// An address `offset` bytes above the register `base` (31 for sp).
#[derive(Clone, Copy)]
struct Memory {
    base: u8,
    offset: u32,
}

/// Where the trampoline finds an argument.
#[derive(Clone, Copy)]
enum Value {
    Memory(Memory),
    Gp(u8),
    Fp(u8),
}

/// Emits the AArch64 trampoline for `plan`, linked as `at` says.
///
/// The code does not depend on where it is placed (`at.base`): the target
/// and the guard's addresses are always built in registers.
///
/// # Panics
///
/// If `plan` has more than [`MAX_ARGS`] arguments.
pub fn emit(plan: &Plan, at: &Placement) -> Emitted {
    assemble(plan, at, Assembler::new(Isa::Aarch64))
}

/// [`emit`]'s code alone, its frames not recorded.
///
/// # Panics
///
/// As [`emit`].
pub fn emit_code(plan: &Plan, at: &Placement) -> Vec<u8> {
    assemble(plan, at, Assembler::code_only(Isa::Aarch64)).code
}

fn assemble(plan: &Plan, at: &Placement, mut ops: Assembler) -> Emitted {
    assert!(
        plan.args.len() <= MAX_ARGS,
        "the AArch64 emitter handles at most {MAX_ARGS} arguments, not {}",
        plan.args.len()
    );
    debug_assert_eq!(plan.abi.isa(), Isa::Aarch64, "a plan for another ABI");
    assert!(
        at.guard.is_none() || at.target != Target::Register,
        "a stub with its target in x16 has no closed check: the check takes x16"
    );
    let closed = at.guard.map(|guard| check_closed(&mut ops, guard));
    match (plan.entry, at.target) {
        (Entry::Packed | Entry::Value, Target::Register) => panic!(
            "a {} entry takes its target known or as an argument, not in x16",
            plan.entry
        ),
        (Entry::Packed, target) => packed(&mut ops, plan, target),
        (Entry::Value, target) if plan.tail_calls() => {
            value::value_tail_call(&mut ops, plan, target)
        }
        (Entry::Value, target) => value::value_call(&mut ops, plan, target),
        (Entry::Receiver, Target::Argument) => {
            panic!("a receiver entry calls a known target: it has no argument to spare")
        }
        (Entry::Receiver, target) if plan.tail_calls() => {
            receiver_tail_call(&mut ops, plan, target)
        }
        (Entry::Receiver, target) => receiver_call(&mut ops, plan, target),
    }
    if let (Some(label), Some(guard)) = (closed, at.guard) {
        closed_path(&mut ops, plan, at.target, guard, label);
    }
    let (code, unwind) = ops
        .finish()
        .expect("every branch goes to a label defined in the same trampoline");
    Emitted { code, unwind }
}

/// The frame once `stp x29, x30, [sp, #-record]!` has run: the CFA is the
/// entry's sp, and x29 and x30 are at its bottom.
const fn pushed_record(record: i32) -> Frame {
    Frame::at(reg::SP, record)
        .saving(reg::X29, -record)
        .saving(reg::X30, 8 - record)
}

/// The frame once x29 points at the record: the CFA is x29 + `record`,
/// whatever sp does below it.
const fn in_record(record: i32) -> Frame {
    pushed_record(record).on(reg::X29)
}

/// Pushes a frame record of `record` bytes (16, or 32 with room above it)
/// and points x29 at it.
pub(super) fn push_record(ops: &mut Assembler, record: u32) {
    match record {
        16 => asm!(ops ; stp x29, x30, [sp, #-16]!),
        32 => asm!(ops ; stp x29, x30, [sp, #-32]!),
        _ => unreachable!("frame records of 16 or 32 bytes"),
    }
    ops.frame(pushed_record(record as i32));
    asm!(ops ; mov x29, sp);
    ops.frame(in_record(record as i32));
}

/// Pops the frame record of `record` bytes (sp at it) and returns.
pub(super) fn pop_record_and_return(ops: &mut Assembler, record: u32) {
    match record {
        16 => asm!(ops ; ldp x29, x30, [sp], #16),
        32 => asm!(ops ; ldp x29, x30, [sp], #32),
        _ => unreachable!("frame records of 16 or 32 bytes"),
    }
    ops.entry_frame();
    asm!(ops ; ret);
}

/// The register-file stub: `(file, target, ret)` in x0, x1, x2 (see
/// [`register_file`](crate::register_file)). It builds a frame record,
/// keeps `ret` in x19 and the target in x20 (both saved in the frame),
/// reads the file through x9, reserves the stack block rounded up to 16
/// bytes below the record and copies it there a word at a time through
/// x12–x14, loads d0–d7, x8 and x0–x7, calls, and stores x0, x1 and d0–d3.
///
/// ```text
///   caller's sp ->  saved x19, x20     x29 + 16
///                   saved x29, x30     <- x29
///                   stack block        rounded up to 16 bytes
///             sp ->
/// ```
pub fn emit_register_file() -> Emitted {
    use crate::register_file::offset::{EXTRA, FP, GP, STACK, STACK_WORDS};
    let mut ops = Assembler::new(Isa::Aarch64);
    push_record(&mut ops, 32);
    asm!(ops ; stp x19, x20, [sp, #16]);
    ops.frame(in_record(32).saving(reg::X19, -16).saving(reg::X20, -8));
    asm!(ops
        ; mov x19, x2
        ; mov x20, x1
        ; mov x9, x0
        // The stack block: x10 words, rounded up to an even count.
        ; ldr x10, [x9, #STACK_WORDS]
        ; add x11, x10, #1
        ; and x11, x11, #0xfffffffffffffffe
        ; lsl x11, x11, #3
        ; sub sp, sp, x11
        ; ldr x12, [x9, #STACK]
        ; mov x13, sp
        ; cbz x10, >copied
        ; copy:
        ; ldr x14, [x12], #8
        ; str x14, [x13], #8
        ; subs x10, x10, #1
        ; b.ne <copy
        ; copied:
    );
    // The file is 152 bytes: the pair offsets fit ldp's scaled immediate.
    for pair in 0..4u8 {
        let (a, b, at) = (2 * pair, 2 * pair + 1, (FP + 16 * u32::from(pair)) as i32);
        asm!(ops ; ldp D(a), D(b), [x9, #at]);
    }
    asm!(ops ; ldr x8, [x9, #EXTRA]);
    for pair in 0..4u8 {
        let (a, b, at) = (2 * pair, 2 * pair + 1, (GP + 16 * u32::from(pair)) as i32);
        asm!(ops ; ldp X(a), X(b), [x9, #at]);
    }
    asm!(ops
        ; blr x20
        ; stp x0, x1, [x19]
        ; stp d0, d1, [x19, #16]
        ; stp d2, d3, [x19, #32]
        ; mov sp, x29
        ; ldp x19, x20, [x29, #16]
    );
    ops.frame(in_record(32));
    pop_record_and_return(&mut ops, 32);
    let (code, unwind) = ops
        .finish()
        .expect("the register-file stub's branches go to its own labels");
    Emitted { code, unwind }
}

/// Loads the library's closed cell and branches to the returned label,
/// placed by [`closed_path`], when it is set. Leaves the cell's address in
/// x17 for that path.
fn check_closed(ops: &mut Assembler, guard: Guard) -> DynamicLabel {
    let closed = ops.new_dynamic_label();
    load_address(ops, CELL, guard.cell);
    asm!(ops
        ; ldrb W(SCRATCH), [X(CELL)]
        ; cbnz W(SCRATCH), =>closed
    );
    closed
}

/// The closed path, entered from the first instructions with the entry's
/// registers untouched but x16 and x17 (the cell): store 0 to the packed
/// return slot (packed entry), call `on_closed(cell, target)` from a frame
/// record, return 0 as an integer and as a float, whichever the caller
/// reads.
fn closed_path(
    ops: &mut Assembler,
    plan: &Plan,
    target: Target,
    guard: Guard,
    closed: DynamicLabel,
) {
    asm!(ops ; =>closed);
    // Entered from the check, before the entry changed its frame.
    ops.entry_frame();
    if plan.entry == Entry::Packed {
        zero_return(ops, plan.ret);
    }
    push_record(ops, 16);
    asm!(ops ; mov x0, X(CELL));
    match (target, plan.entry) {
        (Target::Known(target), _) => load_address(ops, 1, target),
        // A value entry's target is its second argument: in x1 already,
        // which `mov x0, x17` left alone.
        (Target::Argument, Entry::Value) => {}
        (Target::Argument, _) => asm!(ops ; mov x1, x2),
        (Target::Register, _) => unreachable!("emit refuses a guard with the target in x16"),
    }
    call(ops, guard.on_closed);
    asm!(ops ; ldp x29, x30, [sp], #16);
    ops.entry_frame();
    asm!(ops
        ; mov x0, xzr
        ; fmov d0, xzr
        ; ret
    );
}

/// `unsafe extern "C" fn(args: *const u64, ret: *mut u64)`.
fn packed(ops: &mut Assembler, plan: &Plan, target: Target) {
    let keeps_ret = plan.ret != Type::Void;
    let outgoing = outgoing_bytes(plan);

    // Frame record; `ret` kept above it, in the frame, across the call, and
    // a target passed as data beside it.
    let record: u32 = if keeps_ret || target == Target::Argument {
        32
    } else {
        16
    };
    push_record(ops, record);
    if keeps_ret {
        asm!(ops ; str x1, [x29, #16]);
    }
    if target == Target::Argument {
        asm!(ops ; str x2, [x29, #24]);
    }
    reserve(ops, outgoing);
    load_arguments(ops, plan);
    // A struct returned through memory goes to the return buffer, whose
    // address the callee takes in x8.
    if plan.ret_pass == ReturnPass::Memory {
        asm!(ops
            ; ldr x8, [x29, #16]
        );
    }

    match target {
        Target::Known(target) => call(ops, target),
        Target::Argument => asm!(ops
            ; ldr X(CALLEE), [x29, #24]
            ; blr X(CALLEE)
        ),
        Target::Register => unreachable!("emit refuses a packed entry with the target in x16"),
    }

    // The return value into the return buffer: a scalar extended to 64
    // bits through x1, a struct's pieces through x9.
    match &plan.ret_pass {
        ReturnPass::Value if keeps_ret => {
            asm!(ops
                ; ldr x1, [x29, #16]
            );
            store_return(ops, plan.ret);
        }
        ReturnPass::Pieces(pieces) => {
            asm!(ops
                ; ldr X(STRUCT), [x29, #16]
            );
            for piece in pieces {
                let (at, reg) = (piece.offset, piece.reg);
                match piece.ty {
                    Type::F32 => asm!(ops ; str S(reg), [X(STRUCT), #at]),
                    Type::F64 => asm!(ops ; str D(reg), [X(STRUCT), #at]),
                    // The first piece whole: the buffer holds at least 8
                    // bytes. The second exactly, the next chunk's bits
                    // shifted down after each store.
                    _ => {
                        let bytes = if at == 0 { 8 } else { u32::from(piece.bytes) };
                        for (rel, size) in chunks(bytes) {
                            let dst = at + rel;
                            match size {
                                8 => asm!(ops ; str X(reg), [X(STRUCT), #dst]),
                                4 => asm!(ops ; str W(reg), [X(STRUCT), #dst]),
                                2 => asm!(ops ; strh W(reg), [X(STRUCT), #dst]),
                                _ => asm!(ops ; strb W(reg), [X(STRUCT), #dst]),
                            }
                            if rel + size < bytes {
                                let shift = 8 * size;
                                asm!(ops ; lsr X(reg), X(reg), #shift);
                            }
                        }
                    }
                }
            }
        }
        ReturnPass::Value | ReturnPass::Memory => {}
    }

    release(ops, outgoing);
    pop_record_and_return(ops, record);
}

/// Loads every argument of a packed plan (the packed and value entries)
/// from the slot array in x0 to where the target expects it: moves the
/// slot array to x17 (x0 is an argument register), then makes the plan's
/// moves in order, a stack argument or struct copy to `[sp + offset]`.
/// Writes the argument registers, their stack slots, x17, x9 and x10
/// (struct pieces), and x16 and v16, only for stack destinations and
/// struct copies' addresses. The slot array is not needed after.
fn load_arguments(ops: &mut Assembler, plan: &Plan) {
    // The slot array moves to x17 so that x0 can take argument 0.
    if !plan.args.is_empty() {
        asm!(ops
            ; mov X(ARGS), x0
        );
    }
    let no_stack = Memory {
        base: SP,
        offset: 0,
    };
    // Which struct's address x9 holds, so that its pieces load it once.
    let mut loaded = None;
    for arg in &plan.args {
        match arg.from {
            Source::Field {
                slot,
                offset,
                bytes,
            } => {
                if loaded != Some(slot) {
                    let slot_at = 8 * slot;
                    asm!(ops ; ldr X(STRUCT), [X(ARGS), #slot_at]);
                    loaded = Some(slot);
                }
                move_field(ops, arg.ty, offset, bytes, arg.to);
            }
            Source::StackAddress(at) => move_address(ops, at, arg.to),
            from => {
                let slot = plan.stack_slot_bytes(arg);
                move_arg(ops, arg.ty, locate(from, no_stack), arg.to, slot, SCRATCH);
            }
        }
    }
}

/// The scratch register for a receiver entry's stack arguments: x16,
/// unless it holds the target from entry. The moves write nothing else but
/// argument registers, their stack slots and v16 (a receiver plan has no
/// struct, whose pieces go through x9 and x10), so a target in x16 reaches
/// the branch intact.
fn receiver_scratch(target: Target) -> u8 {
    match target {
        Target::Register => THUNK_SCRATCH,
        Target::Known(_) | Target::Argument => SCRATCH,
    }
}

/// Puts the receiver entry's target in x16 when it is known; a static
/// thunk has put it there already otherwise.
fn receiver_target(ops: &mut Assembler, target: Target) {
    match target {
        Target::Known(target) => load_target(ops, target),
        Target::Register => {}
        Target::Argument => unreachable!("emit refuses a receiver entry with the target as data"),
    }
}

/// `extern "C" fn(receiver, a0, a1, …)` whose return needs no fix-up: move
/// the arguments down in place and branch to the target.
fn receiver_tail_call(ops: &mut Assembler, plan: &Plan, target: Target) {
    let incoming = Memory {
        base: SP,
        offset: 0,
    };
    move_receiver_args(ops, plan, incoming, target);

    receiver_target(ops, target);
    asm!(ops
        ; br X(CALLEE)
    );
}

/// Moves a receiver entry's arguments, its caller's stack arguments at
/// `incoming`, to where the target takes them.
fn move_receiver_args(ops: &mut Assembler, plan: &Plan, incoming: Memory, target: Target) {
    let scratch = receiver_scratch(target);
    for arg in &plan.args {
        let slot = plan.stack_slot_bytes(arg);
        move_arg(
            ops,
            arg.ty,
            locate(arg.from, incoming),
            arg.to,
            slot,
            scratch,
        );
    }
}

/// `extern "C" fn(receiver, a0, a1, …)` returning an 8- or 16-bit integer:
/// call the target, then narrow its return value.
fn receiver_call(ops: &mut Assembler, plan: &Plan, target: Target) {
    let outgoing = outgoing_bytes(plan);

    push_record(ops, 16);
    reserve(ops, outgoing);

    // The caller's stack arguments now lie just above the frame record.
    let incoming = Memory {
        base: FRAME,
        offset: RECORD,
    };
    move_receiver_args(ops, plan, incoming, target);

    receiver_target(ops, target);
    asm!(ops
        ; blr X(CALLEE)
    );

    // The callee leaves the bits above the return value's width unspecified.
    match plan.ret {
        Type::I8 => asm!(ops ; sxtb w0, w0),
        Type::U8 | Type::Bool => asm!(ops ; uxtb w0, w0),
        Type::I16 => asm!(ops ; sxth w0, w0),
        Type::U16 => asm!(ops ; uxth w0, w0),
        // Not narrow: these tail-call instead.
        _ => {}
    }

    release(ops, outgoing);
    pop_record_and_return(ops, 16);
}

/// The bytes reserved for the target's stack arguments: sp stays 16-byte
/// aligned.
fn outgoing_bytes(plan: &Plan) -> u32 {
    plan.stack_bytes.next_multiple_of(16)
}

/// Reserves the target's stack arguments below the frame record.
fn reserve(ops: &mut Assembler, bytes: u32) {
    if bytes > 0 {
        asm!(ops
            ; sub sp, sp, #bytes
        );
    }
}

/// Gives the target's stack arguments back: sp returns to the frame record.
fn release(ops: &mut Assembler, bytes: u32) {
    if bytes > 0 {
        asm!(ops
            ; mov sp, x29
        );
    }
}

/// Where an argument is on entry. `incoming` is where the receiver entry's
/// first stack argument is.
fn locate(source: Source, incoming: Memory) -> Value {
    match source {
        Source::Slot(n) => Value::Memory(Memory {
            base: ARGS,
            offset: 8 * n,
        }),
        Source::Native(Loc::Gp(n)) => Value::Gp(n),
        Source::Native(Loc::Fp(n)) => Value::Fp(n),
        Source::Native(Loc::Stack(off)) => Value::Memory(Memory {
            base: incoming.base,
            offset: incoming.offset + off,
        }),
        Source::Field { .. } | Source::StackAddress(_) => {
            unreachable!("struct pieces move through move_field and move_address")
        }
    }
}

/// Moves one piece of a struct argument, `bytes` bytes at `offset` in the
/// struct whose address is in x9, to `to`: an x register
/// (composed from naturally aligned chunks through x10), a v register
/// (`ty` `f32` or `f64`), or a stack slot or copy (chunk by chunk through
/// x16). Every offset is a multiple of its access's size, as the scaled
/// immediates need, and below StructType::MAX_SIZE and
/// Limits::EMITTER_MAX_STACK (4,096 bytes), which they reach.
fn move_field(ops: &mut Assembler, ty: Type, offset: u32, bytes: u8, to: Loc) {
    match to {
        Loc::Gp(dst) => {
            for (rel, size) in chunks(u32::from(bytes)) {
                let (src, reg) = (offset + rel, if rel == 0 { dst } else { CHUNK });
                match size {
                    8 => asm!(ops ; ldr X(reg), [X(STRUCT), #src]),
                    4 => asm!(ops ; ldr W(reg), [X(STRUCT), #src]),
                    2 => asm!(ops ; ldrh W(reg), [X(STRUCT), #src]),
                    _ => asm!(ops ; ldrb W(reg), [X(STRUCT), #src]),
                }
                if rel > 0 {
                    let shift = 8 * rel;
                    asm!(ops ; orr X(dst), X(dst), X(CHUNK), lsl #shift);
                }
            }
        }
        Loc::Fp(dst) => match ty {
            Type::F32 => asm!(ops ; ldr S(dst), [X(STRUCT), #offset]),
            _ => asm!(ops ; ldr D(dst), [X(STRUCT), #offset]),
        },
        Loc::Stack(off) => {
            for (rel, size) in chunks(u32::from(bytes)) {
                let (src, dst) = (offset + rel, off + rel);
                match size {
                    8 => asm!(ops
                        ; ldr X(SCRATCH), [X(STRUCT), #src]
                        ; str X(SCRATCH), [sp, #dst]
                    ),
                    4 => asm!(ops
                        ; ldr W(SCRATCH), [X(STRUCT), #src]
                        ; str W(SCRATCH), [sp, #dst]
                    ),
                    2 => asm!(ops
                        ; ldrh W(SCRATCH), [X(STRUCT), #src]
                        ; strh W(SCRATCH), [sp, #dst]
                    ),
                    _ => asm!(ops
                        ; ldrb W(SCRATCH), [X(STRUCT), #src]
                        ; strb W(SCRATCH), [sp, #dst]
                    ),
                }
            }
        }
    }
}

/// Passes the address `at` bytes above sp, where a struct was copied, as
/// the pointer argument at `to`.
fn move_address(ops: &mut Assembler, at: u32, to: Loc) {
    match to {
        Loc::Gp(dst) => asm!(ops ; add XSP(dst), sp, #at),
        Loc::Stack(off) => asm!(ops
            ; add XSP(SCRATCH), sp, #at
            ; str X(SCRATCH), [sp, #off]
        ),
        Loc::Fp(_) => unreachable!("an address travels in a GP register or on the stack"),
    }
}

/// Zeroes the packed return buffer at x1: a scalar's slot, or `max(8,
/// size)` bytes of a struct, in naturally aligned chunks.
fn zero_return(ops: &mut Assembler, ret: Type) {
    let bytes = match ret {
        Type::Void => 0,
        Type::Struct(layout) => layout.size().max(8),
        _ => 8,
    };
    for (at, size) in chunks(bytes) {
        match size {
            8 => asm!(ops ; str xzr, [x1, #at]),
            4 => asm!(ops ; str wzr, [x1, #at]),
            2 => asm!(ops ; strh wzr, [x1, #at]),
            _ => asm!(ops ; strb wzr, [x1, #at]),
        }
    }
}

/// Moves one argument of type `ty` from where it is to where the target
/// expects it, a stack argument (in a slot of `slot` bytes,
/// [`Plan::stack_slot_bytes`]) through `scratch` (or v16 for a float).
fn move_arg(ops: &mut Assembler, ty: Type, from: Value, to: Loc, slot: u32, scratch: u8) {
    match to {
        Loc::Gp(n) | Loc::Fp(n) => fetch(ops, ty, from, n),
        Loc::Stack(offset) => {
            let via = if ty.is_float() { FP_SCRATCH } else { scratch };
            fetch(ops, ty, from, via);
            store_stack_arg(ops, ty, via, offset, slot);
        }
    }
}

/// Puts the argument of type `ty` in register `dst`: an FP register for
/// floats, a general-purpose one otherwise. Integers narrower than 32 bits
/// are extended to 32 bits, as a C caller does; a buffer view is replaced
/// by its `data`.
fn fetch(ops: &mut Assembler, ty: Type, from: Value, dst: u8) {
    match from {
        Value::Memory(at) => load(ops, ty, dst, at),
        Value::Gp(src) => copy_gp(ops, ty, dst, src),
        Value::Fp(src) => copy_fp(ops, ty, dst, src),
    }
    if ty == Type::Buffer {
        // The target gets the view's `data`; a null view gives null.
        asm!(ops
            ; cbz X(dst), >null_view
            ; ldr X(dst), [X(dst)]
            ; null_view:
        );
    }
}

/// Loads a `ty` from memory into `dst`, reading only its width.
fn load(ops: &mut Assembler, ty: Type, dst: u8, at: Memory) {
    let Memory { base, offset } = at;
    match ty {
        Type::I8 => asm!(ops ; ldrsb W(dst), [XSP(base), #offset]),
        Type::U8 | Type::Bool => asm!(ops ; ldrb W(dst), [XSP(base), #offset]),
        Type::I16 => asm!(ops ; ldrsh W(dst), [XSP(base), #offset]),
        Type::U16 => asm!(ops ; ldrh W(dst), [XSP(base), #offset]),
        Type::I32 | Type::U32 => asm!(ops ; ldr W(dst), [XSP(base), #offset]),
        Type::I64 | Type::U64 | Type::Pointer | Type::Function | Type::Buffer => {
            asm!(ops ; ldr X(dst), [XSP(base), #offset])
        }
        Type::F32 => asm!(ops ; ldr S(dst), [XSP(base), #offset]),
        Type::F64 => asm!(ops ; ldr D(dst), [XSP(base), #offset]),
        // Never an argument: classification rejects it.
        Type::Void => {}
        Type::Struct(_) => unreachable!("classification keeps structs off the JIT tier"),
    }
}

/// Copies an integer argument between general-purpose registers, narrowing
/// 8- and 16-bit values that arrived widened to 32 bits.
fn copy_gp(ops: &mut Assembler, ty: Type, dst: u8, src: u8) {
    debug_assert!(!ty.is_float(), "floats travel in FP registers");
    match ty {
        Type::I8 => asm!(ops ; sxtb W(dst), W(src)),
        Type::U8 | Type::Bool => asm!(ops ; uxtb W(dst), W(src)),
        Type::I16 => asm!(ops ; sxth W(dst), W(src)),
        Type::U16 => asm!(ops ; uxth W(dst), W(src)),
        Type::I32 | Type::U32 => asm!(ops ; mov W(dst), W(src)),
        _ if dst == src => {}
        _ => asm!(ops ; mov X(dst), X(src)),
    }
}

/// Copies a float argument between FP registers, if it has to move.
fn copy_fp(ops: &mut Assembler, ty: Type, dst: u8, src: u8) {
    debug_assert!(ty.is_float(), "only floats travel in FP registers");
    match ty {
        _ if dst == src => {}
        Type::F32 => asm!(ops ; fmov S(dst), S(src)),
        _ => asm!(ops ; fmov D(dst), D(src)),
    }
}

/// Stores register `src`, holding a `ty`, to the target's stack argument at
/// [sp + offset], a slot of `slot` bytes. Integers fill an 8-byte slot; a
/// float fills its width and leaves the rest of the slot unspecified, as
/// the ABI allows. A slot of the type's own size (Apple's) gets exactly
/// that many bytes: its neighbours may be other arguments, and its offset
/// is a multiple of its size, as each store's scaled immediate needs.
fn store_stack_arg(ops: &mut Assembler, ty: Type, src: u8, offset: u32, slot: u32) {
    match (ty, slot) {
        (Type::F32, _) => asm!(ops ; str S(src), [sp, #offset]),
        (Type::F64, _) => asm!(ops ; str D(src), [sp, #offset]),
        (_, 1) => asm!(ops ; strb W(src), [sp, #offset]),
        (_, 2) => asm!(ops ; strh W(src), [sp, #offset]),
        (_, 4) => asm!(ops ; str W(src), [sp, #offset]),
        _ => asm!(ops ; str X(src), [sp, #offset]),
    }
}

/// Builds the target's address in x16 and calls it.
fn call(ops: &mut Assembler, target: u64) {
    load_target(ops, target);
    asm!(ops
        ; blr X(CALLEE)
    );
}

/// Builds `target` in x16.
fn load_target(ops: &mut Assembler, target: u64) {
    load_address(ops, CALLEE, target);
}

/// Builds `value` in `dst`: movz for the lowest non-zero 16-bit half-word
/// (the lowest one if all are zero), movk for each other non-zero one.
fn load_address(ops: &mut Assembler, dst: u8, value: u64) {
    let half = |i: u32| (value >> (16 * i)) as u32 & 0xffff;
    let first = (0..4).find(|&i| half(i) != 0).unwrap_or(0);
    asm!(ops
        ; movz X(dst), #half(first), lsl #16 * first
    );
    for i in (first + 1..4).filter(|&i| half(i) != 0) {
        asm!(ops
            ; movk X(dst), #half(i), lsl #16 * i
        );
    }
}

/// Stores the target's return value, extended to 64 bits, through the `ret`
/// pointer in x1. Nothing for `void`.
fn store_return(ops: &mut Assembler, ret: Type) {
    match ret {
        Type::Void => return,
        Type::I8 => asm!(ops ; sxtb x0, w0),
        // Writing a w register clears the upper 32 bits.
        Type::U8 | Type::Bool => asm!(ops ; uxtb w0, w0),
        Type::I16 => asm!(ops ; sxth x0, w0),
        Type::U16 => asm!(ops ; uxth w0, w0),
        Type::I32 => asm!(ops ; sxtw x0, w0),
        Type::U32 => asm!(ops ; mov w0, w0),
        Type::I64 | Type::U64 | Type::Pointer | Type::Function | Type::Buffer => {}
        // The f32 bits in the low half, zeros above.
        Type::F32 => asm!(ops ; fmov w0, s0),
        Type::F64 => {
            asm!(ops ; str d0, [x1]);
            return;
        }
        Type::Struct(_) => unreachable!("classification keeps structs off the JIT tier"),
    }
    asm!(ops
        ; str x0, [x1]
    );
}

#[cfg(all(test, feature = "disasm"))]
mod tests {
    use super::*;
    use crate::{classify, emit, Abi, Limits, Signature};

    const NEAR: u64 = 0x20_0000;
    const FAR: u64 = 0x7f12_3456_789a;

    fn plan(sig: &str, entry: Entry) -> Plan {
        plan_of(&sig.parse().unwrap(), entry)
    }

    /// Signatures beyond [`Signature::MAX_ARGS`], which no parser gives,
    /// classify too: the emitter's own bound is [`MAX_ARGS`].
    fn plan_of(sig: &Signature, entry: Entry) -> Plan {
        let limits = Limits {
            max_args: MAX_ARGS + 1,
            ..Limits::default()
        };
        classify(sig, Abi::Aapcs64, entry, &limits).unwrap()
    }

    /// The instructions of the trampoline, as text, without offsets and bytes.
    fn listing_of(plan: &Plan, target: u64) -> Vec<String> {
        listing_placed(plan, &Placement::at(0x10_0000, target))
    }

    fn listing_placed(plan: &Plan, at: &Placement) -> Vec<String> {
        let code = emit(plan, at);
        assert_eq!(code.len() % 4, 0);
        crate::disasm::instructions(Abi::Aapcs64, &code, at.base)
    }

    fn listing(sig: &str, entry: Entry) -> Vec<String> {
        listing_of(&plan(sig, entry), NEAR)
    }

    fn contains(listing: &[String], insn: &str) -> bool {
        listing.iter().any(|l| l == insn)
    }

    /// Signatures covering every argument type, register and stack
    /// arguments, and every return type.
    const SIGNATURES: &[&str] = &[
        "() -> void",
        "(i8) -> i8",
        "(i32, i32) -> i32",
        "(bool, u8, i16, u16, u32) -> u32",
        "(f32, f64, i32) -> f32",
        "(buffer, pointer, function) -> f64",
        "(i64, i64, i64, i64, i64, i64, i64, i64, i8, buffer, f32) -> bool",
        "(f64, f64, f64, f64, f64, f64, f64, f64, f64, f32, u16) -> u16",
        "(i32, i32, i32, i32, i32, i32, i32, i32, i16, i8) -> void",
        "(i32, i32, i32, i32, i32, i32, i32, i32, i16, i8) -> i16",
        "(u64, u64, u64, u64, u64, u64, u64, buffer, buffer, f64) -> u64",
    ];

    /// Every signature for each entry kind, and for the receiver entry with
    /// its target in x16 too.
    fn every_listing() -> Vec<(String, Vec<String>)> {
        let mut all = Vec::new();
        for sig in SIGNATURES {
            for entry in Entry::ALL {
                all.push((format!("{entry} {sig}"), listing(sig, entry)));
            }
            let code = listing_placed(&plan(sig, Entry::Receiver), &Placement::register());
            all.push((format!("receiver (x16) {sig}"), code));
        }
        all
    }

    /// The same signatures with the closed-library check, its addresses
    /// near and far.
    fn every_guarded_listing() -> Vec<(String, Vec<String>)> {
        let guards = [
            Guard {
                cell: 0x30_0000,
                on_closed: 0x40_0000,
            },
            Guard {
                cell: 0x7f00_1234_5678,
                on_closed: FAR,
            },
        ];
        let mut all = Vec::new();
        for sig in SIGNATURES {
            for entry in Entry::ALL {
                for guard in guards {
                    let at = Placement {
                        guard: Some(guard),
                        ..Placement::at(0x10_0000, NEAR)
                    };
                    let code = crate::disasm::instructions(
                        Abi::Aapcs64,
                        &emit(&plan(sig, entry), &at),
                        0x10_0000,
                    );
                    all.push((format!("guarded {entry} {sig}"), code));
                }
            }
        }
        all
    }

    /// The immediate of an instruction's last `#` operand.
    fn immediate(insn: &str) -> u64 {
        let imm = insn.rsplit('#').next().unwrap();
        let imm = imm.trim_end_matches(['!', ']']);
        let (negative, imm) = match imm.strip_prefix('-') {
            Some(imm) => (true, imm),
            None => (false, imm),
        };
        let value = match imm.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16).unwrap(),
            None => imm.parse().unwrap(),
        };
        assert!(!negative || value > 0);
        value
    }

    #[test]
    fn packed_i8_is_loaded_with_ldrsb_and_returned_with_sxtb() {
        let code = listing("(i8) -> i8", Entry::Packed);
        assert!(contains(&code, "ldrsb w0, [x17]"), "{code:#?}");
        assert!(contains(&code, "sxtb x0, w0"), "{code:#?}");
        assert!(contains(&code, "str x0, [x1]"), "{code:#?}");
    }

    #[test]
    fn packed_loads_read_only_the_declared_width() {
        let cases = [
            ("i8", "ldrsb w0, [x17]"),
            ("u8", "ldrb w0, [x17]"),
            ("bool", "ldrb w0, [x17]"),
            ("i16", "ldrsh w0, [x17]"),
            ("u16", "ldrh w0, [x17]"),
            ("i32", "ldr w0, [x17]"),
            ("u32", "ldr w0, [x17]"),
            ("i64", "ldr x0, [x17]"),
            ("pointer", "ldr x0, [x17]"),
            ("function", "ldr x0, [x17]"),
            ("f32", "ldr s0, [x17]"),
            ("f64", "ldr d0, [x17]"),
        ];
        for (ty, load) in cases {
            let code = listing(&format!("({ty}) -> void"), Entry::Packed);
            assert!(contains(&code, load), "{ty}: {code:#?}");
        }
    }

    #[test]
    fn packed_return_is_extended_to_64_bits_before_the_store() {
        let cases = [
            ("i8", &["sxtb x0, w0", "str x0, [x1]"][..]),
            ("u8", &["uxtb w0, w0", "str x0, [x1]"]),
            ("bool", &["uxtb w0, w0", "str x0, [x1]"]),
            ("i16", &["sxth x0, w0", "str x0, [x1]"]),
            ("u16", &["uxth w0, w0", "str x0, [x1]"]),
            ("i32", &["sxtw x0, w0", "str x0, [x1]"]),
            ("u32", &["mov w0, w0", "str x0, [x1]"]),
            ("u64", &["str x0, [x1]"]),
            ("pointer", &["str x0, [x1]"]),
            ("f32", &["fmov w0, s0", "str x0, [x1]"]),
            ("f64", &["str d0, [x1]"]),
        ];
        for (ty, tail) in cases {
            let code = listing(&format!("() -> {ty}"), Entry::Packed);
            let at = code.iter().position(|l| l == "blr x16").unwrap();
            // The `ret` pointer comes back from the frame, then the store.
            assert_eq!(code[at + 1], "ldr x1, [x29, #0x10]", "{ty}: {code:#?}");
            assert_eq!(code[at + 2..at + 2 + tail.len()], *tail, "{ty}: {code:#?}");
        }
    }

    #[test]
    fn packed_void_leaves_the_return_slot_alone() {
        let code = listing("(i32) -> void", Entry::Packed);
        assert!(!code.iter().any(|l| l.contains("x1]")), "{code:#?}");
    }

    #[test]
    fn packed_saves_ret_and_args_before_loading_x0_and_x1() {
        let code = listing("(u64, u64, u64) -> u64", Entry::Packed);
        let save_ret = code
            .iter()
            .position(|l| l == "str x1, [x29, #0x10]")
            .unwrap();
        let save_args = code.iter().position(|l| l == "mov x17, x0").unwrap();
        let load_x0 = code.iter().position(|l| l == "ldr x0, [x17]").unwrap();
        let load_x1 = code
            .iter()
            .position(|l| l == "ldr x1, [x17, #0x8]")
            .unwrap();
        assert!(save_ret < load_x1 && save_args < load_x0, "{code:#?}");
        assert!(contains(&code, "ldr x2, [x17, #0x10]"), "{code:#?}");
    }

    #[test]
    fn packed_stack_arguments_go_below_the_frame_at_sp() {
        let code = listing(
            "(i64, i64, i64, i64, i64, i64, i64, i64, i8, f32, f64, f64, f64, f64, f64, f64, f64, f64, f64) -> void",
            Entry::Packed,
        );
        // Three stack slots (i8, and the ninth and tenth float) in 32 bytes.
        assert!(contains(&code, "sub sp, sp, #0x20"), "{code:#?}");
        assert!(contains(&code, "ldrsb w16, [x17, #0x40]"), "{code:#?}");
        assert!(contains(&code, "str x16, [sp]"), "{code:#?}");
        assert!(contains(&code, "ldr d16, [x17, #0x88]"), "{code:#?}");
        assert!(contains(&code, "str d16, [sp, #0x8]"), "{code:#?}");
        assert!(contains(&code, "str d16, [sp, #0x10]"), "{code:#?}");
        assert!(contains(&code, "mov sp, x29"), "{code:#?}");
    }

    #[test]
    fn buffer_view_is_replaced_by_its_data_unless_null() {
        for entry in Entry::ALL {
            let code = listing("(buffer) -> void", entry);
            let at = code.iter().position(|l| l == "cbz x0, $+0x8").unwrap();
            // The branch skips exactly the load of `data`.
            assert_eq!(code[at + 1], "ldr x0, [x0]", "{entry}: {code:#?}");
        }
    }

    #[test]
    fn receiver_tail_call_has_no_frame_and_ends_with_br() {
        let code = listing("(i32, f64, pointer) -> i32", Entry::Receiver);
        assert_eq!(code.last().unwrap(), "br x16", "{code:#?}");
        assert!(!code.iter().any(|l| l.starts_with("stp")), "{code:#?}");
        assert!(!code.iter().any(|l| l.contains("sp")), "{code:#?}");
        assert!(!contains(&code, "blr x16") && !contains(&code, "ret"));
        // Drops the receiver; the float stays in d0.
        assert_eq!(code[..2], ["mov w0, w1", "mov x1, x2"], "{code:#?}");
    }

    #[test]
    fn receiver_renarrows_narrow_arguments() {
        let code = listing("(i8, u8, i16, u16, bool) -> void", Entry::Receiver);
        assert_eq!(
            code,
            [
                "sxtb w0, w1",
                "uxtb w1, w2",
                "sxth w2, w3",
                "uxth w3, w4",
                "uxtb w4, w5",
                "mov x16, #0x200000",
                "br x16",
            ],
        );
    }

    #[test]
    fn receiver_narrow_return_is_narrowed_after_the_call() {
        for (ty, narrow) in [
            ("i8", "sxtb w0, w0"),
            ("u8", "uxtb w0, w0"),
            ("bool", "uxtb w0, w0"),
            ("i16", "sxth w0, w0"),
            ("u16", "uxth w0, w0"),
        ] {
            let code = listing(&format!("(i32) -> {ty}"), Entry::Receiver);
            let at = code.iter().position(|l| l == "blr x16").unwrap();
            assert_eq!(code[at + 1], narrow, "{ty}: {code:#?}");
            assert_eq!(code.last().unwrap(), "ret", "{ty}: {code:#?}");
        }
    }

    #[test]
    fn receiver_stack_arguments_move_down_in_place_when_tail_calling() {
        let code = listing(
            "(i32, i32, i32, i32, i32, i32, i32, i32, i16, i8) -> void",
            Entry::Receiver,
        );
        let moves = [
            "ldr w7, [sp]",
            "ldrsh w16, [sp, #0x8]",
            "str x16, [sp]",
            "ldrsb w16, [sp, #0x10]",
            "str x16, [sp, #0x8]",
        ];
        let at = code.iter().position(|l| l == moves[0]).unwrap();
        assert_eq!(code[at..at + moves.len()], moves, "{code:#?}");
    }

    #[test]
    fn receiver_stack_arguments_are_read_above_the_frame_when_calling() {
        let code = listing(
            "(i32, i32, i32, i32, i32, i32, i32, i32, i16, i8) -> u8",
            Entry::Receiver,
        );
        assert!(contains(&code, "sub sp, sp, #0x10"), "{code:#?}");
        assert!(contains(&code, "ldr w7, [x29, #0x10]"), "{code:#?}");
        assert!(contains(&code, "ldrsh w16, [x29, #0x18]"), "{code:#?}");
        assert!(contains(&code, "ldrsb w16, [x29, #0x20]"), "{code:#?}");
    }

    #[test]
    fn every_call_has_a_balanced_frame() {
        for (name, code) in every_listing() {
            if !contains(&code, "blr x16") {
                assert_eq!(code.last().unwrap(), "br x16", "{name}: {code:#?}");
                continue;
            }
            // stp x29, x30, [sp, #-N]! ; mov x29, sp … ldp x29, x30, [sp], #N ; ret
            assert!(
                code[0].starts_with("stp x29, x30, [sp, #-"),
                "{name}: {code:#?}"
            );
            assert!(code[0].ends_with("]!"), "{name}: {code:#?}");
            assert_eq!(code[1], "mov x29, sp", "{name}: {code:#?}");
            let n = code.len();
            assert_eq!(code[n - 1], "ret", "{name}: {code:#?}");
            assert!(
                code[n - 2].starts_with("ldp x29, x30, [sp], #"),
                "{name}: {code:#?}"
            );
            assert_eq!(
                immediate(&code[0]),
                immediate(&code[n - 2]),
                "{name}: {code:#?}"
            );
            // An outgoing area reserved below the record is given back.
            let reserves = code.iter().any(|l| l.starts_with("sub sp, sp"));
            assert_eq!(reserves, code[n - 3] == "mov sp, x29", "{name}: {code:#?}");
        }
    }

    #[test]
    fn sp_moves_in_multiples_of_16() {
        for (name, code) in every_listing().into_iter().chain(every_guarded_listing()) {
            for insn in &code {
                let moves_sp = insn.starts_with("sub sp, sp, ")
                    || insn.starts_with("add sp, sp, ")
                    || insn.ends_with("]!") && insn.contains("[sp,")
                    || insn.contains("[sp], ");
                if moves_sp {
                    assert_eq!(immediate(insn) % 16, 0, "{name}: {insn}");
                }
            }
        }
    }

    #[test]
    fn outgoing_area_covers_the_stack_arguments() {
        for sig in SIGNATURES {
            for entry in Entry::ALL {
                let plan = plan(sig, entry);
                let code = listing_of(&plan, NEAR);
                let reserved = code
                    .iter()
                    .find(|l| l.starts_with("sub sp, sp, "))
                    .map_or(0, |l| immediate(l));
                if plan.tail_calls() {
                    // The caller's own stack arguments are reused in place.
                    assert_eq!(reserved, 0, "{sig}");
                } else {
                    assert!(reserved >= u64::from(plan.stack_bytes), "{sig}");
                    assert!(reserved < u64::from(plan.stack_bytes) + 16, "{sig}");
                }
            }
        }
    }

    #[test]
    fn callee_saved_and_platform_registers_are_never_touched() {
        let forbidden: Vec<String> = (18..=28)
            .flat_map(|n| [format!("x{n}"), format!("w{n}")])
            .chain((8..=15).flat_map(|n| [format!("d{n}"), format!("s{n}"), format!("v{n}")]))
            .collect();
        for (name, code) in every_listing().into_iter().chain(every_guarded_listing()) {
            for insn in &code {
                for token in insn.split(|c: char| !c.is_ascii_alphanumeric()) {
                    assert!(!forbidden.iter().any(|f| f == token), "{name}: {insn}");
                }
            }
        }
    }

    #[test]
    fn the_closed_check_comes_first_and_its_path_returns_zero_from_a_frame() {
        for (name, code) in every_guarded_listing() {
            let check = code.iter().position(|l| l.starts_with("cbnz w16")).unwrap();
            assert_eq!(code[check - 1], "ldrb w16, [x17]", "{name}: {code:#?}");
            assert!(
                code[..check - 1]
                    .iter()
                    .all(|l| l.starts_with("mov x17") || l.starts_with("movk x17")),
                "{name}: {code:#?}"
            );
            // The out-of-line path: the last frame record of the listing.
            let start = code
                .iter()
                .rposition(|l| l == "stp x29, x30, [sp, #-0x10]!")
                .unwrap();
            let tail = &code[start..];
            let packed_value = name.contains("packed") && !name.ends_with("-> void");
            assert_eq!(
                code[start - 1] == "str xzr, [x1]",
                packed_value,
                "{name}: {code:#?}"
            );
            assert_eq!(
                tail[1..3],
                ["mov x29, sp", "mov x0, x17"],
                "{name}: {code:#?}"
            );
            let n = tail.len();
            assert_eq!(
                tail[n - 5..],
                [
                    "blr x16",
                    "ldp x29, x30, [sp], #0x10",
                    "mov x0, xzr",
                    "fmov d0, xzr",
                    "ret"
                ],
                "{name}: {code:#?}"
            );
        }
    }

    #[test]
    fn far_target_is_built_with_movz_and_movk() {
        let code = listing_of(&plan("(f64) -> f64", Entry::Packed), FAR);
        let at = code.iter().position(|l| l == "blr x16").unwrap();
        // yaxpeax-arm shows movz as mov.
        assert_eq!(
            code[at - 3..at],
            [
                "mov x16, #0x789a",
                "movk x16, #0x3456, lsl #16",
                "movk x16, #0x7f12, lsl #32",
            ],
            "{code:#?}"
        );
        let code = emit(
            &plan("(f64) -> f64", Entry::Packed),
            &Placement::at(0x10_0000, FAR),
        );
        let words: Vec<u32> = code
            .chunks(4)
            .map(|w| u32::from_le_bytes(w.try_into().unwrap()))
            .collect();
        let movz = |w: &u32| w & 0xff80_0000 == 0xd280_0000;
        let movk = |w: &u32| w & 0xff80_0000 == 0xf280_0000;
        assert_eq!(words.iter().filter(|w| movz(w)).count(), 1);
        assert_eq!(words.iter().filter(|w| movk(w)).count(), 2);
    }

    #[test]
    fn target_address_uses_only_the_nonzero_halfwords() {
        let plan = plan("() -> void", Entry::Receiver);
        let build = |target: u64| -> Vec<String> {
            let code = listing_of(&plan, target);
            code[..code.len() - 1].to_vec()
        };
        assert_eq!(build(0x20_0000), ["mov x16, #0x200000"]);
        assert_eq!(build(0), ["mov x16, #0x0"]);
        assert_eq!(
            build(0x1_0000_0001),
            ["mov x16, #0x1", "movk x16, #0x1, lsl #32"]
        );
        assert_eq!(
            build(0xffff_0000_0000_0000),
            ["mov x16, #0xffff000000000000"]
        );
    }

    #[test]
    fn a_target_in_x16_survives_every_receiver_move() {
        for sig in SIGNATURES {
            let plan = plan(sig, Entry::Receiver);
            let code = listing_placed(&plan, &Placement::register());
            let branch = if plan.tail_calls() {
                "br x16"
            } else {
                "blr x16"
            };
            let at = code.iter().position(|l| l == branch).unwrap();
            if plan.tail_calls() {
                assert_eq!(at, code.len() - 1, "{sig}: {code:#?}");
            }
            for insn in code.iter().take(at) {
                let mut tokens = insn.split(|c: char| !c.is_ascii_alphanumeric());
                assert!(!tokens.any(|t| t == "x16" || t == "w16"), "{sig}: {insn}");
            }
            // Stack arguments go through x17 instead, as the same code with
            // a known target moves them through x16.
            let known = listing(sig, Entry::Receiver);
            let through = |code: &[String], r: &str| {
                code.iter()
                    .filter(|l| l.starts_with(&format!("str x{r}, [sp")))
                    .count()
            };
            assert_eq!(through(&code, "17"), through(&known, "16"), "{sig}");
        }
    }

    #[test]
    #[should_panic(expected = "not in x16")]
    fn a_packed_entry_refuses_its_target_in_x16() {
        emit(&plan("(i32) -> i32", Entry::Packed), &Placement::register());
    }

    #[test]
    #[should_panic(expected = "no closed check")]
    fn a_target_in_x16_refuses_a_guard() {
        let at = Placement {
            guard: Some(Guard {
                cell: 0x30_0000,
                on_closed: 0x40_0000,
            }),
            ..Placement::register()
        };
        emit(&plan("(i32) -> i32", Entry::Receiver), &at);
    }

    #[test]
    fn the_most_arguments_stay_within_the_offsets_encodable() {
        for (ty, ret) in [
            (Type::U8, Type::I8),
            (Type::F32, Type::U16),
            (Type::U64, Type::I32),
        ] {
            let sig = Signature::new(vec![ty; MAX_ARGS], ret);
            for entry in Entry::ALL {
                let code = listing_of(&plan_of(&sig, entry), NEAR);
                assert!(!code.iter().any(|l| l == "(bad)"), "{entry} {ty}");
            }
        }
    }

    #[test]
    #[should_panic(expected = "at most 512 arguments")]
    fn more_than_the_most_arguments_is_refused() {
        // classify() refuses this many, so extend a classified plan by hand.
        let sig = Signature::new(vec![Type::I32; MAX_ARGS], Type::Void);
        let mut plan = plan_of(&sig, Entry::Packed);
        let last = *plan.args.last().unwrap();
        plan.args.push(last);
        emit(&plan, &Placement::at(0, NEAR));
    }
}
