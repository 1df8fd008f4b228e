//! `jitcall`: explain how a signature is called on each ABI.
//!
//! ```text
//! jitcall explain "(i32, f64, pointer) -> u8"
//! jitcall explain '{"arguments":["i32"],"return":"i32"}'
//! ```

use std::process::ExitCode;

mod explain;

const USAGE: &str = "\
usage: jitcall [COMMAND]

commands:
  explain SIGNATURE   show, for each ABI and entry kind, where every argument
                      goes and whether the signature is eligible (SIGNATURE is
                      the text form \"(i32, f64) -> u8\" or the JSON object form)
  help                show this text";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        None => explain::run(&["(i32, f64, pointer) -> u8".to_string()]),
        Some("explain") => explain::run(&args[1..]),
        Some("help" | "-h" | "--help") => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(format!("unknown command `{other}`\n\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("jitcall: {message}");
            ExitCode::from(2)
        }
    }
}
