//! The timing method: calibrate, warm up, then take many samples of many
//! iterations each, the paths of one signature interleaved so that a slow
//! stretch of the machine (another build on the same core, a frequency
//! change) touches all of them alike and their ratios stay fair.

use std::time::{Duration, Instant};

/// How long to measure.
#[derive(Clone, Copy, Debug)]
pub struct Method {
    /// Time each path runs, after calibration, before sampling starts.
    pub warm_up: Duration,
    /// The least time one sample takes; its iteration count is calibrated
    /// to reach it.
    pub sample: Duration,
    /// Samples per path.
    pub samples: usize,
    /// Single creations timed, one `Function::new` each.
    pub creations: usize,
    /// Batches of 1,000 timed.
    pub batches: usize,
}

impl Method {
    /// The default run: about half a second per signature. Samples are
    /// short so that most of them fit between two preemptions on a busy
    /// machine, and many so that the median ignores those that do not.
    pub const FULL: Method = Method {
        warm_up: Duration::from_millis(10),
        sample: Duration::from_micros(300),
        samples: 151,
        creations: 2000,
        batches: 21,
    };

    /// `--quick`: a smoke run of a few seconds, for CI.
    pub const QUICK: Method = Method {
        warm_up: Duration::from_millis(1),
        sample: Duration::from_micros(100),
        samples: 15,
        creations: 200,
        batches: 3,
    };
}

/// Median, least and greatest of a set of samples.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    /// How many samples.
    pub samples: usize,
}

impl Summary {
    /// Summarises `values` (not empty).
    pub fn of(values: &[f64]) -> Summary {
        assert!(!values.is_empty(), "a summary needs at least one sample");
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        };
        Summary {
            median,
            min: sorted[0],
            max: sorted[n - 1],
            samples: n,
        }
    }
}

/// Nanoseconds per call of one path, with the iterations per sample.
#[derive(Clone, Copy, Debug)]
pub struct Measurement {
    pub ns_per_call: Summary,
    pub iters_per_sample: u64,
}

/// A loop that makes the given number of calls (at least one) and returns
/// something of the last one, which the timing keeps alive.
pub type Loop<'a> = Box<dyn FnMut(u64) -> u64 + 'a>;

fn time(run: &mut Loop, iters: u64) -> Duration {
    let start = Instant::now();
    std::hint::black_box(run(iters));
    start.elapsed()
}

/// The iteration count that makes one sample of `run` last about
/// `method.sample`.
fn calibrate(run: &mut Loop, method: &Method) -> u64 {
    let mut iters = 1u64;
    loop {
        let elapsed = time(run, iters);
        // Once a sample is long enough to time reliably, scale to the target.
        if elapsed >= method.sample / 8 || iters >= 1 << 40 {
            let scale = method.sample.as_secs_f64() / elapsed.as_secs_f64().max(1e-9);
            return ((iters as f64 * scale).ceil() as u64).max(1);
        }
        iters *= 2;
    }
}

/// Measures every loop in `paths` (`None` where a path does not apply):
/// each is calibrated and warmed up, then sample `s` of every path is
/// taken before sample `s + 1` of any.
pub fn measure(paths: &mut [Option<Loop>], method: &Method) -> Vec<Option<Measurement>> {
    let iters: Vec<u64> = paths
        .iter_mut()
        .map(|run| run.as_mut().map_or(0, |run| calibrate(run, method)))
        .collect();
    for (run, &n) in paths.iter_mut().zip(&iters) {
        if let Some(run) = run {
            let start = Instant::now();
            while start.elapsed() < method.warm_up {
                time(run, n);
            }
        }
    }
    let mut samples = vec![Vec::with_capacity(method.samples); paths.len()];
    for _ in 0..method.samples {
        for ((run, &n), taken) in paths.iter_mut().zip(&iters).zip(&mut samples) {
            if let Some(run) = run {
                taken.push(time(run, n).as_nanos() as f64 / n as f64);
            }
        }
    }
    paths
        .iter()
        .zip(samples.iter().zip(iters))
        .map(|(run, (taken, iters_per_sample))| {
            run.as_ref().map(|_| Measurement {
                ns_per_call: Summary::of(taken),
                iters_per_sample,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::Summary;

    #[test]
    fn median_of_odd_and_even_counts() {
        let odd = Summary::of(&[3.0, 1.0, 2.0]);
        assert_eq!((odd.median, odd.min, odd.max), (2.0, 1.0, 3.0));
        let even = Summary::of(&[4.0, 1.0, 3.0, 2.0]);
        assert_eq!((even.median, even.min, even.max), (2.5, 1.0, 4.0));
    }
}
