//! Golden disassembly tests: the emitted code for a handful of signatures,
//! per ABI and entry kind, compared with `tests/golden/<abi>/<name>.txt`.
//!
//! These run on every host: nothing is executed. After an intended change
//! to an emitter, re-bless the files and review the diff:
//!
//! ```sh
//! BLESS=1 cargo test -p jitcall-emitters --test golden
//! git diff emitters/tests/golden
//! ```

use std::path::PathBuf;

use jitcall_emitters::disasm::disassemble;
use jitcall_emitters::{classify, emit, Abi, Entry, Limits, Signature};

/// Where the golden trampolines are placed, and a target within rel32 /
/// branch reach of it.
const BASE: u64 = 0x10_0000;
const NEAR: u64 = 0x20_0000;
/// A target out of reach of any direct branch from `BASE`.
const FAR: u64 = 0x7f12_3456_789a;

const CASES: &[(&str, &str, Entry, u64)] = &[
    ("packed_void", "() -> void", Entry::Packed, NEAR),
    ("packed_add_i32", "(i32, i32) -> i32", Entry::Packed, NEAR),
    ("packed_narrow", "(i8, u8, i16, u16, bool) -> i8", Entry::Packed, NEAR),
    ("packed_floats", "(f32, f64, i32) -> f32", Entry::Packed, NEAR),
    ("packed_far", "(f64) -> f64", Entry::Packed, FAR),
    ("packed_buffer", "(buffer, u64) -> u64", Entry::Packed, NEAR),
    (
        "packed_stack",
        "(i64, i64, i64, i64, i64, i64, i64, i64, i8, f64, f64, f64, f64, f64, f64, f64, f64, f32) -> u16",
        Entry::Packed,
        NEAR,
    ),
    ("receiver_tail", "(i32, f64, pointer) -> i32", Entry::Receiver, NEAR),
    ("receiver_narrow", "(i8, u16) -> u8", Entry::Receiver, NEAR),
    ("receiver_far", "(u64) -> void", Entry::Receiver, FAR),
    ("receiver_buffer", "(buffer, u64) -> u64", Entry::Receiver, NEAR),
    (
        "receiver_stack",
        "(i32, i32, i32, i32, i32, i32, i32, i32, i16, i8) -> void",
        Entry::Receiver,
        NEAR,
    ),
    (
        "receiver_stack_call",
        "(i32, i32, i32, i32, i32, i32, i32, i32, i16, i8) -> i16",
        Entry::Receiver,
        NEAR,
    ),
];

fn render(abi: Abi, text: &str, entry: Entry, target: u64) -> String {
    let sig: Signature = text.parse().unwrap();
    let limits = Limits {
        max_args: 32,
        ..Limits::default()
    };
    let plan = classify(&sig, abi, entry, &limits).unwrap();
    let code = emit(&plan, BASE, target);
    let mut out = format!(
        "# {abi}, {entry} entry: {sig}\n# placed at {BASE:#x}, target {target:#x}, {} bytes\n{}\n\n",
        code.len(),
        plan.describe()
    );
    for line in disassemble(abi, &code, BASE) {
        out += &line;
        out.push('\n');
    }
    out
}

fn check(abi: Abi, dir: &str) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(dir);
    let bless = std::env::var_os("BLESS").is_some_and(|v| v == "1");
    let mut stale = Vec::new();
    for (name, sig, entry, target) in CASES {
        let got = render(abi, sig, *entry, *target);
        let path = root.join(format!("{name}.txt"));
        if bless {
            std::fs::create_dir_all(&root).unwrap();
            std::fs::write(&path, &got).unwrap();
            continue;
        }
        match std::fs::read_to_string(&path) {
            Ok(want) if want == got => {}
            Ok(want) => stale.push(format!(
                "{}:\n--- golden\n{want}\n+++ emitted\n{got}",
                path.display()
            )),
            Err(e) => stale.push(format!("{}: {e}\n+++ emitted\n{got}", path.display())),
        }
    }
    assert!(
        stale.is_empty(),
        "{} golden file(s) differ; if the change is intended, run\n  BLESS=1 cargo test -p jitcall-emitters --test golden\n\n{}",
        stale.len(),
        stale.join("\n")
    );
}

#[test]
fn golden_sysv64() {
    check(Abi::SysV64, "sysv64");
}

#[test]
fn golden_aapcs64() {
    check(Abi::Aapcs64, "aapcs64");
}
