//! `jitcall explain`: the tier a signature takes in this process, and its
//! classification and code on every ABI: its own trampoline, its shape's
//! shared stub, and the baked tier's stub.

use std::fmt::Write as _;

use jitcall::{classify, Abi, Entry, Guard, Isa, Limits, Options, Placement, Signature, Tier};
use jitcall_emitters::baked::{self, RawReturn};
use jitcall_emitters::disasm::disassemble;
use jitcall_emitters::{emit_with_unwind, register_file, Emitted};

/// Where the listings place the trampoline and its target: a target in
/// direct-branch reach, as it usually is.
const BASE: u64 = 0x10_0000;
const TARGET: u64 = 0x20_0000;
/// With `--library`, where the library's closed byte and the closed-call
/// handler are shown to be.
const LIBRARY_GUARD: Guard = Guard {
    cell: 0x30_0000,
    on_closed: 0x40_0000,
};

/// What `jitcall explain` prints for `signature` (the text form or the
/// JSON object form): the tier each way of binding it takes in this
/// process, then, for every ABI and entry kind, where each argument goes,
/// whether the signature is eligible, and the code disassembled. With
/// `library`, the code of a function bound from a `Library`, which starts
/// with the closed check.
///
/// # Errors
///
/// `bad signature: ` and the parser's message, which says where, for a
/// malformed signature.
pub fn explain(signature: &str, library: bool) -> Result<String, String> {
    let sig = Signature::parse(signature).map_err(|e| format!("bad signature: {e}"))?;
    let at = Placement {
        guard: library.then_some(LIBRARY_GUARD),
        ..Placement::at(BASE, TARGET)
    };

    let mut out = String::new();
    let _ = writeln!(out, "signature: {sig}");
    tiers(&mut out, &sig);
    if library {
        let _ = writeln!(
            out,
            "bound from a Library: each trampoline first tests the library's closed byte \
             (at {:#x}); once it is set, the call goes to the closed-call handler (at {:#x}) \
             and returns 0",
            LIBRARY_GUARD.cell, LIBRARY_GUARD.on_closed
        );
    }
    for abi in Abi::ALL {
        if !abi.spec().hosted {
            let _ = writeln!(
                out,
                "\n{abi}: {}; no compiled-in code (shared or baked stubs, static thunks) for it",
                foreign_note(abi)
            );
        }
        for entry in Entry::ALL {
            out.push('\n');
            let node = match classify(&sig, abi, entry, &Limits::node()) {
                Ok(_) => "eligible".to_string(),
                Err(rule) => format!("not eligible ({rule})"),
            };
            match classify(&sig, abi, entry, &Limits::default()) {
                Ok(plan) => {
                    let _ = writeln!(
                        out,
                        "{abi}, {entry} entry: eligible; under Node.js limits {node}"
                    );
                    let _ = writeln!(out, "{}", plan.describe());
                    let code = emit_with_unwind(&plan, &at);
                    let _ = writeln!(
                        out,
                        "  code: {} bytes (placed at {BASE:#x}, target at {TARGET:#x})",
                        code.code.len()
                    );
                    listing(&mut out, abi, &code, BASE);
                    match entry {
                        _ if !abi.spec().hosted => {}
                        Entry::Packed => compiled_ahead(&mut out, &sig, &plan, abi),
                        Entry::Receiver => receiver_ahead(&mut out, &sig, abi),
                        // call_packed's own entry: nothing made ahead.
                        _ => {}
                    }
                }
                Err(rule) => {
                    let consequence = match entry {
                        Entry::Packed if abi == Abi::AppleAarch64 => {
                            "no libffi has this ABI on Linux: binding fails (NoCallPath)"
                        }
                        Entry::Packed => "the function goes to libffi",
                        Entry::Receiver => "no receiver entry; call through the packed entry",
                        Entry::Value => "call_packed goes through the packed entry",
                    };
                    let _ = writeln!(
                        out,
                        "{abi}, {entry} entry: not eligible, {consequence}: {rule}"
                    );
                }
            }
        }
    }
    Ok(out)
}

/// How functions of an ABI jitcall does not run on are bound.
fn foreign_note(abi: Abi) -> &'static str {
    match abi.isa() {
        Isa::X86_64 => {
            "bound on x86_64 hosts with `Options { abi: Some(Abi::Win64), .. }` \
             (ms_abi / extern \"win64\" targets)"
        }
        Isa::Aarch64 => {
            "emitted for AArch64 hosts with `Options { abi: Some(Abi::AppleAarch64), .. }` \
             (Apple's layout)"
        }
    }
}

