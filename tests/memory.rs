//! Executable memory: mappings are read-and-execute (never writable and
//! executable), are shared by a batch, and are unmapped when their last
//! function is dropped, so creating and dropping many batches returns the
//! process to its baseline.

use std::ffi::c_void;
use std::ops::Range;

use jitcall::{Function, Options, Signature, Tier};
use jitcall_fixtures::many_arg_shapes;

/// One line of /proc/self/maps: its address range and permissions.
struct Mapping {
    range: Range<u64>,
    perms: String,
    /// Whether it maps a file or a named region (`[stack]`, `[vdso]`, …).
    named: bool,
}

fn maps() -> Vec<Mapping> {
    std::fs::read_to_string("/proc/self/maps")
        .expect("/proc/self/maps is readable")
        .lines()
        .map(|line| {
            let mut fields = line.split_whitespace();
            let (start, end) = fields.next().unwrap().split_once('-').unwrap();
            let range =
                u64::from_str_radix(start, 16).unwrap()..u64::from_str_radix(end, 16).unwrap();
            let perms = fields.next().unwrap().to_string();
            let named = fields.nth(3).is_some();
            Mapping {
                range,
                perms,
                named,
            }
        })
        .collect()
}

/// Bytes of anonymous executable memory: jitcall's code mappings. Unlike
/// a count of all mappings, this does not move when the test harness
/// starts threads (stacks, malloc arenas) or when the kernel merges
/// adjacent mappings.
fn anonymous_code_bytes() -> u64 {
    maps()
        .into_iter()
        .filter(|m| m.perms.as_bytes()[2] == b'x' && !m.named)
        .map(|m| m.range.end - m.range.start)
        .sum()
}

/// The permissions of the mapping that contains `range`, if any.
fn perms_covering(range: &Range<u64>) -> Option<String> {
    maps()
        .into_iter()
        .find(|m| m.range.start <= range.start && range.end <= m.range.end)
        .map(|m| m.perms)
}

fn no_writable_executable_mapping() {
    for Mapping { range, perms, .. } in maps() {
        let bytes = perms.as_bytes();
        assert!(
            !(bytes[1] == b'w' && bytes[2] == b'x'),
            "W+X mapping {:#x}-{:#x} {perms}",
            range.start,
            range.end
        );
    }
}

/// Both tests read the process's mappings: run them one at a time.
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

#[test]
fn mappings_are_rx_shared_by_a_batch_and_unmapped_with_their_last_function() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !jitcall::jit_available() {
        println!(
            "JIT memory unavailable ({:?}): nothing is mapped to check",
            jitcall::jit_status()
        );
        assert!(
            std::env::var_os("JITCALL_DISABLE_JIT").is_some(),
            "the JIT should be available here"
        );
        return;
    }
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
    assert_eq!(
        perms_covering(&range).as_deref().map(|p| &p[..3]),
        Some("r-x")
    );
    no_writable_executable_mapping();

    // Dropping all but one keeps the mapping; dropping the last unmaps it.
    let last = batch.pop().unwrap();
    drop(batch);
    assert!(perms_covering(&range).is_some_and(|p| p.starts_with("r-x")));
    drop(last);
    assert!(
        !perms_covering(&range).is_some_and(|p| p.contains('x')),
        "the mapping outlived its functions"
    );
}

#[test]
fn many_batches_created_and_dropped_return_to_baseline() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // Warm up: the probe and any lazily created state.
    drop(bind_batch(1));
    let baseline = anonymous_code_bytes();
    let mut peak = baseline;
    for round in 0..50 {
        let batch = bind_batch(1 + round % 20);
        let singles: Vec<Function> = (0..10).flat_map(|_| bind_batch(1)).collect();
        peak = peak.max(anonymous_code_bytes());
        no_writable_executable_mapping();
        drop(batch);
        drop(singles);
    }
    let after = anonymous_code_bytes();
    println!("anonymous code bytes: baseline {baseline}, peak {peak}, after {after}");
    assert_eq!(after, baseline, "code mappings leaked");
    if jitcall::jit_available() {
        assert!(peak > baseline, "live functions should have added mappings");
    }
}
