//! Functions of the Win64 (Microsoft x64) convention, bound with
//! `Options { abi: Some(Abi::Win64), .. }` on an x86_64 host and run
//! natively: GCC's `ms_abi` C callees and Rust `extern "win64"` callees.
//! Every tier agrees with the direct call, edge values included (the
//! libffi tier with libffi's own Win64 ABI); the packed and receiver
//! entries are Win64 functions that keep rbx, rbp, rsi, rdi, r12–r15 and
//! xmm6–15, call their target with rsp 16-aligned and 32 bytes of shadow
//! space the target may overwrite; a closed library's Win64 functions
//! reach the handler and return zero. (The generated suites run in this
//! convention too: `tests/generated.rs`, `tests/generated_structs.rs`.)

#[cfg(target_arch = "x86_64")]
mod tiers;

#[cfg(not(target_arch = "x86_64"))]
#[test]
fn win64_is_refused_off_x86_64() {
    use jitcall::{Abi, Error, Function, Options, Signature};
    let options = Options {
        abi: Some(Abi::Win64),
        ..Options::default()
    };
    let sig: Signature = "(i32) -> i32".parse().unwrap();
    let target = jitcall_fixtures::c::jf_echo_i32 as *const std::ffi::c_void;
    // SAFETY: refused before anything is bound or called.
    let err = unsafe { Function::with_options(target, &sig, &options) }.unwrap_err();
    assert!(
        matches!(
            err,
            Error::AbiNotOnHost {
                abi: Abi::Win64,
                ..
            }
        ),
        "{err}"
    );
}

#[cfg(target_arch = "x86_64")]
mod x86_64 {
    use std::ffi::c_void;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    use jitcall::{
        Abi, Callback, Error, Fallback, Function, Library, Options, PackedWin64Fn, Signature, Tier,
        Value,
    };
    use jitcall_fixtures::win64::{self, F2, S16, S24, S3, S8};
    use jitcall_fixtures::{
        agrees_on_every_vector, frame_shapes, receiver_agrees_on_every_vector, CLOSABLE_SO,
    };

    use super::tiers;

    fn win64_options() -> Options {
        Options {
            receiver_entry: true,
            abi: Some(Abi::Win64),
            ..Options::default()
        }
    }

    /// Calls the raw packed entry of `f`, a Win64 function on the JIT
    /// tier, as the Win64 function it is.
    ///
    /// # Safety
    ///
    /// As for [`Function::call_packed`].
    unsafe fn call_raw_packed(f: &Function, args: *const u64, ret: *mut u64) {
        let entry = f.jit_entry().expect("a JIT function has a packed entry");
        // SAFETY: a Win64 function's packed entry is a PackedWin64Fn.
        let entry = unsafe { std::mem::transmute::<*const c_void, PackedWin64Fn>(entry) };
        // SAFETY: forwarded from this function's contract.
        unsafe { entry(args, ret) }
    }

    #[test]
    fn every_win64_callee_agrees_with_its_direct_call_on_every_tier() {
        let shapes: Vec<_> = win64::shapes()
            .into_iter()
            .chain(win64::rust_shapes())
            .collect();
        let (mut calls, mut receivers) = (0, 0);
        let mut tally = tiers::Tally::default();
        for shape in &shapes {
            for (tier, options) in tiers::each(win64_options()) {
                // SAFETY: each shape's target has its signature, in Win64.
                let f =
                    unsafe { Function::with_options(shape.target, &shape.sig, &options) }.unwrap();
                assert_eq!(
                    f.tier(),
                    tiers::expected(&shape.sig, &options, false),
                    "{} {tier}",
                    shape.name
                );
                tally.add(&f);
                // SAFETY: one slot per argument; the callees never
                // dereference a pointer.
                calls += agrees_on_every_vector(shape, tier, |args, ret| unsafe {
                    f.call_packed(args, ret)
                });
                if f.tier() == Tier::Jit {
                    // SAFETY: as above, through the entry `call_packed` uses.
                    calls +=
                        agrees_on_every_vector(shape, "raw packed entry", |args, ret| unsafe {
                            call_raw_packed(&f, args, ret)
                        });
                }
                assert_eq!(
                    f.receiver_entry().is_some(),
                    tiers::has_receiver(&f, &options),
                    "{} {tier}",
                    shape.name
                );
                if let Some(entry) = f.receiver_entry() {
                    // SAFETY: `entry` is this signature's Win64 receiver
                    // entry, which the shape calls as `extern "win64"`.
                    calls += unsafe { receiver_agrees_on_every_vector(shape, entry) };
                    receivers += 1;
                }
            }
        }
        assert!(receivers > 0);
        println!(
            "{} Win64 callees ({tally}; {receivers} receiver entries): {calls} calls agreed",
            shapes.len()
        );
    }

