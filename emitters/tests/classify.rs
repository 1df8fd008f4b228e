//! Table-driven classification tests for both ABIs.
//!
//! Each row gives a signature, the entry kind, the limits and the expected
//! outcome: either the rule that rejects it, or the location of every
//! argument written as `g<n>` (GP register n), `f<n>` (FP register n) or
//! `s<off>` (stack slot at byte offset off). Receiver rows write
//! `incoming>target` for each argument. A struct argument is one entry
//! per piece, `slot.offset:bytes>target`, and one passed by reference adds
//! `&at>target`, the address of its copy.

use jitcall_emitters::{
    classify, Abi, Entry, Ineligible, Limits, Loc, Plan, Signature, Source, Type,
};

#[derive(Clone, Copy)]
enum L {
    Node,
    Default,
}

enum Want {
    Ok(&'static str),
    Err(Ineligible),
}

use Entry::{Packed as P, Receiver as R};
use Ineligible::*;
use Want::{Err as E, Ok as K};
use L::{Default as D, Node as N};

fn loc(l: Loc) -> String {
    match l {
        Loc::Gp(n) => format!("g{n}"),
        Loc::Fp(n) => format!("f{n}"),
        Loc::Stack(off) => format!("s{off}"),
    }
}

fn render(plan: &Plan) -> String {
    plan.args
        .iter()
        .map(|a| match a.from {
            Source::Slot(_) => loc(a.to),
            Source::Native(from) => format!("{}>{}", loc(from), loc(a.to)),
            // Piece `bytes` at `offset` of the struct in slot `slot`.
            Source::Field {
                slot,
                offset,
                bytes,
            } => format!("{slot}.{offset}:{bytes}>{}", loc(a.to)),
            Source::StackAddress(at) => format!("&{at}>{}", loc(a.to)),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Builds a signature of `n` copies of `ty` returning `ret`.
fn repeat(ty: &str, n: usize, ret: &str) -> String {
    format!("({}) -> {ret}", vec![ty; n].join(", "))
}

fn run(abi: Abi, rows: &[(String, Entry, L, Want)]) {
    assert!(rows.len() >= 40, "{abi}: only {} rows", rows.len());
    let mut failures = Vec::new();
    for (text, entry, limits, want) in rows {
        let sig: Signature = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
        let limits = match limits {
            L::Node => Limits::node(),
            L::Default => Limits::default(),
        };
        let got = classify(&sig, abi, *entry, &limits);
        let ok = match (&got, want) {
            (Ok(plan), Want::Ok(expected)) => render(plan) == *expected,
            (Err(rule), Want::Err(expected)) => rule == expected,
            _ => false,
        };
        if !ok {
            let got = got.map(|p| render(&p));
            failures.push(format!("{abi} {entry} {text}: got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn row(text: impl Into<String>, entry: Entry, limits: L, want: Want) -> (String, Entry, L, Want) {
    (text.into(), entry, limits, want)
}

#[test]
fn sysv64_table() {
    let rows = vec![
        row("() -> void", P, N, K("")),
        row("() -> void", R, N, K("")),
        row("(i32) -> i32", P, N, K("g0")),
        row("(i32) -> i32", R, N, K("g1>g0")),
        row("(f64) -> f64", P, N, K("f0")),
        row("(f64) -> f64", R, N, K("f0>f0")),
        row("(i32, f64, pointer) -> u8", P, N, K("g0 f0 g1")),
        row("(f32, i8, f64, u16) -> void", P, N, K("f0 g0 f1 g1")),
        row("(f32, i8, f64, u16) -> void", R, N, K("f0>f0 g1>g0 f1>f1 g2>g1")),
        // The GP boundary: 6 registers.
        row(repeat("i64", 5, "i64"), P, N, K("g0 g1 g2 g3 g4")),
        row(repeat("i64", 5, "i64"), R, N, K("g1>g0 g2>g1 g3>g2 g4>g3 g5>g4")),
        row(repeat("i64", 6, "i64"), P, N, K("g0 g1 g2 g3 g4 g5")),
        // Node reads the sixth GP argument of a receiver call from the stack.
        row(repeat("i64", 6, "i64"), R, N, K("g1>g0 g2>g1 g3>g2 g4>g3 g5>g4 s0>g5")),
        row(repeat("i64", 7, "i64"), P, N, E(GpPressure { need: 7, have: 6 })),
        row(repeat("i64", 7, "i64"), P, D, K("g0 g1 g2 g3 g4 g5 s0")),
        row(repeat("i64", 6, "i64"), R, D, K("g1>g0 g2>g1 g3>g2 g4>g3 g5>g4 s0>g5")),
        row(
            repeat("i64", 7, "i64"),
            R,
            D,
            K("g1>g0 g2>g1 g3>g2 g4>g3 g5>g4 s0>g5 s8>s0"),
        ),
        row(repeat("pointer", 6, "void"), P, N, K("g0 g1 g2 g3 g4 g5")),
        row(repeat("u8", 6, "u8"), R, N, K("g1>g0 g2>g1 g3>g2 g4>g3 g5>g4 s0>g5")),
        // The FP boundary: 8 registers.
        row(repeat("f64", 8, "f64"), P, N, K("f0 f1 f2 f3 f4 f5 f6 f7")),
        row(repeat("f64", 8, "f64"), R, N, K("f0>f0 f1>f1 f2>f2 f3>f3 f4>f4 f5>f5 f6>f6 f7>f7")),
        row(repeat("f64", 9, "f64"), P, N, E(TooManyArgs { n: 9, max: 8 })),
        row(repeat("f32", 9, "f32"), P, D, K("f0 f1 f2 f3 f4 f5 f6 f7 s0")),
        row(repeat("f32", 9, "f32"), R, D, K("f0>f0 f1>f1 f2>f2 f3>f3 f4>f4 f5>f5 f6>f6 f7>f7 s0>s0")),
        // Stack slots go in argument order, whatever the class.
        row(
            "(i64, i64, i64, i64, i64, i64, f64, f64, f64, f64, f64, f64, f64, f64, f64, i32) -> void",
            P,
            D,
            K("g0 g1 g2 g3 g4 g5 f0 f1 f2 f3 f4 f5 f6 f7 s0 s8"),
        ),
        row(
            "(f64, f64, f64, f64, f64, f64, f64, f64, i8, f32, i8) -> void",
            P,
            D,
            K("f0 f1 f2 f3 f4 f5 f6 f7 g0 s0 g1"),
        ),
        // Argument count.
        row(repeat("i32", 8, "void"), P, D, K("g0 g1 g2 g3 g4 g5 s0 s8")),
        row(repeat("i32", 16, "void"), P, D, K("g0 g1 g2 g3 g4 g5 s0 s8 s16 s24 s32 s40 s48 s56 s64 s72")),
        row(repeat("i32", 17, "void"), P, D, E(TooManyArgs { n: 17, max: 16 })),
        row(repeat("i32", 9, "void"), R, N, E(TooManyArgs { n: 9, max: 8 })),
        // Buffers.
        row("(buffer, u64) -> u64", P, N, K("g0 g1")),
        row("(buffer, u64) -> u64", R, N, K("g1>g0 g2>g1")),
        row("(buffer, f64) -> f64", P, N, E(BufferWithFloat { buffer: 0, float: 1 })),
        row("(f32, i32, buffer) -> void", R, N, E(BufferWithFloat { buffer: 2, float: 0 })),
        row("(buffer, f64) -> f64", P, D, K("g0 f0")),
        row("(buffer, buffer, buffer) -> void", P, N, K("g0 g1 g2")),
        // Buffers cost Node one extra GP register in total.
        row("(buffer, buffer, buffer) -> void", R, N, K("g1>g0 g2>g1 g3>g2")),
        row("(buffer, buffer, i32) -> void", R, N, K("g1>g0 g2>g1 g3>g2")),
        row("(buffer, buffer, buffer, buffer) -> void", P, N, K("g0 g1 g2 g3")),
        row("(buffer, buffer, buffer, buffer, buffer) -> void", P, N, E(GpPressure { need: 6, have: 5 })),
        row("(buffer, buffer, buffer, buffer) -> void", P, D, K("g0 g1 g2 g3")),
        // Mixed types and returns.
        row("(bool, function, pointer) -> bool", P, N, E(FunctionPointer { index: Some(1) })),
        row("(bool, function, pointer) -> bool", P, D, K("g0 g1 g2")),
        row("(i16, u16, i8, u8, u32, i32) -> i16", P, N, K("g0 g1 g2 g3 g4 g5")),
        row("(i16, u16, i8, u8, u32) -> i16", R, N, K("g1>g0 g2>g1 g3>g2 g4>g3 g5>g4")),
        row("(f32, f64, i64) -> function", R, N, E(FunctionPointer { index: None })),
        row("(f32, f64, i64) -> function", R, D, K("f0>f0 f1>f1 g1>g0")),
        // Structs (psABI 3.2.3): an eightbyte with an integer is INTEGER.
        row("({i32, f32}) -> void", P, D, K("0.0:8>g0")),
        row("({f64, i64}, i32) -> void", P, D, K("0.0:8>f0 0.8:8>g0 g1")),
        // Two floats share an SSE eightbyte; a last lone one is 4 bytes.
        row("({f32, f32, f32}) -> void", P, D, K("0.0:8>f0 0.8:4>f1")),
        row("({u8, u16, u8}) -> void", P, D, K("0.0:6>g0")),
        row("({u8, {u8, u8}}, {i64, u8}) -> void", P, D, K("0.0:3>g0 1.0:8>g1 1.8:8>g2")),
        // Over 16 bytes: MEMORY, copied to the stack in 8-byte pieces.
        row("({i64, f64, i32}, f64) -> void", P, D, K("0.0:8>s0 0.8:8>s8 0.16:8>s16 f0")),
        row("({u8, u8, u8, u8, u8, u8, u8, u8, u8, u8, u8, u8, u8, u8, u8, u8, u8}) -> void", P, D, K("0.0:8>s0 0.8:8>s8 0.16:1>s16")),
        // Registers run out for the second eightbyte: the whole struct goes
        // to the stack, and later arguments still take registers.
        row("(i64, i64, i64, i64, i64, {i64, i64}, i64) -> void", P, D, K("g0 g1 g2 g3 g4 5.0:8>s0 5.8:8>s8 g5")),
        row("(f64, f64, f64, f64, f64, f64, f64, {f64, f64}, f64) -> void", P, D, K("f0 f1 f2 f3 f4 f5 f6 7.0:8>s0 7.8:8>s8 f7")),
        // A MEMORY return takes rdi for its address.
        row("(i32, i32) -> {i64, i64, i64}", P, D, K("g1 g2")),
        row("(i32) -> {f32, f32}", P, D, K("g0")),
        // Node has no structs or variadic calls; receiver entries no structs.
        row("({i32, i32}) -> void", P, N, E(Struct { index: Some(0) })),
        row("(i32) -> {i32, i32}", P, N, E(Struct { index: None })),
        row("({i32, i32}) -> void", R, D, E(Struct { index: Some(0) })),
        row("(pointer, ..., i32, f64) -> i32", P, D, K("g0 g1 f0")),
        row("(pointer, ..., i32, f64) -> i32", R, D, K("g1>g0 g2>g1 f0>f0")),
        row("(pointer, ..., i32, f64) -> i32", P, N, E(Variadic)),
    ];
    run(Abi::SysV64, &rows);
}

#[test]
fn aapcs64_table() {
    let rows = vec![
        row("() -> void", P, N, K("")),
        row("() -> void", R, N, K("")),
        row("(i32) -> i32", P, N, K("g0")),
        row("(i32) -> i32", R, N, K("g1>g0")),
        row("(f64) -> f64", P, N, K("f0")),
        row("(f64) -> f64", R, N, K("f0>f0")),
        row("(i32, f64, pointer) -> u8", P, N, K("g0 f0 g1")),
        row("(f32, i8, f64, u16) -> void", R, N, K("f0>f0 g1>g0 f1>f1 g2>g1")),
        // Six and seven GP arguments fit AArch64's eight registers.
        row(repeat("i64", 6, "i64"), P, N, K("g0 g1 g2 g3 g4 g5")),
        row(repeat("i64", 6, "i64"), R, N, K("g1>g0 g2>g1 g3>g2 g4>g3 g5>g4 g6>g5")),
        row(repeat("i64", 7, "i64"), P, N, K("g0 g1 g2 g3 g4 g5 g6")),
        row(repeat("i64", 7, "i64"), R, N, K("g1>g0 g2>g1 g3>g2 g4>g3 g5>g4 g6>g5 g7>g6")),
        // The GP boundary: 8 registers.
        // Node's cap is 7 GP arguments on AArch64, whatever the entry.
        row(repeat("i64", 8, "i64"), P, N, E(GpPressure { need: 8, have: 7 })),
        row(repeat("i64", 8, "i64"), P, D, K("g0 g1 g2 g3 g4 g5 g6 g7")),
        row(repeat("i64", 8, "i64"), R, N, E(GpPressure { need: 8, have: 7 })),
        row(repeat("i64", 8, "i64"), R, D, K("g1>g0 g2>g1 g3>g2 g4>g3 g5>g4 g6>g5 g7>g6 s0>g7")),
        row(repeat("i64", 9, "i64"), P, N, E(TooManyArgs { n: 9, max: 8 })),
        row(repeat("i64", 9, "i64"), P, D, K("g0 g1 g2 g3 g4 g5 g6 g7 s0")),
        row(
            repeat("i64", 9, "i64"),
            R,
            D,
            K("g1>g0 g2>g1 g3>g2 g4>g3 g5>g4 g6>g5 g7>g6 s0>g7 s8>s0"),
        ),
        row(repeat("u16", 7, "u16"), R, N, K("g1>g0 g2>g1 g3>g2 g4>g3 g5>g4 g6>g5 g7>g6")),
        // The FP boundary: 8 registers.
        row(repeat("f64", 8, "f64"), P, N, K("f0 f1 f2 f3 f4 f5 f6 f7")),
        row(repeat("f32", 8, "f32"), R, N, K("f0>f0 f1>f1 f2>f2 f3>f3 f4>f4 f5>f5 f6>f6 f7>f7")),
        row(repeat("f64", 9, "f64"), P, N, E(TooManyArgs { n: 9, max: 8 })),
        row(repeat("f64", 9, "f64"), P, D, K("f0 f1 f2 f3 f4 f5 f6 f7 s0")),
        row(
            "(f64, f64, f64, f64, f64, f64, f64, f64, i32, i32, i32, i32, i32, i32, i32, i32) -> void",
            P,
            D,
            K("f0 f1 f2 f3 f4 f5 f6 f7 g0 g1 g2 g3 g4 g5 g6 g7"),
        ),
        row(
            "(f64, f64, f64, f64, f64, f64, f64, f64, f64, i32, i32, i32, i32, i32, i32, i32) -> void",
            P,
            D,
            K("f0 f1 f2 f3 f4 f5 f6 f7 s0 g0 g1 g2 g3 g4 g5 g6"),
        ),
        row(
            "(i8, i8, i8, i8, i8, i8, i8, i8, f32, i8, f32, i8) -> void",
            P,
            D,
            K("g0 g1 g2 g3 g4 g5 g6 g7 f0 s0 f1 s8"),
        ),
        // Node's GP rule under pressure: 7 user args plus the receiver is 8.
        row(repeat("i32", 7, "void"), R, N, K("g1>g0 g2>g1 g3>g2 g4>g3 g5>g4 g6>g5 g7>g6")),
        row(repeat("i32", 16, "void"), P, D, K("g0 g1 g2 g3 g4 g5 g6 g7 s0 s8 s16 s24 s32 s40 s48 s56")),
        row(repeat("i32", 17, "void"), P, D, E(TooManyArgs { n: 17, max: 16 })),
        row(repeat("i32", 17, "void"), R, D, E(TooManyArgs { n: 17, max: 16 })),
        // Buffers.
        row("(buffer, u64) -> u64", P, N, K("g0 g1")),
        row("(buffer, u64) -> u64", R, N, K("g1>g0 g2>g1")),
        row("(buffer, f32) -> void", R, N, E(BufferWithFloat { buffer: 0, float: 1 })),
        row("(f64, buffer) -> void", P, N, E(BufferWithFloat { buffer: 1, float: 0 })),
        row("(f64, buffer) -> void", P, D, K("f0 g0")),
        row("(buffer, buffer, buffer, buffer) -> void", P, N, K("g0 g1 g2 g3")),
        row("(buffer, buffer, buffer, buffer) -> void", R, N, K("g1>g0 g2>g1 g3>g2 g4>g3")),
        row("(buffer, buffer, buffer, buffer, buffer, buffer) -> void", P, N, K("g0 g1 g2 g3 g4 g5")),
        row("(buffer, buffer, buffer, buffer, buffer, buffer, buffer) -> void", P, N, E(GpPressure { need: 8, have: 7 })),
        row("(buffer, i32, i32, i32) -> void", R, N, K("g1>g0 g2>g1 g3>g2 g4>g3")),
        // Mixed types and returns.
        row("(bool, function, pointer) -> bool", P, N, E(FunctionPointer { index: Some(1) })),
        row("(bool, function, pointer) -> bool", P, D, K("g0 g1 g2")),
        row("(i16, u16, i8, u8, u32, i32, i64, u64) -> i16", P, N, E(GpPressure { need: 8, have: 7 })),
        row("(i16, u16, i8, u8, u32, i32, i64, u64) -> i16", P, D, K("g0 g1 g2 g3 g4 g5 g6 g7")),
        row("(f32, f64, i64) -> function", R, N, E(FunctionPointer { index: None })),
        row("(f32, f64, i64) -> function", R, D, K("f0>f0 f1>f1 g1>g0")),
        row("(pointer, f32, pointer, f64) -> f32", R, D, K("g1>g0 f0>f0 g2>g1 f1>f1")),
        // Structs (AAPCS64 6.8.2): an HFA of 1-4 same floats in v registers.
        row("({f32, f32}) -> void", P, D, K("0.0:4>f0 0.4:4>f1")),
        row("({f64, {f64, f64}}, f32) -> void", P, D, K("0.0:8>f0 0.8:8>f1 0.16:8>f2 f3")),
        // Not enough v registers: the HFA goes to the stack and so does
        // every later float (NSRN = 8).
        row("(f64, f64, f64, f64, f64, f64, {f64, f64, f64}, f64) -> void", P, D, K("f0 f1 f2 f3 f4 f5 6.0:8>s0 6.8:8>s8 6.16:8>s16 s24")),
        // Other structs of at most 16 bytes: one or two x registers.
        row("({i32, f32}) -> void", P, D, K("0.0:8>g0")),
        row("({u8, u16, u8}, {f32, i32, f64}) -> void", P, D, K("0.0:6>g0 1.0:8>g1 1.8:8>g2")),
        row("({f32, f32, f32, f32, f32}) -> void", P, D, K("0.0:8>s0 0.8:8>s8 0.16:4>s16 &0>g0")),
        // Not enough x registers: the struct goes to the stack and so does
        // every later integer (NGRN = 8).
        row("(i64, i64, i64, i64, i64, i64, i64, {i64, i64}, i64) -> void", P, D, K("g0 g1 g2 g3 g4 g5 g6 7.0:8>s0 7.8:8>s8 s16")),
        // Over 16 bytes: copied to the frame above the stack arguments and
        // passed by reference.
        row("({i64, f64, i32}, i32) -> void", P, D, K("g1 0.0:8>s0 0.8:8>s8 0.16:8>s16 &0>g0")),
        row("(i64, i64, i64, i64, i64, i64, i64, i64, {i64, i64, i64}) -> void", P, D, K("g0 g1 g2 g3 g4 g5 g6 g7 8.0:8>s8 8.8:8>s16 8.16:8>s24 &8>s0")),
        // A memory return's address goes in x8, no argument register.
        row("(i32, i32) -> {i64, i64, i64}", P, D, K("g0 g1")),
        row("({i32, i32}) -> void", P, N, E(Struct { index: Some(0) })),
        row("({i32, i32}) -> void", R, D, E(Struct { index: Some(0) })),
        row("(pointer, ..., i32, f64) -> i32", P, D, K("g0 g1 f0")),
        row("(pointer, ..., i32, f64) -> i32", P, N, E(Variadic)),
    ];
    run(Abi::Aapcs64, &rows);
}

#[test]
fn type_rules_apply_to_hand_built_signatures() {
    use jitcall_emitters::Type;
    for abi in Abi::ALL {
        for entry in Entry::ALL {
            let void_arg = Signature::new([Type::I32, Type::Void], Type::Void);
            assert_eq!(
                classify(&void_arg, abi, entry, &Limits::default()),
                Err(UnsupportedType {
                    index: Some(1),
                    ty: Type::Void
                })
            );
            let buffer_ret = Signature::new([], Type::Buffer);
            assert_eq!(
                classify(&buffer_ret, abi, entry, &Limits::default()),
                Err(UnsupportedType {
                    index: None,
                    ty: Type::Buffer
                })
            );
        }
    }
}

#[test]
fn receiver_mode_tail_calls_unless_the_return_is_narrow() {
    for (ret, tail) in [
        ("void", true),
        ("i32", true),
        ("u64", true),
        ("f32", true),
        ("pointer", true),
        ("i8", false),
        ("u8", false),
        ("i16", false),
        ("u16", false),
        ("bool", false),
    ] {
        let sig: Signature = format!("(i32) -> {ret}").parse().unwrap();
        for abi in Abi::ALL {
            let plan = classify(&sig, abi, R, &Limits::default()).unwrap();
            assert_eq!(plan.tail_calls(), tail, "{abi} {sig}");
            let plan = classify(&sig, abi, P, &Limits::default()).unwrap();
            assert!(
                !plan.tail_calls(),
                "{abi} {sig}: the packed entry stores its result"
            );
        }
    }
}

/// The value entry's plan is the packed entry's (same moves, sources and
/// destinations, same stack bytes) but for its entry kind; it refuses a
/// struct return, whatever the limits, and tail-calls exactly when the
/// target takes nothing on the stack.
#[test]
fn value_plans_are_packed_plans_without_struct_returns() {
    let sigs = [
        "() -> void",
        "(i8, u16) -> u8",
        "(f32, f64, i32) -> f64",
        "(buffer, pointer, function) -> pointer",
        "({i32, f32}, {u8, u8, u8}, i8) -> i64",
        "({f32, f32, f32}, {f64, f64}) -> f32",
        "({i64, f64, i32}, f64) -> f64",
        "(i64, i64, i64, i64, i64, i64, i64, {i64, i64}, i32) -> i32",
        "(pointer, ..., i32, f64) -> i32",
        "(i64, i64, i64, i64, i64, i64, i64, i64, i8, f32) -> u16",
        "(i32) -> {i64, f64, i32}",
        "({i32, i32}) -> {f32, f32}",
    ];
    let mut tail_calls = [0; 2];
    for text in sigs {
        let sig: Signature = text.parse().unwrap();
        for abi in Abi::ALL {
            for limits in [Limits::default(), Limits::node()] {
                let value = classify(&sig, abi, Entry::Value, &limits);
                let packed = classify(&sig, abi, P, &limits);
                if sig.ret.as_struct().is_some() {
                    assert_eq!(value, Err(Struct { index: None }), "{abi} {text}");
                    continue;
                }
                let want = packed.map(|plan| Plan {
                    entry: Entry::Value,
                    ..plan
                });
                assert_eq!(value, want, "{abi} {text}");
                if let Ok(plan) = value {
                    assert_eq!(plan.tail_calls(), plan.stack_bytes == 0, "{abi} {text}");
                    tail_calls[usize::from(plan.tail_calls())] += 1;
                }
            }
        }
    }
    // Both paths are exercised.
    assert!(tail_calls.iter().all(|&n| n > 0), "{tail_calls:?}");
}

#[test]
fn stack_bytes_count_target_slots() {
    let sig: Signature = repeat("i64", 9, "void").parse().unwrap();
    let sysv = classify(&sig, Abi::SysV64, P, &Limits::default()).unwrap();
    assert_eq!(sysv.stack_bytes, 24);
    let a64 = classify(&sig, Abi::Aapcs64, P, &Limits::default()).unwrap();
    assert_eq!(a64.stack_bytes, 8);
    let a64r = classify(&sig, Abi::Aapcs64, R, &Limits::default()).unwrap();
    assert_eq!(
        a64r.stack_bytes, 8,
        "the receiver is dropped, so the target gets one slot"
    );
}

#[test]
fn argument_count_is_capped_at_what_the_emitters_take() {
    let limits = Limits {
        max_args: usize::MAX,
        ..Limits::default()
    };
    // Beyond Signature::MAX_ARGS, so built by hand: the parsers stop earlier.
    for abi in Abi::ALL {
        let fits = Signature::new(vec![Type::I8; Limits::EMITTER_MAX_ARGS], Type::Void);
        let plan = classify(&fits, abi, P, &limits).unwrap();
        let at = jitcall_emitters::Placement::at(0x1000, 0x2000);
        assert!(!jitcall_emitters::emit(&plan, &at).is_empty());
        let over = Signature::new(vec![Type::I8; Limits::EMITTER_MAX_ARGS + 1], Type::Void);
        assert_eq!(
            classify(&over, abi, R, &limits),
            Err(TooManyArgs {
                n: Limits::EMITTER_MAX_ARGS + 1,
                max: Limits::EMITTER_MAX_ARGS
            })
        );
    }
}

/// Win64: four argument positions shared by the GP (rcx, rdx, r8, r9) and
/// FP (xmm0-3) registers, the rest on the stack in 8-byte slots above the
/// shadow space (`s0` is [rsp+40] on entry to the target); structs of 1,
/// 2, 4 or 8 bytes as integers, others by reference; variadic floats also
/// in the GP register of their position.
#[test]
fn win64_table() {
    let i64x = |n| vec!["i64"; n].join(", ");
    let rows = vec![
        row("() -> void", P, N, K("")),
        row("() -> void", R, N, K("")),
        row("(i32) -> i32", P, N, K("g0")),
        row("(i32) -> i32", R, N, K("g1>g0")),
        row("(f64) -> f64", P, N, K("f0")),
        // The receiver takes position 0: the first float is in xmm1.
        row("(f64) -> f64", R, N, K("f1>f0")),
        // A position's register of the other class goes unused.
        row("(i32, f64, pointer) -> u8", P, N, K("g0 f1 g2")),
        row("(i32, f64, pointer) -> u8", R, N, K("g1>g0 f2>f1 g3>g2")),
        row("(f32, i8, f64, u16) -> void", P, D, K("f0 g1 f2 g3")),
        row(
            "(f32, i8, f64, u16) -> void",
            R,
            D,
            K("f1>f0 g2>g1 f3>f2 s0>g3"),
        ),
        row(
            "(f64, i64, f64, i64, f64) -> f64",
            P,
            D,
            K("f0 g1 f2 g3 s0"),
        ),
        // Node's Win64 rule: three arguments besides the receiver.
        row(repeat("i64", 3, "i64"), P, N, K("g0 g1 g2")),
        row(repeat("i64", 3, "i64"), R, N, K("g1>g0 g2>g1 g3>g2")),
        row(
            repeat("i64", 4, "i64"),
            P,
            N,
            E(PositionPressure { need: 4, have: 3 }),
        ),
        row(
            repeat("i64", 4, "i64"),
            R,
            N,
            E(PositionPressure { need: 4, have: 3 }),
        ),
        row(
            "(f32, i8, f64, u16) -> void",
            P,
            N,
            E(PositionPressure { need: 4, have: 3 }),
        ),
        row(repeat("f64", 3, "f64"), R, N, K("f1>f0 f2>f1 f3>f2")),
        row("(buffer, u64) -> u64", P, N, K("g0 g1")),
        row(
            "(buffer, u64, u64) -> u64",
            P,
            N,
            E(PositionPressure { need: 4, have: 3 }),
        ),
        row(
            "(buffer, f64) -> f64",
            P,
            N,
            E(BufferWithFloat {
                buffer: 0,
                float: 1,
            }),
        ),
        row(
            "(bool, function, pointer) -> bool",
            P,
            N,
            E(FunctionPointer { index: Some(1) }),
        ),
        row("(bool, function, pointer) -> bool", P, D, K("g0 g1 g2")),
        row(repeat("i8", 9, "i8"), R, N, E(TooManyArgs { n: 9, max: 8 })),
        // The default limits go past the four positions, onto the stack.
        row(repeat("i64", 4, "i64"), P, D, K("g0 g1 g2 g3")),
        row(repeat("i64", 6, "i64"), P, D, K("g0 g1 g2 g3 s0 s8")),
        row(
            repeat("i64", 6, "i64"),
            R,
            D,
            K("g1>g0 g2>g1 g3>g2 s0>g3 s8>s0 s16>s8"),
        ),
        row(repeat("f64", 6, "f64"), P, D, K("f0 f1 f2 f3 s0 s8")),
        row(
            repeat("f32", 5, "f32"),
            R,
            D,
            K("f1>f0 f2>f1 f3>f2 s0>f3 s8>s0"),
        ),
        row(
            "(u8, i16, bool, u32, i64, i8) -> i16",
            P,
            D,
            K("g0 g1 g2 g3 s0 s8"),
        ),
        row(
            repeat("i32", 16, "void"),
            P,
            D,
            K("g0 g1 g2 g3 s0 s8 s16 s24 s32 s40 s48 s56 s64 s72 s80 s88"),
        ),
        row(
            repeat("i32", 17, "void"),
            P,
            D,
            E(TooManyArgs { n: 17, max: 16 }),
        ),
        row("(f32, f64, i64) -> function", R, D, K("f1>f0 f2>f1 g3>g2")),
        // Structs of 1, 2, 4 and 8 bytes travel as integers, floats or not.
        row("({i32, f32}) -> void", P, D, K("0.0:8>g0")),
        row("({f32}) -> void", P, D, K("0.0:4>g0")),
        row("({f64}, f64) -> void", P, D, K("0.0:8>g0 f1")),
        row("({u8, i8}, f64) -> void", P, D, K("0.0:2>g0 f1")),
        row(
            format!("({}, {{i32, i32}}) -> void", i64x(4)),
            P,
            D,
            K("g0 g1 g2 g3 4.0:8>s0"),
        ),
        // Others are copied (16-byte aligned) and passed by reference.
        row("({u8, u8, u8}) -> void", P, D, K("0.0:3>s0 &0>g0")),
        row(
            "({f64, f64}, i32) -> void",
            P,
            D,
            K("g1 0.0:8>s0 0.8:8>s8 &0>g0"),
        ),
        row(
            format!("({}, {{f32, f32, f32}}) -> void", i64x(4)),
            P,
            D,
            K("g0 g1 g2 g3 4.0:8>s16 4.8:4>s24 &16>s0"),
        ),
        // A struct return of 1, 2, 4 or 8 bytes comes back in rax; any
        // other through the hidden pointer in rcx, which shifts the
        // arguments by one position.
        row("(i32, i32) -> {f32, f32}", P, D, K("g0 g1")),
        row("(i32) -> {i64, i64, i64}", P, D, K("g1")),
        row(
            "(i32, i32, i32, i32) -> {u8, u8, u8}",
            P,
            D,
            K("g1 g2 g3 s0"),
        ),
        row("(f64, f64) -> {f64, f64}", P, D, K("f1 f2")),
        row("({i32, i32}) -> void", P, N, E(Struct { index: Some(0) })),
        row("({i32, i32}) -> void", R, D, E(Struct { index: Some(0) })),
        // Variadic: a float argument also in the GP register of its
        // position; past the fourth, one stack slot.
        row("(pointer, ..., i32, f64) -> i32", P, D, K("g0 g1 f2 g2")),
        row(
            "(pointer, ..., f64, f64, f64, f64) -> f64",
            P,
            D,
            K("g0 f1 g1 f2 g2 f3 g3 s0"),
        ),
        row(
            "(pointer, ..., i32, f64) -> i32",
            R,
            D,
            K("g1>g0 g2>g1 f3>f2 f3>g2"),
        ),
        row("(pointer, ..., i32, f64) -> i32", P, N, E(Variadic)),
    ];
    run(Abi::Win64, &rows);
}

/// Apple's arm64 beside AAPCS64: the same registers; stack arguments at
/// their natural size and alignment (a receiver's narrow arguments as
/// 32-bit ones, as its caller passes them); every variadic argument on
/// the stack in an 8-byte slot.
#[test]
fn apple_aarch64_table() {
    let i64x = |n| vec!["i64"; n].join(", ");
    let f64x = |n| vec!["f64"; n].join(", ");
    let f32x = |n| vec!["f32"; n].join(", ");
    let rows = vec![
        row("() -> void", P, N, K("")),
        row("() -> void", R, N, K("")),
        row("(i32) -> i32", P, N, K("g0")),
        row("(i32) -> i32", R, N, K("g1>g0")),
        row("(f64) -> f64", R, N, K("f0>f0")),
        row("(i32, f64, pointer) -> u8", P, N, K("g0 f0 g1")),
        row("(i8, u16, bool) -> i32", P, N, K("g0 g1 g2")),
        row("(i8, u16, bool) -> i32", R, N, K("g1>g0 g2>g1 g3>g2")),
        row(repeat("i64", 8, "i64"), P, D, K("g0 g1 g2 g3 g4 g5 g6 g7")),
        row(
            repeat("i64", 9, "i64"),
            P,
            D,
            K("g0 g1 g2 g3 g4 g5 g6 g7 s0"),
        ),
        // Natural size and alignment on the stack.
        row(
            format!("({}, i8, i16, bool, i32, u8, i64) -> i32", i64x(8)),
            P,
            D,
            K("g0 g1 g2 g3 g4 g5 g6 g7 s0 s2 s4 s8 s12 s16"),
        ),
        row(
            repeat("i8", 10, "void"),
            P,
            D,
            K("g0 g1 g2 g3 g4 g5 g6 g7 s0 s1"),
        ),
        row(
            repeat("u16", 11, "void"),
            P,
            D,
            K("g0 g1 g2 g3 g4 g5 g6 g7 s0 s2 s4"),
        ),
        row(
            format!("({}, i8, i64) -> void", i64x(8)),
            P,
            D,
            K("g0 g1 g2 g3 g4 g5 g6 g7 s0 s8"),
        ),
        row(
            format!("({}, pointer, u8, function) -> void", i64x(8)),
            P,
            D,
            K("g0 g1 g2 g3 g4 g5 g6 g7 s0 s8 s16"),
        ),
        row(
            repeat("f32", 10, "f32"),
            P,
            D,
            K("f0 f1 f2 f3 f4 f5 f6 f7 s0 s4"),
        ),
        row(
            format!("({}, f32, f64, f32) -> f64", f64x(8)),
            P,
            D,
            K("f0 f1 f2 f3 f4 f5 f6 f7 s0 s8 s16"),
        ),
        row(
            format!("({}, f32, f32, f64) -> f64", f64x(8)),
            P,
            D,
            K("f0 f1 f2 f3 f4 f5 f6 f7 s0 s4 s8"),
        ),
        // Integers on the stack while floats still find registers.
        row(
            format!("({}, f64, i8, i16, f64, i32, u8) -> void", i64x(8)),
            P,
            D,
            K("g0 g1 g2 g3 g4 g5 g6 g7 f0 s0 s2 f1 s4 s8"),
        ),
        // A receiver's caller passes narrow integers as 32-bit ones: 4-byte
        // slots coming in, natural sizes going out.
        row(
            format!("({}, i8, i16, bool, i32, u8, i64) -> i64", i64x(7)),
            R,
            D,
            K("g1>g0 g2>g1 g3>g2 g4>g3 g5>g4 g6>g5 g7>g6 s0>g7 s4>s0 s8>s2 s12>s4 s16>s8 s24>s16"),
        ),
        row(
            format!("({}, f32, f64) -> f64", f32x(8)),
            R,
            D,
            K("f0>f0 f1>f1 f2>f2 f3>f3 f4>f4 f5>f5 f6>f6 f7>f7 s0>s0 s8>s8"),
        ),
        row(
            repeat("i64", 7, "i64"),
            R,
            N,
            K("g1>g0 g2>g1 g3>g2 g4>g3 g5>g4 g6>g5 g7>g6"),
        ),
        row(
            repeat("i64", 8, "i64"),
            R,
            N,
            E(GpPressure { need: 8, have: 7 }),
        ),
        row(
            repeat("i32", 9, "i32"),
            R,
            N,
            E(TooManyArgs { n: 9, max: 8 }),
        ),
        row(
            repeat("i32", 17, "void"),
            P,
            D,
            E(TooManyArgs { n: 17, max: 16 }),
        ),
        row(
            "(buffer, f64) -> f64",
            P,
            N,
            E(BufferWithFloat {
                buffer: 0,
                float: 1,
            }),
        ),
        // Structs in registers as on AAPCS64.
        row("({f32, f32}) -> void", P, D, K("0.0:4>f0 0.4:4>f1")),
        row("({i32, f32}) -> void", P, D, K("0.0:8>g0")),
        row(
            "({u8, u16, u8}, {f32, i32, f64}) -> void",
            P,
            D,
            K("0.0:6>g0 1.0:8>g1 1.8:8>g2"),
        ),
        row(
            "({i64, f64, i32}, i32) -> void",
            P,
            D,
            K("g1 0.0:8>s0 0.8:8>s8 0.16:8>s16 &0>g0"),
        ),
        row("(i32) -> {i64, i64, i64}", P, D, K("g0")),
        row("({i32, i32}) -> void", P, N, E(Struct { index: Some(0) })),
        // An HFA past the FP registers: at its members' alignment, its
        // exact size; the floats after it follow on the stack.
        row(
            format!("({}, {{f32}}, {{f32, f32}}, f32) -> f32", f32x(8)),
            P,
            D,
            K("f0 f1 f2 f3 f4 f5 f6 f7 8.0:4>s0 9.0:4>s4 9.4:4>s8 s12"),
        ),
        row(
            format!("({}, {{f64, f64}}, f32) -> void", f64x(7)),
            P,
            D,
            K("f0 f1 f2 f3 f4 f5 f6 7.0:8>s0 7.8:8>s8 s16"),
        ),
        // A non-HFA struct past the GP registers: in 8-byte units.
        row(
            format!("({}, {{i64, i64}}, i8) -> void", i64x(7)),
            P,
            D,
            K("g0 g1 g2 g3 g4 g5 g6 7.0:8>s0 7.8:8>s8 s16"),
        ),
        // Variadic arguments: all on the stack, 8-byte slots.
        row("(i32, ..., f64, i64, i32) -> i32", P, D, K("g0 s0 s8 s16")),
        row("(pointer, ..., i32, f64) -> i32", P, D, K("g0 s0 s8")),
        row("(f64, f64, ..., f64) -> f64", P, D, K("f0 f1 s0")),
        row("(pointer, ..., u64) -> void", P, D, K("g0 s0")),
        row("(i32, ..., {i32, i32}) -> void", P, D, K("g0 1.0:8>s0")),
        row(
            "(i32, ..., {f32, f32, f32}) -> void",
            P,
            D,
            K("g0 1.0:8>s0 1.8:4>s8"),
        ),
        row("(pointer, ..., i32, f64) -> i32", R, D, E(Variadic)),
        row("(pointer, ..., i32, f64) -> i32", P, N, E(Variadic)),
    ];
    run(Abi::AppleAarch64, &rows);
}

/// Node.js's fast-call decision for a signature on one ABI: eligible, or
/// the rule that sends it to libffi.
type Node = Result<(), Ineligible>;

/// `Limits::node()` decides as Node.js's `IsFastCallEligible`
/// (`src/ffi/types.cc`) does on x86_64 System V and AArch64, whatever the
/// entry kind. Each row names the Node behaviour it reproduces; the type
/// names are Node's own (`int32`, `arraybuffer`, `string`, …).
#[test]
fn node_limits_reproduce_node_fast_call_decisions() {
    const OK: Node = Ok(());
    let gp = |need, have| Err(GpPressure { need, have });
    let args = |n: usize, ty: &str| vec![ty; n].join(", ");
    #[rustfmt::skip]
    let rows: Vec<(&str, String, Node, Node)> = vec![
        // (Node behaviour, signature, x86_64 System V, AArch64)
        ("numeric arguments and returns are eligible",
         "(int32, int32) -> int32".into(), OK, OK),
        ("a void return is eligible", "(int32) -> void".into(), OK, OK),
        ("no arguments", "() -> void".into(), OK, OK),
        ("float and double are eligible", "(float, double) -> double".into(), OK, OK),
        ("pointers are eligible", "(pointer) -> pointer".into(), OK, OK),
        ("bool and char are 8-bit integers", "(bool, char, int16) -> uint8".into(), OK, OK),
        ("string is a pointer, not a buffer: no extra register",
         format!("(string, {}) -> int32", args(5, "int32")), OK, OK),
        ("a function argument is ineligible (\"arg is function\")",
         "(function) -> void".into(), Err(FunctionPointer { index: Some(0) }),
         Err(FunctionPointer { index: Some(0) })),
        ("a function return is ineligible (\"return type is function\")",
         "() -> function".into(), Err(FunctionPointer { index: None }),
         Err(FunctionPointer { index: None })),
        ("the function return is checked before the argument count",
         format!("({}) -> function", args(9, "int32")), Err(FunctionPointer { index: None }),
         Err(FunctionPointer { index: None })),
        ("8 arguments, V8's fast-call cap",
         format!("({}, double, double) -> void", args(6, "int32")), OK, OK),
        ("9 arguments exceed V8's cap",
         format!("({}) -> double", args(9, "double")), Err(TooManyArgs { n: 9, max: 8 }),
         Err(TooManyArgs { n: 9, max: 8 })),
        ("8 FP arguments fit v0-v7 / xmm0-7", format!("({}) -> double", args(8, "double")), OK, OK),
        ("6 GP arguments: SysV's cap (the sixth read from the stack)",
         format!("({}) -> int32", args(6, "int32")), OK, OK),
        ("7 GP arguments: over SysV's cap, AArch64's cap",
         format!("({}) -> int32", args(7, "int32")), gp(7, 6), OK),
        ("8 GP arguments: over AArch64's cap of 7",
         format!("({}) -> int32", args(8, "int64")), gp(8, 6), gp(8, 7)),
        ("a buffer adds one GP register: 4 GP + 1 fits SysV's 5",
         "(buffer, int32, int32, int32) -> int32".into(), OK, OK),
        ("5 GP + the buffer's extra exceed SysV's 5",
         "(buffer, int32, int32, int32, int32) -> int32".into(), gp(6, 5), OK),
        ("however many buffers, one extra register in total",
         "(buffer, buffer, buffer, buffer) -> void".into(), OK, OK),
        ("6 GP + the buffer's extra reach AArch64's 7",
         format!("(buffer, {}) -> void", args(5, "int32")), gp(7, 5), OK),
        ("7 GP + the buffer's extra exceed AArch64's 7",
         format!("(arraybuffer, {}) -> void", args(6, "int32")), gp(8, 5), gp(8, 7)),
        ("arraybuffer is a buffer", "(arraybuffer, int32, int32, int32, int32) -> void".into(),
         gp(6, 5), OK),
        ("buffers and floats cannot coexist", "(buffer, float) -> void".into(),
         Err(BufferWithFloat { buffer: 0, float: 1 }), Err(BufferWithFloat { buffer: 0, float: 1 })),
        ("a buffer return is a pointer: eligible", "(int32) -> buffer".into(), OK, OK),
    ];
    assert!(rows.len() >= 20, "{} rows", rows.len());
    let mut failures = Vec::new();
    for (behaviour, text, sysv, a64) in &rows {
        let sig: Signature = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
        for (abi, want) in [(Abi::SysV64, sysv), (Abi::Aapcs64, a64)] {
            for entry in Entry::ALL {
                let got = classify(&sig, abi, entry, &Limits::node()).map(|_| ());
                if got != *want {
                    failures.push(format!(
                        "{abi} {entry} {text} ({behaviour}): got {got:?}, Node decides {want:?}"
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
