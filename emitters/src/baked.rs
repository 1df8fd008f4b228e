//! The baked sets: the shapes whose stubs `jitcall`'s build script emits at
//! build time and compiles into the library's text, so that calls stay in
//! specialised machine code in a process that may create no executable
//! memory. The packed set ([`key`], [`keys`], [`plan`], [`stub`]) serves
//! `call_packed`; the receiver set ([`receiver_key`], [`receiver_keys`],
//! [`receiver_plan`], [`receiver_stub`]) serves receiver entries reached
//! through static thunks.
//!
//! # The packed set
//!
//! A baked stub is the shape stub ([`Target::Argument`](crate::Target))
//! of a small, register-only signature. Two things keep the set small:
//!
//! - its return is stored raw, as the target left it in its return
//!   register ([`RawReturn`]); the caller finishes it (narrow and 32-bit
//!   integers extended to 64 bits, an `f32` masked to its 32 bits), one
//!   shift pair per call;
//! - 32- and 64-bit arguments share a class ([`ARG_CLASSES`]): the stub
//!   loads all 64 bits of the slot into the register, `movsd` or `ldr d`
//!   for an `f32` too. Both ABIs leave the bits above a 32-bit argument
//!   unspecified, so the callee reads only its own; only 8- and 16-bit
//!   integers must arrive extended to 32 bits (clang's callees rely on
//!   it), and keep classes of their own.
//!
//! The set, and why: every signature of at most two arguments over all
//! the classes (narrow integers and buffers included), and of three to
//! six over the two wide classes, integer and floating point, which is
//! most of C's APIs and all of what fits in registers on both ABIs; each
//! with the three raw returns. That is 57 + 120 = 177 argument lists × 3
//! = 531 stubs, about 45 KB of code. Every other eligible shape (seven
//! arguments or more, narrow integers among three or more, structs) runs
//! through the register-file stub (`emit_register_file`), one compiled-in
//! stub for all of them.
//!
//! # The receiver set
//!
//! A receiver stub is the receiver entry (`extern "C" fn(receiver, a0,
//! a1, …)`) of a small, register-only signature, its target in the thunk
//! register ([`Target::Register`](crate::Target): r11, x16). A static
//! thunk per function, `mov r11, [slot]; jmp [slot+8]` or `ldr x16, slot;
//! ldr x17, slot+8; br x17`, loads the function's address and jumps to
//! the stub of its shape, so that a process that refuses executable
//! memory still gets receiver entries in machine code. Its code depends
//! on less than the packed stub's, and the key says only what it depends
//! on:
//!
//! - FP arguments arrive in the FP argument registers and go to the same
//!   ones (the receiver takes a GP register only), so they need no code
//!   and the key ignores them, as long as all of them are in registers
//!   (at most eight). On x86_64 `al` must still bound the vector
//!   registers used: the stub's plan ([`receiver_plan`]) takes its GP
//!   arguments followed by eight `f64`s, each an identity move (xmm_i to
//!   xmm_i, v_i to v_i) for which the emitters write nothing, so the
//!   stub sets `al` to 8, an upper bound the psABI allows (0–8).
//! - GP arguments fall into six classes ([`RECEIVER_ARG_CLASSES`]): every
//!   32- and 64-bit integer, pointer and function as one (the receiver
//!   caller passes them as they are, and moving all 64 bits is fine:
//!   neither ABI specifies the bits above a 32-bit argument); `u8` and
//!   `bool`; `i8`; `u16`; `i16` (the caller widens these to 32 bits,
//!   possibly out of range, and the stub extends them again from the
//!   declared width, as the JIT's receiver entries do); `buffer` (the
//!   caller passes a `*const BufferView`, and the stub passes its `data`,
//!   or null for a null view).
//! - The return falls into five classes ([`ReceiverReturn`]): every return
//!   the stub leaves as the target left it, so that it tail-calls, and the
//!   four narrow integers, which it calls and extends to 32 bits.
//!
//! The set holds every GP class list of at most two arguments over the
//! six classes (1 + 6 + 36 = 43), and of three up to the most GP
//! arguments that fit in registers after the receiver over the wide
//! integer class alone (3 lists on x86_64, up to five arguments; 5 on
//! AArch64, up to seven), each with the five return classes: 230 stubs
//! on x86_64, 240 on AArch64. Shapes with a stack argument are not in it.
//! Receiver entries take no structs; a variadic call shape counts as its
//! argument list, as in the packed set (the stub's `al` of 8 bounds any
//! variadic callee's FP registers).

