//! `jitcall_options`: how to bind functions and make callbacks.

use jitcall_rs::Options;

use crate::codes::{self, jitcall_abi, jitcall_force, jitcall_limits, jitcall_status};
use crate::error::{catch, status, Failure};
use crate::handle::{self, out_param, Kind};

/// How to bind a function or make a callback. A new one holds the
/// defaults, the same as passing NULL where options are taken: jitcall's
/// own limits, no receiver entry, no forced tier, no specialising, no
/// double mapping, no errno capture, the host's ABI. Bindings copy it: it
/// may be changed or freed afterwards. Not thread-safe while being set:
/// set it on one thread, then share it for reading. Free it with
/// `jitcall_options_free`.
pub struct jitcall_options {
    _opaque: [u8; 0],
}

impl Kind for Options {
    const NAME: &'static str = "jitcall_options";
    const TAG: u64 = handle::tag(b"options\0");
    type C = jitcall_options;
}

/// Makes options holding the defaults: `*options` receives a new handle
/// the caller owns. Thread-safe.
///
/// # Safety
///
/// `options` must be NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn jitcall_options_new(options: *mut *mut jitcall_options) -> jitcall_status {
    status(catch(|| {
        let out = out_param(options, "options")?;
        // SAFETY: `out` is writable and not NULL.
        unsafe { out.write(handle::into_c(Options::default())) };
        Ok(())
    }))
}

/// Changes `options` with `set`, once the handle is checked.
///
/// # Safety
///
/// `options` must be NULL or a live handle of this API, which no other
/// thread uses meanwhile.
unsafe fn change(
    options: *mut jitcall_options,
    set: impl FnOnce(&mut Options) -> Result<(), Failure>,
) -> jitcall_status {
    status(catch(|| {
        // SAFETY: `options` is NULL or a live handle, used by this thread
        // alone, as the caller promised.
        set(unsafe { handle::borrow_mut::<Options>(options, "options")? })
    }))
}

/// Sets the fast-call rules: `JITCALL_LIMITS_DEFAULT` (jitcall's own) or
/// `JITCALL_LIMITS_NODE` (Node.js's, so that the same signatures fall back
/// as under Node). Another value is `JITCALL_E_INVALID_ARGUMENT`.
///
/// # Safety
///
/// `options` must be NULL or a live handle of this API, which no other
/// thread uses meanwhile.
#[no_mangle]
pub unsafe extern "C" fn jitcall_options_set_limits(
    options: *mut jitcall_options,
    limits: jitcall_limits,
) -> jitcall_status {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        change(options, |o| {
            o.limits = codes::limits(limits)?;
            Ok(())
        })
    }
}

/// Asks for a receiver entry (V8's fast-API style: a native function
/// taking a receiver it ignores, then the arguments), which
/// `jitcall_function_receiver_entry` returns when the signature is
/// eligible for one. A function bound with it gets a trampoline of its own.
///
/// # Safety
///
/// `options` must be NULL or a live handle of this API, which no other
/// thread uses meanwhile.
#[no_mangle]
pub unsafe extern "C" fn jitcall_options_set_receiver_entry(
    options: *mut jitcall_options,
    receiver_entry: bool,
) -> jitcall_status {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        change(options, |o| {
            o.receiver_entry = receiver_entry;
            Ok(())
        })
    }
}

/// Forces a tier: `JITCALL_FORCE_NONE` (the default), `JITCALL_FORCE_LIBFFI`
/// or `JITCALL_FORCE_AVOID_JIT`. Another value is
/// `JITCALL_E_INVALID_ARGUMENT`.
///
/// # Safety
///
/// `options` must be NULL or a live handle of this API, which no other
/// thread uses meanwhile.
#[no_mangle]
pub unsafe extern "C" fn jitcall_options_set_force(
    options: *mut jitcall_options,
    force: jitcall_force,
) -> jitcall_status {
    // SAFETY: forwarded from this function's contract.
    unsafe { change(options, |o| codes::force(o, force)) }
}

