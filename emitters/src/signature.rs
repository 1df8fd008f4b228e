//! The signature model and its two parsers.
//!
//! A [`Signature`] is an argument list and a return type over [`Type`]. It
//! reads from the text form (`"(i32, f64, pointer) -> u8"`) through
//! [`FromStr`] and from the object form JavaScript runtimes use through
//! [`Signature::from_json`]. [`Display`](fmt::Display) prints the canonical
//! text form, which parses back to the same signature.
//!
//! A malformed signature is a [`ParseError`] naming what was wrong and where:
//! a byte offset into the text, or a JSON path into the object. No input
//! makes either parser panic, and no error carries more than a bounded,
//! escaped excerpt of the input ([`Quoted`]).
//!
//! The type names are those of Node.js's `node:ffi` with the aliases Deno
//! and Bun users write; [`Type::from_name`] lists them. Where jitcall
//! differs from Node on purpose: names ignore ASCII case, and the JSON form
//! rejects keys it does not know, so that a misspelt `"argumnets"` is an
//! error rather than an empty argument list.

use std::fmt;
use std::str::FromStr;

/// A type in a native signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Type {
    /// No value; valid only as a return type.
    Void,
    /// A C `bool`: 8 bits holding 0 or 1.
    Bool,
    I8,
    U8,
    I16,
    U16,
    I32,
    U32,
    I64,
    U64,
    F32,
    F64,
    /// A data pointer (`void *`).
    Pointer,
    /// A byte buffer. The caller passes a pointer to a
    /// [`BufferView`](crate::BufferView); the target receives its `data`.
    /// Valid only as an argument.
    Buffer,
    /// A code pointer passed as a value.
    Function,
    /// A C struct passed or returned by value (see [`StructType`]). In
    /// the packed convention its argument slot holds the address of its
    /// bytes, and a struct return is written to the return buffer.
    Struct(&'static StructType),
}

impl Type {
    /// Every scalar type (all but [`Type::Struct`]), in declaration order.
    pub const ALL: [Type; 15] = [
        Type::Void,
        Type::Bool,
        Type::I8,
        Type::U8,
        Type::I16,
        Type::U16,
        Type::I32,
        Type::U32,
        Type::I64,
        Type::U64,
        Type::F32,
        Type::F64,
        Type::Pointer,
        Type::Buffer,
        Type::Function,
    ];

    /// The canonical name, as [`Display`](fmt::Display) prints it, for a
    /// scalar; `struct` for any struct, which `Display` prints as its field
    /// list (`{i32, f64}`).
    pub const fn name(self) -> &'static str {
        match self {
            Type::Struct(_) => "struct",
            Type::Void => "void",
            Type::Bool => "bool",
            Type::I8 => "i8",
            Type::U8 => "u8",
            Type::I16 => "i16",
            Type::U16 => "u16",
            Type::I32 => "i32",
            Type::U32 => "u32",
            Type::I64 => "i64",
            Type::U64 => "u64",
            Type::F32 => "f32",
            Type::F64 => "f64",
            Type::Pointer => "pointer",
            Type::Buffer => "buffer",
            Type::Function => "function",
        }
    }

    /// Looks a type up by any accepted name, ignoring ASCII case:
    ///
    /// | names | type |
    /// |---|---|
    /// | `i8` `int8`, `u8` `uint8`, … `i64` `int64`, `u64` `uint64` | the integers |
    /// | `char` | C's plain `char` on this platform: `i8` on x86_64 and Apple arm64, `u8` on AArch64 Linux |
    /// | `usize` `size_t` `uintptr`, `isize` `ssize_t` `intptr` | `u64`, `i64` (pointer-width; every supported ABI is 64-bit) |
    /// | `f32` `float` `float32`, `f64` `double` `float64` | the floats |
    /// | `pointer` `ptr`, `string` `str` | `pointer` (a string is a pointer to its bytes; converting is the runtime's job) |
    /// | `buffer` `arraybuffer` | `buffer` (as a return type, `pointer`: see [`Type::returned_as`]) |
    /// | `function`, `bool`, `void` | themselves |
    pub fn from_name(name: &str) -> Option<Type> {
        let lower = name.to_ascii_lowercase();
        Some(match lower.as_str() {
            "void" => Type::Void,
            "bool" => Type::Bool,
            "char" => Type::C_CHAR,
            "i8" | "int8" => Type::I8,
            "u8" | "uint8" => Type::U8,
            "i16" | "int16" => Type::I16,
            "u16" | "uint16" => Type::U16,
            "i32" | "int32" => Type::I32,
            "u32" | "uint32" => Type::U32,
            "i64" | "int64" | "isize" | "ssize_t" | "intptr" => Type::I64,
            "u64" | "uint64" | "usize" | "size_t" | "uintptr" => Type::U64,
            "f32" | "float" | "float32" => Type::F32,
            "f64" | "double" | "float64" => Type::F64,
            "pointer" | "ptr" | "string" | "str" => Type::Pointer,
            "buffer" | "arraybuffer" => Type::Buffer,
            "function" => Type::Function,
            _ => return None,
        })
    }

    /// C's plain `char` on the platform this is compiled for, as Node.js
    /// reads `char`: signed where C's is (x86_64, Apple arm64), unsigned
    /// where it is not (AArch64 Linux).
    pub const C_CHAR: Type = if std::ffi::c_char::MIN == 0 {
        Type::U8
    } else {
        Type::I8
    };

    /// What a type means as a return type: a `buffer` return is a plain
    /// pointer (no view comes back; Node.js reads it so), every other type
    /// is itself. Both parsers apply it.
    pub const fn returned_as(self) -> Type {
        match self {
            Type::Buffer => Type::Pointer,
            other => other,
        }
    }

    /// Whether the type can be an argument: all but `void`.
    pub const fn is_argument(self) -> bool {
        !matches!(self, Type::Void)
    }

    /// Whether the type can be returned: all but `buffer`.
    pub const fn is_return(self) -> bool {
        !matches!(self, Type::Buffer)
    }

    /// True for `f32` and `f64`, the types passed in FP/SIMD registers.
    pub const fn is_float(self) -> bool {
        matches!(self, Type::F32 | Type::F64)
    }

    /// The integer width in bits and signedness the ABI sees for this type
    /// when it travels in a general-purpose register, or `None` for floats
    /// and `void`. Pointers, buffers and functions are unsigned 64-bit.
    pub const fn int_width(self) -> Option<(u32, bool)> {
        Some(match self {
            Type::Bool | Type::U8 => (8, false),
            Type::I8 => (8, true),
            Type::I16 => (16, true),
            Type::U16 => (16, false),
            Type::I32 => (32, true),
            Type::U32 => (32, false),
            Type::I64 => (64, true),
            Type::U64 | Type::Pointer | Type::Buffer | Type::Function => (64, false),
            Type::Void | Type::F32 | Type::F64 | Type::Struct(_) => return None,
        })
    }

    /// The size in bytes C gives the type (0 for `void`; 8 for pointers,
    /// buffers and functions: every supported ABI is 64-bit).
    pub fn size(self) -> u32 {
        match self {
            Type::Void => 0,
            Type::Bool | Type::I8 | Type::U8 => 1,
            Type::I16 | Type::U16 => 2,
            Type::I32 | Type::U32 | Type::F32 => 4,
            Type::I64 | Type::U64 | Type::F64 | Type::Pointer | Type::Buffer | Type::Function => 8,
            Type::Struct(s) => s.size(),
        }
    }

    /// The alignment in bytes C gives the type: its size for scalars (1
    /// for `void`), the largest field alignment for a struct.
    pub fn align(self) -> u32 {
        match self {
            Type::Void => 1,
            Type::Struct(s) => s.align(),
            scalar => scalar.size(),
        }
    }

    /// The struct type, for a struct.
    pub const fn as_struct(self) -> Option<&'static StructType> {
        match self {
            Type::Struct(s) => Some(s),
            _ => None,
        }
    }

    /// What C's default argument promotions make of the type in a variadic
    /// call: `f32` becomes `f64`; `bool` and the 8- and 16-bit integers
    /// become `i32`; every other type stays itself.
    pub const fn promoted(self) -> Type {
        match self {
            Type::F32 => Type::F64,
            Type::Bool | Type::I8 | Type::U8 | Type::I16 | Type::U16 => Type::I32,
            other => other,
        }
    }

    /// True for the 8- and 16-bit integer types (`bool` included), whose
    /// upper bits a caller or callee may leave unspecified.
    pub const fn is_narrow(self) -> bool {
        matches!(self.int_width(), Some((8 | 16, _)))
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::Struct(s) => write!(f, "{s}"),
            scalar => f.write_str(scalar.name()),
        }
    }
}

