//! One monitor's life after its arguments are parsed: load the config, detach, open the
//! attach socket, start the container with its stdio on pipes (or a terminal it makes),
//! then supervise it and record its end.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

use nix::unistd::Pid;

use super::attach::Attachers;
use super::bundle::{self, CONTAINER_PID_FILE, MONITOR_PID_FILE};
use super::detach::{self, Detached};
use super::input::Input;
use super::log::{CriLogWriter, FilesWriter, LogFormat, LogWriter};
use super::supervise::{self, Output, SIGNALS};
use super::sync::{HoldFd, SyncFd};
use super::{ExitRecord, MonitorConfig, MonitorError};
use crate::handshake::Report;
use crate::launcher::{self, Stdio};
use crate::sys::pidfd::ProcessId;
use crate::sys::{fdpass, kill, process, signal};

pub(super) enum Started {
    /// The short-lived parent of the detached monitor.
    Parent(ExitCode),
    // Boxed: it holds the log writer, and the parent variant nothing.
    Running(Box<Running>),
}

/// A started container and everything its monitor holds.
pub(super) struct Running {
    bundle: PathBuf,
    pub(super) container: Pid,
    started_at: SystemTime,
    output: Output,
    input: Input,
    signals: signal::SignalQueue,
    _monitor_pid: MonitorPidFile,
}

/// Loads the config, detaches, starts the container; `Running` once it has exec'd.
pub(super) fn start(
    bundle: &Path,
    sync: &mut SyncFd,
    hold: &mut HoldFd,
) -> Result<Started, MonitorError> {
    // Absolute, because the daemon's working directory means nothing to a monitor that
    // outlives it.
    let bundle = std::path::absolute(bundle)
        .map_err(|e| MonitorError::Bundle(bundle::with_path(e, "resolving", bundle)))?;
    let config = MonitorConfig::load(&bundle)?;
    let release = match detach::detach()? {
        Detached::Parent(code) => {
            // The child reports on the sync descriptor; the parent must not.
            sync.close();
            hold.close();
            return Ok(Started::Parent(code));
        }
        Detached::Child(release) => release,
    };
    let monitor_pid = MonitorPidFile::write(&bundle)?;
    release.done();
    launch(bundle, &config, monitor_pid, sync, hold).map(|r| Started::Running(Box::new(r)))
}

