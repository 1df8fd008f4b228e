//! `jitcall_function`: binding native functions, calling them, their
//! tier and raw entries.

use std::ffi::{c_char, c_int, c_void, CString};

use jitcall_rs::{Function, Library, Signature, Tier};

use crate::codes::{self, jitcall_reason, jitcall_receiver_kind, jitcall_status, jitcall_tier};
use crate::error::{c_string, catch, jitcall_error, report, status, Failure};
use crate::handle::{self, out_param, Kind};
use crate::library::jitcall_library;
use crate::options::{self, jitcall_options};
use crate::signature::{jitcall_signature, return_bytes};

/// A native function bound to a signature, on the tier
/// `jitcall_function_tier` names. Immutable: any thread may call it, as
/// often and as many at once as the target allows. Its entries live as
/// long as it does. Free it with `jitcall_function_free`, once no call
/// through it or its entries is under way.
pub struct jitcall_function {
    _opaque: [u8; 0],
}

/// The packed entry of a function on `JITCALL_TIER_JIT`: `args` points to
/// one 64-bit slot per argument, and the return value is stored to `*ret`
/// as `jitcall_call_packed` stores it.
pub type jitcall_packed_fn = Option<unsafe extern "C" fn(args: *const u64, ret: *mut u64)>;

/// A tier, its reason, and the tier's description as C reads them.
pub(crate) struct TierInfo {
    tier: jitcall_tier,
    reason: jitcall_reason,
    text: CString,
}

impl TierInfo {
    pub fn new(tier: Tier) -> TierInfo {
        let (code, reason) = codes::tier_codes(tier);
        TierInfo {
            tier: code,
            reason,
            text: c_string(&tier.to_string()),
        }
    }

    /// Writes the tier to `*tier`, and the reason and description where
    /// their pointers are not NULL.
    ///
    /// # Safety
    ///
    /// `tier` must be writable and not NULL; `reason` and `description`
    /// NULL or writable. The description is borrowed from `self`.
    pub unsafe fn write(
        &self,
        tier: *mut jitcall_tier,
        reason: *mut jitcall_reason,
        description: *mut *const c_char,
    ) {
        // SAFETY: `tier` is writable, `reason` and `description` NULL or
        // writable, as the caller promised.
        unsafe {
            tier.write(self.tier);
            if !reason.is_null() {
                reason.write(self.reason);
            }
            if !description.is_null() {
                description.write(self.text.as_ptr());
            }
        }
    }
}

/// What a `jitcall_function` holds.
pub(crate) struct BoundFunction {
    function: Function,
    /// The library it was bound from, whose closing `jitcall_call_packed`
    /// reports.
    library: Option<Library>,
    /// Whether `jitcall_call_packed` needs `args` and `ret`.
    needs_args: bool,
    needs_ret: bool,
    tier: TierInfo,
}

impl Kind for BoundFunction {
    const NAME: &'static str = "jitcall_function";
    const TAG: u64 = handle::tag(b"function");
    type C = jitcall_function;
}

impl BoundFunction {
    fn new(function: Function, library: Option<&Library>) -> BoundFunction {
        let sig = function.signature();
        BoundFunction {
            needs_args: !sig.args.is_empty(),
            needs_ret: return_bytes(sig.ret) > 0,
            tier: TierInfo::new(function.tier()),
            library: library.cloned(),
            function,
        }
    }
}

/// The signatures of a batch's `count` entries at `signatures`.
///
/// # Safety
///
/// `signatures` must be NULL or point to `count` pointers, each NULL or a
/// live handle of this API.
unsafe fn batch_signatures<'a>(
    signatures: *const *const jitcall_signature,
    count: usize,
) -> Result<Vec<&'a Signature>, Failure> {
    if count == 0 {
        return Ok(Vec::new());
    }
    if signatures.is_null() {
        return Err(Failure::null("signatures"));
    }
    (0..count)
        .map(|i| {
            // SAFETY: `signatures` points to `count` pointers, each NULL or
            // a live handle.
            unsafe {
                let sig = signatures.add(i).read();
                handle::borrow::<Signature>(sig, &format!("signatures[{i}]"))
            }
        })
        .collect()
}

