//! [`Function`]: a native function bound to a signature, on the JIT tier or
//! on libffi.

use std::ffi::c_void;
use std::fmt;
use std::sync::Arc;

use jitcall_emitters::unwind::EhFrame;
use jitcall_emitters::{
    emit_bound, emit_with_unwind, Emitted, FloatShapeValueFn, Guard, Placement, ShapeFn,
    ShapeValueFn, Target,
};

use crate::baked::{self, ReturnFix};
use crate::fallback::LibffiCall;
use crate::library::{on_closed_call, LibraryState};
use crate::memory::{CodeBlock, MemoryRefused};
use crate::perf_map::{self, Names};
use crate::probe::{double_map_by_env, double_map_status, jit_status, JitUnavailable};
use crate::receiver::ThunkReceiver;
use crate::register_file::RegisterFileCall;
use crate::shapes;
use crate::value::{StructValue, Value};
#[cfg(all(target_arch = "x86_64", unix))]
use crate::win64::Win64Path;
use crate::{
    classify, Abi, Entry, Error, Ineligible, Limits, Plan, Result, Signature, Source, Type,
};

/// The packed entry: `args` points to one 64-bit slot per argument, the
/// return value is stored to `*ret` (left untouched for `void`).
pub type PackedFn = unsafe extern "C" fn(args: *const u64, ret: *mut u64);

/// Which path a [`Function`]'s calls take, fastest first. Each tier below
/// the JIT ones carries why the JIT was not used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tier {
    /// A trampoline of its own, specialised to the signature and its
    /// target: functions bound in a batch of more than one, with a receiver
    /// entry, or with [`Options::specialise`].
    Jit,
    /// A JIT stub shared by every function of the same shape, the target
    /// passed as data: a function bound alone maps nothing once a function
    /// of its shape has a stub.
    Shared,
    /// Code compiled into the library at build time, used because the JIT
    /// could not be: the shape's own stub when the baked set has it, else
    /// the one stub that loads every argument register from a register
    /// file filled per call ([`Function::uses_register_file`]).
    Baked(Fallback),
    /// libffi's `ffi_call`, for what no faster tier can call (an
    /// ineligible signature) or when forced.
    Libffi(Fallback),
}

impl fmt::Display for Tier {
    /// `JIT`, `shared JIT stub`, or the compiled-in or libffi tier and
    /// the reason in parentheses: one line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tier::Jit => f.write_str("JIT"),
            Tier::Shared => f.write_str("shared JIT stub"),
            Tier::Baked(why) => write!(f, "baked ({why})"),
            Tier::Libffi(why) => write!(f, "libffi ({why})"),
        }
    }
}

impl Tier {
    /// The tier binding `sig` with `options` takes in this process, in a
    /// batch of more than one function or alone: what the cached probe,
    /// the classifier and the baked set decide. (Binding can still land
    /// lower, when the mapping it makes is refused.)
    ///
    /// # Examples
    ///
    /// ```
    /// use jitcall::{Fallback, Options, Tier};
    ///
    /// let sig = "(i32, f64) -> f64".parse()?;
    /// let no_jit = Options { avoid_jit: true, ..Options::default() };
    /// assert_eq!(Tier::choose(&sig, &no_jit, false), Tier::Baked(Fallback::Forced));
    /// # Ok::<(), jitcall::Error>(())
    /// ```
    pub fn choose(sig: &Signature, options: &Options, batch: bool) -> Tier {
        match decide(
            sig,
            options,
            batch || options.receiver_entry || options.specialise,
        ) {
            Decision::Own(_) => Tier::Jit,
            Decision::Shared(_) => Tier::Shared,
            Decision::CompiledIn(_, why) => compiled_in_tier(sig, why),
            Decision::Libffi(why) => Tier::Libffi(why),
        }
    }
}

/// How a binding is called, before any code is placed.
enum Decision {
    /// A trampoline of its own, in the batch's mapping.
    Own(Plan),
    /// The shape's shared stub.
    Shared(Plan),
    /// Compiled-in code, for the reason given.
    CompiledIn(Plan, Fallback),
    Libffi(Fallback),
}

/// The decision for one binding: `own` when it gets a trampoline of its
/// own should the JIT be available. A function of another convention than
/// the host's ([`Options::abi`]) always does, and has no compiled-in tier:
/// it goes to libffi instead.
fn decide(sig: &Signature, options: &Options, own: bool) -> Decision {
    if options.force_libffi {
        return Decision::Libffi(Fallback::Forced);
    }
    let Some(abi) = options.abi.or(Abi::host()) else {
        return Decision::Libffi(Fallback::JitUnavailable(JitUnavailable::UnsupportedAbi));
    };
    if Some(abi.isa()) != Abi::host().map(Abi::isa) {
        return Decision::Libffi(Fallback::JitUnavailable(JitUnavailable::UnsupportedAbi));
    }
    let plan = match classify(sig, abi, Entry::Packed, &options.limits) {
        Ok(plan) => plan,
        Err(rule) => return Decision::Libffi(Fallback::Ineligible(rule)),
    };
    let native = Some(abi) == Abi::host();
    let without_jit = |why| {
        if native {
            Decision::CompiledIn(plan.clone(), why)
        } else {
            Decision::Libffi(why)
        }
    };
    if options.avoid_jit {
        return without_jit(Fallback::Forced);
    }
    if double_mapped(options) {
        return Decision::Own(plan);
    }
    match (jit_status(), own || !native) {
        (Err(why), _) => without_jit(Fallback::JitUnavailable(why)),
        (Ok(()), true) => Decision::Own(plan),
        (Ok(()), false) => Decision::Shared(plan),
    }
}

/// Whether the host runs code of `options`' ABI: `None` or a convention
/// of the host's instruction set.
///
/// # Errors
///
/// [`Error::AbiNotOnHost`] for a convention of another instruction set.
pub(crate) fn check_abi(options: &Options) -> Result<()> {
    let host = Abi::host().map(Abi::isa);
    match options.abi {
        Some(abi) if Some(abi.isa()) != host => Err(Error::AbiNotOnHost { abi, host }),
        _ => Ok(()),
    }
}

