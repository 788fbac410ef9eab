//! `ucr nsexec`: runs a command inside a running container, for CRI ExecSync (and later
//! Exec). The daemon writes an [`ExecSpec`] and starts `ucr nsexec --spec FILE` with the
//! command's stdio; this process, single-threaded (no tokio), then:
//!
//! 1. opens the container's namespaces and root through `/proc/<pid>` and joins them
//!    (`enter`);
//! 2. forks: a PID namespace applies to children only. The child takes the user, groups,
//!    capabilities and no_new_privs of the spec, changes to its working directory, finds
//!    the program in `PATH` and execs it (`child`);
//! 3. forwards SIGTERM, SIGINT, SIGHUP and SIGQUIT to it and waits (`wait`).
//!
//! Exit status: the command's (128 + signal when killed). When the command could not be
//! started, `ucr nsexec` says why on its report descriptor (`--report-fd`), as one JSON
//! line `{"kind": "NotFound", "message": "…"}`, and the daemon answers with an error of
//! that kind instead of an exit code: a command may itself exit 127 or 255, so no exit
//! code can mean "it never ran". For a person at a terminal the same goes to stderr
//! (`ucr nsexec: <why>`), and the exit status is then 127 when the command's own process
//! failed to set up or exec (no such program, bad working directory, user switch
//! refused), as shells report it, or 255 for anything before that (the spec is
//! unreadable, the container's process has ended, a namespace could not be joined), as
//! `runc exec` exits.
//!
//! The command dies with `ucr nsexec` (PR_SET_PDEATHSIG), so the daemon's SIGKILL on an
//! ExecSync timeout, or when a streaming client goes away, ends it too.
//!
//! With `terminal` in the spec (streaming Exec with a TTY), `ucr nsexec` allocates a pty
//! from the container's own devpts once it has entered the container, gives the slave to
//! the command's user, sends the master to the daemon on `--console-fd` (SCM_RIGHTS), and
//! the command gets the slave as its controlling terminal and stdio. Allocated inside,
//! so `tty` in the container names a `/dev/pts/N` that exists there, as with runc.

mod child;
mod enter;
mod spec;
mod wait;

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub use spec::{ExecSpec, TerminalSize};
pub use wait::{FORWARDED, KILL_COMMAND};

use super::setup::{step, SetupError};
use crate::error::{ErrorKind, Kind};
use crate::sys::process::{self, BlockedSignals, Forked};

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("reading exec spec {path}: {source}")]
    ReadSpec {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("parsing exec spec {path}: {source}")]
    ParseSpec {
        path: PathBuf,
        source: serde_json::Error,
    },
    /// The recorded process has ended; its pid may belong to another process by now.
    #[error(
        "the container is not running: its process {pid} (started at tick {start_time}) has ended"
    )]
    NoProcess { pid: i32, start_time: u64 },
    #[error("{step} /proc/{pid}/{what}: {source}")]
    Enter {
        step: &'static str,
        what: String,
        pid: i32,
        source: std::io::Error,
    },
    /// fork fails with ENOMEM in a PID namespace whose init has exited.
    #[error("starting the command: the container of process {pid} has exited (its PID namespace takes no new process)")]
    Exited { pid: i32 },
    #[error("starting the command: {source}")]
    Fork { source: std::io::Error },
    #[error("waiting for the command (pid {pid}): {source}")]
    Wait { pid: i32, source: std::io::Error },
    /// A step before or after the fork, or the exec itself.
    #[error(transparent)]
    Setup(#[from] SetupError),
    #[error("ucr nsexec died before the command started")]
    ParentGone,
    #[error("the spec asks for a terminal but no --console-fd was given")]
    NoConsole,
    /// The child's own report of what failed before exec.
    #[error("{message}")]
    Child {
        kind: ErrorKind,
        message: String,
        exit_code: i32,
    },
}

impl Kind for ExecError {
    fn kind(&self) -> ErrorKind {
        match self {
            ExecError::Setup(e) => e.kind(),
            ExecError::ParseSpec { .. } => ErrorKind::InvalidArgument,
            ExecError::NoProcess { .. } | ExecError::Exited { .. } => ErrorKind::FailedPrecondition,
            ExecError::Child { kind, .. } => *kind,
            _ => ErrorKind::Internal,
        }
    }
}

impl ExecError {
    /// The exit status `ucr nsexec` ends with (see the module doc).
    pub fn exit_code(&self) -> u8 {
        match self {
            ExecError::Child { exit_code, .. } => (*exit_code).clamp(0, 255) as u8,
            _ => 255,
        }
    }
}

/// What `ucr nsexec` writes on its report descriptor when the command did not start.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Report {
    pub kind: ErrorKind,
    pub message: String,
}

