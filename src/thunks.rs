//! Static thunks: C-callable entry points made without writing any
//! executable memory, the way libffi's static trampolines are made.
//!
//! The library's text holds a table of identical 16-byte thunks under the
//! hidden symbol `jitcall_thunk_table_0_1`, [`TABLE_BYTES`] long and
//! aligned to its own size. [`thunk`] maps the file page(s) holding it a
//! second time, read-execute, at an address `X`, with a read-write
//! anonymous mapping of the same size right after it. Thunk `i`, at
//! `X + 16i`, reads data slot `i`, at `X + TABLE_BYTES + 16i`, with
//! PC-relative loads: the slot's first word (the *target*) into the thunk
//! register, and its second (the *stub*), which it jumps to. Code and data
//! share one layout, so one displacement serves every thunk and every
//! thunk is the same bytes. Binding a thunk is two stores into its data
//! slot ([`Thunk::set`]).
//!
//! ```text
//!  X                               X + TABLE_BYTES
//!  | thunk 0 | thunk 1 | … |       | target 0, stub 0 | target 1, stub 1 | … |
//!    r-x, the table's file pages      rw-, anonymous; two u64 per slot
//!  <------ TABLE_BYTES ----->       <------------ TABLE_BYTES ------------>
//! ```
//!
//! | ISA | table | thunks per table | thunk register | also written | code of thunk `i` (`T` = its address) |
//! |---|---|---|---|---|---|
//! | x86_64 | 4 KiB (the only page size) | 256 | `r11` | nothing | `4c 8b 1d <TABLE-7>` = `mov r11, [rip+TABLE-7]` (rip = T+7, so it reads T+TABLE); `ff 25 <TABLE-5>` = `jmp [rip+TABLE-5]` (rip = T+13: T+TABLE+8); `cc cc cc` = `int3` padding |
//! | AArch64 | 64 KiB (a whole number of 4, 16 or 64 KiB pages) | 4,096 | `x16` | `x17` | `ldr x16, T+TABLE`; `ldr x17, T+4+TABLE+4`; `br x17`; `brk #0` padding. LDR (literal) reaches ±1 MiB; `TABLE+8` is far inside |
//!
//! A thunk touches nothing but its register(s): the argument registers,
//! the stack pointer and the return address on the stack (x86_64) or in
//! `x30` (AArch64) reach the stub exactly as the thunk's caller left
//! them, so the stub sees the call as if made to itself, with the target
//! in the thunk register, and may tail-call the target.
//!
//! # W^X
//!
//! Nothing executable is ever written, by jitcall or anyone: the code
//! pages are the table's pages of the library's file, which the kernel
//! maps from its page cache as the dynamic loader mapped the text; no
//! mapping is writable and executable at any moment, and no protection
//! ever changes (no `mprotect` at all). The three `mmap` calls per table
//! are a `PROT_NONE` reservation of twice the table, the file's pages
//! `PROT_READ | PROT_EXEC` with `MAP_FIXED` over its first half, and an
//! anonymous `PROT_READ | PROT_WRITE` mapping over its second half. No
//! instruction-cache maintenance is needed either, since nobody writes the
//! code: the kernel keeps file pages coherent when it maps them
//! executable, as it does for every shared library. The bytes mapped are
//! compared with the table in the loaded text before any thunk in them is
//! handed out, so a file changed on disk since it was loaded is refused
//! ([`ThunksUnavailable::FileChanged`]) rather than run.
//!
//! # Which refusals of executable memory it survives
//!
//! | mechanism | what it refuses | our calls | survives |
//! |---|---|---|---|
//! | `PR_SET_MDWE` with `PR_MDWE_REFUSE_EXEC_GAIN` | a mapping writable and executable; `mprotect` adding `PROT_EXEC` to memory that lacked it | a new mapping that is read-execute from birth | yes: **verified** by a unit test in a child process |
//! | seccomp filter like systemd's `MemoryDenyWriteExecute` | `mprotect`/`pkey_mprotect` with `PROT_EXEC`; `mmap` with `PROT_WRITE` and `PROT_EXEC` | `mmap(PROT_READ \| PROT_EXEC)` of a file, no `PROT_WRITE` | yes: **verified** the same way |
//! | SELinux without `execmem` (`deny_execmem`) | anonymous executable memory, and writable private file mappings made executable (`execmod`) | a private, never-written, read-execute mapping of the library's own file, which needs only `read` and `execute` on that file, as loading it did | yes: **reasoned**, not tested here |
//! | PaX `MPROTECT` | `mprotect` adding `PROT_EXEC`; executable anonymous mappings; writable and executable ones | a new read-execute file mapping, which is what `dlopen` makes | yes: **reasoned**, not tested here |
//!
//! It fails, with a [`ThunksUnavailable`] saying why, where the table's
//! file cannot be found again or may not be mapped executable: the
//! mapping holding the table has no file behind it (text remapped to
//! anonymous huge pages, say) or a deleted one (a binary run from a memfd
//! or replaced on disk shows as `(deleted)`), the file cannot be opened
//! (unreadable, or gone from a chroot or mount namespace), or a policy
//! refuses mapping files executable after load: a `noexec` mount (the
//! loader mapped the file before it was remounted, say), fapolicyd, an
//! LSM rule on `mmap` of files. Those are reasoned, not tested; whatever
//! their errno, it comes back in [`ThunksUnavailable::Refused`] or
//! [`ThunksUnavailable::File`]. A target without a table (anything but
//! Linux on x86_64 or AArch64) gets [`ThunksUnavailable::UnsupportedTarget`].
//!
//! # The pool
//!
//! The tables live in a process-wide pool, each with a free list of its
//! slots. [`thunk`] takes a free slot, from a table holding live thunks
//! in preference to an empty one, and maps a new table only when every
//! slot of the mapped ones is taken, so the tables never outnumber
//! `ceil(peak live thunks / thunks per table)`. Dropping a [`Thunk`]
//! points its slot at a stub that traps and frees it. A table whose last
//! thunk is dropped is unmapped, unless it is the only empty one: one
//! empty table stays mapped, so that taking and dropping one thunk at a
//! table boundary does not map and unmap a table each time. Where the
//! table's file is, is looked up in `/proc/self/maps` once per process and
//! the answer (or the reason there is none) kept; the file is opened
//! again, and closed, for each new table.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{c_void, OsStr};
use std::fmt;
use std::ops::Range;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use crate::memory::MemoryRefused;

