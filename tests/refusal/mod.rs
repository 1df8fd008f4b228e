//! Making the kernel refuse executable memory for real, in a child process:
//! the restrictions, a check that each is in force, and the re-execution
//! of the running test binary for one test with a marker in its
//! environment. `tests/refused.rs` and the library's unit tests
//! (`src/thunks.rs`, which include this file) use it, so it uses nothing
//! of jitcall's.
//!
//! A restriction the kernel (or an emulator such as qemu-user) does not
//! enforce leaves the case not run, with a notice on stderr; set
//! `JITCALL_REQUIRE_FAULTS=1` to make that a failure. Under an emulator
//! that cannot exec the test binary by itself, set `JITCALL_TEST_RUNNER`
//! to the command that runs it (e.g. `qemu-aarch64 -L /`).

use std::ffi::c_void;

use jitcall_fixtures::process::{self, notice};

/// The environment variable that tells a child which test it runs.
const CHILD: &str = "JITCALL_REFUSED_CHILD";
/// How a child reports, on a line of its own.
const RAN: &str = "refused-case ran:";
const NOT_RUN: &str = "refused-case not run:";

/// A way to make the kernel refuse executable memory.
#[derive(Clone, Copy, Debug)]
pub enum Restriction {
    Mdwe,
    Seccomp,
}

impl Restriction {
    /// The errno mprotect(PROT_EXEC) fails with once it is in force.
    pub fn errno(self) -> i32 {
        match self {
            Restriction::Mdwe => libc::EACCES,
            Restriction::Seccomp => libc::EPERM,
        }
    }

    /// Installs the restriction on the whole process, for good.
    fn install(self) -> Result<(), String> {
        match self {
            Restriction::Mdwe => {
                // SAFETY: prctl with integer arguments only.
                let r = unsafe {
                    libc::prctl(
                        libc::PR_SET_MDWE,
                        libc::PR_MDWE_REFUSE_EXEC_GAIN as libc::c_ulong,
                        0 as libc::c_ulong,
                        0 as libc::c_ulong,
                        0 as libc::c_ulong,
                    )
                };
                if r != 0 {
                    return Err(format!(
                        "prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN) failed: {}",
                        std::io::Error::last_os_error()
                    ));
                }
                Ok(())
            }
            Restriction::Seccomp => seccomp::install_memory_deny_write_execute(),
        }
    }
}

/// What the kernel does now with an attempt to make fresh memory
/// executable, tried directly: `None` when it allows it (the restriction
/// is not in force), the errno otherwise.
fn exec_gain_refused() -> Option<i32> {
    let page = map_page(libc::PROT_READ | libc::PROT_WRITE);
    assert_ne!(page, libc::MAP_FAILED, "a plain RW mapping must be allowed");
    // SAFETY: changes the protection of, then unmaps, the page just mapped,
    // which nothing else refers to.
    unsafe {
        let r = libc::mprotect(page, page_size(), libc::PROT_READ | libc::PROT_EXEC);
        let errno = last_errno();
        libc::munmap(page, page_size());
        if r == 0 {
            None
        } else {
            errno
        }
    }
}

pub fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).expect("a page size")
}

/// The classic BPF filter systemd installs for `MemoryDenyWriteExecute=`,
/// written out by hand.
mod seccomp {
    use libc::{sock_filter, sock_fprog};

    // The host's AUDIT_ARCH_* (linux/audit.h): its ELF machine number
    // (EM_X86_64 = 62, EM_AARCH64 = 183) | __AUDIT_ARCH_64BIT |
    // __AUDIT_ARCH_LE. The system call numbers below are this
    // architecture's.
    #[cfg(target_arch = "x86_64")]
    const ARCH: u32 = 0xc000_003e;
    #[cfg(target_arch = "aarch64")]
    const ARCH: u32 = 0xc000_00b7;

    // Offsets into struct seccomp_data { int nr; u32 arch; u64
    // instruction_pointer; u64 args[6]; }. The prot argument is args[2]
    // for mmap, mprotect and pkey_mprotect alike; its low 32 bits are at
    // the lower address on these little-endian targets.
    const NR: u32 = 0;
    const ARCH_OFFSET: u32 = 4;
    const PROT_LOW: u32 = 16 + 2 * 8;

