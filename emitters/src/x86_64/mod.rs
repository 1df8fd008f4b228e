//! x86_64 trampolines: System V, and Win64 as a table of differences
//! ([`AbiSpec`]; see "Win64" below).
//!
//! Registers, as the System V trampolines use them:
//!
//! | register            | packed entry                   | receiver entry               |
//! |---------------------|--------------------------------|------------------------------|
//! | rdi                 | `args` on entry, then GP arg 0 | receiver, then GP arg 0      |
//! | rsi                 | `ret` on entry, then GP arg 1  | GP arg 0, then GP arg 1      |
//! | rdx rcx r8 r9       | GP args 2–5                    | GP args shift down one       |
//! | xmm0–xmm7           | FP args 0–7, xmm0 the return   | FP args, untouched           |
//! | r10                 | `args` while loading           | —                            |
//! | rbx (callee-saved)  | `ret` across the call, saved   | —                            |
//! | rax                 | scratch for stack args; `al` = vector registers used at the branch; return | the same |
//! | r11                 | the closed cell (guarded); a target out of rel32 reach | the same; or the target from entry ([`THUNK_REGISTER`]) |
//!
//! Packed entry frame (`F` = the target's stack arguments rounded up to 16,
//! plus 8 bytes for a target passed as data, rounded up again):
//!
//! ```text
//!           +------------------+
//!           | return address   |  rsp+F+8   rsp % 16 == 8 on entry
//!           +------------------+
//!           | saved rbx        |  rsp+F     rsp % 16 == 0 after the push
//!           +------------------+
//!           | target (shape)   |  rsp+F-8   a shape stub's third argument
//!           | …                |
//!           | stack arg n      |
//!           | …                |
//!   rsp ->  | stack arg 0      |  rsp       16-byte aligned at the call
//!           +------------------+
//! ```
//!
//! A shape stub (`Target::Argument`) is the packed entry with the target
//! passed as a third argument, in rdx: it parks it at rsp+F-8 before the
//! argument moves take rdx, and calls through it (`call [rsp+F-8]`), so
//! its code depends on nothing but the shape.
//!
//! The receiver entry that tail-calls has no frame: it moves arguments in
//! place (a callee owns its incoming stack arguments), so the target finds
//! its stack arguments where the caller left the trampoline's, shifted down
//! one slot when the receiver pushed a GP argument onto the stack. When the
//! return value needs narrowing it calls instead, from a frame of `F + 8`
//! bytes that copies the stack arguments and realigns rsp.
//!
//! A receiver-entry stub behind a static thunk (`Target::Register`) gets
//! its target in r11 and otherwise runs the receiver entry's code: the
//! argument moves touch only the argument registers and rax, `al` is set
//! in eax, so r11 still holds the target at the `jmp r11` (or `call r11`,
//! from the frame above, when the return needs narrowing). It has no
//! guard: the closed check would take r11.
//!
//! Narrow integer arguments are always extended to 32 bits: the psABI leaves
//! their upper bits unspecified, but clang-compiled callees rely on it. The
//! red zone is never used.
//!
//! A guarded trampoline (a function bound from a library that can be closed,
//! [`Guard`]) first compares the library's closed cell with zero, through
//! r11, and jumps out of line when it is set. The closed path, after the
//! trampoline's own code, stores 0 to `*ret` (packed entry, non-void
//! return), calls `on_closed(cell, target)` from a frame that keeps rsp
//! 16-byte aligned at the call, and returns 0 in eax and xmm0:
//!
//! ```text
//!   mov r11, cell ; cmp byte [r11], 0 ; jne closed      (open: one load, one branch)
//!   … the trampoline …
//! closed:
//!   [mov qword [rsi], 0]  mov rdi, r11  mov rsi, target
//!   sub rsp, 8  call on_closed  add rsp, 8              (rsp % 16 == 0 at the call)
//!   xor eax, eax  xorps xmm0, xmm0  ret
//! ```
//!
//! Before it reaches the target every trampoline sets `al` to the number of
//! vector registers holding arguments (psABI §3.2.3: a variadic callee reads
//! it to decide whether to save xmm0–7). A fixed-prototype callee ignores
//! it, but runtimes bind variadic functions such as `snprintf` with the
//! prototype of one call, and a stale `al` of 0 makes them read garbage
//! floats. libffi sets it too.
//!
//! The value entry (`Entry::Value`: the packed entry's slots, the return
//! left in rax or xmm0, a tail call when the target takes no stack
//! arguments) is in `value.rs`, with its own register table and frame
//! diagram; it loads its arguments with the packed entry's
//! `load_arguments`. A callback's reverse trampoline, which C calls and
//! which calls a handler, is in `callback.rs` ([`emit_callback`]), with
//! its own register table and frame diagram.
//!
//! # Win64
//!
//! The same code, with the [`AbiSpec`] of
//! [`Abi::Win64`](crate::Abi::Win64) deciding these differences:
//!
//! | | System V | Win64 |
//! |---|---|---|
//! | argument registers | rdi rsi rdx rcx r8 r9 and xmm0–7, counted per class | rcx/xmm0, rdx/xmm1, r8/xmm2, r9/xmm3 by position |
//! | the entries' own arguments | `args`, `ret` (, target) in rdi, rsi (, rdx) | in rcx, rdx (, r8); the receiver in rcx |
//! | above the return address at a call | the stack arguments | 32 bytes of shadow space the callee owns, then the stack arguments |
//! | `al` | the vector-register count | not set |
//! | variadic floats | in xmm only | also in the GP register of their position |
//! | callee-saved, besides rbx rbp r12–r15 | — | rsi, rdi, xmm6–15: never named by a trampoline |
//! | struct returns in memory | hidden pointer in rdi | hidden pointer in rcx |
//!
//! Packed entry frame on Win64 (`F` = 32 bytes of shadow space plus the
//! target's stack arguments, rounded so that rsp is 16-byte aligned at the
//! call):
//!
//! ```text
//!           +------------------+
//!           | return address   |  rsp+F+8
//!           +------------------+
//!           | saved rbx        |  rsp+F     `ret` lives in rbx across the call
//!           +------------------+
//!           | …                |
//!           | stack arg 0      |  rsp+32    (the plan's [out+0])
//!           +------------------+
//!           | shadow space     |  rsp+0..32 the target may overwrite it
//!   rsp ->  +------------------+            16-byte aligned at the call
//! ```
//!
//! The receiver entry's caller has left its own shadow space and stack
//! arguments above the return address, so the tail-calling receiver moves
//! arguments within them exactly as on System V, 32 bytes higher.

