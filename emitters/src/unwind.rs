//! Unwind information for the emitted code: at every instruction of a
//! trampoline, where its caller's frame is (the canonical frame address,
//! CFA) and where the registers it saved are. The emitters record it as
//! they emit the instructions that change the frame, so the code and its
//! description come from the same plan and cannot drift; [`eh_frame`]
//! writes it as DWARF call frame information (`.eh_frame`, the bytes
//! gimli's `write` module writes for it) for the system unwinder,
//! [`Change::directive`] as assembler directives for code built into the
//! binary, and [`Unwind::describe`] as text for `explain` and the golden
//! listings.
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
///
/// Kept small (16 bytes), since every piece of code carries a dozen: the
/// registers as their DWARF numbers (all below 256), the CFA offset in 16
/// bits (frames stay below 4 KiB), saved registers' offsets in 8-byte
/// units (they are 8-byte slots within 1 KiB of the CFA).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame {
    cfa: u8,
    count: u8,
    offset: i16,
    saved: [(u8, i8); MAX_SAVED],
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
    ///
    /// # Panics
    ///
    /// For a register above 255 or an offset outside 16 bits, which no
    /// frame of the emitters has.
    pub const fn at(cfa: u16, offset: i32) -> Frame {
        assert!(
            cfa < 256 && offset == offset as i16 as i32,
            "a frame of the emitters"
        );
        Frame {
            cfa: cfa as u8,
            count: 0,
            offset: offset as i16,
            saved: [(0, 0); MAX_SAVED],
        }
    }

    /// This frame with `register` saved at `CFA + at`.
    ///
    /// # Panics
    ///
    /// With more than four registers saved, or `at` not a multiple of 8
    /// within 1 KiB below the CFA: no frame of the emitters has either.
    pub const fn saving(mut self, register: u16, at: i32) -> Frame {
        assert!(
            (self.count as usize) < MAX_SAVED,
            "at most four saved registers"
        );
        assert!(
            register < 256 && at % 8 == 0 && at / 8 == (at / 8) as i8 as i32,
            "8-byte slots near the CFA"
        );
        self.saved[self.count as usize] = (register as u8, (at / 8) as i8);
        self.count += 1;
        self
    }

    /// The register the CFA is computed from (DWARF number, [`reg`]).
    pub const fn cfa(&self) -> u16 {
        self.cfa as u16
    }

    /// The CFA's offset from it.
    pub const fn offset(&self) -> i32 {
        self.offset as i32
    }

    /// The saved registers and their offsets from the CFA.
    pub fn saved(&self) -> impl Iterator<Item = (u16, i32)> + '_ {
        self.saved[..usize::from(self.count)]
            .iter()
            .map(|&(register, at)| (u16::from(register), i32::from(at) * 8))
    }

    /// Where `register` is saved, if it is.
    pub fn saved_at(&self, register: u16) -> Option<i32> {
        self.saved().find(|&(r, _)| r == register).map(|(_, at)| at)
    }

    /// This frame with the CFA computed from `register` instead.
    pub(crate) const fn on(mut self, register: u16) -> Frame {
        self.cfa = register as u8;
        self
    }
}

/// The most frames a piece of the emitters' code has: a guarded packed
/// entry's or the register-file stub's eight (entry, prologue, epilogue,
/// and the closed path's own).
const MAX_ROWS: usize = 8;

/// How one piece of code unwinds: the frame at its start and every change,
/// by byte offset, in increasing order. Kept inline (no allocation per
/// piece: a batch makes thousands).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unwind {
    isa: Isa,
    /// Offsets in 16 bits: a piece of code is at most a few KiB.
    rows: [(u16, Frame); MAX_ROWS],
    count: u8,
    len: u32,
}

