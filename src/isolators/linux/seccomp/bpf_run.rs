//! Test-only: runs a classic BPF seccomp program on a system call, as the kernel would,
//! so the compiled filters can be checked call by call without loading them.

/// `struct seccomp_data` of one call.
pub struct Call {
    pub arch: u32,
    pub nr: u32,
    pub args: [u64; 6],
}

pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
pub const AUDIT_ARCH_I386: u32 = 0x4000_0003;
pub const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;
pub const X32_BIT: u32 = 0x4000_0000;

pub const RET_ALLOW: u32 = 0x7fff_0000;
pub const RET_ERRNO: u32 = 0x0005_0000;
pub const RET_KILL_THREAD: u32 = 0;
pub const RET_KILL_PROCESS: u32 = 0x8000_0000;

pub fn errno(e: i32) -> u32 {
    RET_ERRNO | e as u32
}

impl Call {
    pub fn x86_64(nr: u32, args: &[u64]) -> Call {
        Call::on(AUDIT_ARCH_X86_64, nr, args)
    }

    pub fn on(arch: u32, nr: u32, args: &[u64]) -> Call {
        let mut a = [0u64; 6];
        a[..args.len()].copy_from_slice(args);
        Call { arch, nr, args: a }
    }

    /// The 32-bit word at `offset` of `seccomp_data` (little-endian host).
    fn word(&self, offset: u32) -> u32 {
        match offset {
            0 => self.nr,
            4 => self.arch,
            8 | 12 => 0, // instruction_pointer
            o if (16..64).contains(&o) && o % 4 == 0 => {
                let arg = self.args[((o - 16) / 8) as usize];
                if (o - 16) % 8 == 0 {
                    arg as u32
                } else {
                    (arg >> 32) as u32
                }
            }
            o => panic!("load from offset {o} outside seccomp_data"),
        }
    }
}

/// The action `program` returns for `call`. Panics on an instruction seccomp programs
/// may not contain, or on running off the end.
pub fn run(program: &[u8], call: &Call) -> u32 {
    let insns: Vec<(u16, u8, u8, u32)> = program
        .chunks_exact(8)
        .map(|b| {
            (
                u16::from_ne_bytes([b[0], b[1]]),
                b[2],
                b[3],
                u32::from_ne_bytes([b[4], b[5], b[6], b[7]]),
            )
        })
        .collect();
    let (mut a, mut x) = (0u32, 0u32);
    let mut mem = [0u32; 16];
    let mut pc = 0usize;
    loop {
        let (code, jt, jf, k) = *insns.get(pc).expect("ran off the end of the program");
        pc += 1;
        let src = if code & 0x08 != 0 { x } else { k };
        match code & 0x07 {
            // BPF_LD
            0x00 => match code {
                0x20 => a = call.word(k),
                0x00 => a = k,
                0x60 => a = mem[k as usize],
                _ => panic!("ld {code:#x}"),
            },
            // BPF_LDX
            0x01 => match code {
                0x01 => x = k,
                0x61 => x = mem[k as usize],
                _ => panic!("ldx {code:#x}"),
            },
            0x02 => mem[k as usize] = a,
            0x03 => mem[k as usize] = x,
            // BPF_ALU
            0x04 => {
                a = match code & 0xf0 {
                    0x00 => a.wrapping_add(src),
                    0x10 => a.wrapping_sub(src),
                    0x20 => a.wrapping_mul(src),
                    0x40 => a | src,
                    0x50 => a & src,
                    0x60 => a.wrapping_shl(src),
                    0x70 => a.wrapping_shr(src),
                    0x80 => a.wrapping_neg(),
                    0xa0 => a ^ src,
                    op => panic!("alu {op:#x}"),
                }
            }
            // BPF_JMP
            0x05 => {
                let taken = match code & 0xf0 {
                    0x00 => {
                        pc += k as usize;
                        continue;
                    }
                    0x10 => a == src,
                    0x20 => a > src,
                    0x30 => a >= src,
                    0x40 => a & src != 0,
                    op => panic!("jmp {op:#x}"),
                };
                pc += if taken { jt } else { jf } as usize;
            }
            // BPF_RET
            0x06 => return if code & 0x18 == 0x10 { a } else { k },
            // BPF_MISC
            _ => match code {
                0x07 => x = a,
                0x87 => a = x,
                _ => panic!("misc {code:#x}"),
            },
        }
    }
}
