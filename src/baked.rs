//! The baked tier: stubs compiled into the library's text at build time
//! (see `build.rs`), so that calls stay in specialised machine code where
//! no executable memory may be created.
//!
//! [`stub`] finds the stub baked for a signature's shape, if the baked set
//! has it ([`jitcall_emitters::baked`]); [`register_file`] is the one stub
//! that calls every other eligible shape through a register file.

use jitcall_emitters::baked::{self, RawReturn};
use jitcall_emitters::register_file::RegisterFileFn;
use jitcall_emitters::ShapeFn;

use crate::{Signature, Type};

include!(concat!(env!("OUT_DIR"), "/baked.rs"));

/// The stub baked for `sig`'s shape, with what the caller must do to its
/// return slot afterwards.
pub(crate) fn stub(sig: &Signature) -> Option<(ShapeFn, ReturnFix)> {
    let key = baked::key(sig)?;
    let index = KEYS.binary_search(&key.0).ok()?;
    let fix = ReturnFix::of(sig.ret)?;
    // SAFETY: the offset is where build.rs placed this key's stub, inside
    // the baked code, whose every stub is a ShapeFn (a shape stub of the
    // packed entry) that reads as much of `args` and `ret` as its shape.
    let stub =
        unsafe { std::mem::transmute::<*const u8, ShapeFn>(code().add(OFFSETS[index] as usize)) };
    Some((stub, fix))
}

/// The receiver stub baked for `sig`'s shape, if the receiver set has it:
/// code a static thunk jumps to with the target in the thunk register
/// (`Target::Register`), which then behaves as `sig`'s receiver entry.
pub(crate) fn receiver_stub(sig: &Signature) -> Option<*const u8> {
    let key = baked::receiver_key(sig, crate::Abi::host()?)?;
    let index = RECEIVER_KEYS.binary_search(&key.0).ok()?;
    // SAFETY: the offset is where build.rs placed this key's stub, inside
    // the baked code.
    Some(unsafe { code().add(RECEIVER_OFFSETS[index] as usize) })
}

/// The register-file stub, when the target has an emitter.
pub(crate) fn register_file() -> Option<RegisterFileFn> {
    let offset = REGISTER_FILE?;
    // SAFETY: build.rs placed the register-file stub at this offset of the
    // baked code.
    Some(unsafe { std::mem::transmute::<*const u8, RegisterFileFn>(code().add(offset)) })
}

/// What a baked stub's raw return needs to become the packed encoding:
/// the value shifted up by `shift` bits and back down, sign-extending or
/// not, which narrows it to its width (`bool` and narrow integers, 32-bit
/// integers, an `f32`'s bits). A shift of 0 leaves the slot alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ReturnFix {
    shift: u32,
    signed: bool,
}

impl ReturnFix {
    fn of(ret: Type) -> Option<ReturnFix> {
        RawReturn::of(ret)?;
        let (shift, signed) = match ret {
            Type::F32 => (32, false),
            ty => match ty.int_width() {
                Some((bits, signed)) if bits < 64 => (64 - bits, signed),
                _ => (0, false),
            },
        };
        Some(ReturnFix { shift, signed })
    }

    /// The packed encoding of a raw return value `raw`.
    #[inline]
    pub(crate) fn finish(self, raw: u64) -> u64 {
        // Shifts by 0 change nothing: no branch on the shift.
        let up = raw << self.shift;
        if self.signed {
            ((up as i64) >> self.shift) as u64
        } else {
            up >> self.shift
        }
    }

    /// The fix for a raw return of `ret`: narrow and 32-bit integers
    /// extended, an `f32` masked; `None` for a struct return.
    pub(crate) fn for_return(ret: Type) -> Option<ReturnFix> {
        ReturnFix::of(ret)
    }

    /// Fixes the return slot at `ret` after the stub's call.
    ///
    /// # Safety
    ///
    /// `ret` must be the slot the stub wrote, readable and writable,
    /// unless the return is `void` (whose shift is 0).
    #[inline]
    pub(crate) unsafe fn apply(self, ret: *mut u64) {
        if self.shift != 0 {
            // SAFETY: the caller's contract.
            unsafe {
                let up = *ret << self.shift;
                *ret = if self.signed {
                    ((up as i64) >> self.shift) as u64
                } else {
                    up >> self.shift
                };
            }
        }
    }
}

/// How many bytes of code the baked tier compiled into the library: the
/// stubs of the baked set and the register-file stub, for the target's
/// ABI (none for a target without an emitter).
pub fn baked_code_bytes() -> usize {
    CODE_BYTES
}

#[cfg(test)]
mod tests {
    use std::ffi::c_void;

    use jitcall_emitters::baked::{keys, BakedKey};
    use jitcall_emitters::register_file::{RegisterFile, ReturnRegisters};
    use jitcall_fixtures::c;

    use super::*;
    use crate::Abi;

