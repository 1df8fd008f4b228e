//! What a callback's reverse trampoline reads, and where it keeps it: the
//! part of [`emit_callback`](crate::emit_callback) that does not depend on
//! the ISA. Each ISA's `callback.rs` turns a [`Frame`] into instructions.
//!
//! A packed plan ([`Entry::Packed`]) says where a
//! trampoline puts each argument for its target (`Arg::to`); a native
//! caller of the callback puts them in the same places, so the callback
//! reads each argument at its `to`, as its [`Passing`] says:
//!
//! | passing | the plan's moves for the argument | the callback's slot |
//! |---|---|---|
//! | `Scalar` | one, `Slot(i) -> to` | the value at `to`, extended to 64 bits |
//! | `Registers`, `Hfa` | one per piece, `Field { offset, .. } -> to`, every `to` a register | the address of a copy in the frame, each piece stored at its offset |
//! | `Stack` | one per 8 bytes, `Field { offset } -> Stack(at + offset)`: the struct lies whole in the stack arguments | the address of the caller's stack argument at `at` |
//! | `Reference` | the copy's pieces (`-> Stack` in the trampoline's own frame, no place a caller writes), then `StackAddress(_) -> to` | the pointer the caller passed at `to` |
//!
//! A struct out of registers is never split between registers and the
//! stack (x86_64 psABI §3.2.3: all in registers or all in memory; AAPCS64
//! C.3, C.13: registers exhausted, the struct on the stack), so a
//! `Registers` or `Hfa` piece never arrives on the stack.
//!
//! The frame, below the frame record, is the same on both ISAs:
//!
//! ```text
//!   frame record (saved rbp; saved x29, x30)
//!   padding to 16
//!   slots              sp + slots + 8 i     one u64 per argument
//!   struct copies      sp + 16 …            per struct argument in registers,
//!                                           its size rounded up to 8
//!   return buffer      sp + 0               RET_BYTES: a scalar or a struct that
//!                                           comes back in registers (at most 32
//!                                           bytes: an AArch64 HFA of four f64); on
//!                                           x86_64 with a memory return, the
//!                                           caller's buffer address
//!   sp -> 16-byte aligned at the handler call
//! ```
//!
//! The return buffer and the copies sit at the bottom so that their
//! addresses are small immediates from sp (AArch64's `add` takes 12 bits):
//! each 8 bytes of a copy came in at least one argument register, of which
//! there are 16 (8 GP and 8 FP; 6 and 8 on x86_64), so the copies take at
//! most [`MAX_COPIES`] bytes and `slots` is at most 160.

use crate::{Entry, Loc, Passing, Plan, Source, Type};

/// Refuses what no callback can be made from: a plan of another entry
/// kind (its moves read other places), or of a variadic signature (a C
/// caller of a variadic function type may pass any variadic arguments,
/// which one call shape cannot read).
pub(crate) fn check(plan: &Plan) {
    assert_eq!(
        plan.entry,
        Entry::Packed,
        "a callback is emitted from the packed plan of its signature, not a {} plan",
        plan.entry
    );
    assert!(
        plan.variadic.is_none(),
        "a callback cannot be variadic: its C callers may pass any variadic arguments"
    );
}

/// Bytes of the return buffer at sp + 0: `max(8, size)` for every return
/// that comes back in registers, 8-byte aligned. A struct comes back in at
/// most 16 bytes of GP or SSE registers on x86_64, but an AArch64 HFA of
/// four `f64` takes 32.
pub(crate) const RET_BYTES: u32 = 32;

/// The most bytes the struct copies take: 8 for each argument register.
pub(crate) const MAX_COPIES: u32 = 8 * 16;

/// One piece of a struct that arrives in a register: `ty` says the
/// register's class (`u64`: a GP register, stored whole; `f32`, `f64`: an
/// FP register, stored at that width), `offset` where it goes in the copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Piece {
    pub ty: Type,
    pub offset: u32,
    pub at: Loc,
}

