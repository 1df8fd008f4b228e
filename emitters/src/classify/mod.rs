//! Per-ABI classification and fast-call eligibility.
//!
//! [`classify`] decides whether a [`Signature`] can take the fast path for an
//! [`Abi`] and an [`Entry`] kind under some [`Limits`], and if so assigns
//! every argument a source (where the trampoline finds it) and a destination
//! (where the target expects it). A rejection is an [`Ineligible`] naming the
//! rule that failed and the numbers involved.
//!
//! Every ABI assigns scalar arguments in argument order, reading its
//! [`AbiSpec`](crate::AbiSpec): integers and pointers to the next
//! general-purpose register, floats to the next FP/SIMD register (on Win64
//! both take the register of their argument position, shared by index),
//! anything left over to the next stack slot (8 bytes, or Apple's natural
//! size and alignment). Structs follow each family's own rules, in
//! [`sysv64`], [`win64`] and [`aapcs64`]: a struct argument becomes one
//! move per piece it travels in (an eightbyte, an HFA member), read through
//! the address its packed slot holds.
//!
//! Deviations from the platform ABIs, all on the caller's side of what the
//! ABI leaves open: narrow integer arguments are always extended to 32 bits
//! (in registers; an Apple stack argument is stored at its own size); a
//! Win64 variadic call copies every float in a register position to the GP
//! register of that position, fixed ones included.

use std::fmt;

use crate::abi::{Abi, Counting, MemoryReturn, StackSlot, StructRules, Varargs};
use crate::signature::{Signature, StructType, Type};

pub mod aapcs64;
pub mod sysv64;
pub mod win64;

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
    /// `unsafe extern "C" fn(args: *const u64) -> u64` (or `-> f64`,
    /// [`ValueFn`](crate::ValueFn), [`FloatValueFn`](crate::FloatValueFn)):
    /// the packed entry's arguments and moves, the return value left in the
    /// native return register as the target left it, so that the
    /// trampoline can tail-call the target when it takes no stack
    /// arguments ([`Plan::tail_calls`]). Narrow integer returns come back
    /// raw: the caller extends them. A struct return is
    /// [`Ineligible::Struct`] (the packed entry takes it).
    Value,
}

impl Entry {
    pub const ALL: [Entry; 3] = [Entry::Packed, Entry::Receiver, Entry::Value];

    pub const fn name(self) -> &'static str {
        match self {
            Entry::Packed => "packed",
            Entry::Receiver => "receiver",
            Entry::Value => "value",
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
    /// arguments at most the ABI's FP argument registers. On Win64, whose
    /// classes share positions, the cap counts every argument.
    Node,
}

/// Node.js's cap on general-purpose arguments for `abi`, with one extra
/// counted when a `buffer` is present ([`AbiSpec::node_gp_cap`](crate::AbiSpec)).
/// x86_64 System V: 6 (the receiver takes rdi, and Node's trampoline reads
/// the sixth argument from the stack), but 5 counting the buffer's extra,
/// since its buffer helper needs every argument in a register. AArch64: 7,
/// the eight argument registers less the receiver. Win64: 3 register
/// positions, the receiver taking rcx, whatever the arguments' classes.
pub const fn node_gp_cap(abi: Abi, buffer: bool) -> usize {
    let spec = abi.spec();
    if buffer {
        spec.node_gp_cap_with_buffer
    } else {
        spec.node_gp_cap
    }
}

impl Limits {
    /// The most arguments the emitters accept whatever `max_args` says:
    /// beyond it AArch64's scaled load offsets no longer fit.
    pub const EMITTER_MAX_ARGS: usize = 512;

