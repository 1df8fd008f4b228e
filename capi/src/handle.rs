//! Handles and strings across the boundary.
//!
//! A handle is a `Box<Handle<T>>` turned into a raw pointer and cast to
//! the opaque C type of `T`'s kind (`jitcall_library *`, …). Every
//! `Handle<T>` starts with a tag naming its kind (`#[repr(C)]`), so that a
//! live handle of one kind passed where another is expected is
//! recognised, and refused, before anything else of it is read. Freeing
//! overwrites the tag first: a handle used after its free usually shows
//! as freed, but that read is of freed memory, which nothing can make
//! safe, and the header says so.

use std::ffi::{c_char, CStr, CString};

use crate::codes::{JITCALL_E_INVALID_HANDLE, JITCALL_E_INVALID_UTF8};
use crate::error::Failure;

/// What the C API knows about a kind of handle.
pub(crate) trait Kind: Sized {
    /// The C type's name, for messages.
    const NAME: &'static str;
    /// The tag every handle of this kind starts with.
    const TAG: u64;
    /// The opaque C type a handle is passed as.
    type C;
}

/// The tag of a kind: eight ASCII bytes naming it, so that they show in a
/// memory dump.
pub(crate) const fn tag(name: &[u8; 8]) -> u64 {
    u64::from_le_bytes(*name) ^ u64::from_le_bytes(*b"jitcall\0")
}

/// The tag a handle holds once freed.
const FREED: u64 = tag(b"freed\0\0\0");

/// Every kind, for saying what a handle of the wrong kind is.
const KINDS: [(u64, &str); 7] = [
    (<crate::error::ErrorDetails as Kind>::TAG, "jitcall_error"),
    (<jitcall_rs::Signature as Kind>::TAG, "jitcall_signature"),
    (<jitcall_rs::Options as Kind>::TAG, "jitcall_options"),
    (<jitcall_rs::Library as Kind>::TAG, "jitcall_library"),
    (
        <crate::function::BoundFunction as Kind>::TAG,
        "jitcall_function",
    ),
    (
        <crate::callback::MadeCallback as Kind>::TAG,
        "jitcall_callback",
    ),
    (FREED, "freed"),
];

/// What a handle points to.
#[repr(C)]
struct Handle<T> {
    /// `T::TAG` while live, [`FREED`] once freed. The first field, at the
    /// same offset in every kind.
    tag: u64,
    value: T,
}

/// A new handle owning `value`, for C to free with its kind's `_free`.
pub(crate) fn into_c<T: Kind>(value: T) -> *mut T::C {
    Box::into_raw(Box::new(Handle { tag: T::TAG, value })).cast()
}

/// Checks that `ptr` is a handle of `T`'s kind and returns it as one, or
/// says why it is not.
///
/// # Safety
///
/// `ptr` must be NULL or point to 8 readable bytes, 8-byte aligned: a live
/// handle of any kind, or memory that is no handle (which is refused).
unsafe fn checked<T: Kind>(ptr: *const T::C, param: &str) -> Result<*mut Handle<T>, Failure> {
    if ptr.is_null() {
        return Err(Failure::null(param));
    }
    // SAFETY: `ptr` points to 8 readable, aligned bytes, as the caller
    // promised: a live handle's tag (every `Handle<_>` is `#[repr(C)]`
    // with the tag first), or bytes that match no tag.
    let tag = unsafe { ptr.cast::<u64>().read() };
    if tag == T::TAG {
        return Ok(ptr.cast::<Handle<T>>().cast_mut());
    }
    let message = match KINDS.iter().find(|&&(kind, _)| kind == tag) {
        Some(&(FREED, _)) => format!("`{param}` is a freed handle, not a live {}", T::NAME),
        Some(&(_, held)) => format!("`{param}` is a {held}, not a {}", T::NAME),
        None => format!(
            "`{param}` is not a {} (nor any handle of this API)",
            T::NAME
        ),
    };
    Err(Failure::new(JITCALL_E_INVALID_HANDLE, message))
}

