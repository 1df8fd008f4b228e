//! Apple's arm64 calling convention on an AArch64 Linux host
//! (`Options { abi: Some(Abi::AppleAarch64), .. }`), checked register by
//! register and byte by byte.
//!
//! No C compiler here makes Apple-convention code, so the target is
//! `jf_apple_dump` (`fixtures/c/apple_aarch64.c`), which records x0–x7,
//! d0–d7, x18 and the first 64 bytes of its stack arguments, and each call
//! is compared with a table written by hand from Apple's rules ("Writing
//! ARM64 code for Apple platforms"), not from jitcall's classifier:
//!
//! - the caller extends 8- and 16-bit integer arguments to 32 bits in
//!   registers (only the low 32 bits of x_n are compared for them, and for
//!   32-bit ones);
//! - stack arguments sit at their natural size and alignment, not in
//!   8-byte slots; an HFA that finds no FP registers takes its exact size
//!   at its members' alignment, and no later FP argument takes a register
//!   (AAPCS64 C.3);
//! - variadic arguments all go on the stack in 8-byte slots, fixed ones
//!   where a fixed argument goes;
//! - x18 is the platform register: `jf_apple_call` enters each trampoline
//!   with a sentinel there, which the target must see and the caller must
//!   find again.
//!
//! Packed entries are called three ways: through `jf_apple_call` (x18
//! set), as a `PackedFn` from Rust, and through `call_packed` (the value
//! entry). Receiver entries are called through `jf_apple_call` with the
//! stack a receiver's Apple caller builds, narrow integers as 32-bit ones,
//! laid out by hand. Then: the same tables tell the Linux AAPCS64 layout
//! from Apple's, a callee that writes x18 is caught, and what cannot be
//! called (no JIT code: Linux's libffi has no Apple convention; callbacks)
//! is an error.
//!
//! AArch64 only: on other hosts this file holds no tests (`tests/win64.rs`
//! checks that Apple's convention is refused there).

#[cfg(target_arch = "aarch64")]
mod aarch64 {
    use std::ffi::c_void;

    use jitcall::{
        Abi, Callback, Error, Fallback, Function, Ineligible, Options, PackedFn, Signature, Tier,
    };
    use jitcall_fixtures::apple::{self, CallState, Record, Recorder};

    /// What x18 holds when `jf_apple_call` enters an entry: the target must
    /// find it there, and so must the caller after the return.
    const X18: u64 = 0x5e5e_7118_7118_5e5e;

    /// The bits above a narrow or 32-bit value in its packed slot, which
    /// the trampolines must ignore; and above a 32-bit value in a receiver
    /// entry's incoming register, which AAPCS64 leaves unspecified.
    const GARBAGE: u64 = 0xa5a5_a5a5_a5a5_a5a5;

    /// Edge values of each width, rotated over the arguments.
    const I64S: [i64; 8] = [
        0,
        1,
        -1,
        i64::MIN,
        i64::MAX,
        -(1 << 40),
        0x0123_4567_89ab_cdef,
        42,
    ];
    const F32S: [u32; 12] = [
        0x0000_0000, // 0.0
        0x8000_0000, // -0.0
        0x3fc0_0000, // 1.5
        0xff7f_ffff, // f32::MIN
        0x7f7f_ffff, // f32::MAX
        0x0080_0000, // f32::MIN_POSITIVE
        0x0000_0001, // the smallest subnormal
        0x807f_ffff, // the largest negative subnormal
        0x7f80_0000, // infinity
        0xff80_0000, // -infinity
        0x7fc0_0001, // a quiet NaN with a payload
        0xffa1_2345, // a negative signalling NaN with a payload
    ];
    const F64S: [u64; 12] = [
        0x0000_0000_0000_0000, // 0.0
        0x8000_0000_0000_0000, // -0.0
        0xc002_0000_0000_0000, // -2.25
        0xffef_ffff_ffff_ffff, // f64::MIN
        0x7fef_ffff_ffff_ffff, // f64::MAX
        0x0010_0000_0000_0000, // f64::MIN_POSITIVE
        0x0000_0000_0000_0001, // the smallest subnormal
        0x800f_ffff_ffff_ffff, // the largest negative subnormal
        0x7ff0_0000_0000_0000, // infinity
        0xfff0_0000_0000_0000, // -infinity
        0x7ff8_0000_0000_0001, // a quiet NaN with a payload
        0xfff4_dead_beef_0001, // a negative signalling NaN with a payload
    ];
    const I8S: [i8; 6] = [i8::MIN, i8::MAX, -1, 0, 1, -2];

    /// An argument value of a signature type.
    #[derive(Clone, Copy, Debug)]
    enum V {
        Bool(bool),
        I8(i8),
        U8(u8),
        I16(i16),
        U16(u16),
        I32(i32),
        U32(u32),
        I64(i64),
        Ptr(u64),
        /// An `f32`, as bits.
        F32(u32),
        /// An `f64`, as bits.
        F64(u64),
    }

    impl V {
        /// Its packed slot: the value in the low bits, [`GARBAGE`] above a
        /// value narrower than 64 bits.
        fn slot(self) -> u64 {
            let narrow = |bits: u64, width: u32| {
                let mask = (1u64 << width) - 1;
                (bits & mask) | (GARBAGE & !mask)
            };
            match self {
                V::Bool(b) => narrow(u64::from(b), 8),
                V::I8(v) => narrow(v as u64, 8),
                V::U8(v) => narrow(u64::from(v), 8),
                V::I16(v) => narrow(v as u64, 16),
                V::U16(v) => narrow(u64::from(v), 16),
                V::I32(v) => narrow(v as u64, 32),
                V::U32(v) | V::F32(v) => narrow(u64::from(v), 32),
                V::I64(v) => v as u64,
                V::Ptr(v) | V::F64(v) => v,
            }
        }

