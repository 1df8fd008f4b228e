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
use jitcall_emitters::{
    classify, emit, emit_callback, Abi, CallbackPlacement, Entry, Guard, Isa, Limits, Placement,
    Signature, Target,
};

/// Where the golden trampolines are placed, and a target within rel32 /
/// branch reach of it.
const BASE: u64 = 0x10_0000;
const NEAR: u64 = 0x20_0000;
/// A target out of reach of any direct branch from `BASE`.
const FAR: u64 = 0x7f12_3456_789a;

const NEAR_AT: Placement = Placement::at(BASE, NEAR);
const FAR_AT: Placement = Placement::at(BASE, FAR);
/// A function bound from a library: the closed check at entry, with
/// `on_closed` in direct-branch reach and out of it.
const GUARDED: Placement = Placement {
    guard: Some(Guard {
        cell: 0x30_0000,
        on_closed: 0x40_0000,
    }),
    ..NEAR_AT
};
const GUARDED_FAR: Placement = Placement {
    guard: Some(Guard {
        cell: 0x7f00_1234_5678,
        on_closed: 0x7f12_0000_1111,
    }),
    ..FAR_AT
};

/// A shape stub: the target passed as data, placed anywhere.
const SHAPE: Placement = Placement::shape();
/// A receiver-entry stub behind a static thunk: the target in r11 or x16,
/// placed anywhere.
const REGISTER: Placement = Placement::register();