    #[test]
    fn checked_calls_convert_values_in_the_win64_convention() {
        let sig: Signature = "(i8, f64, u16, f32, i64, i32) -> f64".parse().unwrap();
        extern "win64" fn weigh(a: i8, b: f64, c: u16, d: f32, e: i64, f: i32) -> f64 {
            f64::from(a) + 2.0 * b + 3.0 * f64::from(c) + 4.0 * f64::from(d) + 5.0 * e as f64
                - 6.0 * f64::from(f)
        }
        let args = [
            Value::I8(-128),
            Value::F64(-0.5),
            Value::U16(u16::MAX),
            Value::F32(0.25),
            Value::I64(-(1 << 40)),
            Value::I32(i32::MIN),
        ];
        let want = weigh(-128, -0.5, u16::MAX, 0.25, -(1 << 40), i32::MIN);
        for (tier, options) in tiers::each(win64_options()) {
            // SAFETY: `weigh` has this signature, in Win64.
            let f =
                unsafe { Function::with_options(weigh as *const c_void, &sig, &options) }.unwrap();
            // SAFETY: as above.
            let got = unsafe { f.call(&args) }.unwrap();
            assert_eq!(got, Value::F64(want), "{tier}: {}", f.tier());
        }
    }

    /// The struct callees of `c/win64.c`: 1-, 2-, 4- and 8-byte structs in
    /// a register, the others by reference, returns in rax or through the
    /// hidden pointer.
    #[test]
    fn structs_by_value_by_reference_and_through_the_hidden_pointer() {
        let mut checked = 0;
        for (tier, options) in tiers::each(win64_options()) {
            let bind = |target: *const c_void, text: &str| {
                let sig: Signature = text.parse().unwrap();
                // SAFETY: each target below has the signature it is bound
                // with, in Win64.
                unsafe { Function::with_options(target, &sig, &options) }.unwrap()
            };
            // A struct of 3 bytes by reference, one of 8 in rcx, returned in
            // rax or through the hidden pointer.
            let s3 = S3 {
                a: 0xff,
                b: 7,
                c: 0x80,
            };
            let f = bind(win64::jf_w64_echo_s3 as _, "({u8, u8, u8}) -> {u8, u8, u8}");
            let mut ret = [0u64; 1];
            // SAFETY: a struct slot holds the address of a live struct;
            // the return buffer holds 8 bytes.
            unsafe { f.call_packed([&s3 as *const S3 as u64].as_ptr(), ret.as_mut_ptr()) };
            // SAFETY: the callee wrote an S3 at the start of the buffer.
            let got = unsafe { *ret.as_ptr().cast::<S3>() };
            assert_eq!(got, s3, "{tier}: echo s3");

            let f2 = F2 {
                a: -0.0,
                b: f32::MIN_POSITIVE / 2.0,
            };
            let f = bind(win64::jf_w64_echo_f2 as _, "({f32, f32}) -> {f32, f32}");
            // SAFETY: as above.
            unsafe { f.call_packed([&f2 as *const F2 as u64].as_ptr(), ret.as_mut_ptr()) };
            // SAFETY: the callee wrote an F2.
            let got = unsafe { *ret.as_ptr().cast::<F2>() };
            assert_eq!(got.a.to_bits(), f2.a.to_bits(), "{tier}: echo f2.a");
            assert_eq!(got.b.to_bits(), f2.b.to_bits(), "{tier}: echo f2.b");

            let s24 = S24 {
                a: i64::MIN,
                b: f64::MAX,
                c: u64::MAX,
            };
            let f = bind(
                win64::jf_w64_echo_s24 as _,
                "({i64, f64, u64}) -> {i64, f64, u64}",
            );
            let mut big = [0u64; 3];
            // SAFETY: as above; the return buffer holds 24 bytes.
            unsafe { f.call_packed([&s24 as *const S24 as u64].as_ptr(), big.as_mut_ptr()) };
            // SAFETY: the callee wrote an S24.
            assert_eq!(
                unsafe { *big.as_ptr().cast::<S24>() },
                s24,
                "{tier}: echo s24"
            );

            // Eight arguments: structs by reference in rdx and on the stack,
            // by value in r9 and on the stack.
            let sig = "(i8, {f64, f64}, f32, {f32, f32}, {i64, f64, u64}, {u8, u8, u8}, f64, \
                       {i32, u32}) -> f64";
            let f = bind(win64::jf_w64_struct_mix8 as _, sig);
            let s16 = S16 { a: 1.5, b: -2.25 };
            let s8 = S8 {
                a: i32::MIN,
                b: u32::MAX,
            };
            let (f2, s24) = (
                F2 { a: 3.5, b: -1.0 },
                S24 {
                    a: -7,
                    b: 0.125,
                    c: 9,
                },
            );
            // SAFETY: the callee has this signature, in Win64.
            let want = unsafe { win64::jf_w64_struct_mix8(-3, s16, 0.5, f2, s24, s3, -8.0, s8) };
            let slots = [
                (-3i64) as u64,
                &s16 as *const S16 as u64,
                u64::from(0.5f32.to_bits()),
                &f2 as *const F2 as u64,
                &s24 as *const S24 as u64,
                &s3 as *const S3 as u64,
                (-8.0f64).to_bits(),
                &s8 as *const S8 as u64,
            ];
            // SAFETY: struct slots point at live structs of their types.
            unsafe { f.call_packed(slots.as_ptr(), ret.as_mut_ptr()) };
            assert_eq!(f64::from_bits(ret[0]), want, "{tier}: struct_mix8");

            // The hidden return pointer in rcx moves four doubles to xmm1,
            // xmm2, xmm3 and the stack.
            let f = bind(
                win64::jf_w64_make_s16 as _,
                "(f64, f64, f64, f64) -> {f64, f64}",
            );
            let slots = [1.0f64, -2.0, 0.5, f64::NAN].map(f64::to_bits);
            let mut two = [0u64; 2];
            // SAFETY: four doubles; the return buffer holds 16 bytes.
            unsafe { f.call_packed(slots.as_ptr(), two.as_mut_ptr()) };
            assert_eq!(f64::from_bits(two[0]), 2.0, "{tier}: make_s16.a");
            assert!(f64::from_bits(two[1]).is_nan(), "{tier}: make_s16.b");
            checked += 5;
        }
        println!("{checked} struct calls agreed");
    }

