//! `jitcall_signature`: a parsed signature.

use std::ffi::c_char;

use jitcall_rs::{Signature, Type};

use crate::codes::jitcall_status;
use crate::error::{catch, jitcall_error, report, status};
use crate::handle::{self, out_param, Kind};

/// A parsed signature: argument types, return type and, for a variadic
/// function, where its fixed arguments end. Immutable, so any thread may
/// use it, and bindings copy what they need: it may be freed once bound.
/// Free it with `jitcall_signature_free`.
pub struct jitcall_signature {
    _opaque: [u8; 0],
}

impl Kind for Signature {
    const NAME: &'static str = "jitcall_signature";
    const TAG: u64 = handle::tag(b"sig\0\0\0\0\0");
    type C = jitcall_signature;
}

/// Parses a signature in the text form (`"(i32, f64, pointer) -> u8"`) or
/// the JSON object form (`{"arguments": ["int32", "double"], "return":
/// "uint8"}`, with Deno's and Bun's key names too), told apart by the
/// first character. Type names are Node.js's `node:ffi` ones, with the
/// spellings Deno and Bun users write.
///
/// Borrows `text`. On success `*signature` receives a new handle the
/// caller owns. A malformed signature is `JITCALL_E_PARSE`, located by
/// `jitcall_error_byte_offset` (the text form, malformed JSON) or
/// `jitcall_error_json_path` (`$.arguments[1]`); text that is not UTF-8 is
/// `JITCALL_E_INVALID_UTF8` at the offset of its first bad byte.
/// Thread-safe.
///
/// # Safety
///
/// `text` must be NULL or a NUL-terminated string; `signature` NULL or
/// writable; `error` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn jitcall_signature_parse(
    text: *const c_char,
    signature: *mut *mut jitcall_signature,
    error: *mut *mut jitcall_error,
) -> jitcall_status {
    let outcome = catch(|| {
        let out = out_param(signature, "signature")?;
        // SAFETY: `text` is NULL or a NUL-terminated string.
        let text = unsafe { handle::text(text, "text")? };
        let parsed = Signature::parse(text).map_err(jitcall_rs::Error::from)?;
        // SAFETY: `out` is writable and not NULL.
        unsafe { out.write(handle::into_c(parsed)) };
        Ok(())
    });
    // SAFETY: `error` is NULL or writable, as the caller promised.
    unsafe { report(outcome, error) }
}

/// The signature in the text form, as jitcall prints it (`(i32, f64) ->
/// u8`): a new string the caller owns, freed with `jitcall_string_free`.
/// Thread-safe.
///
/// # Safety
///
/// `signature` must be NULL or a live handle of this API; `text` NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn jitcall_signature_to_string(
    signature: *const jitcall_signature,
    text: *mut *mut c_char,
) -> jitcall_status {
    status(catch(|| {
        let out = out_param(text, "text")?;
        // SAFETY: `signature` is NULL or a live handle.
        let sig = unsafe { handle::borrow::<Signature>(signature, "signature")? };
        // SAFETY: `out` is writable and not NULL.
        unsafe { out.write(handle::owned_string(&sig.to_string())) };
        Ok(())
    }))
}

/// How many arguments the signature has, variadic ones included: the
/// number of slots `jitcall_call_packed` reads. Thread-safe.
///
/// # Safety
///
/// `signature` must be NULL or a live handle of this API; `count` NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn jitcall_signature_arg_count(
    signature: *const jitcall_signature,
    count: *mut usize,
) -> jitcall_status {
    status(catch(|| {
        let out = out_param(count, "count")?;
        // SAFETY: `signature` is NULL or a live handle.
        let sig = unsafe { handle::borrow::<Signature>(signature, "signature")? };
        // SAFETY: `out` is writable and not NULL.
        unsafe { out.write(sig.args.len()) };
        Ok(())
    }))
}

/// How many bytes the return buffer of `jitcall_call_packed` must hold
/// (8-byte aligned): 0 for `void`, 8 for a scalar, and for a struct its
/// size, at least 8. Thread-safe.
///
/// # Safety
///
/// `signature` must be NULL or a live handle of this API; `bytes` NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn jitcall_signature_return_size(
    signature: *const jitcall_signature,
    bytes: *mut usize,
) -> jitcall_status {
    status(catch(|| {
        let out = out_param(bytes, "bytes")?;
        // SAFETY: `signature` is NULL or a live handle.
        let sig = unsafe { handle::borrow::<Signature>(signature, "signature")? };
        // SAFETY: `out` is writable and not NULL.
        unsafe { out.write(return_bytes(sig.ret)) };
        Ok(())
    }))
}

/// The return buffer `call_packed` writes for a return of type `ty`.
pub(crate) fn return_bytes(ty: Type) -> usize {
    match ty {
        Type::Void => 0,
        Type::Struct(layout) => (layout.size() as usize).max(8),
        _ => 8,
    }
}

/// Frees `signature`. NULL is accepted and does nothing; another kind of
/// handle is `JITCALL_E_INVALID_HANDLE`, and freed nothing. Functions and
/// callbacks bound with it keep their own copy.
///
/// # Safety
///
/// `signature` must be NULL or a live handle of this API, not used
/// afterwards.
#[no_mangle]
pub unsafe extern "C" fn jitcall_signature_free(
    signature: *mut jitcall_signature,
) -> jitcall_status {
    // SAFETY: `signature` is NULL or a live handle no one uses afterwards.
    status(catch(|| unsafe {
        handle::free::<Signature>(signature, "signature")
    }))
}
