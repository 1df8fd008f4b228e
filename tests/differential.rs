//! Differential tests: every callee is called directly through a typed
//! function pointer and through every tier (its own JIT trampoline's
//! packed and receiver entries, the shape's shared stub, the compiled-in
//! tiers, libffi), with edge values, and all results must agree bit for
//! bit.
//!
//! Run with `JITCALL_DISABLE_JIT=1` the same tests check that every
//! function lands on a compiled-in tier with that reason (or on libffi
//! when ineligible) and still agrees.

use std::ffi::c_void;

use jitcall::{
    BufferView, Fallback, Function, JitUnavailable, Library, Options, Tier, Type, Value,
};
use jitcall_fixtures::{
    argument_vectors, c, echo_shapes, edge_slots, many_arg_shapes, Shape, UNTOUCHED,
};

mod tiers;

fn jit_disabled_by_env() -> bool {
    std::env::var_os("JITCALL_DISABLE_JIT").is_some_and(|v| !v.is_empty() && v != "0")
}

/// Binds `shape` with `options` and checks the tier is the one this
/// process must get.
fn bind(shape: &Shape, options: &Options) -> Function {
    // SAFETY: each shape's target has the shape's signature.
    let f = unsafe { Function::with_options(shape.target, &shape.sig, options) }.unwrap();
    let want = tiers::expected(&shape.sig, options, false);
    assert_eq!(f.tier(), want, "{}: {}", shape.name, shape.sig);
    tiers::check_baked_stub(&f);
    if jit_disabled_by_env() && !options.force_libffi && !options.avoid_jit {
        assert!(
            matches!(
                f.tier(),
                Tier::Baked(Fallback::JitUnavailable(JitUnavailable::DisabledByEnv))
                    | Tier::Libffi(Fallback::Ineligible(_))
            ),
            "{}: {}",
            shape.name,
            f.tier()
        );
    }
    f
}

fn call_packed(f: &Function, slots: &[u64]) -> Option<u64> {
    let mut ret = UNTOUCHED;
    // SAFETY: one slot per argument, each readable at its type's width.
    unsafe { f.call_packed(slots.as_ptr(), &mut ret) };
    if f.signature().ret == Type::Void {
        assert_eq!(ret, UNTOUCHED, "a void call wrote the return slot");
        None
    } else {
        Some(ret)
    }
}

/// Binds `shape` as a function of a library (this process), so that its
/// trampolines check the library's closed byte at entry.
fn bind_from_library(shape: &Shape, options: &Options) -> Function {
    static LIBRARY: std::sync::OnceLock<Library> = std::sync::OnceLock::new();
    let library = LIBRARY.get_or_init(|| Library::this_process().unwrap());
    // SAFETY: each shape's target has the shape's signature and lives in
    // this process.
    let f = unsafe { library.function_at(shape.target, &shape.sig, options) }.unwrap();
    let plain = bind(shape, options);
    assert_eq!(f.tier(), plain.tier(), "{}: {}", shape.name, shape.sig);
    f
}

/// Binds every shape on every tier and compares each call with the
/// direct one; returns the number of argument vectors.
fn run_differential(shapes: &[Shape], bind: impl Fn(&Shape, &Options) -> Function) -> usize {
    let mut checked = 0;
    let receiver = Options {
        receiver_entry: true,
        ..Options::default()
    };
    for shape in shapes {
        let runs = tiers::each(receiver);
        let functions: Vec<(&str, Function)> = runs
            .iter()
            .map(|(name, options)| (*name, bind(shape, options)))
            .collect();
        for ((_, options), (_, f)) in runs.iter().zip(&functions) {
            assert_eq!(
                f.receiver_entry().is_some(),
                tiers::has_receiver(f, options),
                "{} on {}: a receiver entry when asked for, on the JIT and baked tiers",
                shape.name,
                f.tier()
            );
        }
        for slots in argument_vectors(&shape.sig) {
            let direct = (shape.direct)(&slots);
            let context = || format!("{} {} with {:x?}", shape.name, shape.sig, slots);
            for (name, f) in &functions {
                let got = call_packed(f, &slots);
                assert_eq!(got, direct, "{name} ({}): {}", f.tier(), context());
                if let Some(entry) = f.receiver_entry() {
                    // SAFETY: `entry` is the receiver entry for this signature.
                    let got = unsafe { (shape.receiver)(entry, &slots) };
                    assert_eq!(got, direct, "receiver entry: {}", context());
                }
            }
            checked += 1;
        }
    }
    checked
}

