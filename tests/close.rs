//! `Library::close` with Node.js's semantics, on a library of the test's
//! own (`fixtures/dl/closable.c`, loaded with `dlopen`): afterwards checked
//! calls, binding and lookups are errors; raw entries and `call_packed`
//! reach the runtime's handler and return zero, never the library; the
//! `dlclose` waits for the last function bound from it.

use std::ffi::{c_void, CString};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use jitcall::{Error, Library, Options, PackedFn, Value};
use jitcall_fixtures::{c, CLOSABLE_SO};

/// The tests load and unload the same library: one at a time, so that
/// `loaded()` sees only its own test's handles.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether the fixture library is loaded in this process.
fn loaded() -> bool {
    let path = CString::new(CLOSABLE_SO).unwrap();
    // SAFETY: RTLD_NOLOAD only looks the library up; a handle it returns
    // is closed at once, leaving the reference count as it was.
    unsafe {
        let handle = libc::dlopen(path.as_ptr(), libc::RTLD_NOW | libc::RTLD_NOLOAD);
        if handle.is_null() {
            return false;
        }
        libc::dlclose(handle);
    }
    true
}

fn open() -> Library {
    Library::open(CLOSABLE_SO).unwrap_or_else(|e| panic!("{e}"))
}

mod tiers;

/// Every tier, with a receiver entry where the JIT tier has one.
fn runs() -> [Options; 5] {
    let receiver = Options {
        receiver_entry: true,
        ..Options::default()
    };
    tiers::each(receiver).map(|(_, options)| options)
}

/// How many times the library's functions ran, read directly (valid
/// while the library is loaded, closed or not).
fn call_counter(lib: &Library) -> extern "C" fn() -> u64 {
    let address = lib.symbol("jfdl_calls").unwrap();
    // SAFETY: jfdl_calls is `uint64_t (void)`.
    unsafe { std::mem::transmute::<*const c_void, extern "C" fn() -> u64>(address) }
}

#[test]
fn a_closed_library_refuses_calls_bindings_and_lookups() {
    let _serial = serial();
    let lib = open();
    let sig = "(i32, i32) -> i32".parse().unwrap();
    let add = lib.function("jfdl_add", &sig).unwrap();
    let address = lib.symbol("jfdl_add").unwrap();
    // SAFETY: jfdl_add takes and returns int32_t.
    assert_eq!(
        unsafe { add.call(&[Value::I32(2), Value::I32(3)]) },
        Ok(Value::I32(5))
    );
    assert!(!lib.is_closed());

    let clone = lib.clone();
    lib.close();
    assert!(lib.is_closed() && clone.is_closed());
    // SAFETY: nothing is called.
    assert_eq!(
        unsafe { add.call(&[Value::I32(2), Value::I32(3)]) },
        Err(Error::LibraryClosed)
    );
    assert_eq!(
        lib.function("jfdl_add", &sig).unwrap_err(),
        Error::LibraryClosed
    );
    assert_eq!(lib.symbol("jfdl_add"), Err(Error::LibraryClosed));
    assert_eq!(
        clone
            .functions(&[("jfdl_add", &sig)], &Options::default())
            .unwrap_err(),
        Error::LibraryClosed
    );
    // SAFETY: nothing is bound or called.
    let at = unsafe { lib.function_at(address, &sig, &Options::default()) };
    assert_eq!(at.unwrap_err(), Error::LibraryClosed);
    // A second close is a no-op, as in Node.js.
    lib.close();
    assert!(lib.is_closed());
    assert_eq!(Error::LibraryClosed.to_string(), "the library is closed");
}

/// What the handler saw: the targets of closed calls, and the stack
/// pointer's alignment where it called out (0 when 16-byte aligned).
#[derive(Default)]
struct Seen {
    targets: Mutex<Vec<usize>>,
    misaligned: AtomicUsize,
}

fn watch(lib: &Library) -> Arc<Seen> {
    let seen = Arc::new(Seen::default());
    let handler = Arc::clone(&seen);
    lib.on_closed_call(move |target| {
        handler.targets.lock().unwrap().push(target as usize);
        // The handler's own calls see the alignment the trampoline gave it.
        // SAFETY: the fixture reads the stack pointer and returns.
        if unsafe { c::jf_entry_sp_mod16() } != 0 {
            handler.misaligned.fetch_add(1, Ordering::SeqCst);
        }
    });
    seen
}

type R = *const c_void;
const NO_RECEIVER: R = std::ptr::null();

