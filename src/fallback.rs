//! The libffi tier: one prepared call interface per function.

use std::ffi::c_void;

use libffi::middle::{Cif, Type as FfiType};

use crate::value::widen;
use crate::{Abi, BufferView, Error, Fallback, Result, Signature, Type};

/// A libffi call interface prepared for one signature.
pub(crate) struct LibffiCall {
    cif: Cif,
    args: Box<[Type]>,
    ret: Type,
}

// SAFETY: the Cif is built once and only read afterwards (`ffi_call` takes
// it by pointer but does not modify it), so it may be shared and sent.
unsafe impl Send for LibffiCall {}
// SAFETY: as for Send.
unsafe impl Sync for LibffiCall {}

/// The libffi type of `ty`.
pub(crate) fn ffi_type(ty: Type) -> FfiType {
    match ty {
        Type::Void => FfiType::void(),
        Type::Bool | Type::U8 => FfiType::u8(),
        Type::I8 => FfiType::i8(),
        Type::I16 => FfiType::i16(),
        Type::U16 => FfiType::u16(),
        Type::I32 => FfiType::i32(),
        Type::U32 => FfiType::u32(),
        Type::I64 => FfiType::i64(),
        Type::U64 => FfiType::u64(),
        Type::F32 => FfiType::f32(),
        Type::F64 => FfiType::f64(),
        Type::Pointer | Type::Buffer | Type::Function => FfiType::pointer(),
        // Fields keep their own types: libffi lays the struct out and
        // classifies it for the ABI.
        Type::Struct(s) => FfiType::structure(s.fields().iter().map(|&field| ffi_type(field))),
    }
}

/// Whether narrow integer arguments go to libffi as 32-bit values already
/// extended. libffi extends them in registers but stores them in stack slots
/// at their natural width, leaving the upper bits of the slot's low 32 to
/// chance, while clang-compiled callees rely on the caller extending them to
/// 32 bits (the JIT tier always does). Apple's arm64 ABI packs stack
/// arguments at their natural size, so there they keep their own type.
const EXTEND_NARROW: bool = !cfg!(target_vendor = "apple");

/// The type an argument of `ty` is handed to libffi as: narrow integers as
/// 32-bit ones where [`EXTEND_NARROW`] says so, everything else as itself.
fn passed_as(ty: Type) -> Type {
    match ty.int_width() {
        Some((8 | 16, true)) if EXTEND_NARROW => Type::I32,
        Some((8 | 16, false)) if EXTEND_NARROW => Type::U32,
        _ => ty,
    }
}

/// Where a value of `ty` starts inside its 8-byte slot.
const fn slot_offset(ty: Type) -> usize {
    let size = match ty {
        Type::Bool | Type::I8 | Type::U8 => 1,
        Type::I16 | Type::U16 => 2,
        Type::I32 | Type::U32 | Type::F32 => 4,
        _ => 8,
    };
    if cfg!(target_endian = "big") {
        8 - size
    } else {
        0
    }
}

/// A libffi calling convention (`ffi_abi`).
#[derive(Clone, Copy)]
struct FfiAbi(libffi::middle::FfiAbi);

impl Default for FfiAbi {
    /// The host's C ABI.
    fn default() -> FfiAbi {
        FfiAbi(libffi::middle::ffi_abi_FFI_DEFAULT_ABI)
    }
}

/// libffi's convention for `abi` (`None`: the host's), where libffi on this
/// host has it: the host's C ABI, and Win64 on x86_64 Unix hosts (libffi's
/// `FFI_WIN64`, which calls `ms_abi` functions). libffi builds Apple's
/// arm64 rules only into Apple's own builds, so an AArch64 Linux host has
/// no libffi for `Abi::AppleAarch64`.
fn libffi_abi(abi: Option<Abi>) -> Option<FfiAbi> {
    match abi {
        None => Some(FfiAbi::default()),
        Some(abi) if Some(abi) == Abi::host() => Some(FfiAbi::default()),
        #[cfg(all(target_arch = "x86_64", unix))]
        Some(Abi::Win64) => Some(FfiAbi(libffi::raw::ffi_abi_FFI_WIN64)),
        Some(_) => None,
    }
}

/// Arguments that fit here are marshalled without allocating.
const INLINE_ARGS: usize = 16;

impl LibffiCall {
    /// Prepares the call interface for `sig` with the host's C ABI:
    /// `ffi_prep_cif_var` for a variadic call shape, `ffi_prep_cif`
    /// otherwise.
    ///
    /// # Errors
    ///
    /// [`Error::Libffi`] when libffi rejects the signature.
    pub(crate) fn new(sig: &Signature) -> Result<LibffiCall> {
        LibffiCall::with_abi(sig, FfiAbi::default())
    }

