//! Backtraces, unwinding and frame walks see through jitcall's code: a
//! callee reached through a trampoline, a stub or a callback's reverse
//! trampoline finds its callers' frames all the way up, because the code
//! is registered with the system unwinder (libgcc's, through
//! `__register_frame`) with the unwind information the emitters record.
//!
//! Each test captures in the callee both `std::backtrace::Backtrace` (the
//! symbolised frames) and a raw walk with `_Unwind_Backtrace` (the return
//! addresses), and checks that the test's own function, which made the
//! call, is among them, with a frame in the trampoline unless it
//! tail-called.

use std::cell::RefCell;
use std::ffi::{c_int, c_void};

use jitcall::{Callback, Function, Options, Signature, Tier};

mod tiers;

/// What the last callee on this thread saw of its callers.
#[derive(Default, Debug)]
struct Seen {
    /// `std::backtrace::Backtrace`, rendered.
    symbols: String,
    /// The instruction pointers `_Unwind_Backtrace` walked through.
    ips: Vec<usize>,
}

thread_local! {
    static SEEN: RefCell<Seen> = RefCell::new(Seen::default());
}

#[allow(non_camel_case_types)]
type _Unwind_Trace_Fn = extern "C" fn(context: *mut c_void, arg: *mut c_void) -> c_int;

extern "C" {
    fn _Unwind_Backtrace(trace: _Unwind_Trace_Fn, arg: *mut c_void) -> c_int;
    fn _Unwind_GetIP(context: *mut c_void) -> usize;
}

/// `_URC_NO_REASON`: go on walking.
const NO_REASON: c_int = 0;

extern "C" fn record_ip(context: *mut c_void, arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the Vec `walk` passed; the context is the one the
    // unwinder is walking.
    unsafe {
        (*arg.cast::<Vec<usize>>()).push(_Unwind_GetIP(context));
    }
    NO_REASON
}

/// The instruction pointers of the frames above this one.
#[inline(never)]
fn walk() -> Vec<usize> {
    let mut ips = Vec::new();
    // SAFETY: record_ip only pushes to the Vec passed as its argument,
    // which outlives the walk.
    unsafe { _Unwind_Backtrace(record_ip, std::ptr::addr_of_mut!(ips).cast()) };
    ips
}

/// Records what the callee sees.
#[inline(never)]
fn capture() {
    let symbols = std::backtrace::Backtrace::force_capture().to_string();
    let ips = walk();
    SEEN.with(|seen| *seen.borrow_mut() = Seen { symbols, ips });
}

fn take() -> Seen {
    SEEN.with(|seen| std::mem::take(&mut *seen.borrow_mut()))
}

/// A callee of two arguments that looks at its callers.
extern "C" fn looks2(a: i64, b: i64) -> i64 {
    capture();
    a + b
}

/// Nine arguments: the last three on the stack on both ABIs' receiver
/// entries, one or more on the packed entries'.
#[allow(clippy::too_many_arguments)]
extern "C" fn looks9(
    a: i64,
    b: i64,
    c: i64,
    d: i64,
    e: i64,
    f: i64,
    g: i64,
    h: i64,
    i: i64,
) -> i64 {
    capture();
    a + 2 * b + 3 * c + 4 * d + 5 * e + 6 * f + 7 * g + 8 * h + 9 * i
}

/// Narrow return: the receiver entry calls rather than tail-calls.
extern "C" fn looks_narrow(a: i64, b: i64) -> i8 {
    capture();
    (a + b) as i8
}