/// A C struct passed or returned by value: its fields in order, laid out
/// as C lays them out. Each field sits at the next multiple of its
/// alignment, the struct's alignment is its largest field's, and its size
/// is rounded up to that alignment.
///
/// Struct types are interned: [`StructType::new`] returns the one shared
/// instance of each distinct field list, kept for the life of the process,
/// so that [`Type`] stays `Copy`. A process keeps one small record per
/// distinct struct layout it ever parses.
///
/// # Examples
///
/// ```
/// use jitcall_emitters::{StructType, Type};
///
/// let s = StructType::new(&[Type::U8, Type::F64, Type::I16]).unwrap();
/// assert_eq!((s.size(), s.align()), (24, 8));
/// assert_eq!(s.offsets(), [0, 8, 16]);
/// assert!(std::ptr::eq(s, StructType::new(&[Type::U8, Type::F64, Type::I16]).unwrap()));
/// assert_eq!(Type::Struct(s).to_string(), "{u8, f64, i16}");
/// ```
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct StructType {
    fields: Box<[Type]>,
    offsets: Box<[u32]>,
    size: u32,
    align: u32,
    depth: u32,
}

impl StructType {
    /// The most fields one struct may have.
    pub const MAX_FIELDS: usize = 256;
    /// The deepest nesting: a struct of scalars has depth 1.
    pub const MAX_DEPTH: u32 = 16;
    /// The largest size, in bytes. Every call path copies a struct
    /// argument by value, so the bound keeps a call's stack use bounded
    /// (127 of them, at most 508 KiB).
    pub const MAX_SIZE: u32 = 4096;

    /// The interned struct type with these fields.
    ///
    /// # Errors
    ///
    /// [`ParseErrorKind::EmptyStruct`], [`ParseErrorKind::TooManyFields`],
    /// [`ParseErrorKind::StructTooDeep`], [`ParseErrorKind::StructTooLarge`],
    /// or [`ParseErrorKind::FieldType`] for a `void` or `buffer` field.
    pub fn new(fields: &[Type]) -> Result<&'static StructType, ParseErrorKind> {
        if fields.is_empty() {
            return Err(ParseErrorKind::EmptyStruct);
        }
        if fields.len() > StructType::MAX_FIELDS {
            let max = StructType::MAX_FIELDS;
            return Err(ParseErrorKind::TooManyFields { max });
        }
        if let Some(&ty) = fields
            .iter()
            .find(|t| matches!(t, Type::Void | Type::Buffer))
        {
            return Err(ParseErrorKind::FieldType(ty));
        }
        let depth = 1 + fields
            .iter()
            .filter_map(|t| t.as_struct())
            .map(|s| s.depth)
            .max()
            .unwrap_or(0);
        if depth > StructType::MAX_DEPTH {
            let max = StructType::MAX_DEPTH;
            return Err(ParseErrorKind::StructTooDeep { max });
        }
        // Every field is at most MAX_SIZE bytes and there are at most
        // MAX_FIELDS of them: the sums fit in a u64.
        let mut offsets = Vec::with_capacity(fields.len());
        let (mut end, mut align) = (0u64, 1u64);
        for ty in fields {
            let field_align = u64::from(ty.align());
            let at = end.next_multiple_of(field_align);
            offsets.push(at);
            end = at + u64::from(ty.size());
            align = align.max(field_align);
        }
        let size = end.next_multiple_of(align);
        let max = StructType::MAX_SIZE;
        if size > u64::from(max) {
            return Err(ParseErrorKind::StructTooLarge { size, max });
        }
        let layout = StructType {
            fields: fields.into(),
            // Below MAX_SIZE: each offset fits in a u32.
            offsets: offsets.into_iter().map(|o| o as u32).collect(),
            size: size as u32,
            align: align as u32,
            depth,
        };
        Ok(intern(layout))
    }

    /// The fields, in order.
    pub fn fields(&self) -> &[Type] {
        &self.fields
    }

    /// Each field's byte offset.
    pub fn offsets(&self) -> &[u32] {
        &self.offsets
    }

    /// The size in bytes, a multiple of the alignment.
    pub fn size(&self) -> u32 {
        self.size
    }

    /// The alignment in bytes.
    pub fn align(&self) -> u32 {
        self.align
    }

    /// Every scalar field, nested ones included, with its byte offset in
    /// this struct, in address order.
    pub fn flatten(&self) -> Vec<(u32, Type)> {
        let mut out = Vec::new();
        self.flatten_into(0, &mut out);
        out
    }

    fn flatten_into(&self, base: u32, out: &mut Vec<(u32, Type)>) {
        for (&ty, &offset) in self.fields.iter().zip(self.offsets.iter()) {
            match ty {
                Type::Struct(inner) => inner.flatten_into(base + offset, out),
                scalar => out.push((base + offset, scalar)),
            }
        }
    }
}

impl fmt::Display for StructType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, ty) in self.fields.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{ty}")?;
        }
        f.write_str("}")
    }
}

/// The one shared instance of `layout`'s field list.
fn intern(layout: StructType) -> &'static StructType {
    use std::collections::HashSet;
    use std::sync::{Mutex, PoisonError};
    static INTERNED: Mutex<Option<HashSet<&'static StructType>>> = Mutex::new(None);
    let mut interned = INTERNED.lock().unwrap_or_else(PoisonError::into_inner);
    let set = interned.get_or_insert_with(HashSet::new);
    if let Some(&existing) = set.get(&layout) {
        return existing;
    }
    let leaked: &'static StructType = Box::leak(Box::new(layout));
    set.insert(leaked);
    leaked
}

/// An argument list and a return type.
///
/// # Examples
///
/// ```
/// use jitcall_emitters::{Signature, Type};
///
/// let sig: Signature = "(i32, f64, pointer) -> u8".parse().unwrap();
/// assert_eq!(sig.args, [Type::I32, Type::F64, Type::Pointer]);
/// assert_eq!(sig.ret, Type::U8);
/// assert_eq!(sig.to_string(), "(i32, f64, pointer) -> u8");
///
/// let js = Signature::from_json(r#"{"arguments":["int32","double"],"return":"void"}"#).unwrap();
/// assert_eq!(js.to_string(), "(i32, f64) -> void");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Signature {
    pub args: Vec<Type>,
    pub ret: Type,
    /// For a variadic function, how many of `args` are its fixed arguments
    /// (at least one); the rest are the variadic arguments this binding
    /// passes, each call shape being a binding of its own. `None` for a
    /// function with a fixed argument list.
    pub variadic: Option<usize>,
}

impl Signature {
    /// The most arguments a signature may have: 127, the number of
    /// parameters C guarantees a function may take. Both parsers stop at
    /// it, and binding a signature built by hand with more is an error, so
    /// no call path is ever asked to marshal an unbounded argument list
    /// (300,000 `i32`s would overflow a thread's stack in `ffi_call`).
    pub const MAX_ARGS: usize = 127;

    /// A function with a fixed argument list.
    pub fn new(args: impl Into<Vec<Type>>, ret: Type) -> Signature {
        Signature {
            args: args.into(),
            ret,
            variadic: None,
        }
    }

    /// One call shape of a variadic function: its fixed arguments, then
    /// the variadic arguments this binding passes (promoted types only).
    pub fn new_variadic(
        fixed: impl Into<Vec<Type>>,
        variadic: impl IntoIterator<Item = Type>,
        ret: Type,
    ) -> Signature {
        let mut args = fixed.into();
        let n = args.len();
        args.extend(variadic);
        Signature {
            args,
            ret,
            variadic: Some(n),
        }
    }

