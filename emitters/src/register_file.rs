//! The register-file stub: one piece of code per ISA that calls any
//! function whose arguments have been laid out in a [`RegisterFile`]. It
//! loads every argument register, `al` (x86_64) or `x8` (AArch64) and a
//! block of stack arguments from the file, calls the target, and stores
//! the raw return registers to a [`ReturnRegisters`]. `jitcall` fills the
//! file from a plan's moves and finishes the return from the plan's
//! return pass, so one stub, compiled in, serves every eligible shape
//! outside the baked set when no executable memory may be created.

use crate::{Abi, Emitted, Isa};

/// What the register-file stub loads before its call. Unused registers
/// may hold anything.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct RegisterFile {
    /// The GP argument registers, in ABI order (rdi, rsi, rdx, rcx, r8, r9
    /// on x86_64, the last two unused; x0–x7 on AArch64).
    pub gp: [u64; 8],
    /// The FP argument registers' low 64 bits (xmm0–7, v0–v7).
    pub fp: [u64; 8],
    /// The stack arguments, `stack_words` of them, copied to the stub's
    /// frame where the target finds them.
    pub stack: *const u64,
    pub stack_words: u64,
    /// `rax` on x86_64 (`al`: the vector registers used, for a variadic
    /// target); `x8` on AArch64 (a memory return's address).
    pub extra: u64,
}

/// The return registers as the target left them.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct ReturnRegisters {
    /// rax, rdx; x0, x1.
    pub gp: [u64; 2],
    /// The low 64 bits of xmm0, xmm1 (the others zero); of v0–v3.
    pub fp: [u64; 4],
}

/// The stub's type.
pub type RegisterFileFn = unsafe extern "C" fn(
    file: *const RegisterFile,
    target: *const std::ffi::c_void,
    ret: *mut ReturnRegisters,
);

/// Byte offsets in a [`RegisterFile`], as the stubs read it.
pub(crate) mod offset {
    use super::RegisterFile;
    use std::mem::offset_of;

    /// The file is 152 bytes: every offset fits any immediate used.
    pub const GP: u32 = offset_of!(RegisterFile, gp) as u32;
    pub const FP: u32 = offset_of!(RegisterFile, fp) as u32;
    pub const STACK: u32 = offset_of!(RegisterFile, stack) as u32;
    pub const STACK_WORDS: u32 = offset_of!(RegisterFile, stack_words) as u32;
    pub const EXTRA: u32 = offset_of!(RegisterFile, extra) as u32;
}

/// The register-file stub for `abi`, if it has one (the ABIs jitcall runs
/// on, [`AbiSpec::hosted`](crate::AbiSpec)). Its code does not depend on
/// where it is placed.
pub fn emit(abi: Abi) -> Option<Vec<u8>> {
    emit_with_unwind(abi).map(|emitted| emitted.code)
}

/// [`emit`], with the stub's unwind information.
pub fn emit_with_unwind(abi: Abi) -> Option<Emitted> {
    let spec = abi.spec();
    spec.hosted.then(|| match spec.isa {
        Isa::X86_64 => crate::x86_64::emit_register_file(),
        Isa::Aarch64 => crate::aarch64::emit_register_file(),
    })
}