        /// Its bytes at its natural size, as a stack argument holds them.
        fn bytes(self) -> Vec<u8> {
            match self {
                V::Bool(b) => vec![u8::from(b)],
                V::I8(v) => v.to_le_bytes().to_vec(),
                V::U8(v) => vec![v],
                V::I16(v) => v.to_le_bytes().to_vec(),
                V::U16(v) => v.to_le_bytes().to_vec(),
                V::I32(v) => v.to_le_bytes().to_vec(),
                V::U32(v) | V::F32(v) => v.to_le_bytes().to_vec(),
                V::I64(v) => v.to_le_bytes().to_vec(),
                V::Ptr(v) | V::F64(v) => v.to_le_bytes().to_vec(),
            }
        }

        /// For an integer of at most 32 bits, the low 32 bits of the x
        /// register that holds it: sign- or zero-extended by its type.
        fn w(self) -> Option<u32> {
            match self {
                V::Bool(b) => Some(u32::from(b)),
                V::I8(v) => Some(i32::from(v) as u32),
                V::U8(v) => Some(u32::from(v)),
                V::I16(v) => Some(i32::from(v) as u32),
                V::U16(v) => Some(u32::from(v)),
                V::I32(v) => Some(v as u32),
                V::U32(v) => Some(v),
                _ => None,
            }
        }
    }

    /// Where an argument is when the function it is passed to starts.
    #[derive(Clone, Copy, Debug)]
    enum Place {
        /// x_n (w_n for a value of at most 32 bits).
        X(usize),
        /// d_n (s_n for an `f32`).
        D(usize),
        /// [sp + offset].
        Sp(usize),
    }

    /// What one argument location must hold, as compared with a record.
    #[derive(Clone, Debug)]
    enum At {
        /// The low 32 bits of x_n.
        W(usize, u32),
        /// All of x_n.
        X(usize, u64),
        /// The low 32 bits of d_n: s_n.
        S(usize, u32),
        /// All of d_n.
        D(usize, u64),
        /// These bytes from [sp + offset].
        Stack(usize, Vec<u8>),
    }

    /// What `v` at `place` must look like in the record.
    fn at(v: V, place: Place) -> At {
        match (place, v) {
            (Place::Sp(offset), v) => At::Stack(offset, v.bytes()),
            (Place::D(n), V::F32(bits)) => At::S(n, bits),
            (Place::D(n), V::F64(bits)) => At::D(n, bits),
            (Place::X(n), V::I64(v)) => At::X(n, v as u64),
            (Place::X(n), V::Ptr(v)) => At::X(n, v),
            (Place::X(n), v) => match v.w() {
                Some(w) => At::W(n, w),
                None => panic!("{v:?} is no integer for x{n}"),
            },
            (place, v) => panic!("{v:?} cannot be in {place:?}"),
        }
    }

    /// How `rec` differs from `want`: one line per location that does.
    fn mismatches(want: &[At], rec: &Record) -> Vec<String> {
        want.iter()
            .filter_map(|at| {
                let (same, got) = match at {
                    At::W(n, w) => (
                        rec.x[*n] as u32 == *w,
                        format!("w{n} = {:#x}", rec.x[*n] as u32),
                    ),
                    At::X(n, x) => (rec.x[*n] == *x, format!("x{n} = {:#x}", rec.x[*n])),
                    At::S(n, s) => (
                        rec.d[*n] as u32 == *s,
                        format!("s{n} = {:#x}", rec.d[*n] as u32),
                    ),
                    At::D(n, d) => (rec.d[*n] == *d, format!("d{n} = {:#x}", rec.d[*n])),
                    At::Stack(offset, bytes) => {
                        let seen = &rec.stack[*offset..*offset + bytes.len()];
                        (
                            seen == bytes.as_slice(),
                            format!("[sp+{offset}] = {seen:02x?}"),
                        )
                    }
                };
                (!same).then(|| format!("{got}, want {at:x?}"))
            })
            .collect()
    }

    /// Asserts that `rec` holds every location of `want`: how many it
    /// checked.
    fn check(want: &[At], rec: &Record, what: &str) -> usize {
        let wrong = mismatches(want, rec);
        assert!(wrong.is_empty(), "{what}:\n  {}", wrong.join("\n  "));
        want.len()
    }

    /// One argument: a scalar, or an HFA whose members are given in order
    /// (its packed slot holds the address of their bytes).
    enum Arg {
        One(V, Place),
        Hfa(Vec<(V, Place)>),
    }

    /// One call of a signature: each argument with where Apple's rules put
    /// it in the target, and what the packed entry must store to `*ret`
    /// (`jf_apple_dump` returns its x0 and d0 as they came).
    struct Call {
        args: Vec<Arg>,
        ret: u64,
    }

    struct Case {
        sig: Signature,
        calls: Vec<Call>,
    }

