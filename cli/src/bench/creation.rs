//! Creation cost and code density: how long binding one function takes
//! (a shape already bound, a new shape, a trampoline of its own, the baked
//! tier with and without a receiver entry, double-mapped) and each in a
//! batch of 1,000, and how many bytes of code mapping
//! each live function holds.

use std::collections::BTreeSet;
use std::ffi::c_void;
use std::time::Instant;

use jitcall::{Function, Options, Signature};

use super::cases::Case;
use super::timing::{Method, Summary};

/// Functions per batch, as in DESIGN.md's targets.
pub const BATCH: usize = 1000;

/// Bytes of code mapping held by a set of live functions.
#[derive(Clone, Copy, Debug)]
pub struct Density {
    /// Live functions measured.
    pub functions: usize,
    /// Bytes of their distinct code mappings.
    pub bytes: u64,
}

impl Density {
    /// Measures `functions`, counting each shared mapping once; `None`
    /// when none of them has a code mapping.
    fn of(functions: &[Function]) -> Option<Density> {
        let mappings: BTreeSet<(u64, u64)> = functions
            .iter()
            .filter_map(Function::code_mapping)
            .map(|range| (range.start, range.end))
            .collect();
        if mappings.is_empty() {
            return None;
        }
        Some(Density {
            functions: functions.len(),
            bytes: mappings.iter().map(|(start, end)| end - start).sum(),
        })
    }

    /// Bytes per live function.
    pub fn per_function(&self) -> f64 {
        self.bytes as f64 / self.functions as f64
    }
}

/// The creation and density measurements, in nanoseconds per function.
#[derive(Clone, Copy, Debug)]
pub struct Creation {
    /// `Function::new` while a function of the same shape lives: its
    /// shared stub exists, nothing is mapped.
    pub repeated_shape: Summary,
    /// `Function::new` of a shape no live function has: its shared stub
    /// is emitted and mapped.
    pub new_shape: Summary,
    /// `Function::with_options` with `specialise`: a trampoline and a
    /// mapping of its own.
    pub own: Summary,
    /// `Function::with_options` with `avoid_jit`: the baked tier.
    pub baked: Summary,
    /// The same with a receiver entry: a static thunk pointed at baked code.
    pub baked_receiver: Summary,
    /// `Function::with_options` with `double_map`: a trampoline of its own
    /// packed into a double-mapped chunk; `None` where the process refuses
    /// the double mapping.
    pub double_mapped: Option<Summary>,
    /// Each function in a `Function::batch` of [`BATCH`].
    pub batch_each: Summary,
    /// Functions from single `Function::new` calls, all alive at once.
    pub single_density: Option<Density>,
    /// [`BATCH`] functions from one batch.
    pub batch_density: Option<Density>,
}

/// Times `bind` over `items`, `count` times in turn; each function is
/// handed to `keep`, which decides whether it stays alive.
fn time_each(
    items: &[(*const c_void, &Signature)],
    count: usize,
    bind: impl Fn(*const c_void, &Signature) -> jitcall::Result<Function>,
    mut keep: impl FnMut(Function),
) -> Result<Summary, String> {
    let mut times = Vec::with_capacity(count);
    for &(target, sig) in items.iter().cycle().take(count) {
        let start = Instant::now();
        let function = bind(target, sig).map_err(|e| format!("binding failed: {e}"))?;
        times.push(start.elapsed().as_nanos() as f64);
        keep(function);
    }
    Ok(Summary::of(&times))
}

/// Measures creation over the callees defined in this binary, cycling
/// through their signatures so that trampolines of every shape are made.
///
/// # Errors
///
/// A message when binding fails.
pub fn measure(cases: &[Case], method: &Method) -> Result<Creation, String> {
    let local: Vec<(*const c_void, &Signature)> = cases
        .iter()
        .filter(|case| !case.is_library_symbol())
        .map(|case| (case.target, &case.sig))
        .collect();
    let items: Vec<(*const c_void, &Signature)> =
        local.iter().copied().cycle().take(BATCH).collect();
    let error = |e: jitcall::Error| format!("binding failed: {e}");
    let with = |options: Options| {
        // SAFETY: every target is a callee of this binary, bound to the
        // signature its Rust type produced (see `case!`).
        move |target, sig: &Signature| unsafe { Function::with_options(target, sig, &options) }
    };
    let specialise = Options {
        specialise: true,
        ..Options::default()
    };
    let avoid_jit = Options {
        avoid_jit: true,
        ..Options::default()
    };

    // Warm up the allocator, the page tables and the code paths.
    // SAFETY: as above.
    drop(unsafe { Function::batch(&items, &Options::default()) }.map_err(error)?);

    // A new shape each time: every function is dropped before the next,
    // and with it its shape's stub.
    let new_shape = time_each(&local, method.creations, with(Options::default()), drop)?;
    // Then one function of every shape kept alive: the rest reuse its stub.
    let anchors: Vec<Function> = local
        .iter()
        .map(|&(target, sig)| with(Options::default())(target, sig))
        .collect::<jitcall::Result<_>>()
        .map_err(error)?;
    // Single creations stay alive (up to a batch's worth) so that the
    // mappings of all are counted while the others exist too.
    let mut live = Vec::with_capacity(BATCH);
    let mut single_density = None;
    let repeated_shape = time_each(
        &local,
        method.creations,
        with(Options::default()),
        |function| {
            live.push(function);
            if live.len() == BATCH {
                single_density = single_density.or(Density::of(&live));
                live.clear();
            }
        },
    )?;
    if single_density.is_none() {
        single_density = Density::of(&live);
    }
    drop((live, anchors));
    let own = time_each(&local, method.creations, with(specialise), drop)?;
    let baked = time_each(&local, method.creations, with(avoid_jit), drop)?;
    let baked_receiver = time_each(
        &local,
        method.creations,
        with(Options {
            receiver_entry: true,
            ..avoid_jit
        }),
        drop,
    )?;

    let double_mapped = match jitcall::double_map_status() {
        Ok(()) => Some(time_each(
            &local,
            method.creations,
            with(Options {
                double_map: true,
                ..Options::default()
            }),
            drop,
        )?),
        Err(_) => None,
    };

    let mut per_function = Vec::with_capacity(method.batches);
    let mut batch_density = None;
    for _ in 0..method.batches {
        let start = Instant::now();
        // SAFETY: as above.
        let functions = unsafe { Function::batch(&items, &Options::default()) }.map_err(error)?;
        per_function.push(start.elapsed().as_nanos() as f64 / BATCH as f64);
        batch_density = batch_density.or(Density::of(&functions));
    }

    Ok(Creation {
        repeated_shape,
        new_shape,
        own,
        baked,
        baked_receiver,
        double_mapped,
        batch_each: Summary::of(&per_function),
        single_density,
        batch_density,
    })
}