/// Checks what the callee saw when called from `caller` (a function name
/// of this file) through code that occupies `code` (its start and an
/// upper bound on its length) and keeps a frame unless `tail_called`.
#[track_caller]
fn saw_through(seen: &Seen, caller: &str, code: Option<(usize, usize)>, tail_called: bool) {
    // The caller's own frame: `backtraces::caller`, not a closure in it.
    let own = format!("backtraces::{caller}");
    let reached = seen.symbols.lines().any(|line| {
        line.trim_start()
            .split_once(": ")
            .is_some_and(|(_, name)| name.trim() == own)
    });
    assert!(
        reached,
        "the backtrace does not reach {own}:\n{}",
        seen.symbols
    );
    // The raw walk goes at least as far as the test harness's thread.
    assert!(
        seen.ips.len() >= 8,
        "{} frames walked: {:x?}",
        seen.ips.len(),
        seen.ips
    );
    if let Some((start, len)) = code {
        let inside = seen.ips.iter().any(|&ip| ip > start && ip <= start + len);
        assert_eq!(
            inside, !tail_called,
            "a frame in the code at {start:#x} ({len} bytes): {:x?}",
            seen.ips
        );
    }
}

fn sig(text: &str) -> Signature {
    text.parse().unwrap()
}

/// The JIT tier, with receiver entries; `None` (and a notice) when this
/// process has no JIT memory.
fn jit() -> Option<Options> {
    if let Err(why) = jitcall::jit_status() {
        println!("NOTICE: no JIT memory ({why}): the JIT frames are NOT checked here");
        return None;
    }
    Some(Options {
        receiver_entry: true,
        specialise: true,
        ..Options::default()
    })
}

/// The most bytes a trampoline of these tests takes.
const CODE: usize = 512;

#[test]
fn a_callee_sees_its_callers_through_a_packed_entry() {
    let Some(options) = jit() else { return };
    for (name, target, text, args) in [
        (
            "looks2",
            looks2 as *const c_void,
            "(i64, i64) -> i64",
            vec![1u64, 2],
        ),
        (
            "looks9",
            looks9 as *const c_void,
            "(i64, i64, i64, i64, i64, i64, i64, i64, i64) -> i64",
            (1..=9).collect(),
        ),
    ] {
        for double_map in [false, true] {
            let options = Options {
                double_map,
                ..options
            };
            // SAFETY: the target has this signature.
            let f = unsafe { Function::with_options(target, &sig(text), &options) }.unwrap();
            assert_eq!(f.tier(), Tier::Jit);
            let entry = f.jit_entry().unwrap();
            let mut ret = 0u64;
            // SAFETY: one slot per argument, through the raw packed entry.
            unsafe {
                std::mem::transmute::<*const c_void, jitcall::PackedFn>(entry)(
                    args.as_ptr(),
                    &mut ret,
                )
            };
            saw_through(
                &take(),
                "a_callee_sees_its_callers_through_a_packed_entry",
                Some((entry as usize, CODE)),
                false,
            );
            // And through call_packed, which goes through the value entry.
            // SAFETY: as above.
            unsafe { f.call_packed(args.as_ptr(), &mut ret) };
            saw_through(
                &take(),
                "a_callee_sees_its_callers_through_a_packed_entry",
                None,
                false,
            );
            println!("{name} (double-mapped: {double_map}): frames seen through");
        }
    }
}

/// Calls the receiver entry of `f`, a function of two `i64` arguments
/// whose return is at most 32 bits wide or 5 (`looks2`, `looks_narrow`),
/// with 2 and 3; returns the entry.
fn call_receiver_of_two(f: &Function) -> *const c_void {
    let entry = f.receiver_entry().expect("a receiver entry");
    type Receiver = extern "C" fn(*const c_void, i64, i64) -> i32;
    // SAFETY: a receiver entry of (i64, i64) -> i64 or -> i8, whose result
    // is read as the 32-bit value the entry returns (widened for i8).
    let entry_fn = unsafe { std::mem::transmute::<*const c_void, Receiver>(entry) };
    assert_eq!(entry_fn(std::ptr::null(), 2, 3), 5, "{}", f.signature());
    entry
}