/// The value of handle `ptr`, borrowed.
///
/// # Safety
///
/// `ptr` must be NULL or point to a live handle of any kind, which stays
/// live and unchanged for `'a`.
pub(crate) unsafe fn borrow<'a, T: Kind>(ptr: *const T::C, param: &str) -> Result<&'a T, Failure> {
    // SAFETY: forwarded from this function's contract.
    let handle = unsafe { checked::<T>(ptr, param)? };
    // SAFETY: the handle is a live `Handle<T>` (its tag says so), which
    // the caller keeps alive and unchanged for 'a.
    Ok(unsafe { &(*handle).value })
}

/// The value of handle `ptr`, borrowed mutably.
///
/// # Safety
///
/// As for [`borrow`], and no other reference to the handle's value may
/// exist for `'a`.
pub(crate) unsafe fn borrow_mut<'a, T: Kind>(
    ptr: *mut T::C,
    param: &str,
) -> Result<&'a mut T, Failure> {
    // SAFETY: forwarded from this function's contract.
    let handle = unsafe { checked::<T>(ptr, param)? };
    // SAFETY: as in `borrow`, and the caller holds the only reference.
    Ok(unsafe { &mut (*handle).value })
}

/// Frees handle `ptr`; NULL does nothing.
///
/// # Safety
///
/// `ptr` must be NULL or point to a live handle of any kind, which no one
/// uses afterwards.
pub(crate) unsafe fn free<T: Kind>(ptr: *mut T::C, param: &str) -> Result<(), Failure> {
    if ptr.is_null() {
        return Ok(());
    }
    // SAFETY: forwarded from this function's contract.
    let handle = unsafe { checked::<T>(ptr, param)? };
    // SAFETY: the handle is a live `Handle<T>` that `into_c` boxed, and no
    // one uses it afterwards; the tag is overwritten before the box is
    // dropped, so that a use after the free most often reads `FREED`.
    unsafe {
        (*handle).tag = FREED;
        drop(Box::from_raw(handle));
    }
    Ok(())
}

/// The UTF-8 text of C string `ptr`, parameter `param`.
///
/// # Safety
///
/// `ptr` must be NULL or point to a NUL-terminated string that stays
/// unchanged for `'a`.
pub(crate) unsafe fn text<'a>(ptr: *const c_char, param: &str) -> Result<&'a str, Failure> {
    if ptr.is_null() {
        return Err(Failure::null(param));
    }
    // SAFETY: `ptr` is a NUL-terminated string, as the caller promised.
    let bytes = unsafe { CStr::from_ptr(ptr) }.to_bytes();
    std::str::from_utf8(bytes).map_err(|e| {
        let at = e.valid_up_to();
        let mut failure = Failure::new(
            JITCALL_E_INVALID_UTF8,
            format!("`{param}` is not UTF-8 at byte {at}"),
        );
        failure.byte_offset = Some(at);
        failure
    })
}

/// A string C owns, freed with `jitcall_string_free`.
pub(crate) fn owned_string(text: &str) -> *mut c_char {
    crate::error::c_string(text).into_raw()
}

/// Checks that out-parameter `out`, named `param`, is not NULL: done
/// before any work, so that nothing is made that could not be handed out.
pub(crate) fn out_param<T>(out: *mut T, param: &str) -> Result<*mut T, Failure> {
    if out.is_null() {
        Err(Failure::null(param))
    } else {
        Ok(out)
    }
}

/// Frees a string jitcall returned (`jitcall_signature_to_string`,
/// `jitcall_explain`). NULL is accepted and does nothing.
///
/// # Safety
///
/// `text` must be NULL or a string this API returned, not freed before
/// and not used afterwards. (It cannot be checked: a string has no tag.)
/// Never pass it to `free()`: jitcall allocated it.
#[no_mangle]
pub unsafe extern "C" fn jitcall_string_free(text: *mut c_char) {
    if !text.is_null() {
        // SAFETY: `text` came from `CString::into_raw` in `owned_string`,
        // and is freed once, as the caller promised. Dropping a CString
        // cannot panic.
        drop(unsafe { CString::from_raw(text) });
    }
}
