//! Calls through the register-file stub: the plan's moves, compiled at bind
//! time into a list of word writes, run per call into a [`RegisterFile`]
//! and the block of stack arguments after it; the raw return registers
//! are finished by the plan's return pass. It serves every eligible shape
//! the baked set lacks, without executable memory of its own.

use std::ffi::c_void;
use std::mem::{offset_of, MaybeUninit};

use jitcall_emitters::register_file::{RegisterFile, RegisterFileFn, ReturnRegisters};
use jitcall_emitters::RetPiece;

use crate::value::widen;
use crate::{BufferView, Limits, Loc, MemoryReturn, Plan, ReturnPass, Source, Type, Varargs};

/// Stack words the largest plan needs: [`Limits::EMITTER_MAX_STACK`] bytes.
const MAX_STACK_WORDS: usize = Limits::EMITTER_MAX_STACK as usize / 8;
/// Stack words a call's frame holds without the large path: most plans
/// pass a few arguments on the stack, if any.
const SMALL_STACK_WORDS: usize = 32;

/// What the stub reads: the register file, and the stack block right
/// after it, so that every word a move writes is an index from its start.
///
/// Registers no move writes are left uninitialised: the stub loads every
/// argument register, and the target reads only those its signature
/// passes. (Zeroing them first costs more than the moves: the stub's
/// 8-byte loads would read halves of 16-byte stores, which the CPU cannot
/// forward.)
#[repr(C)]
struct Frame<const N: usize> {
    file: MaybeUninit<RegisterFile>,
    stack: [MaybeUninit<u64>; N],
}

/// Word indices in a [`Frame`]: the GP registers, the FP registers, the
/// stack block.
const GP_WORD: usize = offset_of!(RegisterFile, gp) / 8;
const FP_WORD: usize = offset_of!(RegisterFile, fp) / 8;
const STACK_WORD: usize = offset_of!(Frame<1>, stack) / 8;

/// A scalar argument's move: its slot, as the trampolines leave it in a
/// register (8- and 16-bit integers extended to 32 bits, 32-bit values in
/// the low half with the upper one clear, a buffer's `data`), to a word of
/// the [`Frame`]. Branch-free but for buffers: the value's bits are
/// masked, sign-extended by the xor-and-subtract of its sign bit, and
/// masked again to the register's 32 or 64 bits.
#[derive(Clone, Copy, Debug)]
struct ScalarMove {
    slot: u32,
    to: u32,
    /// The type's bits.
    mask: u64,
    /// The sign bit of a signed type, else 0.
    sign: u64,
    /// The bits the register keeps.
    keep: u64,
    buffer: bool,
}

impl ScalarMove {
    fn new(slot: u32, ty: Type, to: usize) -> ScalarMove {
        let (bits, signed) = match ty {
            Type::F32 => (32, false),
            Type::Buffer => (64, false),
            ty => ty.int_width().unwrap_or((64, false)),
        };
        let mask = u64::MAX >> (64 - bits);
        ScalarMove {
            slot,
            to: to as u32,
            mask,
            sign: if signed { 1 << (bits - 1) } else { 0 },
            keep: if bits < 64 { 0xffff_ffff } else { u64::MAX },
            buffer: ty == Type::Buffer,
        }
    }

    /// The register image of `slot`.
    ///
    /// # Safety
    ///
    /// A buffer's slot must hold null or the address of a valid view.
    #[inline(always)]
    unsafe fn image(self, slot: u64) -> u64 {
        if self.buffer {
            let view = slot as *const BufferView;
            return if view.is_null() {
                0
            } else {
                // SAFETY: a buffer slot holds null or the address of a
                // valid view, by this function's contract.
                unsafe { (*view).data as u64 }
            };
        }
        (((slot & self.mask) ^ self.sign).wrapping_sub(self.sign)) & self.keep
    }
}

/// Where a struct argument's word comes from.
#[derive(Clone, Copy, Debug)]
enum StructRead {
    /// `bytes` bytes at `offset` in the struct whose address slot `slot`
    /// holds, zero-extended.
    Field {
        slot: usize,
        offset: usize,
        bytes: usize,
    },
    /// The address of the stack block's byte `at`: a struct passed by
    /// reference, copied there by field moves.
    StackAddress(usize),
}

/// One word of a struct argument and where it goes in the [`Frame`].
#[derive(Clone, Copy, Debug)]
struct StructMove {
    read: StructRead,
    to: usize,
}

/// What the target's return registers become.
#[derive(Clone, Debug)]
enum Finish {
    Void,
    /// The integer register, narrowed to the return type and re-extended.
    Int(Type),
    /// The FP register's low 32 bits.
    F32,
    /// The FP register's 64 bits.
    F64,
    /// A struct in registers, a piece each.
    Pieces(Box<[RetPiece]>),
    /// A struct the target wrote to the return buffer itself.
    Memory,
}

