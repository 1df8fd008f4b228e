//! `jitcall explain`: classification of one signature on every ABI.

use jitcall::{classify, emit, Abi, Entry, Limits, Signature};
use jitcall_emitters::disasm::disassemble;

/// Where the listings place the trampoline and its target: a target in
/// direct-branch reach, as it usually is.
const BASE: u64 = 0x10_0000;
const TARGET: u64 = 0x20_0000;

pub fn run(args: &[String]) -> Result<(), String> {
    let [text] = args else {
        return Err(
            "explain takes one signature, e.g. jitcall explain \"(i32, f64) -> u8\"".into(),
        );
    };
    let sig = Signature::parse(text).map_err(|e| format!("bad signature: {e}"))?;

    println!("signature: {sig}");
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
                    let code = emit(&plan, BASE, TARGET);
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
