//! Tests against a hand-driven peer: exact frames in, exact frames out.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{duplex, AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::mpsc::Receiver;

use super::{h, pattern, within};
use crate::streaming::spdy::conn::*;
use crate::streaming::spdy::frame::{self, FrameDecoder};
use crate::streaming::spdy::headers::{decode_block, HeaderCompressor, HeaderDecompressor};

/// The far end of a connection, driven frame by frame.
struct RawPeer {
    io: DuplexStream,
    buf: BytesMut,
    decoder: FrameDecoder,
    deflate: HeaderCompressor,
    inflate: HeaderDecompressor,
}

impl RawPeer {
    /// A server `Connection` and a raw client talking to it.
    fn with_server() -> (Connection, Receiver<Incoming>, RawPeer) {
        let (a, b) = duplex(4 << 20);
        let (conn, incoming) = Connection::server(a);
        (conn, incoming, RawPeer::new(b))
    }

    /// A client `Connection` and a raw server it talks to.
    fn with_client() -> (Connection, RawPeer) {
        let (a, b) = duplex(4 << 20);
        let (conn, _incoming) = Connection::client(a);
        (conn, RawPeer::new(b))
    }

    fn new(io: DuplexStream) -> Self {
        Self {
            io,
            buf: BytesMut::new(),
            decoder: FrameDecoder::new(frame::MAX_LENGTH),
            deflate: HeaderCompressor::new(),
            inflate: HeaderDecompressor::new(),
        }
    }

    async fn send(&mut self, frame: Frame) {
        let mut wire = BytesMut::new();
        frame.encode(&mut wire).unwrap();
        self.io.write_all(&wire).await.unwrap();
    }

    async fn syn_stream(&mut self, id: u32, headers: &[(&str, &str)]) {
        let header_block = self.deflate.compress(&h(headers)).unwrap();
        self.send(Frame::SynStream {
            stream_id: id,
            associated_id: 0,
            priority: 0,
            slot: 0,
            fin: false,
            unidirectional: false,
            header_block,
        })
        .await;
    }

    async fn data(&mut self, id: u32, data: Vec<u8>) {
        self.send(Frame::Data {
            stream_id: id,
            fin: false,
            data: data.into(),
        })
        .await;
    }

    /// The next frame, `None` at EOF. Header blocks are inflated to keep zlib in step.
    async fn next(&mut self) -> Option<Frame> {
        loop {
            if let Some(frame) = self.decoder.decode(&mut self.buf).unwrap() {
                if let Frame::SynStream { header_block, .. }
                | Frame::SynReply { header_block, .. } = &frame
                {
                    decode_block(&self.inflate.decompress(header_block).unwrap()).unwrap();
                }
                return Some(frame);
            }
            if self.io.read_buf(&mut self.buf).await.unwrap() == 0 {
                return None;
            }
        }
    }

    /// The next frame `pick` accepts, skipping others; panics at EOF.
    async fn expect<T>(&mut self, mut pick: impl FnMut(Frame) -> Option<T>) -> T {
        loop {
            let frame = self.next().await.expect("EOF before the expected frame");
            if let Some(found) = pick(frame) {
                return found;
            }
        }
    }

    /// Reads until `len` bytes of DATA for stream `id` came; returns how many
    /// WINDOW_UPDATE frames came meanwhile.
    async fn data_for(&mut self, id: u32, len: usize) -> usize {
        let (mut got, mut updates) = (0, 0);
        while got < len {
            match self.next().await.expect("EOF before the data") {
                Frame::Data {
                    stream_id, data, ..
                } if stream_id == id => got += data.len(),
                Frame::WindowUpdate { .. } => updates += 1,
                _ => {}
            }
        }
        assert_eq!(got, len, "more data than expected");
        updates
    }

    /// DATA bytes for `id` arriving before nothing has for `quiet`. Used to show nothing
    /// more comes: under load it may miss late data, but never invents any.
    async fn quiet(&mut self, id: u32, quiet: Duration) -> usize {
        let mut got = 0;
        while let Ok(Some(frame)) = tokio::time::timeout(quiet, self.next()).await {
            if let Frame::Data {
                stream_id, data, ..
            } = frame
            {
                if stream_id == id {
                    got += data.len();
                }
            }
        }
        got
    }

    /// Reads past the SETTINGS and session WINDOW_UPDATE every connection starts with.
    async fn skip_announcement(&mut self) {
        assert!(matches!(self.next().await, Some(Frame::Settings { .. })));
        assert!(matches!(
            self.next().await,
            Some(Frame::WindowUpdate { .. })
        ));
    }
}

