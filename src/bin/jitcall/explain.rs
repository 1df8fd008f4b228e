//! `jitcall explain`: classification of one signature on every ABI.

use jitcall::{classify, Abi, Entry, Limits, Signature};

pub fn run(args: &[String]) -> Result<(), String> {
    let [text] = args else {
        return Err(
            "explain takes one signature, e.g. jitcall explain \"(i32, f64) -> u8\"".into(),
        );
    };
    let sig = if text.trim_start().starts_with('{') {
        Signature::from_json(text)
    } else {
        text.parse::<Signature>()
    }
    .map_err(|e| format!("bad signature: {e}"))?;

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
                }
                Err(rule) => println!("{abi}, {entry} entry: not eligible, goes to libffi: {rule}"),
            }
        }
    }
    Ok(())
}