#[test]
fn every_type_as_argument_and_return_on_c_callees() {
    let n = run_differential(&echo_shapes(), bind);
    println!("{n} argument vectors agreed");
}

#[test]
fn shapes_from_0_to_16_arguments_on_c_and_rust_callees() {
    let n = run_differential(&many_arg_shapes(), bind);
    println!("{n} argument vectors agreed");
}

#[test]
fn functions_bound_from_an_open_library_agree_through_the_closed_check() {
    let shapes: Vec<Shape> = echo_shapes().into_iter().chain(many_arg_shapes()).collect();
    let n = run_differential(&shapes, bind_from_library);
    println!("{n} argument vectors agreed");
}

#[test]
fn buffers_pass_their_data_and_null_views_pass_null() {
    let sig = "(buffer, u64) -> u64".parse().unwrap();
    let options = Options {
        receiver_entry: true,
        ..Options::default()
    };
    let target = c::jf_buffer_sum as *const c_void;
    // SAFETY: jf_buffer_sum takes (const uint8_t *, uint64_t) -> uint64_t,
    // and a buffer passes its data pointer.
    let jit = unsafe { Function::with_options(target, &sig, &options) }.unwrap();
    let ffi = unsafe {
        Function::with_options(
            target,
            &sig,
            &Options {
                force_libffi: true,
                ..options
            },
        )
    }
    .unwrap();
    let mut bytes = [1u8, 2, 3, 250, 7];
    let view = BufferView {
        data: bytes.as_mut_ptr(),
        len: bytes.len(),
    };
    let null_data = BufferView {
        data: std::ptr::null_mut(),
        len: 0,
    };
    let cases: [(*const BufferView, u64, u64); 4] = [
        (&view, 5, 263),
        (&view, 3, 6),
        (&null_data, 0, u64::MAX),
        (std::ptr::null(), 9, u64::MAX),
    ];
    for (view_ptr, len, want) in cases {
        let slots = [view_ptr as u64, len];
        for f in [&jit, &ffi] {
            assert_eq!(call_packed(f, &slots), Some(want), "{:?}", f.tier());
        }
        if let Some(entry) = jit.receiver_entry() {
            // SAFETY: the receiver entry of (buffer, u64) -> u64 takes
            // (receiver, *const BufferView, u64) -> u64.
            let f: extern "C" fn(*const c_void, *const BufferView, u64) -> u64 =
                unsafe { std::mem::transmute(entry) };
            assert_eq!(f(std::ptr::null(), view_ptr, len), want);
        }
        // The checked path passes the view too.
        if !view_ptr.is_null() {
            // SAFETY: the view and its bytes are valid for the call.
            let got = unsafe { jit.call(&[Value::Buffer(*view_ptr), Value::U64(len)]) };
            assert_eq!(got, Ok(Value::U64(want)));
        }
    }
}

#[test]
fn checked_calls_agree_and_reject_mismatches() {
    let sig = "(i8, f32, pointer) -> i16".parse().unwrap();
    extern "C" fn target(a: i8, b: f32, c: *mut c_void) -> i16 {
        (i16::from(a) * 3)
            .wrapping_add(b as i16)
            .wrapping_add(c as usize as i16)
    }
    // SAFETY: `target` has this signature.
    let f = unsafe { Function::new(target as *const c_void, &sig) }.unwrap();
    let args = [
        Value::I8(-128),
        Value::F32(-2.5),
        Value::Pointer(7 as *mut c_void),
    ];
    // SAFETY: the pointer is never dereferenced.
    let got = unsafe { f.call(&args) }.unwrap();
    assert_eq!(got, Value::I16(target(-128, -2.5, 7 as *mut c_void)));
    // SAFETY: mismatches are rejected before any call.
    unsafe {
        assert_eq!(
            f.call(&args[..2]),
            Err(jitcall::Error::ArgCount {
                expected: 3,
                got: 2
            })
        );
        assert_eq!(
            f.call(&[
                Value::I8(1),
                Value::F64(1.0),
                Value::Pointer(std::ptr::null_mut())
            ]),
            Err(jitcall::Error::ArgType {
                index: 1,
                expected: Type::F32,
                got: Type::F64
            })
        );
    }
}

