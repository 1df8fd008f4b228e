//! `jitcall_callback`: C function pointers that call a C handler with
//! packed arguments.

use std::ffi::{c_char, c_void};

use jitcall_rs::{Callback, Signature};

use crate::codes::{jitcall_reason, jitcall_status, jitcall_tier};
use crate::error::{catch, jitcall_error, report, status, Failure};
use crate::function::TierInfo;
use crate::handle::{self, out_param, Kind};
use crate::options::{self, jitcall_options};
use crate::signature::jitcall_signature;

/// A C function pointer made for a signature, which calls a
/// `jitcall_handler`. Any thread may call its code, as often and as many
/// at once as the C library likes, while it lives. Free it with
/// `jitcall_callback_free`, once C can no longer call it.
pub struct jitcall_callback {
    _opaque: [u8; 0],
}

/// What a callback calls: `data` as given to `jitcall_callback_new`, one
/// 64-bit slot per argument at `args` (as `jitcall_call_packed` takes
/// them: integers extended to 64 bits as their type says, a `float`'s bits
/// in the low 32, a struct as the address of its bytes, valid during the
/// call), and `ret`, where the handler stores the return value in the
/// same encoding (for a struct return, `ret` points to a buffer of
/// `jitcall_signature_return_size` bytes that receives the struct).
pub type jitcall_handler =
    Option<unsafe extern "C" fn(data: *mut c_void, args: *const u64, ret: *mut u64)>;

/// What a `jitcall_callback` holds.
pub(crate) struct MadeCallback {
    callback: Callback,
    tier: TierInfo,
}

impl Kind for MadeCallback {
    const NAME: &'static str = "jitcall_callback";
    const TAG: u64 = handle::tag(b"callback");
    type C = jitcall_callback;
}

/// Makes a C function pointer for `signature` that calls
/// `handler(data, args, ret)`, with `options` (NULL for the defaults;
/// `JITCALL_FORCE_*`, `jitcall_options_set_double_map` and the limits
/// apply; the ABI must be the host's). `*callback` receives a new handle
/// the caller owns; `jitcall_callback_code` gives the pointer.
///
/// A variadic signature is `JITCALL_E_UNSUPPORTED_SIGNATURE` (C calls a
/// callback through a prototype); another ABI than the host's is
/// `JITCALL_E_ABI`. Borrows `signature` and `options`. Thread-safe.
///
/// # Safety
///
/// `handler` must be callable with `data` from any thread, for as long as
/// the callback lives, and must not unwind (no C++ exception or
/// `longjmp` out of it). `signature` and `options` must be NULL or live
/// handles of this API; `callback` NULL or writable; `error` NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn jitcall_callback_new(
    signature: *const jitcall_signature,
    handler: jitcall_handler,
    data: *mut c_void,
    options: *const jitcall_options,
    callback: *mut *mut jitcall_callback,
    error: *mut *mut jitcall_error,
) -> jitcall_status {
    let outcome = catch(|| {
        let out = out_param(callback, "callback")?;
        // SAFETY: each is NULL or a live handle.
        let (sig, options) = unsafe {
            (
                handle::borrow::<Signature>(signature, "signature")?,
                options::read(options)?,
            )
        };
        let handler = handler.ok_or_else(|| Failure::null("handler"))?;
        // SAFETY: the handler takes `data` on any thread while the
        // callback lives and does not unwind, as the caller promised.
        let made = unsafe { Callback::from_raw(sig, handler, data, &options)? };
        let made = MadeCallback {
            tier: TierInfo::new(made.tier()),
            callback: made,
        };
        // SAFETY: `out` is writable and not NULL.
        unsafe { out.write(handle::into_c(made)) };
        Ok(())
    });
    // SAFETY: `error` is NULL or writable, as the caller promised.
    unsafe { report(outcome, error) }
}

/// The callback's C function pointer, written to `*code`: cast it to the
/// function pointer type of its signature (`int (*)(const void *, const
/// void *)` for `"(pointer, pointer) -> i32"`). Valid while the callback
/// lives. Thread-safe.
///
/// # Safety
///
/// `callback` must be NULL or a live handle of this API; `code` NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn jitcall_callback_code(
    callback: *const jitcall_callback,
    code: *mut *const c_void,
) -> jitcall_status {
    status(catch(|| {
        let out = out_param(code, "code")?;
        // SAFETY: `callback` is NULL or a live handle.
        let made = unsafe { handle::borrow::<MadeCallback>(callback, "callback")? };
        // SAFETY: `out` is writable and not NULL.
        unsafe { out.write(made.callback.code_ptr()) };
        Ok(())
    }))
}

/// The tier that made the callback's code, as `jitcall_function_tier`
/// gives a function's: `JITCALL_TIER_JIT` (a reverse trampoline),
/// `JITCALL_TIER_BAKED` (a static thunk to a stub compiled in) or
/// `JITCALL_TIER_LIBFFI` (a libffi closure). The description is borrowed:
/// valid while `callback` lives. Thread-safe.
///
/// # Safety
///
/// `callback` must be NULL or a live handle of this API; `tier` NULL or
/// writable; `reason` and `description` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn jitcall_callback_tier(
    callback: *const jitcall_callback,
    tier: *mut jitcall_tier,
    reason: *mut jitcall_reason,
    description: *mut *const c_char,
) -> jitcall_status {
    status(catch(|| {
        let tier = out_param(tier, "tier")?;
        // SAFETY: `callback` is NULL or a live handle.
        let made = unsafe { handle::borrow::<MadeCallback>(callback, "callback")? };
        // SAFETY: `tier` is writable and not NULL, the others NULL or
        // writable; the description lives as long as the handle.
        unsafe { made.tier.write(tier, reason, description) };
        Ok(())
    }))
}

/// Frees `callback`: its code pointer is invalid afterwards. NULL is
/// accepted and does nothing; another kind of handle is
/// `JITCALL_E_INVALID_HANDLE`, and freed nothing.
///
/// # Safety
///
/// `callback` must be NULL or a live handle of this API, which C will not
/// call again and is not calling now, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn jitcall_callback_free(callback: *mut jitcall_callback) -> jitcall_status {
    // SAFETY: `callback` is NULL or a live handle no one uses afterwards.
    status(catch(|| unsafe {
        handle::free::<MadeCallback>(callback, "callback")
    }))
}