impl Unwind {
    /// Code of `len` bytes that keeps its entry frame throughout.
    pub fn new(isa: Isa, len: u32) -> Unwind {
        Unwind {
            isa,
            rows: [(0, Frame::entry(isa)); MAX_ROWS],
            count: 1,
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
    pub fn rows(&self) -> &[(u16, Frame)] {
        &self.rows[..usize::from(self.count)]
    }

    /// The frame at byte `offset`.
    pub fn frame_at(&self, offset: u32) -> Frame {
        let rows = self.rows();
        let i = rows.partition_point(|&(at, _)| u32::from(at) <= offset);
        rows[i.max(1) - 1].1
    }

    /// Records `frame` from `offset` on. Offsets come in increasing order;
    /// a second frame at the same offset replaces the first.
    ///
    /// # Panics
    ///
    /// Past [`MAX_ROWS`] frames or 64 KiB of code, which no code of the
    /// emitters reaches.
    fn set(&mut self, offset: u32, frame: Frame) {
        let offset = u16::try_from(offset).expect("a piece of code below 64 KiB");
        let n = usize::from(self.count);
        let (at, last) = self.rows[n - 1];
        if at == offset {
            self.rows[n - 1].1 = frame;
            // The replaced row may now repeat the one before it.
            if n >= 2 && self.rows[n - 2].1 == frame {
                self.count -= 1;
            }
        } else if last != frame {
            debug_assert!(at < offset, "frames recorded in code order");
            assert!(n < MAX_ROWS, "at most {MAX_ROWS} frames in a piece of code");
            self.rows[n] = (offset, frame);
            self.count += 1;
        }
    }

    /// One line per row: `0x1: CFA = rsp+16, rbx at CFA-16`.
    pub fn describe(&self) -> Vec<String> {
        self.rows()
            .iter()
            .map(|(at, frame)| {
                let mut line = format!(
                    "{at:#x}: CFA = {}{:+}",
                    register_name(self.isa, frame.cfa()),
                    frame.offset()
                );
                for (register, offset) in frame.saved() {
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

/// One change between two frames, as a DWARF call frame instruction says
/// it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// The CFA is `register + offset`.
    Cfa(u16, i32),
    /// The CFA's register stays, its offset is this.
    CfaOffset(i32),
    /// `register` is saved at `CFA + offset`.
    Offset(u16, i32),
    /// `register` is back in place (its rule on entry).
    Restore(u16),
}

impl Change {
    /// The assembler directive that states this change (`.cfi_def_cfa 6,
    /// 32`), registers by DWARF number: for code assembled with the
    /// binary, whose `.eh_frame` the assembler writes.
    pub fn directive(self) -> String {
        match self {
            Change::Cfa(register, offset) => format!(".cfi_def_cfa {register}, {offset}"),
            Change::CfaOffset(offset) => format!(".cfi_def_cfa_offset {offset}"),
            Change::Offset(register, offset) => format!(".cfi_offset {register}, {offset}"),
            Change::Restore(register) => format!(".cfi_restore {register}"),
        }
    }
}

/// Calls `each` with every change that turns frame `from` into frame
/// `to`, in the order a description states them.
pub fn changes(from: &Frame, to: &Frame, mut each: impl FnMut(Change)) {
    if to.cfa != from.cfa {
        each(Change::Cfa(to.cfa(), to.offset()));
    } else if to.offset != from.offset {
        each(Change::CfaOffset(to.offset()));
    }
    for (register, _) in from.saved() {
        if to.saved_at(register).is_none() {
            each(Change::Restore(register));
        }
    }
    for (register, at) in to.saved() {
        if from.saved_at(register) != Some(at) {
            each(Change::Offset(register, at));
        }
    }
}

impl Unwind {
    /// Calls `each` with every change of frame after entry and the offset
    /// it applies from, in order: what a description of the code states
    /// after its entry frame (`.cfi_startproc`).
    pub fn for_each_change(&self, mut each: impl FnMut(u32, Change)) {
        let mut before = Frame::entry(self.isa);
        for &(at, frame) in self.rows() {
            changes(&before, &frame, |change| each(u32::from(at), change));
            before = frame;
        }
    }
}

/// DWARF call frame instruction opcodes (DWARF 5, section 6.4.2) and the
/// pointer encoding of `.eh_frame`'s FDE addresses.
mod dw {
    pub const CFA_ADVANCE_LOC: u8 = 0x40;
    pub const CFA_OFFSET: u8 = 0x80;
    pub const CFA_RESTORE: u8 = 0xc0;
    pub const CFA_NOP: u8 = 0x00;
    pub const CFA_ADVANCE_LOC1: u8 = 0x02;
    pub const CFA_ADVANCE_LOC2: u8 = 0x03;
    pub const CFA_DEF_CFA: u8 = 0x0c;
    pub const CFA_DEF_CFA_OFFSET: u8 = 0x0e;
}

/// The code alignment factor, the data alignment factor and the return
/// address column of `isa`'s CIE.
fn factors(isa: Isa) -> (u32, i32, u16) {
    match isa {
        Isa::X86_64 => (1, -8, reg::RIP),
        Isa::Aarch64 => (4, -8, reg::X30),
    }
}

/// An `.eh_frame` being written: little-endian, 32-bit lengths, absolute
/// 64-bit addresses (`DW_EH_PE_absptr`, so the CIE has no augmentation),
/// each entry padded with `DW_CFA_nop` to 8 bytes.
struct Section(Vec<u8>);

impl Section {
    fn u32(&mut self, value: u32) {
        self.0.extend_from_slice(&value.to_le_bytes());
    }

    fn u64(&mut self, value: u64) {
        self.0.extend_from_slice(&value.to_le_bytes());
    }

    fn uleb(&mut self, mut value: u64) {
        loop {
            let byte = (value & 0x7f) as u8;
            value >>= 7;
            if value == 0 {
                self.0.push(byte);
                return;
            }
            self.0.push(byte | 0x80);
        }
    }

    fn sleb(&mut self, mut value: i64) {
        loop {
            let byte = (value & 0x7f) as u8;
            value >>= 7;
            let done = (value == 0 && byte & 0x40 == 0) || (value == -1 && byte & 0x40 != 0);
            if done {
                self.0.push(byte);
                return;
            }
            self.0.push(byte | 0x80);
        }
    }

    /// Starts an entry: its length word, filled in by [`end`](Self::end).
    fn begin(&mut self) -> usize {
        let at = self.0.len();
        self.u32(0);
        at
    }

    /// Pads the entry that starts at `at` to 8 bytes and writes its length.
    fn end(&mut self, at: usize) {
        while (self.0.len() - at) % 8 != 0 {
            self.0.push(dw::CFA_NOP);
        }
        // An entry is a few dozen bytes.
        let length = (self.0.len() - at - 4) as u32;
        self.0[at..at + 4].copy_from_slice(&length.to_le_bytes());
    }

    /// A change, in the factors of `isa`'s CIE. Every register the
    /// emitters name is below 64 and every CFA offset is positive, so the
    /// short forms always apply.
    fn change(&mut self, isa: Isa, change: Change) {
        let (_, data_align, _) = factors(isa);
        match change {
            Change::Cfa(register, offset) => {
                self.0.push(dw::CFA_DEF_CFA);
                self.uleb(u64::from(register));
                self.uleb(offset as u64);
            }
            Change::CfaOffset(offset) => {
                self.0.push(dw::CFA_DEF_CFA_OFFSET);
                self.uleb(offset as u64);
            }
            Change::Offset(register, offset) => {
                self.0.push(dw::CFA_OFFSET | register as u8);
                self.uleb((offset / data_align) as u64);
            }
            Change::Restore(register) => self.0.push(dw::CFA_RESTORE | register as u8),
        }
    }

    /// Advances the location by `delta` bytes of code.
    fn advance(&mut self, isa: Isa, delta: u32) {
        let (code_align, _, _) = factors(isa);
        let delta = delta / code_align;
        if delta < 0x40 {
            self.0.push(dw::CFA_ADVANCE_LOC | delta as u8);
        } else if delta < 0x100 {
            self.0.push(dw::CFA_ADVANCE_LOC1);
            self.0.push(delta as u8);
        } else {
            // A piece of code is far below 64 KiB.
            self.0.push(dw::CFA_ADVANCE_LOC2);
            self.0.extend_from_slice(&(delta as u16).to_le_bytes());
        }
    }

    /// `isa`'s common information entry: version 1, no augmentation, the
    /// alignment factors, the return address column and the entry frame.
    fn cie(&mut self, isa: Isa) -> usize {
        let at = self.begin();
        let (code_align, data_align, ra) = factors(isa);
        // The CIE id of .eh_frame, the version, an empty augmentation.
        self.u32(0);
        self.0.push(1);
        self.0.push(0);
        self.uleb(u64::from(code_align));
        self.sleb(i64::from(data_align));
        self.uleb(u64::from(ra));
        let entry = Frame::entry(isa);
        self.change(isa, Change::Cfa(entry.cfa(), entry.offset()));
        if isa == Isa::X86_64 {
            // The return address at CFA - 8.
            self.change(isa, Change::Offset(reg::RIP, -8));
        }
        self.end(at);
        at
    }

    /// The frame description entry of `unwind`'s code at `address`, under
    /// the CIE at `cie`.
    fn fde(&mut self, cie: usize, address: u64, unwind: &Unwind) {
        let at = self.begin();
        // The CIE pointer: from this field back to the CIE.
        let here = self.0.len();
        self.u32((here - cie) as u32);
        self.u64(address);
        self.u64(u64::from(unwind.len));
        let mut location = 0;
        unwind.for_each_change(|offset, change| {
            if offset != location {
                self.advance(unwind.isa, offset - location);
                location = offset;
            }
            self.change(unwind.isa, change);
        });
        self.end(at);
    }
}

/// An `.eh_frame` section describing every piece of code in `pieces`, each
/// at its address: one common information entry per instruction set, one
/// frame description entry per piece, and the four zero bytes that end the
/// section for `__register_frame`.
///
/// The section is what gimli's `write` module writes for the same
/// entries, byte for byte (the tests check it), written here directly:
/// bindings make one per batch, and gimli's general writer costs more than
/// the binding it describes.
pub fn eh_frame<'a>(pieces: impl IntoIterator<Item = (u64, &'a Unwind)>) -> Vec<u8> {
    let pieces = pieces.into_iter();
    let mut section = EhFrame::with_capacity(pieces.size_hint().0);
    for (address, unwind) in pieces {
        section.add(address, unwind);
    }
    section.finish()
}

/// An `.eh_frame` section written piece by piece, as code is placed: what
/// [`eh_frame`] writes, without keeping the pieces' [`Unwind`]s.
pub struct EhFrame {
    section: Section,
    /// Where each instruction set's CIE is, once written.
    cies: [Option<usize>; 2],
}

impl EhFrame {
    /// A section for about `pieces` pieces.
    pub fn with_capacity(pieces: usize) -> EhFrame {
        EhFrame {
            // About 48 bytes per piece, and a CIE.
            section: Section(Vec::with_capacity(64 + 48 * pieces)),
            cies: [None; 2],
        }
    }

    /// Describes the code of `unwind` placed at `address`.
    pub fn add(&mut self, address: u64, unwind: &Unwind) {
        let slot = match unwind.isa {
            Isa::X86_64 => 0,
            Isa::Aarch64 => 1,
        };
        let cie = match self.cies[slot] {
            Some(cie) => cie,
            None => *self.cies[slot].insert(self.section.cie(unwind.isa)),
        };
        self.section.fde(cie, address, unwind);
    }

    /// Whether no piece was added.
    pub fn is_empty(&self) -> bool {
        self.section.0.is_empty()
    }

    /// The section, ended by its zero word.
    pub fn finish(mut self) -> Vec<u8> {
        self.section.0.extend_from_slice(&[0; 4]);
        self.section.0
    }
}

/// An assembler that records the frame as the emitters change it: the
/// dynasm assembler of the instruction set (reached through `Deref`, so
/// `dynasm!` writes to it as before) and the [`Unwind`] of what it holds.
pub(crate) struct Framed<R: Relocation> {
    ops: VecAssembler<R>,
    unwind: Unwind,
    /// Whether frames are recorded (not when only the code's size or
    /// bytes are wanted).
    recording: bool,
}

impl<R: Relocation> Framed<R> {
    pub(crate) fn new(isa: Isa) -> Self {
        Framed {
            ops: VecAssembler::new(0),
            unwind: Unwind::new(isa, 0),
            recording: true,
        }
    }

    /// An assembler that records no frames: its [`Unwind`] stays the
    /// entry frame's.
    pub(crate) fn code_only(isa: Isa) -> Self {
        Framed {
            recording: false,
            ..Framed::new(isa)
        }
    }

    /// The frame from the next instruction on.
    pub(crate) fn frame(&mut self, frame: Frame) {
        if self.recording {
            // Code is at most a few KiB: the offset fits.
            let at = self.ops.offset().0 as u32;
            self.unwind.set(at, frame);
        }
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
        changes(&saved, &Frame::entry(Isa::Aarch64), |change| {
            out.push(change)
        });
        assert_eq!(
            out,
            [
                Change::Cfa(reg::SP, 0),
                Change::Restore(reg::X29),
                Change::Restore(reg::X30),
            ]
        );
        let directives: Vec<String> = out.into_iter().map(Change::directive).collect();
        assert_eq!(
            directives,
            [".cfi_def_cfa 31, 0", ".cfi_restore 29", ".cfi_restore 30"]
        );
    }
}
