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
use jitcall_emitters::unwind::{reg, Frame, Unwind};
use jitcall_emitters::{
    classify, emit_callback_with_unwind, emit_with_unwind, Abi, CallbackPlacement, Emitted, Entry,
    Guard, Isa, Limits, Placement, Signature, Target,
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
    let Emitted { code, unwind } = emit_callback_with_unwind(&plan, at);
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
    out + &unwind_listing(&unwind)
}

fn render(abi: Abi, text: &str, entry: Entry, at: &Placement) -> String {
    let sig: Signature = text.parse().unwrap();
    let limits = Limits {
        max_args: 32,
        ..Limits::default()
    };
    let plan = classify(&sig, abi, entry, &limits).unwrap();
    let Emitted { code, unwind } = emit_with_unwind(&plan, at);
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
    out + &unwind_listing(&unwind)
}

/// The unwind rows under a listing: where the caller's frame is from each
/// offset on.
fn unwind_listing(unwind: &Unwind) -> String {
    let mut out = String::from("\n# unwind: the CFA and the saved registers from each offset on\n");
    for line in unwind.describe() {
        out += "  ";
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
    if let Some(Emitted { code, unwind }) = jitcall_emitters::register_file::emit_with_unwind(abi) {
        let mut got = format!(
            "# {abi}, the register-file stub: (file, target, ret)\n# {} bytes, placed anywhere\n\n",
            code.len()
        );
        for line in disassemble(abi, &code, 0) {
            got += &line;
            got.push('\n');
        }
        got += &unwind_listing(&unwind);
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

/// The stack as an instruction-by-instruction reading of the disassembly
/// sees it, independently of the emitters' own records: how far the stack
/// pointer is below its value on entry (`None` once it moved by a
/// register amount), where the frame pointer points, and which
/// callee-saved registers are stored where (offsets from the CFA).
#[derive(Clone, Debug)]
struct Stack {
    sp: Option<i32>,
    fp: Option<i32>,
    saved: Vec<(u16, i32)>,
}

impl Stack {
    fn entry() -> Stack {
        Stack {
            sp: Some(0),
            fp: None,
            saved: Vec::new(),
        }
    }

    /// Whether `frame` describes this stack: its CFA is the entry's (rsp +
    /// 8 on x86_64, sp on AArch64) and it lists exactly the saved
    /// registers.
    fn agrees(&self, isa: Isa, frame: &Frame) -> Result<(), String> {
        let entry_cfa = match isa {
            Isa::X86_64 => 8,
            Isa::Aarch64 => 0,
        };
        let base = match frame.cfa() {
            reg::RSP | reg::SP => self.sp,
            reg::RBP | reg::X29 => self.fp,
            other => return Err(format!("CFA on register {other}")),
        };
        match base {
            Some(depth) if frame.offset() + depth == entry_cfa => {}
            _ => {
                return Err(format!(
                    "CFA offset {} with the stack at {self:?}",
                    frame.offset()
                ))
            }
        }
        let mut want = self.saved.clone();
        let mut got: Vec<_> = frame.saved().collect();
        want.sort_unstable();
        got.sort_unstable();
        if want != got {
            return Err(format!("saved {got:?}, the code saved {want:?}"));
        }
        Ok(())
    }

    /// Applies one instruction (the disassembler's text) to the stack.
    fn step(&mut self, isa: Isa, insn: &str) {
        let number = |text: &str| -> i32 {
            let text = text.trim().trim_start_matches(['$', '#']);
            let (negative, digits) = match text.strip_prefix('-') {
                Some(rest) => (true, rest),
                None => (false, text),
            };
            let value = i32::from_str_radix(digits.trim_start_matches("0x"), 16)
                .unwrap_or_else(|_| panic!("an immediate in `{insn}`"));
            if negative {
                -value
            } else {
                value
            }
        };
        let callee_saved = |name: &str| -> Option<u16> {
            Some(match name {
                "%rbx" => reg::RBX,
                "%rbp" => reg::RBP,
                "%r12" => reg::R12,
                "%r13" => 13,
                "%r14" => 14,
                "%r15" => 15,
                _ => return None,
            })
        };
        let (op, args) = insn
            .split_once(' ')
            .map_or((insn, ""), |(op, args)| (op, args.trim()));
        match (isa, op) {
            (_, "ret") | (Isa::X86_64, "jmp") | (Isa::Aarch64, "br" | "b") => {
                // What follows an unconditional branch is entered from the
                // first instructions (the closed path): the entry stack.
                *self = Stack::entry();
            }
            (Isa::X86_64, "push") => {
                let sp = self.sp.expect("push with a known rsp") - 8;
                self.sp = Some(sp);
                if let Some(r) = callee_saved(args) {
                    self.saved.push((r, sp - 8));
                }
            }
            (Isa::X86_64, "pop") => {
                self.sp = self.sp.map(|sp| sp + 8);
                if let Some(r) = callee_saved(args) {
                    self.saved.retain(|&(saved, _)| saved != r);
                }
            }
            (Isa::X86_64, "sub" | "add") if args.ends_with(",%rsp") => {
                let amount = args.trim_end_matches(",%rsp");
                let delta = if amount.starts_with('$') {
                    Some(number(amount))
                } else {
                    None
                };
                let sign = if op == "sub" { -1 } else { 1 };
                self.sp = match (self.sp, delta) {
                    (Some(sp), Some(delta)) => Some(sp + sign * delta),
                    _ => None,
                };
            }
            (Isa::X86_64, "mov") if args == "%rsp,%rbp" => self.fp = self.sp,
            (Isa::X86_64, "mov") if args == "%rbp,%rsp" => self.sp = self.fp,
            (Isa::Aarch64, "stp")
                if args.starts_with("x29, x30, [sp, #-") && args.ends_with("]!") =>
            {
                let amount = number(&args["x29, x30, [sp, #".len()..args.len() - 2]);
                let sp = self.sp.expect("a frame record with a known sp") + amount;
                self.sp = Some(sp);
                self.saved.push((reg::X29, sp));
                self.saved.push((reg::X30, sp + 8));
            }
            (Isa::Aarch64, "stp") if args.starts_with("x19, x20, [sp, #") => {
                let at = number(&args["x19, x20, [sp, #".len()..args.len() - 1]);
                let sp = self.sp.expect("a save with a known sp");
                self.saved.push((reg::X19, sp + at));
                self.saved.push((reg::X20, sp + at + 8));
            }
            (Isa::Aarch64, "ldp") if args.starts_with("x19, x20, ") => {
                self.saved.retain(|&(r, _)| r != reg::X19 && r != reg::X20);
            }
            (Isa::Aarch64, "ldp") if args.starts_with("x29, x30, [sp], #") => {
                let amount = number(&args["x29, x30, [sp], #".len()..]);
                self.sp = self.sp.map(|sp| sp + amount);
                self.saved.retain(|&(r, _)| r != reg::X29 && r != reg::X30);
            }
            (Isa::Aarch64, "mov") if args == "x29, sp" => self.fp = self.sp,
            (Isa::Aarch64, "mov") if args == "sp, x29" => self.sp = self.fp,
            (Isa::Aarch64, "sub" | "add") if args.starts_with("sp, sp, ") => {
                let amount = &args["sp, sp, ".len()..];
                let delta = amount.starts_with('#').then(|| number(amount));
                let sign = if op == "sub" { -1 } else { 1 };
                self.sp = match (self.sp, delta) {
                    (Some(sp), Some(delta)) => Some(sp + sign * delta),
                    _ => None,
                };
            }
            _ => {
                let writes_sp = match isa {
                    Isa::X86_64 => args.ends_with(",%rsp"),
                    Isa::Aarch64 => {
                        args.starts_with("sp,")
                            || (args.contains("[sp")
                                && (args.ends_with("]!") || args.contains("[sp], #")))
                    }
                };
                assert!(
                    !writes_sp,
                    "an instruction that moves the stack pointer and the reading does not know: `{insn}`"
                );
            }
        }
    }
}

/// Checks `unwind` against the code, instruction by instruction; returns
/// how many instructions were checked.
fn unwind_agrees(abi: Abi, name: &str, code: &[u8], unwind: &Unwind) -> usize {
    assert_eq!(
        unwind.len() as usize,
        code.len(),
        "{abi} {name}: the unwind info covers the code"
    );
    assert_eq!(unwind.rows()[0].0, 0, "{abi} {name}: a row at offset 0");
    let isa = abi.isa();
    let mut stack = Stack::entry();
    let mut checked = 0;
    for line in disassemble(abi, code, 0) {
        let (offset, rest) = line
            .trim_start()
            .split_once(": ")
            .expect("offset: bytes insn");
        let offset = u32::from_str_radix(offset, 16).expect("a hex offset");
        let insn = rest
            .trim_start()
            .split_once(' ')
            .map_or("", |(_, insn)| insn)
            .trim();
        let insn = insn.split_whitespace().collect::<Vec<_>>().join(" ");
        let frame = unwind.frame_at(offset);
        if let Err(why) = stack.agrees(isa, &frame) {
            panic!(
                "{abi} {name} at {offset:#x} (`{insn}`): {why}\n{}",
                unwind.describe().join("\n")
            );
        }
        stack.step(isa, &insn);
        checked += 1;
    }
    checked
}

/// Every trampoline, stub and callback of the golden cases, in every ABI,
/// unwinds as its code moves the stack: the emitters' records agree with
/// an independent reading of the instructions at every instruction.
#[test]
fn unwind_information_agrees_with_the_code_at_every_instruction() {
    let mut checked = 0;
    for abi in Abi::ALL {
        let hosted = abi.spec().hosted;
        let limits = Limits {
            max_args: 32,
            ..Limits::default()
        };
        for (name, text, entry, at) in CASES {
            if !hosted && !matches!(at.target, Target::Known(_)) {
                continue;
            }
            let sig: Signature = text.parse().unwrap();
            let plan = classify(&sig, abi, *entry, &limits).unwrap();
            let Emitted { code, unwind } = emit_with_unwind(&plan, at);
            checked += unwind_agrees(abi, name, &code, &unwind);
        }
        if !hosted {
            continue;
        }
        for (name, text, at) in CALLBACK_CASES {
            let sig: Signature = text.parse().unwrap();
            let plan = classify(&sig, abi, Entry::Packed, &limits).unwrap();
            let Emitted { code, unwind } = emit_callback_with_unwind(&plan, at);
            checked += unwind_agrees(abi, name, &code, &unwind);
        }
        let Emitted { code, unwind } =
            jitcall_emitters::register_file::emit_with_unwind(abi).expect("a hosted ABI");
        checked += unwind_agrees(abi, "register_file", &code, &unwind);
    }
    println!("{checked} instructions: the unwind information agrees with the code at each");
}

/// How each golden case with a known target unwinds in `abi`, each placed
/// at an address of its own from `base` on, 4 KiB apart.
fn placed_cases(abi: Abi, base: u64) -> Vec<(u64, Unwind)> {
    let limits = Limits {
        max_args: 32,
        ..Limits::default()
    };
    CASES
        .iter()
        .filter(|(_, _, _, at)| matches!(at.target, Target::Known(_)))
        .enumerate()
        .map(|(i, (_, text, entry, at))| {
            let sig: Signature = text.parse().unwrap();
            let plan = classify(&sig, abi, *entry, &limits).unwrap();
            (base + 0x1000 * i as u64, emit_with_unwind(&plan, at).unwind)
        })
        .collect()
}

/// The `.eh_frame` the unwind information is written as reads back, with
/// gimli's reader, as the same frame at every instruction: the CFA rule
/// and where each saved register is.
#[test]
fn eh_frame_reads_back_as_the_recorded_frames() {
    use gimli::{
        BaseAddresses, CfaRule, EhFrame, LittleEndian, Register, RegisterRule, UnwindContext,
        UnwindSection,
    };
    let mut checked = 0;
    for abi in Abi::ALL {
        let pieces = placed_cases(abi, 0x10_0000);
        let section = jitcall_emitters::unwind::eh_frame(pieces.iter().map(|(a, u)| (*a, u)));
        assert_eq!(&section[section.len() - 4..], [0; 4], "the terminator");
        let eh_frame = EhFrame::new(&section, LittleEndian);
        let bases = BaseAddresses::default();
        let mut context = UnwindContext::new();
        let step = match abi.isa() {
            Isa::X86_64 => 1,
            Isa::Aarch64 => 4,
        };
        for (address, unwind) in &pieces {
            for offset in (0..unwind.len()).step_by(step) {
                let row = eh_frame
                    .unwind_info_for_address(
                        &bases,
                        &mut context,
                        address + u64::from(offset),
                        EhFrame::cie_from_offset,
                    )
                    .unwrap_or_else(|e| panic!("{abi} at {address:#x}+{offset:#x}: {e}"));
                let frame = unwind.frame_at(offset);
                assert_eq!(
                    *row.cfa(),
                    CfaRule::RegisterAndOffset {
                        register: Register(frame.cfa()),
                        offset: i64::from(frame.offset())
                    },
                    "{abi} at +{offset:#x}"
                );
                for (register, at) in frame.saved() {
                    assert_eq!(
                        row.register(Register(register)),
                        RegisterRule::Offset(i64::from(at)),
                        "{abi} at +{offset:#x}: register {register}"
                    );
                }
                // Registers restored, or never saved, are in place.
                for register in [reg::RBX, reg::RBP, reg::R12, reg::X19, reg::X20, reg::X29] {
                    if frame.saved_at(register).is_none() {
                        assert!(
                            !matches!(row.register(Register(register)), RegisterRule::Offset(_)),
                            "{abi} at +{offset:#x}: register {register} still read from the stack"
                        );
                    }
                }
                checked += 1;
            }
            // Nothing past the end.
            let past = eh_frame.unwind_info_for_address(
                &bases,
                &mut context,
                address + u64::from(unwind.len()),
                EhFrame::cie_from_offset,
            );
            assert!(
                past.is_err(),
                "{abi}: an FDE covers {:#x}",
                address + u64::from(unwind.len())
            );
        }
    }
    println!("{checked} addresses: the .eh_frame reads back as the recorded frames");
}

/// The `.eh_frame` writer writes what gimli's `write` module writes for
/// the same entries, byte for byte: one CIE per instruction set (version
/// 1, no augmentation, absolute addresses), one FDE per piece.
#[test]
fn eh_frame_is_what_gimli_writes() {
    use gimli::write::{
        Address, CallFrameInstruction, CommonInformationEntry, EhFrame, EndianVec,
        FrameDescriptionEntry, FrameTable,
    };
    use gimli::{Encoding, Format, LittleEndian, Register};
    use jitcall_emitters::unwind::Change;

    let mut compared = 0;
    for abi in Abi::ALL {
        let isa = abi.isa();
        let pieces = placed_cases(abi, 0x7f00_1234_0000);
        let ours = jitcall_emitters::unwind::eh_frame(pieces.iter().map(|(a, u)| (*a, u)));

        let encoding = Encoding {
            format: Format::Dwarf32,
            version: 1,
            address_size: 8,
        };
        let (code_align, ra) = match isa {
            Isa::X86_64 => (1, reg::RIP),
            Isa::Aarch64 => (4, reg::X30),
        };
        let mut cie = CommonInformationEntry::new(encoding, code_align, -8, Register(ra));
        let entry = Frame::entry(isa);
        cie.add_instruction(CallFrameInstruction::Cfa(
            Register(entry.cfa()),
            entry.offset(),
        ));
        if isa == Isa::X86_64 {
            cie.add_instruction(CallFrameInstruction::Offset(Register(reg::RIP), -8));
        }
        let mut table = FrameTable::default();
        let cie = table.add_cie(cie);
        for (address, unwind) in &pieces {
            let mut fde = FrameDescriptionEntry::new(Address::Constant(*address), unwind.len());
            unwind.for_each_change(|at, change| {
                let instruction = match change {
                    Change::Cfa(r, offset) => CallFrameInstruction::Cfa(Register(r), offset),
                    Change::CfaOffset(offset) => CallFrameInstruction::CfaOffset(offset),
                    Change::Offset(r, offset) => CallFrameInstruction::Offset(Register(r), offset),
                    Change::Restore(r) => CallFrameInstruction::Restore(Register(r)),
                };
                fde.add_instruction(at, instruction);
            });
            table.add_fde(cie, fde);
        }
        let mut section = EhFrame(EndianVec::new(LittleEndian));
        table.write_eh_frame(&mut section).unwrap();
        let mut gimlis = section.0.into_vec();
        gimlis.extend_from_slice(&[0; 4]);
        assert!(
            ours == gimlis,
            "{abi}: the sections differ\nours:  {ours:02x?}\ngimli: {gimlis:02x?}"
        );
        compared += pieces.len();
    }
    println!("{compared} frame description entries written as gimli writes them");
}
