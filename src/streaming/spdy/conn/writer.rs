//! The writer task: drains the outbound queue in order, batching frames into few writes,
//! and owns the connection's header compressor so blocks are compressed in wire order.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, OwnedSemaphorePermit};

use super::state::{End, Outgoing};
use super::Shared;
use crate::streaming::spdy::frame::Frame;
use crate::streaming::spdy::headers::HeaderCompressor;
use crate::streaming::spdy::SpdyError;

/// Frames are gathered into one write up to about this many bytes.
const BATCH: usize = 64 * 1024;

pub(super) async fn run<W>(
    shared: Arc<Shared>,
    mut io: W,
    mut rx: mpsc::UnboundedReceiver<Outgoing>,
    replies: Arc<AtomicUsize>,
) where
    W: AsyncWrite + Unpin,
{
    let mut deflate = HeaderCompressor::new();
    let mut buf = BytesMut::with_capacity(BATCH);
    loop {
        let first = tokio::select! {
            biased;
            () = shared.ended.cancelled() => return,
            item = rx.recv() => item,
        };
        // The sender lives in the shared state, which outlives this task.
        let Some(mut item) = first else {
            return;
        };
        let mut permits = Vec::new();
        let last = loop {
            let last = match encode(item, &mut buf, &mut deflate, &mut permits, &replies) {
                Ok(goaway) => goaway,
                Err(e) => {
                    // Only a zlib failure can get here (headers are checked when queued).
                    tracing::warn!(error = %e, "encoding a SPDY frame");
                    shared.end_now(End::Io(io::ErrorKind::Other));
                    return;
                }
            };
            if last || buf.len() >= BATCH {
                break last;
            }
            match rx.try_recv() {
                Ok(next) => item = next,
                Err(_) => break false,
            }
        };
        let written = tokio::select! {
            biased;
            () = shared.ended.cancelled() => return,
            written = write_out(&mut io, &buf) => written,
        };
        buf.clear();
        // The data is out: its share of the write budget goes back.
        drop(permits);
        if let Err(e) = written {
            tracing::debug!(error = %e, "writing the SPDY connection");
            shared.end_now(End::Io(e.kind()));
            return;
        }
        if last {
            tokio::select! {
                () = shared.ended.cancelled() => {}
                _ = io.shutdown() => {}
            }
            // The real reason was recorded when the GOAWAY was queued.
            shared.end_now(End::Local);
            return;
        }
    }
}

async fn write_out<W: AsyncWrite + Unpin>(io: &mut W, buf: &[u8]) -> io::Result<()> {
    io.write_all(buf).await?;
    io.flush().await
}

/// Appends one queued item's frame to `buf`; true for the GOAWAY, the last frame.
fn encode(
    item: Outgoing,
    buf: &mut BytesMut,
    deflate: &mut HeaderCompressor,
    permits: &mut Vec<OwnedSemaphorePermit>,
    replies: &AtomicUsize,
) -> Result<bool, SpdyError> {
    let frame = match item {
        Outgoing::Frame(frame) => frame,
        Outgoing::Reply(frame) => {
            replies.fetch_sub(1, Ordering::Relaxed);
            frame
        }
        Outgoing::Data(frame, permit) => {
            permits.push(permit);
            frame
        }
        Outgoing::SynStream { id, headers, fin } => Frame::SynStream {
            stream_id: id,
            associated_id: 0,
            // spdystream opens every stream at priority 0 too.
            priority: 0,
            slot: 0,
            fin,
            unidirectional: false,
            header_block: deflate.compress(&headers)?,
        },
        Outgoing::SynReply { id, headers } => Frame::SynReply {
            stream_id: id,
            fin: false,
            header_block: deflate.compress(&headers)?,
        },
        Outgoing::GoAway { last_good, status } => {
            Frame::GoAway {
                last_good_stream_id: last_good,
                status,
            }
            .encode(buf)?;
            return Ok(true);
        }
    };
    frame.encode(buf)?;
    Ok(false)
}
