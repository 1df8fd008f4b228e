//! Executable memory: write while RW, flush, flip to RX, unmap on drop;
//! or, when asked, write through one view of a memfd and run from another.
//!
//! A [`CodeBlock`] built by [`CodeBlock::build`] is one anonymous mapping
//! holding one or more trampolines. It is written exactly once, while it
//! is readable and writable, then its instruction cache range is
//! synchronised and it is made readable and executable. It is never
//! writable and executable at once and never written after the flip.
//! Dropping it unmaps it; the functions placed in it share it through an
//! `Arc`, so the mapping goes when the last of them does.
//!
//! [`CodeBlock::build_double_mapped`] places code in a [`DoubleChunk`]
//! instead: a memfd mapped twice, read-write where jitcall writes and
//! read-execute where the code runs. No mapping is writable and executable,
//! and no mapping changes its protection, so `PR_SET_MDWE` and a seccomp
//! filter like systemd's `MemoryDenyWriteExecute` allow it; but a writable
//! alias of the code exists for the chunk's life, which weakens W^X, so it
//! is only used when asked for (`Options::double_map`). Blocks are packed
//! densely into the current chunk, 16 bytes apart.

use std::fmt;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use jitcall_emitters::unwind::EhFrame;

use crate::gdb_jit;
use crate::perf_map::Names;
use crate::unwind::Registration;

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

/// Trampolines, read-and-execute: a mapping of their own, or a range of a
/// double-mapped chunk.
pub(crate) struct CodeBlock {
    addr: *mut u8,
    len: usize,
    /// The chunk the block lies in, when double-mapped; the block then
    /// owns no mapping of its own.
    chunk: Option<Arc<DoubleChunk>>,
    /// How the code unwinds, registered with the system unwinder until the
    /// block is dropped.
    unwind: Option<Registration>,
    /// The pieces' names, registered with gdb (`JITCALL_GDB_JIT`).
    gdb: Option<gdb_jit::Registration>,
}

// SAFETY: after construction the mapping is read-only and executable and no
// code writes to it; sharing its address between threads is sound, and it
// is unmapped only by Drop, when no reference remains.
unsafe impl Send for CodeBlock {}
// SAFETY: as for Send: the mapping is immutable once built.
unsafe impl Sync for CodeBlock {}

