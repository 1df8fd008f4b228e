//! `jitcall explain`: what it says about a signature's tiers and code.

fn explain(sig: &str) -> String {
    let output = jitcall_fixtures::process::target_command(env!("CARGO_BIN_EXE_jitcall").as_ref())
        .args(["explain", sig])
        .output()
        .expect("the jitcall binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn explain_names_the_tier_of_each_binding_and_shows_every_stub() {
    let out = explain("(i32, f64) -> u8");
    let tiers: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.starts_with("tiers in this process"))
        .skip(1)
        .take(4)
        .collect();
    assert_eq!(tiers.len(), 4, "{out}");
    assert!(
        tiers[3].ends_with("a static thunk to its shape's baked receiver stub"),
        "{out}"
    );
    assert!(tiers[0].trim_start().starts_with("bound alone"), "{out}");
    assert!(tiers[2].contains("through its shape's baked stub"), "{out}");
    if jitcall::jit_available() {
        assert!(tiers[0].ends_with("shared JIT stub"), "{out}");
        assert!(tiers[1].ends_with("JIT"), "{out}");
    }
    // On both ABIs: the packed entry's shared stub and baked stub, both
    // disassembled; the 32-bit argument in the baked class of 64-bit ones.
    for abi in ["x86_64 System V", "AArch64"] {
        let section: String = out
            .split("\n\n")
            .filter(|s| s.starts_with(abi) && s.contains("packed entry"))
            .collect();
        assert!(
            section.contains("shared stub, the target passed as data"),
            "{section}"
        );
        assert!(
            section.contains("baked stub, compiled into the library: classes (i64, f64)"),
            "{section}"
        );
        assert!(
            section.contains("returning the integer register, raw"),
            "{section}"
        );
        let receiver: String = out
            .split("\n\n")
            .filter(|s| s.starts_with(abi) && s.contains("receiver entry"))
            .collect();
        assert!(
            receiver.contains("baked receiver stub, which a static thunk enters"),
            "{receiver}"
        );
    }
}

#[test]
fn explain_sends_shapes_outside_the_baked_set_to_the_register_file() {
    let out = explain("(i8, i8, i8, i8) -> void");
    assert!(out.contains("through the register-file stub"), "{out}");
    assert!(
        out.contains("a static thunk to the generic receiver stub"),
        "{out}"
    );
    assert_eq!(
        out.matches("the register-file stub (").count(),
        2,
        "one listing per ABI:\n{out}"
    );
}