/// Gives a function bound alone a trampoline of its own
/// (`JITCALL_TIER_JIT`, with a packed entry from
/// `jitcall_function_jit_entry`) rather than its shape's shared stub, at
/// the cost of a mapping of its own.
///
/// # Safety
///
/// `options` must be NULL or a live handle of this API, which no other
/// thread uses meanwhile.
#[no_mangle]
pub unsafe extern "C" fn jitcall_options_set_specialise(
    options: *mut jitcall_options,
    specialise: bool,
) -> jitcall_status {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        change(options, |o| {
            o.specialise = specialise;
            Ok(())
        })
    }
}

/// Writes JIT code through a second, writable view of it and runs it from
/// a read-execute one, so that W^X policies that refuse the usual flip
/// still allow the JIT tier. It weakens W^X (a writable alias of the code
/// exists): never the default. `JITCALL_FORCE_AVOID_JIT` and
/// `JITCALL_DISABLE_JIT` take precedence.
///
/// # Safety
///
/// `options` must be NULL or a live handle of this API, which no other
/// thread uses meanwhile.
#[no_mangle]
pub unsafe extern "C" fn jitcall_options_set_double_map(
    options: *mut jitcall_options,
    double_map: bool,
) -> jitcall_status {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        change(options, |o| {
            o.double_map = double_map;
            Ok(())
        })
    }
}

/// Captures `errno` right after the target returns, on every tier, for
/// `jitcall_last_errno` to read on the calling thread. Through
/// `jitcall_call_packed` only: the raw entries do not capture.
///
/// # Safety
///
/// `options` must be NULL or a live handle of this API, which no other
/// thread uses meanwhile.
#[no_mangle]
pub unsafe extern "C" fn jitcall_options_set_capture_errno(
    options: *mut jitcall_options,
    capture_errno: bool,
) -> jitcall_status {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        change(options, |o| {
            o.capture_errno = capture_errno;
            Ok(())
        })
    }
}

/// Sets the calling convention of the functions bound: `JITCALL_ABI_HOST`
/// (the default), or one of the host's instruction set
/// (`JITCALL_ABI_WIN64` on x86_64, `JITCALL_ABI_APPLE_AARCH64` on AArch64).
/// Binding with another instruction set's is `JITCALL_E_ABI`, and so is a
/// callback with any but the host's. Another value is
/// `JITCALL_E_INVALID_ARGUMENT`.
///
/// # Safety
///
/// `options` must be NULL or a live handle of this API, which no other
/// thread uses meanwhile.
#[no_mangle]
pub unsafe extern "C" fn jitcall_options_set_abi(
    options: *mut jitcall_options,
    abi: jitcall_abi,
) -> jitcall_status {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        change(options, |o| {
            o.abi = codes::abi(abi)?;
            Ok(())
        })
    }
}

/// Frees `options`. NULL is accepted and does nothing; another kind of
/// handle is `JITCALL_E_INVALID_HANDLE`, and freed nothing.
///
/// # Safety
///
/// `options` must be NULL or a live handle of this API, not used
/// afterwards.
#[no_mangle]
pub unsafe extern "C" fn jitcall_options_free(options: *mut jitcall_options) -> jitcall_status {
    // SAFETY: `options` is NULL or a live handle no one uses afterwards.
    status(catch(|| unsafe {
        handle::free::<Options>(options, "options")
    }))
}

/// The options a binding takes: a copy of `options`', or the defaults for
/// NULL.
///
/// # Safety
///
/// `options` must be NULL or a live handle of this API.
pub(crate) unsafe fn read(options: *const jitcall_options) -> Result<Options, Failure> {
    if options.is_null() {
        return Ok(Options::default());
    }
    // SAFETY: `options` is a live handle, as the caller promised.
    unsafe { handle::borrow::<Options>(options, "options").copied() }
}
