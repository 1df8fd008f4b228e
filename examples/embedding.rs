//! What an embedding host does: bind a library's symbol table in one batch
//! at load time, then call through the packed entry with arguments held in
//! the interpreter's own 64-bit slots.
//!
//! ```sh
//! cargo run --example embedding
//! ```

use jitcall::{Library, Options, Signature};

fn main() -> Result<(), jitcall::Error> {
    // The table a script would declare, in the JSON form JS runtimes use.
    let table = [
        ("strlen", r#"{"arguments": ["pointer"], "return": "u64"}"#),
        ("abs", r#"{"arguments": ["int32"], "return": "int32"}"#),
        ("getpid", r#"{"return": "i32"}"#),
    ];
    let sigs: Vec<Signature> = table
        .iter()
        .map(|(_, json)| Signature::from_json(json))
        .collect::<Result<_, _>>()?;
    let libc = Library::this_process()?;
    let items: Vec<(&str, &Signature)> = table.iter().map(|(name, _)| *name).zip(&sigs).collect();
    // One mapping and one RW→RX flip for the whole table.
    let functions = libc.functions(&items, &Options::default())?;

    let text = c"hello, jitcall";
    let slots: [&[u64]; 3] = [&[text.as_ptr() as u64], &[(-42i32) as u32 as u64], &[]];
    for ((name, _), (f, args)) in table.iter().zip(functions.iter().zip(slots)) {
        let mut ret = 0u64;
        // SAFETY: each slot array matches its function's signature, and the
        // string pointer is valid and NUL-terminated.
        unsafe { f.call_packed(args.as_ptr(), &mut ret) };
        println!(
            "{name:<7} {:<20} tier {:?} -> {}",
            f.signature().to_string(),
            f.tier(),
            ret as i64
        );
    }
    Ok(())
}
