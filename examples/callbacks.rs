//! Callbacks: C function pointers that call Rust.
//!
//! 1. `qsort` from the C library sorts an array with a comparator made
//!    from a closure.
//! 2. A runtime whose functions may run only on its own thread, as a JS
//!    engine's: a thread made by a C library calls a callback, whose
//!    handler sends the call to the runtime thread's queue and waits for
//!    the reply; the runtime thread runs the calls in its event loop.
//!
//! ```sh
//! cargo run --example callbacks
//! ```

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::mpsc;
use std::thread::{self, ThreadId};

use jitcall::{Callback, Error};

fn main() -> Result<(), Error> {
    sort_with_a_comparator()?;
    hop_to_the_runtime_thread()
}

fn sort_with_a_comparator() -> Result<(), Error> {
    let compare = Callback::new(&"(pointer, pointer) -> i32".parse()?, |args, ret| {
        // SAFETY: qsort passes two pointers to elements of the i32 array
        // below.
        let (a, b) = unsafe { (*(args[0] as *const i32), *(args[1] as *const i32)) };
        *ret = a.cmp(&b) as i32 as i64 as u64;
    })?;
    // SAFETY: the code pointer has the C ABI of (pointer, pointer) -> i32,
    // qsort's comparator type, and lives as long as `compare`.
    let comparator: unsafe extern "C" fn(*const libc::c_void, *const libc::c_void) -> i32 =
        unsafe { std::mem::transmute(compare.code_ptr()) };
    let mut values = [42i32, -7, 19, 0, 3, -100, 8];
    // SAFETY: `values` holds 7 elements of 4 bytes, which the comparator
    // reads as i32.
    unsafe {
        libc::qsort(
            values.as_mut_ptr().cast(),
            values.len(),
            4,
            Some(comparator),
        )
    };
    println!(
        "qsort with a comparator on the {} tier: {values:?}",
        compare.tier()
    );
    Ok(())
}

/// One of the runtime's functions: it holds state that is not `Send`, as
/// a JS function holds its engine's heap.
type RuntimeFunction = Box<dyn Fn(&[u64]) -> u64>;

thread_local! {
    /// The runtime's functions, on the thread that owns them.
    static FUNCTIONS: RefCell<Vec<RuntimeFunction>> = const { RefCell::new(Vec::new()) };
}

/// A call for the runtime thread to make: which function, its arguments
/// (the callback's slots), and where to send the return; `None` for a call
/// nobody waits for.
struct Request {
    function: usize,
    slots: Vec<u64>,
    reply: Option<mpsc::Sender<u64>>,
}

/// The handler of a callback for the runtime's function `function`. On the
/// runtime thread it calls the function; on another thread it queues the
/// call and, when `wait` is set, blocks until the runtime thread replies.
fn hop(
    function: usize,
    runtime: ThreadId,
    queue: mpsc::Sender<Request>,
    wait: bool,
) -> impl Fn(&[u64], &mut u64) + Send + Sync + 'static {
    move |args, ret| {
        if thread::current().id() == runtime {
            *ret = FUNCTIONS.with(|functions| functions.borrow()[function](args));
            return;
        }
        let slots = args.to_vec();
        if !wait {
            // A void call nobody waits for: queued, and the caller goes on.
            let request = Request {
                function,
                slots,
                reply: None,
            };
            queue
                .send(request)
                .expect("the runtime thread serves its queue");
            return;
        }
        let (reply, answer) = mpsc::channel();
        let request = Request {
            function,
            slots,
            reply: Some(reply),
        };
        queue
            .send(request)
            .expect("the runtime thread serves its queue");
        *ret = answer.recv().expect("the runtime thread replies");
    }
}

fn hop_to_the_runtime_thread() -> Result<(), Error> {
    // This thread is the runtime's: its functions and their state live here.
    let calls = Rc::new(Cell::new(0u32));
    let total = Rc::new(Cell::new(None));
    let (square, done) = (Rc::clone(&calls), Rc::clone(&total));
    FUNCTIONS.with(|functions| {
        let mut functions = functions.borrow_mut();
        // 0: x => x * x, counting its calls.
        functions.push(Box::new(move |args| {
            square.set(square.get() + 1);
            (args[0] as i64).wrapping_mul(args[0] as i64) as u64
        }));
        // 1: (total) => void, which the library calls once it is done.
        functions.push(Box::new(move |args| {
            done.set(Some(args[0] as i64));
            0
        }));
    });

    let runtime = thread::current().id();
    let (queue, requests) = mpsc::channel();
    let (square_sig, done_sig) = ("(i64) -> i64".parse()?, "(i64) -> void".parse()?);
    let square = Callback::new(&square_sig, hop(0, runtime, queue.clone(), true))?;
    let done = Callback::new(&done_sig, hop(1, runtime, queue, false))?;
    // SAFETY: the code pointers have the C ABI of these types, and the
    // callbacks outlive the thread that calls them, joined below.
    let square_fn: extern "C" fn(i64) -> i64 = unsafe { std::mem::transmute(square.code_ptr()) };
    // SAFETY: as above.
    let done_fn: extern "C" fn(i64) = unsafe { std::mem::transmute(done.code_ptr()) };

    // Stands for a thread a C library creates: it calls the callbacks
    // through their code pointers, as C does.
    let library = thread::spawn(move || {
        let sum: i64 = (1..=4).map(|x| square_fn(x)).sum();
        done_fn(sum);
    });

    // The runtime's event loop: each queued call runs here, and its
    // caller, if it waits, gets the return.
    while total.get().is_none() {
        let request = requests.recv().expect("the callbacks hold the queue");
        let ret = FUNCTIONS.with(|functions| functions.borrow()[request.function](&request.slots));
        if let Some(reply) = request.reply {
            reply.send(ret).expect("the caller waits for the reply");
        }
    }
    library.join().expect("the library's thread finished");
    println!(
        "the library's thread: sum of squares {} in {} calls on the runtime thread",
        total.get().unwrap_or_default(),
        calls.get()
    );

    // Called on the runtime thread itself, the handler calls the function
    // directly.
    println!("on the runtime thread: 9 * 9 = {}", square_fn(9));
    Ok(())
}