/// The bytes of one thunk, and of one data slot: they must be equal, so
/// that data slot `i` lies exactly [`TABLE_BYTES`] past thunk `i`.
pub(crate) const THUNK_BYTES: usize = 16;

/// The size of the table of thunks in the library's text, and of each
/// table's data mapping: 0 where the target has no table.
pub(crate) const TABLE_BYTES: usize = isa::TABLE_BYTES;

/// Thunks per table: [`TABLE_BYTES`] / [`THUNK_BYTES`].
const PER_TABLE: usize = TABLE_BYTES / THUNK_BYTES;

// Free lists hold slot indices as u16.
const _: () = assert!(PER_TABLE <= 1 << 16);

/// How many thunks one table holds (0 where the target has none).
#[cfg(test)]
fn thunks_per_table() -> usize {
    PER_TABLE
}

/// The table, per ISA: the thunks as above under
/// `jitcall_thunk_table_0_1`, and `jitcall_thunk_trap_0_1` right after,
/// the stub a freed slot points at. The symbols carry the crate's version,
/// as the baked code's does, so that two versions of jitcall linked into
/// one program do not clash. `table_bytes!` is the one definition of the
/// size, a literal so that the assembler text can include it.
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod isa {
    /// Linux on x86_64 has 4 KiB pages only.
    macro_rules! table_bytes {
        () => {
            4096
        };
    }

    pub(super) const TABLE_BYTES: usize = table_bytes!();

    // Intel syntax. Each thunk is 16 bytes: `mov r11, [rip+disp32]`
    // (4c 8b 1d, 7 bytes), `jmp [rip+disp32]` (ff 25, 6 bytes), three
    // `int3`. The trap is `ud2` (SIGILL).
    core::arch::global_asm!(
        ".pushsection .text.jitcall_thunk_table_0_1,\"ax\",%progbits",
        concat!(".balign ", table_bytes!()),
        ".globl jitcall_thunk_table_0_1",
        ".hidden jitcall_thunk_table_0_1",
        "jitcall_thunk_table_0_1:",
        // One frame description for the whole table: a thunk touches no
        // stack, so its caller's frame is the entry's throughout.
        ".cfi_startproc",
        concat!(".rept ", table_bytes!(), " / 16"),
        // rip is the thunk's address + 7 here: the target, word 0 of the
        // slot at thunk + TABLE.
        concat!("mov r11, qword ptr [rip + ", table_bytes!(), " - 7]"),
        // rip is thunk + 13 here: the stub, word 1, at thunk + TABLE + 8.
        concat!("jmp qword ptr [rip + ", table_bytes!(), " - 5]"),
        "int3",
        "int3",
        "int3",
        ".endr",
        ".cfi_endproc",
        ".globl jitcall_thunk_trap_0_1",
        ".hidden jitcall_thunk_trap_0_1",
        "jitcall_thunk_trap_0_1:",
        "ud2",
        ".popsection",
    );
}

/// See the x86_64 module.
#[cfg(all(target_os = "linux", target_arch = "aarch64"))]
mod isa {
    /// 64 KiB: a whole number of pages, and page-aligned in the file, for
    /// each of AArch64 Linux's 4, 16 and 64 KiB page sizes.
    macro_rules! table_bytes {
        () => {
            65536
        };
    }

    pub(super) const TABLE_BYTES: usize = table_bytes!();

    // Each thunk is 16 bytes: two LDR (literal), `br x17`, `brk #0`. The
    // literal's offset is a 19-bit word count (±1 MiB): TABLE + 4 bytes at
    // most. x16 and x17 are the intra-procedure-call scratch registers
    // (IP0, IP1) that linker veneers use the same way. The trap is
    // `udf #0` (SIGILL).
    core::arch::global_asm!(
        ".pushsection .text.jitcall_thunk_table_0_1,\"ax\",%progbits",
        concat!(".balign ", table_bytes!()),
        ".globl jitcall_thunk_table_0_1",
        ".hidden jitcall_thunk_table_0_1",
        "jitcall_thunk_table_0_1:",
        // One frame description for the whole table, as on x86_64.
        ".cfi_startproc",
        concat!(".rept ", table_bytes!(), " / 16"),
        // The target, word 0 of the slot at thunk + TABLE.
        concat!("ldr x16, . + ", table_bytes!()),
        // The stub, word 1: at thunk + TABLE + 8, and `.` is thunk + 4.
        concat!("ldr x17, . + ", table_bytes!(), " + 4"),
        "br x17",
        "brk #0",
        ".endr",
        ".cfi_endproc",
        ".globl jitcall_thunk_trap_0_1",
        ".hidden jitcall_thunk_trap_0_1",
        "jitcall_thunk_trap_0_1:",
        "udf #0",
        ".popsection",
    );
}

/// No table: [`thunk`] says [`ThunksUnavailable::UnsupportedTarget`].
#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
)))]
mod isa {
    use std::ffi::c_void;

    pub(super) const TABLE_BYTES: usize = 0;

    pub(super) fn table() -> Option<&'static [u8]> {
        None
    }

    pub(super) fn trap() -> *const c_void {
        std::ptr::null()
    }
}

#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
mod symbols {
    use std::ffi::c_void;

    use super::TABLE_BYTES;

    extern "C" {
        static jitcall_thunk_table_0_1: [u8; TABLE_BYTES];
        fn jitcall_thunk_trap_0_1();
    }

