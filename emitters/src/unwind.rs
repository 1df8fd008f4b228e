//! Unwind information for the emitted code: at every instruction of a
//! trampoline, where its caller's frame is (the canonical frame address,
//! CFA) and where the registers it saved are. The emitters record it as
//! they emit the instructions that change the frame, so the code and its
//! description come from the same plan and cannot drift; [`eh_frame`]
//! writes it as DWARF call frame information (`.eh_frame`, through gimli's
//! `write` module) for the system unwinder, and [`Unwind::describe`] as
//! text for `explain` and the golden listings.
//!
//! | | x86_64 | AArch64 |
//! |---|---|---|
//! | on entry | CFA = rsp + 8, the return address at CFA − 8 | CFA = sp, the return address in x30 |
//! | code alignment factor | 1 | 4 |
//! | data alignment factor | −8 | −8 |
//! | return address column | 16 (rip) | 30 (x30) |
//!
//! A [`Frame`] is the whole state from one instruction on; an [`Unwind`]
//! lists the offsets where it changes. Out-of-line code (the closed path
//! after a trampoline's `ret`) states its frame again where it starts, so
//! no state is carried across a jump.

use std::fmt::Write as _;
use std::ops::{Deref, DerefMut};

use dynasmrt::relocations::Relocation;
use dynasmrt::{DynasmApi, DynasmError, VecAssembler};
use gimli::write::{
    Address, CallFrameInstruction, CommonInformationEntry, EhFrame, EndianVec,
    FrameDescriptionEntry, FrameTable,
};
use gimli::{Encoding, Format, LittleEndian, Register};

use crate::Isa;

/// DWARF register numbers (the psABI's and AAPCS64's DWARF mappings) of
/// the registers the frames name.
pub mod reg {
    /// x86_64 rbx.
    pub const RBX: u16 = 3;
    /// x86_64 rbp.
    pub const RBP: u16 = 6;
    /// x86_64 rsp.
    pub const RSP: u16 = 7;
    /// x86_64 r12.
    pub const R12: u16 = 12;
    /// x86_64's return address column.
    pub const RIP: u16 = 16;
    /// AArch64 x19.
    pub const X19: u16 = 19;
    /// AArch64 x20.
    pub const X20: u16 = 20;
    /// AArch64 x29, the frame pointer.
    pub const X29: u16 = 29;
    /// AArch64 x30, the link register: the return address column.
    pub const X30: u16 = 30;
    /// AArch64 sp.
    pub const SP: u16 = 31;
}

/// The most registers a frame of the emitters saves.
const MAX_SAVED: usize = 4;

/// The frame from one instruction on: the CFA is `cfa + offset`, and each
/// saved register is at `CFA + at`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The register the CFA is computed from (DWARF number, [`reg`]).
    pub cfa: u16,
    /// The CFA's offset from it.
    pub offset: i32,
    saved: [(u16, i32); MAX_SAVED],
    count: u8,
}

impl Frame {
    /// The frame on entry to a function of `isa`, before it changes
    /// anything.
    pub const fn entry(isa: Isa) -> Frame {
        match isa {
            Isa::X86_64 => Frame::at(reg::RSP, 8),
            Isa::Aarch64 => Frame::at(reg::SP, 0),
        }
    }

    /// The CFA at `cfa + offset`, no register saved.
    pub const fn at(cfa: u16, offset: i32) -> Frame {
        Frame {
            cfa,
            offset,
            saved: [(0, 0); MAX_SAVED],
            count: 0,
        }
    }

    /// This frame with `register` saved at `CFA + at`.
    ///
    /// # Panics
    ///
    /// With more than four registers saved: no frame of the emitters
    /// saves more.
    pub const fn saving(mut self, register: u16, at: i32) -> Frame {
        assert!(
            (self.count as usize) < MAX_SAVED,
            "at most four saved registers"
        );
        self.saved[self.count as usize] = (register, at);
        self.count += 1;
        self
    }

    /// The saved registers and their offsets from the CFA.
    pub fn saved(&self) -> &[(u16, i32)] {
        &self.saved[..usize::from(self.count)]
    }
}

/// How one piece of code unwinds: the frame at its start and every change,
/// by byte offset, in increasing order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unwind {
    isa: Isa,
    rows: Vec<(u32, Frame)>,
    len: u32,
}

impl Unwind {
    /// Code of `len` bytes that keeps its entry frame throughout.
    pub fn new(isa: Isa, len: u32) -> Unwind {
        Unwind {
            isa,
            rows: vec![(0, Frame::entry(isa))],
            len,
        }
    }