use crate::{classify, Abi, Entry, Limits, Plan, Registers, Signature, Type};

/// The argument classes a baked stub distinguishes, each named by the
/// type whose code it runs: `u8` for `bool` and `u8`; `i64` for every 32-
/// and 64-bit integer, pointer and function (a 64-bit load); `f64` for
/// `f32` and `f64` (a 64-bit FP load).
pub const ARG_CLASSES: [Type; 7] = [
    Type::U8,
    Type::I8,
    Type::I16,
    Type::U16,
    Type::I64,
    Type::F64,
    Type::Buffer,
];

/// The classes of a baked shape's arguments past the second.
const WIDE_CLASSES: [Type; 2] = [Type::I64, Type::F64];

/// The most arguments a baked shape has: six integers fit in registers on
/// both ABIs.
const MAX_ARGS: usize = 6;

/// How a baked stub leaves the return value in the return buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RawReturn {
    /// Nothing written.
    Void,
    /// The integer return register, all 64 bits as the target left them.
    Int,
    /// The FP return register's low 64 bits as the target left them.
    Float,
}

impl RawReturn {
    /// The raw class of a return type, for the scalars the set covers.
    pub const fn of(ty: Type) -> Option<RawReturn> {
        match ty {
            Type::Void => Some(RawReturn::Void),
            Type::F32 | Type::F64 => Some(RawReturn::Float),
            Type::Struct(_) | Type::Buffer => None,
            _ => Some(RawReturn::Int),
        }
    }

    /// The return type a baked stub's plan has: stored as it comes.
    const fn stored_as(self) -> Type {
        match self {
            RawReturn::Void => Type::Void,
            RawReturn::Int => Type::I64,
            RawReturn::Float => Type::F64,
        }
    }
}

/// A baked shape's key: its argument classes and raw return, packed into
/// a `u32` that sorts the set (2 bits of return, 3 of count, 3 per class).
// Seven classes and at most six arguments: 2 + 3 + 18 bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BakedKey(pub u32);

impl BakedKey {
    fn new(args: &[Type], ret: RawReturn) -> BakedKey {
        let mut key = ret as u32 | (args.len() as u32) << 2;
        for (i, ty) in args.iter().enumerate() {
            let class = ARG_CLASSES.iter().position(|c| c == ty).expect("a class");
            key |= (class as u32) << (5 + 3 * i);
        }
        BakedKey(key)
    }

    /// The argument classes and raw return this key stands for.
    pub fn decode(self) -> (Vec<Type>, RawReturn) {
        let ret = [RawReturn::Void, RawReturn::Int, RawReturn::Float][(self.0 & 3) as usize];
        let n = (self.0 >> 2 & 7) as usize;
        let args = (0..n)
            .map(|i| ARG_CLASSES[(self.0 >> (5 + 3 * i) & 7) as usize])
            .collect();
        (args, ret)
    }
}

/// The class of an argument type, when a baked stub can take it.
fn arg_class(ty: Type) -> Option<Type> {
    let class = match ty {
        Type::Bool | Type::U8 => Type::U8,
        Type::I32 | Type::U32 | Type::U64 | Type::Pointer | Type::Function => Type::I64,
        Type::F32 => Type::F64,
        Type::Struct(_) | Type::Void => return None,
        other => other,
    };
    Some(class)
}

/// The baked shape `sig` runs on, if the set has it. A variadic call shape
/// counts as its argument list: on Linux both ABIs pass variadic arguments
/// as fixed ones (and x86_64's `al` depends on the types alone).
pub fn key(sig: &Signature) -> Option<BakedKey> {
    let args: Vec<Type> = sig
        .args
        .iter()
        .map(|&t| arg_class(t))
        .collect::<Option<_>>()?;
    let wide = |t: &Type| WIDE_CLASSES.contains(t);
    let in_set = args.len() <= 2 || (args.len() <= MAX_ARGS && args.iter().all(wide));
    let ret = RawReturn::of(sig.ret)?;
    in_set.then(|| BakedKey::new(&args, ret))
}

