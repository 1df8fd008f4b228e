//! What both signature parsers must do with any input, shared by the
//! proptests in `parse_props.rs` and the cargo-fuzz target in `fuzz/`
//! (which includes this file by path):
//!
//! - never panic;
//! - on an error, say where within the input: a byte offset no larger than
//!   its length, or a JSON path from the root (`$…`), in a message of one
//!   short line without control characters, however long or odd the input;
//! - read either form through [`Signature::parse`] as its own parser does;
//! - on success, give a signature that prints back, in text and in the
//!   JSON object form, to the same signature; that classifies for every
//!   ABI and entry kind without panicking; whose packed plan's shape stub
//!   is the same code as its shape's; and whose every plan emits no
//!   more code than [`emit_bound`] promised the mapping would hold.

use jitcall_emitters::{
    classify, emit, emit_bound, Abi, Entry, Limits, ParseError, Placement, Position, Signature,
};

/// Checks raw bytes: what the fuzzer hands over. Both parsers take text,
/// so bytes that are not UTF-8 are checked as their lossy decoding.
pub fn check(data: &[u8]) {
    check_text(&String::from_utf8_lossy(data));
}

/// Checks one input with both parsers.
pub fn check_text(input: &str) {
    match input.parse::<Signature>() {
        Ok(sig) => check_accepted(&sig),
        Err(e) => check_error(input, &e),
    }
    match Signature::from_json(input) {
        Ok(sig) => check_accepted(&sig),
        Err(e) => check_error(input, &e),
    }
    let body = input.strip_prefix('\u{feff}').unwrap_or(input);
    let own = if body.trim_start().starts_with('{') {
        Signature::from_json(input)
    } else {
        input.parse()
    };
    assert_eq!(Signature::parse(input), own, "{input:?}");
}

/// The longest message an error may have: the longest fixed text plus two
/// bounded excerpts of the input (JSON paths hold only known keys).
const MAX_MESSAGE: usize = 240;

fn check_error(input: &str, e: &ParseError) {
    match &e.at {
        Position::Byte(at) => assert!(*at <= input.len(), "{e} for {input:?}"),
        Position::JsonPath(path) => assert!(path.starts_with('$'), "{e} for {input:?}"),
    }
    let message = e.to_string();
    assert!(
        message.len() <= MAX_MESSAGE,
        "{} bytes: {message}",
        message.len()
    );
    assert!(
        !message.chars().any(char::is_control),
        "a control character in {message:?}"
    );
}

/// A far target, out of every direct branch's reach, and a near one.
const TARGETS: [u64; 2] = [0x7fed_cba9_8765_4320, 0x10_2000];
const BASE: u64 = 0x10_0000;

fn check_accepted(sig: &Signature) {
    let text = sig.to_string();
    assert_eq!(text.parse::<Signature>().as_ref(), Ok(sig), "{text}");
    let json = sig.to_json();
    assert_eq!(Signature::from_json(&json).as_ref(), Ok(sig), "{json}");

    // Whatever the limits, classify caps the count at what emitters encode.
    let limits = Limits {
        max_args: usize::MAX,
        ..Limits::default()
    };
    for abi in Abi::ALL {
        for entry in Entry::ALL {
            let Ok(plan) = classify(sig, abi, entry, &limits) else {
                continue;
            };
            // A shape stub is shared by every plan of its shape: its code
            // must be the plan's own.
            if entry == Entry::Packed {
                let stub = emit(&plan, &Placement::shape());
                assert_eq!(
                    stub,
                    emit(&plan.shape(), &Placement::shape()),
                    "{abi} {text}"
                );
                assert_eq!(plan.shape(), plan.shape().shape(), "{abi} {text}");
            }
            let bound = emit_bound(&plan, false);
            for target in TARGETS {
                let code = emit(&plan, &Placement::at(BASE, target));
                assert!(
                    code.len() <= bound,
                    "{abi} {entry} {text}: {} bytes, bound {bound}",
                    code.len()
                );
            }
        }
    }
}
