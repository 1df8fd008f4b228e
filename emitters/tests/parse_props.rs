//! Property tests for both signature parsers: what `Display` prints parses
//! back to the same signature, the JSON form agrees with the text form
//! whatever aliases and case it uses, and no input makes either parser panic
//! or leads to a signature that the classifier or emitters choke on (the
//! check in `signature_input/`, which the cargo-fuzz target in `fuzz/` runs
//! too).

mod signature_input;

use jitcall_emitters::{Signature, StructType, Type};
use proptest::prelude::*;

fn scalars(keep: impl Fn(Type) -> bool) -> impl Strategy<Value = Type> {
    proptest::sample::select(
        Type::ALL
            .iter()
            .copied()
            .filter(|&t| keep(t))
            .collect::<Vec<_>>(),
    )
}

/// Structs of 1–4 fields of any field type, nested up to 3 deep.
fn struct_type() -> impl Strategy<Value = Type> {
    let field = scalars(|t| !matches!(t, Type::Void | Type::Buffer));
    field
        .prop_recursive(3, 16, 4, |inner| {
            proptest::collection::vec(inner, 1..5)
                .prop_map(|fields| Type::Struct(StructType::new(&fields).unwrap()))
        })
        .prop_filter("a struct", |t| t.as_struct().is_some())
}

fn arg_type() -> impl Strategy<Value = Type> {
    prop_oneof![4 => scalars(|t| t != Type::Void), 1 => struct_type()]
}

fn ret_type() -> impl Strategy<Value = Type> {
    prop_oneof![4 => scalars(|t| t != Type::Buffer), 1 => struct_type()]
}

/// Signatures of 0–19 arguments; a quarter variadic, after 1 fixed
/// argument or more, with promoted variadic arguments.
fn signature() -> impl Strategy<Value = Signature> {
    (
        proptest::collection::vec(arg_type(), 0..20),
        ret_type(),
        proptest::option::weighted(0.25, any::<proptest::sample::Index>()),
    )
        .prop_map(|(args, ret, split)| match split {
            Some(at) if !args.is_empty() => {
                let fixed = 1 + at.index(args.len());
                let rest = args[fixed..].iter().map(|t| t.promoted());
                Signature::new_variadic(args[..fixed].to_vec(), rest, ret)
            }
            _ => Signature::new(args, ret),
        })
}

/// Every accepted spelling of `ty`, written out by hand from DESIGN.md's
/// alias list so that a dropped alias fails here.
fn spellings(ty: Type) -> &'static [&'static str] {
    match ty {
        Type::Void => &["void"],
        Type::Bool => &["bool"],
        // `char` is whichever of the two C's plain char is here.
        Type::I8 if Type::C_CHAR == Type::I8 => &["i8", "int8", "char"],
        Type::I8 => &["i8", "int8"],
        Type::U8 if Type::C_CHAR == Type::U8 => &["u8", "uint8", "char"],
        Type::U8 => &["u8", "uint8"],
        Type::I16 => &["i16", "int16"],
        Type::U16 => &["u16", "uint16"],
        Type::I32 => &["i32", "int32"],
        Type::U32 => &["u32", "uint32"],
        Type::I64 => &["i64", "int64", "isize", "ssize_t", "intptr"],
        Type::U64 => &["u64", "uint64", "usize", "size_t", "uintptr"],
        Type::F32 => &["f32", "float", "float32"],
        Type::F64 => &["f64", "double", "float64"],
        Type::Pointer => &["pointer", "ptr", "string", "str"],
        Type::Buffer => &["buffer", "arraybuffer"],
        Type::Function => &["function"],
        Type::Struct(_) => unreachable!("structs are spelled field by field"),
    }
}

/// `ty` in the text form, with spelling `pick` of its name, in upper case
/// when `upper`; a struct field by field, its fields spelled in turn.
fn spell(ty: Type, pick: usize, upper: bool) -> String {
    if let Type::Struct(layout) = ty {
        let fields: Vec<String> = (layout.fields().iter().enumerate())
            .map(|(i, &field)| spell(field, pick + i, upper ^ (i % 2 == 1)))
            .collect();
        return format!("{{{}}}", fields.join(","));
    }
    let names = spellings(ty);
    let name = names[pick % names.len()];
    if upper {
        name.to_uppercase()
    } else {
        name.to_string()
    }
}

