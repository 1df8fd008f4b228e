//! JIT memory refused for real. Each case runs in a child process (this
//! test binary, re-executed for one test with a marker in its
//! environment), because the restrictions are irreversible: the child
//! installs one, then checks that jitcall notices and falls back to the
//! baked tier (code compiled into the library) with the reason, and that
//! every fixture callee and every generated signature still returns the
//! right values.
//!
//! - `PR_SET_MDWE` with `PR_MDWE_REFUSE_EXEC_GAIN` (Linux 6.3 and later):
//!   mprotect adding `PROT_EXEC` fails with `EACCES`;
//! - a seccomp filter like systemd's `MemoryDenyWriteExecute`: `EPERM` for
//!   mprotect and pkey_mprotect with `PROT_EXEC`, and for mmap with both
//!   `PROT_WRITE` and `PROT_EXEC`.
//!
//! Installed before the probe, the whole process is on the baked tier with
//! `Fallback::JitUnavailable`; installed after it (the late cases), each new
//! function that needs new code falls back with `Fallback::MemoryRefused`,
//! while the functions created before, and new functions of a shape whose
//! shared stub was mapped before, keep working.
//!
//! With `Options::double_map`, under either restriction installed before
//! the probe, every function gets a trampoline of its own written through
//! a read-write view of a memfd and run from a read-execute one: on
//! `Tier::Jit`, every value right, and no mapping writable and executable
//! at any moment a sampling thread looks.
//!
//! A restriction the kernel (or an emulator such as qemu-user) does not
//! enforce leaves the case not run, with a notice on stderr; set
//! `JITCALL_REQUIRE_FAULTS=1` to make that a failure. Under an emulator
//! that cannot exec the test binary by itself, set `JITCALL_TEST_RUNNER`
//! to the command that runs it (e.g. `qemu-aarch64 -L /`).

use std::ffi::c_void;

use jitcall::{Fallback, Function, JitUnavailable, MemoryRefused, Options, Tier};
use jitcall_fixtures::process::{self, status_kib};
use jitcall_fixtures::{
    agrees_on_every_vector, every_callee, receiver_agrees_on_every_vector, Callee,
};

mod tiers;

mod refusal;

use refusal::{in_child, page_size, restrict, Restriction};

fn with_receiver() -> Options {
    Options {
        receiver_entry: true,
        ..Options::default()
    }
}

/// Binds every fixture callee (generated signatures included), alone (with
/// and without a receiver entry) and in one batch, checks that each
/// function is on the baked tier for `why` without JIT code, that each
/// bound with a receiver entry has one (a static thunk), and that all
/// agree with the direct calls, through `call_packed` and the receiver
/// entry. Returns the number of calls checked.
fn check_every_callee_baked(why: Fallback) -> usize {
    let batch = Batch::bind(every_callee());
    let mut calls = 0;
    for (callee, batched) in batch.callees.iter().zip(&batch.functions) {
        let alone = [with_receiver(), Options::default()].map(|options| {
            // SAFETY: each callee has its own signature.
            unsafe { Function::with_options(callee.target(), callee.signature(), &options) }
                .unwrap()
        });
        let bound = [
            (&alone[0], with_receiver()),
            (&alone[1], Options::default()),
            (batched, with_receiver()),
        ];
        for (f, options) in bound {
            assert_eq!(
                f.tier(),
                tiers::compiled_in(callee.signature(), why),
                "{}",
                callee.name()
            );
            tiers::check_baked_stub(f);
            assert_eq!(f.jit_entry(), None);
            assert!(f.shape_entry().is_none());
            assert_eq!(f.code_mapping(), None);
            assert_eq!(
                f.receiver_entry().is_some(),
                tiers::has_receiver(f, &options),
                "{}: a receiver entry exactly when asked for",
                callee.name()
            );
            // SAFETY: one slot per argument; the callees never dereference
            // pointer arguments.
            calls += agrees_on_every_vector(callee.as_ref(), "baked", |args, ret| unsafe {
                f.call_packed(args, ret)
            });
            if let Some(entry) = f.receiver_entry() {
                // SAFETY: `entry` is this signature's receiver entry.
                calls += unsafe { receiver_agrees_on_every_vector(callee.as_ref(), entry) };
            }
        }
    }
    calls
}

