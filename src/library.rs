//! [`Library`]: `dlopen`/`dlsym`, the convenience a runtime's `dlopen` maps
//! onto, and closing with Node.js's semantics.

use std::ffi::{c_void, CStr, CString};
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use crate::function::{bind_batch, Binding, Function, Options};
use crate::receiver::ThunkReceiver;
use crate::{Error, Quoted, Result, Signature};

/// What a closed call reports to: the address of the function called.
type ClosedHandler = Arc<dyn Fn(*const c_void) + Send + Sync>;

/// What a [`Library`] and every function bound from it share: the `dlopen`
/// handle, closed when the last of them is dropped; the closed flag that
/// guarded trampolines load at entry; the handler closed calls reach.
#[repr(C)]
pub(crate) struct LibraryState {
    /// 0 while open, 1 once [`Library::close`] ran. It comes first so that
    /// its address, which trampolines embed, is the state's address.
    closed: AtomicU8,
    handle: *mut c_void,
    on_closed: Mutex<Option<ClosedHandler>>,
    /// Receiver entries made of static thunks whose code has no closed
    /// check of its own: [`Library::close`] re-points them.
    thunk_receivers: Mutex<Vec<Weak<ThunkReceiver>>>,
}

// SAFETY: a dlopen handle may be used and closed from any thread; the
// other fields are atomics and a mutex.
unsafe impl Send for LibraryState {}
// SAFETY: dlsym on a shared handle is thread-safe; see Send.
unsafe impl Sync for LibraryState {}

impl Drop for LibraryState {
    fn drop(&mut self) {
        // SAFETY: the handle came from dlopen and is closed exactly once,
        // when neither the Library nor any function bound from it remains,
        // so no call can be under way in the library's code.
        unsafe { libc::dlclose(self.handle) };
    }
}

impl LibraryState {
    /// The address of the closed byte, for [`Guard::cell`](crate::Guard).
    pub(crate) fn cell(&self) -> u64 {
        &self.closed as *const AtomicU8 as u64
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire) != 0
    }

    /// Registers a thunk receiver entry of a function bound from this
    /// library, for [`Library::close`] to re-point; re-points it at once
    /// if the library is closed already.
    pub(crate) fn add_thunk_receiver(self: &Arc<Self>, receiver: &Arc<ThunkReceiver>) {
        let mut receivers = self
            .thunk_receivers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        receivers.retain(|r| r.strong_count() > 0);
        receivers.push(Arc::downgrade(receiver));
        if self.is_closed() {
            receiver.close(self);
        }
    }

    /// Closes the library: sets the closed byte, then re-points the thunk
    /// receiver entries of its functions.
    fn close(self: &Arc<Self>) {
        // Under the receivers' lock, so that an entry registered at the
        // same time is either re-pointed here or sees the byte set.
        let receivers = self
            .thunk_receivers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        self.closed.store(1, Ordering::Release);
        for receiver in receivers.iter().filter_map(Weak::upgrade) {
            receiver.close(self);
        }
    }

    /// A call of `target` after the library was closed: tell the handler,
    /// if one is set. A panicking handler aborts the process: the call
    /// may have come through a trampoline, which no unwinding can cross.
    pub(crate) fn closed_call(&self, target: *const c_void) {
        let handler = self
            .on_closed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(handler) = handler {
            if catch_unwind(AssertUnwindSafe(|| handler(target))).is_err() {
                eprintln!("jitcall: a library's closed-call handler panicked; aborting");
                std::process::abort();
            }
        }
    }
}

/// Where a guarded trampoline goes instead of its target once its library
/// is closed ([`Guard::on_closed`](crate::Guard)).
pub(crate) extern "C" fn on_closed_call(cell: *const u8, target: *const c_void) {
    // SAFETY: `cell` is the first field of a repr(C) LibraryState (see
    // `LibraryState::cell`), which the function owning the calling
    // trampoline keeps alive through an Arc while it can be called.
    let state = unsafe { &*cell.cast::<LibraryState>() };
    state.closed_call(target);
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
/// Functions bound from it keep it loaded: `dlclose` runs when the
/// `Library` (all its clones) and every function bound from it are gone.
/// [`close`](Self::close) ends its use before that, as Node.js's
/// `lib.close()` does.
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
    state: Arc<LibraryState>,
}

impl fmt::Debug for Library {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Library")
            .field("handle", &self.state.handle)
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl Library {
    fn from_handle(handle: *mut c_void) -> Library {
        Library {
            state: Arc::new(LibraryState {
                closed: AtomicU8::new(0),
                handle,
                on_closed: Mutex::new(None),
                thunk_receivers: Mutex::new(Vec::new()),
            }),
        }
    }

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
        Ok(Library::from_handle(handle))
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
        Ok(Library::from_handle(handle))
    }

