//! Who a process runs as, and under which seccomp filter: the last steps before exec that
//! the container's first process and `ucr nsexec`'s command both take, in this order. Each
//! caller does what must come after on its own (`ucr nsexec` re-arms its parent-death
//! signal, which the user switch clears).

use super::seccomp::{self, SeccompFilter};
use super::setup::{step, SetupError};
use super::spec::DEFAULT_CAPABILITIES;
use crate::sys::process;
use crate::sys::seccomp::Program;

/// A seccomp filter left to load right before exec (`setup::exec` does), decoded already
/// so that nothing is allocated once it is in force.
#[must_use]
pub(crate) struct BeforeExec {
    filter: Option<(Program, u32)>,
}

impl BeforeExec {
    pub(crate) fn nothing() -> Self {
        BeforeExec { filter: None }
    }

    pub(crate) fn load(&self) -> Result<(), SetupError> {
        match &self.filter {
            Some((program, flags)) => seccomp::load(program, *flags),
            None => Ok(()),
        }
    }
}

/// Narrows the capability bounding set to `capabilities` (`None`: Docker's default set),
/// becomes `uid:gid` with `groups`, takes exactly those capabilities, then sets
/// no_new_privs if asked. The bounding set goes first: dropping from it needs
/// CAP_SETPCAP, which a non-root user no longer has.
///
/// The seccomp filter goes where runc puts it, as the kernel lets a process load one
/// only with no_new_privs set or CAP_SYS_ADMIN held:
/// - with no_new_privs, last: it is returned, for `setup::exec` to load right before
///   execve, so that as few of our own system calls as possible run under it;
/// - without, first, while the process still holds every capability. The steps after it
///   (prctl, setgroups, setresgid, setresuid, capset, rt_sigaction, execve) must then pass
///   it: the default profile allows them all; a profile that does not fails the start,
///   naming the step it refused.
pub(crate) fn apply(
    uid: u32,
    gid: u32,
    groups: &[u32],
    capabilities: Option<&[String]>,
    no_new_privs: bool,
    filter: Option<&SeccompFilter>,
) -> Result<BeforeExec, SetupError> {
    let filter = filter.map(|f| Ok((f.program()?, f.flags))).transpose()?;
    let last = if no_new_privs {
        BeforeExec { filter }
    } else {
        BeforeExec { filter }.load()?;
        BeforeExec::nothing()
    };
    let caps: Vec<String> = match capabilities {
        Some(c) => c.to_vec(),
        None => DEFAULT_CAPABILITIES.iter().map(|s| s.to_string()).collect(),
    };
    process::limit_bounding_set(&caps).map_err(step("limit capability bounding set", ""))?;
    process::switch_user(uid, gid, groups).map_err(step("switch user", ""))?;
    process::set_capabilities(&caps).map_err(step("set capabilities", ""))?;
    if no_new_privs {
        process::set_no_new_privs().map_err(step("set no_new_privs", ""))?;
    }
    Ok(last)
}