#[test]
fn a_receiver_entry_that_tail_calls_leaves_the_callee_called_from_its_caller() {
    let Some(options) = jit() else { return };
    // SAFETY: looks2 has this signature.
    let f = unsafe {
        Function::with_options(looks2 as *const c_void, &sig("(i64, i64) -> i64"), &options)
    }
    .unwrap();
    let entry = call_receiver_of_two(&f);
    saw_through(
        &take(),
        "a_receiver_entry_that_tail_calls_leaves_the_callee_called_from_its_caller",
        Some((entry as usize, CODE)),
        true,
    );
}

#[test]
fn a_receiver_entry_with_a_frame_is_seen_in_the_backtrace() {
    let Some(options) = jit() else { return };
    // A narrow return: the receiver entry calls from a frame of its own.
    // SAFETY: looks_narrow has this signature.
    let f = unsafe {
        Function::with_options(
            looks_narrow as *const c_void,
            &sig("(i64, i64) -> i8"),
            &options,
        )
    }
    .unwrap();
    let entry = call_receiver_of_two(&f);
    saw_through(
        &take(),
        "a_receiver_entry_with_a_frame_is_seen_in_the_backtrace",
        Some((entry as usize, CODE)),
        false,
    );
    // Nine arguments, three on the stack: a receiver entry that moves
    // stack arguments and tail-calls.
    let text = "(i64, i64, i64, i64, i64, i64, i64, i64, i64) -> i64";
    // SAFETY: looks9 has this signature.
    let f =
        unsafe { Function::with_options(looks9 as *const c_void, &sig(text), &options) }.unwrap();
    let entry = f.receiver_entry().expect("a receiver entry");
    type Receiver9 =
        extern "C" fn(*const c_void, i64, i64, i64, i64, i64, i64, i64, i64, i64) -> i64;
    // SAFETY: the receiver entry of that signature.
    let entry_fn = unsafe { std::mem::transmute::<*const c_void, Receiver9>(entry) };
    assert_eq!(entry_fn(std::ptr::null(), 1, 1, 1, 1, 1, 1, 1, 1, 1), 45);
    saw_through(
        &take(),
        "a_receiver_entry_with_a_frame_is_seen_in_the_backtrace",
        Some((entry as usize, CODE)),
        true,
    );
}

#[test]
fn a_batch_and_a_shared_stub_are_seen_through() {
    let Some(options) = jit() else { return };
    let two = sig("(i64, i64) -> i64");
    let nine = sig("(i64, i64, i64, i64, i64, i64, i64, i64, i64) -> i64");
    let items: Vec<(*const c_void, &Signature)> = (0..20)
        .map(|i| {
            if i % 2 == 0 {
                (looks2 as *const c_void, &two)
            } else {
                (looks9 as *const c_void, &nine)
            }
        })
        .collect();
    // SAFETY: each target has its signature.
    let batch = unsafe { Function::batch(&items, &options) }.unwrap();
    let args: Vec<u64> = (1..=9).collect();
    for f in [&batch[0], &batch[7], &batch[19]] {
        let mut ret = 0;
        // SAFETY: one slot per argument (at least).
        unsafe { f.call_packed(args.as_ptr(), &mut ret) };
        saw_through(
            &take(),
            "a_batch_and_a_shared_stub_are_seen_through",
            None,
            false,
        );
    }
    // The shape's shared stub.
    let shared = Options {
        receiver_entry: false,
        specialise: false,
        ..Options::default()
    };
    // SAFETY: looks9 has this signature.
    let f = unsafe { Function::with_options(looks9 as *const c_void, &nine, &shared) }.unwrap();
    assert_eq!(f.tier(), tiers::expected(&nine, &shared, false));
    let mut ret = 0;
    // SAFETY: one slot per argument.
    unsafe { f.call_packed(args.as_ptr(), &mut ret) };
    saw_through(
        &take(),
        "a_batch_and_a_shared_stub_are_seen_through",
        None,
        false,
    );
}

