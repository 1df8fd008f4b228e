#!/usr/bin/env python3
"""Writes fixtures/c/generated.c and fixtures/c/generated_win64.c: C
callees for random signatures, each with an oracle that makes the direct
typed call, for jitcall's generated differential suite (tests/generated.rs)
and its Win64 (Microsoft x64) twin.

For every signature (0 to 16 arguments over every scalar type, fixed seed)
generated.c holds:

- the callee, `jf_gen_NNN(...)`, which folds its arguments into a
  position-weighted checksum and returns it as its return type (a void
  callee records it for `jf_generated_take_recorded`);
- `jf_gen_NNN_oracle(const uint64_t *slots)`, which reads each argument
  from its packed slot at the declared width, calls the callee directly (so
  the C compiler's own call is the reference) and returns the packed image
  of the result;
- `jf_gen_NNN_via_receiver(const void *entry, const uint64_t *slots)`,
  which calls a receiver-entry trampoline for the signature the way a JS
  engine's JIT would: a receiver first, 8- and 16-bit integers widened to
  32 bits (with whatever their slot holds above the type's width, which the
  trampoline must drop), and returns the packed image of the result;
- `jf_gen_NNN_via_pointer(const void *f, const uint64_t *s)`, which calls
  a function pointer of the signature (a callback) with each argument read
  from its slot at the declared width, as C code would call it, and
  returns the packed image of the result (0 for void);

and a table, `jf_generated_cases`, that the fixtures crate reads.

generated_win64.c holds the same signatures in the same order under
`jf_w64_` names (`jf_w64_gen_NNN`, its `_oracle` and `_via_receiver`, the
table `jf_w64_generated_cases`, `jf_w64_generated_case_count` and
`jf_w64_generated_take_recorded`): every callee is
`__attribute__((ms_abi))`, the oracle is a host-ABI function that calls it
directly (GCC's own ms_abi call is the reference), `_via_receiver` calls the
entry through an ms_abi function pointer, and there is no `_via_pointer`
(callbacks are host-ABI only; the table's column is NULL). Everything in it
is under `#if defined(__x86_64__)`: elsewhere the file defines the table
with no rows, so that other targets link.

Run it after changing it, and commit what it writes:

    python3 scripts/generate_callees.py
    cargo test --test generated
    cargo test -p jitcall-fixtures --test win64

`--out DIR` writes both files into DIR instead of fixtures/c (the freshness
tests compare them with the committed ones).
"""

import argparse
import pathlib
import random

SEED = 0x6A69_7463_616C_6C21
COUNT = 320
MAX_ARGS = 16

# name: (C type, receiver-entry C type, kind)
TYPES = {
    "bool": ("bool", "uint32_t", "bool"),
    "i8": ("int8_t", "int32_t", "signed"),
    "u8": ("uint8_t", "uint32_t", "unsigned"),
    "i16": ("int16_t", "int32_t", "signed"),
    "u16": ("uint16_t", "uint32_t", "unsigned"),
    "i32": ("int32_t", "int32_t", "signed"),
    "u32": ("uint32_t", "uint32_t", "unsigned"),
    "i64": ("int64_t", "int64_t", "signed"),
    "u64": ("uint64_t", "uint64_t", "unsigned"),
    "f32": ("float", "float", "f32"),
    "f64": ("double", "double", "f64"),
    "pointer": ("void *", "void *", "pointer"),
    "function": ("void *", "void *", "pointer"),
}
INTEGERS = ["bool", "i8", "u8", "i16", "u16", "i32", "u32", "i64", "u64", "pointer", "function"]
FLOATS = ["f32", "f64"]
SCALARS = list(TYPES)


def signatures(rng):
    """COUNT distinct (args, ret) pairs: a quarter all-integer, a quarter
    all-float (so both register files overflow onto the stack), the rest
    any mix; arity uniform over 0..=MAX_ARGS."""
    seen = set()
    out = []
    while len(out) < COUNT:
        pool = rng.choice([INTEGERS, FLOATS, SCALARS, SCALARS])
        args = tuple(rng.choice(pool) for _ in range(rng.randint(0, MAX_ARGS)))
        ret = rng.choice(SCALARS + ["void"])
        if (args, ret) not in seen:
            seen.add((args, ret))
            out.append((args, ret))
    return out


def from_checksum(ty):
    kind = TYPES[ty][2]
    if kind == "bool":
        return "((h ^ (h >> 32)) & 1) != 0"
    if kind == "f32":
        return "f32_of(h)"
    if kind == "f64":
        return "f64_of(h)"
    if kind == "pointer":
        return "(void *)(uintptr_t)h"
    return f"({TYPES[ty][0]})h"