    /// The fixed arguments: all of them, unless the function is variadic.
    pub fn fixed_args(&self) -> &[Type] {
        let n = self.variadic.unwrap_or(self.args.len());
        &self.args[..n.min(self.args.len())]
    }

    /// The variadic arguments of this call shape (none for a function with
    /// a fixed argument list).
    pub fn variadic_args(&self) -> &[Type] {
        &self.args[self.fixed_args().len()..]
    }

    /// The first type in a place it cannot be, as `(argument index, type)`
    /// (`None` for the return type): `void` as an argument, `buffer` as the
    /// return type, or a variadic argument of a type C's default
    /// promotions change (`f32`, `bool`, 8- and 16-bit integers). The
    /// parsers never produce such a signature; one built by hand may be.
    pub fn misplaced_type(&self) -> Option<(Option<usize>, Type)> {
        let fixed = self.fixed_args().len();
        let misplaced =
            |(i, t): (usize, &Type)| !t.is_argument() || (i >= fixed && t.promoted() != *t);
        if let Some(i) = self.args.iter().enumerate().position(misplaced) {
            return Some((Some(i), self.args[i]));
        }
        (!self.ret.is_return()).then_some((None, self.ret))
    }

    /// Whether `variadic` is out of place: no fixed argument before the
    /// `...`, or more fixed arguments than arguments. The parsers never
    /// produce such a signature; one built by hand may be.
    pub fn variadic_misplaced(&self) -> bool {
        self.variadic.is_some_and(|n| n == 0 || n > self.args.len())
    }

