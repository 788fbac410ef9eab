//! A SPDY/3.1 stream multiplexer over any `AsyncRead + AsyncWrite`: the server side of
//! Kubernetes exec/attach/port-forward connections, and a client for tests.
//!
//! `Connection::server(io)` (or `client`) spawns two tasks: a reader that decodes frames and
//! dispatches them to streams, and a writer that drains one ordered queue of outbound
//! frames (with the connection's header compressor, so compression follows wire order).
//! Streams opened by the peer arrive as `Incoming` on a channel; `accept` answers SYN_REPLY
//! and gives a `Stream`, which is `AsyncRead + AsyncWrite`.
//!
//! # Flow control, and what moby/spdystream does about it
//!
//! Every Kubernetes client speaks SPDY through moby/spdystream, and spdystream does no flow
//! control at all:
//! - it implements SPDY/3 (`spdy/types.go`: `const Version = 3`), so it knows nothing of
//!   3.1's session window, although Kubernetes negotiates `SPDY/3.1` in the HTTP upgrade;
//! - nothing in it ever builds a WINDOW_UPDATE or SETTINGS frame to send (only the framer,
//!   `spdy/write.go`, can serialize them); received ones reach the `default:` case of the
//!   frame switch in `(*Connection).Serve`, get queued, and `(*Connection).frameHandler`
//!   drops them as "unhandled frame type";
//! - `(*Stream).WriteData` (`stream.go`) sends every `Write` as one DATA frame of any size up
//!   to 2^24 - 1 with no window check, and `(*Connection).handleDataFrame` hands data to the
//!   reader over an unbuffered channel, blocking its frame worker: its only backpressure is
//!   TCP's.
//!
//! So a sender that kept to spdystream's windows would stall after its first 64 KiB, and a
//! receiver that reset streams overrunning its window would break `kubectl cp` and any large
//! stdin. This side therefore respects the peer's windows only once the peer has shown it
//! keeps them: per-stream windows after it sends SETTINGS INITIAL_WINDOW_SIZE or any
//! WINDOW_UPDATE, the session window after a WINDOW_UPDATE on stream 0 (SPDY/3.1). The same
//! facts decide the receive side: a peer that has shown flow control and overruns a window
//! gets RST_STREAM FLOW_CONTROL_ERROR (GOAWAY for the session window); one that has not gets
//! no WINDOW_UPDATEs (they would only crowd spdystream's bounded frame queues) and is held
//! back the way spdystream holds back its peers: the reader stops reading the transport
//! while a stream has more than a window's worth unread. Each side announces flow control
//! as its first frames (SETTINGS, then a session WINDOW_UPDATE), which spdystream parses and
//! drops, so two endpoints of this implementation use strict windows from the start.
//!
//! spdystream also stops reading at a GOAWAY (`Serve` breaks out of its read loop), so
//! `close()` queues the GOAWAY behind everything already written.

mod reader;
mod state;
mod stream;
mod writer;

use std::fmt;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot, Notify, Semaphore};
use tokio_util::sync::CancellationToken;

use self::state::{End, Outbox, Outgoing, Role, State, StreamState};
pub use self::stream::Stream;
use super::frame::{
    Frame, GoAwayStatus, RstStatus, Setting, SETTINGS_INITIAL_WINDOW_SIZE,
    SETTINGS_MAX_CONCURRENT_STREAMS,
};
use super::headers::{self, Headers};
use super::SpdyError;

/// SPDY/3's default stream window; ours, announced and never changed.
const INITIAL_WINDOW: u32 = 64 * 1024;
/// The session window granted to a SPDY/3.1 peer. Credit comes back as the application
/// reads, so this many bytes of unread data, across streams, stop the peer.
const SESSION_WINDOW: u32 = 4 << 20;
/// Writes are cut into DATA frames of at most this much: two fill a default window.
const MAX_DATA_CHUNK: usize = 32 * 1024;
/// DATA bytes queued for the writer across all streams before writes wait.
const WRITE_BUDGET: usize = 256 * 1024;
/// Streams the peer may have open at once; more are refused with REFUSED_STREAM. Kubernetes
/// needs five for an exec and two per forwarded connection.
pub const MAX_CONCURRENT_STREAMS: usize = 1000;
/// Answers (PING echoes, RSTs) queued unwritten before the peer counts as flooding us.
const MAX_QUEUED_REPLIES: usize = 1024;
/// For peers without flow control: unread bytes on one stream, and on all, past which the
/// reader stops reading the transport until the application catches up.
const LENIENT_STREAM_BUFFER: usize = INITIAL_WINDOW as usize;
const LENIENT_CONNECTION_BUFFER: usize = 4 << 20;
/// How long a closing connection may take to write out its queue and GOAWAY.
const CLOSE_GRACE: Duration = Duration::from_secs(5);
/// Any frame the 24-bit length allows: spdystream sends a whole `Write` as one DATA frame.
const MAX_FRAME_LEN: usize = super::frame::MAX_LENGTH;

