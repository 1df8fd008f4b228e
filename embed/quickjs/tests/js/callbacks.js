// Callbacks: qsort and bsearch with JavaScript comparators, callbacks of
// several types, unregistering, and an exception thrown in a callback.
import { dlopen, jitcall } from 'node:ffi';

const check = (got, want, what) => {
  if (!Object.is(got, want)) {
    throw new Error(`${what}: got ${String(got)}, want ${String(want)}`);
  }
};

const { lib, functions: c } = dlopen(null, {
  qsort: { arguments: ['pointer', 'u64', 'u64', 'function'], return: 'void' },
  bsearch: {
    arguments: ['pointer', 'pointer', 'u64', 'u64', 'function'],
    return: 'pointer',
  },
});
const values = new Int32Array([5, -3, 9, 0, 2147483647, -2147483648, 7]);
const view = new DataView(values.buffer);
let calls = 0;
// The comparator reads the two elements through their addresses, as C
// passes them: offsets into the array's own bytes.
const fixtures = dlopen(jitcall.fixtures, {
  address_of: { arguments: ['pointer'], return: 'u64' },
  sum_through: { arguments: ['function', 'i64'], return: 'i64' },
  apply_f64: { arguments: ['function', 'f64'], return: 'f64' },
  apply_i8: { arguments: ['function', 'i8'], return: 'i8' },
  apply_u16: { arguments: ['function', 'u16'], return: 'u16' },
  apply_pointer: { arguments: ['function', 'pointer'], return: 'pointer' },
});
const base = fixtures.functions.address_of(values);
const at = (p) => view.getInt32(Number(p - base), true);
const compare = lib.registerCallback(
  { arguments: ['pointer', 'pointer'], return: 'i32' },
  (a, b) => {
    calls++;
    const x = at(a);
    const y = at(b);
    return x < y ? -1 : x > y ? 1 : 0;
  },
);
check(typeof compare, 'bigint', 'registerCallback returns a bigint');
c.qsort(values, values.length, 4, compare);
check(Array.from(values).join(','), '-2147483648,-3,0,5,7,9,2147483647', 'qsort');
check(calls > 0, true, 'the comparator ran');

const key = new Int32Array([7]);
const keyAddress = fixtures.functions.address_of(key);
const find = lib.registerCallback(
  { arguments: ['pointer', 'pointer'], return: 'i32' },
  (k, e) => {
    const x = new DataView(key.buffer).getInt32(Number(k - keyAddress), true);
    const y = at(e);
    return x < y ? -1 : x > y ? 1 : 0;
  },
);
const found = c.bsearch(key, values, values.length, 4, find);
check(found - base, 16n, 'bsearch found 7 at index 4');
key[0] = 8;
check(c.bsearch(key, values, values.length, 4, find), 0n, 'bsearch of 8');

const f = fixtures.functions;
const square = fixtures.lib.registerCallback({ arguments: ['i64'], return: 'i64' }, (x) => x * x);
check(f.sum_through(square, 10n), 385n, 'a callback called ten times');
const half = fixtures.lib.registerCallback({ arguments: ['f64'], return: 'f64' }, (x) => x / 2);
check(f.apply_f64(half, -3), -1.5, 'an f64 callback');
const negate = fixtures.lib.registerCallback({ arguments: ['i8'], return: 'i8' }, (x) => -x);
check(f.apply_i8(negate, -127), 127, 'an i8 callback');
const inc = fixtures.lib.registerCallback({ arguments: ['u16'], return: 'u16' }, (x) => x + 1);
check(f.apply_u16(inc, 65534), 65535, 'a u16 callback');
const same = fixtures.lib.registerCallback({ arguments: ['pointer'], return: 'pointer' }, (p) => p);
check(f.apply_pointer(same, 0xdeadbeefn), 0xdeadbeefn, 'a pointer callback');

// A callback that throws: the native call returns, then the exception.
const throws = fixtures.lib.registerCallback({ arguments: ['i64'], return: 'i64' }, () => {
  throw new Error('from the callback');
});
let caught;
try {
  f.sum_through(throws, 3n);
} catch (e) {
  caught = e;
}
check(caught?.code, 'ERR_FFI_CALLBACK_THREW', 'the callback\'s exception');
check(/from the callback/.test(caught.message), true, caught.message);

// Unregistering frees it; a second time is an error.
fixtures.lib.unregisterCallback(square);
let again;
try {
  fixtures.lib.unregisterCallback(square);
} catch (e) {
  again = e;
}
check(again instanceof Error, true, 'unregistering twice');
lib.unregisterCallback(compare);
lib.unregisterCallback(find);
console.log(`ok callbacks: ${calls} comparisons`);
