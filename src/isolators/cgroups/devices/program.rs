//! The cgroup v2 device policy: a `BPF_PROG_TYPE_CGROUP_DEVICE` program generated from a
//! rule list, deciding exactly as the same list does in a v1 devices cgroup.
//!
//! cgroup v2 has no devices files. On every device open or mknod by a process in the
//! cgroup (or below it), the kernel runs the programs attached to it with a
//! `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }` where
//! `access_type` is `access << 16 | type` (type block 1, char 2; access a set of mknod 1,
//! read 2, write 4); the program returns 1 to allow and 0 to deny (EPERM).
//!
//! # How a list becomes a program
//! As runc does (its devicefilter runs the list through an emulator of v1 first), the list
//! is first reduced to what v1 would be left with ([`Effective`]): a default and
//! exceptions that all have the opposite action. Order no longer matters after that (no
//! exception overrides another), so the program is one block per exception, in the
//! kernel's order, then the default:
//!
//! ```text
//!     w2 = ctx->access_type; w3 = w2 >> 16; w2 &= 0xffff     type, access
//!     w4 = ctx->major; w5 = ctx->minor
//!   per exception:
//!     if w2 != type goto next                               (kind)
//!     if w4 != major goto next                              (unless *)
//!     if w5 != minor goto next                              (unless *)
//!     w1 = w3 & ~exception.access; if w1 != 0 goto next     (deny by default)
//!     w1 = w3 & exception.access;  if w1 == 0 goto next     (allow by default)
//!     return !default
//!   next: ...
//!     return default
//! ```
//!
//! The access test is the kernel's v1 test for each mode: with deny by default one
//! exception must hold *all* the access asked for; with allow by default, sharing *any*
//! access with a deny exception denies. (runc uses the first test in both modes, so a
//! deny-listed `w` does not stop an `rw` open under runc's v2 as it does under v1; ucr
//! follows the kernel.)

use super::effective::{Effective, PolicyError};
use super::insn::{Insn, R0, R1, R2, R3, R4, R5};
use super::rules::{DeviceKind, DeviceRule};

/// Offsets of the fields of `struct bpf_cgroup_dev_ctx`.
const CTX_ACCESS_TYPE: i16 = 0;
const CTX_MAJOR: i16 = 4;
const CTX_MINOR: i16 = 8;
/// `BPF_DEVCG_DEV_BLOCK`, `BPF_DEVCG_DEV_CHAR`.
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;

/// The program for `rules`, applied in order to a cgroup that denies everything.
pub fn program(rules: &[DeviceRule]) -> Result<Vec<Insn>, PolicyError> {
    Ok(compile(&Effective::of(rules)?))
}

/// The program deciding as `state` does.
pub fn compile(state: &Effective) -> Vec<Insn> {
    let mut program = vec![
        Insn::LoadWord {
            dst: R2,
            src: R1,
            off: CTX_ACCESS_TYPE,
        },
        Insn::Mov32Reg { dst: R3, src: R2 },
        Insn::Rsh32Imm { dst: R3, imm: 16 },
        Insn::And32Imm {
            dst: R2,
            imm: 0xffff,
        },
        Insn::LoadWord {
            dst: R4,
            src: R1,
            off: CTX_MAJOR,
        },
        Insn::LoadWord {
            dst: R5,
            src: R1,
            off: CTX_MINOR,
        },
    ];
    for exception in &state.exceptions {
        program.extend(block(exception, state.default_allow));
    }
    program.extend(verdict(state.default_allow));
    program
}

/// Returns `!default_allow` when the request matches `exception`, else falls through to
/// the next block.
fn block(exception: &DeviceRule, default_allow: bool) -> Vec<Insn> {
    let skip_unless = |dst, imm| Insn::JneImm { dst, imm, off: 0 };
    let mut insns = Vec::new();
    match exception.kind {
        DeviceKind::Block => insns.push(skip_unless(R2, DEV_BLOCK)),
        DeviceKind::Char => insns.push(skip_unless(R2, DEV_CHAR)),
        // `Effective::of` never keeps one (an `a` rule resets instead); a hand-made state
        // that has one means every device, as `Effective::permits` reads it.
        DeviceKind::All => {}
    }
    // The numbers are u32; the 32-bit compare reads the immediate's bits as one.
    if let Some(major) = exception.major {
        insns.push(skip_unless(R4, major as i32));
    }
    if let Some(minor) = exception.minor {
        insns.push(skip_unless(R5, minor as i32));
    }
    let access = i32::from(exception.access.bits());
    insns.push(Insn::Mov32Reg { dst: R1, src: R3 });
    if default_allow {
        insns.push(Insn::And32Imm {
            dst: R1,
            imm: access,
        });
        insns.push(Insn::JeqImm {
            dst: R1,
            imm: 0,
            off: 0,
        });
    } else {
        // Any access bit outside the exception's, including ones the kernel may define
        // later, means it does not cover the request.
        insns.push(Insn::And32Imm {
            dst: R1,
            imm: 0xffff & !access,
        });
        insns.push(skip_unless(R1, 0));
    }
    insns.extend(verdict(!default_allow));
    // Every jump in the block goes to the instruction after it.
    let len = insns.len();
    for (i, insn) in insns.iter_mut().enumerate() {
        if let Insn::JneImm { off, .. } | Insn::JeqImm { off, .. } = insn {
            *off = i16::try_from(len - i - 1).unwrap_or(i16::MAX);
        }
    }
    insns
}

fn verdict(allow: bool) -> [Insn; 2] {
    [
        Insn::Mov32Imm {
            dst: R0,
            imm: i32::from(allow),
        },
        Insn::Exit,
    ]
}

#[cfg(test)]
#[path = "program_tests.rs"]
mod tests;
