// Wrong arguments throw a TypeError naming the argument, and nothing is
// called; a library or symbol that does not exist, a malformed signature.
import { dlopen, jitcall } from 'node:ffi';
import ffi from 'ffi';

const check = (got, want, what) => {
  if (!Object.is(got, want)) {
    throw new Error(`${what}: got ${String(got)}, want ${String(want)}`);
  }
};
const thrown = (f, what) => {
  try {
    f();
  } catch (e) {
    return e;
  }
  throw new Error(`${what}: nothing thrown`);
};

let calls = 0;
const { lib, functions: f } = dlopen(jitcall.fixtures, {
  add_i32: { arguments: ['i32', 'i32'], return: 'i32' },
  echo_u8: { arguments: ['u8'], return: 'u8' },
  echo_i64: { arguments: ['i64'], return: 'i64' },
  echo_f64: { arguments: ['f64'], return: 'f64' },
  echo_pointer: { arguments: ['pointer'], return: 'pointer' },
  sum_through: { arguments: ['function', 'i64'], return: 'i64' },
});
const counted = lib.registerCallback({ arguments: ['i64'], return: 'i64' }, (x) => {
  calls++;
  return x;
});

const cases = [
  [() => f.add_i32(1), 'TypeError', /add_i32 takes 2 arguments, not 1/],
  [() => f.add_i32(1, 2, 3), 'TypeError', /not 3/],
  [() => f.add_i32('1', 2), 'TypeError', /argument 0 \(i32\) must be a number/],
  [() => f.add_i32(1, 2n), 'TypeError', /argument 1/],
  [() => f.add_i32(2147483648, 0), 'TypeError', /argument 0 is out of the range of i32/],
  [() => f.add_i32(1.5, 0), 'TypeError', /out of the range/],
  [() => f.echo_u8(-1), 'TypeError', /out of the range of u8/],
  [() => f.echo_u8(256), 'TypeError', /out of the range of u8/],
  [() => f.echo_i64(2 ** 53), 'TypeError', /out of the range/],
  [() => f.echo_i64('5'), 'TypeError', /must be a bigint or a safe integer/],
  [() => f.echo_f64(1n), 'TypeError', /must be a number/],
  [() => f.echo_pointer({}), 'TypeError', /argument 0 \(pointer\)/],
  [() => f.echo_pointer(-1), 'TypeError', /out of the range/],
  [() => f.echo_pointer('a\0b'), 'TypeError', /NUL/],
  [() => f.sum_through(counted, '3'), 'TypeError', /argument 1/],
  [() => dlopen('/nonexistent/libnothing.so', {}), 'Error', /nonexistent/],
  [() => dlopen(42), 'TypeError', /path/],
  [() => lib.getFunction('no_such_symbol', { arguments: [], return: 'void' }), 'Error', /no_such_symbol/],
  [() => lib.getFunction('add_i32', { arguments: ['i33'], return: 'i32' }), 'TypeError', /i33/],
  [() => lib.getFunction('add_i32', { arguments: ['i32'], retval: 'i32' }), 'TypeError', /retval/],
  [() => lib.getFunction('add_i32', 'i32'), 'TypeError', /signature/],
  [() => lib.getFunction('add_i32', { arguments: [{ struct: ['i32'] }], return: 'i32' }), 'TypeError', /struct/],
  [() => lib.registerCallback({ arguments: ['i32'] }, 42), 'TypeError', /callback/],
];
for (const [call, kind, pattern] of cases) {
  const e = thrown(call, String(pattern));
  check(e.constructor.name, kind, `${pattern}: ${e.message}`);
  check(pattern.test(e.message), true, `${pattern} in "${e.message}"`);
}
check(calls, 0, 'nothing was called');
check(f.sum_through(counted, 3n), 6n, 'the callback still works');
check(calls, 3, 'and was called three times');
const e = thrown(() => f.add_i32('x', 1), 'code');
check(e.code, 'ERR_INVALID_ARG_TYPE', 'the TypeError\'s code');

// The module under both names, and as CommonJS.
check(ffi.dlopen, dlopen, "import from 'ffi'");
check(require('node:ffi').dlopen, dlopen, "require('node:ffi')");
check(require('ffi').DynamicLibrary, ffi.DynamicLibrary, "require('ffi')");
check(thrown(() => require('fs'), 'require').message.includes('fs'), true, 'require of another module');
console.log(`ok errors: ${cases.length} cases`);
