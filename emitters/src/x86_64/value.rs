//! The x86_64 System V value entry ([`Entry::Value`](crate::Entry::Value)):
//! `unsafe extern "C" fn(args: *const u64) -> u64` (or `-> f64`;
//! [`ValueFn`](crate::ValueFn)), and its shape stub `fn(args, target)`
//! ([`ShapeValueFn`](crate::ShapeValueFn)). It loads the arguments from the
//! packed slots exactly as the packed entry does (`load_arguments`: narrow
//! integers extended to 32 bits, a buffer's `data` with the null check,
//! struct pieces, `al`), then leaves the return to the target: when the
//! target takes no stack arguments it jumps there, and the target returns
//! straight to the entry's caller; otherwise it calls it from a frame
//! holding the stack arguments and returns what it left in rax and xmm0.
//! It never touches the return value: narrow integers come back with
//! their upper bits unspecified, and the caller extends them.
//!
//! Registers:
//!
//! | register            | value entry                                          |
//! |---------------------|------------------------------------------------------|
//! | rdi                 | `args` on entry, then GP arg 0                       |
//! | rsi                 | the target on entry (shape stub), then GP arg 1      |
//! | rdx rcx r8 r9       | GP args 2–5                                          |
//! | xmm0–xmm7           | FP args 0–7; xmm0 the return, as the target left it  |
//! | r10                 | `args` while loading                                 |
//! | rax                 | scratch for stack args and struct pieces; `al` = vector registers used at the branch; the return, as the target left it |
//! | r11                 | the closed cell (guarded); a struct argument's address while its pieces load; a known target out of rel32 reach; a shape stub's target (see below) |
//!
//! Nothing else is written: rbx, rbp, r12–r15 keep their values without
//! being saved, and the red zone is never used.
//!
//! Tail call (no stack arguments, [`Plan::tail_calls`]): no frame, rsp is
//! as on entry at the `jmp`, so the target finds the caller's return
//! address on top and returns to the caller:
//!
//! ```text
//!   mov r10, rdi ; <loads from [r10 + 8i]> ; <al> ; jmp target   (rel32, or movabs r11 + jmp r11)
//! ```
//!
//! A shape stub (`Target::Argument`) gets its target in rsi, which the
//! loads may take for GP argument 1. It copies it to r11 first and jumps
//! through r11, unless a struct argument's pieces need r11 for the
//! struct's address: then it pushes rsi before the loads and pops it into
//! r11 after them (the loads address no stack in a tail-calling plan, and
//! nothing is called in between, so the 8 bytes below the caller's rsp
//! are the stub's own while they hold it; rsp is back as on entry at the
//! `jmp r11`).
//!
//! Call (the target takes stack arguments, scalars or struct pieces): a
//! frame of `F + 8` bytes, `F` = the stack arguments rounded up to 16:
//!
//! ```text
//!           +------------------+
//!           | return address   |  rsp+F+8   rsp % 16 == 8 on entry
//!           +------------------+
//!           | padding / target |  rsp+F     a shape stub's target
//!           | …                |
//!           | stack arg n      |
//!           | …                |
//!   rsp ->  | stack arg 0      |  rsp       16-byte aligned at the call
//!           +------------------+
//! ```
//!
//! then `call`, `add rsp, F + 8`, `ret`, rax and xmm0 as the target left
//! them.
//!
//! A guarded value entry has the packed entry's check at entry and closed
//! path (see `mod.rs`), except that there is no return slot to zero: a
//! closed call returns 0 in rax and xmm0. A shape stub's target is in rsi
//! already, where `on_closed` takes it.

use dynasmrt::{dynasm, DynasmApi};

use super::{align16, below_return, branch, load_arguments, set_vector_count, Branch, Ops};
use crate::{Plan, Source, Target};

/// The value entry, its target known or passed as data in rsi.
pub(super) fn emit_value_entry(ops: &mut Ops, plan: &Plan, base: u64, target: Target) {
    if plan.tail_calls() {
        tail_call(ops, plan, base, target);
    } else {
        call(ops, plan, base, target);
    }
}

