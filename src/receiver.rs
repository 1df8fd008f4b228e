//! Receiver entries without JIT code: a static thunk ([`crate::thunks`])
//! per function, pointed at code compiled into the library.
//!
//! A function on the baked tier asked for a receiver entry gets a thunk,
//! which jumps with its first data word in the thunk register (`r11` on
//! x86_64, `x16` on AArch64) to one of three pieces of compiled-in code:
//!
//! | thunk words | code | when |
//! |---|---|---|
//! | target, receiver stub | the baked receiver stub of the signature's shape: moves the arguments down past the receiver, re-extends narrow ones, tail-calls the target (or calls it and narrows the return) | the receiver set has the shape |
//! | context, generic stub | the generic stub: spills every argument register, and Rust reads the arguments the receiver plan names from them and from the caller's stack, calls the function's packed path and returns its value in both return registers | any other receiver-eligible signature |
//! | target, closed stub | the closed stub: tells the library's closed-call handler and returns 0 | a thunk of the first kind whose library was closed |
//!
//! Closing a library re-points its functions' thunks of the first kind at
//! the closed stub: one store, the target word unchanged, so a call racing
//! the close reaches either the target (it was under way) or the handler,
//! never a mixed pair. Thunks of the second kind check the closed byte in
//! Rust, as `call_packed` does.

use std::collections::HashMap;
use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, LazyLock, Mutex, PoisonError, Weak};

use jitcall_emitters::ShapeFn;

use crate::baked::{self, ReturnFix};
use crate::library::LibraryState;
use crate::register_file::RegisterFileCall;
use crate::thunks::{self, Thunk};
use crate::{classify, Abi, Entry, Limits, Loc, Plan, Signature, Source};

/// The argument registers the generic stub spills, GP first: rdi–r9 and
/// xmm0–7 on x86_64; x0–x7 and d0–d7 on AArch64.
#[cfg(target_arch = "x86_64")]
const GP_SPILLED: usize = 6;
#[cfg(not(target_arch = "x86_64"))]
const GP_SPILLED: usize = 8;

/// The packed call a generic receiver makes: the shape's baked stub, or
/// the register file.
enum PackedCall {
    Baked(ShapeFn, ReturnFix),
    RegisterFile(RegisterFileCall),
}

/// What the generic stub passes Rust in the thunk register.
struct GenericReceiver {
    target: *const c_void,
    /// Where the receiver entry receives each argument.
    plan: Plan,
    call: PackedCall,
    library: Option<Arc<LibraryState>>,
}

/// A receiver entry made of a static thunk.
pub(crate) struct ThunkReceiver {
    thunk: Thunk,
    target: *const c_void,
    /// The context the generic stub reads, boxed so its address is stable;
    /// `None` for a baked receiver stub.
    generic: Option<Box<GenericReceiver>>,
}

// SAFETY: a ThunkReceiver is written only when made and when closed (one
// atomic store into its thunk's slot); its context is read-only, and its
// target a code address. Calling its entry from several threads is as
// safe as calling the target.
unsafe impl Send for ThunkReceiver {}
// SAFETY: as for Send.
unsafe impl Sync for ThunkReceiver {}

impl ThunkReceiver {
    /// A receiver entry for `sig`, bound to `target`, on the baked tier:
    /// `None` when the signature is not receiver-eligible under `limits`,
    /// when static thunks are unavailable, or on a host without baked code.
    pub(crate) fn new(
        sig: &Signature,
        target: *const c_void,
        packed: &Plan,
        limits: &Limits,
        library: Option<&Arc<LibraryState>>,
    ) -> Option<ThunkReceiver> {
        let abi = Abi::host()?;
        let plan = classify(sig, abi, Entry::Receiver, limits).ok()?;
        let thunk = thunks::thunk().ok()?;
        if let Some(stub) = baked::receiver_stub(sig) {
            thunk.set(target, stub.cast());
            return Some(ThunkReceiver {
                thunk,
                target,
                generic: None,
            });
        }
        let call = match (baked::stub(sig), baked::register_file()) {
            (Some((stub, fix)), _) => PackedCall::Baked(stub, fix),
            (None, Some(stub)) => PackedCall::RegisterFile(RegisterFileCall::new(stub, packed)),
            (None, None) => return None,
        };
        let generic = Box::new(GenericReceiver {
            target,
            plan,
            call,
            library: library.cloned(),
        });
        thunk.set(std::ptr::addr_of!(*generic).cast(), stubs::generic());
        Some(ThunkReceiver {
            thunk,
            target,
            generic: Some(generic),
        })
    }

    /// The entry: a function of the native C ABI taking the receiver first,
    /// as [`Function::receiver_entry`](crate::Function::receiver_entry)
    /// documents.
    pub(crate) fn entry(&self) -> *const c_void {
        self.thunk.entry()
    }

    /// Whether the entry goes through the generic stub.
    pub(crate) fn is_generic(&self) -> bool {
        self.generic.is_some()
    }

