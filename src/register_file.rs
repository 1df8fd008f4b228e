//! Calls through the register-file stub: the plan's moves, interpreted per
//! call into a [`RegisterFile`] and a block of stack arguments, and the
//! raw return registers finished by the plan's return pass. It serves every
//! eligible shape the baked set lacks, without executable memory of its
//! own.

use std::ffi::c_void;
use std::mem::MaybeUninit;

use jitcall_emitters::register_file::{RegisterFile, RegisterFileFn, ReturnRegisters};

use crate::value::widen;
use crate::{Abi, BufferView, Limits, Loc, Plan, ReturnPass, Source, Type};

/// Stack words the largest plan needs: [`Limits::EMITTER_MAX_STACK`] bytes.
const MAX_STACK_WORDS: usize = Limits::EMITTER_MAX_STACK as usize / 8;

/// A plan bound to the register-file stub.
pub(crate) struct RegisterFileCall {
    stub: RegisterFileFn,
    plan: Plan,
    /// x86_64's `al`: the FP registers holding arguments.
    vector_count: u64,
}

impl RegisterFileCall {
    pub(crate) fn new(stub: RegisterFileFn, plan: Plan) -> RegisterFileCall {
        let vector_count = plan
            .args
            .iter()
            .filter(|arg| matches!(arg.to, Loc::Fp(_)))
            .count() as u64;
        RegisterFileCall {
            stub,
            plan,
            vector_count,
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
    pub(crate) unsafe fn call_packed(
        &self,
        target: *const c_void,
        args: *const u64,
        ret: *mut u64,
    ) {
        let plan = &self.plan;
        let words = (plan.stack_bytes as usize).div_ceil(8);
        let mut stack = [MaybeUninit::<u64>::uninit(); MAX_STACK_WORDS];
        // Every word the stub copies is written: stack arguments and copies
        // cover their 8-byte slots, gaps are zeroed here first.
        for word in &mut stack[..words] {
            word.write(0);
        }
        let mut file = RegisterFile {
            gp: [0; 8],
            fp: [0; 8],
            stack: stack.as_ptr().cast(),
            stack_words: words as u64,
            extra: 0,
        };
        for arg in &plan.args {
            let value = match arg.from {
                // SAFETY: one readable slot per argument, a buffer's null or
                // a view's address, by the contract.
                Source::Slot(i) => unsafe { register_image(arg.ty, *args.add(i as usize)) },
                Source::Field {
                    slot,
                    offset,
                    bytes,
                } => {
                    // SAFETY: a struct slot holds the address of the
                    // struct's bytes, which cover the piece.
                    unsafe {
                        let field = (*args.add(slot as usize) as *const u8).add(offset as usize);
                        let mut raw = [0u8; 8];
                        std::ptr::copy_nonoverlapping(field, raw.as_mut_ptr(), usize::from(bytes));
                        u64::from_le_bytes(raw)
                    }
                }
                // A struct passed by reference: its copy in the block is
                // live for the call, wherever the stub copies the block.
                Source::StackAddress(at) => stack.as_ptr() as u64 + u64::from(at),
                Source::Native(_) => unreachable!("packed plans read slots"),
            };
            match arg.to {
                Loc::Gp(n) => file.gp[usize::from(n)] = value,
                Loc::Fp(n) => file.fp[usize::from(n)] = value,
                Loc::Stack(at) => {
                    stack[at as usize / 8].write(value);
                }
            }
        }
        match (plan.abi, &plan.ret_pass) {
            // A memory return's address: rdi on x86_64, x8 on AArch64.
            (Abi::SysV64, ReturnPass::Memory) => file.gp[0] = ret as u64,
            (Abi::Aapcs64, ReturnPass::Memory) => file.extra = ret as u64,
            _ => {}
        }
        if plan.abi == Abi::SysV64 {
            file.extra = self.vector_count;
        }
        let mut raw = ReturnRegisters::default();
        // SAFETY: the stub loads the file's registers and block as the
        // plan lays out the target's arguments, and `target` has the plan's
        // signature by the contract.
        unsafe { (self.stub)(&file, target, &mut raw) };
        match &plan.ret_pass {
            ReturnPass::Value => {
                let value = match plan.ret {
                    Type::Void => return,
                    Type::F32 => raw.fp[0] & 0xffff_ffff,
                    Type::F64 => raw.fp[0],
                    ty => widen(ty, raw.gp[0]),
                };
                // SAFETY: `ret` is writable for a scalar return.
                unsafe { *ret = value };
            }
            ReturnPass::Pieces(pieces) => {
                for piece in pieces {
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
            }
            // The target wrote the struct to `ret` itself.
            ReturnPass::Memory => {}
        }
    }
}

/// What a register holds for a scalar argument read from its slot, as the
/// trampolines leave it: 8- and 16-bit integers extended to 32 bits, 32-bit
/// values in the low half with the upper one clear, a buffer's `data`.
///
/// # Safety
///
/// A buffer's slot must hold null or the address of a valid view.
unsafe fn register_image(ty: Type, slot: u64) -> u64 {
    match ty {
        Type::Bool | Type::U8 => u64::from(slot as u8),
        Type::I8 => u64::from(slot as i8 as i32 as u32),
        Type::U16 => u64::from(slot as u16),
        Type::I16 => u64::from(slot as i16 as i32 as u32),
        Type::I32 | Type::U32 | Type::F32 => u64::from(slot as u32),
        Type::Buffer => {
            let view = slot as *const BufferView;
            if view.is_null() {
                0
            } else {
                // SAFETY: a buffer slot holds null or the address of a valid
                // view, by this function's contract.
                unsafe { (*view).data as u64 }
            }
        }
        _ => slot,
    }
}