/// Hands `functions` to C: a handle each, written from `out` on.
///
/// # Safety
///
/// `out` must be writable for `functions.len()` pointers.
unsafe fn hand_out(
    functions: Vec<Function>,
    library: Option<&Library>,
    out: *mut *mut jitcall_function,
) {
    for (i, function) in functions.into_iter().enumerate() {
        // SAFETY: `out` holds room for every function, as the caller
        // promised.
        unsafe {
            out.add(i)
                .write(handle::into_c(BoundFunction::new(function, library)))
        };
    }
}

/// Binds symbol `name` of `library` to `signature`, with `options` (NULL
/// for the defaults): `*function` receives a new handle the caller owns.
///
/// Binding is safe; calling is where the caller promises that `signature`
/// is the symbol's real one. Borrows every argument: the signature and
/// options may be freed afterwards, and the library handle too (the
/// function keeps the library loaded). Errors: `JITCALL_E_SYMBOL`,
/// `JITCALL_E_LIBRARY_CLOSED`, `JITCALL_E_UNSUPPORTED_SIGNATURE`,
/// `JITCALL_E_ABI`, `JITCALL_E_LIBFFI`. Thread-safe.
///
/// # Safety
///
/// `library`, `signature` and `options` must each be NULL or a live
/// handle of this API (`library` and `signature` must not be NULL, which
/// is an error); `name` NULL or a NUL-terminated string; `function` NULL
/// or writable; `error` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn jitcall_function_bind(
    library: *const jitcall_library,
    name: *const c_char,
    signature: *const jitcall_signature,
    options: *const jitcall_options,
    function: *mut *mut jitcall_function,
    error: *mut *mut jitcall_error,
) -> jitcall_status {
    let outcome = catch(|| {
        let out = out_param(function, "function")?;
        // SAFETY: each is NULL or a live handle, or a NUL-terminated string.
        let (library, name, sig, options) = unsafe {
            (
                handle::borrow::<Library>(library, "library")?,
                handle::text(name, "name")?,
                handle::borrow::<Signature>(signature, "signature")?,
                options::read(options)?,
            )
        };
        let bound = library.function_with_options(name, sig, &options)?;
        // SAFETY: `out` is writable for one pointer.
        unsafe { hand_out(vec![bound], Some(library), out) };
        Ok(())
    });
    // SAFETY: `error` is NULL or writable, as the caller promised.
    unsafe { report(outcome, error) }
}

/// Binds the function at `address` to `signature`, with `options` (NULL
/// for the defaults): `*function` receives a new handle the caller owns.
/// With a `library`, the function is taken as one of that library's (a
/// `dlvsym` result, a table the library hands out): it keeps the library
/// loaded and stops reaching it once the library is closed. With a NULL
/// `library` it is any function (one of the caller's own). A NULL
/// `address` is `JITCALL_E_NULL_POINTER`; other errors as for
/// `jitcall_function_bind`. Borrows every argument. Thread-safe.
///
/// # Safety
///
/// `address` must be a function of exactly this signature, in the
/// options' calling convention (the host's C one by default), valid for
/// as long as the returned function and its entries are used (or as long
/// as `library` is loaded). `library` and `options` must be NULL or live
/// handles of this API, `signature` NULL or one; `function` NULL or
/// writable; `error` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn jitcall_function_bind_address(
    library: *const jitcall_library,
    address: *const c_void,
    signature: *const jitcall_signature,
    options: *const jitcall_options,
    function: *mut *mut jitcall_function,
    error: *mut *mut jitcall_error,
) -> jitcall_status {
    let outcome = catch(|| {
        let out = out_param(function, "function")?;
        // SAFETY: each is NULL or a live handle.
        let (sig, options) = unsafe {
            (
                handle::borrow::<Signature>(signature, "signature")?,
                options::read(options)?,
            )
        };
        if address.is_null() {
            return Err(Failure::null("address"));
        }
        let library = if library.is_null() {
            None
        } else {
            // SAFETY: `library` is a live handle.
            Some(unsafe { handle::borrow::<Library>(library, "library")? })
        };
        // SAFETY: `address` is a function of this signature and
        // convention, valid while the function is used, as the caller
        // promised.
        let bound = unsafe {
            match library {
                Some(library) => library.function_at(address, sig, &options)?,
                None => Function::with_options(address, sig, &options)?,
            }
        };
        // SAFETY: `out` is writable for one pointer.
        unsafe { hand_out(vec![bound], library, out) };
        Ok(())
    });
    // SAFETY: `error` is NULL or writable, as the caller promised.
    unsafe { report(outcome, error) }
}