    /// Prepares the call interface for `sig` with the calling convention
    /// `abi` ([`Options::abi`](crate::Options::abi), `None` for the
    /// host's).
    ///
    /// # Errors
    ///
    /// [`Error::NoCallPath`] when libffi on this host has no such ABI
    /// ([`libffi_abi`]); [`Error::Libffi`] when it rejects the signature.
    pub(crate) fn for_abi(sig: &Signature, abi: Option<Abi>, why: Fallback) -> Result<LibffiCall> {
        match (abi, libffi_abi(abi)) {
            (_, Some(ffi)) => LibffiCall::with_abi(sig, ffi),
            (Some(abi), None) => Err(Error::NoCallPath { abi, why }),
            (None, None) => unreachable!("libffi has the host's C ABI"),
        }
    }

    fn with_abi(sig: &Signature, ffi: FfiAbi) -> Result<LibffiCall> {
        let args = sig.args.iter().map(|&t| ffi_type(passed_as(t)));
        let ret = ffi_type(sig.ret);
        let cif = match sig.variadic {
            Some(fixed) => Cif::try_new_variadic_with_abi(args, fixed, ret, ffi.0),
            None => Cif::try_new_with_abi(args, ret, ffi.0),
        }
        .map_err(|e| Error::Libffi(format!("{e:?}")))?;
        Ok(LibffiCall {
            cif,
            args: sig.args.clone().into_boxed_slice(),
            ret: sig.ret,
        })
    }

    /// Calls `target` with packed arguments, storing the widened return
    /// (a struct return: its bytes).
    ///
    /// # Safety
    ///
    /// `target` must be a function of this call's signature; `args` must
    /// point to one readable slot per argument (a buffer slot holding null
    /// or a valid `BufferView` address, a struct slot the address of the
    /// struct's bytes) and `ret` to a writable slot unless the return type
    /// is `void` (for a struct, `max(8, size)` writable bytes).
    pub(crate) unsafe fn call_packed(
        &self,
        target: *const c_void,
        args: *const u64,
        ret: *mut u64,
    ) {
        let n = self.args.len();
        if n <= INLINE_ARGS {
            let mut data = [0u64; INLINE_ARGS];
            let mut pointers = [std::ptr::null_mut(); INLINE_ARGS];
            // SAFETY: forwarded from this function's contract; the arrays
            // hold `n` entries.
            unsafe { self.call_with(target, args, ret, &mut data[..n], &mut pointers[..n]) }
        } else {
            let mut data = vec![0u64; n];
            let mut pointers = vec![std::ptr::null_mut(); n];
            // SAFETY: as above, with `n` entries allocated.
            unsafe { self.call_with(target, args, ret, &mut data, &mut pointers) }
        }
    }

    /// # Safety
    ///
    /// As [`call_packed`](Self::call_packed); `data` and `pointers` hold one
    /// entry per argument.
    unsafe fn call_with(
        &self,
        target: *const c_void,
        args: *const u64,
        ret: *mut u64,
        data: &mut [u64],
        pointers: &mut [*mut c_void],
    ) {
        for (i, &ty) in self.args.iter().enumerate() {
            // SAFETY: the caller provides one readable slot per argument.
            let slot = unsafe { args.add(i) };
            let passed = passed_as(ty);
            pointers[i] = if passed != ty {
                // SAFETY: the caller provides one readable slot per argument.
                data[i] = widen(ty, unsafe { *slot });
                // SAFETY: the offset stays within `data[i]`.
                unsafe {
                    (&mut data[i] as *mut u64)
                        .cast::<u8>()
                        .add(slot_offset(passed)) as *mut c_void
                }
            } else if ty.as_struct().is_some() {
                // libffi reads the struct's bytes where the slot points.
                // SAFETY: the caller provides one readable slot per argument.
                unsafe { *slot as *mut c_void }
            } else if ty == Type::Buffer {
                // SAFETY: a buffer slot holds null or a valid view address.
                let view = unsafe { *slot } as *const BufferView;
                data[i] = if view.is_null() {
                    0
                } else {
                    // SAFETY: non-null views are valid by the contract.
                    unsafe { (*view).data as u64 }
                };
                &mut data[i] as *mut u64 as *mut c_void
            } else {
                // SAFETY: the offset stays within the 8-byte slot.
                unsafe { slot.cast::<u8>().add(slot_offset(ty)) as *mut c_void }
            };
        }
        // libffi widens integer returns to a full register (ffi_arg), and
        // writes a struct's bytes, exactly its size, where it is told.
        let mut raw: u64 = 0;
        let rvalue = if self.ret.as_struct().is_some() {
            ret.cast::<c_void>()
        } else {
            &mut raw as *mut u64 as *mut c_void
        };
        // SAFETY: the cif matches the signature, `target` has it by the
        // caller's contract, every argument pointer addresses a value of its
        // declared type, and `rvalue` is a register-sized return buffer, or
        // the caller's buffer of at least the struct's size.
        unsafe {
            libffi::raw::ffi_call(
                self.cif.as_raw_ptr(),
                Some(std::mem::transmute::<*const c_void, unsafe extern "C" fn()>(target)),
                rvalue,
                pointers.as_mut_ptr(),
            );
        }
        if self.ret != Type::Void && self.ret.as_struct().is_none() {
            // SAFETY: `ret` is writable for non-void returns.
            unsafe { *ret = widen(self.ret, raw) };
        }
    }
}