impl CodeBlock {
    /// Maps at least `len` bytes RW, lets `fill` write code into them (it
    /// receives the mapping's address and the writable bytes, and returns
    /// the `.eh_frame` of the pieces it placed and their names for gdb),
    /// synchronises the instruction cache, flips the mapping to RX and
    /// registers the pieces' unwind information.
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
        fill: impl FnOnce(u64, &mut [u8]) -> (EhFrame, Names),
    ) -> Result<CodeBlock, MemoryRefused> {
        let size = len.max(1).next_multiple_of(page_size());
        // From here on Drop unmaps the block, whatever fails.
        let mut block = CodeBlock {
            addr: map_read_write(size, near)?,
            len: size,
            chunk: None,
            unwind: None,
            gdb: None,
        };
        // SAFETY: the mapping is ours, RW and `size` bytes long; no other
        // reference to it exists yet.
        let bytes = unsafe { std::slice::from_raw_parts_mut(block.addr, size) };
        let (pieces, names) = fill(block.addr as u64, bytes);
        dynasmrt::cache_control::synchronize_icache(bytes);
        // SAFETY: the range is exactly our own mapping; no Rust reference
        // into it outlives this call (`bytes` is not used again).
        let flipped =
            unsafe { libc::mprotect(block.addr.cast(), size, libc::PROT_READ | libc::PROT_EXEC) };
        if flipped != 0 {
            return Err(MemoryRefused::last("mprotect"));
        }
        block.unwind = Registration::new(pieces);
        block.gdb = gdb_jit::Registration::new(block.addr as u64, size, names);
        Ok(block)
    }

    /// Places `len` bytes of code in the current double-mapped chunk (a
    /// new chunk when it is full), lets `fill` write them through the
    /// read-write view (it receives the address the code runs at, and
    /// returns the `.eh_frame` and gdb names of the pieces it placed),
    /// synchronises the
    /// instruction cache and registers the unwind information.
    ///
    /// # Errors
    ///
    /// The refused system call and its errno, when a new chunk cannot be
    /// made: `memfd_create`, `ftruncate` or `mmap`.
    pub(crate) fn build_double_mapped(
        len: usize,
        fill: impl FnOnce(u64, &mut [u8]) -> (EhFrame, Names),
    ) -> Result<CodeBlock, MemoryRefused> {
        let len = len.max(1).next_multiple_of(CODE_ALIGN);
        let mut current = CURRENT_CHUNK.lock().unwrap_or_else(PoisonError::into_inner);
        let (chunk, offset) = match current.take() {
            Some((chunk, used)) if chunk.len - used >= len => (chunk, used),
            _ => (
                Arc::new(DoubleChunk::new(
                    len.max(CHUNK_BYTES).next_multiple_of(page_size()),
                )?),
                0,
            ),
        };
        *current = Some((Arc::clone(&chunk), offset + len));
        // Writing under the lock: no other block is placed in these bytes.
        // SAFETY: `offset + len` lies within the chunk, whose read-write
        // view is ours; no other reference to these bytes exists, since
        // each block gets bytes no other block has.
        let bytes = unsafe { std::slice::from_raw_parts_mut(chunk.rw.add(offset), len) };
        // SAFETY: as above, for the read-execute view of the same bytes.
        let addr = unsafe { chunk.rx.add(offset) };
        let (pieces, names) = fill(addr as u64, bytes);
        // Clean the written lines through the view they were written by,
        // invalidate the instruction cache through the view that runs them.
        dynasmrt::cache_control::synchronize_icache(bytes);
        // SAFETY: the read-execute view is readable for `len` bytes here.
        let code = unsafe { std::slice::from_raw_parts(addr, len) };
        dynasmrt::cache_control::synchronize_icache(code);
        sync_other_cores();
        Ok(CodeBlock {
            addr,
            len,
            chunk: Some(chunk),
            unwind: Registration::new(pieces),
            gdb: gdb_jit::Registration::new(addr as u64, len, names),
        })
    }

    /// The address of the first byte.
    pub(crate) fn addr(&self) -> u64 {
        self.addr as u64
    }

    /// The block's size in bytes: whole pages for a mapping of its own.
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

impl Drop for CodeBlock {
    fn drop(&mut self) {
        // The unwinder and gdb forget the code before it goes.
        drop(self.unwind.take());
        drop(self.gdb.take());
        if self.chunk.is_none() {
            // SAFETY: the mapping is ours and nothing refers to it any more:
            // the functions placed in it hold the Arc being dropped.
            unsafe { libc::munmap(self.addr.cast(), self.len) };
        }
    }
}

/// Blocks in a double-mapped chunk start this many bytes apart.
const CODE_ALIGN: usize = 16;

/// The size of a double-mapped chunk (more for a block that needs it).
const CHUNK_BYTES: usize = 64 << 10;

/// A double-mapped chunk and how many of its bytes are taken.
type Current = Option<(Arc<DoubleChunk>, usize)>;

/// The chunk blocks are placed in now.
static CURRENT_CHUNK: LazyLock<Mutex<Current>> = LazyLock::new(|| Mutex::new(None));

/// A memfd mapped twice: read-write at `rw`, read-execute at `rx`. Both
/// views are unmapped when the last block in it is dropped (the current
/// chunk's is kept by the allocator until a new chunk replaces it).
pub(crate) struct DoubleChunk {
    rw: *mut u8,
    rx: *mut u8,
    len: usize,
}