    const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    const JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
    const JSET_K: u16 = (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16;
    const RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;

    /// Instructions are placed at fixed indices so that jumps can name
    /// their targets; `jump` turns a target index into BPF's relative
    /// offset from the next instruction.
    const CHECK_EXEC: usize = 9;
    const ALLOW: usize = 11;
    const DENY: usize = 12;

    fn load(offset: u32) -> sock_filter {
        sock_filter {
            code: LD_W_ABS,
            jt: 0,
            jf: 0,
            k: offset,
        }
    }

    fn jump(at: usize, code: u16, k: u32, if_true: usize, if_false: usize) -> sock_filter {
        let offset = |to: usize| u8::try_from(to - at - 1).expect("a short forward jump");
        sock_filter {
            code,
            jt: offset(if_true),
            jf: offset(if_false),
            k,
        }
    }

    fn ret(k: u32) -> sock_filter {
        sock_filter {
            code: RET_K,
            jt: 0,
            jf: 0,
            k,
        }
    }

    /// EPERM for mprotect and pkey_mprotect adding PROT_EXEC and for mmap
    /// asking for PROT_WRITE and PROT_EXEC together; everything else, and
    /// every call made under another architecture's convention (such as an
    /// emulator's own host calls), is allowed.
    pub fn program() -> Vec<sock_filter> {
        let (mprotect, pkey_mprotect, mmap) = (
            libc::SYS_mprotect as u32,
            libc::SYS_pkey_mprotect as u32,
            libc::SYS_mmap as u32,
        );
        let (write, exec) = (libc::PROT_WRITE as u32, libc::PROT_EXEC as u32);
        let program = vec![
            /* 0 */ load(ARCH_OFFSET),
            /* 1 */ jump(1, JEQ_K, ARCH, 2, ALLOW),
            /* 2 */ load(NR),
            /* 3 */ jump(3, JEQ_K, mprotect, CHECK_EXEC, 4),
            /* 4 */ jump(4, JEQ_K, pkey_mprotect, CHECK_EXEC, 5),
            /* 5 */ jump(5, JEQ_K, mmap, 6, ALLOW),
            /* 6 */ load(PROT_LOW),
            /* 7 */ jump(7, JSET_K, write, 8, ALLOW),
            /* 8 */ jump(8, JSET_K, exec, DENY, ALLOW),
            /* 9 = CHECK_EXEC */ load(PROT_LOW),
            /* 10 */ jump(10, JSET_K, exec, DENY, ALLOW),
            /* 11 = ALLOW */ ret(libc::SECCOMP_RET_ALLOW),
            /* 12 = DENY */ ret(libc::SECCOMP_RET_ERRNO | libc::EPERM as u32),
        ];
        assert_eq!(program.len(), DENY + 1);
        program
    }

    /// Sets no_new_privs (so that no privilege is needed) and installs
    /// [`program`] on every thread of the process.
    pub fn install_memory_deny_write_execute() -> Result<(), String> {
        let mut program = program();
        let prog = sock_fprog {
            len: program.len() as u16,
            filter: program.as_mut_ptr(),
        };
        // SAFETY: prctl with integer arguments only.
        let r = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
        if r != 0 {
            return Err(format!(
                "prctl(PR_SET_NO_NEW_PRIVS) failed: {}",
                std::io::Error::last_os_error()
            ));
        }
        // SAFETY: `prog` points to `program`, a valid classic BPF program
        // that outlives the call (the kernel copies it).
        let r = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                libc::SECCOMP_FILTER_FLAG_TSYNC,
                &prog as *const sock_fprog,
            )
        };
        if r != 0 {
            return Err(format!(
                "seccomp(SECCOMP_SET_MODE_FILTER) failed: {}",
                std::io::Error::last_os_error()
            ));
        }
        Ok(())
    }
}

/// A fresh private anonymous page with `prot`, or `MAP_FAILED` with errno
/// set.
fn map_page(prot: libc::c_int) -> *mut c_void {
    // SAFETY: a new anonymous mapping at an address the kernel picks
    // touches no existing memory.
    unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            page_size(),
            prot,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    }
}

fn last_errno() -> Option<i32> {
    std::io::Error::last_os_error().raw_os_error()
}

