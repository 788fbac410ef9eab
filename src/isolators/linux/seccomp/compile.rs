//! A selected profile compiled to the classic BPF program the launcher loads.
//!
//! With libseccomp (through the `libseccomp` crate) rather than the pure-Rust
//! `seccompiler`: seccompiler gives a whole filter one match action, and Docker profiles,
//! the default one first, mix several (ALLOW, ERRNO(EPERM), ERRNO(ENOSYS) for `clone3`,
//! a custom `errnoRet`…). libseccomp also knows every ABI's system call numbers by name,
//! so one program covers x86_64 with its x86 and x32 programs, as Docker's `archMap`
//! asks, and it is what runc compiles the same profiles with, so rules mean the same.
//!
//! runc's readings of a profile are kept, so a profile behaves under ucr as it does
//! under containerd: names libseccomp does not know are skipped (a profile naming newer
//! system calls still loads on an older library); a rule whose action is the default
//! one is dropped (libseccomp refuses it); several conditions on one argument become one
//! rule each (libseccomp cannot and them on one argument), while conditions on distinct
//! arguments stay together in one rule.
//!
//! And runc's ENOSYS stub: when the default refuses, a system call newer than any the
//! profile names (on the host's own ABI) gets ENOSYS, not the default's EPERM, so that a
//! libc probing a call the profile could not know about (`fchmodat2`, `clone3`-style)
//! falls back to the old one instead of failing.

use std::io::{Read, Seek};

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};

use super::profile::{Action, Arch, Arg, Flag, Op, Profile};
use crate::sys::seccomp::{self as sys, INSTRUCTION_SIZE, MAX_INSTRUCTIONS};

/// What the launcher gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compiled {
    /// `struct sock_filter`s, host byte order.
    pub program: Vec<u8>,
    /// `SECCOMP_FILTER_FLAG_*`.
    pub flags: u32,
    /// Names libseccomp does not know, skipped.
    pub unknown: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    #[error("libseccomp refused {what}: {source}")]
    Library {
        what: String,
        source: libseccomp::error::SeccompError,
    },
    #[error("writing out the compiled filter: {0}")]
    Export(#[source] std::io::Error),
    #[error(
        "it compiles to {instructions} BPF instructions; the kernel takes at most \
         {MAX_INSTRUCTIONS}"
    )]
    TooLong { instructions: usize },
}

fn library(
    what: impl Into<String>,
) -> impl FnOnce(libseccomp::error::SeccompError) -> CompileError {
    let what = what.into();
    move |source| CompileError::Library { what, source }
}

/// Compiles `p`, already selected for this host (`select`): no `archMap`, no
/// `includes`/`excludes` left, and checked (`Profile::check`).
pub fn compile(p: &Profile) -> Result<Compiled, CompileError> {
    let default = p.default_action.unwrap_or(Action::Errno);
    let default_action = action(default, p.default_errno_ret);
    let mut ctx = ScmpFilterContext::new(default_action).map_err(library("the default action"))?;
    for arch in &p.architectures {
        ctx.add_arch(scmp_arch(*arch))
            .map_err(library(format!("architecture {arch:?}")))?;
    }
    let mut unknown = Vec::new();
    // The highest system call number of the host's ABI the profile names (ENOSYS stub).
    let mut highest: Option<i32> = None;
    for (i, rule) in p.syscalls.iter().enumerate() {
        let Some(rule_action) = rule.action else {
            continue;
        };
        let act = action(rule_action, rule.errno_ret);
        for name in rule.syscalls() {
            let Ok(syscall) = ScmpSyscall::from_name(name) else {
                unknown.push(name.to_string());
                continue;
            };
            let nr = syscall.as_raw_syscall();
            if nr >= 0 {
                highest = Some(highest.map_or(nr, |h| h.max(nr)));
            }
            if act == default_action {
                continue;
            }
            let what = format!("syscalls[{i}] ({name})");
            for conditions in condition_sets(&rule.args) {
                if conditions.is_empty() {
                    ctx.add_rule(act, syscall).map_err(library(&what))?;
                } else {
                    ctx.add_rule_conditional(act, syscall, &conditions)
                        .map_err(library(&what))?;
                }
            }
        }
    }
    let scratch = sys::scratch_file("ucr-seccomp").map_err(CompileError::Export)?;
    ctx.export_bpf(&scratch)
        .map_err(library("writing the program"))?;
    let mut program = Vec::new();
    let mut file = scratch;
    file.rewind().map_err(CompileError::Export)?;
    file.read_to_end(&mut program)
        .map_err(CompileError::Export)?;
    if refuses(default) {
        if let (Some(highest), Some(token)) = (highest, audit_arch(Arch::native())) {
            program = enosys_stub(token, highest as u32, &program);
        }
    }
    let instructions = program.len() / INSTRUCTION_SIZE;
    if instructions > MAX_INSTRUCTIONS {
        return Err(CompileError::TooLong { instructions });
    }
    Ok(Compiled {
        program,
        flags: flags(&p.flags),
        unknown,
    })
}