/// Where a tail-calling shape stub keeps its target while the loads take
/// rsi.
#[derive(Clone, Copy, PartialEq)]
enum Parked {
    /// In r11, which no load writes when no struct argument has pieces.
    R11,
    /// On the stack, pushed at entry and popped into r11 after the loads:
    /// struct pieces load through r11.
    Stack,
}

/// No stack arguments: load the registers and jump to the target with rsp
/// as on entry.
fn tail_call(ops: &mut Ops, plan: &Plan, base: u64, target: Target) {
    debug_assert_eq!(plan.stack_bytes, 0, "a tail call leaves no stack arguments");
    // A shape stub's target: the second argument (rsi; rdx on Win64).
    let shape_target = plan.abi.spec().gp_args[1];
    // The loads go from memory to registers only: a tail-calling plan has
    // no stack destinations and no struct copies. Each reads the slot
    // array (through r10, copied from the first argument register before
    // that is loaded), a struct's bytes (through r11, loaded just before)
    // or a buffer view (through its own destination), none of which a
    // later load writes, so moving in order never overwrites a pending
    // source. None of them addresses the stack.
    let parked = match target {
        Target::Argument => {
            let pieces = plan
                .args
                .iter()
                .any(|arg| matches!(arg.from, Source::Field { .. }));
            if pieces {
                dynasm!(ops ; .arch x64 ; push Rq(shape_target));
                ops.frame(below_return(8));
                Some(Parked::Stack)
            } else {
                dynasm!(ops ; .arch x64 ; mov r11, Rq(shape_target));
                Some(Parked::R11)
            }
        }
        Target::Known(_) => None,
        Target::Register => unreachable!("emit refuses a value entry with the target in r11"),
    };
    load_arguments(ops, plan);
    if parked == Some(Parked::Stack) {
        dynasm!(ops ; .arch x64 ; pop r11);
        ops.entry_frame();
    }
    // After every load (they use rax as scratch), right before the jump.
    set_vector_count(ops, plan);
    match target {
        Target::Known(target) => branch(ops, base, target, Branch::Jump),
        Target::Argument => dynasm!(ops ; .arch x64 ; jmp r11),
        Target::Register => unreachable!("emit refuses a value entry with the target in r11"),
    }
}

/// Stack arguments: call the target from a frame that holds them (above
/// the shadow space, on Win64), then return what it left in rax and xmm0.
fn call(ops: &mut Ops, plan: &Plan, base: u64, target: Target) {
    let spec = plan.abi.spec();
    // rsp % 16 == 8 on entry: F (a multiple of 16) + 8 aligns it at the
    // call. The 8 bytes at rsp+F lie above every stack argument (they end
    // at rsp+shadow+stack_bytes <= rsp+F) and hold a shape stub's target.
    // The loads read the slot array and struct bytes, the caller's memory
    // above the entry's rsp, and write registers and this frame below it,
    // so no load reads what another wrote.
    let top = align16(spec.shadow_bytes + plan.stack_bytes);
    let frame = top + 8;
    dynasm!(ops ; .arch x64 ; sub rsp, frame);
    ops.frame(below_return(frame));
    if target == Target::Argument {
        let shape_target = spec.gp_args[1];
        dynasm!(ops ; .arch x64 ; mov QWORD [rsp + top], Rq(shape_target));
    }
    load_arguments(ops, plan);
    set_vector_count(ops, plan);
    match target {
        Target::Known(target) => branch(ops, base, target, Branch::Call),
        Target::Argument => dynasm!(ops ; .arch x64 ; call QWORD [rsp + top]),
        Target::Register => unreachable!("emit refuses a value entry with the target in r11"),
    }
    dynasm!(ops ; .arch x64 ; add rsp, frame);
    ops.entry_frame();
    dynasm!(ops ; .arch x64 ; ret);
}

#[cfg(all(test, feature = "disasm"))]
mod tests {
    use crate::emit;
    use crate::{
        classify, emit_bound, Abi, Entry, Guard, Limits, Loc, Placement, Plan, Signature, Target,
    };

    const BASE: u64 = 0x10_0000;
    const NEAR: u64 = 0x20_0000;
    const FAR: u64 = 0x7f12_3456_789a;

