//! Malformed input to the API: checked calls with the wrong number or kinds
//! of arguments are errors and call nothing, on every tier; a missing
//! library or symbol is an error. (Malformed signatures, text and JSON, are
//! the business of `emitters/tests/parse_props.rs` and of the cargo-fuzz
//! target in `fuzz/`, which share one check.)

use std::ffi::c_void;
use std::sync::atomic::{AtomicUsize, Ordering};

use jitcall::{BufferView, Error, Function, Library, Options, Signature, Type, Value};
use jitcall_fixtures::{argument_vectors, echo_shapes, many_arg_shapes};

/// A value of `ty` read from a packed slot (a buffer as an empty view).
fn value(ty: Type, slot: u64) -> Value {
    match ty {
        Type::Void => Value::Void,
        Type::Bool => Value::Bool(slot as u8 & 1 != 0),
        Type::I8 => Value::I8(slot as i8),
        Type::U8 => Value::U8(slot as u8),
        Type::I16 => Value::I16(slot as i16),
        Type::U16 => Value::U16(slot as u16),
        Type::I32 => Value::I32(slot as i32),
        Type::U32 => Value::U32(slot as u32),
        Type::I64 => Value::I64(slot as i64),
        Type::U64 => Value::U64(slot),
        Type::F32 => Value::F32(f32::from_bits(slot as u32)),
        Type::F64 => Value::F64(f64::from_bits(slot)),
        Type::Pointer => Value::Pointer(slot as *mut c_void),
        Type::Buffer => Value::Buffer(BufferView {
            data: std::ptr::null_mut(),
            len: 0,
        }),
        Type::Function => Value::Function(slot as *const c_void),
        Type::Struct(layout) => Value::Struct(jitcall::StructValue::zeroed(layout)),
    }
}

/// The packed image of a returned value, to compare floats bit for bit.
fn packed(v: Value) -> Option<u64> {
    Some(match v {
        Value::Void | Value::Buffer(_) | Value::Struct(_) => return None,
        Value::Bool(b) => u64::from(b),
        Value::I8(x) => x as u64,
        Value::U8(x) => u64::from(x),
        Value::I16(x) => x as u64,
        Value::U16(x) => u64::from(x),
        Value::I32(x) => x as u64,
        Value::U32(x) => u64::from(x),
        Value::I64(x) => x as u64,
        Value::U64(x) => x,
        Value::F32(x) => u64::from(x.to_bits()),
        Value::F64(x) => x.to_bits(),
        Value::Pointer(p) => p as u64,
        Value::Function(p) => p as u64,
    })
}

/// Every way to get a checked call wrong for `sig`, with the error it must
/// give: each wrong count (from none to two too many), each argument
/// replaced by a value of each other type, two wrong arguments (the first
/// is named), and a wrong count with wrong kinds (the count is named).
fn mismatches(sig: &Signature, good: &[Value]) -> Vec<(Vec<Value>, Error)> {
    let n = sig.args.len();
    let mut table = Vec::new();
    for count in (0..=n + 2).filter(|&c| c != n) {
        let args = match good {
            [] => vec![Value::I32(0); count],
            _ => (0..count).map(|i| good[i % n].clone()).collect(),
        };
        table.push((
            args,
            Error::ArgCount {
                expected: n,
                got: count,
            },
        ));
    }
    for (index, &expected) in sig.args.iter().enumerate() {
        for &got in Type::ALL.iter().filter(|&&t| t != expected) {
            let wrong = Error::ArgType {
                index,
                expected,
                got,
            };
            let mut args = good.to_vec();
            args[index] = value(got, 1);
            table.push((args.clone(), wrong.clone()));
            if index + 1 < n {
                // A second mismatch after it changes nothing.
                args[n - 1] = Value::Void;
                table.push((args.clone(), wrong));
            }
            args.push(Value::Void);
            table.push((
                args,
                Error::ArgCount {
                    expected: n,
                    got: n + 1,
                },
            ));
        }
    }
    table
}

static COUNTED_CALLS: AtomicUsize = AtomicUsize::new(0);

extern "C" fn counted(a: i8, b: f32, c: *mut c_void, d: bool, e: u64) -> i32 {
    COUNTED_CALLS.fetch_add(1, Ordering::SeqCst);
    i32::from(a) + b as i32 + c as usize as i32 + i32::from(d) + e as i32
}

mod tiers;

/// Every tier.
fn runs() -> [Options; 5] {
    tiers::each(Options::default()).map(|(_, options)| options)
}