/// Every key of the set, in order.
pub fn keys() -> Vec<BakedKey> {
    let mut lists: Vec<Vec<Type>> = vec![vec![]];
    for n in 1..=MAX_ARGS {
        let classes: &[Type] = if n <= 2 { &ARG_CLASSES } else { &WIDE_CLASSES };
        let shorter: Vec<Vec<Type>> = lists.iter().filter(|l| l.len() == n - 1).cloned().collect();
        for list in shorter {
            if n > 2 && !list.iter().all(|t| WIDE_CLASSES.contains(t)) {
                continue;
            }
            for &class in classes {
                let mut longer = list.clone();
                longer.push(class);
                lists.push(longer);
            }
        }
    }
    let mut keys: Vec<BakedKey> = lists
        .iter()
        .flat_map(|args| {
            [RawReturn::Void, RawReturn::Int, RawReturn::Float].map(|ret| BakedKey::new(args, ret))
        })
        .collect();
    keys.sort();
    keys
}

/// The plan of the stub baked for `key` on `abi`: the packed entry of its
/// classes, its return stored raw. [`stub`] emits it.
pub fn plan(key: BakedKey, abi: Abi) -> Plan {
    let (args, ret) = key.decode();
    let sig = Signature::new(args, ret.stored_as());
    let plan = classify(&sig, abi, Entry::Packed, &Limits::default())
        .expect("every baked shape is register-only and eligible");
    debug_assert!(plan
        .args
        .iter()
        .all(|a| !matches!(a.to, crate::Loc::Stack(_))));
    plan.shape()
}

/// The code of the stub baked for `key` on `abi`: its plan's shape stub,
/// which does not depend on where it goes.
pub fn stub(key: BakedKey, abi: Abi) -> Vec<u8> {
    stub_with_unwind(key, abi).code
}

/// [`stub`], with how it unwinds.
pub fn stub_with_unwind(key: BakedKey, abi: Abi) -> crate::Emitted {
    crate::emit_with_unwind(&plan(key, abi), &crate::Placement::shape())
}

/// The GP argument classes a receiver stub distinguishes, in key order,
/// each named by the type whose code it runs: `i64` for every 32- and
/// 64-bit integer, pointer and function (moved whole), `u8` for `u8` and
/// `bool`. FP arguments have no class: the stub leaves them in place.
pub const RECEIVER_ARG_CLASSES: [Type; 6] = [
    Type::I64,
    Type::U8,
    Type::I8,
    Type::U16,
    Type::I16,
    Type::Buffer,
];

/// The most GP arguments a receiver shape has (past the second, only of
/// the wide class): those that fit in registers after the receiver, 5 on
/// x86_64 and 7 on AArch64.
const fn receiver_max_gp(abi: Abi) -> usize {
    abi.gp_regs() - 1
}

/// What a receiver stub does with the target's return.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReceiverReturn {
    /// Nothing: the stub tail-calls, and the target returns to the stub's
    /// caller. `void`, every 32- and 64-bit integer, pointer, function,
    /// `f32` and `f64`.
    Tail,
    /// Called, then zero-extended from 8 bits to 32 (`u8` and `bool`).
    U8,
    /// Called, then sign-extended from 8 bits to 32.
    I8,
    /// Called, then zero-extended from 16 bits to 32.
    U16,
    /// Called, then sign-extended from 16 bits to 32.
    I16,
}

impl ReceiverReturn {
    /// Every class, in key order.
    pub const ALL: [ReceiverReturn; 5] = [
        ReceiverReturn::Tail,
        ReceiverReturn::U8,
        ReceiverReturn::I8,
        ReceiverReturn::U16,
        ReceiverReturn::I16,
    ];

