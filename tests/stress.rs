//! Stress: many threads creating, calling and dropping functions at once.
//!
//! - W^X audit: while worker threads bind and call functions, another
//!   thread reads `/proc/self/maps` over and over; no line may ever be
//!   writable and executable.
//! - Reclamation: 8 threads create, call and drop 100,000 functions in
//!   total (`JITCALL_STRESS_FUNCTIONS` sets another total, e.g. under
//!   emulation), singles and batches, with and without receiver entries.
//!   Every call must agree with the direct call, and afterwards the JIT
//!   mappings must all be gone and the mapping count, the heap in use and
//!   RSS be back near their baseline (RSS not under an emulator, which
//!   counts its own translation cache in it).

use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use jitcall::{Function, Options, Tier};
use jitcall_fixtures::process::{self, notice, status_kib};
use jitcall_fixtures::{argument_vectors, every_callee, packed_outcome, Callee};

/// Both tests measure the whole process: run them one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

type Callees = Vec<Box<dyn Callee + Send + Sync>>;

/// Every fixture callee with its argument vectors, computed once.
struct Workload {
    callees: Callees,
    vectors: Vec<Vec<Vec<u64>>>,
}

impl Workload {
    fn new() -> Arc<Workload> {
        let callees = every_callee();
        let vectors = callees
            .iter()
            .map(|c| argument_vectors(c.signature()))
            .collect();
        Arc::new(Workload { callees, vectors })
    }

    /// Binds the functions of step `step`: a single function, a single
    /// one with a receiver entry, or a batch of 2 to 64 (with receiver
    /// entries on every other batch), starting at callee `step`. Returns
    /// them with the index of each one's callee.
    fn bind(&self, step: usize) -> Vec<(usize, Function)> {
        let n = self.callees.len();
        let (count, receiver_entry) = match step % 4 {
            0 => (1, false),
            1 => (1, true),
            _ => (2 + step % 63, step % 8 < 4),
        };
        let picks: Vec<usize> = (0..count).map(|i| (step * 7 + i * 13) % n).collect();
        let items: Vec<(*const c_void, _)> = picks
            .iter()
            .map(|&i| (self.callees[i].target(), self.callees[i].signature()))
            .collect();
        let options = Options {
            receiver_entry,
            ..Options::default()
        };
        // SAFETY: every callee is paired with its own signature.
        let functions = unsafe { Function::batch(&items, &options) }.unwrap();
        picks.into_iter().zip(functions).collect()
    }

    /// Calls `f` (bound to callee `i`) with one of its argument vectors,
    /// through the packed entry and the receiver entry if it has one, and
    /// checks both against the direct call. Returns the number of calls.
    fn call(&self, i: usize, f: &Function, step: usize) -> usize {
        let callee = self.callees[i].as_ref();
        let vectors = &self.vectors[i];
        let slots = &vectors[step % vectors.len()];
        let want = callee.direct(slots);
        // SAFETY: one slot per argument; callees never dereference
        // pointer arguments.
        let got = packed_outcome(callee, |ret| unsafe { f.call_packed(slots.as_ptr(), ret) });
        assert_eq!(
            got,
            want,
            "{} {:?} with {slots:x?}",
            callee.name(),
            f.tier()
        );
        let Some(entry) = f.receiver_entry() else {
            return 1;
        };
        // SAFETY: `entry` is this signature's receiver entry.
        let got = unsafe { callee.via_receiver(entry, slots) };
        assert_eq!(
            got,
            want,
            "{} receiver entry with {slots:x?}",
            callee.name()
        );
        2
    }
}

/// JIT mappings (anonymous read-execute ones, which nothing else in a
/// test process has): how many lines, and how many KiB.
fn jit_mappings() -> (usize, u64) {
    let jit: Vec<_> = process::maps()
        .into_iter()
        .filter(process::Mapping::is_jit_like)
        .collect();
    let bytes: u64 = jit.iter().map(|m| m.range.end - m.range.start).sum();
    (jit.len(), bytes / 1024)
}

/// KiB that malloc has handed out and not had back, over all its arenas:
/// what the process itself holds, whatever the allocator keeps cached or
/// an emulator adds to RSS. glibc only.
fn heap_in_use_kib() -> Option<u64> {
    #[cfg(target_env = "gnu")]
    {
        // SAFETY: mallinfo2 only reads the allocator's statistics.
        let info = unsafe { libc::mallinfo2() };
        Some((info.uordblks + info.hblkhd) as u64 / 1024)
    }
    #[cfg(not(target_env = "gnu"))]
    None
}

