//! The report: the tables, the comparison with DESIGN.md's targets, and
//! the JSON form of the same results.

use std::fmt::Write;

use serde_json::{json, Value as Json};

use super::callbacks::{CallbackRow, Column};
use super::creation::{Density, BATCH};
use super::guard::Pair;
use super::refused::Refused;
use super::timing::{Measurement, Summary};
use super::{CaseResult, Machine, Path, ReceiverKind, Results};

/// Width of the name column.
const NAME: usize = 13;
/// Width of a path column.
const CELL: usize = 14;

/// A duration in nanoseconds, in the unit that suits it.
fn duration(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.2} ns")
    }
}

fn kib(bytes: f64) -> String {
    format!("{:.1} KiB", bytes / 1024.0)
}

fn met(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "MISSED"
    }
}

/// The header of a table of `paths`.
fn header(out: &mut String, paths: &[Path]) {
    let _ = write!(out, "{:<NAME$}", "signature");
    for path in paths {
        let _ = write!(out, "{:>CELL$}", path.key());
    }
    out.push('\n');
}

/// One table row over `paths`: `cell` renders each measured path.
fn row(
    out: &mut String,
    case: &CaseResult,
    paths: &[Path],
    cell: impl Fn(Path, &Measurement) -> String,
) {
    let _ = write!(out, "{:<NAME$}", case.name);
    for &path in paths {
        let text = case.get(path).map_or("—".to_string(), |m| cell(path, m));
        let _ = write!(out, "{text:>CELL$}");
    }
    out.push('\n');
}

/// The median table of `cases` over `paths`, each with its ratio to the
/// direct call.
fn medians(out: &mut String, cases: &[CaseResult], paths: &[Path]) {
    header(out, paths);
    for case in cases {
        let direct = case.get(Path::Direct).map(|m| m.ns_per_call.median);
        row(out, case, paths, |path, m| {
            let median = m.ns_per_call.median;
            match (path, direct) {
                (Path::Direct, _) | (_, None) => format!("{median:.2}"),
                (_, Some(direct)) => format!("{median:.2} {:>5.2}×", median / direct),
            }
        });
    }
}

