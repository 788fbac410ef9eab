//! The per-container monitor, `ucr monitor` (conmon's counterpart): starts the container's
//! first process, holds its stdout and stderr, writes them to the CRI log, and records how
//! the container ended. One per container. It outlives the daemon, so a daemon restart or
//! crash leaves containers running and their logs flowing; and it stays small (target
//! < 1 MiB RSS): one thread, no tokio, one poll(2) loop.
//!
//! # Contract with the daemon
//!
//! Files live in the container's bundle directory (layout in [`bundle`]).
//!
//! 1. The daemon writes `monitor.json`, a [`MonitorConfig`] (launch spec and CRI log path),
//!    with [`MonitorConfig::store`].
//! 2. It runs `ucr monitor --bundle <absolute dir> --sync-fd <N>`, descriptor `N` being the
//!    write end of a pipe (it must be inherited: not close-on-exec). A threaded daemon
//!    avoids leaking that pipe into its other children by passing it as the monitor's
//!    stdout and saying `--sync-fd 1`; the monitor moves it off the standard descriptors.
//!    The daemon closes its own copy of the write end after spawning.
//! 3. It waits for that process, which exits 0 as soon as the monitor proper has detached
//!    and written `monitor.pid` (1 if that failed). The monitor proper is a forked child
//!    in its own session with stdio on `/dev/null`, reparented to init: never a zombie of
//!    the daemon's, and untouched by the daemon's death. (So the daemon must not make
//!    itself a child subreaper, or it would inherit the monitors and have to reap them.)
//! 4. It reads one line from the pipe with [`read_report`]: `ok <pid>` once the container
//!    process has exec'd and `pid` is written, or `error <message>` (launch failures carry
//!    runc's wording, e.g. `exec: "x": executable file not found in $PATH`); after an
//!    error nothing runs, the monitor exits, and no `exit.json` is written.
//! 5. While the container runs, the daemon stops it by signalling the pid in `pid`, never
//!    the monitor (which ignores SIGTERM, SIGINT and SIGHUP: the container's life is its
//!    own), and has the log reopened after rotation with [`request_reopen`] (SIGUSR1).
//! 6. When the container ends, the monitor copies what is left in the pipes, writes
//!    `exit.json` (an [`ExitRecord`], read with [`read_exit`]), removes `monitor.pid`, and
//!    exits. `exit.json` present: the container exited (and `pid` is stale). `monitor.pid`
//!    present but [`live_monitor`] `None`: the monitor was killed before recording the end;
//!    the container's fate is unknown.
//!
//! Every file the monitor writes appears atomically (temporary file, then rename).

pub mod bundle;
mod config;
mod detach;
mod error;
mod exit;
pub mod log;
mod supervise;
mod sync;

use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

use nix::sys::signal::Signal;
use nix::unistd::Pid;

pub use bundle::{
    live_monitor, read_pid, request_reopen, CONFIG_FILE, CONTAINER_PID_FILE, EXIT_FILE,
    MONITOR_PID_FILE,
};
pub use config::MonitorConfig;
pub use error::MonitorError;
pub use exit::{read_exit, ExitRecord};
pub use sync::{read_report, SyncReport};

use crate::config::MonitorFlags;
use crate::launcher::{self, Stdio};
use crate::sys::{process, signal};
use detach::Detached;
use log::CriLogWriter;
use supervise::{Output, SIGNALS};
use sync::SyncFd;

/// `ucr monitor`. Everything up to the sync report runs before any thread exists, and no
/// thread is ever started: `launcher::spawn` and the fork in `detach` both need that.
pub fn main(flags: &MonitorFlags) -> ExitCode {
    let mut sync = match SyncFd::take(flags.sync_fd) {
        Ok(sync) => sync,
        Err(e) => return failed(e, &mut SyncFd::none()),
    };
    let running = match start(&flags.bundle, &mut sync) {
        Ok(Started::Parent(code)) => return code,
        Ok(Started::Running(running)) => running,
        Err(e) => return failed(e, &mut sync),
    };
    sync.report(&SyncReport::Started {
        pid: running.container.as_raw(),
    });
    drop(sync);
    running.supervise()
}

fn failed(e: MonitorError, sync: &mut SyncFd) -> ExitCode {
    let message = crate::cri::status::chain(&e);
    // Before detaching this reaches the daemon's stderr; after, /dev/null.
    eprintln!("ucr monitor: {message}");
    sync.report(&SyncReport::Failed { message });
    ExitCode::FAILURE
}

enum Started {
    /// The short-lived parent of the detached monitor.
    Parent(ExitCode),
    Running(Running),
}

/// A started container and everything its monitor holds.
struct Running {
    bundle: PathBuf,
    container: Pid,
    started_at: SystemTime,
    output: Output,
    signals: signal::SignalQueue,
    _monitor_pid: MonitorPidFile,
}