def from_slot(ty, slot):
    kind = TYPES[ty][2]
    if kind == "bool":
        return f"((uint8_t){slot} & 1) != 0"
    if kind == "f32":
        return f"f32_of({slot})"
    if kind == "f64":
        return f"f64_of({slot})"
    if kind == "pointer":
        return f"(void *)(uintptr_t){slot}"
    return f"({TYPES[ty][0]}){slot}"


def widened_from_slot(ty, slot):
    """A receiver-entry argument: narrow integers as the raw low 32 bits of
    the slot (garbage above the type's width included), a bool as 0 or 1."""
    if ty == "bool":
        return f"(uint32_t)((uint8_t){slot} & 1)"
    if ty in ("i8", "i16"):
        return f"(int32_t)(uint32_t){slot}"
    if ty in ("u8", "u16"):
        return f"(uint32_t){slot}"
    return from_slot(ty, slot)


def packed(ty, value):
    """The 64-bit image of a value: its packed-slot encoding, which is also
    what the checksum mixes in."""
    kind = TYPES[ty][2]
    if kind == "signed":
        return f"(uint64_t)(int64_t){value}"
    if kind in ("unsigned", "bool"):
        return f"(uint64_t){value}"
    if kind == "f32":
        return f"bits_f32({value})"
    if kind == "f64":
        return f"bits_f64({value})"
    return f"(uint64_t)(uintptr_t){value}"


def c_type(ty):
    return "void" if ty == "void" else TYPES[ty][0]


def receiver_type(ty):
    return "void" if ty == "void" else TYPES[ty][1]


def declare(ty, name):
    return f"{ty}{name}" if ty.endswith("*") else f"{ty} {name}"


class Abi:
    """What one output file's calling convention changes, and nothing else:
    the file, the prefix of every symbol, what marks a callee and the
    receiver entry's pointer type, whether callbacks get a caller, and the
    preprocessor condition the file's content needs (None: always)."""

    def __init__(self, file, prefix, header, callee, entry, via_pointer, guard):
        self.file = file
        self.prefix = prefix
        self.header = header
        self.callee = callee
        self.entry = entry
        self.via_pointer = via_pointer
        self.guard = guard


HOST = Abi(
    file="generated.c",
    prefix="jf_",
    header="""\
/* Generated by scripts/generate_callees.py (seed {seed:#x}, {count}
 * signatures): do not edit; change the generator, run it and commit both.
 * tests/generated.rs checks that this file is what the generator writes. */
""",
    callee="",
    entry="",
    via_pointer=True,
    guard=None,
)

WIN64 = Abi(
    file="generated_win64.c",
    prefix="jf_w64_",
    header="""\
/* Generated by scripts/generate_callees.py (seed {seed:#x}, {count}
 * signatures): the Win64 (Microsoft x64) twin of generated.c, the same
 * signatures in the same order under jf_w64_ names. Every callee is
 * ms_abi; each oracle is a host-ABI function that calls its callee
 * directly, so GCC's own ms_abi call is the reference; the receiver entry
 * is called through an ms_abi pointer; there are no callback callers (the
 * table's via_pointer column is NULL). Do not edit; change the generator,
 * run it and commit both. fixtures/tests/win64.rs checks that this file is
 * what the generator writes. */
""",
    callee="MS_ABI ",
    entry="MS_ABI ",
    via_pointer=False,
    guard="defined(__x86_64__)",
)

ABIS = [HOST, WIN64]


def returning(abi, ret, call):
    """The rest of an oracle's body after its declarations: make the call
    and return the packed image of its result, or of what a void callee
    recorded."""
    if ret == "void":
        return ["    (void)s;", f"    {call};", f"    return {abi.prefix}generated_take_recorded();", "}"]
    return ["    (void)s;", f"    return {packed(ret, call)};", "}"]


