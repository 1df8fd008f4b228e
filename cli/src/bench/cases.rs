//! The benchmarked signatures: their callees, argument values and the
//! typed loops that call them directly and through a receiver entry.
//!
//! Each [`Case`] is built by the `case!` macro from the Rust types of its
//! arguments, so the signature jitcall binds, the typed function pointer
//! of the direct call, the receiver entry's widened parameter list, the
//! packed slots and the checked-call values all come from one list and
//! cannot disagree.

use std::ffi::c_void;
use std::hint::black_box;

use jitcall::{BufferView, Function, Library, Options, Signature, Type, Value};

/// An argument type of a benchmarked signature: how one value reaches the
/// target on each call path.
pub trait Param: Copy {
    /// The signature type.
    fn ty() -> Type;
    /// What the target receives.
    type Native: Copy;
    /// What the receiver entry takes: 8- and 16-bit integers and `bool`
    /// widened to 32 bits, a buffer as a pointer to its view.
    type Widened: Copy;
    /// The value as the target receives it.
    fn native(self) -> Self::Native;
    /// The value as the receiver entry takes it.
    fn widened(self) -> Self::Widened;
    /// The packed-slot encoding.
    fn slot(self) -> u64;
    /// The value for the checked [`Function::call`].
    fn value(self) -> Value;
}

/// A return type of a benchmarked signature.
pub trait Return: Copy {
    /// The signature type.
    fn ty() -> Type;
    /// The packed-entry encoding of a returned value.
    fn slot(self) -> u64;
}

macro_rules! scalar_param {
    ($($ty:ty => $variant:ident, $widened:ty, $slot:expr;)*) => {$(
        impl Param for $ty {
            fn ty() -> Type {
                Type::$variant
            }
            type Native = $ty;
            type Widened = $widened;
            fn native(self) -> $ty {
                self
            }
            fn widened(self) -> $widened {
                self.into()
            }
            fn slot(self) -> u64 {
                #[allow(clippy::redundant_closure_call)]
                ($slot)(self)
            }
            fn value(self) -> Value {
                Value::$variant(self)
            }
        }

        impl Return for $ty {
            fn ty() -> Type {
                Type::$variant
            }
            fn slot(self) -> u64 {
                Param::slot(self)
            }
        }
    )*};
}

scalar_param! {
    bool => Bool, u32, |v: bool| u64::from(v);
    i8 => I8, i32, |v: i8| v as i64 as u64;
    u8 => U8, u32, |v: u8| u64::from(v);
    i16 => I16, i32, |v: i16| v as i64 as u64;
    u16 => U16, u32, |v: u16| u64::from(v);
    i32 => I32, i32, |v: i32| v as i64 as u64;
    u32 => U32, u32, |v: u32| u64::from(v);
    i64 => I64, i64, |v: i64| v as u64;
    u64 => U64, u64, |v: u64| v;
    f32 => F32, f32, |v: f32| u64::from(v.to_bits());
    f64 => F64, f64, |v: f64| v.to_bits();
}

impl Param for *mut c_void {
    fn ty() -> Type {
        Type::Pointer
    }
    type Native = *mut c_void;
    type Widened = *mut c_void;
    fn native(self) -> *mut c_void {
        self
    }
    fn widened(self) -> *mut c_void {
        self
    }
    fn slot(self) -> u64 {
        self as u64
    }
    fn value(self) -> Value {
        Value::Pointer(self)
    }
}

impl Return for *mut c_void {
    fn ty() -> Type {
        Type::Pointer
    }
    fn slot(self) -> u64 {
        self as u64
    }
}

impl Return for () {
    fn ty() -> Type {
        Type::Void
    }
    fn slot(self) -> u64 {
        0
    }
}

/// Two floats by value: `{f32, f32}`, one SSE eightbyte on x86_64 and an
/// HFA on AArch64.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pair {
    x: f32,
    y: f32,
}

/// C's `div_t`: `{i32, i32}`, one INTEGER eightbyte or one x register.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DivT {
    quot: i32,
    rem: i32,
}

/// A struct of the benchmark: its fields' types and its 8 bytes.
trait Struct8: Copy {
    const FIELDS: [Type; 2];
    fn bytes(self) -> [u8; 8];
}

