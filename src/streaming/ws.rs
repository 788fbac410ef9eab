//! Kubernetes' channel protocol over WebSocket (`channel.k8s.io` and its versions): every
//! message starts with a channel number, the rest is that channel's data. The
//! `base64.` variants send text messages whose first character is the channel as an
//! ASCII digit and whose rest is base64. `v5.` adds a message `[255, channel]` by which
//! the client closes a channel it writes (its stdin), which v4 has no way to say.
//!
//! [`mux`] turns one WebSocket into a byte pipe per channel, so that the remote-command
//! and port-forward code is the same over WebSocket as over SPDY streams.

use std::collections::HashMap;

use base64::Engine;
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// The close signal of `v5.channel.k8s.io`.
const CLOSE_CHANNEL: u8 = 255;
/// Bytes buffered per channel between the socket and its user.
const PIPE: usize = 64 * 1024;
const READ_SIZE: usize = 32 * 1024;

/// How channels are framed on this connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Framing {
    /// Text messages with an ASCII channel digit and base64 data.
    pub base64: bool,
}

/// The application's ends of the channels: read what the client sent on `incoming`
/// channels, write what it should get on `outgoing` ones (shut a writer down when the
/// channel is done; when all are, the WebSocket is closed).
pub struct Channels {
    pub incoming: HashMap<u8, DuplexStream>,
    pub outgoing: HashMap<u8, DuplexStream>,
    /// Resolves when the client is gone (closed the WebSocket or the connection broke).
    pub gone: tokio::sync::oneshot::Receiver<()>,
}

/// Starts the task that carries `ws`: `first` gives messages sent on a channel before
/// anything else (port-forward announces each channel's port this way).
pub fn mux<S>(
    ws: WebSocketStream<S>,
    framing: Framing,
    incoming: &[u8],
    outgoing: &[u8],
    first: Vec<(u8, Bytes)>,
) -> Channels
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut to_app = HashMap::new();
    let mut app_in = HashMap::new();
    for &c in incoming {
        let (app, ours) = tokio::io::duplex(PIPE);
        app_in.insert(c, app);
        to_app.insert(c, ours);
    }
    // Every outgoing channel is read by a task of its own into one queue, so that a
    // channel with nothing to say never holds up another.
    let (frames_tx, frames_rx) = mpsc::channel::<(u8, Option<Bytes>)>(16);
    let mut app_out = HashMap::new();
    for &c in outgoing {
        let (app, mut ours) = tokio::io::duplex(PIPE);
        app_out.insert(c, app);
        let tx = frames_tx.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; READ_SIZE];
            loop {
                match ours.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if tx
                            .send((c, Some(Bytes::copy_from_slice(&buf[..n]))))
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                }
            }
            let _ = tx.send((c, None)).await;
        });
    }
    drop(frames_tx);
    let (gone_tx, gone) = tokio::sync::oneshot::channel();
    let open = outgoing.len();
    tokio::spawn(async move {
        carry(ws, framing, to_app, frames_rx, open, first).await;
        let _ = gone_tx.send(());
    });
    Channels {
        incoming: app_in,
        outgoing: app_out,
        gone,
    }
}

async fn carry<S>(
    mut ws: WebSocketStream<S>,
    framing: Framing,
    mut to_app: HashMap<u8, DuplexStream>,
    mut frames: mpsc::Receiver<(u8, Option<Bytes>)>,
    mut open: usize,
    first: Vec<(u8, Bytes)>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    for (c, data) in first {
        if ws.send(encode(framing, c, &data)).await.is_err() {
            return;
        }
    }
    while open > 0 {
        tokio::select! {
            frame = frames.recv() => match frame {
                Some((c, Some(data))) => {
                    if ws.send(encode(framing, c, &data)).await.is_err() {
                        return;
                    }
                }
                Some((_, None)) => open -= 1,
                None => break,
            },
            message = ws.next() => match message {
                Some(Ok(message)) => {
                    if !deliver(framing, message, &mut to_app).await {
                        return;
                    }
                }
                // Closed or broken: the channels the client wrote end, and nobody is
                // left to read ours.
                _ => return,
            },
        }
    }
    let _ = ws.close(None).await;
}

/// Hands a client message to its channel; false when the client closed the socket.
async fn deliver(
    framing: Framing,
    message: Message,
    to_app: &mut HashMap<u8, DuplexStream>,
) -> bool {
    let Some((channel, data)) = decode(framing, message) else {
        return true;
    };
    let Decoded::Data(data) = data else {
        return !matches!(data, Decoded::Close);
    };
    if channel == CLOSE_CHANNEL {
        // v5: `[255, c]` closes channel c.
        if let Some(&c) = data.first() {
            if let Some(mut pipe) = to_app.remove(&c) {
                let _ = pipe.shutdown().await;
            }
        }
        return true;
    }
    // A channel the application does not read, or that it stopped reading: dropped, as
    // kubelet drops writes to a channel it did not open.
    if let Some(pipe) = to_app.get_mut(&channel) {
        if pipe.write_all(&data).await.is_err() {
            to_app.remove(&channel);
        }
    }
    true
}

enum Decoded {
    Data(Bytes),
    Close,
    Ignored,
}

/// A message as (channel, data); `None` for an empty or malformed one.
fn decode(framing: Framing, message: Message) -> Option<(u8, Decoded)> {
    match message {
        Message::Binary(b) if !framing.base64 => {
            let (&c, _) = b.split_first()?;
            Some((c, Decoded::Data(b.slice(1..))))
        }
        Message::Text(t) if framing.base64 => {
            let s = t.as_str();
            let c = s.bytes().next()?.checked_sub(b'0')?;
            let data = base64::engine::general_purpose::STANDARD
                .decode(&s[1..])
                .ok()?;
            Some((c, Decoded::Data(Bytes::from(data))))
        }
        Message::Close(_) => Some((0, Decoded::Close)),
        _ => Some((0, Decoded::Ignored)),
    }
}

pub fn encode(framing: Framing, channel: u8, data: &[u8]) -> Message {
    if framing.base64 {
        let mut s = String::with_capacity(1 + data.len() * 4 / 3 + 4);
        s.push(char::from(b'0' + channel));
        base64::engine::general_purpose::STANDARD.encode_string(data, &mut s);
        Message::text(s)
    } else {
        let mut v = Vec::with_capacity(1 + data.len());
        v.push(channel);
        v.extend_from_slice(data);
        Message::binary(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_framings_round_trip() {
        for base64 in [false, true] {
            let framing = Framing { base64 };
            let message = encode(framing, 2, b"\x00hello\xff");
            let Some((2, Decoded::Data(data))) = decode(framing, message) else {
                panic!("not decoded ({base64})");
            };
            assert_eq!(&data[..], b"\x00hello\xff");
        }
        // Text in a binary connection, an empty message, bad base64: ignored, not fatal.
        let binary = Framing { base64: false };
        assert!(matches!(
            decode(binary, Message::text("1abc")),
            Some((_, Decoded::Ignored))
        ));
        assert!(decode(binary, Message::binary(Vec::new())).is_none());
        assert!(decode(Framing { base64: true }, Message::text("1!!")).is_none());
    }
}