    /// A Win64 variadic callee reads its doubles from the home slots of
    /// rdx, r8 and r9: the caller must copy each double there besides its
    /// XMM register.
    #[test]
    fn variadic_doubles_also_travel_in_their_gp_register() {
        let mut checked = 0;
        for (tier, options) in tiers::each(win64_options()) {
            let sig: Signature = "(i32, ..., f64, i64, f64, i64, f64, i64) -> f64"
                .parse()
                .unwrap();
            let target = win64::jf_w64_mix_variadic as *const c_void;
            // SAFETY: the callee reads 3 (double, int64_t) pairs.
            let f = unsafe { Function::with_options(target, &sig, &options) }.unwrap();
            let slots = [
                3u64,
                1.5f64.to_bits(),
                10,
                (-0.25f64).to_bits(),
                (-4i64) as u64,
            ]
            .into_iter()
            .chain([1e10f64.to_bits(), 7])
            .collect::<Vec<_>>();
            let mut ret = 0u64;
            // SAFETY: one slot per argument.
            unsafe { f.call_packed(slots.as_ptr(), &mut ret) };
            let want = (1.5 + 10.0) + 2.0 * (-0.25 - 4.0) + 3.0 * (1e10 + 7.0);
            assert_eq!(f64::from_bits(ret), want, "{tier}: {}", f.tier());
            checked += 1;
        }
        assert_eq!(checked, 5);
    }

