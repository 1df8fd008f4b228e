//! jitcall's C API. C and C++ programs include `jitcall.h` and link
//! `libjitcall.so` or `libjitcall.a` to call C functions whose signatures
//! arrive at run time (read from a script, say) through jitcall's JIT
//! trampolines, its compiled-in stubs or libffi, and to make C function
//! pointers that call back into them.
//!
//! Parse a signature (`jitcall_signature_parse`), open a library
//! (`jitcall_library_open`), bind a function (`jitcall_function_bind`),
//! and call it with one 64-bit slot per argument (`jitcall_call_packed`).
//!
//! Errors. Every function returns a `jitcall_status`: `JITCALL_OK` (0),
//! or the kind of failure, and then writes none of its out-parameters.
//! Functions that can fail for more than a bad argument (parsing, opening,
//! looking up, binding, explaining) also take `jitcall_error **error`
//! last: NULL, or where `*error` receives, on failure only, a new
//! `jitcall_error` the caller frees, with the status, a message of one
//! line (`jitcall_error_message`) and, for a malformed signature or a
//! string that is not UTF-8, where (`jitcall_error_byte_offset`,
//! `jitcall_error_json_path`). `*error` is left alone on success.
//! Exceptions, which return a value: the `jitcall_error_*` accessors,
//! `jitcall_status_string`, `jitcall_last_errno`, `jitcall_string_free`.
//!
//! Checks. A NULL pointer where one is needed is `JITCALL_E_NULL_POINTER`,
//! a handle of another kind than the parameter's is
//! `JITCALL_E_INVALID_HANDLE`, an integer code out of range
//! `JITCALL_E_INVALID_ARGUMENT`, a string that is not UTF-8
//! `JITCALL_E_INVALID_UTF8`: never a crash. What cannot be checked is the
//! caller's to get right: a dangling pointer, a handle used after its
//! free (most often seen as freed, but that read is of freed memory), a
//! signature that is not the target's, argument slots that do not match
//! it. A panic inside jitcall is caught at the boundary and returned as
//! `JITCALL_E_INTERNAL`: no Rust unwinding ever reaches C.
//!
//! Ownership. Handles (`jitcall_signature`, `jitcall_options`,
//! `jitcall_library`, `jitcall_function`, `jitcall_callback`,
//! `jitcall_error`) are opaque; each is made by one function, which
//! returns it owned through an out-parameter, and freed by its
//! `jitcall_<kind>_free`, which accepts NULL. Every other parameter is
//! borrowed for the call only: bindings copy the signature and options
//! they are given, and a function keeps its library loaded, so both may
//! be freed as soon as binding returns. Strings jitcall returns owned are
//! freed with `jitcall_string_free` (never `free()`); strings it returns
//! borrowed (`const char *`) live as long as the handle they came from.
//! Entry points and callback code live as long as their handle.
//!
//! Threads. Signatures, libraries, functions, callbacks and errors are
//! immutable once made (closing a library is synchronised), so any thread
//! may use them at once; options must not be set on one thread while
//! another uses them. No handle may be freed while another thread uses
//! it.

#![deny(unsafe_op_in_unsafe_fn, missing_docs)]
#![warn(clippy::undocumented_unsafe_blocks)]
// The C API's names are C's: `jitcall_function`, `jitcall_status`.
#![allow(non_camel_case_types)]

mod callback;
mod codes;
mod error;
mod explain;
mod function;
mod handle;
mod library;
mod options;
mod signature;

pub use callback::*;
pub use codes::*;
pub use error::{
    jitcall_error, jitcall_error_byte_offset, jitcall_error_free, jitcall_error_json_path,
    jitcall_error_message, jitcall_error_status,
};
pub use explain::jitcall_explain;
pub use function::*;
pub use handle::jitcall_string_free;
pub use library::*;
pub use options::*;
pub use signature::*;