    /// The object form of the signature, as [`Signature::from_json`] reads
    /// it back: canonical type names, `"..."` where the variadic arguments
    /// start, structs as `{"struct": [fields]}`.
    ///
    /// # Examples
    ///
    /// ```
    /// use jitcall_emitters::Signature;
    ///
    /// let sig: Signature = "(pointer, ..., {i32, f32}) -> i32".parse().unwrap();
    /// assert_eq!(
    ///     sig.to_json(),
    ///     r#"{"arguments": ["pointer", "...", {"struct": ["i32", "f32"]}], "return": "i32"}"#
    /// );
    /// assert_eq!(Signature::from_json(&sig.to_json()), Ok(sig));
    /// ```
    pub fn to_json(&self) -> String {
        fn ty(out: &mut String, t: Type) {
            match t {
                Type::Struct(layout) => {
                    out.push_str(r#"{"struct": ["#);
                    for (i, &field) in layout.fields().iter().enumerate() {
                        if i > 0 {
                            out.push_str(", ");
                        }
                        ty(out, field);
                    }
                    out.push_str("]}");
                }
                scalar => {
                    out.push('"');
                    out.push_str(scalar.name());
                    out.push('"');
                }
            }
        }
        let mut out = String::from(r#"{"arguments": ["#);
        for (i, &arg) in self.args.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            if self.variadic == Some(i) {
                out.push_str(r#""...", "#);
            }
            ty(&mut out, arg);
        }
        if self.variadic.is_some_and(|n| n >= self.args.len()) {
            out.push_str(r#", "...""#);
        }
        out.push_str(r#"], "return": "#);
        ty(&mut out, self.ret);
        out.push('}');
        out
    }

    /// Parses either form: the JSON object form when the input's first
    /// character (after white space and a byte-order mark) is `{`, the text
    /// form otherwise.
    ///
    /// # Errors
    ///
    /// As for [`Signature::from_json`] or the text form's [`FromStr`].
    ///
    /// # Examples
    ///
    /// ```
    /// use jitcall_emitters::Signature;
    ///
    /// let a = Signature::parse("(i32) -> f64").unwrap();
    /// let b = Signature::parse(r#" {"arguments": ["int32"], "return": "double"}"#).unwrap();
    /// assert_eq!(a, b);
    /// ```
    pub fn parse(input: &str) -> Result<Signature, ParseError> {
        let body = input.strip_prefix(BOM).unwrap_or(input);
        if body.trim_start().starts_with('{') {
            Signature::from_json(input)
        } else {
            input.parse()
        }
    }

    /// Parses the object form used by JavaScript runtimes:
    /// `{"arguments": ["i32", "f64"], "return": "u8"}`.
    ///
    /// Deno's (`parameters`/`result`) and Bun's (`args`/`returns`) key names
    /// are accepted too. A missing argument list means no arguments and a
    /// missing return type means `void`. Keys outside these are rejected so
    /// that a misspelt key is not silently read as "no arguments", and so
    /// is a key given twice, or two keys for the same part. A byte-order
    /// mark before the object is skipped.
    ///
    /// # Errors
    ///
    /// A [`ParseError`] located by JSON path (`$.arguments[2]`) for an
    /// unknown type, `void` as an argument, more than
    /// [`Signature::MAX_ARGS`] arguments, a value of the wrong JSON kind, an
    /// unknown or repeated key; located by byte offset for malformed JSON
    /// (the end of the input when it ends too early).
    pub fn from_json(json: &str) -> Result<Signature, ParseError> {
        let skipped = if json.starts_with(BOM) {
            BOM.len_utf8()
        } else {
            0
        };
        let body = &json[skipped..];
        let value: Json = serde_json::from_str(body).map_err(|e| {
            let at = if e.classify() == serde_json::error::Category::Eof {
                body.len()
            } else {
                byte_offset(body, e.line(), e.column())
            };
            // serde_json's message ends with the line and column; the
            // error states its position once, as a byte offset.
            let message = e.to_string();
            let suffix = format!(" at line {} column {}", e.line(), e.column());
            let message = message.strip_suffix(&suffix).unwrap_or(&message);
            ParseError::text(skipped + at, ParseErrorKind::Json(message.to_string()))
        })?;
        let Json::Object(entries) = value else {
            return Err(ParseError::json(
                "$",
                ParseErrorKind::WrongShape {
                    expected: "an object",
                    found: value.kind(),
                },
            ));
        };
        let mut args_entry: Option<&(String, Json)> = None;
        let mut ret_entry: Option<&(String, Json)> = None;
        for entry in &entries {
            let key = entry.0.as_str();
            let slot = match key {
                "arguments" | "parameters" | "args" => &mut args_entry,
                "return" | "result" | "returns" => &mut ret_entry,
                _ => {
                    return Err(ParseError::json(
                        "$",
                        ParseErrorKind::UnknownKey(Quoted::new(key)),
                    ))
                }
            };
            if let Some((first, _)) = slot {
                return Err(ParseError::json(
                    format!("$.{key}"),
                    ParseErrorKind::DuplicateKey {
                        first: first.clone(),
                        second: key.to_string(),
                    },
                ));
            }
            *slot = Some(entry);
        }

        let mut args = Vec::new();
        if let Some((key, value)) = args_entry {
            let Json::Array(items) = value else {
                return Err(ParseError::json(
                    format!("$.{key}"),
                    ParseErrorKind::WrongShape {
                        expected: "an array of type names",
                        found: value.kind(),
                    },
                ));
            };
            if items.len() > Signature::MAX_ARGS {
                return Err(ParseError::json(
                    format!("$.{key}[{}]", Signature::MAX_ARGS),
                    ParseErrorKind::TooManyArgs {
                        max: Signature::MAX_ARGS,
                    },
                ));
            }
            let mut variadic = None;
            for (i, item) in items.iter().enumerate() {
                let path = || format!("$.{key}[{i}]");
                if matches!(item, Json::String(s) if s == "...") {
                    variadic = Some(
                        ellipsis(variadic, args.len())
                            .map_err(|kind| ParseError::json(path(), kind))?,
                    );
                    continue;
                }
                let (ty, at) = item.parse_type(path(), 1)?;
                check_arg(ty, variadic.is_some()).map_err(|kind| ParseError::json(at, kind))?;
                args.push(ty);
            }
            let ret = parse_json_ret(ret_entry)?;
            return Ok(Signature {
                args,
                ret,
                variadic,
            });
        }
        Ok(Signature::new(args, parse_json_ret(ret_entry)?))
    }
}

/// The return type of the object form, `void` when the key is missing.
fn parse_json_ret(entry: Option<&(String, Json)>) -> Result<Type, ParseError> {
    match entry {
        None => Ok(Type::Void),
        Some((key, value)) => Ok(value.parse_type(format!("$.{key}"), 1)?.0.returned_as()),
    }
}

/// Where a `...` may go: after at least one fixed argument, once. Gives
/// the count of fixed arguments before it.
fn ellipsis(variadic: Option<usize>, fixed: usize) -> Result<usize, ParseErrorKind> {
    match (variadic, fixed) {
        (Some(_), _) => Err(ParseErrorKind::RepeatedEllipsis),
        (None, 0) => Err(ParseErrorKind::VariadicWithoutFixed),
        (None, n) => Ok(n),
    }
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(")?;
        for (i, ty) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            if self.variadic == Some(i) {
                f.write_str("..., ")?;
            }
            write!(f, "{ty}")?;
        }
        if self.variadic.is_some_and(|n| n >= self.args.len()) {
            f.write_str(", ...")?;
        }
        write!(f, ") -> {}", self.ret)
    }
}

/// Parses the text form `(type, type, …) -> type`.
///
/// Spaces are optional anywhere between tokens and type names ignore ASCII
/// case; every alias of [`Type::from_name`] is accepted. A byte-order mark
/// before the text is skipped; byte offsets in errors count it.
impl FromStr for Signature {
    type Err = ParseError;

    fn from_str(text: &str) -> Result<Signature, ParseError> {
        let mut p = TextParser {
            text: text.as_bytes(),
            pos: if text.starts_with(BOM) {
                BOM.len_utf8()
            } else {
                0
            },
        };
        p.expect(b"(", "`(` opening the argument list")?;
        let mut args = Vec::new();
        let mut variadic = None;
        p.skip_spaces();
        if !p.eat(b")") {
            loop {
                p.skip_spaces();
                let at = p.pos;
                if p.eat(b"...") {
                    variadic = Some(
                        ellipsis(variadic, args.len())
                            .map_err(|kind| ParseError::text(at, kind))?,
                    );
                } else {
                    let (ty, at) = p.parse_type(1)?;
                    check_arg(ty, variadic.is_some()).map_err(|kind| ParseError::text(at, kind))?;
                    if args.len() == Signature::MAX_ARGS {
                        let max = Signature::MAX_ARGS;
                        return Err(ParseError::text(at, ParseErrorKind::TooManyArgs { max }));
                    }
                    args.push(ty);
                }
                p.skip_spaces();
                if p.eat(b")") {
                    break;
                }
                p.expect(b",", "`,` or `)` after an argument type")?;
            }
        }
        p.skip_spaces();
        if !p.eat(b"->") {
            return Err(ParseError::text(p.pos, ParseErrorKind::MissingArrow));
        }
        let (ret, _) = p.parse_type(1)?;
        let ret = ret.returned_as();
        p.skip_spaces();
        if p.pos < p.text.len() {
            return Err(ParseError::text(p.pos, ParseErrorKind::TrailingInput));
        }
        Ok(Signature {
            args,
            ret,
            variadic,
        })
    }
}

struct TextParser<'a> {
    text: &'a [u8],
    pos: usize,
}

impl TextParser<'_> {
    fn skip_spaces(&mut self) {
        while self.text.get(self.pos).is_some_and(u8::is_ascii_whitespace) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, token: &[u8]) -> bool {
        if self.text[self.pos..].starts_with(token) {
            self.pos += token.len();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, token: &[u8], what: &'static str) -> Result<(), ParseError> {
        self.skip_spaces();
        if self.eat(token) {
            Ok(())
        } else {
            Err(self.unexpected(what))
        }
    }

    fn unexpected(&self, expected: &'static str) -> ParseError {
        let found = match std::str::from_utf8(&self.text[self.pos..]) {
            Ok(rest) => rest.chars().next().map_or_else(
                || "end of input".to_string(),
                |c| format!("{:?}", c.to_string()),
            ),
            Err(_) => "a byte that is not UTF-8".to_string(),
        };
        ParseError::text(self.pos, ParseErrorKind::Expected { expected, found })
    }

    /// Reads a type, a name or a `{…}` struct at nesting `depth` (1 for an
    /// argument or the return), returning it and the byte offset where it
    /// starts. Recursion stops at [`StructType::MAX_DEPTH`].
    fn parse_type(&mut self, depth: u32) -> Result<(Type, usize), ParseError> {
        self.skip_spaces();
        let start = self.pos;
        if !self.eat(b"{") {
            return self.type_name();
        }
        if depth > StructType::MAX_DEPTH {
            let max = StructType::MAX_DEPTH;
            return Err(ParseError::text(
                start,
                ParseErrorKind::StructTooDeep { max },
            ));
        }
        let mut fields = Vec::new();
        loop {
            self.skip_spaces();
            if fields.is_empty() && self.eat(b"}") {
                return Err(ParseError::text(start, ParseErrorKind::EmptyStruct));
            }
            let (ty, at) = self.parse_type(depth + 1)?;
            if fields.len() == StructType::MAX_FIELDS {
                let max = StructType::MAX_FIELDS;
                return Err(ParseError::text(at, ParseErrorKind::TooManyFields { max }));
            }
            fields.push(ty);
            self.skip_spaces();
            if self.eat(b"}") {
                break;
            }
            self.expect(b",", "`,` or `}` after a field type")?;
        }
        let layout = StructType::new(&fields).map_err(|kind| ParseError::text(start, kind))?;
        Ok((Type::Struct(layout), start))
    }

    /// Reads an identifier and resolves it to a type, returning the type and
    /// the byte offset where its name starts.
    fn type_name(&mut self) -> Result<(Type, usize), ParseError> {
        self.skip_spaces();
        let start = self.pos;
        while self
            .text
            .get(self.pos)
            .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
        {
            self.pos += 1;
        }
        if start == self.pos {
            return Err(self.unexpected("a type name"));
        }
        // The identifier is ASCII, so this conversion cannot fail.
        let name = std::str::from_utf8(&self.text[start..self.pos]).unwrap_or_default();
        Type::from_name(name)
            .map(|ty| (ty, start))
            .ok_or_else(|| ParseError::text(start, ParseErrorKind::UnknownType(Quoted::new(name))))
    }
}

/// Whether `ty` may be an argument: not `void`, and after a `...` only a
/// type C's default promotions leave alone.
fn check_arg(ty: Type, variadic: bool) -> Result<(), ParseErrorKind> {
    if !ty.is_argument() {
        Err(ParseErrorKind::VoidArgument)
    } else if variadic && ty.promoted() != ty {
        Err(ParseErrorKind::UnpromotedVariadic {
            ty,
            promoted: ty.promoted(),
        })
    } else {
        Ok(())
    }
}

/// The byte-order mark both parsers skip.
const BOM: char = '\u{feff}';

/// A JSON value with an object's entries in input order and repeated keys
/// kept: serde_json's own `Value` keeps only the last of a repeated key,
/// which would let `{"arguments":["i32"],"arguments":["f64"]}` through.
enum Json {
    Null,
    Bool,
    Number,
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    /// The type a JSON value at `path` names: a type name string, or
    /// Deno's struct form `{"struct": [field, …]}` at nesting `depth` (1
    /// for an argument or the return). Gives the type and the path an
    /// error about its place should point at.
    fn parse_type(&self, path: String, depth: u32) -> Result<(Type, String), ParseError> {
        let fail = |path: &str, kind| Err(ParseError::json(path, kind));
        let fields = match self {
            Json::String(name) => {
                return match Type::from_name(name) {
                    Some(ty) => Ok((ty, path)),
                    None => fail(&path, ParseErrorKind::UnknownType(Quoted::new(name))),
                }
            }
            Json::Object(entries) => match &entries[..] {
                [(key, Json::Array(fields))] if key == "struct" => fields,
                [(key, value)] if key == "struct" => {
                    let kind = ParseErrorKind::WrongShape {
                        expected: "an array of field types",
                        found: value.kind(),
                    };
                    return fail(&format!("{path}.struct"), kind);
                }
                _ => {
                    let kind = match entries.iter().find(|(key, _)| key != "struct") {
                        Some((key, _)) => ParseErrorKind::UnknownKey(Quoted::new(key)),
                        None if entries.is_empty() => ParseErrorKind::WrongShape {
                            expected: "{\"struct\": [field types]}",
                            found: "an empty object",
                        },
                        None => ParseErrorKind::DuplicateKey {
                            first: "struct".into(),
                            second: "struct".into(),
                        },
                    };
                    return fail(&path, kind);
                }
            },
            other => {
                let kind = ParseErrorKind::WrongShape {
                    expected: "a type name string or {\"struct\": [field types]}",
                    found: other.kind(),
                };
                return fail(&path, kind);
            }
        };
        if depth > StructType::MAX_DEPTH {
            let max = StructType::MAX_DEPTH;
            return fail(&path, ParseErrorKind::StructTooDeep { max });
        }
        if fields.len() > StructType::MAX_FIELDS {
            let max = StructType::MAX_FIELDS;
            let at = format!("{path}.struct[{max}]");
            return fail(&at, ParseErrorKind::TooManyFields { max });
        }
        let mut types = Vec::with_capacity(fields.len());
        for (i, field) in fields.iter().enumerate() {
            types.push(
                field
                    .parse_type(format!("{path}.struct[{i}]"), depth + 1)?
                    .0,
            );
        }
        match StructType::new(&types) {
            Ok(layout) => Ok((Type::Struct(layout), path)),
            Err(kind) => fail(&path, kind),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool => "a boolean",
            Json::Number => "a number",
            Json::String(_) => "a string",
            Json::Array(_) => "an array",
            Json::Object(_) => "an object",
        }
    }
}

impl<'de> serde::Deserialize<'de> for Json {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Json, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> serde::de::Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Json, E> {
        Ok(Json::Bool)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Json, E> {
        Ok(Json::Number)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Json, E> {
        Ok(Json::Number)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Json, E> {
        Ok(Json::Number)
    }

    fn visit_str<E>(self, text: &str) -> Result<Json, E> {
        Ok(Json::String(text.to_string()))
    }

    fn visit_string<E>(self, text: String) -> Result<Json, E> {
        Ok(Json::String(text))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry()? {
            entries.push(entry);
        }
        Ok(Json::Object(entries))
    }
}

/// Converts serde_json's 1-based line and column (counted in bytes) into a
/// byte offset, clamped to the input.
fn byte_offset(text: &str, line: usize, column: usize) -> usize {
    let line_start: usize = text
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum();
    (line_start + column.saturating_sub(1)).min(text.len())
}

/// Where in the input a [`ParseError`] was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Position {
    /// A byte offset into the text (the text form, or malformed JSON).
    Byte(usize),
    /// A JSON path such as `$.arguments[2]`.
    JsonPath(String),
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Position::Byte(offset) => write!(f, "byte {offset}"),
            Position::JsonPath(path) => f.write_str(path),
        }
    }
}

/// What was wrong with a signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParseErrorKind {
    /// A name that is not a type or one of its aliases.
    UnknownType(Quoted),
    /// `void` in the argument list.
    VoidArgument,
    /// More than [`Signature::MAX_ARGS`] arguments, found at the first
    /// one too many.
    TooManyArgs { max: usize },
    /// `{}`: a struct with no fields.
    EmptyStruct,
    /// More than [`StructType::MAX_FIELDS`] fields in one struct.
    TooManyFields { max: usize },
    /// Structs nested deeper than [`StructType::MAX_DEPTH`].
    StructTooDeep { max: u32 },
    /// A struct larger than [`StructType::MAX_SIZE`] bytes.
    StructTooLarge { size: u64, max: u32 },
    /// A field of a type no struct holds: `void` or `buffer`.
    FieldType(Type),
    /// `...` before any fixed argument.
    VariadicWithoutFixed,
    /// A second `...`.
    RepeatedEllipsis,
    /// After `...`, a type C's default promotions change.
    UnpromotedVariadic { ty: Type, promoted: Type },
    /// A token other than the one the grammar needs.
    Expected {
        expected: &'static str,
        found: String,
    },
    /// No `->` between the argument list and the return type.
    MissingArrow,
    /// Input after a complete signature.
    TrailingInput,
    /// Text that is not JSON.
    Json(String),
    /// A JSON value of the wrong kind.
    WrongShape {
        expected: &'static str,
        found: &'static str,
    },
    /// A key the object form does not define.
    UnknownKey(Quoted),
    /// Two keys naming the same part (`arguments` and `parameters`, say).
    DuplicateKey { first: String, second: String },
}

impl fmt::Display for ParseErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseErrorKind::UnknownType(name) => write!(f, "unknown type {name}"),
            ParseErrorKind::VoidArgument => f.write_str("`void` is not an argument type"),
            ParseErrorKind::TooManyArgs { max } => {
                write!(f, "more than {max} arguments")
            }
            ParseErrorKind::EmptyStruct => f.write_str("a struct needs at least one field"),
            ParseErrorKind::TooManyFields { max } => {
                write!(f, "more than {max} fields in one struct")
            }
            ParseErrorKind::StructTooDeep { max } => {
                write!(f, "structs nested more than {max} deep")
            }
            ParseErrorKind::StructTooLarge { size, max } => {
                write!(f, "a struct of {size} bytes, more than {max}")
            }
            ParseErrorKind::FieldType(ty) => write!(f, "`{ty}` cannot be a struct field"),
            ParseErrorKind::VariadicWithoutFixed => {
                f.write_str("`...` needs a fixed argument before it")
            }
            ParseErrorKind::RepeatedEllipsis => f.write_str("a second `...`"),
            ParseErrorKind::UnpromotedVariadic { ty, promoted } => write!(
                f,
                "`{ty}` after `...`: C passes it promoted, as `{promoted}`; write `{promoted}`"
            ),
            ParseErrorKind::Expected { expected, found } => {
                write!(f, "expected {expected}, found {found}")
            }
            ParseErrorKind::MissingArrow => f.write_str("expected `->` before the return type"),
            ParseErrorKind::TrailingInput => f.write_str("unexpected input after the return type"),
            ParseErrorKind::Json(message) => write!(f, "malformed JSON: {message}"),
            ParseErrorKind::WrongShape { expected, found } => {
                write!(f, "expected {expected}, found {found}")
            }
            ParseErrorKind::UnknownKey(key) => write!(
                f,
                "unknown key {key} (expected `arguments` and `return`, or an alias)"
            ),
            ParseErrorKind::DuplicateKey { first, second } => {
                write!(f, "`{second}` repeats what `{first}` already gave")
            }
        }
    }
}

