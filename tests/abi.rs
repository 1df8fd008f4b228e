//! ABI hygiene: the stack pointer is 16-byte aligned at the call into the
//! target, and every callee-saved register survives a call through a
//! trampoline.

use std::ffi::c_void;

use jitcall::{Function, Options, Signature, Type};
use jitcall_fixtures::{c, many_arg_shapes};

fn options() -> Options {
    Options {
        receiver_entry: true,
        ..Options::default()
    }
}

/// Signatures with 0 to 16 arguments of both classes, so that the
/// trampolines' frames take every size they can.
fn frame_shapes() -> Vec<Signature> {
    let mut sigs = Vec::new();
    for n in 0..=16 {
        for ty in [Type::I64, Type::F64, Type::I8] {
            sigs.push(Signature::new(vec![ty; n], Type::U64));
        }
        let mixed: Vec<Type> = (0..n)
            .map(|i| if i % 3 == 0 { Type::F32 } else { Type::U16 })
            .collect();
        sigs.push(Signature::new(mixed, Type::U64));
    }
    sigs
}

#[test]
fn stack_is_aligned_at_the_call_into_the_target() {
    let mut checked = 0;
    for sig in frame_shapes() {
        let target = c::jf_entry_sp_mod16 as *const c_void;
        // SAFETY: the fixture ignores its arguments and returns a u64.
        let f = unsafe { Function::with_options(target, &sig, &options()) }.unwrap();
        let slots = vec![0u64; sig.args.len()];
        let mut ret = u64::MAX;
        // SAFETY: one slot per argument and a return slot.
        unsafe { f.call_packed(slots.as_ptr(), &mut ret) };
        assert_eq!(ret, 0, "packed entry {sig}: rsp % 16 at the call");
        checked += 1;

        // The receiver entry with a narrow return calls the target from a
        // frame of its own: check that frame's alignment too.
        let narrow = Signature::new(sig.args.clone(), Type::U8);
        // SAFETY: as above; the low byte of the u64 result is read.
        let f = unsafe { Function::with_options(target, &narrow, &options()) }.unwrap();
        let entry = f.receiver_entry().expect("receiver entry");
        if sig.args.iter().all(|&t| t == Type::I64) {
            // SAFETY: a receiver entry of n i64 arguments returning u8.
            let got = unsafe { call_receiver_i64(entry, sig.args.len()) };
            assert_eq!(got, 0, "receiver entry {narrow}: rsp % 16 at the call");
            checked += 1;
        }
    }
    println!("{checked} frames checked");
}

/// Calls a receiver entry of `n` (≤ 16) i64 arguments returning u8.
///
/// # Safety
///
/// `entry` must be such an entry.
unsafe fn call_receiver_i64(entry: *const c_void, n: usize) -> u32 {
    type R = *const c_void;
    let r: R = std::ptr::null();
    // SAFETY: the caller vouches for the entry's type; each arm transmutes
    // to the matching arity.
    unsafe {
        match n {
            0 => std::mem::transmute::<R, extern "C" fn(R) -> u32>(entry)(r),
            1 => std::mem::transmute::<R, extern "C" fn(R, i64) -> u32>(entry)(r, 1),
            5 => std::mem::transmute::<R, extern "C" fn(R, i64, i64, i64, i64, i64) -> u32>(entry)(
                r, 1, 2, 3, 4, 5,
            ),
            6 => std::mem::transmute::<R, extern "C" fn(R, i64, i64, i64, i64, i64, i64) -> u32>(
                entry,
            )(r, 1, 2, 3, 4, 5, 6),
            7 => {
                std::mem::transmute::<R, extern "C" fn(R, i64, i64, i64, i64, i64, i64, i64) -> u32>(
                    entry,
                )(r, 1, 2, 3, 4, 5, 6, 7)
            }
            8 => std::mem::transmute::<
                R,
                extern "C" fn(R, i64, i64, i64, i64, i64, i64, i64, i64) -> u32,
            >(entry)(r, 1, 2, 3, 4, 5, 6, 7, 8),
            9 => std::mem::transmute::<
                R,
                extern "C" fn(R, i64, i64, i64, i64, i64, i64, i64, i64, i64) -> u32,
            >(entry)(r, 1, 2, 3, 4, 5, 6, 7, 8, 9),
            // Other arities are covered through the packed entry.
            _ => 0,
        }
    }
}

#[test]
fn callee_saved_registers_survive_a_call() {
    let clobber = jitcall_fixtures::shape!(c::jf_clobber, (u64) -> u64);
    let mut shapes = many_arg_shapes();
    shapes.push(clobber);
    for shape in shapes {
        // SAFETY: each shape's target has its signature.
        let f = unsafe { Function::new(shape.target, &shape.sig) }.unwrap();
        let Some(entry) = f.jit_entry() else {
            panic!("{}: not on the JIT tier: {:?}", shape.name, f.tier());
        };
        let slots: Vec<u64> = (0u64..)
            .zip(&shape.sig.args)
            .map(|(i, &ty)| if ty == Type::Bool { i & 1 } else { i * 0x0101 })
            .collect();
        let mut ret = 0u64;
        // SAFETY: `entry` is a packed entry for the shape; the fixture
        // calls it with these slots and the return slot.
        let clobbered = unsafe { c::jf_call_preserving(entry, slots.as_ptr(), &mut ret) };
        assert_eq!(
            clobbered, 0,
            "{}: callee-saved registers changed (bitmask)",
            shape.name
        );
        assert_eq!(
            Some(ret),
            (shape.direct)(&slots).or(Some(0)),
            "{}",
            shape.name
        );
    }
}
