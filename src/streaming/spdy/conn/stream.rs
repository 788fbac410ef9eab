//! One stream as tokio I/O. Writes become DATA frames of at most `MAX_DATA_CHUNK` bytes,
//! within the peer's windows (once it keeps them) and the connection's write budget;
//! `shutdown` sends FIN; reads return what arrived, then EOF after the peer's FIN, or an
//! error after a reset or the end of the connection.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_util::sync::PollSemaphore;

use super::state::{End, Outgoing, Reset, StreamState};
use super::{Shared, MAX_DATA_CHUNK};
use crate::streaming::spdy::frame::{Frame, RstStatus};
use crate::streaming::spdy::{Headers, SpdyError};

/// A SPDY stream. Dropping it half-closes this side (FIN) if `shutdown` has not, and
/// resets it (CANCEL) if the peer has not finished sending, so the peer stops.
pub struct Stream {
    shared: Arc<Shared>,
    id: u32,
    headers: Headers,
    budget: PollSemaphore,
}

impl fmt::Debug for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stream")
            .field("id", &self.id)
            .field("headers", &self.headers)
            .finish()
    }
}

impl Stream {
    pub(super) fn new(shared: Arc<Shared>, id: u32, headers: Headers) -> Self {
        let budget = PollSemaphore::new(Arc::clone(&shared.budget));
        Self {
            shared,
            id,
            headers,
            budget,
        }
    }

    pub fn id(&self) -> u32 {
        self.id
    }

    /// The headers the stream was opened with (the peer's SYN_STREAM, or ours).
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// Aborts the stream with RST_STREAM `status`: both directions fail from now on.
    pub fn reset(&self, status: RstStatus) {
        let mut st = self.shared.lock();
        if st.end.is_none() {
            st.reset(self.id, status);
        }
    }
}

/// The error for I/O on a stream of a connection that is over: the transport's own kind
/// where it failed, UnexpectedEof where the peer just went away.
fn closed(end: Option<End>) -> io::Error {
    let kind = match end {
        Some(End::PeerEof) => io::ErrorKind::UnexpectedEof,
        Some(End::Io(kind)) => kind,
        Some(End::Local | End::Protocol) | None => io::ErrorKind::ConnectionAborted,
    };
    io::Error::new(kind, SpdyError::ConnectionClosed)
}

fn reset_error(id: u32, reset: Reset) -> io::Error {
    let (Reset::ByPeer(status) | Reset::ByUs(status)) = reset;
    io::Error::new(
        io::ErrorKind::ConnectionReset,
        SpdyError::Reset { id, status },
    )
}