    /// Sends later calls to `library`'s closed-call handler, returning 0:
    /// for an entry through a baked receiver stub, which has no closed
    /// check of its own.
    pub(crate) fn close(&self, library: &Arc<LibraryState>) {
        if self.generic.is_none() {
            closed_targets().insert(self.target as usize, Arc::downgrade(library));
            self.thunk.set(self.target, stubs::closed());
        }
    }
}

/// The libraries closed thunks belong to, by target: what the closed stub
/// reports to.
fn closed_targets() -> std::sync::MutexGuard<'static, HashMap<usize, Weak<LibraryState>>> {
    static CLOSED: LazyLock<Mutex<HashMap<usize, Weak<LibraryState>>>> =
        LazyLock::new(|| Mutex::new(HashMap::new()));
    CLOSED.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Where the closed stub goes: the handler of the library `target` was
/// closed in. A panic here aborts, as no unwinding may cross the stub.
extern "C" fn thunk_closed(target: *const c_void) {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let library = closed_targets()
            .get(&(target as usize))
            .and_then(Weak::upgrade);
        if let Some(library) = library {
            library.closed_call(target);
        }
    }));
    if outcome.is_err() {
        eprintln!("jitcall: a closed receiver entry's handler panicked; aborting");
        std::process::abort();
    }
}

/// Where the generic stub goes: reads the arguments from the spilled
/// registers and the caller's stack, makes the packed call, and returns
/// the packed return value, which the stub leaves in both return
/// registers. A panic aborts, as no unwinding may cross the stub.
///
/// # Safety
///
/// `context` is a live [`GenericReceiver`]; `registers` holds the spilled
/// argument registers, GP ones first; `stack` points to the caller's
/// stack arguments; the call was made with the receiver entry's signature.
unsafe extern "C" fn generic_receiver(
    context: *const GenericReceiver,
    registers: *const u64,
    stack: *const u64,
) -> u64 {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the thunk's context word is the address of a GenericReceiver
        // its ThunkReceiver owns, alive while the entry may be called.
        let context = unsafe { &*context };
        if let Some(library) = &context.library {
            if library.is_closed() {
                library.closed_call(context.target);
                return 0;
            }
        }
        // The slots on the stack for up to 32 arguments, on the heap past.
        let n = context.plan.arg_types.len();
        let (mut small, mut large) = ([0u64; 32], Vec::new());
        let slots: &mut [u64] = if n <= small.len() {
            &mut small[..n]
        } else {
            large.resize(n, 0);
            &mut large
        };
        for arg in &context.plan.args {
            let word = match arg.from {
                // SAFETY: the stub spilled this many registers; stack
                // arguments lie where the receiver plan says, as the caller
                // of the entry put them.
                Source::Native(Loc::Gp(n)) => unsafe { *registers.add(usize::from(n)) },
                // SAFETY: as above.
                Source::Native(Loc::Fp(n)) => unsafe {
                    *registers.add(GP_SPILLED + usize::from(n))
                },
                // SAFETY: as above.
                Source::Native(Loc::Stack(at)) => unsafe { *stack.add(at as usize / 8) },
                // Receiver plans read native locations only.
                _ => 0,
            };
            slots[arg.index as usize] = word;
        }
        let mut ret = 0u64;
        let (target, args) = (context.target, slots.as_ptr());
        match &context.call {
            // SAFETY: the slots hold the call's arguments in the packed
            // encoding (narrow ones as the caller widened them, which the
            // packed path re-extends; buffers as view addresses), the
            // target has the signature, and `ret` is a scalar slot
            // (receiver entries return no structs).
            PackedCall::Baked(stub, fix) => unsafe {
                stub(args, &mut ret, target);
                fix.apply(&mut ret);
            },
            // SAFETY: as above.
            PackedCall::RegisterFile(call) => unsafe { call.call_packed(target, args, &mut ret) },
        }
        ret
    }));
    outcome.unwrap_or_else(|_| {
        eprintln!("jitcall: a generic receiver entry panicked; aborting");
        std::process::abort();
    })
}