/// The value entry's plan beside a packed plan: the same moves, for every
/// return but a struct (which the value entry cannot return). What
/// `classify` gives for [`Entry::Value`], without classifying again.
fn value_plan(packed: &Plan) -> Option<Plan> {
    if packed.ret.as_struct().is_some() {
        return None;
    }
    let mut plan = packed.clone();
    plan.entry = Entry::Value;
    Some(plan)
}

/// The path of a function returning `ret`: its value entry or its
/// shape's value stub at `value` when it has one, else its packed entry.
/// A value entry of its own takes the target as a second argument it
/// ignores (both ABIs let a callee ignore trailing arguments).
fn value_path(ret: Type, value: Option<u64>, packed: Option<PackedFn>) -> Path {
    let (Some(value), Some(fix)) = (value, ReturnFix::for_return(ret)) else {
        return Path::Jit(packed.expect("a packed entry where there is no value entry"));
    };
    match ret {
        // SAFETY: `value` is the start of a value entry or value shape
        // stub for this signature in a block the function keeps; a void
        // one is called as ShapeValueFn.
        Type::Void => Path::ValueVoid(unsafe { std::mem::transmute::<u64, ShapeValueFn>(value) }),
        Type::F32 | Type::F64 => Path::ValueFloat(
            // SAFETY: as above; a float return comes back in the FP
            // register, FloatShapeValueFn's return.
            unsafe { std::mem::transmute::<u64, FloatShapeValueFn>(value) },
            fix,
        ),
        // SAFETY: as above; an integer or address in the integer register.
        _ => Path::Value(
            unsafe { std::mem::transmute::<u64, ShapeValueFn>(value) },
            fix,
        ),
    }
}

/// The path of a function on the JIT tier, its packed entry at `packed`
/// and its value entry, if any, at `value`: trampolines of the binding's
/// `abi`.
fn own_path(ret: Type, abi: Option<Abi>, packed: u64, value: Option<u64>) -> Path {
    #[cfg(all(target_arch = "x86_64", unix))]
    if abi == Some(Abi::Win64) {
        // SAFETY: both are Win64 trampolines of this signature in the
        // executable block the function keeps.
        return Path::Win64(unsafe { Win64Path::new(ret, packed, value) });
    }
    // Apple's arm64 and AAPCS64 pass the entries' parameters and returns
    // alike: the same function types serve both.
    debug_assert_eq!(abi.map(Abi::isa), Abi::host().map(Abi::isa));
    // SAFETY: `packed` is the start of a packed-entry trampoline in the
    // executable block the function keeps.
    let entry = unsafe { std::mem::transmute::<u64, PackedFn>(packed) };
    value_path(ret, value, Some(entry))
}

/// The closed-call handler a guarded trampoline of `abi` calls, a function
/// of that convention.
fn on_closed_handler(abi: Option<Abi>) -> u64 {
    #[cfg(all(target_arch = "x86_64", unix))]
    if abi == Some(Abi::Win64) {
        return crate::win64::on_closed_call_win64 as *const () as u64;
    }
    let _ = abi;
    on_closed_call as *const () as u64
}

/// Whether a receiver plan leaves every argument where it arrives and
/// returns what the target returns: its entry can be the target.
fn moves_nothing(plan: &Plan) -> bool {
    plan.tail_calls()
        && plan
            .args
            .iter()
            .all(|arg| arg.from == Source::Native(arg.to))
}

/// What no tier can pass, an error rather than a fallback: a misplaced
/// type, too many arguments, a misplaced `...`.
pub(crate) fn check_bindable(sig: &Signature) -> Result<()> {
    if let Some((index, ty)) = sig.misplaced_type() {
        return Err(Error::UnsupportedType { index, ty });
    }
    let (n, max) = (sig.args.len(), Signature::MAX_ARGS);
    if n > max {
        return Err(Error::TooManyArgs { n, max });
    }
    if let (true, Some(fixed)) = (sig.variadic_misplaced(), sig.variadic) {
        return Err(Error::VariadicPosition { fixed, args: n });
    }
    Ok(())
}

/// Whether code of bindings with `options` is placed through the double
/// mapping: asked for, and available.
pub(crate) fn double_mapped(options: &Options) -> bool {
    (options.double_map || double_map_by_env()) && double_map_status().is_ok()
}

/// The compiled-in tier for `sig`: baked, unless the target has no baked
/// code (no emitter for its ABI), then libffi.
fn compiled_in_tier(sig: &Signature, why: Fallback) -> Tier {
    if baked::stub(sig).is_some() || baked::register_file().is_some() {
        Tier::Baked(why)
    } else {
        Tier::Libffi(why)
    }
}

/// Why a function is not on the JIT tier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fallback {
    /// The signature breaks a fast-call rule.
    Ineligible(Ineligible),
    /// The process cannot use JIT memory (the cached probe said so).
    JitUnavailable(JitUnavailable),
    /// This function's own mapping was refused although the probe had
    /// succeeded (a policy installed later, or resource limits).
    MemoryRefused(MemoryRefused),
    /// [`Options::force_libffi`] or [`Options::avoid_jit`] was set.
    Forced,
}

impl fmt::Display for Fallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fallback::Ineligible(rule) => write!(f, "ineligible: {rule}"),
            Fallback::JitUnavailable(why) => write!(f, "JIT unavailable: {why}"),
            Fallback::MemoryRefused(refused) => write!(f, "{refused}"),
            Fallback::Forced => f.write_str("forced by options"),
        }
    }
}

