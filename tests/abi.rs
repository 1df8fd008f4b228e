//! ABI hygiene: the stack pointer is 16-byte aligned at the call into the
//! target, and every callee-saved register survives a call through a
//! trampoline.

use std::ffi::c_void;

use jitcall::{Function, Options, Signature, Tier, Type};
use jitcall_fixtures::{c, frame_shapes, many_arg_shapes};

mod tiers;

fn options() -> Options {
    Options {
        receiver_entry: true,
        ..Options::default()
    }
}

#[test]
fn stack_is_aligned_at_the_call_into_the_target() {
    let mut checked = 0;
    for sig in frame_shapes() {
        let target = c::jf_entry_sp_mod16 as *const c_void;
        let slots = vec![0u64; sig.args.len()];
        for (tier, options) in tiers::each(options()) {
            // SAFETY: the fixture ignores its arguments and returns a u64.
            let f = unsafe { Function::with_options(target, &sig, &options) }.unwrap();
            let mut ret = u64::MAX;
            // SAFETY: one slot per argument and a return slot.
            unsafe { f.call_packed(slots.as_ptr(), &mut ret) };
            assert_eq!(ret, 0, "{tier} ({}) {sig}: sp % 16 at the call", f.tier());
            checked += 1;
        }

        // The receiver entry with a narrow return calls the target from a
        // frame of its own: check that frame's alignment too.
        let narrow = Signature::new(sig.args.clone(), Type::U8);
        // SAFETY: as above; the low byte of the u64 result is read.
        let f = unsafe { Function::with_options(target, &narrow, &options()) }.unwrap();
        let entry = f.receiver_entry().expect("receiver entry");
        if sig.args.iter().all(|&t| t == Type::I64) {
            // SAFETY: a receiver entry of n i64 arguments returning u8.
            let got = unsafe { call_receiver_i64(entry, sig.args.len()) };
            assert_eq!(got, 0, "receiver entry {narrow}: sp % 16 at the call");
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
    let (jit, shared) = (tiers::each(options())[0].1, tiers::each(options())[1].1);
    for shape in shapes {
        let slots: Vec<u64> = (0u64..)
            .zip(&shape.sig.args)
            .map(|(i, &ty)| if ty == Type::Bool { i & 1 } else { i * 0x0101 })
            .collect();
        // SAFETY: each shape's target has its signature.
        let own = unsafe { Function::with_options(shape.target, &shape.sig, &jit) }.unwrap();
        // SAFETY: as above.
        let stub = unsafe { Function::with_options(shape.target, &shape.sig, &shared) }.unwrap();
        // The packed entry ignores a third argument; the shared stub takes
        // the target there. (The compiled-in stubs are checked the same
        // way by the library's own tests.)
        let entries = [
            (own.jit_entry(), std::ptr::null(), Tier::Jit),
            (
                stub.shape_entry().map(|stub| stub as *const c_void),
                shape.target,
                Tier::Shared,
            ),
        ];
        for ((entry, third, tier), f) in entries.into_iter().zip([&own, &stub]) {
            let Some(entry) = entry else {
                panic!("{}: not on {tier}: {}", shape.name, f.tier());
            };
            let mut ret = 0u64;
            // SAFETY: `entry` is a packed entry or shape stub for the
            // shape; the fixture calls it with these slots, the return slot
            // and the target.
            let clobbered = unsafe {
                c::jf_call_preserving(
                    entry,
                    slots.as_ptr().cast(),
                    std::ptr::addr_of_mut!(ret).cast(),
                    third,
                )
            };
            assert_eq!(
                clobbered, 0,
                "{} on {tier}: callee-saved registers changed (bitmask)",
                shape.name
            );
            assert_eq!(
                Some(ret),
                (shape.direct)(&slots).or(Some(0)),
                "{} on {tier}",
                shape.name
            );
        }
    }
}

// Code that breaks the ABI on purpose, to show that the fixtures above
// notice. abi_test_clobber_callee_saved writes the 32-bit half of every
// callee-saved general-purpose register, which clears its upper half, and
// on AArch64 also zeroes d8-d15 and moves x29 by 16 bytes.
// abi_test_sp_mod16_misaligned calls jf_entry_sp_mod16 with the stack
// pointer 8 bytes off alignment.
#[cfg(target_arch = "x86_64")]
std::arch::global_asm!(
    ".text",
    ".globl abi_test_clobber_callee_saved",
    ".hidden abi_test_clobber_callee_saved",
    ".type abi_test_clobber_callee_saved, @function",
    "abi_test_clobber_callee_saved:",
    "    mov %ebx, %ebx",
    "    mov %ebp, %ebp",
    "    mov %r12d, %r12d",
    "    mov %r13d, %r13d",
    "    mov %r14d, %r14d",
    "    mov %r15d, %r15d",
    "    ret",
    ".size abi_test_clobber_callee_saved, .-abi_test_clobber_callee_saved",
    ".globl abi_test_sp_mod16_misaligned",
    ".hidden abi_test_sp_mod16_misaligned",
    ".type abi_test_sp_mod16_misaligned, @function",
    "abi_test_sp_mod16_misaligned:",
    // On entry rsp is 8 past a 16-byte boundary (the return address), so
    // this call is made with rsp misaligned.
    "    call jf_entry_sp_mod16",
    "    ret",
    ".size abi_test_sp_mod16_misaligned, .-abi_test_sp_mod16_misaligned",
    options(att_syntax)
);

#[cfg(target_arch = "aarch64")]
std::arch::global_asm!(
    ".text",
    ".globl abi_test_clobber_callee_saved",
    ".hidden abi_test_clobber_callee_saved",
    ".type abi_test_clobber_callee_saved, %function",
    "abi_test_clobber_callee_saved:",
    "    mov w19, w19",
    "    mov w20, w20",
    "    mov w21, w21",
    "    mov w22, w22",
    "    mov w23, w23",
    "    mov w24, w24",
    "    mov w25, w25",
    "    mov w26, w26",
    "    mov w27, w27",
    "    mov w28, w28",
    "    fmov d8, xzr",
    "    fmov d9, xzr",
    "    fmov d10, xzr",
    "    fmov d11, xzr",
    "    fmov d12, xzr",
    "    fmov d13, xzr",
    "    fmov d14, xzr",
    "    fmov d15, xzr",
    "    add x29, x29, #16",
    "    ret",
    ".size abi_test_clobber_callee_saved, .-abi_test_clobber_callee_saved",
    ".globl abi_test_sp_mod16_misaligned",
    ".hidden abi_test_sp_mod16_misaligned",
    ".type abi_test_sp_mod16_misaligned, %function",
    "abi_test_sp_mod16_misaligned:",
    "    stp x29, x30, [sp, #-16]!",
    "    mov x29, sp",
    // No memory is addressed through sp while it is misaligned, so this
    // runs on hardware that checks sp alignment too.
    "    sub sp, sp, #8",
    "    bl jf_entry_sp_mod16",
    "    mov sp, x29",
    "    ldp x29, x30, [sp], #16",
    "    ret",
    ".size abi_test_sp_mod16_misaligned, .-abi_test_sp_mod16_misaligned",
);

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
extern "C" {
    /// A packed entry that ignores its arguments and clobbers every
    /// callee-saved register jf_call_preserving checks.
    fn abi_test_clobber_callee_saved(args: *const u64, ret: *mut u64);
    /// jf_entry_sp_mod16's answer when called with sp 8 bytes off.
    fn abi_test_sp_mod16_misaligned() -> u64;
}

/// Every bit jf_call_preserving reports: rbx, rbp, r12–r15 on x86_64;
/// x19–x28, d8–d15 and x29/sp on AArch64.
#[cfg(target_arch = "x86_64")]
const EVERY_CALLEE_SAVED: u64 = (1 << 6) - 1;
#[cfg(target_arch = "aarch64")]
const EVERY_CALLEE_SAVED: u64 = (1 << 19) - 1;

#[test]
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn the_fixtures_catch_clobbered_registers_and_a_misaligned_stack() {
    let mut ret = 0u64;
    let entry = abi_test_clobber_callee_saved as *const c_void;
    // SAFETY: the entry reads neither argument and returns normally, and
    // jf_call_preserving saves and restores every callee-saved register
    // around it, so its clobbers never reach this function.
    let clobbered = unsafe {
        c::jf_call_preserving(
            entry,
            std::ptr::null(),
            std::ptr::addr_of_mut!(ret).cast(),
            std::ptr::null(),
        )
    };
    assert_eq!(
        clobbered, EVERY_CALLEE_SAVED,
        "jf_call_preserving missed a clobbered register: {clobbered:#x}"
    );
    // SAFETY: restores sp and returns jf_entry_sp_mod16's result.
    let misaligned = unsafe { abi_test_sp_mod16_misaligned() };
    assert_eq!(misaligned, 8, "jf_entry_sp_mod16 missed a misaligned sp");
}

/// The vector-register count a System V variadic callee reads from `al`
/// (psABI §3.2.3), for an argument list: its FP arguments in xmm0–7.
#[cfg(target_arch = "x86_64")]
fn fp_in_registers(sig: &Signature) -> u64 {
    sig.args.iter().filter(|t| t.is_float()).count().min(8) as u64
}

/// Signatures of 0 to 10 float arguments, alone and among enough integers
/// to put integers on the stack (whose moves use rax as scratch), and the
/// fixtures' shapes with a 64-bit return.
#[cfg(target_arch = "x86_64")]
fn vector_count_shapes() -> Vec<Signature> {
    let mut sigs: Vec<Signature> = many_arg_shapes()
        .into_iter()
        .filter(|s| matches!(s.sig.ret, Type::U64 | Type::I64))
        .map(|s| s.sig)
        .collect();
    for floats in 0..=10 {
        // Seven integers put one on the stack; 16 arguments at most.
        for ints in [0, 7].into_iter().filter(|ints| floats + ints <= 16) {
            let args = (0..floats + ints)
                .map(|i| {
                    if i % 2 == 0 && i / 2 < floats {
                        Type::F64
                    } else {
                        Type::I64
                    }
                })
                .collect::<Vec<_>>();
            sigs.push(Signature::new(args, Type::U64));
        }
    }
    sigs
}

/// Every x86_64 trampoline sets `al` before it reaches the target: at least
/// the number of vector registers holding arguments, at most 8. Each entry
/// is entered with `al` holding 0 and then 0xEE, neither of which is right
/// for every signature.
#[cfg(target_arch = "x86_64")]
#[test]
fn al_counts_the_vector_registers_at_every_call() {
    use jitcall::PackedFn;
    use jitcall_fixtures::{c::with_rax, Shape};

    let mut checked = 0;
    for sig in vector_count_shapes() {
        let target = c::jf_vector_count as *const c_void;
        // SAFETY: the fixture ignores its arguments and returns a u64.
        let f = unsafe { Function::with_options(target, &sig, &options()) }.unwrap();
        let want = fp_in_registers(&sig);
        let slots = vec![0u64; sig.args.len()];
        for entered_with in [0, 0xee] {
            let packed = f.jit_entry().expect("JIT tier");
            // SAFETY: the shim is called as the packed entry it enters.
            let al = unsafe {
                with_rax(packed, entered_with, |shim| {
                    let shim = std::mem::transmute::<*const c_void, PackedFn>(shim);
                    let mut ret = u64::MAX;
                    shim(slots.as_ptr(), &mut ret);
                    ret
                })
            };
            assert!(
                (want..=8).contains(&al),
                "packed entry {sig}, entered with al = {entered_with:#x}: al = {al:#x}, want {want}..=8"
            );
            checked += 1;

            // The shape's shared stub, the target passed as data.
            let shared = tiers::each(Options::default())[1].1;
            // SAFETY: as above.
            let g = unsafe { Function::with_options(target, &sig, &shared) }.unwrap();
            let stub = g.shape_entry().expect("a shared stub");
            // SAFETY: the shim is called as the shape stub it enters.
            let al = unsafe {
                with_rax(stub as *const c_void, entered_with, |shim| {
                    let shim = std::mem::transmute::<*const c_void, jitcall::ShapeFn>(shim);
                    let mut ret = u64::MAX;
                    shim(slots.as_ptr(), &mut ret, target);
                    ret
                })
            };
            assert!(
                (want..=8).contains(&al),
                "shared stub {sig}, entered with al = {entered_with:#x}: al = {al:#x}, want {want}..=8"
            );
            checked += 1;

            // The receiver entry, called with typed arguments through a
            // shape of the same signature. One that would move nothing is
            // the target itself, for a signature not declared variadic:
            // no code of jitcall's runs, and al is the caller's business.
            let receiver = f.receiver_entry().expect("receiver entry");
            if receiver == target {
                assert!(sig.args.iter().all(|t| t.is_float()), "{sig}");
                continue;
            }
            if let Some(shape) = many_arg_shapes().into_iter().find(|s: &Shape| s.sig == sig) {
                // SAFETY: the shim is called as the receiver entry it enters.
                let al = unsafe {
                    with_rax(receiver, entered_with, |shim| {
                        (shape.receiver)(shim, &slots)
                    })
                }
                .expect("a u64 return");
                assert!(
                    (want..=8).contains(&al),
                    "receiver entry {sig}, entered with al = {entered_with:#x}: al = {al:#x}, want {want}..=8"
                );
                checked += 1;
            }
        }
    }
    // The compiled-in tiers are entered from call_packed, with whatever
    // rax the Rust code before them left.
    let compiled_in = tiers::each(Options::default())[2].1;
    for sig in vector_count_shapes() {
        let target = c::jf_vector_count as *const c_void;
        // SAFETY: the fixture ignores its arguments and returns a u64.
        let f = unsafe { Function::with_options(target, &sig, &compiled_in) }.unwrap();
        let want = fp_in_registers(&sig);
        let slots = vec![0u64; sig.args.len()];
        let mut al = u64::MAX;
        // SAFETY: one slot per argument and a return slot.
        unsafe { f.call_packed(slots.as_ptr(), &mut al) };
        assert!(
            (want..=8).contains(&al),
            "{} {sig}: al = {al:#x}, want {want}..=8",
            f.tier()
        );
        checked += 1;
    }
    println!("{checked} calls checked");
}

/// A variadic function bound with its fixed prototype, as runtimes bind
/// printf-like functions: on x86_64 each entry is entered with al = 0, so a
/// trampoline that left al alone would make the callee skip saving its
/// float arguments.
#[test]
fn variadic_callees_bound_with_their_fixed_prototype_get_their_floats() {
    let sig: Signature = "(i32, f64, f64, f64) -> f64".parse().unwrap();
    let target = c::jf_variadic_sum as *const c_void;
    // SAFETY: jf_variadic_sum(3, ...) reads three doubles, as declared.
    let f = unsafe { Function::with_options(target, &sig, &options()) }.unwrap();
    let slots = [3, 1.5f64.to_bits(), 2.25f64.to_bits(), 4.0f64.to_bits()];
    // SAFETY: one slot per argument and a return slot.
    let packed = |entry: *const c_void| unsafe {
        let entry = std::mem::transmute::<*const c_void, jitcall::PackedFn>(entry);
        let mut ret = 0u64;
        entry(slots.as_ptr(), &mut ret);
        f64::from_bits(ret)
    };
    type Receiver = unsafe extern "C" fn(*const c_void, i32, f64, f64, f64) -> f64;
    // SAFETY: the receiver entry of (i32, f64, f64, f64) -> f64.
    let receiver = |entry: *const c_void| unsafe {
        std::mem::transmute::<*const c_void, Receiver>(entry)(std::ptr::null(), 3, 1.5, 2.25, 4.0)
    };
    let (jit, recv) = (f.jit_entry().unwrap(), f.receiver_entry().unwrap());
    #[cfg(target_arch = "x86_64")]
    let (got_packed, got_receiver) = {
        use jitcall_fixtures::c::with_rax;
        // SAFETY: each shim is called as the entry it enters.
        unsafe { (with_rax(jit, 0, packed), with_rax(recv, 0, receiver)) }
    };
    #[cfg(not(target_arch = "x86_64"))]
    let (got_packed, got_receiver) = (packed(jit), receiver(recv));
    assert_eq!(got_packed, 7.75, "packed entry");
    assert_eq!(got_receiver, 7.75, "receiver entry");
}

/// snprintf from the C library, bound with the prototype of a call with
/// `"%d %f"`, an int and a double; entered with al = 0 on x86_64.
#[test]
fn snprintf_bound_with_a_fixed_prototype_prints_its_float() {
    let libc = jitcall::Library::this_process().unwrap();
    let sig = "(pointer, u64, pointer, i32, f64) -> i32".parse().unwrap();
    let own = Options {
        specialise: true,
        ..Options::default()
    };
    let snprintf = libc.function_with_options("snprintf", &sig, &own).unwrap();
    let mut buf = [0u8; 32];
    let format = c"%d %f";
    let slots = [
        buf.as_mut_ptr() as u64,
        buf.len() as u64,
        format.as_ptr() as u64,
        7,
        2.5f64.to_bits(),
    ];
    let entry = snprintf.jit_entry().expect("JIT tier");
    let call = |entry: *const c_void| {
        let mut written = 0u64;
        // SAFETY: the packed entry of snprintf's fixed prototype, with a
        // buffer of `buf.len()` bytes and a format reading an int and a
        // double.
        unsafe {
            std::mem::transmute::<*const c_void, jitcall::PackedFn>(entry)(
                slots.as_ptr(),
                &mut written,
            )
        };
        written
    };
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the shim is called as the packed entry it enters.
    let written = unsafe { jitcall_fixtures::c::with_rax(entry, 0, call) };
    #[cfg(not(target_arch = "x86_64"))]
    let written = call(entry);
    let text = std::ffi::CStr::from_bytes_until_nul(&buf).unwrap();
    assert_eq!(text.to_str().unwrap(), "7 2.500000");
    assert_eq!(written, 10);
}
