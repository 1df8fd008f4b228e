//! Names the compiler that built `jitcall` for the bench's report, and
//! compiles the C side of its callback section (`c/callback_drivers.c`).

fn main() {
    // `jitcall bench` names the compiler that built it in its report.
    println!("cargo:rerun-if-changed=build.rs");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string());
    if let Ok(output) = std::process::Command::new(rustc).arg("--version").output() {
        let version = String::from_utf8_lossy(&output.stdout);
        println!("cargo:rustc-env=JITCALL_RUSTC_VERSION={}", version.trim());
    }
    println!("cargo:rerun-if-changed=c/callback_drivers.c");
    // Only the binary links the loops (`#[link]` in `src/bench/callbacks.rs`):
    // cargo would pass a library the build script names to the package's
    // library, which the C API's libjitcall.a then carries.
    cc::Build::new()
        .file("c/callback_drivers.c")
        .opt_level(2)
        .warnings(true)
        .cargo_metadata(false)
        .compile("jitcall_callback_drivers");
    let out_dir = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    println!("cargo:rustc-link-search=native={out_dir}");
}
