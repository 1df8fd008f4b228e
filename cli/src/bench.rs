//! `jitcall bench`: what each call path costs, per signature, next to a
//! direct call; what creating a trampoline costs; how dense they are.
//!
//! For every signature of [`cases::table`] the target is bound on every
//! tier (its own JIT trampolines with a receiver entry, its shape's shared
//! stub, the baked tier, libffi), every path is run once and its result
//! checked against the direct call's, then all paths are timed together
//! ([`timing::measure`]). The full run then re-executes itself under
//! `PR_SET_MDWE` ([`refused`]), where the JIT is refused for real, and
//! times the baked tier there. [`report`] prints the tables and the
//! comparison with DESIGN.md's targets, and writes the JSON.

use std::ffi::c_void;
use std::hint::black_box;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use jitcall::{classify, Abi, Entry, Function, Limits, Options, PackedFn, Tier, Type, Value};

mod callbacks;
mod cases;
mod creation;
mod guard;
pub mod refused;
mod report;
mod timing;

use cases::Case;
use creation::Creation;
use timing::{Loop, Measurement, Method};

/// What `jitcall bench` was asked to do.
#[derive(Debug, Default)]
pub struct Config {
    /// A short smoke run.
    pub quick: bool,
    /// Where to write the JSON results.
    pub json: Option<PathBuf>,
    /// Install `PR_SET_MDWE` first, so that the JIT is refused, and time
    /// the call paths only: what a full run re-executes itself with.
    pub under_mdwe: bool,
}

/// A way of calling a bound function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    /// The target through its typed function pointer.
    Direct,
    /// The JIT packed entry, called as a [`PackedFn`].
    Packed,
    /// [`Function::call_packed`] on the JIT tier.
    CallPacked,
    /// [`Function::call_packed`] through the shape's shared stub.
    Shared,
    /// [`Function::call_packed`] on the baked tier.
    Baked,
    /// The JIT receiver entry, called as a typed `extern "C" fn`.
    Receiver,
    /// The receiver entry on the baked tier: a static thunk to compiled-in
    /// code, called the same way.
    Thunk,
    /// libffi's `ffi_call` with a prepared Cif.
    Libffi,
    /// [`Function::call`], the checked path.
    Call,
}

impl Path {
    /// Every path, in table order.
    pub const ALL: [Path; 9] = [
        Path::Direct,
        Path::Packed,
        Path::CallPacked,
        Path::Shared,
        Path::Baked,
        Path::Receiver,
        Path::Thunk,
        Path::Libffi,
        Path::Call,
    ];

    /// The column header and JSON key.
    pub const fn key(self) -> &'static str {
        match self {
            Path::Direct => "direct",
            Path::Packed => "packed",
            Path::CallPacked => "call_packed",
            Path::Shared => "shared",
            Path::Baked => "baked",
            Path::Receiver => "receiver",
            Path::Thunk => "thunk",
            Path::Libffi => "libffi",
            Path::Call => "call",
        }
    }

    /// What the path measures, for the legend.
    pub const fn description(self) -> &'static str {
        match self {
            Path::Direct => {
                "the target through a typed extern \"C\" fn pointer (black_box on pointer and \
                 arguments): the floor"
            }
            Path::Packed => "the JIT packed entry, jit_entry() called as a jitcall::PackedFn",
            Path::CallPacked => "Function::call_packed on the JIT tier",
            Path::Shared => {
                "Function::call_packed through the shape's shared JIT stub (a function bound \
                 alone), the target passed as data"
            }
            Path::Baked => {
                "Function::call_packed on the baked tier, code compiled into the library: \
                 Options { avoid_jit }, or the JIT refused for real under PR_SET_MDWE"
            }
            Path::Receiver => {
                "the JIT receiver entry, receiver_entry() called as extern \"C\" fn(receiver, \
                 a0, …) with narrow integers widened"
            }
            Path::Thunk => {
                "the receiver entry on the baked tier, called the same way: a static thunk \
                 mapped from the binary's file, to the shape's baked receiver stub or the \
                 generic one"
            }
            Path::Libffi => {
                "ffi_call with a prepared Cif: Function::call_packed with Options { force_libffi }"
            }
            Path::Call => "Function::call, the checked path (kinds checked, slots built per call)",
        }
    }

    /// Whether the path returns through a packed return slot.
    const fn uses_slot(self) -> bool {
        matches!(
            self,
            Path::Packed | Path::CallPacked | Path::Shared | Path::Baked | Path::Libffi
        )
    }
}