def case(abi, index, args, ret):
    name = f"{abi.prefix}gen_{index:03}"
    params = ", ".join(declare(c_type(t), f"a{i}") for i, t in enumerate(args)) or "void"
    lines = [f"/* ({', '.join(args)}) -> {ret} */", f"{abi.callee}{c_type(ret)} {name}({params}) {{"]
    lines.append(f"    uint64_t h = {index + 1};")
    for i, t in enumerate(args):
        lines.append(f"    h = MIX(h, {packed(t, f'a{i}')});")
    if ret == "void":
        lines.append("    recorded = h;")
    else:
        lines.append(f"    return {from_checksum(ret)};")
    lines.append("}")

    direct = f"{name}({', '.join(from_slot(t, f's[{i}]') for i, t in enumerate(args))})"
    lines.append(f"uint64_t {name}_oracle(const uint64_t *s) {{")
    lines += returning(abi, ret, direct)

    wide = ", ".join(["const void *"] + [receiver_type(t) for t in args])
    call_args = ", ".join(["RECEIVER"] + [widened_from_slot(t, f"s[{i}]") for i, t in enumerate(args)])
    lines.append(f"uint64_t {name}_via_receiver(const void *entry, const uint64_t *s) {{")
    lines.append(f"    typedef {receiver_type(ret)} ({abi.entry}*entry_type)({wide});")
    lines.append("    entry_type f = (entry_type)entry;")
    lines += returning(abi, ret, f"f({call_args})")
    via_pointer = "NULL"
    if abi.via_pointer:
        native = ", ".join(c_type(t) for t in args) or "void"
        lines.append(f"uint64_t {name}_via_pointer(const void *pointer, const uint64_t *s) {{")
        lines.append(f"    typedef {c_type(ret)} (*pointer_type)({native});")
        lines.append("    pointer_type f = (pointer_type)pointer;")
        through = f"f({', '.join(from_slot(t, f's[{i}]') for i, t in enumerate(args))})"
        if ret == "void":
            lines += ["    (void)s;", f"    {through};", "    return 0;", "}"]
        else:
            lines += ["    (void)s;", f"    return {packed(ret, through)};", "}"]
        via_pointer = f"{name}_via_pointer"
    sig = f"({', '.join(args)}) -> {ret}"
    row = (f'    {{"{name}", "{sig}", (const void *){name}, {name}_oracle, {name}_via_receiver, '
           f'{via_pointer}}},')
    return "\n".join(lines), row


INCLUDES = """
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
/* The receiver a JS engine would pass; the trampoline drops it. */
#define RECEIVER ((const void *)0x7265636569766572)

static uint64_t bits_f32(float x) {{ uint32_t b; memcpy(&b, &x, 4); return b; }}
static uint64_t bits_f64(double x) {{ uint64_t b; memcpy(&b, &x, 8); return b; }}
static float f32_of(uint64_t s) {{ uint32_t b = (uint32_t)s; float x; memcpy(&x, &b, 4); return x; }}
static double f64_of(uint64_t s) {{ double x; memcpy(&x, &s, 8); return x; }}

/* What a void callee computed on this thread, until taken. */
static _Thread_local uint64_t recorded = NOTHING_RECORDED;

uint64_t {prefix}generated_take_recorded(void) {{
    uint64_t r = recorded;
    recorded = NOTHING_RECORDED;
    return r;
}}
"""

# Opens the guarded part of a file whose callees are ms_abi.
MS_ABI = """\
/* The Microsoft x64 calling convention, which GCC and clang compile on
 * any x86_64 target. */
#define MS_ABI __attribute__((ms_abi))

"""

TABLE_TYPE = """\
struct jf_generated_case {
    const char *name;
    const char *signature;
    const void *callee;
    uint64_t (*oracle)(const uint64_t *slots);
    uint64_t (*via_receiver)(const void *entry, const uint64_t *slots);
    uint64_t (*via_pointer)(const void *pointer, const uint64_t *slots);
};
"""

TABLE = """
const struct jf_generated_case {prefix}generated_cases[] = {{
{rows}
}};
const size_t {prefix}generated_case_count = {count};
"""

# The other side of the guard: no cases, and the symbols the fixtures crate
# links against all the same.
EMPTY_TABLE = """\
/* Elsewhere (ms_abi is x86_64's alone) no cases, only the symbols the
 * fixtures crate links against. */
uint64_t {prefix}generated_take_recorded(void) {{
    return 0x6e6f7468696e6721u;
}}

{table_type}
const struct jf_generated_case {prefix}generated_cases[1];
const size_t {prefix}generated_case_count = 0;
"""


def render(abi):
    rng = random.Random(SEED)
    bodies, rows = [], []
    for index, (args, ret) in enumerate(signatures(rng)):
        body, row = case(abi, index, args, ret)
        bodies.append(body)
        rows.append(row)
    header = abi.header.format(seed=SEED, count=COUNT)
    table = TABLE_TYPE + TABLE.format(prefix=abi.prefix, rows="\n".join(rows), count=COUNT)
    content = PRELUDE.format(prefix=abi.prefix) + "\n" + "\n\n".join(bodies) + "\n\n" + table
    if abi.guard is None:
        return header + INCLUDES + content
    empty = EMPTY_TABLE.format(prefix=abi.prefix, table_type=TABLE_TYPE)
    return (header + INCLUDES + f"#if {abi.guard}\n\n" + MS_ABI + content + "\n#else\n\n" + empty
            + "\n#endif\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    root = pathlib.Path(__file__).resolve().parent.parent
    parser.add_argument("--out", type=pathlib.Path, default=root / "fixtures" / "c",
                        help="directory to write generated.c and generated_win64.c into "
                             "(default: fixtures/c)")
    out = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)
    for abi in ABIS:
        (out / abi.file).write_text(render(abi))


if __name__ == "__main__":
    main()
