//! criterion benchmarks of every call path on a few representative
//! signatures, and of trampoline creation: for profiling and regression
//! work. `cargo run --release` prints the full table; this is the same
//! measurement under criterion's statistics.
//!
//! ```text
//! cargo bench --bench calls                  # everything
//! cargo bench --bench calls -- add-i32       # one signature
//! ```

use std::ffi::c_void;
use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{
    criterion_group, criterion_main, BatchSize, BenchmarkGroup, Criterion, Throughput,
};
use jitcall::{Function, Options, PackedFn, Signature, Value};

#[inline(never)]
extern "C" fn add_i32(a: i32, b: i32) -> i32 {
    a.wrapping_add(b)
}

#[inline(never)]
extern "C" fn add_f64(a: f64, b: f64) -> f64 {
    a + b
}

#[allow(clippy::too_many_arguments)]
#[inline(never)]
extern "C" fn sum_8_i32(a: i32, b: i32, c: i32, d: i32, e: i32, f: i32, g: i32, h: i32) -> i32 {
    [b, c, d, e, f, g, h]
        .into_iter()
        .fold(a, |sum, x| sum.wrapping_add(x))
}

#[inline(never)]
extern "C" fn noop() {}

/// A group with shorter warm-up and measurement than criterion's defaults,
/// so that the whole file runs in a few minutes.
fn short_group<'c>(c: &'c mut Criterion, name: &str) -> BenchmarkGroup<'c, WallTime> {
    let mut group = c.benchmark_group(name);
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    group
}

/// Benchmarks the paths that take packed slots or values, the same for
/// every signature: the JIT packed entry raw and through `call_packed`,
/// libffi, and the checked `call`. Returns the JIT-tier function, whose
/// receiver entry the caller benchmarks with its typed signature.
///
/// # Safety
///
/// `target` must have the signature `sig`, and `slots` and `values` must
/// hold one valid argument per parameter.
unsafe fn bench_bound(
    group: &mut BenchmarkGroup<WallTime>,
    target: *const c_void,
    sig: &str,
    slots: &[u64],
    values: &[Value],
) -> Function {
    let sig: Signature = sig.parse().expect("a valid signature");
    let with_receiver = Options {
        receiver_entry: true,
        ..Options::default()
    };
    let forced = Options {
        force_libffi: true,
        ..Options::default()
    };
    // SAFETY: forwarded from this function's contract.
    let jit = unsafe { Function::with_options(target, &sig, &with_receiver) }.expect("binds");
    // SAFETY: as above.
    let libffi = unsafe { Function::with_options(target, &sig, &forced) }.expect("binds");
    let mut ret = 0u64;
    let ret_ptr: *mut u64 = &mut ret;

    if let Some(entry) = jit.jit_entry() {
        // SAFETY: a JIT-tier function's jit_entry is a PackedFn.
        let entry = black_box(unsafe { std::mem::transmute::<*const c_void, PackedFn>(entry) });
        group.bench_function("packed", |b| {
            // SAFETY: one valid slot per argument and a writable return
            // slot; `jit` keeps the trampoline alive.
            b.iter(|| unsafe { entry(black_box(slots.as_ptr()), black_box(ret_ptr)) })
        });
        group.bench_function("call_packed", |b| {
            // SAFETY: as above.
            b.iter(|| unsafe { jit.call_packed(black_box(slots.as_ptr()), black_box(ret_ptr)) })
        });
    }
    group.bench_function("libffi", |b| {
        // SAFETY: as above.
        b.iter(|| unsafe { libffi.call_packed(black_box(slots.as_ptr()), black_box(ret_ptr)) })
    });
    group.bench_function("call", |b| {
        // SAFETY: the values match the signature and are valid for the target.
        b.iter(|| unsafe { jit.call(black_box(values)) })
    });
    black_box(ret);
    jit
}

fn bench_add_i32(c: &mut Criterion) {
    let mut group = short_group(c, "add-i32");
    let direct: extern "C" fn(i32, i32) -> i32 = black_box(add_i32);
    group.bench_function("direct", |b| b.iter(|| direct(black_box(2), black_box(40))));
    let values = [Value::I32(2), Value::I32(40)];
    // SAFETY: add_i32 has this signature; the arguments are plain integers.
    let jit = unsafe {
        bench_bound(
            &mut group,
            direct as *const c_void,
            "(i32, i32) -> i32",
            &[2, 40],
            &values,
        )
    };
    if let Some(entry) = jit.receiver_entry() {
        type Receiver = unsafe extern "C" fn(*const c_void, i32, i32) -> i32;
        // SAFETY: the receiver entry of this signature has this type.
        let receiver = black_box(unsafe { std::mem::transmute::<*const c_void, Receiver>(entry) });
        group.bench_function("receiver", |b| {
            // SAFETY: `jit` keeps the trampoline alive; plain integer arguments.
            b.iter(|| unsafe { receiver(black_box(std::ptr::null()), black_box(2), black_box(40)) })
        });
    }
    group.finish();
}

