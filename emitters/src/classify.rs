//! Per-ABI classification and fast-call eligibility.
//!
//! [`classify`] decides whether a [`Signature`] can take the fast path for an
//! [`Abi`] and an [`Entry`] kind under some [`Limits`], and if so assigns
//! every argument a source (where the trampoline finds it) and a destination
//! (where the target expects it). A rejection is an [`Ineligible`] naming the
//! rule that failed and the numbers involved.
//!
//! Both supported ABIs assign arguments the same way: in argument order,
//! integers and pointers to the next general-purpose register, floats to the
//! next FP/SIMD register, and anything left over to the next 8-byte stack
//! slot, in argument order. Only the register counts differ.

use std::fmt;

use crate::signature::{Signature, Type};

/// A calling convention jitcall emits code for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Abi {
    /// x86_64 System V (Linux, the BSDs, macOS on Intel).
    SysV64,
    /// AArch64 AAPCS64 as used on Linux (not Apple's arm64 variant).
    Aapcs64,
}

impl Abi {
    /// Every supported ABI.
    pub const ALL: [Abi; 2] = [Abi::SysV64, Abi::Aapcs64];

    /// The ABI of the machine this code was compiled for, if jitcall
    /// supports it.
    pub const fn host() -> Option<Abi> {
        if cfg!(all(target_arch = "x86_64", unix)) {
            Some(Abi::SysV64)
        } else if cfg!(all(
            target_arch = "aarch64",
            unix,
            not(target_vendor = "apple")
        )) {
            Some(Abi::Aapcs64)
        } else {
            None
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            Abi::SysV64 => "x86_64 System V",
            Abi::Aapcs64 => "AArch64 AAPCS64",
        }
    }

    /// General-purpose argument registers.
    pub const fn gp_regs(self) -> usize {
        match self {
            Abi::SysV64 => 6,
            Abi::Aapcs64 => 8,
        }
    }

    /// FP/SIMD argument registers.
    pub const fn fp_regs(self) -> usize {
        8
    }

    /// The assembler name of GP argument register `n` holding a value of
    /// `bits` width (32 or 64).
    pub fn gp_name(self, n: u8, bits: u32) -> &'static str {
        const SYSV64: [&str; 6] = ["rdi", "rsi", "rdx", "rcx", "r8", "r9"];
        const SYSV32: [&str; 6] = ["edi", "esi", "edx", "ecx", "r8d", "r9d"];
        const X: [&str; 8] = ["x0", "x1", "x2", "x3", "x4", "x5", "x6", "x7"];
        const W: [&str; 8] = ["w0", "w1", "w2", "w3", "w4", "w5", "w6", "w7"];
        let table: &[&str] = match (self, bits > 32) {
            (Abi::SysV64, true) => &SYSV64,
            (Abi::SysV64, false) => &SYSV32,
            (Abi::Aapcs64, true) => &X,
            (Abi::Aapcs64, false) => &W,
        };
        table.get(usize::from(n)).copied().unwrap_or("?")
    }

    /// The assembler name of the GP register an integer `ty` returns in.
    pub fn ret_gp_name(self, ty: Type) -> &'static str {
        let wide = matches!(ty.int_width(), Some((64, _)));
        match (self, wide) {
            (Abi::SysV64, true) => "rax",
            (Abi::SysV64, false) => "eax",
            (Abi::Aapcs64, true) => "x0",
            (Abi::Aapcs64, false) => "w0",
        }
    }

    /// The assembler name of FP argument register `n` holding `ty`.
    pub fn fp_name(self, n: u8, ty: Type) -> &'static str {
        const XMM: [&str; 8] = [
            "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7",
        ];
        const S: [&str; 8] = ["s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7"];
        const D: [&str; 8] = ["d0", "d1", "d2", "d3", "d4", "d5", "d6", "d7"];
        let table: &[&str] = match (self, ty) {
            (Abi::SysV64, _) => &XMM,
            (Abi::Aapcs64, Type::F32) => &S,
            (Abi::Aapcs64, _) => &D,
        };
        table.get(usize::from(n)).copied().unwrap_or("?")
    }
}

impl fmt::Display for Abi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The calling convention of a trampoline's own entry point.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Entry {
    /// `unsafe extern "C" fn(args: *const u64, ret: *mut u64)`: argument `i`
    /// in slot `i`, the return value stored to `*ret`.
    Packed,
    /// `extern "C" fn(receiver, a0, a1, …)` in the native ABI, narrow
    /// integers widened to 32 bits, a buffer as a pointer to a
    /// [`BufferView`](crate::BufferView). The receiver is dropped.
    Receiver,
}

impl Entry {
    pub const ALL: [Entry; 2] = [Entry::Packed, Entry::Receiver];