/// Loads the config, detaches, starts the container; `Running` once it has exec'd.
fn start(bundle: &Path, sync: &mut SyncFd) -> Result<Started, MonitorError> {
    // Absolute, because the daemon's working directory means nothing to a monitor that
    // outlives it.
    let bundle = std::path::absolute(bundle).map_err(MonitorError::Bundle)?;
    let config = MonitorConfig::load(&bundle)?;
    let release = match detach::detach()? {
        Detached::Parent(code) => {
            // The child reports on the sync descriptor; the parent must not.
            sync.close();
            return Ok(Started::Parent(code));
        }
        Detached::Child(release) => release,
    };
    let monitor_pid = MonitorPidFile::write(&bundle)?;
    release.done();
    // Whatever else the daemon let us inherit must not reach the container.
    signal::cloexec_above_stdio().map_err(|source| MonitorError::Stdio {
        what: "descriptors (close-on-exec)",
        source,
    })?;

    let log = if config.log_path.as_os_str().is_empty() {
        None
    } else {
        Some(CriLogWriter::open(&config.log_path)?)
    };
    let stdio_err = |what| move |source| MonitorError::Stdio { what, source };
    let stdin: OwnedFd = File::open("/dev/null")
        .map_err(stdio_err("stdin (/dev/null)"))?
        .into();
    let (stdout_r, stdout_w) = process::cloexec_pipe().map_err(stdio_err("stdout pipe"))?;
    let (stderr_r, stderr_w) = process::cloexec_pipe().map_err(stdio_err("stderr pipe"))?;
    let stdio = Stdio {
        stdin: process::raw(&stdin),
        stdout: process::raw(&stdout_w),
        stderr: process::raw(&stderr_w),
    };
    let container = spawn(&config.spec, &stdio)?;
    let started_at = SystemTime::now();
    // Only the container holds the write ends now: its exit (and its children's) is EOF.
    drop((stdin, stdout_w, stderr_w));

    let setup = || -> Result<_, MonitorError> {
        let signals =
            signal::SignalQueue::block(&SIGNALS).map_err(|source| MonitorError::Supervise {
                step: "blocking signals",
                source,
            })?;
        let output = Output::new(stdout_r, stderr_r, log).map_err(stdio_err("output pipes"))?;
        let pid = format!("{}\n", container.as_raw());
        bundle::write_atomic(&bundle, CONTAINER_PID_FILE, pid.as_bytes())
            .map_err(MonitorError::Bundle)?;
        Ok((signals, output))
    };
    match setup() {
        Ok((signals, output)) => Ok(Started::Running(Running {
            bundle,
            container,
            started_at,
            output,
            signals,
            _monitor_pid: monitor_pid,
        })),
        Err(e) => {
            // The daemon is told nothing runs: make it true.
            let _ = signal::send_signal(container.as_raw(), Signal::SIGKILL);
            let _ = process::wait_exit_code(container);
            Err(e)
        }
    }
}

/// `launcher::spawn` with SIGPIPE at its default action, so the container does not
/// inherit the Rust runtime's "ignore" (see `sys::signal::set_sigpipe_default`). The
/// monitor ignores it again right after: a daemon that closed the sync pipe must not
/// kill it.
fn spawn(spec: &launcher::LaunchSpec, stdio: &Stdio) -> Result<Pid, MonitorError> {
    signal::set_sigpipe_default(true).map_err(|source| MonitorError::Stdio {
        what: "SIGPIPE disposition",
        source,
    })?;
    let spawned = launcher::spawn(spec, stdio);
    let _ = signal::set_sigpipe_default(false);
    Ok(spawned?)
}

impl Running {
    /// Copies output until the container ends, records the end, exits.
    fn supervise(mut self) -> ExitCode {
        let ended = supervise::supervise(self.container, &mut self.output, &self.signals);
        let Ok((exit, finished_at)) = ended else {
            // poll or waitpid failed: nothing sensible left to do, and no way to learn the
            // container's fate. `monitor.pid` goes (on drop), `exit.json` never comes.
            return ExitCode::FAILURE;
        };
        let record = ExitRecord::new(exit, self.started_at, finished_at);
        match record.store(&self.bundle) {
            Ok(()) => ExitCode::SUCCESS,
            Err(_) => ExitCode::FAILURE,
        }
    }
}

/// `monitor.pid`, removed when the monitor is done (after `exit.json` is written).
struct MonitorPidFile {
    path: PathBuf,
}

impl MonitorPidFile {
    fn write(bundle: &Path) -> Result<Self, MonitorError> {
        let pid = format!("{}\n", std::process::id());
        bundle::write_atomic(bundle, MONITOR_PID_FILE, pid.as_bytes())
            .map_err(MonitorError::Bundle)?;
        Ok(Self {
            path: bundle.join(MONITOR_PID_FILE),
        })
    }
}

impl Drop for MonitorPidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
