//! x86_64 System V rules for structs (System V AMD64 psABI §3.2.3,
//! "Parameter Passing").
//!
//! A struct of at most 16 bytes is split into eightbytes. Each is classed
//! INTEGER when any scalar in it is an integer or a pointer, SSE when all
//! of them are floats (the merge rule: INTEGER wins). The eightbytes travel
//! in the next free GP register or xmm register of their class, in order;
//! when the registers of either class run out for any eightbyte, the whole
//! struct goes on the stack instead, and later arguments may still take
//! registers. A struct over 16 bytes is MEMORY: copied to the stack.
//!
//! A struct return of at most 16 bytes comes back the same way, INTEGER
//! eightbytes in rax then rdx, SSE ones in xmm0 then xmm1; a MEMORY return
//! is written to the address the caller passes in rdi, the first GP
//! argument register, which the callee also returns in rax.

use super::{pieces, Arg, Assigner, Passing, RetPiece, ReturnPass, Source, StructArg};
use crate::{StructType, Type};

/// The class of one eightbyte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    Integer,
    Sse,
}

/// The classes of a struct's eightbytes, or `None` for MEMORY (over 16
/// bytes).
pub fn eightbytes(layout: &StructType) -> Option<Vec<Class>> {
    if layout.size() > 16 {
        return None;
    }
    let mut classes = vec![None; layout.size().div_ceil(8) as usize];
    for (offset, ty) in layout.flatten() {
        // Fields are naturally aligned, so none straddles an eightbyte.
        let class = &mut classes[(offset / 8) as usize];
        *class = Some(match (*class, ty.is_float()) {
            (Some(Class::Integer), _) | (_, false) => Class::Integer,
            (_, true) => Class::Sse,
        });
    }
    // Alignments are at most 8, so padding never fills an eightbyte.
    Some(
        classes
            .into_iter()
            .map(|class| class.expect("every eightbyte holds a field"))
            .collect(),
    )
}

/// The registers a struct argument takes, GP and SSE, when it travels in
/// registers; `None` when it goes to the stack whatever is free.
pub fn register_needs(layout: &StructType) -> Option<(usize, usize)> {
    let classes = eightbytes(layout)?;
    let sse = classes.iter().filter(|&&c| c == Class::Sse).count();
    Some((classes.len() - sse, sse))
}

/// Where the struct argument in packed slot `slot` (argument `index`) goes.
pub(super) fn struct_arg(
    layout: &StructType,
    index: u32,
    slot: u32,
    target: &mut Assigner,
) -> StructArg {
    if let Some(classes) = eightbytes(layout) {
        let (gp, sse) = register_needs(layout).expect("classed eightbytes");
        if target.gp_free() >= gp && target.fp_free() >= sse {
            let moves = classes
                .iter()
                .enumerate()
                .map(|(i, class)| {
                    let offset = 8 * i as u32;
                    // At most 8, so it fits in a u8.
                    let bytes = (layout.size() - offset).min(8) as u8;
                    let (ty, to) = match class {
                        Class::Integer => (Type::U64, target.next(Type::U64)),
                        // An SSE eightbyte is one f64, two f32 or a last f32.
                        Class::Sse if bytes == 4 => (Type::F32, target.next(Type::F32)),
                        Class::Sse => (Type::F64, target.next(Type::F64)),
                    };
                    Arg {
                        index,
                        ty,
                        from: Source::Field {
                            slot,
                            offset,
                            bytes,
                        },
                        to,
                    }
                })
                .collect();
            return StructArg::Moves(Passing::Registers, moves);
        }
    }
    let at = target.stack_area(layout.size(), layout.align());
    StructArg::Moves(Passing::Stack, pieces(layout, index, slot, at))
}

/// How a struct return comes back.
pub(super) fn struct_return(layout: &StructType) -> ReturnPass {
    let Some(classes) = eightbytes(layout) else {
        return ReturnPass::Memory;
    };
    let (mut int, mut sse) = (0, 0);
    let pieces = classes
        .iter()
        .enumerate()
        .map(|(i, class)| {
            let offset = 8 * i as u32;
            let bytes = (layout.size() - offset).min(8) as u8;
            let (ty, counter) = match class {
                Class::Integer => (Type::U64, &mut int),
                Class::Sse if bytes == 4 => (Type::F32, &mut sse),
                Class::Sse => (Type::F64, &mut sse),
            };
            *counter += 1;
            RetPiece {
                offset,
                bytes,
                ty,
                reg: *counter - 1,
            }
        })
        .collect();
    ReturnPass::Pieces(pieces)
}