// dynasm! expands dynamic register operands to `.into()` calls, which are
// identity conversions for the `u8` register numbers used here.
#![allow(clippy::useless_conversion)]

use dynasmrt::x64::X64Relocation;
use dynasmrt::{dynasm, DynamicLabel, DynasmApi, DynasmLabelApi};

use crate::unwind::{reg, Frame, Framed};
use crate::{
    chunks, AbiSpec, Emitted, Entry, Guard, Isa, Loc, Placement, Plan, ReturnPass, Source, Target,
    Type, Varargs,
};

mod callback;
mod value;
pub use callback::emit_callback;

type Ops = Framed<X64Relocation>;

/// Hardware numbers of System V's GP argument registers, in ABI order: the
/// register-file stub's and callbacks' (which exist for System V only).
const GP_ARGS: [u8; 6] = [7, 6, 2, 1, 8, 9];
const RAX: u8 = 0;
const RDX: u8 = 2;
const RSP: u8 = 4;
const RBP: u8 = 5;
const R10: u8 = 10;

/// r11, by hardware number: the register a receiver-entry stub behind a
/// static thunk finds its target in ([`Target::Register`]). Neither an
/// argument register nor callee-saved, so the thunk may load it; the
/// receiver entry's moves never write it.
pub const THUNK_REGISTER: u8 = 11;

/// Emits the trampoline for `plan` (an x86_64 plan), placed and linked as
/// `at` says, with how it unwinds.
pub fn emit(plan: &Plan, at: &Placement) -> Emitted {
    assemble(plan, at, Ops::new(Isa::X86_64))
}

/// [`emit`]'s code alone, its frames not recorded.
pub fn emit_code(plan: &Plan, at: &Placement) -> Vec<u8> {
    assemble(plan, at, Ops::code_only(Isa::X86_64)).code
}

fn assemble(plan: &Plan, at: &Placement, mut ops: Ops) -> Emitted {
    assert!(
        at.guard.is_none() || at.target != Target::Register,
        "a stub with its target in r11 has no closed check: the check takes r11"
    );
    let closed = at.guard.map(|guard| check_closed(&mut ops, guard));
    match (plan.entry, at.target) {
        (Entry::Packed | Entry::Value, Target::Register) => panic!(
            "a {} entry takes its target known or as an argument, not in r11",
            plan.entry
        ),
        (Entry::Packed, target) => emit_packed_entry(&mut ops, plan, at.base, target),
        (Entry::Value, target) => value::emit_value_entry(&mut ops, plan, at.base, target),
        (Entry::Receiver, Target::Argument) => {
            panic!("a receiver entry calls a known target: it has no argument to spare")
        }
        (Entry::Receiver, target) => emit_receiver_entry(&mut ops, plan, at.base, target),
    }
    if let (Some(label), Some(guard)) = (closed, at.guard) {
        emit_closed_path(&mut ops, plan, at, guard, label);
    }
    // Local labels are defined right after their use; the closed path's
    // label is defined above.
    let (code, unwind) = ops.finish().expect("x86_64 trampoline labels resolve");
    Emitted { code, unwind }
}

/// The frame `depth` bytes below the return address: the CFA at rsp +
/// depth + 8.
const fn below_return(depth: i32) -> Frame {
    Frame::at(reg::RSP, depth + 8)
}

/// The packed entry's frame, `depth` bytes below the saved rbx.
const fn below_rbx(depth: i32) -> Frame {
    below_return(depth + 8).saving(reg::RBX, -16)
}

