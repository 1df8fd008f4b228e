//! Naming jitcall's code for `perf`: with `JITCALL_PERF_MAP=1` in the
//! environment, each trampoline, stub and callback jitcall places is
//! appended to `/tmp/perf-<pid>.map` as `START SIZE NAME` (hexadecimal
//! start and size, as perf's JIT map format has them), so that `perf
//! report` attributes samples in anonymous executable memory to
//! `jitcall:<symbol or address>:<signature> <entry>` instead of to
//! `[unknown]`.
//!
//! The map is appended to as code is placed and never rewritten: a range
//! freed and reused later gets a line of its own after the first. The
//! variable is read once, on first use.
//!
//! [`Names`] names a block's pieces once for both readers: this map, and
//! the symbol file gdb gets (`crate::gdb_jit`).

use std::ffi::{c_void, CStr};
use std::fs::File;
use std::io::Write;
use std::sync::{LazyLock, Mutex, PoisonError};

use crate::gdb_jit;
use crate::{Plan, Signature};

/// The open map, when `JITCALL_PERF_MAP` asks for one and it can be
/// opened.
static MAP: LazyLock<Option<Mutex<File>>> = LazyLock::new(|| {
    let wanted = std::env::var_os("JITCALL_PERF_MAP").is_some_and(|v| !v.is_empty() && v != "0");
    if !wanted {
        return None;
    }
    let path = format!("/tmp/perf-{}.map", std::process::id());
    match File::options().create(true).append(true).open(&path) {
        Ok(file) => Some(Mutex::new(file)),
        Err(e) => {
            eprintln!("jitcall: JITCALL_PERF_MAP: cannot open {path}: {e}");
            None
        }
    }
});

/// The names of the pieces of one block of code, for whoever asked for
/// them: a line each in the perf map (`JITCALL_PERF_MAP`), and the symbols
/// of the block's symbol file for gdb (`JITCALL_GDB_JIT`).
pub(crate) struct Names {
    /// The block's first byte.
    base: u64,
    /// For gdb: offset in the block, size, name.
    gdb: Vec<(u64, u64, String)>,
}

impl Names {
    /// Names for the block starting at `base`.
    pub(crate) fn new(base: u64) -> Names {
        Names {
            base,
            gdb: Vec::new(),
        }
    }

    /// Names `len` bytes of code at `address` (in the block) `name()`,
    /// computed once and only when a perf map or gdb wants it.
    pub(crate) fn add(&mut self, address: u64, len: usize, name: impl FnOnce() -> String) {
        let gdb = gdb_jit::enabled();
        if MAP.is_none() && !gdb {
            return;
        }
        let name = name();
        if let Some(map) = MAP.as_ref() {
            let line = format!("{address:x} {len:x} {name}\n");
            let mut file = map.lock().unwrap_or_else(PoisonError::into_inner);
            // A map that cannot be written costs the profile its names,
            // nothing more: the error is not the caller's.
            let _ = file.write_all(line.as_bytes());
        }
        if gdb {
            self.gdb.push((address - self.base, len as u64, name));
        }
    }

    /// What gdb's symbol file names: offset in the block, size, name.
    pub(crate) fn into_gdb(self) -> Vec<(u64, u64, String)> {
        self.gdb
    }
}

/// The dynamic symbol at exactly `address`, or the address in hex.
pub(crate) fn symbol_or_address(address: u64) -> String {
    let mut info = std::mem::MaybeUninit::<libc::Dl_info>::zeroed();
    // SAFETY: dladdr only reads the address (never dereferences it) and
    // fills `info`, which is valid for writes.
    let found = unsafe { libc::dladdr(address as *const c_void, info.as_mut_ptr()) };
    if found != 0 {
        // SAFETY: dladdr succeeded, so it initialised `info`.
        let info = unsafe { info.assume_init() };
        if !info.dli_sname.is_null() && info.dli_saddr as u64 == address {
            // SAFETY: dli_sname is a NUL-terminated string owned by the
            // dynamic linker, valid while the object stays loaded.
            let name = unsafe { CStr::from_ptr(info.dli_sname) };
            return name.to_string_lossy().into_owned();
        }
    }
    format!("{address:#x}")
}

/// The name of code of `plan`'s signature: `jitcall:<who>:<signature>
/// <kind>`, where `who` is the target's symbol or address, `shape` for a
/// shape stub (which serves every target of its shape) or `callback`, and
/// `kind` the entry (`packed`, `value`, `receiver`) or `reverse`.
pub(crate) fn name(who: &str, plan: &Plan, kind: &str) -> String {
    let mut sig = Signature::new(plan.arg_types.clone(), plan.ret);
    sig.variadic = plan.variadic;
    format!("jitcall:{who}:{sig} {kind}")
}
