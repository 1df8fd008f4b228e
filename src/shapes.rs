//! Shape-shared stubs: one JIT block per distinct shape ([`Plan::shape`])
//! holding the shape's packed stub and, for every return but a struct, its
//! value stub, the target passed as data; shared by every function of that
//! shape while any of them lives. Binding a function whose shape has a
//! block maps nothing.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, PoisonError, Weak};

use jitcall_emitters::unwind::EhFrame;
use jitcall_emitters::{emit_with_unwind, Placement, ShapeFn};

use crate::memory::{CodeBlock, MemoryRefused};
use crate::perf_map::{self, Names};
use crate::{Entry, Plan};

/// A shape's block while it lives, and where its value stub starts in it.
struct Stubs {
    block: Weak<CodeBlock>,
    value_at: Option<usize>,
}

/// The live blocks, by shape. An entry whose block was unmapped (every
/// function of its shape dropped) is replaced on the next use.
static STUBS: LazyLock<Mutex<HashMap<Plan, Stubs>>> = LazyLock::new(|| Mutex::new(HashMap::new()));

/// Dead entries are swept once the map holds this many.
const SWEEP_AT: usize = 256;

/// Where a value stub starts after the packed one.
const ALIGN: usize = 16;

/// A shape's stubs: the packed stub, the value stub's address (a
/// `ShapeValueFn` or `FloatShapeValueFn`, as the return says) when the
/// shape has one, and the mapping that holds them.
pub(crate) struct ShapeStubs {
    pub packed: ShapeFn,
    pub value: Option<u64>,
    pub block: Arc<CodeBlock>,
}

/// The stubs of the packed plan `plan`'s shape, emitted and mapped if no
/// live function has them.
///
/// # Errors
///
/// The refused system call, when a new block cannot be mapped.
pub(crate) fn stubs(plan: &Plan) -> Result<ShapeStubs, MemoryRefused> {
    debug_assert_eq!(plan.entry, Entry::Packed);
    let shape = plan.shape();
    let mut stubs = STUBS.lock().unwrap_or_else(PoisonError::into_inner);
    let live = stubs
        .get(&shape)
        .and_then(|s| Some((s.block.upgrade()?, s.value_at)));
    let (block, value_at) = match live {
        Some(live) => live,
        None => {
            let packed = emit_with_unwind(&shape, &Placement::shape());
            let value = (shape.ret.as_struct().is_none()).then(|| {
                let mut value = shape.clone();
                value.entry = Entry::Value;
                emit_with_unwind(&value, &Placement::shape())
            });
            let value_at = value
                .as_ref()
                .map(|_| packed.code.len().next_multiple_of(ALIGN));
            let len = value_at.unwrap_or(0)
                + value
                    .as_ref()
                    .map_or(packed.code.len(), |value| value.code.len());
            let block = Arc::new(CodeBlock::build(len, None, |base, bytes| {
                bytes[..packed.code.len()].copy_from_slice(&packed.code);
                let mut names = Names::new(base);
                names.add(base, packed.code.len(), || {
                    perf_map::name("shape", &shape, "packed")
                });
                let mut placed = EhFrame::with_capacity(2);
                placed.add(base, &packed.unwind);
                if let (Some(at), Some(value)) = (value_at, value) {
                    let address = base + at as u64;
                    bytes[at..at + value.code.len()].copy_from_slice(&value.code);
                    names.add(address, value.code.len(), || {
                        perf_map::name("shape", &shape, "value")
                    });
                    placed.add(address, &value.unwind);
                }
                (placed, names)
            })?);
            if stubs.len() >= SWEEP_AT {
                stubs.retain(|_, s| s.block.strong_count() > 0);
            }
            let entry = Stubs {
                block: Arc::downgrade(&block),
                value_at,
            };
            stubs.insert(shape, entry);
            (block, value_at)
        }
    };
    // SAFETY: the block starts with the packed stub of the plan's shape, a
    // ShapeFn, and stays mapped while the returned Arc lives.
    let packed = unsafe { std::mem::transmute::<u64, ShapeFn>(block.addr()) };
    let value = value_at.map(|at| block.addr() + at as u64);
    Ok(ShapeStubs {
        packed,
        value,
        block,
    })
}
