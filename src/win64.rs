//! Calling Win64 functions from an x86_64 System V host: the entry types
//! of a function bound with `Options { abi: Some(Abi::Win64), .. }`, and
//! the closed-call handler its guarded trampolines call.
//!
//! Such a function's trampolines are Win64 functions (its packed entry
//! `extern "win64" fn(args, ret)`, its value entry `extern "win64"
//! fn(args, target) -> u64`, its receiver entry the target's prototype
//! with a receiver first); Rust calls them through `extern "win64"`
//! function pointers, which save what Win64 preserves and System V does
//! not around the call.

use std::ffi::c_void;

use crate::baked::ReturnFix;
use crate::library::LibraryState;
use crate::Type;

/// A Win64 function's packed entry: the packed convention
/// ([`PackedFn`](crate::PackedFn)), called as Win64 (`args` in rcx, `ret`
/// in rdx).
pub type PackedWin64Fn = unsafe extern "win64" fn(args: *const u64, ret: *mut u64);

/// A Win64 function's value entry ([`ValueFn`](crate::ValueFn) as Win64),
/// its target as an ignored second argument.
type ValueWin64Fn = unsafe extern "win64" fn(args: *const u64, target: *const c_void) -> u64;

/// The same code, read through xmm0.
type FloatValueWin64Fn = unsafe extern "win64" fn(args: *const u64, target: *const c_void) -> f64;

/// How `call_packed` reaches a Win64 function's trampolines.
pub(crate) enum Win64Path {
    /// The packed entry: for a struct return.
    Packed(PackedWin64Fn),
    /// The value entry of an integer, pointer or `void` return.
    Value(ValueWin64Fn, ReturnFix, bool),
    /// The value entry of an `f32` or `f64` return.
    Float(FloatValueWin64Fn, ReturnFix),
}

impl Win64Path {
    /// The path through the value entry at `value` when the return allows
    /// it, else through the packed entry at `packed`.
    ///
    /// # Safety
    ///
    /// `packed` must be the start of a Win64 packed entry, and `value`, if
    /// given, of a Win64 value entry, of a signature returning `ret`, in
    /// code that outlives the path.
    pub(crate) unsafe fn new(ret: Type, packed: u64, value: Option<u64>) -> Win64Path {
        match (value, ReturnFix::for_return(ret)) {
            (Some(value), Some(fix)) if ret.is_float() => {
                // SAFETY: the caller's contract; a float return comes back
                // in xmm0.
                Win64Path::Float(
                    unsafe { std::mem::transmute::<u64, FloatValueWin64Fn>(value) },
                    fix,
                )
            }
            // SAFETY: the caller's contract; an integer, pointer or
            // nothing in rax.
            (Some(value), Some(fix)) => Win64Path::Value(
                unsafe { std::mem::transmute::<u64, ValueWin64Fn>(value) },
                fix,
                ret != Type::Void,
            ),
            // SAFETY: the caller's contract.
            _ => Win64Path::Packed(unsafe { std::mem::transmute::<u64, PackedWin64Fn>(packed) }),
        }
    }

    /// Calls through the path, as [`Function::call_packed`](crate::Function::call_packed).
    ///
    /// # Safety
    ///
    /// As [`Function::call_packed`](crate::Function::call_packed), for the
    /// function whose trampolines the path reaches, bound to `target`.
    #[inline]
    pub(crate) unsafe fn call(&self, target: *const c_void, args: *const u64, ret: *mut u64) {
        // SAFETY: the trampolines implement their conventions for the
        // signature, and check the library's closed byte themselves; the
        // caller meets the packed contract.
        unsafe {
            match *self {
                Win64Path::Packed(entry) => entry(args, ret),
                Win64Path::Value(entry, fix, true) => *ret = fix.finish(entry(args, target)),
                Win64Path::Value(entry, _, false) => {
                    entry(args, target);
                }
                Win64Path::Float(entry, fix) => *ret = fix.finish(entry(args, target).to_bits()),
            }
        }
    }
}

/// The closed-call handler of a Win64 function's guarded trampolines:
/// [`on_closed_call`](crate::library::on_closed_call) with Win64's
/// convention, so that the trampoline can call it as it calls its target.
pub(crate) extern "win64" fn on_closed_call_win64(cell: *const u8, target: *const c_void) {
    // SAFETY: as for `on_closed_call`: `cell` is the first field of a
    // repr(C) LibraryState, kept alive by the function owning the
    // trampoline while it can be called.
    let state = unsafe { &*cell.cast::<LibraryState>() };
    state.closed_call(target);
}
