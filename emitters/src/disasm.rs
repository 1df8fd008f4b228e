//! Disassembly of emitted code, for `jitcall explain` and the golden tests.
//!
//! x86_64 is decoded with iced-x86 (GNU syntax), AArch64 with yaxpeax-arm.
//! Each line is `offset: bytes  instruction`; offsets are relative to the
//! start of the code so that output does not depend on where it was placed.

use std::fmt::Write;

use crate::{Abi, Isa};

/// Disassembles `code`, placed at address `base`, one instruction a line.
///
/// Bytes that do not decode are shown as `(bad)` and decoding goes on at the
/// next instruction boundary (1 byte on x86_64, 4 on AArch64).
pub fn disassemble(abi: Abi, code: &[u8], base: u64) -> Vec<String> {
    match abi.isa() {
        Isa::X86_64 => x86_64(code, base),
        Isa::Aarch64 => aarch64(code),
    }
}

/// The instructions of `code`, placed at `base`, without offsets or bytes:
/// what tests compare.
pub fn instructions(abi: Abi, code: &[u8], base: u64) -> Vec<String> {
    disassemble(abi, code, base)
        .iter()
        .map(|line| {
            let rest = line
                .split_once(": ")
                .map_or(line.as_str(), |(_, rest)| rest);
            let text = rest
                .trim_start()
                .split_once(' ')
                .map_or("", |(_, text)| text);
            text.trim().to_string()
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn x86_64(code: &[u8], base: u64) -> Vec<String> {
    use iced_x86::{Decoder, DecoderOptions, Formatter, GasFormatter};

    let mut decoder = Decoder::with_ip(64, code, base, DecoderOptions::NONE);
    let mut formatter = GasFormatter::new();
    formatter.options_mut().set_first_operand_char_index(8);
    let mut lines = Vec::new();
    while decoder.can_decode() {
        let offset = decoder.position();
        let insn = decoder.decode();
        let bytes = &code[offset..offset + insn.len()];
        let mut text = String::new();
        if insn.is_invalid() {
            text.push_str("(bad)");
        } else {
            formatter.format(&insn, &mut text);
        }
        lines.push(format!("{offset:4x}: {:<22} {text}", hex(bytes)));
    }
    lines
}

fn aarch64(code: &[u8]) -> Vec<String> {
    use yaxpeax_arch::{Decoder, U8Reader};
    use yaxpeax_arm::armv8::a64::InstDecoder;

    let decoder = InstDecoder::default();
    code.chunks(4)
        .enumerate()
        .map(|(i, word)| {
            let mut reader = U8Reader::new(word);
            let text = match decoder.decode(&mut reader) {
                Ok(insn) if word.len() == 4 => insn.to_string(),
                _ => "(bad)".to_string(),
            };
            format!("{:4x}: {:<8} {text}", i * 4, hex(word))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_known_x86_64_bytes() {
        // push rbx; mov rbx, rsi; ret
        let lines = disassemble(Abi::SysV64, &[0x53, 0x48, 0x89, 0xf3, 0xc3], 0x1000);
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(lines[0].ends_with("push    %rbx"), "{lines:?}");
        assert!(lines[1].ends_with("mov     %rsi,%rbx"), "{lines:?}");
        assert!(lines[2].ends_with("ret"), "{lines:?}");
    }

    #[test]
    fn decodes_known_aarch64_words() {
        // ret; br x16
        let lines = disassemble(
            Abi::Aapcs64,
            &[0xc0, 0x03, 0x5f, 0xd6, 0x00, 0x02, 0x1f, 0xd6],
            0,
        );
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].ends_with("ret"), "{lines:?}");
        assert!(lines[1].ends_with("br x16"), "{lines:?}");
    }
}