const CASES: &[(&str, &str, Entry, Placement)] = &[
    ("packed_void", "() -> void", Entry::Packed, NEAR_AT),
    ("packed_add_i32", "(i32, i32) -> i32", Entry::Packed, NEAR_AT),
    ("packed_narrow", "(i8, u8, i16, u16, bool) -> i8", Entry::Packed, NEAR_AT),
    ("packed_floats", "(f32, f64, i32) -> f32", Entry::Packed, NEAR_AT),
    ("packed_far", "(f64) -> f64", Entry::Packed, FAR_AT),
    ("packed_buffer", "(buffer, u64) -> u64", Entry::Packed, NEAR_AT),
    (
        "packed_stack",
        "(i64, i64, i64, i64, i64, i64, i64, i64, i8, f64, f64, f64, f64, f64, f64, f64, f64, f32) -> u16",
        Entry::Packed,
        NEAR_AT,
    ),
    ("receiver_tail", "(i32, f64, pointer) -> i32", Entry::Receiver, NEAR_AT),
    ("receiver_narrow", "(i8, u16) -> u8", Entry::Receiver, NEAR_AT),
    ("receiver_far", "(u64) -> void", Entry::Receiver, FAR_AT),
    ("receiver_buffer", "(buffer, u64) -> u64", Entry::Receiver, NEAR_AT),
    (
        "receiver_stack",
        "(i32, i32, i32, i32, i32, i32, i32, i32, i16, i8) -> void",
        Entry::Receiver,
        NEAR_AT,
    ),
    (
        "receiver_stack_call",
        "(i32, i32, i32, i32, i32, i32, i32, i32, i16, i8) -> i16",
        Entry::Receiver,
        NEAR_AT,
    ),
    (
        "packed_struct_registers",
        "({i32, f32}, {f64, i64}, i8) -> {f32, f32}",
        Entry::Packed,
        NEAR_AT,
    ),
    (
        "packed_struct_odd_sizes",
        "({u8, u8, u8}, {u8, u8, u8, u8, u8, u8, u8}) -> {u8, u16, u8, u32, u8}",
        Entry::Packed,
        NEAR_AT,
    ),
    (
        "packed_struct_memory",
        "({i64, f64, i32}, f64, {u8, u8, u8, u8, u8, u8, u8, u8, u8, u8, u8, u8, u8}) -> {i64, i64, i64}",
        Entry::Packed,
        NEAR_AT,
    ),
    (
        "packed_struct_floats",
        "({f32, f32, f32}, {f64, f64}) -> {f64, {f64, f64}}",
        Entry::Packed,
        NEAR_AT,
    ),
    (
        "packed_guarded_struct",
        "(i32) -> {i64, f64, i32}",
        Entry::Packed,
        GUARDED,
    ),
    ("packed_guarded", "(i32, i32) -> i32", Entry::Packed, GUARDED),
    ("shape_add_i32", "(i32, i32) -> i32", Entry::Packed, SHAPE),
    ("shape_void", "() -> void", Entry::Packed, SHAPE),
    (
        "shape_stack",
        "(i64, i64, i64, i64, i64, i64, i64, i64, i8, f64, f64, f64, f64, f64, f64, f64, f64, f32) -> u16",
        Entry::Packed,
        SHAPE,
    ),
    (
        "shape_struct_memory",
        "({i64, f64, i32}, f64) -> {i64, i64, i64}",
        Entry::Packed,
        SHAPE,
    ),
    ("packed_guarded_far", "(pointer) -> void", Entry::Packed, GUARDED_FAR),
    ("receiver_guarded", "(i32, f64, pointer) -> i32", Entry::Receiver, GUARDED),
    ("receiver_guarded_far", "(i8) -> u8", Entry::Receiver, GUARDED_FAR),
    ("register_tail", "(i32, f64, pointer) -> i32", Entry::Receiver, REGISTER),
    ("register_narrow", "(i8, u16, buffer) -> u8", Entry::Receiver, REGISTER),
    (
        "register_stack",
        "(i32, i32, i32, i32, i32, i32, i32, i32, i16, buffer) -> void",
        Entry::Receiver,
        REGISTER,
    ),
    (
        "register_stack_call",
        "(i32, i32, i32, i32, i32, i32, i32, i32, i16, i8) -> i16",
        Entry::Receiver,
        REGISTER,
    ),
    // A baked receiver stub's plan: its GP arguments, then eight f64s that
    // stay where they are and set `al` to 8.
    (
        "register_baked",
        "(u64, u8, f64, f64, f64, f64, f64, f64, f64, f64) -> void",
        Entry::Receiver,
        REGISTER,
    ),
    // Value entries: the packed entry's loads, then a tail call when the
    // target takes no stack arguments; the return left as the target left
    // it (narrow integers raw).
    ("value_add_i32", "(i32, i32) -> i32", Entry::Value, NEAR_AT),
    ("value_floats", "(f64, f64) -> f64", Entry::Value, NEAR_AT),
    ("value_void", "() -> void", Entry::Value, NEAR_AT),
    ("value_narrow", "(i8, u16) -> u8", Entry::Value, NEAR_AT),
    ("value_buffer", "(buffer, u64) -> u64", Entry::Value, NEAR_AT),
    (
        "value_struct_registers",
        "({i32, f32}, {u8, u8, u8}, i8) -> i64",
        Entry::Value,
        NEAR_AT,
    ),
    // Stack arguments on both ABIs: called from a frame, then `ret`.
    (
        "value_stack",
        "(i64, i64, i64, i64, i64, i64, i64, i64, i8, f32) -> u16",
        Entry::Value,
        NEAR_AT,
    ),
    // x86_64: a MEMORY struct on the stack; AArch64: copied to the frame
    // and passed by reference. Both call.
    ("value_struct_memory", "({i64, f64, i32}, f64) -> f64", Entry::Value, NEAR_AT),
    ("value_far", "(u64) -> u64", Entry::Value, FAR_AT),
    ("value_guarded", "(i32, i32) -> i32", Entry::Value, GUARDED),
    (
        "value_guarded_stack",
        "(i64, i64, i64, i64, i64, i64, i64, i64, i8, f32) -> u16",
        Entry::Value,
        GUARDED_FAR,
    ),
    ("value_shape", "(i32, i32) -> i32", Entry::Value, SHAPE),
    // Where the ABIs part ways. Variadic arguments: al = 2 on System V,
    // the floats also in rdx and r9 on Win64, all on the stack in 8-byte
    // slots on Apple.
    (
        "packed_variadic",
        "(pointer, ..., i32, f64, i64, f64) -> i32",
        Entry::Packed,
        NEAR_AT,
    ),
    // Apple: an HFA and a struct over 16 bytes, variadic, on the stack
    // (the latter by reference, its address in a stack slot).
    (
        "packed_variadic_struct",
        "(i32, ..., {f32, f32, f32}, {i64, i64, i64}) -> void",
        Entry::Packed,
        NEAR_AT,
    ),
    // Narrow stack arguments: 8-byte slots, or Apple's natural size and
    // alignment (i8 at +0, i16 at +2, bool at +4, i32 at +8, u8 at +12,
    // i64 at +16).
    (
        "packed_narrow_stack",
        "(i64, i64, i64, i64, i64, i64, i64, i64, i8, i16, bool, i32, u8, i64) -> i32",
        Entry::Packed,
        NEAR_AT,
    ),
    (
        "receiver_narrow_stack",
        "(i64, i64, i64, i64, i64, i64, i64, i8, i16, bool, i32, u8, i64) -> i64",
        Entry::Receiver,
        NEAR_AT,
    ),
    // An HFA that finds too few FP registers goes on the stack, and so do
    // the floats after it (AAPCS64 C.3); Apple aligns it to its members:
    // {f32} at +0 and {f32, f32} at +4 there, +0 and +8 on Linux.
    (
        "packed_hfa_stack",
        "(f32, f32, f32, f32, f32, f32, f32, f32, {f32}, {f32, f32}, f32) -> f32",
        Entry::Packed,
        NEAR_AT,
    ),
    // Win64: 1, 2, 4 and 8-byte structs as integers in their position,
    // others copied and passed by reference; a 3-byte return through
    // memory, its address in rcx.
    (
        "packed_struct_positions",
        "({f32, f32}, {u8, u8, u8}, {f64}, {i64, i64}, {i32}, {u16}) -> {u8, u8, u8}",
        Entry::Packed,
        NEAR_AT,
    ),
    // Win64: positions shared by index, so floats shift between xmm
    // registers when the receiver takes rcx.
    (
        "receiver_positions",
        "(f64, i32, f32, i64, f64, u16) -> f64",
        Entry::Receiver,
        NEAR_AT,
    ),
    // x86_64: struct pieces load through r11, so the target waits on the
    // stack.
    ("value_shape_struct", "({i32, f32}, i64) -> f32", Entry::Value, SHAPE),
    (
        "value_shape_stack",
        "(i64, i64, i64, i64, i64, i64, i64, i64, i8, f32) -> u16",
        Entry::Value,
        SHAPE,
    ),
];