    /// The table in this library's text, as loaded.
    pub(super) fn table() -> Option<&'static [u8]> {
        // SAFETY: the symbol names TABLE_BYTES bytes of this library's
        // text (the global_asm! block above), mapped readable for the
        // life of the process and never written.
        Some(unsafe { &jitcall_thunk_table_0_1 })
    }

    /// The stub a freed slot points at: one trapping instruction.
    pub(super) fn trap() -> *const c_void {
        jitcall_thunk_trap_0_1 as *const c_void
    }
}

#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
use symbols::{table, trap};

#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
)))]
use isa::{table, trap};

/// Why static thunks are unavailable in this process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ThunksUnavailable {
    /// The target has no table: only Linux on x86_64 and AArch64 has.
    UnsupportedTarget,
    /// The system's page size does not divide the table.
    PageSize { page: usize },
    /// `/proc/self/maps` could not be read.
    MapsUnreadable { errno: i32 },
    /// No executable mapping in `/proc/self/maps` holds the whole table.
    NotMapped,
    /// The mapping that holds the table has no file behind it.
    NoFile,
    /// The file that holds the table was deleted (or replaced) since it
    /// was mapped.
    Deleted,
    /// The table's offset in its file is not a multiple of the page size,
    /// so it cannot be mapped on its own.
    Misaligned { offset: u64, page: usize },
    /// A call on the table's file failed: `open` or `fstat`.
    File { syscall: &'static str, errno: i32 },
    /// The file no longer holds the table where the process loaded it
    /// from: it was changed, replaced or truncated on disk.
    FileChanged,
    /// Mapping a table was refused.
    Refused(MemoryRefused),
}

impl fmt::Display for ThunksUnavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let os = |errno: i32| std::io::Error::from_raw_os_error(errno);
        match *self {
            ThunksUnavailable::UnsupportedTarget => {
                f.write_str("no static thunk table for this target")
            }
            ThunksUnavailable::PageSize { page } => write!(
                f,
                "the page size, {page} bytes, does not divide the {TABLE_BYTES}-byte thunk table"
            ),
            ThunksUnavailable::MapsUnreadable { errno } => {
                write!(f, "/proc/self/maps unreadable: {}", os(errno))
            }
            ThunksUnavailable::NotMapped => {
                f.write_str("no executable mapping in /proc/self/maps holds the thunk table")
            }
            ThunksUnavailable::NoFile => {
                f.write_str("the mapping holding the thunk table has no file behind it")
            }
            ThunksUnavailable::Deleted => {
                f.write_str("the file holding the thunk table was deleted")
            }
            ThunksUnavailable::Misaligned { offset, page } => write!(
                f,
                "the thunk table is at file offset {offset:#x}, not a multiple of the \
                 {page}-byte page"
            ),
            ThunksUnavailable::File { syscall, errno } => write!(
                f,
                "{syscall} of the file holding the thunk table failed: {}",
                os(errno)
            ),
            ThunksUnavailable::FileChanged => {
                f.write_str("the file no longer holds the thunk table the process loaded")
            }
            ThunksUnavailable::Refused(refused) => write!(f, "thunk table {refused}"),
        }
    }
}

impl std::error::Error for ThunksUnavailable {}

/// One static thunk: a C-callable address that jumps to its stub with its
/// target in the thunk register (`r11` on x86_64, `x16` on AArch64). It
/// keeps its table mapped while it lives.
pub(crate) struct Thunk {
    page: Arc<ThunkPage>,
    index: usize,
}

impl Thunk {
    /// The thunk's address: call it with the stub's calling convention.
    pub(crate) fn entry(&self) -> *const c_void {
        self.page
            .code()
            .wrapping_add(self.index * THUNK_BYTES)
            .cast()
    }

    /// Points the thunk at `stub` with `target`: two stores into its data
    /// slot, the target first, then the stub, each a whole aligned 64-bit
    /// atomic store with `Release` ordering.
    ///
    /// A call that does not race this one (that happens after it: the
    /// entry was published to the calling thread after `set`, through a
    /// mutex, a channel, a spawn or any `Release`/`Acquire` pair) jumps
    /// to the new stub with the new target. A call racing it reads each
    /// word whole, never torn, but the pair is not one atomic unit: the
    /// thunk's two loads are plain loads, ordered against these stores on
    /// neither ISA, so a racing call may combine the old target with the
    /// new stub or the new target with the old stub. Re-point a thunk that
    /// may be running only when one of the words stays the same (a new
    /// target for the same stub: each call then gets the old target or the
    /// new one), or when a mixed pair is harmless to the stub.
    pub(crate) fn set(&self, target: *const c_void, stub: *const c_void) {
        self.page.set(self.index, target, stub);
    }
}

impl Drop for Thunk {
    /// Points the slot at the trap stub with a null target and frees it: a
    /// late call through the entry traps (SIGILL) while the table is
    /// mapped, and faults once it is unmapped, but reaches no old target
    /// unless it races the drop (see [`Thunk::set`]).
    fn drop(&mut self) {
        self.page.set(self.index, std::ptr::null(), trap());
        // Not the last reference to the table when the pool lets go of it
        // (`self.page` is): the unmap happens after the lock is released.
        let released = lock().give_back(&self.page, self.index);
        drop(released);
    }
}

impl fmt::Debug for Thunk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Thunk")
            .field("entry", &self.entry())
            .finish()
    }
}

/// A new thunk, pointed at the trap stub, mapping a new table when every
/// slot of the mapped ones is taken.
///
/// # Errors
///
/// Why static thunks are unavailable: the table's file cannot be found,
/// opened or mapped again (see the module docs).
pub(crate) fn thunk() -> Result<Thunk, ThunksUnavailable> {
    let mut pool = lock();
    if let Some((page, index)) = pool.take() {
        return Ok(Thunk { page, index });
    }
    // Mapping under the lock: two threads never map a table for one slot.
    let page = Arc::new(ThunkPage::map(source()?)?);
    let (page, index) = pool.add(page);
    Ok(Thunk { page, index })
}

