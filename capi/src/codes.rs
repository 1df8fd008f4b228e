//! The C API's codes: a `typedef` of a fixed-width integer for each, and
//! a `#define` per value. Values are explicit and never renumbered; new
//! ones are appended.
//!
//! They are integers rather than Rust enums on purpose: a C caller may
//! pass any integer where a `jitcall_abi` is expected, and a Rust enum
//! holding a value it does not define is undefined behaviour, where an
//! integer is checked (`JITCALL_E_INVALID_ARGUMENT`).

use std::ffi::c_char;

use jitcall_rs::{Abi, Fallback, JitUnavailable, Limits, Options, ReceiverKind, Tier};

use crate::error::Failure;

/// What a call of the C API came to: `JITCALL_OK`, or the kind of failure.
/// The optional `jitcall_error **error` parameter, where a function has
/// one, receives the details.
pub type jitcall_status = i32;

/// Success: the out-parameters were written.
pub const JITCALL_OK: jitcall_status = 0;
/// A pointer parameter that must not be NULL was NULL (a handle, a
/// string, an out-parameter, a target address, or `args`/`ret` of a call
/// that needs them). The message names the parameter.
pub const JITCALL_E_NULL_POINTER: jitcall_status = 1;
/// A handle of another kind than the parameter's (a `jitcall_library *`
/// cast to a `jitcall_function *`), or one already freed where that can
/// still be seen. The message names the parameter and what it held.
pub const JITCALL_E_INVALID_HANDLE: jitcall_status = 2;
/// An integer code out of its range (a `jitcall_abi` of 99), or unknown
/// flag bits.
pub const JITCALL_E_INVALID_ARGUMENT: jitcall_status = 3;
/// A string parameter that is not UTF-8; `jitcall_error_byte_offset`
/// gives the offset of the first byte that is not.
pub const JITCALL_E_INVALID_UTF8: jitcall_status = 4;
/// A malformed signature; `jitcall_error_byte_offset` (the text form,
/// malformed JSON) or `jitcall_error_json_path` (JSON of the wrong shape)
/// says where.
pub const JITCALL_E_PARSE: jitcall_status = 5;
/// The library could not be opened (`dlopen`'s message follows).
pub const JITCALL_E_OPEN: jitcall_status = 6;
/// The library has no such symbol (`dlsym`).
pub const JITCALL_E_SYMBOL: jitcall_status = 7;
/// The library was closed with `jitcall_library_close`: no binding or
/// lookup, and `jitcall_call_packed` reports it (the call returned zero
/// without reaching the library).
pub const JITCALL_E_LIBRARY_CLOSED: jitcall_status = 8;
/// A signature no tier can call: `void` as an argument, `buffer` as the
/// return type, too many arguments, or a variadic callback.
pub const JITCALL_E_UNSUPPORTED_SIGNATURE: jitcall_status = 9;
/// A calling convention this host cannot call: another instruction set's,
/// one libffi lacks when the JIT cannot be used, or a callback with one
/// other than the host's.
pub const JITCALL_E_ABI: jitcall_status = 10;
/// libffi could not prepare the call.
pub const JITCALL_E_LIBFFI: jitcall_status = 11;
/// An error this version has no code for; the message says what.
pub const JITCALL_E_OTHER: jitcall_status = 12;
/// A bug in jitcall: a Rust panic, caught at the C boundary. The message
/// carries the panic's.
pub const JITCALL_E_INTERNAL: jitcall_status = 13;

/// The tier a function's calls, or a callback's code, take.
pub type jitcall_tier = u32;

/// A trampoline of its own, specialised to the signature and target.
pub const JITCALL_TIER_JIT: jitcall_tier = 1;
/// A JIT stub shared by every function of the same shape (functions only).
pub const JITCALL_TIER_SHARED: jitcall_tier = 2;
/// Code compiled into the library at build time, for when the JIT cannot
/// or may not be used.
pub const JITCALL_TIER_BAKED: jitcall_tier = 3;
/// libffi.
pub const JITCALL_TIER_LIBFFI: jitcall_tier = 4;

/// Why a function or callback is not on a JIT tier.
pub type jitcall_reason = u32;

