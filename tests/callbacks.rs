//! Callbacks: C function pointers that call back into Rust, on every tier.
//!
//! - The generated suite: for each of the 320 generated signatures (0–16
//!   arguments over every scalar type), C calls the callback with edge and
//!   random values; the handler records the slots it received and returns
//!   a value derived from them. The Rust side checks every slot against
//!   the value C passed, extended as its type says, and C's view of the
//!   return against what the handler returned.
//! - `qsort` and `bsearch` from the C library with comparators.
//! - A callback called from a thread C created, and callbacks re-entered
//!   through a `Function` to depth 1,000.
//! - Structs by value, in registers and in memory.
//! - Bad input: a variadic signature is an error.

use std::cell::RefCell;
use std::ffi::c_void;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use jitcall::{Callback, Error, Function, Options, Signature, Tier, Type};
use jitcall_fixtures::{
    argument_vectors, bytes_of_mut, c, generated_cases, significant, struct_arguments,
    struct_cases, ArgumentRng, Callee,
};

mod tiers;

/// The options that put a callback on each tier it has: the JIT (its own
/// reverse trampoline, double-mapped too), the baked tier (a static thunk
/// to the generic reverse stub) and libffi.
fn runs() -> [(&'static str, Options); 4] {
    let [jit, _, baked, libffi, double] = tiers::each(Options::default());
    [jit, baked, libffi, double]
}

/// The tier a callback for `sig` must be on with `options`.
fn expected_tier(sig: &Signature, options: &Options) -> Tier {
    match tiers::expected(sig, options, true) {
        // A callback has no shared stub: alone, it gets its own code.
        Tier::Shared => Tier::Jit,
        tier => tier,
    }
}

/// The slot a handler must receive for an argument of `ty` that C passed
/// from `slot` (read at the declared width, as the C caller does).
fn received(ty: Type, slot: u64) -> u64 {
    match ty {
        Type::Bool => slot & 1,
        Type::U8 => slot & 0xff,
        Type::I8 => slot as i8 as i64 as u64,
        Type::U16 => slot & 0xffff,
        Type::I16 => slot as i16 as i64 as u64,
        Type::U32 | Type::F32 => slot & 0xffff_ffff,
        Type::I32 => slot as i32 as i64 as u64,
        _ => slot,
    }
}

/// What a handler returns for the slots it got: a checksum, as the slot of
/// the return type (the packed encoding), so that every argument counts.
fn reply(ret: Type, slots: &[u64]) -> u64 {
    let hash = slots.iter().fold(0x243f_6a88_85a3_08d3_u64, |h, &s| {
        (h ^ s).wrapping_mul(0x0100_0000_01b3)
    });
    match ret {
        Type::F32 => u64::from(f32::from_bits(hash as u32 & 0x7f7f_ffff).to_bits()),
        Type::F64 => f64::from_bits(hash & 0x7fef_ffff_ffff_ffff).to_bits(),
        Type::Void => 0,
        ty => received(ty, hash),
    }
}

thread_local! {
    /// The slots the last handler call on this thread received.
    static LAST: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

#[test]
fn every_generated_signature_calls_back_with_every_value_on_every_tier() {
    let mut calls = 0;
    for case in generated_cases() {
        let sig = case.signature().clone();
        for (name, options) in runs() {
            let ret = sig.ret;
            let callback = Callback::with_options(&sig, &options, move |args, out| {
                LAST.with(|last| *last.borrow_mut() = args.to_vec());
                *out = reply(ret, args);
            })
            .unwrap_or_else(|e| panic!("{} {sig}: {e}", case.name()));
            assert_eq!(
                callback.tier(),
                expected_tier(&sig, &options),
                "{} {sig} ({name})",
                case.name()
            );
            for slots in argument_vectors(&sig) {
                // SAFETY: the code pointer has the case's signature.
                let got = unsafe { case.via_pointer(callback.code_ptr(), &slots) };
                let want_args: Vec<u64> = sig
                    .args
                    .iter()
                    .zip(&slots)
                    .map(|(&ty, &slot)| received(ty, slot))
                    .collect();
                let seen = LAST.with(|last| std::mem::take(&mut *last.borrow_mut()));
                let context = || {
                    format!(
                        "{} {sig} on {} with {slots:x?}",
                        case.name(),
                        callback.tier()
                    )
                };
                assert_eq!(seen, want_args, "arguments: {}", context());
                assert_eq!(got, reply(ret, &want_args), "return: {}", context());
                calls += 1;
            }
        }
    }
    println!("{calls} calls from C agreed");
}

/// A comparator of `i32`s through a raw handler, counting its calls.
unsafe extern "C" fn compare_i32(data: *mut c_void, args: *const u64, ret: *mut u64) {
    // SAFETY: `data` is the counter the test passes, alive for the sort.
    let counter = unsafe { &*data.cast::<AtomicUsize>() };
    counter.fetch_add(1, Ordering::Relaxed);
    // SAFETY: two pointer slots, to i32 elements of the array.
    let (a, b) = unsafe { (*(*args as *const i32), *(*args.add(1) as *const i32)) };
    // SAFETY: a scalar return slot.
    unsafe { *ret = (a.cmp(&b) as i32) as i64 as u64 };
}

/// qsort's and bsearch's comparator type.
type Comparator = unsafe extern "C" fn(*const libc::c_void, *const libc::c_void) -> i32;

#[test]
fn qsort_and_bsearch_with_comparators_on_every_tier() {
    let sig: Signature = "(pointer, pointer) -> i32".parse().unwrap();
    let mut state = 0x1234_5678_9abc_def0_u64;
    for (name, options) in runs() {
        let counter = AtomicUsize::new(0);
        // SAFETY: the handler reads two i32 pointers and the counter, which
        // outlives the callback.
        let cmp = unsafe {
            Callback::from_raw(
                &sig,
                compare_i32,
                std::ptr::addr_of!(counter).cast_mut().cast(),
                &options,
            )
        }
        .unwrap();
        for len in [0usize, 1, 2, 7, 100, 1000] {
            let mut values: Vec<i32> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as i32
                })
                .collect();
            let mut want = values.clone();
            want.sort_unstable();
            // SAFETY: the comparator has qsort's comparator type and reads
            // two elements of this i32 array.
            unsafe {
                libc::qsort(
                    values.as_mut_ptr().cast(),
                    len,
                    4,
                    Some(std::mem::transmute::<*const c_void, Comparator>(
                        cmp.code_ptr(),
                    )),
                )
            };
            assert_eq!(values, want, "qsort of {len} on {name}");
            for key in want.iter().take(20) {
                // SAFETY: as above; the array is sorted.
                let found = unsafe {
                    libc::bsearch(
                        std::ptr::addr_of!(*key).cast(),
                        values.as_ptr().cast(),
                        len,
                        4,
                        Some(std::mem::transmute::<*const c_void, Comparator>(
                            cmp.code_ptr(),
                        )),
                    )
                };
                assert!(!found.is_null(), "bsearch of {key} on {name}");
                // SAFETY: bsearch returns an element's address.
                assert_eq!(unsafe { *found.cast::<i32>() }, *key);
            }
        }
        assert!(counter.load(Ordering::Relaxed) > 1000, "{name}");
    }
}

