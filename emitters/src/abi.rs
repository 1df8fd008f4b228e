//! The calling conventions jitcall emits code for, each a table of facts.
//!
//! [`Abi::spec`] is the one place that tells the conventions apart: it
//! gives each its [`AbiSpec`], and classification and the emitters read
//! the fields, never the variant. Win64 is written as its differences from
//! x86_64 System V and Apple's arm64 as its differences from AAPCS64
//! (struct update syntax), so each variant's constant documents exactly
//! where it departs from its base:
//!
//! | | SysV64 | Win64 | Aapcs64 | AppleAarch64 |
//! |---|---|---|---|---|
//! | argument registers | 6 GP + 8 FP, counted per class | 4 positions shared by GP and FP, by argument index | 8 GP + 8 FP, per class | as AAPCS64 |
//! | shadow space | — | 32 bytes above the return address | — | — |
//! | stack argument slots | 8 bytes | 8 bytes | 8 bytes | natural size and alignment |
//! | variadic arguments | as fixed, `al` = vector registers used | as fixed, floats also in the GP register of their position | as fixed | all on the stack, 8-byte slots |
//! | structs | eightbytes by class | 1, 2, 4, 8 bytes as an integer, others by reference | HFA in v registers, ≤ 16 bytes in x registers, larger by reference | as AAPCS64, an HFA on the stack at its members' alignment |
//! | memory return address | rdi, the first position | rcx, the first position | x8 | x8 |
//! | callee-saved | rbx rbp r12–r15 | also rdi rsi xmm6–15 | x19–x28 x29 x30 d8–d15 | also x18 never touched |
//! | `char` | signed | signed | unsigned | signed |
//! | compiled-in tiers, callbacks | yes | — | yes | — |

use std::fmt;

/// An instruction set jitcall emits code for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Isa {
    X86_64,
    Aarch64,
}

impl Isa {
    /// The instruction set of the machine this code was compiled for, if
    /// jitcall emits code for it.
    pub const fn host() -> Option<Isa> {
        if cfg!(target_arch = "x86_64") {
            Some(Isa::X86_64)
        } else if cfg!(target_arch = "aarch64") {
            Some(Isa::Aarch64)
        } else {
            None
        }
    }
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Isa::X86_64 => "x86_64",
            Isa::Aarch64 => "AArch64",
        })
    }
}

/// A calling convention jitcall emits code for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Abi {
    /// x86_64 System V (Linux, the BSDs, macOS on Intel).
    SysV64,
    /// The Microsoft x64 convention (Windows; `extern "win64"`, GCC's
    /// `ms_abi`).
    Win64,
    /// AArch64 AAPCS64 as used on Linux.
    Aapcs64,
    /// Apple's arm64 variant of AAPCS64 (macOS, iOS).
    AppleAarch64,
}

/// How argument registers are handed out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counting {
    /// Each class counts on its own: the next integer takes the next GP
    /// register whatever the floats took.
    PerClass,
    /// Argument `i` takes position `i`: GP register `i` or FP register
    /// `i` by its class, the other one of the pair left unused.
    SharedPositions,
}

/// How much stack a scalar stack argument takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StackSlot {
    /// An 8-byte slot each.
    Eight,
    /// Its own size, at its own alignment (Apple: two `char`s after eight
    /// GP arguments sit at `[sp]` and `[sp + 1]`).
    Natural,
}

/// How the variadic arguments of a call are passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Varargs {
    /// As fixed ones, and `al` holds (an upper bound on) the number of
    /// vector registers used.
    AlHoldsVectorCount,
    /// As fixed ones, and a float in a register position is also copied to
    /// the GP register of that position.
    FloatsAlsoInGp,
    /// As fixed ones.
    AsFixed,
    /// Every variadic argument on the stack in an 8-byte slot, structs
    /// rounded up to 8 bytes.
    AllOnStack,
}

/// Which family's rules place structs (a file each in `classify/`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StructRules {
    /// x86_64 System V eightbyte classes (`classify/sysv64.rs`).
    SysV,
    /// Win64: by value as an integer when 1, 2, 4 or 8 bytes, else by
    /// reference (`classify/win64.rs`).
    Win64,
    /// AAPCS64's HFAs, doublewords and references (`classify/aapcs64.rs`).
    Aapcs64,
}

