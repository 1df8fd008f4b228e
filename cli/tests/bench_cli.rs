//! `jitcall bench`: the structure of its output, never its timing.

use serde_json::Value;

const SIGNATURES: [&str; 23] = [
    "add-i8",
    "add-u8",
    "add-i16",
    "add-u16",
    "add-i32",
    "add-u32",
    "add-i64",
    "add-u64",
    "add-f32",
    "add-f64",
    "sum-3-i32",
    "sum-5-i32",
    "sum-8-i32",
    "mixed-12",
    "noop-void",
    "identity-i32",
    "pointer-null",
    "buffer-sum",
    "pair-swap",
    "getpid",
    "strlen",
    "cos",
    "div",
];

const PATHS: [&str; 9] = [
    "direct",
    "packed",
    "call_packed",
    "shared",
    "baked",
    "receiver",
    "thunk",
    "libffi",
    "call",
];

fn jitcall(args: &[&str]) -> std::process::Output {
    jitcall_fixtures::process::target_command(env!("CARGO_BIN_EXE_jitcall").as_ref())
        .args(args)
        .output()
        .expect("the jitcall binary runs")
}

/// Runs `jitcall --quick --json FILE` with `env` set and returns the
/// parsed file and stdout.
fn quick_json(env: &[(&str, &str)]) -> (Value, String) {
    let path = std::env::temp_dir().join(format!(
        "jitcall-bench-{}-{}.json",
        std::process::id(),
        env.len()
    ));
    let output = jitcall_fixtures::process::target_command(env!("CARGO_BIN_EXE_jitcall").as_ref())
        .args(["--quick", "--json", path.to_str().unwrap()])
        .envs(env.iter().copied())
        .output()
        .expect("the jitcall binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = std::fs::read_to_string(&path).expect("--json wrote the file");
    std::fs::remove_file(&path).ok();
    (
        serde_json::from_str(&text).expect("the file is JSON"),
        stdout,
    )
}

fn is_summary(value: &Value) -> bool {
    ["median", "min", "max"]
        .iter()
        .all(|key| value[key].is_f64())
        && value["samples"].is_u64()
}

#[test]
fn quick_json_lists_every_signature_and_path() {
    let (json, stdout) = quick_json(&[]);

    assert_eq!(json["quick"], Value::Bool(true));
    let signatures = json["signatures"].as_array().expect("a signature list");
    let names: Vec<&str> = signatures
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, SIGNATURES);
    for signature in signatures {
        let name = &signature["name"];
        assert!(signature["signature"].is_string(), "{name}");
        let paths = signature["paths"].as_object().expect("a path map");
        let keys: Vec<&str> = paths.keys().map(String::as_str).collect();
        let mut expected = PATHS.to_vec();
        expected.sort_unstable();
        let mut keys_sorted = keys.clone();
        keys_sorted.sort_unstable();
        assert_eq!(keys_sorted, expected, "{name}");
        for (key, path) in paths {
            // A path that does not apply is null; the others are measured.
            if path.is_null() {
                assert!(
                    !["direct", "baked", "libffi", "call"].contains(&key.as_str()),
                    "{name} {key}"
                );
                continue;
            }
            assert!(is_summary(&path["ns_per_call"]), "{name} {key}: {path}");
            assert!(path["iters_per_sample"].as_u64().unwrap() >= 1);
            assert!(path["ratio_to_direct"].is_f64(), "{name} {key}");
        }
    }

    // The closed-library check, plain and checked, on both entries.
    let checks = json["closed_check"]
        .as_array()
        .expect("a closed_check list");
    let names: Vec<&str> = checks.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["add-i32", "add-f64", "noop-void", "sum-8-i32", "cos"]
    );
    for check in checks {
        for entry in ["packed", "receiver"] {
            let pair = &check[entry];
            assert!(is_summary(&pair["plain_ns"]), "{check}");
            assert!(is_summary(&pair["checked_ns"]), "{check}");
            assert!(pair["added_ns"].is_f64(), "{check}");
        }
    }
    assert!(stdout.contains("the closed-library check"), "{stdout}");

    let creation = &json["creation"];
    for key in [
        "repeated_shape_ns",
        "new_shape_ns",
        "own_ns",
        "baked_ns",
        "baked_receiver_ns",
        "batch_each_ns",
    ] {
        assert!(is_summary(&creation[key]), "{key}: {creation}");
    }
    // Null only where the process refuses the double mapping.
    assert_eq!(
        creation["double_mapped_ns"].is_null(),
        jitcall::double_map_status().is_err(),
        "{creation}"
    );
    assert_eq!(creation["batch_size"], 1000);
    assert_eq!(json["targets"].as_array().unwrap().len(), 12);
    // Callbacks: every row through every tier, the handler alone once.
    let callbacks = json["callbacks"].as_array().expect("a callbacks list");
    let names: Vec<&str> = callbacks
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["add-i32", "add-f64", "compare", "sum-8-i64"]);
    for row in callbacks {
        let columns = &row["columns"];
        for key in ["direct", "jit", "baked", "libffi"] {
            assert!(is_summary(&columns[key]["ns_per_call"]), "{row}");
        }
        assert_eq!(
            columns["handler"].is_null(),
            row["name"] != "add-i32",
            "{row}"
        );
    }
    assert!(
        stdout.contains("callbacks, median ns per call from a C loop"),
        "{stdout}"
    );
    assert!(json["baked_code_bytes"].as_u64().unwrap() > 0);

    check_refused_run(&json["refused_jit"], &stdout);

    // The text report has the same rows.
    for name in SIGNATURES {
        assert!(
            stdout.lines().any(|line| line.starts_with(name)),
            "no row for {name}:\n{stdout}"
        );
    }
}

