//! The one-time probe of whether this process may create executable memory.

use std::fmt;
use std::sync::OnceLock;

use crate::memory::{CodeBlock, MemoryRefused};
use crate::Abi;

/// Why the JIT tier is unavailable for the whole process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JitUnavailable {
    /// `JITCALL_DISABLE_JIT` was set (to anything but empty or `0`).
    DisabledByEnv,
    /// The host's calling convention has no emitter.
    UnsupportedAbi,
    /// The probe's own mapping was refused.
    Refused(MemoryRefused),
}

impl fmt::Display for JitUnavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JitUnavailable::DisabledByEnv => f.write_str("disabled by JITCALL_DISABLE_JIT"),
            JitUnavailable::UnsupportedAbi => f.write_str("no emitter for this host's ABI"),
            JitUnavailable::Refused(refused) => write!(f, "JIT memory refused: {refused}"),
        }
    }
}

/// The return instruction the probe writes for the host: `ret` on AArch64
/// (0xd65f03c0, little-endian), `ret` (0xc3) on x86_64.
const RETURN_INSTRUCTION: &[u8] = if cfg!(target_arch = "aarch64") {
    &[0xc0, 0x03, 0x5f, 0xd6]
} else {
    &[0xc3]
};

fn probe() -> Result<(), JitUnavailable> {
    let disabled =
        std::env::var_os("JITCALL_DISABLE_JIT").is_some_and(|v| !v.is_empty() && v != "0");
    if disabled {
        return Err(JitUnavailable::DisabledByEnv);
    }
    if Abi::host().is_none() {
        return Err(JitUnavailable::UnsupportedAbi);
    }
    // Map a page RW, write a return instruction, flush and flip to RX. The
    // page is never executed: success of the flip is the answer, and running
    // fresh code where it is forbidden could kill the process.
    CodeBlock::build(1, None, |_, page| {
        page[..RETURN_INSTRUCTION.len()].copy_from_slice(RETURN_INSTRUCTION);
    })
    .map(drop)
    .map_err(JitUnavailable::Refused)
}

/// Whether this process may create executable memory, and if not, why.
///
/// Computed once per process, on first use, and cached: every caller on
/// every thread sees the same final answer.
pub fn jit_status() -> Result<(), JitUnavailable> {
    static STATUS: OnceLock<Result<(), JitUnavailable>> = OnceLock::new();
    *STATUS.get_or_init(probe)
}

/// Whether the JIT tier is available: [`jit_status`] succeeded.
///
/// # Examples
///
/// ```
/// if !jitcall::jit_available() {
///     eprintln!("calls will go through libffi");
/// }
/// ```
pub fn jit_available() -> bool {
    jit_status().is_ok()
}
