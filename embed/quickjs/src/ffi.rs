//! The native half of `node:ffi` (the JavaScript half is `ffi.js`): opens
//! libraries with jitcall, binds their functions as JavaScript functions
//! that convert their arguments by Node's rules and call through
//! `call_packed`, and makes callbacks that call JavaScript functions.
//!
//! | declared type | JavaScript in | JavaScript out |
//! |---|---|---|
//! | `i8`, `u8`, `i16`, `u16`, `i32`, `u32` | a number, an integer in the type's range | a number |
//! | `bool` (Node's `u8`) | a boolean, or a number from 0 to 255 | a number |
//! | `f32`, `f64` | a number | a number |
//! | `i64`, `u64` | a bigint (wrapped to 64 bits, as `BigInt64Array` stores it), or a safe integer | a bigint |
//! | `pointer`, `string`, `function` | `null`/`undefined` (a null pointer), a bigint address, a safe integer, a string (copied to a NUL-terminated buffer for the call), an `ArrayBuffer`, a typed array or `DataView` (its bytes) | a bigint |
//! | `buffer`, `arraybuffer` | `null`/`undefined`, an `ArrayBuffer`, a typed array or `DataView` | a bigint (a pointer) |
//!
//! A wrong argument count or type throws a `TypeError` naming the function
//! and the argument, whose `code` is `ERR_INVALID_ARG_TYPE` (or
//! `ERR_INVALID_ARG_VALUE` for a number out of range); nothing is called
//! then. A function of a closed library throws an `Error` whose `code` is
//! `ERR_FFI_LIBRARY_CLOSED`.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ffi::{c_void, CString};
use std::ptr::NonNull;
use std::rc::Rc;
use std::thread::ThreadId;

use jitcall::{BufferView, Callback, Function as Bound, Library, Options, Signature, Type};
use rquickjs::function::Rest;
use rquickjs::{ArrayBuffer, BigInt, Ctx, Function, Object, Persistent, Result, Value};

/// A library `open` returned, with the callbacks registered on it.
struct Lib {
    lib: Library,
    /// By code address.
    callbacks: RefCell<HashMap<u64, Callback>>,
}

thread_local! {
    /// Open libraries by handle. A runtime is single-threaded: one map per
    /// thread.
    static LIBS: RefCell<HashMap<u32, Rc<Lib>>> = RefCell::new(HashMap::new());
    static NEXT_LIB: Cell<u32> = const { Cell::new(1) };
    /// The options of the bindings made from now on (`jitcall.options`).
    /// Each binding gets a trampoline of its own (`specialise`): a script
    /// binds a few functions and calls them many times.
    static OPTIONS: Cell<Options> = Cell::new(Options { specialise: true, ..Options::default() });
    /// The message of an exception a callback threw while native code ran,
    /// thrown again when the native call returns.
    static PENDING: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Installs the native half as `globalThis[Symbol.for('jitcall.ffi.native')]`,
/// where `ffi.js` finds it.
pub fn install(ctx: &Ctx<'_>) -> Result<()> {
    let native = Object::new(ctx.clone())?;
    native.set("open", Function::new(ctx.clone(), open)?)?;
    native.set("bindAll", Function::new(ctx.clone(), bind_all)?)?;
    native.set("symbol", Function::new(ctx.clone(), symbol)?)?;
    native.set("close", Function::new(ctx.clone(), close)?)?;
    native.set("callback", Function::new(ctx.clone(), callback)?)?;
    native.set("unregister", Function::new(ctx.clone(), unregister)?)?;
    native.set("options", Function::new(ctx.clone(), options)?)?;
    native.set("fixtures", env!("JITCALL_QJS_FIXTURES"))?;
    let set: Function =
        ctx.eval("(native) => { globalThis[Symbol.for('jitcall.ffi.native')] = native; }")?;
    set.call::<_, ()>((native,))
}

/// Frees every library's callbacks and forgets the libraries, while the
/// runtime whose functions the callbacks hold still lives.
pub fn shutdown() {
    let libs = LIBS.with(|libs| std::mem::take(&mut *libs.borrow_mut()));
    for lib in libs.values() {
        lib.callbacks.borrow_mut().clear();
    }
}

/// Throws a `constructor` error (`TypeError`, `Error`) with `message` and
/// `code`.
fn throw(ctx: &Ctx<'_>, constructor: &str, code: &str, message: &str) -> rquickjs::Error {
    let make = || -> Result<Value<'_>> {
        let make: Function = ctx.eval(
            "(kind, code, message) => { const e = new globalThis[kind](message); \
             e.code = code; return e; }",
        )?;
        make.call((constructor, code, message))
    };
    match make() {
        Ok(error) => ctx.throw(error),
        Err(e) => e,
    }
}

