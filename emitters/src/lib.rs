//! The pure half of [jitcall](https://docs.rs/jitcall): the signature model,
//! per-ABI classification and eligibility, and the trampoline emitters.
//!
//! Nothing here maps memory or runs generated code, so every module compiles
//! and is tested on every host; the AArch64 emitter's tests run on x86_64
//! too. The layers can be used on their own:
//!
//! 1. **parse**: [`Signature`] from text (`"(i32, f64) -> u8".parse()`) or
//!    from the JSON object form ([`Signature::from_json`]);
//! 2. **classify**: [`classify`] checks eligibility under [`Limits`] and
//!    assigns each argument its registers for an [`Abi`] and [`Entry`] kind,
//!    giving a [`Plan`] or the [`Ineligible`] rule that failed;
//! 3. **emit**: the per-ABI modules turn a [`Plan`] and its [`Placement`]
//!    into machine code bytes: a trampoline that calls native code
//!    ([`emit`]), or a callback's reverse trampoline that native code calls
//!    ([`emit_callback`]);
//! 4. **unwind**: the same emission records how each piece of code
//!    unwinds ([`emit_with_unwind`], [`Emitted`]), which [`unwind::eh_frame`]
//!    writes as DWARF call frame information for the system unwinder.
//!
//! The `jitcall` crate adds the rest: executable memory, the JIT probe, the
//! libffi fallback and the `Function` API.

pub mod aarch64;
mod abi;
pub mod baked;
mod callback;
mod classify;
#[cfg(feature = "disasm")]
pub mod disasm;
pub mod register_file;
mod signature;
pub mod unwind;
pub mod x86_64;

pub use abi::{
    gp_register_name, Abi, AbiSpec, Counting, Isa, MemoryReturn, StackSlot, StructRules, Varargs,
};
pub use classify::{
    aapcs64, classify, node_gp_cap, sysv64, win64, Arg, Entry, Ineligible, Limits, Loc, Passing,
    Plan, Registers, RetPiece, ReturnPass, Source,
};
pub use signature::{ParseError, ParseErrorKind, Position, Quoted, Signature, StructType, Type};

/// What a `buffer` argument points to: the target receives `data`.
///
/// A null pointer in place of a view passes a null `data`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BufferView {
    pub data: *mut u8,
    pub len: usize,
}

/// `bytes` bytes from an 8-byte-aligned offset as naturally aligned chunks,
/// largest first: `(offset within, size)`, sizes 8, 4, 2, 1. Struct pieces
/// are read and written this way, so that no access goes past the bytes
/// asked for and every access is aligned to its size.
pub(crate) fn chunks(bytes: u32) -> impl Iterator<Item = (u32, u32)> {
    let mut at = 0;
    std::iter::from_fn(move || {
        let left = bytes - at;
        let size = [8, 4, 2, 1].into_iter().find(|&size| size <= left)?;
        at += size;
        Some((at - size, size))
    })
}

/// How a trampoline reaches the function it calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// The function at this address, known when the code is emitted: a
    /// direct branch where it is in reach.
    Known(u64),
    /// The function whose address comes at run time as an argument after
    /// the entry's own: the code is a shape stub, shared by every function
    /// of its shape. The packed entry takes it third ([`ShapeFn`]), the
    /// value entry second ([`ShapeValueFn`]); the receiver entry has no
    /// argument to spare.
    Argument,
    /// The function whose address arrives in the thunk register, put there
    /// by a static thunk that jumps to this code: a receiver-entry stub,
    /// compiled in ahead of time and shared by every function of its
    /// shape. Only the receiver entry takes it, and with no guard (a stub
    /// shared across libraries has no one closed cell to check).
    ///
    /// | ABI | thunk register | the thunk | the stub reaches the target |
    /// |---|---|---|---|
    /// | x86_64 System V | r11 ([`x86_64::THUNK_REGISTER`]) | `mov r11, [slot]; jmp [slot+8]` | `jmp r11`, or `call r11` to narrow the return |
    /// | AArch64 AAPCS64 | x16 ([`aarch64::THUNK_REGISTER`]) | `ldr x16, slot; ldr x17, slot+8; br x17` | `br x16`, or `blr x16` to narrow the return |
    ///
    /// Both are registers a call may clobber that pass no argument, so the
    /// thunk changes nothing the stub's caller passed.
    Register,
}

/// A shape stub: the packed entry of a shape, `unsafe extern "C" fn(args,
/// ret, target)`, the target passed as data (see [`Target::Argument`]).
/// Its code does not depend on where it is placed, so it can be compiled
/// in at build time.
pub type ShapeFn =
    unsafe extern "C" fn(args: *const u64, ret: *mut u64, target: *const std::ffi::c_void);