#[test]
fn a_callbacks_handler_sees_the_native_caller() {
    let text = "(i64, i64, i64, i64, i64, i64, i64, i64, i64) -> i64";
    for (tier, options) in tiers::each(Options::default()) {
        let cb = Callback::with_options(&sig(text), &options, |args, ret| {
            capture();
            *ret = args.iter().sum();
        })
        .unwrap();
        type Native = extern "C" fn(i64, i64, i64, i64, i64, i64, i64, i64, i64) -> i64;
        // SAFETY: the callback's code has this C type.
        let native = unsafe { std::mem::transmute::<*const c_void, Native>(cb.code_ptr()) };
        assert_eq!(native(1, 2, 3, 4, 5, 6, 7, 8, 9), 45);
        let seen = take();
        // libffi's closures have unwind information of their own.
        saw_through(
            &seen,
            "a_callbacks_handler_sees_the_native_caller",
            None,
            false,
        );
        println!("callback on {tier} ({}): frames seen through", cb.tier());
    }
}

/// A callee that panics, declared `C-unwind`.
extern "C-unwind" fn panics(a: i64, _b: i64) -> i64 {
    if a == 7 {
        panic!("seven");
    }
    a
}

/// jitcall's promise on unwinding: a panic (or C++ exception) in a target
/// declared `C-unwind` crosses the trampoline's frames to a caller that
/// called the raw entry as `C-unwind` too. (`call_packed` and `call` are
/// no such callers: they call through `extern "C"` pointers, across which
/// Rust does not let a panic pass.)
#[test]
fn a_panic_in_a_c_unwind_target_unwinds_through_the_trampoline() {
    let Some(options) = jit() else { return };
    let two = sig("(i64, i64) -> i64");
    let nine = sig("(i64, i64, i64, i64, i64, i64, i64, i64, i64) -> i64");
    for s in [&two, &nine] {
        // SAFETY: `panics` reads two i64 arguments and returns an i64;
        // the extra arguments of the nine-argument binding are ignored by
        // the C calling convention.
        let f = unsafe { Function::with_options(panics as *const c_void, s, &options) }.unwrap();
        type Packed = unsafe extern "C-unwind" fn(*const u64, *mut u64);
        // SAFETY: the packed entry, called as C-unwind.
        let entry = unsafe { std::mem::transmute::<*const c_void, Packed>(f.jit_entry().unwrap()) };
        let args = [7u64, 0, 0, 0, 0, 0, 0, 0, 0];
        let mut ret = 0u64;
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            // SAFETY: one slot per argument.
            unsafe { entry(args.as_ptr(), &mut ret) }
        }));
        let payload = caught.expect_err("the panic reaches the caller");
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"seven"), "{s}");
        // The trampoline works after the unwind.
        let args = [5u64, 0, 0, 0, 0, 0, 0, 0, 0];
        // SAFETY: as above.
        unsafe { entry(args.as_ptr(), &mut ret) };
        assert_eq!(ret, 5, "{s}");
    }
}

/// The compiled-in tier: a baked stub (two arguments), the register-file
/// stub (nine), and a receiver entry through a static thunk, described by
/// the binary's own `.eh_frame`.
#[test]
fn a_callee_sees_its_callers_through_the_baked_tier() {
    let options = Options {
        avoid_jit: true,
        receiver_entry: true,
        ..Options::default()
    };
    let args: Vec<u64> = (1..=9).collect();
    for (target, text) in [
        (looks2 as *const c_void, "(i64, i64) -> i64"),
        (
            looks9 as *const c_void,
            "(i64, i64, i64, i64, i64, i64, i64, i64, i64) -> i64",
        ),
    ] {
        // SAFETY: the target has this signature.
        let f = unsafe { Function::with_options(target, &sig(text), &options) }.unwrap();
        assert!(matches!(f.tier(), Tier::Baked(_)), "{}", f.tier());
        let mut ret = 0;
        // SAFETY: one slot per argument (at least).
        unsafe { f.call_packed(args.as_ptr(), &mut ret) };
        saw_through(
            &take(),
            "a_callee_sees_its_callers_through_the_baked_tier",
            None,
            false,
        );
        println!(
            "{text} on {} (register file: {}): frames seen through",
            f.tier(),
            f.uses_register_file()
        );
    }
    // A narrow return: the receiver stub behind the thunk calls the target.
    // SAFETY: looks_narrow has this signature.
    let f = unsafe {
        Function::with_options(
            looks_narrow as *const c_void,
            &sig("(i64, i64) -> i8"),
            &options,
        )
    }
    .unwrap();
    if f.receiver_entry().is_some() {
        call_receiver_of_two(&f);
        saw_through(
            &take(),
            "a_callee_sees_its_callers_through_the_baked_tier",
            None,
            false,
        );
    } else {
        println!("NOTICE: no static thunks here: the baked receiver entry is NOT checked");
    }
}

