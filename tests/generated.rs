//! The generated differential suite: C callees for random signatures of 0
//! to 16 arguments over every scalar type (`fixtures/c/generated.c`, from
//! `scripts/generate_callees.py`), each with a C oracle that makes the
//! direct typed call. The JIT tier's packed and receiver entries and libffi
//! must return what the oracle returns, for edge values and random values.

use std::path::Path;
use std::process::Command;

use jitcall::{classify, Abi, Entry, Fallback, Function, Options, Signature, Tier};
use jitcall_fixtures::{
    agrees_on_every_vector, generated_cases, receiver_agrees_on_every_vector, Callee,
};

/// The tier a function must be on: what the probe and the classifier say.
fn expected_tier(sig: &Signature, options: &Options) -> Tier {
    if options.force_libffi {
        return Tier::Libffi(Fallback::Forced);
    }
    if let Err(why) = jitcall::jit_status() {
        return Tier::Libffi(Fallback::JitUnavailable(why));
    }
    let abi = Abi::host().expect("the probe succeeded, so the host ABI is supported");
    match classify(sig, abi, Entry::Packed, &options.limits) {
        Ok(_) => Tier::Jit,
        Err(rule) => Tier::Libffi(Fallback::Ineligible(rule)),
    }
}

fn receiver_eligible(sig: &Signature, options: &Options) -> bool {
    expected_tier(sig, options) == Tier::Jit
        && classify(sig, Abi::host().unwrap(), Entry::Receiver, &options.limits).is_ok()
}

#[test]
fn generated_c_is_what_the_generator_writes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = std::env::temp_dir().join(format!("jitcall-generated-{}", std::process::id()));
    let status = match Command::new("python3")
        .arg(root.join("scripts/generate_callees.py"))
        .arg("--out")
        .arg(&out)
        .status()
    {
        Ok(status) => status,
        // The generated file is committed; only its freshness needs the
        // generator, and a machine with just Rust and a C compiler has none.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            println!("NOTICE: python3 not found: freshness of fixtures/c/generated.c NOT checked");
            return;
        }
        Err(e) => panic!("cannot run python3 scripts/generate_callees.py: {e}"),
    };
    assert!(status.success(), "the generator failed: {status}");
    let fresh = std::fs::read_to_string(out.join("generated.c")).unwrap();
    let committed = std::fs::read_to_string(root.join("fixtures/c/generated.c")).unwrap();
    std::fs::remove_dir_all(&out).unwrap();
    assert!(
        fresh == committed,
        "fixtures/c/generated.c is stale: run `python3 scripts/generate_callees.py` and commit it"
    );
}

#[test]
fn every_generated_signature_agrees_with_its_c_oracle_on_every_tier() {
    let cases = generated_cases();
    assert!(cases.len() >= 300, "only {} generated cases", cases.len());
    let options = Options {
        receiver_entry: true,
        ..Options::default()
    };
    let libffi = Options {
        force_libffi: true,
        ..Options::default()
    };
    // The JIT functions in one batch: one mapping holds every trampoline.
    let items: Vec<_> = cases.iter().map(|c| (c.target(), c.signature())).collect();
    // SAFETY: each generated callee has exactly its table signature.
    let jit = unsafe { Function::batch(&items, &options) }.unwrap();
    let (mut vectors, mut calls, mut receivers) = (0, 0, 0);
    for (case, f) in cases.iter().zip(&jit) {
        let sig = case.signature();
        assert_eq!(f.tier(), expected_tier(sig, &options), "{}", case.name());
        // SAFETY: as above.
        let ffi = unsafe { Function::with_options(case.target(), sig, &libffi) }.unwrap();
        assert_eq!(ffi.tier(), Tier::Libffi(Fallback::Forced));
        for (tier, f) in [("default tier", f), ("libffi", &ffi)] {
            // SAFETY: the vectors have one slot per argument; pointers are
            // never dereferenced by the callees.
            let n =
                agrees_on_every_vector(case, tier, |args, ret| unsafe { f.call_packed(args, ret) });
            calls += n;
            vectors = vectors.max(n);
        }
        assert_eq!(
            f.receiver_entry().is_some(),
            receiver_eligible(sig, &options),
            "{}: receiver entry exactly when eligible",
            case.name()
        );
        if let Some(entry) = f.receiver_entry() {
            // SAFETY: `entry` is this signature's receiver entry.
            calls += unsafe { receiver_agrees_on_every_vector(case, entry) };
            receivers += 1;
        }
    }
    let on_jit = jit.iter().filter(|f| f.tier() == Tier::Jit).count();
    println!(
        "{} generated signatures ({on_jit} on the JIT tier, {receivers} with a receiver entry), \
         up to {vectors} argument vectors each: {calls} calls agreed with the C oracle",
        cases.len()
    );
}
