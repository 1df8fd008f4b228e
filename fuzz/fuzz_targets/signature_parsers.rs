//! Both signature parsers (the text form and the JSON object form) on
//! arbitrary bytes, with the checks the proptests in
//! `emitters/tests/parse_props.rs` run: no panic, errors located within
//! the input, accepted signatures that print back to themselves and whose
//! plans emit within their bound.
//!
//! ```sh
//! cargo +nightly fuzz run signature_parsers -- -max_total_time=60
//! ```

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../emitters/tests/signature_input/mod.rs"]
mod signature_input;

fuzz_target!(|data: &[u8]| signature_input::check(data));
