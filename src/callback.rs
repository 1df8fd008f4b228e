//! [`Callback`]: a C function pointer made from a runtime's function.
//!
//! Native code calls a callback with the C ABI of its signature; the
//! callback collects the arguments into packed slots and calls its handler,
//! `handler(data, args, ret)`, then returns what the handler wrote to
//! `ret` in the native return registers. Three tiers make the code pointer:
//!
//! | tier | code | when |
//! |---|---|---|
//! | [`Tier::Jit`] | a reverse trampoline of its own, specialised to the signature, with the handler and its data built in | the JIT is available |
//! | [`Tier::Baked`] | a static thunk ([`crate::thunks`]) whose data word is the callback's context, jumping to the generic reverse stub compiled into the library, which spills the argument registers for Rust to read as the signature's plan says | the JIT is refused, or [`Options::avoid_jit`] |
//! | [`Tier::Libffi`] | a libffi closure | an ineligible signature, no static thunks, or [`Options::force_libffi`] |
//!
//! Every tier hands the handler the same slots: one `u64` per argument,
//! integers extended to 64 bits as their type says, an `f32`'s bits in the
//! low half (upper half zero), a buffer as the pointer the caller passed,
//! a struct as the address of its bytes (valid during the call). The
//! handler writes the return value to `*ret` (a scalar in the packed
//! encoding) or, for a struct return, the struct's bytes to the
//! `max(8, size)`-byte buffer `ret` points to.

use std::any::Any;
use std::ffi::c_void;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use jitcall_emitters::unwind::EhFrame;
use jitcall_emitters::{
    emit_callback_bound, emit_callback_with_unwind, CallbackPlacement, Emitted,
};
use libffi::middle::Cif;

use crate::fallback::ffi_type;
use crate::function::{check_bindable, double_mapped, return_bytes, Fallback, Options, Tier};
use crate::memory::{CodeBlock, MemoryRefused};
use crate::perf_map::{self, Names};
use crate::probe::{jit_status, JitUnavailable};
use crate::thunks::{self, Thunk};
use crate::value::widen;
use crate::{classify, Abi, Entry, Error, Loc, Passing, Plan, Result, ReturnPass, Signature};
use crate::{Source, Type};

/// The C-style handler every tier calls: `data` as given, one packed slot
/// per argument at `args`, and the return buffer at `ret`.
pub type CallbackFn = unsafe extern "C" fn(data: *mut c_void, args: *const u64, ret: *mut u64);

/// What a callback calls, and what it owns to keep the data alive.
struct Handler {
    func: CallbackFn,
    data: *mut c_void,
    /// The boxed closure `data` points to, for [`Callback::new`].
    _owned: Option<Box<dyn Any + Send + Sync>>,
}

/// A C function pointer that calls a handler: see the module docs.
///
/// # Examples
///
/// ```
/// use jitcall::{Callback, Signature};
///
/// let sig: Signature = "(i32, i32) -> i32".parse()?;
/// let add = Callback::new(&sig, |args, ret| {
///     *ret = (args[0] as i32).wrapping_add(args[1] as i32) as i64 as u64;
/// })?;
/// // SAFETY: the code pointer has the C ABI of (i32, i32) -> i32 and lives
/// // as long as `add`.
/// let f: extern "C" fn(i32, i32) -> i32 = unsafe { std::mem::transmute(add.code_ptr()) };
/// assert_eq!(f(40, 2), 42);
/// # Ok::<(), jitcall::Error>(())
/// ```
pub struct Callback {
    code: *const c_void,
    tier: Tier,
    sig: Signature,
    /// What keeps the code pointer valid.
    _backing: Backing,
    /// Dropped last: the code above refers to it.
    _handler: Box<Handler>,
}

// SAFETY: a Callback is immutable after creation; its handler is Send +
// Sync (closures by their bound, raw handlers by `from_raw`'s contract),
// and its code is read-only.
unsafe impl Send for Callback {}
// SAFETY: as for Send.
unsafe impl Sync for Callback {}

impl fmt::Debug for Callback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Callback")
            .field("code_ptr", &self.code)
            .field("sig", &self.sig.to_string())
            .field("tier", &self.tier)
            .finish()
    }
}

