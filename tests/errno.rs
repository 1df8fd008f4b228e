//! `errno` captured right after the call, on every tier, per thread, for
//! functions bound with `Options::capture_errno`; and left alone for the
//! others.

use std::ffi::c_void;

use jitcall::{Function, Library, Options, Signature, Value};
use jitcall_fixtures::c;

mod tiers;

fn capturing() -> [(&'static str, Options); 5] {
    tiers::each(Options {
        capture_errno: true,
        ..Options::default()
    })
}

/// Sets the calling thread's errno.
fn set_errno(value: i32) {
    // SAFETY: errno is the calling thread's own int.
    unsafe { *libc::__errno_location() = value };
}

#[test]
fn a_failed_open_reports_enoent_whatever_ran_after_it() {
    let libc = Library::this_process().unwrap();
    let sig: Signature = "(pointer, i32) -> i32".parse().unwrap();
    for (name, options) in capturing() {
        let open = libc.function_with_options("open", &sig, &options).unwrap();
        let path = c"/nonexistent/jitcall-errno";
        set_errno(0);
        // SAFETY: open(const char *, int) with a valid, missing path.
        let fd = unsafe {
            open.call(&[
                Value::Pointer(path.as_ptr().cast_mut().cast()),
                Value::I32(0),
            ])
        }
        .unwrap();
        assert_eq!(fd, Value::I32(-1), "{name}");
        // The runtime's own work sets errno before it looks.
        set_errno(libc::EBADF);
        assert_eq!(
            jitcall::last_errno(),
            libc::ENOENT,
            "{name} ({})",
            open.tier()
        );
    }
}

#[test]
fn strtol_overflow_reports_erange_and_success_reports_what_was_there() {
    let libc = Library::this_process().unwrap();
    let sig: Signature = "(pointer, pointer, i32) -> i64".parse().unwrap();
    for (name, options) in capturing() {
        let strtol = libc
            .function_with_options("strtol", &sig, &options)
            .unwrap();
        let call = |text: &std::ffi::CStr| {
            let slots = [text.as_ptr() as u64, 0, 10];
            let mut ret = 0u64;
            // strtol leaves errno alone on success: start from zero.
            set_errno(0);
            // SAFETY: strtol(const char *, char **, int) with a valid
            // string and a null end pointer.
            unsafe { strtol.call_packed(slots.as_ptr(), &mut ret) };
            set_errno(libc::EINTR);
            (ret as i64, jitcall::last_errno())
        };
        assert_eq!(
            call(c"99999999999999999999999"),
            (i64::MAX, libc::ERANGE),
            "{name}"
        );
        assert_eq!(call(c"-42"), (-42, 0), "{name}");
    }
}

#[test]
fn each_thread_sees_its_own_calls_errno() {
    let sig: Signature = "(i32) -> i32".parse().unwrap();
    for (name, options) in capturing() {
        let threads: Vec<_> = [11, 22, 33, 44]
            .into_iter()
            .map(|value| {
                let sig = sig.clone();
                std::thread::spawn(move || {
                    // SAFETY: jf_set_errno(int32_t) -> int32_t.
                    let f = unsafe {
                        Function::with_options(c::jf_set_errno as *const c_void, &sig, &options)
                    }
                    .unwrap();
                    for i in 0..10_000 {
                        let mut ret = 0u64;
                        let slots = [(value + i % 3) as u64];
                        // SAFETY: one i32 slot and a return slot.
                        unsafe { f.call_packed(slots.as_ptr(), &mut ret) };
                        set_errno(0);
                        assert_eq!(jitcall::last_errno(), value + i % 3, "{name}");
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
    }
}

#[test]
fn functions_that_do_not_ask_leave_the_captured_errno_alone() {
    let sig: Signature = "(i32) -> i32".parse().unwrap();
    let capture = Options {
        capture_errno: true,
        ..Options::default()
    };
    // SAFETY: jf_set_errno(int32_t) -> int32_t.
    let (asking, plain) = unsafe {
        (
            Function::with_options(c::jf_set_errno as *const c_void, &sig, &capture).unwrap(),
            Function::with_options(c::jf_set_errno as *const c_void, &sig, &Options::default())
                .unwrap(),
        )
    };
    let mut ret = 0u64;
    // SAFETY: one i32 slot and a return slot.
    unsafe { asking.call_packed([7u64].as_ptr(), &mut ret) };
    // SAFETY: as above.
    unsafe { plain.call_packed([9u64].as_ptr(), &mut ret) };
    assert_eq!(jitcall::last_errno(), 7);
}