/// Binds `count` symbols of `library` at once, `names[i]` to
/// `signatures[i]`, all with `options` (NULL for the defaults), their
/// trampolines in one mapping (each function gets one of its own,
/// `JITCALL_TIER_JIT`, where the JIT is available): what a runtime does with a library's symbol table.
/// `functions[i]` receives a new handle for each, the caller owning (and
/// freeing) each. The first error fails the whole batch and writes no
/// handle. `count` 0 binds nothing (the arrays may then be NULL).
/// Borrows every argument. Thread-safe.
///
/// # Safety
///
/// `library` and `options` must be NULL or live handles of this API;
/// `names` NULL or `count` pointers, each NULL or a NUL-terminated string;
/// `signatures` NULL or `count` pointers, each NULL or a live handle of
/// this API; `functions` NULL or writable for `count` pointers; `error`
/// NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn jitcall_function_bind_batch(
    library: *const jitcall_library,
    names: *const *const c_char,
    signatures: *const *const jitcall_signature,
    count: usize,
    options: *const jitcall_options,
    functions: *mut *mut jitcall_function,
    error: *mut *mut jitcall_error,
) -> jitcall_status {
    let outcome = catch(|| {
        let out = out_param(functions, "functions")?;
        // SAFETY: `library` and `options` are NULL or live handles.
        let (library, options) = unsafe {
            (
                handle::borrow::<Library>(library, "library")?,
                options::read(options)?,
            )
        };
        if count > 0 && names.is_null() {
            return Err(Failure::null("names"));
        }
        let names = (0..count)
            .map(|i| {
                // SAFETY: `names` points to `count` pointers, each NULL or
                // a NUL-terminated string.
                unsafe { handle::text(names.add(i).read(), &format!("names[{i}]")) }
            })
            .collect::<Result<Vec<&str>, Failure>>()?;
        // SAFETY: `signatures` is NULL or `count` pointers, each NULL or a
        // live handle.
        let sigs = unsafe { batch_signatures(signatures, count)? };
        let items: Vec<(&str, &Signature)> = names.into_iter().zip(sigs).collect();
        let bound = library.functions(&items, &options)?;
        // SAFETY: `out` is writable for `count` pointers.
        unsafe { hand_out(bound, Some(library), out) };
        Ok(())
    });
    // SAFETY: `error` is NULL or writable, as the caller promised.
    unsafe { report(outcome, error) }
}

/// Binds `count` functions given by address at once, `addresses[i]` to
/// `signatures[i]`, as `jitcall_function_bind_address` with a NULL
/// library does, their trampolines in one mapping. `functions[i]`
/// receives a new handle for each; the first error fails the whole batch
/// and writes no handle. Borrows every argument. Thread-safe.
///
/// # Safety
///
/// Each `addresses[i]` must be a function of exactly `signatures[i]`, as
/// for `jitcall_function_bind_address`. `addresses` and `signatures` must
/// be NULL or `count` pointers, `options` NULL or a live handle of this
/// API; `functions` NULL or writable for `count` pointers; `error` NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn jitcall_function_bind_batch_address(
    addresses: *const *const c_void,
    signatures: *const *const jitcall_signature,
    count: usize,
    options: *const jitcall_options,
    functions: *mut *mut jitcall_function,
    error: *mut *mut jitcall_error,
) -> jitcall_status {
    let outcome = catch(|| {
        let out = out_param(functions, "functions")?;
        // SAFETY: `options` is NULL or a live handle.
        let options = unsafe { options::read(options)? };
        if count > 0 && addresses.is_null() {
            return Err(Failure::null("addresses"));
        }
        // SAFETY: `addresses` points to `count` pointers.
        let addresses: Vec<*const c_void> = (0..count)
            .map(|i| unsafe { addresses.add(i).read() })
            .collect();
        if let Some(i) = addresses.iter().position(|a| a.is_null()) {
            return Err(Failure::null(&format!("addresses[{i}]")));
        }
        // SAFETY: `signatures` is NULL or `count` pointers, each NULL or a
        // live handle.
        let sigs = unsafe { batch_signatures(signatures, count)? };
        let items: Vec<(*const c_void, &Signature)> = addresses.into_iter().zip(sigs).collect();
        // SAFETY: each address is a function of its signature, as the
        // caller promised.
        let bound = unsafe { Function::batch(&items, &options)? };
        // SAFETY: `out` is writable for `count` pointers.
        unsafe { hand_out(bound, None, out) };
        Ok(())
    });
    // SAFETY: `error` is NULL or writable, as the caller promised.
    unsafe { report(outcome, error) }
}