/// What a callback's code pointer lives in: owned, never read, dropped
/// with the callback.
enum Backing {
    /// A reverse trampoline in a JIT mapping.
    Jit {
        _block: Arc<CodeBlock>,
    },
    /// A static thunk to the generic reverse stub, and the context its
    /// data word points to.
    Thunk {
        _thunk: Thunk,
        _context: Box<GenericCallback>,
    },
    Libffi {
        _closure: LibffiClosure,
    },
}

/// A Rust handler with what its glue needs to know.
struct Closure<F> {
    args: usize,
    /// Whether `ret` is a struct's buffer, whose address the handler gets.
    struct_return: bool,
    f: F,
}

/// The glue between [`CallbackFn`] and a Rust handler. A panic aborts the
/// process: it would otherwise unwind into C code.
unsafe extern "C" fn closure_glue<F>(data: *mut c_void, args: *const u64, ret: *mut u64)
where
    F: Fn(&[u64], &mut u64) + Send + Sync + 'static,
{
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `data` is the Closure<F> this glue was made for, kept
        // alive by its Callback while the code pointer may be called.
        let closure = unsafe { &*data.cast::<Closure<F>>() };
        // SAFETY: every tier passes one slot per argument.
        let args = unsafe { std::slice::from_raw_parts(args, closure.args) };
        if closure.struct_return {
            let mut buffer = ret as u64;
            (closure.f)(args, &mut buffer);
        } else {
            // SAFETY: every tier passes a writable 8-byte return slot for a
            // scalar return (unused for void).
            (closure.f)(args, unsafe { &mut *ret });
        }
    }));
    if outcome.is_err() {
        eprintln!("jitcall: a callback handler panicked; aborting, since it was called from C");
        std::process::abort();
    }
}

impl Callback {
    /// A callback for `sig` that calls `handler(args, ret)`: `args` holds
    /// one packed slot per argument (see the module docs), `*ret` receives
    /// the return value in the packed encoding. For a struct return,
    /// `*ret` holds the address of a `max(8, size)`-byte buffer on entry,
    /// into which the handler writes the struct.
    ///
    /// The callback may be called from any thread, as often as C likes,
    /// while it lives. A panic in `handler` aborts the process with a
    /// message: it cannot unwind through C.
    ///
    /// # Errors
    ///
    /// [`Error::VariadicCallback`] for a variadic signature;
    /// [`Error::UnsupportedType`] for `void` as an argument or `buffer`
    /// as the return type; [`Error::TooManyArgs`]; [`Error::Libffi`] when
    /// the last tier cannot be prepared.
    pub fn new<F>(sig: &Signature, handler: F) -> Result<Callback>
    where
        F: Fn(&[u64], &mut u64) + Send + Sync + 'static,
    {
        Callback::with_options(sig, &Options::default(), handler)
    }

    /// [`Callback::new`] with explicit [`Options`]: `force_libffi`,
    /// `avoid_jit`, `double_map` and `limits` apply as for functions;
    /// `abi` must be `None` or the host's (callbacks follow the host's C
    /// ABI: [`Error::CallbackAbi`] otherwise).
    ///
    /// # Errors
    ///
    /// As for [`Callback::new`].
    pub fn with_options<F>(sig: &Signature, options: &Options, handler: F) -> Result<Callback>
    where
        F: Fn(&[u64], &mut u64) + Send + Sync + 'static,
    {
        let closure = Box::new(Closure {
            args: sig.args.len(),
            struct_return: sig.ret.as_struct().is_some(),
            f: handler,
        });
        let data = std::ptr::addr_of!(*closure).cast_mut().cast::<c_void>();
        let handler = Handler {
            func: closure_glue::<F>,
            data,
            _owned: Some(closure),
        };
        let mut made = make(vec![(sig, handler)], options)?;
        Ok(made.remove(0))
    }