/// A plan bound to the register-file stub.
pub(crate) struct RegisterFileCall {
    stub: RegisterFileFn,
    scalars: Box<[ScalarMove]>,
    structs: Box<[StructMove]>,
    stack_words: usize,
    /// Whether some stack word is written by no move (padding between
    /// arguments), so that the block is zeroed first.
    stack_gaps: bool,
    /// `rax` on x86_64: the FP registers holding arguments (`al`).
    vector_count: u64,
    /// Where a memory return's address goes: rdi (GP word 0) on x86_64,
    /// x8 (the file's `extra`) on AArch64.
    return_address: Option<ReturnAddress>,
    finish: Finish,
}

#[derive(Clone, Copy, Debug)]
enum ReturnAddress {
    FirstGp,
    Extra,
}

impl RegisterFileCall {
    /// Compiles `plan`'s moves for the stub.
    pub(crate) fn new(stub: RegisterFileFn, plan: &Plan) -> RegisterFileCall {
        let word = |loc: Loc| match loc {
            Loc::Gp(n) => GP_WORD + usize::from(n),
            Loc::Fp(n) => FP_WORD + usize::from(n),
            Loc::Stack(at) => STACK_WORD + at as usize / 8,
        };
        let mut scalars = Vec::new();
        let mut structs = Vec::new();
        for arg in &plan.args {
            let to = word(arg.to);
            let read = match arg.from {
                Source::Slot(slot) => {
                    scalars.push(ScalarMove::new(slot, arg.ty, to));
                    continue;
                }
                Source::Field {
                    slot,
                    offset,
                    bytes,
                } => StructRead::Field {
                    slot: slot as usize,
                    offset: offset as usize,
                    bytes: usize::from(bytes),
                },
                Source::StackAddress(at) => StructRead::StackAddress(at as usize),
                Source::Native(_) => unreachable!("packed plans read slots"),
            };
            structs.push(StructMove { read, to });
        }
        let stack_words = (plan.stack_bytes as usize).div_ceil(8);
        let written = scalars
            .iter()
            .map(|m| m.to as usize)
            .chain(structs.iter().map(|m| m.to))
            .filter(|&to| to >= STACK_WORD)
            .count();
        let finish = match (&plan.ret_pass, plan.ret) {
            (ReturnPass::Value, Type::Void) => Finish::Void,
            (ReturnPass::Value, Type::F32) => Finish::F32,
            (ReturnPass::Value, Type::F64) => Finish::F64,
            (ReturnPass::Value, ty) => Finish::Int(ty),
            (ReturnPass::Pieces(pieces), _) => Finish::Pieces(pieces.clone().into()),
            (ReturnPass::Memory, _) => Finish::Memory,
        };
        let spec = plan.abi.spec();
        debug_assert!(spec.hosted, "the register file serves the host's ABI");
        let return_address = match (spec.memory_return, &plan.ret_pass) {
            (MemoryReturn::FirstArgument, ReturnPass::Memory) => Some(ReturnAddress::FirstGp),
            (MemoryReturn::X8, ReturnPass::Memory) => Some(ReturnAddress::Extra),
            _ => None,
        };
        let vector_count = match spec.varargs {
            Varargs::AlHoldsVectorCount => plan
                .args
                .iter()
                .filter(|arg| matches!(arg.to, Loc::Fp(_)))
                .count() as u64,
            _ => 0,
        };
        RegisterFileCall {
            stub,
            scalars: scalars.into(),
            structs: structs.into(),
            stack_words,
            // Each move writes a whole word, and no word twice.
            stack_gaps: written < stack_words,
            vector_count,
            return_address,
            finish,
        }
    }

    /// Calls `target` with packed arguments, as the packed entry would.
    ///
    /// # Safety
    ///
    /// As [`Function::call_packed`](crate::Function::call_packed): `target`
    /// has the plan's signature, `args` holds one readable slot per
    /// argument (struct slots the address of the struct's bytes, buffer
    /// slots null or a view's address), `ret` is as large as the return
    /// needs.
    #[inline]
    pub(crate) unsafe fn call_packed(
        &self,
        target: *const c_void,
        args: *const u64,
        ret: *mut u64,
    ) {
        if self.stack_words <= SMALL_STACK_WORDS {
            // SAFETY: forwarded; the frame holds the block.
            unsafe { self.call_in::<SMALL_STACK_WORDS>(target, args, ret) }
        } else {
            // SAFETY: as above.
            unsafe { self.call_large(target, args, ret) }
        }
    }