#[test]
fn mismatched_checked_calls_are_errors_and_call_nothing() {
    let sig: Signature = "(i8, f32, pointer, bool, u64) -> i32".parse().unwrap();
    let good = [
        Value::I8(-3),
        Value::F32(2.5),
        Value::Pointer(40 as *mut c_void),
        Value::Bool(true),
        Value::U64(100),
    ];
    let mut rejected = 0;
    for options in runs() {
        // SAFETY: `counted` has this signature.
        let f =
            unsafe { Function::with_options(counted as *const c_void, &sig, &options) }.unwrap();
        for (args, want) in mismatches(&sig, &good) {
            // SAFETY: the call is rejected before anything is called.
            assert_eq!(
                unsafe { f.call(&args) },
                Err(want.clone()),
                "{:?}",
                f.tier()
            );
            // The error says what was wrong.
            assert!(!want.to_string().is_empty());
            rejected += 1;
        }
        assert_eq!(
            COUNTED_CALLS.load(Ordering::SeqCst),
            0,
            "a rejected call ran"
        );
        // SAFETY: the pointer is never dereferenced.
        assert_eq!(
            unsafe { f.call(&good) },
            Ok(Value::I32(-3 + 2 + 40 + 1 + 100))
        );
        assert_eq!(COUNTED_CALLS.swap(0, Ordering::SeqCst), 1);
    }
    println!("{rejected} mismatched calls rejected on the JIT tier and on libffi");
}

#[test]
fn every_shape_rejects_mismatches_and_agrees_when_called_right() {
    let (mut rejected, mut agreed) = (0, 0);
    for shape in echo_shapes().into_iter().chain(many_arg_shapes()) {
        for options in runs() {
            // SAFETY: the shape's target has the shape's signature.
            let f = unsafe { Function::with_options(shape.target, &shape.sig, &options) }.unwrap();
            for slots in argument_vectors(&shape.sig).into_iter().take(3) {
                let good: Vec<Value> = shape
                    .sig
                    .args
                    .iter()
                    .zip(&slots)
                    .map(|(&ty, &slot)| value(ty, slot))
                    .collect();
                // SAFETY: the callees never dereference pointer arguments.
                let got = unsafe { f.call(&good) }.unwrap();
                assert_eq!(packed(got), (shape.direct)(&slots), "{}", shape.name);
                agreed += 1;
            }
            let good: Vec<Value> = shape.sig.args.iter().map(|&ty| value(ty, 0)).collect();
            for (args, want) in mismatches(&shape.sig, &good) {
                // SAFETY: rejected before anything is called.
                assert_eq!(unsafe { f.call(&args) }, Err(want), "{}", shape.name);
                rejected += 1;
            }
        }
    }
    println!("{agreed} checked calls agreed, {rejected} mismatched ones rejected");
}

#[test]
fn missing_libraries_and_symbols_are_errors() {
    // (Library has no Debug, so no unwrap_err.)
    let Err(err) = Library::open("/nonexistent/libjitcall-missing.so") else {
        panic!("a missing library opened");
    };
    assert!(matches!(err, Error::Open { .. }), "{err:?}");
    let this = Library::this_process().unwrap();
    let sig = "(i32) -> i32".parse().unwrap();
    let err = this.function("jitcall_no_such_symbol", &sig).unwrap_err();
    assert!(matches!(err, Error::Symbol { .. }), "{err:?}");
    assert!(err.to_string().contains("jitcall_no_such_symbol"), "{err}");
}

#[test]
fn a_huge_argument_count_is_an_error_not_a_crash() {
    // 300,000 i32 arguments overflow a thread's stack in ffi_call; no
    // parser gives such a signature, and binding one built by hand fails.
    extern "C" fn never_called() {}
    let sig = Signature::new(vec![Type::I32; 300_000], Type::Void);
    for options in runs() {
        // SAFETY: nothing is called; the binding must fail.
        let err = unsafe { Function::with_options(never_called as *const _, &sig, &options) }
            .unwrap_err();
        assert_eq!(
            err,
            Error::TooManyArgs {
                n: 300_000,
                max: 127
            }
        );
    }
    let most = Signature::new(vec![Type::I32; Signature::MAX_ARGS], Type::Void);
    // SAFETY: nothing is called.
    unsafe { Function::new(never_called as *const _, &most) }.unwrap();
}

#[test]
fn library_errors_quote_a_bounded_excerpt() {
    let path = format!("/nonexistent/{}.so", "p".repeat(100_000));
    let Err(err) = Library::open(&path) else {
        panic!("a missing library opened");
    };
    let message = err.to_string();
    assert!(message.len() < 600, "{} bytes: {message}", message.len());
    assert!(message.contains("more bytes"), "{message}");

    let this = Library::this_process().unwrap();
    let sig = "() -> void".parse().unwrap();
    let name = format!("no_such_\u{0}symbol_{}", "n".repeat(100_000));
    let message = this.function(&name, &sig).unwrap_err().to_string();
    assert!(message.len() < 600, "{} bytes: {message}", message.len());
    let name = format!("jitcall_missing_{}", "n".repeat(100_000));
    let message = this.function(&name, &sig).unwrap_err().to_string();
    assert!(message.len() < 600, "{} bytes: {message}", message.len());
    assert!(!message.chars().any(char::is_control), "{message:?}");
}
