//! Interactive sessions with a container, door-neutral: what streaming Exec and Attach
//! give a front door (the CRI's streaming server today, any other door later). A session
//! is channels, not sockets or HTTP: the door copies between them and its own protocol
//! (SPDY, WebSocket), and the containerizer decides what the channels are connected to
//! (`ucr nsexec`'s pipes or pty for Exec, the monitor's attach socket for Attach).

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

/// Which of the process's output streams a chunk came from. A session with a terminal has
/// only `Stdout` (the terminal merges both).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputStream {
    Stdout,
    Stderr,
}

/// A terminal's size in character cells, as TIOCSWINSZ takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TermSize {
    pub width: u16,
    pub height: u16,
}

/// What the client asked to be connected to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SessionStreams {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEnd {
    /// The exec'd command (or, for Attach, the container) exited with this code (128 +
    /// signal when killed).
    Exited(i32),
    /// Attach only: the container still runs, the monitor closed the attachment.
    Detached,
}

/// One running session. Dropping it ends it: an exec'd command is killed (a client that
/// went away leaves nothing behind), an attachment is closed (the container runs on).
pub struct Session {
    /// Bytes for the process's stdin; `None` when stdin was not asked for. Dropping the
    /// sender closes the process's stdin (end of file).
    pub stdin: Option<mpsc::Sender<Bytes>>,
    /// The process's output in the order read; closed when the process's output ends.
    /// Only the streams asked for are sent.
    pub output: mpsc::Receiver<(OutputStream, Bytes)>,
    /// Terminal size changes; `None` without a terminal.
    pub resize: Option<mpsc::Sender<TermSize>>,
    /// Signals for an exec'd command (`None` for Attach): SIGKILL kills and reaps it,
    /// SIGTERM, SIGINT, SIGHUP and SIGQUIT are passed on to it, others are ignored (a
    /// door refuses them first). Sent to `ucr nsexec` only while it is unreaped, so never
    /// to a process that took over its pid.
    pub signal: Option<mpsc::Sender<i32>>,
    /// Resolves once the session is over and its output has been sent. An error is one
    /// the door reports on its error channel (for Exec: the command could not start).
    pub end: oneshot::Receiver<Result<SessionEnd, crate::containerizer::ContainerizerError>>,
    /// Held for its Drop: kills or detaches what the session started.
    pub guard: Box<dyn Send + Sync>,
}