/// How to bind a function.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// The fast-call rules; [`Limits::node`] reproduces Node.js's.
    pub limits: Limits,
    /// Also emit a receiver entry (V8 fast-API style), available from
    /// [`Function::receiver_entry`] when the signature is eligible for it.
    pub receiver_entry: bool,
    /// Skip the JIT and compiled-in tiers: every call goes through libffi.
    pub force_libffi: bool,
    /// Give a function bound alone a trampoline of its own ([`Tier::Jit`]:
    /// a direct call, a [`PackedFn`] from [`Function::jit_entry`]) rather
    /// than its shape's shared stub ([`Tier::Shared`]), at the cost of a
    /// mapping of its own.
    pub specialise: bool,
    /// Capture `errno` right after the target returns, on every tier, into
    /// a per-thread value that [`last_errno`](crate::last_errno) reads: what
    /// a runtime needs to report a failed `open` after its own code ran in
    /// between. Through [`call_packed`](Function::call_packed) and
    /// [`call`](Function::call); the raw entries do not capture. Functions
    /// that do not ask pay nothing.
    pub capture_errno: bool,
    /// Act as if the process could create no executable memory: use the
    /// compiled-in tier ([`Tier::Baked`]), as a
    /// process under a W^X policy does.
    pub avoid_jit: bool,
    /// Write JIT code through a read-write view of a memfd and run it from
    /// a separate read-execute view ([`double_map_status`](crate::double_map_status)
    /// says whether the process allows it). No mapping is ever writable
    /// and executable, so `PR_SET_MDWE` and seccomp filters like systemd's
    /// `MemoryDenyWriteExecute` let it through, and every function gets a
    /// trampoline of its own ([`Tier::Jit`]), packed densely with others.
    ///
    /// It weakens W^X: a writable alias of the code exists as long as the
    /// code does, and memory corruption that reaches it can change what
    /// runs. Never the default; `JITCALL_DOUBLE_MAP=1` turns it on for
    /// every binding of the process, for operators. [`Options::avoid_jit`]
    /// and `JITCALL_DISABLE_JIT` take precedence.
    pub double_map: bool,
    /// The calling convention of the targets; `None` is the host's C ABI.
    /// Another convention of the host's instruction set binds targets that
    /// use it: [`Abi::Win64`] on x86_64 hosts (functions compiled with
    /// GCC's or Clang's `ms_abi`, Rust's `extern "win64"`),
    /// [`Abi::AppleAarch64`] on AArch64 hosts. The trampolines then follow
    /// it on both sides: [`jit_entry`](Function::jit_entry) and
    /// [`receiver_entry`](Function::receiver_entry) are functions of that
    /// convention, while [`call_packed`](Function::call_packed) and
    /// [`call`](Function::call) keep their contract.
    ///
    /// Such a function always gets trampolines of its own
    /// ([`Tier::Jit`]); the compiled-in tiers hold the host's convention
    /// only, so without the JIT it goes to libffi where libffi has the
    /// convention (Win64), and cannot be bound where it does not
    /// ([`Error::NoCallPath`]: Apple's arm64 on Linux).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[cfg(target_arch = "x86_64")]
    /// # fn main() {
    /// use jitcall::{Abi, Function, Options, Signature};
    ///
    /// extern "win64" fn weigh(a: i32, b: f64, c: i8, d: f32, e: i64) -> f64 {
    ///     f64::from(a) + 2.0 * b + 3.0 * f64::from(c) + 4.0 * f64::from(d) + 5.0 * e as f64
    /// }
    ///
    /// let sig: Signature = "(i32, f64, i8, f32, i64) -> f64".parse().unwrap();
    /// let options = Options { abi: Some(Abi::Win64), ..Options::default() };
    /// // SAFETY: `weigh` has this signature, in the Win64 convention.
    /// let f = unsafe { Function::with_options(weigh as *const _, &sig, &options) }.unwrap();
    /// let args = [1u64, 2.5f64.to_bits(), (-1i64) as u64, u64::from(0.5f32.to_bits()), 10];
    /// let mut ret = 0u64;
    /// // SAFETY: one slot per argument.
    /// unsafe { f.call_packed(args.as_ptr(), &mut ret) };
    /// assert_eq!(f64::from_bits(ret), 1.0 + 5.0 - 3.0 + 2.0 + 50.0);
    /// # }
    /// # #[cfg(not(target_arch = "x86_64"))]
    /// # fn main() {}
    /// ```
    pub abi: Option<Abi>,
}

/// How a [`Function::receiver_entry`] is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReceiverKind {
    /// The target itself: nothing to move (no arguments, or FP ones
    /// only), no narrowing, no `...` and no library to check.
    Target,
    /// A JIT trampoline of its own ([`Tier::Jit`]).
    Trampoline,
    /// A static thunk (code mapped again from the library's file, with a
    /// data slot) jumping to the baked receiver stub of the signature's
    /// shape: on [`Tier::Baked`], for the shapes the receiver set has.
    ThunkStub,
    /// A static thunk jumping to the generic receiver stub, which spills
    /// the argument registers for Rust to read and makes the packed call:
    /// on [`Tier::Baked`], for every other receiver-eligible signature.
    ThunkGeneric,
}

/// The call path of a function.
enum Path {
    /// The packed entry: for a struct return.
    Jit(PackedFn),
    /// A value entry, which tail-calls the target where it can: its
    /// integer return register finished as the return type says. A
    /// trampoline of its own (which ignores the second argument, the
    /// target) or the shape's shared value stub (which calls it).
    Value(ShapeValueFn, ReturnFix),
    /// A value entry of an `f32` or `f64` return.
    ValueFloat(FloatShapeValueFn, ReturnFix),
    /// A value entry of a `void` return.
    ValueVoid(ShapeValueFn),
    Shared(ShapeFn),
    Baked(ShapeFn, ReturnFix),
    RegisterFile(Box<RegisterFileCall>),
    Libffi(LibffiCall),
    /// A Win64 function's own trampolines ([`Options::abi`]).
    #[cfg(all(target_arch = "x86_64", unix))]
    Win64(Win64Path),
    /// Another path, with `errno` captured right after the target returns
    /// ([`Options::capture_errno`]).
    CapturingErrno(Box<Path>),
}

