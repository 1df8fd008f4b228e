//! AArch64 AAPCS64 trampolines (not yet written).

use crate::Plan;

/// Emits the AArch64 trampoline for `plan`.
pub fn emit(_plan: &Plan, _base: u64, _target: u64) -> Vec<u8> {
    Vec::new()
}