/// The register-file stub: `(file, target, ret)` in rdi, rsi, rdx (see
/// [`register_file`](crate::register_file)). It keeps `ret` in rbx and the
/// target in r12 (both saved), makes rbp the frame pointer, reserves the
/// stack block rounded up to 16 bytes and copies it there with `rep
/// movsq` (through rsi, rdi and rcx, loaded afterwards: the file is read
/// through r11), loads xmm0–7, the six GP argument registers and rax,
/// calls, and stores rax, rdx and the low halves of xmm0 and xmm1.
///
/// ```text
///   return address     rsp % 16 == 8 on entry
///   saved rbx, r12
///   saved rbp          <- rbp, rsp % 16 == 0
///   stack block        rounded up to 16: rsp % 16 == 0 at the call
/// ```
pub fn emit_register_file() -> Emitted {
    use crate::register_file::offset::{EXTRA, FP, GP, STACK, STACK_WORDS};
    let (stack_words, stack, extra) = (STACK_WORDS as i32, STACK as i32, EXTRA as i32);
    let mut ops = Ops::new(Isa::X86_64);
    dynasm!(ops ; .arch x64 ; push rbx);
    ops.frame(below_rbx(0));
    dynasm!(ops ; .arch x64 ; push r12);
    ops.frame(below_rbx(8).saving(reg::R12, -24));
    dynasm!(ops ; .arch x64 ; push rbp);
    ops.frame(below_rbx(16).saving(reg::R12, -24).saving(reg::RBP, -32));
    dynasm!(ops ; .arch x64 ; mov rbp, rsp);
    // From here the stack block's size is known only at run time: the CFA
    // is rbp + 32.
    ops.frame(
        Frame::at(reg::RBP, 32)
            .saving(reg::RBX, -16)
            .saving(reg::R12, -24)
            .saving(reg::RBP, -32),
    );
    dynasm!(ops
        ; .arch x64
        ; mov rbx, rdx
        ; mov r12, rsi
        ; mov r11, rdi
        // The stack block: rcx words from the file to the frame, in a loop
        // (rep movsq costs tens of cycles to start, even for no words).
        ; mov rcx, QWORD [r11 + stack_words]
        ; lea rax, [rcx * 8 + 15]
        ; and rax, -16
        ; sub rsp, rax
        ; mov rsi, QWORD [r11 + stack]
        ; xor eax, eax
        ; test rcx, rcx
        ; jz >copied
        ; copy:
        ; mov rdx, QWORD [rsi + rax * 8]
        ; mov QWORD [rsp + rax * 8], rdx
        ; inc rax
        ; cmp rax, rcx
        ; jb <copy
        ; copied:
    );
    for n in 0..8u8 {
        let at = (FP + 8 * u32::from(n)) as i32;
        dynasm!(ops ; .arch x64 ; movsd Rx(n), QWORD [r11 + at]);
    }
    for (i, &reg) in GP_ARGS.iter().enumerate() {
        let at = (GP + 8 * i as u32) as i32;
        dynasm!(ops ; .arch x64 ; mov Rq(reg), QWORD [r11 + at]);
    }
    dynasm!(ops
        ; .arch x64
        ; mov rax, QWORD [r11 + extra]
        ; call r12
        ; mov QWORD [rbx], rax
        ; mov QWORD [rbx + 8], rdx
        ; movsd QWORD [rbx + 16], xmm0
        ; movsd QWORD [rbx + 24], xmm1
        ; mov rsp, rbp
        ; pop rbp
    );
    ops.frame(below_rbx(8).saving(reg::R12, -24));
    dynasm!(ops ; .arch x64 ; pop r12);
    ops.frame(below_rbx(0));
    dynasm!(ops ; .arch x64 ; pop rbx);
    ops.entry_frame();
    dynasm!(ops ; .arch x64 ; ret);
    let (code, unwind) = ops
        .finish()
        .expect("the register-file stub's jumps go to its own labels");
    Emitted { code, unwind }
}

/// Compares the library's closed cell with zero and jumps to the returned
/// label, placed by [`emit_closed_path`], when it is set. Leaves the cell's
/// address in r11, which nothing else uses before the target is reached.
fn check_closed(ops: &mut Ops, guard: Guard) -> DynamicLabel {
    let closed = ops.new_dynamic_label();
    dynasm!(ops
        ; .arch x64
        ; mov r11, QWORD guard.cell as i64
        ; cmp BYTE [r11], 0
        ; jne =>closed
    );
    closed
}

/// The closed path, entered from the first instructions with the entry's
/// registers untouched but r11 (the cell) and rsp % 16 == 8: store 0 to
/// the packed return slot (packed entry), call `on_closed(cell, target)`
/// (a function of the plan's ABI, its arguments in the first two GP
/// argument registers) aligned, above the shadow space it may write,
/// return 0 as an integer and as a float, whichever the caller reads.
fn emit_closed_path(
    ops: &mut Ops,
    plan: &Plan,
    at: &Placement,
    guard: Guard,
    closed: DynamicLabel,
) {
    let spec = plan.abi.spec();
    let [first, second, third] = entry_registers(spec);
    dynasm!(ops ; .arch x64 ; =>closed);
    // Entered from the check, before the entry changed its frame.
    ops.entry_frame();
    if plan.entry == Entry::Packed {
        // `ret` is the packed entry's second argument.
        zero_return(ops, plan.ret, second);
    }
    dynasm!(ops ; .arch x64 ; mov Rq(first), r11);
    match (at.target, plan.entry) {
        (Target::Known(target), _) => {
            dynasm!(ops ; .arch x64 ; mov Rq(second), QWORD target as i64)
        }
        // A value entry's target is its second argument: in place already,
        // which the move to the first left alone.
        (Target::Argument, Entry::Value) => {}
        (Target::Argument, _) => dynasm!(ops ; .arch x64 ; mov Rq(second), Rq(third)),
        (Target::Register, _) => unreachable!("emit refuses a guard with the target in r11"),
    }
    // At most 32 bytes of shadow space: 8 + 32 realigns rsp and fits a
    // byte.
    let frame = 8 + spec.shadow_bytes as i8;
    dynasm!(ops ; .arch x64 ; sub rsp, BYTE frame);
    ops.frame(below_return(i32::from(frame)));
    branch(ops, at.base, guard.on_closed, Branch::Call);
    dynasm!(ops ; .arch x64 ; add rsp, BYTE frame);
    ops.entry_frame();
    dynasm!(ops
        ; .arch x64
        ; xor eax, eax
        ; xorps xmm0, xmm0
        ; ret
    );
}

/// An argument's location as the trampoline sees it.
#[derive(Clone, Copy)]
enum Operand {
    /// A memory operand `[reg + disp]`.
    Mem(u8, i32),
    /// A GP register, by hardware number.
    Gp(u8),
    /// An xmm register.
    Xmm(u8),
}

/// Rounds stack bytes up to keep rsp 16-byte aligned.
fn align16(bytes: u32) -> i32 {
    // At most Limits::EMITTER_MAX_ARGS (512) slots of 8 bytes: 4,096 bytes,
    // far below i32::MAX.
    bytes.next_multiple_of(16) as i32
}