/// The system's page size.
fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size).unwrap_or(4096)
}

/// The calling thread's errno after `syscall` failed, as a refusal.
fn refused(syscall: &'static str) -> ThunksUnavailable {
    ThunksUnavailable::Refused(MemoryRefused {
        syscall,
        errno: errno_of(&std::io::Error::last_os_error()),
    })
}

fn errno_of(error: &std::io::Error) -> i32 {
    error.raw_os_error().unwrap_or(0)
}

/// Where the table lives on disk.
#[derive(Debug)]
struct Source {
    path: PathBuf,
    /// The table's offset in the file: a multiple of the page size.
    offset: u64,
}

/// Where the table lives on disk, looked up once per process.
fn source() -> Result<&'static Source, ThunksUnavailable> {
    static SOURCE: OnceLock<Result<Source, ThunksUnavailable>> = OnceLock::new();
    SOURCE.get_or_init(locate).as_ref().map_err(|why| *why)
}

/// Finds the file and offset holding the table in `/proc/self/maps`: the
/// executable mapping that contains it, its path, and its offset plus the
/// table's distance from its start.
fn locate() -> Result<Source, ThunksUnavailable> {
    let table = table().ok_or(ThunksUnavailable::UnsupportedTarget)?;
    let page = page_size();
    if page == 0 || TABLE_BYTES % page != 0 {
        return Err(ThunksUnavailable::PageSize { page });
    }
    let maps = std::fs::read("/proc/self/maps").map_err(|e| ThunksUnavailable::MapsUnreadable {
        errno: errno_of(&e),
    })?;
    let start = table.as_ptr() as u64;
    let end = start + TABLE_BYTES as u64;
    let mapping = maps
        .split(|&b| b == b'\n')
        .filter_map(MapsLine::parse)
        .find(|m| m.range.contains(&start) && m.is_executable())
        .ok_or(ThunksUnavailable::NotMapped)?;
    if mapping.range.end < end {
        return Err(ThunksUnavailable::NotMapped);
    }
    // Anonymous mappings have no path; pseudo-files ([vdso], [anon:…])
    // are in brackets.
    if !mapping.path.starts_with(b"/") {
        return Err(ThunksUnavailable::NoFile);
    }
    if mapping.path.ends_with(b" (deleted)") {
        return Err(ThunksUnavailable::Deleted);
    }
    let offset = mapping.offset + (start - mapping.range.start);
    if offset % page as u64 != 0 {
        return Err(ThunksUnavailable::Misaligned { offset, page });
    }
    Ok(Source {
        path: PathBuf::from(OsStr::from_bytes(mapping.path)),
        offset,
    })
}

/// One line of `/proc/self/maps`:
/// `start-end perms offset dev inode [path]`, numbers in hex.
#[derive(Debug, PartialEq, Eq)]
struct MapsLine<'a> {
    range: Range<u64>,
    perms: &'a [u8],
    offset: u64,
    /// Empty for an anonymous mapping; may hold spaces. Bytes, not text:
    /// a path need not be UTF-8.
    path: &'a [u8],
}

impl<'a> MapsLine<'a> {
    fn parse(line: &'a [u8]) -> Option<MapsLine<'a>> {
        let mut rest = line;
        let hex = |field: &[u8]| u64::from_str_radix(std::str::from_utf8(field).ok()?, 16).ok();
        let (start, end) = split_once(next_field(&mut rest)?, b'-')?;
        let perms = next_field(&mut rest)?;
        let offset = hex(next_field(&mut rest)?)?;
        let _device = next_field(&mut rest)?;
        let _inode = next_field(&mut rest)?;
        let path = match rest.iter().position(|&b| b != b' ') {
            Some(at) => &rest[at..],
            None => &[],
        };
        Some(MapsLine {
            range: hex(start)?..hex(end)?,
            perms,
            offset,
            path,
        })
    }

    fn is_executable(&self) -> bool {
        self.perms.get(2) == Some(&b'x')
    }
}

/// The next space-separated field of `rest`, which moves past it.
fn next_field<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
    let start = rest.iter().position(|&b| b != b' ')?;
    let tail = &rest[start..];
    let len = tail.iter().position(|&b| b == b' ').unwrap_or(tail.len());
    let (field, after) = tail.split_at(len);
    *rest = after;
    Some(field)
}

fn split_once(bytes: &[u8], separator: u8) -> Option<(&[u8], &[u8])> {
    let at = bytes.iter().position(|&b| b == separator)?;
    Some((&bytes[..at], &bytes[at + 1..]))
}

/// Address space for one table, `2 * TABLE_BYTES` long: unmapped whole on
/// drop, whatever has been mapped over it.
struct Reservation {
    base: *mut u8,
}

impl Reservation {
    fn new() -> Result<Reservation, ThunksUnavailable> {
        // SAFETY: a new anonymous mapping wherever the kernel chooses
        // touches no existing memory.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                2 * TABLE_BYTES,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(refused("mmap"));
        }
        Ok(Reservation { base: base.cast() })
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        // SAFETY: the range is the reservation, ours alone; what refers
        // into it (a ThunkPage, its Thunks) is gone when this runs.
        unsafe { libc::munmap(self.base.cast(), 2 * TABLE_BYTES) };
    }
}

/// One mapped table: the file's thunks read-execute, then their data
/// slots read-write.
struct ThunkPage {
    reservation: Reservation,
}

// SAFETY: the code half is read-only and the data half is only accessed
// through atomics (`slot`); the mapping is unmapped only by Drop, when no
// reference remains, so sharing the page between threads is sound.
unsafe impl Send for ThunkPage {}
// SAFETY: as for Send.
unsafe impl Sync for ThunkPage {}