/// Whether the default action keeps a call from running (the ENOSYS stub would then only
/// soften the answer for calls the profile cannot have meant).
fn refuses(default: Action) -> bool {
    !matches!(default, Action::Allow | Action::Log)
}

/// The rules one profile rule becomes: arguments named once go together in one rule;
/// each condition on an argument named more than once is a rule of its own.
fn condition_sets(args: &[Arg]) -> Vec<Vec<ScmpArgCompare>> {
    if args.is_empty() {
        return vec![Vec::new()];
    }
    let count = |index| args.iter().filter(|a| a.index == index).count();
    let mut together = Vec::new();
    let mut alone = Vec::new();
    for a in args {
        let c = compare(a);
        if count(a.index) > 1 {
            alone.push(vec![c]);
        } else {
            together.push(c);
        }
    }
    if !together.is_empty() {
        alone.push(together);
    }
    alone
}

fn compare(a: &Arg) -> ScmpArgCompare {
    let (op, datum) = match a.op {
        Op::NotEqual => (ScmpCompareOp::NotEqual, a.value),
        Op::Less => (ScmpCompareOp::Less, a.value),
        Op::LessOrEqual => (ScmpCompareOp::LessOrEqual, a.value),
        Op::Equal => (ScmpCompareOp::Equal, a.value),
        Op::GreaterOrEqual => (ScmpCompareOp::GreaterEqual, a.value),
        Op::Greater => (ScmpCompareOp::Greater, a.value),
        // Docker's `value` is the mask, `valueTwo` what the masked argument must be.
        Op::MaskedEqual => (ScmpCompareOp::MaskedEqual(a.value), a.value_two),
    };
    ScmpArgCompare::new(a.index, op, datum)
}

/// The profile's action; an errno defaults to EPERM (as runc does).
fn action(a: Action, errno: Option<u32>) -> ScmpAction {
    let errno = errno.unwrap_or(libc::EPERM as u32);
    match a {
        Action::Kill | Action::KillThread => ScmpAction::KillThread,
        Action::KillProcess => ScmpAction::KillProcess,
        Action::Trap => ScmpAction::Trap,
        Action::Errno => ScmpAction::Errno(errno as i32),
        Action::Trace => ScmpAction::Trace(errno as u16),
        Action::Allow => ScmpAction::Allow,
        Action::Log => ScmpAction::Log,
        // Refused by `Profile::check`.
        Action::Notify => ScmpAction::Notify,
    }
}

fn flags(list: &[Flag]) -> u32 {
    list.iter().fold(0, |bits, f| {
        bits | match f {
            Flag::Tsync => sys::FLAG_TSYNC,
            Flag::Log => sys::FLAG_LOG,
            Flag::SpecAllow => sys::FLAG_SPEC_ALLOW,
            // Refused by `Profile::check`.
            Flag::WaitKillableRecv => 0,
        }
    })
}