/// A native function bound to a signature.
///
/// On the JIT tier it owns a share of the mapping that holds its
/// trampolines; the mapping is unmapped when the last function placed in it
/// is dropped. A function bound through a [`Library`](crate::Library) keeps
/// that library loaded, and stops reaching it once the library is
/// [closed](crate::Library::close).
///
/// # Examples
///
/// ```
/// use jitcall::{Function, Signature, Value};
///
/// extern "C" fn add(a: i32, b: i32) -> i32 {
///     a.wrapping_add(b)
/// }
///
/// let sig: Signature = "(i32, i32) -> i32".parse()?;
/// // SAFETY: `add` has exactly this signature and lives forever.
/// let f = unsafe { Function::new(add as *const _, &sig)? };
/// // SAFETY: the signature is right for `add`.
/// let sum = unsafe { f.call(&[Value::I32(2), Value::I32(40)])? };
/// assert_eq!(sum, Value::I32(42));
///
/// let (args, mut ret) = ([2u64, 40], 0u64);
/// // SAFETY: two argument slots and one return slot, as the signature says.
/// unsafe { f.call_packed(args.as_ptr(), &mut ret) };
/// assert_eq!(ret, 42);
/// # Ok::<(), jitcall::Error>(())
/// ```
pub struct Function {
    path: Path,
    tier: Tier,
    target: *const c_void,
    sig: Signature,
    receiver: Option<*const c_void>,
    /// The packed entry, on the JIT tier: a [`PackedFn`], or a Win64
    /// function of the same parameters for a Win64 binding.
    packed: Option<*const c_void>,
    /// The shape's shared stub, on the shared tier.
    shape: Option<ShapeFn>,
    /// What the receiver entry is made of on the baked tier.
    thunk_receiver: Option<Arc<ThunkReceiver>>,
    code: Option<Arc<CodeBlock>>,
    library: Option<Arc<LibraryState>>,
}

// SAFETY: a Function is immutable after creation: its trampolines live in
// a read-only executable mapping shared through an Arc, its libffi call
// interface is only read, and the target is a code address. Calling it from
// several threads at once is as safe as calling the target itself.
unsafe impl Send for Function {}
// SAFETY: as for Send.
unsafe impl Sync for Function {}

impl fmt::Debug for Function {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Function")
            .field("target", &self.target)
            .field("sig", &self.sig.to_string())
            .field("tier", &self.tier)
            .field("jit_entry", &self.jit_entry())
            .field("receiver_entry", &self.receiver)
            .field("receiver_kind", &self.receiver_kind())
            .finish()
    }
}

/// Alignment of each trampoline inside a mapping.
const CODE_ALIGN: usize = 16;

/// A function to bind, as the batch API takes it.
pub(crate) struct Binding<'a> {
    pub target: *const c_void,
    pub sig: &'a Signature,
}

impl Function {
    /// Binds `target` to `sig` with the default [`Options`], choosing the
    /// tier: the JIT tier when the probe allows it and the signature is
    /// eligible, libffi otherwise ([`tier`](Self::tier) says why).
    ///
    /// # Safety
    ///
    /// `target` must be the address of a function with the host's C calling
    /// convention (or the one [`Options::abi`] names) and exactly this
    /// signature, and must stay valid for as
    /// long as the returned `Function` (and any entry point taken from it)
    /// is used.
    ///
    /// # Errors
    ///
    /// [`Error::NullTarget`], [`Error::UnsupportedType`] for `void` as an
    /// argument or `buffer` as the return type, [`Error::TooManyArgs`] for
    /// more than [`Signature::MAX_ARGS`] arguments, or [`Error::Libffi`]
    /// when libffi cannot prepare the fallback.
    pub unsafe fn new(target: *const c_void, sig: &Signature) -> Result<Function> {
        // SAFETY: forwarded from this function's contract.
        unsafe { Function::with_options(target, sig, &Options::default()) }
    }

    /// Binds `target` to `sig` with explicit [`Options`].
    ///
    /// # Safety
    ///
    /// As for [`Function::new`].
    ///
    /// # Errors
    ///
    /// As for [`Function::new`]; with [`Options::abi`] set,
    /// [`Error::AbiNotOnHost`] for a convention of another instruction set,
    /// and [`Error::NoCallPath`] when the function cannot take the JIT tier
    /// and libffi lacks its convention.
    pub unsafe fn with_options(
        target: *const c_void,
        sig: &Signature,
        options: &Options,
    ) -> Result<Function> {
        let mut functions = bind_batch(&[Binding { target, sig }], options, None)?;
        Ok(functions.remove(0))
    }

    /// Binds many functions at once, with all their trampolines in one
    /// mapping and one RW→RX flip: what a runtime does when it binds a
    /// library's symbol table.
    ///
    /// # Safety
    ///
    /// As for [`Function::new`], for every pair.
    ///
    /// # Errors
    ///
    /// As for [`Function::new`]; the first error fails the whole batch.
    ///
    /// # Examples
    ///
    /// ```
    /// use jitcall::{Function, Options, Signature};
    ///
    /// extern "C" fn neg(x: i64) -> i64 { x.wrapping_neg() }
    /// extern "C" fn half(x: f64) -> f64 { x / 2.0 }
    ///
    /// let (s1, s2) = ("(i64) -> i64".parse::<Signature>()?, "(f64) -> f64".parse::<Signature>()?);
    /// // SAFETY: each target has the signature it is paired with.
    /// let fs = unsafe {
    ///     Function::batch(&[(neg as *const _, &s1), (half as *const _, &s2)], &Options::default())?
    /// };
    /// assert_eq!(fs.len(), 2);
    /// # Ok::<(), jitcall::Error>(())
    /// ```
    pub unsafe fn batch(
        items: &[(*const c_void, &Signature)],
        options: &Options,
    ) -> Result<Vec<Function>> {
        let bindings: Vec<Binding> = items
            .iter()
            .map(|&(target, sig)| Binding { target, sig })
            .collect();
        bind_batch(&bindings, options, None)
    }