#[test]
fn bad_bindings_are_errors() {
    let sig = "(i32) -> i32".parse().unwrap();
    // SAFETY: a null target is rejected before anything is emitted.
    let err = unsafe { Function::new(std::ptr::null(), &sig) }.unwrap_err();
    assert_eq!(err, jitcall::Error::NullTarget);
    let void_arg = jitcall::Signature::new([Type::Void], Type::Void);
    // SAFETY: rejected before any use of the target.
    let err = unsafe { Function::new(c::jf_echo_i32 as *const c_void, &void_arg) }.unwrap_err();
    assert_eq!(
        err,
        jitcall::Error::UnsupportedType {
            index: Some(0),
            ty: Type::Void
        }
    );
}

#[test]
fn ineligible_signatures_fall_back_with_their_rule() {
    let options = Options {
        limits: jitcall::Limits::node(),
        ..Options::default()
    };
    let mut ineligible = 0;
    for shape in many_arg_shapes() {
        let f = bind(&shape, &options);
        ineligible += usize::from(matches!(f.tier(), Tier::Libffi(Fallback::Ineligible(_))));
        for slots in argument_vectors(&shape.sig).into_iter().take(4) {
            assert_eq!(
                call_packed(&f, &slots),
                (shape.direct)(&slots),
                "{}",
                shape.name
            );
        }
    }
    // A tier prints as one line naming the rule and its numbers.
    let nine: jitcall::Signature = "(f64, f64, f64, f64, f64, f64, f64, f64, f64) -> void"
        .parse()
        .unwrap();
    extern "C" fn never_called() {}
    // SAFETY: nothing is called.
    let f = unsafe { Function::with_options(never_called as *const _, &nine, &options) }.unwrap();
    assert_eq!(
        f.tier().to_string(),
        "libffi (ineligible: TooManyArgs: 9 arguments, at most 8)"
    );
    let sig = "() -> void".parse().unwrap();
    // SAFETY: nothing is called.
    let f = unsafe { Function::new(never_called as *const _, &sig) }.unwrap();
    let double_map_by_env =
        std::env::var_os("JITCALL_DOUBLE_MAP").is_some_and(|v| !v.is_empty() && v != "0");
    let want = if jit_disabled_by_env() {
        "baked (JIT unavailable: disabled by JITCALL_DISABLE_JIT)"
    } else if double_map_by_env {
        "JIT"
    } else {
        "shared JIT stub"
    };
    assert_eq!(f.tier().to_string(), want);
    assert!(
        ineligible > 0,
        "Node's limits turn some fixture shapes away"
    );
}

/// The 32-bit image of a narrow slot as the ABI rule wants it in a
/// register: the declared width, sign- or zero-extended.
fn extended_to_32(ty: Type, slot: u64) -> u32 {
    match ty {
        Type::I8 => slot as i8 as i32 as u32,
        Type::I16 => slot as i16 as i32 as u32,
        Type::U8 | Type::Bool => u32::from(slot as u8),
        Type::U16 => u32::from(slot as u16),
        _ => unreachable!("narrow types only"),
    }
}

/// Calls the raw-register and raw-stack-slot fixtures with every narrow
/// type in the first register and in the first stack slot, through
/// functions bound with `options`, and checks that the callee saw each
/// value extended to 32 bits. Returns the number of calls.
fn narrow_packed_arguments_arrive_extended(options: &Options) -> usize {
    let abi = jitcall::Abi::host().expect("a supported host");
    let mut checked = 0;
    for ty in NARROW {
        // Once in the first register, once in the first stack slot.
        let on_stack = [Type::I64].repeat(abi.gp_regs());
        for (fixture, leading) in [
            (c::jf_raw_reg0 as *const c_void, vec![]),
            (c::jf_raw_stack0 as *const c_void, on_stack),
        ] {
            let mut args = leading.clone();
            args.push(ty);
            let sig = jitcall::Signature::new(args, Type::U32);
            // SAFETY: the fixtures read one 32-bit register or stack slot
            // and return it; any integer arguments are fine.
            let f = unsafe { Function::with_options(fixture, &sig, options) }.unwrap();
            for value in edge_slots(ty) {
                let mut slots = vec![0u64; leading.len()];
                slots.push(value);
                let want = u64::from(extended_to_32(ty, value));
                assert_eq!(
                    call_packed(&f, &slots),
                    Some(want),
                    "{sig} packed on {:?}, slot {value:#x}",
                    f.tier()
                );
                checked += 1;
            }
        }
    }
    checked
}