/// On `JITCALL_TIER_JIT` or `JITCALL_TIER_SHARED`: nothing fell back.
pub const JITCALL_REASON_NONE: jitcall_reason = 0;
/// The signature breaks a fast-call rule of the options' limits; the
/// tier's description names the rule.
pub const JITCALL_REASON_INELIGIBLE: jitcall_reason = 1;
/// `JITCALL_DISABLE_JIT` is set in the environment.
pub const JITCALL_REASON_JIT_DISABLED: jitcall_reason = 2;
/// jitcall has no emitter for this host's calling convention.
pub const JITCALL_REASON_NO_EMITTER: jitcall_reason = 3;
/// The process refused executable memory when jitcall first probed it (a
/// W^X policy such as `PR_SET_MDWE` or systemd's
/// `MemoryDenyWriteExecute`).
pub const JITCALL_REASON_JIT_REFUSED: jitcall_reason = 4;
/// This binding's own mapping was refused, after the probe had succeeded.
pub const JITCALL_REASON_MEMORY_REFUSED: jitcall_reason = 5;
/// The options forced it (`JITCALL_FORCE_LIBFFI`, `JITCALL_FORCE_AVOID_JIT`).
pub const JITCALL_REASON_FORCED: jitcall_reason = 6;

/// What a function's receiver entry is made of.
pub type jitcall_receiver_kind = u32;

/// No receiver entry: none was asked for, or the signature is not eligible.
pub const JITCALL_RECEIVER_NONE: jitcall_receiver_kind = 0;
/// The target itself: the entry would move nothing.
pub const JITCALL_RECEIVER_TARGET: jitcall_receiver_kind = 1;
/// A JIT trampoline of its own.
pub const JITCALL_RECEIVER_TRAMPOLINE: jitcall_receiver_kind = 2;
/// A static thunk to the baked receiver stub of the signature's shape.
pub const JITCALL_RECEIVER_THUNK_STUB: jitcall_receiver_kind = 3;
/// A static thunk to the generic receiver stub.
pub const JITCALL_RECEIVER_THUNK_GENERIC: jitcall_receiver_kind = 4;

/// The fast-call rules a binding is classified under.
pub type jitcall_limits = u32;

/// jitcall's own: up to 16 arguments, stack arguments included, any mix
/// of types, structs and variadic call shapes.
pub const JITCALL_LIMITS_DEFAULT: jitcall_limits = 0;
/// Node.js's: at most 8 arguments, all in registers, no structs, function
/// pointers or variadic shapes on the fast path.
pub const JITCALL_LIMITS_NODE: jitcall_limits = 1;

/// Which tier a binding is forced to, if any.
pub type jitcall_force = u32;

/// No forcing: the fastest tier the signature and the process allow.
pub const JITCALL_FORCE_NONE: jitcall_force = 0;
/// libffi for every call.
pub const JITCALL_FORCE_LIBFFI: jitcall_force = 1;
/// No JIT code: the code compiled in (`JITCALL_TIER_BAKED`), as a process
/// under a W^X policy gets.
pub const JITCALL_FORCE_AVOID_JIT: jitcall_force = 2;

/// The calling convention of the functions bound.
pub type jitcall_abi = u32;

/// The host's C convention.
pub const JITCALL_ABI_HOST: jitcall_abi = 0;
/// x86_64 System V.
pub const JITCALL_ABI_SYSV64: jitcall_abi = 1;
/// The Microsoft x64 convention (`__attribute__((ms_abi))`), on x86_64 hosts.
pub const JITCALL_ABI_WIN64: jitcall_abi = 2;
/// AArch64 AAPCS64 as Linux uses it.
pub const JITCALL_ABI_AAPCS64: jitcall_abi = 3;
/// Apple's arm64 variant of AAPCS64, on AArch64 hosts.
pub const JITCALL_ABI_APPLE_AARCH64: jitcall_abi = 4;

/// Flags of `jitcall_explain`, or-ed together.
pub type jitcall_explain_flags = u32;

/// Show the code of a function bound from a library, which starts with
/// the closed check.
pub const JITCALL_EXPLAIN_LIBRARY: jitcall_explain_flags = 1;