fn bench_add_f64(c: &mut Criterion) {
    let mut group = short_group(c, "add-f64");
    let direct: extern "C" fn(f64, f64) -> f64 = black_box(add_f64);
    group.bench_function("direct", |b| {
        b.iter(|| direct(black_box(1.5), black_box(-0.25)))
    });
    let slots = [1.5f64.to_bits(), (-0.25f64).to_bits()];
    let values = [Value::F64(1.5), Value::F64(-0.25)];
    // SAFETY: add_f64 has this signature; the arguments are plain floats.
    let jit = unsafe {
        bench_bound(
            &mut group,
            direct as *const c_void,
            "(f64, f64) -> f64",
            &slots,
            &values,
        )
    };
    if let Some(entry) = jit.receiver_entry() {
        type Receiver = unsafe extern "C" fn(*const c_void, f64, f64) -> f64;
        // SAFETY: the receiver entry of this signature has this type.
        let receiver = black_box(unsafe { std::mem::transmute::<*const c_void, Receiver>(entry) });
        group.bench_function("receiver", |b| {
            // SAFETY: `jit` keeps the trampoline alive; plain float arguments.
            b.iter(|| unsafe {
                receiver(
                    black_box(std::ptr::null()),
                    black_box(1.5),
                    black_box(-0.25),
                )
            })
        });
    }
    group.finish();
}

fn bench_sum_8_i32(c: &mut Criterion) {
    let mut group = short_group(c, "sum-8-i32");
    type Direct = extern "C" fn(i32, i32, i32, i32, i32, i32, i32, i32) -> i32;
    let direct: Direct = black_box(sum_8_i32);
    let a = [1, -2, 3, -4, 5, -6, 7, -8];
    group.bench_function("direct", |b| {
        b.iter(|| {
            let a = black_box(a);
            direct(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7])
        })
    });
    let slots = a.map(|x| x as i64 as u64);
    let values = a.map(Value::I32);
    let sig = "(i32, i32, i32, i32, i32, i32, i32, i32) -> i32";
    // SAFETY: sum_8_i32 has this signature; the arguments are plain integers.
    let jit = unsafe { bench_bound(&mut group, direct as *const c_void, sig, &slots, &values) };
    if let Some(entry) = jit.receiver_entry() {
        type Receiver =
            unsafe extern "C" fn(*const c_void, i32, i32, i32, i32, i32, i32, i32, i32) -> i32;
        // SAFETY: the receiver entry of this signature has this type.
        let receiver = black_box(unsafe { std::mem::transmute::<*const c_void, Receiver>(entry) });
        group.bench_function("receiver", |b| {
            b.iter(|| {
                let a = black_box(a);
                // SAFETY: `jit` keeps the trampoline alive; plain integers.
                unsafe {
                    receiver(
                        black_box(std::ptr::null()),
                        a[0],
                        a[1],
                        a[2],
                        a[3],
                        a[4],
                        a[5],
                        a[6],
                        a[7],
                    )
                }
            })
        });
    }
    group.finish();
}

fn bench_noop(c: &mut Criterion) {
    let mut group = short_group(c, "noop-void");
    let direct: extern "C" fn() = black_box(noop);
    group.bench_function("direct", |b| b.iter(|| direct()));
    // SAFETY: noop takes and returns nothing.
    let jit = unsafe { bench_bound(&mut group, direct as *const c_void, "() -> void", &[], &[]) };
    if let Some(entry) = jit.receiver_entry() {
        type Receiver = unsafe extern "C" fn(*const c_void);
        // SAFETY: the receiver entry of this signature has this type.
        let receiver = black_box(unsafe { std::mem::transmute::<*const c_void, Receiver>(entry) });
        group.bench_function("receiver", |b| {
            // SAFETY: `jit` keeps the trampoline alive.
            b.iter(|| unsafe { receiver(black_box(std::ptr::null())) })
        });
    }
    group.finish();
}

fn bench_creation(c: &mut Criterion) {
    let sig: Signature = "(i32, i32) -> i32".parse().expect("a valid signature");
    let target = add_i32 as *const c_void;

    let mut group = short_group(c, "create");
    group.bench_function("Function::new", |b| {
        b.iter_batched(
            || (),
            // SAFETY: add_i32 has this signature and lives forever.
            |()| unsafe { Function::new(target, &sig) }.expect("binds"),
            BatchSize::NumIterations(500),
        )
    });
    group.finish();

    let items = vec![(target, &sig); 1000];
    let mut group = short_group(c, "create-batch-1000");
    group.throughput(Throughput::Elements(items.len() as u64));
    group.bench_function("Function::batch", |b| {
        b.iter_batched(
            || (),
            // SAFETY: as above, for every item.
            |()| unsafe { Function::batch(&items, &Options::default()) }.expect("binds"),
            BatchSize::NumIterations(8),
        )
    });
    group.finish();
}

criterion_group!(
    benches,
    bench_add_i32,
    bench_add_f64,
    bench_sum_8_i32,
    bench_noop,
    bench_creation
);
criterion_main!(benches);