// SAFETY: the chunk is two mappings of one file. Bytes of the read-write
// view are written only by `build_double_mapped`, under the allocator's
// lock, each range once, before the block that holds them is shared; the
// read-execute view is only read and run.
unsafe impl Send for DoubleChunk {}
// SAFETY: as for Send.
unsafe impl Sync for DoubleChunk {}

impl DoubleChunk {
    /// A memfd of `len` bytes, mapped read-write and read-execute.
    fn new(len: usize) -> Result<DoubleChunk, MemoryRefused> {
        let name = c"jitcall-code";
        // MFD_EXEC says the memfd may be mapped executable where the
        // vm.memfd_noexec sysctl would otherwise seal it; kernels before
        // 6.3 do not know the flag and refuse it.
        // SAFETY: memfd_create takes a NUL-terminated name and flags.
        let mut fd =
            unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_EXEC) };
        if fd < 0 {
            // SAFETY: as above.
            fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
        }
        if fd < 0 {
            return Err(MemoryRefused::last("memfd_create"));
        }
        let result = DoubleChunk::map(fd, len);
        // The mappings keep the file alive; the descriptor is not needed.
        // SAFETY: `fd` is ours and closed once.
        unsafe { libc::close(fd) };
        result
    }

    /// Sizes the memfd `fd` to `len` bytes and maps both views of it.
    fn map(fd: libc::c_int, len: usize) -> Result<DoubleChunk, MemoryRefused> {
        let size = libc::off_t::try_from(len).map_err(|_| MemoryRefused {
            syscall: "ftruncate",
            errno: libc::EFBIG,
        })?;
        // SAFETY: `fd` is an open memfd.
        if unsafe { libc::ftruncate(fd, size) } != 0 {
            return Err(MemoryRefused::last("ftruncate"));
        }
        let view = |prot| {
            // SAFETY: a shared mapping of our own memfd, wherever the kernel
            // chooses; it touches no existing memory.
            let addr =
                unsafe { libc::mmap(std::ptr::null_mut(), len, prot, libc::MAP_SHARED, fd, 0) };
            if addr == libc::MAP_FAILED {
                Err(MemoryRefused::last("mmap"))
            } else {
                Ok(addr.cast::<u8>())
            }
        };
        let rw = view(libc::PROT_READ | libc::PROT_WRITE)?;
        match view(libc::PROT_READ | libc::PROT_EXEC) {
            Ok(rx) => Ok(DoubleChunk { rw, rx, len }),
            Err(refused) => {
                // SAFETY: the read-write view was just mapped and is ours.
                unsafe { libc::munmap(rw.cast(), len) };
                Err(refused)
            }
        }
    }
}

impl Drop for DoubleChunk {
    fn drop(&mut self) {
        // SAFETY: both views are ours; no block refers to them any more,
        // since every block holds an Arc of the chunk.
        unsafe {
            libc::munmap(self.rw.cast(), self.len);
            libc::munmap(self.rx.cast(), self.len);
        }
    }
}

/// Makes code just written through the other view safe for every thread
/// to run: on AArch64 each core must synchronise its instruction stream
/// before running code another core modified, which
/// `MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE` does for all of the
/// process's threads. x86_64 needs nothing for code at addresses no core
/// has run since it was written. Where the kernel lacks the command (before
/// 4.16, or under qemu-user), threads that receive a function through a
/// lock or a channel have been through the kernel or a barrier already.
fn sync_other_cores() {
    #[cfg(target_arch = "aarch64")]
    {
        static REGISTERED: LazyLock<bool> = LazyLock::new(|| {
            // SAFETY: membarrier takes a command and flags, and changes no
            // memory of ours.
            unsafe {
                libc::syscall(
                    libc::SYS_membarrier,
                    libc::MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE,
                    0,
                ) == 0
            }
        });
        if *REGISTERED {
            // SAFETY: as above.
            unsafe {
                libc::syscall(
                    libc::SYS_membarrier,
                    libc::MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE,
                    0,
                )
            };
        }
    }
}
