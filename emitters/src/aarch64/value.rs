//! The AArch64 AAPCS64 value entry ([`Entry::Value`](crate::Entry::Value)):
//! `unsafe extern "C" fn(args: *const u64) -> u64` (or `-> f64`;
//! [`ValueFn`](crate::ValueFn)), and its shape stub `fn(args, target)`
//! ([`ShapeValueFn`](crate::ShapeValueFn)). It loads the arguments from the
//! packed slots exactly as the packed entry does (`load_arguments`: narrow
//! integers extended to 32 bits, a buffer's `data` with the null check,
//! struct pieces and copies), then leaves the return to the target: when
//! the target takes no stack arguments it branches there with `br`, lr
//! still the caller's, and the target returns straight to the entry's
//! caller; otherwise it calls it from a frame holding the stack arguments
//! and returns what it left in x0 and v0. It never touches the return
//! value: narrow integers come back with their upper bits unspecified, and
//! the caller extends them.
//!
//! # Registers
//!
//! | register    | value entry                                              |
//! |-------------|----------------------------------------------------------|
//! | x0          | `args` on entry (moved to x17); argument 0; the return, as the target left it |
//! | x1          | the target on entry (shape stub); argument 1             |
//! | x2–x7       | arguments 2–7                                            |
//! | v0–v7       | FP arguments; v0 the FP return, as the target left it    |
//! | x16 (ip0)   | the target's address (tail call: from entry to the `br`); scratch for stack arguments, then the target (call) |
//! | x17 (ip1)   | the closed cell (guarded); the `args` slot array         |
//! | x9, x10     | a struct argument's address; a piece's chunk             |
//! | v16         | scratch for FP stack arguments                           |
//! | x29, x30    | frame record, only when it calls                         |
//!
//! Nothing else is written: x18, x19–x28 and d8–d15 keep their values
//! without being saved.
//!
//! # Tail call
//!
//! No stack arguments ([`Plan::tail_calls`]): no frame, sp and x30 as on
//! entry at the `br x16`.
//!
//! ```text
//!   [mov x16, x1]  mov x17, x0 ; <loads from [x17 + 8i]> ; [movz/movk x16, target] ; br x16
//! ```
//!
//! x16 holds the target from before the loads (a shape stub's, copied
//! from x1 before argument 1 takes it) or gets it after them (a known
//! one). The loads write x16 only for stack arguments, struct pieces on
//! the stack and copies' addresses, none of which a tail-calling plan
//! has, so it reaches the `br` intact.
//!
//! # Call
//!
//! With stack arguments the target must find them at its own call-time
//! sp, so the entry builds the packed entry's frame without `ret`:
//!
//! ```text
//!   caller's sp -> +-------------------+  16-byte aligned
//!                  | target            |  x29 + 24  \ shape stub only
//!                  | padding           |  x29 + 16  /
//!                  | saved x30 (lr)    |  x29 + 8
//!                  | saved x29 (fp)    |  x29 + 0   <- x29
//!                  +-------------------+
//!                  | target's stack    |  stack_bytes rounded up to 16,
//!  sp at the call->| arguments         |  argument at [sp + off]
//!                  +-------------------+
//! ```
//!
//! then `blr x16`, `mov sp, x29`, `ldp x29, x30`, `ret`, with x0 and v0 as
//! the target left them.
//!
//! A guarded value entry has the packed entry's check at entry and closed
//! path (see `mod.rs`), except that there is no return slot to zero: a
//! closed call returns 0 in x0 and d0. A shape stub's target is in x1
//! already, where `on_closed` takes it.

use dynasmrt::{dynasm, DynasmApi};

use super::{
    call, load_arguments, load_target, outgoing_bytes, pop_record_and_return, push_record, release,
    reserve, Assembler, CALLEE,
};
use crate::{Plan, Target};

/// No stack arguments: load the registers, the target in x16, and branch
/// to it with sp and x30 as on entry.
pub(super) fn value_tail_call(ops: &mut Assembler, plan: &Plan, target: Target) {
    debug_assert_eq!(plan.stack_bytes, 0, "a tail call leaves no stack arguments");
    if target == Target::Argument {
        asm!(ops ; mov X(CALLEE), x1);
    }
    load_arguments(ops, plan);
    match target {
        Target::Known(target) => load_target(ops, target),
        Target::Argument => {}
        Target::Register => unreachable!("emit refuses a value entry with the target in x16"),
    }
    asm!(ops
        ; br X(CALLEE)
    );
}