/// Where a callee finds the address of a struct it returns through memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemoryReturn {
    /// In the first GP argument register, which the arguments then skip
    /// (rdi on System V, rcx on Win64); the callee returns it in rax.
    FirstArgument,
    /// In x8, which passes no argument.
    X8,
}

/// The facts of one calling convention that classification and the
/// emitters read. Registers are hardware numbers of their instruction set
/// (x86_64: rax 0, rcx 1, rdx 2, rbx 3, rsp 4, rbp 5, rsi 6, rdi 7, r8–r15;
/// AArch64: x0–x30).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AbiSpec {
    pub name: &'static str,
    pub isa: Isa,
    /// The GP argument registers, in order.
    pub gp_args: &'static [u8],
    /// The GP registers a value comes back in, in order (rax, rdx; x0, x1).
    pub gp_returns: &'static [u8],
    /// The FP argument registers: xmm0… or v0…, this many.
    pub fp_args: u8,
    pub counting: Counting,
    /// Bytes the caller reserves between the return address and the first
    /// stack argument, which the callee may write.
    pub shadow_bytes: u32,
    pub stack_slot: StackSlot,
    pub varargs: Varargs,
    pub structs: StructRules,
    pub memory_return: MemoryReturn,
    /// The alignment of a struct the caller copies to pass by reference.
    pub reference_align: u32,
    /// GP registers a callee must preserve (or, for `reserved`, never
    /// write): what a trampoline may not clobber.
    pub callee_saved_gp: &'static [u8],
    /// FP registers whose low 64 bits (AArch64) or all (x86_64) a callee
    /// must preserve.
    pub callee_saved_fp: &'static [u8],
    /// Registers the platform owns: never read or written.
    pub reserved: &'static [u8],
    /// Whether C's `char` is signed.
    pub char_signed: bool,
    /// Whether jitcall runs on platforms of this ABI (Linux on x86_64 and
    /// AArch64), so that it has the compiled-in tiers (baked stubs, the
    /// register file) and callbacks. The others are emitted for targets a
    /// host of the same instruction set calls (Win64 functions through
    /// `ms_abi`, Apple's layout against fixtures).
    pub hosted: bool,
    /// Node.js's cap on general-purpose arguments ([`Registers::Node`](crate::Registers::Node)),
    /// and the cap when a `buffer` is among them; on Win64 a cap on
    /// register positions, whatever their class.
    pub node_gp_cap: usize,
    pub node_gp_cap_with_buffer: usize,
}

const SYSV64: AbiSpec = AbiSpec {
    name: "x86_64 System V",
    isa: Isa::X86_64,
    // rdi, rsi, rdx, rcx, r8, r9.
    gp_args: &[7, 6, 2, 1, 8, 9],
    // rax, rdx.
    gp_returns: &[0, 2],
    fp_args: 8,
    counting: Counting::PerClass,
    shadow_bytes: 0,
    stack_slot: StackSlot::Eight,
    varargs: Varargs::AlHoldsVectorCount,
    structs: StructRules::SysV,
    memory_return: MemoryReturn::FirstArgument,
    reference_align: 8,
    // rbx, rbp, r12–r15.
    callee_saved_gp: &[3, 5, 12, 13, 14, 15],
    callee_saved_fp: &[],
    reserved: &[],
    char_signed: true,
    hosted: true,
    // The receiver takes rdi; Node's trampoline reads the sixth argument
    // from the stack, but its buffer helper needs every argument in a
    // register.
    node_gp_cap: 6,
    node_gp_cap_with_buffer: 5,
};