fn scmp_arch(a: Arch) -> ScmpArch {
    match a {
        Arch::X86 => ScmpArch::X86,
        Arch::X86_64 => ScmpArch::X8664,
        Arch::X32 => ScmpArch::X32,
        Arch::Arm => ScmpArch::Arm,
        Arch::Aarch64 => ScmpArch::Aarch64,
        Arch::Mips => ScmpArch::Mips,
        Arch::Mips64 => ScmpArch::Mips64,
        Arch::Mips64N32 => ScmpArch::Mips64N32,
        Arch::Mipsel => ScmpArch::Mipsel,
        Arch::Mipsel64 => ScmpArch::Mipsel64,
        Arch::Mipsel64N32 => ScmpArch::Mipsel64N32,
        Arch::Ppc => ScmpArch::Ppc,
        Arch::Ppc64 => ScmpArch::Ppc64,
        Arch::Ppc64Le => ScmpArch::Ppc64Le,
        Arch::S390 => ScmpArch::S390,
        Arch::S390X => ScmpArch::S390X,
        Arch::Parisc => ScmpArch::Parisc,
        Arch::Parisc64 => ScmpArch::Parisc64,
        Arch::Riscv64 => ScmpArch::Riscv64,
        Arch::Loongarch64 => ScmpArch::Loongarch64,
        Arch::M68k => ScmpArch::M68k,
        Arch::Sh => ScmpArch::Sh,
        Arch::Sheb => ScmpArch::Sheb,
    }
}

/// The `AUDIT_ARCH_*` value the kernel puts in `seccomp_data.arch`, for the ABIs the
/// ENOSYS stub covers.
pub fn audit_arch(a: Arch) -> Option<u32> {
    match a {
        Arch::X86_64 => Some(0xc000_003e),
        Arch::Aarch64 => Some(0xc000_00b7),
        _ => None,
    }
}

/// x32 calls come with the x86_64 token and this bit set in their number.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

// Classic BPF opcodes (linux/filter.h, linux/bpf_common.h).
const LD_W_ABS: u16 = 0x20;
const JEQ_K: u16 = 0x15;
const JGT_K: u16 = 0x25;
const JSET_K: u16 = 0x45;
const RET_K: u16 = 0x06;
/// `SECCOMP_RET_ERRNO | ENOSYS`.
const RET_ENOSYS: u32 = 0x0005_0000 | libc::ENOSYS as u32;
/// Offsets into `struct seccomp_data`.
const NR: u32 = 0;
const ARCH: u32 = 4;

fn insn(code: u16, jt: u8, jf: u8, k: u32) -> [u8; 8] {
    let mut b = [0u8; 8];
    b[..2].copy_from_slice(&code.to_ne_bytes());
    b[2] = jt;
    b[3] = jf;
    b[4..].copy_from_slice(&k.to_ne_bytes());
    b
}

/// `program` behind a prologue that answers ENOSYS to calls of the host's ABI (`arch`,
/// not x32) numbered above `highest`; every other call goes on to `program` as before.
/// Jumps are relative and forward, so the program's own are unchanged.
pub fn enosys_stub(arch: u32, highest: u32, program: &[u8]) -> Vec<u8> {
    // Each jump's offset counts the instructions it skips to reach `program`.
    let prologue = [
        insn(LD_W_ABS, 0, 0, ARCH),
        insn(JEQ_K, 0, 4, arch),
        insn(LD_W_ABS, 0, 0, NR),
        insn(JSET_K, 2, 0, X32_SYSCALL_BIT),
        insn(JGT_K, 0, 1, highest),
        insn(RET_K, 0, 0, RET_ENOSYS),
    ];
    let mut out = prologue.concat();
    out.extend_from_slice(program);
    out
}