    /// Which tier this function's calls take, and why not the JIT one.
    pub fn tier(&self) -> Tier {
        self.tier
    }

    /// The signature the function was bound with.
    pub fn signature(&self) -> &Signature {
        &self.sig
    }

    /// The target function's address.
    pub fn target(&self) -> *const c_void {
        self.target
    }

    /// The packed-entry trampoline, a [`PackedFn`], on the JIT tier: a
    /// function of the binding's convention ([`Options::abi`]; for
    /// [`Abi::Win64`], `unsafe extern "win64" fn(*const u64, *mut u64)`).
    ///
    /// Valid while this `Function` lives.
    pub fn jit_entry(&self) -> Option<*const c_void> {
        self.packed
    }

    /// The shared stub this function's calls go through, on
    /// [`Tier::Shared`]: call it with the function's
    /// [`target`](Self::target) as the third argument. Valid while this
    /// `Function` lives.
    ///
    /// `None` for a function bound through a [`Library`](crate::Library):
    /// the stub is shared across libraries and cannot check whether this
    /// one is closed, which [`call_packed`](Self::call_packed) does.
    /// (Bind with [`Options::specialise`] for a raw entry that checks.)
    pub fn shape_entry(&self) -> Option<ShapeFn> {
        self.shape.filter(|_| self.library.is_none())
    }

    /// Whether calls go through the register-file stub: on
    /// [`Tier::Baked`], for a shape the baked set lacks. Such calls fill a
    /// register file from the signature's plan first, which costs more
    /// than a baked stub of the shape's own.
    pub fn uses_register_file(&self) -> bool {
        matches!(self.path, Path::RegisterFile(_))
    }

    /// The address range of the code mapping this function's trampolines
    /// live in: shared with the rest of its batch on [`Tier::Jit`], with
    /// every function of its shape on [`Tier::Shared`].
    pub fn code_mapping(&self) -> Option<std::ops::Range<u64>> {
        self.code
            .as_ref()
            .map(|block| block.addr()..block.addr() + block.len() as u64)
    }

    /// The receiver entry, when [`Options::receiver_entry`] asked for one
    /// and the signature is eligible for it: a trampoline of its own on the
    /// JIT tier, a static thunk on the baked tier (where the host has
    /// static thunks; [`receiver_kind`](Self::receiver_kind) says which).
    /// Valid while this `Function` lives.
    ///
    /// It is a function of the native C ABI (or of the convention
    /// [`Options::abi`] names) taking a receiver first, which it ignores, then the signature's arguments, and returning its return
    /// type. Cast it to the `extern "C" fn` type that matches:
    ///
    /// | signature type | the caller passes | the caller gets back |
    /// |---|---|---|
    /// | `i8`, `i16` | `i32`, sign-extended (the caller widens) | `i32`, narrowed and sign-extended by the entry |
    /// | `u8`, `u16`, `bool` | `u32`, zero-extended (the caller widens) | `u32`, narrowed and zero-extended by the entry |
    /// | `buffer` | `*const BufferView` (null passes null) | — |
    /// | any other | the type itself | the type itself |
    ///
    /// # Examples
    ///
    /// ```
    /// use std::ffi::c_void;
    /// use jitcall::{Function, Options, Signature};
    ///
    /// extern "C" fn add(a: i8, b: i32) -> u8 {
    ///     (a as i32 + b) as u8
    /// }
    ///
    /// let sig: Signature = "(i8, i32) -> u8".parse()?;
    /// let options = Options { receiver_entry: true, ..Options::default() };
    /// // SAFETY: `add` has exactly this signature.
    /// let f = unsafe { Function::with_options(add as *const c_void, &sig, &options)? };
    /// if let Some(entry) = f.receiver_entry() {
    ///     type Receiver = extern "C" fn(*const c_void, i32, i32) -> u32;
    ///     // SAFETY: the receiver entry of (i8, i32) -> u8, widened per the table.
    ///     let add = unsafe { std::mem::transmute::<*const c_void, Receiver>(entry) };
    ///     assert_eq!(add(std::ptr::null(), -1, 300), 43); // (299 as u8), zero-extended
    /// }
    /// # Ok::<(), jitcall::Error>(())
    /// ```
    pub fn receiver_entry(&self) -> Option<*const c_void> {
        self.receiver
    }

    /// How the receiver entry is made, if there is one.
    pub fn receiver_kind(&self) -> Option<ReceiverKind> {
        let receiver = self.receiver?;
        Some(match &self.thunk_receiver {
            None if receiver == self.target => ReceiverKind::Target,
            None => ReceiverKind::Trampoline,
            Some(thunk) if thunk.is_generic() => ReceiverKind::ThunkGeneric,
            Some(_) => ReceiverKind::ThunkStub,
        })
    }