fn emit_packed_entry(ops: &mut Ops, plan: &Plan, base: u64, target: Target) {
    let spec = plan.abi.spec();
    let [_, ret, shape_target] = entry_registers(spec);
    // The shadow space and the target's stack arguments; a target passed
    // as data waits in the frame's top 8 bytes, above them, for the call
    // through memory.
    let below = spec.shadow_bytes + plan.stack_bytes;
    let frame = match target {
        Target::Known(_) => align16(below),
        Target::Argument => align16(below + 8),
        Target::Register => unreachable!("emit refuses a packed entry with the target in r11"),
    };
    // Save rbx and keep `ret` in it across the call; the push realigns rsp.
    dynasm!(ops ; .arch x64 ; push rbx);
    ops.frame(below_rbx(0));
    dynasm!(ops ; .arch x64 ; mov rbx, Rq(ret));
    if frame > 0 {
        dynasm!(ops ; .arch x64 ; sub rsp, frame);
        ops.frame(below_rbx(frame));
    }
    if target == Target::Argument {
        dynasm!(ops ; .arch x64 ; mov QWORD [rsp + frame - 8], Rq(shape_target));
    }
    load_arguments(ops, plan);
    // A struct returned through memory goes to the return buffer, whose
    // address the callee takes in the first argument register.
    if plan.ret_pass == ReturnPass::Memory {
        dynasm!(ops ; .arch x64 ; mov Rq(spec.gp_args[0]), rbx);
    }
    set_vector_count(ops, plan);
    match target {
        Target::Known(target) => branch(ops, base, target, Branch::Call),
        Target::Argument => dynasm!(ops ; .arch x64 ; call QWORD [rsp + frame - 8]),
        Target::Register => unreachable!("emit refuses a packed entry with the target in r11"),
    }
    store_return(ops, plan);
    if frame > 0 {
        dynasm!(ops ; .arch x64 ; add rsp, frame);
        ops.frame(below_rbx(0));
    }
    dynasm!(ops ; .arch x64 ; pop rbx);
    ops.entry_frame();
    dynasm!(ops ; .arch x64 ; ret);
}

/// The registers a packed entry finds `args`, `ret` and a shape stub's
/// target in: its first three GP argument registers (rdi, rsi, rdx on
/// System V; rcx, rdx, r8 on Win64).
fn entry_registers(spec: &AbiSpec) -> [u8; 3] {
    [spec.gp_args[0], spec.gp_args[1], spec.gp_args[2]]
}

/// Loads every argument of a packed plan (the packed and value entries)
/// from the slot array in `args` (the first GP argument register) to where
/// the target expects it: moves the slot array to r10 (`args` is an
/// argument register), then makes the plan's moves in order, a stack
/// argument to `[rsp + shadow + offset]`. Writes the argument registers,
/// their stack slots, r10, r11 (the address of the struct whose pieces are
/// moving) and rax (scratch for stack arguments and for composing a struct
/// piece). The slot array is not needed after.
fn load_arguments(ops: &mut Ops, plan: &Plan) {
    let spec = plan.abi.spec();
    let args = spec.gp_args[0];
    // At most 32 bytes of shadow space.
    let outgoing = spec.shadow_bytes as i32;
    // The slot array's register is an argument register: read the slots
    // through r10.
    dynasm!(ops ; .arch x64 ; mov r10, Rq(args));
    // Which struct's address r11 holds, so that its pieces load it once.
    let mut loaded = None;
    for arg in &plan.args {
        match arg.from {
            Source::Slot(i) => {
                // Slot index below Limits::EMITTER_MAX_ARGS (512): the
                // displacement is at most 4,088.
                let slot = Operand::Mem(R10, 8 * i as i32);
                move_arg(ops, spec, arg.ty, slot, arg.to, outgoing);
            }
            Source::Field {
                slot,
                offset,
                bytes,
            } => {
                if loaded != Some(slot) {
                    // Slot below Limits::EMITTER_MAX_ARGS (512): the
                    // displacement fits.
                    let disp = 8 * slot as i32;
                    dynasm!(ops ; .arch x64 ; mov r11, QWORD [r10 + disp]);
                    loaded = Some(slot);
                }
                move_field(ops, spec, arg.ty, offset, bytes, arg.to, outgoing);
            }
            Source::StackAddress(at) => move_address(ops, spec, at, arg.to, outgoing),
            Source::Native(_) => unreachable!("packed plans read slots and structs through them"),
        }
    }
}