/// Calls `function` with packed arguments: slot `i` of `args` holds
/// argument `i` in its low bits (an integer at its width, a `float`'s bits
/// in the low 32, a `double`'s bits, a pointer; a `buffer` as the address
/// of a `{ void *data; size_t len; }`; a struct as the address of its
/// bytes). The return value is stored to `*ret`: a scalar sign- or
/// zero-extended to 64 bits (a `float`'s bits in the low 32), a struct as
/// its bytes from `ret` on (`jitcall_signature_return_size` bytes), and
/// nothing for `void`. The same on every tier.
///
/// `args` may be NULL when the signature has no argument, and `ret` when
/// it returns `void`; otherwise NULL is `JITCALL_E_NULL_POINTER`, and
/// nothing is called. Once the function's library is closed the target is
/// not called: the library's closed-call handler runs, `*ret` receives
/// zero, and the status is `JITCALL_E_LIBRARY_CLOSED` (a close racing the
/// call may let a call already past the check complete, and report
/// `JITCALL_OK`). No `jitcall_error`, so that the call path allocates
/// nothing. Thread-safe.
///
/// # Safety
///
/// `function` must be NULL or a live handle of this API whose signature
/// is its target's real one. `args` must point to one readable slot per
/// argument, whose values the target accepts (pointers it reads valid);
/// `ret` to writable, 8-byte aligned room for the return.
#[no_mangle]
pub unsafe extern "C" fn jitcall_call_packed(
    function: *const jitcall_function,
    args: *const u64,
    ret: *mut u64,
) -> jitcall_status {
    status(catch(|| {
        // SAFETY: `function` is NULL or a live handle.
        let bound = unsafe { handle::borrow::<BoundFunction>(function, "function")? };
        if bound.needs_args && args.is_null() {
            return Err(Failure::null("args"));
        }
        if bound.needs_ret && ret.is_null() {
            return Err(Failure::null("ret"));
        }
        // Once closed, a library stays closed: a call that sees it closed
        // here is refused by `call_packed`'s own check.
        let closed = bound.library.as_ref().is_some_and(Library::is_closed);
        // SAFETY: the signature is the target's, `args` holds a slot per
        // argument and `ret` room for the return, as the caller promised.
        unsafe { bound.function.call_packed(args, ret) };
        if closed {
            return Err(Failure::closed());
        }
        Ok(())
    }))
}

/// The `errno` the last call on this thread of a function bound with
/// `jitcall_options_set_capture_errno` left, captured right after its
/// target returned: what a runtime reports after its own code ran in
/// between. 0 before any such call. Per thread.
#[no_mangle]
pub extern "C" fn jitcall_last_errno() -> c_int {
    // A thread's value cannot be read while the thread is being torn
    // down: none was captured on it then that anything could still read.
    std::panic::catch_unwind(jitcall_rs::last_errno).unwrap_or(0)
}

/// The tier `function`'s calls take: `*tier` receives its code, and
/// `*reason` (where `reason` is not NULL) why it is not a JIT tier
/// (`JITCALL_REASON_NONE` on one), and `*description` (where not NULL) a
/// line such as `"JIT"`, `"shared JIT stub"` or `"libffi (ineligible:
/// GpPressure: …)"`, borrowed: valid while `function` lives. Thread-safe.
///
/// # Safety
///
/// `function` must be NULL or a live handle of this API; `tier` NULL or
/// writable; `reason` and `description` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn jitcall_function_tier(
    function: *const jitcall_function,
    tier: *mut jitcall_tier,
    reason: *mut jitcall_reason,
    description: *mut *const c_char,
) -> jitcall_status {
    status(catch(|| {
        let tier = out_param(tier, "tier")?;
        // SAFETY: `function` is NULL or a live handle.
        let bound = unsafe { handle::borrow::<BoundFunction>(function, "function")? };
        // SAFETY: `tier` is writable and not NULL, the others NULL or
        // writable; the description lives as long as the handle.
        unsafe { bound.tier.write(tier, reason, description) };
        Ok(())
    }))
}

