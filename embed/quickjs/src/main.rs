//! `jitcall-qjs FILE.js [ARGS]`: runs a script on QuickJS with Node's
//! `node:ffi` on jitcall (see the `jitcall_quickjs` crate docs).

use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(script) = args.next() else {
        eprintln!("usage: jitcall-qjs FILE.js [ARGS]");
        return ExitCode::from(2);
    };
    let rest: Vec<String> = args.collect();
    match jitcall_quickjs::run_file(Path::new(&script), &rest) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}
