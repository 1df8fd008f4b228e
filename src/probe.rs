//! The one-time probe of whether this process may create executable memory.

use std::fmt;
use std::sync::OnceLock;

use jitcall_emitters::unwind::EhFrame;

use crate::memory::{CodeBlock, MemoryRefused};
use crate::perf_map::Names;
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

/// Whether the environment variable `name` is set to anything but empty
/// or `0`.
fn env_flag(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|v| !v.is_empty() && v != "0")
}

/// What stops any JIT before a mapping is tried: the environment or the
/// host's ABI.
fn precondition() -> Result<(), JitUnavailable> {
    if env_flag("JITCALL_DISABLE_JIT") {
        return Err(JitUnavailable::DisabledByEnv);
    }
    if Abi::host().is_none() {
        return Err(JitUnavailable::UnsupportedAbi);
    }
    Ok(())
}

fn probe() -> Result<(), JitUnavailable> {
    precondition()?;
    // Map a page RW, write a return instruction, flush and flip to RX. The
    // page is never executed: success of the flip is the answer, and running
    // fresh code where it is forbidden could kill the process.
    CodeBlock::build(1, None, |_, page| {
        page[..RETURN_INSTRUCTION.len()].copy_from_slice(RETURN_INSTRUCTION);
        // Never run: nothing to unwind.
        (EhFrame::with_capacity(0), Names::new(0))
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

/// Whether this process may place JIT code through a double mapping (see
/// [`Options::double_map`](crate::Options::double_map)), and if not, why.
/// `JITCALL_DISABLE_JIT` refuses it too.
///
/// Computed once per process, on first use, and cached. The probe places
/// a return instruction in the first double-mapped chunk, which stays for
/// the blocks placed after it.
pub fn double_map_status() -> Result<(), JitUnavailable> {
    static STATUS: OnceLock<Result<(), JitUnavailable>> = OnceLock::new();
    *STATUS.get_or_init(|| {
        precondition()?;
        CodeBlock::build_double_mapped(RETURN_INSTRUCTION.len(), |_, code| {
            code[..RETURN_INSTRUCTION.len()].copy_from_slice(RETURN_INSTRUCTION);
            (EhFrame::with_capacity(0), Names::new(0))
        })
        .map(drop)
        .map_err(JitUnavailable::Refused)
    })
}

/// Whether `JITCALL_DOUBLE_MAP` asks for the double mapping for every
/// function, as [`Options::double_map`](crate::Options::double_map) does
/// for some: read once.
pub(crate) fn double_map_by_env() -> bool {
    static SET: OnceLock<bool> = OnceLock::new();
    *SET.get_or_init(|| env_flag("JITCALL_DOUBLE_MAP"))
}