/// The disassembly of `code` placed at `base`, then how it unwinds: the
/// frame from each offset on, as the `.eh_frame` jitcall registers says.
fn listing(out: &mut String, abi: Abi, code: &Emitted, base: u64) {
    for line in disassemble(abi, &code.code, base) {
        let _ = writeln!(out, "    {line}");
    }
    let _ = writeln!(
        out,
        "    unwind (CFA and saved registers from each offset on):"
    );
    for line in code.unwind.describe() {
        let _ = writeln!(out, "      {line}");
    }
}

/// The tier each way of binding `sig` takes in this process.
fn tiers(out: &mut String, sig: &Signature) {
    let host = Abi::host().map_or("no supported ABI".to_string(), |abi| abi.to_string());
    let jit = match jitcall::jit_status() {
        Ok(()) => "JIT available".to_string(),
        Err(why) => format!("JIT unavailable: {why}"),
    };
    let _ = writeln!(out, "tiers in this process ({host}, {jit}):");
    let no_jit = Options {
        avoid_jit: true,
        ..Options::default()
    };
    let receiver = Options {
        receiver_entry: true,
        ..Options::default()
    };
    let receiver_refused = match Abi::host() {
        Some(abi) if classify(sig, abi, Entry::Receiver, &Limits::default()).is_ok() => {
            if baked::receiver_key(sig, abi).is_some() {
                "a static thunk to its shape's baked receiver stub"
            } else {
                "a static thunk to the generic receiver stub"
            }
        }
        _ => "none: not eligible for a receiver entry",
    };
    for (how, tier) in [
        ("bound alone", Tier::choose(sig, &Options::default(), false)),
        (
            "in a batch, or with a receiver entry",
            Tier::choose(sig, &receiver, true),
        ),
        (
            "with the JIT refused (or avoid_jit)",
            Tier::choose(sig, &no_jit, false),
        ),
    ] {
        let stub = match tier {
            Tier::Baked(_) if baked::key(sig).is_none() => ", through the register-file stub",
            Tier::Baked(_) => ", through its shape's baked stub",
            _ => "",
        };
        let _ = writeln!(out, "  {how:<38} {tier}{stub}");
    }
    let _ = writeln!(
        out,
        "  {:<38} {receiver_refused}",
        "receiver entry with the JIT refused"
    );
}

/// The receiver entry's code on the baked tier: a static thunk jumps to
/// the shape's baked receiver stub, or to the generic one.
fn receiver_ahead(out: &mut String, sig: &Signature, abi: Abi) {
    let register = match abi.isa() {
        Isa::X86_64 => "r11",
        Isa::Aarch64 => "x16",
    };
    match baked::receiver_key(sig, abi) {
        Some(key) => {
            let (classes, ret) = key.decode();
            let classes: Vec<String> = classes.iter().map(|t| t.to_string()).collect();
            let code = baked::receiver_stub_with_unwind(key, abi);
            let _ = writeln!(
                out,
                "  baked receiver stub, which a static thunk enters with the target in {register}: \
                 integer classes ({}), return {ret:?}: {} bytes",
                classes.join(", "),
                code.code.len()
            );
            listing(out, abi, &code, 0);
        }
        None => {
            let _ = writeln!(
                out,
                "  baked: no receiver stub of its own; a static thunk enters the generic receiver \
                 stub, which spills the argument registers and makes the packed call"
            );
        }
    }
}

/// The code made ahead of a call for `sig`'s packed entry on `abi`: the
/// shape's shared stub (the JIT's, once per shape) and the baked tier's
/// (compiled into the library).
fn compiled_ahead(out: &mut String, sig: &Signature, plan: &jitcall::Plan, abi: Abi) {
    let shared = emit_with_unwind(&plan.shape(), &Placement::shape());
    let _ = writeln!(
        out,
        "  shared stub, the target passed as data (third argument): {} bytes",
        shared.code.len()
    );
    listing(out, abi, &shared, 0);
    match baked::key(sig) {
        Some(key) => {
            let (classes, raw) = key.decode();
            let classes: Vec<String> = classes.iter().map(|t| t.to_string()).collect();
            let raw = match raw {
                RawReturn::Void => "nothing",
                RawReturn::Int => "the integer register, raw",
                RawReturn::Float => "the FP register, raw",
            };
            let code = baked::stub_with_unwind(key, abi);
            let _ =
                writeln!(out,
                "  baked stub, compiled into the library: classes ({}), returning {raw}: {} bytes",
                classes.join(", "),
                code.code.len()
            );
            listing(out, abi, &code, 0);
        }
        None => {
            let code = register_file::emit_with_unwind(abi)
                .expect("a hosted ABI has a register-file stub");
            let _ = writeln!(
                out,
                "  baked: no stub of its own; the moves above fill a register file per call, \
                 and the register-file stub ({} bytes) loads it:",
                code.code.len()
            );
            listing(out, abi, &code, 0);
        }
    }
}
