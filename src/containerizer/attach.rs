//! Attach: a running container's stdio as a door-neutral [`Session`], through its
//! monitor's attach socket (`monitor::attach`). The monitor copies the container's
//! output to every attachment and still to the CRI log; this side turns one attachment
//! into the session's channels.
//!
//! containerd's rules (`internal/cri/io/container_io.go`, `Attach`), which kubelet and
//! kubectl were written against:
//! - the container's config decides, not the request: stdin asked of a container without
//!   `stdin` is ignored (the session has no stdin; kubelet's streaming server has already
//!   refused a request without any stream), and a container with a terminal gives stdout
//!   only, with resizes; the request's `tty` is the door's framing business;
//! - when the session's stdin ends: with `stdin_once` and no terminal, the container's
//!   stdin closes and the session goes on until the container exits; otherwise the
//!   attachment ends there (`Detached`) and the container's stdin stays open.

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use super::error::ContainerizerError;
use super::session::{OutputStream, Session, SessionEnd, SessionStreams, TermSize};
use super::types::ContainerState;
use super::Containerizer;
use crate::monitor::attach::client::Connection;
use crate::monitor::attach::protocol::{
    ClientMessage, MonitorMessage, Stream, Wants, MAX_DATA, MAX_MESSAGE,
};
use crate::sys::console::WindowSize;

/// Chunks of output the door has not taken yet; beyond that the session stops reading
/// its socket, and once that is full too the monitor drops output for it (it never
/// waits for an attacher) and says how much.
const OUTPUT_QUEUE: usize = 64;
const STDIN_QUEUE: usize = 16;
const RESIZE_QUEUE: usize = 4;

impl Containerizer {
    /// Attaches to the running container `id`: its output from now on (the log has what
    /// came before), its stdin when it has one and `streams.stdin` asks, its terminal's
    /// size when it has one. Dropping the session ends only the attachment.
    pub async fn attach(
        self: &Arc<Self>,
        id: &str,
        streams: SessionStreams,
    ) -> Result<Session, ContainerizerError> {
        let c = self.container_status(id).await?;
        if c.state != ContainerState::Running {
            return Err(ContainerizerError::BadState {
                id: c.id,
                state: c.state,
                op: "attach to it",
            });
        }
        let tty = c.config.tty;
        let wants = Wants {
            stdin: streams.stdin && c.config.stdin,
            stdout: streams.stdout,
            // A terminal merges both; containerd sends a tty container's stderr nowhere.
            stderr: streams.stderr && !tty,
        };
        let bundle = self.paths.bundle(&c.id);
        let conn = match Connection::open(&bundle, wants).await {
            Ok(conn) => conn,
            Err(source) => {
                // It may have ended meanwhile: say so rather than what the socket said.
                if let Ok(now) = self.container_status(id).await {
                    if now.state != ContainerState::Running {
                        return Err(ContainerizerError::BadState {
                            id: now.id,
                            state: now.state,
                            op: "attach to it",
                        });
                    }
                }
                return Err(ContainerizerError::Attach { id: c.id, source });
            }
        };
        let (out_tx, output) = mpsc::channel(OUTPUT_QUEUE);
        let (stdin_tx, stdin_rx) = mpsc::channel(STDIN_QUEUE);
        let (resize_tx, resize_rx) = mpsc::channel(RESIZE_QUEUE);
        let (end_tx, end) = oneshot::channel();
        let input = Input {
            stdin: wants.stdin.then_some(stdin_rx),
            resize: tty.then_some(resize_rx),
            // containerd's rule (see the module doc): only stdin_once without a
            // terminal outlives its stdin.
            detach_when_stdin_ends: !c.config.stdin_once || tty,
        };
        let task = tokio::spawn(async move {
            let ended = {
                let reader = read_output(&conn, out_tx, bundle);
                let writer = write_input(&conn, input);
                tokio::pin!(reader, writer);
                tokio::select! {
                    end = &mut reader => end,
                    end = &mut writer => end,
                }
                // Both dropped here: the output channel closes before `end` resolves.
            };
            let _ = end_tx.send(Ok(ended));
        });
        Ok(Session {
            stdin: wants.stdin.then_some(stdin_tx),
            output,
            resize: tty.then_some(resize_tx),
            signal: None,
            end,
            guard: Box::new(Detach(task)),
        })
    }
}

/// Ends the attachment when the session is dropped: the task goes, with it the socket,
/// and the monitor forgets the attacher (the container runs on).
struct Detach(tokio::task::JoinHandle<()>);

impl Drop for Detach {
    fn drop(&mut self) {
        self.0.abort();
    }
}

struct Input {
    stdin: Option<mpsc::Receiver<Bytes>>,
    resize: Option<mpsc::Receiver<TermSize>>,
    detach_when_stdin_ends: bool,
}

/// Copies output from the monitor to the session until the monitor closes the
/// connection; then how the container ended, from `exit.json` (none there: the monitor
/// died, and the container's fate is the status call's to tell).
async fn read_output(
    conn: &Connection,
    out: mpsc::Sender<(OutputStream, Bytes)>,
    bundle: PathBuf,
) -> SessionEnd {
    let mut buf = vec![0u8; MAX_MESSAGE];
    while let Ok(Some(len)) = conn.recv(&mut buf).await {
        match MonitorMessage::parse(&buf[..len]) {
            Ok(MonitorMessage::Output(stream, data)) => {
                let stream = match stream {
                    Stream::Stdout => OutputStream::Stdout,
                    Stream::Stderr => OutputStream::Stderr,
                };
                // A door that stopped taking output still gets the session's end.
                let _ = out.send((stream, Bytes::copy_from_slice(data))).await;
            }
            Ok(MonitorMessage::Lost(bytes)) => {
                // The session has no way to say so; the operator learns it here.
                tracing::warn!(bundle = %bundle.display(), bytes, "attach: output came faster than this session took it; the monitor dropped some for it");
            }
            Ok(MonitorMessage::Attached { .. }) => {}
            Err(e) => {
                tracing::warn!(bundle = %bundle.display(), error = %e, "attach: a malformed message from the monitor");
                break;
            }
        }
    }
    drop(out);
    match crate::monitor::read_exit(&bundle) {
        Ok(Some(record)) => SessionEnd::Exited(record.exit_code),
        _ => SessionEnd::Detached,
    }
}

/// Sends the session's stdin and resizes to the monitor. Returns only when the session
/// is over on this side: its stdin ended and the attachment ends with it.
async fn write_input(conn: &Connection, mut input: Input) -> SessionEnd {
    loop {
        tokio::select! {
            data = recv_or_wait(&mut input.stdin) => match data {
                Some(data) => {
                    for chunk in data.chunks(MAX_DATA) {
                        if conn.send(ClientMessage::Stdin(chunk)).await.is_err() {
                            // The connection is gone: the reader sees it end.
                            return std::future::pending().await;
                        }
                    }
                }
                None => {
                    input.stdin = None;
                    let _ = conn.send(ClientMessage::CloseStdin).await;
                    if input.detach_when_stdin_ends {
                        return SessionEnd::Detached;
                    }
                }
            },
            size = recv_or_wait(&mut input.resize) => match size {
                Some(size) => {
                    let size = WindowSize {
                        rows: size.height,
                        cols: size.width,
                    };
                    let _ = conn.send(ClientMessage::Resize(size)).await;
                }
                None => input.resize = None,
            },
        }
    }
}

/// The next item of `rx`, or never when there is no channel (any more).
async fn recv_or_wait<T>(rx: &mut Option<mpsc::Receiver<T>>) -> Option<T> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}
