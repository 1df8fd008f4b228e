//! Naming jitcall's code for gdb through its JIT interface (GDB manual,
//! "JIT Compilation Interface"): with `JITCALL_GDB_JIT=1`, each block of
//! code gets an in-memory ELF object whose symbols name its pieces (the
//! names of the perf map), linked into `__jit_debug_descriptor`'s list
//! and announced by calling `__jit_debug_register_code`, where gdb keeps
//! a breakpoint. gdb then shows `jitcall:cos:(f64) -> f64 packed` in a
//! backtrace instead of `??`. The object is removed, and gdb told, before
//! the block is unmapped.
//!
//! Off by default: naming every piece costs as much as binding it, and
//! only a process being debugged has use for it. The variable is read
//! once, on first use.

use std::ffi::c_char;
use std::sync::{LazyLock, Mutex, PoisonError};

use crate::perf_map::Names;

/// `struct jit_code_entry` of `c/gdb_jit.c`.
#[repr(C)]
struct JitCodeEntry {
    next_entry: *mut JitCodeEntry,
    prev_entry: *mut JitCodeEntry,
    symfile_addr: *const c_char,
    symfile_size: u64,
}

/// `struct jit_descriptor` of `c/gdb_jit.c`.
#[repr(C)]
struct JitDescriptor {
    version: u32,
    action_flag: u32,
    relevant_entry: *mut JitCodeEntry,
    first_entry: *mut JitCodeEntry,
}

const JIT_REGISTER_FN: u32 = 1;
const JIT_UNREGISTER_FN: u32 = 2;

extern "C" {
    static mut __jit_debug_descriptor: JitDescriptor;
    fn __jit_debug_register_code();
}

/// Whether `JITCALL_GDB_JIT` asks for the interface.
static ENABLED: LazyLock<bool> = LazyLock::new(|| {
    std::env::var_os("JITCALL_GDB_JIT").is_some_and(|v| !v.is_empty() && v != "0")
});

/// Serialises changes to the descriptor's list (within this copy of
/// jitcall; gdb reads it only while the process is stopped).
static LIST: Mutex<()> = Mutex::new(());

/// Whether blocks are named for gdb.
pub(crate) fn enabled() -> bool {
    *ENABLED
}

/// A block's symbol file, registered with gdb until dropped.
pub(crate) struct Registration {
    /// Boxed: gdb's list points to it.
    entry: Box<JitCodeEntry>,
    /// The ELF image `entry` points to.
    _image: Vec<u8>,
}

// SAFETY: the entry and image are only read by gdb, and written here
// under LIST; the raw pointers in the entry point into this
// registration's own heap data.
unsafe impl Send for Registration {}
// SAFETY: as for Send: shared references never touch the fields.
unsafe impl Sync for Registration {}

impl Registration {
    /// Registers the block of `len` bytes at `address` with its `names`;
    /// `None` when there is nothing to name.
    pub(crate) fn new(address: u64, len: usize, names: Names) -> Option<Registration> {
        let names = names.into_gdb();
        if names.is_empty() {
            return None;
        }
        let image = elf(address, len as u64, &names);
        let mut entry = Box::new(JitCodeEntry {
            next_entry: std::ptr::null_mut(),
            prev_entry: std::ptr::null_mut(),
            symfile_addr: image.as_ptr().cast(),
            symfile_size: image.len() as u64,
        });
        let _list = LIST.lock().unwrap_or_else(PoisonError::into_inner);
        // SAFETY: the descriptor is the process's one, changed only under
        // LIST (by this copy of jitcall); `entry` is boxed and lives until
        // Drop unlinks it.
        unsafe {
            let descriptor = std::ptr::addr_of_mut!(__jit_debug_descriptor);
            let first = (*descriptor).first_entry;
            entry.next_entry = first;
            let raw: *mut JitCodeEntry = &mut *entry;
            if !first.is_null() {
                (*first).prev_entry = raw;
            }
            (*descriptor).first_entry = raw;
            (*descriptor).relevant_entry = raw;
            (*descriptor).action_flag = JIT_REGISTER_FN;
            __jit_debug_register_code();
        }
        Some(Registration {
            entry,
            _image: image,
        })
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let _list = LIST.lock().unwrap_or_else(PoisonError::into_inner);
        // SAFETY: the entry is in the descriptor's list (linked by `new`),
        // changed only under LIST; unlinking it keeps the list whole.
        unsafe {
            let descriptor = std::ptr::addr_of_mut!(__jit_debug_descriptor);
            let raw: *mut JitCodeEntry = &mut *self.entry;
            let (prev, next) = (self.entry.prev_entry, self.entry.next_entry);
            if prev.is_null() {
                (*descriptor).first_entry = next;
            } else {
                (*prev).next_entry = next;
            }
            if !next.is_null() {
                (*next).prev_entry = prev;
            }
            (*descriptor).relevant_entry = raw;
            (*descriptor).action_flag = JIT_UNREGISTER_FN;
            __jit_debug_register_code();
        }
    }
}

