//! What the exec'd command's process does between fork and exec, in order. It runs in a
//! fork of a single-threaded process that has already entered the container (namespaces
//! and root), so ordinary Rust is safe here; on failure it reports the error through the
//! pipe and exits 127, as the launcher's first process does. The `PATH` lookup, the
//! identity steps and the exec are the launcher's own (`path`, `identity`, `setup`).

use std::fs::File;
use std::io::Write;
use std::os::fd::OwnedFd;

use super::{ExecError, ExecSpec};
use crate::error::{ErrorKind, Kind};
use crate::launcher::setup::{self, step};
use crate::launcher::{identity, path};
use crate::sys::process::{self, BlockedSignals};

/// Entry point of the forked child; returns an exit code only when setup failed, after
/// writing why to `report` (the write end of the parent's CLOEXEC pipe). `parent` is the
/// parent's pid as the host sees it.
pub fn run(
    spec: &ExecSpec,
    cgroups: &[File],
    signals: &BlockedSignals,
    parent: u32,
    report: OwnedFd,
    terminal: Option<&OwnedFd>,
) -> i32 {
    let err = match setup_and_exec(spec, cgroups, signals, parent, terminal) {
        Err(e) => e,
        Ok(never) => match never {},
    };
    // `<kind> <message>`: the kind travels on to the daemon's error code.
    let kind = serde_json::to_string(&err.kind()).unwrap_or_default();
    let line = format!("{} {}", kind.trim_matches('"'), crate::error::chain(&err));
    let _ = File::from(report).write_all(line.as_bytes());
    127
}

/// The parent's reading of what [`run`] reported; a report without a known kind is
/// `Internal`.
pub fn parse_report(text: &str) -> (ErrorKind, String) {
    if let Some((kind, message)) = text.split_once(' ') {
        if let Ok(kind) = serde_json::from_value(serde_json::Value::String(kind.into())) {
            return (kind, message.to_string());
        }
    }
    (ErrorKind::Internal, text.to_string())
}

fn setup_and_exec(
    spec: &ExecSpec,
    cgroups: &[File],
    signals: &BlockedSignals,
    parent: u32,
    terminal: Option<&OwnedFd>,
) -> Result<std::convert::Infallible, ExecError> {
    // Into the container's cgroups before anything else: "0" moves the writer itself.
    for mut cgroup in cgroups {
        cgroup
            .write_all(b"0")
            .map_err(step("join the container's cgroup", ""))?;
    }
    // The daemon enforces ExecSync timeouts by SIGKILLing `ucr nsexec`; the command must
    // not outlive it.
    die_with_parent(parent)?;
    // Until exec, this process is visible in the container's PID namespace while still
    // holding every capability; non-dumpable keeps container processes out of its
    // /proc entries (`exe` is the host's ucr binary). execve resets it.
    process::set_dumpable(false).map_err(step("set dumpable", ""))?;
    if let Some(slave) = terminal {
        // A session of its own with the pty as its controlling terminal: job control and
        // ^C work as at a login, and SIGHUP reaches it when the master closes.
        crate::sys::console::become_session_leader(std::os::fd::AsFd::as_fd(slave))
            .map_err(step("take the terminal", "pty"))?;
        let fd = process::raw(slave);
        process::install_stdio(fd, fd, fd).map_err(step("make the terminal stdio", "pty"))?;
    }
    signals.restore().map_err(step("restore signal mask", ""))?;
    process::default_signal_actions().map_err(step("reset signal actions", ""))?;

    let p = &spec.process;
    let cwd = if p.cwd.is_empty() { "/" } else { &p.cwd };
    let executable = path::find_executable(p.executable.as_ref(), &p.args, &p.env)?;
    std::env::set_current_dir(cwd).map_err(step("chdir", cwd))?;
    let (groups, caps) = (&p.additional_gids, p.capabilities.as_deref());
    if let Some(profile) = &p.apparmor_profile {
        // While still root: the switch happens at the exec, under the new identity.
        crate::launcher::apparmor::set_exec_profile(std::path::Path::new("/proc"), profile)
            .map_err(step("set the AppArmor profile", profile))?;
    }
    // The container's seccomp filter too: the command is confined as the container is.
    let last = identity::apply(
        p.uid,
        p.gid,
        groups,
        caps,
        p.no_new_privs,
        p.seccomp.as_ref(),
    )?;
    // The user switch cleared the parent-death signal (the kernel does on any uid change).
    die_with_parent(parent)?;
    setup::exec(&executable, &p.args, &p.env, last).map_err(ExecError::from)
}

/// Sets PR_SET_PDEATHSIG, then checks the parent did not die before that took effect.
/// The parent is outside the container's PID namespace, where `getppid` reads 0; any other
/// value (but the parent's own pid, when the container shares the host's PID namespace)
/// means this process was already re-parented.
fn die_with_parent(parent: u32) -> Result<(), ExecError> {
    process::kill_with_parent().map_err(step("set parent death signal", ""))?;
    let ppid = process::parent_pid().as_raw();
    if ppid != 0 && ppid as u32 != parent {
        return Err(ExecError::ParentGone);
    }
    Ok(())
}