const NARROW: [Type; 5] = [Type::I8, Type::U8, Type::I16, Type::U16, Type::Bool];

/// The libffi tier must extend narrow arguments as the JIT tier does:
/// clang-compiled callees rely on it (see DESIGN.md, "ABI facts").
#[test]
fn narrow_arguments_arrive_extended_to_32_bits_on_libffi_too() {
    let options = Options {
        force_libffi: true,
        ..Options::default()
    };
    let checked = narrow_packed_arguments_arrive_extended(&options);
    println!("{checked} narrow arguments checked on libffi");
}

#[test]
fn narrow_arguments_arrive_extended_to_32_bits() {
    let options = Options {
        receiver_entry: true,
        ..Options::default()
    };
    let mut checked = 0;
    for (_, options) in &tiers::each(options)[..3] {
        checked += narrow_packed_arguments_arrive_extended(options);
    }
    for ty in NARROW {
        // The receiver entry gets narrow values widened to 32 bits, maybe
        // out of range for the type, and must re-narrow them.
        let sig = jitcall::Signature::new([ty], Type::U32);
        // SAFETY: as above.
        let f = unsafe { Function::with_options(c::jf_raw_reg0 as *const c_void, &sig, &options) }
            .unwrap();
        if let Some(entry) = f.receiver_entry() {
            // SAFETY: a receiver entry of (narrow) -> u32 takes
            // (receiver, 32-bit integer) -> u32.
            let call: extern "C" fn(*const c_void, u32) -> u32 =
                unsafe { std::mem::transmute(entry) };
            for wide in [
                0u32,
                1,
                0x7f,
                0x80,
                0xff,
                0x1ff,
                0x8000,
                0xffff,
                0x1_2345,
                0xffff_fffe,
            ] {
                let want = extended_to_32(ty, u64::from(wide));
                assert_eq!(
                    call(std::ptr::null(), wide),
                    want,
                    "{sig} receiver, {wide:#x}"
                );
                checked += 1;
            }
        }
    }
    println!("{checked} narrow arguments checked");
}

#[test]
fn receiver_entries_that_would_move_nothing_are_the_target_itself() {
    if jit_disabled_by_env() {
        println!("JITCALL_DISABLE_JIT is set: no JIT receiver entries to check");
        return;
    }
    extern "C" fn target() {}
    let receiver = Options {
        receiver_entry: true,
        ..Options::default()
    };
    // (signature, whether the entry is the target): nothing moves for no
    // arguments and for FP ones only (the receiver takes a GP register);
    // a GP argument shifts, a narrow return is narrowed, a variadic
    // signature's entry sets al.
    let cases = [
        ("() -> void", true),
        ("() -> i64", true),
        ("(f64, f64) -> f64", true),
        ("(f32) -> f32", true),
        ("(i32, i32) -> i32", false),
        ("(f64) -> u8", false),
        ("(f64, ..., f64) -> f64", false),
    ];
    for (text, direct) in cases {
        let sig = jitcall::Signature::parse(text).unwrap();
        // SAFETY: nothing is called.
        let f =
            unsafe { Function::with_options(target as *const c_void, &sig, &receiver) }.unwrap();
        let entry = f
            .receiver_entry()
            .expect("a receiver entry on the JIT tier");
        assert_eq!(entry == target as *const c_void, direct, "{text}");
        let kind = if direct {
            jitcall::ReceiverKind::Target
        } else {
            jitcall::ReceiverKind::Trampoline
        };
        assert_eq!(f.receiver_kind(), Some(kind), "{text}");
    }
    // Bound from a library, the entry checks the closed byte: never the
    // target itself.
    let library = Library::this_process().unwrap();
    let sig = "() -> void".parse().unwrap();
    // SAFETY: nothing is called.
    let f = unsafe { library.function_at(target as *const c_void, &sig, &receiver) }.unwrap();
    assert_ne!(f.receiver_entry(), Some(target as *const c_void));
}
