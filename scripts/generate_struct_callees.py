#!/usr/bin/env python3
"""Writes fixtures/c/generated_structs.c: C callees for random signatures
with structs passed and returned by value, and for variadic calls, each with
an oracle that makes the direct typed call, for jitcall's struct and
variadic differential suite.

A struct type is written `{T, T, ...}` (fields of any type but bool, nested
to any depth); a variadic signature has `...` after its fixed arguments and
the types of that call's variadic arguments after it. In the packed calling
convention slot `i` holds argument `i`: a scalar in its low bits, a struct
as the address of its bytes; a struct return is written to `ret` (at least
`max(8, size)` bytes, 8-byte aligned), a scalar return as a u64 slot.

For every signature (fixed seed) the file holds:

- the callee, `jf_sgen_NNN(...)` or `jf_vgen_NNN(fixed..., ...)`, which
  folds every argument (every scalar field of every struct argument, in
  declaration order, at its own type's width and signedness; floats by
  their bits) into a position-weighted checksum, reading variadic
  arguments with `va_arg` in their declared order and types, and returns
  its return type built from the checksum: each scalar field of a struct
  return from a different mix of it (a void callee records it for
  `jf_struct_take_recorded`);
- `jf_sgen_NNN_oracle(const uint64_t *slots, void *ret)`, which reads each
  argument from its slot (a scalar at its declared width, a struct through
  the address in its slot), calls the callee directly (so the C compiler's
  own call is the reference) and writes the result to `ret`: a struct's
  field bytes at their offsets with every padding byte zero, a scalar's
  packed u64 image, nothing for void;
- `jf_sgen_NNN_via_pointer(const void *pointer, const uint64_t *slots,
  void *ret)`, for the fixed (not variadic) signatures: the same call
  through a function pointer of the signature (a callback);

and two tables that the fixtures crate reads: `jf_struct_cases` (name,
signature text, callee, oracle, size of the return) and
`jf_struct_layouts` (every struct type used, as text, with the size,
alignment and top-level field offsets the C compiler gave it).

Run it after changing it, and commit both:

    python3 scripts/generate_struct_callees.py
"""

import argparse
import pathlib
import random

SEED = 0x7374_7275_6374_7321
STRUCT_COUNT = 320
VARIADIC_COUNT = 72
MAX_ARGS = 8
MAX_STRUCT_ARGS = 4
MAX_VARIADIC = 12
MAX_SIZE = 64

# name: (C type, size and alignment, kind)
SCALARS = {
    "bool": ("bool", 1, "bool"),
    "i8": ("int8_t", 1, "signed"),
    "u8": ("uint8_t", 1, "unsigned"),
    "i16": ("int16_t", 2, "signed"),
    "u16": ("uint16_t", 2, "unsigned"),
    "i32": ("int32_t", 4, "signed"),
    "u32": ("uint32_t", 4, "unsigned"),
    "i64": ("int64_t", 8, "signed"),
    "u64": ("uint64_t", 8, "unsigned"),
    "f32": ("float", 4, "f32"),
    "f64": ("double", 8, "f64"),
    "pointer": ("void *", 8, "pointer"),
    "function": ("void *", 8, "pointer"),
}
SCALAR_NAMES = list(SCALARS)
# Random bytes are not a valid C bool, so no struct holds one.
FIELD_TYPES = [t for t in SCALARS if t != "bool"]
# What C's default argument promotions leave unchanged: the only scalar
# types a variadic argument can have, and the type the last fixed argument
# needs for `va_start` to be defined.
PROMOTED = ["i32", "u32", "i64", "u64", "f64", "pointer"]
LAST_FIXED = PROMOTED + ["function"]