/// The value entry ([`Entry::Value`]), for integer-class and `void`
/// returns: `args` points to one 64-bit slot per argument, in the packed
/// encoding (as for the packed entry); the return comes back as the target
/// left it in the integer return register (rax, x0): 64-bit integers,
/// pointers and functions whole, 32-bit integers in the low half and
/// narrow integers in the low 8 or 16 bits, the rest unspecified (the
/// caller extends them); garbage for `void`.
///
/// The entry never extends the return, so that it can jump to the target
/// (tail-call) whenever the target takes no stack arguments
/// ([`Plan::tail_calls`]). A closed library's guard returns 0.
pub type ValueFn = unsafe extern "C" fn(args: *const u64) -> u64;

/// The value entry for `f32` and `f64` returns: the same code as
/// [`ValueFn`], read through the FP return register (xmm0, v0): an `f64`
/// whole, an `f32` in its low 32 bits with the rest unspecified.
pub type FloatValueFn = unsafe extern "C" fn(args: *const u64) -> f64;

/// A value entry's shape stub ([`Target::Argument`]): [`ValueFn`] with the
/// target as a second argument, so that one copy serves every function of
/// its shape.
pub type ShapeValueFn =
    unsafe extern "C" fn(args: *const u64, target: *const std::ffi::c_void) -> u64;

/// [`ShapeValueFn`] read through the FP return register, for `f32` and
/// `f64` returns (see [`FloatValueFn`]).
pub type FloatShapeValueFn =
    unsafe extern "C" fn(args: *const u64, target: *const std::ffi::c_void) -> f64;

/// Where a trampoline is placed and the addresses its code refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    /// The address the code runs at. The bytes depend on it only through
    /// the reach of direct branches: the code must run there exactly.
    pub base: u64,
    /// The function the trampoline calls.
    pub target: Target,
    /// A closed-library check at entry, for functions bound from a library
    /// that can be closed.
    pub guard: Option<Guard>,
}

impl Placement {
    /// Code at `base` calling `target`, with no guard.
    pub const fn at(base: u64, target: u64) -> Placement {
        Placement {
            base,
            target: Target::Known(target),
            guard: None,
        }
    }

    /// A shape stub (the target an argument), placed anywhere, no guard.
    pub const fn shape() -> Placement {
        Placement {
            base: 0,
            target: Target::Argument,
            guard: None,
        }
    }

    /// A receiver-entry stub reached through a static thunk (the target in
    /// the thunk register, [`Target::Register`]), placed anywhere, no
    /// guard.
    pub const fn register() -> Placement {
        Placement {
            base: 0,
            target: Target::Register,
            guard: None,
        }
    }
}

/// A check a guarded trampoline makes before anything else: is the library
/// its target came from closed?
///
/// The open path costs one load and one forward branch, predicted not
/// taken. Once `*cell` is non-zero, the trampoline stores 0 to the packed
/// return slot (a packed entry whose return is not `void`), calls
/// `on_closed(cell, target)` (`extern "C" fn(*const u8, *const c_void)`,
/// called with the native ABI's alignment), and returns 0 in the integer
/// and floating-point return registers, without reaching the target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Guard {
    /// The address of a byte: zero while the library is open, non-zero
    /// once it is closed.
    pub cell: u64,
    /// What a closed call calls instead of the target.
    pub on_closed: u64,
}

/// Emitted code and how it unwinds, from the same emission.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Emitted {
    /// The machine code.
    pub code: Vec<u8>,
    /// Where the caller's frame is at each of its instructions.
    pub unwind: unwind::Unwind,
}

/// Emits the trampoline for `plan`, placed and linked as `at` says.
pub fn emit(plan: &Plan, at: &Placement) -> Vec<u8> {
    match plan.abi.isa() {
        Isa::X86_64 => x86_64::emit_code(plan, at),
        Isa::Aarch64 => aarch64::emit_code(plan, at),
    }
}

/// [`emit`], with the trampoline's unwind information.
pub fn emit_with_unwind(plan: &Plan, at: &Placement) -> Emitted {
    match plan.abi.isa() {
        Isa::X86_64 => x86_64::emit(plan, at),
        Isa::Aarch64 => aarch64::emit(plan, at),
    }
}

/// An address no direct branch from address 0 reaches, with every 16-bit
/// chunk non-zero, so that reaching or building it takes the longest
/// instruction sequence.
const WORST_ADDRESS: u64 = 0x7111_2222_3333_4444;