/// The receiver entry, its target known or in r11 (`Target::Register`).
fn emit_receiver_entry(ops: &mut Ops, plan: &Plan, base: u64, target: Target) {
    let spec = plan.abi.spec();
    // At most 32 bytes of shadow space.
    let shadow = spec.shadow_bytes as i32;
    // Without a frame, incoming and outgoing stack arguments both sit above
    // the return address (and the shadow space); with one, the incoming
    // ones also sit above it.
    let (frame, incoming, outgoing) = if plan.tail_calls() {
        (0, 8 + shadow, 8 + shadow)
    } else {
        let frame = align16(spec.shadow_bytes + plan.stack_bytes) + 8;
        dynasm!(ops ; .arch x64 ; sub rsp, frame);
        ops.frame(below_return(frame));
        (frame, frame + 8 + shadow, shadow)
    };
    // In argument order each destination held an argument already moved
    // (or the receiver), and stack destinations never lie above their
    // sources, so moving in order never overwrites a pending source. The
    // moves write only argument registers, their stack slots and rax (a
    // receiver plan has no struct, whose pieces go through r11), so a
    // target in r11 survives them and `al` below.
    for arg in &plan.args {
        let Source::Native(from) = arg.from else {
            unreachable!("receiver plans read native locations")
        };
        let from = match from {
            Loc::Gp(n) => Operand::Gp(spec.gp_args[usize::from(n)]),
            Loc::Fp(n) => Operand::Xmm(n),
            // Stack offsets are below 8 × Limits::EMITTER_MAX_ARGS (4,096
            // bytes): they fit.
            Loc::Stack(off) => Operand::Mem(RSP, incoming + off as i32),
        };
        move_arg(ops, spec, arg.ty, from, arg.to, outgoing);
    }
    set_vector_count(ops, plan);
    let reach = |ops: &mut Ops, kind| match target {
        Target::Known(target) => branch(ops, base, target, kind),
        Target::Register => branch_register(ops, kind),
        Target::Argument => unreachable!("emit refuses a receiver entry with the target as data"),
    };
    if plan.tail_calls() {
        reach(ops, Branch::Jump);
        return;
    }
    reach(ops, Branch::Call);
    extend(ops, plan.ret, Width::W32);
    dynasm!(ops ; .arch x64 ; add rsp, frame);
    ops.entry_frame();
    dynasm!(ops ; .arch x64 ; ret);
}

/// Moves one argument from `from` to the target's location `to`, reading
/// only its declared width and extending it. Stack destinations are at
/// `[rsp + outgoing + offset]` and go through rax.
fn move_arg(ops: &mut Ops, spec: &AbiSpec, ty: Type, from: Operand, to: Loc, outgoing: i32) {
    match to {
        Loc::Gp(n) => load_gp(ops, spec.gp_args[usize::from(n)], ty, from),
        Loc::Fp(n) => load_xmm(ops, n, ty, from),
        Loc::Stack(off) => {
            load_gp(ops, RAX, ty, from);
            // Stack offsets are below 8 × Limits::EMITTER_MAX_ARGS (4,096
            // bytes): they fit.
            let disp = outgoing + off as i32;
            dynasm!(ops ; .arch x64 ; mov QWORD [rsp + disp], rax);
        }
    }
}

/// Passes the address `at` bytes above the first stack argument slot
/// (`[rsp + outgoing]`), where a struct was copied, as the pointer argument
/// at `to`.
fn move_address(ops: &mut Ops, spec: &AbiSpec, at: u32, to: Loc, outgoing: i32) {
    // Below Limits::EMITTER_MAX_STACK: the displacement fits.
    let disp = outgoing + at as i32;
    match to {
        Loc::Gp(n) => dynasm!(ops ; .arch x64 ; lea Rq(spec.gp_args[usize::from(n)]), [rsp + disp]),
        Loc::Stack(off) => {
            let slot = outgoing + off as i32;
            dynasm!(ops
                ; .arch x64
                ; lea rax, [rsp + disp]
                ; mov QWORD [rsp + slot], rax
            );
        }
        Loc::Fp(_) => unreachable!("an address travels in a GP register or on the stack"),
    }
}

/// Moves one piece of a struct argument, `bytes` bytes at `offset` in the
/// struct whose address is in r11, to `to`: a GP register (composed from
/// naturally aligned chunks through rax), an xmm register (`ty` `f32` or
/// `f64`), or a stack slot at `[rsp + outgoing + offset]` (copied chunk by
/// chunk through rax).
fn move_field(
    ops: &mut Ops,
    spec: &AbiSpec,
    ty: Type,
    offset: u32,
    bytes: u8,
    to: Loc,
    outgoing: i32,
) {
    // Below StructType::MAX_SIZE (4,096): the displacement fits.
    let at = offset as i32;
    match to {
        Loc::Gp(n) => {
            let dst = spec.gp_args[usize::from(n)];
            for (rel, size) in chunks(u32::from(bytes)) {
                let (src, reg) = (at + rel as i32, if rel == 0 { dst } else { RAX });
                match size {
                    8 => dynasm!(ops ; .arch x64 ; mov Rq(reg), QWORD [r11 + src]),
                    4 => dynasm!(ops ; .arch x64 ; mov Rd(reg), DWORD [r11 + src]),
                    2 => dynasm!(ops ; .arch x64 ; movzx Rd(reg), WORD [r11 + src]),
                    _ => dynasm!(ops ; .arch x64 ; movzx Rd(reg), BYTE [r11 + src]),
                }
                if rel > 0 {
                    // Chunks after the first go above it: rel is below 8.
                    let shift = 8 * rel as i8;
                    dynasm!(ops
                        ; .arch x64
                        ; shl rax, shift
                        ; or Rq(dst), rax
                    );
                }
            }
        }
        Loc::Fp(n) => match ty {
            Type::F32 => dynasm!(ops ; .arch x64 ; movss Rx(n), DWORD [r11 + at]),
            _ => dynasm!(ops ; .arch x64 ; movsd Rx(n), QWORD [r11 + at]),
        },
        Loc::Stack(off) => {
            for (rel, size) in chunks(u32::from(bytes)) {
                // Stack offsets are below Limits::EMITTER_MAX_STACK.
                let (src, dst) = (at + rel as i32, outgoing + (off + rel) as i32);
                match size {
                    8 => dynasm!(ops
                        ; .arch x64
                        ; mov rax, QWORD [r11 + src]
                        ; mov QWORD [rsp + dst], rax
                    ),
                    4 => dynasm!(ops
                        ; .arch x64
                        ; mov eax, DWORD [r11 + src]
                        ; mov DWORD [rsp + dst], eax
                    ),
                    2 => dynasm!(ops
                        ; .arch x64
                        ; movzx eax, WORD [r11 + src]
                        ; mov WORD [rsp + dst], ax
                    ),
                    _ => dynasm!(ops
                        ; .arch x64
                        ; movzx eax, BYTE [r11 + src]
                        ; mov BYTE [rsp + dst], al
                    ),
                }
            }
        }
    }
}