    /// The most bytes the emitters reserve below a call for the target's
    /// stack arguments and struct copies: AArch64's `sub sp, sp, #imm` and
    /// `add xd, sp, #imm` take 12-bit immediates, and 4,080 is the largest
    /// multiple of 16 they encode.
    pub const EMITTER_MAX_STACK: u32 = 4080;

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
#[non_exhaustive]
pub enum Ineligible {
    /// More arguments than [`Limits::max_args`].
    TooManyArgs { n: usize, max: usize },
    /// More general-purpose arguments than the register rule allows.
    GpPressure { need: usize, have: usize },
    /// More floating-point arguments than the register rule allows.
    FpPressure { need: usize, have: usize },
    /// More register positions than the register rule allows, on an ABI
    /// whose GP and FP arguments share positions (Win64).
    PositionPressure { need: usize, have: usize },
    /// A type that cannot appear where it does: `void` as argument `index`,
    /// or `buffer` as the return type (`index` is `None`).
    UnsupportedType { index: Option<usize>, ty: Type },
    /// A buffer and a float argument together, which the limits forbid.
    BufferWithFloat { buffer: usize, float: usize },
    /// A `function` argument (`index`) or return (`None`), which the
    /// limits send to libffi.
    FunctionPointer { index: Option<usize> },
    /// A struct argument (`index`) or return (`None`), which the limits or
    /// the entry kind send to libffi. The value entry refuses a struct
    /// return, which the packed entry takes.
    Struct { index: Option<usize> },
    /// A variadic call shape, which the limits send to libffi.
    Variadic,
    /// More bytes of stack arguments and struct copies than
    /// [`Limits::EMITTER_MAX_STACK`].
    StackTooLarge { bytes: u32, max: u32 },
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
            Ineligible::PositionPressure { need, have } => write!(
                f,
                "PositionPressure: needs {need} argument positions in registers, the rule allows {have}"
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
            Ineligible::StackTooLarge { bytes, max } => write!(
                f,
                "StackTooLarge: {bytes} bytes of stack arguments and copies, at most {max}"
            ),
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
    /// The stack argument at this byte offset from the first one (which
    /// lies at the stack pointer at the call, or above Win64's shadow
    /// space). Its size is the slot's ([`Plan::stack_slot_bytes`]).
    Stack(u32),
}

/// Where the trampoline finds an argument, or a piece of one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    /// Slot `n` of the packed argument array.
    Slot(u32),
    /// A register or stack slot of the trampoline's own native entry.
    Native(Loc),
    /// `bytes` bytes (1 to 8) at `offset` in the struct whose address
    /// packed slot `slot` holds. `offset` is a multiple of 8 or the
    /// piece's own size, so each piece is read in naturally aligned
    /// chunks of 8, 4, 2 and 1 bytes, never past the struct.
    Field { slot: u32, offset: u32, bytes: u8 },
    /// The address `n` bytes above the first stack argument slot (the
    /// stack pointer at the call, above Win64's shadow space): a copy of a
    /// struct the trampoline made there (an AArch64 struct over 16 bytes,
    /// a Win64 one of other than 1, 2, 4 or 8 bytes, passed by reference).
    StackAddress(u32),
}

/// One move of the trampoline: an argument, or a piece of a struct
/// argument (its `ty` then says the piece's class: `u64` bits for general
/// registers and stack copies, `f32` or `f64` for FP registers).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Arg {
    /// Which argument of the signature the move belongs to.
    pub index: u32,
    pub ty: Type,
    /// Where the trampoline reads it.
    pub from: Source,
    /// Where the target expects it.
    pub to: Loc,
}

/// How one argument travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Passing {
    /// A scalar, in its one location.
    Scalar,
    /// A struct in general-purpose and FP registers: x86_64 eightbytes by
    /// class, AArch64 doublewords in x registers.
    Registers,
    /// An AArch64 homogeneous floating-point aggregate in consecutive v
    /// registers.
    Hfa { count: u8, ty: Type },
    /// A struct copied whole to the target's stack arguments.
    Stack,
    /// A struct copied to the trampoline's frame and passed by its address.
    Reference,
}