    /// The class of a return type; `None` for a struct (which receiver
    /// entries do not take) and `buffer` (no return type).
    pub const fn of(ty: Type) -> Option<ReceiverReturn> {
        match ty {
            Type::Bool | Type::U8 => Some(ReceiverReturn::U8),
            Type::I8 => Some(ReceiverReturn::I8),
            Type::U16 => Some(ReceiverReturn::U16),
            Type::I16 => Some(ReceiverReturn::I16),
            Type::Struct(_) | Type::Buffer => None,
            _ => Some(ReceiverReturn::Tail),
        }
    }

    /// The return type a receiver stub's plan has: `void` for a tail call
    /// (the stub does nothing with the return), the narrow type otherwise.
    pub const fn plan_type(self) -> Type {
        match self {
            ReceiverReturn::Tail => Type::Void,
            ReceiverReturn::U8 => Type::U8,
            ReceiverReturn::I8 => Type::I8,
            ReceiverReturn::U16 => Type::U16,
            ReceiverReturn::I16 => Type::I16,
        }
    }
}

/// A receiver shape's key: its GP argument classes and its return class,
/// packed into a `u32` that sorts the set (3 bits of return, 3 of count, 3
/// per class). Which keys are in the set depends on the ABI
/// ([`receiver_keys`]).
// Five return classes, six argument classes and at most seven arguments
// (AArch64's GP registers after the receiver): 3 + 3 + 21 bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReceiverKey(pub u32);

impl ReceiverKey {
    fn new(args: &[Type], ret: ReceiverReturn) -> ReceiverKey {
        debug_assert!(args.len() <= receiver_max_gp(Abi::Aapcs64), "{args:?}");
        let mut key = ret as u32 | (args.len() as u32) << 3;
        for (i, ty) in args.iter().enumerate() {
            let class = RECEIVER_ARG_CLASSES
                .iter()
                .position(|c| c == ty)
                .expect("a receiver argument class");
            key |= (class as u32) << (6 + 3 * i);
        }
        ReceiverKey(key)
    }

    /// The GP argument classes and return class this key stands for.
    pub fn decode(self) -> (Vec<Type>, ReceiverReturn) {
        let ret = ReceiverReturn::ALL[(self.0 & 7) as usize];
        let n = (self.0 >> 3 & 7) as usize;
        let args = (0..n)
            .map(|i| RECEIVER_ARG_CLASSES[(self.0 >> (6 + 3 * i) & 7) as usize])
            .collect();
        (args, ret)
    }
}

/// The receiver class of a GP argument type; `None` for floats (no class)
/// and structs (receiver entries take none).
fn receiver_arg_class(ty: Type) -> Option<Type> {
    match ty {
        Type::I32 | Type::U32 | Type::I64 | Type::U64 | Type::Pointer | Type::Function => {
            Some(Type::I64)
        }
        Type::Bool | Type::U8 => Some(Type::U8),
        Type::I8 | Type::U16 | Type::I16 | Type::Buffer => Some(ty),
        Type::F32 | Type::F64 | Type::Void | Type::Struct(_) => None,
    }
}

/// The receiver shape `sig` runs on through a static thunk on `abi`, if
/// the set has it: its GP arguments form a list of the set, every FP
/// argument is in a register (at most eight), and its return has a class.
/// A variadic call shape counts as its argument list, as in [`key`].
pub fn receiver_key(sig: &Signature, abi: Abi) -> Option<ReceiverKey> {
    let ret = ReceiverReturn::of(sig.ret)?;
    let mut args = Vec::new();
    let mut floats = 0;
    for &ty in &sig.args {
        if ty.is_float() {
            floats += 1;
        } else {
            args.push(receiver_arg_class(ty)?);
        }
    }
    let wide = args.iter().all(|&t| t == Type::I64);
    let in_set = floats <= abi.fp_regs()
        && (args.len() <= 2 || (args.len() <= receiver_max_gp(abi) && wide));
    in_set.then(|| ReceiverKey::new(&args, ret))
}