/// Set in the child process of the perf map test.
const PERF_CHILD: &str = "JITCALL_TEST_PERF_MAP_CHILD";

/// With `JITCALL_PERF_MAP=1`, every piece of code jitcall places is named
/// in `/tmp/perf-<pid>.map`, at its address, with its size. The child
/// binds, prints what it bound (`EXPECT start name`), and the parent
/// reads the child's map.
#[test]
fn the_perf_map_names_every_trampoline() {
    if std::env::var_os(PERF_CHILD).is_some() {
        let Some(options) = jit() else { return };
        let two = sig("(i64, i64) -> i64");
        let nine = sig("(i64, i64, i64, i64, i64, i64, i64, i64, i64) -> i64");
        let items = [
            (looks2 as *const c_void, &two),
            (looks9 as *const c_void, &nine),
        ];
        // SAFETY: each target has its signature.
        let batch = unsafe { Function::batch(&items, &options) }.unwrap();
        for (f, text) in batch.iter().zip([
            "(i64, i64) -> i64",
            "(i64, i64, i64, i64, i64, i64, i64, i64, i64) -> i64",
        ]) {
            println!("EXPECT {:x} packed {text}", f.jit_entry().unwrap() as usize);
            if let Some(entry) = f.receiver_entry() {
                println!("EXPECT {:x} receiver {text}", entry as usize);
            }
        }
        let cb = Callback::new(&two, |_, _| {}).unwrap();
        if cb.tier() == Tier::Jit {
            println!(
                "EXPECT {:x} reverse (i64, i64) -> i64",
                cb.code_ptr() as usize
            );
        }
        println!("PID {}", std::process::id());
        return;
    }
    if jit().is_none() {
        return;
    }
    let output = jitcall_fixtures::process::target_command(&std::env::current_exe().unwrap())
        .args([
            "the_perf_map_names_every_trampoline",
            "--exact",
            "--nocapture",
        ])
        .env(PERF_CHILD, "1")
        .env("JITCALL_PERF_MAP", "1")
        .output()
        .unwrap();
    if output.status.code() == Some(127) && output.stdout.is_empty() {
        println!("NOTICE: cannot re-execute the test binary here: the perf map is NOT checked");
        return;
    }
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let pid = stdout
        .lines()
        .find_map(|l| l.strip_prefix("PID "))
        .expect("the child's pid");
    let path = format!("/tmp/perf-{pid}.map");
    let map = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    std::fs::remove_file(&path).unwrap();
    let lines: Vec<(u64, u64, &str)> = map
        .lines()
        .map(|line| {
            let mut parts = line.splitn(3, ' ');
            let start = u64::from_str_radix(parts.next().unwrap(), 16).unwrap();
            let size = u64::from_str_radix(parts.next().unwrap(), 16).unwrap();
            (start, size, parts.next().unwrap())
        })
        .collect();
    let mut expected = 0;
    for want in stdout.lines().filter_map(|l| l.strip_prefix("EXPECT ")) {
        let (start, rest) = want.split_once(' ').unwrap();
        let (kind, text) = rest.split_once(' ').unwrap();
        let start = u64::from_str_radix(start, 16).unwrap();
        let (_, size, name) = lines
            .iter()
            .find(|(s, _, _)| *s == start)
            .unwrap_or_else(|| panic!("no line for {start:#x} in\n{map}"));
        assert!(*size > 0 && *size < 4096, "{name}: {size} bytes");
        assert!(name.starts_with("jitcall:"), "{name}");
        assert!(
            name.ends_with(&format!("{text} {kind}")),
            "{name}: {text} {kind}"
        );
        if kind != "reverse" {
            // The targets are this binary's functions: named when the
            // binary exports them, by address otherwise.
            let who = name["jitcall:".len()..].split(':').next().unwrap();
            assert!(who.contains("looks") || who.starts_with("0x"), "{name}");
        }
        expected += 1;
    }
    assert!(expected >= 5, "{stdout}");
    // No two lines overlap.
    let mut ranges: Vec<_> = lines.iter().map(|&(s, n, _)| (s, s + n)).collect();
    ranges.sort_unstable();
    for pair in ranges.windows(2) {
        assert!(
            pair[0].1 <= pair[1].0,
            "overlapping ranges {pair:x?}:\n{map}"
        );
    }
    println!("{} perf map lines, {expected} checked:\n{map}", lines.len());
}