/// A set of ratios, each with the signature it belongs to.
struct Spread<'a> {
    ratios: Vec<(&'a str, f64)>,
    low: (&'a str, f64),
    high: (&'a str, f64),
}

impl<'a> Spread<'a> {
    /// `None` for no ratios.
    fn of(ratios: impl Iterator<Item = (&'a str, f64)>) -> Option<Spread<'a>> {
        let ratios: Vec<(&str, f64)> = ratios.collect();
        Some(Spread {
            low: ratios.iter().copied().min_by(|a, b| a.1.total_cmp(&b.1))?,
            high: ratios.iter().copied().max_by(|a, b| a.1.total_cmp(&b.1))?,
            ratios,
        })
    }

    /// A verdict on `target`, met when every ratio `meets` it;
    /// `worst_is_high` says which end of the spread is the worst.
    fn verdict(
        &self,
        target: &'static str,
        worst_is_high: bool,
        meets: impl Fn(f64) -> bool,
    ) -> Verdict {
        let (worst, best) = if worst_is_high {
            (self.high, self.low)
        } else {
            (self.low, self.high)
        };
        let missed: Vec<&str> = self
            .ratios
            .iter()
            .filter(|(_, ratio)| !meets(*ratio))
            .map(|(name, _)| *name)
            .collect();
        let ((low_name, low), (high_name, high)) = (self.low, self.high);
        let n = self.ratios.len();
        Verdict {
            target,
            measured: format!(
                "{low:.2}× ({low_name}) to {high:.2}× ({high_name}); {} of {n} signatures meet it",
                n - missed.len()
            ),
            met: Some(missed.is_empty()),
            json: json!({ "worst_ratio": worst.1, "worst": worst.0, "best_ratio": best.1,
                          "best": best.0, "signatures": n, "missed_by": missed }),
        }
    }
}

/// A performance target of DESIGN.md and how this run compares.
struct Verdict {
    target: &'static str,
    measured: String,
    met: Option<bool>,
    json: Json,
}

impl Verdict {
    /// The same verdict, saying how it was measured.
    fn measured_as(mut self, how: &str) -> Verdict {
        self.measured = format!("{} ({how})", self.measured);
        self.json["measured_as"] = json!(how);
        self
    }
}

/// The signatures the call-overhead targets are judged on: the callees of
/// this binary, whose bodies are a few instructions. A libc or libm call's
/// time is mostly the callee's own.
fn judged(cases: &[CaseResult]) -> impl Iterator<Item = &CaseResult> {
    cases.iter().filter(|case| !case.library_symbol)
}

/// The baked tier's targets, over `cases`, measured as `how`.
fn baked_verdicts(cases: &[CaseResult], how: &str, verdicts: &mut Vec<Verdict>) {
    let target = "baked tier ≤ 2× direct, register arguments only";
    let baked = Spread::of(
        judged(cases)
            .filter(|case| case.register_args)
            .filter_map(|case| Some((case.name, case.ratio(Path::Baked, Path::Direct)?))),
    );
    verdicts.push(baked.map_or(not_measured(target), |spread| {
        spread
            .verdict(target, true, |worst| worst <= 2.0)
            .measured_as(how)
    }));
    let target = "libffi ≥ 5× the baked tier, every signature";
    let libffi = Spread::of(
        judged(cases).filter_map(|case| Some((case.name, case.ratio(Path::Libffi, Path::Baked)?))),
    );
    verdicts.push(libffi.map_or(not_measured(target), |spread| {
        spread
            .verdict(target, false, |worst| worst >= 5.0)
            .measured_as(how)
    }));
}

fn verdicts(results: &Results) -> Vec<Verdict> {
    let mut verdicts = Vec::new();

    let target = "packed entry ≤ 1.5× direct, 2–6 register arguments";
    let packed = Spread::of(
        judged(&results.cases)
            .filter(|case| case.register_args && (2..=6).contains(&case.args))
            .filter_map(|case| Some((case.name, case.ratio(Path::Packed, Path::Direct)?))),
    );
    verdicts.push(packed.map_or(not_measured(target), |spread| {
        spread.verdict(target, true, |worst| worst <= 1.5)
    }));

    let target = "call_packed (JIT tier) ≤ 1.3× direct, register arguments only";
    let call_packed = Spread::of(
        judged(&results.cases)
            .filter(|case| case.register_args)
            .filter_map(|case| Some((case.name, case.ratio(Path::CallPacked, Path::Direct)?))),
    );
    verdicts.push(call_packed.map_or(not_measured(target), |spread| {
        spread.verdict(target, true, |worst| worst <= 1.3)
    }));

    let target = "receiver entry that tail-calls ≤ 1.15× direct";
    let receiver = Spread::of(
        judged(&results.cases)
            .filter(|case| case.receiver == Some(ReceiverKind::TailCall))
            .filter_map(|case| Some((case.name, case.ratio(Path::Receiver, Path::Direct)?))),
    );
    verdicts.push(receiver.map_or(not_measured(target), |spread| {
        spread.verdict(target, true, |worst| worst <= 1.15)
    }));

    let target = "libffi ≥ 10× the JIT packed entry";
    let libffi = Spread::of(
        judged(&results.cases)
            .filter_map(|case| Some((case.name, case.ratio(Path::Libffi, Path::Packed)?))),
    );
    verdicts.push(libffi.map_or(not_measured(target), |spread| {
        spread.verdict(target, false, |worst| worst >= 10.0)
    }));

    // Judged under the real refusal when the child ran, else on the
    // baked tier forced by options in this process.
    match &results.refused {
        Refused::Measured { cases, .. } => {
            baked_verdicts(cases, "JIT refused by PR_SET_MDWE", &mut verdicts);
        }
        Refused::NotRun(_) => baked_verdicts(
            &results.cases,
            "forced by Options::avoid_jit, PR_SET_MDWE unavailable",
            &mut verdicts,
        ),
    }

    // Without code mappings the creations measured libffi's, not the JIT's.
    let creation = &results.creation;
    let jit = creation.batch_density.is_some();
    // Callbacks, judged on the callbacks of this binary's C loops.
    let rows = &results.callbacks;
    let target = "callback (JIT) ≤ 2× a direct C call + the handler alone";
    let add = rows.iter().find(|row| row.name == "add-i32");
    let median = |row: &CallbackRow, column| row.get(column).map(|m| m.ns_per_call.median);
    verdicts.push(
        match add.and_then(|row| {
            Some((median(row, Column::Jit)?, median(row, Column::Direct)?, median(row, Column::Handler)?))
        }) {
            Some((jit, direct, handler)) => {
                let budget = 2.0 * direct + handler;
                Verdict {
                    target,
                    measured: format!(
                        "add-i32: {jit:.2} ns against {budget:.2} ns (2 × {direct:.2} + {handler:.2})"
                    ),
                    met: Some(jit <= budget),
                    json: json!({ "jit_ns": jit, "direct_ns": direct, "handler_ns": handler }),
                }
            }
            None => not_measured(target),
        },
    );
    let target = "libffi closure ≥ 5× the JIT callback, every signature";
    let libffi = Spread::of(
        rows.iter()
            .filter_map(|row| Some((row.name, row.ratio(Column::Libffi, Column::Jit)?))),
    );
    verdicts.push(libffi.map_or(not_measured(target), |spread| {
        spread.verdict(target, false, |worst| worst >= 5.0)
    }));

    let target = "one trampoline created in ≤ 5 µs";
    verdicts.push(if jit {
        Verdict {
            target,
            measured: format!(
                "{} median (specialise); a new shape's stub {}",
                duration(creation.own.median),
                duration(creation.new_shape.median)
            ),
            met: Some(creation.own.median.max(creation.new_shape.median) <= 5_000.0),
            json: json!({ "median_ns": creation.own.median,
                          "new_shape_median_ns": creation.new_shape.median }),
        }
    } else {
        not_measured(target)
    });
    let target = "Function::new of a shape already bound ≤ 1 µs";
    verdicts.push(if jit {
        Verdict {
            target,
            measured: format!("{} median", duration(creation.repeated_shape.median)),
            met: Some(creation.repeated_shape.median <= 1_000.0),
            json: json!({ "median_ns": creation.repeated_shape.median }),
        }
    } else {
        not_measured(target)
    });
    let target = "≤ 1 µs each in a batch of 1,000";
    verdicts.push(if jit {
        Verdict {
            target,
            measured: format!("{} median", duration(creation.batch_each.median)),
            met: Some(creation.batch_each.median <= 1_000.0),
            json: json!({ "median_ns": creation.batch_each.median }),
        }
    } else {
        not_measured(target)
    });
    let target = "1,000 trampolines in ≤ 128 KiB of code mappings";
    verdicts.push(
        creation
            .batch_density
            .map_or(not_measured(target), |density| {
                let thousand = density.per_function() * 1000.0;
                Verdict {
                    target,
                    measured: format!("{} for 1,000 from one batch", kib(thousand)),
                    met: Some(thousand <= 128.0 * 1024.0),
                    json: json!({ "bytes_per_1000": thousand }),
                }
            }),
    );
    verdicts
}

fn not_measured(target: &'static str) -> Verdict {
    Verdict {
        target,
        measured: "not measured (no JIT tier)".to_string(),
        met: None,
        json: Json::Null,
    }
}

/// The machine and how busy it was.
fn machine_lines(out: &mut String, m: &Machine) {
    let _ = writeln!(
        out,
        "machine: {} CPUs, {}, {}, {}; {}, JIT {}",
        m.cpus, m.cpu_model, m.kernel, m.rustc, m.abi, m.jit
    );
    if let Some(busy) = m.others_busy {
        let _ = writeln!(
            out,
            "other processes kept {busy:.2} of the {} CPUs busy on average during the run",
            m.cpus
        );
    }
}

/// The paths timed with the JIT refused: direct, baked, the receiver entry
/// through its thunk, libffi, checked.
const REFUSED_PATHS: [Path; 5] = [
    Path::Direct,
    Path::Baked,
    Path::Thunk,
    Path::Libffi,
    Path::Call,
];

/// The tier and baked stub of each signature.
fn signature_lines(out: &mut String, cases: &[CaseResult]) {
    *out += "\nsignatures (tier; the baked tier's code; what the receiver entry does; where the\n\
            target is defined):\n";
    for case in cases {
        let receiver = match case.receiver {
            Some(ReceiverKind::TailCall) => "tail call",
            Some(ReceiverKind::Call) => "call, narrow",
            None => "—",
        };
        let origin = if case.library_symbol {
            "libc/libm"
        } else {
            "here"
        };
        let _ = writeln!(
            out,
            "  {:<NAME$}{:<16} {:<14} {receiver:<13} {origin:<10} {}",
            case.name,
            case.tier,
            case.baked_stub.key(),
            case.signature
        );
    }
}

/// What `jitcall bench --under-mdwe` prints: its own table.
pub fn under_mdwe_text(machine: &Machine, cases: &[CaseResult]) -> String {
    let mut out = String::from("jitcall bench --under-mdwe: the JIT refused by PR_SET_MDWE\n");
    machine_lines(&mut out, machine);
    signature_lines(&mut out, cases);
    out += "\nmedian ns per call, and the ratio to the direct call:\n";
    medians(&mut out, cases, &REFUSED_PATHS);
    let mut verdicts = Vec::new();
    baked_verdicts(cases, "JIT refused by PR_SET_MDWE", &mut verdicts);
    verdict_lines(&mut out, &verdicts);
    out
}

/// What each stack argument adds: the rows that pass some on the stack,
/// against `sum-5-i32`, whose five arguments all go in registers.
fn stack_argument_lines(out: &mut String, cases: &[CaseResult]) {
    let Some(base) = cases.iter().find(|case| case.name == "sum-5-i32") else {
        return;
    };
    let rows: Vec<&CaseResult> = cases.iter().filter(|case| case.stack_args > 0).collect();
    if rows.is_empty() {
        return;
    }
    *out += "\nstack arguments, ns each over sum-5-i32 (all in registers) per path:\n";
    for case in rows {
        let each = |path: Path| -> String {
            match (case.get(path), base.get(path)) {
                (Some(m), Some(b)) => format!(
                    "{} {:+.2}",
                    path.key(),
                    (m.ns_per_call.median - b.ns_per_call.median) / case.stack_args as f64
                ),
                _ => format!("{} —", path.key()),
            }
        };
        let _ = writeln!(
            out,
            "  {:<NAME$}{} on the stack: {}, {}, {}",
            case.name,
            case.stack_args,
            each(Path::Packed),
            each(Path::CallPacked),
            each(Path::Receiver)
        );
    }
}

/// The verdict lines.
fn verdict_lines(out: &mut String, verdicts: &[Verdict]) {
    *out += "\nDESIGN.md targets (call ratios over the callees defined in this binary):\n";
    for verdict in verdicts {
        let status = verdict.met.map_or("—", met);
        let _ = writeln!(
            out,
            "  {:<52} {:<7} {}",
            verdict.target, status, verdict.measured
        );
    }
}

/// The report as text.
pub fn text(results: &Results) -> String {
    let mut out = String::new();
    let m = &results.machine;
    let method = &results.method;
    let _ = writeln!(
        out,
        "jitcall bench{}: nanoseconds per call, median of {} samples of ≥ {:?} each \
         after {:?} of warm-up; the paths of a signature sampled in turn",
        if results.quick { " --quick" } else { "" },
        method.samples,
        method.sample,
        method.warm_up,
    );
    machine_lines(&mut out, m);
    let _ = writeln!(
        out,
        "baked tier: {} of code compiled into the library",
        kib(results.baked_code_bytes as f64)
    );

    out += "\npaths:\n";
    for path in Path::ALL {
        let _ = writeln!(out, "  {:<12} {}", path.key(), path.description());
    }

    signature_lines(&mut out, &results.cases);

    out += "\nmedian ns per call, and the ratio to the direct call:\n";
    medians(&mut out, &results.cases, &Path::ALL);

    out += "\nmin–max ns per call over the samples:\n";
    header(&mut out, &Path::ALL);
    for case in &results.cases {
        row(&mut out, case, &Path::ALL, |_, m| {
            format!("{:.2}–{:.2}", m.ns_per_call.min, m.ns_per_call.max)
        });
    }

    match &results.refused {
        Refused::Measured { jit, cases } => {
            let _ = writeln!(
                out,
                "\nthe JIT refused for real: this binary re-executed under PR_SET_MDWE (JIT {jit}),\n\
                 median ns per call, and the ratio to the direct call:"
            );
            medians(&mut out, cases, &REFUSED_PATHS);
        }
        Refused::NotRun(why) => {
            let _ = writeln!(out, "\nthe JIT refused for real: not measured: {why}");
        }
    }

    if !results.closed_check.is_empty() {
        out += "\nthe closed-library check, median ns per call of the same target bound with\n\
                Function::new (plain) and through a Library (checked: its trampolines load the\n\
                library's closed byte at entry and branch on it):\n";
        let _ = writeln!(
            out,
            "{:<NAME$}{:>10}{:>10}{:>9}{:>12}{:>10}{:>9}",
            "signature", "packed", "checked", "added", "receiver", "checked", "added"
        );
        for cost in &results.closed_check {
            let pair = |pair: Option<&Pair>| match pair {
                Some(p) => format!(
                    "{:>10.2}{:>10.2}{:>+9.2}",
                    p.plain.ns_per_call.median,
                    p.guarded.ns_per_call.median,
                    p.added_ns()
                ),
                None => format!("{:>10}{:>10}{:>9}", "—", "—", "—"),
            };
            let _ = writeln!(
                out,
                "{:<NAME$}{}  {}",
                cost.name,
                pair(Some(&cost.packed)),
                pair(cost.receiver.as_ref())
            );
        }
    }

    let creation = &results.creation;
    out += "\ncreation and density:\n";
    let timed = |out: &mut String, what: &str, summary: &Summary, unit: &str| {
        let _ = writeln!(
            out,
            "  {what:<38} {} median ({} to {}, {} {unit})",
            duration(summary.median),
            duration(summary.min),
            duration(summary.max),
            summary.samples,
        );
    };
    timed(
        &mut out,
        "Function::new, a shape already bound",
        &creation.repeated_shape,
        "creations",
    );
    timed(
        &mut out,
        "Function::new, a new shape (its stub)",
        &creation.new_shape,
        "creations",
    );
    timed(
        &mut out,
        "one with a trampoline of its own",
        &creation.own,
        "creations",
    );
    timed(
        &mut out,
        "one on the baked tier (avoid_jit)",
        &creation.baked,
        "creations",
    );
    timed(
        &mut out,
        "baked, with a receiver entry (a thunk)",
        &creation.baked_receiver,
        "creations",
    );
    match &creation.double_mapped {
        Some(summary) => timed(
            &mut out,
            "one double-mapped (double_map)",
            summary,
            "creations",
        ),
        None => out += "  one double-mapped (double_map)         not measured: refused here\n",
    }
    timed(
        &mut out,
        &format!("each in a Function::batch of {BATCH}"),
        &creation.batch_each,
        "batches",
    );
    let density = |density: Option<Density>| match density {
        Some(d) => format!(
            "{:.0} bytes each, {} per 1,000 ({} live functions measured)",
            d.per_function(),
            kib(d.per_function() * 1000.0),
            d.functions
        ),
        None => "no code mappings (no JIT tier)".to_string(),
    };
    let _ = writeln!(
        out,
        "  {:<38} {}",
        "code mapping, one batch",
        density(creation.batch_density)
    );
    let _ = writeln!(
        out,
        "  {:<38} {}",
        "code mapping, Function::new",
        density(creation.single_density)
    );

    stack_argument_lines(&mut out, &results.cases);

    if !results.callbacks.is_empty() {
        out +=
            "\ncallbacks, median ns per call from a C loop, and the ratio to the direct C call\n\
                (direct: the loop calls an equivalent C function; handler: it packs the slots\n\
                and calls the handler itself; jit, baked, libffi: through a Callback on the\n\
                tier):\n";
        let _ = write!(out, "{:<NAME$}", "signature");
        for column in Column::ALL {
            let _ = write!(out, "{:>CELL$}", column.key());
        }
        out.push('\n');
        for row in &results.callbacks {
            let _ = write!(out, "{:<NAME$}", row.name);
            let direct = row.get(Column::Direct).map(|m| m.ns_per_call.median);
            for column in Column::ALL {
                let text = match (row.get(column), direct) {
                    (None, _) => "—".to_string(),
                    (Some(m), Some(direct)) if column != Column::Direct => format!(
                        "{:.2} {:>5.2}×",
                        m.ns_per_call.median,
                        m.ns_per_call.median / direct
                    ),
                    (Some(m), _) => format!("{:.2}", m.ns_per_call.median),
                };
                let _ = write!(out, "{text:>CELL$}");
            }
            out.push('\n');
        }
    }

    verdict_lines(&mut out, &verdicts(results));
    out
}

fn summary_json(summary: &Summary) -> Json {
    json!({
        "median": summary.median,
        "min": summary.min,
        "max": summary.max,
        "samples": summary.samples,
    })
}

/// One signature with every path (null where the path does not apply).
fn case_json(case: &CaseResult) -> Json {
    let paths: serde_json::Map<String, Json> = Path::ALL
        .iter()
        .map(|&path| {
            let value = case.get(path).map_or(Json::Null, |m| {
                json!({
                    "ns_per_call": summary_json(&m.ns_per_call),
                    "iters_per_sample": m.iters_per_sample,
                    "ratio_to_direct": case.ratio(path, Path::Direct),
                })
            });
            (path.key().to_string(), value)
        })
        .collect();
    json!({
        "name": case.name,
        "signature": case.signature,
        "tier": case.tier,
        "baked_stub": case.baked_stub.key(),
        "library_symbol": case.library_symbol,
        "args": case.args,
        "register_args": case.register_args,
        "stack_args": case.stack_args,
        "receiver_entry": match case.receiver {
            Some(ReceiverKind::TailCall) => "tail_call",
            Some(ReceiverKind::Call) => "call",
            None => "none",
        },
        "paths": paths,
    })
}

fn machine_json(m: &Machine) -> Json {
    json!({
        "cpus": m.cpus,
        "cpu_model": m.cpu_model,
        "kernel": m.kernel,
        "rustc": m.rustc,
        "others_busy_cpus": m.others_busy,
        "abi": m.abi,
        "jit": m.jit,
    })
}

/// What `jitcall bench --under-mdwe --json` writes: the machine and the
/// signatures, as in the full run's JSON.
pub fn under_mdwe_json(machine: &Machine, cases: &[CaseResult]) -> Json {
    json!({
        "machine": machine_json(machine),
        "signatures": cases.iter().map(case_json).collect::<Vec<_>>(),
    })
}

fn density_json(density: Option<Density>) -> Json {
    density.map_or(Json::Null, |d| {
        json!({
            "functions": d.functions,
            "mapping_bytes": d.bytes,
            "bytes_per_function": d.per_function(),
        })
    })
}

/// The results as JSON: every signature with every path (null where the
/// path does not apply), creation, density and the targets.
pub fn json(results: &Results) -> Json {
    let m = &results.machine;
    let signatures: Vec<Json> = results.cases.iter().map(case_json).collect();
    let pair_json = |pair: Option<&Pair>| {
        pair.map_or(Json::Null, |p| {
            json!({
                "plain_ns": summary_json(&p.plain.ns_per_call),
                "checked_ns": summary_json(&p.guarded.ns_per_call),
                "added_ns": p.added_ns(),
            })
        })
    };
    let closed_check: Vec<Json> = results
        .closed_check
        .iter()
        .map(|cost| {
            json!({
                "name": cost.name,
                "packed": pair_json(Some(&cost.packed)),
                "receiver": pair_json(cost.receiver.as_ref()),
            })
        })
        .collect();
    let creation = &results.creation;
    let targets: Vec<Json> = verdicts(results)
        .into_iter()
        .map(|v| json!({ "target": v.target, "met": v.met, "measured": v.json }))
        .collect();
    json!({
        "quick": results.quick,
        "machine": machine_json(m),
        "baked_code_bytes": results.baked_code_bytes,
        "method": {
            "warm_up_ns": results.method.warm_up.as_nanos() as u64,
            "sample_ns": results.method.sample.as_nanos() as u64,
            "samples": results.method.samples,
        },
        "paths": Path::ALL.iter().map(|p| json!({ "key": p.key(), "description": p.description() })).collect::<Vec<_>>(),
        "signatures": signatures,
        "closed_check": closed_check,
        "callbacks": results.callbacks.iter().map(|row| {
            let columns: serde_json::Map<String, Json> = Column::ALL
                .iter()
                .map(|&column| {
                    let value = row.get(column).map_or(Json::Null, |m| {
                        json!({
                            "ns_per_call": summary_json(&m.ns_per_call),
                            "iters_per_sample": m.iters_per_sample,
                            "ratio_to_direct": row.ratio(column, Column::Direct),
                        })
                    });
                    (column.key().to_string(), value)
                })
                .collect();
            json!({ "name": row.name, "signature": row.signature, "columns": columns })
        }).collect::<Vec<_>>(),
        "refused_jit": match &results.refused {
            Refused::Measured { jit, cases } => json!({
                "jit": jit,
                "signatures": cases.iter().map(case_json).collect::<Vec<_>>(),
            }),
            Refused::NotRun(why) => json!({ "not_run": why }),
        },
        "creation": {
            "repeated_shape_ns": summary_json(&creation.repeated_shape),
            "new_shape_ns": summary_json(&creation.new_shape),
            "own_ns": summary_json(&creation.own),
            "baked_ns": summary_json(&creation.baked),
            "baked_receiver_ns": summary_json(&creation.baked_receiver),
            "double_mapped_ns": creation.double_mapped.as_ref().map_or(Json::Null, summary_json),
            "batch_size": BATCH,
            "batch_each_ns": summary_json(&creation.batch_each),
            "density_batch": density_json(creation.batch_density),
            "density_single": density_json(creation.single_density),
        },
        "targets": targets,
    })
}
