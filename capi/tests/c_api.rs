//! The C API from C: each program of `tests/c/` is compiled against
//! `include/jitcall.h` with the target's C compiler (the `cc` crate's
//! choice, `CC_<target>` when set), linked with `libjitcall.a` (one also
//! with `libjitcall.so`), and run as a child process: behind
//! `JITCALL_TEST_RUNNER` when it is set (qemu-user for a foreign target),
//! under valgrind when this test runs under valgrind. Each program checks
//! what it calls and prints `N passed, M failed`; a failed check, a crash
//! or a valgrind error fails the test here.
//!
//! Also here: every function the header declares is called by some C
//! test, and the example `examples/c/libm_qsort.c` builds with the
//! README's command and runs on the JIT tier.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, OnceLock};

use jitcall_fixtures::process::{self, target_command};

/// The crate's directory, `capi/`.
fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `libjitcall.a` and `libjitcall.so` of this build, built for this test's
/// target and profile into its target directory, where `cargo build -p
/// jitcall-capi` puts them: the profile's directory, which also holds
/// `jitcall.pc`.
///
/// The test builds them with cargo itself, once: cargo builds a package's
/// cdylib and staticlib for its integration tests only when the package
/// has an rlib too, and an rlib of this crate, named `libjitcall.rlib`
/// like the Rust library's, would collide with it in the target
/// directory.
fn lib_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // <target dir>[/<target>]/<profile dir>/deps/<this test>
        let exe = std::env::current_exe().expect("the test binary's path");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("the test binary is in <profile dir>/deps");
        let above = profile_dir
            .parent()
            .expect("the profile directory's parent");
        let target = env!("JITCALL_CAPI_TARGET");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut command = Command::new(cargo);
        command
            .current_dir(crate_dir())
            .args(["build", "-p", "jitcall-capi", "--lib"]);
        if above.file_name().is_some_and(|name| name == target) {
            command
                .args(["--target", target])
                .arg("--target-dir")
                .arg(above.parent().expect("the target directory"));
        } else {
            command.arg("--target-dir").arg(above);
        }
        match profile_dir.file_name().and_then(|name| name.to_str()) {
            Some("debug") => command.args(["--profile", "dev"]),
            Some(profile) => command.args(["--profile", profile]),
            None => panic!("no profile directory in {}", exe.display()),
        };
        let output = command
            .output()
            .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
        assert!(
            output.status.success(),
            "{command:?} failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        for lib in ["libjitcall.a", "libjitcall.so", "jitcall.pc"] {
            assert!(
                profile_dir.join(lib).is_file(),
                "{command:?} left no {lib} in {}",
                profile_dir.display()
            );
        }
        profile_dir.to_path_buf()
    })
}

/// How a program is linked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Link {
    /// With `libjitcall.a` and the native libraries it needs.
    Static,
    /// With `-ljitcall` from the library directory, found at run time by
    /// its rpath: the README's command.
    Dynamic,
}

/// The C compiler for the target, as the `cc` crate picks it in a build
/// script (the triples come from `build.rs`).
fn compiler() -> cc::Tool {
    cc::Build::new()
        .target(env!("JITCALL_CAPI_TARGET"))
        .host(env!("JITCALL_CAPI_HOST"))
        .opt_level(1)
        .debug(true)
        .cargo_metadata(false)
        .warnings(false)
        .get_compiler()
}

/// Where the C programs are built: a directory of this test's, in cargo's
/// scratch directory for the target.
fn scratch_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("capi-c");
    std::fs::create_dir_all(&dir).expect("the scratch directory");
    dir
}

/// Compiles `source` into an executable named `name` in the scratch
/// directory, linked as `link` says, or panics with the compiler's
/// output.
fn compile(source: &Path, name: &str, link: Link) -> PathBuf {
    let exe = scratch_dir().join(name);
    let lib_dir = lib_dir();
    let mut command = compiler().to_command();
    command
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-pthread"])
        .arg("-I")
        .arg(crate_dir().join("include"))
        .arg("-o")
        .arg(&exe)
        .arg(source);
    match link {
        Link::Static => {
            command
                .arg(lib_dir.join("libjitcall.a"))
                .args(env!("JITCALL_CAPI_STATIC_LIBS").split_whitespace());
        }
        Link::Dynamic => {
            command
                .arg("-L")
                .arg(lib_dir)
                .arg("-ljitcall")
                .arg(format!("-Wl,-rpath,{}", lib_dir.display()));
        }
    }
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    exe
}