# Structs every kind of classification meets, by family; the random
# signatures draw from these as well as from random structs.
ODD_SIZES = [
    "{u8}",
    "{i8, u8, u8}",
    "{u8, {u8, u8}}",
    "{u16, u8}",
    "{u8, u8, u8, u8, u8}",
    "{i8, {u8, u8, u8, u8}}",
    "{u16, u16, u16}",
    "{u8, u8, u8, {u8, u8, u8, u8}}",
    "{{u8, u8, u8}, {i8, u8, u8, u8}}",
    "{u8, u8, u8, u8, {u8, u8, u8, u8, u8}}",
    "{i16, i16, i16, i16, i16}",
    "{{u8, u8, u8, u8, u8}, {u8, u8, u8, u8, u8}, u8}",
    "{i32, i32, i32}",
    "{i32, f32, u32}",
    "{i16, i32, u32}",
    "{f32, {i32, f32}}",
    "{u16, u16, u16, u16, {u16, u16, u16}}",
    "{{u8, u8, u8, u8, u8}, {u8, u8, u8, u8, u8}, {i8, i8, i8, i8, i8}}",
]
HFAS = [
    "{f32}",
    "{f32, f32}",
    "{f32, f32, f32}",
    "{f32, f32, f32, f32}",
    "{f64}",
    "{f64, f64}",
    "{f64, f64, f64}",
    "{f64, f64, f64, f64}",
    "{f32, {f32, f32}}",
    "{{f32, f32}, {f32, f32}}",
    "{{f32}, {f32}, {f32}}",
    "{f32, {f32}, f32}",
    "{{f64}, f64}",
    "{f64, {f64, {f64}}}",
    "{{f64, f64}, {f64, f64}}",
]
# Only floats, but not homogeneous or too many: not HFAs.
FLOAT_NOT_HFA = [
    "{f32, f64}",
    "{f64, f32}",
    "{f32, f32, f64}",
    "{f32, f32, f32, f32, f32}",
    "{f64, f64, f64, f64, f64}",
    "{{f32, f32, f32}, {f32, f32, f32}}",
    "{f64, f64, {f32}}",
]
MIXED = [
    "{i32, f32}",
    "{f32, i32}",
    "{f64, i64}",
    "{i64, f64}",
    "{f32, i32, f64}",
    "{i8, f32}",
    "{f64, u8}",
    "{f32, f32, i64}",
    "{i32, f32, f32, i32}",
    "{u16, f32, f64}",
    "{pointer, f64}",
    "{{f32, i8}, f64}",
    "{function, f32}",
]
SIXTEEN = [
    "{i64, i64}",
    "{u64, i64}",
    "{pointer, u64}",
    "{i32, i32, i32, i32}",
    "{u16, u32, u64}",
    "{i8, i64}",
]
MEMORY = [
    "{i64, i64, i64}",
    "{i32, f64, i64}",
    "{u8, f64, u8}",
    "{i64, i64, u8}",
    "{u8, {i64, i64}}",
    "{{i64, f64}, u16}",
    "{pointer, pointer, pointer}",
    "{i32, i32, i32, i32, i32}",
    "{f32, u8, f64, u8}",
    "{{i64, i64}, {i64, i64}}",
    "{i64, i64, i64, i64, i64}",
    "{{f64, f64, f64}, {i64, i64, i64}}",
    "{{i64, i64, i64, i64}, {i64, i64, i64, i64}}",
    "{f64, f64, f64, f64, {f64, f64, f64, f64}}",
    "{{u8, u8, u8, u8, u8}, {u8, u8, u8, u8, u8}, {u8, u8, u8, u8, u8}, u8, u8}",
]
PADDED = [
    "{u8, i64}",
    "{i16, f64}",
    "{u8, i32, u8}",
    "{i8, {i64}}",
    "{u8, u16, u8, u32}",
    "{i32, i8}",
    "{u8, {u8, i32}}",
    "{u16, {f32}, u8}",
    "{i8, pointer}",
]
POINTERS = ["{pointer}", "{function}", "{pointer, i32}", "{function, u8}"]
FAMILIES = [ODD_SIZES, HFAS, FLOAT_NOT_HFA, MIXED, SIXTEEN, MEMORY, PADDED, POINTERS]
# Structs small enough to be a variadic argument here.
VARIADIC_STRUCTS = [
    "{i32, i32}",
    "{i64, i64}",
    "{f64, f64}",
    "{f32, f32}",
    "{i32, f32}",
    "{f64, i64}",
    "{u8, i32}",
    "{i64}",
    "{u16, u16, u16}",
]

