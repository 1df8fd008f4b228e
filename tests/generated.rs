//! The generated differential suite: C callees for random signatures of 0
//! to 16 arguments over every scalar type (`fixtures/c/generated.c`, from
//! `scripts/generate_callees.py`), each with a C oracle that makes the
//! direct typed call. Every tier (a batch's own trampolines, packed and
//! receiver entries; shared stubs; the compiled-in tiers; libffi) must
//! return what the oracle returns, for edge values and random values.

use jitcall::{Abi, Function, Options};
use jitcall_fixtures::{
    agrees_on_every_vector, generated_cases, receiver_agrees_on_every_vector, Callee,
};

mod tiers;

#[test]
fn every_generated_signature_agrees_with_its_c_oracle_on_every_tier() {
    let cases = generated_cases();
    assert!(cases.len() >= 300, "only {} generated cases", cases.len());
    let options = Options {
        receiver_entry: true,
        ..Options::default()
    };
    agree_on_every_tier(&cases, options);
}

/// The generated signatures again, bound in the Win64 convention to
/// `ms_abi` twins of the callees: on every tier the same results as the
/// oracle, which calls the twin directly, and receiver entries called as
/// `extern "win64"` functions.
#[test]
#[cfg(target_arch = "x86_64")]
fn every_generated_signature_agrees_in_the_win64_convention() {
    let cases = jitcall_fixtures::generated_win64_cases();
    assert_eq!(cases.len(), generated_cases().len());
    let options = Options {
        receiver_entry: true,
        abi: Some(Abi::Win64),
        ..Options::default()
    };
    agree_on_every_tier(&cases, options);
}

/// Binds every case in one batch and alone on every tier with `options`,
/// checks each tier is the documented one, and that every packed call and
/// receiver-entry call returns what the case's oracle returns.
fn agree_on_every_tier<C: Callee>(cases: &[C], options: Options) {
    // The JIT functions in one batch: one mapping holds every trampoline.
    let items: Vec<_> = cases.iter().map(|c| (c.target(), c.signature())).collect();
    // SAFETY: each generated callee has exactly its table signature.
    let jit = unsafe { Function::batch(&items, &options) }.unwrap();
    let (mut vectors, mut calls, mut receivers) = (0, 0, 0);
    let mut tally = tiers::Tally::default();
    for (case, f) in cases.iter().zip(&jit) {
        let sig = case.signature();
        assert_eq!(
            f.tier(),
            tiers::expected(sig, &options, true),
            "{}",
            case.name()
        );
        // Bound alone, on the shared, compiled-in and libffi tiers.
        let alone: Vec<(&str, Function)> = tiers::each(options)[1..]
            .iter()
            .map(|(name, options)| {
                // SAFETY: as above.
                let g = unsafe { Function::with_options(case.target(), sig, options) }.unwrap();
                assert_eq!(
                    g.tier(),
                    tiers::expected(sig, options, false),
                    "{}",
                    case.name()
                );
                (*name, g)
            })
            .collect();
        let every = std::iter::once(("batch", f)).chain(alone.iter().map(|(n, g)| (*n, g)));
        for (tier, f) in every {
            tally.add(f);
            tiers::check_baked_stub(f);
            // SAFETY: the vectors have one slot per argument; pointers are
            // never dereferenced by the callees.
            let n =
                agrees_on_every_vector(case, tier, |args, ret| unsafe { f.call_packed(args, ret) });
            calls += n;
            vectors = vectors.max(n);
        }
        assert_eq!(
            f.receiver_entry().is_some(),
            tiers::has_receiver(f, &options),
            "{}: receiver entry exactly when eligible",
            case.name()
        );
        if let Some(entry) = f.receiver_entry() {
            // SAFETY: `entry` is this signature's receiver entry.
            calls += unsafe { receiver_agrees_on_every_vector(case, entry) };
            receivers += 1;
        }
    }
    println!(
        "{} generated signatures in {} ({tally}; {receivers} with a receiver entry), \
         up to {vectors} argument vectors each: {calls} calls agreed with the C oracle",
        cases.len(),
        tiers::abi_of(&options).map_or("no ABI", Abi::name),
    );
}