/// How the callback fills one argument's slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Incoming {
    /// A scalar of the signature's type `ty` at `at`: its value, extended.
    Scalar { ty: Type, at: Loc },
    /// A struct in registers: stored piece by piece to the copy at
    /// `sp + copy`, whose address goes in the slot.
    Copy { copy: u32, pieces: Vec<Piece> },
    /// A struct whole in the caller's stack arguments, `at` bytes above
    /// the first: that address goes in the slot.
    Stack { at: u32 },
    /// A struct the caller copied and passes by reference: the pointer at
    /// `at` goes in the slot.
    Reference { at: Loc },
}

/// A callback's frame below its frame record (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Frame {
    /// One per signature argument, in order.
    pub args: Vec<Incoming>,
    /// Slot 0's offset from sp; slot `i` is 8 `i` bytes above.
    pub slots: u32,
    /// Bytes reserved below the frame record: a multiple of 16.
    pub size: u32,
}

impl Frame {
    /// The frame of `plan`'s callback: a packed plan, not a shape (whose
    /// types stand for others: `u32` as `i32` would be sign-extended).
    pub fn of(plan: &Plan) -> Frame {
        let mut next_copy = RET_BYTES;
        let args: Vec<Incoming> = plan
            .passing
            .iter()
            .zip(&plan.arg_types)
            .enumerate()
            .map(|(i, (&passing, &ty))| {
                // At most Limits::EMITTER_MAX_ARGS (512) arguments.
                let index = i as u32;
                let mut moves = plan.args.iter().filter(|arg| arg.index == index);
                match passing {
                    Passing::Scalar => {
                        let arg = moves.next().expect("a scalar argument has one move");
                        Incoming::Scalar { ty, at: arg.to }
                    }
                    Passing::Registers | Passing::Hfa { .. } => {
                        let copy = next_copy;
                        next_copy += ty.size().next_multiple_of(8);
                        let pieces = moves
                            .map(|arg| match arg.from {
                                Source::Field { offset, .. } => Piece {
                                    ty: arg.ty,
                                    offset,
                                    at: arg.to,
                                },
                                other => unreachable!(
                                    "a struct in registers moves by fields, not {other:?}"
                                ),
                            })
                            .collect();
                        Incoming::Copy { copy, pieces }
                    }
                    Passing::Stack => {
                        let first = moves
                            .find(|arg| matches!(arg.from, Source::Field { offset: 0, .. }))
                            .expect("a struct on the stack has a piece at offset 0");
                        let Loc::Stack(at) = first.to else {
                            unreachable!("a struct passed on the stack starts in a stack slot")
                        };
                        Incoming::Stack { at }
                    }
                    Passing::Reference => {
                        let pointer = moves
                            .find(|arg| matches!(arg.from, Source::StackAddress(_)))
                            .expect("a struct passed by reference has its address's move");
                        Incoming::Reference { at: pointer.to }
                    }
                }
            })
            .collect();
        let slots = next_copy;
        debug_assert!(
            slots <= RET_BYTES + MAX_COPIES,
            "copies of structs in registers take 8 bytes per register at most"
        );
        // 8 bytes per argument, at most Limits::EMITTER_MAX_ARGS (512).
        let size = (slots + 8 * args.len() as u32).next_multiple_of(16);
        Frame { args, slots, size }
    }

