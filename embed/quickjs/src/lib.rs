//! jitcall inside a JavaScript engine: QuickJS (through `rquickjs`) with a
//! module importable as `node:ffi` (and `ffi`) that implements the part of
//! Node.js's FFI API a script needs to bind and call a library, on
//! jitcall. JavaScript written for Node's `node:ffi` runs unchanged:
//!
//! ```js
//! import { dlopen } from 'node:ffi';
//! const { functions } = dlopen('libm.so.6', { cos: { arguments: ['double'], return: 'double' } });
//! console.log(functions.cos(0.5));
//! ```
//!
//! [`run_file`] runs a script as an ES module, with `print`,
//! `console.log`/`console.error`, `require('node:ffi')`, `process.argv`
//! and `process.env`. Calls go through jitcall's packed entry
//! (`Function::call_packed`), the interpreter's natural convention; each
//! bound function's `tier` property says how jitcall calls it.
//!
//! This crate is an embedding of the `jitcall` library, not a part of it:
//! nothing in `jitcall` depends on it.

use std::path::Path;

use rquickjs::loader::{BuiltinLoader, BuiltinResolver};
use rquickjs::{CatchResultExt, Context, Ctx, Function, Module, Object, Runtime};

mod ffi;

/// The JavaScript half of `node:ffi`.
const FFI_JS: &str = include_str!("ffi.js");

/// The globals a script finds: `print`, `console`, `require`, `process`.
const PRELUDE_JS: &str = r#"
const show = (v) => typeof v === 'bigint' ? `${v}n`
    : typeof v === 'string' ? v
    : (v !== null && typeof v === 'object' && !(v instanceof Error)) ? JSON.stringify(v, (k, x) => typeof x === 'bigint' ? `${x}n` : x)
    : String(v);
const line = (args) => args.map(show).join(' ');
globalThis.print = (...args) => __jitcall_write(1, line(args));
globalThis.console = {
  log: (...args) => __jitcall_write(1, line(args)),
  info: (...args) => __jitcall_write(1, line(args)),
  error: (...args) => __jitcall_write(2, line(args)),
  warn: (...args) => __jitcall_write(2, line(args)),
};
"#;

/// Defines `require` for `node:ffi` and `ffi`, in a module of its own so
/// that it can import the namespace.
const REQUIRE_JS: &str = r#"
import * as ffi from 'node:ffi';
globalThis.require = (specifier) => {
  if (specifier === 'node:ffi' || specifier === 'ffi') {
    return ffi;
  }
  throw new Error(`Cannot find module '${specifier}'`);
};
"#;

/// Runs the script at `path` as an ES module, `args` after it in
/// `process.argv`.
///
/// # Errors
///
/// The script cannot be read, or it threw an exception nothing caught:
/// its message and stack.
pub fn run_file(path: &Path, args: &[String]) -> Result<(), String> {
    let source = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    run_source(&path.display().to_string(), &source, args)
}

/// Runs `source`, named `name`, as an ES module: see [`run_file`].
///
/// # Errors
///
/// As for [`run_file`].
pub fn run_source(name: &str, source: &str, args: &[String]) -> Result<(), String> {
    let runtime = Runtime::new().map_err(|e| e.to_string())?;
    let resolver = BuiltinResolver::default()
        .with_module("node:ffi")
        .with_module("ffi");
    let loader = BuiltinLoader::default()
        .with_module("node:ffi", FFI_JS)
        .with_module(
            "ffi",
            "export * from 'node:ffi'; export { default } from 'node:ffi';",
        );
    runtime.set_loader(resolver, loader);
    let context = Context::full(&runtime).map_err(|e| e.to_string())?;
    let outcome = context.with(|ctx| -> Result<(), String> {
        setup(&ctx, name, args).map_err(|e| described(&ctx, e))?;
        let promise = Module::evaluate(ctx.clone(), name, source)
            .catch(&ctx)
            .map_err(|e| e.to_string())?;
        // Top-level await and promise jobs.
        while ctx.execute_pending_job() {}
        promise
            .finish::<()>()
            .catch(&ctx)
            .map_err(|e| e.to_string())?;
        Ok(())
    });
    // The callbacks hold functions of this runtime: free them first.
    context.with(|_| ffi::shutdown());
    outcome
}

/// A failure in setting up the globals, as text.
fn described(ctx: &Ctx<'_>, error: rquickjs::Error) -> String {
    Err::<(), _>(error)
        .catch(ctx)
        .map_or_else(|e| e.to_string(), |()| String::new())
}

/// The globals and the native half of `node:ffi`.
fn setup(ctx: &Ctx<'_>, name: &str, args: &[String]) -> rquickjs::Result<()> {
    let globals = ctx.globals();
    globals.set(
        "__jitcall_write",
        Function::new(ctx.clone(), |fd: i32, text: String| {
            use std::io::Write;
            // A reader that went away is no error of the script's.
            let _ = if fd == 2 {
                writeln!(std::io::stderr(), "{text}")
            } else {
                writeln!(std::io::stdout(), "{text}")
            };
        })?,
    )?;
    ctx.eval::<(), _>(PRELUDE_JS)?;
    ffi::install(ctx)?;
    // process.argv: the program, the script, its arguments; process.env.
    let process = Object::new(ctx.clone())?;
    let mut argv = vec!["jitcall-qjs".to_string(), name.to_string()];
    argv.extend(args.iter().cloned());
    process.set("argv", argv)?;
    let env = Object::new(ctx.clone())?;
    for (key, value) in std::env::vars() {
        env.set(key, value)?;
    }
    process.set("env", env)?;
    process.set("platform", "linux")?;
    process.set("arch", std::env::consts::ARCH)?;
    globals.set("process", process)?;
    // require('node:ffi') for scripts written as CommonJS: the module's
    // namespace.
    Module::evaluate(ctx.clone(), "jitcall:require", REQUIRE_JS)?.finish::<()>()?;
    Ok(())
}
