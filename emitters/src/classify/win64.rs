//! Win64 rules for structs (Microsoft's "x64 calling convention",
//! "Parameter passing" and "Return values").
//!
//! A struct of 1, 2, 4 or 8 bytes is passed as an integer of that size: in
//! the GP register of its argument position (never an xmm register, even
//! when its fields are floats), or in its stack slot. Any other struct is
//! copied by the caller to memory it owns, 16-byte aligned, and passed by
//! reference: its address takes the position.
//!
//! A struct return of 1, 2, 4 or 8 bytes comes back in rax; any other is
//! written to the address the caller passes in rcx, the first position,
//! which the callee also returns in rax.

use super::{Arg, Assigner, Passing, RetPiece, ReturnPass, Source, StructArg};
use crate::{StructType, Type};

/// Whether a struct travels as an integer of its size.
pub fn by_value(layout: &StructType) -> bool {
    matches!(layout.size(), 1 | 2 | 4 | 8)
}

/// The registers a struct argument takes when its position is a register
/// one: a GP register, for its value or its address.
pub fn register_needs(_layout: &StructType) -> (usize, usize) {
    (1, 0)
}

/// Where the struct argument in packed slot `slot` (argument `index`) goes.
pub(super) fn struct_arg(
    layout: &StructType,
    index: u32,
    slot: u32,
    target: &mut Assigner,
) -> StructArg {
    if !by_value(layout) {
        return StructArg::Reference {
            pointer: target.next(Type::Pointer),
        };
    }
    let bytes = layout.size() as u8;
    let moves = vec![Arg {
        index,
        ty: Type::U64,
        from: Source::Field {
            slot,
            offset: 0,
            bytes,
        },
        to: target.next(Type::U64),
    }];
    StructArg::Moves(Passing::Registers, moves)
}

/// How a struct return comes back.
pub(super) fn struct_return(layout: &StructType) -> ReturnPass {
    if !by_value(layout) {
        return ReturnPass::Memory;
    }
    ReturnPass::Pieces(vec![RetPiece {
        offset: 0,
        // 1, 2, 4 or 8.
        bytes: layout.size() as u8,
        ty: Type::U64,
        reg: 0,
    }])
}