    /// Slot `i`'s offset from sp.
    pub fn slot(&self, i: usize) -> u32 {
        // At most Limits::EMITTER_MAX_ARGS (512) slots.
        self.slots + 8 * i as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{classify, Abi, Entry, Limits, Signature};

    fn frame(sig: &str, abi: Abi) -> Frame {
        let sig = sig.parse().unwrap();
        Frame::of(&classify(&sig, abi, Entry::Packed, &Limits::default()).unwrap())
    }

    #[test]
    fn scalars_are_read_where_the_plan_puts_them() {
        let f = frame("(i32, f64, u8) -> void", Abi::SysV64);
        assert_eq!(
            f.args,
            [
                Incoming::Scalar {
                    ty: Type::I32,
                    at: Loc::Gp(0)
                },
                Incoming::Scalar {
                    ty: Type::F64,
                    at: Loc::Fp(0)
                },
                Incoming::Scalar {
                    ty: Type::U8,
                    at: Loc::Gp(1)
                },
            ]
        );
        assert_eq!((f.slots, f.size), (RET_BYTES, 64));
    }

    #[test]
    fn every_passing_maps_to_its_incoming_kind() {
        // x86_64: eightbytes in registers, MEMORY on the stack.
        let f = frame(
            "({i32, f32}, {i64, i64, i64}, {f32, f32, f32}) -> void",
            Abi::SysV64,
        );
        assert_eq!(
            f.args,
            [
                Incoming::Copy {
                    copy: RET_BYTES,
                    pieces: vec![Piece {
                        ty: Type::U64,
                        offset: 0,
                        at: Loc::Gp(0)
                    }]
                },
                Incoming::Stack { at: 0 },
                Incoming::Copy {
                    copy: RET_BYTES + 8,
                    pieces: vec![
                        Piece {
                            ty: Type::F64,
                            offset: 0,
                            at: Loc::Fp(0)
                        },
                        Piece {
                            ty: Type::F32,
                            offset: 8,
                            at: Loc::Fp(1)
                        }
                    ]
                },
            ]
        );
        assert_eq!((f.slots, f.size), (RET_BYTES + 24, 80));

        // AArch64: doublewords, an HFA, a reference, and a struct that no
        // longer fits the x registers on the stack.
        let f = frame(
            "({i32, f32}, {f32, f32, f32}, {i64, i64, i64}, i64, i64, i64, i64, i64, {i64, i64}) -> void",
            Abi::Aapcs64,
        );
        assert_eq!(
            f.args[..3],
            [
                Incoming::Copy {
                    copy: RET_BYTES,
                    pieces: vec![Piece {
                        ty: Type::U64,
                        offset: 0,
                        at: Loc::Gp(0)
                    }]
                },
                Incoming::Copy {
                    copy: RET_BYTES + 8,
                    pieces: (0..3)
                        .map(|k| Piece {
                            ty: Type::F32,
                            offset: 4 * k,
                            at: Loc::Fp(k as u8)
                        })
                        .collect()
                },
                Incoming::Reference { at: Loc::Gp(1) },
            ]
        );
        assert_eq!(f.args[8], Incoming::Stack { at: 0 });
        assert_eq!((f.slots, f.size), (RET_BYTES + 24, 128));
    }

    #[test]
    fn the_return_buffer_holds_every_return_that_comes_back_in_registers() {
        // The largest: an AArch64 HFA of four f64, and x86_64's two
        // eightbytes; the handler writes the whole struct to the buffer.
        for (text, abi) in [
            ("() -> {f64, f64, f64, f64}", Abi::Aapcs64),
            ("() -> {i64, i64}", Abi::Aapcs64),
            ("() -> {f64, i64}", Abi::SysV64),
        ] {
            let sig: Signature = text.parse().unwrap();
            let plan = classify(&sig, abi, Entry::Packed, &Limits::default()).unwrap();
            let crate::ReturnPass::Pieces(pieces) = &plan.ret_pass else {
                panic!("{text} on {abi} returns in registers");
            };
            let end = pieces
                .iter()
                .map(|p| p.offset + u32::from(p.bytes))
                .max()
                .unwrap();
            assert!(end <= RET_BYTES, "{text} on {abi}: {end} bytes");
            assert!(sig.ret.size() <= RET_BYTES, "{text} on {abi}");
        }
    }

    #[test]
    fn a_reference_on_the_stack_is_read_from_its_stack_slot() {
        let f = frame(
            "(i64, i64, i64, i64, i64, i64, i64, i64, {i64, i64, i64}) -> void",
            Abi::Aapcs64,
        );
        assert_eq!(f.args[8], Incoming::Reference { at: Loc::Stack(0) });
    }
}