/// `ucr nsexec --spec FILE [--report-fd N] [--console-fd M]`.
pub fn main(spec: &Path, report_fd: Option<i32>, console_fd: Option<i32>) -> ExitCode {
    // Taken first (and made close-on-exec), so the command never inherits it.
    let report = match report_fd
        .map(crate::sys::signal::take_inherited_fd)
        .transpose()
    {
        Ok(report) => report,
        Err(e) => {
            eprintln!("ucr nsexec: report descriptor: {e}");
            return ExitCode::from(255);
        }
    };
    let console = match console_fd
        .map(crate::sys::signal::take_inherited_fd)
        .transpose()
    {
        Ok(console) => console,
        Err(e) => {
            eprintln!("ucr nsexec: console descriptor: {e}");
            return ExitCode::from(255);
        }
    };
    match load(spec).and_then(|spec| run(&spec, console)) {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => {
            let message = crate::error::chain(&e);
            if let Some(fd) = report {
                let line = Report {
                    kind: e.kind(),
                    message: message.clone(),
                };
                let mut json = serde_json::to_vec(&line).unwrap_or_default();
                json.push(b'\n');
                let _ = std::fs::File::from(fd).write_all(&json);
            }
            eprintln!("ucr nsexec: {message}");
            ExitCode::from(e.exit_code())
        }
    }
}

pub fn load(path: &Path) -> Result<ExecSpec, ExecError> {
    let bytes = std::fs::read(path).map_err(|source| ExecError::ReadSpec {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|source| ExecError::ParseSpec {
        path: path.to_path_buf(),
        source,
    })
}

/// Runs `spec` in its container and returns the command's exit code. Moves this process
/// into the container for good: call it only from a single-threaded process that has
/// nothing else to do (`ucr nsexec`). `console` receives the pty's master when the spec
/// asks for a terminal.
pub fn run(spec: &ExecSpec, console: Option<OwnedFd>) -> Result<i32, ExecError> {
    if spec.process.args.is_empty() {
        return Err(SetupError::NoCommand.into());
    }
    if spec.terminal && console.is_none() {
        return Err(ExecError::NoConsole);
    }
    let target = enter::Target::open(spec.target)?;
    // Opened here, on the host's paths: inside the container they are out of reach.
    let cgroups = spec
        .cgroup_procs
        .iter()
        .map(|p| {
            std::fs::OpenOptions::new()
                .write(true)
                .open(p)
                .map_err(step("open cgroup", p.display()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    // Blocked from before the fork, so a signal sent meanwhile waits to be forwarded
    // instead of killing this process and leaving the command behind.
    let signals = BlockedSignals::block(&wait::blocked()).map_err(step("block signals", ""))?;
    target.enter()?;
    // Inside the container now: /dev/ptmx is its devpts's.
    let terminal = match (spec.terminal, console) {
        (true, Some(console)) => Some(terminal(spec, console)?),
        _ => None,
    };
    let (read_end, write_end) =
        process::cloexec_pipe().map_err(|source| ExecError::Fork { source })?;
    let parent = std::process::id();
    let forked = process::fork().map_err(|source| match source.raw_os_error() {
        Some(libc::ENOMEM) => ExecError::Exited {
            pid: spec.target.pid,
        },
        _ => ExecError::Fork { source },
    })?;
    let child = match forked {
        Forked::Parent { child } => {
            // Only the child's copy of the write end is left: EOF on the read end means
            // it exec'd or exited.
            drop(write_end);
            child
        }
        // Never back into this function: a panic, too, ends the child (with 127).
        Forked::Child => {
            let code = std::panic::catch_unwind(AssertUnwindSafe(|| {
                child::run(
                    spec,
                    &cgroups,
                    &signals,
                    parent,
                    write_end,
                    terminal.as_ref(),
                )
            }));
            process::exit_now(code.unwrap_or(127))
        }
    };
    // Only the command holds the slave now: when it (and whatever it left running on the
    // terminal) is gone, the daemon's reads of the master end.
    drop(terminal);
    let mut message = String::new();
    let _ = std::fs::File::from(read_end).read_to_string(&mut message);
    if !message.is_empty() {
        let exit_code = process::wait_exit_code(child).unwrap_or(127);
        // `child` writes `<kind> <message>`.
        let (kind, message) = child::parse_report(&message);
        return Err(ExecError::Child {
            kind,
            message,
            exit_code,
        });
    }
    wait::wait_forwarding(child, &signals)
}

/// Allocates the command's terminal in the container's devpts, gives it to the command's
/// user, and sends the master to the daemon; returns the slave.
fn terminal(spec: &ExecSpec, console: OwnedFd) -> Result<OwnedFd, ExecError> {
    use std::os::fd::{AsFd, AsRawFd};
    let ptmx = Path::new("/dev/ptmx");
    let master =
        crate::sys::console::open_master(ptmx).map_err(step("allocate a pty in", "/dev/ptmx"))?;
    let slave = crate::sys::console::open_slave(master.as_fd(), ptmx)
        .map_err(step("open the pty's slave", "/dev/ptmx"))?;
    crate::sys::console::give_to(slave.as_fd(), spec.process.uid)
        .map_err(step("give the pty to uid", spec.process.uid))?;
    if let Some(size) = spec.window {
        let size = crate::sys::console::WindowSize {
            rows: size.rows,
            cols: size.cols,
        };
        crate::sys::console::set_window_size(master.as_fd(), size)
            .map_err(step("set the pty's size", "/dev/ptmx"))?;
    }
    crate::sys::fdpass::send_fd(console.as_raw_fd(), master.as_fd())
        .map_err(step("send the pty to the daemon", "--console-fd"))?;
    Ok(slave)
}
