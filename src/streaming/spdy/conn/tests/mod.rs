//! Two `Connection`s over an in-memory pipe; `raw_peer` drives one side by hand.

#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::io;
use std::time::Duration;

use tokio::io::{duplex, AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc::Receiver;

use super::*;
use crate::streaming::spdy::get;

mod raw_peer;

/// Every test is bounded: a hang fails instead of stalling the suite.
async fn within<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(10), f)
        .await
        .expect("test timed out")
}

fn h(pairs: &[(&str, &str)]) -> Headers {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

struct Pair {
    client: Connection,
    client_incoming: Receiver<Incoming>,
    server: Connection,
    server_incoming: Receiver<Incoming>,
}

fn pair() -> Pair {
    let (a, b) = duplex(64 * 1024);
    let (client, client_incoming) = Connection::client(a);
    let (server, server_incoming) = Connection::server(b);
    Pair {
        client,
        client_incoming,
        server,
        server_incoming,
    }
}

/// Opens a stream from `from` and accepts it on `to`: (opener's end, acceptor's end).
async fn open_accepted(
    from: &Connection,
    to: &mut Receiver<Incoming>,
    headers: Headers,
) -> (Stream, Stream) {
    let (opened, accepted) = tokio::join!(from.open(headers, false), async {
        to.recv().await.unwrap().accept().await.unwrap()
    });
    (opened.unwrap(), accepted)
}

/// Test data: a 251-byte cycle (prime, so it never lines up with frame or buffer sizes,
/// and a dropped, repeated or reordered chunk shows).
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    let cycle: Vec<u8> = (0..251u8).map(|i| i.wrapping_mul(7) ^ seed).collect();
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        let n = (len - out.len()).min(cycle.len());
        out.extend_from_slice(&cycle[..n]);
    }
    out
}

#[tokio::test]
async fn streams_open_both_ways_with_their_headers() {
    within(async {
        let mut p = pair();
        let sent = h(&[("streamtype", "stdin"), ("port", "80"), ("port", "443")]);
        let (opened, accepted) =
            open_accepted(&p.client, &mut p.server_incoming, sent.clone()).await;
        assert_eq!(opened.id(), 1);
        assert_eq!(accepted.id(), 1);
        assert_eq!(accepted.headers(), &sent);
        assert_eq!(opened.headers(), &sent);

        let (opened, accepted) = open_accepted(
            &p.server,
            &mut p.client_incoming,
            h(&[("streamtype", "error")]),
        )
        .await;
        assert_eq!(opened.id(), 2);
        assert_eq!(get(accepted.headers(), "StreamType"), Some("error"));

        let (next, _) = open_accepted(&p.client, &mut p.server_incoming, h(&[])).await;
        assert_eq!(next.id(), 3);
    })
    .await;
}

#[tokio::test]
async fn megabytes_both_ways_under_strict_windows() {
    within(async {
        let mut p = pair();
        let (mut c, mut s) = open_accepted(&p.client, &mut p.server_incoming, h(&[])).await;
        // Past the 4 MiB session window one way, past many 64 KiB stream windows both ways.
        let up = pattern(SESSION_WINDOW as usize + (512 << 10), 1);
        let down = pattern(3 << 19, 2);
        let (up2, down2) = (up.clone(), down.clone());
        let client = async move {
            let (mut rd, mut wr) = tokio::io::split(&mut c);
            let send = async {
                wr.write_all(&up2).await.unwrap();
                wr.shutdown().await.unwrap();
            };
            let mut got = Vec::new();
            let recv = rd.read_to_end(&mut got);
            let ((), n) = tokio::join!(send, recv);
            n.unwrap();
            got
        };
        let server = async move {
            let (mut rd, mut wr) = tokio::io::split(&mut s);
            let send = async {
                wr.write_all(&down2).await.unwrap();
                wr.shutdown().await.unwrap();
            };
            let mut got = Vec::new();
            let recv = rd.read_to_end(&mut got);
            let ((), n) = tokio::join!(send, recv);
            n.unwrap();
            got
        };
        let (client_got, server_got) = tokio::join!(client, server);
        assert!(server_got == up, "upload corrupted");
        assert!(client_got == down, "download corrupted");
        // Both sides saw the other keep windows, so both enforced them.
        for conn in [&p.client, &p.server] {
            let st = conn.shared.lock();
            assert!(st.flow.streams && st.flow.session);
        }
    })
    .await;
}

#[tokio::test]
async fn half_close_keeps_the_other_direction() {
    within(async {
        let mut p = pair();
        let (mut c, mut s) = open_accepted(&p.client, &mut p.server_incoming, h(&[])).await;
        c.write_all(b"ping").await.unwrap();
        c.shutdown().await.unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"ping");
        // The client may not write any more, the server still may.
        assert_eq!(
            c.write_all(b"x").await.unwrap_err().kind(),
            io::ErrorKind::BrokenPipe
        );
        s.write_all(b"pong").await.unwrap();
        s.shutdown().await.unwrap();
        let mut got = Vec::new();
        c.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"pong");
    })
    .await;
}