/// What the receiver entry of a signature does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReceiverKind {
    /// Moves arguments and jumps to the target.
    TailCall,
    /// Calls the target and narrows its return value.
    Call,
}

/// Which compiled-in code the baked tier calls through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BakedStub {
    /// The shape's own stub, from the baked set.
    Shape,
    /// The register-file stub, filled from the plan per call.
    RegisterFile,
}

impl BakedStub {
    pub const fn key(self) -> &'static str {
        match self {
            BakedStub::Shape => "shape stub",
            BakedStub::RegisterFile => "register file",
        }
    }
}

/// The results for one signature.
pub struct CaseResult {
    pub name: &'static str,
    pub signature: String,
    pub tier: String,
    /// The baked tier's code for this signature: its shape's own stub, or
    /// the register-file stub.
    pub baked_stub: BakedStub,
    /// A real libc/libm symbol rather than a callee of this binary.
    pub library_symbol: bool,
    /// Arguments, and whether all of them go in registers in the packed
    /// entry's call to the target.
    pub args: usize,
    pub register_args: bool,
    /// Arguments the packed entry's call passes on the stack.
    pub stack_args: usize,
    pub receiver: Option<ReceiverKind>,
    /// One per [`Path::ALL`]; `None` where the path does not apply.
    pub paths: Vec<Option<Measurement>>,
}

impl CaseResult {
    /// The measurement of `path`.
    pub fn get(&self, path: Path) -> Option<&Measurement> {
        let index = Path::ALL.iter().position(|&p| p == path)?;
        self.paths[index].as_ref()
    }

    /// Median of `path` over median of `over`.
    pub fn ratio(&self, path: Path, over: Path) -> Option<f64> {
        Some(self.get(path)?.ns_per_call.median / self.get(over)?.ns_per_call.median)
    }
}

/// The host and build the numbers come from.
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub kernel: String,
    pub rustc: &'static str,
    /// How many CPUs other processes kept busy, on average, while the
    /// benchmark ran: other work on the machine shows in the medians.
    pub others_busy: Option<f64>,
    pub abi: String,
    pub jit: String,
}

impl Machine {
    fn describe(others_busy: Option<f64>) -> Machine {
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find(|line| line.starts_with("model name"))
                    .and_then(|line| line.split_once(':'))
                    .map(|(_, model)| model.trim().to_string())
            })
            .unwrap_or_else(|| "unknown".to_string());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|release| format!("{} {}", std::env::consts::OS, release.trim()))
            .unwrap_or_else(|_| std::env::consts::OS.to_string());
        Machine {
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model,
            kernel,
            rustc: option_env!("JITCALL_RUSTC_VERSION").unwrap_or("unknown rustc"),
            others_busy,
            abi: Abi::host().map_or("none".to_string(), |abi| abi.to_string()),
            jit: match jitcall::jit_status() {
                Ok(()) => "available".to_string(),
                Err(why) => format!("unavailable ({why})"),
            },
        }
    }
}

/// CPU time counters, to tell how busy the rest of the machine was.
#[derive(Clone, Copy)]
struct CpuTimes {
    /// Clock ticks of all CPUs: busy (anything but idle and iowait), and
    /// in total.
    busy: u64,
    total: u64,
    /// Clock ticks this process ran.
    own: u64,
}

impl CpuTimes {
    /// Reads /proc/stat and /proc/self/stat; `None` where they are missing.
    fn now() -> Option<CpuTimes> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let ticks: Vec<u64> = stat
            .lines()
            .next()?
            .strip_prefix("cpu ")?
            .split_whitespace()
            .map(|n| n.parse().ok())
            .collect::<Option<_>>()?;
        // user nice system idle iowait irq softirq steal [guest guest_nice]
        let total: u64 = ticks.iter().take(8).sum();
        let idle = ticks.get(3)? + ticks.get(4)?;
        let own_stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // After the command name: state is field 3, utime 14, stime 15.
        let fields: Vec<&str> = own_stat.rsplit_once(')')?.1.split_whitespace().collect();
        let own = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        Some(CpuTimes {
            busy: total - idle,
            total,
            own,
        })
    }

    /// CPUs kept busy by everything but this process since `self`, on
    /// average.
    fn others_busy_since(&self, cpus: usize) -> Option<f64> {
        let now = CpuTimes::now()?;
        let total = now.total.checked_sub(self.total)?;
        if total == 0 {
            return None;
        }
        let others = (now.busy - self.busy).saturating_sub(now.own - self.own);
        Some(others as f64 * cpus as f64 / total as f64)
    }
}

