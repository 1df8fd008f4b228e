// node:ffi on jitcall: the subset of Node's FFI module that binding and
// calling a library needs. The native half (`native` below, installed by
// src/ffi.rs) opens libraries, binds functions to jitcall and makes
// callbacks; this half gives them Node's shape.

const native = globalThis[Symbol.for('jitcall.ffi.native')];

/// The file suffix of shared libraries here.
export const suffix = 'so';

/// Node's type names, as constants.
export const types = Object.freeze({
  VOID: 'void',
  POINTER: 'pointer',
  BUFFER: 'buffer',
  ARRAY_BUFFER: 'arraybuffer',
  FUNCTION: 'function',
  BOOL: 'bool',
  CHAR: 'char',
  STRING: 'string',
  FLOAT: 'float',
  DOUBLE: 'double',
  INT_8: 'int8',
  UINT_8: 'uint8',
  INT_16: 'int16',
  UINT_16: 'uint16',
  INT_32: 'int32',
  UINT_32: 'uint32',
  INT_64: 'int64',
  UINT_64: 'uint64',
  FLOAT_32: 'float32',
  FLOAT_64: 'float64',
});

const handle = Symbol('jitcall.ffi.handle');

function signatureText(signature, what) {
  if (signature === undefined) {
    signature = {};
  }
  if (signature === null || typeof signature !== 'object') {
    throw new TypeError(`The signature of ${what} must be an object`);
  }
  return JSON.stringify(signature);
}

/// A loaded library: `new DynamicLibrary(path)`, or `dlopen(path).lib`.
export class DynamicLibrary {
  constructor(path) {
    if (path !== null && typeof path !== 'string') {
      throw new TypeError('The "path" argument must be a string or null');
    }
    Object.defineProperty(this, handle, { value: native.open(path) });
    this.path = path;
    this.functions = {};
    this.symbols = {};
  }

  /// A callable wrapper of the symbol `name` with `signature`
  /// (`{ arguments: [...], return: '...' }`); its `pointer` is the
  /// symbol's address, its `tier` how jitcall calls it.
  getFunction(name, signature) {
    if (typeof name !== 'string') {
      throw new TypeError('The "name" argument must be a string');
    }
    const [fn] = native.bindAll(this[handle], [name], [signatureText(signature, name)]);
    this.functions[name] = fn;
    this.symbols[name] = fn.pointer;
    return fn;
  }

  /// Wrappers of every symbol of `definitions` (name → signature), bound in
  /// one batch; without definitions, the functions resolved so far.
  getFunctions(definitions) {
    if (definitions === undefined) {
      return { ...this.functions };
    }
    if (definitions === null || typeof definitions !== 'object') {
      throw new TypeError('The "definitions" argument must be an object');
    }
    const names = Object.keys(definitions);
    const texts = names.map((name) => signatureText(definitions[name], name));
    const bound = native.bindAll(this[handle], names, texts);
    const functions = {};
    names.forEach((name, i) => {
      functions[name] = bound[i];
      this.functions[name] = bound[i];
      this.symbols[name] = bound[i].pointer;
    });
    return functions;
  }

  /// The address of the symbol `name`, as a bigint.
  getSymbol(name) {
    if (typeof name !== 'string') {
      throw new TypeError('The "name" argument must be a string');
    }
    const pointer = native.symbol(this[handle], name);
    this.symbols[name] = pointer;
    return pointer;
  }

  /// Closes the library: its functions throw `ERR_FFI_LIBRARY_CLOSED`,
  /// its callbacks are freed. A second close does nothing.
  close() {
    native.close(this[handle]);
  }

  /// A native function pointer (a bigint) that calls `callback`; the
  /// signature defaults to `void ()`.
  registerCallback(signature, callback) {
    if (typeof signature === 'function' && callback === undefined) {
      callback = signature;
      signature = {};
    }
    if (typeof callback !== 'function') {
      throw new TypeError('The "callback" argument must be a function');
    }
    return native.callback(this[handle], signatureText(signature, 'the callback'), callback);
  }

  /// Frees the callback at `pointer`.
  unregisterCallback(pointer) {
    if (typeof pointer !== 'bigint') {
      throw new TypeError('The "pointer" argument must be a bigint');
    }
    native.unregister(this[handle], pointer);
  }
}

if (typeof Symbol.dispose === 'symbol') {
  DynamicLibrary.prototype[Symbol.dispose] = function dispose() {
    this.close();
  };
}

/// Loads `path` (null: this process) and binds `definitions`:
/// `{ lib, functions }`.
export function dlopen(path, definitions) {
  const lib = new DynamicLibrary(path);
  const functions = definitions === undefined ? {} : lib.getFunctions(definitions);
  const result = { lib, functions };
  if (typeof Symbol.dispose === 'symbol') {
    result[Symbol.dispose] = () => lib.close();
  }
  return result;
}

/// Closes a library `dlopen` returned (or the `{ lib }` it holds).
export function dlclose(handle) {
  (handle instanceof DynamicLibrary ? handle : handle.lib).close();
}

/// jitcall's own additions, absent from Node: `jitcall.options({
/// forceLibffi })` for the bindings made after it, and the path of the
/// tests' and benchmark's shared object (`add_i32`, `echo_*`, …).
export const jitcall = Object.freeze({
  options: (options) => native.options(options),
  fixtures: native.fixtures,
});

export default { dlopen, dlclose, DynamicLibrary, suffix, types, jitcall };
