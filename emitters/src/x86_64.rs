//! x86_64 System V trampolines (not yet written).

use crate::Plan;

/// Emits the x86_64 trampoline for `plan`.
pub fn emit(_plan: &Plan, _base: u64, _target: u64) -> Vec<u8> {
    Vec::new()
}