    // A caller of Win64 entries that checks what the callee must preserve,
    // and targets that break the rules a Win64 caller relies on.
    //
    // win64_call_preserving(entry, regs: *const [u64; 4], out: *mut u64)
    // -> u64 is a System V function. It loads rcx, rdx, r8 and r9 from
    // `regs`, fills every Win64 callee-saved register with a sentinel
    // (rbx, rbp, rsi, rdi, r12–r15, both halves of xmm6–15), calls `entry`
    // with rsp 16-aligned and 32 bytes of shadow space, stores rax to
    // `*out`, and returns a bitmask of the registers that changed: bits 0–7
    // rbx, rbp, rsi, rdi, r12–r15; bits 8–17 the low halves of xmm6–15;
    // bits 18–27 their high halves; bit 28 rsp.
    //
    // win64_sp_mod16 is a Win64 function that returns (rsp + 8) % 16 on
    // entry: 0 when its caller called it with rsp aligned.
    // win64_trash_volatile(x) returns x after overwriting every register a
    // Win64 callee may (rcx, rdx, r8–r11, xmm0–5) and its shadow space.
    // win64_test_clobber breaks every rule win64_call_preserving checks;
    // win64_test_misaligned calls win64_sp_mod16 with rsp misaligned.
    std::arch::global_asm!(
        // Sets bit `bit` of eax unless `reg` holds the sentinel plus `n`
        // (the sentinel is in r10).
        ".macro win64_check_gp reg, n, bit",
        "    lea rcx, [r10 + \\n]",
        "    cmp \\reg, rcx",
        "    je 1f",
        "    bts eax, \\bit",
        "1:",
        ".endm",
        ".text",
        ".globl win64_call_preserving",
        ".hidden win64_call_preserving",
        ".type win64_call_preserving, @function",
        "win64_call_preserving:",
        "    push rbx",
        "    push rbp",
        "    push r12",
        "    push r13",
        "    push r14",
        "    push r15",
        // Six pushes on an rsp 8 past alignment: aligned after 56 more.
        // [rsp, rsp+32) shadow space, [rsp+32] entry, [rsp+40] out,
        // [rsp+48] rsp as it must be after the call.
        "    sub rsp, 56",
        "    mov [rsp + 32], rdi",
        "    mov [rsp + 40], rdx",
        "    mov [rsp + 48], rsp",
        "    mov rcx, [rsi]",
        "    mov rdx, [rsi + 8]",
        "    mov r8, [rsi + 16]",
        "    mov r9, [rsi + 24]",
        "    movabs rax, 0x5e5e71e100000000",
        "    lea rbx, [rax + 1]",
        "    lea rbp, [rax + 2]",
        "    lea rsi, [rax + 3]",
        "    lea rdi, [rax + 4]",
        "    lea r12, [rax + 5]",
        "    lea r13, [rax + 6]",
        "    lea r14, [rax + 7]",
        "    lea r15, [rax + 8]",
        ".irp n, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15",
        "    lea r11, [rax + \\n + 3]",
        "    movq xmm\\n, r11",
        "    lea r11, [rax + \\n + 13]",
        "    movq xmm0, r11",
        "    punpcklqdq xmm\\n, xmm0",
        ".endr",
        "    call qword ptr [rsp + 32]",
        "    mov r11, [rsp + 40]",
        "    mov [r11], rax",
        "    xor eax, eax",
        "    movabs r10, 0x5e5e71e100000000",
        "    win64_check_gp rbx, 1, 0",
        "    win64_check_gp rbp, 2, 1",
        "    win64_check_gp rsi, 3, 2",
        "    win64_check_gp rdi, 4, 3",
        "    win64_check_gp r12, 5, 4",
        "    win64_check_gp r13, 6, 5",
        "    win64_check_gp r14, 7, 6",
        "    win64_check_gp r15, 8, 7",
        ".irp n, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15",
        "    movq r11, xmm\\n",
        "    lea rcx, [r10 + \\n + 3]",
        "    cmp r11, rcx",
        "    je 1f",
        "    bts eax, \\n + 2",
        "1:",
        "    pshufd xmm0, xmm\\n, 0x4e",
        "    movq r11, xmm0",
        "    lea rcx, [r10 + \\n + 13]",
        "    cmp r11, rcx",
        "    je 1f",
        "    bts eax, \\n + 12",
        "1:",
        ".endr",
        "    cmp rsp, [rsp + 48]",
        "    je 1f",
        "    bts eax, 28",
        "1:",
        "    add rsp, 56",
        "    pop r15",
        "    pop r14",
        "    pop r13",
        "    pop r12",
        "    pop rbp",
        "    pop rbx",
        "    ret",
        ".size win64_call_preserving, .-win64_call_preserving",
        "",
        ".globl win64_sp_mod16",
        ".hidden win64_sp_mod16",
        ".type win64_sp_mod16, @function",
        "win64_sp_mod16:",
        "    lea rax, [rsp + 8]",
        "    and eax, 15",
        "    ret",
        ".size win64_sp_mod16, .-win64_sp_mod16",
        "",
        ".globl win64_trash_volatile",
        ".hidden win64_trash_volatile",
        ".type win64_trash_volatile, @function",
        "win64_trash_volatile:",
        "    mov rax, rcx",
        "    movabs r11, 0xdeadbeefbaadf00d",
        "    mov [rsp + 8], r11",
        "    mov [rsp + 16], r11",
        "    mov [rsp + 24], r11",
        "    mov [rsp + 32], r11",
        "    mov rcx, r11",
        "    mov rdx, r11",
        "    mov r8, r11",
        "    mov r9, r11",
        "    mov r10, r11",
        ".irp n, 0, 1, 2, 3, 4, 5",
        "    movq xmm\\n, r11",
        "    punpcklqdq xmm\\n, xmm\\n",
        ".endr",
        "    ret",
        ".size win64_trash_volatile, .-win64_trash_volatile",
        "",
        ".globl win64_test_clobber",
        ".hidden win64_test_clobber",
        ".type win64_test_clobber, @function",
        "win64_test_clobber:",
        "    mov ebx, ebx",
        "    mov ebp, ebp",
        "    mov esi, esi",
        "    mov edi, edi",
        "    mov r12d, r12d",
        "    mov r13d, r13d",
        "    mov r14d, r14d",
        "    mov r15d, r15d",
        ".irp n, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15",
        "    pcmpeqd xmm\\n, xmm\\n",
        ".endr",
        "    ret",
        ".size win64_test_clobber, .-win64_test_clobber",
        "",
        // Calls win64_sp_mod16 with rsp as it came in: 8 bytes off.
        ".globl win64_test_misaligned",
        ".hidden win64_test_misaligned",
        ".type win64_test_misaligned, @function",
        "win64_test_misaligned:",
        "    call win64_sp_mod16",
        "    ret",
        ".size win64_test_misaligned, .-win64_test_misaligned",
    );

