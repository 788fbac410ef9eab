//! The native launcher: from a [`LaunchSpec`] to the container's first process, in new
//! mount, PID and UTS namespaces (IPC and network joined from the pod), pivoted into its
//! rootfs, as its user, with its capabilities. No runc: like the Mesos containerizer,
//! the launcher is ours.
//!
//! `spawn` must run in a single-threaded process: the monitor (`ucr monitor`), or
//! `ucr launch` for tests and debugging. The daemon itself never calls it.
//!
//! - `spec`: the launch spec, and the `Process` it shares with `exec`'s spec; `rootfs`: the
//!   mounts; `child`: the steps after clone;
//! - `identity`, `path`, `setup`: the steps before exec shared with `exec` (`ucr nsexec`);
//!   `seccomp`: the compiled filter the spec carries, loaded by `identity` and `setup`;
//! - `terminal`: the container's own pty, for containers with a terminal (CRI `tty`);
//! - `user`: resolving users and groups from the image;
//! - `pod_init`: the PID 1 of pods that share one PID namespace (`ucr pod-init`).

pub mod apparmor;
mod child;
pub mod exec;
mod identity;
mod path;
pub mod pod_init;
pub mod pod_ns;
pub mod rootfs;
pub mod seccomp;
mod setup;
pub mod spec;
mod terminal;
pub mod user;
mod userns;

use std::io::Read;
use std::os::fd::RawFd;

use nix::sched::CloneFlags;
use nix::unistd::Pid;

pub use child::Stdio;
pub use setup::SetupError;
pub use spec::{LaunchSpec, Process};

use crate::error::{ErrorKind, Kind};
use crate::sys::{kill, process};

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// A step between clone and exec, or the exec itself.
    #[error(transparent)]
    Setup(#[from] SetupError),
    #[error("mount target {target:?} {reason}")]
    BadTarget {
        target: String,
        reason: &'static str,
    },
    #[error("join PID namespace {path}: {source}")]
    JoinPid {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("starting the container process: {source}")]
    Clone { source: std::io::Error },
    #[error("starting the container in its pod's user namespace: {message}")]
    UserNamespace { message: String },
    #[error("starting the container process in cgroup {path}: {source}")]
    Cgroup {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("wait for {pid}: {source}")]
    Wait { pid: i32, source: std::io::Error },
    /// The child's own report of what failed before exec.
    #[error("{message}")]
    Child { message: String, exit_code: i32 },
    /// The barrier did not let the held process go; it was killed before it ran.
    #[error("the container's process was held and not released: {message}")]
    Held { message: String },
}

impl Kind for LaunchError {
    fn kind(&self) -> ErrorKind {
        match self {
            LaunchError::Setup(e) => e.kind(),
            LaunchError::BadTarget { .. } => ErrorKind::InvalidArgument,
            LaunchError::Clone { .. }
            | LaunchError::Cgroup { .. }
            | LaunchError::UserNamespace { .. }
            | LaunchError::JoinPid { .. }
            | LaunchError::Wait { .. }
            | LaunchError::Child { .. }
            | LaunchError::Held { .. } => ErrorKind::Internal,
        }
    }
}

/// What decides whether a held process may go on: called with its pid once it exists,
/// before it has done anything. `Err` kills it.
pub type Barrier<'a> = &'a mut dyn FnMut(Pid) -> Result<(), String>;

