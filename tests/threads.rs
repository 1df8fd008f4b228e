//! Functions are Send + Sync: calls from 8 threads at once, on shared
//! functions and on functions each thread binds itself, all agree with
//! direct calls.

use std::sync::Arc;

use jitcall::{Function, Options};
use jitcall_fixtures::many_arg_shapes;

const THREADS: usize = 8;

#[test]
fn eight_threads_call_shared_and_private_functions() {
    let shapes = Arc::new(many_arg_shapes());
    let shared: Arc<Vec<Function>> = Arc::new(
        shapes
            .iter()
            // SAFETY: each shape's target has its signature.
            .map(|s| unsafe { Function::new(s.target, &s.sig) }.unwrap())
            .collect(),
    );
    let start = Arc::new(std::sync::Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let (shapes, shared, start) = (shapes.clone(), shared.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                let mut calls = 0;
                for round in 0..200u64 {
                    for (i, shape) in shapes.iter().enumerate() {
                        let slots: Vec<u64> = (0u64..)
                            .zip(&shape.sig.args)
                            .map(|(k, &ty)| {
                                let v = (t as u64) << 32 | round << 8 | k;
                                if ty == jitcall::Type::Bool {
                                    v & 1
                                } else {
                                    v
                                }
                            })
                            .collect();
                        let want = (shape.direct)(&slots).unwrap_or(0);
                        let private = if round % 50 == 0 {
                            let options = Options {
                                receiver_entry: t % 2 == 0,
                                ..Options::default()
                            };
                            // SAFETY: as above.
                            Some(
                                unsafe {
                                    Function::with_options(shape.target, &shape.sig, &options)
                                }
                                .unwrap(),
                            )
                        } else {
                            None
                        };
                        for f in std::iter::once(&shared[i]).chain(private.as_ref()) {
                            let mut ret = 0u64;
                            // SAFETY: one slot per argument.
                            unsafe { f.call_packed(slots.as_ptr(), &mut ret) };
                            assert_eq!(ret, want, "thread {t}: {}", shape.name);
                            calls += 1;
                        }
                    }
                }
                calls
            })
        })
        .collect();
    let calls: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    println!("{calls} calls from {THREADS} threads agreed");
}
