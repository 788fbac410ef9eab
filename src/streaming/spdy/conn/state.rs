//! What the reader task, the writer task and the handles share, behind one mutex: the
//! streams, the flow-control windows and the outbound queue. Frames are queued while the
//! lock is held, so the order of the queue is the order decisions were made in (stream ids
//! go out increasing, a FIN never overtakes the data before it).

use std::collections::{HashMap, VecDeque};
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Waker;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit};

use super::{INITIAL_WINDOW, SESSION_WINDOW};
use crate::streaming::spdy::frame::{Frame, GoAwayStatus, RstStatus, MAX_STREAM_ID};
use crate::streaming::spdy::{Headers, SpdyError};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Role {
    /// Opens odd stream ids and pings.
    Client,
    /// Opens even ones.
    Server,
}

impl Role {
    /// Whether stream (or ping) `id` is of the kind this side creates.
    pub fn is_local(self, id: u32) -> bool {
        (id % 2 == 1) == (self == Role::Client)
    }

    pub fn first_id(self) -> u32 {
        match self {
            Role::Client => 1,
            Role::Server => 2,
        }
    }
}

/// Why the connection is over.
#[derive(Clone, Copy, Debug)]
pub(super) enum End {
    /// `close()` was called.
    Local,
    /// The peer closed the transport.
    PeerEof,
    /// Reading or writing failed.
    Io(io::ErrorKind),
    /// The peer broke the protocol; a GOAWAY says so.
    Protocol,
}

/// What the writer task sends, in queue order.
pub(super) enum Outgoing {
    /// A frame this side chose to send.
    Frame(Frame),
    /// A frame answering the peer (PING echo, RST for its mistake). Counted while queued:
    /// a peer that provokes answers faster than it reads them is cut off.
    Reply(Frame),
    /// DATA, holding its share of the write budget until written.
    Data(Frame, OwnedSemaphorePermit),
    /// Header frames are compressed by the writer, so compression follows wire order.
    SynStream {
        id: u32,
        headers: Headers,
        fin: bool,
    },
    SynReply {
        id: u32,
        headers: Headers,
    },
    /// GOAWAY, the last frame: the writer then shuts the transport down.
    GoAway {
        last_good: u32,
        status: GoAwayStatus,
    },
}

pub(super) struct Outbox {
    tx: mpsc::UnboundedSender<Outgoing>,
    replies: Arc<AtomicUsize>,
}

impl Outbox {
    pub fn new(tx: mpsc::UnboundedSender<Outgoing>, replies: Arc<AtomicUsize>) -> Self {
        Self { tx, replies }
    }

    pub fn send(&self, item: Outgoing) {
        if let Outgoing::Reply(_) = item {
            self.replies.fetch_add(1, Ordering::Relaxed);
        }
        // Fails only once the writer is gone, when nothing can be sent anyway.
        let _ = self.tx.send(item);
    }

    pub fn frame(&self, frame: Frame) {
        self.send(Outgoing::Frame(frame));
    }

    pub fn queued_replies(&self) -> usize {
        self.replies.load(Ordering::Relaxed)
    }
}

/// How a stream ended abruptly.
#[derive(Clone, Copy, Debug)]
pub(super) enum Reset {
    ByPeer(RstStatus),
    ByUs(RstStatus),
}

pub(super) struct StreamState {
    /// Opened by this side.
    pub local: bool,
    /// A handle (`Incoming` or `Stream`) still reads it; without one, data is discarded.
    pub attached: bool,
    /// SYN_REPLY seen (streams we opened) or sent (streams the peer opened).
    pub replied: bool,
    /// `open()` waiting for the SYN_REPLY.
    pub reply: Option<oneshot::Sender<Result<(), SpdyError>>>,
    pub buf: VecDeque<Bytes>,
    pub buffered: usize,
    pub remote_fin: bool,
    pub local_fin: bool,
    pub reset: Option<Reset>,
    /// What the peer lets us send (its window as we track it).
    pub send_window: i64,
    /// What the peer may still send before we grant more.
    pub recv_window: i64,
    /// Read by the application since the last grant.
    pub consumed: u64,
    pub read_waker: Option<Waker>,
    pub write_waker: Option<Waker>,
}

impl StreamState {
    pub fn new(local: bool, send_window: i64) -> Self {
        Self {
            local,
            attached: true,
            replied: false,
            reply: None,
            buf: VecDeque::new(),
            buffered: 0,
            remote_fin: false,
            local_fin: false,
            reset: None,
            send_window,
            recv_window: i64::from(INITIAL_WINDOW),
            consumed: 0,
            read_waker: None,
            write_waker: None,
        }
    }

    pub fn wake(&mut self) {
        if let Some(w) = self.read_waker.take() {
            w.wake();
        }
        if let Some(w) = self.write_waker.take() {
            w.wake();
        }
    }

    pub fn wake_writer(&mut self) {
        if let Some(w) = self.write_waker.take() {
            w.wake();
        }
    }

    /// Fails a pending `open()`.
    pub fn fail_open(&mut self, error: SpdyError) {
        if let Some(reply) = self.reply.take() {
            let _ = reply.send(Err(error));
        }
    }
}