/// Starts the container process; returns once it has exec'd (or failed to). With a
/// `barrier`, the new process waits first thing, before joining namespaces or mounting
/// anything, until the barrier lets it go (the monitor asks the daemon, whose isolators
/// place it: cgroups, with the next isolators).
pub fn spawn(
    spec: &LaunchSpec,
    stdio: &Stdio,
    barrier: Option<Barrier<'_>>,
) -> Result<Pid, LaunchError> {
    let (read_end, write_end) =
        process::cloexec_pipe().map_err(|source| LaunchError::Clone { source })?;
    let gate = match barrier {
        Some(_) => Some(process::cloexec_pipe().map_err(|source| LaunchError::Clone { source })?),
        None => None,
    };
    let mut flags = CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWUTS;
    let pid_ns = spec
        .join
        .iter()
        .find(|j| j.kind == spec::NamespaceKind::Pid);
    if spec.new_pid_namespace {
        flags |= CloneFlags::CLONE_NEWPID;
    }
    if spec.new_ipc_namespace && !spec.join.iter().any(|j| j.kind == spec::NamespaceKind::Ipc) {
        flags |= CloneFlags::CLONE_NEWIPC;
    }
    let wait_on = gate.as_ref().map(|(r, _)| r);
    let pid = if let Some(userns) = &spec.userns {
        userns::spawn(spec, userns, flags, pid_ns, stdio, &write_end, wait_on)?
    } else {
        if let (false, Some(pid_ns)) = (spec.new_pid_namespace, pid_ns) {
            // Joining a PID namespace only moves this process's future children there,
            // so it happens here, before the clone, not in the child. The caller is
            // single-threaded and starts no other process afterwards (the monitor,
            // `ucr launch`).
            join(pid_ns, CloneFlags::CLONE_NEWPID).map_err(|source| LaunchError::JoinPid {
                path: pid_ns.path.clone(),
                source,
            })?;
        }
        let run = Box::new(|| {
            child::run(
                spec,
                stdio,
                &write_end,
                wait_on,
                rootfs::Preopened::default(),
            )
        });
        match &spec.clone_into_cgroup {
            Some(dir) => {
                let cgroup = std::fs::File::open(dir).map_err(|source| LaunchError::Cgroup {
                    path: dir.clone(),
                    source,
                })?;
                process::clone_process_into(run, flags, std::os::fd::AsFd::as_fd(&cgroup)).map_err(
                    |source| LaunchError::Cgroup {
                        path: dir.clone(),
                        source,
                    },
                )?
            }
            None => process::clone_process(run, flags)
                .map_err(|source| LaunchError::Clone { source })?,
        }
    };
    drop(write_end);
    if let (Some((gate_r, gate_w)), Some(barrier)) = (gate, barrier) {
        drop(gate_r);
        if let Err(message) = barrier(pid) {
            kill::signal(pid.as_raw(), libc::SIGKILL);
            let _ = process::wait_exit_code(pid);
            return Err(LaunchError::Held { message });
        }
        // Released: one byte, then EOF for good measure.
        let _ = nix::unistd::write(&gate_w, b"g");
    }
    // EOF with nothing written means the exec succeeded (the pipe closed on exec).
    let mut message = String::new();
    let _ = std::fs::File::from(read_end).read_to_string(&mut message);
    if message.is_empty() {
        return Ok(pid);
    }
    let exit_code = process::wait_exit_code(pid).unwrap_or(127);
    Err(LaunchError::Child { message, exit_code })
}

/// Enters the namespace `j` names; when it is another process's (`owner`), only if that
/// process still runs once the file is open (then the file is surely its).
pub(crate) fn join(j: &spec::JoinNamespace, kind: CloneFlags) -> std::io::Result<()> {
    let file = std::fs::File::open(&j.path)?;
    join_file(j, &file, kind)
}

/// [`join`] with `j`'s file already open (by a process that could still reach it).
pub(crate) fn join_file(
    j: &spec::JoinNamespace,
    file: &std::fs::File,
    kind: CloneFlags,
) -> std::io::Result<()> {
    if let Some(owner) = j.owner {
        if !owner.is_running() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("process {} has ended", owner.pid),
            ));
        }
    }
    process::join_namespace(file, kind)
}

/// `ucr launch`: runs a spec in the foreground with this process's stdio and returns the
/// container's exit code (128 + signal when killed).
pub fn run_foreground(spec: &LaunchSpec) -> Result<i32, LaunchError> {
    let stdio = Stdio {
        stdin: 0 as RawFd,
        stdout: 1,
        stderr: 2,
        terminal: None,
    };
    let pid = spawn(spec, &stdio, None)?;
    process::wait_exit_code(pid).map_err(|source| LaunchError::Wait {
        pid: pid.as_raw(),
        source,
    })
}