    /// The address of symbol `name`.
    ///
    /// The address stays valid while this `Library` (or a clone of it) or
    /// any function bound from it lives, closed or not; after that the
    /// library may be unloaded and the address dangles.
    ///
    /// # Errors
    ///
    /// [`Error::LibraryClosed`] after [`close`](Self::close);
    /// [`Error::Symbol`] when the symbol is missing or null.
    pub fn symbol(&self, name: &str) -> Result<*const c_void> {
        if self.is_closed() {
            return Err(Error::LibraryClosed);
        }
        let symbol_error = |message: String| Error::Symbol {
            name: Quoted::new(name),
            message,
        };
        let c_name = CString::new(name).map_err(|_| symbol_error("name contains NUL".into()))?;
        // SAFETY: the handle is open and c_name is NUL-terminated.
        let address = unsafe { libc::dlsym(self.state.handle, c_name.as_ptr()) };
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
    /// [`Error::LibraryClosed`], [`Error::Symbol`], or what
    /// [`Function::new`] returns.
    pub fn function(&self, name: &str, sig: &Signature) -> Result<Function> {
        self.function_with_options(name, sig, &Options::default())
    }

    /// Binds symbol `name` to `sig` with explicit [`Options`].
    ///
    /// # Errors
    ///
    /// As for [`function`](Self::function).
    pub fn function_with_options(
        &self,
        name: &str,
        sig: &Signature,
        options: &Options,
    ) -> Result<Function> {
        let mut functions = self.functions(&[(name, sig)], options)?;
        Ok(functions.remove(0))
    }

    /// Binds a function of this library found by address rather than by
    /// name (a `dlvsym` result, or a function table the library hands out,
    /// as graphics loaders do), with the library's lifetime and
    /// [`close`](Self::close) semantics.
    ///
    /// # Safety
    ///
    /// As for [`Function::new`]: `target` must be a function of exactly
    /// this signature, with the host's C calling convention or the one
    /// `options.abi` names. It must belong to
    /// this library (or stay valid as long as it does).
    ///
    /// # Errors
    ///
    /// [`Error::LibraryClosed`], or what [`Function::new`] returns.
    pub unsafe fn function_at(
        &self,
        target: *const c_void,
        sig: &Signature,
        options: &Options,
    ) -> Result<Function> {
        if self.is_closed() {
            return Err(Error::LibraryClosed);
        }
        let mut functions = bind_batch(&[Binding { target, sig }], options, Some(&self.state))?;
        Ok(functions.remove(0))
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
        bind_batch(&bindings, options, Some(&self.state))
    }

    /// Closes the library for use, as Node.js's `lib.close()` does; a
    /// second call does nothing.
    ///
    /// Afterwards binding from it and looking up symbols are
    /// [`Error::LibraryClosed`], and so is [`Function::call`] on every
    /// function bound from it. Their raw entry points and
    /// [`Function::call_packed`] no longer reach the library: they call
    /// the handler set with [`on_closed_call`](Self::on_closed_call), if
    /// any, and return zero (the packed return slot holds 0 unless the
    /// return type is `void`; a receiver entry returns 0 or 0.0).
    ///
    /// The `dlclose` itself waits until this `Library` and every function
    /// bound from it are dropped, so that no call under way on another
    /// thread, or started from a raw entry point, can land in unmapped
    /// code. A call that already passed the check when `close` ran
    /// completes normally.
    ///
    /// # Examples
    ///
    /// ```
    /// use jitcall::{Error, Library};
    ///
    /// let libc = Library::this_process()?;
    /// let getpid = libc.function("getpid", &"() -> i32".parse()?)?;
    /// libc.close();
    /// // SAFETY: nothing is called: the library is closed.
    /// assert_eq!(unsafe { getpid.call(&[]) }, Err(Error::LibraryClosed));
    /// assert!(matches!(libc.symbol("getpid"), Err(Error::LibraryClosed)));
    /// # Ok::<(), jitcall::Error>(())
    /// ```
    pub fn close(&self) {
        self.state.close();
    }

    /// Whether [`close`](Self::close) ran on this library or a clone of it.
    pub fn is_closed(&self) -> bool {
        self.state.is_closed()
    }

    /// Sets what a call through a raw entry point or
    /// [`Function::call_packed`] does after [`close`](Self::close), before
    /// it returns zero: `handler` receives the address of the function
    /// called. A JavaScript engine sets a pending exception here (Node.js
    /// throws `ERR_FFI_LIBRARY_CLOSED`). It replaces any handler set
    /// before.
    ///
    /// The handler runs on the calling thread, inside the call. It must
    /// not panic: a panic aborts the process, since it could not unwind
    /// through the trampoline that called it.
    pub fn on_closed_call(&self, handler: impl Fn(*const c_void) + Send + Sync + 'static) {
        *self
            .state
            .on_closed
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(handler));
    }
}
