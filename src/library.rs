//! [`Library`]: `dlopen`/`dlsym`, the convenience a runtime's `dlopen` maps
//! onto.

use std::ffi::{c_void, CStr, CString};
use std::sync::Arc;

use crate::function::{bind_batch, Binding, Function, Options};
use crate::{Error, Quoted, Result, Signature};

/// An open `dlopen` handle, closed when the last user drops it.
pub(crate) struct LibraryHandle(*mut c_void);

// SAFETY: a dlopen handle may be used and closed from any thread.
unsafe impl Send for LibraryHandle {}
// SAFETY: dlsym on a shared handle is thread-safe.
unsafe impl Sync for LibraryHandle {}

impl Drop for LibraryHandle {
    fn drop(&mut self) {
        // SAFETY: the handle came from dlopen and is closed exactly once.
        unsafe { libc::dlclose(self.0) };
    }
}

/// The longest `dlerror` message kept: the system's own text (library
/// paths, reasons) around the caller's, which is shown bounded.
const MAX_MESSAGE: usize = 256;

/// The last `dlerror` message on this thread, about the caller's text
/// `about` (a path or a symbol name), which dlerror repeats: shown as its
/// bounded excerpt, and the whole message cut at [`MAX_MESSAGE`] bytes.
fn dl_error_about(about: &str) -> String {
    let mut message = dl_error();
    if !about.is_empty() {
        message = message.replace(about, &Quoted::new(about).to_string());
    }
    if message.len() > MAX_MESSAGE {
        let mut end = MAX_MESSAGE;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push('…');
    }
    message
}

/// The last `dlerror` message on this thread.
fn dl_error() -> String {
    // SAFETY: dlerror returns null or a NUL-terminated thread-local string
    // that stays valid until the next dl* call on this thread; it is copied
    // at once.
    let message = unsafe { libc::dlerror() };
    if message.is_null() {
        "unknown error".to_string()
    } else {
        // SAFETY: non-null dlerror results are NUL-terminated strings.
        unsafe { CStr::from_ptr(message) }
            .to_string_lossy()
            .into_owned()
    }
}

/// A loaded shared library (or the running process) to bind symbols from.
///
/// Functions bound from it keep it loaded.
///
/// # Examples
///
/// ```
/// use jitcall::{Library, Value};
///
/// let libc = Library::this_process()?;
/// let getpid = libc.function("getpid", &"() -> i32".parse()?)?;
/// // SAFETY: getpid takes nothing and returns a pid_t (i32).
/// let pid = unsafe { getpid.call(&[])? };
/// assert_eq!(pid, Value::I32(std::process::id() as i32));
/// # Ok::<(), jitcall::Error>(())
/// ```
#[derive(Clone)]
pub struct Library {
    handle: Arc<LibraryHandle>,
}

impl Library {
    /// Opens a shared library with `dlopen(path, RTLD_NOW | RTLD_LOCAL)`.
    ///
    /// # Errors
    ///
    /// [`Error::Open`] with `dlerror`'s message.
    pub fn open(path: &str) -> Result<Library> {
        let open_error = |message: String| Error::Open {
            path: Quoted::new(path),
            message,
        };
        let c_path = CString::new(path).map_err(|_| open_error("path contains NUL".into()))?;
        // SAFETY: c_path is a valid NUL-terminated string.
        let handle = unsafe { libc::dlopen(c_path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        if handle.is_null() {
            return Err(open_error(dl_error_about(path)));
        }
        Ok(Library {
            handle: Arc::new(LibraryHandle(handle)),
        })
    }

    /// The running program and the libraries it has loaded (libc, libm, …),
    /// as `dlopen(NULL)` sees them.
    ///
    /// # Errors
    ///
    /// [`Error::Open`] with `dlerror`'s message.
    pub fn this_process() -> Result<Library> {
        // SAFETY: dlopen(NULL) opens the main program; no pointer is read.
        let handle = unsafe { libc::dlopen(std::ptr::null(), libc::RTLD_NOW) };
        if handle.is_null() {
            return Err(Error::Open {
                path: Quoted::new("(this process)"),
                message: dl_error(),
            });
        }
        Ok(Library {
            handle: Arc::new(LibraryHandle(handle)),
        })
    }

    /// The address of symbol `name`.
    ///
    /// # Errors
    ///
    /// [`Error::Symbol`] when the symbol is missing or null.
    pub fn symbol(&self, name: &str) -> Result<*const c_void> {
        let symbol_error = |message: String| Error::Symbol {
            name: Quoted::new(name),
            message,
        };
        let c_name = CString::new(name).map_err(|_| symbol_error("name contains NUL".into()))?;
        // SAFETY: the handle is open and c_name is NUL-terminated.
        let address = unsafe { libc::dlsym(self.handle.0, c_name.as_ptr()) };
        if address.is_null() {
            return Err(symbol_error(dl_error_about(name)));
        }
        Ok(address as *const c_void)
    }

    /// Binds symbol `name` to `sig` with the default [`Options`].
    ///
    /// Binding is safe; calling is not: the call methods' safety contracts
    /// include that `sig` is the symbol's real signature.
    ///
    /// # Errors
    ///
    /// [`Error::Symbol`], or what [`Function::new`] returns.
    pub fn function(&self, name: &str, sig: &Signature) -> Result<Function> {
        self.functions(&[(name, sig)], &Options::default())
            .map(|mut fs| fs.remove(0))
    }

    /// Binds many symbols at once, all trampolines in one mapping.
    ///
    /// # Errors
    ///
    /// As for [`function`](Self::function); the first error fails the batch.
    pub fn functions(
        &self,
        items: &[(&str, &Signature)],
        options: &Options,
    ) -> Result<Vec<Function>> {
        let bindings = items
            .iter()
            .map(|&(name, sig)| {
                Ok(Binding {
                    target: self.symbol(name)?,
                    sig,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        bind_batch(&bindings, options, Some(&self.handle))
    }
}