/// `ty` in the JSON form, spelled as [`spell`] does.
fn spell_json(ty: Type, pick: usize, upper: bool) -> String {
    match ty {
        Type::Struct(layout) => {
            let fields: Vec<String> = (layout.fields().iter().enumerate())
                .map(|(i, &field)| spell_json(field, pick + i, upper ^ (i % 2 == 1)))
                .collect();
            format!(r#"{{"struct":[{}]}}"#, fields.join(","))
        }
        scalar => format!("\"{}\"", spell(scalar, pick, upper)),
    }
}

/// `items` with `...` before item `at` (after the last when `at` is their
/// count).
fn with_ellipsis(mut items: Vec<String>, at: Option<usize>, ellipsis: &str) -> Vec<String> {
    if let Some(at) = at {
        items.insert(at, ellipsis.to_string());
    }
    items
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn text_round_trips(sig in signature()) {
        let printed = sig.to_string();
        prop_assert_eq!(printed.parse::<Signature>(), Ok(sig.clone()));
        // Without spaces too.
        let squeezed: String = printed.chars().filter(|c| *c != ' ').collect();
        prop_assert_eq!(squeezed.parse::<Signature>(), Ok(sig));
    }

    #[test]
    fn aliases_and_case_parse_the_same(sig in signature(), picks in proptest::collection::vec((0usize..5, any::<bool>()), 21)) {
        let spelled = |f: fn(Type, usize, bool) -> String| -> (Vec<String>, String) {
            let names = sig.args.iter().zip(&picks).map(|(&t, &(p, u))| f(t, p, u)).collect();
            (names, f(sig.ret, picks[20].0, picks[20].1))
        };
        let (names, ret) = spelled(spell);
        let names = with_ellipsis(names, sig.variadic, "...");
        let text = format!("({}) -> {ret}", names.join(","));
        prop_assert_eq!(text.parse::<Signature>(), Ok(sig.clone()));
        let (names, ret) = spelled(spell_json);
        let names = with_ellipsis(names, sig.variadic, "\"...\"");
        let json = format!(r#"{{"arguments": [{}], "return": {ret}}}"#, names.join(", "));
        prop_assert_eq!(Signature::from_json(&json), Ok(sig));
    }

    #[test]
    fn any_text_passes_the_parser_check(input in "\\PC*") {
        signature_input::check_text(&input);
    }

    #[test]
    fn any_bytes_pass_the_parser_check(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        signature_input::check(&bytes);
    }

    #[test]
    fn text_token_soup_passes_the_parser_check(tokens in proptest::collection::vec(
        proptest::sample::select(vec!["(", ")", ",", "->", "-", ">", " ", "i32", "void", "buffer", "f64", "x", "é", "\u{0}"]), 0..24)) {
        signature_input::check_text(&tokens.concat());
    }

    #[test]
    fn json_token_soup_passes_the_parser_check(tokens in proptest::collection::vec(
        proptest::sample::select(vec!["{", "}", "[", "]", ",", ":", "\"arguments\"", "\"return\"", "\"i32\"", "\"void\"", "\"buffer\"", "1", "null", "\"\"", " "]), 0..24)) {
        signature_input::check_text(&tokens.concat());
    }

    /// Valid signatures in both forms with a few bytes replaced, inserted
    /// or removed: inputs near the accepted ones, where parsers slip.
    #[test]
    fn mutated_signatures_pass_the_parser_check(
        sig in signature(),
        json in any::<bool>(),
        edits in proptest::collection::vec((any::<proptest::sample::Index>(), 0u8..3, any::<u8>()), 1..4),
    ) {
        let mut bytes = if json {
            sig.to_json().into_bytes()
        } else {
            sig.to_string().into_bytes()
        };
        for (at, op, byte) in edits {
            let at = at.index(bytes.len() + 1);
            match op {
                0 if at < bytes.len() => bytes[at] = byte,
                1 => bytes.insert(at, byte),
                _ if at < bytes.len() => { bytes.remove(at); }
                _ => {}
            }
        }
        signature_input::check(&bytes);
    }
}