struct Shared {
    state: Mutex<State>,
    /// Bytes of DATA the writer may have queued (`WRITE_BUDGET`); closed when the
    /// connection ends so waiting writes fail.
    budget: Arc<Semaphore>,
    /// Cancelled when the connection is over: both tasks stop and `closed()` returns.
    ended: CancellationToken,
    /// Unread data was read or dropped: the reader may be waiting for room.
    space: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves state that is still consistent
        // enough to fail every stream; refusing to lock would hang them instead.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Marks the connection over for every stream and pending `open()`. The tasks are
    /// stopped separately, by `ended`.
    fn finish(&self, st: &mut State, why: End) {
        if st.end.is_some() {
            return;
        }
        tracing::debug!(?why, "SPDY connection over");
        st.end = Some(why);
        for s in st.streams.values_mut() {
            s.fail_open(SpdyError::ConnectionClosed);
            s.wake();
        }
        self.budget.close();
        self.space.notify_one();
    }

    /// Ends the connection at once: streams fail, both tasks stop.
    fn end_now(&self, why: End) {
        let mut st = self.lock();
        self.finish(&mut st, why);
        drop(st);
        self.ended.cancel();
    }

    /// Sends GOAWAY and closes: streams fail now; frames already queued still go out, then
    /// the GOAWAY, then the writer ends the connection. A peer that does not read gets
    /// `CLOSE_GRACE` before the connection is dropped regardless.
    fn go_away(&self, st: &mut State, status: GoAwayStatus, why: End) {
        if st.went_away || st.end.is_some() {
            self.finish(st, why);
            return;
        }
        st.went_away = true;
        st.out.send(Outgoing::GoAway {
            last_good: st.last_peer_id,
            status,
        });
        self.finish(st, why);
        let ended = self.ended.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = tokio::time::sleep(CLOSE_GRACE) => ended.cancel(),
                () = ended.cancelled() => {}
            }
        });
    }
}

/// A SPDY connection; clones share it. It lives until `close()`, a protocol error, or the
/// peer going away; dropping handles does not close it.
#[derive(Clone)]
pub struct Connection {
    shared: Arc<Shared>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.shared.lock();
        f.debug_struct("Connection")
            .field("role", &st.role)
            .field("streams", &st.streams.len())
            .field("end", &st.end)
            .finish()
    }
}

impl Connection {
    /// The server side: the peer opens odd stream ids. Spawns the reader and writer tasks
    /// on the current tokio runtime; streams the peer opens arrive on the receiver.
    pub fn server<T>(io: T) -> (Connection, mpsc::Receiver<Incoming>)
    where
        T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        Self::start(io, Role::Server)
    }

    /// The client side: this side opens odd stream ids (the test suite's role).
    pub fn client<T>(io: T) -> (Connection, mpsc::Receiver<Incoming>)
    where
        T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        Self::start(io, Role::Client)
    }

    fn start<T>(io: T, role: Role) -> (Connection, mpsc::Receiver<Incoming>)
    where
        T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let (tx, rx) = mpsc::unbounded_channel();
        let replies = Arc::new(AtomicUsize::new(0));
        let mut state = State::new(role, Outbox::new(tx, Arc::clone(&replies)));
        // Announce flow control first (see the module doc): our stream window, and the
        // session window raised from SPDY/3.1's 64 KiB default.
        state.out.frame(Frame::Settings {
            clear_persisted: false,
            entries: vec![
                Setting {
                    flags: 0,
                    id: SETTINGS_MAX_CONCURRENT_STREAMS,
                    value: MAX_CONCURRENT_STREAMS as u32,
                },
                Setting {
                    flags: 0,
                    id: SETTINGS_INITIAL_WINDOW_SIZE,
                    value: INITIAL_WINDOW,
                },
            ],
        });
        state.out.frame(Frame::WindowUpdate {
            stream_id: 0,
            delta: SESSION_WINDOW - INITIAL_WINDOW,
        });
        state.flow.recv_session = i64::from(SESSION_WINDOW);
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            budget: Arc::new(Semaphore::new(WRITE_BUDGET)),
            ended: CancellationToken::new(),
            space: Notify::new(),
        });
        // Capacity for every stream the peer may open, so only the limit refuses them.
        let (incoming_tx, incoming_rx) = mpsc::channel(MAX_CONCURRENT_STREAMS);
        let (rd, wr) = tokio::io::split(io);
        tokio::spawn(reader::run(Arc::clone(&shared), rd, incoming_tx));
        tokio::spawn(writer::run(Arc::clone(&shared), wr, rx, replies));
        (Connection { shared }, incoming_rx)
    }

    /// Opens a stream with these headers and waits for the peer's SYN_REPLY. With `fin`,
    /// this side sends nothing on it (the stream is half-closed from the start).
    pub async fn open(&self, headers: Headers, fin: bool) -> Result<Stream, SpdyError> {
        headers::validate(&headers)?;
        let (tx, rx) = oneshot::channel();
        let id = {
            let mut st = self.shared.lock();
            if st.end.is_some() || st.went_away {
                return Err(SpdyError::ConnectionClosed);
            }
            if st.peer_went_away {
                return Err(SpdyError::GoneAway);
            }
            let id = st.next_id().ok_or(SpdyError::StreamIdsExhausted)?;
            let mut s = StreamState::new(true, st.flow.initial_send);
            s.reply = Some(tx);
            s.local_fin = fin;
            st.streams.insert(id, s);
            // Queued under the lock: ids reach the wire in increasing order.
            st.out.send(Outgoing::SynStream {
                id,
                headers: headers.clone(),
                fin,
            });
            id
        };
        let mut pending = PendingOpen {
            shared: &self.shared,
            id: Some(id),
        };
        match rx.await {
            Ok(Ok(())) => {
                pending.id = None;
                Ok(Stream::new(Arc::clone(&self.shared), id, headers))
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(SpdyError::ConnectionClosed),
        }
    }

    /// Sends GOAWAY after everything already written, then closes the transport. Streams
    /// fail from now on (reads first return what had arrived). Returns once closed.
    pub async fn close(&self) {
        {
            let mut st = self.shared.lock();
            self.shared.go_away(&mut st, GoAwayStatus::OK, End::Local);
        }
        self.closed().await;
    }

    /// Resolves when the connection is over, whoever ended it.
    pub async fn closed(&self) {
        self.shared.ended.cancelled().await;
    }
}

