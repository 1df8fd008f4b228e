//! The callback section: what a call from C into a handler costs through
//! a [`Callback`] on each tier, next to a direct C-to-C call of an
//! equivalent C function and to the handler called alone. The C loops are
//! `c/callback_drivers.c`, compiled apart so that no call is inlined.

use std::ffi::c_void;

use jitcall::{Callback, CallbackFn, Options, Signature, Tier};

use super::timing::{self, Loop, Measurement, Method};

// Linked here, by the binary, rather than by the build script: the
// package's library (`explain`, which the C API links) has no use for it.
#[link(name = "jitcall_callback_drivers", kind = "static")]
extern "C" {
    fn jcb_drive_ii(f: *const c_void, n: u64) -> i64;
    fn jcb_drive_dd(f: *const c_void, n: u64) -> f64;
    fn jcb_drive_pp(f: *const c_void, n: u64) -> i64;
    fn jcb_drive_8(f: *const c_void, n: u64) -> i64;
    fn jcb_drive_handler_ii(h: CallbackFn, data: *mut c_void, n: u64) -> i64;
    fn jcb_add_ii(a: i32, b: i32) -> i32;
    fn jcb_add_dd(a: f64, b: f64) -> f64;
    fn jcb_compare(a: *const c_void, b: *const c_void) -> i32;
    #[allow(clippy::too_many_arguments)]
    fn jcb_sum_8(a: i64, b: i64, c: i64, d: i64, e: i64, f: i64, g: i64, h: i64) -> i64;
}

/// A column of the section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Column {
    /// The C loop calling the equivalent C function.
    Direct,
    /// The C loop packing the slots and calling the handler itself.
    Handler,
    /// Through a callback on the JIT tier.
    Jit,
    /// Through a callback on the baked tier (a static thunk to the generic
    /// reverse stub).
    Baked,
    /// Through a libffi closure.
    Libffi,
}

impl Column {
    pub const ALL: [Column; 5] = [
        Column::Direct,
        Column::Handler,
        Column::Jit,
        Column::Baked,
        Column::Libffi,
    ];

    pub const fn key(self) -> &'static str {
        match self {
            Column::Direct => "direct",
            Column::Handler => "handler",
            Column::Jit => "jit",
            Column::Baked => "baked",
            Column::Libffi => "libffi",
        }
    }
}

/// One signature's figures, one per [`Column::ALL`].
pub struct CallbackRow {
    pub name: &'static str,
    pub signature: String,
    pub columns: Vec<Option<Measurement>>,
}

impl CallbackRow {
    pub fn get(&self, column: Column) -> Option<&Measurement> {
        let index = Column::ALL.iter().position(|&c| c == column)?;
        self.columns[index].as_ref()
    }

    /// Median of `column` over median of `over`.
    pub fn ratio(&self, column: Column, over: Column) -> Option<f64> {
        Some(self.get(column)?.ns_per_call.median / self.get(over)?.ns_per_call.median)
    }
}

unsafe extern "C" fn add_ii(_: *mut c_void, args: *const u64, ret: *mut u64) {
    // SAFETY: two slots and a return slot, as every tier passes them.
    unsafe { *ret = ((*args as i32).wrapping_add(*args.add(1) as i32)) as i64 as u64 };
}

unsafe extern "C" fn add_dd(_: *mut c_void, args: *const u64, ret: *mut u64) {
    // SAFETY: as above.
    unsafe {
        *ret = (f64::from_bits(*args) + f64::from_bits(*args.add(1))).to_bits();
    }
}

unsafe extern "C" fn compare(_: *mut c_void, args: *const u64, ret: *mut u64) {
    // SAFETY: two pointers to i32s, as the C loop passes them.
    unsafe {
        let (a, b) = (*(*args as *const i32), *(*args.add(1) as *const i32));
        *ret = (a.cmp(&b) as i32) as i64 as u64;
    }
}

unsafe extern "C" fn sum_8(_: *mut c_void, args: *const u64, ret: *mut u64) {
    // SAFETY: eight slots and a return slot.
    unsafe {
        *ret = (0..8).fold(0u64, |sum, i| sum.wrapping_add(*args.add(i)));
    }
}

/// A signature of the section: its handler, its C loop and the equivalent
/// C function.
struct Case {
    name: &'static str,
    sig: &'static str,
    handler: CallbackFn,
    /// Runs the C loop over `f` for `n` calls.
    drive: unsafe fn(*const c_void, u64) -> u64,
    direct: *const c_void,
}

