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
}

impl Type {
    /// Every type, in declaration order.
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

    /// The canonical name, as [`Display`](fmt::Display) prints it.
    pub const fn name(self) -> &'static str {
        match self {
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
            Type::Void | Type::F32 | Type::F64 => return None,
        })
    }

    /// True for the 8- and 16-bit integer types (`bool` included), whose
    /// upper bits a caller or callee may leave unspecified.
    pub const fn is_narrow(self) -> bool {
        matches!(self.int_width(), Some((8 | 16, _)))
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
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
}

impl Signature {
    /// The most arguments a signature may have: 127, the number of
    /// parameters C guarantees a function may take. Both parsers stop at
    /// it, and binding a signature built by hand with more is an error, so
    /// no call path is ever asked to marshal an unbounded argument list
    /// (300,000 `i32`s would overflow a thread's stack in `ffi_call`).
    pub const MAX_ARGS: usize = 127;

    pub fn new(args: impl Into<Vec<Type>>, ret: Type) -> Signature {
        Signature {
            args: args.into(),
            ret,
        }
    }

    /// The first type in a place it cannot be, as `(argument index, type)`
    /// (`None` for the return type): `void` as an argument or `buffer` as
    /// the return type. The parsers never produce such a signature; one
    /// built by hand may be.
    pub fn misplaced_type(&self) -> Option<(Option<usize>, Type)> {
        if let Some(i) = self.args.iter().position(|t| !t.is_argument()) {
            return Some((Some(i), self.args[i]));
        }
        (!self.ret.is_return()).then_some((None, self.ret))
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
            for (i, item) in items.iter().enumerate() {
                let path = || format!("$.{key}[{i}]");
                let ty = item
                    .type_name()
                    .map_err(|kind| ParseError::json(path(), kind))?;
                check_arg(ty).map_err(|kind| ParseError::json(path(), kind))?;
                args.push(ty);
            }
        }
        let ret = match ret_entry {
            None => Type::Void,
            Some((key, value)) => value
                .type_name()
                .map_err(|kind| ParseError::json(format!("$.{key}"), kind))?
                .returned_as(),
        };
        Ok(Signature { args, ret })
    }
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(")?;
        for (i, ty) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(ty.name())?;
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
        p.skip_spaces();
        if !p.eat(b")") {
            loop {
                let (ty, at) = p.type_name()?;
                check_arg(ty).map_err(|kind| ParseError::text(at, kind))?;
                if args.len() == Signature::MAX_ARGS {
                    let max = Signature::MAX_ARGS;
                    return Err(ParseError::text(at, ParseErrorKind::TooManyArgs { max }));
                }
                args.push(ty);
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
        let (ret, _) = p.type_name()?;
        let ret = ret.returned_as();
        p.skip_spaces();
        if p.pos < p.text.len() {
            return Err(ParseError::text(p.pos, ParseErrorKind::TrailingInput));
        }
        Ok(Signature { args, ret })
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

fn check_arg(ty: Type) -> Result<(), ParseErrorKind> {
    if ty.is_argument() {
        Ok(())
    } else {
        Err(ParseErrorKind::VoidArgument)
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
    /// The type a JSON value names, when it is a string.
    fn type_name(&self) -> Result<Type, ParseErrorKind> {
        match self {
            Json::String(name) => {
                Type::from_name(name).ok_or_else(|| ParseErrorKind::UnknownType(Quoted::new(name)))
            }
            other => Err(ParseErrorKind::WrongShape {
                expected: "a type name string",
                found: other.kind(),
            }),
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
                    expected: "a type name string",
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
    fn every_type_round_trips_through_display() {
        for ty in Type::ALL {
            assert_eq!(Type::from_name(ty.name()), Some(ty));
            assert_eq!(Type::from_name(&ty.name().to_uppercase()), Some(ty));
        }
    }
}
