//! AArch64 AAPCS64 rules for structs, as Linux uses them (the Procedure
//! Call Standard for the Arm 64-bit Architecture, §6.8.2 "Parameter
//! passing rules", stages B and C, and §6.9 "Result return").
//!
//! - A homogeneous floating-point aggregate (HFA: one to four fields of one
//!   float type, nesting included) takes that many consecutive v registers
//!   when they are free (C.2); otherwise no later argument takes a v
//!   register either (C.3: NSRN = 8) and it goes on the stack (C.5).
//! - Any other struct over 16 bytes is copied by the caller to memory it
//!   owns and passed by reference, as a pointer argument (B.4).
//! - Any other struct takes one or two consecutive x registers, a
//!   doubleword each, when they are free (C.12; no struct here needs the
//!   even-register rule of C.11, none being 16-byte aligned); otherwise no
//!   later argument takes an x register either (C.13: NGRN = 8) and it goes
//!   on the stack (C.14–C.16), rounded up to 8 bytes.
//!
//! Returns: an HFA in v0–v3, a struct of at most 16 bytes in x0 and x1,
//! anything larger through memory whose address the caller passes in x8.
//!
//! Apple's arm64 differs in two places here (its scalar differences are in
//! the assigner): an HFA that goes on the stack takes exactly its size at
//! its members' alignment, not 8-byte-rounded space at 8 (LLVM's DarwinPCS
//! places `[8 x float], [1 x float], [2 x float]` at `[sp]` and `[sp + 4]`,
//! AAPCS64 at `[sp]` and `[sp + 8]`); and a variadic struct goes on the stack
//! whatever registers are free (`variadic_struct_arg`).

use super::{pieces, Arg, Assigner, Loc, Passing, RetPiece, ReturnPass, Source, StructArg};
use crate::abi::StackSlot;
use crate::{StructType, Type};

/// The field type and count of a homogeneous floating-point aggregate.
pub fn hfa(layout: &StructType) -> Option<(Type, u8)> {
    let fields = layout.flatten();
    let ty = fields.first()?.1;
    let same = fields.iter().all(|&(_, t)| t == ty);
    // At most 4 fields, so the count fits in a u8.
    (ty.is_float() && same && fields.len() <= 4).then_some((ty, fields.len() as u8))
}

/// The registers a struct argument takes, GP and FP, when it travels in
/// registers (a struct over 16 bytes, by its pointer).
pub fn register_needs(layout: &StructType) -> Option<(usize, usize)> {
    Some(match hfa(layout) {
        Some((_, n)) => (0, usize::from(n)),
        None if layout.size() > 16 => (1, 0),
        None => (layout.size().div_ceil(8) as usize, 0),
    })
}

/// Where the struct argument in packed slot `slot` (argument `index`) goes.
pub(super) fn struct_arg(
    layout: &StructType,
    index: u32,
    slot: u32,
    target: &mut Assigner,
) -> StructArg {
    if let Some((ty, n)) = hfa(layout) {
        // One move per member, of the member's size, to where `to` says.
        let members = |to: &mut dyn FnMut(u32) -> Loc| -> Vec<Arg> {
            layout
                .flatten()
                .into_iter()
                .map(|(offset, _)| Arg {
                    index,
                    ty,
                    from: Source::Field {
                        slot,
                        offset,
                        bytes: ty.size() as u8,
                    },
                    to: to(offset),
                })
                .collect()
        };
        if target.fp_free() >= usize::from(n) {
            let moves = members(&mut |_| target.next(ty));
            return StructArg::Moves(Passing::Hfa { count: n, ty }, moves);
        }
        target.exhaust_fp();
        if target.slot == StackSlot::Natural {
            // Apple: the members back to back at their own alignment.
            let at = target.stack_block(layout.size(), ty.align());
            let moves = members(&mut |offset| Loc::Stack(at + offset));
            return StructArg::Moves(Passing::Stack, moves);
        }
    } else if layout.size() > 16 {
        return StructArg::Reference {
            pointer: target.next(Type::Pointer),
        };
    } else {
        let dwords = layout.size().div_ceil(8) as usize;
        if target.gp_free() >= dwords {
            let moves = (0..dwords as u32)
                .map(|i| {
                    let offset = 8 * i;
                    Arg {
                        index,
                        ty: Type::U64,
                        from: Source::Field {
                            slot,
                            offset,
                            bytes: (layout.size() - offset).min(8) as u8,
                        },
                        to: target.next(Type::U64),
                    }
                })
                .collect();
            return StructArg::Moves(Passing::Registers, moves);
        }
        target.exhaust_gp();
    }
    let at = target.stack_area(layout.size(), layout.align());
    StructArg::Moves(Passing::Stack, pieces(layout, index, slot, at))
}

/// Where a variadic struct argument goes on Apple's arm64: on the stack
/// whatever registers are free, 8-byte aligned and rounded up to 8 bytes
/// (HFAs included: LLVM's DarwinPCS puts the variadic `[2 x float]` after
/// a `[3 x float]` at [sp + 16]), or by reference, its address in a stack
/// slot, when over 16 bytes.
pub(super) fn variadic_struct_arg(
    layout: &StructType,
    index: u32,
    slot: u32,
    target: &mut Assigner,
) -> StructArg {
    if layout.size() > 16 {
        return StructArg::Reference {
            pointer: Loc::Stack(target.stack_area(8, 8)),
        };
    }
    let at = target.stack_area(layout.size(), layout.align());
    StructArg::Moves(Passing::Stack, pieces(layout, index, slot, at))
}

/// How a struct return comes back.
pub(super) fn struct_return(layout: &StructType) -> ReturnPass {
    if let Some((ty, _)) = hfa(layout) {
        let pieces = layout
            .flatten()
            .into_iter()
            .enumerate()
            .map(|(k, (offset, _))| RetPiece {
                offset,
                bytes: ty.size() as u8,
                ty,
                reg: k as u8,
            })
            .collect();
        return ReturnPass::Pieces(pieces);
    }
    if layout.size() > 16 {
        return ReturnPass::Memory;
    }
    let pieces = (0..layout.size().div_ceil(8))
        .map(|i| RetPiece {
            offset: 8 * i,
            bytes: (layout.size() - 8 * i).min(8) as u8,
            ty: Type::U64,
            reg: i as u8,
        })
        .collect();
    ReturnPass::Pieces(pieces)
}
