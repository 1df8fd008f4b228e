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
//! 3. **emit**: the per-ABI modules turn a [`Plan`] into machine code bytes.
//!
//! The `jitcall` crate adds the rest: executable memory, the JIT probe, the
//! libffi fallback and the `Function` API.

pub mod aarch64;
mod classify;
#[cfg(feature = "disasm")]
pub mod disasm;
mod signature;
pub mod x86_64;

pub use classify::{
    classify, node_gp_cap, Abi, Arg, Entry, Ineligible, Limits, Loc, Plan, Registers, Source,
};
pub use signature::{ParseError, ParseErrorKind, Position, Quoted, Signature, Type};

/// What a `buffer` argument points to: the target receives `data`.
///
/// A null pointer in place of a view passes a null `data`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BufferView {
    pub data: *mut u8,
    pub len: usize,
}

/// Emits the trampoline for `plan`, to be placed at address `base`, calling
/// the function at `target`.
///
/// The bytes depend on `base` only through the reach of a direct branch to
/// `target`: the code must run at `base` exactly.
pub fn emit(plan: &Plan, base: u64, target: u64) -> Vec<u8> {
    match plan.abi {
        Abi::SysV64 => x86_64::emit(plan, base, target),
        Abi::Aapcs64 => aarch64::emit(plan, base, target),
    }
}

/// A target no direct branch from address 0 reaches, with every 16-bit
/// chunk non-zero, so that building it takes the longest instruction
/// sequence.
const WORST_TARGET: u64 = 0x7111_2222_3333_4444;

/// An upper bound on `emit(plan, base, target).len()` for every `base` and
/// `target`: the size with a target out of direct-branch reach.
pub fn emit_bound(plan: &Plan) -> usize {
    emit(plan, 0, WORST_TARGET).len()
}