    pub const fn name(self) -> &'static str {
        match self {
            Entry::Packed => "packed",
            Entry::Receiver => "receiver",
        }
    }
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The rules a signature must meet to take the fast path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The most arguments (the receiver not counted).
    pub max_args: usize,
    /// How arguments may be spread over registers and the stack.
    pub registers: Registers,
    /// Whether `buffer` and float arguments may appear in one signature.
    pub buffer_with_float: bool,
    /// Whether `function`-typed arguments and returns may take the fast
    /// path (Node.js sends them to libffi).
    pub function_pointers: bool,
    /// Whether structs passed or returned by value may take the fast path
    /// (Node.js has no struct type). A receiver entry never takes them.
    pub structs: bool,
    /// Whether a variadic call shape may take the fast path (Node.js has
    /// no variadic functions).
    pub variadic: bool,
}

/// The register-pressure rule of [`Limits`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Registers {
    /// Arguments beyond the ABI's registers go on the stack, as the
    /// emitters place them.
    Any,
    /// Every argument, and the receiver in receiver mode, in a register.
    Only,
    /// Node.js's caps, whatever the entry kind (`IsFastCallEligible` in
    /// Node's `src/ffi/types.cc`): general-purpose arguments, plus one in
    /// total when any is a `buffer`, at most [`node_gp_cap`]; floating-point
    /// arguments at most the ABI's FP argument registers.
    Node,
}

/// Node.js's cap on general-purpose arguments for `abi`, with one extra
/// counted when a `buffer` is present. x86_64 System V: 6 (the receiver
/// takes rdi, and Node's trampoline reads the sixth argument from the
/// stack), but 5 counting the buffer's extra, since its buffer helper needs
/// every argument in a register. AArch64: 7, the eight argument registers
/// less the receiver.
pub const fn node_gp_cap(abi: Abi, buffer: bool) -> usize {
    match (abi, buffer) {
        (Abi::SysV64, false) => 6,
        (Abi::SysV64, true) => 5,
        (Abi::Aapcs64, _) => 7,
    }
}

impl Limits {
    /// The most arguments the emitters accept whatever `max_args` says:
    /// beyond it AArch64's scaled load offsets no longer fit.
    pub const EMITTER_MAX_ARGS: usize = 512;

    /// Node.js's fast-call rules, decision for decision (its
    /// `IsFastCallEligible`, on x86_64 System V and AArch64): at most 8
    /// arguments; no `function` argument or return; buffers and floats not
    /// mixed; [`Registers::Node`]'s caps. The decision does not depend on
    /// the entry kind. Node has neither structs nor variadic functions, so
    /// both go to libffi.
    pub const fn node() -> Limits {
        Limits {
            max_args: 8,
            registers: Registers::Node,
            buffer_with_float: false,
            function_pointers: false,
            structs: false,
            variadic: false,
        }
    }
}

impl Default for Limits {
    /// What jitcall's emitters support: up to 16 arguments, stack
    /// arguments included, any mix of types.
    fn default() -> Limits {
        Limits {
            max_args: 16,
            registers: Registers::Any,
            buffer_with_float: true,
            function_pointers: true,
            structs: true,
            variadic: true,
        }
    }
}

/// Why a signature cannot take the fast path: the rule that failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ineligible {
    /// More arguments than [`Limits::max_args`].
    TooManyArgs { n: usize, max: usize },
    /// More general-purpose arguments than the register rule allows.
    GpPressure { need: usize, have: usize },
    /// More floating-point arguments than the register rule allows.
    FpPressure { need: usize, have: usize },
    /// A type that cannot appear where it does: `void` as argument `index`,
    /// or `buffer` as the return type (`index` is `None`).
    UnsupportedType { index: Option<usize>, ty: Type },
    /// A buffer and a float argument together, which the limits forbid.
    BufferWithFloat { buffer: usize, float: usize },
    /// A `function` argument (`index`) or return (`None`), which the
    /// limits send to libffi.
    FunctionPointer { index: Option<usize> },
    /// A struct argument (`index`) or return (`None`), which the limits or
    /// the entry kind send to libffi.
    Struct { index: Option<usize> },
    /// A variadic call shape, which the limits send to libffi.
    Variadic,
}