    fn sig(text: &str) -> Signature {
        text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    impl Call {
        /// The packed slots, and the HFA arguments' bytes their slots point
        /// at (to keep alive as long as the slots are used).
        fn packed(&self) -> (Vec<u64>, Vec<Vec<u64>>) {
            let (mut slots, mut structs) = (Vec::new(), Vec::new());
            for arg in &self.args {
                match arg {
                    Arg::One(v, _) => slots.push(v.slot()),
                    Arg::Hfa(members) => {
                        // Members of one type lie back to back, unpadded.
                        let mut bytes: Vec<u8> =
                            members.iter().flat_map(|(v, _)| v.bytes()).collect();
                        bytes.resize(bytes.len().next_multiple_of(8), 0);
                        let words: Vec<u64> = bytes
                            .chunks(8)
                            .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
                            .collect();
                        slots.push(words.as_ptr() as u64);
                        structs.push(words);
                    }
                }
            }
            (slots, structs)
        }

        /// Every location the target must see.
        fn want(&self) -> Vec<At> {
            self.args
                .iter()
                .flat_map(|arg| match arg {
                    Arg::One(v, place) => vec![at(*v, *place)],
                    Arg::Hfa(members) => members.iter().map(|&(v, p)| at(v, p)).collect(),
                })
                .collect()
        }
    }

    fn apple() -> Options {
        Options {
            abi: Some(Abi::AppleAarch64),
            ..Options::default()
        }
    }

    /// The ways an Apple function gets JIT code: a mapping of its own, and
    /// the double mapping where the process allows it.
    fn jit_options(base: Options) -> Vec<(&'static str, Options)> {
        let mut each = vec![("jit", base)];
        match jitcall::double_map_status() {
            Ok(()) => each.push((
                "double-mapped",
                Options {
                    double_map: true,
                    ..base
                },
            )),
            Err(why) => println!("NOTICE: no double mapping here ({why}): NOT checked"),
        }
        each
    }

    /// Binds `jf_apple_dump` to `sig`.
    fn bind_dump(sig: &Signature, options: &Options) -> jitcall::Result<Function> {
        let target = apple::jf_apple_dump as *const c_void;
        // SAFETY: jf_apple_dump takes any arguments and returns its x0 and
        // d0 as they came, which every scalar return type reads.
        unsafe { Function::with_options(target, sig, options) }
    }

    /// Whether JIT code can be made here. Without it, says so in a NOTICE
    /// line, checks that an Apple function is refused for that reason, and
    /// returns false.
    fn jit_here(what: &str) -> bool {
        let Err(why) = jitcall::jit_status() else {
            return true;
        };
        println!("NOTICE: no JIT memory here ({why}): {what} NOT checked");
        let err = bind_dump(&sig("(i32) -> i32"), &apple()).unwrap_err();
        assert!(
            matches!(
                err,
                Error::NoCallPath {
                    abi: Abi::AppleAarch64,
                    why: Fallback::JitUnavailable(w),
                } if w == why
            ),
            "{err}"
        );
        false
    }

    /// Registers that hold no argument of the call: recognisable junk.
    fn junk_state() -> CallState {
        CallState {
            x: std::array::from_fn(|n| 0x0bad_0000_0000_0000 | n as u64),
            d: std::array::from_fn(|n| 0x7ff4_0bad_0000_0000 | n as u64),
            x18: X18,
            stack: Vec::new(),
        }
    }

    /// Checks `f`'s packed entry on `call`: through `jf_apple_call` with
    /// x18 set, then as a `PackedFn` and through `call_packed` from Rust.
    /// How many argument locations it checked.
    fn check_packed(rec: &Recorder, f: &Function, call: &Call, what: &str) -> usize {
        let (slots, _structs) = call.packed();
        let want = call.want();
        let entry = f.jit_entry().expect("a JIT function has a packed entry");
        let mut checked = 0;

        let mut ret = 0u64;
        let mut state = junk_state();
        state.x[0] = slots.as_ptr() as u64;
        state.x[1] = &mut ret as *mut u64 as u64;
        rec.reset();
        // SAFETY: a packed entry takes (args, ret) in x0 and x1, one slot
        // per argument, struct slots pointing at live bytes.
        unsafe { rec.call(entry, &state) };
        let seen = rec.record();
        checked += check(&want, &seen, &format!("{what}, through jf_apple_call"));
        assert_eq!(ret, call.ret, "{what}: the return through jf_apple_call");
        assert_eq!(seen.x18, X18, "{what}: x18 in the target");
        assert_eq!(rec.x18_after(), X18, "{what}: x18 after the return");

        // SAFETY: an Apple packed entry has the PackedFn parameters, which
        // both conventions pass alike.
        let packed = unsafe { std::mem::transmute::<*const c_void, PackedFn>(entry) };
        let mut ret = !call.ret;
        rec.reset();
        // SAFETY: as above.
        unsafe { packed(slots.as_ptr(), &mut ret) };
        checked += check(&want, &rec.record(), &format!("{what}, as a PackedFn"));
        assert_eq!(ret, call.ret, "{what}: the return as a PackedFn");

        let mut ret = !call.ret;
        rec.reset();
        // SAFETY: as above.
        unsafe { f.call_packed(slots.as_ptr(), &mut ret) };
        checked += check(
            &want,
            &rec.record(),
            &format!("{what}, through call_packed"),
        );
        assert_eq!(ret, call.ret, "{what}: the return through call_packed");
        checked
    }

    /// `(i64 ×8, i8, i16, bool, i32, u8, i64) -> i32`, the six after the
    /// registers at `offsets`: Apple's [0, 2, 4, 8, 12, 16] (each at its
    /// own size and alignment) or AAPCS64's [0, 8, 16, 24, 32, 40].
    fn narrow_stack(offsets: [usize; 6]) -> Case {
        let rows: [(i8, i16, bool, i32, u8, i64); 4] = [
            (i8::MIN, i16::MIN, false, i32::MIN, 0, i64::MIN),
            (i8::MAX, i16::MAX, true, i32::MAX, u8::MAX, i64::MAX),
            (-1, -1, true, -1, 0x80, -1),
            (-2, -300, false, -70000, 0x7f, 0),
        ];
        let [o8, o16, obool, o32, ou8, o64] = offsets.map(Place::Sp);
        let calls = rows
            .iter()
            .enumerate()
            .map(|(k, &(a, b, c, d, e, f))| {
                let x: [i64; 8] = std::array::from_fn(|i| I64S[(i + k) % I64S.len()]);
                let mut args: Vec<Arg> = (0..8)
                    .map(|n| Arg::One(V::I64(x[n]), Place::X(n)))
                    .collect();
                args.extend([
                    Arg::One(V::I8(a), o8),
                    Arg::One(V::I16(b), o16),
                    Arg::One(V::Bool(c), obool),
                    Arg::One(V::I32(d), o32),
                    Arg::One(V::U8(e), ou8),
                    Arg::One(V::I64(f), o64),
                ]);
                // x0 comes back as the i32 return, sign-extended.
                Call {
                    args,
                    ret: x[0] as i32 as i64 as u64,
                }
            })
            .collect();
        Case {
            sig: sig(
                "(i64, i64, i64, i64, i64, i64, i64, i64, i8, i16, bool, i32, u8, i64) -> i32",
            ),
            calls,
        }
    }

    const APPLE_NARROW: [usize; 6] = [0, 2, 4, 8, 12, 16];
    const AAPCS64_NARROW: [usize; 6] = [0, 8, 16, 24, 32, 40];

    /// Fifteen arguments: eight f32 and f64 in s/d0–7, six on the stack
    /// (an f32 at a multiple of 4, an f64 at a multiple of 8), an i8 in w0.
    fn float_stack() -> Case {
        let calls = (0..F32S.len())
            .map(|k| {
                let f = |i: usize| V::F32(F32S[(k + i) % F32S.len()]);
                let d = |i: usize| V::F64(F64S[(k + i) % F64S.len()]);
                let i8v = I8S[k % I8S.len()];
                let args = vec![
                    Arg::One(d(0), Place::D(0)),
                    Arg::One(f(1), Place::D(1)),
                    Arg::One(d(2), Place::D(2)),
                    Arg::One(f(3), Place::D(3)),
                    Arg::One(d(4), Place::D(4)),
                    Arg::One(f(5), Place::D(5)),
                    Arg::One(d(6), Place::D(6)),
                    Arg::One(f(7), Place::D(7)),
                    Arg::One(f(8), Place::Sp(0)),
                    Arg::One(d(9), Place::Sp(8)),
                    Arg::One(f(10), Place::Sp(16)),
                    Arg::One(f(11), Place::Sp(20)),
                    Arg::One(d(12), Place::Sp(24)),
                    Arg::One(f(13), Place::Sp(32)),
                    Arg::One(V::I8(i8v), Place::X(0)),
                ];
                // d0 comes back as the f64 return, bit for bit.
                Call {
                    args,
                    ret: F64S[k % F64S.len()],
                }
            })
            .collect();
        Case {
            sig: sig(
                "(f64, f32, f64, f32, f64, f32, f64, f32, f32, f64, f32, f32, f64, f32, i8) -> f64",
            ),
            calls,
        }
    }

    /// HFAs that find no FP registers left. `(f32 ×8, {f32}, {f32, f32},
    /// f32)`: {f32} at [sp], {f32, f32} at [sp + 4] (not 8), the f32 at
    /// [sp + 12].
    fn hfa_stack(offsets: [usize; 4]) -> Case {
        let calls = (0..F32S.len())
            .map(|k| {
                let f = |i: usize| V::F32(F32S[(k + i) % F32S.len()]);
                let mut args: Vec<Arg> = (0..8).map(|n| Arg::One(f(n), Place::D(n))).collect();
                args.extend([
                    Arg::Hfa(vec![(f(8), Place::Sp(offsets[0]))]),
                    Arg::Hfa(vec![
                        (f(9), Place::Sp(offsets[1])),
                        (f(10), Place::Sp(offsets[2])),
                    ]),
                    Arg::One(f(11), Place::Sp(offsets[3])),
                ]);
                // s0 comes back as the f32 return, zero-extended.
                Call {
                    args,
                    ret: u64::from(F32S[k % F32S.len()]),
                }
            })
            .collect();
        Case {
            sig: sig("(f32, f32, f32, f32, f32, f32, f32, f32, {f32}, {f32, f32}, f32) -> f32"),
            calls,
        }
    }

    const APPLE_HFA: [usize; 4] = [0, 4, 8, 12];
    /// AAPCS64 rounds each composite's stack space up to 8 bytes (B.5,
    /// C.6 with the NSAA at 8).
    const AAPCS64_HFA: [usize; 4] = [0, 8, 12, 16];

    /// An HFA of three that finds two FP registers free: it goes to the
    /// stack, and the f32 after it does too (C.3: s6 and s7 stay unused).
    fn hfa_no_split() -> Case {
        let calls = (0..F32S.len())
            .map(|k| {
                let f = |i: usize| V::F32(F32S[(k + i) % F32S.len()]);
                let mut args: Vec<Arg> = (0..6).map(|n| Arg::One(f(n), Place::D(n))).collect();
                args.extend([
                    Arg::Hfa(vec![
                        (f(6), Place::Sp(0)),
                        (f(7), Place::Sp(4)),
                        (f(8), Place::Sp(8)),
                    ]),
                    Arg::One(f(9), Place::Sp(12)),
                ]);
                Call {
                    args,
                    ret: u64::from(F32S[k % F32S.len()]),
                }
            })
            .collect();
        Case {
            sig: sig("(f32, f32, f32, f32, f32, f32, {f32, f32, f32}, f32) -> f32"),
            calls,
        }
    }

    /// An f64 HFA at 8-byte alignment, then an f32, then an f32 HFA at
    /// 4-byte alignment straight after it, then an f64 aligned to 8:
    /// [sp], [sp + 16], [sp + 20], [sp + 32].
    fn hfa_alignment() -> Case {
        let calls = (0..F64S.len())
            .map(|k| {
                let f = |i: usize| V::F32(F32S[(k + i) % F32S.len()]);
                let d = |i: usize| V::F64(F64S[(k + i) % F64S.len()]);
                let mut args: Vec<Arg> = (0..8).map(|n| Arg::One(d(n), Place::D(n))).collect();
                args.extend([
                    Arg::Hfa(vec![(d(8), Place::Sp(0)), (d(9), Place::Sp(8))]),
                    Arg::One(f(10), Place::Sp(16)),
                    Arg::Hfa(vec![
                        (f(11), Place::Sp(20)),
                        (f(12), Place::Sp(24)),
                        (f(13), Place::Sp(28)),
                    ]),
                    Arg::One(d(14), Place::Sp(32)),
                ]);
                Call {
                    args,
                    ret: F64S[k % F64S.len()],
                }
            })
            .collect();
        Case {
            sig: sig(
                "(f64, f64, f64, f64, f64, f64, f64, f64, {f64, f64}, f32, {f32, f32, f32}, f64) -> f64",
            ),
            calls,
        }
    }

    /// `(i32, ..., f64, i64, i32) -> i32`: the fixed i32 in w0, every
    /// variadic argument on the stack in an 8-byte slot (the f64 not in
    /// d0, the i64 not in x1), the last one an i8 as C's default
    /// promotions pass it (jitcall's variadic arguments are promoted
    /// types: an i8 after `...` is refused).
    fn variadic() -> Case {
        let rows: [(i32, u64, i64, i8); 5] = [
            (i32::MIN, F64S[1], i64::MIN, i8::MIN),
            (i32::MAX, F64S[10], i64::MAX, i8::MAX),
            (-1, F64S[6], -1, -1),
            (0, F64S[11], 0x0123_4567_89ab_cdef, 0),
            (7, F64S[2], -(1 << 40), -2),
        ];
        let calls = rows
            .iter()
            .map(|&(fixed, double, long, small)| Call {
                args: vec![
                    Arg::One(V::I32(fixed), Place::X(0)),
                    Arg::One(V::F64(double), Place::Sp(0)),
                    Arg::One(V::I64(long), Place::Sp(8)),
                    Arg::One(V::I32(i32::from(small)), Place::Sp(16)),
                ],
                ret: fixed as i64 as u64,
            })
            .collect();
        Case {
            sig: sig("(i32, ..., f64, i64, i32) -> i32"),
            calls,
        }
    }

    /// Fixed arguments of both classes in registers, four variadic ones in
    /// 8-byte stack slots.
    fn variadic_mixed() -> Case {
        let rows: [(u64, u64, i32, u64, i64, u64); 4] = [
            (0, F64S[1], i32::MIN, F64S[0], i64::MAX, 0),
            (u64::MAX, F64S[6], i32::MAX, F64S[7], i64::MIN, 1),
            (0x7fff_ffff_f000, F64S[10], -1, F64S[11], -1, u64::MAX),
            (1, F64S[3], 0, F64S[4], 0, 0x7fff_ffff_f000),
        ];
        let calls = rows
            .iter()
            .map(|&(p, fixed, int, double, long, q)| Call {
                args: vec![
                    Arg::One(V::Ptr(p), Place::X(0)),
                    Arg::One(V::F64(fixed), Place::D(0)),
                    Arg::One(V::I32(int), Place::Sp(0)),
                    Arg::One(V::F64(double), Place::Sp(8)),
                    Arg::One(V::I64(long), Place::Sp(16)),
                    Arg::One(V::Ptr(q), Place::Sp(24)),
                ],
                ret: p,
            })
            .collect();
        Case {
            sig: sig("(pointer, f64, ..., i32, f64, i64, pointer) -> pointer"),
            calls,
        }
    }

    /// `(i8, u16, bool) -> i32`: each extended to 32 bits in its register
    /// (-1 as 0xffffffff, 0xffff as 0x0000ffff, true as 1).
    fn narrow_registers() -> Case {
        let rows: [(i8, u16, bool); 4] = [
            (-1, 0xffff, true),
            (i8::MIN, 0x8000, false),
            (i8::MAX, 0, true),
            (0, 1, false),
        ];
        let calls = rows
            .iter()
            .map(|&(a, b, c)| Call {
                args: vec![
                    Arg::One(V::I8(a), Place::X(0)),
                    Arg::One(V::U16(b), Place::X(1)),
                    Arg::One(V::Bool(c), Place::X(2)),
                ],
                ret: i64::from(a) as u64,
            })
            .collect();
        Case {
            sig: sig("(i8, u16, bool) -> i32"),
            calls,
        }
    }

    /// Every integer width in registers, at its extremes, and a pointer;
    /// the i8 return narrowed from w0.
    fn every_width() -> Case {
        type Row = (i8, u8, i16, u16, bool, i32, u32, u64);
        let rows: [Row; 4] = [
            (i8::MIN, 0, i16::MIN, 0, false, i32::MIN, 0, 0),
            (
                i8::MAX,
                u8::MAX,
                i16::MAX,
                u16::MAX,
                true,
                i32::MAX,
                u32::MAX,
                u64::MAX,
            ),
            (
                -1,
                0x80,
                -1,
                0x8000,
                true,
                -1,
                0x8000_0000,
                0x7fff_ffff_f000,
            ),
            (-2, 0x7f, -300, 0x7fff, false, -70000, 0x7fff_ffff, 1),
        ];
        let calls = rows
            .iter()
            .map(|&(a, b, c, d, e, f, g, h)| Call {
                args: vec![
                    Arg::One(V::I8(a), Place::X(0)),
                    Arg::One(V::U8(b), Place::X(1)),
                    Arg::One(V::I16(c), Place::X(2)),
                    Arg::One(V::U16(d), Place::X(3)),
                    Arg::One(V::Bool(e), Place::X(4)),
                    Arg::One(V::I32(f), Place::X(5)),
                    Arg::One(V::U32(g), Place::X(6)),
                    Arg::One(V::Ptr(h), Place::X(7)),
                ],
                ret: i64::from(a) as u64,
            })
            .collect();
        Case {
            sig: sig("(i8, u8, i16, u16, bool, i32, u32, pointer) -> i8"),
            calls,
        }
    }

    fn packed_cases() -> Vec<Case> {
        vec![
            narrow_stack(APPLE_NARROW),
            float_stack(),
            hfa_stack(APPLE_HFA),
            hfa_no_split(),
            hfa_alignment(),
            variadic(),
            variadic_mixed(),
            narrow_registers(),
            every_width(),
        ]
    }

    #[test]
    fn packed_entries_put_every_argument_where_apple_puts_it() {
        if !jit_here("Apple packed entries") {
            return;
        }
        let rec = apple::recorder();
        let (mut calls, mut locations) = (0, 0);
        for case in packed_cases() {
            for (tier, options) in jit_options(apple()) {
                let f = bind_dump(&case.sig, &options).unwrap();
                assert_eq!(f.tier(), Tier::Jit, "{tier}: {}", case.sig);
                for (k, call) in case.calls.iter().enumerate() {
                    let what = format!("{tier} {} #{k}", case.sig);
                    locations += check_packed(&rec, &f, call, &what);
                    calls += 3;
                }
            }
        }
        println!(
            "{calls} packed calls (x18 checked in a third): {locations} argument locations checked"
        );
    }

    /// A receiver entry's call: x0 the receiver, then the arguments where
    /// the receiver's own Apple caller puts them (narrow integers as 32-bit
    /// ones), and each argument where the target must find it.
    struct ReceiverCall {
        incoming: Vec<(V, Place)>,
        target: Vec<(V, Place)>,
        /// What the entry returns in x0 (in w0 for a return of at most 32
        /// bits).
        ret: u64,
    }

    /// The state a receiver's Apple caller sets up: the receiver in x0
    /// (ignored), 32-bit values with garbage above them in their x
    /// register, stack arguments in an image padded with garbage.
    fn receiver_state(incoming: &[(V, Place)]) -> CallState {
        let mut state = junk_state();
        state.x[0] = 0x0000_dead_0000_beef;
        for &(v, place) in incoming {
            match place {
                Place::X(n) => {
                    state.x[n] = match v.w() {
                        Some(w) => u64::from(w) | (GARBAGE << 32),
                        None => v.slot(),
                    }
                }
                Place::D(n) => state.d[n] = v.slot(),
                Place::Sp(offset) => {
                    let bytes = v.bytes();
                    if state.stack.len() < offset + bytes.len() {
                        state.stack.resize(offset + bytes.len(), GARBAGE as u8);
                    }
                    state.stack[offset..offset + bytes.len()].copy_from_slice(&bytes);
                }
            }
        }
        state
    }

    /// `(i64 ×7, i8, i16, bool, i32, u8, i64)`: the receiver takes x0, so
    /// the arguments after the seventh arrive on the stack, each narrow one
    /// as an int: i8 at [sp], i16 at +4, bool at +8, i32 at +12, u8 at +16,
    /// i64 at +24. The target has x7 for the i8 (extended to 32 bits) and
    /// the rest at their own size: i16 at [sp], bool at +2, i32 at +4, u8
    /// at +8, i64 at +16.
    fn receiver_narrow_stack(narrow_return: bool) -> Vec<ReceiverCall> {
        let rows: [(i8, i16, bool, i32, u8, i64); 4] = [
            (i8::MIN, i16::MIN, false, i32::MIN, 0, i64::MIN),
            (i8::MAX, i16::MAX, true, i32::MAX, u8::MAX, i64::MAX),
            (-1, -1, true, -1, 0x80, -1),
            (-2, -300, false, -70000, 0x7f, 0x0123_4567_89ab_cdef),
        ];
        rows.iter()
            .enumerate()
            .map(|(k, &(a, b, c, d, e, f))| {
                let x: [i64; 7] = std::array::from_fn(|i| I64S[(i + k) % I64S.len()]);
                let mut incoming: Vec<(V, Place)> =
                    (0..7).map(|n| (V::I64(x[n]), Place::X(n + 1))).collect();
                incoming.extend([
                    (V::I32(i32::from(a)), Place::Sp(0)),
                    (V::I32(i32::from(b)), Place::Sp(4)),
                    (V::U32(u32::from(c)), Place::Sp(8)),
                    (V::I32(d), Place::Sp(12)),
                    (V::U32(u32::from(e)), Place::Sp(16)),
                    (V::I64(f), Place::Sp(24)),
                ]);
                let mut target: Vec<(V, Place)> =
                    (0..7).map(|n| (V::I64(x[n]), Place::X(n))).collect();
                target.extend([
                    (V::I8(a), Place::X(7)),
                    (V::I16(b), Place::Sp(0)),
                    (V::Bool(c), Place::Sp(2)),
                    (V::I32(d), Place::Sp(4)),
                    (V::U8(e), Place::Sp(8)),
                    (V::I64(f), Place::Sp(16)),
                ]);
                // The target returns x0, the first argument: whole for an
                // i64 return, narrowed to i8 and sign-extended to 32 bits
                // by the entry otherwise.
                let ret = if narrow_return {
                    u64::from(x[0] as i8 as i32 as u32)
                } else {
                    x[0] as u64
                };
                ReceiverCall {
                    incoming,
                    target,
                    ret,
                }
            })
            .collect()
    }

    /// `(i8, u16, bool) -> i32`: w1, w2, w3 as 32-bit ints to w0, w1, w2.
    fn receiver_narrow_registers() -> Vec<ReceiverCall> {
        let rows: [(i8, u16, bool); 3] =
            [(-1, 0xffff, true), (i8::MIN, 0x8000, false), (1, 0, true)];
        rows.iter()
            .map(|&(a, b, c)| ReceiverCall {
                incoming: vec![
                    (V::I32(i32::from(a)), Place::X(1)),
                    (V::U32(u32::from(b)), Place::X(2)),
                    (V::U32(u32::from(c)), Place::X(3)),
                ],
                target: vec![
                    (V::I8(a), Place::X(0)),
                    (V::U16(b), Place::X(1)),
                    (V::Bool(c), Place::X(2)),
                ],
                ret: u64::from(i32::from(a) as u32),
            })
            .collect()
    }

    #[test]
    fn receiver_entries_take_apples_layout_and_pass_it_on() {
        if !jit_here("Apple receiver entries") {
            return;
        }
        let rec = apple::recorder();
        let receiver = Options {
            receiver_entry: true,
            ..apple()
        };
        let narrow = "(i64, i64, i64, i64, i64, i64, i64, i8, i16, bool, i32, u8, i64)";
        // Each signature, its calls, and whether its return is 32 bits
        // wide or narrower (only w0 is then compared).
        let cases = [
            // Tail-calls the target, its stack arguments moved in place.
            (
                format!("{narrow} -> i64"),
                receiver_narrow_stack(false),
                false,
            ),
            // Calls the target from a frame, to narrow its return.
            (format!("{narrow} -> i8"), receiver_narrow_stack(true), true),
            (
                "(i8, u16, bool) -> i32".to_string(),
                receiver_narrow_registers(),
                true,
            ),
        ];
        let (mut calls, mut locations) = (0, 0);
        for (text, receiver_calls, in_w0) in &cases {
            for (tier, options) in jit_options(receiver) {
                let f = bind_dump(&sig(text), &options).unwrap();
                let entry = f.receiver_entry().expect("an Apple receiver entry");
                assert_ne!(entry, f.target(), "{text}: arguments move");
                for (k, call) in receiver_calls.iter().enumerate() {
                    let what = format!("{tier} receiver {text} #{k}");
                    let state = receiver_state(&call.incoming);
                    rec.reset();
                    // SAFETY: `entry` is the receiver entry of this
                    // signature; the state is the call its Apple caller
                    // makes, which jf_apple_dump accepts.
                    let got = unsafe { rec.call(entry, &state) };
                    let seen = rec.record();
                    let want: Vec<At> = call.target.iter().map(|&(v, p)| at(v, p)).collect();
                    locations += check(&want, &seen, &what);
                    let got = if *in_w0 { got & 0xffff_ffff } else { got };
                    assert_eq!(got, call.ret, "{what}: the return");
                    assert_eq!(seen.x18, X18, "{what}: x18 in the target");
                    assert_eq!(rec.x18_after(), X18, "{what}: x18 after the return");
                    calls += 1;
                }
            }
        }
        println!(
            "{calls} receiver calls: {locations} argument locations checked, x18 kept in each"
        );
    }

    // apple_test_write_x18 inverts x18 and returns: what a trampoline that
    // touched the platform register would do to its caller.
    std::arch::global_asm!(
        ".text",
        ".globl apple_test_write_x18",
        ".hidden apple_test_write_x18",
        ".type apple_test_write_x18, %function",
        ".p2align 2",
        "apple_test_write_x18:",
        "    mvn x18, x18",
        "    ret",
        ".size apple_test_write_x18, .-apple_test_write_x18",
    );

    extern "C" {
        fn apple_test_write_x18();
    }

    /// The harness without a trampoline: jf_apple_call hands jf_apple_dump
    /// exactly the registers, x18 and stack it was given, and notices a
    /// callee that writes x18.
    #[test]
    fn the_harness_records_what_it_passes_and_catches_a_write_to_x18() {
        let rec = apple::recorder();
        let state = CallState {
            x: std::array::from_fn(|n| 0x1111_0000_0000_0000 * (n as u64 + 1) + n as u64),
            d: std::array::from_fn(|n| F64S[n + 3]),
            x18: X18,
            stack: (0..64).map(|b| 0x40 + b as u8).collect(),
        };
        let dump = apple::jf_apple_dump as *const c_void;
        // SAFETY: jf_apple_dump accepts any registers and stack.
        let got = unsafe { rec.call(dump, &state) };
        let seen = rec.record();
        assert_eq!(got, state.x[0], "jf_apple_dump returns its x0");
        assert_eq!(seen.x, state.x, "x0-x7");
        assert_eq!(seen.d, state.d, "d0-d7");
        assert_eq!(seen.x18, X18, "x18 in the callee");
        assert_eq!(
            seen.stack.as_slice(),
            state.stack.as_slice(),
            "[sp, sp + 64)"
        );
        assert_eq!(rec.x18_after(), X18, "x18 after the return");

        rec.reset();
        // SAFETY: the function inverts x18 and returns.
        unsafe { rec.call(apple_test_write_x18 as *const c_void, &state) };
        assert_eq!(rec.x18_after(), !X18, "a write to x18 went unnoticed");
        // Nothing was recorded: the record still holds the fill.
        assert_eq!(rec.record().stack, [apple::FILL; 64]);
        println!("harness: 8 x, 8 d, x18 and 64 stack bytes passed through; a write to x18 caught");
    }

    /// The tables tell layouts apart: the host convention's trampolines
    /// (AAPCS64, 8-byte stack slots, composites rounded up to 8 bytes)
    /// match their own table and fail Apple's at every call.
    #[test]
    fn the_tables_tell_aapcs64_from_apple() {
        let rec = apple::recorder();
        let host = Options {
            specialise: true,
            ..Options::default()
        };
        let pairs = [
            (narrow_stack(AAPCS64_NARROW), narrow_stack(APPLE_NARROW)),
            (hfa_stack(AAPCS64_HFA), hfa_stack(APPLE_HFA)),
        ];
        let (mut calls, mut told) = (0, 0);
        for (linux, apple) in &pairs {
            // On any tier: the compiled-in and libffi ones follow AAPCS64
            // too.
            let f = bind_dump(&linux.sig, &host).unwrap();
            for (k, (call, apple_call)) in linux.calls.iter().zip(&apple.calls).enumerate() {
                let what = format!("AAPCS64 {} #{k} on {}", linux.sig, f.tier());
                let (slots, _structs) = call.packed();
                let mut ret = 0u64;
                rec.reset();
                // SAFETY: one slot per argument, struct slots pointing at
                // live bytes.
                unsafe { f.call_packed(slots.as_ptr(), &mut ret) };
                let seen = rec.record();
                check(&call.want(), &seen, &what);
                assert_eq!(ret, call.ret, "{what}: the return");
                let wrong = mismatches(&apple_call.want(), &seen);
                assert!(!wrong.is_empty(), "{what}: passes Apple's table too");
                told += wrong.len();
                calls += 1;
            }
        }
        println!(
            "{calls} AAPCS64 calls matched their table and failed Apple's at {told} locations"
        );
    }

    fn no_call_path(options: &Options, sig: &Signature) -> Fallback {
        match bind_dump(sig, options) {
            Err(Error::NoCallPath {
                abi: Abi::AppleAarch64,
                why,
            }) => why,
            Err(err) => panic!("{sig}: {err}"),
            Ok(f) => panic!("{sig}: bound on {}", f.tier()),
        }
    }

    /// Linux's libffi has no Apple convention: whatever keeps an Apple
    /// function off the JIT tier leaves it no way to be called.
    #[test]
    fn without_jit_code_an_apple_function_has_no_call_path() {
        let sig = sig("(i64, i8, f32) -> i32");
        let forced = Options {
            force_libffi: true,
            ..apple()
        };
        assert_eq!(
            no_call_path(&forced, &sig),
            Fallback::Forced,
            "force_libffi"
        );
        let avoided = Options {
            avoid_jit: true,
            ..apple()
        };
        assert_eq!(no_call_path(&avoided, &sig), Fallback::Forced, "avoid_jit");
        let mut refused = 2;
        // More arguments than the limits allow the JIT tier.
        let many = Signature::new(vec![jitcall::Type::I64; 17], jitcall::Type::I64);
        assert_eq!(
            no_call_path(&apple(), &many),
            Fallback::Ineligible(Ineligible::TooManyArgs { n: 17, max: 16 }),
            "17 arguments"
        );
        refused += 1;
        match jitcall::jit_status() {
            Err(why) => {
                assert_eq!(no_call_path(&apple(), &sig), Fallback::JitUnavailable(why));
                refused += 1;
            }
            Ok(()) => {
                let f = bind_dump(&sig, &apple()).unwrap();
                assert_eq!(f.tier(), Tier::Jit);
                assert!(f.jit_entry().is_some());
            }
        }
        println!("{refused} bindings refused with NoCallPath");
    }

    #[test]
    fn callbacks_refuse_apples_convention() {
        let sig = sig("(i32, i8) -> i32");
        let err = Callback::with_options(&sig, &apple(), |_, _| {}).unwrap_err();
        assert!(
            matches!(
                err,
                Error::CallbackAbi {
                    abi: Abi::AppleAarch64
                }
            ),
            "{err}"
        );
    }
}
