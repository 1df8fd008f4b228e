//! `jitcall`: measure what each call path costs, or explain how a signature
//! is called on each ABI.
//!
//! ```text
//! jitcall                      # the benchmark (same as `jitcall bench`)
//! jitcall bench --quick --json results.json
//! jitcall explain "(i32, f64, pointer) -> u8"
//! jitcall explain '{"arguments":["i32"],"return":"i32"}'
//! jitcall explain --library "(f64) -> f64"
//! ```

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

mod bench;

const USAGE: &str = "\
usage: jitcall [COMMAND]

commands:
  bench [--quick] [--json FILE] [--under-mdwe]
                      (the default) time every call path (direct, JIT packed
                      entry raw and through call_packed, shared stub, baked
                      tier, JIT receiver entry, libffi, checked call) on a
                      table of signatures, and creation and density, against
                      DESIGN.md's targets; then again in a child process with
                      the JIT refused by PR_SET_MDWE. --quick is a short smoke
                      run; --json FILE also writes the results as JSON;
                      --under-mdwe times the call paths only, in this process,
                      with the JIT refused (what the child runs). `jitcall
                      --quick` and `jitcall --json FILE` run bench too
  explain [--library] SIGNATURE
                      show, for each ABI and entry kind, where every argument
                      goes, whether the signature is eligible, and the code
                      (SIGNATURE is the text form \"(i32, f64) -> u8\" or the
                      JSON object form); --library shows a function bound from
                      a Library, whose code starts with the closed check
  help                show this text";

/// Parses `bench`'s options.
fn bench_config(args: &[String]) -> Result<bench::Config, String> {
    let mut config = bench::Config::default();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => config.quick = true,
            "--under-mdwe" => config.under_mdwe = true,
            "--json" => {
                let file = args.next().ok_or("--json needs a file name")?;
                config.json = Some(PathBuf::from(file));
            }
            other => match other.strip_prefix("--json=") {
                Some(file) if !file.is_empty() => config.json = Some(PathBuf::from(file)),
                _ => return Err(format!("bench: unknown option `{other}`\n\n{USAGE}")),
            },
        }
    }
    Ok(config)
}

/// `explain [--library] SIGNATURE`: prints [`jitcall_cli::explain`].
fn explain(args: &[String]) -> Result<(), String> {
    let (library, signature) = match args {
        [signature] => (false, signature),
        [flag, signature] if flag == "--library" => (true, signature),
        _ => {
            return Err(
                "explain takes one signature, e.g. jitcall explain \"(i32, f64) -> u8\", \
                 after --library to show a function bound from a Library"
                    .into(),
            )
        }
    };
    let out = jitcall_cli::explain(signature, library)?;
    match std::io::stdout().lock().write_all(out.as_bytes()) {
        // A reader that stopped early (`| head`) is not an error.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(format!("cannot write the explanation: {e}"))
        }
        _ => Ok(()),
    }
}

/// The command-line arguments, or which one is not UTF-8.
fn arguments() -> Result<Vec<String>, String> {
    std::env::args_os()
        .skip(1)
        .enumerate()
        .map(|(i, arg)| {
            arg.into_string().map_err(|arg| {
                let shown = jitcall::Quoted::new(&arg.to_string_lossy());
                format!("argument {} is not UTF-8: {shown}", i + 1)
            })
        })
        .collect()
}

fn main() -> ExitCode {
    let args = match arguments() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("jitcall: {message}");
            return ExitCode::from(2);
        }
    };
    let result = match args.first().map(String::as_str) {
        None => bench::run(&bench::Config::default()),
        Some("bench") => bench_config(&args[1..]).and_then(|config| bench::run(&config)),
        Some(flag) if flag.starts_with("--") && !matches!(flag, "--help") => {
            bench_config(&args).and_then(|config| bench::run(&config))
        }
        Some("explain") => explain(&args[1..]),
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