/// The detached monitor's part: the container's stdio, the container, the signalfd and
/// the pid file; on error nothing is left running.
fn launch(
    bundle: PathBuf,
    config: &MonitorConfig,
    monitor_pid: MonitorPidFile,
    sync: &mut SyncFd,
    hold: &mut HoldFd,
) -> Result<Running, MonitorError> {
    // Out of the daemon's cgroup before anything is started (see
    // `LaunchSpec::monitor_cgroups`). Best effort: a monitor left in the daemon's cgroup
    // still does its work, it only shares the daemon's fate under a service manager.
    for procs in &config.spec.monitor_cgroups {
        let _ = std::fs::write(procs, "0");
    }
    // Whatever else the daemon let us inherit must not reach the container.
    signal::cloexec_above_stdio().map_err(|source| MonitorError::Stdio {
        what: "descriptors (close-on-exec)",
        source,
    })?;

    let log = if config.log_path.as_os_str().is_empty() {
        None
    } else if config.log_format == LogFormat::Files {
        // `log_path` is the directory that holds `stdout` and `stderr`.
        Some(LogWriter::Files(FilesWriter::open(&config.log_path)?))
    } else {
        Some(LogWriter::Cri(
            match config.log_path.strip_prefix(&config.log_dir) {
                Ok(rel) if !config.log_dir.as_os_str().is_empty() => {
                    CriLogWriter::open_beneath(&config.log_dir, rel)?
                }
                _ => CriLogWriter::open(&config.log_path)?,
            },
        ))
    };
    // Before the container starts, so the daemon can attach as soon as it runs.
    let attachers = Attachers::listen(&bundle).map_err(|source| MonitorError::AttachSocket {
        bundle: bundle.clone(),
        source,
    })?;
    let stdio_err = |what| move |source| MonitorError::Stdio { what, source };
    let (child_io, ours) = if config.tty {
        terminal_stdio().map_err(stdio_err("terminal socket"))?
    } else {
        pipe_stdio(config.stdin)?
    };
    // The launcher gives the container default signal dispositions (the monitor, like
    // any Rust program, ignores SIGPIPE, and must go on ignoring it: a daemon that closed
    // the sync pipe must not kill it).
    // When asked to, hold the process before exec until the daemon (its isolators'
    // `isolate`) releases it; if the daemon says no or goes away, it never runs.
    let holding = hold.is_set();
    let mut held = |pid: nix::unistd::Pid| -> Result<(), String> {
        let id = ProcessId::of(pid.as_raw()).map_err(|e| format!("reading process {pid}: {e}"))?;
        sync.send(&Report::Held(id));
        hold.wait_release()
    };
    let barrier: Option<&mut dyn FnMut(nix::unistd::Pid) -> Result<(), String>> =
        if holding { Some(&mut held) } else { None };
    let container = launcher::spawn(&config.spec, &child_io.stdio(), barrier)?;
    let started_at = SystemTime::now();
    // Only the container holds its ends now: its exit (and its children's) is EOF.
    drop(child_io);

    let setup = || -> Result<_, MonitorError> {
        let signals =
            signal::SignalQueue::block(&SIGNALS).map_err(|source| MonitorError::Supervise {
                step: "blocking signals",
                source,
            })?;
        let (output, input) = ours.into_output(config, log, attachers)?;
        // With its start time: the process is our unreaped child, so its pid cannot have
        // been reused yet, and the pair names it for good (see `sys::pidfd`).
        let id = ProcessId::of(container.as_raw()).map_err(MonitorError::Bundle)?;
        bundle::write_atomic(
            &bundle,
            CONTAINER_PID_FILE,
            bundle::process_line(id).as_bytes(),
        )
        .map_err(MonitorError::Bundle)?;
        Ok((signals, output, input))
    };
    match setup() {
        Ok((signals, output, input)) => Ok(Running {
            bundle,
            container,
            started_at,
            output,
            input,
            signals,
            _monitor_pid: monitor_pid,
        }),
        Err(e) => {
            // The daemon is told nothing runs: make it true.
            kill::signal(container.as_raw(), libc::SIGKILL);
            let _ = process::wait_exit_code(container);
            Err(e)
        }
    }
}