/// Caller text as an error shows it: escaped as Rust escapes a string's
/// characters for debugging (a NUL shows as `\0`, a newline as `\n`), cut
/// once the escaped text reaches [`Quoted::MAX_CHARS`] characters, and
/// followed by how many bytes were left out. An error keeps this bounded
/// copy, never the input itself, so a megabyte of type name makes a short
/// message.
///
/// # Examples
///
/// ```
/// use jitcall_emitters::Quoted;
///
/// assert_eq!(Quoted::new("i33").to_string(), "`i33`");
/// assert_eq!(Quoted::new("a\0b").to_string(), "`a\\0b`");
/// let long = "x".repeat(1000);
/// assert_eq!(
///     Quoted::new(&long).to_string(),
///     format!("`{}` and 936 more bytes", "x".repeat(64))
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Quoted {
    shown: String,
    cut: usize,
}

impl Quoted {
    /// The most characters of escaped text shown.
    pub const MAX_CHARS: usize = 64;

    pub fn new(text: &str) -> Quoted {
        let mut shown = String::new();
        let mut chars = 0;
        for (at, c) in text.char_indices() {
            let escaped = c.escape_debug();
            if chars + escaped.len() > Quoted::MAX_CHARS {
                return Quoted {
                    shown,
                    cut: text.len() - at,
                };
            }
            chars += escaped.len();
            shown.extend(escaped);
        }
        Quoted { shown, cut: 0 }
    }