/// Everything one run measured.
pub struct Results {
    pub quick: bool,
    pub method: Method,
    pub machine: Machine,
    pub cases: Vec<CaseResult>,
    pub closed_check: Vec<guard::GuardCost>,
    pub creation: Creation,
    /// Calls from C into a handler through a callback on each tier.
    pub callbacks: Vec<callbacks::CallbackRow>,
    /// The call paths timed again with the JIT refused for real.
    pub refused: refused::Refused,
    /// Bytes of code compiled into the library for the baked tier.
    pub baked_code_bytes: usize,
}

/// What an unwritten return slot holds, to see which paths store to it.
const POISON: u64 = 0xa5a5_a5a5_a5a5_a5a5;

/// A loop over `function.call_packed`.
fn call_packed_loop<'a>(case: &'a Case, function: &'a Function) -> Loop<'a> {
    Box::new(move |iters| {
        let args = case.slots.as_ptr();
        let mut ret = POISON;
        let ret_ptr: *mut u64 = &mut ret;
        for _ in 0..iters {
            // SAFETY: one slot per argument of the bound signature, a
            // writable return slot, and argument values valid for the target
            // (the buffer slot addresses a leaked, live view).
            unsafe { function.call_packed(black_box(args), black_box(ret_ptr)) };
        }
        ret
    })
}

/// A loop over the packed entry of `function`, on the JIT tier.
fn packed_loop<'a>(case: &'a Case, function: &'a Function) -> Option<Loop<'a>> {
    let entry = function.jit_entry()?;
    // SAFETY: a JIT-tier function's jit_entry is a packed-entry trampoline,
    // which has exactly the PackedFn type.
    let entry = black_box(unsafe { std::mem::transmute::<*const c_void, PackedFn>(entry) });
    Some(Box::new(move |iters: u64| {
        let args = case.slots.as_ptr();
        let mut ret = POISON;
        let ret_ptr: *mut u64 = &mut ret;
        for _ in 0..iters {
            // SAFETY: as in `call_packed_loop`; `function` keeps the
            // trampoline alive.
            unsafe { entry(black_box(args), black_box(ret_ptr)) };
        }
        ret
    }))
}

/// A loop over the receiver entry of `function`, where it has one.
fn receiver_loop<'a>(case: &'a Case, function: &'a Function) -> Option<Loop<'a>> {
    let entry = function.receiver_entry()?;
    Some(Box::new(move |iters: u64| {
        // SAFETY: `entry` is a receiver entry bound to this case's target
        // and signature, kept alive by `function`.
        unsafe { case.run_receiver(entry, iters) }
    }))
}

/// A loop over the receiver entry of `function` on the baked tier.
fn thunk_loop<'a>(case: &'a Case, function: &'a Function) -> Option<Loop<'a>> {
    let entry = function.receiver_entry()?;
    Some(Box::new(move |iters: u64| {
        // SAFETY: `entry` is a receiver entry bound to this case's target
        // and signature, kept alive by `function`.
        unsafe { case.run_thunk(entry, iters) }
    }))
}

/// A case bound on every tier.
struct Bound {
    /// With a receiver entry: on the JIT tier when the JIT is available.
    jit: Function,
    /// Alone: on the shape's shared stub when the JIT is available.
    shared: Function,
    /// On the baked tier: bound with `avoid_jit`, or with the defaults
    /// when the JIT is refused.
    baked: Function,
    libffi: Function,
}

/// Whether `f` calls through the shape's shared stub.
fn is_shared(f: &Function) -> bool {
    f.tier() == Tier::Shared
}