#[test]
fn closed_entries_reach_the_handler_and_return_zero_on_every_tier() {
    let _serial = serial();
    for options in runs() {
        let lib = open();
        let calls = call_counter(&lib);
        let seen = watch(&lib);
        let bind = |name: &str, sig: &str| {
            let f = lib
                .function_with_options(name, &sig.parse().unwrap(), &options)
                .unwrap();
            assert_eq!(
                f.tier(),
                tiers::expected(f.signature(), &options, false),
                "{name}"
            );
            f
        };
        let functions = [
            bind("jfdl_add", "(i32, i32) -> i32"),
            bind("jfdl_scale", "(f64, i32) -> f64"),
            bind("jfdl_halve", "(f32) -> f32"),
            bind("jfdl_low_byte", "(u32) -> u8"),
            bind("jfdl_poke", "() -> void"),
            bind("jfdl_self", "() -> pointer"),
            bind(
                "jfdl_sum9",
                "(i64, i64, i64, i64, i64, i64, i64, i64, i8) -> i64",
            ),
        ];
        let slots: [&[u64]; 7] = [
            &[2, 3],
            &[1.5f64.to_bits(), 4],
            &[3.0f32.to_bits() as u64],
            &[0x1234],
            &[],
            &[],
            &[1, 2, 3, 4, 5, 6, 7, 8, (-9i64) as u64],
        ];
        let open_results = [
            Some(5),
            Some(6.0f64.to_bits()),
            Some(1.5f32.to_bits() as u64),
            Some(0x34),
            None,
        ];

        let call_all = |fill: u64| -> Vec<u64> {
            functions
                .iter()
                .zip(slots)
                .map(|(f, args)| {
                    let mut ret = fill;
                    // SAFETY: each function is bound with its real
                    // signature, and `args` holds one slot per argument.
                    unsafe { f.call_packed(args.as_ptr(), &mut ret) };
                    ret
                })
                .collect()
        };
        let before = call_all(u64::MAX);
        for (i, want) in open_results.iter().enumerate() {
            match want {
                Some(want) => assert_eq!(before[i], *want, "{} open", functions[i].signature()),
                None => assert_eq!(before[i], u64::MAX, "a void call wrote its slot"),
            }
        }
        assert_eq!(before[5], functions[5].target() as u64);
        assert_eq!(before[6], 27);
        let ran = calls();
        assert_eq!(ran, 7);
        assert!(seen.targets.lock().unwrap().is_empty());

        lib.close();
        let after = call_all(0xdead_beef);
        let void = functions[4].signature().ret == jitcall::Type::Void;
        assert!(void);
        for (i, got) in after.iter().enumerate() {
            let want = if i == 4 { 0xdead_beef } else { 0 };
            assert_eq!(
                *got,
                want,
                "closed {}: {:?}",
                functions[i].signature(),
                options
            );
        }
        let mut calls_seen = functions.len();

        // Raw entries: the packed entry on the JIT tier; receiver entries
        // there and on the baked tier (static thunks, re-pointed at close).
        if let Some(add) = functions[0].jit_entry() {
            let mut ret = 7u64;
            // SAFETY: the packed entry of (i32, i32) -> i32.
            unsafe { std::mem::transmute::<R, PackedFn>(add)([2u64, 3].as_ptr(), &mut ret) };
            assert_eq!(ret, 0);
            calls_seen += 1;
        }
        if let Some(receiver) = functions[0].receiver_entry() {
            // SAFETY: each transmute matches its function's receiver entry.
            unsafe {
                let add = std::mem::transmute::<R, extern "C" fn(R, i32, i32) -> i32>(receiver);
                assert_eq!(add(NO_RECEIVER, 2, 3), 0);
                let scale = functions[1].receiver_entry().unwrap();
                let scale = std::mem::transmute::<R, extern "C" fn(R, f64, i32) -> f64>(scale);
                assert_eq!(scale(NO_RECEIVER, 1.5, 4).to_bits(), 0);
                let halve = functions[2].receiver_entry().unwrap();
                let halve = std::mem::transmute::<R, extern "C" fn(R, f32) -> f32>(halve);
                assert_eq!(halve(NO_RECEIVER, 3.0).to_bits(), 0);
                let low = functions[3].receiver_entry().unwrap();
                let low = std::mem::transmute::<R, extern "C" fn(R, u32) -> u32>(low);
                assert_eq!(low(NO_RECEIVER, 0x1234), 0);
                let sum9 = functions[6].receiver_entry().unwrap();
                type Sum9 = extern "C" fn(R, i64, i64, i64, i64, i64, i64, i64, i64, i32) -> i64;
                let sum9 = std::mem::transmute::<R, Sum9>(sum9);
                assert_eq!(sum9(NO_RECEIVER, 1, 2, 3, 4, 5, 6, 7, 8, -9), 0);
            }
            calls_seen += 5;
        }

        assert_eq!(
            calls(),
            ran,
            "a closed call reached the library: {options:?}"
        );
        let targets = seen.targets.lock().unwrap().clone();
        assert_eq!(targets.len(), calls_seen, "{options:?}");
        for f in &functions {
            assert!(
                targets.contains(&(f.target() as usize)),
                "{}",
                f.signature()
            );
        }
        assert_eq!(
            seen.misaligned.load(Ordering::SeqCst),
            0,
            "handler entered misaligned"
        );
        // The checked path refuses before the handler could run.
        // SAFETY: nothing is called.
        assert_eq!(unsafe { functions[4].call(&[]) }, Err(Error::LibraryClosed));
        assert_eq!(seen.targets.lock().unwrap().len(), calls_seen);
    }
}