    /// A callback for `sig` that calls `handler(data, args, ret)`, as an
    /// interpreter written against a C API wants: `args` holds one packed
    /// slot per argument, `ret` points to the return slot, or to a
    /// `max(8, size)`-byte buffer for a struct return.
    ///
    /// # Safety
    ///
    /// `handler` must be callable with `data` from any thread, while the
    /// callback lives, and must not unwind.
    ///
    /// # Errors
    ///
    /// As for [`Callback::new`].
    pub unsafe fn from_raw(
        sig: &Signature,
        handler: CallbackFn,
        data: *mut c_void,
        options: &Options,
    ) -> Result<Callback> {
        let handler = Handler {
            func: handler,
            data,
            _owned: None,
        };
        let mut made = make(vec![(sig, handler)], options)?;
        Ok(made.remove(0))
    }

    /// Many raw callbacks at once, with all their JIT code in one mapping
    /// and one flip.
    ///
    /// # Safety
    ///
    /// As for [`Callback::from_raw`], for every item.
    ///
    /// # Errors
    ///
    /// As for [`Callback::new`]; the first error fails the batch.
    pub unsafe fn batch(
        items: &[(&Signature, CallbackFn, *mut c_void)],
        options: &Options,
    ) -> Result<Vec<Callback>> {
        let items: Vec<(&Signature, Handler)> = items
            .iter()
            .map(|&(sig, func, data)| {
                (
                    sig,
                    Handler {
                        func,
                        data,
                        _owned: None,
                    },
                )
            })
            .collect();
        make(items, options)
    }

    /// The callback's C function pointer: cast it to the `extern "C" fn`
    /// type of its signature. Valid while this `Callback` lives; calling it
    /// afterwards, from any thread, is the caller's bug.
    pub fn code_ptr(&self) -> *const c_void {
        self.code
    }

    /// Which tier made the code pointer, and why not the JIT one.
    pub fn tier(&self) -> Tier {
        self.tier
    }

    /// The signature the callback was made for.
    pub fn signature(&self) -> &Signature {
        &self.sig
    }
}

/// The decision for one callback.
enum Decision {
    Jit(Plan),
    Baked(Plan, Fallback),
    Libffi(Fallback),
}

/// The tier a callback for `sig` takes with `options`, before any code is
/// placed: as for functions, but without shared stubs.
fn decide(sig: &Signature, options: &Options) -> Decision {
    if options.force_libffi {
        return Decision::Libffi(Fallback::Forced);
    }
    let Some(abi) = Abi::host() else {
        return Decision::Libffi(Fallback::JitUnavailable(JitUnavailable::UnsupportedAbi));
    };
    let plan = match classify(sig, abi, Entry::Packed, &options.limits) {
        Ok(plan) => plan,
        Err(rule) => return Decision::Libffi(Fallback::Ineligible(rule)),
    };
    if options.avoid_jit {
        return Decision::Baked(plan, Fallback::Forced);
    }
    if double_mapped(options) {
        return Decision::Jit(plan);
    }
    match jit_status() {
        Ok(()) => Decision::Jit(plan),
        Err(why) => Decision::Baked(plan, Fallback::JitUnavailable(why)),
    }
}

/// Makes the callbacks of a batch: reverse trampolines in one mapping for
/// those on the JIT tier, thunks or libffi closures for the rest.
fn make(items: Vec<(&Signature, Handler)>, options: &Options) -> Result<Vec<Callback>> {
    if let Some(abi) = options.abi.filter(|&abi| Some(abi) != Abi::host()) {
        return Err(Error::CallbackAbi { abi });
    }
    for (sig, _) in &items {
        if sig.variadic.is_some() {
            return Err(Error::VariadicCallback);
        }
        check_bindable(sig)?;
    }
    let decisions: Vec<Decision> = items.iter().map(|(sig, _)| decide(sig, options)).collect();
    // The JIT tier's reverse trampolines, placed together.
    let jit = jit_block(&items, &decisions, options);
    let mut entries = match &jit {
        Ok(Some((_, entries))) => entries.clone().into_iter(),
        _ => Vec::new().into_iter(),
    };
    items
        .into_iter()
        .zip(decisions)
        .map(|((sig, handler), decision)| {
            let handler = Box::new(handler);
            let (code, tier, backing) = match decision {
                Decision::Jit(plan) => match &jit {
                    Ok(Some((block, _))) => {
                        let entry = entries.next().expect("one entry per placed callback");
                        (
                            entry as *const c_void,
                            Tier::Jit,
                            Backing::Jit {
                                _block: Arc::clone(block),
                            },
                        )
                    }
                    Ok(None) => unreachable!("a JIT decision has a block"),
                    Err(refused) => baked(sig, plan, &handler, Fallback::MemoryRefused(*refused))?,
                },
                Decision::Baked(plan, why) => baked(sig, plan, &handler, why)?,
                Decision::Libffi(why) => libffi(sig, &handler, why)?,
            };
            Ok(Callback {
                code,
                tier,
                sig: sig.clone(),
                _backing: backing,
                _handler: handler,
            })
        })
        .collect()
}