    /// Every argument type and return class, registers only and stack
    /// arguments of both classes, struct arguments in registers, in memory
    /// and on the stack for want of registers, a variadic call shape.
    const SIGNATURES: &[&str] = &[
        "() -> void",
        "(i32, i32) -> i32",
        "(i8, u8, i16, u16, bool) -> u8",
        "(f32, f64, i32) -> f32",
        "(buffer, pointer, function) -> f64",
        "(u64, u64, u64, u64, u64, u64) -> u64",
        "(f64, f64, f64, f64, f64, f64, f64, f64) -> f64",
        "(i64, i64, i64, i64, i64, i64, i64, i64, i8, f32) -> u16",
        "(f64, f64, f64, f64, f64, f64, f64, f64, f64, f32, u16) -> i16",
        "(buffer, buffer, buffer, buffer, buffer, buffer, buffer) -> void",
        "({i32, f32}, {u8, u8, u8}, i8) -> i64",
        "({f32, f32, f32}, {f64, f64}) -> f64",
        "({i64, f64, i32}, f64) -> f64",
        "(i64, i64, i64, i64, i64, i64, i64, {i64, i64}, i32) -> i32",
        "(pointer, ..., i32, f64) -> i32",
    ];

    fn plan(sig: &str, entry: Entry) -> Plan {
        let sig: Signature = sig.parse().unwrap();
        classify(&sig, Abi::SysV64, entry, &Limits::default()).unwrap()
    }

    /// The instructions, their operands' spacing normalised.
    fn listing(plan: &Plan, at: &Placement) -> Vec<String> {
        let code = emit(plan, at);
        crate::disasm::instructions(Abi::SysV64, &code, at.base)
            .iter()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect()
    }

    const GUARD: Guard = Guard {
        cell: 0x30_0000,
        on_closed: 0x40_0000,
    };
    const FAR_GUARD: Guard = Guard {
        cell: 0x7f00_1234_5678,
        on_closed: 0x7f12_0000_1111,
    };