/// Creates 1,000 functions with receiver entries on the baked tier and
/// checks that the only executable mappings they add are thunk tables
/// mapped from this binary's file: nothing anonymous, nothing writable.
/// Returns the number of new executable mappings.
fn thunk_receivers_map_only_thunk_tables() -> usize {
    let executable = |m: &process::Mapping| m.is_executable();
    let before: Vec<process::Mapping> = process::maps().into_iter().filter(executable).collect();
    let callees = every_callee();
    let functions: Vec<Function> = (0..1000)
        .map(|i| {
            let callee = &callees[i % callees.len()];
            // SAFETY: each callee has its own signature.
            unsafe { Function::with_options(callee.target(), callee.signature(), &with_receiver()) }
                .unwrap()
        })
        .collect();
    assert!(functions.iter().all(|f| f.receiver_entry().is_some()));
    let exe = std::env::current_exe().unwrap();
    let added: Vec<process::Mapping> = process::maps()
        .into_iter()
        .filter(executable)
        .filter(|m| !before.contains(m))
        .collect();
    for m in &added {
        assert!(
            !m.is_writable() && !m.is_anonymous() && std::path::Path::new(&m.path) == exe,
            "a new executable mapping that is no thunk table of this binary: {m}"
        );
    }
    assert!(!added.is_empty(), "1,000 thunks need some table");
    drop(functions);
    added.len()
}

/// Makes a callback for every generated signature and calls it from C
/// with every argument vector: each must be on the baked tier for `why`,
/// receive the values C passed and return what its handler returned.
/// Returns the number of calls.
fn callbacks_on_the_baked_tier(why: Fallback) -> usize {
    use jitcall::{Callback, Type};
    use jitcall_fixtures::{argument_vectors, generated_cases};

    let mut calls = 0;
    for case in generated_cases() {
        let sig = case.signature().clone();
        let ret = sig.ret;
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let record = std::sync::Arc::clone(&seen);
        let callback = Callback::new(&sig, move |args, out| {
            *record.lock().unwrap() = args.to_vec();
            // An echo of the first argument, or of a constant, in the
            // return type's width.
            let value = args.first().copied().unwrap_or(0x5a5a_5a5a_5a5a_5a5a);
            *out = match ret {
                Type::F32 => value & 0xffff_ffff,
                _ => value,
            };
        })
        .unwrap();
        assert_eq!(callback.tier(), Tier::Baked(why), "{}", case.name());
        for slots in argument_vectors(&sig) {
            // SAFETY: the callback has the case's signature.
            let got = unsafe { case.via_pointer(callback.code_ptr(), &slots) };
            let args = std::mem::take(&mut *seen.lock().unwrap());
            assert_eq!(args.len(), slots.len(), "{}", case.name());
            for ((&ty, &slot), &arg) in sig.args.iter().zip(&slots).zip(&args) {
                let narrow = |bits: u32| slot & (u64::MAX >> (64 - bits));
                let want = match ty {
                    Type::Bool => slot & 1,
                    Type::U8 => narrow(8),
                    Type::I8 => slot as i8 as i64 as u64,
                    Type::U16 => narrow(16),
                    Type::I16 => slot as i16 as i64 as u64,
                    Type::U32 | Type::F32 => narrow(32),
                    Type::I32 => slot as i32 as i64 as u64,
                    _ => slot,
                };
                assert_eq!(arg, want, "{} {sig}: {ty} from {slot:#x}", case.name());
            }
            if ret != Type::Void {
                let sent = args.first().copied().unwrap_or(0x5a5a_5a5a_5a5a_5a5a);
                // C read the return at its width: compare the same bits.
                let width = match ret.int_width() {
                    Some((bits, _)) => bits,
                    None if ret == Type::F32 => 32,
                    None => 64,
                };
                let mask = u64::MAX >> (64 - width);
                assert_eq!(got & mask, sent & mask, "{} {sig}: the return", case.name());
            }
            calls += 1;
        }
    }
    calls
}