    /// The instruction set.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// The code's length in bytes.
    pub fn len(&self) -> u32 {
        self.len
    }

    /// Whether the code is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Each offset where the frame changes, with the frame from there on;
    /// the first at 0.
    pub fn rows(&self) -> &[(u32, Frame)] {
        &self.rows
    }

    /// The frame at byte `offset`.
    pub fn frame_at(&self, offset: u32) -> Frame {
        let i = self.rows.partition_point(|&(at, _)| at <= offset);
        self.rows[i.max(1) - 1].1
    }

    /// Records `frame` from `offset` on. Offsets come in increasing order;
    /// a second frame at the same offset replaces the first.
    fn set(&mut self, offset: u32, frame: Frame) {
        match self.rows.last_mut() {
            Some((at, last)) if *at == offset => *last = frame,
            Some((_, last)) if *last == frame => {}
            _ => {
                debug_assert!(self.rows.last().map_or(true, |&(at, _)| at < offset));
                self.rows.push((offset, frame));
            }
        }
        // A replaced row may now repeat the one before it.
        if let [.., (_, a), (_, b)] = self.rows[..] {
            if a == b {
                self.rows.pop();
            }
        }
    }

    /// One line per row: `0x1: CFA = rsp+16, rbx at CFA-16`.
    pub fn describe(&self) -> Vec<String> {
        self.rows
            .iter()
            .map(|(at, frame)| {
                let mut line = format!(
                    "{at:#x}: CFA = {}{:+}",
                    register_name(self.isa, frame.cfa),
                    frame.offset
                );
                for &(register, offset) in frame.saved() {
                    let _ = write!(
                        line,
                        ", {} at CFA{offset:+}",
                        register_name(self.isa, register)
                    );
                }
                line
            })
            .collect()
    }
}

/// The assembler name of DWARF register `register` of `isa`.
pub fn register_name(isa: Isa, register: u16) -> &'static str {
    const X86_64: [&str; 17] = [
        "rax", "rdx", "rcx", "rbx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10", "r11", "r12",
        "r13", "r14", "r15", "rip",
    ];
    const AARCH64: [&str; 32] = [
        "x0", "x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8", "x9", "x10", "x11", "x12", "x13",
        "x14", "x15", "x16", "x17", "x18", "x19", "x20", "x21", "x22", "x23", "x24", "x25", "x26",
        "x27", "x28", "x29", "x30", "sp",
    ];
    let names: &[&str] = match isa {
        Isa::X86_64 => &X86_64,
        Isa::Aarch64 => &AARCH64,
    };
    names.get(usize::from(register)).copied().unwrap_or("?")
}

/// The common information entry of every piece of `isa`'s code: the
/// alignment factors, the return address column and the entry frame.
fn cie(isa: Isa) -> CommonInformationEntry {
    let encoding = Encoding {
        format: Format::Dwarf32,
        // .eh_frame's CIE version.
        version: 1,
        address_size: 8,
    };
    let (code_align, ra) = match isa {
        Isa::X86_64 => (1, reg::RIP),
        Isa::Aarch64 => (4, reg::X30),
    };
    let mut cie = CommonInformationEntry::new(encoding, code_align, -8, Register(ra));
    let entry = Frame::entry(isa);
    cie.add_instruction(CallFrameInstruction::Cfa(Register(entry.cfa), entry.offset));
    if isa == Isa::X86_64 {
        cie.add_instruction(CallFrameInstruction::Offset(Register(reg::RIP), -8));
    }
    cie
}

/// The call frame instructions that turn frame `from` into frame `to`.
fn changes(from: &Frame, to: &Frame, out: &mut Vec<CallFrameInstruction>) {
    if to.cfa != from.cfa {
        out.push(CallFrameInstruction::Cfa(Register(to.cfa), to.offset));
    } else if to.offset != from.offset {
        out.push(CallFrameInstruction::CfaOffset(to.offset));
    }
    for &(register, _) in from.saved() {
        if !to.saved().iter().any(|&(r, _)| r == register) {
            out.push(CallFrameInstruction::Restore(Register(register)));
        }
    }
    for &(register, at) in to.saved() {
        if !from.saved().contains(&(register, at)) {
            out.push(CallFrameInstruction::Offset(Register(register), at));
        }
    }
}

