//! Executable memory: write while RW, flush, flip to RX, unmap on drop.
//!
//! A [`CodeBlock`] is one anonymous mapping holding one or more
//! trampolines. It is written exactly once, while it is readable and
//! writable, then its instruction cache range is synchronised and it is
//! made readable and executable. It is never writable and executable at
//! once and never written after the flip. Dropping it unmaps it; the
//! functions placed in it share it through an `Arc`, so the mapping goes
//! when the last of them does.

use std::fmt;

use region::Protection;

/// A system call that refused executable memory, with its errno.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryRefused {
    /// `"mmap"` or `"mprotect"`.
    pub syscall: &'static str,
    pub errno: i32,
}

impl fmt::Display for MemoryRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let reason = std::io::Error::from_raw_os_error(self.errno);
        write!(f, "{} refused: {reason}", self.syscall)
    }
}

impl MemoryRefused {
    fn from_region(syscall: &'static str, e: region::Error) -> MemoryRefused {
        MemoryRefused {
            syscall,
            errno: e.raw_os_error().unwrap_or(0),
        }
    }
}

/// One read-and-execute mapping of trampolines.
pub(crate) struct CodeBlock {
    mapping: region::Allocation,
}

// SAFETY: after construction the mapping is read-only and executable and no
// code writes to it; sharing its address between threads is sound, and it
// is unmapped only by Drop, when no reference remains.
unsafe impl Send for CodeBlock {}
// SAFETY: as for Send: the mapping is immutable once built.
unsafe impl Sync for CodeBlock {}

impl CodeBlock {
    /// Maps at least `len` bytes RW, lets `fill` write code into them (it
    /// receives the mapping's address and the writable bytes), synchronises
    /// the instruction cache and flips the mapping to RX.
    ///
    /// # Errors
    ///
    /// The refused system call and its errno: `mmap` when no RW mapping can
    /// be had, `mprotect` when the flip to RX is refused (W^X policies such
    /// as `PR_SET_MDWE`, SELinux `execmem` or a seccomp filter).
    pub(crate) fn build(
        len: usize,
        fill: impl FnOnce(u64, &mut [u8]),
    ) -> Result<CodeBlock, MemoryRefused> {
        let mut mapping = region::alloc(len.max(1), Protection::READ_WRITE)
            .map_err(|e| MemoryRefused::from_region("mmap", e))?;
        let base = mapping.as_ptr::<u8>() as u64;
        let size = mapping.len();
        // SAFETY: the mapping is ours, RW and `size` bytes long; no other
        // reference to it exists yet.
        let bytes = unsafe { std::slice::from_raw_parts_mut(mapping.as_mut_ptr::<u8>(), size) };
        fill(base, bytes);
        dynasmrt::cache_control::synchronize_icache(bytes);
        // SAFETY: the range is exactly our own mapping; no Rust reference
        // into it outlives this call (`bytes` is not used again).
        unsafe { region::protect(mapping.as_ptr::<u8>(), size, Protection::READ_EXECUTE) }
            .map_err(|e| MemoryRefused::from_region("mprotect", e))?;
        Ok(CodeBlock { mapping })
    }

    /// The address of the first byte.
    pub(crate) fn addr(&self) -> u64 {
        self.mapping.as_ptr::<u8>() as u64
    }

    /// The mapping's size in bytes (whole pages).
    pub(crate) fn len(&self) -> usize {
        self.mapping.len()
    }
}