fn refused_before_the_probe(restriction: Restriction) -> Result<String, String> {
    let errno = restrict(restriction)?;
    let refused = MemoryRefused {
        syscall: "mprotect",
        errno,
    };
    assert_eq!(jitcall::jit_status(), Err(JitUnavailable::Refused(refused)));
    assert!(!jitcall::jit_available());
    let calls =
        check_every_callee_baked(Fallback::JitUnavailable(JitUnavailable::Refused(refused)));
    let tables = thunk_receivers_map_only_thunk_tables();
    let callbacks =
        callbacks_on_the_baked_tier(Fallback::JitUnavailable(JitUnavailable::Refused(refused)));
    Ok(format!(
        "probe refused ({refused}); {} callees on the baked tier with receiver entries, \
         {calls} calls agreed; 1,000 receiver entries added {tables} executable mappings, \
         all thunk tables of this binary; {callbacks} calls from C into callbacks agreed",
        every_callee().len()
    ))
}

/// Callees bound in one batch with receiver entries.
struct Batch {
    callees: Vec<Box<dyn Callee + Send + Sync>>,
    functions: Vec<Function>,
}

impl Batch {
    fn bind(callees: Vec<Box<dyn Callee + Send + Sync>>) -> Batch {
        let items: Vec<(*const c_void, _)> = callees
            .iter()
            .map(|c| (c.target(), c.signature()))
            .collect();
        // SAFETY: each callee has its own signature.
        let functions = unsafe { Function::batch(&items, &with_receiver()) }.unwrap();
        Batch { callees, functions }
    }

    /// Calls every function through its packed and receiver entries.
    fn check(&self) -> usize {
        let mut calls = 0;
        for (callee, f) in self.callees.iter().zip(&self.functions) {
            // SAFETY: as in `check_every_callee_on`.
            calls += agrees_on_every_vector(callee.as_ref(), "JIT", |args, ret| unsafe {
                f.call_packed(args, ret)
            });
            if let Some(entry) = f.receiver_entry() {
                // SAFETY: `entry` is this signature's receiver entry.
                calls += unsafe { receiver_agrees_on_every_vector(callee.as_ref(), entry) };
            }
        }
        calls
    }
}

fn refused_after_the_probe(restriction: Restriction) -> Result<String, String> {
    assert!(jitcall::jit_available(), "{:?}", jitcall::jit_status());
    // Functions created before the restriction: they must keep working,
    // and so must new functions of the shared stub's shape.
    let early = Batch::bind(every_callee());
    let jit = early
        .functions
        .iter()
        .filter(|f| f.tier() == Tier::Jit)
        .count();
    assert!(jit > 0, "the early functions should be on the JIT tier");
    extern "C" fn twice(x: i64) -> i64 {
        x.wrapping_mul(2)
    }
    let sig = "(i64) -> i64".parse().unwrap();
    // SAFETY: `twice` has this signature.
    let early_shared = unsafe { Function::new(twice as *const c_void, &sig) }.unwrap();
    assert_eq!(early_shared.tier(), Tier::Shared);
    let errno = restrict(restriction)?;
    assert!(jitcall::jit_available(), "the probe's answer is cached");
    // SAFETY: as above.
    let late_shared = unsafe { Function::new(twice as *const c_void, &sig) }.unwrap();
    assert_eq!(late_shared.tier(), Tier::Shared, "the shape's stub exists");
    assert_eq!(late_shared.code_mapping(), early_shared.code_mapping());
    let mut ret = 0u64;
    // SAFETY: one argument slot and a return slot.
    unsafe { late_shared.call_packed([21u64].as_ptr(), &mut ret) };
    assert_eq!(ret, 42);
    // Once the shape's last function is gone, so is its stub: a new one
    // would need new code.
    drop((early_shared, late_shared));

    let why = Fallback::MemoryRefused(MemoryRefused {
        syscall: "mprotect",
        errno,
    });
    let refused = Tier::Baked(why);
    // Ineligible signatures keep their own reason; everything else needing
    // new code is refused. The fixtures are all eligible under the default
    // limits.
    let mut calls = check_every_callee_baked(why);
    calls += early.check();

    // A refused creation leaves nothing mapped behind.
    let shapes = every_callee();
    let before = status_kib("VmSize");
    let rounds = 20;
    for _ in 0..rounds {
        for callee in &shapes {
            // SAFETY: as above.
            let f = unsafe { Function::new(callee.target(), callee.signature()) }.unwrap();
            assert_eq!(f.tier(), refused);
        }
    }
    let after = status_kib("VmSize");
    let created = rounds * shapes.len();
    // Each refused creation mapped at least one page; leaking them would
    // grow the address space by `created` pages.
    let leak_bound = (created * page_size() / 1024 / 4) as u64;
    assert!(
        after < before + leak_bound,
        "VmSize grew from {before} to {after} KiB over {created} refused creations"
    );
    drop(early);
    Ok(format!(
        "{jit} early JIT functions and a shared stub kept working; new ones on {refused}; \
         {created} more refused creations, VmSize {before} -> {after} KiB; {calls} calls agreed"
    ))
}

