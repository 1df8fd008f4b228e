//! `jitcall_library`: a shared library or the process, and closing it.

use std::ffi::{c_char, c_void};

use jitcall_rs::Library;

use crate::codes::jitcall_status;
use crate::error::{catch, jitcall_error, report, status};
use crate::handle::{self, out_param, Kind};

/// A shared library opened with `dlopen`, or the running process. Any
/// thread may use it, closing it included. The `dlclose` waits until the
/// handle and every function bound from it are freed. Free it with
/// `jitcall_library_free`.
pub struct jitcall_library {
    _opaque: [u8; 0],
}

impl Kind for Library {
    const NAME: &'static str = "jitcall_library";
    const TAG: u64 = handle::tag(b"library\0");
    type C = jitcall_library;
}

/// What a call through a closed library runs before it returns zero:
/// `data` as given to `jitcall_library_on_closed_call`, and the address
/// of the function called.
pub type jitcall_closed_handler =
    Option<unsafe extern "C" fn(data: *mut c_void, function: *const c_void)>;

/// Opens the shared library at `path` with `dlopen(path, RTLD_NOW |
/// RTLD_LOCAL)` (a name such as `"libm.so.6"` is searched for as `dlopen`
/// searches), or, for a NULL `path`, the running process and the libraries
/// it has loaded, as `dlopen(NULL)` sees them.
///
/// Borrows `path`, which must be UTF-8 (`JITCALL_E_INVALID_UTF8`
/// otherwise). On success `*library` receives a new handle the caller
/// owns. A library that cannot be opened is `JITCALL_E_OPEN`, with
/// `dlerror`'s message. Thread-safe.
///
/// # Safety
///
/// `path` must be NULL or a NUL-terminated string; `library` NULL or
/// writable; `error` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn jitcall_library_open(
    path: *const c_char,
    library: *mut *mut jitcall_library,
    error: *mut *mut jitcall_error,
) -> jitcall_status {
    let outcome = catch(|| {
        let out = out_param(library, "library")?;
        let opened = if path.is_null() {
            Library::this_process()?
        } else {
            // SAFETY: `path` is a NUL-terminated string.
            Library::open(unsafe { handle::text(path, "path")? })?
        };
        // SAFETY: `out` is writable and not NULL.
        unsafe { out.write(handle::into_c(opened)) };
        Ok(())
    });
    // SAFETY: `error` is NULL or writable, as the caller promised.
    unsafe { report(outcome, error) }
}

/// The address of symbol `name`: `*address` receives it. It stays valid
/// while the library handle or a function bound from it lives. A missing
/// symbol is `JITCALL_E_SYMBOL`; after `jitcall_library_close`,
/// `JITCALL_E_LIBRARY_CLOSED`. Borrows `name`. Thread-safe.
///
/// # Safety
///
/// `library` must be NULL or a live handle of this API; `name` NULL or a
/// NUL-terminated string; `address` NULL or writable; `error` NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn jitcall_library_symbol(
    library: *const jitcall_library,
    name: *const c_char,
    address: *mut *const c_void,
    error: *mut *mut jitcall_error,
) -> jitcall_status {
    let outcome = catch(|| {
        let out = out_param(address, "address")?;
        // SAFETY: `library` is NULL or a live handle.
        let library = unsafe { handle::borrow::<Library>(library, "library")? };
        // SAFETY: `name` is NULL or a NUL-terminated string.
        let found = library.symbol(unsafe { handle::text(name, "name")? })?;
        // SAFETY: `out` is writable and not NULL.
        unsafe { out.write(found) };
        Ok(())
    });
    // SAFETY: `error` is NULL or writable, as the caller promised.
    unsafe { report(outcome, error) }
}

