//! Builds `c/fixtures.c` as a shared object, `libjitcall_qjs_fixtures.so`
//! in `OUT_DIR`, with the build's C compiler, and names its path in
//! `JITCALL_QJS_FIXTURES` (what `node:ffi`'s `jitcall.fixtures` gives a
//! script: the tests' and the benchmark's callees).

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=c/fixtures.c");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let library = out.join("libjitcall_qjs_fixtures.so");
    let mut command = cc::Build::new().opt_level(2).get_compiler().to_command();
    command
        .args(["-shared", "-fPIC", "-Wall", "-o"])
        .arg(&library)
        .arg("c/fixtures.c");
    let status = command
        .status()
        .unwrap_or_else(|e| panic!("cannot run the C compiler ({command:?}): {e}"));
    assert!(status.success(), "{command:?} failed: {status}");
    println!("cargo:rustc-env=JITCALL_QJS_FIXTURES={}", library.display());
}