#[tokio::test]
async fn announces_its_windows_first() {
    within(async {
        let (_conn, _incoming, mut peer) = RawPeer::with_server();
        let first = peer.next().await.unwrap();
        let Frame::Settings { entries, .. } = first else {
            panic!("first frame {first:?}");
        };
        assert!(entries.contains(&Setting {
            flags: 0,
            id: SETTINGS_INITIAL_WINDOW_SIZE,
            value: INITIAL_WINDOW
        }));
        assert_eq!(
            peer.next().await.unwrap(),
            Frame::WindowUpdate {
                stream_id: 0,
                delta: SESSION_WINDOW - INITIAL_WINDOW
            }
        );
    })
    .await;
}

#[tokio::test]
async fn echoes_the_peers_pings_only() {
    within(async {
        let (_conn, _incoming, mut peer) = RawPeer::with_server();
        // Even ids are the server's own: a client sending one is not pinging.
        peer.send(Frame::Ping { id: 2 }).await;
        peer.send(Frame::Ping { id: 7 }).await;
        let echoed = peer
            .expect(|f| match f {
                Frame::Ping { id } => Some(id),
                _ => None,
            })
            .await;
        assert_eq!(echoed, 7);
    })
    .await;
}

#[tokio::test]
async fn peer_eof_ends_streams_and_the_connection() {
    within(async {
        let (conn, mut incoming, mut peer) = RawPeer::with_server();
        peer.syn_stream(1, &[("streamtype", "stdin")]).await;
        peer.data(1, b"partial".to_vec()).await;
        let mut s = incoming.recv().await.unwrap().accept().await.unwrap();
        let mut buf = [0; 7];
        s.read_exact(&mut buf).await.unwrap();
        drop(peer);
        conn.closed().await;
        // No FIN came: the stream was cut off, which is an error, not an EOF.
        assert!(s.read(&mut buf).await.is_err());
        assert!(s.write_all(b"x").await.is_err());
    })
    .await;
}

#[tokio::test]
async fn after_the_peers_goaway_existing_streams_continue() {
    within(async {
        let (conn, mut incoming, mut peer) = RawPeer::with_server();
        peer.syn_stream(1, &[]).await;
        let mut s = incoming.recv().await.unwrap().accept().await.unwrap();
        peer.send(Frame::GoAway {
            last_good_stream_id: 0,
            status: GoAwayStatus::OK,
        })
        .await;
        peer.data(1, b"still here".to_vec()).await;
        let mut buf = [0; 10];
        s.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"still here");
        assert!(matches!(
            conn.open(h(&[]), false).await,
            Err(SpdyError::GoneAway)
        ));
        s.write_all(b"reply").await.unwrap();
        let got = peer
            .expect(|f| match f {
                Frame::Data { data, .. } => Some(data),
                _ => None,
            })
            .await;
        assert_eq!(got, Bytes::from_static(b"reply"));
    })
    .await;
}

#[tokio::test]
async fn overrunning_a_shown_window_resets_the_stream() {
    within(async {
        let (_conn, mut incoming, mut peer) = RawPeer::with_server();
        // This peer shows it does flow control, so its windows are held to.
        peer.send(Frame::Settings {
            clear_persisted: false,
            entries: vec![Setting {
                flags: 0,
                id: SETTINGS_INITIAL_WINDOW_SIZE,
                value: INITIAL_WINDOW,
            }],
        })
        .await;
        peer.syn_stream(1, &[]).await;
        let _s = incoming.recv().await.unwrap().accept().await.unwrap();
        peer.data(1, vec![0; INITIAL_WINDOW as usize + 1]).await;
        let (id, status) = peer
            .expect(|f| match f {
                Frame::RstStream { stream_id, status } => Some((stream_id, status)),
                _ => None,
            })
            .await;
        assert_eq!((id, status), (1, RstStatus::FLOW_CONTROL_ERROR));
    })
    .await;
}

