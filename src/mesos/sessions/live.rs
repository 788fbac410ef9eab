//! A running nested container's shared parts (`Live`), and the pump that copies its
//! output to its own client or sandbox files and to any attached readers.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use bytes::Bytes;
use tokio::sync::{mpsc, watch};

use super::{Ending, REAP};
use crate::containerizer::session::{OutputStream, Session, SessionEnd, TermSize};
use crate::mesos::codec::Format;
use crate::mesos::stream;
use crate::mesos::wire::v1::agent::process_io;

/// A session's shared parts: its output readers, its input, its end.
pub struct Live {
    pub tty: bool,
    /// `None` once the output is over: a reader added then gets an ended stream.
    pub(super) readers: Mutex<Option<Vec<Reader>>>,
    /// Taken by the input attachment while it lasts (one at a time); `None` for good
    /// once it closed stdin.
    pub(super) stdin: tokio::sync::Mutex<Option<mpsc::Sender<Bytes>>>,
    pub(super) input_busy: AtomicBool,
    pub(super) resize: Option<mpsc::Sender<TermSize>>,
    pub(super) signal: Option<mpsc::Sender<i32>>,
    /// The last signal KILL_CONTAINER sent, to tell a kill from an exit code.
    pub(super) killed_with: Mutex<Option<i32>>,
    pub(super) ended: watch::Receiver<Option<Ending>>,
}

/// One client reading a session's output, in its own encoding.
pub struct Reader {
    pub(super) format: Format,
    pub(super) tx: mpsc::Sender<Bytes>,
}

/// Where a nested container's own output goes: its session's client, or (launched
/// without a session) files in its sandbox.
pub enum Sink {
    Client(Reader),
    Files {
        stdout: tokio::fs::File,
        stderr: tokio::fs::File,
    },
}

/// Copies the session's output to its sink and readers until it ends, heartbeats on
/// idle streams; kills the process when the session's own client goes away.
pub(super) async fn pump(mut session: Session, mut sink: Sink, live: &Live) -> Ending {
    let mut heartbeat = tokio::time::interval(stream::HEARTBEAT);
    heartbeat.tick().await;
    let detached = loop {
        tokio::select! {
            chunk = session.output.recv() => {
                let Some((which, bytes)) = chunk else { break false };
                let stream_type = match which {
                    OutputStream::Stdout => process_io::data::Type::Stdout,
                    OutputStream::Stderr => process_io::data::Type::Stderr,
                };
                let io = stream::data(stream_type, bytes.clone());
                // Its own client is waited for (back-pressure to the process); extra
                // readers are not, and one that falls a queue behind is cut off.
                let sent = match &mut sink {
                    Sink::Client(primary) => tokio::select! {
                        r = primary.tx.send(stream::record(primary.format, &io)) => r.is_ok(),
                        _ = primary.tx.closed() => false,
                    },
                    Sink::Files { stdout, stderr } => {
                        use tokio::io::AsyncWriteExt;
                        let file = if which == OutputStream::Stderr { stderr } else { stdout };
                        if let Err(e) = file.write_all(&bytes).await {
                            tracing::warn!(error = %e, "writing a nested container's output");
                        }
                        true
                    }
                };
                if !sent {
                    break true;
                }
                fan_out(live, &io);
            }
            _ = client_gone(&sink) => break true,
            _ = heartbeat.tick() => {
                let io = stream::heartbeat();
                if let Sink::Client(primary) = &sink {
                    let _ = primary.tx.try_send(stream::record(primary.format, &io));
                }
                fan_out(live, &io);
            }
        }
    };
    if detached {
        // The client went away: the process goes, killed and reaped.
        tracing::info!("nested container session's client went away: killing it");
        if let Some(signal) = &session.signal {
            let _ = signal.send(libc::SIGKILL).await;
        }
        let end = tokio::time::timeout(REAP, &mut session.end).await;
        drop(session);
        live.close_readers();
        let _ = end;
        return Ending {
            status: Some(libc::SIGKILL),
            message: Some("Killed: the session's connection closed".into()),
        };
    }
    let end = (&mut session.end).await;
    drop(sink);
    live.close_readers();
    let killed_with = *live.killed_with.lock().unwrap_or_else(|e| e.into_inner());
    match end.unwrap_or(Ok(SessionEnd::Detached)) {
        Ok(SessionEnd::Exited(code)) => Ending {
            status: Some(wait_status(code, killed_with)),
            message: None,
        },
        Ok(SessionEnd::Detached) => Ending {
            status: Some(libc::SIGKILL),
            message: None,
        },
        Err(e) => Ending {
            status: None,
            message: Some(crate::error::chain(&e)),
        },
    }
}

/// The raw wait status from `ucr nsexec`'s exit code (the command's, 128 + signal when
/// killed): a code of 128 + the signal KILL_CONTAINER sent is that signal; others are
/// exit codes (a command may exit 137 on its own).
pub(super) fn wait_status(code: i32, killed_with: Option<i32>) -> i32 {
    match killed_with {
        Some(sig) if code == 128 + sig => sig,
        _ => (code & 0xff) << 8,
    }
}

/// Resolves when a session's client went away; never for files.
async fn client_gone(sink: &Sink) {
    match sink {
        Sink::Client(primary) => primary.tx.closed().await,
        Sink::Files { .. } => std::future::pending().await,
    }
}

fn fan_out(live: &Live, io: &crate::mesos::wire::v1::agent::ProcessIo) {
    let mut readers = live.readers.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(readers) = readers.as_mut() {
        readers.retain(|r| r.tx.try_send(stream::record(r.format, io)).is_ok());
    }
}

impl Live {
    /// Another reader of the output from now on (ATTACH_CONTAINER_OUTPUT).
    pub fn add_reader(&self, format: Format) -> mpsc::Receiver<Bytes> {
        let (tx, rx) = mpsc::channel(stream::QUEUE);
        if let Some(readers) = self
            .readers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            readers.push(Reader { format, tx });
        }
        rx
    }

    /// Ends every reader's stream, and those added later.
    fn close_readers(&self) {
        self.readers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
    }

    /// The input attachment's claim; `false` when another one holds it.
    pub fn claim_input(&self) -> bool {
        !self.input_busy.swap(true, Ordering::SeqCst)
    }

    pub fn release_input(&self) {
        self.input_busy.store(false, Ordering::SeqCst);
    }

    pub fn stdin(&self) -> &tokio::sync::Mutex<Option<mpsc::Sender<Bytes>>> {
        &self.stdin
    }

    pub fn resize(&self) -> Option<&mpsc::Sender<TermSize>> {
        self.resize.as_ref()
    }

    /// Resolves when the session has ended.
    pub async fn ended(&self) {
        let mut ended = self.ended.clone();
        let _ = ended.wait_for(Option::is_some).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_statuses_tell_kills_from_exit_codes() {
        assert_eq!(wait_status(3, None), 768);
        assert_eq!(wait_status(0, None), 0);
        assert_eq!(wait_status(137, Some(libc::SIGKILL)), 9);
        assert_eq!(wait_status(143, Some(libc::SIGTERM)), 15);
        // Exiting 137 by itself is an exit code.
        assert_eq!(wait_status(137, None), 137 << 8);
    }
}
