// libm and libc functions, and an echo of every scalar type, with edge
// values: the value rules of Node's node:ffi.
import { dlopen, jitcall } from 'node:ffi';

const check = (got, want, what) => {
  if (!Object.is(got, want)) {
    throw new Error(`${what}: got ${String(got)} (${typeof got}), want ${String(want)} (${typeof want})`);
  }
};

const jit = !process.env.JITCALL_DISABLE_JIT;
const libm = dlopen('libm.so.6', {
  cos: { arguments: ['double'], return: 'double' },
  pow: { arguments: ['f64', 'f64'], return: 'f64' },
  sqrtf: { arguments: ['float'], return: 'float' },
  fmin: { arguments: ['double', 'double'], return: 'double' },
  copysign: { arguments: ['double', 'double'], return: 'double' },
});
check(libm.functions.cos(0), 1, 'cos(0)');
check(libm.functions.cos(Math.PI), -1, 'cos(pi)');
check(libm.functions.pow(2, 10), 1024, 'pow');
check(libm.functions.sqrtf(2.25), 1.5, 'sqrtf');
check(Number.isNaN(libm.functions.fmin(NaN, NaN)), true, 'fmin(NaN, NaN)');
check(libm.functions.copysign(1, -0), -1, 'copysign(1, -0): -0 passes as -0');
check(libm.functions.copysign(-0, 1), 0, 'copysign(-0, 1)');
check(typeof libm.functions.cos.pointer, 'bigint', 'cos.pointer');
check(libm.functions.cos.pointer !== 0n, true, 'cos.pointer is an address');
check(libm.lib.symbols.cos, libm.functions.cos.pointer, 'lib.symbols.cos');
check(libm.functions.cos.tier === 'JIT', jit, `cos.tier is ${libm.functions.cos.tier}`);

const libc = dlopen(null, {
  abs: { arguments: ['i32'], return: 'i32' },
  labs: { arguments: ['i64'], return: 'i64' },
  toupper: { arguments: ['int32'], return: 'int32' },
  strlen: { arguments: ['string'], return: 'u64' },
  atoi: { arguments: ['str'], return: 'i32' },
});
check(libc.functions.abs(-2147483647), 2147483647, 'abs');
check(libc.functions.labs(-9007199254740993n), 9007199254740993n, 'labs with a bigint');
check(libc.functions.labs(-42), 42n, 'labs with a safe integer');
check(libc.functions.toupper(97), 65, 'toupper');
check(libc.functions.strlen('héllo'), 6n, 'strlen of UTF-8');
check(libc.functions.strlen(''), 0n, 'strlen of ""');
check(libc.functions.atoi('-123x'), -123, 'atoi');

const { functions: f } = dlopen(jitcall.fixtures, {
  echo_i8: { arguments: ['i8'], return: 'i8' },
  echo_u8: { arguments: ['u8'], return: 'u8' },
  echo_i16: { arguments: ['i16'], return: 'i16' },
  echo_u16: { arguments: ['u16'], return: 'u16' },
  echo_i32: { arguments: ['i32'], return: 'i32' },
  echo_u32: { arguments: ['u32'], return: 'u32' },
  echo_i64: { arguments: ['i64'], return: 'i64' },
  echo_u64: { arguments: ['u64'], return: 'u64' },
  echo_f32: { arguments: ['f32'], return: 'f32' },
  echo_f64: { arguments: ['f64'], return: 'f64' },
  echo_bool: { arguments: ['bool'], return: 'bool' },
  echo_pointer: { arguments: ['pointer'], return: 'pointer' },
  mix: {
    arguments: ['i8', 'u8', 'i16', 'u16', 'i32', 'u32', 'i64', 'u64', 'f32', 'f64'],
    return: 'f64',
  },
});
const edges = {
  echo_i8: [-128, -1, 0, 127],
  echo_u8: [0, 1, 255],
  echo_i16: [-32768, -1, 32767],
  echo_u16: [0, 65535],
  echo_i32: [-2147483648, -1, 0, 2147483647],
  echo_u32: [0, 2147483648, 4294967295],
  echo_i64: [-9223372036854775808n, -1n, 0n, 9223372036854775807n],
  echo_u64: [0n, 9223372036854775808n, 18446744073709551615n],
  echo_f64: [0, -0, 1.5, Number.MIN_VALUE, Number.MAX_VALUE, Infinity, -Infinity],
  echo_f32: [0, -0, 1.5, -2.5, Infinity],
  echo_pointer: [0n, 1n, 0x7fff_ffff_ffffn, 0xffff_ffff_ffff_ffffn],
};
let checked = 0;
for (const [name, values] of Object.entries(edges)) {
  for (const v of values) {
    check(f[name](v), v, `${name}(${String(v)})`);
    checked++;
  }
}
check(Number.isNaN(f.echo_f64(NaN)), true, 'echo_f64(NaN)');
check(f.echo_f32(0.1), Math.fround(0.1), 'echo_f32 rounds to f32');
check(f.echo_f32(1e-45), Math.fround(1e-45), 'echo_f32 of a subnormal');
check(f.echo_i64(-5), -5n, 'echo_i64 of a safe integer');
check(f.echo_bool(true), 1, 'echo_bool(true)');
check(f.echo_bool(false), 0, 'echo_bool(false)');
check(f.echo_bool(1), 1, 'echo_bool(1)');
check(f.echo_pointer(null), 0n, 'echo_pointer(null)');
check(f.echo_pointer(undefined), 0n, 'echo_pointer(undefined)');
check(f.echo_u64(-1n), 18446744073709551615n, 'a bigint wraps to 64 bits');
check(f.mix(-1, 2, -3, 4, -5, 6, -7n, 8n, 0.5, 0.25),
  -1 + 4 - 9 + 16 - 25 + 36 - 49 + 64 + 4.5 + 2.5, 'mix');
console.log(`ok scalars: ${checked} edge values, tier ${f.echo_i8.tier}`);
