//! What the container's first process does between clone and exec, in order. It runs in
//! a fresh child of a single-threaded process (see `sys::process::clone_process`), so
//! ordinary Rust is safe here; on failure it reports the error through the pipe and exits
//! 127, never returning into the launcher's code.

use std::os::fd::{AsFd, OwnedFd, RawFd};

use nix::sched::CloneFlags;

use super::setup::{self, step};
use super::spec::{LaunchSpec, NamespaceKind};
use super::{identity, path, rootfs, terminal, LaunchError};
use crate::sys::{ns, process};

/// The container's stdio: three descriptors the process takes as its own, or a terminal
/// it makes itself (`terminal`: see `terminal`), whose master it hands over that socket.
pub struct Stdio {
    pub stdin: RawFd,
    pub stdout: RawFd,
    pub stderr: RawFd,
    /// A socket (one end of `sys::fdpass::socket_pair`): the process makes a terminal in
    /// its own devpts, sends the master here, and uses the slave as stdin, stdout and
    /// stderr; the three descriptors above are then not used.
    pub terminal: Option<RawFd>,
}

/// Entry point of the cloned child; returns an exit code only when setup failed, after
/// writing why to `report` (the write end of the launcher's CLOEXEC pipe).
/// `pre`: what was opened before the clone, for a container in a user namespace (see
/// `rootfs::Preopened`); empty otherwise.
pub fn run(
    spec: &LaunchSpec,
    stdio: &Stdio,
    report: &OwnedFd,
    gate: Option<&OwnedFd>,
    pre: rootfs::Preopened,
) -> isize {
    // Held first thing: nothing of the container is made before it is released.
    if let Some(gate) = gate {
        let mut byte = [0u8; 1];
        if !matches!(nix::unistd::read(gate, &mut byte), Ok(1)) {
            // Not released (the parent kills us anyway); nothing to report.
            return 127;
        }
    }
    let err = match setup_and_exec(spec, stdio, pre) {
        Err(e) => e,
        Ok(never) => match never {},
    };
    let _ = nix::unistd::write(report, crate::error::chain(&err).as_bytes());
    127
}

fn setup_and_exec(
    spec: &LaunchSpec,
    stdio: &Stdio,
    mut pre: rootfs::Preopened,
) -> Result<std::convert::Infallible, LaunchError> {
    for j in &spec.join {
        let kind = match j.kind {
            NamespaceKind::Net => CloneFlags::CLONE_NEWNET,
            NamespaceKind::Ipc => CloneFlags::CLONE_NEWIPC,
            NamespaceKind::Uts => CloneFlags::CLONE_NEWUTS,
            // Joined by the parent before the clone (see `spawn`).
            NamespaceKind::Pid => continue,
        };
        match pre.join_file(&j.path) {
            Some(f) => super::join_file(j, f, kind),
            None => super::join(j, kind),
        }
        .map_err(step("join namespace", j.path.display()))?;
    }
    let root = rootfs::prepare(spec, &mut pre)?;
    let cwd = rootfs::workdir(&root, &spec.process.cwd)?;
    ns::pivot_into(root.as_fd()).map_err(step("pivot_root", spec.rootfs.display()))?;
    rootfs::finish(spec)?;
    if let Some(h) = &spec.hostname {
        ns::set_hostname(h).map_err(step("set hostname", h))?;
    }
    if let Some(adj) = spec.oom_score_adj {
        // Lowering it needs CAP_SYS_RESOURCE, which this host may withhold: not fatal.
        let _ = process::set_oom_score_adj(adj);
    }
    // While still root, so a hard limit may be raised as well as lowered (posix/rlimits).
    for r in &spec.rlimits {
        crate::sys::rlimit::set(r.resource, r.soft, r.hard)
            .map_err(step("set resource limit", format!("{:?}", r.resource)))?;
    }
    let p = &spec.process;
    match stdio.terminal {
        Some(socket) => terminal::take(socket, p.uid)?,
        None => process::install_stdio(stdio.stdin, stdio.stdout, stdio.stderr)
            .map_err(step("install stdio", ""))?,
    }
    let executable = path::find_executable(p.executable.as_ref(), &p.args, &p.env)?;
    ns::change_dir(cwd.as_fd()).map_err(step("chdir", &p.cwd))?;
    drop(cwd);
    let (groups, caps) = (&p.additional_gids, p.capabilities.as_deref());
    if let Some(profile) = &p.apparmor_profile {
        // While still root: the switch happens at the exec, under the new identity.
        crate::launcher::apparmor::set_exec_profile(std::path::Path::new("/proc"), profile)
            .map_err(step("set the AppArmor profile", profile))?;
    }
    let last = identity::apply(
        p.uid,
        p.gid,
        groups,
        caps,
        p.no_new_privs,
        p.seccomp.as_ref(),
    )?;
    // Rust's runtime ignores SIGPIPE, and an ignored signal stays ignored across exec:
    // give the container the default dispositions every process expects.
    process::default_signal_actions().map_err(step("reset signal dispositions", ""))?;
    setup::exec(&executable, &p.args, &p.env, last).map_err(LaunchError::from)
}