    /// Every placement: near, far, the shape stub, each with no guard and
    /// with a guard near and far.
    fn placements() -> Vec<Placement> {
        let plain = [
            Placement::at(BASE, NEAR),
            Placement::at(BASE, FAR),
            Placement::shape(),
        ];
        let mut all = plain.to_vec();
        for at in plain {
            for guard in [GUARD, FAR_GUARD] {
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

    fn immediate(insn: &str) -> i64 {
        let imm = insn.split('$').nth(1).unwrap().split(',').next().unwrap();
        match imm.strip_prefix("0x") {
            Some(hex) => i64::from_str_radix(hex, 16).unwrap(),
            None => imm.parse().unwrap(),
        }
    }

    /// Whether `insn` sets `al` for the branch: `xor %eax,%eax` or
    /// `mov $n,%eax`.
    fn sets_al(insn: &str) -> bool {
        insn == "xor %eax,%eax" || insn.starts_with("mov $") && insn.ends_with(",%eax")
    }

    #[test]
    fn the_stack_is_as_on_entry_at_the_jump_and_aligned_at_every_call() {
        // `depth`: bytes below rsp on entry, where rsp % 16 == 8. Each
        // `jmp` or `ret` ends a path; the closed path after them starts
        // from entry's rsp again.
        for (name, plan, _, code) in every_listing() {
            let mut depth = 0i64;
            let (mut calls, mut jumps) = (0, 0);
            for insn in &code {
                let op = insn.split(' ').next().unwrap();
                match op {
                    "push" => depth += 8,
                    "pop" => depth -= 8,
                    "sub" if insn.ends_with(",%rsp") => depth += immediate(insn),
                    "add" if insn.ends_with(",%rsp") => depth -= immediate(insn),
                    "call" | "callq" => {
                        assert_eq!((8 + depth) % 16, 0, "{name}: {insn}\n{code:#?}");
                        calls += 1;
                    }
                    "jmp" | "ret" => {
                        assert_eq!(depth, 0, "{name}: {insn}\n{code:#?}");
                        jumps += usize::from(op == "jmp");
                        depth = 0;
                    }
                    _ => {}
                }
                // Nothing below rsp: no red zone.
                assert!(
                    !insn.contains("-0x") || !insn.contains("(%rsp)"),
                    "{name}: {insn}"
                );
            }
            // The main path: one jump and no call when it tail-calls, one
            // call otherwise; a guard adds one call to on_closed.
            let guarded = usize::from(code.iter().any(|l| l.starts_with("jne ")));
            if plan.tail_calls() {
                assert_eq!((jumps, calls), (1, guarded), "{name}: {code:#?}");
            } else {
                assert_eq!((jumps, calls), (0, 1 + guarded), "{name}: {code:#?}");
            }
        }
    }

    #[test]
    fn a_tail_call_jumps_last_and_only_when_nothing_goes_on_the_stack() {
        for sig in SIGNATURES {
            let plan = plan(sig, Entry::Value);
            assert_eq!(plan.tail_calls(), plan.stack_bytes == 0, "{sig}");
            for at in [Placement::at(BASE, NEAR), Placement::shape()] {
                let code = listing(&plan, &at);
                let last = code.last().unwrap();
                if plan.tail_calls() {
                    assert!(last.starts_with("jmp "), "{sig}: {code:#?}");
                } else {
                    assert_eq!(last, "ret", "{sig}: {code:#?}");
                }
            }
        }
    }

    #[test]
    fn callee_saved_registers_are_never_touched() {
        let mut forbidden: Vec<String> =
            ["rbx", "ebx", "bx", "bl", "bh", "rbp", "ebp", "bp", "bpl"]
                .iter()
                .map(|r| r.to_string())
                .collect();
        for n in 12..=15 {
            for suffix in ["", "d", "w", "b"] {
                forbidden.push(format!("r{n}{suffix}"));
            }
        }
        for (name, _, _, code) in every_listing() {
            for insn in &code {
                for token in insn.split(|c: char| !c.is_ascii_alphanumeric()) {
                    assert!(!forbidden.iter().any(|f| f == token), "{name}: {insn}");
                }
            }
        }
    }

    #[test]
    fn narrow_loads_read_only_the_declared_width_and_the_return_stays_raw() {
        for (ty, load) in [
            ("i8", "movsbl (%r10),%edi"),
            ("u8", "movzbl (%r10),%edi"),
            ("bool", "movzbl (%r10),%edi"),
            ("i16", "movswl (%r10),%edi"),
            ("u16", "movzwl (%r10),%edi"),
            ("i32", "mov (%r10),%edi"),
            ("u32", "mov (%r10),%edi"),
            ("i64", "mov (%r10),%rdi"),
            ("pointer", "mov (%r10),%rdi"),
            ("f32", "movss (%r10),%xmm0"),
            ("f64", "movsd (%r10),%xmm0"),
        ] {
            // The return as narrow as the argument: nothing extends it.
            let ret = if ty.starts_with('f') { "f32" } else { ty };
            let code = listing(
                &plan(&format!("({ty}) -> {ret}"), Entry::Value),
                &Placement::at(BASE, NEAR),
            );
            assert_eq!(code.len(), 4, "{ty}: {code:#?}");
            assert_eq!(code[1], load, "{ty}: {code:#?}");
            assert!(code[3].starts_with("jmp "), "{ty}: {code:#?}");
        }
        // Called from a frame, the return comes back as left too.
        let sig = "(i64, i64, i64, i64, i64, i64, i64, i8) -> i8";
        let code = listing(&plan(sig, Entry::Value), &Placement::at(BASE, NEAR));
        let n = code.len();
        assert!(code[n - 3].starts_with("call "), "{code:#?}");
        assert!(code[n - 2].starts_with("add $"), "{code:#?}");
        assert_eq!(code[n - 1], "ret", "{code:#?}");
    }

    #[test]
    fn al_holds_the_vector_registers_used_at_the_branch() {
        for (name, plan, _, code) in every_listing() {
            let count = plan
                .args
                .iter()
                .filter(|a| matches!(a.to, Loc::Fp(_)))
                .count();
            let want = match count {
                0 => "xor %eax,%eax".to_string(),
                n => format!("mov ${n},%eax"),
            };
            // The branch to the target: the main path's last jmp or call.
            let end = code
                .iter()
                .position(|l| l.starts_with("jmp ") || l == "ret")
                .unwrap();
            let branch = if plan.tail_calls() {
                end
            } else {
                code[..end]
                    .iter()
                    .rposition(|l| l.starts_with("call"))
                    .unwrap()
            };
            // Only the far target's address and a parked target come
            // between `al` and the branch, neither writing rax.
            let set = code[..branch]
                .iter()
                .rposition(|l| {
                    !(l.starts_with("movabs") && l.ends_with(",%r11")) && l != "pop %r11"
                })
                .unwrap();
            assert_eq!(code[set], want, "{name}: {code:#?}");
            assert!(sets_al(&code[set]));
        }
    }

    #[test]
    fn the_loads_are_the_packed_entrys() {
        // The bytes from `mov %rdi,%r10` to `al`: the same code (a buffer's
        // `je` is relative, so it does not depend on where the loads start).
        let loads = |plan: &Plan| -> Vec<String> {
            let code = emit(plan, &Placement::at(BASE, NEAR));
            let lines: Vec<(String, String)> = crate::disasm::disassemble(Abi::SysV64, &code, BASE)
                .iter()
                .map(|line| {
                    let (_, rest) = line.split_once(": ").unwrap();
                    let (bytes, insn) = rest.trim_start().split_once(' ').unwrap();
                    let insn = insn.split_whitespace().collect::<Vec<_>>().join(" ");
                    (bytes.to_string(), insn)
                })
                .collect();
            let start = lines
                .iter()
                .position(|(_, l)| l == "mov %rdi,%r10")
                .unwrap();
            let end = start + lines[start..].iter().position(|(_, l)| sets_al(l)).unwrap();
            lines[start..end].iter().map(|(b, _)| b.clone()).collect()
        };
        for sig in SIGNATURES {
            let value = loads(&plan(sig, Entry::Value));
            assert_eq!(value, loads(&plan(sig, Entry::Packed)), "{sig}");
            assert!(value.len() > usize::from(*sig != "() -> void"), "{sig}");
        }
    }

    #[test]
    fn a_shape_stubs_target_survives_the_loads() {
        for sig in SIGNATURES {
            let plan = plan(sig, Entry::Value);
            if !plan.tail_calls() {
                continue;
            }
            let code = listing(&plan, &Placement::shape());
            assert_eq!(code.last().unwrap(), "jmp *%r11", "{sig}: {code:#?}");
            let n = code.len();
            match code[0].as_str() {
                // r11 untouched until the jump.
                "mov %rsi,%r11" => {
                    for insn in &code[1..n - 1] {
                        let mut tokens = insn.split(|c: char| !c.is_ascii_alphanumeric());
                        assert!(!tokens.any(|t| t.starts_with("r11")), "{sig}: {insn}");
                    }
                }
                // Struct pieces take r11: the target waits on the stack.
                "push %rsi" => assert_eq!(code[n - 3], "pop %r11", "{sig}: {code:#?}"),
                other => panic!("{sig}: the target is not saved first: {other}"),
            }
        }
        // Called from a frame, the target waits above the stack arguments.
        let sig = "(i64, i64, i64, i64, i64, i64, i64, i64, i8, f32) -> u16";
        let code = listing(&plan(sig, Entry::Value), &Placement::shape());
        assert_eq!(
            code[..2],
            ["sub $0x28,%rsp", "mov %rsi,0x20(%rsp)"],
            "{code:#?}"
        );
        assert!(code.contains(&"callq *0x20(%rsp)".to_string()), "{code:#?}");
    }

    #[test]
    fn a_closed_call_passes_the_shape_stubs_target_in_rsi() {
        let at = Placement {
            guard: Some(GUARD),
            ..Placement::shape()
        };
        let code = listing(&plan("(i32, i32) -> i32", Entry::Value), &at);
        let closed = code.iter().position(|l| l == "mov %r11,%rdi").unwrap();
        // No slot to zero before, rsi left alone after.
        assert!(code[closed - 1].starts_with("jmp "), "{code:#?}");
        assert_eq!(code[closed + 1], "sub $8,%rsp", "{code:#?}");
        let n = code.len();
        assert_eq!(
            code[n - 3..],
            ["xor %eax,%eax", "xorps %xmm0,%xmm0", "ret"],
            "{code:#?}"
        );
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
    #[should_panic(expected = "not in r11")]
    fn a_value_entry_refuses_its_target_in_r11() {
        emit(&plan("(i32) -> i32", Entry::Value), &Placement::register());
    }
}