/// The run under PR_SET_MDWE: every signature on the baked tier with the
/// refusal as its reason, or a reason it did not run (a kernel before 6.3,
/// an emulator), which JITCALL_REQUIRE_FAULTS=1 does not accept natively.
fn check_refused_run(refused: &Value, stdout: &str) {
    if let Some(why) = refused["not_run"].as_str() {
        let strict = std::env::var_os("JITCALL_REQUIRE_FAULTS").is_some_and(|v| v == "1");
        assert!(
            !strict || jitcall_fixtures::process::emulator().is_some(),
            "the run under PR_SET_MDWE did not happen: {why}"
        );
        println!("NOTICE: the bench's run under PR_SET_MDWE NOT checked: {why}");
        assert!(stdout.contains("not measured"), "{stdout}");
        return;
    }
    assert!(
        refused["jit"].as_str().unwrap().contains("refused"),
        "{refused}"
    );
    let signatures = refused["signatures"].as_array().unwrap();
    assert_eq!(signatures.len(), SIGNATURES.len());
    for signature in signatures {
        let name = &signature["name"];
        let tier = signature["tier"].as_str().unwrap();
        assert!(tier.starts_with("baked (JIT unavailable"), "{name}: {tier}");
        let paths = &signature["paths"];
        for key in ["packed", "call_packed", "shared", "receiver"] {
            assert!(paths[key].is_null(), "{name}: {key}");
        }
        for key in ["direct", "baked", "libffi", "call"] {
            assert!(is_summary(&paths[key]["ns_per_call"]), "{name}: {key}");
        }
        // Receiver entries are static thunks here, but for struct shapes.
        let structs = signature["signature"].as_str().unwrap().contains('{');
        assert_eq!(paths["thunk"].is_null(), structs, "{name}: thunk");
    }
    assert!(stdout.contains("PR_SET_MDWE"), "{stdout}");
}

#[test]
fn without_jit_the_jit_paths_are_left_out() {
    let (json, stdout) = quick_json(&[("JITCALL_DISABLE_JIT", "1")]);
    for signature in json["signatures"].as_array().unwrap() {
        let paths = &signature["paths"];
        for key in ["packed", "call_packed", "shared", "receiver"] {
            assert!(paths[key].is_null(), "{}: {key}", signature["name"]);
        }
        for key in ["direct", "baked", "libffi", "call"] {
            assert!(
                is_summary(&paths[key]["ns_per_call"]),
                "{}: {key}",
                signature["name"]
            );
        }
    }
    // The JIT's targets are not measured; the baked tier's are.
    for target in json["targets"].as_array().unwrap() {
        let baked = target["target"].as_str().unwrap().contains("baked tier");
        assert_eq!(target["met"].is_null(), !baked, "{target}");
    }
    // Without trampolines there is no check to measure.
    assert_eq!(json["closed_check"], serde_json::json!([]));
    assert!(stdout.contains('—'), "{stdout}");
}

#[test]
fn unknown_options_are_refused_with_the_usage() {
    let output = jitcall(&["bench", "--fast"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unknown option `--fast`"), "{stderr}");
    assert!(stderr.contains("usage: jitcall"), "{stderr}");
}

#[test]
fn json_needs_a_file_name() {
    let output = jitcall(&["bench", "--json"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--json needs a file name"));
}

/// Bad input gets exit code 2 and a message, never a panic: arguments that
/// are not UTF-8, and signatures that do not parse.
#[test]
fn bad_arguments_exit_with_2_and_say_why() {
    use std::os::unix::ffi::OsStringExt;
    let not_utf8 = std::ffi::OsString::from_vec(b"(\xff) -> void".to_vec());
    let cases: [Vec<std::ffi::OsString>; 4] = [
        vec!["explain".into(), not_utf8.clone()],
        vec![not_utf8],
        vec!["explain".into(), "(i33) -> void".into()],
        vec![
            "explain".into(),
            format!("({}) -> void", "x".repeat(100_000)).into(),
        ],
    ];
    for args in cases {
        let output =
            jitcall_fixtures::process::target_command(env!("CARGO_BIN_EXE_jitcall").as_ref())
                .args(&args)
                .output()
                .expect("the jitcall binary runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.starts_with("jitcall: "), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(stderr.len() < 1000, "{args:?}: {} bytes", stderr.len());
    }
}