/// The C loops as one type: the sum's bits.
unsafe fn drive_ii(f: *const c_void, n: u64) -> u64 {
    // SAFETY: the caller passes a function of the loop's type.
    unsafe { jcb_drive_ii(f, n) as u64 }
}
unsafe fn drive_dd(f: *const c_void, n: u64) -> u64 {
    // SAFETY: as above.
    unsafe { jcb_drive_dd(f, n).to_bits() }
}
unsafe fn drive_pp(f: *const c_void, n: u64) -> u64 {
    // SAFETY: as above.
    unsafe { jcb_drive_pp(f, n) as u64 }
}
unsafe fn drive_8(f: *const c_void, n: u64) -> u64 {
    // SAFETY: as above.
    unsafe { jcb_drive_8(f, n) as u64 }
}

fn cases() -> [Case; 4] {
    [
        Case {
            name: "add-i32",
            sig: "(i32, i32) -> i32",
            handler: add_ii,
            drive: drive_ii,
            direct: jcb_add_ii as *const c_void,
        },
        Case {
            name: "add-f64",
            sig: "(f64, f64) -> f64",
            handler: add_dd,
            drive: drive_dd,
            direct: jcb_add_dd as *const c_void,
        },
        Case {
            name: "compare",
            sig: "(pointer, pointer) -> i32",
            handler: compare,
            drive: drive_pp,
            direct: jcb_compare as *const c_void,
        },
        Case {
            name: "sum-8-i64",
            sig: "(i64, i64, i64, i64, i64, i64, i64, i64) -> i64",
            handler: sum_8,
            drive: drive_8,
            direct: jcb_sum_8 as *const c_void,
        },
    ]
}

/// Measures every case on every tier.
///
/// # Errors
///
/// A message when a callback cannot be made, lands on another tier than
/// its column's, or a path returns another sum than the direct loop.
pub fn measure(method: &Method) -> Result<Vec<CallbackRow>, String> {
    let jit_available = jitcall::jit_available();
    cases()
        .into_iter()
        .map(|case| {
            let sig: Signature = case
                .sig
                .parse()
                .map_err(|e| format!("{}: {e}", case.name))?;
            let make = |options: Options| {
                // SAFETY: the handlers read the slots of their signature and
                // need no data.
                unsafe { Callback::from_raw(&sig, case.handler, std::ptr::null_mut(), &options) }
                    .map_err(|e| format!("callback {}: {e}", case.name))
            };
            let jit = make(Options::default())?;
            let baked = make(Options {
                avoid_jit: true,
                ..Options::default()
            })?;
            let libffi = make(Options {
                force_libffi: true,
                ..Options::default()
            })?;
            if !matches!(baked.tier(), Tier::Baked(_)) || jit_available != (jit.tier() == Tier::Jit)
            {
                return Err(format!(
                    "callback {}: tiers {} and {}",
                    case.name,
                    jit.tier(),
                    baked.tier()
                ));
            }
            let through = |f: *const c_void| -> Loop {
                // SAFETY: `f` has the loop's function type, and lives as
                // long as the loop (the callbacks outlive the measurement).
                Box::new(move |iters| unsafe { (case.drive)(f, iters) })
            };
            let handler_alone: Option<Loop> = (case.name == "add-i32").then(|| {
                let handler = case.handler;
                // SAFETY: the handler reads two i32 slots.
                Box::new(move |iters| unsafe {
                    jcb_drive_handler_ii(handler, std::ptr::null_mut(), iters) as u64
                }) as Loop
            });
            let mut loops = vec![
                Some(through(case.direct)),
                handler_alone,
                (jit.tier() == Tier::Jit).then(|| through(jit.code_ptr())),
                Some(through(baked.code_ptr())),
                Some(through(libffi.code_ptr())),
            ];
            // Every path computes the same sums.
            let want = loops[0].as_mut().map(|run| run(1000)).unwrap_or(0);
            for (column, run) in Column::ALL.iter().zip(loops.iter_mut()) {
                if let Some(run) = run {
                    let got = run(1000);
                    if got != want {
                        return Err(format!(
                            "callback {} ({}): {got:#x}, the direct loop {want:#x}",
                            case.name,
                            column.key()
                        ));
                    }
                }
            }
            let columns = timing::measure(&mut loops, method);
            drop((jit, baked, libffi));
            Ok(CallbackRow {
                name: case.name,
                signature: sig.to_string(),
                columns,
            })
        })
        .collect()
}
