//! Failures, the panic guard every entry point runs its body in, and the
//! `jitcall_error` handle that carries a failure's details to C.

use std::any::Any;
use std::borrow::Cow;
use std::ffi::{c_char, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use jitcall_rs::{Error, Position};

use crate::codes::*;
use crate::handle::{self, Kind};

/// A failed call, before it reaches C: its status and what to tell.
#[derive(Debug)]
pub(crate) struct Failure {
    pub status: jitcall_status,
    pub message: Cow<'static, str>,
    pub byte_offset: Option<usize>,
    pub json_path: Option<String>,
}

impl Failure {
    pub fn new(status: jitcall_status, message: impl Into<Cow<'static, str>>) -> Failure {
        Failure {
            status,
            message: message.into(),
            byte_offset: None,
            json_path: None,
        }
    }

    /// Parameter `param` was NULL.
    pub fn null(param: &str) -> Failure {
        Failure::new(JITCALL_E_NULL_POINTER, format!("`{param}` is NULL"))
    }

    /// Parameter `param` holds `code`, which `type_name` does not define.
    pub fn out_of_range(param: &str, type_name: &str, code: u32) -> Failure {
        Failure::new(
            JITCALL_E_INVALID_ARGUMENT,
            format!("`{param}` is {code}, which is no {type_name}"),
        )
    }

    /// The library of the call was closed.
    pub fn closed() -> Failure {
        Failure::new(JITCALL_E_LIBRARY_CLOSED, "the library is closed")
    }

    /// A panic caught at the boundary.
    fn panic(payload: &(dyn Any + Send)) -> Failure {
        let what = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("a panic without a message");
        Failure::new(
            JITCALL_E_INTERNAL,
            format!("internal error in jitcall (a bug; please report it): {what}"),
        )
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Failure {
        let status = match &error {
            Error::Parse(_) => JITCALL_E_PARSE,
            Error::NullTarget => JITCALL_E_NULL_POINTER,
            Error::UnsupportedType { .. }
            | Error::TooManyArgs { .. }
            | Error::VariadicPosition { .. }
            | Error::VariadicCallback => JITCALL_E_UNSUPPORTED_SIGNATURE,
            Error::LibraryClosed => JITCALL_E_LIBRARY_CLOSED,
            Error::Libffi(_) => JITCALL_E_LIBFFI,
            Error::AbiNotOnHost { .. } | Error::NoCallPath { .. } | Error::CallbackAbi { .. } => {
                JITCALL_E_ABI
            }
            Error::Open { .. } => JITCALL_E_OPEN,
            Error::Symbol { .. } => JITCALL_E_SYMBOL,
            // `call`'s checks of typed values: the C API has no typed call.
            _ => JITCALL_E_OTHER,
        };
        let mut failure = Failure::new(status, error.to_string());
        if let Error::Parse(parse) = error {
            match parse.at {
                Position::Byte(offset) => failure.byte_offset = Some(offset),
                Position::JsonPath(path) => failure.json_path = Some(path),
            }
        }
        failure
    }
}

/// Runs an entry point's `body`, catching any panic: no unwinding reaches
/// C (MSRV 1.80 predates the abort on unwinding out of `extern "C"`).
/// The body writes its out-parameters last, once nothing can fail.
pub(crate) fn catch(body: impl FnOnce() -> Result<(), Failure>) -> Result<(), Failure> {
    catch_unwind(AssertUnwindSafe(body))
        .unwrap_or_else(|payload| Err(Failure::panic(payload.as_ref())))
}

/// The status of an entry point's `outcome`, for one with no `error`
/// parameter.
pub(crate) fn status(outcome: Result<(), Failure>) -> jitcall_status {
    match outcome {
        Ok(()) => JITCALL_OK,
        Err(failure) => failure.status,
    }
}

/// The status of an entry point's `outcome`; on failure `*error`, where
/// `error` is not NULL, receives a new `jitcall_error` with the details.
///
/// # Safety
///
/// `error` must be NULL or valid for writing a pointer.
pub(crate) unsafe fn report(
    outcome: Result<(), Failure>,
    error: *mut *mut jitcall_error,
) -> jitcall_status {
    let Err(failure) = outcome else {
        return JITCALL_OK;
    };
    let status = failure.status;
    if !error.is_null() {
        let details = catch_unwind(|| handle::into_c(ErrorDetails::from(failure)));
        // SAFETY: `error` is writable, as the caller promised. A handle
        // that could not be made (a panic while allocating it) is NULL.
        unsafe { *error = details.unwrap_or(std::ptr::null_mut()) };
    }
    status
}

/// A C string of `text`, any NUL in it shown as `\0`.
pub(crate) fn c_string(text: &str) -> CString {
    CString::new(text.replace('\0', "\\0")).expect("every NUL was replaced")
}

/// The details of a failure, as `jitcall_error` holds them.
pub(crate) struct ErrorDetails {
    status: jitcall_status,
    message: CString,
    byte_offset: Option<usize>,
    json_path: Option<CString>,
}

impl From<Failure> for ErrorDetails {
    fn from(failure: Failure) -> ErrorDetails {
        ErrorDetails {
            status: failure.status,
            message: c_string(&failure.message),
            byte_offset: failure.byte_offset,
            json_path: failure.json_path.as_deref().map(c_string),
        }
    }
}

/// The details of a failed call: its status, a message of one line, and
/// for a malformed signature or string where it went wrong. Immutable, so
/// any thread may read it. Free it with `jitcall_error_free`.
pub struct jitcall_error {
    _opaque: [u8; 0],
}

impl Kind for ErrorDetails {
    const NAME: &'static str = "jitcall_error";
    const TAG: u64 = handle::tag(b"error\0\0\0");
    type C = jitcall_error;
}

/// The status of the failure `error` describes. Returns
/// `JITCALL_E_NULL_POINTER` for a NULL `error` and
/// `JITCALL_E_INVALID_HANDLE` for another kind of handle.
///
/// # Safety
///
/// `error` must be NULL or a live handle of this API.
#[no_mangle]
pub unsafe extern "C" fn jitcall_error_status(error: *const jitcall_error) -> jitcall_status {
    // SAFETY: `error` is NULL or a live handle, as the caller promised.
    match unsafe { handle::borrow::<ErrorDetails>(error, "error") } {
        Ok(details) => details.status,
        Err(failure) => failure.status,
    }
}

/// The message of `error`: one line, caller text in it quoted and
/// bounded. Borrowed: valid until `jitcall_error_free(error)`. For a NULL
/// `error` or another kind of handle, a static message saying so (never
/// NULL).
///
/// # Safety
///
/// `error` must be NULL or a live handle of this API.
#[no_mangle]
pub unsafe extern "C" fn jitcall_error_message(error: *const jitcall_error) -> *const c_char {
    // SAFETY: `error` is NULL or a live handle, as the caller promised.
    match unsafe { handle::borrow::<ErrorDetails>(error, "error") } {
        Ok(details) => details.message.as_ptr(),
        Err(failure) if failure.status == JITCALL_E_NULL_POINTER => {
            c"jitcall_error_message: `error` is NULL".as_ptr()
        }
        Err(_) => c"jitcall_error_message: `error` is not a jitcall_error".as_ptr(),
    }
}

/// Where in its input a malformed signature (the text form, or malformed
/// JSON) or a string that is not UTF-8 went wrong: returns true and writes
/// the byte offset to `*offset`. Returns false, writing nothing, when the
/// error has no byte offset, and for a NULL `error` or `offset` or another
/// kind of handle.
///
/// # Safety
///
/// `error` must be NULL or a live handle of this API; `offset` NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn jitcall_error_byte_offset(
    error: *const jitcall_error,
    offset: *mut usize,
) -> bool {
    // SAFETY: `error` is NULL or a live handle, as the caller promised.
    let Ok(details) = (unsafe { handle::borrow::<ErrorDetails>(error, "error") }) else {
        return false;
    };
    match details.byte_offset {
        Some(at) if !offset.is_null() => {
            // SAFETY: `offset` is writable, as the caller promised.
            unsafe { *offset = at };
            true
        }
        _ => false,
    }
}

/// Where in a JSON signature of the wrong shape the error is, as a JSON
/// path such as `$.arguments[1]`. Borrowed: valid until
/// `jitcall_error_free(error)`. NULL when the error has no JSON path, and
/// for a NULL `error` or another kind of handle.
///
/// # Safety
///
/// `error` must be NULL or a live handle of this API.
#[no_mangle]
pub unsafe extern "C" fn jitcall_error_json_path(error: *const jitcall_error) -> *const c_char {
    // SAFETY: `error` is NULL or a live handle, as the caller promised.
    match unsafe { handle::borrow::<ErrorDetails>(error, "error") } {
        Ok(ErrorDetails {
            json_path: Some(path),
            ..
        }) => path.as_ptr(),
        _ => std::ptr::null(),
    }
}

/// Frees `error`. NULL is accepted and does nothing; another kind of
/// handle is `JITCALL_E_INVALID_HANDLE`, and freed nothing.
///
/// # Safety
///
/// `error` must be NULL or a live handle of this API, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn jitcall_error_free(error: *mut jitcall_error) -> jitcall_status {
    // SAFETY: `error` is NULL or a live handle no one uses afterwards, as
    // the caller promised.
    status(catch(|| unsafe {
        handle::free::<ErrorDetails>(error, "error")
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_in_a_body_is_an_internal_error_with_its_message() {
        let mut error = std::ptr::null_mut();
        let outcome = catch(|| panic!("the body panicked"));
        // SAFETY: `error` is a writable pointer.
        let status = unsafe { report(outcome, &mut error) };
        assert_eq!(status, JITCALL_E_INTERNAL);
        assert!(!error.is_null());
        // SAFETY: `error` is the live handle the guard made.
        let message = unsafe { std::ffi::CStr::from_ptr(jitcall_error_message(error)) };
        assert!(
            message.to_str().unwrap().ends_with("the body panicked"),
            "{message:?}"
        );
        // SAFETY: as above, freed once.
        assert_eq!(unsafe { jitcall_error_free(error) }, JITCALL_OK);
    }

    #[test]
    fn a_panic_with_a_formatted_message_keeps_it_and_a_null_error_is_left_alone() {
        let outcome = catch(|| panic!("{} things", 2));
        assert!(outcome
            .as_ref()
            .is_err_and(|f| f.message.ends_with("2 things")));
        // SAFETY: a NULL `error` is allowed.
        let status = unsafe { report(outcome, std::ptr::null_mut()) };
        assert_eq!(status, JITCALL_E_INTERNAL);
    }

    #[test]
    fn a_nul_in_a_message_is_shown_escaped() {
        assert_eq!(c_string("a\0b").to_bytes(), b"a\\0b");
    }
}
