//! The reader task: decodes frames off the transport and applies each to the shared state.
//! It never waits on the application, except (for peers without flow control) for room in
//! a stream's buffer, the one place this side pushes back on a peer that ignores windows.

use std::fmt::Display;
use std::sync::{Arc, MutexGuard};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;

use super::state::{End, Outgoing, Reset, State, StreamState};
use super::{
    Incoming, Shared, LENIENT_CONNECTION_BUFFER, LENIENT_STREAM_BUFFER, MAX_CONCURRENT_STREAMS,
    MAX_FRAME_LEN, MAX_QUEUED_REPLIES,
};
use crate::streaming::spdy::frame::{Frame, FrameDecoder, GoAwayStatus, RstStatus, Setting};
use crate::streaming::spdy::frame::{MAX_STREAM_ID, SETTINGS_INITIAL_WINDOW_SIZE};
use crate::streaming::spdy::headers::{self, HeaderDecompressor};
use crate::streaming::spdy::SpdyError;

const READ_CHUNK: usize = 64 * 1024;
/// Windows may not grow past 2^31 - 1 (SPDY/3 section 2.6.8).
const MAX_WINDOW: i64 = MAX_STREAM_ID as i64;

pub(super) async fn run<R>(shared: Arc<Shared>, rd: R, incoming: mpsc::Sender<Incoming>)
where
    R: AsyncRead + Unpin,
{
    let mut reader = Reader {
        shared,
        incoming,
        inflate: HeaderDecompressor::new(),
    };
    reader.run(rd).await;
}

/// What the reader does after a frame.
enum After {
    Next,
    /// Wait for the application to read stream `id` before reading more.
    Wait(u32),
    Stop,
}

struct Reader {
    shared: Arc<Shared>,
    incoming: mpsc::Sender<Incoming>,
    inflate: HeaderDecompressor,
}