/// Cancels an `open()` whose future is dropped before the SYN_REPLY arrives.
struct PendingOpen<'a> {
    shared: &'a Arc<Shared>,
    id: Option<u32>,
}

impl Drop for PendingOpen<'_> {
    fn drop(&mut self) {
        let Some(id) = self.id else {
            return;
        };
        let mut st = self.shared.lock();
        if let Some(s) = st.streams.get_mut(&id) {
            s.attached = false;
            if st.end.is_none() {
                st.reset(id, RstStatus::CANCEL);
            }
            st.remove(id);
        }
    }
}

/// A stream the peer opened, waiting for `accept` or `refuse`. Dropping it refuses it.
pub struct Incoming {
    pub id: u32,
    pub headers: Headers,
    shared: Arc<Shared>,
    answered: bool,
}

impl fmt::Debug for Incoming {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Incoming")
            .field("id", &self.id)
            .field("headers", &self.headers)
            .finish()
    }
}

impl Incoming {
    /// Answers SYN_REPLY (with no headers, as Kubernetes' own server does) and hands over
    /// the stream. Data the peer sent before this is waiting in it.
    pub async fn accept(mut self) -> Result<Stream, SpdyError> {
        self.answered = true;
        let id = self.id;
        let mut st = self.shared.lock();
        if st.end.is_some() {
            return Err(SpdyError::ConnectionClosed);
        }
        let Some(s) = st.streams.get_mut(&id) else {
            return Err(SpdyError::ConnectionClosed);
        };
        if let Some(state::Reset::ByPeer(status) | state::Reset::ByUs(status)) = s.reset {
            s.attached = false;
            st.remove(id);
            return Err(SpdyError::Reset { id, status });
        }
        s.replied = true;
        st.out.send(Outgoing::SynReply {
            id,
            headers: Vec::new(),
        });
        drop(st);
        let headers = std::mem::take(&mut self.headers);
        Ok(Stream::new(Arc::clone(&self.shared), id, headers))
    }

    /// Answers RST_STREAM with `status` (REFUSED_STREAM, say).
    pub async fn refuse(mut self, status: RstStatus) {
        self.answered = true;
        refuse(&self.shared, self.id, status);
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        if !self.answered {
            refuse(&self.shared, self.id, RstStatus::REFUSED_STREAM);
        }
    }
}

fn refuse(shared: &Shared, id: u32, status: RstStatus) {
    let mut st = shared.lock();
    if let Some(s) = st.streams.get_mut(&id) {
        s.attached = false;
        if st.end.is_none() {
            st.reset(id, status);
        }
        st.remove(id);
    }
    drop(st);
    shared.space.notify_one();
}

#[cfg(test)]
mod tests;