impl Passing {
    /// The phrase `describe` and `explain` print.
    pub fn describe(self, abi: Abi) -> String {
        let rules = abi.spec().structs;
        match (self, rules) {
            (Passing::Scalar, _) => "scalar".to_string(),
            (Passing::Registers, StructRules::SysV) => {
                "eightbytes in registers by class".to_string()
            }
            (Passing::Registers, StructRules::Win64) => {
                "as an integer of its size, in its position".to_string()
            }
            (Passing::Registers, StructRules::Aapcs64) => "doublewords in x registers".to_string(),
            (Passing::Hfa { count, ty }, _) => format!("HFA of {count} {ty}"),
            (Passing::Stack, StructRules::SysV) => {
                "copied to the stack (MEMORY, or no registers left)".to_string()
            }
            (Passing::Stack, _) if abi.spec().varargs == Varargs::AllOnStack => {
                "copied to the stack (no registers left, or variadic)".to_string()
            }
            (Passing::Stack, _) => "copied to the stack (no registers left)".to_string(),
            (Passing::Reference, _) => "copied to the frame, passed by reference".to_string(),
        }
    }
}

/// One piece of a struct return: `bytes` bytes at `offset` of the return
/// buffer, from return register `reg` of its class (`ty` `u64`: rax, rdx
/// or x0, x1; `f32`/`f64`: xmm0, xmm1 or v0–v3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RetPiece {
    pub offset: u32,
    pub bytes: u8,
    pub ty: Type,
    pub reg: u8,
}

/// How the return value comes back.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ReturnPass {
    /// A scalar in the return register, or nothing for `void`.
    Value,
    /// A struct in return registers, a piece each.
    Pieces(Vec<RetPiece>),
    /// A struct the callee writes to the address the caller passes: rdi
    /// (taking the first GP argument register) on x86_64, x8 on AArch64.
    /// The trampoline passes the packed return buffer.
    Memory,
}

/// A signature classified for one ABI and entry kind: the input of the
/// emitters.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Plan {
    pub abi: Abi,
    pub entry: Entry,
    /// The moves, in argument order: one per scalar argument, one per
    /// piece of a struct argument, and for a struct passed by reference
    /// its copy's pieces and then its address.
    pub args: Vec<Arg>,
    /// The signature's argument types.
    pub arg_types: Vec<Type>,
    /// How each argument of the signature travels.
    pub passing: Vec<Passing>,
    pub ret: Type,
    pub ret_pass: ReturnPass,
    /// Bytes the trampoline reserves below its call: the target's stack
    /// arguments (8 per slot), then copies of structs passed by reference.
    pub stack_bytes: u32,
    /// For one call shape of a variadic function, how many of the
    /// arguments are fixed ([`Signature::variadic`]). A trampoline's code
    /// does not depend on it (Linux passes variadic arguments as fixed
    /// ones); a callback refuses it
    /// ([`emit_callback`](crate::emit_callback)).
    pub variadic: Option<usize>,
}

/// Where a struct argument goes, as an ABI's rules decide.
pub(crate) enum StructArg {
    /// These moves, travelling as the passing says.
    Moves(Passing, Vec<Arg>),
    /// Copied to the frame, its address at `pointer`.
    Reference { pointer: Loc },
}

/// The moves that copy the struct in packed slot `slot` (argument `index`)
/// to the stack at `at`: a piece per 8 bytes, the last one shorter.
pub(crate) fn pieces(layout: &StructType, index: u32, slot: u32, at: u32) -> Vec<Arg> {
    (0..layout.size().div_ceil(8))
        .map(|i| {
            let offset = 8 * i;
            Arg {
                index,
                ty: Type::U64,
                from: Source::Field {
                    slot,
                    offset,
                    // At most 8, so it fits in a u8.
                    bytes: (layout.size() - offset).min(8) as u8,
                },
                to: Loc::Stack(at + offset),
            }
        })
        .collect()
}