    /// The code at each stub's offset, as long as the emitter's output.
    fn baked_bytes(offset: usize, len: usize) -> &'static [u8] {
        assert!(offset + len <= CODE_BYTES, "stub past the baked code");
        // SAFETY: the baked code is CODE_BYTES long, in the library's
        // text, which is readable.
        unsafe { std::slice::from_raw_parts(code().add(offset), len) }
    }

    #[test]
    fn the_compiled_in_code_is_what_the_emitters_emit_for_the_host() {
        let Some(abi) = Abi::host() else {
            assert_eq!(CODE_BYTES, 0, "a target without emitters bakes nothing");
            return;
        };
        let keys = keys();
        assert_eq!(KEYS.len(), keys.len());
        for (i, key) in keys.iter().enumerate() {
            assert_eq!(KEYS[i], key.0, "the key table is sorted as keys() is");
            let want = jitcall_emitters::baked::stub(*key, abi);
            let got = baked_bytes(OFFSETS[i] as usize, want.len());
            assert!(got == want.as_slice(), "stub {:?} differs", key.decode());
        }
        let receiver_keys = baked::receiver_keys(abi);
        assert_eq!(RECEIVER_KEYS.len(), receiver_keys.len());
        for (i, key) in receiver_keys.iter().enumerate() {
            assert_eq!(RECEIVER_KEYS[i], key.0, "the receiver keys are sorted");
            let want = baked::receiver_stub(*key, abi);
            let got = baked_bytes(RECEIVER_OFFSETS[i] as usize, want.len());
            assert!(
                got == want.as_slice(),
                "receiver stub {:?} differs",
                key.decode()
            );
        }
        let want = jitcall_emitters::register_file::emit(abi).expect("the host ABI has one");
        let got = baked_bytes(REGISTER_FILE.expect("a register-file stub"), want.len());
        assert!(got == want.as_slice(), "the register-file stub differs");
    }

    /// A stub for every baked key with its argument types.
    fn every_stub() -> Vec<(BakedKey, ShapeFn)> {
        keys()
            .into_iter()
            .map(|key| {
                let (args, raw) = key.decode();
                let ret = match raw {
                    RawReturn::Void => Type::Void,
                    RawReturn::Int => Type::U64,
                    RawReturn::Float => Type::F64,
                };
                let sig = Signature::new(args, ret);
                let (stub, _) = stub(&sig).expect("a baked stub for every key");
                (key, stub)
            })
            .collect()
    }

    #[test]
    fn every_baked_stub_keeps_callee_saved_registers_and_aligns_the_stack() {
        let slots = [0u64; 6];
        let mut checked = 0;
        for (key, stub) in every_stub() {
            let (_, raw) = key.decode();
            let mut ret = u64::MAX;
            // SAFETY: the stub reads at most six slots (a null buffer
            // among them) and writes one
            // return slot; jf_entry_sp_mod16 ignores its arguments and
            // returns the stack pointer's remainder in the integer register.
            let clobbered = unsafe {
                c::jf_call_preserving(
                    stub as *const c_void,
                    slots.as_ptr().cast(),
                    std::ptr::addr_of_mut!(ret).cast(),
                    c::jf_entry_sp_mod16 as *const c_void,
                )
            };
            assert_eq!(
                clobbered,
                0,
                "{:?}: callee-saved registers changed",
                key.decode()
            );
            match raw {
                RawReturn::Int => assert_eq!(ret, 0, "{:?}: sp % 16 at the call", key.decode()),
                RawReturn::Void => assert_eq!(ret, u64::MAX, "{:?}: void wrote", key.decode()),
                RawReturn::Float => {}
            }
            checked += 1;
        }
        assert_eq!(checked, keys().len());
    }

    #[test]
    fn the_register_file_stub_keeps_callee_saved_registers_and_aligns_the_stack() {
        let stub = register_file().expect("a register-file stub");
        let words: Vec<u64> = (0..64).collect();
        // Even and odd block sizes, since the stub pads the block to keep
        // the stack aligned.
        for stack_words in 0..=words.len() as u64 {
            let file = RegisterFile {
                gp: [0; 8],
                fp: [0; 8],
                stack: words.as_ptr(),
                stack_words,
                extra: 0,
            };
            let mut ret = ReturnRegisters {
                gp: [u64::MAX; 2],
                fp: [0; 4],
            };
            // SAFETY: the file's block holds `stack_words` readable words;
            // jf_entry_sp_mod16 ignores its arguments.
            let clobbered = unsafe {
                c::jf_call_preserving(
                    stub as *const c_void,
                    std::ptr::addr_of!(file).cast(),
                    c::jf_entry_sp_mod16 as *const c_void,
                    std::ptr::addr_of_mut!(ret).cast(),
                )
            };
            assert_eq!(
                clobbered, 0,
                "{stack_words} stack words: callee-saved registers changed"
            );
            assert_eq!(
                ret.gp[0], 0,
                "{stack_words} stack words: sp % 16 at the call"
            );
        }
    }
}
