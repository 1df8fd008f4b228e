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
//! makes either parser panic.

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

    /// Looks a type up by any accepted name, ignoring ASCII case: the
    /// canonical names plus `int8`…`uint64`, `char` (i8), `float`/`float32`,
    /// `double`/`float64` and `ptr`.
    pub fn from_name(name: &str) -> Option<Type> {
        let lower = name.to_ascii_lowercase();
        Some(match lower.as_str() {
            "void" => Type::Void,
            "bool" => Type::Bool,
            "i8" | "int8" | "char" => Type::I8,
            "u8" | "uint8" => Type::U8,
            "i16" | "int16" => Type::I16,
            "u16" | "uint16" => Type::U16,
            "i32" | "int32" => Type::I32,
            "u32" | "uint32" => Type::U32,
            "i64" | "int64" => Type::I64,
            "u64" | "uint64" => Type::U64,
            "f32" | "float" | "float32" => Type::F32,
            "f64" | "double" | "float64" => Type::F64,
            "pointer" | "ptr" => Type::Pointer,
            "buffer" => Type::Buffer,
            "function" => Type::Function,
            _ => return None,
        })
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

    /// Parses the object form used by JavaScript runtimes:
    /// `{"arguments": ["i32", "f64"], "return": "u8"}`.
    ///
    /// Deno's (`parameters`/`result`) and Bun's (`args`/`returns`) key names
    /// are accepted too. A missing argument list means no arguments and a
    /// missing return type means `void`. Keys outside these are rejected so
    /// that a misspelt key is not silently read as "no arguments".
    ///
    /// # Errors
    ///
    /// A [`ParseError`] located by JSON path (`$.arguments[2]`) for an
    /// unknown type, `void` as an argument, `buffer` as a return type, a
    /// value of the wrong JSON kind, an unknown or repeated key; located by
    /// byte offset for malformed JSON.
    pub fn from_json(json: &str) -> Result<Signature, ParseError> {
        let value: serde_json::Value = serde_json::from_str(json).map_err(|e| {
            let kind = ParseErrorKind::Json(e.to_string());
            ParseError {
                kind,
                at: Position::Byte(byte_offset(json, e.line(), e.column())),
            }
        })?;
        let serde_json::Value::Object(map) = value else {
            return Err(ParseError::json(
                "$",
                ParseErrorKind::WrongShape {
                    expected: "an object",
                    found: json_kind(&value),
                },
            ));
        };
        let mut args_key: Option<&str> = None;
        let mut ret_key: Option<&str> = None;
        for key in map.keys() {
            let slot = match key.as_str() {
                "arguments" | "parameters" | "args" => &mut args_key,
                "return" | "result" | "returns" => &mut ret_key,
                _ => {
                    return Err(ParseError::json(
                        format!("$.{key}"),
                        ParseErrorKind::UnknownKey(key.clone()),
                    ))
                }
            };
            if let Some(first) = slot {
                return Err(ParseError::json(
                    format!("$.{key}"),
                    ParseErrorKind::DuplicateKey {
                        first: first.to_string(),
                        second: key.clone(),
                    },
                ));
            }
            *slot = Some(key);
        }

        let mut args = Vec::new();
        if let Some(key) = args_key {
            let serde_json::Value::Array(items) = &map[key] else {
                return Err(ParseError::json(
                    format!("$.{key}"),
                    ParseErrorKind::WrongShape {
                        expected: "an array of type names",
                        found: json_kind(&map[key]),
                    },
                ));
            };
            for (i, item) in items.iter().enumerate() {
                let path = || format!("$.{key}[{i}]");
                let ty = json_type(item).map_err(|kind| ParseError::json(path(), kind))?;
                check_arg(ty).map_err(|kind| ParseError::json(path(), kind))?;
                args.push(ty);
            }
        }
        let ret = match ret_key {
            None => Type::Void,
            Some(key) => {
                let path = || format!("$.{key}");
                let ty = json_type(&map[key]).map_err(|kind| ParseError::json(path(), kind))?;
                check_ret(ty).map_err(|kind| ParseError::json(path(), kind))?;
                ty
            }
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
/// case; every alias of [`Type::from_name`] is accepted.
impl FromStr for Signature {
    type Err = ParseError;

    fn from_str(text: &str) -> Result<Signature, ParseError> {
        let mut p = TextParser {
            text: text.as_bytes(),
            pos: 0,
        };
        p.expect(b"(", "`(` opening the argument list")?;
        let mut args = Vec::new();
        p.skip_spaces();
        if !p.eat(b")") {
            loop {
                let (ty, at) = p.type_name()?;
                check_arg(ty).map_err(|kind| ParseError::text(at, kind))?;
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
        let (ret, at) = p.type_name()?;
        check_ret(ret).map_err(|kind| ParseError::text(at, kind))?;
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
            .ok_or_else(|| ParseError::text(start, ParseErrorKind::UnknownType(name.to_string())))
    }
}

fn check_arg(ty: Type) -> Result<(), ParseErrorKind> {
    if ty.is_argument() {
        Ok(())
    } else {
        Err(ParseErrorKind::VoidArgument)
    }
}

fn check_ret(ty: Type) -> Result<(), ParseErrorKind> {
    if ty.is_return() {
        Ok(())
    } else {
        Err(ParseErrorKind::BufferReturn)
    }
}

fn json_type(value: &serde_json::Value) -> Result<Type, ParseErrorKind> {
    match value {
        serde_json::Value::String(name) => {
            Type::from_name(name).ok_or_else(|| ParseErrorKind::UnknownType(name.clone()))
        }
        other => Err(ParseErrorKind::WrongShape {
            expected: "a type name string",
            found: json_kind(other),
        }),
    }
}

fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
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
    UnknownType(String),
    /// `void` in the argument list.
    VoidArgument,
    /// `buffer` as the return type.
    BufferReturn,
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
    UnknownKey(String),
    /// Two keys naming the same part (`arguments` and `parameters`, say).
    DuplicateKey { first: String, second: String },
}

impl fmt::Display for ParseErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseErrorKind::UnknownType(name) => write!(f, "unknown type `{name}`"),
            ParseErrorKind::VoidArgument => f.write_str("`void` is not an argument type"),
            ParseErrorKind::BufferReturn => f.write_str("`buffer` is not a return type"),
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
                "unknown key `{key}` (expected `arguments` and `return`, or an alias)"
            ),
            ParseErrorKind::DuplicateKey { first, second } => {
                write!(f, "`{second}` repeats what `{first}` already gave")
            }
        }
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
                    Type::I8,
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
                ParseErrorKind::UnknownType("i33".into()),
                1,
            ),
            ("(i32, void) -> u8", ParseErrorKind::VoidArgument, 6),
            ("(i32) -> buffer", ParseErrorKind::BufferReturn, 9),
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
                ParseErrorKind::UnknownType("nope".into()),
                "$.arguments[1]",
            ),
            (
                r#"{"arguments":["void"]}"#,
                ParseErrorKind::VoidArgument,
                "$.arguments[0]",
            ),
            (
                r#"{"return":"buffer"}"#,
                ParseErrorKind::BufferReturn,
                "$.return",
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
                ParseErrorKind::UnknownKey("argumnets".into()),
                "$.argumnets",
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
    fn every_type_round_trips_through_display() {
        for ty in Type::ALL {
            assert_eq!(Type::from_name(ty.name()), Some(ty));
            assert_eq!(Type::from_name(&ty.name().to_uppercase()), Some(ty));
        }
    }
}