/// The type whose code stands for `ty`'s as an argument: the emitters load
/// `u32` as `i32` (32 bits), `u64`, pointers and functions as `i64` (64
/// bits), and `bool` as `u8`.
const fn canonical_arg(ty: Type) -> Type {
    match ty {
        Type::U32 => Type::I32,
        Type::U64 | Type::Pointer | Type::Function => Type::I64,
        Type::Bool => Type::U8,
        other => other,
    }
}

/// The same for a return: 64-bit integers and addresses are stored as
/// they come, and `bool` is narrowed as `u8`; `u32` and `i32` differ.
const fn canonical_ret(ty: Type) -> Type {
    match ty {
        Type::U64 | Type::Pointer | Type::Function => Type::I64,
        Type::Bool => Type::U8,
        other => other,
    }
}

impl Plan {
    /// The plan's shape: the same plan with each type replaced by the one
    /// whose code stands for it (`canonical_arg`, `canonical_ret`), so
    /// that every signature whose trampoline is the same code has the same
    /// shape, `(u64) -> i64` and `(pointer) -> pointer` alike. A shape stub
    /// ([`Target::Argument`](crate::Target::Argument)) is emitted once per
    /// shape. A variadic call shape has the shape of the same arguments
    /// fixed ([`Plan::variadic`] cleared): its trampoline is the same code,
    /// except on Apple's arm64, where variadic arguments take other slots.
    pub fn shape(&self) -> Plan {
        let mut shape = self.clone();
        // Apple's variadic arguments take 8-byte slots where fixed ones
        // would take their own size: there the split stays.
        if self.abi.spec().varargs != Varargs::AllOnStack {
            shape.variadic = None;
        }
        for arg in &mut shape.args {
            arg.ty = canonical_arg(arg.ty);
        }
        for ty in &mut shape.arg_types {
            *ty = canonical_arg(*ty);
        }
        shape.ret = canonical_ret(shape.ret);
        shape
    }

    /// The bytes the stack slot of scalar argument `arg` takes, which its
    /// store writes: the type's own size where the ABI packs stack
    /// arguments (Apple), but for a variadic argument there; 8 otherwise.
    pub fn stack_slot_bytes(&self, arg: &Arg) -> u32 {
        let variadic = self
            .variadic
            .is_some_and(|fixed| arg.index as usize >= fixed);
        match self.abi.spec().stack_slot {
            StackSlot::Natural if !variadic => arg.ty.size(),
            _ => 8,
        }
    }

    /// Whether the trampoline can jump to the target rather than call it:
    /// never the packed entry (it stores the result); the receiver entry
    /// when the return value needs no narrowing; the value entry when the
    /// target takes nothing on the stack (no stack arguments, no struct
    /// copied to pass by reference), which it must find at its own
    /// call-time sp.
    pub fn tail_calls(&self) -> bool {
        match self.entry {
            Entry::Packed => false,
            Entry::Receiver => !self.ret.is_narrow(),
            Entry::Value => self.stack_bytes == 0,
        }
    }