/// Compiles each program once per test binary, whichever test asks first.
fn program(name: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<Vec<(String, PathBuf)>>> = OnceLock::new();
    let built = BUILT.get_or_init(|| Mutex::new(Vec::new()));
    let mut built = built.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, exe)) = built.iter().find(|(n, _)| n == name) {
        return exe.clone();
    }
    let source = crate_dir().join("tests/c").join(format!("{name}.c"));
    let exe = compile(&source, name, Link::Static);
    built.push((name.to_string(), exe.clone()));
    exe
}

/// The command that runs `exe`: behind `JITCALL_TEST_RUNNER`, or under
/// valgrind as this process is, so that the C side is checked too.
fn runner(exe: &Path) -> Command {
    if std::env::var_os("JITCALL_TEST_RUNNER").is_none() && process::valgrind() {
        let mut command = Command::new("valgrind");
        command
            .args(["--quiet", "--smc-check=all", "--error-exitcode=1"])
            .arg(exe);
        return command;
    }
    target_command(exe)
}

/// What the C programs expect of the JIT in this process: `available`,
/// or why not.
fn jit_expectation() -> &'static str {
    match jitcall_rs::jit_status() {
        Ok(()) => "available",
        Err(jitcall_rs::JitUnavailable::DisabledByEnv) => "disabled",
        Err(why) => {
            process::notice(&format!(
                "the JIT is unavailable here ({why}): the C tests' JIT tiers are NOT checked"
            ));
            "unavailable"
        }
    }
}

/// Runs `exe` with `env`, and checks that it exited 0 after printing its
/// counts with no failure.
fn run(exe: &Path, env: &[(&str, &str)]) -> Output {
    let mut command = runner(exe);
    command.env("JITCALL_CAPI_TEST_JIT", jit_expectation());
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains(" passed, 0 failed"),
        "{command:?} failed ({}):\n--- stdout\n{stdout}--- stderr\n{stderr}",
        output.status
    );
    output
}

#[test]
fn signatures_errors_and_status_names() {
    run(&program("signature"), &[]);
}

#[test]
fn functions_bound_every_way_with_every_option() {
    run(&program("function"), &[]);
}

#[test]
fn functions_with_the_jit_disabled_take_the_baked_tier() {
    run(
        &program("function"),
        &[
            ("JITCALL_DISABLE_JIT", "1"),
            ("JITCALL_CAPI_TEST_JIT", "disabled"),
        ],
    );
}

#[test]
fn libraries_opened_missing_and_closed() {
    run(&program("library"), &[]);
}

#[test]
fn callbacks_on_every_tier_called_by_c_and_by_qsort() {
    run(&program("callback"), &[]);
}

#[test]
fn callbacks_with_the_jit_disabled_take_the_baked_tier() {
    run(
        &program("callback"),
        &[
            ("JITCALL_DISABLE_JIT", "1"),
            ("JITCALL_CAPI_TEST_JIT", "disabled"),
        ],
    );
}

#[test]
fn explain_returns_what_the_command_prints() {
    run(&program("explain"), &[]);
}

/// The README's command: `cc examples/c/libm_qsort.c -I capi/include -L
/// <libs> -ljitcall -Wl,-rpath,<libs>`, with this build's library
/// directory.
#[test]
fn the_example_builds_with_the_readme_command_and_runs_on_the_jit_tier() {
    let source = crate_dir().join("../examples/c/libm_qsort.c");
    let exe = compile(&source, "libm_qsort", Link::Dynamic);
    let output = run_example(&exe);
    let stdout = String::from_utf8_lossy(&output.stdout);
    for line in [
        "cos(0) = 1\n",
        "cos(3.14159) = -1\n",
        "sorted: -300 -7 0 5 19 42 1000 (",
    ] {
        assert!(stdout.contains(line), "no {line:?} in:\n{stdout}");
    }
    let tiers: Vec<&str> = ["cos: ", "qsort: ", "comparator: "]
        .iter()
        .map(|what| {
            stdout
                .lines()
                .find_map(|l| l.strip_prefix(what))
                .unwrap_or_else(|| panic!("no line {what:?} in:\n{stdout}"))
        })
        .collect();
    if jit_expectation() == "available" {
        assert_eq!(tiers, ["JIT", "JIT", "JIT"], "{stdout}");
    } else {
        assert!(tiers.iter().all(|t| t.starts_with("baked")), "{stdout}");
    }
}