impl Running {
    /// Copies output until the container ends, records the end, exits.
    pub(super) fn supervise(mut self) -> ExitCode {
        let ended = supervise::supervise(
            self.container,
            &mut self.output,
            &mut self.input,
            &self.signals,
        );
        let Ok((exit, finished_at)) = ended else {
            // poll or waitpid failed: nothing sensible left to do, and no way to learn the
            // container's fate. `monitor.pid` goes (on drop), `exit.json` never comes.
            return ExitCode::FAILURE;
        };
        let record = ExitRecord::new(exit, self.started_at, finished_at);
        let stored = record.store(&self.bundle);
        // Only now: an attacher that reads the end of its socket finds `exit.json`.
        drop(self.output);
        match stored {
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
        let me = ProcessId::of(std::process::id() as i32).map_err(MonitorError::Bundle)?;
        bundle::write_atomic(
            bundle,
            MONITOR_PID_FILE,
            bundle::process_line(me).as_bytes(),
        )
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

/// The container's ends of its stdio, closed once it has started.
enum ChildIo {
    Pipes {
        /// `/dev/null`, or the read end of the stdin pipe.
        stdin: OwnedFd,
        stdout: OwnedFd,
        stderr: OwnedFd,
    },
    /// The socket its process sends its terminal's master on.
    Terminal(OwnedFd),
}

impl ChildIo {
    fn stdio(&self) -> Stdio {
        match self {
            ChildIo::Pipes {
                stdin,
                stdout,
                stderr,
            } => Stdio {
                stdin: process::raw(stdin),
                stdout: process::raw(stdout),
                stderr: process::raw(stderr),
                terminal: None,
            },
            ChildIo::Terminal(socket) => Stdio {
                stdin: -1,
                stdout: -1,
                stderr: -1,
                terminal: Some(process::raw(socket)),
            },
        }
    }
}

/// The monitor's ends.
enum OurIo {
    Pipes {
        /// The write end of the stdin pipe, with `stdin`.
        stdin: Option<OwnedFd>,
        stdout: OwnedFd,
        stderr: OwnedFd,
    },
    /// Where the terminal's master arrives.
    Terminal(OwnedFd),
}

impl OurIo {
    /// The output and input the loop serves. For a terminal, its master: read as stdout,
    /// written as stdin (when the container has stdin), resized.
    fn into_output(
        self,
        config: &MonitorConfig,
        log: Option<LogWriter>,
        attachers: Attachers,
    ) -> Result<(Output, Input), MonitorError> {
        let stdio_err = |what| move |source| MonitorError::Stdio { what, source };
        match self {
            OurIo::Pipes {
                stdin,
                stdout,
                stderr,
            } => {
                let output = Output::new(stdout, Some(stderr), log, attachers)
                    .map_err(stdio_err("output pipes"))?;
                let input = match stdin {
                    Some(w) => Input::new(Some(w), None, config.stdin_once)
                        .map_err(stdio_err("stdin pipe"))?,
                    None => Input::none(),
                };
                Ok((output, input))
            }
            OurIo::Terminal(socket) => {
                // Sent before its exec, which `spawn` waited for: it is there to take.
                let master = fdpass::try_recv_fd(&socket)
                    .map_err(stdio_err("terminal"))?
                    .ok_or(MonitorError::NoTerminal)?;
                let dup = |fd: &OwnedFd| fd.try_clone().map_err(stdio_err("terminal"));
                let stdin = if config.stdin {
                    Some(dup(&master)?)
                } else {
                    None
                };
                let input = Input::new(stdin, Some(dup(&master)?), config.stdin_once)
                    .map_err(stdio_err("terminal"))?;
                let output =
                    Output::new(master, None, log, attachers).map_err(stdio_err("terminal"))?;
                Ok((output, input))
            }
        }
    }
}

/// Pipes for stdout and stderr, and for stdin when the container has it (else
/// `/dev/null`).
fn pipe_stdio(stdin: bool) -> Result<(ChildIo, OurIo), MonitorError> {
    let stdio_err = |what| move |source| MonitorError::Stdio { what, source };
    let (child_stdin, our_stdin) = if stdin {
        let (r, w) = process::cloexec_pipe().map_err(stdio_err("stdin pipe"))?;
        (r, Some(w))
    } else {
        let null: OwnedFd = File::open("/dev/null")
            .map_err(stdio_err("stdin (/dev/null)"))?
            .into();
        (null, None)
    };
    let (stdout_r, stdout_w) = process::cloexec_pipe().map_err(stdio_err("stdout pipe"))?;
    let (stderr_r, stderr_w) = process::cloexec_pipe().map_err(stdio_err("stderr pipe"))?;
    Ok((
        ChildIo::Pipes {
            stdin: child_stdin,
            stdout: stdout_w,
            stderr: stderr_w,
        },
        OurIo::Pipes {
            stdin: our_stdin,
            stdout: stdout_r,
            stderr: stderr_r,
        },
    ))
}

/// The socket pair the container's process hands its terminal's master over.
fn terminal_stdio() -> std::io::Result<(ChildIo, OurIo)> {
    let (ours, theirs) = fdpass::socket_pair()?;
    Ok((ChildIo::Terminal(theirs), OurIo::Terminal(ours)))
}