/// A callback's handler in direct-call reach of `BASE`, and its data.
const CALLBACK_AT: CallbackPlacement = CallbackPlacement {
    base: BASE,
    handler: NEAR,
    data: 0x5566_7788_9900,
};
/// The handler out of reach.
const CALLBACK_FAR: CallbackPlacement = CallbackPlacement {
    handler: FAR,
    ..CALLBACK_AT
};

/// Reverse trampolines ("callbacks"), the same names on every ABI.
const CALLBACK_CASES: &[(&str, &str, CallbackPlacement)] = &[
    ("callback_void", "() -> void", CALLBACK_AT),
    ("callback_narrow_return", "(i32, f64) -> u8", CALLBACK_AT),
    ("callback_floats", "(i8, u16, f32) -> f32", CALLBACK_AT),
    (
        "callback_every_scalar",
        "(bool, i8, u8, i16, u16, i32, u32, i64) -> i16",
        CALLBACK_AT,
    ),
    ("callback_far", "(pointer, buffer, function) -> i64", CALLBACK_FAR),
    // Ten arguments: narrow integers and floats past the registers (on
    // x86_64 the GP ones, on AArch64 none)…
    (
        "callback_ten",
        "(i64, i64, i64, i64, i64, i64, i8, u16, f32, f64) -> u32",
        CALLBACK_AT,
    ),
    // … and stack arguments of both classes on both ABIs, which takes more
    // than ten: nine floats overflow the eight FP registers.
    (
        "callback_stack",
        "(i64, i64, i64, i64, i64, i64, i64, i64, i8, f64, f64, f64, f64, f64, f64, f64, f64, f32) -> u16",
        CALLBACK_AT,
    ),
    ("callback_struct_registers", "({i32, f32}) -> {f64, f64}", CALLBACK_AT),
    (
        "callback_struct_odd_sizes",
        "({u8, u8, u8}, {i64, u8}) -> {u8, u16, u8, u32, u8}",
        CALLBACK_AT,
    ),
    // x86_64 MEMORY argument and return; AArch64 by reference and via x8.
    (
        "callback_struct_memory",
        "({i64, i64, i64}) -> {i64, i64, i64}",
        CALLBACK_AT,
    ),
    // A struct that finds too few GP registers left goes on the stack.
    (
        "callback_struct_stack",
        "(i64, i64, i64, i64, i64, i64, i64, {i64, i64}, i32) -> i32",
        CALLBACK_AT,
    ),
    // AArch64: an HFA in s0–s2 each way; x86_64: xmm0 (two f32) and xmm1.
    ("callback_hfa", "({f32, f32, f32}) -> {f32, f32, f32}", CALLBACK_AT),
    // AArch64: the pointer to a by-reference struct on the stack.
    (
        "callback_reference_on_stack",
        "(i64, i64, i64, i64, i64, i64, i64, i64, {i64, i64, i64}, f32) -> f64",
        CALLBACK_AT,
    ),
];

fn render_callback(abi: Abi, text: &str, at: &CallbackPlacement) -> String {
    let sig: Signature = text.parse().unwrap();
    let limits = Limits {
        max_args: 32,
        ..Limits::default()
    };
    let plan = classify(&sig, abi, Entry::Packed, &limits).unwrap();
    let code = emit_callback(&plan, at);
    let mut out = format!(
        "# {abi}, callback: {sig}\n# placed at {:#x}, handler {:#x}, data {:#x}, {} bytes\n\
         # The packed plan: the callback reads each argument where `->` points.\n{}\n\n",
        at.base,
        at.handler,
        at.data,
        code.len(),
        plan.describe()
    );
    for line in disassemble(abi, &code, at.base) {
        out += &line;
        out.push('\n');
    }
    out
}

