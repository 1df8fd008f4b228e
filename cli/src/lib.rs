//! The library side of the `jitcall` command: [`explain`], which the
//! command's `explain` prints and the C API's `jitcall_explain`
//! (crate `jitcall-capi`) returns. The benchmark stays in the binary.

mod explain;

pub use explain::explain;