    /// The escaped text shown, without the backticks.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// How many bytes of the input were left out.
    pub fn cut(&self) -> usize {
        self.cut
    }
}

impl fmt::Display for Quoted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`", self.shown)?;
        if self.cut > 0 {
            write!(f, " and {} more bytes", self.cut)?;
        }
        Ok(())
    }
}

/// A malformed signature: what was wrong ([`kind`](Self::kind)) and where
/// ([`at`](Self::at)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub kind: ParseErrorKind,
    pub at: Position,
}

impl ParseError {
    fn text(offset: usize, kind: ParseErrorKind) -> ParseError {
        ParseError {
            kind,
            at: Position::Byte(offset),
        }
    }

    fn json(path: impl Into<String>, kind: ParseErrorKind) -> ParseError {
        ParseError {
            kind,
            at: Position::JsonPath(path.into()),
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at {}", self.kind, self.at)
    }
}

impl std::error::Error for ParseError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_err(input: &str) -> ParseError {
        input.parse::<Signature>().unwrap_err()
    }

    fn json_err(input: &str) -> ParseError {
        Signature::from_json(input).unwrap_err()
    }

    #[test]
    fn text_form_parses_with_and_without_spaces() {
        let cases: &[(&str, &[Type], Type)] = &[
            ("() -> void", &[], Type::Void),
            ("()->void", &[], Type::Void),
            ("  (  )  ->  void  ", &[], Type::Void),
            (
                "(i32, f64, pointer) -> u8",
                &[Type::I32, Type::F64, Type::Pointer],
                Type::U8,
            ),
            ("(I32,F64)->U8", &[Type::I32, Type::F64], Type::U8),
            (
                "(int8, uint16, char, float, double, ptr)->bool",
                &[
                    Type::I8,
                    Type::U16,
                    Type::C_CHAR,
                    Type::F32,
                    Type::F64,
                    Type::Pointer,
                ],
                Type::Bool,
            ),
            (
                "(buffer,function)->function",
                &[Type::Buffer, Type::Function],
                Type::Function,
            ),
            ("(\ti64\n)\r->\tu64", &[Type::I64], Type::U64),
        ];
        for (text, args, ret) in cases {
            let sig: Signature = text.parse().unwrap_or_else(|e| panic!("{text:?}: {e}"));
            assert_eq!(sig.args, *args, "{text:?}");
            assert_eq!(sig.ret, *ret, "{text:?}");
        }
    }

    #[test]
    fn text_errors_name_the_problem_and_the_byte() {
        let cases: &[(&str, ParseErrorKind, usize)] = &[
            (
                "(i33) -> void",
                ParseErrorKind::UnknownType(Quoted::new("i33")),
                1,
            ),
            ("(i32, void) -> u8", ParseErrorKind::VoidArgument, 6),
            ("(i32) u8", ParseErrorKind::MissingArrow, 6),
            ("(i32)", ParseErrorKind::MissingArrow, 5),
            ("(i32) -> u8 x", ParseErrorKind::TrailingInput, 12),
            ("(i32) -> u8)", ParseErrorKind::TrailingInput, 11),
        ];
        for (text, kind, offset) in cases {
            let err = text_err(text);
            assert_eq!(&err.kind, kind, "{text:?}");
            assert_eq!(err.at, Position::Byte(*offset), "{text:?}");
        }
    }

    #[test]
    fn text_errors_for_broken_punctuation() {
        for (text, offset) in [
            ("", 0),
            ("i32 -> u8", 0),
            ("(i32 f64) -> u8", 5),
            ("(i32,) -> u8", 5),
            ("(,) -> u8", 1),
            ("(i32 -> u8", 5),
            ("(i32) ->", 8),
            ("(i32) -> é", 9),
        ] {
            let err = text_err(text);
            assert!(
                matches!(err.kind, ParseErrorKind::Expected { .. }),
                "{text:?}: {err}"
            );
            assert_eq!(err.at, Position::Byte(offset), "{text:?}: {err}");
        }
        assert_eq!(
            text_err("(i32) -> é").to_string(),
            "expected a type name, found \"é\" at byte 9"
        );
    }

    #[test]
    fn json_form_and_aliases() {
        let sig = Signature::from_json(
            r#"{"arguments":["int8","uint8","int16","uint16"],"return":"int64"}"#,
        )
        .unwrap();
        assert_eq!(sig.to_string(), "(i8, u8, i16, u16) -> i64");
        let sig =
            Signature::from_json(r#"{"parameters":["float32","float64"],"result":"u32"}"#).unwrap();
        assert_eq!(sig.to_string(), "(f32, f64) -> u32");
        let sig = Signature::from_json(r#"{"args":["ptr","buffer"],"returns":"pointer"}"#).unwrap();
        assert_eq!(sig.to_string(), "(pointer, buffer) -> pointer");
        assert_eq!(
            Signature::from_json("{}").unwrap().to_string(),
            "() -> void"
        );
        assert_eq!(
            Signature::from_json(r#"{"return":"f64"}"#)
                .unwrap()
                .to_string(),
            "() -> f64"
        );
        assert_eq!(
            Signature::from_json(r#"{"arguments":["I32"]}"#)
                .unwrap()
                .to_string(),
            "(i32) -> void"
        );
    }

    #[test]
    fn json_errors_carry_a_path() {
        let cases: &[(&str, ParseErrorKind, &str)] = &[
            (
                r#"{"arguments":["i32","nope"]}"#,
                ParseErrorKind::UnknownType(Quoted::new("nope")),
                "$.arguments[1]",
            ),
            (
                r#"{"arguments":["void"]}"#,
                ParseErrorKind::VoidArgument,
                "$.arguments[0]",
            ),
            (
                r#"{"arguments":"i32"}"#,
                ParseErrorKind::WrongShape {
                    expected: "an array of type names",
                    found: "a string",
                },
                "$.arguments",
            ),
            (
                r#"{"arguments":[1]}"#,
                ParseErrorKind::WrongShape {
                    expected: "a type name string or {\"struct\": [field types]}",
                    found: "a number",
                },
                "$.arguments[0]",
            ),
            (
                r#"["i32"]"#,
                ParseErrorKind::WrongShape {
                    expected: "an object",
                    found: "an array",
                },
                "$",
            ),
            (
                r#"{"argumnets":[]}"#,
                ParseErrorKind::UnknownKey(Quoted::new("argumnets")),
                "$",
            ),
        ];
        for (json, kind, path) in cases {
            let err = json_err(json);
            assert_eq!(&err.kind, kind, "{json}");
            assert_eq!(err.at, Position::JsonPath(path.to_string()), "{json}");
        }
        let err = json_err(r#"{"args":[],"arguments":[]}"#);
        assert!(
            matches!(err.kind, ParseErrorKind::DuplicateKey { .. }),
            "{err}"
        );
    }

    #[test]
    fn malformed_json_reports_a_byte_offset() {
        let err = json_err("{\"arguments\": [\n  \"i32\",\n  oops]}");
        assert!(matches!(err.kind, ParseErrorKind::Json(_)), "{err}");
        // `oops` starts on line 3, column 3: lines 1 and 2 are 16 and 9
        // bytes with their newlines, so byte 16 + 9 + 2.
        assert_eq!(err.at, Position::Byte(27), "{err}");
        assert_eq!(&"{\"arguments\": [\n  \"i32\",\n  oops]}"[27..31], "oops");
        assert!(matches!(json_err("").kind, ParseErrorKind::Json(_)));
    }

    #[test]
    fn node_ffi_type_names_mean_what_node_means() {
        // Node.js's node:ffi documentation and src/ffi/types.cc ToFFIType,
        // plus the pointer-width names Deno and Bun users write.
        let cases: &[(&str, Type, Type)] = &[
            // (name, as an argument, as the return type)
            ("void", Type::Void, Type::Void),
            ("bool", Type::Bool, Type::Bool),
            ("char", Type::C_CHAR, Type::C_CHAR),
            ("int8", Type::I8, Type::I8),
            ("uint8", Type::U8, Type::U8),
            ("int16", Type::I16, Type::I16),
            ("uint16", Type::U16, Type::U16),
            ("int32", Type::I32, Type::I32),
            ("uint32", Type::U32, Type::U32),
            ("int64", Type::I64, Type::I64),
            ("uint64", Type::U64, Type::U64),
            ("float32", Type::F32, Type::F32),
            ("float", Type::F32, Type::F32),
            ("float64", Type::F64, Type::F64),
            ("double", Type::F64, Type::F64),
            ("pointer", Type::Pointer, Type::Pointer),
            ("ptr", Type::Pointer, Type::Pointer),
            ("string", Type::Pointer, Type::Pointer),
            ("str", Type::Pointer, Type::Pointer),
            ("buffer", Type::Buffer, Type::Pointer),
            ("arraybuffer", Type::Buffer, Type::Pointer),
            ("function", Type::Function, Type::Function),
            ("usize", Type::U64, Type::U64),
            ("size_t", Type::U64, Type::U64),
            ("uintptr", Type::U64, Type::U64),
            ("isize", Type::I64, Type::I64),
            ("ssize_t", Type::I64, Type::I64),
            ("intptr", Type::I64, Type::I64),
        ];
        for &(name, arg, ret) in cases {
            if arg != Type::Void {
                let text = format!("({name}) -> void");
                assert_eq!(text.parse::<Signature>().unwrap().args, [arg], "{text}");
                let json = format!(r#"{{"arguments":["{name}"]}}"#);
                assert_eq!(Signature::from_json(&json).unwrap().args, [arg], "{json}");
            }
            let text = format!("() -> {name}");
            assert_eq!(text.parse::<Signature>().unwrap().ret, ret, "{text}");
            let json = format!(r#"{{"return":"{name}"}}"#);
            assert_eq!(Signature::from_json(&json).unwrap().ret, ret, "{json}");
        }
    }

    #[test]
    fn char_is_the_platforms_c_char() {
        let want = if cfg!(all(target_arch = "aarch64", not(target_vendor = "apple"))) {
            Type::U8
        } else {
            Type::I8
        };
        assert_eq!(Type::C_CHAR, want);
        assert_eq!(Type::from_name("char"), Some(want));
    }

    #[test]
    fn at_most_max_args_arguments() {
        let list = |n: usize| vec!["i32"; n].join(", ");
        let most = format!("({}) -> void", list(Signature::MAX_ARGS));
        assert_eq!(most.parse::<Signature>().unwrap().args.len(), 127);
        let over = format!("({}) -> void", list(Signature::MAX_ARGS + 1));
        let err = text_err(&over);
        assert_eq!(err.kind, ParseErrorKind::TooManyArgs { max: 127 });
        // At the 128th type name: 127 of "i32, " before it, after "(".
        assert_eq!(err.at, Position::Byte(1 + 127 * 5));

        let names = |n: usize| vec!["\"i32\""; n].join(",");
        let most = format!(r#"{{"arguments":[{}]}}"#, names(127));
        assert_eq!(Signature::from_json(&most).unwrap().args.len(), 127);
        let over = format!(r#"{{"arguments":[{}]}}"#, names(300_000));
        let err = json_err(&over);
        assert_eq!(err.kind, ParseErrorKind::TooManyArgs { max: 127 });
        assert_eq!(err.at, Position::JsonPath("$.arguments[127]".into()));
        assert_eq!(
            err.to_string(),
            "more than 127 arguments at $.arguments[127]"
        );
    }

    #[test]
    fn repeated_json_keys_are_errors() {
        for (json, path) in [
            (
                r#"{"arguments":["i32"],"arguments":["f64","f64"]}"#,
                "$.arguments",
            ),
            (r#"{"return":"i32","return":"f64"}"#, "$.return"),
            (r#"{"args":[],"arguments":[]}"#, "$.arguments"),
            (r#"{"returns":"i32","result":"i32"}"#, "$.result"),
        ] {
            let err = json_err(json);
            assert!(
                matches!(err.kind, ParseErrorKind::DuplicateKey { .. }),
                "{json}: {err}"
            );
            assert_eq!(err.at, Position::JsonPath(path.into()), "{json}");
        }
        assert_eq!(
            json_err(r#"{"arguments":["i32"],"arguments":["f64","f64"]}"#).to_string(),
            "`arguments` repeats what `arguments` already gave at $.arguments"
        );
    }

    #[test]
    fn a_byte_order_mark_is_skipped_and_counted_in_offsets() {
        let sig = Signature::from_json("\u{feff}{\"arguments\":[\"i32\"]}").unwrap();
        assert_eq!(sig.args, [Type::I32]);
        assert_eq!(
            "\u{feff}(i32) -> u8".parse::<Signature>().unwrap().ret,
            Type::U8
        );
        assert_eq!(
            Signature::parse("\u{feff} {\"return\":\"u8\"}")
                .unwrap()
                .ret,
            Type::U8
        );
        // The BOM is 3 bytes: `x` is at byte 5 of the input.
        let err = json_err("\u{feff}{\"a\" x}");
        assert_eq!(err.at, Position::Byte(8), "{err}");
        assert_eq!(text_err("\u{feff}(i33) -> void").at, Position::Byte(4));
    }

    #[test]
    fn json_errors_state_their_position_once() {
        // Ended early: the position is the end of the input.
        for json in [
            r#"{"arguments": ["i32""#,
            "{",
            r#"{"arguments": ["#,
            "",
            "  ",
        ] {
            let err = json_err(json);
            assert!(
                matches!(err.kind, ParseErrorKind::Json(_)),
                "{json:?}: {err}"
            );
            assert_eq!(err.at, Position::Byte(json.len()), "{json:?}: {err}");
            let message = err.to_string();
            assert!(!message.contains("line"), "{json:?}: {message}");
            assert_eq!(message.matches(" at ").count(), 1, "{json:?}: {message}");
        }
        assert_eq!(
            json_err(r#"{"arguments": ["i32""#).to_string(),
            "malformed JSON: EOF while parsing a list at byte 20"
        );
        let err = json_err(r#"{"return": "i32"} x"#);
        assert_eq!(err.at, Position::Byte(18), "{err}");
    }

    #[test]
    fn messages_quote_a_bounded_escaped_excerpt() {
        let huge = "y".repeat(1 << 20);
        for err in [
            text_err(&format!("({huge}) -> void")),
            json_err(&format!(r#"{{"arguments":["{huge}"]}}"#)),
            json_err(&format!(r#"{{"{huge}":[]}}"#)),
        ] {
            let message = err.to_string();
            assert!(message.len() < 200, "{} bytes", message.len());
            assert!(
                message.contains(&format!("and {} more bytes", (1 << 20) - 64)),
                "{message}"
            );
        }
        let err = json_err(r#"{"arguments":["i3\u00002"]}"#);
        assert_eq!(err.to_string(), "unknown type `i3\\02` at $.arguments[0]");
        assert!(!err.to_string().contains('\0'));
        // Escapes count towards the bound: 64 characters of output at most.
        let tabs = Quoted::new(&"\t".repeat(100));
        assert_eq!(tabs.shown(), "\\t".repeat(32));
        assert_eq!(tabs.cut(), 68);
    }

    #[test]
    fn structs_parse_in_both_forms_with_c_layout() {
        let sig: Signature = "({u8, {f32, f32}}, {i32, f64}) -> {u8, u16, u8}"
            .parse()
            .unwrap();
        let text = "({u8, {f32, f32}}, {i32, f64}) -> {u8, u16, u8}";
        assert_eq!(sig.to_string(), text);
        let json = r#"{"arguments": [{"struct": ["u8", {"struct": ["float", "f32"]}]},
                        {"struct": ["int32", "double"]}],
                       "return": {"struct": ["u8", "u16", "uint8"]}}"#;
        assert_eq!(Signature::from_json(json), Ok(sig.clone()));
        let layout = |t: Type| {
            let s = t.as_struct().unwrap();
            (s.size(), s.align(), s.offsets().to_vec())
        };
        // {u8, {f32, f32}}: the inner struct at 4, size 12.
        assert_eq!(layout(sig.args[0]), (12, 4, vec![0, 4]));
        assert_eq!(layout(sig.args[1]), (16, 8, vec![0, 8]));
        // {u8, u16, u8}: padding after each u8, size rounded to 2.
        assert_eq!(layout(sig.ret), (6, 2, vec![0, 2, 4]));
        assert_eq!(
            sig.args[0].as_struct().unwrap().flatten(),
            [(0, Type::U8), (4, Type::F32), (8, Type::F32)]
        );
        // Interned: the same layout is the same instance.
        let again: Signature = "({u8,{f32,f32}}) -> void".parse().unwrap();
        assert!(std::ptr::eq(
            again.args[0].as_struct().unwrap(),
            sig.args[0].as_struct().unwrap()
        ));
    }

    #[test]
    fn variadic_signatures_parse_in_both_forms() {
        let cases: &[(&str, &str, usize, usize)] = &[
            (
                "(pointer, ..., i32, f64) -> i32",
                r#"{"arguments": ["ptr", "...", "int32", "double"], "return": "i32"}"#,
                1,
                3,
            ),
            (
                "(pointer, ...) -> i32",
                r#"{"arguments": ["pointer", "..."], "return": "i32"}"#,
                1,
                1,
            ),
            (
                "(i32, u64, ..., {f32, f32}) -> void",
                r#"{"arguments": ["i32", "u64", "...", {"struct": ["f32", "f32"]}]}"#,
                2,
                3,
            ),
        ];
        for &(text, json, fixed, n) in cases {
            let sig: Signature = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!((sig.variadic, sig.args.len()), (Some(fixed), n), "{text}");
            assert_eq!(sig.to_string(), text);
            assert_eq!(Signature::from_json(json), Ok(sig.clone()), "{json}");
            assert_eq!(sig.fixed_args().len() + sig.variadic_args().len(), n);
        }
        assert_eq!(
            "(pointer,...,i32)->i32"
                .parse::<Signature>()
                .unwrap()
                .to_string(),
            "(pointer, ..., i32) -> i32"
        );
    }

    #[test]
    fn bad_structs_and_ellipses_are_bounded_errors() {
        use ParseErrorKind::*;
        let deep = format!("({}i32{}) -> void", "{".repeat(1000), "}".repeat(1000));
        let wide = format!("({{{}}}) -> void", vec!["u8"; 10_000].join(", "));
        let cases: Vec<(String, ParseErrorKind, usize)> = vec![
            ("({i32, f64) -> void".into(), Expected { expected: "`,` or `}` after a field type", found: "\")\"".into() }, 10),
            ("({i32, f64".into(), Expected { expected: "`,` or `}` after a field type", found: "end of input".into() }, 10),
            ("({}) -> void".into(), EmptyStruct, 1),
            ("({void}) -> void".into(), FieldType(Type::Void), 1),
            ("({buffer, i32}) -> void".into(), FieldType(Type::Buffer), 1),
            (deep, StructTooDeep { max: 16 }, 17),
            (wide, TooManyFields { max: 256 }, 2 + 256 * 4),
            ("({f64, f64, f64, f64, f64, f64, f64, f64, f64, f64, f64, f64, f64, f64, f64, f64, f64, f64, f64, f64, f64, f64, f64, f64, f64, f64, f64, f64, f64, f64, f64, f64}) -> void".into(), Expected { expected: "", found: String::new() }, usize::MAX),
            ("(pointer, ..., i32, ..., i32) -> i32".into(), RepeatedEllipsis, 20),
            ("(..., i32) -> i32".into(), VariadicWithoutFixed, 1),
            ("(...) -> i32".into(), VariadicWithoutFixed, 1),
            ("(pointer, ..., f32) -> i32".into(), UnpromotedVariadic { ty: Type::F32, promoted: Type::F64 }, 15),
            ("(pointer, ..., i8) -> i32".into(), UnpromotedVariadic { ty: Type::I8, promoted: Type::I32 }, 15),
            ("(pointer, ..., bool) -> i32".into(), UnpromotedVariadic { ty: Type::Bool, promoted: Type::I32 }, 15),
            ("(pointer, ..., u16) -> i32".into(), UnpromotedVariadic { ty: Type::U16, promoted: Type::I32 }, 15),
        ];
        for (text, kind, at) in cases {
            if at == usize::MAX {
                // 32 doubles is 256 bytes: a struct, not an error.
                text.parse::<Signature>().unwrap();
                continue;
            }
            let err = text_err(&text);
            assert_eq!(err.kind, kind, "{}", &text[..text.len().min(60)]);
            assert_eq!(
                err.at,
                Position::Byte(at),
                "{}",
                &text[..text.len().min(60)]
            );
            assert!(err.to_string().len() < 120, "{err}");
        }
        let huge = format!("({{{}}}) -> void", vec!["f64"; 600].join(", "));
        assert!(matches!(text_err(&huge).kind, TooManyFields { .. }));
        let large = format!(
            "({{{}}}) -> void",
            vec!["{f64, f64, f64, f64, f64, f64, f64, f64}"; 65].join(", ")
        );
        assert_eq!(
            text_err(&large).kind,
            StructTooLarge {
                size: 4160,
                max: 4096
            }
        );
        assert_eq!(
            text_err("(pointer, ..., f32) -> i32").to_string(),
            "`f32` after `...`: C passes it promoted, as `f64`; write `f64` at byte 15"
        );

        let json_cases: &[(&str, ParseErrorKind, &str)] = &[
            (
                r#"{"arguments": ["i32", "...", "...", "i32"]}"#,
                RepeatedEllipsis,
                "$.arguments[2]",
            ),
            (
                r#"{"arguments": ["...", "i32"]}"#,
                VariadicWithoutFixed,
                "$.arguments[0]",
            ),
            (
                r#"{"arguments": ["i32", "...", "float"]}"#,
                UnpromotedVariadic {
                    ty: Type::F32,
                    promoted: Type::F64,
                },
                "$.arguments[2]",
            ),
            (
                r#"{"arguments": [{"struct": []}]}"#,
                EmptyStruct,
                "$.arguments[0]",
            ),
            (
                r#"{"arguments": [{"struct": ["i32", "nope"]}]}"#,
                UnknownType(Quoted::new("nope")),
                "$.arguments[0].struct[1]",
            ),
            (
                r#"{"arguments": [{"struct": "i32"}]}"#,
                WrongShape {
                    expected: "an array of field types",
                    found: "a string",
                },
                "$.arguments[0].struct",
            ),
            (
                r#"{"arguments": [{"fields": ["i32"]}]}"#,
                UnknownKey(Quoted::new("fields")),
                "$.arguments[0]",
            ),
            (
                r#"{"return": {"struct": ["void"]}}"#,
                FieldType(Type::Void),
                "$.return",
            ),
        ];
        for (json, kind, path) in json_cases {
            let err = json_err(json);
            assert_eq!(&err.kind, kind, "{json}");
            assert_eq!(err.at, Position::JsonPath(path.to_string()), "{json}");
        }
        let wide = format!(
            r#"{{"arguments": [{{"struct": [{}]}}]}}"#,
            vec!["\"u8\""; 10_000].join(",")
        );
        assert_eq!(json_err(&wide).kind, TooManyFields { max: 256 });
        // Nesting deeper than serde_json's own limit is its error, bounded.
        let deep = format!(
            r#"{{"return": {}"i32"{}}}"#,
            r#"{"struct": ["#.repeat(1000),
            "]}".repeat(1000)
        );
        let err = json_err(&deep);
        assert!(err.to_string().len() < 200, "{err}");
        let deep = format!(
            r#"{{"return": {}"i32"{}}}"#,
            r#"{"struct": ["#.repeat(20),
            "]}".repeat(20)
        );
        assert_eq!(json_err(&deep).kind, StructTooDeep { max: 16 });
    }

    #[test]
    fn every_type_round_trips_through_display() {
        for ty in Type::ALL {
            assert_eq!(Type::from_name(ty.name()), Some(ty));
            assert_eq!(Type::from_name(&ty.name().to_uppercase()), Some(ty));
        }
    }
}