fn type_error(ctx: &Ctx<'_>, message: &str) -> rquickjs::Error {
    throw(ctx, "TypeError", "ERR_INVALID_ARG_TYPE", message)
}

fn closed(ctx: &Ctx<'_>) -> rquickjs::Error {
    throw(
        ctx,
        "Error",
        "ERR_FFI_LIBRARY_CLOSED",
        "the library is closed",
    )
}

/// The open library `id`.
fn lib(ctx: &Ctx<'_>, id: u32) -> Result<Rc<Lib>> {
    LIBS.with(|libs| libs.borrow().get(&id).cloned())
        .ok_or_else(|| closed(ctx))
}

/// A signature of Node's object form (as JSON) that `node:ffi` can call:
/// no structs, no variadic arguments.
fn signature(ctx: &Ctx<'_>, what: &str, text: &str) -> Result<Signature> {
    let sig = Signature::from_json(text)
        .map_err(|e| type_error(ctx, &format!("the signature of {what}: {e}")))?;
    if sig.variadic.is_some() {
        return Err(type_error(
            ctx,
            &format!("{what}: node:ffi has no variadic functions"),
        ));
    }
    if sig
        .args
        .iter()
        .chain([&sig.ret])
        .any(|t| t.as_struct().is_some())
    {
        return Err(type_error(
            ctx,
            &format!("{what}: node:ffi passes no structs"),
        ));
    }
    Ok(sig)
}

fn open(ctx: Ctx<'_>, path: Value<'_>) -> Result<u32> {
    let opened = if path.is_null() || path.is_undefined() {
        Library::this_process()
    } else {
        let Some(path) = path.as_string() else {
            return Err(type_error(
                &ctx,
                "The \"path\" argument must be a string or null",
            ));
        };
        Library::open(&path.to_string()?)
    };
    let lib = opened.map_err(|e| throw(&ctx, "Error", "ERR_FFI_DLOPEN_FAILED", &e.to_string()))?;
    let id = NEXT_LIB.with(|next| {
        let id = next.get();
        next.set(id + 1);
        id
    });
    let lib = Rc::new(Lib {
        lib,
        callbacks: RefCell::new(HashMap::new()),
    });
    LIBS.with(|libs| libs.borrow_mut().insert(id, lib));
    Ok(id)
}

fn bind_all<'js>(
    ctx: Ctx<'js>,
    id: u32,
    names: Vec<String>,
    texts: Vec<String>,
) -> Result<Vec<Function<'js>>> {
    let lib = lib(&ctx, id)?;
    let sigs = names
        .iter()
        .zip(&texts)
        .map(|(name, text)| signature(&ctx, name, text))
        .collect::<Result<Vec<_>>>()?;
    let items: Vec<(&str, &Signature)> = names.iter().map(String::as_str).zip(&sigs).collect();
    let options = OPTIONS.with(Cell::get);
    let functions = lib
        .lib
        .functions(&items, &options)
        .map_err(|e| throw(&ctx, "Error", "ERR_FFI_SYMBOL_NOT_FOUND", &e.to_string()))?;
    functions
        .into_iter()
        .zip(names)
        .map(|(f, name)| wrap(&ctx, Rc::clone(&lib), f, name))
        .collect()
}

