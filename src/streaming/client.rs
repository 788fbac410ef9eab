//! The client side of Exec and Attach over WebSocket, as kubectl speaks it
//! (`v5.channel.k8s.io`, falling back to `v4`): each message is one byte naming the
//! channel (0 stdin, 1 stdout, 2 stderr, 3 error/status, 4 resize) and the data. The
//! outcome arrives on the error channel as a Kubernetes `Status` carrying the exit code.
//! Used by `ucr exec -it`; the server side is `ws` and `remotecommand`.

use bytes::Bytes;
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

type Ws = WebSocketStream<TcpStream>;

/// Newest first: v5 can close stdin on its own (`[255, 0]`), v4 cannot.
const OFFERED: [&str; 2] = ["v5.channel.k8s.io", "v4.channel.k8s.io"];

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const ERROR: u8 = 3;
const RESIZE: u8 = 4;
const CLOSE: u8 = 255;

#[derive(Debug, thiserror::Error)]
pub enum StreamClientError {
    #[error("streaming URL {url}: {reason}")]
    BadUrl { url: String, reason: &'static str },
    #[error("connecting to {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("WebSocket upgrade on {url} refused with HTTP {status}")]
    Refused { url: String, status: u16 },
    #[error("WebSocket on {url}: {detail}")]
    Protocol { url: String, detail: String },
    #[error("the server chose {chosen:?}, none of the protocols offered")]
    Unnegotiated { chosen: String },
    #[error("the session failed: {0}")]
    Failed(String),
}

/// What the server sends.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    Stdout(Bytes),
    Stderr(Bytes),
    /// The command ended with this exit code; nothing follows.
    Exit(i32),
}

/// Opens a session on a URL returned by the CRI's Exec or Attach.
pub async fn connect(url: &str) -> Result<(Sender, Receiver), StreamClientError> {
    let bad = |reason| StreamClientError::BadUrl {
        url: url.to_string(),
        reason,
    };
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| bad("only http:// URLs are supported (no TLS client here)"))?;
    let addr = rest.split('/').next().unwrap_or_default().to_string();
    let mut request = format!("ws://{rest}")
        .into_client_request()
        .map_err(|_| bad("not a valid URL"))?;
    let offered = OFFERED.join(", ");
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        offered.parse().map_err(|_| bad("bad header"))?,
    );
    let tcp = TcpStream::connect(&addr)
        .await
        .map_err(|source| StreamClientError::Connect {
            addr: addr.clone(),
            source,
        })?;
    let (ws, response) = match tokio_tungstenite::client_async(request, tcp).await {
        Ok(ok) => ok,
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
            return Err(StreamClientError::Refused {
                url: url.to_string(),
                status: r.status().as_u16(),
            })
        }
        Err(e) => {
            return Err(StreamClientError::Protocol {
                url: url.to_string(),
                detail: e.to_string(),
            })
        }
    };
    let chosen = response
        .headers()
        .get("Sec-WebSocket-Protocol")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    if !OFFERED.contains(&chosen.as_str()) {
        return Err(StreamClientError::Unnegotiated { chosen });
    }
    let (sink, stream) = ws.split();
    let v5 = chosen.starts_with("v5.");
    let url = url.to_string();
    Ok((
        Sender {
            sink,
            v5,
            url: url.clone(),
        },
        Receiver { stream, url },
    ))
}

/// The client's half that writes: stdin, resizes, end of input.
pub struct Sender {
    sink: SplitSink<Ws, Message>,
    v5: bool,
    url: String,
}

impl Sender {
    pub async fn stdin(&mut self, data: &[u8]) -> Result<(), StreamClientError> {
        let mut message = Vec::with_capacity(data.len() + 1);
        message.push(STDIN);
        message.extend_from_slice(data);
        self.send(message).await
    }

    /// The terminal's new size in cells.
    pub async fn resize(&mut self, cols: u16, rows: u16) -> Result<(), StreamClientError> {
        let mut message = vec![RESIZE];
        message.extend_from_slice(format!("{{\"Width\":{cols},\"Height\":{rows}}}").as_bytes());
        self.send(message).await
    }

    /// End of input. v4 has no way to say it but closing everything, so there it is a
    /// no-op: the command sees end of input when the session ends.
    pub async fn close_stdin(&mut self) -> Result<(), StreamClientError> {
        if self.v5 {
            self.send(vec![CLOSE, STDIN]).await?;
        }
        Ok(())
    }

    async fn send(&mut self, message: Vec<u8>) -> Result<(), StreamClientError> {
        self.sink
            .send(Message::binary(message))
            .await
            .map_err(|e| StreamClientError::Protocol {
                url: self.url.clone(),
                detail: e.to_string(),
            })
    }
}

/// The client's half that reads.
pub struct Receiver {
    stream: SplitStream<Ws>,
    url: String,
}

impl Receiver {
    /// The next event; `None` once the server closed without a status (which the
    /// protocols from v4 on never do for exec).
    pub async fn next(&mut self) -> Result<Option<Event>, StreamClientError> {
        while let Some(message) = self.stream.next().await {
            let message = message.map_err(|e| StreamClientError::Protocol {
                url: self.url.clone(),
                detail: e.to_string(),
            })?;
            let data = match message {
                Message::Binary(b) => b,
                Message::Close(_) => return Ok(None),
                _ => continue,
            };
            let Some(&channel) = data.first() else {
                continue;
            };
            let payload = data.slice(1..);
            match channel {
                STDOUT => return Ok(Some(Event::Stdout(payload))),
                STDERR => return Ok(Some(Event::Stderr(payload))),
                ERROR => return exit_code(&payload).map(|c| Some(Event::Exit(c))),
                _ => {}
            }
        }
        Ok(None)
    }
}

/// The exit code a Kubernetes `Status` on the error channel reports (see
/// `streaming::status` for what the server writes).
pub fn exit_code(status: &[u8]) -> Result<i32, StreamClientError> {
    let value: serde_json::Value = serde_json::from_slice(status)
        .map_err(|_| StreamClientError::Failed(String::from_utf8_lossy(status).into_owned()))?;
    if value["status"] == "Success" {
        return Ok(0);
    }
    if value["reason"] == "NonZeroExitCode" {
        let causes = value["details"]["causes"].as_array().cloned();
        let code = causes
            .unwrap_or_default()
            .iter()
            .find(|c| c["reason"] == "ExitCode")
            .and_then(|c| c["message"].as_str().and_then(|m| m.parse().ok()));
        if let Some(code) = code {
            return Ok(code);
        }
    }
    let message = value["message"].as_str().unwrap_or("unknown failure");
    Err(StreamClientError::Failed(message.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_give_exit_codes_or_the_failure() {
        assert_eq!(exit_code(br#"{"status":"Success"}"#).expect("ok"), 0);
        let failed = br#"{"status":"Failure","reason":"NonZeroExitCode",
            "details":{"causes":[{"reason":"ExitCode","message":"3"}]}}"#;
        assert_eq!(exit_code(failed).expect("code"), 3);
        let e = exit_code(br#"{"status":"Failure","message":"container not running"}"#)
            .expect_err("failure");
        assert!(e.to_string().contains("container not running"), "{e}");
        assert!(exit_code(b"garbage").is_err());
    }
}