/// Set in the child process that `perf` samples.
const SPIN_CHILD: &str = "JITCALL_TEST_PERF_SPIN_CHILD";

extern "C" fn spin_target(a: i64) -> i64 {
    a.wrapping_add(1)
}

/// `perf record` of a process that calls through a trampoline in a loop
/// attributes samples to the trampoline by its perf map name. Needs `perf`
/// and a kernel that lets this user sample (`perf_event_paranoid`): a
/// notice says so where either is missing.
#[test]
fn perf_report_names_samples_in_trampolines() {
    if std::env::var_os(SPIN_CHILD).is_some() {
        let Some(options) = jit() else { return };
        // SAFETY: spin_target has this signature.
        let f = unsafe {
            Function::with_options(spin_target as *const c_void, &sig("(i64) -> i64"), &options)
        }
        .unwrap();
        let entry = f.jit_entry().unwrap();
        // SAFETY: the packed entry of (i64) -> i64.
        let entry = unsafe { std::mem::transmute::<*const c_void, jitcall::PackedFn>(entry) };
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while start.elapsed() < std::time::Duration::from_millis(400) {
            for _ in 0..10_000 {
                let mut ret = 0;
                // SAFETY: one slot, a return slot.
                unsafe { entry(&x, &mut ret) };
                x = ret;
            }
        }
        println!("PID {} calls {x}", std::process::id());
        return;
    }
    if jit().is_none() {
        return;
    }
    if jitcall_fixtures::process::emulator().is_some() || jitcall_fixtures::process::valgrind() {
        println!("NOTICE: under an emulator or valgrind: perf is NOT run");
        return;
    }
    let data = std::env::temp_dir().join(format!("jitcall-perf-{}.data", std::process::id()));
    let recorded = std::process::Command::new("perf")
        .args(["record", "-q", "-e", "cpu-clock", "-o"])
        .arg(&data)
        .arg("--")
        .arg(std::env::current_exe().unwrap())
        .args([
            "perf_report_names_samples_in_trampolines",
            "--exact",
            "--nocapture",
        ])
        .env(SPIN_CHILD, "1")
        .env("JITCALL_PERF_MAP", "1")
        .output();
    let recorded = match recorded {
        Ok(output) if output.status.success() => output,
        Ok(output) => {
            println!(
                "NOTICE: perf record failed here ({}): perf is NOT checked",
                String::from_utf8_lossy(&output.stderr).trim()
            );
            return;
        }
        Err(e) => {
            println!("NOTICE: no perf here ({e}): perf is NOT checked");
            return;
        }
    };
    let stdout = String::from_utf8_lossy(&recorded.stdout);
    let pid = stdout
        .lines()
        .find_map(|l| l.strip_prefix("PID "))
        .and_then(|rest| rest.split(' ').next())
        .expect("the child's pid");
    let report = std::process::Command::new("perf")
        .args(["report", "--stdio", "--sort", "sym", "-i"])
        .arg(&data)
        .output()
        .unwrap();
    let map = format!("/tmp/perf-{pid}.map");
    let _ = std::fs::remove_file(&data);
    let _ = std::fs::remove_file(&map);
    let report = String::from_utf8_lossy(&report.stdout);
    let named = report
        .lines()
        .find(|line| line.contains("jitcall:") && line.contains("(i64) -> i64 packed"));
    assert!(
        named.is_some(),
        "no sample named after the trampoline in perf's report:\n{report}"
    );
    println!("perf: {}", named.unwrap().trim());
}