/// Whether `f` is on the baked tier.
fn is_baked(f: &Function) -> bool {
    matches!(f.tier(), Tier::Baked(_))
}

/// The call loops of one case, one per [`Path::ALL`].
fn loops<'a>(case: &'a Case, bound: &'a Bound) -> Vec<Option<Loop<'a>>> {
    let Bound {
        jit,
        shared,
        baked,
        libffi,
    } = bound;
    let direct: Loop = Box::new(|iters| case.run_direct(iters));
    let packed = packed_loop(case, jit);
    let call_packed = (jit.tier() == Tier::Jit).then(|| call_packed_loop(case, jit));
    let shared = is_shared(shared).then(|| call_packed_loop(case, shared));
    let baked = is_baked(baked).then(|| call_packed_loop(case, baked));
    let receiver = (jit.tier() == Tier::Jit)
        .then(|| receiver_loop(case, jit))
        .flatten();
    let thunk = is_baked(&bound.baked)
        .then(|| thunk_loop(case, &bound.baked))
        .flatten();
    let call: Loop = Box::new(move |iters| {
        let mut last = Ok(Value::Void);
        for _ in 0..iters {
            // SAFETY: the values were built from the signature's own types
            // and are valid for the target.
            last = black_box(unsafe { jit.call(black_box(&case.values)) });
        }
        last.map_or(POISON, |value| match value {
            // The benchmark's structs are 8 bytes: the packed image.
            Value::Struct(s) => s
                .bytes()
                .iter()
                .rev()
                .fold(0, |v, &b| v << 8 | u64::from(b)),
            scalar => scalar.as_slot(),
        })
    });
    vec![
        Some(direct),
        packed,
        call_packed,
        shared,
        baked,
        receiver,
        thunk,
        Some(call_packed_loop(case, libffi)),
        Some(call),
    ]
}

/// Runs every loop once and compares its result with the direct call's.
fn check(case: &Case, loops: &mut [Option<Loop>]) -> Result<(), String> {
    for (path, run) in Path::ALL.iter().zip(loops.iter_mut()) {
        if let Some(run) = run {
            check_one(case, path.key(), path.uses_slot(), run)?;
        }
    }
    Ok(())
}

/// Runs `run` once and compares its result with the direct call's;
/// `uses_slot` when it returns through a packed return slot.
fn check_one(case: &Case, what: &str, uses_slot: bool, run: &mut Loop) -> Result<(), String> {
    let expected = case.run_direct(1);
    let got = run(1);
    let (want, got) = match case.sig.ret {
        Type::Void if uses_slot => (POISON, got),
        Type::F32 => (expected & 0xffff_ffff, got & 0xffff_ffff),
        _ => (expected, got),
    };
    if want != got {
        return Err(format!(
            "{}: the {what} path returned {got:#x}, the direct call {want:#x}",
            case.name
        ));
    }
    Ok(())
}

/// Binds and measures one case.
fn measure_case(case: &Case, method: &Method) -> Result<CaseResult, String> {
    let bind = |options: Options| {
        case.bind(&options)
            .map_err(|e| format!("{}: binding failed: {e}", case.name))
    };
    let jit = bind(Options {
        receiver_entry: true,
        ..Options::default()
    })?;
    // Under a real refusal the default binding is on the baked tier; with
    // a receiver entry, made of a static thunk.
    let baked = bind(Options {
        avoid_jit: jitcall::jit_available(),
        receiver_entry: true,
        ..Options::default()
    })?;
    let bound = Bound {
        shared: bind(Options::default())?,
        baked,
        libffi: bind(Options {
            force_libffi: true,
            ..Options::default()
        })?,
        jit,
    };
    let mut call_loops = loops(case, &bound);
    check(case, &mut call_loops)?;

    let paths = timing::measure(&mut call_loops, method);

    let host = Abi::host();
    let plan =
        |entry| host.and_then(|abi| classify(&case.sig, abi, entry, &Limits::default()).ok());
    let jit = &bound.jit;
    let receiver = jit.receiver_entry().map(|_| {
        if plan(Entry::Receiver).is_some_and(|plan| plan.tail_calls()) {
            ReceiverKind::TailCall
        } else {
            ReceiverKind::Call
        }
    });
    Ok(CaseResult {
        name: case.name,
        signature: case.sig.to_string(),
        tier: jit.tier().to_string(),
        baked_stub: if bound.baked.uses_register_file() {
            BakedStub::RegisterFile
        } else {
            BakedStub::Shape
        },
        library_symbol: case.is_library_symbol(),
        args: case.sig.args.len(),
        register_args: plan(Entry::Packed).is_some_and(|plan| plan.stack_bytes == 0),
        stack_args: plan(Entry::Packed).map_or(0, |plan| {
            plan.args
                .iter()
                .filter(|arg| matches!(arg.to, jitcall::Loc::Stack(_)))
                .count()
        }),
        receiver,
        paths,
    })
}