/// A callback's handler: what its reverse trampoline calls, with `data` as
/// given at emit time, one packed slot per argument at `args` and the
/// return buffer at `ret` (see [`emit_callback`]).
pub type CallbackHandler =
    unsafe extern "C" fn(data: *mut std::ffi::c_void, args: *const u64, ret: *mut u64);

/// Where a callback's reverse trampoline is placed and what it calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallbackPlacement {
    /// The address the code runs at. The bytes depend on it only through
    /// the reach of a direct call to the handler (x86_64): the code must
    /// run there exactly.
    pub base: u64,
    /// The [`CallbackHandler`] the trampoline calls.
    pub handler: u64,
    /// The handler's first argument, built into the code.
    pub data: u64,
}

/// Emits the reverse trampoline ("callback") of `plan`: native code with
/// the C ABI of `plan`'s signature that, called from C, writes each
/// argument to a packed slot on its stack and calls
/// `handler(data, slots, ret)` ([`CallbackHandler`]), then returns what
/// the handler wrote to `ret` in the native return registers.
///
/// `plan` is the packed plan of the signature ([`Entry::Packed`], from
/// [`classify()`], not a [`Plan::shape`]): its moves' `to` locations are
/// exactly where a native caller puts each argument, and its `ret_pass`
/// how the return value goes back. The slots the handler sees follow the
/// packed encoding, clean:
///
/// - integers sign- or zero-extended to 64 bits as their type says;
///   `f32` bits in the low half with zeros above, `f64` bits;
/// - a `buffer` is the pointer the native caller passed, **not** the
///   address of a [`BufferView`] as in the packed entry's slots (a C
///   caller passes a `const void *`);
/// - a struct is the address of its bytes, valid during the call: a copy
///   on the trampoline's stack when it came in registers, the caller's
///   stack arguments or the caller's copy (AArch64, passed by reference)
///   otherwise.
///
/// The return buffer holds at least `max(8, size)` bytes, 8-byte aligned.
/// The handler writes a scalar return in the packed encoding (narrow
/// integers extended; the trampoline extends them again from the
/// declared width) and a struct's bytes. A struct the ABI returns through
/// memory is written straight to the caller's buffer, which the handler
/// gets as `ret` (on x86_64 the trampoline also returns its address in
/// rax, as the psABI requires).
///
/// `emitters/src/x86_64/callback.rs` and `emitters/src/aarch64/callback.rs`
/// open with their register tables and frame diagrams.
///
/// # Panics
///
/// Preconditions, checked: `plan` is a packed plan, of no variadic
/// signature ([`Plan::variadic`]: a C caller of a variadic function
/// type may pass any variadic arguments, which one call shape cannot
/// read), for an ABI jitcall runs on ([`AbiSpec::hosted`]). A Win64
/// reverse trampoline would call a System V handler and would have to save
/// what Win64 preserves and System V does not (rsi, rdi, xmm6–15); an
/// Apple one would read stack arguments at their natural size. Neither is
/// emitted yet.
pub fn emit_callback(plan: &Plan, at: &CallbackPlacement) -> Vec<u8> {
    emit_callback_with_unwind(plan, at).code
}

/// [`emit_callback`], with the reverse trampoline's unwind information.
///
/// # Panics
///
/// As [`emit_callback`].
pub fn emit_callback_with_unwind(plan: &Plan, at: &CallbackPlacement) -> Emitted {
    assert!(
        plan.abi.spec().hosted,
        "callbacks are emitted for x86_64 System V and Linux AAPCS64, not {}",
        plan.abi
    );
    match plan.abi.isa() {
        Isa::X86_64 => x86_64::emit_callback(plan, at),
        Isa::Aarch64 => aarch64::emit_callback(plan, at),
    }
}

/// An upper bound on `emit_callback(plan, at).len()` for every placement
/// `at`: the size with the handler out of direct-call reach and both
/// addresses taking the longest immediate sequence.
pub fn emit_callback_bound(plan: &Plan) -> usize {
    let worst = CallbackPlacement {
        base: 0,
        handler: WORST_ADDRESS,
        data: WORST_ADDRESS,
    };
    emit_callback(plan, &worst).len()
}

/// An upper bound on `emit(plan, at).len()` for every placement `at` with a
/// known target, with a guard or without, for every entry kind: the size
/// with every address out of direct-branch reach. (A shape stub's size
/// does not depend on where it goes: emit it once and use its length.)
pub fn emit_bound(plan: &Plan, guarded: bool) -> usize {
    let guard = guarded.then_some(Guard {
        cell: WORST_ADDRESS,
        on_closed: WORST_ADDRESS,
    });
    let worst = Placement {
        base: 0,
        target: Target::Known(WORST_ADDRESS),
        guard,
    };
    emit(plan, &worst).len()
}
