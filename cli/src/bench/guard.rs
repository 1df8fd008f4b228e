//! What the closed-library check costs the calls of an open library: the
//! same target bound with `Function::with_options` (no check) and through
//! a `Library` (`Library::function_at`, whose trampolines load the
//! library's closed byte at entry and branch on it), both entry kinds,
//! their samples taken in turn.

use jitcall::{Function, Library, Options, Tier};

use super::cases::{Case, Origin};
use super::timing::{self, Measurement, Method};
use super::{check_one, packed_loop, receiver_loop};

/// The signatures measured: small callees, where the check's cost shows,
/// register and stack arguments, and a libm function.
pub const CASES: [&str; 5] = ["add-i32", "add-f64", "noop-void", "sum-8-i32", "cos"];

/// One entry kind of one signature, without and with the check.
pub struct Pair {
    pub plain: Measurement,
    pub guarded: Measurement,
}

impl Pair {
    /// What the check adds per call, in nanoseconds (medians).
    pub fn added_ns(&self) -> f64 {
        self.guarded.ns_per_call.median - self.plain.ns_per_call.median
    }
}

pub struct GuardCost {
    pub name: &'static str,
    pub packed: Pair,
    pub receiver: Option<Pair>,
}

/// Measures [`CASES`]; nothing without the JIT tier, which has no check.
///
/// # Errors
///
/// A message when a case is missing, binding fails, or a path returns a
/// different result from the direct call.
pub fn measure(table: &[Case], method: &Method) -> Result<Vec<GuardCost>, String> {
    let this = Library::this_process().map_err(|e| e.to_string())?;
    let options = Options {
        receiver_entry: true,
        ..Options::default()
    };
    let mut costs = Vec::new();
    for name in CASES {
        let case = table
            .iter()
            .find(|case| case.name == name)
            .ok_or_else(|| format!("no case {name} in the table"))?;
        let library = match &case.origin {
            Origin::Symbol { library, .. } => library,
            Origin::Local => &this,
        };
        let failed = |e: jitcall::Error| format!("{name}: binding failed: {e}");
        // SAFETY: the case's target has the case's signature and lives as
        // long as the process (a callee here) or its library, which
        // `table` keeps open.
        let plain =
            unsafe { Function::with_options(case.target, &case.sig, &options) }.map_err(failed)?;
        // SAFETY: as above; the target belongs to `library`.
        let guarded =
            unsafe { library.function_at(case.target, &case.sig, &options) }.map_err(failed)?;
        if plain.tier() != Tier::Jit || guarded.tier() != Tier::Jit {
            return Ok(Vec::new());
        }
        let mut loops = [
            packed_loop(case, &plain),
            packed_loop(case, &guarded),
            receiver_loop(case, &plain),
            receiver_loop(case, &guarded),
        ];
        let names = ["packed", "guarded packed", "receiver", "guarded receiver"];
        for (i, run) in loops.iter_mut().enumerate() {
            if let Some(run) = run {
                check_one(case, names[i], i < 2, run)?;
            }
        }
        let mut measured = timing::measure(&mut loops, method).into_iter();
        let mut pair = || match (measured.next().flatten(), measured.next().flatten()) {
            (Some(plain), Some(guarded)) => Some(Pair { plain, guarded }),
            _ => None,
        };
        let packed = pair().ok_or_else(|| format!("{name}: no packed entry"))?;
        costs.push(GuardCost {
            name,
            packed,
            receiver: pair(),
        });
    }
    Ok(costs)
}