/// Loads an integer, pointer or buffer argument into GP register `dst`.
fn load_gp(ops: &mut Ops, dst: u8, ty: Type, from: Operand) {
    match (ty, from) {
        (Type::I8, Operand::Mem(b, d)) => {
            dynasm!(ops ; .arch x64 ; movsx Rd(dst), BYTE [Rq(b) + d])
        }
        (Type::I8, Operand::Gp(s)) => dynasm!(ops ; .arch x64 ; movsx Rd(dst), Rb(s)),
        (Type::U8 | Type::Bool, Operand::Mem(b, d)) => {
            dynasm!(ops ; .arch x64 ; movzx Rd(dst), BYTE [Rq(b) + d])
        }
        (Type::U8 | Type::Bool, Operand::Gp(s)) => dynasm!(ops ; .arch x64 ; movzx Rd(dst), Rb(s)),
        (Type::I16, Operand::Mem(b, d)) => {
            dynasm!(ops ; .arch x64 ; movsx Rd(dst), WORD [Rq(b) + d])
        }
        (Type::I16, Operand::Gp(s)) => dynasm!(ops ; .arch x64 ; movsx Rd(dst), Rw(s)),
        (Type::U16, Operand::Mem(b, d)) => {
            dynasm!(ops ; .arch x64 ; movzx Rd(dst), WORD [Rq(b) + d])
        }
        (Type::U16, Operand::Gp(s)) => dynasm!(ops ; .arch x64 ; movzx Rd(dst), Rw(s)),
        (Type::I32 | Type::U32, Operand::Mem(b, d)) => {
            dynasm!(ops ; .arch x64 ; mov Rd(dst), DWORD [Rq(b) + d])
        }
        (Type::I32 | Type::U32, Operand::Gp(s)) => dynasm!(ops ; .arch x64 ; mov Rd(dst), Rd(s)),
        (Type::Buffer, _) => {
            // The argument points to a BufferView; pass its `data` (offset
            // 0), or null for a null view.
            load_gp(ops, dst, Type::Pointer, from);
            dynasm!(ops
                ; .arch x64
                ; test Rq(dst), Rq(dst)
                ; jz >null_view
                ; mov Rq(dst), QWORD [Rq(dst)]
                ; null_view:
            );
        }
        // A float's bits: on its way to a stack slot, or a Win64 variadic
        // float's copy in the GP register of its position.
        (Type::F32, Operand::Mem(b, d)) => {
            dynasm!(ops ; .arch x64 ; mov Rd(dst), DWORD [Rq(b) + d])
        }
        (Type::F32, Operand::Xmm(x)) => dynasm!(ops ; .arch x64 ; movd Rd(dst), Rx(x)),
        (Type::F64, Operand::Xmm(x)) => dynasm!(ops ; .arch x64 ; movq Rq(dst), Rx(x)),
        (_, Operand::Mem(b, d)) => dynasm!(ops ; .arch x64 ; mov Rq(dst), QWORD [Rq(b) + d]),
        (_, Operand::Gp(s)) => {
            if s != dst {
                dynasm!(ops ; .arch x64 ; mov Rq(dst), Rq(s));
            }
        }
        (_, Operand::Xmm(_)) => unreachable!("classification never sends an integer through xmm"),
    }
}

/// Loads a float argument into xmm register `dst`.
fn load_xmm(ops: &mut Ops, dst: u8, ty: Type, from: Operand) {
    match (ty, from) {
        (Type::F32, Operand::Mem(b, d)) => {
            dynasm!(ops ; .arch x64 ; movss Rx(dst), DWORD [Rq(b) + d])
        }
        (Type::F64, Operand::Mem(b, d)) => {
            dynasm!(ops ; .arch x64 ; movsd Rx(dst), QWORD [Rq(b) + d])
        }
        (_, Operand::Xmm(s)) => {
            if s != dst {
                dynasm!(ops ; .arch x64 ; movaps Rx(dst), Rx(s));
            }
        }
        _ => unreachable!("classification sends only floats through xmm"),
    }
}