/// A bound function as JavaScript sees it: callable, with its `pointer`
/// (the symbol's address) and its `tier`.
fn wrap<'js>(ctx: &Ctx<'js>, lib: Rc<Lib>, f: Bound, name: String) -> Result<Function<'js>> {
    let pointer = f.target() as u64;
    let tier = f.tier().to_string();
    let bound = Rc::new((lib, f, name.clone()));
    let function = Function::new(ctx.clone(), move |ctx: Ctx<'js>, args: Rest<Value<'js>>| {
        let (lib, f, name) = &*bound;
        call(&ctx, lib, f, name, &args.0)
    })?;
    function.set_name(&name)?;
    function
        .as_inner()
        .set("pointer", BigInt::from_u64(ctx.clone(), pointer)?)?;
    function.as_inner().set("tier", tier)?;
    Ok(function)
}

/// What the arguments of one call keep alive until it returns.
#[derive(Default)]
struct Temporaries {
    strings: Vec<CString>,
    // Boxed: a slot holds a view's address, which must not move when the
    // vector grows.
    #[allow(clippy::vec_box)]
    views: Vec<Box<BufferView>>,
}

/// Calls `f` with `args` converted to packed slots.
fn call<'js>(
    ctx: &Ctx<'js>,
    lib: &Lib,
    f: &Bound,
    name: &str,
    args: &[Value<'js>],
) -> Result<Value<'js>> {
    if lib.lib.is_closed() {
        return Err(closed(ctx));
    }
    let sig = f.signature();
    if args.len() != sig.args.len() {
        return Err(type_error(
            ctx,
            &format!(
                "{name} takes {} argument{}, not {}",
                sig.args.len(),
                if sig.args.len() == 1 { "" } else { "s" },
                args.len()
            ),
        ));
    }
    let mut temporaries = Temporaries::default();
    let mut slots = [0u64; 16];
    let mut spilled = Vec::new();
    let slots: &mut [u64] = if args.len() <= slots.len() {
        &mut slots[..args.len()]
    } else {
        spilled.resize(args.len(), 0);
        &mut spilled
    };
    for (i, ((&ty, value), slot)) in sig.args.iter().zip(args).zip(slots.iter_mut()).enumerate() {
        *slot = to_slot(ty, value, &mut temporaries)
            .map_err(|why| argument_error(ctx, name, i, ty, why))?;
    }
    let mut ret = 0u64;
    // SAFETY: the slots hold one packed value per argument of the
    // signature the function was bound with, which the script vouches is
    // the symbol's; pointers into strings and views stay valid until
    // `temporaries` drops, after the call; array buffers' bytes stay put
    // unless a callback detaches them, which Node does not allow either.
    unsafe { f.call_packed(slots.as_ptr(), &mut ret) };
    drop(temporaries);
    if let Some(message) = PENDING.with(|p| p.borrow_mut().take()) {
        return Err(throw(ctx, "Error", "ERR_FFI_CALLBACK_THREW", &message));
    }
    from_slot(ctx, sig.ret, ret)
}