    /// Calls the function with packed arguments: slot `i` of `args` holds
    /// argument `i` in its low bits (a buffer as the address of a
    /// [`BufferView`](crate::BufferView), a struct as the address of its
    /// bytes); the return value is stored to `*ret` sign- or zero-extended
    /// to 64 bits (`f32` in the low 32 bits), a struct return as its bytes
    /// from `ret` on, and `*ret` is untouched for `void`. The same on every
    /// tier.
    ///
    /// Once the function's library is [closed](crate::Library::close), the
    /// target is not called: the library's closed-call handler runs and
    /// the return buffer receives zeros (unless the return type is `void`).
    ///
    /// # Safety
    ///
    /// The function's signature must be the target's real signature (for
    /// a [`Library`](crate::Library) binding, this is where that promise is
    /// made). `args` must point to one readable `u64` per argument; `ret`
    /// to a writable `u64` for a scalar return, or to `max(8, size)`
    /// writable bytes, 8-byte aligned, for a struct return (nothing for
    /// `void`); buffer slots must hold null or the address of a valid
    /// `BufferView`, struct slots the address of the struct's bytes; the
    /// argument values must be valid for the target (pointers it
    /// dereferences must be valid).
    #[inline]
    pub unsafe fn call_packed(&self, args: *const u64, ret: *mut u64) {
        // The JIT tier's common case first, tested alone: a not-taken
        // branch, where a match would jump through a table.
        if let Path::Value(entry, fix) = &self.path {
            // SAFETY: as for the arm below.
            return unsafe { *ret = fix.finish(entry(args, self.target)) };
        }
        match &self.path {
            // SAFETY: the trampoline implements the packed convention for
            // this signature, and checks the library's closed byte itself
            // when bound from one; the caller meets its contract.
            Path::Jit(entry) => unsafe { entry(args, ret) },
            // SAFETY: the value entry loads the arguments as the packed
            // entry does and returns the target's value raw (0 once the
            // library is closed: its own check); `ret` is a scalar slot.
            Path::Value(entry, fix) => unsafe { *ret = fix.finish(entry(args, self.target)) },
            // SAFETY: as above, the value in the FP return register.
            Path::ValueFloat(entry, fix) => unsafe {
                *ret = fix.finish(entry(args, self.target).to_bits())
            },
            // SAFETY: as above; nothing to store.
            Path::ValueVoid(entry) => unsafe {
                entry(args, self.target);
            },
            Path::Shared(stub) => {
                if self.library_closed() {
                    // SAFETY: forwarded from this function's contract.
                    return unsafe { self.closed_call(ret) };
                }
                // SAFETY: the stub implements the packed convention for
                // this signature's shape, the target passed as data; the
                // caller meets its contract.
                unsafe { stub(args, ret, self.target) }
            }
            Path::Baked(stub, fix) => {
                if self.library_closed() {
                    // SAFETY: forwarded from this function's contract.
                    return unsafe { self.closed_call(ret) };
                }
                // SAFETY: as for a shared stub; the baked stub stores the
                // return raw, which the fix finishes in the slot it wrote.
                unsafe {
                    stub(args, ret, self.target);
                    fix.apply(ret);
                }
            }
            // SAFETY: forwarded from this function's contract.
            path => unsafe { self.call_out_of_line(path, args, ret) },
        }
    }

    /// Whether the function's library, if any, is closed.
    #[inline]
    fn library_closed(&self) -> bool {
        self.library.as_ref().is_some_and(|l| l.is_closed())
    }

    /// What a call does once the function's library is closed, as guarded
    /// trampolines do: tell the handler, zero the return buffer.
    ///
    /// # Safety
    ///
    /// `ret` holds as many writable bytes as the return needs.
    #[cold]
    unsafe fn closed_call(&self, ret: *mut u64) {
        if let Some(library) = &self.library {
            library.closed_call(self.target);
        }
        // SAFETY: `ret` holds this many writable bytes by the contract.
        unsafe { std::ptr::write_bytes(ret.cast::<u8>(), 0, return_bytes(self.sig.ret)) };
    }

    /// The register-file and libffi tiers' calls, out of line so that
    /// `call_packed`, inlined into callers, stays small.
    ///
    /// # Safety
    ///
    /// As for [`call_packed`](Self::call_packed).
    #[inline(never)]
    unsafe fn call_out_of_line(&self, path: &Path, args: *const u64, ret: *mut u64) {
        match path {
            Path::CapturingErrno(inner) => {
                // SAFETY: forwarded from this function's contract.
                unsafe { self.call_path(inner, args, ret) };
                // Nothing between the target's return and here calls into
                // the C library: errno is still the target's.
                crate::errno::capture();
            }
            // SAFETY: forwarded from this function's contract.
            path => unsafe { self.call_path(path, args, ret) },
        }
    }

    /// A call through one of the JIT tier's paths.
    ///
    /// # Safety
    ///
    /// As for [`call_packed`](Self::call_packed).
    #[inline]
    unsafe fn call_packed_jit(&self, path: &Path, args: *const u64, ret: *mut u64) {
        // SAFETY: as in `call_packed`.
        unsafe {
            match path {
                Path::Jit(entry) => entry(args, ret),
                Path::Value(entry, fix) => *ret = fix.finish(entry(args, self.target)),
                Path::ValueFloat(entry, fix) => {
                    *ret = fix.finish(entry(args, self.target).to_bits())
                }
                Path::ValueVoid(entry) => {
                    entry(args, self.target);
                }
                _ => unreachable!("JIT paths only"),
            }
        }
    }

    /// A call through `path`, the closed check included.
    ///
    /// # Safety
    ///
    /// As for [`call_packed`](Self::call_packed).
    unsafe fn call_path(&self, path: &Path, args: *const u64, ret: *mut u64) {
        match path {
            Path::Jit(_) | Path::Value(..) | Path::ValueFloat(..) | Path::ValueVoid(_) => {
                // SAFETY: as in `call_packed`; the trampolines check the
                // library's closed byte themselves.
                return unsafe { self.call_packed_jit(path, args, ret) };
            }
            // SAFETY: as above, the trampolines Win64 functions.
            #[cfg(all(target_arch = "x86_64", unix))]
            Path::Win64(win64) => return unsafe { win64.call(self.target, args, ret) },
            _ => {}
        }
        if self.library_closed() {
            // SAFETY: forwarded from this function's contract.
            return unsafe { self.closed_call(ret) };
        }
        match path {
            // SAFETY: as in `call_packed`.
            Path::Shared(stub) => unsafe { stub(args, ret, self.target) },
            // SAFETY: as in `call_packed`.
            Path::Baked(stub, fix) => unsafe {
                stub(args, ret, self.target);
                fix.apply(ret);
            },
            // SAFETY: forwarded from this function's contract.
            Path::RegisterFile(call) => unsafe { call.call_packed(self.target, args, ret) },
            // SAFETY: forwarded from this function's contract.
            Path::Libffi(call) => unsafe { call.call_packed(self.target, args, ret) },
            Path::Jit(_) | Path::Value(..) | Path::ValueFloat(..) | Path::ValueVoid(_) => {
                unreachable!("taken above")
            }
            #[cfg(all(target_arch = "x86_64", unix))]
            Path::Win64(_) => unreachable!("taken above"),
            Path::CapturingErrno(_) => unreachable!("paths capture errno once, outermost"),
        }
    }