/// The packed entry of a function on `JITCALL_TIER_JIT` (bound in a batch,
/// with a receiver entry, or with `jitcall_options_set_specialise`), to
/// call without `jitcall_call_packed`'s checks; NULL on every other tier.
/// Written to `*entry`; valid while `function` lives. It captures no
/// `errno`. For a function of `JITCALL_ABI_WIN64` it is a function of that
/// convention: call it as `void (__attribute__((ms_abi)) *)(const uint64_t
/// *, uint64_t *)`. Once the library is closed it returns zero without
/// reaching it. Thread-safe.
///
/// # Safety
///
/// `function` must be NULL or a live handle of this API; `entry` NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn jitcall_function_jit_entry(
    function: *const jitcall_function,
    entry: *mut jitcall_packed_fn,
) -> jitcall_status {
    status(catch(|| {
        let out = out_param(entry, "entry")?;
        // SAFETY: `function` is NULL or a live handle.
        let bound = unsafe { handle::borrow::<BoundFunction>(function, "function")? };
        // SAFETY: the JIT tier's packed entry has `jitcall_packed_fn`'s
        // parameters (in the binding's convention, which the header tells
        // callers to cast to); an absent one is NULL. `out` is writable.
        unsafe {
            let packed = bound.function.jit_entry().map(|p| {
                std::mem::transmute::<*const c_void, unsafe extern "C" fn(*const u64, *mut u64)>(p)
            });
            out.write(packed);
        }
        Ok(())
    }))
}

/// The receiver entry of a function bound with
/// `jitcall_options_set_receiver_entry`, when its signature is eligible
/// for one; NULL otherwise. Written to `*entry`, and what it is made of to
/// `*kind` where `kind` is not NULL (`JITCALL_RECEIVER_NONE` for none).
/// Valid while `function` lives.
///
/// It is a native function of the binding's convention taking a receiver
/// first, which it ignores, then the signature's arguments, and returning
/// its return type. Cast it to the matching function pointer type: the
/// caller passes `int8_t` and `int16_t` arguments as `int32_t`, and
/// `uint8_t`, `uint16_t` and `bool` ones as `uint32_t`, widened, and gets
/// those returns back in the same 32-bit types; a `buffer` is passed as a
/// pointer to its `{ data, len }`; other types are themselves. Once the
/// library is closed it returns zero without reaching it. Thread-safe.
///
/// # Safety
///
/// `function` must be NULL or a live handle of this API; `entry` NULL or
/// writable; `kind` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn jitcall_function_receiver_entry(
    function: *const jitcall_function,
    entry: *mut *const c_void,
    kind: *mut jitcall_receiver_kind,
) -> jitcall_status {
    status(catch(|| {
        let out = out_param(entry, "entry")?;
        // SAFETY: `function` is NULL or a live handle.
        let bound = unsafe { handle::borrow::<BoundFunction>(function, "function")? };
        let receiver = bound.function.receiver_entry();
        // SAFETY: `out` is writable and not NULL, `kind` NULL or writable.
        unsafe {
            out.write(receiver.unwrap_or(std::ptr::null()));
            if !kind.is_null() {
                kind.write(codes::receiver_kind_code(bound.function.receiver_kind()));
            }
        }
        Ok(())
    }))
}

/// The address of the function bound (what a closed-call handler
/// receives): written to `*target`. Thread-safe.
///
/// # Safety
///
/// `function` must be NULL or a live handle of this API; `target` NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn jitcall_function_target(
    function: *const jitcall_function,
    target: *mut *const c_void,
) -> jitcall_status {
    status(catch(|| {
        let out = out_param(target, "target")?;
        // SAFETY: `function` is NULL or a live handle.
        let bound = unsafe { handle::borrow::<BoundFunction>(function, "function")? };
        // SAFETY: `out` is writable and not NULL.
        unsafe { out.write(bound.function.target()) };
        Ok(())
    }))
}

/// Frees `function`: its trampolines are unmapped once no other function
/// shares their mapping, and its library may be unloaded once closed or
/// unreferenced. NULL is accepted and does nothing; another kind of handle
/// is `JITCALL_E_INVALID_HANDLE`, and freed nothing.
///
/// # Safety
///
/// `function` must be NULL or a live handle of this API, with no call
/// through it or its entries under way, not used afterwards (its entries
/// included).
#[no_mangle]
pub unsafe extern "C" fn jitcall_function_free(function: *mut jitcall_function) -> jitcall_status {
    // SAFETY: `function` is NULL or a live handle no one uses afterwards.
    status(catch(|| unsafe {
        handle::free::<BoundFunction>(function, "function")
    }))
}