    extern "C" {
        fn win64_call_preserving(entry: *const c_void, regs: *const [u64; 4], out: *mut u64)
            -> u64;
    }
    extern "win64" {
        fn win64_sp_mod16() -> u64;
        fn win64_trash_volatile(x: u64) -> u64;
        fn win64_test_clobber();
        fn win64_test_misaligned();
    }

    /// Every bit win64_call_preserving reports but rsp's.
    const EVERY_CALLEE_SAVED: u64 = (1 << 28) - 1;

    /// Calls the Win64 function `entry` with `regs` in rcx, rdx, r8 and r9
    /// through win64_call_preserving: what it returned in rax, and the
    /// bitmask of callee-saved registers it changed.
    ///
    /// # Safety
    ///
    /// `entry` must be a Win64 function that takes at most four integer
    /// arguments, all of which `regs` holds validly.
    unsafe fn call_preserving(entry: *const c_void, regs: [u64; 4]) -> (u64, u64) {
        let mut out = 0;
        // SAFETY: forwarded from this function's contract; the shim saves
        // and restores every System V callee-saved register it uses.
        let changed = unsafe { win64_call_preserving(entry, &regs, &mut out) };
        (out, changed)
    }

    #[test]
    fn the_fixtures_catch_clobbered_registers_and_a_misaligned_stack() {
        // SAFETY: the function takes no arguments and returns normally.
        let (_, changed) = unsafe { call_preserving(win64_test_clobber as *const c_void, [0; 4]) };
        assert_eq!(
            changed, EVERY_CALLEE_SAVED,
            "missed a clobber: {changed:#x}"
        );
        // SAFETY: reads rsp only.
        let (sp, changed) = unsafe { call_preserving(win64_sp_mod16 as *const c_void, [0; 4]) };
        assert_eq!((sp, changed), (0, 0));
        // SAFETY: as above; Rust calls it with rsp aligned.
        assert_eq!(unsafe { win64_sp_mod16() }, 0);
        // SAFETY: calls win64_sp_mod16, which reads rsp only.
        let (sp, _) = unsafe { call_preserving(win64_test_misaligned as *const c_void, [0; 4]) };
        assert_eq!(sp, 8, "win64_sp_mod16 missed a misaligned rsp");
        // SAFETY: the function returns its argument.
        let (x, changed) =
            unsafe { call_preserving(win64_trash_volatile as *const c_void, [42, 0, 0, 0]) };
        assert_eq!((x, changed), (42, 0));
    }