/// A progress line on stderr, shown only when stderr is a terminal.
struct Progress {
    shown: bool,
    total: usize,
}

impl Progress {
    fn new(total: usize) -> Progress {
        Progress {
            shown: std::io::stderr().is_terminal(),
            total,
        }
    }

    fn show(&self, done: usize, what: &str) {
        if self.shown {
            let mut stderr = std::io::stderr().lock();
            // Progress is best effort: a failed write changes nothing.
            let _ = write!(stderr, "\r\x1b[2K[{done}/{}] {what}", self.total);
            let _ = stderr.flush();
        }
    }

    fn finish(&self) {
        if self.shown {
            eprint!("\r\x1b[2K");
        }
    }
}

/// Runs the benchmark, prints the report and writes the JSON if asked.
///
/// # Errors
///
/// A message when a library or symbol is missing, binding fails, a path
/// returns a different result from the direct call, or the JSON file
/// cannot be written.
pub fn run(config: &Config) -> Result<(), String> {
    let method = if config.quick {
        Method::QUICK
    } else {
        Method::FULL
    };
    if config.under_mdwe {
        // Before anything probes: the refusal must be what the probe sees.
        refused::install_mdwe()?;
    }
    let table = cases::table()?;
    let start = CpuTimes::now();
    let steps = if config.under_mdwe { 0 } else { 4 };
    let progress = Progress::new(table.len() + steps);
    let mut measured = Vec::with_capacity(table.len());
    for (done, case) in table.iter().enumerate() {
        progress.show(done, case.name);
        measured.push(measure_case(case, &method)?);
    }
    let machine = |start: Option<CpuTimes>| {
        Machine::describe(start.and_then(|start| {
            start.others_busy_since(std::thread::available_parallelism().map_or(1, |n| n.get()))
        }))
    };
    if config.under_mdwe {
        progress.finish();
        let machine = machine(start);
        write_out(&report::under_mdwe_text(&machine, &measured))?;
        if let Some(path) = &config.json {
            write_json(path, &report::under_mdwe_json(&machine, &measured))?;
        }
        return Ok(());
    }
    progress.show(table.len(), "the closed-library check");
    let closed_check = guard::measure(&table, &method)?;
    progress.show(table.len() + 1, "trampoline creation");
    let creation = creation::measure(&table, &method)?;
    progress.show(table.len() + 2, "callbacks");
    let callbacks = callbacks::measure(&method)?;
    let machine = machine(start);
    progress.show(table.len() + 3, "the baked tier under PR_SET_MDWE");
    let refused = refused::measure_in_child(config.quick, &table);
    progress.finish();

    let results = Results {
        quick: config.quick,
        method,
        machine,
        cases: measured,
        closed_check,
        creation,
        callbacks,
        refused,
        baked_code_bytes: jitcall::baked_code_bytes(),
    };
    write_out(&report::text(&results))?;
    if let Some(path) = &config.json {
        write_json(path, &report::json(&results))?;
    }
    Ok(())
}

/// Writes the report to stdout.
fn write_out(text: &str) -> Result<(), String> {
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        // A reader that stopped early (`| head`) is not an error.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(format!("cannot write the report: {e}"))
        }
        _ => Ok(()),
    }
}

/// Writes `json` to `path`.
fn write_json(path: &std::path::Path, json: &serde_json::Value) -> Result<(), String> {
    let json = serde_json::to_string_pretty(json)
        .map_err(|e| format!("cannot encode the results: {e}"))?;
    std::fs::write(path, json + "\n").map_err(|e| format!("cannot write {}: {e}", path.display()))
}
