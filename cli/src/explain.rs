//! `jitcall explain`: classification of one signature on every ABI.

use jitcall::{classify, emit, Abi, Entry, Guard, Limits, Placement, Signature};
use jitcall_emitters::disasm::disassemble;

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

pub fn run(args: &[String]) -> Result<(), String> {
    let (library, text) = match args {
        [text] => (false, text),
        [flag, text] if flag == "--library" => (true, text),
        _ => {
            return Err(
                "explain takes one signature, e.g. jitcall explain \"(i32, f64) -> u8\", \
                 after --library to show a function bound from a Library"
                    .into(),
            )
        }
    };
    let sig = Signature::parse(text).map_err(|e| format!("bad signature: {e}"))?;
    let at = Placement {
        guard: library.then_some(LIBRARY_GUARD),
        ..Placement::at(BASE, TARGET)
    };

    println!("signature: {sig}");
    if library {
        println!(
            "bound from a Library: each trampoline first tests the library's closed byte \
             (at {:#x}); once it is set, the call goes to the closed-call handler (at {:#x}) \
             and returns 0",
            LIBRARY_GUARD.cell, LIBRARY_GUARD.on_closed
        );
    }
    for abi in Abi::ALL {
        for entry in Entry::ALL {
            println!();
            let node = match classify(&sig, abi, entry, &Limits::node()) {
                Ok(_) => "eligible".to_string(),
                Err(rule) => format!("not eligible ({rule})"),
            };
            match classify(&sig, abi, entry, &Limits::default()) {
                Ok(plan) => {
                    println!("{abi}, {entry} entry: eligible; under Node.js limits {node}");
                    println!("{}", plan.describe());
                    let code = emit(&plan, &at);
                    println!(
                        "  code: {} bytes (placed at {BASE:#x}, target at {TARGET:#x})",
                        code.len()
                    );
                    for line in disassemble(abi, &code, BASE) {
                        println!("    {line}");
                    }
                }
                Err(rule) => println!("{abi}, {entry} entry: not eligible, goes to libffi: {rule}"),
            }
        }
    }
    Ok(())
}