/// Win64, as its differences from System V.
const WIN64: AbiSpec = AbiSpec {
    name: "x86_64 Win64",
    // rcx, rdx, r8, r9.
    gp_args: &[1, 2, 8, 9],
    fp_args: 4,
    counting: Counting::SharedPositions,
    shadow_bytes: 32,
    varargs: Varargs::FloatsAlsoInGp,
    structs: StructRules::Win64,
    // The copy "must be 16-byte aligned" (Microsoft's x64 calling
    // convention, "Parameter passing").
    reference_align: 16,
    // rbx, rbp, rsi, rdi, r12–r15.
    callee_saved_gp: &[3, 5, 6, 7, 12, 13, 14, 15],
    // xmm6–xmm15.
    callee_saved_fp: &[6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
    hosted: false,
    // Node's fast path on Win64: the receiver in rcx, three positions left.
    node_gp_cap: 3,
    node_gp_cap_with_buffer: 3,
    ..SYSV64
};

const AAPCS64: AbiSpec = AbiSpec {
    name: "AArch64 AAPCS64",
    isa: Isa::Aarch64,
    gp_args: &[0, 1, 2, 3, 4, 5, 6, 7],
    gp_returns: &[0, 1],
    fp_args: 8,
    counting: Counting::PerClass,
    shadow_bytes: 0,
    stack_slot: StackSlot::Eight,
    varargs: Varargs::AsFixed,
    structs: StructRules::Aapcs64,
    memory_return: MemoryReturn::X8,
    reference_align: 8,
    // x19–x28, x29 (fp), x30 (lr).
    callee_saved_gp: &[19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30],
    // d8–d15.
    callee_saved_fp: &[8, 9, 10, 11, 12, 13, 14, 15],
    reserved: &[],
    char_signed: false,
    hosted: true,
    // Eight registers less the receiver.
    node_gp_cap: 7,
    node_gp_cap_with_buffer: 7,
};

/// Apple's arm64, as its differences from AAPCS64 ("Writing ARM64 code for
/// Apple platforms"). Callers also extend 8- and 16-bit arguments to 32
/// bits, which every trampoline does on every ABI already.
const APPLE_AARCH64: AbiSpec = AbiSpec {
    name: "Apple arm64",
    stack_slot: StackSlot::Natural,
    varargs: Varargs::AllOnStack,
    // x18, the platform register.
    reserved: &[18],
    char_signed: true,
    hosted: false,
    ..AAPCS64
};

impl Abi {
    /// Every supported ABI.
    pub const ALL: [Abi; 4] = [Abi::SysV64, Abi::Win64, Abi::Aapcs64, Abi::AppleAarch64];

    /// The facts of this convention.
    pub const fn spec(self) -> &'static AbiSpec {
        match self {
            Abi::SysV64 => &SYSV64,
            Abi::Win64 => &WIN64,
            Abi::Aapcs64 => &AAPCS64,
            Abi::AppleAarch64 => &APPLE_AARCH64,
        }
    }

    /// The C ABI of the machine this code was compiled for, if jitcall
    /// emits code for it and runs it there (Linux and the other Unix-like
    /// systems; not Windows, whose executable memory jitcall does not
    /// manage, nor Apple's platforms).
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
        self.spec().name
    }

    pub const fn isa(self) -> Isa {
        self.spec().isa
    }

    /// The type C's plain `char` is in this convention: `i8` where `char`
    /// is signed (x86_64, Apple's arm64), `u8` where it is not (AAPCS64 on
    /// Linux). The `char` of a signature is the host's
    /// ([`Type::C_CHAR`](crate::Type::C_CHAR)); a runtime binding a target
    /// of another convention maps its `char` with this.
    pub const fn c_char(self) -> crate::Type {
        if self.spec().char_signed {
            crate::Type::I8
        } else {
            crate::Type::U8
        }
    }

    /// General-purpose argument registers (Win64: register positions).
    pub const fn gp_regs(self) -> usize {
        self.spec().gp_args.len()
    }

    /// FP/SIMD argument registers (Win64: register positions).
    pub const fn fp_regs(self) -> usize {
        self.spec().fp_args as usize
    }

    /// The assembler name of GP argument register `n` holding a value of
    /// `bits` width (32 or 64).
    pub fn gp_name(self, n: u8, bits: u32) -> &'static str {
        match self.spec().gp_args.get(usize::from(n)) {
            Some(&reg) => gp_register_name(self.isa(), reg, bits),
            None => "?",
        }
    }

    /// The assembler name of the GP register an integer `ty` returns in.
    pub fn ret_gp_name(self, ty: crate::Type) -> &'static str {
        let bits = match ty.int_width() {
            Some((64, _)) | None => 64,
            Some(_) => 32,
        };
        gp_register_name(self.isa(), self.spec().gp_returns[0], bits)
    }

    /// The assembler name of GP return register `n`, 64 bits wide.
    pub fn ret_gp_name_at(self, n: u8) -> &'static str {
        match self.spec().gp_returns.get(usize::from(n)) {
            Some(&reg) => gp_register_name(self.isa(), reg, 64),
            None => "?",
        }
    }

    /// The assembler name of FP argument register `n` holding `ty`.
    pub fn fp_name(self, n: u8, ty: crate::Type) -> &'static str {
        const XMM: [&str; 8] = [
            "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7",
        ];
        const S: [&str; 8] = ["s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7"];
        const D: [&str; 8] = ["d0", "d1", "d2", "d3", "d4", "d5", "d6", "d7"];
        let table: &[&str] = match (self.isa(), ty) {
            (Isa::X86_64, _) => &XMM,
            (Isa::Aarch64, crate::Type::F32) => &S,
            (Isa::Aarch64, _) => &D,
        };
        table.get(usize::from(n)).copied().unwrap_or("?")
    }
}