impl Reader {
    async fn run<R: AsyncRead + Unpin>(&mut self, mut rd: R) {
        let mut decoder = FrameDecoder::new(MAX_FRAME_LEN);
        let mut buf = BytesMut::with_capacity(READ_CHUNK);
        loop {
            loop {
                let frame = match decoder.decode(&mut buf) {
                    Ok(Some(frame)) => frame,
                    Ok(None) => break,
                    Err(e) => {
                        self.fail(&mut self.shared.lock(), &e);
                        return;
                    }
                };
                match self.handle(frame) {
                    After::Next => {}
                    After::Wait(id) => {
                        if !self.wait_for_room(id).await {
                            return;
                        }
                    }
                    After::Stop => return,
                }
            }
            buf.reserve(READ_CHUNK);
            let read = tokio::select! {
                () = self.shared.ended.cancelled() => return,
                read = rd.read_buf(&mut buf) => read,
            };
            match read {
                Ok(0) => return self.shared.end_now(End::PeerEof),
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "reading the SPDY connection");
                    return self.shared.end_now(End::Io(e.kind()));
                }
            }
        }
    }

    fn handle(&mut self, frame: Frame) -> After {
        match frame {
            Frame::SynStream {
                stream_id,
                fin,
                unidirectional,
                header_block,
                ..
            } => self.syn_stream(stream_id, fin, unidirectional, &header_block),
            Frame::SynReply {
                stream_id,
                fin,
                header_block,
            } => self.syn_reply(stream_id, fin, &header_block),
            Frame::Headers {
                stream_id,
                fin,
                header_block,
            } => self.headers(stream_id, fin, &header_block),
            Frame::RstStream { stream_id, status } => self.rst_stream(stream_id, status),
            Frame::Settings { entries, .. } => self.settings(&entries),
            Frame::Ping { id } => self.ping(id),
            Frame::GoAway {
                last_good_stream_id,
                ..
            } => self.goaway(last_good_stream_id),
            Frame::WindowUpdate { stream_id, delta } => self.window_update(stream_id, delta),
            Frame::Data {
                stream_id,
                fin,
                data,
            } => self.data(stream_id, fin, data),
        }
    }

    /// A session error (SPDY/3 section 2.4.1): GOAWAY PROTOCOL_ERROR, then close.
    fn fail(&self, st: &mut State, why: &dyn Display) -> After {
        tracing::debug!(%why, "SPDY peer broke the protocol");
        self.shared
            .go_away(st, GoAwayStatus::PROTOCOL_ERROR, End::Protocol);
        After::Stop
    }

    /// Queues an answer the peer provoked, unless it has provoked too many it does not read.
    fn reply(&self, mut st: MutexGuard<'_, State>, frame: Frame) -> After {
        if st.out.queued_replies() >= MAX_QUEUED_REPLIES {
            return self.fail(&mut st, &"peer provokes answers faster than it reads them");
        }
        st.out.send(Outgoing::Reply(frame));
        After::Next
    }

    fn reply_rst(&self, st: MutexGuard<'_, State>, stream_id: u32, status: RstStatus) -> After {
        self.reply(st, Frame::RstStream { stream_id, status })
    }

    /// Inflates a header block. Failing leaves our zlib state out of step with the peer's,
    /// which no later block recovers from: a session error.
    fn inflate(&mut self, block: &[u8]) -> Result<Vec<u8>, After> {
        self.inflate
            .decompress(block)
            .map_err(|e| self.fail(&mut self.shared.lock(), &e))
    }

    fn syn_stream(&mut self, id: u32, fin: bool, unidirectional: bool, block: &[u8]) -> After {
        // Inflate first, whatever becomes of the stream: the zlib state must follow.
        let raw = match self.inflate(block) {
            Ok(raw) => raw,
            Err(after) => return after,
        };
        let parsed = headers::decode_block(&raw);
        let mut st = self.shared.lock();
        if st.went_away || st.end.is_some() {
            // After our GOAWAY new streams are ignored (SPDY/3 section 2.6.6).
            return After::Next;
        }
        if st.role.is_local(id) {
            return self.reply_rst(st, id, RstStatus::PROTOCOL_ERROR);
        }
        if id < st.last_peer_id {
            let last = st.last_peer_id;
            return self.fail(&mut st, &format_args!("stream id {id} after {last}"));
        }
        if id == st.last_peer_id {
            // A second SYN_STREAM for one id is a stream error (section 2.3.2).
            if st.streams.contains_key(&id) {
                st.reset(id, RstStatus::PROTOCOL_ERROR);
                return After::Next;
            }
            return self.reply_rst(st, id, RstStatus::PROTOCOL_ERROR);
        }
        st.last_peer_id = id;
        let headers = match parsed {
            Ok(headers) => headers,
            Err(e) => {
                tracing::debug!(id, error = %e, "SYN_STREAM header block");
                return self.reply_rst(st, id, RstStatus::PROTOCOL_ERROR);
            }
        };
        if st.peer_streams >= MAX_CONCURRENT_STREAMS {
            return self.reply_rst(st, id, RstStatus::REFUSED_STREAM);
        }
        let mut s = StreamState::new(false, st.flow.initial_send);
        s.remote_fin = fin;
        // The recipient of a unidirectional stream may not send on it (section 2.3.2.1).
        s.local_fin = unidirectional;
        st.streams.insert(id, s);
        st.peer_streams += 1;
        drop(st);
        let incoming = Incoming {
            id,
            headers,
            shared: Arc::clone(&self.shared),
            answered: false,
        };
        // Full only past the stream limit, closed if the application stopped listening:
        // either way the returned `Incoming` refuses the stream as it drops.
        if let Err(e) = self.incoming.try_send(incoming) {
            drop(e);
        }
        After::Next
    }

    fn syn_reply(&mut self, id: u32, fin: bool, block: &[u8]) -> After {
        let raw = match self.inflate(block) {
            Ok(raw) => raw,
            Err(after) => return after,
        };
        let parsed = headers::decode_block(&raw);
        let mut st = self.shared.lock();
        let Some(s) = st.streams.get_mut(&id) else {
            // Cancelled meanwhile; spdystream ignores these too.
            return After::Next;
        };
        if s.reset.is_some() {
            return After::Next;
        }
        if !s.local || s.replied {
            let status = if s.local {
                RstStatus::STREAM_IN_USE
            } else {
                RstStatus::PROTOCOL_ERROR
            };
            st.reset(id, status);
            return After::Next;
        }
        if parsed.is_err() {
            st.reset(id, RstStatus::PROTOCOL_ERROR);
            return After::Next;
        }
        s.replied = true;
        s.remote_fin |= fin;
        if let Some(reply) = s.reply.take() {
            let _ = reply.send(Ok(()));
        }
        s.wake();
        After::Next
    }

    /// Extra headers on a stream: Kubernetes sends none, so only FIN matters.
    fn headers(&mut self, id: u32, fin: bool, block: &[u8]) -> After {
        let raw = match self.inflate(block) {
            Ok(raw) => raw,
            Err(after) => return after,
        };
        let parsed = headers::decode_block(&raw);
        let mut st = self.shared.lock();
        let Some(s) = st.streams.get_mut(&id) else {
            return After::Next;
        };
        if parsed.is_err() {
            st.reset(id, RstStatus::PROTOCOL_ERROR);
            return After::Next;
        }
        if fin {
            s.remote_fin = true;
            s.wake();
        }
        After::Next
    }

    fn rst_stream(&mut self, id: u32, status: RstStatus) -> After {
        let mut st = self.shared.lock();
        let Some(s) = st.streams.get_mut(&id) else {
            return After::Next;
        };
        // Never answer a RST with a RST (section 2.4.2); keep ours if we reset first.
        s.reset.get_or_insert(Reset::ByPeer(status));
        s.fail_open(SpdyError::Reset { id, status });
        s.wake();
        if !s.attached {
            st.remove(id);
        }
        After::Next
    }

    fn settings(&mut self, entries: &[Setting]) -> After {
        let mut st = self.shared.lock();
        // Only the first value for an id counts (section 2.6.4).
        let Some(window) = entries
            .iter()
            .find(|e| e.id == SETTINGS_INITIAL_WINDOW_SIZE)
            .map(|e| i64::from(e.value))
        else {
            return After::Next;
        };
        if window > MAX_WINDOW {
            return self.fail(&mut st, &format_args!("INITIAL_WINDOW_SIZE {window}"));
        }
        st.flow.streams = true;
        // Open streams move by the difference; windows may go negative (section 2.6.8).
        let delta = window - st.flow.initial_send;
        st.flow.initial_send = window;
        for s in st.streams.values_mut() {
            s.send_window += delta;
        }
        st.wake_writers();
        After::Next
    }

    fn ping(&mut self, id: u32) -> After {
        let st = self.shared.lock();
        if st.role.is_local(id) {
            // An answer to a ping of ours (we send none), or one we must ignore.
            return After::Next;
        }
        self.reply(st, Frame::Ping { id })
    }

    /// The peer takes no new streams; the ones it already took carry on. Ours it never
    /// saw (past `last_good`) fail as if never opened.
    fn goaway(&mut self, last_good: u32) -> After {
        let mut st = self.shared.lock();
        st.peer_went_away = true;
        let role = st.role;
        let unseen: Vec<u32> = st
            .streams
            .iter()
            .filter(|(id, s)| role.is_local(**id) && **id > last_good && !s.replied)
            .map(|(id, _)| *id)
            .collect();
        for id in unseen {
            if let Some(s) = st.streams.get_mut(&id) {
                s.reset = Some(Reset::ByPeer(RstStatus::REFUSED_STREAM));
                s.fail_open(SpdyError::GoneAway);
                s.wake();
            }
        }
        After::Next
    }

    fn window_update(&mut self, id: u32, delta: u32) -> After {
        let mut st = self.shared.lock();
        // Shown: this peer keeps windows, so ours are enforced from now on.
        st.flow.streams = true;
        if delta == 0 {
            return After::Next;
        }
        if id == 0 {
            st.flow.session = true;
            st.flow.send_session += i64::from(delta);
            if st.flow.send_session > MAX_WINDOW {
                return self.fail(&mut st, &"session window past 2^31 - 1");
            }
            st.wake_writers();
            return After::Next;
        }
        let Some(s) = st.streams.get_mut(&id) else {
            return After::Next;
        };
        s.send_window += i64::from(delta);
        if s.send_window > MAX_WINDOW {
            st.reset(id, RstStatus::FLOW_CONTROL_ERROR);
            return After::Next;
        }
        s.wake_writer();
        After::Next
    }

    fn data(&mut self, id: u32, fin: bool, data: Bytes) -> After {
        let len = data.len();
        let mut st = self.shared.lock();
        st.flow.recv_session -= len as i64;
        if st.flow.session && st.flow.recv_session < 0 {
            // SPDY/3.1 names FLOW_CONTROL_ERROR here, a status GOAWAY does not have in
            // SPDY/3's numbering; PROTOCOL_ERROR is the generic one.
            return self.fail(&mut st, &"session window overrun");
        }
        let strict = st.flow.streams;
        let Some(s) = st.streams.get_mut(&id) else {
            let opened = st.was_opened(id);
            st.consumed(None, len);
            // Data racing our RST or close is expected (section 2.3.7) and dropped quietly,
            // as spdystream does; data for a stream never opened is INVALID_STREAM.
            if !opened && !st.went_away {
                return self.reply_rst(st, id, RstStatus::INVALID_STREAM);
            }
            return After::Next;
        };
        let refusal = if s.reset.is_some() {
            None
        } else if s.local && !s.replied {
            // Data before SYN_REPLY (section 2.2.2).
            Some(RstStatus::PROTOCOL_ERROR)
        } else if s.remote_fin {
            Some(RstStatus::STREAM_ALREADY_CLOSED)
        } else {
            s.recv_window -= len as i64;
            if strict && s.recv_window < 0 {
                Some(RstStatus::FLOW_CONTROL_ERROR)
            } else {
                if len > 0 {
                    s.buf.push_back(data);
                    s.buffered += len;
                }
                s.remote_fin |= fin;
                s.wake();
                let stream_full = s.buffered > LENIENT_STREAM_BUFFER;
                st.buffered += len;
                if !strict && (stream_full || st.buffered > LENIENT_CONNECTION_BUFFER) {
                    return After::Wait(id);
                }
                return After::Next;
            }
        };
        // Dropped data still counts against the session window the peer keeps.
        st.consumed(None, len);
        if let Some(status) = refusal {
            st.reset(id, status);
        }
        After::Next
    }

    /// For peers without flow control: stop reading until stream `id`, and the connection,
    /// have no more unread data than a window's worth. False if the connection ended.
    async fn wait_for_room(&self, id: u32) -> bool {
        loop {
            {
                let st = self.shared.lock();
                if st.end.is_some() || st.flow.streams {
                    return true;
                }
                let stream_full = st
                    .streams
                    .get(&id)
                    .is_some_and(|s| s.buffered > LENIENT_STREAM_BUFFER);
                if !stream_full && st.buffered <= LENIENT_CONNECTION_BUFFER {
                    return true;
                }
            }
            tokio::select! {
                () = self.shared.space.notified() => {}
                () = self.shared.ended.cancelled() => return false,
            }
        }
    }
}