/// Returns freed heap memory to the kernel (glibc keeps it otherwise), so
/// that RSS shows what is still allocated.
fn trim_heap() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only releases free memory.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[test]
fn no_mapping_is_ever_writable_and_executable() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    const WORKERS: usize = 4;
    const SAMPLES: usize = 400;
    const TIME_LIMIT: Duration = Duration::from_secs(20);
    if process::valgrind() {
        notice(
            "W^X audit not run under valgrind: its own translation cache is writable and \
             executable, and it runs one thread at a time, so the sampler would see neither",
        );
        return;
    }
    if !jitcall::jit_available() {
        notice(&format!(
            "W^X audit with the JIT unavailable ({:?}): nothing is mapped executable",
            jitcall::jit_status()
        ));
    }
    let work = Workload::new();
    let stop = Arc::new(AtomicBool::new(false));
    let created = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..WORKERS)
        .map(|t| {
            let (work, stop, created) = (work.clone(), stop.clone(), created.clone());
            std::thread::spawn(move || {
                let mut step = t * 1_000_003;
                while !stop.load(Ordering::Relaxed) {
                    let functions = work.bind(step);
                    for (i, f) in &functions {
                        work.call(*i, f, step);
                    }
                    created.fetch_add(functions.len(), Ordering::Relaxed);
                    step += 1;
                }
            })
        })
        .collect();

    let start = Instant::now();
    let (mut samples, mut saw_jit, mut max_jit) = (0, 0, 0);
    let mut violations = Vec::new();
    while samples < SAMPLES && start.elapsed() < TIME_LIMIT {
        let maps = process::maps();
        violations.extend(maps.iter().filter(|m| m.is_writable_executable()).cloned());
        let jit = maps.iter().filter(|m| m.is_jit_like()).count();
        saw_jit += usize::from(jit > 0);
        max_jit = max_jit.max(jit);
        samples += 1;
    }
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.join().unwrap();
    }
    let created = created.load(Ordering::Relaxed);
    println!(
        "{samples} samples of /proc/self/maps in {:?} while {WORKERS} threads bound and called \
         {created} functions; {saw_jit} samples saw JIT mappings (up to {max_jit} lines); \
         {} writable+executable lines",
        start.elapsed(),
        violations.len()
    );
    assert!(violations.is_empty(), "W+X mappings seen: {violations:#?}");
    assert!(samples >= 50, "too few samples to mean anything");
    if jitcall::jit_available() {
        assert!(saw_jit > 0, "the sampler never saw a JIT mapping");
    }

    // The audit would see a W+X mapping: make one and look.
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
    // SAFETY: a fresh anonymous mapping, unmapped below.
    let rwx = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            page,
            libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if rwx == libc::MAP_FAILED {
        notice("this process may not map W+X memory: the audit's detector is unchecked");
        return;
    }
    let seen = process::writable_executable()
        .iter()
        .any(|m| m.range.start <= rwx as u64 && (rwx as u64) < m.range.end);
    // SAFETY: unmaps the page mapped above, which nothing refers to.
    unsafe { libc::munmap(rwx, page) };
    assert!(seen, "the audit missed a W+X mapping made on purpose");
}

/// The total number of functions, 100,000 unless `JITCALL_STRESS_FUNCTIONS`
/// says otherwise.
fn stress_total() -> usize {
    match std::env::var("JITCALL_STRESS_FUNCTIONS") {
        Ok(n) => n.parse().expect("JITCALL_STRESS_FUNCTIONS is a number"),
        Err(_) => 100_000,
    }
}

/// A reading of the process's memory.
#[derive(Clone, Copy, Debug)]
struct Reading {
    lines: usize,
    jit_lines: usize,
    jit_kib: u64,
    rss_kib: u64,
    heap_kib: Option<u64>,
    /// `.eh_frame` sections registered with the system unwinder.
    sections: usize,
}

impl Reading {
    fn now() -> Reading {
        let (jit_lines, jit_kib) = jit_mappings();
        Reading {
            lines: process::maps().len(),
            jit_lines,
            jit_kib,
            rss_kib: status_kib("VmRSS"),
            heap_kib: heap_in_use_kib(),
            sections: jitcall::registered_sections(),
        }
    }
}

/// Mappings the process may gain between the baseline and the end without
/// a leak: each thread the harness starts meanwhile (another test's) brings
/// a stack, a signal stack and a malloc arena, two lines each.
const LINES_TOLERANCE: usize = 12;
/// RSS the process may gain without a leak: malloc keeps some freed memory
/// in its per-thread arenas even after a trim (fragmentation), and the
/// fixtures' argument vectors and code pages fault in as they are used.
/// Leaking the JIT pages would cost a page per binding step (some 6,000
/// steps for 100,000 functions: over 20 MiB), and leaking the functions
/// themselves at least 100 bytes each (over 9 MiB).
const RSS_TOLERANCE_KIB: u64 = 8 * 1024;

