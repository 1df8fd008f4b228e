// ns per call of libm's cos and a two-argument integer add through
// node:ffi, next to a plain JavaScript function call. On jitcall-qjs the
// FFI rows run twice: on jitcall's JIT tier and on forced libffi. The same
// script runs on Node 26 with `node --experimental-ffi` (one FFI row each:
// Node's own path):
//
//   jitcall-qjs embed/quickjs/bench/ffi.js [CALLS] [FIXTURES.so]
//   node --experimental-ffi embed/quickjs/bench/ffi.js CALLS FIXTURES.so
//
// FIXTURES.so is libjitcall_qjs_fixtures.so (its `add_i32`); jitcall-qjs
// knows where its own is.
import * as ffi from 'node:ffi';

const calls = Number(process.argv[2] ?? 1_000_000);
const fixtures = process.argv[3] ?? ffi.jitcall?.fixtures;
if (!Number.isInteger(calls) || calls <= 0 || !fixtures) {
  throw new Error('usage: ffi.js [CALLS] [FIXTURES.so]');
}
const now = globalThis.performance ? () => performance.now() : () => Date.now();
const REPEATS = 5;

/// The median over REPEATS runs of `calls` calls of `f`, in ns per call.
function time(f) {
  const runs = [];
  for (let r = 0; r < REPEATS; r++) {
    let sink = 0;
    const start = now();
    for (let i = 0; i < calls; i++) {
      sink += f(i);
    }
    const ms = now() - start;
    if (Number.isNaN(sink)) {
      throw new Error('unreachable: keeps the loop');
    }
    runs.push((ms * 1e6) / calls);
  }
  runs.sort((a, b) => a - b);
  return runs[REPEATS >> 1];
}

function bind() {
  const libm = ffi.dlopen(ffi.suffix === 'so' ? 'libm.so.6' : `libm.${ffi.suffix}`, {
    cos: { arguments: ['double'], return: 'double' },
  });
  const lib = ffi.dlopen(fixtures, { add_i32: { arguments: ['int32', 'int32'], return: 'int32' } });
  return { cos: libm.functions.cos, add: lib.functions.add_i32 };
}

const rows = [];
const plain = (a, b) => a + b;
rows.push(['plain JS (a, b) => a + b', time((i) => plain(i, 1))]);
rows.push(['Math.cos', time((i) => Math.cos(i))]);
const fast = bind();
const where = fast.cos.tier ? ` (${fast.cos.tier})` : '';
rows.push([`cos${where}`, time((i) => fast.cos(i))]);
rows.push([`add_i32${where}`, time((i) => fast.add(i, 1))]);
if (ffi.jitcall) {
  ffi.jitcall.options({ forceLibffi: true });
  const slow = bind();
  rows.push([`cos (${slow.cos.tier})`, time((i) => slow.cos(i))]);
  rows.push([`add_i32 (${slow.add.tier})`, time((i) => slow.add(i, 1))]);
  ffi.jitcall.options({ forceLibffi: false });
}
console.log(`${calls} calls, median of ${REPEATS} runs`);
for (const [what, ns] of rows) {
  console.log(`  ${what.padEnd(44)} ${ns.toFixed(1).padStart(8)} ns/call`);
}
