//! jitcall calls native functions whose signatures are known only at run
//! time, through machine-code trampolines specialised to each signature.
pub use jitcall_emitters::{
    classify, Abi, Arg, BufferView, Entry, Ineligible, Limits, Loc, ParseError, ParseErrorKind,
    Plan, Position, Signature, Source, Type,
};
