//! The few eBPF instructions the device program needs, typed, with their encoding.
//!
//! An instruction is 8 bytes (Documentation/bpf/standardization/instruction-set.rst):
//! the opcode, a byte holding the destination register (low nibble on little-endian
//! hosts) and the source register, a signed 16-bit offset and a signed 32-bit immediate,
//! in the host's byte order. The opcode is a class (low 3 bits) or'ed with an operation
//! and a source (`K`, the immediate, or `X`, the source register).
//!
//! The program only works on 32-bit values (the context's fields are `u32`), so it uses
//! the 32-bit ALU class (which clears the upper half of the destination) and the `JMP32`
//! class for comparisons (Linux 5.1+): a 64-bit compare would sign-extend an immediate
//! of 2^31 or more and never match it.

/// A register: r0 holds the return value, r1 the context on entry, r2–r5 are free
/// scratch registers in a program that calls no helper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reg(pub u8);

pub const R0: Reg = Reg(0);
pub const R1: Reg = Reg(1);
pub const R2: Reg = Reg(2);
pub const R3: Reg = Reg(3);
pub const R4: Reg = Reg(4);
pub const R5: Reg = Reg(5);

// Instruction classes.
const CLASS_LDX: u8 = 0x01;
const CLASS_ALU: u8 = 0x04;
const CLASS_JMP: u8 = 0x05;
const CLASS_JMP32: u8 = 0x06;
// Load modifiers: MEM (base register plus offset), W (4 bytes).
const MODE_MEM: u8 = 0x60;
const SIZE_W: u8 = 0x00;
// Operand source: K (the immediate) or X (the source register).
const SRC_K: u8 = 0x00;
const SRC_X: u8 = 0x08;
// ALU operations.
const OP_AND: u8 = 0x50;
const OP_RSH: u8 = 0x70;
const OP_MOV: u8 = 0xb0;
// Jump operations.
const OP_JEQ: u8 = 0x10;
const OP_JNE: u8 = 0x50;
const OP_EXIT: u8 = 0x90;

/// One instruction. Jump offsets count instructions, from the one after the jump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Insn {
    /// `dst = *(u32 *)(src + off)`: LDX | MEM | W (0x61).
    LoadWord { dst: Reg, src: Reg, off: i16 },
    /// `dst = (u32)imm`: ALU | MOV | K (0xb4).
    Mov32Imm { dst: Reg, imm: i32 },
    /// `dst = (u32)src`: ALU | MOV | X (0xbc).
    Mov32Reg { dst: Reg, src: Reg },
    /// `dst = (u32)dst & imm`: ALU | AND | K (0x54).
    And32Imm { dst: Reg, imm: i32 },
    /// `dst = (u32)dst >> imm`, logical: ALU | RSH | K (0x74).
    Rsh32Imm { dst: Reg, imm: i32 },
    /// `if (u32)dst == (u32)imm goto +off`: JMP32 | JEQ | K (0x16).
    JeqImm { dst: Reg, imm: i32, off: i16 },
    /// `if (u32)dst != (u32)imm goto +off`: JMP32 | JNE | K (0x56).
    JneImm { dst: Reg, imm: i32, off: i16 },
    /// `return r0`: JMP | EXIT (0x95).
    Exit,
}

impl Insn {
    /// The 8 bytes the kernel reads (a `struct bpf_insn`).
    pub fn to_bytes(self) -> [u8; 8] {
        let (code, dst, src, off, imm) = match self {
            Insn::LoadWord { dst, src, off } => (CLASS_LDX | MODE_MEM | SIZE_W, dst, src, off, 0),
            Insn::Mov32Imm { dst, imm } => (CLASS_ALU | OP_MOV | SRC_K, dst, R0, 0, imm),
            Insn::Mov32Reg { dst, src } => (CLASS_ALU | OP_MOV | SRC_X, dst, src, 0, 0),
            Insn::And32Imm { dst, imm } => (CLASS_ALU | OP_AND | SRC_K, dst, R0, 0, imm),
            Insn::Rsh32Imm { dst, imm } => (CLASS_ALU | OP_RSH | SRC_K, dst, R0, 0, imm),
            Insn::JeqImm { dst, imm, off } => (CLASS_JMP32 | OP_JEQ | SRC_K, dst, R0, off, imm),
            Insn::JneImm { dst, imm, off } => (CLASS_JMP32 | OP_JNE | SRC_K, dst, R0, off, imm),
            Insn::Exit => (CLASS_JMP | OP_EXIT, R0, R0, 0, 0),
        };
        // The two registers are C bitfields (`dst_reg:4, src_reg:4`), whose order follows
        // the host's byte order.
        let regs = if cfg!(target_endian = "little") {
            (src.0 << 4) | (dst.0 & 0x0f)
        } else {
            (dst.0 << 4) | (src.0 & 0x0f)
        };
        let [o0, o1] = off.to_ne_bytes();
        let [i0, i1, i2, i3] = imm.to_ne_bytes();
        [code, regs, o0, o1, i0, i1, i2, i3]
    }

    /// The instruction as one `u64` with the same bytes in memory, as `sys::bpf` takes a
    /// program.
    pub fn to_u64(self) -> u64 {
        u64::from_ne_bytes(self.to_bytes())
    }
}

/// A program as the kernel (and an interpreter) reads it.
pub fn to_bytes(program: &[Insn]) -> Vec<u8> {
    program.iter().flat_map(|i| i.to_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected bytes worked out by hand from the instruction-set document, for a
    // little-endian host.
    #[cfg(target_endian = "little")]
    #[test]
    fn encodes_each_opcode() {
        let cases: &[(Insn, [u8; 8])] = &[
            (
                Insn::LoadWord {
                    dst: R4,
                    src: R1,
                    off: 4,
                },
                [0x61, 0x14, 0x04, 0, 0, 0, 0, 0],
            ),
            (
                Insn::Mov32Imm { dst: R0, imm: 1 },
                [0xb4, 0x00, 0, 0, 0x01, 0, 0, 0],
            ),
            (
                Insn::Mov32Reg { dst: R1, src: R3 },
                [0xbc, 0x31, 0, 0, 0, 0, 0, 0],
            ),
            (
                Insn::And32Imm {
                    dst: R2,
                    imm: 0xffff,
                },
                [0x54, 0x02, 0, 0, 0xff, 0xff, 0, 0],
            ),
            (
                Insn::Rsh32Imm { dst: R3, imm: 16 },
                [0x74, 0x03, 0, 0, 0x10, 0, 0, 0],
            ),
            (
                Insn::JneImm {
                    dst: R5,
                    imm: 200,
                    off: 3,
                },
                [0x56, 0x05, 0x03, 0, 0xc8, 0, 0, 0],
            ),
            (
                Insn::JeqImm {
                    dst: R1,
                    imm: 0,
                    off: -2,
                },
                [0x16, 0x01, 0xfe, 0xff, 0, 0, 0, 0],
            ),
            (Insn::Exit, [0x95, 0, 0, 0, 0, 0, 0, 0]),
        ];
        for (insn, bytes) in cases {
            assert_eq!(&insn.to_bytes(), bytes, "{insn:?}");
            assert_eq!(insn.to_u64().to_ne_bytes(), *bytes, "{insn:?}");
        }
    }

    #[test]
    fn a_program_is_its_instructions_back_to_back() {
        let program = [Insn::Mov32Imm { dst: R0, imm: 0 }, Insn::Exit];
        let bytes = to_bytes(&program);
        assert_eq!(bytes.len(), 16);
        assert_eq!(bytes[8..], Insn::Exit.to_bytes());
    }
}
