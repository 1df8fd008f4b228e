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
    /// The refusal of `syscall` with the calling thread's errno.
    fn last(syscall: &'static str) -> MemoryRefused {
        MemoryRefused {
            syscall,
            errno: std::io::Error::last_os_error().raw_os_error().unwrap_or(0),
        }
    }
}

/// The system's page size.
fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size).unwrap_or(4096)
}

/// Distances below and above a target at which a mapping is tried, all
/// within reach of x86_64's rel32 branches (±2 GiB) and the first two of
/// AArch64's `bl` (±128 MiB).
const NEAR_OFFSETS: [i64; 6] = [
    -(64 << 20),
    64 << 20,
    -(512 << 20),
    512 << 20,
    -(1536 << 20),
    1536 << 20,
];

/// Maps `size` bytes read-write, near `near` when it is given and the
/// address space there is free, anywhere otherwise.
fn map_read_write(size: usize, near: Option<u64>) -> Result<*mut u8, MemoryRefused> {
    let prot = libc::PROT_READ | libc::PROT_WRITE;
    let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
    let page = page_size() as u64;
    let hints = near.into_iter().flat_map(|target| {
        NEAR_OFFSETS
            .iter()
            .filter_map(move |&off| target.checked_add_signed(off))
            .map(move |addr| addr & !(page - 1))
            .filter(|&addr| addr >= 1 << 20)
    });
    for hint in hints {
        // MAP_FIXED_NOREPLACE fails rather than replace anything mapped
        // there; kernels before 4.17 take it as a plain hint.
        // SAFETY: an anonymous mapping at a hint touches no existing memory.
        let addr = unsafe {
            libc::mmap(
                hint as *mut libc::c_void,
                size,
                prot,
                flags | libc::MAP_FIXED_NOREPLACE,
                -1,
                0,
            )
        };
        if addr != libc::MAP_FAILED {
            return Ok(addr.cast());
        }
    }
    // SAFETY: an anonymous mapping wherever the kernel chooses.
    let addr = unsafe { libc::mmap(std::ptr::null_mut(), size, prot, flags, -1, 0) };
    if addr == libc::MAP_FAILED {
        return Err(MemoryRefused::last("mmap"));
    }
    Ok(addr.cast())
}

/// One read-and-execute mapping of trampolines.
pub(crate) struct CodeBlock {
    addr: *mut u8,
    len: usize,
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
    /// With `near`, the mapping is placed within direct-branch reach of that
    /// address when the address space there is free, so that trampolines
    /// reach their target with a direct call instead of through a register.
    ///
    /// # Errors
    ///
    /// The refused system call and its errno: `mmap` when no RW mapping can
    /// be had, `mprotect` when the flip to RX is refused (W^X policies such
    /// as `PR_SET_MDWE`, SELinux `execmem` or a seccomp filter).
    pub(crate) fn build(
        len: usize,
        near: Option<u64>,
        fill: impl FnOnce(u64, &mut [u8]),
    ) -> Result<CodeBlock, MemoryRefused> {
        let size = len.max(1).next_multiple_of(page_size());
        // From here on Drop unmaps the block, whatever fails.
        let block = CodeBlock {
            addr: map_read_write(size, near)?,
            len: size,
        };
        // SAFETY: the mapping is ours, RW and `size` bytes long; no other
        // reference to it exists yet.
        let bytes = unsafe { std::slice::from_raw_parts_mut(block.addr, size) };
        fill(block.addr as u64, bytes);
        dynasmrt::cache_control::synchronize_icache(bytes);
        // SAFETY: the range is exactly our own mapping; no Rust reference
        // into it outlives this call (`bytes` is not used again).
        let flipped =
            unsafe { libc::mprotect(block.addr.cast(), size, libc::PROT_READ | libc::PROT_EXEC) };
        if flipped != 0 {
            return Err(MemoryRefused::last("mprotect"));
        }
        Ok(block)
    }

    /// The address of the first byte.
    pub(crate) fn addr(&self) -> u64 {
        self.addr as u64
    }

    /// The mapping's size in bytes (whole pages).
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

impl Drop for CodeBlock {
    fn drop(&mut self) {
        // SAFETY: the mapping is ours and nothing refers to it any more: the
        // functions placed in it hold the Arc being dropped.
        unsafe { libc::munmap(self.addr.cast(), self.len) };
    }
}
