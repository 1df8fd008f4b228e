//! Binds `cos` from libm and calls it through both call paths.
//!
//! ```sh
//! cargo run --example cos
//! ```

use jitcall::{Library, Value};

fn main() -> Result<(), jitcall::Error> {
    let libm = Library::open("libm.so.6")?;
    let cos = libm.function("cos", &"(f64) -> f64".parse()?)?;
    println!("cos is on the {:?} tier", cos.tier());

    // The checked path: typed values in, a typed value out.
    // SAFETY: cos takes and returns a double.
    let one = unsafe { cos.call(&[Value::F64(0.0)])? };
    println!("cos(0) = {one:?}");

    // The packed path an interpreter uses: one 64-bit slot per argument.
    let args = [std::f64::consts::PI.to_bits()];
    let mut ret = 0u64;
    // SAFETY: one f64 slot in, one f64 slot out.
    unsafe { cos.call_packed(args.as_ptr(), &mut ret) };
    println!("cos(pi) = {}", f64::from_bits(ret));
    Ok(())
}