    /// Calls the function with typed values, checking their count and types
    /// against the signature first.
    ///
    /// # Safety
    ///
    /// The function's signature must be the target's real signature, and
    /// the values must be valid for the target: pointers and buffers it
    /// dereferences must be valid for the accesses it makes.
    ///
    /// # Errors
    ///
    /// [`Error::LibraryClosed`] once the function's library is closed;
    /// [`Error::ArgCount`] or [`Error::ArgType`] on a mismatch. Nothing is
    /// called then.
    pub unsafe fn call(&self, args: &[Value]) -> Result<Value> {
        if self.library.as_ref().is_some_and(|l| l.is_closed()) {
            return Err(Error::LibraryClosed);
        }
        if args.len() != self.sig.args.len() {
            return Err(Error::ArgCount {
                expected: self.sig.args.len(),
                got: args.len(),
            });
        }
        for (index, (value, &expected)) in args.iter().zip(&self.sig.args).enumerate() {
            if value.ty() != expected {
                return Err(Error::ArgType {
                    index,
                    expected,
                    got: value.ty(),
                });
            }
        }
        // The slots and the return buffer (8-byte aligned, as long as the
        // return needs) on the stack for common signatures: no allocation
        // per call below 32 arguments and 64 bytes of return.
        let (mut small_slots, mut large_slots) = ([0u64; 32], Vec::new());
        let slots: &mut [u64] = if args.len() <= small_slots.len() {
            &mut small_slots[..args.len()]
        } else {
            large_slots.resize(args.len(), 0);
            &mut large_slots
        };
        for (slot, value) in slots.iter_mut().zip(args) {
            *slot = value.as_slot();
        }
        let words = return_bytes(self.sig.ret).div_ceil(8).max(1);
        let (mut small_ret, mut large_ret) = ([0u64; 8], Vec::new());
        let ret: &mut [u64] = if words <= small_ret.len() {
            &mut small_ret[..words]
        } else {
            large_ret.resize(words, 0);
            &mut large_ret
        };
        // SAFETY: one slot per argument, each of the declared type (buffer
        // and struct slots address data inside `args`, alive for the call);
        // `ret` is as large as the return needs; the caller vouches for the
        // signature and the values.
        unsafe { self.call_packed(slots.as_ptr(), ret.as_mut_ptr()) };
        Ok(match self.sig.ret {
            Type::Struct(layout) => {
                // SAFETY: `ret` holds at least the struct's size in bytes,
                // initialised (zeroed, then written by the call).
                let bytes = unsafe {
                    std::slice::from_raw_parts(ret.as_ptr().cast::<u8>(), layout.size() as usize)
                };
                Value::Struct(StructValue::from_bytes(layout, bytes)?)
            }
            scalar => Value::from_slot(scalar, ret[0]),
        })
    }
}

/// How many bytes a packed call's return buffer must hold for a return of
/// type `ty`: none for `void`, one slot for a scalar, `max(8, size)` for a
/// struct.
pub(crate) fn return_bytes(ty: Type) -> usize {
    match ty {
        Type::Void => 0,
        Type::Struct(layout) => (layout.size() as usize).max(8),
        _ => 8,
    }
}

/// The path and tier of compiled-in code for `sig` (its classified
/// `plan`), the JIT unavailable for `why`: in the order
/// [`compiled_in_tier`] decides.
fn compiled_in(sig: &Signature, plan: Plan, why: Fallback) -> Result<(Path, Tier)> {
    let path = match (baked::stub(sig), baked::register_file()) {
        (Some((stub, fix)), _) => Path::Baked(stub, fix),
        (None, Some(stub)) => Path::RegisterFile(Box::new(RegisterFileCall::new(stub, &plan))),
        (None, None) => Path::Libffi(LibffiCall::new(sig)?),
    };
    Ok((path, compiled_in_tier(sig, why)))
}

