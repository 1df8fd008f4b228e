//! `errno` captured right after a call, for functions bound with
//! [`Options::capture_errno`](crate::Options::capture_errno).

use std::cell::Cell;

thread_local! {
    /// What the last capturing call on this thread left in `errno`.
    static LAST: Cell<i32> = const { Cell::new(0) };
}

/// Records the calling thread's `errno` as [`last_errno`] will report it.
#[inline]
pub(crate) fn capture() {
    let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
    LAST.with(|last| last.set(errno));
}

/// The `errno` the last call on this thread of a function bound with
/// [`Options::capture_errno`](crate::Options::capture_errno) left, read
/// right after its target returned (0 before any such call). Calls of
/// other functions, and anything else the thread does, leave it alone.
///
/// # Examples
///
/// ```
/// use jitcall::{Library, Options, Value};
///
/// let libc = Library::this_process()?;
/// let capture = Options { capture_errno: true, ..Options::default() };
/// let open = libc.function_with_options("open", &"(pointer, i32) -> i32".parse()?, &capture)?;
/// let path = c"/nonexistent/jitcall";
/// // SAFETY: open(const char *, int) with a valid string.
/// let fd = unsafe { open.call(&[Value::Pointer(path.as_ptr().cast_mut().cast()), Value::I32(0)])? };
/// assert_eq!(fd, Value::I32(-1));
/// assert_eq!(jitcall::last_errno(), libc::ENOENT);
/// # Ok::<(), jitcall::Error>(())
/// ```
pub fn last_errno() -> i32 {
    LAST.with(Cell::get)
}