/// Every key of the receiver set on `abi`, in order.
pub fn receiver_keys(abi: Abi) -> Vec<ReceiverKey> {
    let mut lists: Vec<Vec<Type>> = vec![vec![]];
    for &a in &RECEIVER_ARG_CLASSES {
        lists.push(vec![a]);
        for &b in &RECEIVER_ARG_CLASSES {
            lists.push(vec![a, b]);
        }
    }
    for n in 3..=receiver_max_gp(abi) {
        lists.push(vec![Type::I64; n]);
    }
    let mut keys: Vec<ReceiverKey> = lists
        .iter()
        .flat_map(|args| ReceiverReturn::ALL.map(|ret| ReceiverKey::new(args, ret)))
        .collect();
    keys.sort();
    keys
}

/// The plan of the receiver stub for `key` on `abi`: the receiver entry of
/// its GP argument classes followed by one `f64` per FP argument register,
/// which stay where they are and make x86_64's `al` 8 (see the module
/// docs), returning its class's type. [`receiver_stub`] emits it.
///
/// # Panics
///
/// If `key` is not in `abi`'s set: more GP arguments than fit in
/// registers after the receiver.
pub fn receiver_plan(key: ReceiverKey, abi: Abi) -> Plan {
    let (mut args, ret) = key.decode();
    args.extend(std::iter::repeat(Type::F64).take(abi.fp_regs()));
    let sig = Signature::new(args, ret.plan_type());
    let limits = Limits {
        registers: Registers::Only,
        ..Limits::default()
    };
    classify(&sig, abi, Entry::Receiver, &limits).unwrap_or_else(|rule| {
        panic!(
            "receiver key {key:?} is not in the {abi} set, its plan is not register-only: {rule}"
        )
    })
}

/// The code of the receiver stub for `key` on `abi`: its plan's receiver
/// entry with the target in the thunk register, no guard, which does not
/// depend on where it goes.
pub fn receiver_stub(key: ReceiverKey, abi: Abi) -> Vec<u8> {
    receiver_stub_with_unwind(key, abi).code
}