/// Why an argument does not convert.
enum Wrong {
    /// Not a value of an accepted kind: what is accepted.
    Type(&'static str),
    /// A number outside the type's range.
    Range,
    /// A string with a NUL byte inside.
    Nul,
}

fn argument_error(ctx: &Ctx<'_>, name: &str, i: usize, ty: Type, why: Wrong) -> rquickjs::Error {
    match why {
        Wrong::Type(wanted) => type_error(
            ctx,
            &format!("{name}: argument {i} ({ty}) must be {wanted}"),
        ),
        Wrong::Range => throw(
            ctx,
            "TypeError",
            "ERR_INVALID_ARG_VALUE",
            &format!("{name}: argument {i} is out of the range of {ty}"),
        ),
        Wrong::Nul => throw(
            ctx,
            "TypeError",
            "ERR_INVALID_ARG_VALUE",
            &format!("{name}: argument {i} is a string with a NUL character inside"),
        ),
    }
}

/// The largest integer a double holds exactly.
const MAX_SAFE: f64 = 9_007_199_254_740_991.0;

/// A number that is an integer, as an i64.
fn integer(value: &Value<'_>) -> Option<std::result::Result<i64, Wrong>> {
    if let Some(i) = value.as_int() {
        return Some(Ok(i64::from(i)));
    }
    let x = value.as_float()?;
    if x.fract() != 0.0 || x.is_nan() {
        return Some(Err(Wrong::Range));
    }
    if x.abs() > MAX_SAFE {
        return Some(Err(Wrong::Range));
    }
    Some(Ok(x as i64))
}

/// The packed slot of `value` as an argument of type `ty`.
fn to_slot(
    ty: Type,
    value: &Value<'_>,
    temporaries: &mut Temporaries,
) -> std::result::Result<u64, Wrong> {
    let ranged = |lo: i64, hi: i64| -> std::result::Result<u64, Wrong> {
        match integer(value) {
            Some(Ok(v)) if (lo..=hi).contains(&v) => Ok(v as u64),
            Some(Ok(_)) | Some(Err(_)) => Err(Wrong::Range),
            None => Err(Wrong::Type("a number")),
        }
    };
    match ty {
        Type::I8 => ranged(i8::MIN.into(), i8::MAX.into()),
        Type::U8 => ranged(0, u8::MAX.into()),
        Type::I16 => ranged(i16::MIN.into(), i16::MAX.into()),
        Type::U16 => ranged(0, u16::MAX.into()),
        Type::I32 => ranged(i32::MIN.into(), i32::MAX.into()),
        Type::U32 => ranged(0, u32::MAX.into()),
        Type::Bool => match value.as_bool() {
            Some(b) => Ok(u64::from(b)),
            None => ranged(0, u8::MAX.into()).map_err(|e| match e {
                Wrong::Type(_) => Wrong::Type("a boolean or a number"),
                other => other,
            }),
        },
        Type::I64 | Type::U64 => {
            if let Some(big) = value.as_big_int() {
                return bits_of(big);
            }
            match integer(value) {
                Some(Ok(v)) if ty == Type::I64 || v >= 0 => Ok(v as u64),
                Some(_) => Err(Wrong::Range),
                None => Err(Wrong::Type("a bigint or a safe integer")),
            }
        }
        Type::F32 => value
            .as_number()
            .map(|x| u64::from((x as f32).to_bits()))
            .ok_or(Wrong::Type("a number")),
        Type::F64 => value
            .as_number()
            .map(f64::to_bits)
            .ok_or(Wrong::Type("a number")),
        Type::Pointer | Type::Function => pointer(value, temporaries),
        Type::Buffer => {
            if value.is_null() || value.is_undefined() {
                return Ok(0);
            }
            let Some(bytes) = bytes_of(value) else {
                return Err(Wrong::Type(
                    "an ArrayBuffer, a typed array, a DataView or null",
                ));
            };
            let view = Box::new(BufferView {
                data: bytes.0.cast(),
                len: bytes.1,
            });
            let at = std::ptr::addr_of!(*view) as u64;
            temporaries.views.push(view);
            Ok(at)
        }
        Type::Void | Type::Struct(_) => unreachable!("signatures with these are refused at bind"),
    }
}

/// A bigint's low 64 bits, as `BigInt64Array` stores it.
fn bits_of(big: &BigInt<'_>) -> std::result::Result<u64, Wrong> {
    big.clone()
        .to_i64()
        .map(|v| v as u64)
        .map_err(|_| Wrong::Range)
}

/// A pointer-like argument.
fn pointer(value: &Value<'_>, temporaries: &mut Temporaries) -> std::result::Result<u64, Wrong> {
    if value.is_null() || value.is_undefined() {
        return Ok(0);
    }
    if let Some(big) = value.as_big_int() {
        return bits_of(big);
    }
    if let Some(n) = integer(value) {
        return match n {
            Ok(v) if v >= 0 => Ok(v as u64),
            _ => Err(Wrong::Range),
        };
    }
    if let Some(s) = value.as_string() {
        let text = s.to_string().map_err(|_| Wrong::Type("a string"))?;
        let c = CString::new(text).map_err(|_| Wrong::Nul)?;
        let at = c.as_ptr() as u64;
        temporaries.strings.push(c);
        return Ok(at);
    }
    if let Some((data, _)) = bytes_of(value) {
        return Ok(data as u64);
    }
    Err(Wrong::Type(
        "null, a bigint, a safe integer, a string, an ArrayBuffer, a typed array or a DataView",
    ))
}

/// The bytes behind an `ArrayBuffer`, a typed array or a `DataView`: their
/// address and length.
fn bytes_of(value: &Value<'_>) -> Option<(*mut c_void, usize)> {
    if let Some(buffer) = ArrayBuffer::from_value(value.clone()) {
        let raw = buffer.as_raw()?;
        return Some((raw.as_ptr().cast(), raw.len()));
    }
    // Typed arrays and DataViews: a window on an ArrayBuffer.
    let object = value.as_object()?;
    let buffer = ArrayBuffer::from_value(object.get::<_, Value>("buffer").ok()?)?;
    let offset: usize = object.get::<_, f64>("byteOffset").ok()? as usize;
    let length: usize = object.get::<_, f64>("byteLength").ok()? as usize;
    let raw = buffer.as_raw()?;
    if offset + length > raw.len() {
        return None;
    }
    // SAFETY: `offset + length` lies within the buffer's bytes.
    let data = unsafe { raw.as_ptr().cast::<u8>().add(offset) };
    Some((data.cast(), length))
}

/// The JavaScript value of a packed slot of type `ty`.
fn from_slot<'js>(ctx: &Ctx<'js>, ty: Type, slot: u64) -> Result<Value<'js>> {
    let ctx = ctx.clone();
    Ok(match ty {
        Type::Void => Value::new_undefined(ctx),
        Type::I8 => Value::new_int(ctx, i32::from(slot as i8)),
        Type::U8 | Type::Bool => Value::new_int(ctx, i32::from(slot as u8)),
        Type::I16 => Value::new_int(ctx, i32::from(slot as i16)),
        Type::U16 => Value::new_int(ctx, i32::from(slot as u16)),
        Type::I32 => Value::new_int(ctx, slot as i32),
        Type::U32 => Value::new_number(ctx, f64::from(slot as u32)),
        Type::I64 => BigInt::from_i64(ctx, slot as i64)?.into_value(),
        Type::U64 | Type::Pointer | Type::Function | Type::Buffer => {
            BigInt::from_u64(ctx, slot)?.into_value()
        }
        // As floats: a number would lose -0.
        Type::F32 => Value::new_float(ctx, f64::from(f32::from_bits(slot as u32))),
        Type::F64 => Value::new_float(ctx, f64::from_bits(slot)),
        Type::Struct(_) => unreachable!("signatures with structs are refused at bind"),
    })
}

