import { dlopen } from 'node:ffi';
const { functions } = dlopen('libm.so.6', { cos: { arguments: ['double'], return: 'double' } });
console.log(`cos(0.5) = ${functions.cos(0.5)} (${functions.cos.tier})`);
