//! Streaming Exec: a command in a running container whose stdio is a [`Session`], for a
//! front door's streaming server. The same `ucr nsexec` as ExecSync (so the same cgroups,
//! seccomp filter, user and namespaces), started with pipes, or with a terminal it
//! allocates inside the container and whose master it sends back (see
//! `launcher::exec`). The command is killed when the session is dropped: a client that
//! goes away leaves nothing running.

use std::os::fd::OwnedFd;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

use super::error::{io, ContainerizerError};
use super::exec::ExecCommand;
use super::session::{OutputStream, Session, SessionEnd, SessionStreams, TermSize};
use super::Containerizer;
use crate::launcher::exec::Report;

/// Chunks in flight per direction: enough to keep a copy busy, bounded so that a client
/// that stops reading stops the command's output (back-pressure through the pipe)
/// instead of filling our memory.
const CHANNEL: usize = 16;
const READ_SIZE: usize = 32 * 1024;
/// How long `ucr nsexec` may take to enter the container and send the pty.
const CONSOLE_TIMEOUT: Duration = Duration::from_secs(30);
/// After the command exits, how long to keep reading output that a process it left
/// behind may never stop holding open.
const DRAIN: Duration = Duration::from_millis(500);

type Ended = Result<SessionEnd, ContainerizerError>;

impl Containerizer {
    /// Starts `cmd` in the container with the streams asked for. With `tty`, stdout
    /// carries the terminal (stderr is not used, as a terminal merges both) and resizes
    /// apply to it. Errors before the command runs (container not running, no such
    /// program) are returned here when they are known before the first byte; a failure
    /// `ucr nsexec` reports later comes through `end`.
    pub async fn exec_session(
        self: &Arc<Self>,
        id: &str,
        cmd: &[String],
        streams: SessionStreams,
    ) -> Result<Session, ContainerizerError> {
        let command = ExecCommand {
            argv: cmd.to_vec(),
            ..Default::default()
        };
        self.exec_command_session(id, &command, streams).await
    }

    /// [`Self::exec_session`] with a program and environment of the door's choosing.
    pub async fn exec_command_session(
        self: &Arc<Self>,
        id: &str,
        cmd: &ExecCommand,
        streams: SessionStreams,
    ) -> Result<Session, ContainerizerError> {
        let (id, spec) = self.write_exec_spec(id, cmd, streams.tty).await?;
        let started = self.spawn_exec(&id, &spec, streams).await;
        let mut started = match started {
            Ok(s) => s,
            Err(e) => {
                let _ = std::fs::remove_file(&spec);
                return Err(e);
            }
        };
        let (stdin_tx, stdin_rx) = mpsc::channel::<Bytes>(CHANNEL);
        let (out_tx, out_rx) = mpsc::channel(CHANNEL);
        let (end_tx, end_rx) = oneshot::channel::<Ended>();
        let (cancel_tx, cancel_rx) = oneshot::channel::<()>();
        let (signal_tx, signal_rx) = mpsc::channel::<i32>(4);
        let mut resize_tx = None;

        // Each stream's copy is a task; `end` waits for the output ones.
        let mut outputs = Vec::new();
        match started.console.take() {
            Some(master) => {
                let master = Arc::new(PtyMaster::new(master).map_err(io("watch pty", &spec))?);
                let (tx, rx) = mpsc::channel::<TermSize>(CHANNEL);
                resize_tx = Some(tx);
                tokio::spawn(apply_resizes(master.clone(), rx));
                if streams.stdin {
                    tokio::spawn(copy_in(stdin_rx, PtyWriter(master.clone())));
                }
                outputs.push(tokio::spawn(copy_out(
                    PtyReader(master),
                    OutputStream::Stdout,
                    out_tx.clone(),
                )));
            }
            None => {
                if let Some(stdin) = started.child.stdin.take() {
                    tokio::spawn(copy_in(stdin_rx, stdin));
                }
                if let Some(stdout) = started.child.stdout.take() {
                    outputs.push(tokio::spawn(copy_out(
                        stdout,
                        OutputStream::Stdout,
                        out_tx.clone(),
                    )));
                }
                if let Some(stderr) = started.child.stderr.take() {
                    outputs.push(tokio::spawn(copy_out(
                        stderr,
                        OutputStream::Stderr,
                        out_tx.clone(),
                    )));
                }
            }
        }
        drop(out_tx);
        tokio::spawn(async move {
            let ended = supervise(started, outputs, cancel_rx, signal_rx, id).await;
            let _ = std::fs::remove_file(&spec);
            let _ = end_tx.send(ended);
        });
        Ok(Session {
            stdin: streams.stdin.then_some(stdin_tx),
            output: out_rx,
            resize: resize_tx,
            signal: Some(signal_tx),
            end: end_rx,
            guard: Box::new(KillOnDrop(Some(cancel_tx))),
        })
    }