fn symbol<'js>(ctx: Ctx<'js>, id: u32, name: String) -> Result<BigInt<'js>> {
    let lib = lib(&ctx, id)?;
    let address = lib
        .lib
        .symbol(&name)
        .map_err(|e| throw(&ctx, "Error", "ERR_FFI_SYMBOL_NOT_FOUND", &e.to_string()))?;
    BigInt::from_u64(ctx, address as u64)
}

fn close(id: u32) {
    if let Some(lib) = LIBS.with(|libs| libs.borrow_mut().remove(&id)) {
        lib.lib.close();
        lib.callbacks.borrow_mut().clear();
    }
}

fn options(ctx: Ctx<'_>, given: Object<'_>) -> Result<()> {
    let force_libffi: Option<bool> = given.get("forceLibffi")?;
    let Some(force_libffi) = force_libffi else {
        return Err(type_error(
            &ctx,
            "jitcall.options takes { forceLibffi: boolean }",
        ));
    };
    OPTIONS.with(|options| {
        options.set(Options {
            force_libffi,
            ..options.get()
        })
    });
    Ok(())
}

/// A JavaScript function behind a callback: called from native code on
/// the runtime's thread, while a call into native code from JavaScript
/// runs (the only time native code runs here).
struct Target {
    function: Persistent<Function<'static>>,
    ctx: NonNull<rquickjs::qjs::JSContext>,
    sig: Signature,
    thread: ThreadId,
}