    /// The packed entry and the receiver entry (with at most three
    /// integer arguments, all the shim passes) of every frame shape, bound
    /// to `target`: what each returned, with the callee-saved registers
    /// they changed.
    fn through_every_frame(target: *const c_void) -> Vec<(String, Signature, u64, u64)> {
        let mut seen = Vec::new();
        for sig in frame_shapes() {
            // SAFETY: the targets ignore their arguments (or read the
            // first as u64) and return a u64.
            let f = unsafe { Function::with_options(target, &sig, &win64_options()) }.unwrap();
            assert_eq!(f.tier(), tiers::expected(&sig, &win64_options(), false));
            if f.tier() != Tier::Jit {
                continue;
            }
            let slots: Vec<u64> = (0..sig.args.len() as u64).map(|i| 42 + i).collect();
            let mut ret = 0u64;
            let packed = f.jit_entry().unwrap();
            let regs = [slots.as_ptr() as u64, &mut ret as *mut u64 as u64, 0, 0];
            // SAFETY: a packed entry takes (args, ret), one slot per
            // argument.
            let (_, changed) = unsafe { call_preserving(packed, regs) };
            seen.push((format!("packed {sig}"), sig.clone(), ret, changed));
            let receiver = f.receiver_entry().unwrap();
            if sig.args.len() <= 3 && !sig.args.iter().any(|t| t.is_float()) {
                let mut regs = [0u64; 4];
                regs[1..=sig.args.len()].copy_from_slice(&slots);
                // SAFETY: a receiver entry of at most three integer
                // arguments, in rdx, r8 and r9.
                let (got, changed) = unsafe { call_preserving(receiver, regs) };
                seen.push((format!("receiver {sig}"), sig.clone(), got, changed));
            }
        }
        seen
    }