# Signatures chosen for where their arguments go: registers running out
# part-way through a struct (which then goes to the stack whole, and on
# x86_64 lets later scalars take the registers it left), HFAs that no
# longer fit the vector registers, hidden return pointers taking a register,
# and arguments passed by reference.
EDGE_STRUCT_SIGNATURES = [
    "({i64, i64}, {i64, i64}, {i64, i64}, {i64, i64}, {i64, i64}, {i64, i64}, {i64, i64}) -> i64",
    "({f64, f64}, {f64, f64}, {f64, f64}, {f64, f64}, {f64, f64}, f64, f64, f64, f64) -> f64",
    "(i64, i64, i64, i64, i64, {i64, i64}, i64) -> i64",
    "(i64, i64, i64, i64, i64, i64, i64, {i32, i32}) -> i32",
    "(i64, i64, i64, i64, i64, i64, i64, {i64, i64}, i32) -> u64",
    "(f64, f64, f64, f64, f64, f64, f64, {f64, f64}, f32) -> f64",
    "(f32, f32, f32, f32, f32, f32, f32, f32, {f32, f32}) -> {f32, f32}",
    "({f64, f64, f64, f64}, {f64, f64, f64, f64}, {f64, f64, f64}, f64) -> {f64, f64}",
    "({f32, f32, f32, f32}, {f32, f32, f32, f32}, {f32, f32, f32, f32}, {f32, f32, f32, f32}, {f32, f32, f32, f32}) -> {f32, f32, f32, f32}",
    "({i64, f64}, {i64, f64}, {i64, f64}, {i64, f64}, {i64, f64}, {i64, f64}, {i64, f64}) -> {i64, f64}",
    "({f64, i64}, {f64, i64}, {f64, i64}, {f64, i64}, {f64, i64}, {f64, i64}, {f64, i64}, f64) -> {f64, i64}",
    "({f32, i32, f64}, {f32, i32, f64}, {f32, i32, f64}, {f32, i32, f64}, {f32, i32, f64}, {f32, i32, f64}, {f32, i32, f64}) -> {f32, i32, f64}",
    "(i64, i64, i64, i64, i64, i64, {i64, i64}) -> {i64, i64, i64}",
    "(i64, i64, i64, i64, i64, {i32, f32}, f64) -> {f64, f64, f64, f64, f64}",
    "({i64, i64, i64}, {i64, i64, i64}, {i64, i64, i64}, {i64, i64, i64}, {i64, i64, i64}, {i64, i64, i64}, {i64, i64, i64}, {i64, i64, i64}, {i64, i64, i64}) -> i64",
    "(i32, i32, i32, i32, i32, {i32, f32}, {f32, i32}, f32) -> {i32, f32}",
    "(u8, {u8, u8, u8}, u16, {u8, u8, u8, u8, u8}, i8, {u8, u8, u8, {u8, u8, u8, u8}}, {i32, i32, i32}) -> {u8, u8, u8}",
    "(pointer, {f64, f64, f64, f64, {f64, f64, f64, f64}}, i32) -> {{i64, i64, i64, i64}, {i64, i64, i64, i64}}",
    "({f64, f64, f64, f64}, {f64, f64, f64, f64}, f64, {f32}) -> {f64, f64, f64, f64}",
    "({{f64, f64}, {f64, f64}}, {{f64, f64}, {f64, f64}}, {f64}, f32, f64) -> void",
    "(bool, {u8, i64}, bool, {i16, f64}, i8, {u8, u8, u8, u8, u8}, u16, {f32, u8, f64, u8}) -> {u8, i64}",
    "({u8}) -> {u8}",
    "({f32}) -> {f32}",
    "({f64}) -> {f64}",
    "() -> {u8}",
    "() -> {u8, u8, u8}",
    "() -> {i64, i64, i64}",
    "() -> {f64, f64, f64, f64}",
    "() -> {f32, i32, f64}",
]

EDGE_VARIADIC_SIGNATURES = [
    "(i32, ...) -> i32",
    "(pointer, ...) -> u64",
    "(f64, ...) -> f64",
    "(pointer, ..., i32, f64) -> i32",
    "(i32, ..., f64, f64, f64, f64, f64, f64, f64, f64, f64) -> f64",
    "(f64, ..., f64, f64, f64, f64, f64, f64, f64, f64, f64, f64, f64, f64) -> f64",
    "(pointer, ..., i64, i64, i64, i64, i64, i64, i64) -> i64",
    "(i32, u64, pointer, ..., i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32) -> i32",
    "(i32, ..., i64, f64, i64, f64, i64, f64, i64, f64, i64, f64, i64, f64) -> u64",
    "(f64, f64, ..., f64, f64, f64, f64, f64, f64, f64, f64, i64, i64, i64, i64) -> f64",
    "(f32, i8, pointer, ..., f64, f64, f64, f64, f64, f64, f64, f64, f64) -> f32",
    "(u16, bool, u32, ..., u32, i64, u64, pointer, i32, u32, i64, u64) -> u16",
    "(i32, ..., {i32, i32}, f64) -> i64",
    "(pointer, ..., {f64, f64}, {f64, f64}, {f64, f64}, {f64, f64}, {f64, f64}) -> f64",
    "(i32, ..., {i64, i64}, i64, i64, i64, i64, i64, {i64, i64}) -> i64",
    "(u32, ..., {f32, f32}, f64) -> f64",
    "(i64, ..., {u8, i32}, u32) -> u32",
    "(i64, i64, i64, ..., i64, i64, {i64, i64}, i64) -> i64",
]