/// The assembler name of GP register `reg` (a hardware number) of `isa`
/// at `bits` width (32 or 64).
pub fn gp_register_name(isa: Isa, reg: u8, bits: u32) -> &'static str {
    const R64: [&str; 16] = [
        "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12",
        "r13", "r14", "r15",
    ];
    const R32: [&str; 16] = [
        "eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi", "r8d", "r9d", "r10d", "r11d",
        "r12d", "r13d", "r14d", "r15d",
    ];
    const X: [&str; 31] = [
        "x0", "x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8", "x9", "x10", "x11", "x12", "x13",
        "x14", "x15", "x16", "x17", "x18", "x19", "x20", "x21", "x22", "x23", "x24", "x25", "x26",
        "x27", "x28", "x29", "x30",
    ];
    const W: [&str; 31] = [
        "w0", "w1", "w2", "w3", "w4", "w5", "w6", "w7", "w8", "w9", "w10", "w11", "w12", "w13",
        "w14", "w15", "w16", "w17", "w18", "w19", "w20", "w21", "w22", "w23", "w24", "w25", "w26",
        "w27", "w28", "w29", "w30",
    ];
    let table: &[&str] = match (isa, bits > 32) {
        (Isa::X86_64, true) => &R64,
        (Isa::X86_64, false) => &R32,
        (Isa::Aarch64, true) => &X,
        (Isa::Aarch64, false) => &W,
    };
    table.get(usize::from(reg)).copied().unwrap_or("?")
}

impl fmt::Display for Abi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_variant_differs_from_its_base_only_where_its_table_says() {
        // Win64 and Apple arm64 are written as differences: the fields
        // they do not name are their base's.
        let (win, sysv) = (Abi::Win64.spec(), Abi::SysV64.spec());
        assert_eq!(
            (win.isa, win.stack_slot, win.memory_return, win.char_signed),
            (
                sysv.isa,
                sysv.stack_slot,
                sysv.memory_return,
                sysv.char_signed
            )
        );
        let (apple, linux) = (Abi::AppleAarch64.spec(), Abi::Aapcs64.spec());
        assert_eq!(
            (apple.gp_args, apple.fp_args, apple.counting, apple.structs),
            (linux.gp_args, linux.fp_args, linux.counting, linux.structs)
        );
        assert_eq!(apple.reserved, &[18]);
        assert_eq!(apple.stack_slot, StackSlot::Natural);
    }

    #[test]
    fn the_hosts_char_is_its_abis() {
        if let Some(abi) = Abi::host() {
            assert_eq!(abi.c_char(), crate::Type::C_CHAR, "{abi}");
        }
        let signed: Vec<_> = Abi::ALL.iter().map(|abi| abi.c_char()).collect();
        use crate::Type::{I8, U8};
        assert_eq!(signed, [I8, I8, U8, I8], "{:?}", Abi::ALL);
    }

    #[test]
    fn register_names_follow_the_hardware_numbers() {
        let names: Vec<&str> = (0..4).map(|n| Abi::Win64.gp_name(n, 64)).collect();
        assert_eq!(names, ["rcx", "rdx", "r8", "r9"]);
        let names: Vec<&str> = (0..6).map(|n| Abi::SysV64.gp_name(n, 32)).collect();
        assert_eq!(names, ["edi", "esi", "edx", "ecx", "r8d", "r9d"]);
        assert_eq!(Abi::AppleAarch64.gp_name(7, 32), "w7");
        assert_eq!(Abi::Win64.gp_name(4, 64), "?");
        assert_eq!(Abi::Win64.ret_gp_name(crate::Type::U8), "eax");
        assert_eq!(Abi::AppleAarch64.ret_gp_name(crate::Type::Pointer), "x0");
    }

    #[test]
    fn the_host_abi_is_of_the_host_instruction_set() {
        if let Some(abi) = Abi::host() {
            assert_eq!(Some(abi.isa()), Isa::host());
        }
    }
}