    /// Spawns `ucr nsexec` for a session; with a terminal, waits for the pty's master.
    async fn spawn_exec(
        &self,
        id: &str,
        spec: &std::path::Path,
        streams: SessionStreams,
    ) -> Result<Started, ContainerizerError> {
        let failed = |e| io("start ucr nsexec", &self.binary)(e);
        let (report_r, report_w) = crate::sys::process::cloexec_pipe().map_err(failed)?;
        let console = if streams.tty {
            Some(crate::sys::fdpass::socket_pair().map_err(failed)?)
        } else {
            None
        };
        let mut cmd = std::process::Command::new(&self.binary);
        cmd.arg("nsexec")
            .arg("--spec")
            .arg(spec)
            .arg("--report-fd")
            .arg(crate::sys::spawn::PASSED_FD.to_string());
        let piped = |on: bool| if on { Stdio::piped() } else { Stdio::null() };
        if streams.tty {
            // The command's stdio is the terminal; ucr nsexec's own is not needed (it
            // reports on its descriptor).
            cmd.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
        } else {
            cmd.stdin(piped(streams.stdin))
                .stdout(piped(streams.stdout))
                .stderr(piped(streams.stderr));
        }
        match &console {
            Some((_, theirs)) => {
                cmd.arg("--console-fd")
                    .arg((crate::sys::spawn::PASSED_FD + 1).to_string());
                crate::sys::spawn::pass_fds(&mut cmd, &[&report_w, theirs]);
            }
            None => crate::sys::spawn::pass_fd(&mut cmd, &report_w),
        }
        let child = tokio::process::Command::from(cmd)
            .kill_on_drop(true)
            .spawn()
            .map_err(failed)?;
        drop(report_w);
        let report = tokio::task::spawn_blocking(move || {
            std::io::read_to_string(std::fs::File::from(report_r)).unwrap_or_default()
        });
        let mut started = Started {
            child,
            report,
            console: None,
        };
        if let Some((ours, theirs)) = console {
            drop(theirs);
            let received = tokio::time::timeout(
                CONSOLE_TIMEOUT,
                tokio::task::spawn_blocking(move || crate::sys::fdpass::recv_fd(&ours)),
            )
            .await;
            match received {
                Ok(Ok(Ok(Some(master)))) => started.console = Some(master),
                // Closed without a pty: `ucr nsexec` failed first and says why.
                Ok(Ok(Ok(None))) => return Err(started.not_started(id).await),
                Ok(Ok(Err(e))) => return Err(io("receive the pty from ucr nsexec", spec)(e)),
                Ok(Err(e)) => return Err(ContainerizerError::Task(e.to_string())),
                Err(_) => {
                    return Err(io("receive the pty from ucr nsexec", spec)(
                        std::io::ErrorKind::TimedOut.into(),
                    ))
                }
            }
        }
        Ok(started)
    }
}

/// A running `ucr nsexec` and what it may still report.
struct Started {
    child: tokio::process::Child,
    report: tokio::task::JoinHandle<String>,
    console: Option<OwnedFd>,
}

impl Started {
    /// The error `ucr nsexec` reported after it exited without starting the command.
    async fn not_started(mut self, id: &str) -> ContainerizerError {
        let _ = self.child.wait().await;
        let text = self.report.await.unwrap_or_default();
        let report = parse_report(&text).unwrap_or_else(|| Report {
            kind: crate::error::ErrorKind::Internal,
            message: "ucr nsexec ended without starting the command".into(),
        });
        ContainerizerError::Exec {
            id: id.to_string(),
            kind: report.kind,
            message: report.message,
        }
    }
}

/// `ucr nsexec`'s report line, if it wrote one (only when the command did not start).
pub(super) fn parse_report(text: &str) -> Option<Report> {
    let line = text.lines().next()?;
    Some(serde_json::from_str(line).unwrap_or_else(|_| Report {
        kind: crate::error::ErrorKind::Internal,
        message: line.to_string(),
    }))
}