def parse(text):
    """A type, or a signature `(args[, ..., varargs]) -> ret`, from its
    text: (args, variadic index or None, ret) for a signature."""
    tokens = text.replace("{", " { ").replace("}", " } ").replace("(", " ( ").replace(")", " ) ")
    tokens = tokens.replace(",", " , ").split()
    pos = 0

    def ty():
        nonlocal pos
        token = tokens[pos]
        pos += 1
        if token != "{":
            assert token in SCALARS or token == "void", text
            return token
        fields = [ty()]
        while tokens[pos] == ",":
            pos += 1
            fields.append(ty())
        assert tokens[pos] == "}", text
        pos += 1
        return tuple(fields)

    if tokens[0] != "(":
        return ty()
    pos = 1
    args, fixed = [], None
    while tokens[pos] != ")":
        if tokens[pos] == "...":
            fixed = len(args)
            pos += 1
        else:
            args.append(ty())
        if tokens[pos] == ",":
            pos += 1
    assert tokens[pos + 1] == "->", text
    pos += 2
    return tuple(args), fixed, ty()


def text_of(ty):
    if isinstance(ty, tuple):
        return "{" + ", ".join(text_of(f) for f in ty) + "}"
    return ty


def signature_text(args, fixed, ret):
    parts = [text_of(a) for a in args]
    if fixed is not None:
        parts.insert(fixed, "...")
    return f"({', '.join(parts)}) -> {text_of(ret)}"