/// Binds a batch: decides every binding's tier, emits the trampolines of
/// those that get their own into one mapping, finds or makes shared stubs
/// for those bound alone, and prepares the compiled-in and libffi paths of
/// the rest.
pub(crate) fn bind_batch(
    bindings: &[Binding],
    options: &Options,
    library: Option<&Arc<LibraryState>>,
) -> Result<Vec<Function>> {
    check_abi(options)?;
    for b in bindings {
        if b.target.is_null() {
            return Err(Error::NullTarget);
        }
        check_bindable(b.sig)?;
    }
    let abi = options.abi.or(Abi::host());
    let native = abi == Abi::host();
    let own = bindings.len() > 1 || options.receiver_entry || options.specialise;
    let mut decisions: Vec<Decision> = bindings
        .iter()
        .map(|b| decide(b.sig, options, own))
        .collect();
    let mut receivers: Vec<Option<Plan>> = decisions
        .iter()
        .zip(bindings)
        .map(|(decision, b)| match (decision, options.receiver_entry) {
            (Decision::Own(plan), true) => {
                classify(b.sig, plan.abi, Entry::Receiver, &options.limits).ok()
            }
            _ => None,
        })
        .collect();
    // A receiver entry that would move nothing is the target itself: no
    // argument changes register (none, or FP ones only, which the receiver
    // does not shift), the return needs no narrowing, and no closed check
    // is due. A variadic signature keeps its trampoline, which sets al.
    let direct_receivers: Vec<bool> = receivers
        .iter_mut()
        .zip(bindings)
        .map(|(receiver, b)| {
            let direct = library.is_none()
                && b.sig.variadic.is_none()
                && receiver.as_ref().is_some_and(moves_nothing);
            if direct {
                *receiver = None;
            }
            direct
        })
        .collect();

    // Every trampoline of its own to place, with its target, in order.
    // Beside each packed entry (the raw entry's contract), a value entry
    // for call_packed, which tail-calls the target where it can: for every
    // return but a struct.
    let mut values: Vec<Option<Plan>> = decisions
        .iter()
        .map(|decision| match decision {
            Decision::Own(plan) => value_plan(plan),
            _ => None,
        })
        .collect();
    let pieces: Vec<(&Plan, u64)> = decisions
        .iter()
        .zip(&values)
        .zip(&receivers)
        .zip(bindings)
        .flat_map(|(((decision, value), receiver), b)| {
            let packed = match decision {
                Decision::Own(plan) => Some(plan),
                _ => None,
            };
            let target = b.target as u64;
            packed
                .into_iter()
                .chain(value)
                .chain(receiver)
                .map(move |plan| (plan, target))
        })
        .collect();
    // Functions bound from a library check its closed byte at entry.
    let guard = library.map(|state| Guard {
        cell: state.cell(),
        on_closed: on_closed_handler(abi),
    });
    let mut entries = Vec::with_capacity(pieces.len());
    let code = if pieces.is_empty() {
        None
    } else {
        let bound: usize = pieces
            .iter()
            .map(|(plan, _)| emit_bound(plan, guard.is_some()).next_multiple_of(CODE_ALIGN))
            .sum();
        let fill = |base: u64, bytes: &mut [u8]| {
            let mut at = 0;
            let mut placed = EhFrame::with_capacity(pieces.len());
            let mut names = Names::new(base);
            for &(plan, target) in &pieces {
                let address = base + at as u64;
                let placement = Placement {
                    base: address,
                    target: Target::Known(target),
                    guard,
                };
                let Emitted { code, unwind } = emit_with_unwind(plan, &placement);
                bytes[at..at + code.len()].copy_from_slice(&code);
                names.add(address, code.len(), || {
                    let who = perf_map::symbol_or_address(target);
                    perf_map::name(&who, plan, plan.entry.name())
                });
                entries.push(address);
                placed.add(address, &unwind);
                at = (at + code.len()).next_multiple_of(CODE_ALIGN);
            }
            (placed, names)
        };
        let block = if double_mapped(options) {
            CodeBlock::build_double_mapped(bound, fill)
        } else {
            // Near the first target: a batch usually binds one library.
            let near = pieces.first().map(|&(_, target)| target);
            CodeBlock::build(bound, near, fill)
        };
        match block {
            Ok(block) => Some(Arc::new(block)),
            Err(refused) => {
                let why = Fallback::MemoryRefused(refused);
                for decision in &mut decisions {
                    let own = std::mem::replace(decision, Decision::Libffi(Fallback::Forced));
                    *decision = match own {
                        Decision::Own(plan) if native => Decision::CompiledIn(plan, why),
                        Decision::Own(_) => Decision::Libffi(why),
                        other => other,
                    };
                }
                receivers.iter_mut().for_each(|r| *r = None);
                values.iter_mut().for_each(|v| *v = None);
                None
            }
        }
    };

    let mut entries = entries.into_iter();
    decisions
        .into_iter()
        .zip(values)
        .zip(receivers)
        .zip(direct_receivers)
        .zip(bindings)
        .map(|((((decision, value), receiver), direct_receiver), b)| {
            let (mut packed, mut shape) = (None, None);
            let mut mapping = None;
            let mut compiled_in_plan = None;
            let (path, tier) = match decision {
                Decision::Own(_) => {
                    let entry = entries.next().expect("one entry per placed plan");
                    mapping = code.clone();
                    packed = Some(entry as *const c_void);
                    let value = value.map(|_| entries.next().expect("one entry per placed plan"));
                    (own_path(b.sig.ret, abi, entry, value), Tier::Jit)
                }
                Decision::Shared(plan) => match shapes::stubs(&plan) {
                    Ok(stubs) => {
                        mapping = Some(stubs.block);
                        shape = Some(stubs.packed);
                        // Through the shape's value stub, for a function of
                        // no library (a shared stub cannot check a
                        // library's closed byte).
                        match stubs.value.filter(|_| library.is_none()) {
                            Some(value) => (value_path(b.sig.ret, Some(value), None), Tier::Shared),
                            None => (Path::Shared(stubs.packed), Tier::Shared),
                        }
                    }
                    Err(refused) => {
                        compiled_in_plan = Some(plan.clone());
                        compiled_in(b.sig, plan, Fallback::MemoryRefused(refused))?
                    }
                },
                Decision::CompiledIn(plan, why) => {
                    compiled_in_plan = Some(plan.clone());
                    compiled_in(b.sig, plan, why)?
                }
                Decision::Libffi(why) => (
                    Path::Libffi(LibffiCall::for_abi(b.sig, options.abi, why)?),
                    Tier::Libffi(why),
                ),
            };
            let mut receiver = receiver
                .map(|_| entries.next().expect("one entry per placed plan") as *const c_void);
            if direct_receiver {
                receiver = Some(b.target);
            }
            // On the baked tier, a receiver entry made of a static thunk.
            let thunk_receiver = match (&compiled_in_plan, tier) {
                (Some(plan), Tier::Baked(_)) if options.receiver_entry => {
                    ThunkReceiver::new(b.sig, b.target, plan, &options.limits, library)
                        .map(Arc::new)
                }
                _ => None,
            };
            if let Some(thunk) = &thunk_receiver {
                receiver = Some(thunk.entry());
                if let Some(library) = library {
                    library.add_thunk_receiver(thunk);
                }
            }
            let path = if options.capture_errno {
                Path::CapturingErrno(Box::new(path))
            } else {
                path
            };
            Ok(Function {
                path,
                tier,
                target: b.target,
                sig: b.sig.clone(),
                receiver,
                packed,
                shape,
                thunk_receiver,
                code: mapping,
                library: library.cloned(),
            })
        })
        .collect()
}