impl fmt::Display for Ineligible {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Ineligible::TooManyArgs { n, max } => {
                write!(f, "TooManyArgs: {n} arguments, at most {max}")
            }
            Ineligible::GpPressure { need, have } => write!(
                f,
                "GpPressure: needs {need} general-purpose registers, the rule allows {have}"
            ),
            Ineligible::FpPressure { need, have } => write!(
                f,
                "FpPressure: needs {need} floating-point registers, the rule allows {have}"
            ),
            Ineligible::UnsupportedType { index: Some(i), ty } => {
                write!(f, "UnsupportedType: `{ty}` as argument {i}")
            }
            Ineligible::UnsupportedType { index: None, ty } => {
                write!(f, "UnsupportedType: `{ty}` as the return type")
            }
            Ineligible::BufferWithFloat { buffer, float } => write!(
                f,
                "BufferWithFloat: buffer argument {buffer} and float argument {float} together"
            ),
            Ineligible::FunctionPointer { index: Some(i) } => {
                write!(f, "FunctionPointer: `function` as argument {i}")
            }
            Ineligible::FunctionPointer { index: None } => {
                write!(f, "FunctionPointer: `function` as the return type")
            }
            Ineligible::Struct { index: Some(i) } => {
                write!(f, "Struct: a struct as argument {i}")
            }
            Ineligible::Struct { index: None } => {
                write!(f, "Struct: a struct as the return type")
            }
            Ineligible::Variadic => f.write_str("Variadic: a variadic call"),
        }
    }
}

impl std::error::Error for Ineligible {}

/// A register or stack slot in the native ABI.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Loc {
    /// General-purpose argument register `n` (rdi, rsi, … or x0, x1, …).
    Gp(u8),
    /// FP/SIMD argument register `n` (xmm0… or v0…).
    Fp(u8),
    /// The stack argument slot at this byte offset from the first one.
    Stack(u32),
}

/// Where the trampoline finds an argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    /// Slot `n` of the packed argument array.
    Slot(u32),
    /// A register or stack slot of the trampoline's own native entry.
    Native(Loc),
}

/// One classified argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Arg {
    pub ty: Type,
    /// Where the trampoline reads it.
    pub from: Source,
    /// Where the target expects it.
    pub to: Loc,
}

/// A signature classified for one ABI and entry kind: the input of the
/// emitters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub abi: Abi,
    pub entry: Entry,
    pub args: Vec<Arg>,
    pub ret: Type,
    /// Bytes of stack arguments the target receives (8 per slot).
    pub stack_bytes: u32,
}

impl Plan {
    /// Whether the trampoline can jump to the target rather than call it:
    /// only the receiver entry can (the packed entry stores the result), and
    /// only when the return value needs no narrowing.
    pub fn tail_calls(&self) -> bool {
        self.entry == Entry::Receiver && !self.ret.is_narrow()
    }

    /// A human-readable table: one line per argument, then the return.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        for (i, arg) in self.args.iter().enumerate() {
            let from = match arg.from {
                Source::Slot(n) => format!("slot {n}"),
                Source::Native(loc) => self.loc_name(loc, arg.ty, true),
            };
            let to = self.loc_name(arg.to, arg.ty, false);
            out += &format!("  arg {i:<2} {:<8} {from:>10} -> {to}\n", arg.ty.name());
        }
        let ret = match self.ret {
            Type::Void => "nothing".to_string(),
            ty if ty.is_float() => self.abi.fp_name(0, ty).to_string(),
            ty => {
                let narrowed = if ty.is_narrow() { " (narrowed)" } else { "" };
                self.abi.ret_gp_name(ty).to_string() + narrowed
            }
        };
        out += &format!("  return   {:<8} {ret}", self.ret.name());
        if self.tail_calls() {
            out += ", tail call";
        }
        out
    }

    fn loc_name(&self, loc: Loc, ty: Type, incoming: bool) -> String {
        match loc {
            Loc::Gp(n) => {
                let bits = match ty.int_width() {
                    // Receiver-mode callers widen narrow integers to 32 bits.
                    Some((w, _)) if incoming && w < 32 => 32,
                    Some((w, _)) => w,
                    None => 64,
                };
                self.abi.gp_name(n, bits).to_string()
            }
            Loc::Fp(n) => self.abi.fp_name(n, ty).to_string(),
            Loc::Stack(off) if incoming => format!("[stack+{off}]"),
            Loc::Stack(off) => format!("[out+{off}]"),
        }
    }
}

/// Assigns registers and stack slots in argument order, starting after
/// `gp_used` GP registers.
struct Assigner {
    gp: usize,
    fp: usize,
    stack: u32,
    gp_max: usize,
    fp_max: usize,
}

impl Assigner {
    fn new(abi: Abi, gp_used: usize) -> Assigner {
        Assigner {
            gp: gp_used,
            fp: 0,
            stack: 0,
            gp_max: abi.gp_regs(),
            fp_max: abi.fp_regs(),
        }
    }

    fn next(&mut self, ty: Type) -> Loc {
        let (used, max) = if ty.is_float() {
            (&mut self.fp, self.fp_max)
        } else {
            (&mut self.gp, self.gp_max)
        };
        if *used < max {
            *used += 1;
            // At most 8 registers of a class, so the index fits in a u8.
            let n = (*used - 1) as u8;
            if ty.is_float() {
                Loc::Fp(n)
            } else {
                Loc::Gp(n)
            }
        } else {
            self.stack += 8;
            Loc::Stack(self.stack - 8)
        }
    }
}