fn render(abi: Abi, text: &str, entry: Entry, at: &Placement) -> String {
    let sig: Signature = text.parse().unwrap();
    let limits = Limits {
        max_args: 32,
        ..Limits::default()
    };
    let plan = classify(&sig, abi, entry, &limits).unwrap();
    let code = emit(&plan, at);
    let guard = match at.guard {
        Some(Guard { cell, on_closed }) => {
            format!(", closed cell {cell:#x}, on_closed {on_closed:#x}")
        }
        None => String::new(),
    };
    let target = match at.target {
        Target::Known(target) => format!("target {target:#x}"),
        Target::Argument => "target passed as data (a shape stub)".to_string(),
        Target::Register => match abi.isa() {
            Isa::X86_64 => "target in r11 (a stub behind a static thunk)".to_string(),
            Isa::Aarch64 => "target in x16 (a stub behind a static thunk)".to_string(),
        },
    };
    let mut out = format!(
        "# {abi}, {entry} entry: {sig}\n# placed at {:#x}, {target}{guard}, {} bytes\n{}\n\n",
        at.base,
        code.len(),
        plan.describe()
    );
    for line in disassemble(abi, &code, at.base) {
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
    // Shape stubs, static-thunk stubs, callbacks and the register file
    // exist for the ABIs jitcall runs on: the others have no such cases.
    let hosted = abi.spec().hosted;
    let cases = CASES
        .iter()
        .filter(|(_, _, _, at)| hosted || matches!(at.target, Target::Known(_)))
        .map(|(name, sig, entry, at)| (*name, render(abi, sig, *entry, at)))
        .chain(
            CALLBACK_CASES
                .iter()
                .filter(|_| hosted)
                .map(|(name, sig, at)| (*name, render_callback(abi, sig, at))),
        );
    for (name, got) in cases {
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
    // The register-file stub, the same for every shape.
    if let Some(code) = jitcall_emitters::register_file::emit(abi) {
        let mut got = format!(
            "# {abi}, the register-file stub: (file, target, ret)\n# {} bytes, placed anywhere\n\n",
            code.len()
        );
        for line in disassemble(abi, &code, 0) {
            got += &line;
            got.push('\n');
        }
        let path = root.join("register_file.txt");
        if bless {
            std::fs::write(&path, &got).unwrap();
        } else {
            match std::fs::read_to_string(&path) {
                Ok(want) if want == got => {}
                Ok(want) => stale.push(format!(
                    "{}:\n--- golden\n{want}\n+++ emitted\n{got}",
                    path.display()
                )),
                Err(e) => stale.push(format!("{}: {e}\n+++ emitted\n{got}", path.display())),
            }
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

#[test]
fn golden_win64() {
    check(Abi::Win64, "win64");
}

#[test]
fn golden_apple_aarch64() {
    check(Abi::AppleAarch64, "apple_aarch64");
}

/// The registers an ABI's trampolines must never name, beyond those the
/// System V and AAPCS64 emitters already keep: Win64's callee-saved rsi,
/// rdi and xmm6–15 (no trampoline saves them, so none may write them), and
/// Apple's reserved x18.
fn untouchable(abi: Abi) -> Vec<String> {
    match abi {
        Abi::Win64 => ["rsi", "rdi", "esi", "edi", "si", "di", "sil", "dil"]
            .iter()
            .map(|r| r.to_string())
            .chain((6..16).map(|n| format!("xmm{n}")))
            .collect(),
        Abi::AppleAarch64 => vec!["x18".into(), "w18".into()],
        _ => Vec::new(),
    }
}

#[test]
fn win64_and_apple_trampolines_never_name_a_register_they_must_keep() {
    let mut checked = 0;
    for abi in [Abi::Win64, Abi::AppleAarch64] {
        let forbidden = untouchable(abi);
        for (name, sig, entry, at) in CASES {
            if !matches!(at.target, Target::Known(_)) {
                continue;
            }
            let listing = render(abi, sig, *entry, at);
            // Instruction lines: "  1c: <bytes> <mnemonic> <operands>".
            let instructions = listing.lines().filter(|l| {
                l.trim_start()
                    .split(':')
                    .next()
                    .is_some_and(|a| !a.is_empty() && a.chars().all(|c| c.is_ascii_hexdigit()))
            });
            for line in instructions {
                let named = line
                    .split(|c: char| !c.is_ascii_alphanumeric())
                    .find(|word| forbidden.iter().any(|r| r == word));
                assert!(named.is_none(), "{abi} {name}: `{line}` names {named:?}");
                checked += 1;
            }
        }
    }
    assert!(checked > 1000, "only {checked} instructions");
    println!("{checked} Win64 and Apple arm64 instructions name no register they must keep");
}