/// [`receiver_stub`], with how it unwinds.
pub fn receiver_stub_with_unwind(key: ReceiverKey, abi: Abi) -> crate::Emitted {
    crate::emit_with_unwind(&receiver_plan(key, abi), &crate::Placement::register())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Isa;

    /// The ABIs the baked tier exists for.
    fn hosted() -> impl Iterator<Item = Abi> {
        Abi::ALL.into_iter().filter(|abi| abi.spec().hosted)
    }

    #[test]
    fn the_set_has_every_short_signature_and_no_other() {
        let keys = keys();
        assert_eq!(keys.len(), (1 + 7 + 49 + 8 + 16 + 32 + 64) * 3);
        let mut sorted = keys.clone();
        sorted.dedup();
        assert_eq!(sorted.len(), keys.len(), "distinct keys");
        for key in &keys {
            let (args, ret) = key.decode();
            let sig = Signature::new(args.clone(), ret.stored_as());
            assert_eq!(super::key(&sig), Some(*key), "{sig}");
        }
        let covered = [
            "() -> void",
            "(i8, u16) -> i8",
            "(bool, u8) -> bool",
            "(pointer, u64) -> pointer",
            "(f32, f64, i32, u64) -> f32",
            "(i32, u32, i64, pointer) -> void",
            "(pointer, ..., i32) -> i32",
            "(u32, u32, u32) -> u16",
            "(i32, i32, i32, i32, i32) -> void",
            "(pointer, f64, u32, f32, function, i64) -> bool",
            "(buffer, u64) -> u64",
        ];
        for text in covered {
            let sig: Signature = text.parse().unwrap();
            assert!(super::key(&sig).is_some(), "{text}");
        }
        let outside = [
            "(i8, i8, i8) -> void",
            "(i32, i32, i32, i32, i32, i32, i32) -> void",
            "(buffer, u64, u64) -> void",
            "({i32, i32}) -> void",
            "() -> {f32, f32}",
        ];
        for text in outside {
            let sig: Signature = text.parse().unwrap();
            assert_eq!(super::key(&sig), None, "{text}");
        }
    }

    #[test]
    fn every_baked_stub_moves_its_signatures_arguments_where_its_own_plan_does() {
        for abi in hosted() {
            for text in [
                "(i32, f64) -> f64",
                "(u8, i16) -> void",
                "(buffer, u32) -> u64",
                "(pointer, i64, f32, i32) -> u64",
                "(f32, u32, f64, i64, pointer, f32) -> f32",
            ] {
                let sig: Signature = text.parse().unwrap();
                let key = key(&sig).unwrap();
                let own = classify(&sig, abi, Entry::Packed, &Limits::default()).unwrap();
                let baked = plan(key, abi);
                let moves = |plan: &Plan| -> Vec<_> {
                    plan.args.iter().map(|a| (a.index, a.from, a.to)).collect()
                };
                assert_eq!(moves(&baked), moves(&own), "{abi} {text}");
                for (b, o) in baked.args.iter().zip(&own.args) {
                    assert_eq!(Some(b.ty), arg_class(o.ty), "{abi} {text}");
                }
            }
        }
    }

    #[test]
    fn the_receiver_set_has_every_short_register_only_shape_and_no_other() {
        for (abi, lists) in [(Abi::SysV64, 43 + 3), (Abi::Aapcs64, 43 + 5)] {
            let keys = receiver_keys(abi);
            assert_eq!(keys.len(), lists * 5, "{abi}");
            let mut sorted = keys.clone();
            sorted.sort();
            sorted.dedup();
            assert_eq!(sorted, keys, "{abi}: sorted and distinct");
            for key in &keys {
                let (args, ret) = key.decode();
                let sig = Signature::new(args.clone(), ret.plan_type());
                assert_eq!(receiver_key(&sig, abi), Some(*key), "{abi} {sig}");
                // FP arguments anywhere, up to eight, leave the key alone.
                let mut mixed = vec![Type::F32; abi.fp_regs()];
                for (i, &ty) in args.iter().enumerate() {
                    mixed.insert(2 * i + 1, ty);
                }
                let sig = Signature::new(mixed, ret.plan_type());
                assert_eq!(receiver_key(&sig, abi), Some(*key), "{abi} {sig}");
            }
        }
    }

    #[test]
    fn receiver_shapes_in_and_out_of_the_set() {
        let both = [
            "() -> void",
            "() -> f64",
            "(i8, u16) -> i8",
            "(bool, u8) -> bool",
            "(buffer, buffer) -> i16",
            "(pointer, u64) -> pointer",
            "(f32, f64, i32, u64) -> f32",
            "(i32, u32, i64, pointer, function) -> void",
            "(pointer, ..., i32) -> i32",
            "(u32, u32, u32) -> u16",
            "(f64, f64, f64, f64, f64, f64, f64, f64, u8) -> u8",
        ];
        let aarch64_only = [
            "(i32, i32, i32, i32, i32, i32) -> void",
            "(pointer, f64, u32, f32, function, i64, u64, i32) -> bool",
        ];
        let neither = [
            "(i8, i8, i8) -> void",
            "(buffer, u64, u64) -> void",
            "(i32, i32, i32, i32, i32, i32, i32, i32) -> void",
            "(f64, f64, f64, f64, f64, f64, f64, f64, f64) -> void",
            "() -> {f32, f32}",
            "({i32, i32}) -> void",
        ];
        for text in both {
            let sig: Signature = text.parse().unwrap();
            for abi in hosted() {
                assert!(receiver_key(&sig, abi).is_some(), "{abi} {text}");
            }
        }
        for text in aarch64_only {
            let sig: Signature = text.parse().unwrap();
            assert_eq!(receiver_key(&sig, Abi::SysV64), None, "{text}");
            assert!(receiver_key(&sig, Abi::Aapcs64).is_some(), "{text}");
        }
        for text in neither {
            let sig: Signature = text.parse().unwrap();
            for abi in hosted() {
                assert_eq!(receiver_key(&sig, abi), None, "{abi} {text}");
            }
        }
    }

    #[test]
    fn every_receiver_stub_moves_its_signatures_arguments_where_its_own_plan_does() {
        for abi in hosted() {
            for text in [
                "() -> i32",
                "(i32, f64) -> f64",
                "(f32, u8, f64, i16) -> void",
                "(bool, buffer) -> u16",
                "(buffer, f32) -> i8",
                "(f64, pointer, f32, u32, f64, i64, function) -> f32",
                "(f32, f32, f32, f32, f32, f32, f32, f32, u64, u64) -> bool",
            ] {
                let sig: Signature = text.parse().unwrap();
                let key = receiver_key(&sig, abi).unwrap();
                let own = classify(&sig, abi, Entry::Receiver, &Limits::default()).unwrap();
                let stub = receiver_plan(key, abi);
                let (own_gp, own_fp): (Vec<_>, Vec<_>) =
                    own.args.iter().partition(|a| !a.ty.is_float());
                let (stub_gp, stub_fp): (Vec<_>, Vec<_>) =
                    stub.args.iter().partition(|a| !a.ty.is_float());
                let moves = |args: &[&crate::Arg]| -> Vec<_> {
                    args.iter().map(|a| (a.from, a.to)).collect()
                };
                assert_eq!(moves(&stub_gp), moves(&own_gp), "{abi} {text}");
                for (s, o) in stub_gp.iter().zip(&own_gp) {
                    assert_eq!(Some(s.ty), receiver_arg_class(o.ty), "{abi} {text}");
                }
                // FP arguments stay in place, in registers the stub's plan
                // also leaves in place.
                for arg in own_fp {
                    let crate::Source::Native(from) = arg.from else {
                        unreachable!("receiver plans read native locations")
                    };
                    assert_eq!(from, arg.to, "{abi} {text}");
                    assert!(
                        stub_fp.iter().any(|s| s.from == arg.from && s.to == arg.to),
                        "{abi} {text}"
                    );
                }
                assert_eq!(stub.tail_calls(), own.tail_calls(), "{abi} {text}");
                assert_eq!(
                    ReceiverReturn::of(stub.ret),
                    ReceiverReturn::of(own.ret),
                    "{abi} {text}"
                );
                assert_eq!(stub.stack_bytes, 0, "{abi} {text}");
            }
        }
    }

    /// The instructions of a receiver stub, as text.
    #[cfg(feature = "disasm")]
    fn receiver_listing(key: ReceiverKey, abi: Abi) -> Vec<String> {
        crate::disasm::instructions(abi, &receiver_stub(key, abi), 0)
    }

    #[test]
    #[cfg(feature = "disasm")]
    fn every_receiver_stub_branches_through_the_untouched_thunk_register() {
        for abi in hosted() {
            let (jump, call, names): (&str, &str, &[&str]) = match abi.isa() {
                Isa::X86_64 => (
                    "jmp     *%r11",
                    "call    *%r11",
                    &["r11", "r11d", "r11w", "r11b"],
                ),
                Isa::Aarch64 => ("br x16", "blr x16", &["x16", "w16"]),
            };
            for key in receiver_keys(abi) {
                let code = receiver_listing(key, abi);
                let (_, ret) = key.decode();
                let at = match ret {
                    ReceiverReturn::Tail => code.len() - 1,
                    _ => {
                        assert_eq!(code.last().unwrap(), "ret", "{abi} {key:?}: {code:#?}");
                        code.iter().position(|l| l == call).unwrap()
                    }
                };
                let branch = if ret == ReceiverReturn::Tail {
                    jump
                } else {
                    call
                };
                assert_eq!(code[at], branch, "{abi} {key:?}: {code:#?}");
                // Nothing else names the thunk register.
                for (i, insn) in code.iter().enumerate().filter(|&(i, _)| i != at) {
                    let tokens = insn.split(|c: char| !c.is_ascii_alphanumeric());
                    for token in tokens {
                        assert!(!names.contains(&token), "{abi} {key:?} at {i}: {insn}");
                    }
                }
                // `al` bounds the eight FP argument registers.
                if abi == Abi::SysV64 {
                    assert_eq!(code[at - 1], "mov     $8,%eax", "{abi} {key:?}");
                }
                // Position-independent: the same bytes wherever it goes.
                let far = crate::Placement {
                    base: 0x7f12_3456_0000,
                    ..crate::Placement::register()
                };
                let plan = receiver_plan(key, abi);
                assert_eq!(crate::emit(&plan, &far), receiver_stub(key, abi));
            }
        }
    }
}