/// Heap the process may hold at the end, the workers gone, without a leak:
/// the harness's own bookkeeping for the other test and its output.
/// Leaking the functions would hold at least 100 bytes each, over 9 MiB.
const HEAP_TOLERANCE_KIB: u64 = 256;

#[test]
fn functions_created_and_dropped_by_eight_threads_are_reclaimed() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    const THREADS: usize = 8;
    let total = stress_total();
    let work = Workload::new();
    let created = Arc::new(AtomicUsize::new(0));
    let calls = Arc::new(AtomicUsize::new(0));
    // Workers warm up (their stacks, arenas and the probe), wait for the
    // baseline, run, then wait alive for the final reading.
    let phase = Arc::new(Barrier::new(THREADS + 1));
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let (work, created, calls, phase) =
                (work.clone(), created.clone(), calls.clone(), phase.clone());
            std::thread::spawn(move || {
                for (i, f) in work.bind(t) {
                    work.call(i, &f, t);
                }
                phase.wait();
                phase.wait();
                let mut step = t;
                let mut mine = 0;
                while created.load(Ordering::Relaxed) < total {
                    let functions = work.bind(step);
                    let mut n = 0;
                    for (i, f) in &functions {
                        n += work.call(*i, f, step);
                    }
                    mine += functions.len();
                    created.fetch_add(functions.len(), Ordering::Relaxed);
                    calls.fetch_add(n, Ordering::Relaxed);
                    step += THREADS;
                }
                phase.wait();
                phase.wait();
                mine
            })
        })
        .collect();

    phase.wait();
    trim_heap();
    let baseline = Reading::now();
    let start = Instant::now();
    phase.wait();
    let mut peak = baseline;
    let mut jit_seen = 0;
    while created.load(Ordering::Relaxed) < total {
        let now = Reading::now();
        jit_seen += usize::from(now.jit_lines > 0);
        peak = Reading {
            lines: peak.lines.max(now.lines),
            jit_lines: peak.jit_lines.max(now.jit_lines),
            jit_kib: peak.jit_kib.max(now.jit_kib),
            rss_kib: peak.rss_kib.max(now.rss_kib),
            heap_kib: peak.heap_kib.max(now.heap_kib),
            sections: peak.sections.max(now.sections),
        };
        std::thread::sleep(Duration::from_millis(5));
    }
    phase.wait();
    let elapsed = start.elapsed();
    trim_heap();
    let mut after = Reading::now();
    phase.wait();
    let per_thread: Vec<usize> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    // The heap once the workers are gone: a live thread's malloc cache
    // (tcache) counts as in use until it exits.
    after.heap_kib = heap_in_use_kib();
    let created = created.load(Ordering::Relaxed);
    let on_jit = jitcall::jit_available();
    println!(
        "{THREADS} threads created, called and dropped {created} functions ({per_thread:?}) \
         with {} calls in {elapsed:?}\n\
         mappings: baseline {} lines ({} JIT, {} KiB), peak {} lines ({} JIT, {} KiB), \
         after {} lines ({} JIT, {} KiB)\n\
         VmRSS: baseline {} KiB, peak {} KiB, after {} KiB\n\
         heap in use: baseline {:?} KiB, peak {:?} KiB, after {:?} KiB",
        calls.load(Ordering::Relaxed),
        baseline.lines,
        baseline.jit_lines,
        baseline.jit_kib,
        peak.lines,
        peak.jit_lines,
        peak.jit_kib,
        after.lines,
        after.jit_lines,
        after.jit_kib,
        baseline.rss_kib,
        peak.rss_kib,
        after.rss_kib,
        baseline.heap_kib,
        peak.heap_kib,
        after.heap_kib,
    );
    assert!(created >= total);
    assert_eq!(
        (after.jit_lines, after.jit_kib),
        (baseline.jit_lines, baseline.jit_kib),
        "JIT mappings outlived their functions"
    );
    if process::valgrind() {
        notice("mapping lines not checked under valgrind: its translation cache adds its own");
    } else {
        assert!(
            after.lines <= baseline.lines + LINES_TOLERANCE,
            "mappings grew from {} to {} lines",
            baseline.lines,
            after.lines
        );
    }
    if let (Some(before), Some(after)) = (baseline.heap_kib, after.heap_kib) {
        assert!(
            after <= before + HEAP_TOLERANCE_KIB,
            "heap in use grew from {before} to {after} KiB"
        );
    }
    match process::instrumented() {
        Some(host) => notice(&format!(
            "VmRSS not checked under {host}: it counts {host}'s own memory"
        )),
        None => assert!(
            after.rss_kib <= baseline.rss_kib + RSS_TOLERANCE_KIB,
            "VmRSS grew from {} to {} KiB",
            baseline.rss_kib,
            after.rss_kib
        ),
    }
    assert_eq!(
        after.sections, baseline.sections,
        "unwind information outlived its functions: {} sections registered, {} before",
        after.sections, baseline.sections
    );
    if on_jit {
        if process::valgrind() {
            notice(
                "live JIT mappings and registered unwind sections not required to be seen \
                 under valgrind: it runs one thread at a time, and the reader rarely runs \
                 while a worker holds functions",
            );
        } else {
            assert!(jit_seen > 0, "no reading saw a live JIT mapping");
            assert!(
                peak.sections > baseline.sections,
                "no reading saw a registered unwind section"
            );
        }
        // Step 0 binds one function alone, step 1 one with a receiver.
        assert_eq!(work.bind(0)[0].1.tier(), Tier::Shared);
        assert_eq!(work.bind(1)[0].1.tier(), Tier::Jit);
    }
}

