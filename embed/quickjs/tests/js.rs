//! Runs every script in `tests/js/` through `jitcall-qjs`, as a user
//! would, on jitcall's JIT tier and again with `JITCALL_DISABLE_JIT=1`;
//! each must exit successfully and print `ok <its name>`. Also: an
//! uncaught exception fails a script, the README's example prints libm's
//! cosine, and the benchmark script runs with a small count.

use std::path::{Path, PathBuf};
use std::process::Output;

fn qjs(script: &Path, args: &[&str], env: &[(&str, &str)]) -> Option<Output> {
    let mut command =
        jitcall_fixtures::process::target_command(Path::new(env!("CARGO_BIN_EXE_jitcall-qjs")));
    command.arg(script).args(args);
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().expect("jitcall-qjs runs");
    if output.status.code() == Some(127) && output.stdout.is_empty() {
        println!(
            "NOTICE: cannot start jitcall-qjs here: {} NOT run",
            script.display()
        );
        return None;
    }
    Some(output)
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

#[test]
fn every_script_passes_on_the_jit_and_without_it() {
    let mut scripts: Vec<PathBuf> = std::fs::read_dir(root().join("tests/js"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "js"))
        .collect();
    scripts.sort();
    assert!(scripts.len() >= 5, "{scripts:?}");
    for script in &scripts {
        let name = script.file_stem().unwrap().to_str().unwrap();
        for env in [&[][..], &[("JITCALL_DISABLE_JIT", "1")][..]] {
            let Some(output) = qjs(script, &[], env) else {
                continue;
            };
            let stdout = String::from_utf8_lossy(&output.stdout);
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(
                output.status.success(),
                "{name} {env:?} failed ({}):\n{stdout}\n{stderr}",
                output.status
            );
            assert!(
                stdout.lines().any(|l| l.starts_with(&format!("ok {name}"))),
                "{name} {env:?} did not finish:\n{stdout}\n{stderr}"
            );
            println!(
                "{name} {env:?}: {}",
                stdout.trim_end().lines().last().unwrap_or("")
            );
        }
    }
}

#[test]
fn an_uncaught_exception_fails_the_script() {
    let error = jitcall_quickjs::run_source(
        "throws.js",
        "import { dlopen } from 'node:ffi';\nfunction deep() { throw new TypeError('boom'); }\ndeep();",
        &[],
    )
    .unwrap_err();
    assert!(error.contains("boom"), "{error}");
    assert!(error.contains("deep"), "the stack: {error}");
    let error = jitcall_quickjs::run_source("syntax.js", "let = ;", &[]).unwrap_err();
    assert!(error.contains("syntax.js:1"), "where: {error}");
    // A rejected top-level await is uncaught too.
    let error =
        jitcall_quickjs::run_source("await.js", "await Promise.reject(new Error('later'));", &[])
            .unwrap_err();
    assert!(error.contains("later"), "{error}");
    assert!(jitcall_quickjs::run_source("fine.js", "print(1n, 'x', {a: 2n});", &[]).is_ok());
}

#[test]
fn the_readme_example_prints_libms_cosine() {
    let Some(output) = qjs(&root().join("examples/cos.js"), &[], &[]) else {
        return;
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.starts_with("cos(0.5) = 0.8775825618903728"),
        "{stdout}"
    );
}

#[test]
fn the_benchmark_script_runs() {
    let Some(output) = qjs(&root().join("bench/ffi.js"), &["2000"], &[]) else {
        return;
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for row in ["plain JS", "cos (", "add_i32 (", "libffi"] {
        assert!(stdout.contains(row), "{row} in\n{stdout}");
    }
    println!("{stdout}");
}