/// Checks what the seccomp filter refuses and what it lets through, by
/// making the calls directly.
fn check_seccomp_filter_precision() {
    let (page, r, w, x) = (
        page_size(),
        libc::PROT_READ,
        libc::PROT_WRITE,
        libc::PROT_EXEC,
    );
    assert_eq!(
        map_page(r | w | x),
        libc::MAP_FAILED,
        "mmap(W|X) is refused"
    );
    assert_eq!(last_errno(), Some(libc::EPERM));
    let rx = map_page(r | x);
    assert_ne!(rx, libc::MAP_FAILED, "mmap(R|X) without W is allowed");
    let rw = map_page(r | w);
    assert_ne!(rw, libc::MAP_FAILED, "mmap(R|W) is allowed");
    // SAFETY: protection changes and unmapping of the two pages mapped
    // above, which nothing else refers to.
    unsafe {
        assert_eq!(libc::mprotect(rw, page, r), 0, "mprotect(R) is allowed");
        let pkey = libc::syscall(libc::SYS_pkey_mprotect, rw, page, r | x, -1);
        assert_eq!(pkey, -1, "pkey_mprotect(X) is refused");
        assert_eq!(last_errno(), Some(libc::EPERM));
        libc::munmap(rx, page);
        libc::munmap(rw, page);
    }
}

/// Runs `case` in a child process when this process is the parent, or
/// runs it here when this process is that child. `test` must be the name
/// of the calling test, as the harness lists it (`module::path::name` in
/// a library's unit tests). The case returns a summary of what it checked,
/// or why it could not run.
pub fn in_child(test: &str, case: fn() -> Result<String, String>) {
    if std::env::var_os(CHILD).is_some_and(|v| v == test) {
        match case() {
            Ok(summary) => println!("{RAN} {summary}"),
            Err(why) => println!("{NOT_RUN} {why}"),
        }
        return;
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    // Under an emulator the child must be started through it:
    // JITCALL_TEST_RUNNER holds the command, as cargo's target runner does.
    let spawned = process::target_command(&exe)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, test)
        .env_remove("JITCALL_DISABLE_JIT")
        .output();
    let output = match spawned {
        Ok(output) => output,
        Err(e) => return not_run(test, &format!("cannot re-execute {}: {e}", exe.display())),
    };
    // 127 and silence: the exec failed in the child (qemu-user cannot exec
    // a foreign binary without binfmt_misc).
    if output.status.code() == Some(127) && output.stdout.is_empty() {
        let hint = match process::emulator() {
            Some(emulator) => format!(" under {emulator}: set JITCALL_TEST_RUNNER to its command"),
            None => String::new(),
        };
        return not_run(test, &format!("cannot re-execute {}{hint}", exe.display()));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{test} failed in its child process ({}):\n{stdout}\n{stderr}",
        output.status
    );
    // The harness prints the test's name on the same line first.
    let report = |marker| {
        stdout
            .lines()
            .find_map(|l| Some(l.split_once(marker)?.1.trim()))
    };
    if let Some(summary) = report(RAN) {
        println!("{test}: {summary}");
    } else if let Some(why) = report(NOT_RUN) {
        not_run(test, why);
    } else {
        panic!("{test}: the child reported nothing:\n{stdout}\n{stderr}");
    }
}

fn not_run(test: &str, why: &str) {
    let strict = std::env::var_os("JITCALL_REQUIRE_FAULTS").is_some_and(|v| v == "1");
    assert!(!strict, "{test} could not run: {why}");
    notice(&format!("{test} NOT RUN: {why}"));
}

/// Installs `restriction` and checks, by trying, that the kernel enforces
/// it with its errno, which it returns.
pub fn restrict(restriction: Restriction) -> Result<i32, String> {
    restriction.install()?;
    let errno = exec_gain_refused().ok_or_else(|| {
        format!("{restriction:?} installed, but mprotect(PROT_EXEC) still succeeds (emulated?)")
    })?;
    assert_eq!(
        errno,
        restriction.errno(),
        "{restriction:?}: mprotect(PROT_EXEC) failed with an unexpected errno"
    );
    if let Restriction::Seccomp = restriction {
        check_seccomp_filter_precision();
    }
    Ok(errno)
}