/// Set in the child process gdb runs.
const GDB_CHILD: &str = "JITCALL_TEST_GDB_CHILD";

/// The callee gdb stops in.
#[no_mangle]
#[inline(never)]
extern "C" fn jitcall_test_gdb_callee(a: i64) -> i64 {
    std::hint::black_box(a) + 1
}

/// With `JITCALL_GDB_JIT=1`, gdb names a trampoline in a backtrace, from
/// the in-memory symbol file registered through its JIT interface; without
/// it, the frame is `??`. Needs gdb (a notice says so where it is missing
/// or cannot trace).
#[test]
fn gdb_names_the_trampoline_in_a_backtrace() {
    if std::env::var_os(GDB_CHILD).is_some() {
        let Some(options) = jit() else { return };
        let target = jitcall_test_gdb_callee as *const c_void;
        // SAFETY: the callee has this signature.
        let f = unsafe { Function::with_options(target, &sig("(i64) -> i64"), &options) }.unwrap();
        // SAFETY: the packed entry of (i64) -> i64.
        let entry = unsafe {
            std::mem::transmute::<*const c_void, jitcall::PackedFn>(f.jit_entry().unwrap())
        };
        let mut ret = 0;
        // SAFETY: one slot, a return slot.
        unsafe { entry(&41, &mut ret) };
        println!("returned {ret}");
        return;
    }
    if jit().is_none() {
        return;
    }
    if jitcall_fixtures::process::emulator().is_some() || jitcall_fixtures::process::valgrind() {
        println!("NOTICE: under an emulator or valgrind: gdb is NOT run");
        return;
    }
    let backtrace = |gdb_jit: &str| {
        std::process::Command::new("gdb")
            .args(["-batch", "-nx", "-ex", "set breakpoint pending on"])
            .args([
                "-ex",
                "break jitcall_test_gdb_callee",
                "-ex",
                "run",
                "-ex",
                "bt",
            ])
            .arg("--args")
            .arg(std::env::current_exe().unwrap())
            .args([
                "gdb_names_the_trampoline_in_a_backtrace",
                "--exact",
                "--nocapture",
            ])
            .env(GDB_CHILD, "1")
            .env("JITCALL_GDB_JIT", gdb_jit)
            .output()
    };
    let named = match backtrace("1") {
        Ok(output) => String::from_utf8_lossy(&output.stdout).into_owned(),
        Err(e) => {
            println!("NOTICE: no gdb here ({e}): the GDB JIT interface is NOT checked");
            return;
        }
    };
    let frames: Vec<&str> = named.lines().filter(|l| l.starts_with('#')).collect();
    if frames.is_empty() {
        println!("NOTICE: gdb could not run the test here: the GDB JIT interface is NOT checked\n{named}");
        return;
    }
    assert!(
        frames
            .iter()
            .any(|f| f.contains("jitcall:") && f.contains("(i64) -> i64 packed")),
        "no frame named after the trampoline:\n{named}"
    );
    // The same without the interface: gdb has no name for the frame.
    let unnamed = String::from_utf8_lossy(&backtrace("0").unwrap().stdout).into_owned();
    assert!(
        !unnamed.contains("jitcall:0x"),
        "named without the interface:\n{unnamed}"
    );
    println!(
        "gdb: {}",
        frames.iter().find(|f| f.contains("jitcall:")).unwrap()
    );
}