/// A mapping of reverse trampolines and where each starts.
type JitBlock = (Arc<CodeBlock>, Vec<u64>);

/// The reverse trampolines of the batch's callbacks on the JIT tier, in
/// one mapping, with where each starts; `None` when there are none.
fn jit_block(
    items: &[(&Signature, Handler)],
    decisions: &[Decision],
    options: &Options,
) -> std::result::Result<Option<JitBlock>, MemoryRefused> {
    let pieces: Vec<(&Plan, &Handler)> = decisions
        .iter()
        .zip(items)
        .filter_map(|(decision, (_, handler))| match decision {
            Decision::Jit(plan) => Some((plan, handler)),
            _ => None,
        })
        .collect();
    if pieces.is_empty() {
        return Ok(None);
    }
    let bound: usize = pieces
        .iter()
        .map(|(plan, _)| emit_callback_bound(plan).next_multiple_of(CODE_ALIGN))
        .sum();
    let mut entries = Vec::with_capacity(pieces.len());
    let fill = |base: u64, bytes: &mut [u8]| {
        let mut at = 0;
        let mut placed = EhFrame::with_capacity(pieces.len());
        let mut names = Names::new(base);
        for &(plan, handler) in &pieces {
            let address = base + at as u64;
            let placement = CallbackPlacement {
                base: address,
                handler: handler.func as usize as u64,
                data: handler.data as u64,
            };
            let Emitted { code, unwind } = emit_callback_with_unwind(plan, &placement);
            bytes[at..at + code.len()].copy_from_slice(&code);
            names.add(address, code.len(), || {
                perf_map::name("callback", plan, "reverse")
            });
            entries.push(address);
            placed.add(address, &unwind);
            at = (at + code.len()).next_multiple_of(CODE_ALIGN);
        }
        (placed, names)
    };
    let block = if double_mapped(options) {
        CodeBlock::build_double_mapped(bound, fill)?
    } else {
        // Near the first handler: direct calls where they reach.
        let near = pieces
            .first()
            .map(|(_, handler)| handler.func as usize as u64);
        CodeBlock::build(bound, near, fill)?
    };
    Ok(Some((Arc::new(block), entries)))
}

/// Alignment of each reverse trampoline in a mapping.
const CODE_ALIGN: usize = 16;

/// A callback on the baked tier: a static thunk to the generic reverse
/// stub, with the context it reads; on libffi when static thunks are
/// unavailable, for the same reason.
fn baked(
    sig: &Signature,
    plan: Plan,
    handler: &Handler,
    why: Fallback,
) -> Result<(*const c_void, Tier, Backing)> {
    let Ok(thunk) = thunks::thunk() else {
        return libffi(sig, handler, why);
    };
    let context = Box::new(GenericCallback::new(plan, handler));
    thunk.set(std::ptr::addr_of!(*context).cast(), stubs::generic());
    let entry = thunk.entry();
    let backing = Backing::Thunk {
        _thunk: thunk,
        _context: context,
    };
    Ok((entry, Tier::Baked(why), backing))
}

/// A callback on libffi: a closure whose glue makes the slots.
fn libffi(
    sig: &Signature,
    handler: &Handler,
    why: Fallback,
) -> Result<(*const c_void, Tier, Backing)> {
    let closure = LibffiClosure::new(sig, handler)?;
    let code = closure.code;
    Ok((
        code,
        Tier::Libffi(why),
        Backing::Libffi { _closure: closure },
    ))
}