#[test]
fn callbacks_created_and_dropped_by_eight_threads_are_reclaimed() {
    use jitcall::{Callback, Signature};
    use jitcall_fixtures::c;

    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    const THREADS: usize = 8;
    let total = stress_total();
    let sig: Signature = "(i32) -> i32".parse().unwrap();
    // Each step takes its tier in turn: the JIT's reverse trampoline, a
    // static thunk to the generic stub, a libffi closure.
    let options = |step: usize| match step % 3 {
        0 => Options::default(),
        1 => Options {
            avoid_jit: true,
            ..Options::default()
        },
        _ => Options {
            force_libffi: true,
            ..Options::default()
        },
    };
    // Makes a callback that adds `step`, calls it from C and drops it.
    let round_trip = move |sig: &Signature, step: usize| {
        let callback = Callback::with_options(sig, &options(step), move |args, ret| {
            *ret = (args[0] as i32).wrapping_add(step as i32) as i64 as u64;
        })
        .unwrap();
        // SAFETY: jf_reenter calls the callback, an int32_t (*)(int32_t).
        let got = unsafe { c::jf_reenter(callback.code_ptr(), 7) };
        assert_eq!(got, 7i32.wrapping_add(step as i32), "{}", callback.tier());
    };
    let created = Arc::new(AtomicUsize::new(0));
    let phase = Arc::new(Barrier::new(THREADS + 1));
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let (created, phase, sig) = (created.clone(), phase.clone(), sig.clone());
            std::thread::spawn(move || {
                for step in 0..3 {
                    round_trip(&sig, step);
                }
                phase.wait();
                phase.wait();
                let mut step = t;
                while created.load(Ordering::Relaxed) < total {
                    round_trip(&sig, step);
                    created.fetch_add(1, Ordering::Relaxed);
                    step += THREADS;
                }
                phase.wait();
                phase.wait();
            })
        })
        .collect();
    phase.wait();
    trim_heap();
    let baseline = Reading::now();
    let start = Instant::now();
    phase.wait();
    phase.wait();
    let elapsed = start.elapsed();
    trim_heap();
    let mut after = Reading::now();
    phase.wait();
    for worker in workers {
        worker.join().unwrap();
    }
    after.heap_kib = heap_in_use_kib();
    println!(
        "{THREADS} threads created, called from C and dropped {} callbacks in {elapsed:?}; \
         mappings {} -> {} lines ({} -> {} JIT); VmRSS {} -> {} KiB; heap {:?} -> {:?} KiB",
        created.load(Ordering::Relaxed),
        baseline.lines,
        after.lines,
        baseline.jit_lines,
        after.jit_lines,
        baseline.rss_kib,
        after.rss_kib,
        baseline.heap_kib,
        after.heap_kib,
    );
    assert_eq!(
        (after.jit_lines, after.jit_kib),
        (baseline.jit_lines, baseline.jit_kib),
        "JIT mappings outlived their callbacks"
    );
    assert_eq!(
        after.sections, baseline.sections,
        "unwind information outlived its callbacks"
    );
    if !process::valgrind() {
        assert!(
            after.lines <= baseline.lines + LINES_TOLERANCE,
            "mappings grew from {} to {} lines",
            baseline.lines,
            after.lines
        );
    }
    if let (Some(before), Some(after)) = (baseline.heap_kib, after.heap_kib) {
        assert!(
            after <= before + HEAP_TOLERANCE_KIB,
            "heap in use grew from {before} to {after} KiB"
        );
    }
    if process::instrumented().is_none() {
        assert!(
            after.rss_kib <= baseline.rss_kib + RSS_TOLERANCE_KIB,
            "VmRSS grew from {} to {} KiB",
            baseline.rss_kib,
            after.rss_kib
        );
    }
}
