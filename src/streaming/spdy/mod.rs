//! SPDY/3.1, the multiplexing protocol Kubernetes clients speak to a streaming server after
//! an HTTP `Upgrade: SPDY/3.1` (kubectl, crictl and critest all use moby/spdystream through
//! k8s.io/apimachinery's `httpstream/spdy`). Written here because Rust has no maintained,
//! Apache-licensed SPDY implementation.
//!
//! Layers, bottom up:
//! - `frame`: the wire layout of every frame; header blocks stay opaque bytes;
//! - `dictionary`: the zlib dictionary SPDY/3 header compression starts from;
//! - `headers`: header blocks and their per-connection, per-direction zlib state;
//! - `conn`: an async stream multiplexer over any `AsyncRead + AsyncWrite`.
//!
//! The version on the wire is 3: SPDY/3.1 only added session-level flow control
//! (WINDOW_UPDATE on stream 0) to SPDY/3 and kept the frame version number.

mod conn;
mod dictionary;
pub mod frame;
pub mod headers;

pub use conn::{Connection, Incoming, Stream, MAX_CONCURRENT_STREAMS};
pub use frame::{GoAwayStatus, RstStatus};
pub use headers::{get, Headers};

use std::io;

#[derive(Debug, thiserror::Error)]
pub enum SpdyError {
    #[error("frame of {len} bytes is longer than the {max}-byte limit")]
    FrameTooLarge { len: usize, max: usize },
    #[error("malformed {frame} frame: {reason}")]
    MalformedFrame {
        frame: &'static str,
        reason: &'static str,
    },
    #[error("control frame of SPDY version {0}; only version 3 is spoken")]
    UnsupportedVersion(u16),
    #[error("header block: {0}")]
    HeaderBlock(&'static str),
    #[error("header block inflates to more than {max} bytes")]
    HeaderBlockTooLarge { max: usize },
    #[error("compressing a header block: {0}")]
    Compress(#[source] flate2::CompressError),
    #[error("decompressing a header block: {0}")]
    Decompress(#[source] flate2::DecompressError),
    #[error("header block wants zlib dictionary {0:#010x}, not SPDY/3's")]
    UnknownDictionary(u32),
    #[error("stream {id}: reset with {status}")]
    Reset { id: u32, status: RstStatus },
    #[error("the peer sent GOAWAY: it takes no new streams")]
    GoneAway,
    #[error("SPDY connection closed")]
    ConnectionClosed,
    #[error("no stream ids left on this connection")]
    StreamIdsExhausted,
    #[error("SPDY connection I/O: {0}")]
    Io(#[from] io::Error),
}