/// Waits for the command (or the session's end), then for its output.
async fn supervise(
    mut started: Started,
    outputs: Vec<tokio::task::JoinHandle<()>>,
    mut cancel: oneshot::Receiver<()>,
    mut signals: mpsc::Receiver<i32>,
    id: String,
) -> Ended {
    use crate::launcher::exec::{FORWARDED, KILL_COMMAND};
    let status = loop {
        tokio::select! {
            status = started.child.wait() => break status,
            Some(signal) = signals.recv() => {
                // `ucr nsexec` kills and reaps the command on KILL_COMMAND, and passes
                // the forwarded ones on; `id()` is `None` once it is reaped.
                let to_exec = if signal == libc::SIGKILL {
                    Some(KILL_COMMAND as i32)
                } else {
                    FORWARDED.iter().any(|s| *s as i32 == signal).then_some(signal)
                };
                if let (Some(sig), Some(pid)) = (to_exec, started.child.id()) {
                    crate::sys::kill::signal(pid as i32, sig);
                }
            }
            _ = &mut cancel => {
                // The door dropped the session: the client went away. SIGKILL to `ucr
                // exec` kills the command too (its parent-death signal).
                let _ = started.child.kill().await;
                return Ok(SessionEnd::Detached);
            }
        }
    }
    .map_err(|e| ContainerizerError::Task(format!("waiting for ucr nsexec: {e}")))?;
    if let Ok(Ok(text)) = tokio::time::timeout(DRAIN, &mut started.report).await {
        if let Some(report) = parse_report(&text) {
            return Err(ContainerizerError::Exec {
                id,
                kind: report.kind,
                message: report.message,
            });
        }
    }
    for output in outputs {
        if tokio::time::timeout(DRAIN, output).await.is_err() {
            tracing::debug!(container = %id, "exec left a process holding its output open");
        }
    }
    Ok(SessionEnd::Exited(status.code().unwrap_or_else(|| {
        128 + std::os::unix::process::ExitStatusExt::signal(&status).unwrap_or(0)
    })))
}

/// Ends the session's command when the session is dropped.
struct KillOnDrop(Option<oneshot::Sender<()>>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(cancel) = self.0.take() {
            let _ = cancel.send(());
        }
    }
}

async fn copy_in(mut from: mpsc::Receiver<Bytes>, mut to: impl AsyncWrite + Unpin) {
    while let Some(chunk) = from.recv().await {
        if to.write_all(&chunk).await.is_err() {
            return;
        }
    }
    // The client closed stdin: so does the command's (a pipe's end of file; a terminal
    // stays, since it also carries the output).
    let _ = to.shutdown().await;
}

async fn copy_out(
    mut from: impl AsyncRead + Unpin,
    stream: OutputStream,
    to: mpsc::Sender<(OutputStream, Bytes)>,
) {
    let mut buf = vec![0u8; READ_SIZE];
    loop {
        match from.read(&mut buf).await {
            // A pty's master reads EIO once no process holds the slave: its end of file.
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if to
                    .send((stream, Bytes::copy_from_slice(&buf[..n])))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
    }
}

async fn apply_resizes(master: Arc<PtyMaster>, mut sizes: mpsc::Receiver<TermSize>) {
    while let Some(size) = sizes.recv().await {
        let size = crate::sys::console::WindowSize {
            rows: size.height,
            cols: size.width,
        };
        if let Err(e) = crate::sys::console::set_window_size(master.fd.get_ref(), size) {
            tracing::debug!(error = %e, "resizing an exec's terminal");
        }
    }
}

/// A pty master in non-blocking mode, shared by the reader, the writer and the resizes.
struct PtyMaster {
    fd: tokio::io::unix::AsyncFd<OwnedFd>,
}

impl PtyMaster {
    fn new(fd: OwnedFd) -> std::io::Result<Self> {
        crate::sys::signal::set_nonblocking(&fd)?;
        Ok(Self {
            fd: crate::sys::asyncfd::register(fd)?,
        })
    }
}

struct PtyReader(Arc<PtyMaster>);
struct PtyWriter(Arc<PtyMaster>);

impl AsyncRead for PtyReader {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        loop {
            let mut guard = std::task::ready!(self.0.fd.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            match guard.try_io(|fd| rustix::io::read(fd.get_ref(), unfilled).map_err(Into::into)) {
                Ok(Ok(n)) => {
                    buf.advance(n);
                    return std::task::Poll::Ready(Ok(()));
                }
                Ok(Err(e)) => return std::task::Poll::Ready(Err(e)),
                Err(_would_block) => continue,
            }
        }
    }
}

impl AsyncWrite for PtyWriter {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        data: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        loop {
            let mut guard = std::task::ready!(self.0.fd.poll_write_ready(cx))?;
            match guard.try_io(|fd| rustix::io::write(fd.get_ref(), data).map_err(Into::into)) {
                Ok(result) => return std::task::Poll::Ready(result),
                Err(_would_block) => continue,
            }
        }
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}