/// A libffi closure and what its glue reads.
struct LibffiClosure {
    closure: *mut libffi::low::ffi_closure,
    code: *const c_void,
    /// Referred to by the closure; dropped after it is freed.
    _cif: Box<Cif>,
    _context: Box<FfiContext>,
}

/// What the libffi glue needs: the types, and the handler.
struct FfiContext {
    args: Box<[Type]>,
    ret: Type,
    func: CallbackFn,
    data: *mut c_void,
}

impl LibffiClosure {
    fn new(sig: &Signature, handler: &Handler) -> Result<LibffiClosure> {
        // The closure reads each argument at its own type: libffi does
        // the ABI's work, and narrow values come out whole.
        let args = sig.args.iter().map(|&t| ffi_type(t));
        let cif = Box::new(
            Cif::try_new(args, ffi_type(sig.ret)).map_err(|e| Error::Libffi(format!("{e:?}")))?,
        );
        let context = Box::new(FfiContext {
            args: sig.args.clone().into_boxed_slice(),
            ret: sig.ret,
            func: handler.func,
            data: handler.data,
        });
        let (closure, code) = libffi::low::try_closure_alloc()
            .ok_or_else(|| Error::Libffi("ffi_closure_alloc failed".to_string()))?;
        // SAFETY: the closure was just allocated; the cif and the context
        // are boxed, so their addresses stay valid for the closure's life,
        // which ends in Drop before theirs.
        let prepared = unsafe {
            libffi::low::prep_closure(
                closure,
                cif.as_raw_ptr(),
                ffi_glue,
                std::ptr::addr_of!(*context),
                code,
            )
        };
        if let Err(e) = prepared {
            // SAFETY: allocated above, never handed out.
            unsafe { libffi::low::closure_free(closure) };
            return Err(Error::Libffi(format!("{e:?}")));
        }
        Ok(LibffiClosure {
            closure,
            code: code.as_ptr().cast(),
            _cif: cif,
            _context: context,
        })
    }
}

impl Drop for LibffiClosure {
    fn drop(&mut self) {
        // SAFETY: allocated by ffi_closure_alloc and freed once; its
        // Callback, which alone hands out the code pointer, is going.
        unsafe { libffi::low::closure_free(self.closure) };
    }
}

/// What a libffi closure calls: the arguments as libffi found them, one
/// pointer each, made into packed slots; the handler's return written back
/// as libffi wants it (integers as a whole `ffi_arg`).
unsafe extern "C" fn ffi_glue(
    _cif: &libffi::low::ffi_cif,
    result: &mut u8,
    args: *const *const c_void,
    context: &FfiContext,
) {
    let n = context.args.len();
    let mut slots_small = [0u64; 32];
    let mut slots_large = Vec::new();
    let slots: &mut [u64] = if n <= slots_small.len() {
        &mut slots_small[..n]
    } else {
        slots_large.resize(n, 0);
        &mut slots_large
    };
    for (i, &ty) in context.args.iter().enumerate() {
        // SAFETY: libffi passes one pointer per argument, to a value of
        // the cif's type for it.
        let at = unsafe { *args.add(i) };
        // SAFETY: as above, read at the type's size.
        slots[i] = unsafe {
            match ty {
                Type::Struct(_) => at as u64,
                Type::Bool | Type::U8 => u64::from(*at.cast::<u8>()),
                Type::I8 => *at.cast::<i8>() as i64 as u64,
                Type::U16 => u64::from(*at.cast::<u16>()),
                Type::I16 => *at.cast::<i16>() as i64 as u64,
                Type::U32 | Type::F32 => u64::from(*at.cast::<u32>()),
                Type::I32 => *at.cast::<i32>() as i64 as u64,
                _ => *at.cast::<u64>(),
            }
        };
    }
    let bytes = return_bytes(context.ret).max(8).next_multiple_of(8);
    let mut ret_small = [0u64; 8];
    let mut ret_large = Vec::new();
    let ret: *mut u64 = if bytes <= 64 {
        ret_small.as_mut_ptr()
    } else {
        ret_large.resize(bytes / 8, 0);
        ret_large.as_mut_ptr()
    };
    // SAFETY: the handler's contract: one slot per argument, a return
    // buffer as large as the return needs.
    unsafe { (context.func)(context.data, slots.as_ptr(), ret) };
    let result: *mut u8 = result;
    // SAFETY: libffi's result buffer holds an ffi_arg for scalar returns
    // and the struct's size for a struct.
    unsafe {
        match context.ret {
            Type::Void => {}
            Type::Struct(layout) => {
                std::ptr::copy_nonoverlapping(ret.cast::<u8>(), result, layout.size() as usize);
            }
            Type::F32 => result.cast::<u32>().write_unaligned(*ret as u32),
            ty => result.cast::<u64>().write_unaligned(widen(ty, *ret)),
        }
    }
}

