//! Structs by value and variadic calls through `Library`, on every tier:
//! `div` and `ldiv` from the C library, an all-float pair and a 24-byte
//! struct from a library of the fixtures' own (`fixtures/dl/structs.c`),
//! and `snprintf` with mixed variadic arguments, against Rust's formatting
//! of the same values.

use std::ffi::{c_void, CStr};

use jitcall::{Function, Library, Options, Signature, StructValue, Type, Value};
use jitcall_fixtures::STRUCTS_SO;

mod tiers;

/// Every tier.
fn runs() -> [Options; 5] {
    tiers::each(Options::default()).map(|(_, options)| options)
}

fn bind(library: &Library, name: &str, sig: &str, options: &Options) -> Function {
    let sig: Signature = sig.parse().unwrap();
    let f = library.function_with_options(name, &sig, options).unwrap();
    assert_eq!(
        f.tier(),
        tiers::expected(&sig, options, false),
        "{name} {sig}"
    );
    f
}

/// The struct a call returned.
fn returned_struct(value: Value) -> StructValue {
    match value {
        Value::Struct(s) => s,
        other => panic!("a struct return came back as {other:?}"),
    }
}

/// Calls `f` through `call_packed` with a return buffer of `max(8, size)`
/// bytes filled with 0xa5, and gives the buffer.
fn call_packed_struct(f: &Function, slots: &[u64]) -> Vec<u8> {
    let size = f.signature().ret.size() as usize;
    let words = size.max(8).div_ceil(8);
    let mut ret = vec![0xa5a5_a5a5_a5a5_a5a5u64; words + 1];
    // SAFETY: the signature is the function's; one slot per argument (a
    // struct's the address of its bytes); `ret` holds max(8, size) bytes.
    unsafe { f.call_packed(slots.as_ptr(), ret.as_mut_ptr()) };
    let bytes: Vec<u8> = ret.iter().flat_map(|w| w.to_ne_bytes()).collect();
    // Nothing past the struct's buffer is written.
    assert!(
        bytes[size.max(8)..].iter().all(|&b| b == 0xa5),
        "{}: wrote past its return buffer",
        f.signature()
    );
    bytes
}