def layout(ty):
    """(size, alignment, top-level field offsets) as C lays the struct out:
    each field at the next multiple of its alignment, the size rounded up
    to the largest alignment."""
    if not isinstance(ty, tuple):
        return SCALARS[ty][1], SCALARS[ty][1], []
    offset, align, offsets = 0, 1, []
    for field in ty:
        size, field_align, _ = layout(field)
        offset = -(-offset // field_align) * field_align
        offsets.append(offset)
        offset += size
        align = max(align, field_align)
    return -(-offset // align) * align, align, offsets


def size_of(ty):
    return layout(ty)[0]


def leaves(ty, path=""):
    """Every scalar field of a struct, in declaration order, with its member
    path: [("i32", ".f0"), ("f32", ".f1.f0"), ...]."""
    if not isinstance(ty, tuple):
        return [(ty, path)]
    return [leaf for i, field in enumerate(ty) for leaf in leaves(field, f"{path}.f{i}")]


class Structs:
    """Every distinct struct type, numbered in first-use order, nested
    types before the types that hold them."""

    def __init__(self):
        self.index = {}

    def add(self, ty):
        if isinstance(ty, tuple) and ty not in self.index:
            for field in ty:
                self.add(field)
            self.index[ty] = len(self.index)

    def c_type(self, ty):
        if ty == "void":
            return "void"
        if isinstance(ty, tuple):
            return f"struct jf_s{self.index[ty]}"
        return SCALARS[ty][0]

    def definitions(self):
        lines = []
        for ty, n in self.index.items():
            fields = " ".join(declare(self.c_type(f), f"f{i}") + ";" for i, f in enumerate(ty))
            lines.append(f"struct jf_s{n} {{ {fields} }};")
        return lines


def declare(c_type, name):
    return f"{c_type}{name}" if c_type.endswith("*") else f"{c_type} {name}"


def random_struct(rng, depth=0):
    """A random struct of 1 to 5 fields, some nested: two in three at most
    16 bytes (passed in registers when they fit), the rest at most MAX_SIZE;
    one in five holds a single float type only (an HFA when it has at most
    four fields)."""
    limit = rng.choice([16, 16, MAX_SIZE])
    while True:
        homogeneous = rng.choice(["f32", "f64"]) if rng.random() < 0.2 else None
        fields = []
        for _ in range(rng.randint(1, 5)):
            if depth < 2 and rng.random() < (0.2 if depth == 0 else 0.1):
                fields.append(random_struct(rng, depth + 1))
            else:
                fields.append(homogeneous or rng.choice(FIELD_TYPES))
        ty = tuple(fields)
        if size_of(ty) <= limit:
            return ty


def pick_struct(rng, pool):
    return rng.choice(pool) if rng.random() < 0.5 else random_struct(rng)


def random_struct_signature(rng, pool, ret=None, include=None):
    """0 to MAX_ARGS arguments of which 1 to MAX_STRUCT_ARGS are structs
    (none only when there are no arguments), with `include` among them;
    a struct, scalar or void return unless `ret` is given."""
    count = rng.choice([0] + list(range(1, MAX_ARGS + 1)) * 4)
    structs = rng.randint(1, min(count, MAX_STRUCT_ARGS)) if count else 0
    at = set(rng.sample(range(count), structs))
    args = [pick_struct(rng, pool) if i in at else rng.choice(SCALAR_NAMES) for i in range(count)]
    if include is not None:
        if not at:
            return None
        args[rng.choice(sorted(at))] = include
    if ret is None:
        roll = rng.random()
        if roll < 0.45:
            ret = pick_struct(rng, pool)
        elif roll < 0.9:
            ret = rng.choice(SCALAR_NAMES)
        else:
            ret = "void"
    if count == 0 and not isinstance(ret, tuple):
        return None
    return tuple(args), None, ret


def random_variadic_signature(rng, structs):
    """1 to 3 fixed scalar arguments (the last of a promoted type), 0 to
    MAX_VARIADIC variadic ones of promoted types, sometimes one small
    struct among them, and a scalar return."""
    fixed = [rng.choice(SCALAR_NAMES) for _ in range(rng.randint(0, 2))]
    fixed.append(rng.choice(LAST_FIXED))
    pool = rng.choice([PROMOTED, ["f64"], ["i32", "i64", "u64", "pointer"], PROMOTED + ["f64"] * 3])
    variadic = [rng.choice(pool) for _ in range(rng.randint(0, MAX_VARIADIC))]
    if variadic and rng.random() < 0.2:
        variadic[rng.randrange(len(variadic))] = rng.choice(structs)
    return tuple(fixed + variadic), len(fixed), rng.choice(SCALAR_NAMES)


def signatures(rng):
    """STRUCT_COUNT struct signatures, then VARIADIC_COUNT variadic ones,
    all distinct: the edge shapes; one returning and taking each struct of
    the families; random ones to make up the count."""
    pool = [parse(t) for family in FAMILIES for t in family]
    pool = list(dict.fromkeys(pool))
    seen = set()
    structs, variadics = [], []

    def add(out, sig):
        if sig is not None and signature_text(*sig) not in seen:
            seen.add(signature_text(*sig))
            out.append(sig)

    for text in EDGE_STRUCT_SIGNATURES:
        add(structs, parse(text))
    for ty in pool:
        before = len(structs)
        while len(structs) == before:
            add(structs, random_struct_signature(rng, pool, ret=ty, include=ty))
    while len(structs) < STRUCT_COUNT:
        add(structs, random_struct_signature(rng, pool))

    small = [parse(t) for t in VARIADIC_STRUCTS]
    for text in EDGE_VARIADIC_SIGNATURES:
        add(variadics, parse(text))
    while len(variadics) < VARIADIC_COUNT:
        add(variadics, random_variadic_signature(rng, small))
    return structs[:STRUCT_COUNT], variadics


def packed(ty, value):
    """The 64-bit image of a scalar: its packed-slot encoding, which is
    also what the checksum mixes in."""
    kind = SCALARS[ty][2]
    if kind == "signed":
        return f"(uint64_t)(int64_t){value}"
    if kind in ("unsigned", "bool"):
        return f"(uint64_t){value}"
    if kind == "f32":
        return f"bits_f32({value})"
    if kind == "f64":
        return f"bits_f64({value})"
    return f"(uint64_t)(uintptr_t){value}"


def from_checksum(ty, h):
    kind = SCALARS[ty][2]
    if kind == "bool":
        return f"(({h} ^ ({h} >> 32)) & 1) != 0"
    if kind == "f32":
        return f"f32_of({h})"
    if kind == "f64":
        return f"f64_of({h})"
    if kind == "pointer":
        return f"(void *)(uintptr_t){h}"
    return f"({SCALARS[ty][0]}){h}"


def from_slot(structs, ty, slot):
    if isinstance(ty, tuple):
        return f"*(const {structs.c_type(ty)} *)(uintptr_t){slot}"
    kind = SCALARS[ty][2]
    if kind == "bool":
        return f"((uint8_t){slot} & 1) != 0"
    if kind == "f32":
        return f"f32_of({slot})"
    if kind == "f64":
        return f"f64_of({slot})"
    if kind == "pointer":
        return f"(void *)(uintptr_t){slot}"
    return f"({SCALARS[ty][0]}){slot}"


class Abi:
    """What one output file's calling convention changes, and nothing else:
    the file, the prefix of every symbol, what marks a callee, the
    variadic-argument builtins, which structs a variadic callee receives as
    a pointer, whether callbacks get a caller and the layout table is
    written, and the preprocessor condition the file's content needs
    (None: always)."""

    def __init__(self, file, prefix, header, callee, va_list, va_start, va_end, by_reference,
                 via_pointer, layouts, guard):
        self.file = file
        self.prefix = prefix
        self.header = header
        self.callee = callee
        self.va_list = va_list
        self.va_start = va_start
        self.va_end = va_end
        self.by_reference = by_reference
        self.via_pointer = via_pointer
        self.layouts = layouts
        self.guard = guard


HOST = Abi(
    file="generated_structs.c",
    prefix="jf_",
    header="""\
/* Generated by scripts/generate_struct_callees.py (seed {seed:#x}, {structs}
 * struct signatures, {variadics} variadic signatures): do not edit; change
 * the generator, run it and commit both. */
""",
    callee="",
    va_list="va_list",
    va_start="va_start",
    va_end="va_end",
    by_reference=lambda ty: False,
    via_pointer=True,
    layouts=True,
    guard=None,
)

WIN64 = Abi(
    file="generated_structs_win64.c",
    prefix="jf_w64_",
    header="""\
/* Generated by scripts/generate_struct_callees.py (seed {seed:#x}, {structs}
 * struct signatures, {variadics} variadic signatures): the Win64 (Microsoft
 * x64) twin of generated_structs.c, the same signatures in the same order
 * under jf_w64_ names. Every callee is ms_abi; each oracle is a host-ABI
 * function that calls its callee directly, so GCC's own ms_abi call is the
 * reference; there are no callback callers (the table's via_pointer column
 * is NULL) and no layout table (the layouts are generated_structs.c's). Do
 * not edit; change the generator, run it and commit both.
 * fixtures/tests/win64.rs checks that this file is what the generator
 * writes. */
""",
    callee="MS_ABI ",
    va_list="__builtin_ms_va_list",
    va_start="__builtin_ms_va_start",
    va_end="__builtin_ms_va_end",
    # Win64 passes a struct whose size is not 1, 2, 4 or 8 bytes as the
    # address of a copy, variadic or not. GCC's callers do, but its va_arg
    # on a __builtin_ms_va_list reads such a struct in place, by value
    # (GCC 12 on x86_64 Linux, seen in the disassembly), so the callee reads
    # the pointer and the struct through it, as MSVC's va_arg does.
    by_reference=lambda ty: isinstance(ty, tuple) and size_of(ty) not in (1, 2, 4, 8),
    via_pointer=False,
    layouts=False,
    guard="defined(__x86_64__)",
)

ABIS = [HOST, WIN64]


def case(abi, structs, name, index, args, fixed, ret):
    """The callee and its oracle, and the table row."""
    sig = signature_text(args, fixed, ret)
    c_ret = structs.c_type(ret)
    named = args if fixed is None else args[:fixed]
    params = ", ".join(declare(structs.c_type(t), f"a{i}") for i, t in enumerate(named)) or "void"
    if fixed is not None:
        params += ", ..."
    lines = [f"/* {sig} */", f"{abi.callee}{c_ret} {name}({params}) {{", f"    uint64_t h = {index + 1};"]
    if fixed is not None:
        lines += [f"    {abi.va_list} ap;", f"    {abi.va_start}(ap, a{fixed - 1});"]
    for i, t in enumerate(args):
        if fixed is not None and i >= fixed:
            c_t = structs.c_type(t)
            if abi.by_reference(t):
                lines.append(f"    {declare(c_t, f'a{i}')} = *va_arg(ap, const {c_t} *);")
            else:
                lines.append(f"    {declare(c_t, f'a{i}')} = va_arg(ap, {c_t});")
        for leaf, path in leaves(t):
            lines.append(f"    h = MIX(h, {packed(leaf, f'a{i}{path}')});")
    if fixed is not None:
        lines.append(f"    {abi.va_end}(ap);")
    if ret == "void":
        lines.append("    recorded = h;")
    elif isinstance(ret, tuple):
        lines += [f"    {c_ret} r;", "    memset(&r, 0, sizeof r);"]
        for k, (leaf, path) in enumerate(leaves(ret)):
            lines.append(f"    r{path} = {from_checksum(leaf, f'part(h, {k})')};")
        lines.append("    return r;")
    else:
        lines.append(f"    return {from_checksum(ret, 'h')};")
    lines.append("}")

    values = ', '.join(from_slot(structs, t, f's[{i}]') for i, t in enumerate(args))
    lines += caller(structs, f"void {name}_oracle(const uint64_t *s, void *ret) {{",
                    f"{name}({values})", ret)
    # A callback cannot be variadic: only fixed prototypes get a caller of
    # a function pointer, and only in the host ABI.
    via_pointer = "NULL"
    if fixed is None and abi.via_pointer:
        typed = f"(({c_ret} (*)({params}))pointer)"
        lines += caller(structs,
                        f"void {name}_via_pointer(const void *pointer, const uint64_t *s, void *ret) {{",
                        f"{typed}({values})", ret)
        via_pointer = f"{name}_via_pointer"

    if ret == "void":
        ret_size = "0"
    elif isinstance(ret, tuple):
        ret_size = f"(uint32_t)sizeof({c_ret})"
    else:
        ret_size = "8"
    row = f'    {{"{name}", "{sig}", (const void *){name}, {name}_oracle, {via_pointer}, {ret_size}}},'
    return "\n".join(lines), row


def caller(structs, header, call, ret):
    """A function that makes `call` and stores its result in the packed
    encoding at `ret`: a struct leaf by leaf (padding zero), a scalar as
    its slot."""
    lines = [header, "    (void)s;"]
    c_ret = structs.c_type(ret)
    if ret == "void":
        lines += ["    (void)ret;", f"    {call};"]
    elif isinstance(ret, tuple):
        lines += [f"    {c_ret} r = {call};", "    memset(ret, 0, sizeof r);"]
        for leaf, path in leaves(ret):
            offset = f"offsetof({c_ret}, {path[1:]})"
            lines.append(f"    memcpy((char *)ret + {offset}, &r{path}, sizeof r{path});")
    else:
        lines += [f"    uint64_t v = {packed(ret, call)};", "    memcpy(ret, &v, sizeof v);"]
    lines.append("}")
    return lines


INCLUDES = """
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

"""

# Everything the callees share, in the ABI's symbol prefix.
PRELUDE = """\
#define MIX(h, v) ((h) * 1000003u ^ (uint64_t)(v))
/* What the record holds when no void callee has run since it was taken. */
#define NOTHING_RECORDED 0x6e6f7468696e6721u

static uint64_t bits_f32(float x) {{ uint32_t b; memcpy(&b, &x, 4); return b; }}
static uint64_t bits_f64(double x) {{ uint64_t b; memcpy(&b, &x, 8); return b; }}
static float f32_of(uint64_t s) {{ uint32_t b = (uint32_t)s; float x; memcpy(&x, &b, 4); return x; }}
static double f64_of(uint64_t s) {{ double x; memcpy(&x, &s, 8); return x; }}

/* A different mix of the checksum for each scalar field `k` of a struct
 * return, so that fields returned in each other's places differ. */
static uint64_t part(uint64_t h, uint64_t k) {{
    uint64_t x = h + (k + 1) * 0x9e3779b97f4a7c15u;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
    return x ^ (x >> 31);
}}

/* What a void callee computed on this thread, until taken. */
static _Thread_local uint64_t recorded = NOTHING_RECORDED;

uint64_t {prefix}struct_take_recorded(void) {{
    uint64_t r = recorded;
    recorded = NOTHING_RECORDED;
    return r;
}}

/* Every struct type the signatures use, nested ones first. */
"""

# Opens the guarded part of a file whose callees are ms_abi.
MS_ABI = """\
/* The Microsoft x64 calling convention, which GCC and clang compile on
 * any x86_64 target. */
#define MS_ABI __attribute__((ms_abi))

"""

CASE_TYPE = """\
struct jf_struct_case {
    const char *name;
    const char *signature;
    const void *callee;
    void (*oracle)(const uint64_t *slots, void *ret);
    /* The same call through a function pointer (a callback); NULL for a
     * variadic signature. */
    void (*via_pointer)(const void *pointer, const uint64_t *slots, void *ret);
    uint32_t ret_size;
};
"""

CASES = """
const struct jf_struct_case {prefix}struct_cases[] = {{
{rows}
}};
const size_t {prefix}struct_case_count = {count};
"""

LAYOUTS = """
/* The C compiler's layout of every struct type above: size, alignment and
 * the offset of each top-level field. */
struct jf_struct_layout {{
    const char *text;
    uint32_t size;
    uint32_t align;
    uint32_t field_count;
    const uint32_t *offsets;
}};

{offsets}

const struct jf_struct_layout jf_struct_layouts[] = {{
{layouts}
}};
const size_t jf_struct_layout_count = {layout_count};
"""

# The other side of the guard: no cases, and the symbols the fixtures crate
# links against all the same.
EMPTY_CASES = """\
/* Elsewhere (ms_abi is x86_64's alone) no cases, only the symbols the
 * fixtures crate links against. */
uint64_t {prefix}struct_take_recorded(void) {{
    return 0x6e6f7468696e6721u;
}}

{case_type}
const struct jf_struct_case {prefix}struct_cases[1];
const size_t {prefix}struct_case_count = 0;
"""


def render(abi):
    rng = random.Random(SEED)
    struct_sigs, variadic_sigs = signatures(rng)
    structs = Structs()
    for args, _, ret in struct_sigs + variadic_sigs:
        for ty in args + (ret,):
            structs.add(ty)
    bodies, rows = [], []
    named = [(f"{abi.prefix}sgen_{i:03}", i, sig) for i, sig in enumerate(struct_sigs)]
    named += [(f"{abi.prefix}vgen_{i:03}", i, sig) for i, sig in enumerate(variadic_sigs)]
    for name, index, (args, fixed, ret) in named:
        body, row = case(abi, structs, name, index, args, fixed, ret)
        bodies.append(body)
        rows.append(row)
    tables = CASE_TYPE + CASES.format(prefix=abi.prefix, rows="\n".join(rows), count=len(rows))
    if abi.layouts:
        offsets, layouts = [], []
        for ty, n in structs.index.items():
            c_type = structs.c_type(ty)
            fields = ", ".join(f"offsetof({c_type}, f{i})" for i in range(len(ty)))
            offsets.append(f"static const uint32_t jf_struct_offsets_{n}[] = {{{fields}}};")
            layouts.append(
                f'    {{"{text_of(ty)}", (uint32_t)sizeof({c_type}), (uint32_t)_Alignof({c_type}), '
                f"{len(ty)}, jf_struct_offsets_{n}}},"
            )
        tables += LAYOUTS.format(
            offsets="\n".join(offsets),
            layouts="\n".join(layouts),
            layout_count=len(layouts),
        )
    header = abi.header.format(seed=SEED, structs=len(struct_sigs), variadics=len(variadic_sigs))
    definitions = "\n".join(structs.definitions())
    content = (PRELUDE.format(prefix=abi.prefix) + definitions + "\n\n" + "\n\n".join(bodies)
               + "\n\n" + tables)
    if abi.guard is None:
        return header + INCLUDES + content
    empty = EMPTY_CASES.format(prefix=abi.prefix, case_type=CASE_TYPE)
    return (header + INCLUDES + f"#if {abi.guard}\n\n" + MS_ABI + content + "\n#else\n\n" + empty
            + "\n#endif\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    root = pathlib.Path(__file__).resolve().parent.parent
    parser.add_argument("--out", type=pathlib.Path, default=root / "fixtures" / "c",
                        help="directory to write generated_structs.c and "
                             "generated_structs_win64.c into (default: fixtures/c)")
    out = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)
    for abi in ABIS:
        (out / abi.file).write_text(render(abi))


if __name__ == "__main__":
    main()