#[test]
fn a_callback_runs_on_a_thread_c_created() {
    let sig: Signature = "(i64) -> i64".parse().unwrap();
    for (name, options) in runs() {
        let main = std::thread::current().id();
        let ran_elsewhere = Arc::new(AtomicUsize::new(0));
        let seen = Arc::clone(&ran_elsewhere);
        let twice = Callback::with_options(&sig, &options, move |args, ret| {
            if std::thread::current().id() != main {
                seen.fetch_add(1, Ordering::SeqCst);
            }
            *ret = (args[0] as i64).wrapping_mul(2) as u64;
        })
        .unwrap();
        // SAFETY: the callback has the type jf_call_on_thread calls.
        let got = unsafe { c::jf_call_on_thread(twice.code_ptr(), -21) };
        assert_eq!(got, -42, "{name}");
        assert_eq!(ran_elsewhere.load(Ordering::SeqCst), 1, "{name}");
    }
}

#[test]
fn callbacks_reenter_through_a_function_to_depth_1000() {
    // Each level is a few frames of C, trampoline and Rust: more than a
    // test thread's default stack holds for 1,000 of them on libffi.
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(reenter_to_depth_1000)
        .unwrap()
        .join()
        .unwrap();
}

fn reenter_to_depth_1000() {
    let sig: Signature = "(pointer, i32) -> i32".parse().unwrap();
    let cb_sig: Signature = "(i32) -> i32".parse().unwrap();
    for (name, options) in runs() {
        // SAFETY: jf_reenter(f, n) calls f(n) and has this signature.
        let reenter = Arc::new(
            unsafe { Function::with_options(c::jf_reenter as *const _, &sig, &options) }.unwrap(),
        );
        let code = Arc::new(AtomicUsize::new(0));
        let (reenter_in, code_in) = (Arc::clone(&reenter), Arc::clone(&code));
        let callback = Callback::with_options(&cb_sig, &options, move |args, ret| {
            let n = args[0] as i32;
            *ret = if n == 0 {
                0
            } else {
                let slots = [code_in.load(Ordering::SeqCst) as u64, (n - 1) as u32 as u64];
                let mut out = 0u64;
                // SAFETY: jf_reenter's slots: the callback and an i32.
                unsafe { reenter_in.call_packed(slots.as_ptr(), &mut out) };
                ((out as i32) + 1) as i64 as u64
            };
        })
        .unwrap();
        code.store(callback.code_ptr() as usize, Ordering::SeqCst);
        let slots = [callback.code_ptr() as u64, 1000];
        let mut out = 0u64;
        // SAFETY: as above.
        unsafe { reenter.call_packed(slots.as_ptr(), &mut out) };
        assert_eq!(out as i32, 1000, "{name}");
    }
}