/// The context the generic reverse stub passes Rust.
struct GenericCallback {
    plan: Plan,
    func: CallbackFn,
    data: *mut c_void,
    /// Where in the struct area each argument that arrives in pieces is
    /// put together (`usize::MAX` for the others), 8-byte aligned.
    copies: Box<[usize]>,
    /// The struct area's size.
    copy_bytes: usize,
}

impl GenericCallback {
    fn new(plan: Plan, handler: &Handler) -> GenericCallback {
        let mut copy_bytes = 0;
        let copies = plan
            .arg_types
            .iter()
            .zip(&plan.passing)
            .map(|(ty, passing)| match passing {
                Passing::Registers | Passing::Hfa { .. } => {
                    let at = copy_bytes;
                    copy_bytes += (ty.size() as usize).next_multiple_of(8);
                    at
                }
                _ => usize::MAX,
            })
            .collect();
        GenericCallback {
            plan,
            func: handler.func,
            data: handler.data,
            copies,
            copy_bytes,
        }
    }
}

/// The argument registers the generic stub spills: the GP ones first, then
/// (on AArch64) x8, a word of padding and the FP ones.
#[cfg(target_arch = "x86_64")]
mod spill {
    pub(super) const FP: usize = 6;
    /// Where a memory return's address arrives: rdi.
    pub(super) const RETURN_ADDRESS: usize = 0;
}
#[cfg(not(target_arch = "x86_64"))]
mod spill {
    pub(super) const FP: usize = 10;
    /// Where a memory return's address arrives: x8.
    pub(super) const RETURN_ADDRESS: usize = 8;
}

/// The return registers the generic stub loads after the call: rax, rdx
/// and xmm0–1 (x0, x1 and d0–3 on AArch64).
#[repr(C)]
#[derive(Default)]
struct ReturnRegisters {
    gp: [u64; 2],
    fp: [u64; 4],
}

/// `raw` as the slot of an argument of `ty`: extended to 64 bits as the
/// type says, an `f32` in the low half with the upper one clear.
fn clean(ty: Type, raw: u64) -> u64 {
    match ty {
        Type::F32 => raw & 0xffff_ffff,
        ty => widen(ty, raw),
    }
}