#[test]
fn div_and_ldiv_return_their_structs() {
    let libc = Library::this_process().unwrap();
    for options in runs() {
        let div = bind(&libc, "div", "(i32, i32) -> {i32, i32}", &options);
        let ldiv = bind(&libc, "ldiv", "(i64, i64) -> {i64, i64}", &options);
        for (n, d) in [
            (7, 2),
            (-7, 2),
            (7, -2),
            (i32::MAX, 3),
            (i32::MIN + 1, -1),
            (0, 5),
        ] {
            // SAFETY: div(int, int) returns div_t { int quot; int rem; }.
            let got =
                returned_struct(unsafe { div.call(&[Value::I32(n), Value::I32(d)]) }.unwrap());
            assert_eq!(
                (got.field(0), got.field(1)),
                (Value::I32(n / d), Value::I32(n % d)),
                "div({n}, {d}) on {}",
                div.tier()
            );
            let bytes = call_packed_struct(&div, &[n as i64 as u64, d as i64 as u64]);
            assert_eq!(
                &bytes[..8],
                got.bytes(),
                "div({n}, {d}) through call_packed"
            );
        }
        for (n, d) in [
            (7i64, 2i64),
            (-7, 2),
            (i64::MAX, 10),
            (i64::MIN + 1, -1),
            (-1, i64::MAX),
        ] {
            // SAFETY: ldiv(long, long) returns ldiv_t { long quot; long rem; }.
            let got =
                returned_struct(unsafe { ldiv.call(&[Value::I64(n), Value::I64(d)]) }.unwrap());
            assert_eq!(
                (got.field(0), got.field(1)),
                (Value::I64(n / d), Value::I64(n % d)),
                "ldiv({n}, {d}) on {}",
                ldiv.tier()
            );
            let bytes = call_packed_struct(&ldiv, &[n as u64, d as u64]);
            assert_eq!(
                &bytes[..16],
                got.bytes(),
                "ldiv({n}, {d}) through call_packed"
            );
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct Pair {
    x: f32,
    y: f32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct S24 {
    a: i64,
    b: f64,
    c: i32,
}

impl Pair {
    fn bits(self) -> [u32; 2] {
        [self.x.to_bits(), self.y.to_bits()]
    }

    fn value(self, ty: &'static jitcall::StructType) -> StructValue {
        let mut v = StructValue::zeroed(ty);
        v.set_field(0, &Value::F32(self.x)).unwrap();
        v.set_field(1, &Value::F32(self.y)).unwrap();
        v
    }
}

impl S24 {
    /// The fields' bits: the 4 bytes of padding after `c` left out.
    fn bits(self) -> (u64, u64, u32) {
        (self.a as u64, self.b.to_bits(), self.c as u32)
    }

    fn value(self, ty: &'static jitcall::StructType) -> StructValue {
        let mut v = StructValue::zeroed(ty);
        v.set_field(0, &Value::I64(self.a)).unwrap();
        v.set_field(1, &Value::F64(self.b)).unwrap();
        v.set_field(2, &Value::I32(self.c)).unwrap();
        v
    }

    fn of(v: &StructValue) -> S24 {
        match (v.field(0), v.field(1), v.field(2)) {
            (Value::I64(a), Value::F64(b), Value::I32(c)) => S24 { a, b, c },
            other => panic!("not an S24: {other:?}"),
        }
    }
}

#[test]
fn an_all_float_pair_and_a_24_byte_struct_round_trip() {
    let lib = Library::open(STRUCTS_SO).unwrap();
    type Swap = extern "C" fn(Pair) -> Pair;
    type Mix = extern "C" fn(S24, f64, Pair) -> S24;
    type Sum = extern "C" fn(i32, S24, Pair) -> f64;
    // SAFETY: each symbol has the C signature of its Rust type
    // (fixtures/dl/structs.c), and `lib` keeps it loaded.
    let (swap, mix, sum) = unsafe {
        (
            std::mem::transmute::<*const c_void, Swap>(lib.symbol("jfdl_pair_swap").unwrap()),
            std::mem::transmute::<*const c_void, Mix>(lib.symbol("jfdl_s24_mix").unwrap()),
            std::mem::transmute::<*const c_void, Sum>(lib.symbol("jfdl_s24_sum").unwrap()),
        )
    };
    let pairs = [
        Pair { x: 1.5, y: -2.25 },
        Pair {
            x: -0.0,
            y: f32::MAX,
        },
        Pair {
            x: f32::from_bits(0x7fc0_1234),
            y: f32::MIN_POSITIVE / 4.0,
        },
    ];
    let s24s = [
        S24 {
            a: 3,
            b: 0.5,
            c: -9,
        },
        S24 {
            a: i64::MIN,
            b: -0.0,
            c: i32::MAX,
        },
        S24 {
            a: -1,
            b: f64::from_bits(0x7ff8_dead_beef_0001),
            c: 0,
        },
    ];
    let mut checked = 0;
    for options in runs() {
        let f_swap = bind(
            &lib,
            "jfdl_pair_swap",
            "({f32, f32}) -> {f32, f32}",
            &options,
        );
        let f_mix = bind(
            &lib,
            "jfdl_s24_mix",
            "({i64, f64, i32}, f64, {f32, f32}) -> {i64, f64, i32}",
            &options,
        );
        let f_sum = bind(
            &lib,
            "jfdl_s24_sum",
            "(i32, {i64, f64, i32}, {f32, f32}) -> f64",
            &options,
        );
        let pair_ty = f_swap.signature().ret.as_struct().unwrap();
        let s24_ty = f_mix.signature().ret.as_struct().unwrap();
        assert_eq!((s24_ty.size(), pair_ty.size()), (24, 8));
        for &p in &pairs {
            let want = swap(p);
            // SAFETY: the signature is jfdl_pair_swap's.
            let got = returned_struct(
                unsafe { f_swap.call(&[Value::Struct(p.value(pair_ty))]) }.unwrap(),
            );
            assert_eq!(
                got.bytes(),
                p.value(pair_ty)
                    .bytes()
                    .rchunks(4)
                    .flatten()
                    .copied()
                    .collect::<Vec<_>>()
            );
            assert_eq!(
                [got.field(0), got.field(1)].map(|v| match v {
                    Value::F32(x) => x.to_bits(),
                    other => panic!("{other:?}"),
                }),
                want.bits(),
                "swap {p:?} on {}",
                f_swap.tier()
            );
            for &s in &s24s {
                let k = -3.75;
                let want = mix(s, k, p);
                let args = [
                    Value::Struct(s.value(s24_ty)),
                    Value::F64(k),
                    Value::Struct(p.value(pair_ty)),
                ];
                // SAFETY: the signature is jfdl_s24_mix's.
                let got = returned_struct(unsafe { f_mix.call(&args) }.unwrap());
                assert_eq!(
                    S24::of(&got).bits(),
                    want.bits(),
                    "mix {s:?} {p:?} on {}",
                    f_mix.tier()
                );
                let slots: Vec<u64> = args.iter().map(Value::as_slot).collect();
                let bytes = call_packed_struct(&f_mix, &slots);
                let packed = StructValue::from_bytes(s24_ty, &bytes[..24]).unwrap();
                assert_eq!(
                    S24::of(&packed).bits(),
                    want.bits(),
                    "mix through call_packed"
                );

                let want = sum(-5, s, p);
                let args = [
                    Value::I32(-5),
                    Value::Struct(s.value(s24_ty)),
                    Value::Struct(p.value(pair_ty)),
                ];
                // SAFETY: the signature is jfdl_s24_sum's.
                let got = match unsafe { f_sum.call(&args) }.unwrap() {
                    Value::F64(x) => x.to_bits(),
                    other => panic!("{other:?}"),
                };
                assert_eq!(got, want.to_bits(), "sum on {}", f_sum.tier());
                checked += 3;
            }
        }
    }
    println!("{checked} struct calls agreed with direct calls");
}

/// What snprintf writes for `format` and `args`, bound as the given
/// variadic call shape on every tier; the count it returns must be the
/// length.
fn snprintf(shape: &str, format: &CStr, args: &[Value]) -> Vec<String> {
    let libc = Library::this_process().unwrap();
    let mut out = Vec::new();
    for options in runs() {
        let f = bind(&libc, "snprintf", shape, &options);
        let mut buf = [0u8; 256];
        let mut values = vec![
            Value::Pointer(buf.as_mut_ptr().cast()),
            Value::U64(buf.len() as u64),
            Value::Pointer(format.as_ptr().cast_mut().cast()),
        ];
        values.extend_from_slice(args);
        // SAFETY: snprintf reads the arguments the format names, which
        // are the variadic arguments of the shape, into a 256-byte buffer.
        let written = unsafe { f.call(&values) }.unwrap();
        let text = CStr::from_bytes_until_nul(&buf)
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        assert_eq!(
            written,
            Value::I32(text.len() as i32),
            "{shape} on {}",
            f.tier()
        );
        out.push(text);
    }
    out
}

#[test]
fn snprintf_prints_mixed_variadic_arguments_as_c_does() {
    let s = c"string";
    let args = [
        Value::I32(-7),
        Value::F64(2.5),
        Value::I64(i64::MIN),
        Value::F64(-1.25e-300),
        Value::Pointer(s.as_ptr().cast_mut().cast()),
        Value::U32(u32::MAX),
    ];
    let want = format!("-7|2.500|{}|-1.25e-300|string|{}", i64::MIN, u32::MAX);
    for text in snprintf(
        "(pointer, u64, pointer, ..., i32, f64, i64, f64, pointer, u32) -> i32",
        c"%d|%.3f|%lld|%.2e|%s|%u",
        &args,
    ) {
        assert_eq!(text, want);
    }

    // Ten doubles overflow the eight vector argument registers, and eight
    // integers after the three fixed arguments overflow the GP ones.
    let doubles: Vec<Value> = (1..=10).map(|i| Value::F64(f64::from(i) / 4.0)).collect();
    let want: Vec<String> = (1..=10)
        .map(|i| format!("{:.2}", f64::from(i) / 4.0))
        .collect();
    let shape = format!(
        "(pointer, u64, pointer, ..., {}) -> i32",
        ["f64"; 10].join(", ")
    );
    for text in snprintf(
        &shape,
        c"%.2f %.2f %.2f %.2f %.2f %.2f %.2f %.2f %.2f %.2f",
        &doubles,
    ) {
        assert_eq!(text, want.join(" "));
    }
    let ints: Vec<Value> = (0..8).map(|i| Value::I64(-(1i64 << (7 * i)))).collect();
    let want: Vec<String> = (0..8).map(|i| (-(1i64 << (7 * i))).to_string()).collect();
    let shape = format!(
        "(pointer, u64, pointer, ..., {}) -> i32",
        ["i64"; 8].join(", ")
    );
    for text in snprintf(&shape, c"%lld %lld %lld %lld %lld %lld %lld %lld", &ints) {
        assert_eq!(text, want.join(" "));
    }
    // No variadic arguments at all.
    for text in snprintf("(pointer, u64, pointer, ...) -> i32", c"plain", &[]) {
        assert_eq!(text, "plain");
    }
}

#[test]
fn hand_built_variadic_signatures_are_checked_when_bound() {
    extern "C" fn never_called() {}
    let target = never_called as *const c_void;
    let promoted = Signature::new_variadic([Type::Pointer], [Type::F32], Type::I32);
    // SAFETY: nothing is bound or called.
    let err = unsafe { Function::new(target, &promoted) }.unwrap_err();
    assert_eq!(
        err,
        jitcall::Error::UnsupportedType {
            index: Some(1),
            ty: Type::F32
        }
    );
    let mut misplaced = Signature::new([Type::I32], Type::Void);
    misplaced.variadic = Some(0);
    // SAFETY: nothing is bound or called.
    let err = unsafe { Function::new(target, &misplaced) }.unwrap_err();
    assert_eq!(err, jitcall::Error::VariadicPosition { fixed: 0, args: 1 });
}

#[test]
fn closed_library_struct_returns_are_zeroed_whole() {
    for options in runs() {
        let lib = Library::open(STRUCTS_SO).unwrap();
        let swap = bind(
            &lib,
            "jfdl_pair_swap",
            "({f32, f32}) -> {f32, f32}",
            &options,
        );
        let mix = bind(
            &lib,
            "jfdl_s24_mix",
            "({i64, f64, i32}, f64, {f32, f32}) -> {i64, f64, i32}",
            &options,
        );
        lib.close();
        let (pair, s24) = ([0u64; 1], [0u64; 3]);
        let bytes = call_packed_struct(&swap, &[pair.as_ptr() as u64]);
        assert!(
            bytes[..8].iter().all(|&b| b == 0),
            "{} on {}",
            swap.signature(),
            swap.tier()
        );
        let slots = [s24.as_ptr() as u64, 0, pair.as_ptr() as u64];
        let bytes = call_packed_struct(&mix, &slots);
        assert!(
            bytes[..24].iter().all(|&b| b == 0),
            "{} on {}",
            mix.signature(),
            mix.tier()
        );
    }
}
