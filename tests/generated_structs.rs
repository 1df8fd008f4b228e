//! The generated struct and variadic suite (`fixtures/c/generated_structs.c`,
//! from `scripts/generate_struct_callees.py`): 320 signatures mixing
//! scalars with structs by value (nested, padded, odd sizes, HFAs, mixed
//! eightbytes, structs over 16 bytes, enough arguments to run out of
//! registers) and 72 variadic call shapes, each with a C oracle that makes
//! the direct call. Every tier must return what the oracle returns: struct
//! returns compared field by field, padding excepted.

use jitcall::{Function, Options, Signature, StructType, Type};
use jitcall_fixtures::{
    bytes_of_mut, significant, struct_arguments, struct_cases, struct_layouts, ArgumentRng,
    StructCase,
};

mod tiers;

/// The struct type a `{…}` text names.
fn struct_type(text: &str) -> &'static StructType {
    let sig: Signature = format!("({text}) -> void").parse().unwrap();
    sig.args[0].as_struct().expect("a struct")
}

#[test]
fn struct_layouts_are_the_c_compilers() {
    let rows = struct_layouts();
    assert!(rows.len() >= 200, "{} layouts", rows.len());
    for row in &rows {
        let layout = struct_type(row.text);
        assert_eq!(
            (layout.size(), layout.align(), layout.offsets()),
            (row.size, row.align, &row.offsets[..]),
            "{}",
            row.text
        );
    }
    println!("{} struct layouts agree with the C compiler's", rows.len());
}

/// Calls `f` with `slots` through `call_packed`, into a return buffer of
/// `max(8, size)` bytes and a guard word after it, which must stay as it
/// was.
fn call(f: &Function, slots: &[u64]) -> Vec<u8> {
    let ret = f.signature().ret;
    let bytes = match ret {
        Type::Void => 0,
        Type::Struct(layout) => (layout.size() as usize).max(8),
        _ => 8,
    };
    let mut buffer = vec![0x5a5a_5a5a_5a5a_5a5au64; bytes.div_ceil(8) + 1];
    // SAFETY: the signature is the callee's; one slot per argument, struct
    // slots pointing at live buffers of the struct's size; the return
    // buffer holds max(8, size) bytes.
    unsafe { f.call_packed(slots.as_ptr(), buffer.as_mut_ptr()) };
    let all = bytes_of_mut(&mut buffer).to_vec();
    assert!(
        all[bytes..].iter().all(|&b| b == 0x5a),
        "{}: wrote past its return buffer",
        f.signature()
    );
    all[..bytes].to_vec()
}

fn check_case(case: &StructCase, sig: &Signature, f: &Function, vectors: usize) -> usize {
    let mut rng = ArgumentRng::new(0x9e37_79b9_7f4a_7c15 ^ case.callee() as u64);
    for _ in 0..vectors {
        let (slots, _buffers) = struct_arguments(sig, &mut rng);
        // SAFETY: one slot per argument, struct slots pointing at live,
        // aligned buffers of the struct's size.
        let want = unsafe { case.direct(&slots) };
        let want_recorded = case.recorded();
        let got = call(f, &slots);
        assert_eq!(
            significant(sig.ret, &got),
            significant(sig.ret, &want),
            "{} {sig} on {} with {slots:x?}",
            case.name(),
            f.tier()
        );
        assert_eq!(
            case.recorded(),
            want_recorded,
            "{} {sig}: the void callee's record",
            case.name()
        );
    }
    vectors
}

#[test]
fn every_generated_struct_and_variadic_signature_agrees_with_its_c_oracle() {
    let cases = struct_cases();
    assert!(cases.len() >= 380, "{} cases", cases.len());
    agree_on_every_tier(&cases, Options::default());
}

/// The generated signatures again, bound in the Win64 convention to
/// `ms_abi` twins of the callees: structs of 1, 2, 4 and 8 bytes in a
/// register and the others by reference, struct returns through the hidden
/// pointer, and variadic floats also in the GP register of their position.
#[test]
#[cfg(target_arch = "x86_64")]
fn every_generated_struct_and_variadic_signature_agrees_in_the_win64_convention() {
    let cases = jitcall_fixtures::generated_struct_win64_cases();
    assert_eq!(cases.len(), struct_cases().len());
    let options = Options {
        abi: Some(jitcall::Abi::Win64),
        ..Options::default()
    };
    agree_on_every_tier(&cases, options);
}

/// Binds every case alone on every tier with `options`, checks each tier
/// is the documented one, and that every call returns what the case's
/// oracle returns.
fn agree_on_every_tier(cases: &[StructCase], base: Options) {
    let (mut calls, mut tally, mut variadic) = (0, tiers::Tally::default(), 0);
    let runs = tiers::each(base);
    for case in cases {
        let sig = Signature::parse(case.signature_text())
            .unwrap_or_else(|e| panic!("{}: {e}", case.signature_text()));
        assert_eq!(sig.to_string(), case.signature_text(), "canonical text");
        variadic += usize::from(sig.variadic.is_some());
        for (_, options) in &runs {
            // SAFETY: the callee has the case's signature and lives as long
            // as the process.
            let f = unsafe { Function::with_options(case.callee(), &sig, options) }.unwrap();
            assert_eq!(
                f.tier(),
                tiers::expected(&sig, options, false),
                "{} {sig}",
                case.name()
            );
            tally.add(&f);
            tiers::check_baked_stub(&f);
            calls += check_case(case, &sig, &f, 6);
        }
    }
    println!(
        "{} generated signatures in {} ({variadic} variadic; bindings: {tally}): \
         {calls} calls agreed with the C oracle",
        cases.len(),
        tiers::abi_of(&base).map_or("no ABI", jitcall::Abi::name),
    );
}