    /// A human-readable table: one line per scalar argument, a line per
    /// struct argument saying how it travels and a line per piece of it,
    /// then the return.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        for arg in &self.args {
            let i = arg.index;
            let ty = self.arg_types.get(i as usize).copied().unwrap_or(arg.ty);
            let first = self.args.iter().position(|a| a.index == i);
            let how = self
                .passing
                .get(i as usize)
                .copied()
                .unwrap_or(Passing::Scalar);
            if how != Passing::Scalar && first == self.args.iter().position(|a| a == arg) {
                out += &format!("  arg {i:<2} {ty}: {}\n", how.describe(self.abi));
            }
            let from = match arg.from {
                Source::Slot(n) => format!("slot {n}"),
                Source::Native(loc) => self.loc_name(loc, arg.ty, true),
                Source::Field {
                    slot,
                    offset,
                    bytes,
                } => format!("slot {slot} +{offset} {bytes}B"),
                Source::StackAddress(off) => format!("&[out+{off}]"),
            };
            let to = self.loc_name(arg.to, arg.ty, false);
            let label = if how == Passing::Scalar {
                format!("{:<8}", ty.to_string())
            } else {
                format!("  {:<6}", arg.ty.name())
            };
            out += &format!("  arg {i:<2} {label} {from:>16} -> {to}\n");
        }
        let ret = match (&self.ret_pass, self.ret) {
            (_, Type::Void) => "nothing".to_string(),
            (ReturnPass::Memory, _) => match self.abi.spec().memory_return {
                MemoryReturn::FirstArgument => format!(
                    "through memory at the return buffer ({}, returned in rax)",
                    self.abi.gp_name(0, 64)
                ),
                MemoryReturn::X8 => "through memory at the return buffer (x8)".to_string(),
            },
            (ReturnPass::Pieces(pieces), _) => pieces
                .iter()
                .map(|p| {
                    let reg = match p.ty {
                        Type::U64 => self.abi.ret_gp_name_at(p.reg),
                        ty => self.abi.fp_name(p.reg, ty),
                    };
                    format!("{reg} -> +{} {}B", p.offset, p.bytes)
                })
                .collect::<Vec<_>>()
                .join(", "),
            (ReturnPass::Value, ty) if ty.is_float() => self.abi.fp_name(0, ty).to_string(),
            (ReturnPass::Value, ty) => {
                let narrowed = match (ty.is_narrow(), self.entry) {
                    (false, _) => "",
                    (true, Entry::Value) => " (raw: the caller extends it)",
                    (true, Entry::Packed | Entry::Receiver) => " (narrowed)",
                };
                self.abi.ret_gp_name(ty).to_string() + narrowed
            }
        };
        out += &format!("  return   {:<8} {ret}", self.ret.to_string());
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

/// Assigns registers and stack slots in argument order, as an ABI's
/// [`AbiSpec`](crate::AbiSpec) says: per class or by shared position, stack
/// slots of 8 bytes or of natural size.
struct Assigner {
    gp: usize,
    fp: usize,
    stack: u32,
    gp_max: usize,
    fp_max: usize,
    counting: Counting,
    slot: StackSlot,
}

impl Assigner {
    /// An assigner for `abi` whose first `gp_used` GP registers (positions
    /// on Win64) are taken.
    fn new(abi: Abi, gp_used: usize) -> Assigner {
        let spec = abi.spec();
        let shared = spec.counting == Counting::SharedPositions;
        Assigner {
            gp: gp_used,
            fp: if shared { gp_used } else { 0 },
            stack: 0,
            gp_max: abi.gp_regs(),
            fp_max: abi.fp_regs(),
            counting: spec.counting,
            slot: spec.stack_slot,
        }
    }

    fn gp_free(&self) -> usize {
        self.gp_max.saturating_sub(self.gp)
    }

    fn fp_free(&self) -> usize {
        self.fp_max.saturating_sub(self.fp)
    }

    /// No later argument takes a GP register (AAPCS64 C.13).
    fn exhaust_gp(&mut self) {
        self.gp = self.gp_max;
    }

    /// No later argument takes an FP register (AAPCS64 C.3).
    fn exhaust_fp(&mut self) {
        self.fp = self.fp_max;
    }

    /// Stack space for a struct of `size` bytes aligned to `align`: its
    /// offset, at a multiple of 8 (and of the alignment), the space rounded
    /// up to 8 bytes.
    fn stack_area(&mut self, size: u32, align: u32) -> u32 {
        let at = self.stack.next_multiple_of(align.max(8));
        self.stack = at + size.next_multiple_of(8);
        at
    }

    /// Stack space of exactly `size` bytes at `align`: an Apple HFA's.
    fn stack_block(&mut self, size: u32, align: u32) -> u32 {
        let at = self.stack.next_multiple_of(align);
        self.stack = at + size;
        at
    }

