//! Writes `jitcall.pc`, pkg-config's description of the C library, next to
//! `libjitcall.so` and `libjitcall.a` in the target directory, for the
//! build in place (the header in `capi/include`, the libraries where
//! cargo puts them):
//!
//! ```sh
//! cargo build --release -p jitcall-capi
//! cc app.c $(PKG_CONFIG_PATH=target/release pkg-config --cflags --libs jitcall) \
//!     -Wl,-rpath,$PWD/target/release
//! ```
//!
//! Also hands the target and host triples to the tests, which compile the
//! C tests for the target with the `cc` crate.

use std::path::{Path, PathBuf};

/// What a program linking `libjitcall.a` links besides: the native
/// libraries of the Rust standard library and of libffi, as `rustc
/// --print native-static-libs` lists them for Linux. The tests link their
/// C programs statically with exactly these (`JITCALL_CAPI_STATIC_LIBS`).
const STATIC_LIBS: &str = "-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let target = std::env::var("TARGET").expect("cargo sets TARGET");
    let host = std::env::var("HOST").expect("cargo sets HOST");
    println!("cargo:rustc-env=JITCALL_CAPI_TARGET={target}");
    println!("cargo:rustc-env=JITCALL_CAPI_HOST={host}");
    println!("cargo:rustc-env=JITCALL_CAPI_STATIC_LIBS={STATIC_LIBS}");

    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let manifest_dir =
        PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    match profile_dir(&out_dir) {
        Some(dir) => {
            let pc = pkg_config(&manifest_dir.join("include"), dir);
            if let Err(e) = std::fs::write(dir.join("jitcall.pc"), pc) {
                println!(
                    "cargo:warning=cannot write jitcall.pc into {}: {e}",
                    dir.display()
                );
            }
        }
        None => println!(
            "cargo:warning=OUT_DIR {} is not <target dir>/<profile>/build/<package>/out: \
             no jitcall.pc written",
            out_dir.display()
        ),
    }
}

/// The directory cargo puts the libraries in, from this build script's
/// `OUT_DIR`: `<profile dir>/build/jitcall-capi-<hash>/out`.
fn profile_dir(out_dir: &Path) -> Option<&Path> {
    let build = out_dir.parent()?.parent()?;
    (build.file_name()? == "build")
        .then(|| build.parent())
        .flatten()
}

/// The pkg-config file of the build in place.
fn pkg_config(include_dir: &Path, lib_dir: &Path) -> String {
    let version = std::env::var("CARGO_PKG_VERSION").expect("cargo sets it");
    format!(
        "# Written by capi/build.rs for the build in place: the header in the source\n\
         # tree, the libraries in the target directory.\n\
         includedir={}\n\
         libdir={}\n\
         \n\
         Name: jitcall\n\
         Description: Calls C functions whose signatures arrive at run time, through JIT trampolines\n\
         Version: {version}\n\
         Cflags: -I${{includedir}}\n\
         Libs: -L${{libdir}} -ljitcall\n\
         Libs.private: {STATIC_LIBS}\n",
        include_dir.display(),
        lib_dir.display(),
    )
}