    /// [`call_packed`](Self::call_packed) for a block over
    /// [`SMALL_STACK_WORDS`], out of line so the common frame stays small.
    ///
    /// # Safety
    ///
    /// As for [`call_packed`](Self::call_packed).
    #[inline(never)]
    unsafe fn call_large(&self, target: *const c_void, args: *const u64, ret: *mut u64) {
        // SAFETY: forwarded; every plan's block fits the largest frame.
        unsafe { self.call_in::<MAX_STACK_WORDS>(target, args, ret) }
    }

    /// The call, with a frame of `N` stack words (at least the plan's).
    ///
    /// # Safety
    ///
    /// As for [`call_packed`](Self::call_packed), and `N` covers the
    /// plan's stack words.
    #[inline(always)]
    unsafe fn call_in<const N: usize>(
        &self,
        target: *const c_void,
        args: *const u64,
        ret: *mut u64,
    ) {
        debug_assert!(self.stack_words <= N);
        let mut frame = Frame::<N> {
            file: MaybeUninit::uninit(),
            stack: [MaybeUninit::uninit(); N],
        };
        if self.stack_gaps {
            frame.stack[..self.stack_words].fill(MaybeUninit::new(0));
        }
        let base = std::ptr::addr_of_mut!(frame).cast::<u64>();
        // SAFETY: the frame is this many words from `base`.
        let block = unsafe { base.add(STACK_WORD) };
        for m in &*self.scalars {
            // SAFETY: one readable slot per argument, a buffer's null or a
            // view's address, by the contract; `to` is a register word or
            // a word of the plan's block, inside the frame.
            unsafe { *base.add(m.to as usize) = m.image(*args.add(m.slot as usize)) };
        }
        for m in &*self.structs {
            let value = match m.read {
                StructRead::Field {
                    slot,
                    offset,
                    bytes,
                } => {
                    let mut raw = [0u8; 8];
                    // SAFETY: a struct slot holds the address of the
                    // struct's bytes, which cover the piece.
                    unsafe {
                        let field = (*args.add(slot) as *const u8).add(offset);
                        std::ptr::copy_nonoverlapping(field, raw.as_mut_ptr(), bytes);
                    }
                    u64::from_le_bytes(raw)
                }
                // The struct's copy in this block (made by its field
                // moves), which lives for the call.
                StructRead::StackAddress(at) => block as u64 + at as u64,
            };
            // SAFETY: as above.
            unsafe { *base.add(m.to) = value };
        }
        let file = frame.file.as_mut_ptr();
        let extra = match self.return_address {
            Some(ReturnAddress::Extra) => ret as u64,
            _ => self.vector_count,
        };
        // SAFETY: `file` points to the frame's register file; each field
        // is written whole, through raw pointers since the rest may be
        // uninitialised.
        unsafe {
            std::ptr::addr_of_mut!((*file).stack).write(block);
            std::ptr::addr_of_mut!((*file).stack_words).write(self.stack_words as u64);
            std::ptr::addr_of_mut!((*file).extra).write(extra);
            if let Some(ReturnAddress::FirstGp) = self.return_address {
                std::ptr::addr_of_mut!((*file).gp[0]).write(ret as u64);
            }
        }
        let mut raw = ReturnRegisters::default();
        // SAFETY: the stub loads the file's registers and block as the
        // plan lays out the target's arguments, and `target` has the plan's
        // signature by the contract.
        unsafe { (self.stub)(file, target, &mut raw) };
        // SAFETY: `ret` is as large as the return needs, by the contract.
        unsafe { self.finish(&raw, ret) };
    }

    /// Stores the return registers to `ret` in the packed encoding.
    ///
    /// # Safety
    ///
    /// `ret` is as large as the return needs.
    #[inline]
    unsafe fn finish(&self, raw: &ReturnRegisters, ret: *mut u64) {
        let value = match &self.finish {
            Finish::Void | Finish::Memory => return,
            Finish::Int(ty) => widen(*ty, raw.gp[0]),
            Finish::F32 => raw.fp[0] & 0xffff_ffff,
            Finish::F64 => raw.fp[0],
            Finish::Pieces(pieces) => {
                for piece in pieces.iter() {
                    let value = match piece.ty {
                        Type::U64 => raw.gp[usize::from(piece.reg)],
                        _ => raw.fp[usize::from(piece.reg)],
                    };
                    let bytes = value.to_le_bytes();
                    // SAFETY: the return buffer holds the struct's size, at
                    // least 8 bytes; each piece lies inside the struct.
                    unsafe {
                        let at = (ret as *mut u8).add(piece.offset as usize);
                        std::ptr::copy_nonoverlapping(bytes.as_ptr(), at, usize::from(piece.bytes));
                    }
                }
                return;
            }
        };
        // SAFETY: `ret` is writable for a scalar return.
        unsafe { *ret = value };
    }
}