/// moby/spdystream never keeps windows: it sends a whole `Write` as one DATA frame and
/// never grants window. Both must still work.
#[tokio::test]
async fn a_peer_without_flow_control_is_neither_reset_nor_stalled() {
    within(async {
        let (_conn, mut incoming, mut peer) = RawPeer::with_server();
        peer.skip_announcement().await;
        peer.syn_stream(1, &[]).await;
        let mut s = incoming.recv().await.unwrap().accept().await.unwrap();
        let big = pattern(1 << 20, 3);
        peer.data(1, big.clone()).await;
        let mut got = vec![0; big.len()];
        s.read_exact(&mut got).await.unwrap();
        assert!(got == big);

        // Sending: 1 MiB goes out though the peer never grants a byte of window.
        let writer = tokio::spawn(async move {
            s.write_all(&pattern(1 << 20, 4)).await.unwrap();
            s
        });
        let updates = peer.data_for(1, 1 << 20).await;
        // Nor was it sent WINDOW_UPDATEs for the megabyte read (queued before this data),
        // which it would only drop.
        assert_eq!(updates, 0);
        let _s = writer.await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn sending_waits_for_a_shown_window() {
    within(async {
        let (_conn, mut incoming, mut peer) = RawPeer::with_server();
        peer.send(Frame::Settings {
            clear_persisted: false,
            entries: vec![Setting {
                flags: 0,
                id: SETTINGS_INITIAL_WINDOW_SIZE,
                value: 16 * 1024,
            }],
        })
        .await;
        peer.syn_stream(1, &[]).await;
        let mut s = incoming.recv().await.unwrap().accept().await.unwrap();
        tokio::spawn(async move {
            s.write_all(&pattern(100 * 1024, 5)).await.unwrap();
            s
        });
        let quiet = Duration::from_millis(100);
        peer.data_for(1, 16 * 1024).await;
        assert_eq!(peer.quiet(1, quiet).await, 0);
        peer.send(Frame::WindowUpdate {
            stream_id: 1,
            delta: 40 * 1024,
        })
        .await;
        peer.data_for(1, 40 * 1024).await;
        assert_eq!(peer.quiet(1, quiet).await, 0);
    })
    .await;
}

#[tokio::test]
async fn stream_id_errors() {
    within(async {
        // An even id from a client is a stream error.
        let (_conn, _incoming, mut peer) = RawPeer::with_server();
        peer.syn_stream(2, &[]).await;
        let rst = peer
            .expect(|f| match f {
                Frame::RstStream { stream_id, status } => Some((stream_id, status)),
                _ => None,
            })
            .await;
        assert_eq!(rst, (2, RstStatus::PROTOCOL_ERROR));

        // Ids going backwards are a session error.
        let (conn, mut incoming, mut peer) = RawPeer::with_server();
        peer.syn_stream(5, &[]).await;
        let _s = incoming.recv().await.unwrap().accept().await.unwrap();
        peer.syn_stream(3, &[]).await;
        let goaway = peer
            .expect(|f| match f {
                Frame::GoAway {
                    last_good_stream_id,
                    status,
                } => Some((last_good_stream_id, status)),
                _ => None,
            })
            .await;
        assert_eq!(goaway, (5, GoAwayStatus::PROTOCOL_ERROR));
        assert!(peer.next().await.is_none(), "GOAWAY was not the last frame");
        conn.closed().await;
    })
    .await;
}

#[tokio::test]
async fn a_header_block_that_does_not_inflate_ends_the_session() {
    within(async {
        let (conn, _incoming, mut peer) = RawPeer::with_server();
        peer.send(Frame::SynStream {
            stream_id: 1,
            associated_id: 0,
            priority: 0,
            slot: 0,
            fin: false,
            unidirectional: false,
            header_block: Bytes::from_static(b"not zlib at all"),
        })
        .await;
        let status = peer
            .expect(|f| match f {
                Frame::GoAway { status, .. } => Some(status),
                _ => None,
            })
            .await;
        assert_eq!(status, GoAwayStatus::PROTOCOL_ERROR);
        conn.closed().await;
    })
    .await;
}

#[tokio::test]
async fn an_abandoned_open_is_cancelled_and_early_data_refused() {
    within(async {
        let (conn, mut peer) = RawPeer::with_client();
        // The peer never answers: the caller gives up, and the stream is cancelled.
        let opening = tokio::time::timeout(Duration::from_millis(50), conn.open(h(&[]), false));
        assert!(opening.await.is_err());
        let rst = peer
            .expect(|f| match f {
                Frame::RstStream { stream_id, status } => Some((stream_id, status)),
                _ => None,
            })
            .await;
        assert_eq!(rst, (1, RstStatus::CANCEL));

        // DATA before SYN_REPLY is a stream error (SPDY/3 section 2.2.2).
        let (opened, ()) = tokio::join!(conn.open(h(&[]), false), async {
            let id = peer
                .expect(|f| match f {
                    Frame::SynStream { stream_id, .. } => Some(stream_id),
                    _ => None,
                })
                .await;
            peer.data(id, b"too early".to_vec()).await;
        });
        assert!(matches!(
            opened,
            Err(SpdyError::Reset {
                id: 3,
                status: RstStatus::PROTOCOL_ERROR
            })
        ));
    })
    .await;
}