/// Where the generic stub goes: reads the arguments per the plan, calls
/// the handler, and leaves the return registers in `out`.
///
/// # Safety
///
/// `context` is a live [`GenericCallback`]; `registers` the spilled
/// argument registers; `stack` the caller's stack arguments; `out` is
/// writable; the native caller called with the plan's signature.
unsafe extern "C" fn generic_callback(
    context: *const GenericCallback,
    registers: *const u64,
    stack: *const u8,
    out: *mut ReturnRegisters,
) {
    // SAFETY: the thunk's data word is this context, which its Callback
    // keeps alive while the code pointer may be called.
    let context = unsafe { &*context };
    let plan = &context.plan;
    // SAFETY: as this function's contract says.
    let read = |loc: Loc| -> u64 {
        match loc {
            // SAFETY: the stub spilled every argument register.
            Loc::Gp(n) => unsafe { *registers.add(usize::from(n)) },
            // SAFETY: as above.
            Loc::Fp(n) => unsafe { *registers.add(spill::FP + usize::from(n)) },
            // SAFETY: stack arguments lie where the plan says.
            Loc::Stack(at) => unsafe { stack.add(at as usize).cast::<u64>().read_unaligned() },
        }
    };
    let n = plan.arg_types.len();
    let mut slots_small = [0u64; 32];
    let mut slots_large = Vec::new();
    let slots: &mut [u64] = if n <= slots_small.len() {
        &mut slots_small[..n]
    } else {
        slots_large.resize(n, 0);
        &mut slots_large
    };
    // Structs that arrive in pieces are put together here, where
    // `context.copies` says.
    let mut structs_small = [0u64; 64];
    let mut structs_large = Vec::new();
    let structs: &mut [u64] = if context.copy_bytes / 8 <= structs_small.len() {
        &mut structs_small[..]
    } else {
        structs_large.resize(context.copy_bytes / 8, 0);
        &mut structs_large
    };
    let structs = structs.as_mut_ptr().cast::<u8>();
    for arg in &plan.args {
        let i = arg.index as usize;
        match (plan.passing[i], arg.from) {
            (Passing::Scalar, _) => slots[i] = clean(arg.ty, read(arg.to)),
            (Passing::Registers | Passing::Hfa { .. }, Source::Field { offset, bytes, .. }) => {
                // SAFETY: the struct area holds every such struct.
                let copy = unsafe { structs.add(context.copies[i]) };
                slots[i] = copy as u64;
                let piece = read(arg.to).to_le_bytes();
                // SAFETY: the piece lies within the struct, which lies in
                // the struct area.
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        piece.as_ptr(),
                        copy.add(offset as usize),
                        usize::from(bytes),
                    );
                }
            }
            // The caller copied the struct whole to its stack arguments:
            // its first piece is where it starts.
            (Passing::Stack, Source::Field { offset: 0, .. }) => {
                if let Loc::Stack(at) = arg.to {
                    // SAFETY: within the caller's stack arguments.
                    slots[i] = unsafe { stack.add(at as usize) } as u64;
                }
            }
            // The caller passed its copy's address.
            (Passing::Reference, Source::StackAddress(_)) => slots[i] = read(arg.to),
            _ => {}
        }
    }
    let bytes = return_bytes(plan.ret).max(8).next_multiple_of(8);
    let mut ret_small = [0u64; 8];
    let mut ret_large = Vec::new();
    let local: *mut u64 = if bytes <= 64 {
        ret_small.as_mut_ptr()
    } else {
        ret_large.resize(bytes / 8, 0);
        ret_large.as_mut_ptr()
    };
    let ret = match plan.ret_pass {
        // SAFETY: the caller passed its buffer where the plan says.
        ReturnPass::Memory => (unsafe { *registers.add(spill::RETURN_ADDRESS) }) as *mut u64,
        _ => local,
    };
    // SAFETY: the handler's contract: one slot per argument, a return
    // buffer as large as the return needs.
    unsafe { (context.func)(context.data, slots.as_ptr(), ret) };
    // SAFETY: `out` is the stub's, writable.
    let out = unsafe { &mut *out };
    match &plan.ret_pass {
        ReturnPass::Value => {
            // SAFETY: the handler wrote the slot (void: never read).
            let value = unsafe { *ret };
            match plan.ret {
                Type::Void => {}
                Type::F32 => out.fp[0] = value & 0xffff_ffff,
                Type::F64 => out.fp[0] = value,
                ty => out.gp[0] = widen(ty, value),
            }
        }
        ReturnPass::Pieces(pieces) => {
            for piece in pieces {
                let mut word = [0u8; 8];
                // SAFETY: each piece lies within the struct, in the buffer.
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        ret.cast::<u8>().add(piece.offset as usize),
                        word.as_mut_ptr(),
                        usize::from(piece.bytes),
                    );
                }
                let word = u64::from_le_bytes(word);
                match piece.ty {
                    Type::U64 => out.gp[usize::from(piece.reg)] = word,
                    _ => out.fp[usize::from(piece.reg)] = word,
                }
            }
        }
        // x86_64 returns the buffer's address in rax.
        ReturnPass::Memory => out.gp[0] = ret as u64,
    }
}

