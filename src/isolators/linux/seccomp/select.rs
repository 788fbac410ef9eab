//! A profile made concrete for one container on this host, as Docker does it: the
//! architectures (`archMap`'s entry for the host's), and the rules whose `includes` the
//! container and host have and whose `excludes` they do not.

use super::profile::{Arch, Condition, Profile};

/// What `includes` and `excludes` look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// The container's capabilities (its bounding set), without `CAP_`.
    pub caps: Vec<String>,
    /// The host's own architecture.
    pub arch: Arch,
    /// The running kernel, `(major, minor)`.
    pub kernel: (u64, u64),
}

impl Arch {
    /// The architecture ucr was built for (and so runs on).
    pub fn native() -> Arch {
        if cfg!(target_arch = "x86_64") {
            Arch::X86_64
        } else if cfg!(target_arch = "aarch64") {
            Arch::Aarch64
        } else if cfg!(target_arch = "x86") {
            Arch::X86
        } else if cfg!(target_arch = "arm") {
            Arch::Arm
        } else if cfg!(target_arch = "s390x") {
            Arch::S390X
        } else if cfg!(target_arch = "riscv64") {
            Arch::Riscv64
        } else if cfg!(target_arch = "powerpc64") && cfg!(target_endian = "little") {
            Arch::Ppc64Le
        } else if cfg!(target_arch = "powerpc64") {
            Arch::Ppc64
        } else if cfg!(target_arch = "loongarch64") {
            Arch::Loongarch64
        } else {
            // Not a host ucr is built for; libseccomp's native ABI is used regardless.
            Arch::X86_64
        }
    }

    /// How Docker's `includes.arches` / `excludes.arches` name a host of this
    /// architecture (Go's names, mostly).
    pub fn docker_name(self) -> &'static str {
        match self {
            Arch::X86 => "x86",
            Arch::X86_64 => "amd64",
            Arch::X32 => "x32",
            Arch::Arm => "arm",
            Arch::Aarch64 => "arm64",
            Arch::Mips => "mips",
            Arch::Mips64 => "mips64",
            Arch::Mips64N32 => "mips64n32",
            Arch::Mipsel => "mipsel",
            Arch::Mipsel64 => "mipsel64",
            Arch::Mipsel64N32 => "mipsel64n32",
            Arch::Ppc => "ppc",
            Arch::Ppc64 => "ppc64",
            Arch::Ppc64Le => "ppc64le",
            Arch::S390 => "s390",
            Arch::S390X => "s390x",
            Arch::Parisc => "parisc",
            Arch::Parisc64 => "parisc64",
            Arch::Riscv64 => "riscv64",
            Arch::Loongarch64 => "loong64",
            Arch::M68k => "m68k",
            Arch::Sh => "sh",
            Arch::Sheb => "sheb",
        }
    }
}

/// `profile` for `host`: `architectures` filled in from `archMap` (which is emptied), and
/// only the rules that apply, without their `includes`/`excludes`.
pub fn select(profile: &Profile, host: &Host) -> Profile {
    let mut out = profile.clone();
    if !profile.arch_map.is_empty() {
        out.architectures = profile
            .arch_map
            .iter()
            .find(|m| m.architecture == host.arch)
            .map(|m| {
                let mut arches = vec![m.architecture];
                arches.extend(&m.sub_architectures);
                arches
            })
            .unwrap_or_default();
        out.arch_map.clear();
    }
    out.syscalls = profile
        .syscalls
        .iter()
        .filter(|r| r.includes.as_ref().is_none_or(|c| has_all(host, c)))
        .filter(|r| r.excludes.as_ref().is_none_or(|c| !has_any(host, c)))
        .map(|r| {
            let mut r = r.clone();
            r.includes = None;
            r.excludes = None;
            r
        })
        .collect();
    out
}

fn has_cap(host: &Host, cap: &str) -> bool {
    let cap = cap.trim_start_matches("CAP_").to_ascii_uppercase();
    host.caps
        .iter()
        .any(|c| c.trim_start_matches("CAP_").eq_ignore_ascii_case(&cap))
}

fn has_arch(host: &Host, c: &Condition) -> bool {
    c.arches.iter().any(|a| a == host.arch.docker_name())
}

/// `includes`: every capability, the architecture (when any is named), the kernel.
fn has_all(host: &Host, c: &Condition) -> bool {
    c.caps.iter().all(|cap| has_cap(host, cap))
        && (c.arches.is_empty() || has_arch(host, c))
        && c.min_kernel.is_none_or(|min| host.kernel >= min)
}

/// `excludes`: any capability, the architecture, or at least the kernel.
fn has_any(host: &Host, c: &Condition) -> bool {
    c.caps.iter().any(|cap| has_cap(host, cap))
        || has_arch(host, c)
        || c.min_kernel.is_some_and(|min| host.kernel >= min)
}