/// Runs the example, which prints no counts of its own, and checks it
/// exited 0.
fn run_example(exe: &Path) -> Output {
    let mut command = runner(exe);
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\n--- stdout\n{}--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// `jitcall.pc`, which `build.rs` writes beside the libraries, gives
/// pkg-config the flags that build the example.
#[test]
fn pkg_config_gives_the_flags_that_build_the_example() {
    let profile_dir = lib_dir();
    let pc = profile_dir.join("jitcall.pc");
    let text = std::fs::read_to_string(&pc)
        .unwrap_or_else(|e| panic!("{} is not there: {e}", pc.display()));
    assert!(text.contains("Libs: -L${libdir} -ljitcall\n"), "{text}");
    let flags = Command::new("pkg-config")
        .args(["--cflags", "--libs", "jitcall"])
        .env("PKG_CONFIG_PATH", profile_dir)
        .output();
    let flags = match flags {
        Ok(output) if output.status.success() => String::from_utf8(output.stdout).expect("UTF-8"),
        Ok(output) => panic!(
            "pkg-config failed on {}: {}",
            pc.display(),
            String::from_utf8_lossy(&output.stderr)
        ),
        Err(e) => {
            process::notice(&format!(
                "pkg-config cannot run ({e}): jitcall.pc is NOT checked with it \
                 (apt-get install pkg-config)"
            ));
            return;
        }
    };
    let include = crate_dir().join("include");
    assert!(
        flags.contains(&format!("-I{}", include.display())),
        "{flags}"
    );
    let exe = scratch_dir().join("libm_qsort_pkg_config");
    let mut command = compiler().to_command();
    command
        .arg(crate_dir().join("../examples/c/libm_qsort.c"))
        .args(flags.split_whitespace())
        .arg(format!("-Wl,-rpath,{}", profile_dir.display()))
        .arg("-o")
        .arg(&exe);
    let output = command.output().expect("the C compiler runs");
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&run_example(&exe).stdout).into_owned();
    assert!(stdout.contains("cos(0) = 1\n"), "{stdout}");
}

/// The header is C++ too: a C++ compiler of the host reads it, with an
/// `extern "C"` block.
#[test]
fn the_header_compiles_as_cpp() {
    let host = env!("JITCALL_CAPI_HOST");
    let tool = cc::Build::new()
        .cpp(true)
        .target(host)
        .host(host)
        .opt_level(0)
        .cargo_metadata(false)
        .try_get_compiler();
    let tool = match tool {
        Ok(tool) => tool,
        Err(e) => {
            process::notice(&format!(
                "no C++ compiler ({e}): the header is NOT checked as C++"
            ));
            return;
        }
    };
    let source = scratch_dir().join("jitcall_header.cpp");
    std::fs::write(
        &source,
        "#include \"jitcall.h\"\n\
         static_assert(JITCALL_OK == 0, \"0 is success\");\n\
         extern \"C\" void handler(void *, const uint64_t *, uint64_t *);\n\
         jitcall_status bind(jitcall_library *lib, jitcall_signature *sig, jitcall_function **f) {\n\
         \x20   jitcall_handler h = handler;\n\
         \x20   (void)h;\n\
         \x20   return jitcall_function_bind(lib, \"cos\", sig, nullptr, f, nullptr);\n\
         }\n",
    )
    .expect("the scratch directory is writable");
    let mut command = tool.to_command();
    command
        .args(["-std=c++11", "-Wall", "-Wextra", "-Werror", "-fsyntax-only"])
        .arg("-I")
        .arg(crate_dir().join("include"))
        .arg(&source);
    let output = command.output().expect("the C++ compiler runs");
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Every function `jitcall.h` declares is called by a C test.
#[test]
fn every_function_of_the_header_is_called_by_a_c_test() {
    let header = std::fs::read_to_string(crate_dir().join("include/jitcall.h")).expect("header");
    let declared: Vec<&str> = header
        .lines()
        .filter(|l| !l.starts_with("//") && !l.starts_with(' ') && !l.starts_with('#'))
        .filter_map(|l| {
            let name = l.split('(').next()?.rsplit([' ', '*']).next()?;
            (name.starts_with("jitcall_") && l.contains('(')).then_some(name)
        })
        .collect();
    assert!(
        declared.len() >= 40,
        "only {declared:?} found in the header"
    );
    let mut tests = String::new();
    for entry in std::fs::read_dir(crate_dir().join("tests/c")).expect("tests/c") {
        let path = entry.expect("a directory entry").path();
        if path.extension().is_some_and(|e| e == "c") {
            tests.push_str(&std::fs::read_to_string(&path).expect("a C test"));
        }
    }
    let uncalled: Vec<&&str> = declared
        .iter()
        .filter(|name| !tests.contains(&format!("{name}(")))
        .collect();
    assert!(uncalled.is_empty(), "no C test calls {uncalled:?}");
}
