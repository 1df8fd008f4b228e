//! Executable memory: mappings are read-and-execute (never writable and
//! executable), are shared by a batch, or by every function of a shape
//! bound alone, and are unmapped when their last function is dropped, so
//! creating and dropping many batches returns the process to its baseline.

use std::ffi::c_void;

use jitcall::{Function, Options, Signature, Tier};
use jitcall_fixtures::{many_arg_shapes, process};

/// No mapping is writable and executable; not checked under valgrind,
/// whose translation cache is.
fn no_writable_executable_mapping() {
    if process::valgrind() {
        return;
    }
    let bad = process::writable_executable();
    assert!(bad.is_empty(), "W+X mappings: {bad:#?}");
}

/// Says once that the W^X check does not run under valgrind.
fn notice_under_valgrind() {
    if process::valgrind() {
        process::notice(
            "W+X mappings not checked under valgrind: its own translation cache is \
             writable and executable",
        );
    }
}

/// Anonymous read-execute mappings: the JIT's, and nothing else's. The
/// total line count is no measure of leaks here, since the harness's other
/// test threads come and go, with their stacks and malloc arenas.
fn jit_mappings() -> usize {
    process::maps().iter().filter(|m| m.is_jit_like()).count()
}

/// The tests read the process's mappings: run them one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn bind_batch(n: usize) -> Vec<Function> {
    let shapes = many_arg_shapes();
    let items: Vec<(*const c_void, &Signature)> = (0..n)
        .map(|i| {
            let shape = &shapes[i % shapes.len()];
            (shape.target, &shape.sig)
        })
        .collect();
    // SAFETY: every target is paired with its own signature.
    unsafe { Function::batch(&items, &Options::default()) }.unwrap()
}

/// Whether the JIT may map memory here; says why not, and that `skipped`,
/// when it may not, which only `JITCALL_DISABLE_JIT` allows.
fn jit_memory(skipped: &str) -> bool {
    if let Err(why) = jitcall::jit_status() {
        println!("JIT memory unavailable ({why}): {skipped}");
        assert!(
            std::env::var_os("JITCALL_DISABLE_JIT").is_some(),
            "the JIT should be available here"
        );
        return false;
    }
    true
}

#[test]
fn mappings_are_rx_shared_by_a_batch_and_unmapped_with_their_last_function() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !jit_memory("nothing is mapped to check") {
        return;
    }
    notice_under_valgrind();
    let mut batch = bind_batch(40);
    let range = batch[0]
        .code_mapping()
        .expect("a JIT function has a mapping");
    assert!(batch.iter().all(|f| f.tier() == Tier::Jit));
    assert!(
        batch
            .iter()
            .all(|f| f.code_mapping() == Some(range.clone())),
        "one batch, one mapping"
    );
    let perms = |range| process::mapping_covering(range).map(|m| m.perms);
    assert_eq!(perms(&range).as_deref(), Some("r-xp"));
    no_writable_executable_mapping();

    // Dropping all but one keeps the mapping; dropping the last unmaps it.
    let last = batch.pop().unwrap();
    drop(batch);
    assert_eq!(perms(&range).as_deref(), Some("r-xp"));
    drop(last);
    assert!(
        !process::mapping_covering(&range).is_some_and(|m| m.is_executable()),
        "the mapping outlived its functions"
    );
}

#[test]
fn many_batches_created_and_dropped_return_to_baseline() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    notice_under_valgrind();
    // Warm up: the probe and any lazily created state.
    drop(bind_batch(1));
    let baseline = jit_mappings();
    let mut peak = baseline;
    for round in 0..50 {
        let batch = bind_batch(1 + round % 20);
        let singles: Vec<Function> = (0..10).flat_map(|_| bind_batch(1)).collect();
        peak = peak.max(jit_mappings());
        no_writable_executable_mapping();
        drop(batch);
        drop(singles);
    }
    let after = jit_mappings();
    println!("JIT mappings: baseline {baseline}, peak {peak}, after {after}");
    assert_eq!(after, baseline, "mappings leaked");
    if jitcall::jit_available() {
        assert!(peak > baseline, "live functions should have added mappings");
    }
}

#[test]
fn functions_of_one_shape_bound_alone_share_one_stub_until_the_last_is_dropped() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !jit_memory("no shared stubs to check") {
        return;
    }
    extern "C" fn id_u64(x: u64) -> u64 {
        x
    }
    extern "C" fn id_pointer(x: *const c_void) -> *const c_void {
        x
    }
    extern "C" fn neg(x: f64) -> f64 {
        -x
    }
    // Two signatures of one shape (their code is the same) and another.
    let (u64_sig, pointer_sig, f64_sig): (Signature, Signature, Signature) = (
        "(u64) -> u64".parse().unwrap(),
        "(pointer) -> pointer".parse().unwrap(),
        "(f64) -> f64".parse().unwrap(),
    );
    let bind = |target: *const c_void, sig: &Signature| {
        // SAFETY: each target is bound with its own signature.
        let f = unsafe { Function::new(target, sig) }.unwrap();
        assert_eq!(f.tier(), Tier::Shared, "{sig}");
        f
    };
    let mut same: Vec<Function> = (0..100)
        .map(|i| {
            if i % 2 == 0 {
                bind(id_u64 as *const c_void, &u64_sig)
            } else {
                bind(id_pointer as *const c_void, &pointer_sig)
            }
        })
        .collect();
    let other = bind(neg as *const c_void, &f64_sig);
    let range = same[0].code_mapping().expect("a shared stub's mapping");
    assert!(
        same.iter().all(|f| f.code_mapping() == Some(range.clone())),
        "one shape, one stub"
    );
    let other_range = other.code_mapping().expect("a shared stub's mapping");
    assert_ne!(other_range, range, "another shape, another stub");
    // Each still calls its own target through the shared stub.
    let mut ret = 0u64;
    // SAFETY: one argument slot and a return slot.
    unsafe { same[1].call_packed([0x1234u64].as_ptr(), &mut ret) };
    assert_eq!(ret, 0x1234);
    // SAFETY: as above.
    unsafe { other.call_packed([2.5f64.to_bits()].as_ptr(), &mut ret) };
    assert_eq!(f64::from_bits(ret), -2.5);

    let last = same.pop().unwrap();
    drop(same);
    assert!(process::mapping_covering(&range).is_some_and(|m| m.is_executable()));
    drop(last);
    assert!(
        !process::mapping_covering(&range).is_some_and(|m| m.is_executable()),
        "the stub outlived its functions"
    );
    drop(other);
    assert!(
        !process::mapping_covering(&other_range).is_some_and(|m| m.is_executable()),
        "the other stub outlived its function"
    );
    // A new function of the shape maps its stub again.
    let again = bind(id_u64 as *const c_void, &u64_sig);
    let range = again.code_mapping().expect("a shared stub's mapping");
    assert!(process::mapping_covering(&range).is_some_and(|m| m.is_executable()));
}