/// Flow control as this side practises it; see the module doc of `conn` for why the
/// peer's windows are only respected once it has shown it keeps them.
pub(super) struct Flow {
    /// The peer does per-stream flow control: it sent SETTINGS INITIAL_WINDOW_SIZE or a
    /// WINDOW_UPDATE. Until then its windows are not enforced either way.
    pub streams: bool,
    /// The peer does SPDY/3.1 session flow control: it sent WINDOW_UPDATE on stream 0.
    pub session: bool,
    /// The send window new streams start with (the peer's INITIAL_WINDOW_SIZE).
    pub initial_send: i64,
    pub send_session: i64,
    pub recv_session: i64,
    pub session_consumed: u64,
}

pub(super) struct State {
    pub role: Role,
    pub out: Outbox,
    pub streams: HashMap<u32, StreamState>,
    /// Streams the peer opened that are still in `streams`.
    pub peer_streams: usize,
    /// Unread bytes across all streams.
    pub buffered: usize,
    /// The next id `open()` uses; past `MAX_STREAM_ID` when ids are exhausted.
    pub next_local_id: u64,
    /// The highest stream id the peer opened.
    pub last_peer_id: u32,
    /// The peer sent GOAWAY: no new streams from us.
    pub peer_went_away: bool,
    /// We sent GOAWAY: no new streams from the peer.
    pub went_away: bool,
    pub end: Option<End>,
    pub flow: Flow,
}

impl State {
    pub fn new(role: Role, out: Outbox) -> Self {
        Self {
            role,
            out,
            streams: HashMap::new(),
            peer_streams: 0,
            buffered: 0,
            next_local_id: u64::from(role.first_id()),
            last_peer_id: 0,
            peer_went_away: false,
            went_away: false,
            end: None,
            flow: Flow {
                streams: false,
                session: false,
                initial_send: i64::from(INITIAL_WINDOW),
                send_session: i64::from(INITIAL_WINDOW),
                recv_session: i64::from(INITIAL_WINDOW),
                session_consumed: 0,
            },
        }
    }

    /// Whether `id` names a stream that existed once (as opposed to one never opened).
    pub fn was_opened(&self, id: u32) -> bool {
        if self.role.is_local(id) {
            u64::from(id) < self.next_local_id
        } else {
            id <= self.last_peer_id
        }
    }

    /// Forgets a stream, discarding what it had buffered; the discarded bytes count as
    /// consumed for the session window.
    pub fn remove(&mut self, id: u32) {
        if let Some(s) = self.streams.remove(&id) {
            if !s.local {
                self.peer_streams -= 1;
            }
            self.buffered -= s.buffered;
            self.consumed(None, s.buffered);
        }
    }

    /// Resets a stream from this side: RST_STREAM out, reads and writes fail from now on.
    pub fn reset(&mut self, id: u32, status: RstStatus) {
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        if s.reset.is_some() {
            return;
        }
        s.reset = Some(Reset::ByUs(status));
        s.fail_open(SpdyError::Reset { id, status });
        s.wake();
        let attached = s.attached;
        self.out.frame(Frame::RstStream {
            stream_id: id,
            status,
        });
        if !attached {
            self.remove(id);
        }
    }

    /// Credits `n` bytes the application read from stream `id` (or that were discarded,
    /// `None`), and grants them back with WINDOW_UPDATE once half a window has built up.
    /// Peers that do no flow control get no WINDOW_UPDATEs: spdystream would only queue
    /// and drop them.
    pub fn consumed(&mut self, id: Option<u32>, n: usize) {
        // Deltas stay far below 2^31: they are bounded by what was buffered.
        let n = n as u64;
        if let Some((id, s)) = id.and_then(|id| Some((id, self.streams.get_mut(&id)?))) {
            s.consumed += n;
            if s.consumed >= u64::from(INITIAL_WINDOW / 2) {
                let delta = s.consumed;
                s.consumed = 0;
                s.recv_window += delta as i64;
                // No WINDOW_UPDATE after the peer's FIN (SPDY/3 section 2.6.8).
                if self.flow.streams && !s.remote_fin && s.reset.is_none() {
                    self.out.frame(Frame::WindowUpdate {
                        stream_id: id,
                        delta: delta as u32,
                    });
                }
            }
        }
        self.flow.session_consumed += n;
        if self.flow.session_consumed >= u64::from(SESSION_WINDOW / 2) {
            let delta = self.flow.session_consumed;
            self.flow.session_consumed = 0;
            self.flow.recv_session += delta as i64;
            if self.flow.session {
                self.out.frame(Frame::WindowUpdate {
                    stream_id: 0,
                    delta: delta as u32,
                });
            }
        }
    }

    /// A stream id for `open()`, or `None` when the 31 bits are used up.
    pub fn next_id(&mut self) -> Option<u32> {
        let id = u32::try_from(self.next_local_id)
            .ok()
            .filter(|id| *id <= MAX_STREAM_ID)?;
        self.next_local_id += 2;
        Some(id)
    }

    pub fn wake_writers(&mut self) {
        for s in self.streams.values_mut() {
            s.wake_writer();
        }
    }
}
