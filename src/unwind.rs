//! Registering the unwind information of the code jitcall places with the
//! system unwinder, so that backtraces, panics, debuggers' frame walks that
//! ask the unwinder and profilers see through the trampolines.
//!
//! The emitters record how each trampoline, stub and callback unwinds as
//! they emit it ([`jitcall_emitters::unwind`]); a [`CodeBlock`] turns the
//! pieces it holds into one `.eh_frame` section (one CIE, one FDE per
//! piece, absolute addresses) and hands it to `__register_frame` once the
//! code is in place, and to `__deregister_frame` before the block is
//! unmapped. That is libgcc's unwinder, the one Rust's standard library
//! and C++ use on Linux with glibc (`libgcc_s`): its `__register_frame`
//! takes a whole section ending in a zero word. (LLVM's libunwind takes
//! one FDE per call instead; targets that use it are not built here.)
//!
//! Code in the library's own text (the baked stubs, static thunks) is
//! described by the binary's `.eh_frame`, which the build writes.
//!
//! [`CodeBlock`]: crate::memory::CodeBlock

use std::sync::atomic::{AtomicUsize, Ordering};

use jitcall_emitters::unwind::EhFrame;

extern "C" {
    /// libgcc: adds the `.eh_frame` section at `begin` (CIEs and FDEs up to
    /// a zero length word) to the frames the unwinder searches.
    fn __register_frame(begin: *const u8);
    /// libgcc: removes a section added by `__register_frame`.
    fn __deregister_frame(begin: *const u8);
}

/// Sections registered now, for [`registered_sections`].
static REGISTERED: AtomicUsize = AtomicUsize::new(0);

/// How many `.eh_frame` sections of jitcall's code the system unwinder
/// holds now: one per live block of trampolines, stubs or callbacks. A
/// diagnostic: after every function and callback is dropped it returns to
/// what it was.
pub fn registered_sections() -> usize {
    REGISTERED.load(Ordering::Relaxed)
}

/// An `.eh_frame` section registered with the system unwinder, removed on
/// drop. It must be dropped before the code it describes is unmapped.
pub(crate) struct Registration {
    /// The section; its address is what the unwinder keeps. (Not shrunk to
    /// a box: that would copy it.)
    section: Vec<u8>,
}

impl Registration {
    /// Registers the `.eh_frame` of the pieces of code just placed. `None`
    /// when it describes nothing.
    pub(crate) fn new(section: EhFrame) -> Option<Registration> {
        if section.is_empty() {
            return None;
        }
        let section = section.finish();
        // SAFETY: `section` is a complete .eh_frame (CIEs and FDEs with
        // absolute addresses) ending in a zero word, which it stays until
        // Drop deregisters it: the vector's buffer is never written, grown
        // or moved (moving the Vec moves only its pointer).
        unsafe { __register_frame(section.as_ptr()) };
        REGISTERED.fetch_add(1, Ordering::Relaxed);
        Some(Registration { section })
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        // SAFETY: the section was registered by `new` and not since
        // deregistered: each Registration deregisters once, here.
        unsafe { __deregister_frame(self.section.as_ptr()) };
        REGISTERED.fetch_sub(1, Ordering::Relaxed);
    }
}