/// An `.eh_frame` section describing every piece of code in `pieces`, each
/// at its address: one common information entry per instruction set, one
/// frame description entry per piece (addresses absolute), and the four
/// zero bytes that end the section for `__register_frame`.
///
/// # Panics
///
/// If gimli cannot encode the table, which no frame of the emitters
/// causes (every offset fits, every register is a DWARF register).
pub fn eh_frame<'a>(pieces: impl IntoIterator<Item = (u64, &'a Unwind)>) -> Vec<u8> {
    let mut table = FrameTable::default();
    let mut cies = Vec::new();
    let mut instructions = Vec::new();
    for (address, unwind) in pieces {
        let cie = match cies.iter().find(|&&(isa, _)| isa == unwind.isa) {
            Some(&(_, id)) => id,
            None => {
                let id = table.add_cie(cie(unwind.isa));
                cies.push((unwind.isa, id));
                id
            }
        };
        let mut fde = FrameDescriptionEntry::new(Address::Constant(address), unwind.len);
        let mut before = Frame::entry(unwind.isa);
        for &(at, frame) in &unwind.rows {
            instructions.clear();
            changes(&before, &frame, &mut instructions);
            for instruction in instructions.drain(..) {
                fde.add_instruction(at, instruction);
            }
            before = frame;
        }
        table.add_fde(cie, fde);
    }
    let mut section = EhFrame(EndianVec::new(LittleEndian));
    table
        .write_eh_frame(&mut section)
        .expect("the emitters' frames encode as DWARF CFI");
    let mut bytes = section.0.into_vec();
    bytes.extend_from_slice(&[0; 4]);
    bytes
}

/// An assembler that records the frame as the emitters change it: the
/// dynasm assembler of the instruction set (reached through `Deref`, so
/// `dynasm!` writes to it as before) and the [`Unwind`] of what it holds.
pub(crate) struct Framed<R: Relocation> {
    ops: VecAssembler<R>,
    unwind: Unwind,
}

impl<R: Relocation> Framed<R> {
    pub(crate) fn new(isa: Isa) -> Self {
        Framed {
            ops: VecAssembler::new(0),
            unwind: Unwind::new(isa, 0),
        }
    }

    /// The frame from the next instruction on.
    pub(crate) fn frame(&mut self, frame: Frame) {
        // Code is at most a few KiB: the offset fits.
        let at = self.ops.offset().0 as u32;
        self.unwind.set(at, frame);
    }

    /// The frame on entry, from the next instruction on (out-of-line code
    /// entered from the first instructions).
    pub(crate) fn entry_frame(&mut self) {
        let isa = self.unwind.isa;
        self.frame(Frame::entry(isa));
    }

    /// The code, its labels resolved, and how it unwinds.
    pub(crate) fn finish(self) -> Result<(Vec<u8>, Unwind), DynasmError> {
        let code = self.ops.finalize()?;
        let mut unwind = self.unwind;
        // Code is at most a few KiB.
        unwind.len = code.len() as u32;
        Ok((code, unwind))
    }
}

impl<R: Relocation> Deref for Framed<R> {
    type Target = VecAssembler<R>;

    fn deref(&self) -> &Self::Target {
        &self.ops
    }
}

impl<R: Relocation> DerefMut for Framed<R> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.ops
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_replaced_at_the_same_offset_keeps_one_row() {
        let mut unwind = Unwind::new(Isa::X86_64, 10);
        unwind.set(1, Frame::at(reg::RSP, 16).saving(reg::RBX, -16));
        unwind.set(5, Frame::at(reg::RSP, 48).saving(reg::RBX, -16));
        unwind.set(5, Frame::at(reg::RSP, 16).saving(reg::RBX, -16));
        assert_eq!(unwind.rows().len(), 2, "{:?}", unwind.describe());
        unwind.set(9, Frame::entry(Isa::X86_64));
        assert_eq!(
            unwind.describe(),
            [
                "0x0: CFA = rsp+8",
                "0x1: CFA = rsp+16, rbx at CFA-16",
                "0x9: CFA = rsp+8"
            ]
        );
        assert_eq!(unwind.frame_at(0).offset, 8);
        assert_eq!(unwind.frame_at(4).offset, 16);
        assert_eq!(unwind.frame_at(100).offset, 8);
    }

    #[test]
    fn changes_restore_what_is_no_longer_saved() {
        let saved = Frame::at(reg::X29, 32)
            .saving(reg::X29, -32)
            .saving(reg::X30, -24);
        let mut out = Vec::new();
        changes(&saved, &Frame::entry(Isa::Aarch64), &mut out);
        assert_eq!(
            out,
            [
                CallFrameInstruction::Cfa(Register(reg::SP), 0),
                CallFrameInstruction::Restore(Register(reg::X29)),
                CallFrameInstruction::Restore(Register(reg::X30)),
            ]
        );
    }
}