/// What a struct handler received: each argument's slot, a struct's
/// significant bytes in place of its address.
type Received = Vec<Vec<u8>>;

thread_local! {
    static RECEIVED: RefCell<Received> = const { RefCell::new(Vec::new()) };
}

/// An argument as the handler must see it: a scalar's slot as C passed it
/// (extended), a struct's significant bytes.
fn argument_image(ty: Type, slot: u64) -> Vec<u8> {
    match ty {
        Type::Struct(layout) => {
            // SAFETY: a struct slot holds the address of its bytes, live
            // for the call.
            let bytes =
                unsafe { std::slice::from_raw_parts(slot as *const u8, layout.size() as usize) };
            significant(ty, bytes)
        }
        ty => received(ty, slot).to_le_bytes().to_vec(),
    }
}

#[test]
fn every_generated_struct_signature_calls_back_on_every_tier() {
    let (mut calls, mut cases) = (0, 0);
    for case in struct_cases() {
        let sig = Signature::parse(case.signature_text()).unwrap();
        if sig.variadic.is_some() {
            continue;
        }
        cases += 1;
        for (name, options) in runs() {
            let (args, ret) = (sig.args.clone(), sig.ret);
            let callback = Callback::with_options(&sig, &options, move |slots, out| {
                let images: Received = args
                    .iter()
                    .zip(slots)
                    .map(|(&ty, &slot)| argument_image(ty, slot))
                    .collect();
                let hash = images.iter().flatten().fold(0x811c_9dc5_u64, |h, &b| {
                    (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
                });
                RECEIVED.with(|r| *r.borrow_mut() = images);
                match ret {
                    Type::Struct(layout) => {
                        // The struct's fields from the hash, into the
                        // buffer whose address the handler got.
                        let buffer = *out as *mut u8;
                        for (k, (offset, field)) in layout.flatten().into_iter().enumerate() {
                            let bits = reply(field, &[hash, k as u64]).to_le_bytes();
                            // SAFETY: the buffer holds the struct.
                            unsafe {
                                std::ptr::copy_nonoverlapping(
                                    bits.as_ptr(),
                                    buffer.add(offset as usize),
                                    field.size() as usize,
                                );
                            }
                        }
                    }
                    ty => *out = reply(ty, &[hash]),
                }
            })
            .unwrap_or_else(|e| panic!("{} {sig}: {e}", case.name()));
            assert_eq!(
                callback.tier(),
                expected_tier(&sig, &options),
                "{} ({name})",
                case.name()
            );
            let mut rng = ArgumentRng::new(0x5eed ^ case.callee() as u64);
            for _ in 0..4 {
                let (slots, _buffers) = struct_arguments(&sig, &mut rng);
                // SAFETY: the callback has the case's signature; struct
                // slots point at live buffers of their size.
                let got = unsafe { case.via_pointer(callback.code_ptr(), &slots) }.unwrap();
                let want_args: Received = sig
                    .args
                    .iter()
                    .zip(&slots)
                    .map(|(&ty, &slot)| argument_image(ty, slot))
                    .collect();
                let seen = RECEIVED.with(|r| std::mem::take(&mut *r.borrow_mut()));
                let context = || format!("{} {sig} on {}", case.name(), callback.tier());
                assert_eq!(seen, want_args, "arguments: {}", context());
                // The return as the handler wrote it, through the same
                // computation on the arguments C passed.
                let mut expected = vec![0u64; (ret.size() as usize).max(8).div_ceil(8)];
                let hash = want_args.iter().flatten().fold(0x811c_9dc5_u64, |h, &b| {
                    (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
                });
                match ret {
                    Type::Struct(layout) => {
                        let bytes = bytes_of_mut(&mut expected);
                        for (k, (offset, field)) in layout.flatten().into_iter().enumerate() {
                            let bits = reply(field, &[hash, k as u64]).to_le_bytes();
                            let at = offset as usize;
                            bytes[at..at + field.size() as usize]
                                .copy_from_slice(&bits[..field.size() as usize]);
                        }
                    }
                    Type::Void => {}
                    ty => expected[0] = reply(ty, &[hash]),
                }
                let expected = bytes_of_mut(&mut expected).to_vec();
                assert_eq!(
                    significant(ret, &got),
                    significant(ret, &expected),
                    "return: {}",
                    context()
                );
                calls += 1;
            }
        }
    }
    assert!(cases >= 300, "{cases} struct cases");
    println!("{cases} struct signatures: {calls} calls from C agreed");
}

#[test]
fn variadic_callbacks_are_errors() {
    let sig = Signature::parse("(i32, ..., f64) -> void").unwrap();
    let err = Callback::new(&sig, |_, _| {}).unwrap_err();
    assert_eq!(err, Error::VariadicCallback);
    assert!(err.to_string().contains("variadic"), "{err}");
}

#[test]
fn handlers_run_with_an_aligned_stack_and_callers_keep_their_registers() {
    let sig: Signature = "(pointer, pointer, pointer) -> void".parse().unwrap();
    for (name, options) in runs() {
        let misaligned = Arc::new(AtomicUsize::new(usize::MAX));
        let seen = Arc::clone(&misaligned);
        let callback = Callback::with_options(&sig, &options, move |_, _| {
            // The fixture reports the stack pointer's alignment at its
            // call, which is aligned only if this handler was entered
            // aligned.
            // SAFETY: the fixture reads the stack pointer and returns.
            seen.store(unsafe { c::jf_entry_sp_mod16() } as usize, Ordering::SeqCst);
        })
        .unwrap();
        let null = std::ptr::null();
        // SAFETY: jf_call_preserving calls the callback with three pointer
        // arguments, which the handler ignores.
        let clobbered = unsafe { c::jf_call_preserving(callback.code_ptr(), null, null, null) };
        assert_eq!(
            clobbered, 0,
            "{name}: callee-saved registers changed (bitmask)"
        );
        assert_eq!(
            misaligned.load(Ordering::SeqCst),
            0,
            "{name}: sp % 16 in the handler"
        );
    }
}

/// The environment variable that makes this test binary the child of
/// `a_panicking_handler_aborts_with_a_message`.
const PANIC_CHILD: &str = "JITCALL_CALLBACK_PANIC_CHILD";

#[test]
fn a_panicking_handler_aborts_with_a_message() {
    if std::env::var_os(PANIC_CHILD).is_some() {
        let sig: Signature = "(i32) -> i32".parse().unwrap();
        let tier = std::env::var(PANIC_CHILD).unwrap();
        let options = runs()
            .into_iter()
            .find(|(name, _)| *name == tier)
            .map(|(_, options)| options)
            .unwrap();
        let callback =
            Callback::with_options(&sig, &options, |_, _| panic!("from the handler")).unwrap();
        // SAFETY: the callback has this type.
        let f: extern "C" fn(i32) -> i32 = unsafe { std::mem::transmute(callback.code_ptr()) };
        f(1);
        unreachable!("the panic aborts the process");
    }
    for (name, _) in runs() {
        let output = jitcall_fixtures::process::target_command(&std::env::current_exe().unwrap())
            .args([
                "a_panicking_handler_aborts_with_a_message",
                "--exact",
                "--nocapture",
            ])
            .env(PANIC_CHILD, name)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        if output.status.code() == Some(127) && output.stdout.is_empty() {
            println!(
                "NOTICE: cannot re-execute the test binary here (an emulator?): {name} NOT checked"
            );
            continue;
        }
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            output.status.signal(),
            Some(libc::SIGABRT),
            "{name}: {stderr}"
        );
        assert!(stderr.contains("from the handler"), "{name}: {stderr}");
        assert!(
            stderr.contains("a callback handler panicked; aborting"),
            "{name}: {stderr}"
        );
    }
}