// The generic stub spills the argument registers below a frame record,
// aligned, and calls `generic_receiver(context, registers, stack)`; its
// u64 comes back in the integer register and is copied to the first FP
// one, so that integer and floating-point returns both find it. The
// closed stub calls `thunk_closed(target)` and returns 0 in both.
#[cfg(target_arch = "x86_64")]
std::arch::global_asm!(
    ".text",
    ".p2align 4",
    ".globl jitcall_receiver_generic_0_1",
    ".hidden jitcall_receiver_generic_0_1",
    "jitcall_receiver_generic_0_1:",
    // Entered with rsp 8 past a 16-byte boundary; 8 + 8 + 112 keeps the
    // call below aligned. The .cfi directives describe the frames to the
    // unwinder (the binary's .eh_frame).
    ".cfi_startproc",
    "push rbp",
    ".cfi_def_cfa_offset 16",
    ".cfi_offset rbp, -16",
    "mov rbp, rsp",
    ".cfi_def_cfa_register rbp",
    "sub rsp, 112",
    "mov [rsp], rdi",
    "mov [rsp + 8], rsi",
    "mov [rsp + 16], rdx",
    "mov [rsp + 24], rcx",
    "mov [rsp + 32], r8",
    "mov [rsp + 40], r9",
    "movsd [rsp + 48], xmm0",
    "movsd [rsp + 56], xmm1",
    "movsd [rsp + 64], xmm2",
    "movsd [rsp + 72], xmm3",
    "movsd [rsp + 80], xmm4",
    "movsd [rsp + 88], xmm5",
    "movsd [rsp + 96], xmm6",
    "movsd [rsp + 104], xmm7",
    "mov rdi, r11",
    "mov rsi, rsp",
    // The caller's stack arguments, above the return address.
    "lea rdx, [rbp + 16]",
    "call {generic}",
    "movq xmm0, rax",
    "leave",
    ".cfi_def_cfa rsp, 8",
    ".cfi_restore rbp",
    "ret",
    ".cfi_endproc",
    ".p2align 4",
    ".globl jitcall_receiver_closed_0_1",
    ".hidden jitcall_receiver_closed_0_1",
    "jitcall_receiver_closed_0_1:",
    ".cfi_startproc",
    "push rbp",
    ".cfi_def_cfa_offset 16",
    ".cfi_offset rbp, -16",
    "mov rbp, rsp",
    "mov rdi, r11",
    "call {closed}",
    "xor eax, eax",
    "pxor xmm0, xmm0",
    "pop rbp",
    ".cfi_def_cfa_offset 8",
    ".cfi_restore rbp",
    "ret",
    ".cfi_endproc",
    generic = sym generic_receiver,
    closed = sym thunk_closed,
);

#[cfg(target_arch = "aarch64")]
std::arch::global_asm!(
    ".text",
    ".p2align 4",
    ".globl jitcall_receiver_generic_0_1",
    ".hidden jitcall_receiver_generic_0_1",
    "jitcall_receiver_generic_0_1:",
    // A frame record, then x0–x7 and d0–d7: 16 + 64 + 64 bytes.
    ".cfi_startproc",
    "stp x29, x30, [sp, #-144]!",
    ".cfi_def_cfa_offset 144",
    ".cfi_offset x29, -144",
    ".cfi_offset x30, -136",
    "mov x29, sp",
    ".cfi_def_cfa x29, 144",
    "stp x0, x1, [sp, #16]",
    "stp x2, x3, [sp, #32]",
    "stp x4, x5, [sp, #48]",
    "stp x6, x7, [sp, #64]",
    "stp d0, d1, [sp, #80]",
    "stp d2, d3, [sp, #96]",
    "stp d4, d5, [sp, #112]",
    "stp d6, d7, [sp, #128]",
    "mov x0, x16",
    "add x1, sp, #16",
    // The caller's stack arguments start where sp was at entry.
    "add x2, sp, #144",
    "bl {generic}",
    "fmov d0, x0",
    "ldp x29, x30, [sp], #144",
    ".cfi_def_cfa sp, 0",
    ".cfi_restore x29",
    ".cfi_restore x30",
    "ret",
    ".cfi_endproc",
    ".p2align 4",
    ".globl jitcall_receiver_closed_0_1",
    ".hidden jitcall_receiver_closed_0_1",
    "jitcall_receiver_closed_0_1:",
    ".cfi_startproc",
    "stp x29, x30, [sp, #-16]!",
    ".cfi_def_cfa_offset 16",
    ".cfi_offset x29, -16",
    ".cfi_offset x30, -8",
    "mov x29, sp",
    ".cfi_def_cfa x29, 16",
    "mov x0, x16",
    "bl {closed}",
    "mov x0, xzr",
    "fmov d0, xzr",
    "ldp x29, x30, [sp], #16",
    ".cfi_def_cfa sp, 0",
    ".cfi_restore x29",
    ".cfi_restore x30",
    "ret",
    ".cfi_endproc",
    generic = sym generic_receiver,
    closed = sym thunk_closed,
);

/// The stubs' addresses: the symbols above, or null on a target without
/// them (which has no static thunks either).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
mod stubs {
    use std::ffi::c_void;

    extern "C" {
        fn jitcall_receiver_generic_0_1();
        fn jitcall_receiver_closed_0_1();
    }

    pub(super) fn generic() -> *const c_void {
        jitcall_receiver_generic_0_1 as *const c_void
    }

    pub(super) fn closed() -> *const c_void {
        jitcall_receiver_closed_0_1 as *const c_void
    }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
mod stubs {
    use std::ffi::c_void;

    pub(super) fn generic() -> *const c_void {
        std::ptr::null()
    }

    pub(super) fn closed() -> *const c_void {
        std::ptr::null()
    }
}
