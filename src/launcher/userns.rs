//! Starting a container inside its pod's user namespace. The namespaces the container
//! makes (mount, UTS, IPC, PID) must belong to that user namespace, or its root could not
//! mount `/proc` or `/sys` in them; so they are made by a process already inside it. The
//! monitor must stay on the host (it writes logs and pid files, and is the container's
//! parent), and a process cannot leave a user namespace once in: so the monitor forks an
//! intermediate that enters the namespace (and the pod's PID namespace, when shared) and
//! clones the container with `CLONE_PARENT`, making the monitor its parent, then exits.
//!
//! The rootfs shows the image's root-owned files as the container root's: an overlay
//! rootfs through idmapped layers (the backend's doing; an overlay mount itself cannot be
//! idmapped), any other one through an idmapped bind that only a process privileged on
//! the host can make. The monitor binds it (idmapped when `idmap_rootfs`), detached,
//! before the fork, and the container attaches it in its own mount namespace
//! (`rootfs::prepare`).

use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::sched::CloneFlags;
use nix::unistd::Pid;

use super::child::{self, Stdio};
use super::rootfs::Preopened;
use super::spec::{JoinNamespace, LaunchSpec};
use super::LaunchError;
use crate::sys::process::{self, Forked};

fn failed(step: &'static str) -> impl FnOnce(std::io::Error) -> LaunchError {
    move |source| LaunchError::UserNamespace {
        message: format!("{step}: {source}"),
    }
}

/// Starts the container (see the module docs); its pid once cloned.
pub(super) fn spawn(
    spec: &LaunchSpec,
    userns: &Path,
    flags: CloneFlags,
    pid_ns: Option<&JoinNamespace>,
    stdio: &Stdio,
    report: &OwnedFd,
    gate: Option<&OwnedFd>,
) -> Result<Pid, LaunchError> {
    let ns = std::fs::File::open(userns).map_err(failed("open the pod's user namespace"))?;
    // Once inside, the container's root is an ordinary uid on the host: what it needs of
    // the host is opened now.
    let pre = Preopened::open(spec, spec.idmap_rootfs.then(|| ns.as_fd()))?;
    let cgroup = match &spec.clone_into_cgroup {
        Some(dir) => Some(
            std::fs::File::open(dir).map_err(|source| LaunchError::Cgroup {
                path: dir.clone(),
                source,
            })?,
        ),
        None => None,
    };
    let (pid_r, pid_w) = process::cloexec_pipe().map_err(failed("pipe"))?;
    match process::fork().map_err(failed("fork"))? {
        Forked::Child => {
            drop(pid_r);
            let mut out = std::fs::File::from(pid_w);
            let said =
                match intermediate(spec, &ns, flags, pid_ns, stdio, report, gate, pre, cgroup) {
                    Ok(pid) => writeln!(out, "pid {pid}"),
                    Err(why) => writeln!(out, "error {why}"),
                };
            process::exit_now(if said.is_ok() { 0 } else { 1 })
        }
        Forked::Parent { child } => {
            drop(pid_w);
            // One line, not until EOF: the container inherited the write end too, and
            // holds it until its exec, which waits on us.
            let mut text = String::new();
            let _ = std::io::BufRead::read_line(
                &mut std::io::BufReader::new(std::fs::File::from(pid_r)),
                &mut text,
            );
            let _ = process::wait_exit_code(child);
            let text = text.trim();
            match text
                .strip_prefix("pid ")
                .and_then(|p| p.parse::<i32>().ok())
            {
                Some(pid) => Ok(Pid::from_raw(pid)),
                None => Err(LaunchError::UserNamespace {
                    message: text.strip_prefix("error ").unwrap_or(text).to_string(),
                }),
            }
        }
    }
}

/// The intermediate: into the user namespace (and the pod's PID namespace), then the
/// container, a child of the monitor.
#[allow(clippy::too_many_arguments)]
fn intermediate(
    spec: &LaunchSpec,
    ns: &std::fs::File,
    flags: CloneFlags,
    pid_ns: Option<&JoinNamespace>,
    stdio: &Stdio,
    report: &OwnedFd,
    gate: Option<&OwnedFd>,
    pre: Preopened,
    cgroup: Option<std::fs::File>,
) -> Result<Pid, String> {
    process::join_namespace(ns, CloneFlags::CLONE_NEWUSER)
        .map_err(|e| format!("entering the pod's user namespace: {e}"))?;
    // The host's root has no id in the namespace: files it made there (the container's
    // /dev, its mount points) could not be owned by anyone (EOVERFLOW). Become the
    // namespace's root first, as runc does.
    process::switch_user(0, 0, &[]).map_err(|e| format!("becoming the namespace's root: {e}"))?;
    if let (false, Some(p)) = (spec.new_pid_namespace, pid_ns) {
        let joined = match pre.join_file(&p.path) {
            Some(f) => super::join_file(p, f, CloneFlags::CLONE_NEWPID),
            None => super::join(p, CloneFlags::CLONE_NEWPID),
        };
        joined.map_err(|e| format!("entering PID namespace {}: {e}", p.path.display()))?;
    }
    let mut pre = Some(pre);
    let run =
        Box::new(move || child::run(spec, stdio, report, gate, pre.take().unwrap_or_default()));
    let flags = flags | CloneFlags::CLONE_PARENT;
    match &cgroup {
        Some(c) => process::clone_process_into(run, flags, c.as_fd()),
        None => process::clone_process(run, flags),
    }
    .map_err(|e| format!("starting the container process: {e}"))
}