/// The name of a status code, such as `"JITCALL_E_PARSE"`: a static
/// string, never NULL (`"unknown jitcall_status"` for a value this version
/// does not define). Thread-safe.
#[no_mangle]
pub extern "C" fn jitcall_status_string(status: jitcall_status) -> *const c_char {
    let name: &'static std::ffi::CStr = match status {
        JITCALL_OK => c"JITCALL_OK",
        JITCALL_E_NULL_POINTER => c"JITCALL_E_NULL_POINTER",
        JITCALL_E_INVALID_HANDLE => c"JITCALL_E_INVALID_HANDLE",
        JITCALL_E_INVALID_ARGUMENT => c"JITCALL_E_INVALID_ARGUMENT",
        JITCALL_E_INVALID_UTF8 => c"JITCALL_E_INVALID_UTF8",
        JITCALL_E_PARSE => c"JITCALL_E_PARSE",
        JITCALL_E_OPEN => c"JITCALL_E_OPEN",
        JITCALL_E_SYMBOL => c"JITCALL_E_SYMBOL",
        JITCALL_E_LIBRARY_CLOSED => c"JITCALL_E_LIBRARY_CLOSED",
        JITCALL_E_UNSUPPORTED_SIGNATURE => c"JITCALL_E_UNSUPPORTED_SIGNATURE",
        JITCALL_E_ABI => c"JITCALL_E_ABI",
        JITCALL_E_LIBFFI => c"JITCALL_E_LIBFFI",
        JITCALL_E_OTHER => c"JITCALL_E_OTHER",
        JITCALL_E_INTERNAL => c"JITCALL_E_INTERNAL",
        _ => c"unknown jitcall_status",
    };
    name.as_ptr()
}

/// A tier as its code and the reason's.
pub(crate) fn tier_codes(tier: Tier) -> (jitcall_tier, jitcall_reason) {
    match tier {
        Tier::Jit => (JITCALL_TIER_JIT, JITCALL_REASON_NONE),
        Tier::Shared => (JITCALL_TIER_SHARED, JITCALL_REASON_NONE),
        Tier::Baked(why) => (JITCALL_TIER_BAKED, reason_code(why)),
        Tier::Libffi(why) => (JITCALL_TIER_LIBFFI, reason_code(why)),
    }
}

fn reason_code(why: Fallback) -> jitcall_reason {
    match why {
        Fallback::Ineligible(_) => JITCALL_REASON_INELIGIBLE,
        Fallback::JitUnavailable(JitUnavailable::DisabledByEnv) => JITCALL_REASON_JIT_DISABLED,
        Fallback::JitUnavailable(JitUnavailable::UnsupportedAbi) => JITCALL_REASON_NO_EMITTER,
        Fallback::JitUnavailable(JitUnavailable::Refused(_)) => JITCALL_REASON_JIT_REFUSED,
        Fallback::MemoryRefused(_) => JITCALL_REASON_MEMORY_REFUSED,
        Fallback::Forced => JITCALL_REASON_FORCED,
    }
}

pub(crate) fn receiver_kind_code(kind: Option<ReceiverKind>) -> jitcall_receiver_kind {
    match kind {
        None => JITCALL_RECEIVER_NONE,
        Some(ReceiverKind::Target) => JITCALL_RECEIVER_TARGET,
        Some(ReceiverKind::Trampoline) => JITCALL_RECEIVER_TRAMPOLINE,
        Some(ReceiverKind::ThunkStub) => JITCALL_RECEIVER_THUNK_STUB,
        Some(ReceiverKind::ThunkGeneric) => JITCALL_RECEIVER_THUNK_GENERIC,
    }
}

pub(crate) fn limits(code: jitcall_limits) -> Result<Limits, Failure> {
    match code {
        JITCALL_LIMITS_DEFAULT => Ok(Limits::default()),
        JITCALL_LIMITS_NODE => Ok(Limits::node()),
        _ => Err(Failure::out_of_range("limits", "jitcall_limits", code)),
    }
}

/// Sets `options`' forcing fields as `code` says.
pub(crate) fn force(options: &mut Options, code: jitcall_force) -> Result<(), Failure> {
    let (force_libffi, avoid_jit) = match code {
        JITCALL_FORCE_NONE => (false, false),
        JITCALL_FORCE_LIBFFI => (true, false),
        JITCALL_FORCE_AVOID_JIT => (false, true),
        _ => return Err(Failure::out_of_range("force", "jitcall_force", code)),
    };
    options.force_libffi = force_libffi;
    options.avoid_jit = avoid_jit;
    Ok(())
}

pub(crate) fn abi(code: jitcall_abi) -> Result<Option<Abi>, Failure> {
    match code {
        JITCALL_ABI_HOST => Ok(None),
        JITCALL_ABI_SYSV64 => Ok(Some(Abi::SysV64)),
        JITCALL_ABI_WIN64 => Ok(Some(Abi::Win64)),
        JITCALL_ABI_AAPCS64 => Ok(Some(Abi::Aapcs64)),
        JITCALL_ABI_APPLE_AARCH64 => Ok(Some(Abi::AppleAarch64)),
        _ => Err(Failure::out_of_range("abi", "jitcall_abi", code)),
    }
}
