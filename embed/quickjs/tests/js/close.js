// Closing a library: its functions throw ERR_FFI_LIBRARY_CLOSED, nothing
// more binds, a second close does nothing.
import { dlopen, DynamicLibrary, jitcall } from 'node:ffi';

const check = (got, want, what) => {
  if (!Object.is(got, want)) {
    throw new Error(`${what}: got ${String(got)}, want ${String(want)}`);
  }
};
const throwsCode = (f, code, what) => {
  try {
    f();
  } catch (e) {
    check(e.code, code, `${what}: ${e.message}`);
    return e;
  }
  throw new Error(`${what}: nothing thrown`);
};

const { lib, functions } = dlopen(jitcall.fixtures, {
  add_i32: { arguments: ['i32', 'i32'], return: 'i32' },
});
check(functions.add_i32(20, 22), 42, 'add_i32 while open');
const later = lib.getFunction('echo_i32', { arguments: ['i32'], return: 'i32' });
check(later(-7), -7, 'getFunction');
check(lib.functions.echo_i32, later, 'lib.functions');
lib.close();
const e = throwsCode(() => functions.add_i32(1, 2), 'ERR_FFI_LIBRARY_CLOSED', 'a call after close');
check(e instanceof Error, true, 'an Error');
throwsCode(() => later(1), 'ERR_FFI_LIBRARY_CLOSED', 'getFunction\'s after close');
throwsCode(() => lib.getFunction('add_i32', { arguments: ['i32', 'i32'], return: 'i32' }),
  'ERR_FFI_LIBRARY_CLOSED', 'binding after close');
throwsCode(() => lib.getSymbol('add_i32'), 'ERR_FFI_LIBRARY_CLOSED', 'a symbol after close');
lib.close();

// A DynamicLibrary of its own, and disposal where the engine has it.
const other = new DynamicLibrary(jitcall.fixtures);
const add = other.getFunction('add_i32', { arguments: ['i32', 'i32'], return: 'i32' });
check(add(1, 2), 3, 'DynamicLibrary');
check(typeof other.getSymbol('add_i32'), 'bigint', 'getSymbol');
if (typeof Symbol.dispose === 'symbol') {
  other[Symbol.dispose]();
  throwsCode(() => add(1, 2), 'ERR_FFI_LIBRARY_CLOSED', 'a call after dispose');
} else {
  console.log('NOTICE: no Symbol.dispose in this engine: disposal NOT checked');
  other.close();
}
console.log('ok close');