// The generic reverse stub: entered through a static thunk with the
// callback's context in the thunk register, it spills the argument
// registers (and x8, AArch64's memory-return address), calls
// `generic_callback(context, registers, stack, out)` with the stack
// aligned, and loads the return registers from `out`.
#[cfg(target_arch = "x86_64")]
std::arch::global_asm!(
    ".text",
    ".p2align 4",
    ".globl jitcall_callback_generic_0_1",
    ".hidden jitcall_callback_generic_0_1",
    "jitcall_callback_generic_0_1:",
    // Entered with rsp 8 past a 16-byte boundary: 8 + 8 + 160 aligns it.
    // [rsp, rsp+48): rdi–r9; [rsp+48, rsp+112): xmm0–7; [rsp+112,
    // rsp+160): the return registers. The .cfi directives describe the
    // frame to the unwinder (the binary's .eh_frame).
    ".cfi_startproc",
    "push rbp",
    ".cfi_def_cfa_offset 16",
    ".cfi_offset rbp, -16",
    "mov rbp, rsp",
    ".cfi_def_cfa_register rbp",
    "sub rsp, 160",
    "mov [rsp], rdi",
    "mov [rsp + 8], rsi",
    "mov [rsp + 16], rdx",
    "mov [rsp + 24], rcx",
    "mov [rsp + 32], r8",
    "mov [rsp + 40], r9",
    "movsd [rsp + 48], xmm0",
    "movsd [rsp + 56], xmm1",
    "movsd [rsp + 64], xmm2",
    "movsd [rsp + 72], xmm3",
    "movsd [rsp + 80], xmm4",
    "movsd [rsp + 88], xmm5",
    "movsd [rsp + 96], xmm6",
    "movsd [rsp + 104], xmm7",
    "mov rdi, r11",
    "mov rsi, rsp",
    // The caller's stack arguments, above the return address.
    "lea rdx, [rbp + 16]",
    "lea rcx, [rsp + 112]",
    "call {generic}",
    "mov rax, [rsp + 112]",
    "mov rdx, [rsp + 120]",
    "movsd xmm0, [rsp + 128]",
    "movsd xmm1, [rsp + 136]",
    "leave",
    ".cfi_def_cfa rsp, 8",
    ".cfi_restore rbp",
    "ret",
    ".cfi_endproc",
    generic = sym generic_callback,
);

#[cfg(target_arch = "aarch64")]
std::arch::global_asm!(
    ".text",
    ".p2align 4",
    ".globl jitcall_callback_generic_0_1",
    ".hidden jitcall_callback_generic_0_1",
    "jitcall_callback_generic_0_1:",
    // A frame record; [sp+16, sp+88): x0–x8, then a pad word; [sp+96,
    // sp+160): d0–d7; [sp+160, sp+208): the return registers. The .cfi
    // directives describe the frame to the unwinder.
    ".cfi_startproc",
    "stp x29, x30, [sp, #-208]!",
    ".cfi_def_cfa_offset 208",
    ".cfi_offset x29, -208",
    ".cfi_offset x30, -200",
    "mov x29, sp",
    ".cfi_def_cfa x29, 208",
    "stp x0, x1, [sp, #16]",
    "stp x2, x3, [sp, #32]",
    "stp x4, x5, [sp, #48]",
    "stp x6, x7, [sp, #64]",
    "str x8, [sp, #80]",
    "stp d0, d1, [sp, #96]",
    "stp d2, d3, [sp, #112]",
    "stp d4, d5, [sp, #128]",
    "stp d6, d7, [sp, #144]",
    "mov x0, x16",
    "add x1, sp, #16",
    // The caller's stack arguments start where sp was at entry.
    "add x2, sp, #208",
    "add x3, sp, #160",
    "bl {generic}",
    "ldp x0, x1, [sp, #160]",
    "ldp d0, d1, [sp, #176]",
    "ldp d2, d3, [sp, #192]",
    "ldp x29, x30, [sp], #208",
    ".cfi_def_cfa sp, 0",
    ".cfi_restore x29",
    ".cfi_restore x30",
    "ret",
    ".cfi_endproc",
    generic = sym generic_callback,
);

/// The generic reverse stub's address: null on a target without it (which
/// has no static thunks either).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
mod stubs {
    use std::ffi::c_void;

    extern "C" {
        fn jitcall_callback_generic_0_1();
    }

    pub(super) fn generic() -> *const c_void {
        jitcall_callback_generic_0_1 as *const c_void
    }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
mod stubs {
    pub(super) fn generic() -> *const std::ffi::c_void {
        std::ptr::null()
    }
}
