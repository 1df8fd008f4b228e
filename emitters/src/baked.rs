//! The baked set: the shapes whose stubs `jitcall`'s build script emits at
//! build time and compiles into the library's text, so that calls stay in
//! specialised machine code in a process that may create no executable
//! memory.
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

use crate::{classify, Abi, Entry, Limits, Plan, Signature, Type};

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
    crate::emit(&plan(key, abi), &crate::Placement::shape())
}

#[cfg(test)]
mod tests {
    use super::*;

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
        for abi in Abi::ALL {
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
}
