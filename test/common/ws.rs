//! A WebSocket client for the streaming server, speaking Kubernetes' channel protocol
//! (`v5.channel.k8s.io` and friends) the way kubectl does.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

pub type Ws = WebSocketStream<TcpStream>;

/// Connects to a streaming URL offering `protocols`. `Err(status)` when the server
/// answers with an HTTP status instead of upgrading.
pub async fn connect(url: &str, protocols: &[&str]) -> Result<(Ws, String), u16> {
    let ws_url = url.replacen("http://", "ws://", 1);
    let mut request = ws_url.into_client_request().expect("request");
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        protocols.join(", ").parse().expect("header"),
    );
    let host = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .expect("host")
        .to_string();
    let tcp = TcpStream::connect(&host).await.expect("connect");
    match tokio_tungstenite::client_async(request, tcp).await {
        Ok((ws, response)) => {
            let chosen = response
                .headers()
                .get("Sec-WebSocket-Protocol")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            Ok((ws, chosen))
        }
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => Err(r.status().as_u16()),
        Err(e) => panic!("websocket handshake: {e}"),
    }
}

/// Sends `data` on `channel`.
pub async fn send(ws: &mut Ws, channel: u8, data: &[u8]) {
    let mut v = vec![channel];
    v.extend_from_slice(data);
    ws.send(Message::binary(v)).await.expect("send");
}

/// v5: closes the client's `channel` (its stdin).
pub async fn close_channel(ws: &mut Ws, channel: u8) {
    ws.send(Message::binary(vec![255, channel]))
        .await
        .expect("send close");
}

/// Everything received per channel until the server closes, within `limit`.
pub async fn read_all(ws: &mut Ws, limit: Duration) -> BTreeMap<u8, Vec<u8>> {
    let mut got: BTreeMap<u8, Vec<u8>> = BTreeMap::new();
    let read = async {
        while let Some(Ok(m)) = ws.next().await {
            match m {
                Message::Binary(b) if !b.is_empty() => {
                    got.entry(b[0]).or_default().extend_from_slice(&b[1..])
                }
                Message::Close(_) => break,
                _ => {}
            }
        }
    };
    tokio::time::timeout(limit, read)
        .await
        .expect("the server did not finish in time");
    got
}

/// Reads until `channel` has received something containing `needle`; returns all of it.
pub async fn read_until(ws: &mut Ws, channel: u8, needle: &str, limit: Duration) -> String {
    let mut text = String::new();
    let read = async {
        while let Some(Ok(m)) = ws.next().await {
            if let Message::Binary(b) = m {
                if b.first() == Some(&channel) {
                    text.push_str(&String::from_utf8_lossy(&b[1..]));
                    if text.contains(needle) {
                        return;
                    }
                }
            }
        }
    };
    if tokio::time::timeout(limit, read).await.is_err() {
        panic!("no {needle:?} on channel {channel} in time; got {text:?}");
    }
    text
}