    #[test]
    fn entries_keep_callee_saved_registers_and_call_with_rsp_aligned() {
        if jitcall::jit_status().is_err() {
            println!("NOTICE: no JIT memory here: Win64 entries NOT checked (libffi runs them)");
            return;
        }
        let aligned = through_every_frame(win64_sp_mod16 as *const c_void);
        for (what, _, sp, changed) in &aligned {
            assert_eq!(*sp, 0, "{what}: (rsp + 8) % 16 in the target");
            assert_eq!(*changed, 0, "{what}: callee-saved registers changed");
        }
        // A target that overwrites every volatile register and its shadow
        // space, returning its first argument: the entries keep nothing
        // there across the call.
        let trashed = through_every_frame(win64_trash_volatile as *const c_void);
        for (what, sig, x, changed) in &trashed {
            // The target returns rcx: the first argument if it is an
            // integer (42 in every frame).
            if sig.args.first().is_some_and(|t| !t.is_float()) {
                assert_eq!(*x, 42, "{what}: the return after a trashing target");
            }
            assert_eq!(*changed, 0, "{what}: callee-saved registers changed");
        }
        println!(
            "{} Win64 entry calls aligned, {} kept every callee-saved register",
            aligned.len(),
            aligned.len() + trashed.len()
        );
    }

    #[test]
    fn the_shadow_space_belongs_to_the_target() {
        let shapes = win64::shapes();
        let scribblers = shapes
            .iter()
            .filter(|s| s.name.contains("shadow_scribble"))
            .collect::<Vec<_>>();
        assert_eq!(scribblers.len(), 2);
        for &shape in &scribblers {
            for (tier, options) in tiers::each(win64_options()) {
                // SAFETY: the scribblers have their shape's signature.
                let f =
                    unsafe { Function::with_options(shape.target, &shape.sig, &options) }.unwrap();
                for _ in 0..3 {
                    // SAFETY: one slot per argument.
                    agrees_on_every_vector(shape, tier, |args, ret| unsafe {
                        f.call_packed(args, ret)
                    });
                }
            }
        }
    }

    /// Calls counted by the Win64 target of the closing test.
    static CALLS: AtomicUsize = AtomicUsize::new(0);

    extern "win64" fn counted(a: i64, b: f64, c: i8, d: u16, e: i32, f: f32) -> i64 {
        CALLS.fetch_add(1, Ordering::SeqCst);
        a + b as i64 + i64::from(c) + i64::from(d) + i64::from(e) + f as i64
    }

    #[test]
    fn a_closed_librarys_win64_functions_return_zero_and_never_reach_it() {
        let sig: Signature = "(i64, f64, i8, u16, i32, f32) -> i64".parse().unwrap();
        let slots = [1u64, 2.0f64.to_bits(), 3, 4, 5, u64::from(6.0f32.to_bits())];
        let targets = Arc::new(Mutex::new(Vec::new()));
        for (tier, options) in tiers::each(win64_options()) {
            let lib = Library::open(CLOSABLE_SO).unwrap();
            let seen = Arc::clone(&targets);
            lib.on_closed_call(move |target| seen.lock().unwrap().push(target as usize));
            let target = counted as *const c_void;
            // SAFETY: `counted` has this signature, in Win64, and lives as
            // long as the process.
            let f = unsafe { lib.function_at(target, &sig, &options) }.unwrap();
            let mut ret = 0u64;
            // SAFETY: one slot per argument.
            unsafe { f.call_packed(slots.as_ptr(), &mut ret) };
            assert_eq!(ret, 21, "{tier}: open");
            let before = CALLS.load(Ordering::SeqCst);
            targets.lock().unwrap().clear();

            lib.close();
            ret = u64::MAX;
            // SAFETY: as above; the closed path never reaches the target.
            unsafe { f.call_packed(slots.as_ptr(), &mut ret) };
            assert_eq!(ret, 0, "{tier}: closed call_packed");
            let mut handled = 1;
            if f.tier() == Tier::Jit {
                ret = u64::MAX;
                // SAFETY: as above.
                unsafe { call_raw_packed(&f, slots.as_ptr(), &mut ret) };
                assert_eq!(ret, 0, "{tier}: closed packed entry");
                handled += 1;
            }
            if let Some(entry) = f.receiver_entry() {
                type Receiver =
                    unsafe extern "win64" fn(*const c_void, i64, f64, i32, i32, i32, f32) -> i64;
                // SAFETY: a Win64 receiver entry of this signature, narrow
                // arguments widened to 32 bits.
                let entry = unsafe { std::mem::transmute::<*const c_void, Receiver>(entry) };
                // SAFETY: as above.
                let got = unsafe { entry(std::ptr::null(), 1, 2.0, 3, 4, 5, 6.0) };
                assert_eq!(got, 0, "{tier}: closed receiver entry");
                handled += 1;
            }
            // SAFETY: the library is closed: refused before any call.
            let err = unsafe { f.call(&[const { Value::I64(1) }; 6]) }.unwrap_err();
            assert!(matches!(err, Error::LibraryClosed), "{tier}: {err}");
            assert_eq!(CALLS.load(Ordering::SeqCst), before, "{tier}: reached");
            assert_eq!(
                *targets.lock().unwrap(),
                vec![target as usize; handled],
                "{tier}: the handler's targets"
            );
        }
    }