/// The handler's state crosses no thread: `invoke` checks it runs on the
/// thread that made it, and aborts otherwise.
struct OnItsThread(Target);

// SAFETY: only `invoke` touches the target, after checking that it runs
// on the thread that created it (the JavaScript runtime's).
unsafe impl Send for OnItsThread {}
// SAFETY: as for Send.
unsafe impl Sync for OnItsThread {}

impl OnItsThread {
    fn invoke(&self, args: &[u64], ret: &mut u64) {
        let target = &self.0;
        if std::thread::current().id() != target.thread {
            eprintln!("jitcall-qjs: a callback was called from another thread than its runtime's");
            std::process::abort();
        }
        // SAFETY: the context lives as long as the runtime, which outlives
        // every callback (`shutdown` frees them first), and this thread is
        // the runtime's, inside a native call JavaScript made.
        let ctx = unsafe { Ctx::from_raw(target.ctx) };
        let outcome = (|| -> Result<u64> {
            let function = target.function.clone().restore(&ctx)?;
            let values = target
                .sig
                .args
                .iter()
                .zip(args)
                .map(|(&ty, &slot)| from_slot(&ctx, ty, slot))
                .collect::<Result<Vec<_>>>()?;
            let value: Value = function.call((Rest(values),))?;
            if target.sig.ret == Type::Void {
                return Ok(0);
            }
            let mut temporaries = Temporaries::default();
            match to_slot(target.sig.ret, &value, &mut temporaries) {
                Ok(slot) if temporaries.strings.is_empty() && temporaries.views.is_empty() => {
                    Ok(slot)
                }
                _ => Err(type_error(
                    &ctx,
                    &format!("a callback must return {}", target.sig.ret),
                )),
            }
        })();
        *ret = match outcome {
            Ok(slot) => slot,
            Err(error) => {
                let message = match error {
                    rquickjs::Error::Exception => {
                        let thrown = ctx.catch();
                        match thrown.as_exception() {
                            Some(e) => e.message().unwrap_or_default(),
                            None => format!("{thrown:?}"),
                        }
                    }
                    other => other.to_string(),
                };
                PENDING.with(|p| {
                    p.borrow_mut()
                        .get_or_insert_with(|| format!("a callback threw: {message}"));
                });
                0
            }
        };
    }
}

fn callback<'js>(
    ctx: Ctx<'js>,
    id: u32,
    text: String,
    function: Function<'js>,
) -> Result<BigInt<'js>> {
    let lib = lib(&ctx, id)?;
    let sig = signature(&ctx, "the callback", &text)?;
    let target = OnItsThread(Target {
        function: Persistent::save(&ctx, function),
        ctx: ctx.as_raw(),
        sig: sig.clone(),
        thread: std::thread::current().id(),
    });
    let options = OPTIONS.with(Cell::get);
    let made = Callback::with_options(&sig, &options, move |args, ret| target.invoke(args, ret))
        .map_err(|e| throw(&ctx, "Error", "ERR_FFI_CALLBACK", &e.to_string()))?;
    let address = made.code_ptr() as u64;
    lib.callbacks.borrow_mut().insert(address, made);
    BigInt::from_u64(ctx, address)
}

fn unregister(ctx: Ctx<'_>, id: u32, pointer: BigInt<'_>) -> Result<()> {
    let lib = lib(&ctx, id)?;
    let address = pointer.to_i64()? as u64;
    let removed = lib.callbacks.borrow_mut().remove(&address);
    match removed {
        Some(_) => Ok(()),
        None => Err(throw(
            &ctx,
            "Error",
            "ERR_INVALID_ARG_VALUE",
            &format!("no callback of this library at {address:#x}"),
        )),
    }
}