impl ThunkPage {
    /// Maps a table from `source` over a new reservation, checks that it
    /// holds the table, and points every slot at the trap stub.
    fn map(source: &Source) -> Result<ThunkPage, ThunksUnavailable> {
        let table = table().ok_or(ThunksUnavailable::UnsupportedTarget)?;
        // From here on, dropping the reservation unmaps whatever is mapped.
        let reservation = Reservation::new()?;
        let file = std::fs::File::open(&source.path).map_err(|e| ThunksUnavailable::File {
            syscall: "open",
            errno: errno_of(&e),
        })?;
        // Touching a page past the file's end would raise SIGBUS.
        let len = file
            .metadata()
            .map_err(|e| ThunksUnavailable::File {
                syscall: "fstat",
                errno: errno_of(&e),
            })?
            .len();
        let offset = libc::off_t::try_from(source.offset)
            .ok()
            .filter(|_| source.offset.saturating_add(TABLE_BYTES as u64) <= len)
            .ok_or(ThunksUnavailable::FileChanged)?;
        // SAFETY: MAP_FIXED replaces the first half of the reservation,
        // which is ours and which nothing refers to; the offset is a
        // multiple of the page size (`locate`) and TABLE_BYTES bytes of
        // the file lie past it.
        let code = unsafe {
            libc::mmap(
                reservation.base.cast(),
                TABLE_BYTES,
                libc::PROT_READ | libc::PROT_EXEC,
                libc::MAP_PRIVATE | libc::MAP_FIXED,
                file.as_raw_fd(),
                offset,
            )
        };
        if code == libc::MAP_FAILED {
            // Read errno before closing the file can change it.
            return Err(refused("mmap"));
        }
        drop(file);
        // SAFETY: as above, for the second half, anonymous.
        let data = unsafe {
            libc::mmap(
                reservation.base.wrapping_add(TABLE_BYTES).cast(),
                TABLE_BYTES,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        if data == libc::MAP_FAILED {
            return Err(refused("mmap"));
        }
        let page = ThunkPage { reservation };
        // SAFETY: the code half is mapped readable, TABLE_BYTES long, for
        // as long as `page` lives; nothing writes it.
        let mapped = unsafe { std::slice::from_raw_parts(page.code(), TABLE_BYTES) };
        if mapped != table {
            return Err(ThunksUnavailable::FileChanged);
        }
        for index in 0..PER_TABLE {
            page.set(index, std::ptr::null(), trap());
        }
        Ok(page)
    }

    /// The first thunk: the table's address.
    fn code(&self) -> *const u8 {
        self.reservation.base
    }

    /// The table's key in the pool.
    fn key(&self) -> usize {
        self.code() as usize
    }

    /// Data slot `index`: the target, then the stub.
    fn slot(&self, index: usize) -> &[AtomicU64; 2] {
        assert!(
            index < PER_TABLE,
            "slot indices come from a table's free list, below {PER_TABLE}"
        );
        // SAFETY: the data half is mapped read-write for as long as `self`
        // lives, 8-byte aligned (page-aligned, slots 16 bytes apart), and
        // slot `index` lies inside it; it is only ever accessed through
        // these atomics, whose layout is u64's.
        unsafe {
            &*self
                .code()
                .add(TABLE_BYTES + index * THUNK_BYTES)
                .cast::<[AtomicU64; 2]>()
        }
    }

    fn set(&self, index: usize, target: *const c_void, stub: *const c_void) {
        let [target_word, stub_word] = self.slot(index);
        target_word.store(target as u64, Ordering::Release);
        stub_word.store(stub as u64, Ordering::Release);
    }
}

/// The mapped tables and their free slots.
struct Pool {
    /// Every mapped table, by its address.
    tables: BTreeMap<usize, Table>,
    /// The tables with at least one free slot.
    with_free: BTreeSet<usize>,
    /// The one empty table kept mapped, if any.
    spare: Option<usize>,
}

struct Table {
    page: Arc<ThunkPage>,
    /// Free slot indices, the next to take last.
    free: Vec<u16>,
}

static POOL: Mutex<Pool> = Mutex::new(Pool {
    tables: BTreeMap::new(),
    with_free: BTreeSet::new(),
    spare: None,
});

/// The pool. Nothing under its lock panics but allocation, and a poisoned
/// pool is still consistent: every update keeps the invariants between
/// the statements that can fail.
fn lock() -> MutexGuard<'static, Pool> {
    POOL.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Pool {
    /// A free slot, from a table that holds live thunks if any has one,
    /// else from the spare; `None` when every slot is taken.
    fn take(&mut self) -> Option<(Arc<ThunkPage>, usize)> {
        let spare = self.spare;
        let key = self
            .with_free
            .iter()
            .copied()
            .find(|&key| Some(key) != spare)
            .or(spare)?;
        let table = self.tables.get_mut(&key)?;
        let index = table.free.pop()?;
        if table.free.is_empty() {
            self.with_free.remove(&key);
        }
        if spare == Some(key) {
            self.spare = None;
        }
        Some((Arc::clone(&table.page), usize::from(index)))
    }

    /// Records a newly mapped table and takes its slot 0.
    fn add(&mut self, page: Arc<ThunkPage>) -> (Arc<ThunkPage>, usize) {
        let key = page.key();
        // Handed out from slot 1 up. The cast is exact: PER_TABLE is at
        // most 1 << 16 (asserted at its definition).
        let free: Vec<u16> = (1..PER_TABLE).rev().map(|index| index as u16).collect();
        if !free.is_empty() {
            self.with_free.insert(key);
        }
        self.tables.insert(
            key,
            Table {
                page: Arc::clone(&page),
                free,
            },
        );
        (page, 0)
    }

    /// Frees slot `index` of `page`. Returns the pool's reference to the
    /// table when it is now empty and another empty table is kept already.
    fn give_back(&mut self, page: &ThunkPage, index: usize) -> Option<Arc<ThunkPage>> {
        let key = page.key();
        let table = self.tables.get_mut(&key)?;
        table.free.push(u16::try_from(index).ok()?);
        self.with_free.insert(key);
        if table.free.len() < PER_TABLE {
            return None;
        }
        match self.spare {
            Some(spare) if spare != key => {
                self.with_free.remove(&key);
                self.tables.remove(&key).map(|table| table.page)
            }
            _ => {
                self.spare = Some(key);
                None
            }
        }
    }
}

/// How many tables are mapped.
#[cfg(test)]
fn mapped_tables() -> usize {
    lock().tables.len()
}

// The refusal helpers of `tests/refused.rs`, shared with the library's
// unit tests, which re-execute their own binary the same way.
#[cfg(all(
    test,
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
#[path = "../tests/refusal/mod.rs"]
mod refusal;

#[cfg(all(
    test,
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
mod tests {
    use std::collections::BTreeSet;
    use std::ffi::c_void;
    use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

    use jitcall_fixtures::process::{self, notice};

    use super::refusal::{self, Restriction};
    use super::*;

    // Two stubs for the tests, entered from a thunk with the target in its
    // register: one tail-jumps to the target, the other returns the
    // target's value itself.
    #[cfg(target_arch = "x86_64")]
    core::arch::global_asm!(
        ".pushsection .text.jitcall_test_thunk_stubs,\"ax\",%progbits",
        ".p2align 4",
        ".globl jitcall_test_thunk_jump",
        ".hidden jitcall_test_thunk_jump",
        "jitcall_test_thunk_jump:",
        "jmp r11",
        ".p2align 4",
        ".globl jitcall_test_thunk_return_target",
        ".hidden jitcall_test_thunk_return_target",
        "jitcall_test_thunk_return_target:",
        "mov rax, r11",
        "ret",
        ".popsection",
    );

    #[cfg(target_arch = "aarch64")]
    core::arch::global_asm!(
        ".pushsection .text.jitcall_test_thunk_stubs,\"ax\",%progbits",
        ".p2align 4",
        ".globl jitcall_test_thunk_jump",
        ".hidden jitcall_test_thunk_jump",
        "jitcall_test_thunk_jump:",
        "br x16",
        ".p2align 4",
        ".globl jitcall_test_thunk_return_target",
        ".hidden jitcall_test_thunk_return_target",
        "jitcall_test_thunk_return_target:",
        "mov x0, x16",
        "ret",
        ".popsection",
    );

    extern "C" {
        fn jitcall_test_thunk_jump();
        fn jitcall_test_thunk_return_target();
    }

    type Binary = extern "C" fn(i64, i64) -> i64;

    extern "C" fn add(a: i64, b: i64) -> i64 {
        a.wrapping_add(b)
    }

    extern "C" fn sub(a: i64, b: i64) -> i64 {
        a.wrapping_sub(b)
    }

    /// Points `thunk` at `f` through the stub that jumps to its target.
    fn point(thunk: &Thunk, f: Binary) {
        thunk.set(f as *const c_void, jitcall_test_thunk_jump as *const c_void);
    }

    /// Points `thunk` at the stub that returns its target, `value`.
    fn point_at_value(thunk: &Thunk, value: u64) {
        thunk.set(
            value as *const c_void,
            jitcall_test_thunk_return_target as *const c_void,
        );
    }

    /// Calls `thunk` as a `Binary`.
    ///
    /// # Safety
    ///
    /// The thunk must be pointed at a `Binary` with [`point`].
    unsafe fn call(thunk: &Thunk, a: i64, b: i64) -> i64 {
        // SAFETY: the caller's contract: the thunk jumps to the jump stub,
        // which tail-jumps to a Binary with every argument in place.
        let f = unsafe { std::mem::transmute::<*const c_void, Binary>(thunk.entry()) };
        f(a, b)
    }

    /// Calls `thunk`, pointed at a value with [`point_at_value`].
    ///
    /// # Safety
    ///
    /// The thunk must be pointed with [`point_at_value`].
    unsafe fn value(thunk: &Thunk) -> u64 {
        // SAFETY: the caller's contract: the stub returns the target in
        // the return register, touching nothing else.
        let f =
            unsafe { std::mem::transmute::<*const c_void, extern "C" fn() -> u64>(thunk.entry()) };
        f()
    }

    /// The tests that count tables or expect a freed slot back run one at
    /// a time: the pool is the process's.
    fn serial() -> MutexGuard<'static, ()> {
        static SERIAL: Mutex<()> = Mutex::new(());
        SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn thunks(n: usize) -> Vec<Thunk> {
        (0..n)
            .map(|_| thunk().unwrap_or_else(|why| panic!("static thunks unavailable: {why}")))
            .collect()
    }

    /// The bytes every thunk must be, derived from TABLE_BYTES as the
    /// module docs decode them.
    fn designed_thunk() -> [u8; THUNK_BYTES] {
        let mut thunk = [0u8; THUNK_BYTES];
        if cfg!(target_arch = "x86_64") {
            let target = i32::try_from(TABLE_BYTES - 7).unwrap().to_le_bytes();
            let stub = i32::try_from(TABLE_BYTES - 5).unwrap().to_le_bytes();
            thunk[..3].copy_from_slice(&[0x4c, 0x8b, 0x1d]);
            thunk[3..7].copy_from_slice(&target);
            thunk[7..9].copy_from_slice(&[0xff, 0x25]);
            thunk[9..13].copy_from_slice(&stub);
            thunk[13..].copy_from_slice(&[0xcc; 3]);
        } else {
            // LDR (literal), 64-bit: 0x58000000 | imm19 << 5 | Rt, imm19
            // the word offset, which must fit 19 signed bits.
            let ldr = |rt: u32, offset: usize| {
                let words = u32::try_from(offset / 4).unwrap();
                assert!(offset % 4 == 0 && words < 1 << 18, "LDR literal reach");
                0x5800_0000 | words << 5 | rt
            };
            let words = [
                ldr(16, TABLE_BYTES),
                ldr(17, TABLE_BYTES + 4),
                0xd61f_0220, // br x17
                0xd420_0000, // brk #0
            ];
            for (bytes, word) in thunk.chunks_mut(4).zip(words) {
                bytes.copy_from_slice(&word.to_le_bytes());
            }
        }
        thunk
    }

    #[test]
    fn every_thunk_in_the_table_is_the_designed_instructions() {
        let table = table().unwrap();
        assert_eq!(table.len(), TABLE_BYTES);
        assert_eq!(
            table.as_ptr() as usize % TABLE_BYTES,
            0,
            "aligned to its size"
        );
        assert_eq!(thunks_per_table() * THUNK_BYTES, TABLE_BYTES);
        let designed = designed_thunk();
        for (i, thunk) in table.chunks(THUNK_BYTES).enumerate() {
            assert_eq!(thunk, designed, "thunk {i}");
        }
    }

    #[test]
    fn maps_lines_parse() {
        let line = |text: &'static str| MapsLine::parse(text.as_bytes());
        assert_eq!(
            line("55d6c3a00000-55d6c3a21000 r-xp 00002000 fd:01 1234567   /usr/bin/a b"),
            Some(MapsLine {
                range: 0x55d6_c3a0_0000..0x55d6_c3a2_1000,
                perms: b"r-xp",
                offset: 0x2000,
                path: b"/usr/bin/a b",
            })
        );
        let anonymous = line("7f0000000000-7f0000001000 rw-p 00000000 00:00 0 ").unwrap();
        assert_eq!(anonymous.path, b"");
        assert!(!anonymous.is_executable());
        let deleted = line("1000-2000 r-xp 00000000 08:01 42 /tmp/x (deleted)").unwrap();
        assert_eq!(deleted.path, b"/tmp/x (deleted)");
        assert!(deleted.is_executable());
        assert_eq!(line(""), None);
        assert_eq!(line("1000-zz r-xp 0 0:0 0"), None);
    }

    #[test]
    fn every_reason_prints_on_one_line() {
        let reasons = [
            ThunksUnavailable::UnsupportedTarget,
            ThunksUnavailable::PageSize { page: 1 << 14 },
            ThunksUnavailable::MapsUnreadable {
                errno: libc::EACCES,
            },
            ThunksUnavailable::NotMapped,
            ThunksUnavailable::NoFile,
            ThunksUnavailable::Deleted,
            ThunksUnavailable::Misaligned {
                offset: 0x1800,
                page: 4096,
            },
            ThunksUnavailable::File {
                syscall: "open",
                errno: libc::ENOENT,
            },
            ThunksUnavailable::FileChanged,
            ThunksUnavailable::Refused(MemoryRefused {
                syscall: "mmap",
                errno: libc::EPERM,
            }),
        ];
        for reason in reasons {
            let text = reason.to_string();
            assert!(
                !text.is_empty() && !text.contains('\n'),
                "{reason:?}: {text:?}"
            );
        }
        let refused = ThunksUnavailable::Refused(MemoryRefused {
            syscall: "mmap",
            errno: libc::EPERM,
        });
        assert!(refused
            .to_string()
            .starts_with("thunk table mmap refused: "));
    }

    #[test]
    fn a_wrong_source_is_refused() {
        let source = source().unwrap_or_else(|why| panic!("no table source: {why}"));
        // The file's start is its ELF header, not the table.
        let header = Source {
            path: source.path.clone(),
            offset: 0,
        };
        assert_eq!(
            ThunkPage::map(&header).err(),
            Some(ThunksUnavailable::FileChanged)
        );
        let past_the_end = Source {
            path: source.path.clone(),
            offset: 1 << 40,
        };
        assert_eq!(
            ThunkPage::map(&past_the_end).err(),
            Some(ThunksUnavailable::FileChanged)
        );
        let missing = Source {
            path: "/nonexistent/jitcall-thunks".into(),
            offset: source.offset,
        };
        assert_eq!(
            ThunkPage::map(&missing).err(),
            Some(ThunksUnavailable::File {
                syscall: "open",
                errno: libc::ENOENT
            })
        );
    }

    #[test]
    fn a_thunk_calls_its_target_and_can_be_re_pointed() {
        let _serial = serial();
        let thunk = thunks(1).pop().unwrap();
        point(&thunk, add);
        // SAFETY: pointed at a Binary.
        assert_eq!(unsafe { call(&thunk, 40, 2) }, 42);
        point(&thunk, sub);
        // SAFETY: as above.
        assert_eq!(unsafe { call(&thunk, 40, 2) }, 38);
        point_at_value(&thunk, 0x1234_5678_9abc);
        // SAFETY: pointed at a value.
        assert_eq!(unsafe { value(&thunk) }, 0x1234_5678_9abc);
    }

    #[test]
    fn more_than_a_table_of_thunks_are_distinct_and_each_calls_its_own_target() {
        let _serial = serial();
        let n = thunks_per_table() + 1;
        let all = thunks(n);
        let entries: BTreeSet<usize> = all.iter().map(|t| t.entry() as usize).collect();
        assert_eq!(entries.len(), n, "distinct entries");
        assert!(mapped_tables() >= 2, "{n} thunks need two tables");
        for (i, thunk) in all.iter().enumerate() {
            point_at_value(thunk, i as u64 * 3 + 1);
        }
        for (i, thunk) in all.iter().enumerate() {
            // SAFETY: pointed at a value.
            assert_eq!(unsafe { value(thunk) }, i as u64 * 3 + 1, "thunk {i}");
        }
        for (i, thunk) in all.iter().enumerate() {
            point(thunk, if i % 2 == 0 { add } else { sub });
        }
        for (i, thunk) in all.iter().enumerate() {
            let i = i as i64;
            let expected = if i % 2 == 0 { i + 5 } else { i - 5 };
            // SAFETY: pointed at a Binary.
            assert_eq!(unsafe { call(thunk, i, 5) }, expected, "thunk {i}");
        }
    }

    #[test]
    fn a_dropped_slot_traps_and_is_taken_again() {
        let _serial = serial();
        let mut two = thunks(2);
        let (dropped, kept) = (two.pop().unwrap(), two.pop().unwrap());
        point(&dropped, add);
        let (page, index, entry) = (Arc::clone(&dropped.page), dropped.index, dropped.entry());
        drop(dropped);
        let [target, stub] = page.slot(index);
        assert_eq!(target.load(Ordering::Relaxed), 0);
        assert_eq!(stub.load(Ordering::Relaxed), trap() as u64);
        // The kept thunk's table holds live thunks, so it is preferred,
        // and its free list gives back the slot freed last.
        let again = thunk().unwrap();
        assert_eq!(again.entry(), entry);
        point(&again, sub);
        // SAFETY: pointed at a Binary.
        assert_eq!(unsafe { call(&again, 1, 2) }, -1);
        drop(kept);
    }

    #[test]
    fn tables_are_unmapped_down_to_one_spare() {
        let _serial = serial();
        // Every thunk of the other tests is dropped when they release the
        // lock, so at most the spare table is mapped.
        assert!(mapped_tables() <= 1, "{} tables", mapped_tables());
        let all = thunks(2 * thunks_per_table() + 1);
        assert_eq!(
            mapped_tables(),
            3,
            "tables are mapped only when all are full"
        );
        drop(all);
        assert_eq!(mapped_tables(), 1, "one empty table stays");
        let one = thunk().unwrap();
        assert_eq!(mapped_tables(), 1, "the spare is taken");
        drop(one);
        assert_eq!(mapped_tables(), 1);
    }

    #[test]
    fn threads_take_call_and_drop_thunks_at_once() {
        let _serial = serial();
        let rounds = 2 * thunks_per_table() as u64;
        std::thread::scope(|scope| {
            for thread in 0..4u64 {
                scope.spawn(move || {
                    // Two taken for each dropped: the threads together
                    // cross table boundaries both ways.
                    let mut live = std::collections::VecDeque::new();
                    for i in 0..rounds {
                        let thunk = thunks(1).pop().unwrap();
                        let expected = thread << 32 | i;
                        point_at_value(&thunk, expected);
                        live.push_back((thunk, expected));
                        if i % 3 == 2 {
                            live.pop_front();
                        }
                        for (thunk, expected) in live.iter().rev().take(4) {
                            // SAFETY: pointed at a value.
                            assert_eq!(unsafe { value(thunk) }, *expected);
                        }
                    }
                });
            }
        });
        assert_eq!(mapped_tables(), 1, "all dropped: one empty table stays");
    }

    #[test]
    fn the_code_is_the_files_pages_read_execute_and_the_data_read_write() {
        let _serial = serial();
        let thunk = thunks(1).pop().unwrap();
        let entry = thunk.entry() as u64;
        let code = process::mapping_covering(&(entry..entry + 16)).expect("the thunk's mapping");
        let data = TABLE_BYTES as u64 + entry;
        let data = process::mapping_covering(&(data..data + 16)).expect("the slot's mapping");
        let table = table().unwrap().as_ptr() as u64;
        let text = process::mapping_covering(&(table..table + 16)).expect("the text's mapping");
        assert_eq!(code.perms, "r-xp", "{code}");
        assert_eq!(code.path, text.path, "{code} is mapped from {text}");
        assert_eq!(data.perms, "rw-p", "{data}");
        assert!(data.is_anonymous(), "{data}");
        match process::instrumented() {
            None => {
                let bad = process::writable_executable();
                assert!(bad.is_empty(), "W+X mappings: {bad:#?}");
            }
            Some(under) => notice(&format!(
                "thunks: the W^X audit cannot run under {under}, whose own memory shows in \
                 this process's mappings"
            )),
        }
    }

    /// Under `restriction`, which refuses the JIT: 1,000 thunks, over
    /// several tables, each called with its own target, and no mapping
    /// writable and executable.
    fn thunks_under(restriction: Restriction) -> Result<String, String> {
        let errno = refusal::restrict(restriction)?;
        assert!(
            crate::jit_status().is_err(),
            "{restriction:?} refuses the JIT"
        );
        let n = 1000;
        let all = thunks(n);
        let entries: BTreeSet<usize> = all.iter().map(|t| t.entry() as usize).collect();
        assert_eq!(entries.len(), n, "distinct entries");
        for (i, thunk) in all.iter().enumerate() {
            point_at_value(thunk, i as u64 + 1);
        }
        for (i, thunk) in all.iter().enumerate() {
            // SAFETY: pointed at a value.
            assert_eq!(unsafe { value(thunk) }, i as u64 + 1, "thunk {i}");
        }
        for (i, thunk) in all.iter().enumerate() {
            point(thunk, if i % 2 == 0 { add } else { sub });
            let i = i as i64;
            let expected = if i % 2 == 0 { i + 7 } else { i - 7 };
            // SAFETY: pointed at a Binary.
            assert_eq!(unsafe { call(thunk, i, 7) }, expected, "thunk {i}");
        }
        let bad = process::writable_executable();
        assert!(bad.is_empty(), "W+X mappings: {bad:#?}");
        let tables = mapped_tables();
        Ok(format!(
            "{restriction:?} refuses mprotect(PROT_EXEC) with errno {errno}; {n} thunks in \
             {tables} tables each called their own target, by value and re-pointed; no \
             mapping writable and executable"
        ))
    }

    #[test]
    fn thunks_work_under_mdwe() {
        refusal::in_child("thunks::tests::thunks_work_under_mdwe", || {
            thunks_under(Restriction::Mdwe)
        });
    }

    #[test]
    fn thunks_work_under_the_seccomp_filter() {
        refusal::in_child(
            "thunks::tests::thunks_work_under_the_seccomp_filter",
            || thunks_under(Restriction::Seccomp),
        );
    }
}