    /// The next stack slot for a scalar of type `ty`.
    fn stack_slot(&mut self, ty: Type) -> Loc {
        match self.slot {
            StackSlot::Eight => Loc::Stack(self.stack_area(8, 8)),
            StackSlot::Natural => Loc::Stack(self.stack_block(ty.size(), ty.align())),
        }
    }

    /// The next location for a scalar of type `ty`.
    fn next(&mut self, ty: Type) -> Loc {
        let float = ty.is_float();
        let (used, max) = if float {
            (&mut self.fp, self.fp_max)
        } else {
            (&mut self.gp, self.gp_max)
        };
        if *used >= max {
            return self.stack_slot(ty);
        }
        *used += 1;
        // At most 8 registers of a class, so the index fits in a u8.
        let n = (*used - 1) as u8;
        if self.counting == Counting::SharedPositions {
            // The position's other register goes unused.
            (self.gp, self.fp) = (usize::from(n) + 1, usize::from(n) + 1);
        }
        if float {
            Loc::Fp(n)
        } else {
            Loc::Gp(n)
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
/// [`Entry::Value`] also refuses a struct return, whatever the limits
/// (`Ineligible::Struct { index: None }`): its code leaves the return where
/// the target put it, and a struct comes back in pieces or through memory.
/// Otherwise its plan is the packed entry's: the same moves, from the same
/// slots and struct fields to the same locations.
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
    let spec = abi.spec();
    // Where variadic arguments all go on the stack, a receiver entry's
    // caller (which passes them as fixed ones) and its target disagree on
    // where they are, and the stack arguments could not move in place.
    let on_stack = |i: usize| {
        spec.varargs == Varargs::AllOnStack && sig.variadic.is_some_and(|fixed| i >= fixed)
    };
    if entry == Entry::Receiver && (0..sig.args.len()).any(on_stack) {
        return Err(Ineligible::Variadic);
    }
    // A receiver entry is for JS engines' JITs, which pass no structs. A
    // value entry passes struct arguments as the packed entry does, but
    // returns only what fits the one return register it leaves as is.
    let takes_structs = limits.structs && entry != Entry::Receiver;
    if (!takes_structs || entry == Entry::Value) && sig.ret.as_struct().is_some() {
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
    let ret_pass = match (sig.ret, spec.structs) {
        (Type::Struct(layout), StructRules::SysV) => sysv64::struct_return(layout),
        (Type::Struct(layout), StructRules::Win64) => win64::struct_return(layout),
        (Type::Struct(layout), StructRules::Aapcs64) => aapcs64::struct_return(layout),
        _ => ReturnPass::Value,
    };
    // A memory return's address takes the first GP argument register on
    // x86_64 (x8 on AArch64 is no argument register).
    let hidden = usize::from(
        ret_pass == ReturnPass::Memory && spec.memory_return == MemoryReturn::FirstArgument,
    );
    // Registers each argument asks for, GP and FP; `None` for one that goes
    // to the stack wherever registers are free (a struct, or an Apple
    // variadic argument).
    let needs: Vec<Option<(usize, usize)>> = sig
        .args
        .iter()
        .enumerate()
        .map(|(i, &ty)| match (ty, spec.structs) {
            _ if on_stack(i) => None,
            (Type::Struct(layout), StructRules::SysV) => sysv64::register_needs(layout),
            (Type::Struct(layout), StructRules::Win64) => Some(win64::register_needs(layout)),
            (Type::Struct(layout), StructRules::Aapcs64) => aapcs64::register_needs(layout),
            (ty, _) if ty.is_float() => Some((0, 1)),
            _ => Some((1, 0)),
        })
        .collect();
    let gp_args: usize = needs.iter().flatten().map(|&(gp, _)| gp).sum();
    let fp_need: usize = needs.iter().flatten().map(|&(_, fp)| fp).sum();
    let shared = spec.counting == Counting::SharedPositions;
    let rule = match limits.registers {
        Registers::Any => None,
        Registers::Only => {
            if let Some(index) = needs.iter().position(Option::is_none) {
                return Err(match sig.args[index] {
                    Type::Struct(_) => Ineligible::Struct { index: Some(index) },
                    _ => Ineligible::Variadic,
                });
            }
            Some((receiver + hidden + gp_args, abi.gp_regs()))
        }
        Registers::Node => Some((
            gp_args + usize::from(buffer.is_some()),
            node_gp_cap(abi, buffer.is_some()),
        )),
    };
    if let Some((gp_need, have)) = rule {
        if shared && gp_need + fp_need > have {
            return Err(Ineligible::PositionPressure {
                need: gp_need + fp_need,
                have,
            });
        }
        if gp_need > have {
            return Err(Ineligible::GpPressure {
                need: gp_need,
                have,
            });
        }
        if fp_need > abi.fp_regs() {
            return Err(Ineligible::FpPressure {
                need: fp_need,
                have: abi.fp_regs(),
            });
        }
    }

    let mut target = Assigner::new(abi, hidden);
    let mut incoming = Assigner::new(abi, receiver);
    let also_in_gp = spec.varargs == Varargs::FloatsAlsoInGp && sig.variadic.is_some();
    let (mut args, mut passing, mut references) = (Vec::new(), Vec::new(), Vec::new());
    for (i, &ty) in sig.args.iter().enumerate() {
        // At most `max_args` arguments, far below u32::MAX.
        let index = i as u32;
        let Type::Struct(layout) = ty else {
            let from = match entry {
                Entry::Packed | Entry::Value => Source::Slot(index),
                // The receiver entry's caller passes narrow integers as
                // 32-bit ones: on Apple's arm64 each takes a 4-byte stack
                // slot rather than one of its own size.
                Entry::Receiver if ty.is_narrow() => Source::Native(incoming.next(Type::I32)),
                Entry::Receiver => Source::Native(incoming.next(ty)),
            };
            let to = if on_stack(i) {
                Loc::Stack(target.stack_area(8, 8))
            } else {
                target.next(ty)
            };
            args.push(Arg {
                index,
                ty,
                from,
                to,
            });
            // Win64: a variadic callee may read a float from the GP
            // register of its position too.
            if let (true, Loc::Fp(n)) = (also_in_gp, to) {
                args.push(Arg {
                    index,
                    ty,
                    from,
                    to: Loc::Gp(n),
                });
            }
            passing.push(Passing::Scalar);
            continue;
        };
        let placed = match spec.structs {
            _ if on_stack(i) => aapcs64::variadic_struct_arg(layout, index, index, &mut target),
            StructRules::SysV => sysv64::struct_arg(layout, index, index, &mut target),
            StructRules::Win64 => win64::struct_arg(layout, index, index, &mut target),
            StructRules::Aapcs64 => aapcs64::struct_arg(layout, index, index, &mut target),
        };
        match placed {
            StructArg::Moves(how, moves) => {
                args.extend(moves);
                passing.push(how);
            }
            StructArg::Reference { pointer } => {
                references.push((index, layout, pointer));
                passing.push(Passing::Reference);
            }
        }
    }
    // Copies of structs passed by reference go above the stack arguments.
    let mut frame = target.stack;
    for (index, layout, pointer) in references {
        let at = frame.next_multiple_of(layout.align().max(spec.reference_align));
        args.extend(pieces(layout, index, index, at));
        args.push(Arg {
            index,
            ty: Type::Pointer,
            from: Source::StackAddress(at),
            to: pointer,
        });
        frame = at + layout.size().next_multiple_of(8);
    }
    let max = Limits::EMITTER_MAX_STACK;
    if frame.next_multiple_of(16) > max {
        return Err(Ineligible::StackTooLarge { bytes: frame, max });
    }
    Ok(Plan {
        abi,
        entry,
        args,
        arg_types: sig.args.clone(),
        passing,
        ret: sig.ret,
        ret_pass,
        stack_bytes: frame,
        variadic: sig.variadic,
    })
}
