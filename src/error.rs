//! The crate's error type.

use std::fmt;

use crate::{Abi, Fallback, Isa, ParseError, Quoted, Type};

/// Everything that can go wrong in jitcall, with the context to act on it.
///
/// A signature that is merely *ineligible* for the fast path is not an
/// error: it runs on libffi and says why in [`Tier`](crate::Tier).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A malformed signature.
    Parse(ParseError),
    /// A type no call path can pass: `void` as argument `index`, or
    /// `buffer` as the return type (`index` is `None`).
    UnsupportedType { index: Option<usize>, ty: Type },
    /// A null target function pointer.
    NullTarget,
    /// A signature built by hand with more than
    /// [`Signature::MAX_ARGS`](crate::Signature::MAX_ARGS) arguments (the
    /// parsers refuse them already).
    TooManyArgs { n: usize, max: usize },
    /// [`Function::call`](crate::Function::call) was given the wrong number
    /// of arguments.
    ArgCount { expected: usize, got: usize },
    /// [`Function::call`](crate::Function::call) was given a value of the
    /// wrong type for argument `index`.
    ArgType {
        index: usize,
        expected: Type,
        got: Type,
    },
    /// The function's library, or the library bound from, was
    /// [closed](crate::Library::close) (Node.js's `ERR_FFI_LIBRARY_CLOSED`).
    LibraryClosed,
    /// A struct value built from the wrong number of bytes.
    StructSize { expected: usize, got: usize },
    /// A hand-built variadic signature whose `...` is out of place: no
    /// fixed argument before it, or past the last argument.
    VariadicPosition { fixed: usize, args: usize },
    /// A callback for a variadic signature: C calls a callback through a
    /// prototype, and a variadic one gives the callee no way to know what
    /// was passed.
    VariadicCallback,
    /// libffi could not prepare a call interface for the signature.
    Libffi(String),
    /// [`Options::abi`](crate::Options::abi) names a calling convention of
    /// another instruction set than the host's (`host`: `None` where
    /// jitcall emits no code for the host's).
    AbiNotOnHost { abi: Abi, host: Option<Isa> },
    /// A function of a calling convention the host's libffi does not have
    /// (Apple's arm64 on Linux) could not take the JIT tier, for `why`:
    /// no tier can call it.
    NoCallPath { abi: Abi, why: Fallback },
    /// A callback with [`Options::abi`](crate::Options::abi) set to another
    /// convention than the host's: callbacks follow the host's C ABI.
    CallbackAbi { abi: Abi },
    /// `dlopen` failed. The path is kept as a bounded excerpt, and
    /// `dlerror`'s message shows it so too.
    Open { path: Quoted, message: String },
    /// `dlsym` found no such symbol (name and message bounded as for
    /// [`Error::Open`]).
    Symbol { name: Quoted, message: String },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Parse(e) => write!(f, "bad signature: {e}"),
            Error::UnsupportedType { index: Some(i), ty } => {
                write!(f, "`{ty}` cannot be argument {i}")
            }
            Error::UnsupportedType { index: None, ty } => {
                write!(f, "`{ty}` cannot be a return type")
            }
            Error::NullTarget => f.write_str("the target function pointer is null"),
            Error::TooManyArgs { n, max } => {
                write!(f, "{n} arguments, more than the {max} a signature may have")
            }
            Error::ArgCount { expected, got } => {
                write!(f, "expected {expected} arguments, got {got}")
            }
            Error::ArgType {
                index,
                expected,
                got,
            } => write!(f, "argument {index}: expected `{expected}`, got `{got}`"),
            Error::LibraryClosed => f.write_str("the library is closed"),
            Error::StructSize { expected, got } => {
                write!(f, "a struct of {expected} bytes, given {got}")
            }
            Error::VariadicCallback => {
                f.write_str("a callback cannot be variadic: give the prototype it is called with")
            }
            Error::VariadicPosition { fixed, args } => write!(
                f,
                "`...` after {fixed} fixed arguments, in a signature of {args}: \
                 it needs at least one before it, and no more than there are"
            ),
            Error::Libffi(message) => write!(f, "libffi: {message}"),
            Error::AbiNotOnHost {
                abi,
                host: Some(host),
            } => write!(f, "the {abi} ABI is for {} hosts, not {host}", abi.isa()),
            Error::AbiNotOnHost { abi, host: None } => write!(
                f,
                "the {abi} ABI is for {} hosts; jitcall emits no code for this one",
                abi.isa()
            ),
            Error::NoCallPath { abi, why } => write!(
                f,
                "no call path for a function of the {abi} ABI: not on the JIT tier ({why}), \
                 and this host's libffi lacks that ABI"
            ),
            Error::CallbackAbi { abi } => write!(f, "callbacks follow the host's C ABI, not {abi}"),
            Error::Open { path, message } => write!(f, "cannot open {path}: {message}"),
            Error::Symbol { name, message } => write!(f, "no symbol {name}: {message}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Parse(e) => Some(e),
            _ => None,
        }
    }
}

impl From<ParseError> for Error {
    fn from(e: ParseError) -> Error {
        Error::Parse(e)
    }
}

/// `Result` with jitcall's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