#[test]
fn mdwe_before_the_probe_puts_every_function_on_the_baked_tier() {
    in_child(
        "mdwe_before_the_probe_puts_every_function_on_the_baked_tier",
        || refused_before_the_probe(Restriction::Mdwe),
    );
}

#[test]
fn seccomp_before_the_probe_puts_every_function_on_the_baked_tier() {
    in_child(
        "seccomp_before_the_probe_puts_every_function_on_the_baked_tier",
        || refused_before_the_probe(Restriction::Seccomp),
    );
}

#[test]
fn mdwe_after_the_probe_refuses_each_new_function() {
    in_child("mdwe_after_the_probe_refuses_each_new_function", || {
        refused_after_the_probe(Restriction::Mdwe)
    });
}

#[test]
fn seccomp_after_the_probe_refuses_each_new_function() {
    in_child("seccomp_after_the_probe_refuses_each_new_function", || {
        refused_after_the_probe(Restriction::Seccomp)
    });
}

/// Binds every fixture callee with `double_map` (alone, and in one batch,
/// with receiver entries) while another thread samples `/proc/self/maps`,
/// and checks every function is on `Tier::Jit`, every call agrees with the
/// direct one, and no sample saw a mapping writable and executable.
fn double_mapped_under(restriction: Restriction) -> Result<String, String> {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;

    restrict(restriction)?;
    assert!(
        jitcall::jit_status().is_err(),
        "the restriction refuses the JIT"
    );
    jitcall::double_map_status()
        .map_err(|why| format!("{restriction:?} refuses the double mapping too: {why}"))?;
    let stop = Arc::new(AtomicBool::new(false));
    let samples = Arc::new(AtomicUsize::new(0));
    let sampler = {
        let (stop, samples) = (stop.clone(), samples.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let bad = process::writable_executable();
                assert!(bad.is_empty(), "W+X mappings: {bad:#?}");
                samples.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let options = Options {
        double_map: true,
        ..with_receiver()
    };
    let callees = every_callee();
    let items: Vec<(*const c_void, _)> = callees
        .iter()
        .map(|c| (c.target(), c.signature()))
        .collect();
    let mut calls = 0;
    for round in 0..3 {
        // SAFETY: each callee has its own signature.
        let batch = unsafe { Function::batch(&items, &options) }.unwrap();
        for (callee, batched) in callees.iter().zip(&batch) {
            // SAFETY: as above.
            let alone =
                unsafe { Function::with_options(callee.target(), callee.signature(), &options) }
                    .unwrap();
            for f in [&alone, batched] {
                assert_eq!(f.tier(), Tier::Jit, "{} round {round}", callee.name());
                // SAFETY: one slot per argument; the callees never
                // dereference pointer arguments.
                calls +=
                    agrees_on_every_vector(callee.as_ref(), "double-mapped", |args, ret| unsafe {
                        f.call_packed(args, ret)
                    });
                if let Some(entry) = f.receiver_entry() {
                    // SAFETY: `entry` is this signature's receiver entry.
                    calls += unsafe { receiver_agrees_on_every_vector(callee.as_ref(), entry) };
                }
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    sampler.join().expect("the sampler saw no W+X mapping");
    let samples = samples.load(Ordering::Relaxed);
    assert!(samples > 0, "the sampler never ran");
    Ok(format!(
        "{} callees on the double-mapped JIT, alone and batched, 3 rounds; {calls} calls \
         agreed; {samples} samples of /proc/self/maps, none writable and executable",
        callees.len()
    ))
}

#[test]
fn double_mapped_jit_under_mdwe() {
    in_child("double_mapped_jit_under_mdwe", || {
        double_mapped_under(Restriction::Mdwe)
    });
}

#[test]
fn double_mapped_jit_under_seccomp() {
    in_child("double_mapped_jit_under_seccomp", || {
        double_mapped_under(Restriction::Seccomp)
    });
}