/// Classifies `sig` for `abi` and `entry` under `limits`.
///
/// # Errors
///
/// The first rule the signature breaks, checked in this order (Node.js's
/// order): types ([`Ineligible::UnsupportedType`]), a `function` return
/// then arguments when the limits exclude them
/// ([`Ineligible::FunctionPointer`]), argument count
/// ([`Ineligible::TooManyArgs`], at most [`Limits::EMITTER_MAX_ARGS`]
/// whatever the limits say), buffer/float mixing
/// ([`Ineligible::BufferWithFloat`]), then register pressure
/// ([`Ineligible::GpPressure`], [`Ineligible::FpPressure`]) under
/// [`Registers::Only`] (the receiver counted in receiver mode) or
/// [`Registers::Node`].
///
/// # Examples
///
/// ```
/// use jitcall_emitters::{classify, Abi, Entry, Ineligible, Limits, Loc};
///
/// let sig = "(i32, i32, i32, i32, i32, i32) -> i32".parse().unwrap();
/// let plan = classify(&sig, Abi::SysV64, Entry::Packed, &Limits::node()).unwrap();
/// assert_eq!(plan.args[5].to, Loc::Gp(5)); // r9
///
/// // Node.js takes a seventh GP argument to libffi.
/// let sig = "(i32, i32, i32, i32, i32, i32, i32) -> i32".parse().unwrap();
/// let err = classify(&sig, Abi::SysV64, Entry::Receiver, &Limits::node()).unwrap_err();
/// assert_eq!(err, Ineligible::GpPressure { need: 7, have: 6 });
/// ```
pub fn classify(
    sig: &Signature,
    abi: Abi,
    entry: Entry,
    limits: &Limits,
) -> Result<Plan, Ineligible> {
    if let Some((index, ty)) = sig.misplaced_type() {
        return Err(Ineligible::UnsupportedType { index, ty });
    }
    if !limits.variadic && sig.variadic.is_some() {
        return Err(Ineligible::Variadic);
    }
    // Structs take no fast path yet.
    let takes_structs = false;
    if !takes_structs && sig.ret.as_struct().is_some() {
        return Err(Ineligible::Struct { index: None });
    }
    if !limits.function_pointers && sig.ret == Type::Function {
        return Err(Ineligible::FunctionPointer { index: None });
    }
    let n = sig.args.len();
    let max = limits.max_args.min(Limits::EMITTER_MAX_ARGS);
    if n > max {
        return Err(Ineligible::TooManyArgs { n, max });
    }
    let function = sig.args.iter().position(|&t| t == Type::Function);
    if let (false, Some(index)) = (limits.function_pointers, function) {
        return Err(Ineligible::FunctionPointer { index: Some(index) });
    }
    let first_struct = sig.args.iter().position(|t| t.as_struct().is_some());
    if let (false, Some(index)) = (takes_structs, first_struct) {
        return Err(Ineligible::Struct { index: Some(index) });
    }
    let buffer = sig.args.iter().position(|&t| t == Type::Buffer);
    let float = sig.args.iter().position(|t| t.is_float());
    if let (false, Some(buffer), Some(float)) = (limits.buffer_with_float, buffer, float) {
        return Err(Ineligible::BufferWithFloat { buffer, float });
    }

    let receiver = usize::from(entry == Entry::Receiver);
    let gp_args = sig.args.iter().filter(|t| !t.is_float()).count();
    let fp_need = n - gp_args;
    let gp_rule = match limits.registers {
        Registers::Any => None,
        Registers::Only => Some((receiver + gp_args, abi.gp_regs())),
        Registers::Node => Some((
            gp_args + usize::from(buffer.is_some()),
            node_gp_cap(abi, buffer.is_some()),
        )),
    };
    if let Some((need, have)) = gp_rule {
        if need > have {
            return Err(Ineligible::GpPressure { need, have });
        }
        if fp_need > abi.fp_regs() {
            return Err(Ineligible::FpPressure {
                need: fp_need,
                have: abi.fp_regs(),
            });
        }
    }

    let mut target = Assigner::new(abi, 0);
    let mut incoming = Assigner::new(abi, receiver);
    let args = sig
        .args
        .iter()
        .enumerate()
        .map(|(i, &ty)| Arg {
            ty,
            from: match entry {
                // At most `max_args` arguments, far below u32::MAX.
                Entry::Packed => Source::Slot(i as u32),
                Entry::Receiver => Source::Native(incoming.next(ty)),
            },
            to: target.next(ty),
        })
        .collect();
    Ok(Plan {
        abi,
        entry,
        args,
        ret: sig.ret,
        stack_bytes: target.stack,
    })
}