/// An ELF64 relocatable object for gdb: a `.text` section without bytes
/// (`SHT_NOBITS`) at the block's address, and a function symbol per
/// named piece, its value the piece's offset in `.text`.
fn elf(address: u64, len: u64, names: &[(u64, u64, String)]) -> Vec<u8> {
    const EHDR: usize = 64;
    const SHDR: usize = 64;
    const SYM: usize = 24;
    let machine: u16 = if cfg!(target_arch = "aarch64") {
        183
    } else {
        62
    };
    let shstrtab = b"\0.text\0.symtab\0.strtab\0.shstrtab\0";
    let (text_name, symtab_name, strtab_name, shstrtab_name) = (1u32, 7u32, 15u32, 23u32);
    let mut strtab = vec![0u8];
    let mut symtab = vec![0u8; SYM];
    for (offset, size, name) in names {
        let st_name = strtab.len() as u32;
        strtab.extend_from_slice(name.as_bytes());
        strtab.push(0);
        symtab.extend_from_slice(&st_name.to_le_bytes());
        // STB_GLOBAL, STT_FUNC; default visibility; in section 1 (.text).
        symtab.push(0x12);
        symtab.push(0);
        symtab.extend_from_slice(&1u16.to_le_bytes());
        symtab.extend_from_slice(&offset.to_le_bytes());
        symtab.extend_from_slice(&size.to_le_bytes());
    }
    let symtab_at = EHDR;
    let strtab_at = symtab_at + symtab.len();
    let shstrtab_at = strtab_at + strtab.len();
    let shdrs_at = (shstrtab_at + shstrtab.len()).next_multiple_of(8);
    let mut out = Vec::with_capacity(shdrs_at + 5 * SHDR);
    // The ELF header: 64-bit, little-endian, version 1, ET_REL.
    out.extend_from_slice(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0");
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&machine.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes()); // e_entry
    out.extend_from_slice(&0u64.to_le_bytes()); // e_phoff
    out.extend_from_slice(&(shdrs_at as u64).to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    out.extend_from_slice(&(EHDR as u16).to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes()); // e_phentsize
    out.extend_from_slice(&0u16.to_le_bytes()); // e_phnum
    out.extend_from_slice(&(SHDR as u16).to_le_bytes());
    out.extend_from_slice(&5u16.to_le_bytes()); // e_shnum
    out.extend_from_slice(&4u16.to_le_bytes()); // e_shstrndx
    out.extend_from_slice(&symtab);
    out.extend_from_slice(&strtab);
    out.extend_from_slice(shstrtab);
    out.resize(shdrs_at, 0);
    // Section headers: name, type, flags, addr, offset, size, link, info,
    // addralign, entsize.
    let mut section = |name: u32,
                       kind: u32,
                       flags: u64,
                       addr: u64,
                       at: usize,
                       size: u64,
                       link: u32,
                       info: u32,
                       align: u64,
                       entsize: u64| {
        out.extend_from_slice(&name.to_le_bytes());
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(&flags.to_le_bytes());
        out.extend_from_slice(&addr.to_le_bytes());
        out.extend_from_slice(&(at as u64).to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&link.to_le_bytes());
        out.extend_from_slice(&info.to_le_bytes());
        out.extend_from_slice(&align.to_le_bytes());
        out.extend_from_slice(&entsize.to_le_bytes());
    };
    section(0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    // .text: SHT_NOBITS, SHF_ALLOC | SHF_EXECINSTR, at the block.
    section(text_name, 8, 0x6, address, shdrs_at, len, 0, 0, 16, 0);
    // .symtab: SHT_SYMTAB, its strings in section 3, first global 1.
    let symtab_size = symtab.len() as u64;
    section(
        symtab_name,
        2,
        0,
        0,
        symtab_at,
        symtab_size,
        3,
        1,
        8,
        SYM as u64,
    );
    // .strtab and .shstrtab: SHT_STRTAB.
    section(
        strtab_name,
        3,
        0,
        0,
        strtab_at,
        strtab.len() as u64,
        0,
        0,
        1,
        0,
    );
    section(
        shstrtab_name,
        3,
        0,
        0,
        shstrtab_at,
        shstrtab.len() as u64,
        0,
        0,
        1,
        0,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_image_is_an_elf_object_naming_each_piece() {
        let names = vec![
            (0, 0x23, "jitcall:cos:(f64) -> f64 packed".to_string()),
            (0x30, 0x1a, "jitcall:cos:(f64) -> f64 value".to_string()),
        ];
        let image = elf(0x7f00_0000_1000, 0x50, &names);
        assert_eq!(&image[..4], b"\x7fELF");
        let shoff = u64::from_le_bytes(image[0x28..0x30].try_into().unwrap()) as usize;
        // .text's address and size.
        let text = &image[shoff + 64..shoff + 128];
        assert_eq!(
            u64::from_le_bytes(text[16..24].try_into().unwrap()),
            0x7f00_0000_1000
        );
        assert_eq!(u64::from_le_bytes(text[32..40].try_into().unwrap()), 0x50);
        // The second symbol: its name, value and size.
        let symtab = &image[shoff + 128..shoff + 192];
        let (at, size) = (
            u64::from_le_bytes(symtab[24..32].try_into().unwrap()) as usize,
            u64::from_le_bytes(symtab[32..40].try_into().unwrap()) as usize,
        );
        assert_eq!(size, 3 * 24);
        let sym = &image[at + 48..at + 72];
        assert_eq!(sym[4], 0x12);
        assert_eq!(u64::from_le_bytes(sym[8..16].try_into().unwrap()), 0x30);
        assert_eq!(u64::from_le_bytes(sym[16..24].try_into().unwrap()), 0x1a);
        let strtab = &image[shoff + 192..shoff + 256];
        let strtab_at = u64::from_le_bytes(strtab[24..32].try_into().unwrap()) as usize;
        let name_at = strtab_at + u32::from_le_bytes(sym[..4].try_into().unwrap()) as usize;
        assert!(image[name_at..].starts_with(b"jitcall:cos:(f64) -> f64 value\0"));
    }
}