#[tokio::test]
async fn reset_fails_reads_and_writes_on_both_ends() {
    within(async {
        let mut p = pair();
        let (mut c, mut s) = open_accepted(&p.client, &mut p.server_incoming, h(&[])).await;
        s.reset(RstStatus::CANCEL);
        let mut buf = [0; 8];
        let err = c.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
        assert!(err.to_string().contains("CANCEL"), "{err}");
        assert_eq!(
            c.write_all(b"x").await.unwrap_err().kind(),
            io::ErrorKind::ConnectionReset
        );
        assert!(s.read(&mut buf).await.is_err());
        assert!(s.write_all(b"x").await.is_err());
        // The connection carries on.
        let (mut c, mut s) = open_accepted(&p.client, &mut p.server_incoming, h(&[])).await;
        c.write_all(b"ok").await.unwrap();
        s.read_exact(&mut buf[..2]).await.unwrap();
        assert_eq!(&buf[..2], b"ok");
    })
    .await;
}

#[tokio::test]
async fn dropping_a_stream_finishes_then_cancels_it() {
    within(async {
        let mut p = pair();
        let (mut c, s) = open_accepted(&p.client, &mut p.server_incoming, h(&[])).await;
        let mut s = s;
        s.write_all(b"last words").await.unwrap();
        drop(s);
        // What was written arrives whole, ending in EOF rather than an error.
        let mut got = Vec::new();
        c.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"last words");
        // And the client learns to stop sending once the CANCEL behind the FIN arrives.
        while c.write_all(b"x").await.is_ok() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn many_concurrent_streams() {
    within(async {
        let Pair {
            client,
            mut server_incoming,
            ..
        } = pair();
        // The server echoes every stream back.
        tokio::spawn(async move {
            while let Some(incoming) = server_incoming.recv().await {
                tokio::spawn(async move {
                    let mut s = incoming.accept().await.unwrap();
                    let mut buf = Vec::new();
                    s.read_to_end(&mut buf).await.unwrap();
                    s.write_all(&buf).await.unwrap();
                    s.shutdown().await.unwrap();
                });
            }
        });
        let mut tasks = Vec::new();
        for i in 0..200u32 {
            let client = client.clone();
            tasks.push(tokio::spawn(async move {
                let tag = i.to_string();
                let mut s = client.open(h(&[("tag", &tag)]), false).await.unwrap();
                let body = pattern(10_000 + i as usize * 37, i as u8);
                s.write_all(&body).await.unwrap();
                s.shutdown().await.unwrap();
                let mut echo = Vec::new();
                s.read_to_end(&mut echo).await.unwrap();
                assert!(echo == body, "stream {i} echoed wrong");
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
    })
    .await;
}

#[tokio::test]
async fn streams_past_the_limit_are_refused() {
    within(async {
        let mut p = pair();
        let server_held = tokio::spawn(async move {
            let mut held = Vec::new();
            for _ in 0..MAX_CONCURRENT_STREAMS {
                let incoming = p.server_incoming.recv().await.unwrap();
                held.push(incoming.accept().await.unwrap());
            }
            (held, p.server_incoming)
        });
        let opens = (0..MAX_CONCURRENT_STREAMS).map(|_| p.client.open(h(&[]), false));
        let mut held: Vec<Stream> = futures::future::try_join_all(opens).await.unwrap();
        let (mut server_held, server_incoming) = server_held.await.unwrap();
        p.server_incoming = server_incoming;
        match p.client.open(h(&[]), false).await {
            Err(SpdyError::Reset { status, .. }) => assert_eq!(status, RstStatus::REFUSED_STREAM),
            other => panic!("expected a refusal, got {other:?}"),
        }
        // Closing one makes room again.
        drop(held.pop());
        drop(server_held.pop());
        let (mut c, mut s) = open_accepted(&p.client, &mut p.server_incoming, h(&[])).await;
        c.write_all(b"x").await.unwrap();
        let mut buf = [0];
        s.read_exact(&mut buf).await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn refused_and_dropped_incoming_streams_fail_the_opener() {
    within(async {
        let mut p = pair();
        let (opened, ()) = tokio::join!(p.client.open(h(&[]), false), async {
            p.server_incoming
                .recv()
                .await
                .unwrap()
                .refuse(RstStatus::REFUSED_STREAM)
                .await;
        });
        assert!(matches!(opened, Err(SpdyError::Reset { id: 1, .. })));
        let (opened, ()) = tokio::join!(p.client.open(h(&[]), false), async {
            drop(p.server_incoming.recv().await.unwrap());
        });
        assert!(matches!(opened, Err(SpdyError::Reset { id: 3, .. })));
    })
    .await;
}

#[tokio::test]
async fn close_ends_both_sides() {
    within(async {
        let mut p = pair();
        let (mut c, mut s) = open_accepted(&p.client, &mut p.server_incoming, h(&[])).await;
        s.write_all(b"bye").await.unwrap();
        p.server.close().await;
        // Data written before the GOAWAY still arrives; then the stream fails.
        let mut buf = [0; 3];
        c.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"bye");
        p.client.closed().await;
        assert!(c.read(&mut buf).await.is_err());
        assert!(c.write_all(b"x").await.is_err());
        assert!(matches!(
            p.client.open(h(&[]), false).await,
            Err(SpdyError::ConnectionClosed)
        ));
    })
    .await;
}
