//! Seccomp profiles in the JSON that Docker, containerd and kubelet's `Localhost`
//! profiles use: the OCI runtime spec's `linux.seccomp` (`defaultAction`,
//! `defaultErrnoRet`, `architectures`, `flags`, `syscalls[]` with `names`, `action`,
//! `errnoRet`, `args[]`) plus Docker's additions (`archMap`, a rule's single `name`, its
//! `comment`, and `includes`/`excludes` by capability, architecture and kernel version).
//!
//! Parsing takes what Docker takes: unknown fields are ignored, `null` lists are empty.
//! [`Profile::check`] then refuses, naming the rule, what Docker or runc would refuse
//! later or handle in a way ucr does not (a notify action needs a seccomp agent).

use serde::{Deserialize, Deserializer, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    /// What every system call no rule matches gets. Required.
    #[serde(default)]
    pub default_action: Option<Action>,
    /// The errno of an `SCMP_ACT_ERRNO` (or `SCMP_ACT_TRACE`) default; EPERM when unset.
    #[serde(default)]
    pub default_errno_ret: Option<u32>,
    /// The ABIs the filter knows besides the host's own; others are killed.
    #[serde(default, deserialize_with = "null_is_empty")]
    pub architectures: Vec<Arch>,
    /// Docker: the architectures to use, by the host's: one entry is picked whose
    /// `architecture` is the host's, and it with its `subArchitectures` are used.
    #[serde(default, deserialize_with = "null_is_empty")]
    pub arch_map: Vec<ArchMap>,
    #[serde(default, deserialize_with = "null_is_empty")]
    pub flags: Vec<Flag>,
    /// A seccomp agent's socket (for `SCMP_ACT_NOTIFY`): not supported.
    #[serde(default)]
    pub listener_path: String,
    #[serde(default, deserialize_with = "null_is_empty")]
    pub syscalls: Vec<Rule>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArchMap {
    pub architecture: Arch,
    #[serde(default, deserialize_with = "null_is_empty")]
    pub sub_architectures: Vec<Arch>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    #[serde(default, deserialize_with = "null_is_empty")]
    pub names: Vec<String>,
    /// Docker's older spelling of a one-name rule.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Required.
    #[serde(default)]
    pub action: Option<Action>,
    /// The errno of `SCMP_ACT_ERRNO` (the trace message of `SCMP_ACT_TRACE`); EPERM when
    /// unset.
    #[serde(default)]
    pub errno_ret: Option<u32>,
    /// Conditions on the arguments, all of which must hold (but see `compile` for
    /// several on one argument).
    #[serde(default, deserialize_with = "null_is_empty")]
    pub args: Vec<Arg>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub comment: String,
    /// The rule applies only on a host that has all of this.
    #[serde(default)]
    pub includes: Option<Condition>,
    /// The rule does not apply on a host that has any of this.
    #[serde(default)]
    pub excludes: Option<Condition>,
}

impl Rule {
    /// The system calls it names, whichever way it spells them.
    pub fn syscalls(&self) -> Vec<&str> {
        if self.name.is_empty() {
            self.names.iter().map(String::as_str).collect()
        } else {
            vec![self.name.as_str()]
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Arg {
    /// 0 to 5.
    pub index: u32,
    pub value: u64,
    /// For `SCMP_CMP_MASKED_EQ`: what the argument masked with `value` must equal.
    #[serde(default)]
    pub value_two: u64,
    pub op: Op,
}

/// `includes` / `excludes`: capabilities (`CAP_SYS_ADMIN`), the host's architecture as
/// Docker names it (`amd64`, `arm64`, `x86`, `s390x`…), a kernel version (`"4.8"`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(default, deserialize_with = "null_is_empty")]
    pub caps: Vec<String>,
    #[serde(default, deserialize_with = "null_is_empty")]
    pub arches: Vec<String>,
    #[serde(default, deserialize_with = "kernel_version")]
    pub min_kernel: Option<(u64, u64)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    /// Kills the thread (the kernel's oldest action; runc's `SCMP_ACT_KILL`).
    #[serde(rename = "SCMP_ACT_KILL")]
    Kill,
    #[serde(rename = "SCMP_ACT_KILL_PROCESS")]
    KillProcess,
    #[serde(rename = "SCMP_ACT_KILL_THREAD")]
    KillThread,
    #[serde(rename = "SCMP_ACT_TRAP")]
    Trap,
    #[serde(rename = "SCMP_ACT_ERRNO")]
    Errno,
    #[serde(rename = "SCMP_ACT_TRACE")]
    Trace,
    #[serde(rename = "SCMP_ACT_ALLOW")]
    Allow,
    #[serde(rename = "SCMP_ACT_LOG")]
    Log,
    /// Hands the call to a seccomp agent; not supported (no agent, no listener).
    #[serde(rename = "SCMP_ACT_NOTIFY")]
    Notify,
}

impl Action {
    /// Whether `errnoRet` means anything with it.
    fn takes_errno(self) -> bool {
        matches!(self, Action::Errno | Action::Trace)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    #[serde(rename = "SCMP_CMP_NE")]
    NotEqual,
    #[serde(rename = "SCMP_CMP_LT")]
    Less,
    #[serde(rename = "SCMP_CMP_LE")]
    LessOrEqual,
    #[serde(rename = "SCMP_CMP_EQ")]
    Equal,
    #[serde(rename = "SCMP_CMP_GE")]
    GreaterOrEqual,
    #[serde(rename = "SCMP_CMP_GT")]
    Greater,
    #[serde(rename = "SCMP_CMP_MASKED_EQ")]
    MaskedEqual,
}

/// The ABIs libseccomp knows, as the OCI spec spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Arch {
    #[serde(rename = "SCMP_ARCH_X86")]
    X86,
    #[serde(rename = "SCMP_ARCH_X86_64")]
    X86_64,
    #[serde(rename = "SCMP_ARCH_X32")]
    X32,
    #[serde(rename = "SCMP_ARCH_ARM")]
    Arm,
    #[serde(rename = "SCMP_ARCH_AARCH64")]
    Aarch64,
    #[serde(rename = "SCMP_ARCH_MIPS")]
    Mips,
    #[serde(rename = "SCMP_ARCH_MIPS64")]
    Mips64,
    #[serde(rename = "SCMP_ARCH_MIPS64N32")]
    Mips64N32,
    #[serde(rename = "SCMP_ARCH_MIPSEL")]
    Mipsel,
    #[serde(rename = "SCMP_ARCH_MIPSEL64")]
    Mipsel64,
    #[serde(rename = "SCMP_ARCH_MIPSEL64N32")]
    Mipsel64N32,
    #[serde(rename = "SCMP_ARCH_PPC")]
    Ppc,
    #[serde(rename = "SCMP_ARCH_PPC64")]
    Ppc64,
    #[serde(rename = "SCMP_ARCH_PPC64LE")]
    Ppc64Le,
    #[serde(rename = "SCMP_ARCH_S390")]
    S390,
    #[serde(rename = "SCMP_ARCH_S390X")]
    S390X,
    #[serde(rename = "SCMP_ARCH_PARISC")]
    Parisc,
    #[serde(rename = "SCMP_ARCH_PARISC64")]
    Parisc64,
    #[serde(rename = "SCMP_ARCH_RISCV64")]
    Riscv64,
    #[serde(rename = "SCMP_ARCH_LOONGARCH64")]
    Loongarch64,
    #[serde(rename = "SCMP_ARCH_M68K")]
    M68k,
    #[serde(rename = "SCMP_ARCH_SH")]
    Sh,
    #[serde(rename = "SCMP_ARCH_SHEB")]
    Sheb,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Flag {
    /// Synchronises the filter over every thread; the launcher's process has one only.
    #[serde(rename = "SECCOMP_FILTER_FLAG_TSYNC")]
    Tsync,
    /// Logs every action but `SCMP_ACT_ALLOW`.
    #[serde(rename = "SECCOMP_FILTER_FLAG_LOG")]
    Log,
    /// Leaves speculative store bypass mitigation off.
    #[serde(rename = "SECCOMP_FILTER_FLAG_SPEC_ALLOW")]
    SpecAllow,
    /// Only meaningful with a notify listener: not supported.
    #[serde(rename = "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV")]
    WaitKillableRecv,
}

/// What is wrong with a profile that parsed: where, and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{at}: {problem}")]
pub struct ProfileError {
    /// `defaultAction`, `syscalls[3]`, `syscalls[3].args[1]`…
    pub at: String,
    pub problem: String,
}

fn problem(at: impl Into<String>, problem: impl Into<String>) -> ProfileError {
    ProfileError {
        at: at.into(),
        problem: problem.into(),
    }
}

impl Profile {
    /// Parses a profile's JSON (line and column in the error).
    pub fn parse(json: &[u8]) -> Result<Profile, serde_json::Error> {
        serde_json::from_slice(json)
    }

    /// Refuses what cannot be loaded as written, naming the first such place.
    pub fn check(&self) -> Result<(), ProfileError> {
        let Some(default) = self.default_action else {
            return Err(problem("defaultAction", "is missing"));
        };
        if default == Action::Notify {
            return Err(problem("defaultAction", NOTIFY));
        }
        if self.default_errno_ret.is_some() && !default.takes_errno() {
            return Err(problem(
                "defaultErrnoRet",
                "is only meaningful with SCMP_ACT_ERRNO or SCMP_ACT_TRACE",
            ));
        }
        if !self.architectures.is_empty() && !self.arch_map.is_empty() {
            return Err(problem(
                "architectures",
                "and archMap are both given: use one or the other",
            ));
        }
        if !self.listener_path.is_empty() {
            return Err(problem("listenerPath", NOTIFY));
        }
        if self.flags.contains(&Flag::WaitKillableRecv) {
            return Err(problem("flags", NOTIFY));
        }
        for (i, rule) in self.syscalls.iter().enumerate() {
            check_rule(rule, &format!("syscalls[{i}]"))?;
        }
        Ok(())
    }
}

const NOTIFY: &str = "a seccomp agent (SCMP_ACT_NOTIFY, listenerPath) is not supported";

fn check_rule(rule: &Rule, at: &str) -> Result<(), ProfileError> {
    if !rule.name.is_empty() && !rule.names.is_empty() {
        return Err(problem(at, "has both name and names: use one or the other"));
    }
    let names = rule.syscalls();
    if names.is_empty() {
        return Err(problem(at, "names no system call"));
    }
    if let Some(i) = names.iter().position(|n| n.trim().is_empty()) {
        return Err(problem(format!("{at}.names[{i}]"), "is empty"));
    }
    let Some(action) = rule.action else {
        return Err(problem(format!("{at}.action"), "is missing"));
    };
    if action == Action::Notify {
        return Err(problem(format!("{at}.action"), NOTIFY));
    }
    if rule.errno_ret.is_some() && !action.takes_errno() {
        return Err(problem(
            format!("{at}.errnoRet"),
            "is only meaningful with SCMP_ACT_ERRNO or SCMP_ACT_TRACE",
        ));
    }
    for (j, arg) in rule.args.iter().enumerate() {
        if arg.index > 5 {
            return Err(problem(
                format!("{at}.args[{j}].index"),
                format!(
                    "{} is not an argument: system calls take 6, 0 to 5",
                    arg.index
                ),
            ));
        }
    }
    Ok(())
}

/// `null` where a list is expected means an empty list, as in Go.
fn null_is_empty<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// `"<major>.<minor>"`; empty means none.
fn kernel_version<'de, D: Deserializer<'de>>(d: D) -> Result<Option<(u64, u64)>, D::Error> {
    let Some(text) = Option::<String>::deserialize(d)? else {
        return Ok(None);
    };
    if text.is_empty() {
        return Ok(None);
    }
    let bad = || {
        serde::de::Error::custom(format!(
            "minKernel {text:?}: expected \"<major>.<minor>\", such as \"4.8\""
        ))
    };
    let (major, minor) = text.split_once('.').ok_or_else(bad)?;
    let version = (
        major.parse::<u64>().map_err(|_| bad())?,
        minor.parse::<u64>().map_err(|_| bad())?,
    );
    if version == (0, 0) {
        return Err(bad());
    }
    Ok(Some(version))
}