/// Why a write cannot go ahead, if it cannot.
fn write_error(id: u32, s: &StreamState, end: Option<End>) -> Option<io::Error> {
    if let Some(reset) = s.reset {
        return Some(reset_error(id, reset));
    }
    if end.is_some() {
        return Some(closed(end));
    }
    if s.local_fin {
        return Some(io::Error::new(
            io::ErrorKind::BrokenPipe,
            "SPDY stream already half-closed by this side",
        ));
    }
    None
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let id = self.id;
        let mut guard = self.shared.lock();
        let st = &mut *guard;
        let Some(s) = st.streams.get_mut(&id) else {
            return Poll::Ready(Err(closed(st.end)));
        };
        let mut n = 0;
        while buf.remaining() > 0 {
            let Some(chunk) = s.buf.front_mut() else {
                break;
            };
            let take = chunk.len().min(buf.remaining());
            buf.put_slice(&chunk[..take]);
            chunk.advance(take);
            if chunk.is_empty() {
                s.buf.pop_front();
            }
            n += take;
        }
        if n > 0 {
            s.buffered -= n;
            st.buffered -= n;
            st.consumed(Some(id), n);
            drop(guard);
            self.shared.space.notify_one();
            return Poll::Ready(Ok(()));
        }
        // What arrived before a FIN is complete even if a RST follows it.
        if buf.remaining() == 0 || s.remote_fin {
            return Poll::Ready(Ok(()));
        }
        if let Some(reset) = s.reset {
            return Poll::Ready(Err(reset_error(id, reset)));
        }
        if st.end.is_some() {
            return Poll::Ready(Err(closed(st.end)));
        }
        s.read_waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl Stream {
    /// How much of a `len`-byte write may go now: the peer's windows, where it keeps them.
    /// `Ok(0)` means wait (the waker is registered).
    fn allowance(&self, cx: &mut Context<'_>, len: usize) -> io::Result<usize> {
        let mut guard = self.shared.lock();
        let st = &mut *guard;
        let Some(s) = st.streams.get_mut(&self.id) else {
            return Err(closed(st.end));
        };
        if let Some(e) = write_error(self.id, s, st.end) {
            return Err(e);
        }
        let mut n = len.min(MAX_DATA_CHUNK);
        if st.flow.streams {
            n = n.min(usize::try_from(s.send_window).unwrap_or(0));
        }
        if st.flow.session {
            n = n.min(usize::try_from(st.flow.send_session).unwrap_or(0));
        }
        if n == 0 {
            s.write_waker = Some(cx.waker().clone());
        }
        Ok(n)
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let want = match self.allowance(cx, data.len()) {
            Ok(0) => return Poll::Pending,
            Ok(n) => n,
            Err(e) => return Poll::Ready(Err(e)),
        };
        // `want` is at most MAX_DATA_CHUNK, well within u32 and the budget.
        let Some(permit) = ready!(self.budget.poll_acquire_many(cx, want as u32)) else {
            // Closed: the connection is over.
            let end = self.shared.lock().end;
            return Poll::Ready(Err(closed(end)));
        };
        // Windows can shrink while waiting for the budget (SETTINGS may lower them).
        let n = match self.allowance(cx, want) {
            Ok(0) => return Poll::Pending,
            Ok(n) => n,
            Err(e) => return Poll::Ready(Err(e)),
        };
        let id = self.id;
        let mut guard = self.shared.lock();
        let st = &mut *guard;
        if let Some(s) = st.streams.get_mut(&id) {
            s.send_window -= n as i64;
        }
        st.flow.send_session -= n as i64;
        st.out.send(Outgoing::Data(
            Frame::Data {
                stream_id: id,
                fin: false,
                data: Bytes::copy_from_slice(&data[..n]),
            },
            permit,
        ));
        Poll::Ready(Ok(n))
    }

    /// Frames are queued for the writer task, which flushes the transport whenever its
    /// queue runs empty; there is nothing to wait for here.
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// Half-closes this side: an empty DATA frame with FIN, after everything written.
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let id = self.id;
        let mut guard = self.shared.lock();
        let st = &mut *guard;
        let Some(s) = st.streams.get_mut(&id) else {
            return Poll::Ready(Err(closed(st.end)));
        };
        if s.local_fin && s.reset.is_none() {
            return Poll::Ready(Ok(()));
        }
        if let Some(e) = write_error(id, s, st.end) {
            return Poll::Ready(Err(e));
        }
        s.local_fin = true;
        st.out.frame(Frame::Data {
            stream_id: id,
            fin: true,
            data: Bytes::new(),
        });
        Poll::Ready(Ok(()))
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        let id = self.id;
        let mut guard = self.shared.lock();
        let st = &mut *guard;
        let Some(s) = st.streams.get_mut(&id) else {
            return;
        };
        s.attached = false;
        if s.reset.is_none() && st.end.is_none() {
            // FIN first, so the peer reads what was written as complete; then CANCEL if it
            // is still sending, so it stops.
            if !s.local_fin {
                s.local_fin = true;
                st.out.frame(Frame::Data {
                    stream_id: id,
                    fin: true,
                    data: Bytes::new(),
                });
            }
            if !s.remote_fin {
                st.reset(id, RstStatus::CANCEL);
            }
        }
        st.remove(id);
        drop(guard);
        self.shared.space.notify_one();
    }
}