    #[test]
    fn what_win64_cannot_do_is_an_error() {
        let sig: Signature = "(i32) -> i32".parse().unwrap();
        // Callbacks follow the host's C ABI.
        let err = Callback::with_options(&sig, &win64_options(), |_, _| {}).unwrap_err();
        assert!(
            matches!(err, Error::CallbackAbi { abi: Abi::Win64 }),
            "{err}"
        );
        // A convention of another instruction set.
        for abi in [Abi::Aapcs64, Abi::AppleAarch64] {
            let options = Options {
                abi: Some(abi),
                ..Options::default()
            };
            let target = win64::jf_w64_echo_i32 as *const c_void;
            // SAFETY: refused before anything is bound or called.
            let err = unsafe { Function::with_options(target, &sig, &options) }.unwrap_err();
            assert!(
                matches!(err, Error::AbiNotOnHost { abi: a, .. } if a == abi),
                "{abi}: {err}"
            );
            assert!(err.to_string().contains("not x86_64"), "{err}");
        }
    }

    /// Node's fast path on Win64 takes at most three arguments, since the
    /// receiver takes the first of the four positions; the default limits
    /// take any number.
    #[test]
    fn node_limits_keep_nodes_win64_rule() {
        let node = Options {
            limits: jitcall::Limits::node(),
            ..win64_options()
        };
        let cases = [
            ("(i64, i64, i64) -> i64", true),
            ("(f64, i64, f64) -> i64", true),
            ("(i64, i64, f64, i64) -> i64", false),
            ("(f64, f64, f64, f64) -> i64", false),
        ];
        for (text, fast) in cases {
            let sig: Signature = text.parse().unwrap();
            let target = win64::jf_w64_isum6 as *const c_void;
            // SAFETY: bound, never called.
            let f = unsafe { Function::with_options(target, &sig, &node) }.unwrap();
            assert_eq!(f.tier(), tiers::expected(&sig, &node, false), "{text}");
            let refused = matches!(
                f.tier(),
                Tier::Libffi(Fallback::Ineligible(
                    jitcall::Ineligible::PositionPressure { need: 4, have: 3 }
                ))
            );
            assert_eq!(refused, !fast, "{text}: {}", f.tier());
            // SAFETY: as above.
            let g = unsafe { Function::with_options(target, &sig, &win64_options()) }.unwrap();
            assert_eq!(g.tier(), tiers::expected(&sig, &win64_options(), false));
            assert!(
                !matches!(g.tier(), Tier::Libffi(Fallback::Ineligible(_))),
                "{text}"
            );
        }
    }
}