#[test]
fn dlclose_waits_for_the_last_function_bound_from_the_library() {
    let _serial = serial();
    assert!(!loaded(), "the fixture library is loaded before the test");
    let sig = "(i32, i32) -> i32".parse().unwrap();

    // Without close: the function keeps the library loaded.
    let lib = open();
    let add = lib.function("jfdl_add", &sig).unwrap();
    drop(lib);
    assert!(loaded());
    // SAFETY: jfdl_add takes and returns int32_t.
    assert_eq!(
        unsafe { add.call(&[Value::I32(1), Value::I32(1)]) },
        Ok(Value::I32(2))
    );
    drop(add);
    assert!(!loaded(), "dlclose did not run with the last function");

    // With close: still loaded while a function lives, so that a raw entry
    // called after close lands in mapped code; unloaded with it.
    let lib = open();
    let add = lib.function("jfdl_add", &sig).unwrap();
    lib.close();
    drop(lib);
    assert!(loaded(), "dlclose ran while a function bound from it lives");
    let mut ret = 1u64;
    // SAFETY: (i32, i32) -> i32 with two slots and a return slot.
    unsafe { add.call_packed([1u64, 1].as_ptr(), &mut ret) };
    assert_eq!(ret, 0);
    drop(add);
    assert!(!loaded(), "dlclose did not run with the last function");
}

#[test]
fn calls_racing_a_close_get_the_result_or_zero_and_none_reach_it_after() {
    let _serial = serial();
    let lib = open();
    let calls = call_counter(&lib);
    let closed_calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&closed_calls);
    lib.on_closed_call(move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
    });
    let add = Arc::new(
        lib.function("jfdl_add", &"(i32, i32) -> i32".parse().unwrap())
            .unwrap(),
    );
    let closing = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (add, closing) = (Arc::clone(&add), Arc::clone(&closing));
            std::thread::spawn(move || {
                let (mut sums, mut zeros) = (0usize, 0usize);
                // Keep calling until well after the close.
                let mut after = 0;
                while after < 2_000 {
                    let mut ret = u64::MAX;
                    // SAFETY: (i32, i32) -> i32 with two slots and a return slot.
                    unsafe { add.call_packed([20u64, 22].as_ptr(), &mut ret) };
                    match ret {
                        42 => sums += 1,
                        0 => zeros += 1,
                        other => panic!("a call returned {other:#x}"),
                    }
                    if closing.load(Ordering::SeqCst) {
                        after += 1;
                    }
                }
                (sums, zeros)
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(20));
    lib.close();
    closing.store(true, Ordering::SeqCst);
    let (mut sums, mut zeros) = (0, 0);
    for worker in workers {
        let (s, z) = worker.join().unwrap();
        sums += s;
        zeros += z;
    }
    let ran = calls();
    assert_eq!(
        ran as usize, sums,
        "every call that reached the library returned 42"
    );
    assert_eq!(closed_calls.load(Ordering::SeqCst), zeros);
    assert!(zeros >= 4 * 1_000, "{zeros} closed calls");
    // After close returned, every call is closed.
    let mut ret = u64::MAX;
    // SAFETY: as above.
    unsafe { add.call_packed([20u64, 22].as_ptr(), &mut ret) };
    assert_eq!(ret, 0);
    assert_eq!(calls(), ran);
    println!("{sums} calls before the close, {zeros} after it");
}