/// Closes the library for use, as Node.js's `lib.close()` does; a second
/// call does nothing. Afterwards binding from it and looking up symbols
/// are `JITCALL_E_LIBRARY_CLOSED`, and calls of the functions bound from
/// it, through `jitcall_call_packed` or their raw entries, no longer reach
/// it: they run the handler set with `jitcall_library_on_closed_call`, if
/// any, and return zero (`jitcall_call_packed` also returns
/// `JITCALL_E_LIBRARY_CLOSED`). The `dlclose` itself waits until the
/// handle and every function bound from it are freed, so that no call
/// under way can land in unmapped code. Thread-safe.
///
/// # Safety
///
/// `library` must be NULL or a live handle of this API.
#[no_mangle]
pub unsafe extern "C" fn jitcall_library_close(library: *const jitcall_library) -> jitcall_status {
    status(catch(|| {
        // SAFETY: `library` is NULL or a live handle.
        unsafe { handle::borrow::<Library>(library, "library")? }.close();
        Ok(())
    }))
}

/// Whether `jitcall_library_close` ran on this library: written to
/// `*closed`. Thread-safe.
///
/// # Safety
///
/// `library` must be NULL or a live handle of this API; `closed` NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn jitcall_library_is_closed(
    library: *const jitcall_library,
    closed: *mut bool,
) -> jitcall_status {
    status(catch(|| {
        let out = out_param(closed, "closed")?;
        // SAFETY: `library` is NULL or a live handle.
        let library = unsafe { handle::borrow::<Library>(library, "library")? };
        // SAFETY: `out` is writable and not NULL.
        unsafe { out.write(library.is_closed()) };
        Ok(())
    }))
}

/// What [`jitcall_library_on_closed_call`] registers: a C handler and its
/// data.
struct ClosedCall {
    handler: unsafe extern "C" fn(data: *mut c_void, function: *const c_void),
    data: *mut c_void,
}

// SAFETY: `jitcall_library_on_closed_call`'s contract: the handler may be
// called with `data` from any thread.
unsafe impl Send for ClosedCall {}
// SAFETY: as for Send.
unsafe impl Sync for ClosedCall {}

impl ClosedCall {
    fn run(&self, function: *const c_void) {
        // SAFETY: the handler takes `data` on any thread, and does not
        // unwind, as `jitcall_library_on_closed_call`'s caller promised.
        unsafe { (self.handler)(self.data, function) }
    }
}

/// Sets what a call of a function bound from this library does once the
/// library is closed, before it returns zero: `handler(data, function)`,
/// `function` being the address of the function called. A runtime sets a
/// pending exception here (Node.js throws `ERR_FFI_LIBRARY_CLOSED`). It
/// replaces any handler set before; a NULL `handler` removes it. The
/// handler runs on the calling thread, inside the call. Thread-safe.
///
/// # Safety
///
/// `library` must be NULL or a live handle of this API. `handler` must be
/// callable with `data` from any thread, for as long as the library or a
/// function bound from it lives, and must not unwind (a C++ exception or
/// `longjmp` out of it).
#[no_mangle]
pub unsafe extern "C" fn jitcall_library_on_closed_call(
    library: *const jitcall_library,
    handler: jitcall_closed_handler,
    data: *mut c_void,
) -> jitcall_status {
    status(catch(|| {
        // SAFETY: `library` is NULL or a live handle.
        let library = unsafe { handle::borrow::<Library>(library, "library")? };
        match handler {
            Some(handler) => {
                let call = ClosedCall { handler, data };
                library.on_closed_call(move |function| call.run(function));
            }
            None => library.on_closed_call(|_| {}),
        }
        Ok(())
    }))
}

/// Frees the handle. The library stays loaded while functions bound from
/// it live; closing is `jitcall_library_close`'s. NULL is accepted and
/// does nothing; another kind of handle is `JITCALL_E_INVALID_HANDLE`, and
/// freed nothing.
///
/// # Safety
///
/// `library` must be NULL or a live handle of this API, not used
/// afterwards.
#[no_mangle]
pub unsafe extern "C" fn jitcall_library_free(library: *mut jitcall_library) -> jitcall_status {
    // SAFETY: `library` is NULL or a live handle no one uses afterwards.
    status(catch(|| unsafe {
        handle::free::<Library>(library, "library")
    }))
}