impl Struct8 for Pair {
    const FIELDS: [Type; 2] = [Type::F32, Type::F32];
    fn bytes(self) -> [u8; 8] {
        let (x, y) = (self.x.to_ne_bytes(), self.y.to_ne_bytes());
        [x[0], x[1], x[2], x[3], y[0], y[1], y[2], y[3]]
    }
}

impl Struct8 for DivT {
    const FIELDS: [Type; 2] = [Type::I32, Type::I32];
    fn bytes(self) -> [u8; 8] {
        let (q, r) = (self.quot.to_ne_bytes(), self.rem.to_ne_bytes());
        [q[0], q[1], q[2], q[3], r[0], r[1], r[2], r[3]]
    }
}

fn struct8_type<S: Struct8>() -> &'static jitcall::StructType {
    jitcall::StructType::new(&S::FIELDS).expect("two scalar fields make a struct")
}

macro_rules! struct8 {
    ($($ty:ty),*) => {$(
        impl Param for $ty {
            fn ty() -> Type {
                Type::Struct(struct8_type::<$ty>())
            }
            type Native = $ty;
            // Receiver entries take no structs: never called.
            type Widened = $ty;
            fn native(self) -> $ty {
                self
            }
            fn widened(self) -> $ty {
                self
            }
            /// The address of a copy that lives as long as the process,
            /// as a struct's slot must hold.
            fn slot(self) -> u64 {
                Box::leak(Box::new(self)) as *const $ty as u64
            }
            fn value(self) -> Value {
                let bytes = Struct8::bytes(self);
                Value::Struct(jitcall::StructValue::from_bytes(struct8_type::<$ty>(), &bytes).expect("8 bytes"))
            }
        }

        impl Return for $ty {
            fn ty() -> Type {
                Type::Struct(struct8_type::<$ty>())
            }
            /// An 8-byte struct fills the return buffer's one slot.
            fn slot(self) -> u64 {
                u64::from_ne_bytes(Struct8::bytes(self))
            }
        }
    )*};
}

struct8!(Pair, DivT);