/// Sets `al` to the number of vector registers the target's arguments
/// occupy, at most 8, for variadic targets. Writes all of eax (`xor` for
/// zero), so no partial-register write depends on rax's old value. It comes
/// after the argument moves, which may use rax as scratch.
fn set_vector_count(ops: &mut Ops, plan: &Plan) {
    if plan.abi.spec().varargs != Varargs::AlHoldsVectorCount {
        return;
    }
    let count = plan
        .args
        .iter()
        .filter(|arg| matches!(arg.to, Loc::Fp(_)))
        .count();
    match count {
        0 => dynasm!(ops ; .arch x64 ; xor eax, eax),
        // At most 8 vector argument registers: the count fits.
        n => dynasm!(ops ; .arch x64 ; mov eax, n as i32),
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Branch {
    Call,
    Jump,
}

/// Calls or jumps to `target`: `rel32` when it is within reach of the
/// instruction, through r11 otherwise.
fn branch(ops: &mut Ops, base: u64, target: u64, kind: Branch) {
    let next = base.wrapping_add(ops.offset().0 as u64 + 5);
    match i32::try_from(target.wrapping_sub(next) as i64) {
        Ok(rel) => {
            let opcode: u8 = if kind == Branch::Call { 0xe8 } else { 0xe9 };
            dynasm!(ops ; .arch x64 ; .u8 opcode ; .i32 rel);
        }
        Err(_) => {
            dynasm!(ops ; .arch x64 ; mov r11, QWORD target as i64);
            match kind {
                Branch::Call => dynasm!(ops ; .arch x64 ; call r11),
                Branch::Jump => dynasm!(ops ; .arch x64 ; jmp r11),
            }
        }
    }
}

/// Calls or jumps to the target in r11, where a static thunk put it.
fn branch_register(ops: &mut Ops, kind: Branch) {
    match kind {
        Branch::Call => dynasm!(ops ; .arch x64 ; call Rq(THUNK_REGISTER)),
        Branch::Jump => dynasm!(ops ; .arch x64 ; jmp Rq(THUNK_REGISTER)),
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Width {
    W32,
    W64,
}

/// Sign- or zero-extends an integer return value in rax to `width` bits.
/// 64-bit values, floats and `void` are left alone.
fn extend(ops: &mut Ops, ty: Type, width: Width) {
    match (ty, width) {
        (Type::I8, Width::W32) => dynasm!(ops ; .arch x64 ; movsx eax, al),
        (Type::I8, Width::W64) => dynasm!(ops ; .arch x64 ; movsx rax, al),
        (Type::U8 | Type::Bool, _) => dynasm!(ops ; .arch x64 ; movzx eax, al),
        (Type::I16, Width::W32) => dynasm!(ops ; .arch x64 ; movsx eax, ax),
        (Type::I16, Width::W64) => dynasm!(ops ; .arch x64 ; movsx rax, ax),
        (Type::U16, _) => dynasm!(ops ; .arch x64 ; movzx eax, ax),
        (Type::I32, Width::W64) => dynasm!(ops ; .arch x64 ; movsxd rax, eax),
        (Type::U32, Width::W64) => dynasm!(ops ; .arch x64 ; mov eax, eax),
        _ => {}
    }
}

/// Stores the return value to the return buffer at rbx: a scalar widened
/// to 64 bits; a struct's pieces from rax, rdx, xmm0 and xmm1 (the first
/// piece whole, since the buffer holds at least 8 bytes; the second one
/// exactly, in naturally aligned chunks). A struct returned through memory
/// is there already.
fn store_return(ops: &mut Ops, plan: &Plan) {
    match &plan.ret_pass {
        ReturnPass::Value => store_scalar_return(ops, plan.ret),
        ReturnPass::Memory => {}
        ReturnPass::Pieces(pieces) => {
            for piece in pieces {
                // Below 16: the displacement fits.
                let at = piece.offset as i32;
                match piece.ty {
                    Type::F32 => dynasm!(ops ; .arch x64 ; movss DWORD [rbx + at], Rx(piece.reg)),
                    Type::F64 => dynasm!(ops ; .arch x64 ; movsd QWORD [rbx + at], Rx(piece.reg)),
                    _ => {
                        let src = plan.abi.spec().gp_returns[usize::from(piece.reg)];
                        let bytes = if at == 0 { 8 } else { u32::from(piece.bytes) };
                        for (rel, size) in chunks(bytes) {
                            let dst = at + rel as i32;
                            match size {
                                8 => dynasm!(ops ; .arch x64 ; mov QWORD [rbx + dst], Rq(src)),
                                4 => dynasm!(ops ; .arch x64 ; mov DWORD [rbx + dst], Rd(src)),
                                2 => dynasm!(ops ; .arch x64 ; mov WORD [rbx + dst], Rw(src)),
                                _ => dynasm!(ops ; .arch x64 ; mov BYTE [rbx + dst], Rb(src)),
                            }
                            // The next chunk, if any, is the bits above.
                            if rel + size < bytes {
                                let shift = 8 * size as i8;
                                dynasm!(ops ; .arch x64 ; shr Rq(src), shift);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Zeroes the packed return buffer at `ret`: a scalar's slot, or `max(8,
/// size)` bytes of a struct, in naturally aligned chunks.
fn zero_return(ops: &mut Ops, ret: Type, buffer: u8) {
    let bytes = match ret {
        Type::Void => 0,
        Type::Struct(layout) => layout.size().max(8),
        _ => 8,
    };
    for (at, size) in chunks(bytes) {
        // Below StructType::MAX_SIZE (4,096): the displacement fits.
        let at = at as i32;
        match size {
            8 => dynasm!(ops ; .arch x64 ; mov QWORD [Rq(buffer) + at], 0),
            4 => dynasm!(ops ; .arch x64 ; mov DWORD [Rq(buffer) + at], 0),
            2 => dynasm!(ops ; .arch x64 ; mov WORD [Rq(buffer) + at], 0),
            _ => dynasm!(ops ; .arch x64 ; mov BYTE [Rq(buffer) + at], 0),
        }
    }
}

/// Stores a scalar return value to the slot at rbx, widened to 64 bits.
fn store_scalar_return(ops: &mut Ops, ret: Type) {
    match ret {
        Type::Void => {}
        Type::F32 => dynasm!(ops
            ; .arch x64
            ; movd eax, xmm0
            ; mov QWORD [rbx], rax
        ),
        Type::F64 => dynasm!(ops ; .arch x64 ; movsd QWORD [rbx], xmm0),
        _ => {
            extend(ops, ret, Width::W64);
            dynasm!(ops ; .arch x64 ; mov QWORD [rbx], rax);
        }
    }
}

#[cfg(all(test, feature = "disasm"))]
mod tests {
    use super::*;
    use crate::{classify, disasm::disassemble, emit, Abi, Limits, Signature};

    fn listing(sig: &str, entry: Entry, target: u64) -> String {
        let sig: Signature = sig.parse().unwrap();
        let plan = classify(&sig, Abi::SysV64, entry, &Limits::default()).unwrap();
        disassemble(
            Abi::SysV64,
            &emit(&plan, &Placement::at(0x1000, target)),
            0x1000,
        )
        .join("\n")
    }

    #[test]
    fn narrow_arguments_are_extended_to_32_bits() {
        let code = listing("(i8, u8, i16, u16, bool) -> void", Entry::Packed, 0x2000);
        for insn in [
            "movsbl  (%r10),%edi",
            "movzbl  8(%r10),%esi",
            "movswl  0x10(%r10),%edx",
            "movzwl  0x18(%r10),%ecx",
            "movzbl  0x20(%r10),%r8d",
        ] {
            assert!(code.contains(insn), "missing {insn}:\n{code}");
        }
    }

    #[test]
    fn near_targets_use_rel32_and_far_ones_r11() {
        let near = listing("() -> void", Entry::Receiver, 0x2000);
        assert!(near.contains("jmp     0x0000000000002000"), "{near}");
        let far = listing("() -> void", Entry::Receiver, 0x7f00_0000_0000);
        assert!(far.contains("movabs  $0x7F0000000000,%r11"), "{far}");
        assert!(far.contains("jmp     *%r11"), "{far}");
        let far_call = listing("() -> i32", Entry::Packed, 0x7f00_0000_0000);
        assert!(far_call.contains("call    *%r11"), "{far_call}");
    }

    #[test]
    fn a_target_in_r11_survives_every_receiver_move() {
        for sig in [
            "() -> void",
            "(i8, u16, buffer) -> u8",
            "(f32, f64, i32) -> f32",
            "(i64, i64, i64, i64, i64, i64, i64, buffer, f32) -> bool",
            "(i32, i32, i32, i32, i32, i32, i32, i32, i16, i8) -> void",
            "(f64, f64, f64, f64, f64, f64, f64, f64, f64, f32, u16) -> u16",
        ] {
            let sig: Signature = sig.parse().unwrap();
            let plan = classify(&sig, Abi::SysV64, Entry::Receiver, &Limits::default()).unwrap();
            let code = disassemble(Abi::SysV64, &emit(&plan, &Placement::register()), 0);
            let branch = if plan.tail_calls() {
                "jmp     *%r11"
            } else {
                "call    *%r11"
            };
            let at = code.iter().position(|l| l.ends_with(branch)).unwrap();
            if plan.tail_calls() {
                assert_eq!(at, code.len() - 1, "{sig}: {code:#?}");
            }
            for insn in code.iter().take(at) {
                let mut tokens = insn.split(|c: char| !c.is_ascii_alphanumeric());
                assert!(!tokens.any(|t| t.starts_with("r11")), "{sig}: {insn}");
            }
            // `al` is set last, right before the branch.
            let al = &code[at - 1];
            let sets_al = al.ends_with("xor     %eax,%eax")
                || al.contains("mov     $") && al.ends_with(",%eax");
            assert!(sets_al, "{sig}: {al}");
        }
    }

    #[test]
    #[should_panic(expected = "not in r11")]
    fn a_packed_entry_refuses_its_target_in_r11() {
        let sig: Signature = "(i32) -> i32".parse().unwrap();
        let plan = classify(&sig, Abi::SysV64, Entry::Packed, &Limits::default()).unwrap();
        emit(&plan, &Placement::register());
    }

    #[test]
    #[should_panic(expected = "no closed check")]
    fn a_target_in_r11_refuses_a_guard() {
        let sig: Signature = "(i32) -> i32".parse().unwrap();
        let plan = classify(&sig, Abi::SysV64, Entry::Receiver, &Limits::default()).unwrap();
        let at = Placement {
            guard: Some(Guard {
                cell: 0x30_0000,
                on_closed: 0x40_0000,
            }),
            ..Placement::register()
        };
        emit(&plan, &at);
    }

    #[test]
    fn the_most_arguments_encode() {
        // Slot displacements and stack offsets reach 8 × EMITTER_MAX_ARGS.
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
            for entry in Entry::ALL {
                let plan = classify(&sig, Abi::SysV64, entry, &limits).unwrap();
                let code = emit(&plan, &Placement::at(0x1000, 0x2000));
                let listing: Vec<String> = disassemble(Abi::SysV64, &code, 0x1000)
                    .iter()
                    .map(|l| l.to_ascii_lowercase())
                    .collect();
                assert!(
                    !listing.iter().any(|l| l.contains("(bad)")),
                    "{entry} {sig}"
                );
                let last = plan.args.last().unwrap();
                if let (Source::Slot(i), Loc::Stack(off)) = (last.from, last.to) {
                    assert_eq!(i as usize, Limits::EMITTER_MAX_ARGS - 1);
                    let disp = format!("{:#x}(%r10)", 8 * i);
                    assert!(
                        listing.iter().any(|l| l.contains(&disp)),
                        "{entry} {sig}: {disp}"
                    );
                    let store = format!("%rax,{off:#x}(%rsp)");
                    assert!(
                        listing.iter().any(|l| l.contains(&store)),
                        "{entry} {sig}: {store}"
                    );
                }
            }
        }
    }

    #[test]
    fn rsp_stays_aligned_at_the_call() {
        // One push (8) plus a multiple of 16 on top of entry's rsp % 16 == 8.
        for n in 0..=16 {
            let sig = format!("({}) -> void", vec!["i64"; n].join(","));
            let code = listing(&sig, Entry::Packed, 0x2000);
            let subs: Vec<&str> = code.lines().filter(|l| l.contains("sub ")).collect();
            for line in subs {
                let imm = line.split('$').nth(1).unwrap().split(',').next().unwrap();
                let imm = i64::from_str_radix(imm.trim_start_matches("0x"), 16).unwrap();
                assert_eq!(imm % 16, 0, "{n} args: {line}");
            }
            assert!(code.contains("push    %rbx"), "{code}");
        }
    }
}
