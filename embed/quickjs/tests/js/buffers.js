// Pointers, buffers, strings and out-parameters.
import { dlopen, jitcall } from 'node:ffi';

const check = (got, want, what) => {
  if (!Object.is(got, want)) {
    throw new Error(`${what}: got ${String(got)}, want ${String(want)}`);
  }
};

const { functions: c } = dlopen(null, {
  strtol: { arguments: ['pointer', 'pointer', 'i32'], return: 'i64' },
  memset: { arguments: ['pointer', 'i32', 'u64'], return: 'pointer' },
  memcpy: { arguments: ['pointer', 'pointer', 'u64'], return: 'pointer' },
  malloc: { arguments: ['u64'], return: 'pointer' },
  free: { arguments: ['pointer'], return: 'void' },
  strlen: { arguments: ['pointer'], return: 'u64' },
});
const { functions: f } = dlopen(jitcall.fixtures, {
  address_of: { arguments: ['pointer'], return: 'u64' },
  sum_bytes: { arguments: ['buffer', 'u64'], return: 'u64' },
});

// strtol's out-parameter: a BigUint64Array receives the end pointer.
const text = Uint8Array.from('123abc\0', (ch) => ch.charCodeAt(0));
const end = new BigUint64Array(1);
check(c.strtol(text, end, 10), 123n, 'strtol');
check(end[0] - f.address_of(text), 3n, 'strtol stopped after three digits');
check(c.strtol('-0x1f', null, 16), -31n, 'strtol of a string, no end pointer');

// A typed array's bytes, at its offset within its buffer.
const bytes = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]);
check(f.sum_bytes(bytes, 8n), 36n, 'a Uint8Array as buffer');
check(f.sum_bytes(bytes.subarray(2, 5), 3n), 12n, 'a subarray as buffer');
check(f.sum_bytes(bytes.buffer, 4n), 10n, 'an ArrayBuffer as buffer');
check(f.sum_bytes(new DataView(bytes.buffer, 4, 4), 4n), 26n, 'a DataView as buffer');
check(f.sum_bytes(null, 0n), 0n, 'null as buffer');
check(f.address_of(bytes.subarray(3)) - f.address_of(bytes), 3n, 'subarray address');

// memset and memcpy write into JavaScript memory.
const out = new Uint8Array(6);
c.memset(out.subarray(1, 5), 0x41, 4);
check(Array.from(out).join(','), '0,65,65,65,65,0', 'memset');
c.memcpy(out, new Uint8Array([9, 8, 7]), 3);
check(Array.from(out).join(','), '9,8,7,65,65,0', 'memcpy');

// A pointer return, then passed back.
const p = c.malloc(16n);
check(typeof p, 'bigint', 'malloc returns a bigint');
check(p !== 0n, true, 'malloc returns an address');
c.memcpy(p, 'hello', 6);
check(c.strlen(p), 5n, 'strlen of malloc\'d memory');
c.free(p);
check(c.free(null), undefined, 'free(null) returns undefined');
console.log('ok buffers');