/// A `buffer` argument: the target receives the view's `data`.
#[derive(Clone, Copy)]
pub struct Buffer(&'static BufferView);

impl Param for Buffer {
    fn ty() -> Type {
        Type::Buffer
    }
    type Native = *mut u8;
    type Widened = *const BufferView;
    fn native(self) -> *mut u8 {
        self.0.data
    }
    fn widened(self) -> *const BufferView {
        self.0
    }
    fn slot(self) -> u64 {
        self.0 as *const BufferView as u64
    }
    fn value(self) -> Value {
        Value::Buffer(*self.0)
    }
}

/// Where a case's target comes from.
pub enum Origin {
    /// A callee defined in this binary.
    Local,
    /// A symbol of a loaded library.
    Symbol {
        library: Library,
        name: &'static str,
    },
}

/// A loop of `iters` calls returning the packed encoding of the last result.
type DirectLoop = Box<dyn Fn(u64) -> u64>;
/// The same through a receiver entry, given as its address.
type ReceiverLoop = Box<dyn Fn(*const c_void, u64) -> u64>;

/// One benchmarked signature with its target and argument values.
pub struct Case {
    /// Short name, as in the table.
    pub name: &'static str,
    pub sig: Signature,
    pub origin: Origin,
    /// The target function's address.
    pub target: *const c_void,
    /// The arguments in the packed encoding.
    pub slots: Vec<u64>,
    /// The arguments for the checked call.
    pub values: Vec<Value>,
    direct: DirectLoop,
    receiver: ReceiverLoop,
    /// The same loop, for the receiver entry on the baked tier.
    thunk: ReceiverLoop,
}

impl Case {
    /// Whether the target is a real library symbol rather than a callee
    /// defined here (whose body is a few instructions).
    pub fn is_library_symbol(&self) -> bool {
        matches!(self.origin, Origin::Symbol { .. })
    }

    /// Binds the target with `options`, through its library for symbols.
    pub fn bind(&self, options: &Options) -> jitcall::Result<Function> {
        match &self.origin {
            // SAFETY: `target` is a callee of this binary (it lives as long
            // as the process) whose Rust type produced `sig` (see `case!`).
            Origin::Local => unsafe { Function::with_options(self.target, &self.sig, options) },
            Origin::Symbol { library, name } => library
                .functions(&[(name, &self.sig)], options)
                .map(|mut functions| functions.remove(0)),
        }
    }

    /// Calls the target directly `iters` times (at least once) through its
    /// typed function pointer; returns the last result, packed-encoded.
    pub fn run_direct(&self, iters: u64) -> u64 {
        (self.direct)(iters)
    }

    /// Calls `entry` `iters` times (at least once) with a null receiver and
    /// this case's arguments; returns the last result, packed-encoded.
    ///
    /// # Safety
    ///
    /// `entry` must be a receiver-entry trampoline bound to this case's
    /// target and signature, and must stay valid during the call.
    pub unsafe fn run_receiver(&self, entry: *const c_void, iters: u64) -> u64 {
        (self.receiver)(entry, iters)
    }

    /// [`run_receiver`](Self::run_receiver) from a call site of its own,
    /// for the receiver entry on the baked tier.
    ///
    /// # Safety
    ///
    /// As for [`run_receiver`](Self::run_receiver).
    pub unsafe fn run_thunk(&self, entry: *const c_void, iters: u64) -> u64 {
        (self.thunk)(entry, iters)
    }
}

/// Builds a [`Case`]:
///
/// ```text
/// case!("name", callee(a: T = value, …) -> R)                  // local
/// case!("name", library."symbol"(a: T = value, …) -> R)        // dlsym
/// ```
///
/// `T` are [`Param`] types, `R` a [`Return`] type.
macro_rules! case {
    ($name:literal, $callee:ident ( $($arg:ident : $ty:ty = $value:expr),* ) -> $ret:ty) => {{
        let direct: extern "C" fn($(<$ty as Param>::Native),*) -> $ret = $callee;
        case!(@build $name, Origin::Local, direct as *const c_void, ($($arg: $ty = $value),*) -> $ret)
    }};
    ($name:literal, $library:ident . $symbol:literal ( $($arg:ident : $ty:ty = $value:expr),* ) -> $ret:ty) => {{
        let target = $library.symbol($symbol).map_err(|e| e.to_string())?;
        let origin = Origin::Symbol { library: $library.clone(), name: $symbol };
        case!(@build $name, origin, target, ($($arg: $ty = $value),*) -> $ret)
    }};
    (@build $name:literal, $origin:expr, $target:expr, ($($arg:ident : $ty:ty = $value:expr),*) -> $ret:ty) => {{
        type Direct = extern "C" fn($(<$ty as Param>::Native),*) -> $ret;
        type Receiver = unsafe extern "C" fn(*const c_void, $(<$ty as Param>::Widened),*) -> $ret;
        let target: *const c_void = $target;
        $(let $arg: $ty = $value;)*
        // SAFETY: `target` is the callee or the library symbol whose C
        // declaration this signature spells (for callees, the compiler
        // checked the coercion above).
        let direct = unsafe { std::mem::transmute::<*const c_void, Direct>(target) };
        let run_direct = move |iters: u64| -> u64 {
            let f = black_box(direct);
            $(let $arg = Param::native($arg);)*
            let mut last = black_box(f($(black_box($arg)),*));
            for _ in 1..iters {
                last = black_box(f($(black_box($arg)),*));
            }
            Return::slot(last)
        };
        // Two copies of the receiver loop, for the JIT's entry and the
        // thunk's: with one call site shared by both paths, sampled in
        // turn, the JIT receiver measured about 0.5 ns slower. The copies
        // differ in the (ignored) receiver they pass, so that they are not
        // merged into one function.
        let run_receiver = move |entry: *const c_void, iters: u64| -> u64 {
            // SAFETY: `Case::run_receiver`'s contract: `entry` is a receiver
            // trampoline for this signature, which takes a receiver and the
            // widened arguments.
            let f = black_box(unsafe { std::mem::transmute::<*const c_void, Receiver>(entry) });
            $(let $arg = Param::widened($arg);)*
            let receiver = std::ptr::null::<c_void>();
            // SAFETY: as above; the arguments are valid for the target.
            let mut last = black_box(unsafe { f(black_box(receiver), $(black_box($arg)),*) });
            for _ in 1..iters {
                // SAFETY: as above.
                last = black_box(unsafe { f(black_box(receiver), $(black_box($arg)),*) });
            }
            Return::slot(last)
        };
        let run_thunk = move |entry: *const c_void, iters: u64| -> u64 {
            // SAFETY: as in `run_receiver`.
            let f = black_box(unsafe { std::mem::transmute::<*const c_void, Receiver>(entry) });
            $(let $arg = Param::widened($arg);)*
            let receiver = std::ptr::NonNull::<c_void>::dangling().as_ptr().cast_const();
            // SAFETY: as above.
            let mut last = black_box(unsafe { f(black_box(receiver), $(black_box($arg)),*) });
            for _ in 1..iters {
                // SAFETY: as above.
                last = black_box(unsafe { f(black_box(receiver), $(black_box($arg)),*) });
            }
            Return::slot(last)
        };
        Case {
            name: $name,
            sig: Signature::new(vec![$(<$ty as Param>::ty()),*], <$ret as Return>::ty()),
            origin: $origin,
            target,
            slots: vec![$(Param::slot($arg)),*],
            values: vec![$(Param::value($arg)),*],
            direct: Box::new(run_direct),
            receiver: Box::new(run_receiver),
            thunk: Box::new(run_thunk),
        }
    }};
}

macro_rules! add_callees {
    ($($name:ident: $ty:ty),*) => {$(
        /// `a + b`, wrapping for integers.
        #[inline(never)]
        extern "C" fn $name(a: $ty, b: $ty) -> $ty {
            a.wrapping_add(b)
        }
    )*};
}

add_callees!(add_i8: i8, add_u8: u8, add_i16: i16, add_u16: u16, add_i32: i32, add_u32: u32,
             add_i64: i64, add_u64: u64);

/// `a + b`.
#[inline(never)]
extern "C" fn add_f32(a: f32, b: f32) -> f32 {
    a + b
}

/// `a + b`.
#[inline(never)]
extern "C" fn add_f64(a: f64, b: f64) -> f64 {
    a + b
}

/// The sum of three integers.
#[inline(never)]
extern "C" fn sum_3_i32(a: i32, b: i32, c: i32) -> i32 {
    a.wrapping_add(b).wrapping_add(c)
}

/// The sum of five integers.
#[inline(never)]
extern "C" fn sum_5_i32(a: i32, b: i32, c: i32, d: i32, e: i32) -> i32 {
    a.wrapping_add(b)
        .wrapping_add(c)
        .wrapping_add(d)
        .wrapping_add(e)
}

/// The sum of eight integers: two of them on the stack on x86_64.
#[allow(clippy::too_many_arguments)]
#[inline(never)]
extern "C" fn sum_8_i32(a: i32, b: i32, c: i32, d: i32, e: i32, f: i32, g: i32, h: i32) -> i32 {
    [b, c, d, e, f, g, h]
        .into_iter()
        .fold(a, |sum, x| sum.wrapping_add(x))
}

/// Twelve mixed arguments (nine integer-class, three floating-point): on
/// x86_64 the last three integer-class ones go on the stack, and four in
/// the receiver entry.
#[allow(clippy::too_many_arguments)]
#[inline(never)]
extern "C" fn mixed_12(
    a: i64,
    b: f64,
    c: i32,
    d: f32,
    e: i64,
    f: f64,
    g: i32,
    h: u8,
    i: i64,
    j: i16,
    k: *mut c_void,
    l: u64,
) -> f64 {
    a as f64
        + b
        + f64::from(c)
        + f64::from(d)
        + e as f64
        + f
        + f64::from(g)
        + f64::from(h)
        + i as f64
        + f64::from(j)
        + k as usize as f64
        + l as f64
}

/// Does nothing.
#[inline(never)]
extern "C" fn noop() {}

/// Swaps a pair of floats passed and returned by value.
#[inline(never)]
extern "C" fn pair_swap(p: Pair) -> Pair {
    Pair { x: p.y, y: p.x }
}

/// Returns its argument.
#[inline(never)]
extern "C" fn identity_i32(x: i32) -> i32 {
    x
}

/// Whether the pointer is null.
#[inline(never)]
extern "C" fn is_null(p: *mut c_void) -> bool {
    p.is_null()
}

/// The sum of `len` bytes at `data` (0 for null).
#[inline(never)]
extern "C" fn buffer_sum(data: *mut u8, len: u64) -> u64 {
    if data.is_null() {
        return 0;
    }
    // SAFETY: the benchmark passes the data of a live view of `len` bytes.
    let bytes = unsafe { std::slice::from_raw_parts(data, len as usize) };
    bytes.iter().map(|&b| u64::from(b)).sum()
}

/// Bytes of the buffer-sum case's buffer.
const BUFFER_LEN: usize = 32;

/// The NUL-terminated string the strlen case measures.
const STRLEN_INPUT: &[u8] = b"jitcall benchmark string\0";

/// Every benchmarked signature, in table order.
///
/// # Errors
///
/// A message when libm cannot be opened or a symbol is missing.
pub fn table() -> Result<Vec<Case>, String> {
    let libc = Library::this_process().map_err(|e| e.to_string())?;
    let libm = Library::open("libm.so.6").map_err(|e| e.to_string())?;
    let data: &'static mut [u8] = Box::leak((1..=BUFFER_LEN as u8).collect());
    let view: &'static BufferView = Box::leak(Box::new(BufferView {
        data: data.as_mut_ptr(),
        len: data.len(),
    }));
    let string = STRLEN_INPUT.as_ptr() as *mut c_void;
    let null = std::ptr::null_mut::<c_void>();

    Ok(vec![
        case!("add-i8", add_i8(a: i8 = -100, b: i8 = -100) -> i8),
        case!("add-u8", add_u8(a: u8 = 200, b: u8 = 100) -> u8),
        case!("add-i16", add_i16(a: i16 = -30_000, b: i16 = -30_000) -> i16),
        case!("add-u16", add_u16(a: u16 = 60_000, b: u16 = 10_000) -> u16),
        case!("add-i32", add_i32(a: i32 = -2_000_000_000, b: i32 = 123) -> i32),
        case!("add-u32", add_u32(a: u32 = 4_000_000_000, b: u32 = 123) -> u32),
        case!("add-i64", add_i64(a: i64 = -1 << 40, b: i64 = 7) -> i64),
        case!("add-u64", add_u64(a: u64 = 1 << 63, b: u64 = 7) -> u64),
        case!("add-f32", add_f32(a: f32 = 1.5, b: f32 = -0.25) -> f32),
        case!("add-f64", add_f64(a: f64 = 1.5, b: f64 = -0.25) -> f64),
        case!("sum-3-i32", sum_3_i32(a: i32 = 1, b: i32 = -2, c: i32 = 3) -> i32),
        case!("sum-5-i32", sum_5_i32(a: i32 = 1, b: i32 = -2, c: i32 = 3, d: i32 = -4, e: i32 = 5) -> i32),
        case!("sum-8-i32", sum_8_i32(a: i32 = 1, b: i32 = -2, c: i32 = 3, d: i32 = -4,
                                     e: i32 = 5, f: i32 = -6, g: i32 = 7, h: i32 = -8) -> i32),
        case!("mixed-12", mixed_12(a: i64 = -1, b: f64 = 0.5, c: i32 = -3, d: f32 = 0.25,
                                   e: i64 = 5, f: f64 = 0.125, g: i32 = -7, h: u8 = 250,
                                   i: i64 = 1 << 33, j: i16 = -300, k: *mut c_void = null,
                                   l: u64 = 11) -> f64),
        case!("noop-void", noop() -> ()),
        case!("identity-i32", identity_i32(x: i32 = -42) -> i32),
        case!("pointer-null", is_null(p: *mut c_void = null) -> bool),
        case!("buffer-sum", buffer_sum(b: Buffer = Buffer(view), n: u64 = BUFFER_LEN as u64) -> u64),
        case!("pair-swap", pair_swap(p: Pair = Pair { x: 1.5, y: -2.25 }) -> Pair),
        case!("getpid", libc."getpid"() -> i32),
        case!("strlen", libc."strlen"(s: *mut c_void = string) -> u64),
        case!("cos", libm."cos"(x: f64 = 0.5) -> f64),
        case!("div", libc."div"(n: i32 = 7_000_001, d: i32 = 97) -> DivT),
    ])
}
