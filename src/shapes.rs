//! Shape-shared stubs: one JIT stub per distinct shape
//! ([`Plan::shape`]), the target passed as data, shared by every function
//! of that shape while any of them lives. Binding a function whose shape
//! has a stub maps nothing.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, PoisonError, Weak};

use jitcall_emitters::{emit, Placement, ShapeFn};

use crate::memory::{CodeBlock, MemoryRefused};
use crate::Plan;

/// The live stubs, by shape. An entry whose stub was unmapped (every
/// function of its shape dropped) is replaced on the next use.
static STUBS: LazyLock<Mutex<HashMap<Plan, Weak<CodeBlock>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// Dead entries are swept once the map holds this many.
const SWEEP_AT: usize = 256;

/// The stub for `plan`'s shape (a packed plan's: a [`ShapeFn`]), emitted
/// and mapped if no live function has it, with the mapping that holds it.
///
/// # Errors
///
/// The refused system call, when a new stub cannot be mapped.
pub(crate) fn stub(plan: &Plan) -> Result<(ShapeFn, Arc<CodeBlock>), MemoryRefused> {
    let (address, block) = shape_stub(plan)?;
    // SAFETY: the block starts with the shape stub of a packed plan's
    // shape, a ShapeFn, and stays mapped while the returned Arc lives.
    let entry = unsafe { std::mem::transmute::<u64, ShapeFn>(address) };
    Ok((entry, block))
}

/// The stub for a value plan's shape: its address (a `ShapeValueFn` or
/// `FloatShapeValueFn`, as the return says) and its mapping.
///
/// # Errors
///
/// As for [`stub`].
pub(crate) fn value_stub(plan: &Plan) -> Result<(u64, Arc<CodeBlock>), MemoryRefused> {
    debug_assert_eq!(plan.entry, crate::Entry::Value);
    shape_stub(plan)
}

/// The stub of `plan`'s shape, whatever its entry: its address and its
/// mapping.
fn shape_stub(plan: &Plan) -> Result<(u64, Arc<CodeBlock>), MemoryRefused> {
    let shape = plan.shape();
    let mut stubs = STUBS.lock().unwrap_or_else(PoisonError::into_inner);
    let block = match stubs.get(&shape).and_then(Weak::upgrade) {
        Some(block) => block,
        None => {
            let code = emit(&shape, &Placement::shape());
            let block = Arc::new(CodeBlock::build(code.len(), None, |_, bytes| {
                bytes[..code.len()].copy_from_slice(&code);
            })?);
            if stubs.len() >= SWEEP_AT {
                stubs.retain(|_, stub| stub.strong_count() > 0);
            }
            stubs.insert(shape, Arc::downgrade(&block));
            block
        }
    };
    Ok((block.addr(), block))
}