/// Stack arguments: call the target from a frame record with them below
/// it, then return what it left in x0 and v0.
pub(super) fn value_call(ops: &mut Assembler, plan: &Plan, target: Target) {
    let outgoing = outgoing_bytes(plan);
    // A target passed as data waits above the frame record, where the
    // packed entry's shape stub keeps it, until the loads are done with
    // x16.
    let shape = target == Target::Argument;
    let record = if shape { 32 } else { 16 };
    push_record(ops, record);
    if shape {
        asm!(ops ; str x1, [x29, #24]);
    }
    reserve(ops, outgoing);
    load_arguments(ops, plan);
    match target {
        Target::Known(target) => call(ops, target),
        Target::Argument => asm!(ops
            ; ldr X(CALLEE), [x29, #24]
            ; blr X(CALLEE)
        ),
        Target::Register => unreachable!("emit refuses a value entry with the target in x16"),
    }
    release(ops, outgoing);
    pop_record_and_return(ops, record);
}

#[cfg(all(test, feature = "disasm"))]
mod tests {
    use crate::emit;
    use crate::{
        classify, emit_bound, Abi, Entry, Guard, Limits, Placement, Plan, Signature, Target,
    };

    const BASE: u64 = 0x10_0000;
    const NEAR: u64 = 0x20_0000;
    const FAR: u64 = 0x7f12_3456_789a;

    /// Every argument type and return class, registers only and stack
    /// arguments of both classes, struct arguments in registers, HFAs, by
    /// reference and on the stack for want of registers, a variadic call
    /// shape.
    const SIGNATURES: &[&str] = &[
        "() -> void",
        "(i32, i32) -> i32",
        "(i8, u8, i16, u16, bool) -> u8",
        "(f32, f64, i32) -> f32",
        "(buffer, pointer, function) -> f64",
        "(u64, u64, u64, u64, u64, u64, u64, u64) -> u64",
        "(f64, f64, f64, f64, f64, f64, f64, f64) -> f64",
        "(i64, i64, i64, i64, i64, i64, i64, i64, i8, f32) -> u16",
        "(f64, f64, f64, f64, f64, f64, f64, f64, f64, f32, u16) -> i16",
        "(buffer, buffer, buffer, buffer, buffer, buffer, buffer, buffer, buffer) -> void",
        "({i32, f32}, {u8, u8, u8}, i8) -> i64",
        "({f32, f32, f32}, {f64, f64}) -> f64",
        "({i64, f64, i32}, f64) -> f64",
        "(i64, i64, i64, i64, i64, i64, i64, {i64, i64}, i32) -> i32",
        "(pointer, ..., i32, f64) -> i32",
    ];

    fn plan(sig: &str, entry: Entry) -> Plan {
        let sig: Signature = sig.parse().unwrap();
        classify(&sig, Abi::Aapcs64, entry, &Limits::default()).unwrap()
    }

    fn listing(plan: &Plan, at: &Placement) -> Vec<String> {
        crate::disasm::instructions(Abi::Aapcs64, &emit(plan, at), at.base)
    }

    fn tokens(insn: &str) -> impl Iterator<Item = &str> {
        insn.split(|c: char| !c.is_ascii_alphanumeric())
    }

    fn immediate(insn: &str) -> u64 {
        let imm = insn
            .rsplit('#')
            .next()
            .unwrap()
            .trim_end_matches(['!', ']']);
        let imm = imm.trim_start_matches('-');
        match imm.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16).unwrap(),
            None => imm.parse().unwrap(),
        }
    }

    const GUARDS: [Guard; 2] = [
        Guard {
            cell: 0x30_0000,
            on_closed: 0x40_0000,
        },
        Guard {
            cell: 0x7f00_1234_5678,
            on_closed: 0x7f12_0000_1111,
        },
    ];

    /// Near, far and the shape stub, without a guard, then each with one.
    fn placements() -> Vec<Placement> {
        let plain = [
            Placement::at(BASE, NEAR),
            Placement::at(BASE, FAR),
            Placement::shape(),
        ];
        let mut all = plain.to_vec();
        for at in plain {
            for guard in GUARDS {
                all.push(Placement {
                    guard: Some(guard),
                    ..at
                });
            }
        }
        all
    }

    fn every_listing() -> Vec<(String, Plan, Placement, Vec<String>)> {
        let mut all = Vec::new();
        for sig in SIGNATURES {
            let plan = plan(sig, Entry::Value);
            for at in placements() {
                let name = format!("{sig} at {:?} guard {:?}", at.target, at.guard);
                all.push((name, plan.clone(), at, listing(&plan, &at)));
            }
        }
        all
    }

    /// The main path: up to the first `br` or `ret` (a guard's closed
    /// path follows it).
    fn main_path(code: &[String]) -> &[String] {
        let end = code
            .iter()
            .position(|l| l == "br x16" || l == "ret")
            .unwrap();
        &code[..=end]
    }

    #[test]
    fn a_tail_call_has_no_frame_and_branches_with_lr_and_sp_as_on_entry() {
        for (name, plan, _, code) in every_listing() {
            assert_eq!(plan.tail_calls(), plan.stack_bytes == 0, "{name}");
            if !plan.tail_calls() {
                continue;
            }
            let path = main_path(&code);
            assert_eq!(path.last().unwrap(), "br x16", "{name}: {code:#?}");
            for insn in path {
                assert!(
                    !tokens(insn).any(|t| ["sp", "x29", "x30", "w30"].contains(&t)),
                    "{name}: {insn}"
                );
                assert!(!insn.starts_with("bl"), "{name}: {insn}");
            }
        }
    }

    #[test]
    fn the_target_in_x16_survives_the_loads() {
        for (name, plan, at, code) in every_listing() {
            if !plan.tail_calls() {
                continue;
            }
            let path = main_path(&code);
            // After the closed check, which reads the cell through w16.
            let start = path
                .iter()
                .rposition(|l| l.starts_with("cbnz"))
                .map_or(0, |i| i + 1);
            let path = &path[start..];
            let writes_x16 = |l: &String| l.starts_with("mov x16") || l.starts_with("movk x16");
            let n = path.len();
            match at.target {
                // Copied from x1 before argument 1 takes it.
                Target::Argument => {
                    assert_eq!(path[0], "mov x16, x1", "{name}: {code:#?}");
                    for insn in &path[1..n - 1] {
                        assert!(
                            !tokens(insn).any(|t| t == "x16" || t == "w16"),
                            "{name}: {insn}"
                        );
                    }
                }
                // Built right before the branch, after every load.
                _ => {
                    let build = path.iter().position(writes_x16).unwrap();
                    assert!(
                        path[build..n - 1].iter().all(writes_x16),
                        "{name}: {code:#?}"
                    );
                    for insn in &path[..build] {
                        assert!(
                            !tokens(insn).any(|t| t == "x16" || t == "w16"),
                            "{name}: {insn}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn a_call_has_a_balanced_frame_and_an_aligned_sp() {
        for (name, plan, at, code) in every_listing() {
            for insn in &code {
                let moves_sp = insn.starts_with("sub sp, sp, ")
                    || insn.starts_with("add sp, sp, ")
                    || insn.ends_with("]!") && insn.contains("[sp,")
                    || insn.contains("[sp], ");
                if moves_sp {
                    assert_eq!(immediate(insn) % 16, 0, "{name}: {insn}");
                }
            }
            if plan.tail_calls() {
                continue;
            }
            let path = main_path(&code);
            let start = path
                .iter()
                .rposition(|l| l.starts_with("cbnz"))
                .map_or(0, |i| i + 1);
            let path = &path[start..];
            let n = path.len();
            let record = if at.target == Target::Argument {
                0x20
            } else {
                0x10
            };
            assert_eq!(
                path[0],
                format!("stp x29, x30, [sp, #-{record:#x}]!"),
                "{name}"
            );
            assert_eq!(path[1], "mov x29, sp", "{name}: {code:#?}");
            let reserved = path.iter().find(|l| l.starts_with("sub sp, sp, ")).unwrap();
            let reserved = immediate(reserved);
            assert!(reserved >= u64::from(plan.stack_bytes), "{name}");
            assert!(reserved < u64::from(plan.stack_bytes) + 16, "{name}");
            assert_eq!(path.iter().filter(|l| *l == "blr x16").count(), 1, "{name}");
            assert_eq!(
                path[n - 3..],
                [
                    "mov sp, x29".to_string(),
                    format!("ldp x29, x30, [sp], #{record:#x}"),
                    "ret".to_string()
                ],
                "{name}: {code:#?}"
            );
            // The return goes back untouched: nothing between the call and
            // the epilogue.
            assert_eq!(path[n - 4], "blr x16", "{name}: {code:#?}");
            if at.target == Target::Argument {
                assert_eq!(path[2], "str x1, [x29, #0x18]", "{name}: {code:#?}");
                assert_eq!(path[n - 5], "ldr x16, [x29, #0x18]", "{name}: {code:#?}");
            }
        }
    }

    #[test]
    fn callee_saved_and_platform_registers_are_never_touched() {
        let forbidden: Vec<String> = (18..=28)
            .flat_map(|n| [format!("x{n}"), format!("w{n}")])
            .chain((8..=15).flat_map(|n| ["d", "s", "v", "q", "h", "b"].map(|p| format!("{p}{n}"))))
            .collect();
        for (name, _, _, code) in every_listing() {
            for insn in &code {
                for token in tokens(insn) {
                    assert!(!forbidden.iter().any(|f| f == token), "{name}: {insn}");
                }
                // x29 and x30 only in a frame record's save and restore.
                if tokens(insn).any(|t| t == "x29" || t == "x30") {
                    let frame = insn.starts_with("stp x29, x30")
                        || insn.starts_with("ldp x29, x30")
                        || insn == "mov x29, sp"
                        || insn == "mov sp, x29"
                        || insn.contains("[x29, #0x18]");
                    assert!(frame, "{name}: {insn}");
                }
            }
        }
    }

    #[test]
    fn narrow_loads_read_only_the_declared_width_and_the_return_stays_raw() {
        for (ty, load) in [
            ("i8", "ldrsb w0, [x17]"),
            ("u8", "ldrb w0, [x17]"),
            ("bool", "ldrb w0, [x17]"),
            ("i16", "ldrsh w0, [x17]"),
            ("u16", "ldrh w0, [x17]"),
            ("i32", "ldr w0, [x17]"),
            ("u32", "ldr w0, [x17]"),
            ("i64", "ldr x0, [x17]"),
            ("pointer", "ldr x0, [x17]"),
            ("f32", "ldr s0, [x17]"),
            ("f64", "ldr d0, [x17]"),
        ] {
            let ret = if ty.starts_with('f') { "f32" } else { ty };
            let code = listing(
                &plan(&format!("({ty}) -> {ret}"), Entry::Value),
                &Placement::at(BASE, NEAR),
            );
            assert_eq!(
                code,
                ["mov x17, x0", load, "mov x16, #0x200000", "br x16"],
                "{ty}"
            );
        }
    }

    #[test]
    fn the_loads_are_the_packed_entrys() {
        // From `mov x17, x0` to the target's address (or the branch, the
        // address in x16 already): the same code.
        let loads = |code: Vec<String>| -> Vec<String> {
            let Some(start) = code.iter().position(|l| l == "mov x17, x0") else {
                return Vec::new();
            };
            let end = start
                + code[start..]
                    .iter()
                    .position(|l| {
                        l.starts_with("mov x16, #")
                            || l.starts_with("ldr x16, [x29")
                            || l == "br x16"
                    })
                    .unwrap();
            code[start..end].to_vec()
        };
        for sig in SIGNATURES {
            for at in [Placement::at(BASE, NEAR), Placement::shape()] {
                let value = loads(listing(&plan(sig, Entry::Value), &at));
                let packed = loads(listing(&plan(sig, Entry::Packed), &at));
                assert_eq!(value, packed, "{sig}");
                assert_eq!(value.is_empty(), *sig == "() -> void", "{sig}");
            }
        }
    }

    #[test]
    fn a_closed_call_returns_zero_with_no_slot_to_zero() {
        for (name, _, at, code) in every_listing() {
            if at.guard.is_none() {
                continue;
            }
            let start = main_path(&code).len();
            let tail = &code[start..];
            assert_eq!(
                tail[..3],
                ["stp x29, x30, [sp, #-0x10]!", "mov x29, sp", "mov x0, x17"],
                "{name}: {code:#?}"
            );
            // A shape stub's target is in x1 already.
            let sets_x1 = tail
                .iter()
                .any(|l| l.starts_with("mov x1,") || l.starts_with("movk x1,"));
            assert_eq!(sets_x1, at.target != Target::Argument, "{name}: {code:#?}");
            let n = tail.len();
            assert_eq!(
                tail[n - 4..],
                [
                    "ldp x29, x30, [sp], #0x10",
                    "mov x0, xzr",
                    "fmov d0, xzr",
                    "ret"
                ],
                "{name}: {code:#?}"
            );
            assert!(
                !code.iter().any(|l| l.contains("xzr, [")),
                "{name}: {code:#?}"
            );
        }
    }

    #[test]
    fn every_value_entry_fits_its_bound() {
        for (name, plan, at, _) in every_listing() {
            if let Target::Known(_) = at.target {
                let len = emit(&plan, &at).len();
                let bound = emit_bound(&plan, at.guard.is_some());
                assert!(len <= bound, "{name}: {len} bytes, bound {bound}");
            }
        }
    }

    #[test]
    #[should_panic(expected = "not in x16")]
    fn a_value_entry_refuses_its_target_in_x16() {
        emit(&plan("(i32) -> i32", Entry::Value), &Placement::register());
    }
}
