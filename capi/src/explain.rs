//! `jitcall_explain`: what `jitcall explain` prints, as a string.

use std::ffi::c_char;

use jitcall_rs::Signature;

use crate::codes::{jitcall_explain_flags, jitcall_status, JITCALL_EXPLAIN_LIBRARY};
use crate::codes::{JITCALL_E_INVALID_ARGUMENT, JITCALL_E_PARSE};
use crate::error::{catch, jitcall_error, report, Failure};
use crate::handle::{self, out_param};

/// What the `jitcall explain` command prints for `signature` (either
/// form): the tier each way of binding it takes in this process, then for
/// every ABI and entry kind where each argument goes, whether it is
/// eligible, and the code disassembled. With `JITCALL_EXPLAIN_LIBRARY` in
/// `flags`, the code of a function bound from a library. `*text` receives
/// a new string the caller owns, freed with `jitcall_string_free`.
///
/// A malformed signature is `JITCALL_E_PARSE` with its position, as for
/// `jitcall_signature_parse`; unknown bits in `flags` are
/// `JITCALL_E_INVALID_ARGUMENT`. Borrows `signature`. Thread-safe.
///
/// # Safety
///
/// `signature` must be NULL or a NUL-terminated string; `text` NULL or
/// writable; `error` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn jitcall_explain(
    signature: *const c_char,
    flags: jitcall_explain_flags,
    text: *mut *mut c_char,
    error: *mut *mut jitcall_error,
) -> jitcall_status {
    let outcome = catch(|| {
        let out = out_param(text, "text")?;
        // SAFETY: `signature` is NULL or a NUL-terminated string.
        let signature = unsafe { handle::text(signature, "signature")? };
        if flags & !JITCALL_EXPLAIN_LIBRARY != 0 {
            return Err(Failure::new(
                JITCALL_E_INVALID_ARGUMENT,
                format!("`flags` has bits no jitcall_explain_flags defines: {flags:#x}"),
            ));
        }
        // Parsed here first for the error's position, which the command's
        // message only shows in words.
        Signature::parse(signature).map_err(jitcall_rs::Error::from)?;
        let explained = jitcall_cli::explain(signature, flags & JITCALL_EXPLAIN_LIBRARY != 0)
            .map_err(|message| Failure::new(JITCALL_E_PARSE, message))?;
        // SAFETY: `out` is writable and not NULL.
        unsafe { out.write(handle::owned_string(&explained)) };
        Ok(())
    });
    // SAFETY: `error` is NULL or writable, as the caller promised.
    unsafe { report(outcome, error) }
}
