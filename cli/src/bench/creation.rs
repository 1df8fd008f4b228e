//! Creation cost and code density: how long binding one function takes,
//! alone and in a batch of 1,000, and how many bytes of code mapping each
//! live trampoline holds.

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
    /// when none of them is on the JIT tier.
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

/// The creation and density measurements.
#[derive(Clone, Copy, Debug)]
pub struct Creation {
    /// Nanoseconds per single `Function::new`.
    pub single: Summary,
    /// Nanoseconds per function in a `Function::batch` of [`BATCH`].
    pub batch_each: Summary,
    /// Functions from single `Function::new` calls, all alive at once.
    pub single_density: Option<Density>,
    /// [`BATCH`] functions from one batch.
    pub batch_density: Option<Density>,
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

    // Warm up the allocator, the page tables and the code paths.
    // SAFETY: every target is a callee of this binary, bound to the
    // signature its Rust type produced (see `case!`).
    drop(unsafe { Function::batch(&items, &Options::default()) }.map_err(error)?);

    // Single creations stay alive (up to a batch's worth) so that the
    // mapping of each is counted while the others exist too.
    let mut live = Vec::with_capacity(BATCH);
    let mut times = Vec::with_capacity(method.creations);
    let mut single_density = None;
    for (target, sig) in items.iter().copied().cycle().take(method.creations) {
        let start = Instant::now();
        // SAFETY: as above.
        let function = unsafe { Function::new(target, sig) }.map_err(error)?;
        times.push(start.elapsed().as_nanos() as f64);
        live.push(function);
        if live.len() == BATCH {
            single_density = single_density.or(Density::of(&live));
            live.clear();
        }
    }
    if single_density.is_none() {
        single_density = Density::of(&live);
    }
    drop(live);
    let single = Summary::of(&times);

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
        single,
        batch_each: Summary::of(&per_function),
        single_density,
        batch_density,
    })
}
