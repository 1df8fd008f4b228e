//! The tiers every suite runs on, and the tier each binding must land on,
//! stated from the documented rules rather than asked of the library.

#![allow(dead_code)] // each suite uses part of this module

use jitcall::{
    classify, Abi, Entry, Fallback, Function, JitUnavailable, Options, Signature, Tier, Type,
};

/// Options that put a binding on each tier, on top of `base`: its own JIT
/// trampoline, the shape's shared stub (without a receiver entry, which
/// only a trampoline of one's own has), the compiled-in tiers (as under a
/// W^X policy), libffi, and its own trampoline placed through the double
/// mapping.
pub fn each(base: Options) -> [(&'static str, Options); 5] {
    [
        (
            "jit",
            Options {
                specialise: true,
                ..base
            },
        ),
        (
            "shared",
            Options {
                receiver_entry: false,
                ..base
            },
        ),
        (
            "compiled-in",
            Options {
                avoid_jit: true,
                ..base
            },
        ),
        (
            "libffi",
            Options {
                force_libffi: true,
                ..base
            },
        ),
        (
            "double-mapped",
            Options {
                double_map: true,
                ..base
            },
        ),
    ]
}

/// Whether `JITCALL_DOUBLE_MAP` asks for the double mapping.
fn double_map_by_env() -> bool {
    std::env::var_os("JITCALL_DOUBLE_MAP").is_some_and(|v| !v.is_empty() && v != "0")
}

/// Whether `sig`'s shape is in the baked set, as `jitcall_emitters::baked`
/// documents it: at most two arguments of any scalar type or buffers, or
/// three to six of 32- and 64-bit integers, pointers, functions, `f32`
/// and `f64`, with any scalar return.
pub fn in_baked_set(sig: &Signature) -> bool {
    let any = |t: &Type| !matches!(t, Type::Struct(_) | Type::Void);
    let wide = |t: &Type| {
        matches!(
            t,
            Type::I32
                | Type::U32
                | Type::I64
                | Type::U64
                | Type::Pointer
                | Type::Function
                | Type::F32
                | Type::F64
        )
    };
    let args_fit = sig.args.iter().all(any)
        && (sig.args.len() <= 2 || (sig.args.len() <= 6 && sig.args.iter().all(wide)));
    let ret_fits = !matches!(sig.ret, Type::Buffer | Type::Struct(_));
    args_fit && ret_fits
}

/// The compiled-in tier `sig` lands on, for the reason `why`; a shape
/// outside the baked set runs through the register-file stub
/// ([`Function::uses_register_file`]).
pub fn compiled_in(_sig: &Signature, why: Fallback) -> Tier {
    Tier::Baked(why)
}

/// Checks that `f`, on the baked tier, uses its shape's own stub exactly
/// when the baked set has the shape.
pub fn check_baked_stub(f: &Function) {
    if let Tier::Baked(_) = f.tier() {
        assert_eq!(
            f.uses_register_file(),
            !in_baked_set(f.signature()),
            "{}: the register-file stub exactly outside the baked set",
            f.signature()
        );
    }
}

/// The ABI a binding with `options` follows: the one asked for, else the
/// host's.
pub fn abi_of(options: &Options) -> Option<Abi> {
    options.abi.or(Abi::host())
}

/// The tier a binding of `sig` with `options` must be on, bound alone or
/// (`batch`) among others. A binding of another convention than the host's
/// (Win64 on an x86_64 host) always has a trampoline of its own, and no
/// compiled-in tier: without JIT memory it runs on libffi.
pub fn expected(sig: &Signature, options: &Options, batch: bool) -> Tier {
    if options.force_libffi {
        return Tier::Libffi(Fallback::Forced);
    }
    let Some(abi) = abi_of(options) else {
        return Tier::Libffi(Fallback::JitUnavailable(JitUnavailable::UnsupportedAbi));
    };
    if let Err(rule) = classify(sig, abi, Entry::Packed, &options.limits) {
        return Tier::Libffi(Fallback::Ineligible(rule));
    }
    let native = Some(abi) == Abi::host();
    let without_jit = |why| {
        if native {
            compiled_in(sig, why)
        } else {
            Tier::Libffi(why)
        }
    };
    if options.avoid_jit {
        return without_jit(Fallback::Forced);
    }
    if (options.double_map || double_map_by_env()) && jitcall::double_map_status().is_ok() {
        return Tier::Jit;
    }
    if let Err(why) = jitcall::jit_status() {
        return without_jit(Fallback::JitUnavailable(why));
    }
    if batch || options.specialise || options.receiver_entry || !native {
        Tier::Jit
    } else {
        Tier::Shared
    }
}

/// Whether `f`, bound with `options`, must have a receiver entry: asked
/// for, eligible for one, and on the JIT tier (a trampoline) or the baked
/// tier (a static thunk), where the host has static thunks.
pub fn has_receiver(f: &Function, options: &Options) -> bool {
    let eligible = abi_of(options)
        .is_some_and(|abi| classify(f.signature(), abi, Entry::Receiver, &options.limits).is_ok());
    options.receiver_entry && eligible && matches!(f.tier(), Tier::Jit | Tier::Baked(_))
}

/// Bindings counted by tier, without the reasons, for a suite's summary.
#[derive(Default)]
pub struct Tally(std::collections::BTreeMap<&'static str, usize>);

impl Tally {
    pub fn add(&mut self, f: &Function) {
        let kind = match f.tier() {
            Tier::Baked(_) if f.uses_register_file() => "baked (register file)",
            Tier::Jit => "JIT",
            Tier::Shared => "shared",
            Tier::Baked(_) => "baked",
            Tier::Libffi(_) => "libffi",
        };
        *self.0.entry(kind).or_default() += 1;
    }
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|(k, n)| format!("{n} {k}")).collect();
        f.write_str(&parts.join(", "))
    }
}
