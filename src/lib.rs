//! jitcall calls native functions whose signatures are known only at run
//! time, through machine-code trampolines specialised to each signature,
//! and falls back to libffi where it must.
//!
//! # Layers
//!
//! Each layer can be used and tested on its own:
//!
//! 1. **parse**: [`Signature`] from text (`"(i32, f64) -> u8".parse()`) or
//!    from the JSON object form ([`Signature::from_json`]);
//! 2. **classify**: [`classify`] checks fast-call eligibility under
//!    [`Limits`] and assigns registers for an [`Abi`] and [`Entry`] kind;
//! 3. **emit**: [`emit`] turns a [`Plan`] into machine code (pure: the
//!    `jitcall-emitters` crate, tested on every host);
//! 4. **place**: trampolines are written into a fresh RW mapping, the
//!    instruction cache is synchronised and the mapping flipped to RX —
//!    never writable and executable at once. The build script places a
//!    third kind ahead of time: the baked set's stubs and the
//!    register-file stub, compiled into the library's text;
//! 5. **call**: [`Function`] picks the tier and offers the packed call,
//!    the checked call and the raw entry points.
//!
//! # Tiers
//!
//! | tier | code | when |
//! |---|---|---|
//! | [`Tier::Jit`] | a trampoline of its own, the target built in | a batch, a receiver entry, or [`Options::specialise`] |
//! | [`Tier::Shared`] | one JIT stub per shape ([`Plan::shape`]), the target passed as data | a function bound alone: no new mapping once its shape has a stub |
//! | [`Tier::Baked`] | compiled in at build time: the shape's stub, or the register-file stub | no JIT memory ([`Fallback`] says why) or [`Options::avoid_jit`] |
//! | [`Tier::Libffi`] | `ffi_call` | an ineligible signature, or [`Options::force_libffi`] |
//!
//! [`jit_available`] is the one-time, cached probe of whether the process
//! may create executable memory; `JITCALL_DISABLE_JIT=1` acts as a refusal
//! and puts every eligible function on the baked tier.
//!
//! Structs pass and return by value, and variadic functions bind one call
//! shape at a time:
//!
//! ```
//! use jitcall::{Library, Value};
//!
//! let libc = Library::this_process()?;
//! let div = libc.function("div", &"(i32, i32) -> {i32, i32}".parse()?)?;
//! // SAFETY: div(int, int) returns div_t { int quot; int rem; }.
//! let Value::Struct(q) = (unsafe { div.call(&[Value::I32(7), Value::I32(2)])? }) else {
//!     unreachable!("a struct return")
//! };
//! assert_eq!((q.field(0), q.field(1)), (Value::I32(3), Value::I32(1)));
//!
//! let sig = "(pointer, u64, pointer, ..., i32, f64) -> i32".parse()?;
//! let snprintf = libc.function("snprintf", &sig)?;
//! let mut buf = [0u8; 16];
//! let args = [
//!     Value::Pointer(buf.as_mut_ptr().cast()),
//!     Value::U64(16),
//!     Value::Pointer(c"%d %.2f".as_ptr().cast_mut().cast()),
//!     Value::I32(7),
//!     Value::F64(2.5),
//! ];
//! // SAFETY: the format reads an int and a double into 16 bytes.
//! assert_eq!(unsafe { snprintf.call(&args)? }, Value::I32(6));
//! assert_eq!(&buf[..7], b"7 2.50\0");
//! # Ok::<(), jitcall::Error>(())
//! ```
//!
//! # Examples
//!
//! ```
//! use jitcall::{Library, Tier, Value};
//!
//! let libm = Library::open("libm.so.6")?;
//! let cos = libm.function("cos", &"(f64) -> f64".parse()?)?;
//! // SAFETY: cos takes and returns a double.
//! let one = unsafe { cos.call(&[Value::F64(0.0)])? };
//! assert_eq!(one, Value::F64(1.0));
//! // Bound alone, cos shares its shape's stub with every (f64) -> f64.
//! if jitcall::jit_available() {
//!     assert_eq!(cos.tier(), Tier::Shared);
//! }
//! # Ok::<(), jitcall::Error>(())
//! ```

mod baked;
mod callback;
pub use baked::baked_code_bytes;
pub use callback::{Callback, CallbackFn};
mod errno;
mod error;
mod fallback;
mod function;
mod gdb_jit;
mod library;
mod memory;
mod perf_map;
mod probe;
mod receiver;
mod register_file;
mod shapes;
mod thunks;
mod unwind;
mod value;
#[cfg(all(target_arch = "x86_64", unix))]
mod win64;

pub use errno::last_errno;
pub use error::{Error, Result};
pub use function::{Fallback, Function, Options, PackedFn, ReceiverKind, Tier};
pub use jitcall_emitters::{
    classify, emit, emit_bound, node_gp_cap, Abi, AbiSpec, Arg, BufferView, Counting, Entry, Guard,
    Ineligible, Isa, Limits, Loc, MemoryReturn, ParseError, ParseErrorKind, Passing, Placement,
    Plan, Position, Quoted, Registers, RetPiece, ReturnPass, ShapeFn, Signature, Source, StackSlot,
    StructRules, StructType, Target, Type, Varargs,
};
pub use jitcall_emitters::{FloatValueFn, ValueFn};
pub use library::Library;
pub use memory::MemoryRefused;
pub use probe::{double_map_status, jit_available, jit_status, JitUnavailable};
pub use unwind::registered_sections;
pub use value::{StructValue, Value};
#[cfg(all(target_arch = "x86_64", unix))]
pub use win64::PackedWin64Fn;
