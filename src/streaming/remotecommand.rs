//! Exec and Attach over any transport: a containerizer [`Session`] joined to the client's
//! channels (SPDY streams or WebSocket channels, already set up by the caller). The
//! versions of Kubernetes' remote-command protocol differ in what they carry: `v2` and
//! later have an error channel; `v3` and later a resize channel for terminals; `v4` and
//! later report the outcome as a JSON `Status` with the exit code (see `status`).

use std::pin::Pin;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::status;
use crate::containerizer::session::{OutputStream, Session, SessionEnd, TermSize};
use crate::containerizer::ContainerizerError;

pub type Reader = Pin<Box<dyn AsyncRead + Send>>;
pub type Writer = Pin<Box<dyn AsyncWrite + Send>>;

/// The remote-command subprotocols, newest first (the order we prefer them in).
pub const PROTOCOLS: [&str; 4] = [
    "v4.channel.k8s.io",
    "v3.channel.k8s.io",
    "v2.channel.k8s.io",
    "channel.k8s.io",
];

/// What a negotiated protocol version carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version {
    pub resize: bool,
    pub json_status: bool,
}

impl Version {
    /// The features of `protocol` (`v5.channel.k8s.io` and the `base64.` forms too);
    /// `None` if it is not a remote-command protocol.
    pub fn of(protocol: &str) -> Option<Version> {
        let base = protocol.replace("base64.", "");
        let n = match base.as_str() {
            "channel.k8s.io" => 1,
            "v2.channel.k8s.io" => 2,
            "v3.channel.k8s.io" => 3,
            "v4.channel.k8s.io" => 4,
            "v5.channel.k8s.io" => 5,
            _ => return None,
        };
        Some(Version {
            resize: n >= 3,
            json_status: n >= 4,
        })
    }
}

/// The client's side of a session.
pub struct Channels {
    pub stdin: Option<Reader>,
    pub stdout: Option<Writer>,
    pub stderr: Option<Writer>,
    pub error: Option<Writer>,
    pub resize: Option<Reader>,
    /// Resolves when the client is gone: the session is then ended (an exec'd command
    /// killed) even if it writes nothing that would notice.
    pub gone: Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
}

/// Whether the session is an exec (whose exit code is the outcome) or an attach (which
/// ends well however the container ends).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Exec,
    Attach,
}

/// Runs `session` to its end over `channels`, then reports the outcome on the error
/// channel and closes the output channels.
pub async fn serve(
    session: Result<Session, ContainerizerError>,
    mut channels: Channels,
    version: Version,
    kind: Kind,
) {
    let outcome = match session {
        Ok(session) => run(session, &mut channels).await,
        Err(e) => Some(Err(crate::error::chain(&e))),
    };
    // None: the client went away; nobody to tell.
    let Some(outcome) = outcome else { return };
    let outcome = match (kind, outcome) {
        (Kind::Attach, Ok(_)) => Ok(0),
        (_, outcome) => outcome,
    };
    for w in [channels.stdout.as_mut(), channels.stderr.as_mut()]
        .into_iter()
        .flatten()
    {
        let _ = w.shutdown().await;
    }
    if let Some(error) = channels.error.as_mut() {
        if let Some(payload) = status::encode(&outcome, version.json_status) {
            let _ = error.write_all(&payload).await;
        }
        let _ = error.shutdown().await;
    }
}

/// Copies until the session's output ends; `None` if the client went away first.
async fn run(session: Session, channels: &mut Channels) -> Option<Result<i32, String>> {
    let Session {
        stdin,
        mut output,
        resize,
        end,
        guard,
        // kubelet's protocol has no signals.
        signal: _,
    } = session;
    // Input and resizes run on their own: they end with the client's side of them.
    let mut background = Vec::new();
    match (channels.stdin.take(), stdin) {
        (Some(from), Some(to)) => background.push(tokio::spawn(copy_stdin(from, to))),
        // Attach to a container without stdin: what the client sends is read and dropped
        // (containerd's answer), so it cannot back up the connection it shares.
        (Some(from), None) => background.push(tokio::spawn(discard(from))),
        _ => {}
    }
    if let (Some(from), Some(to)) = (channels.resize.take(), resize) {
        background.push(tokio::spawn(read_resizes(from, to)));
    }
    let copied = async {
        while let Some((stream, data)) = output.recv().await {
            let writer = match stream {
                OutputStream::Stdout => channels.stdout.as_mut(),
                OutputStream::Stderr => channels.stderr.as_mut(),
            };
            if let Some(w) = writer {
                if w.write_all(&data).await.is_err() {
                    // The client stopped reading this stream; keep the others going.
                    tracing::debug!(?stream, "client stream closed");
                }
            }
        }
    };
    let gone = &mut channels.gone;
    tokio::select! {
        () = copied => {}
        () = gone => {
            for task in background {
                task.abort();
            }
            drop(guard);
            return None;
        }
    }
    let ended = end.await;
    for task in background {
        task.abort();
    }
    drop(guard);
    Some(match ended {
        Ok(Ok(SessionEnd::Exited(code))) => Ok(code),
        Ok(Ok(SessionEnd::Detached)) => Ok(0),
        Ok(Err(e)) => Err(crate::error::chain(&e)),
        Err(_) => Err("the session ended without an outcome".into()),
    })
}

async fn copy_stdin(mut from: Reader, to: tokio::sync::mpsc::Sender<Bytes>) {
    let mut buf = vec![0u8; 32 * 1024];
    while let Ok(n) = from.read(&mut buf).await {
        if n == 0 || to.send(Bytes::copy_from_slice(&buf[..n])).await.is_err() {
            break;
        }
    }
    // Dropping `to` closes the process's stdin.
}

async fn discard(mut from: Reader) {
    let _ = tokio::io::copy(&mut from, &mut tokio::io::sink()).await;
}

/// The resize channel: a stream of JSON objects `{"Width": w, "Height": h}`.
async fn read_resizes(mut from: Reader, to: tokio::sync::mpsc::Sender<TermSize>) {
    #[derive(serde::Deserialize)]
    struct Size {
        #[serde(rename = "Width")]
        width: u16,
        #[serde(rename = "Height")]
        height: u16,
    }
    let mut pending = Vec::new();
    let mut buf = vec![0u8; 4096];
    while let Ok(n) = from.read(&mut buf).await {
        if n == 0 {
            break;
        }
        pending.extend_from_slice(&buf[..n]);
        let mut sizes = serde_json::Deserializer::from_slice(&pending).into_iter::<Size>();
        let mut used = 0;
        while let Some(size) = sizes.next() {
            match size {
                Ok(s) => {
                    used = sizes.byte_offset();
                    let size = TermSize {
                        width: s.width,
                        height: s.height,
                    };
                    if to.send(size).await.is_err() {
                        return;
                    }
                }
                // An object cut in two: wait for the rest.
                Err(e) if e.is_eof() => break,
                // Garbage: the client is not speaking the protocol; stop listening.
                Err(_) => return,
            }
        }
        pending.drain(..used);
        // A client may not make us hold more than a few sizes' worth.
        if pending.len() > 4096 {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_say_what_they_carry() {
        let v1 = Version::of("channel.k8s.io").expect("v1");
        assert!(!v1.resize && !v1.json_status);
        assert!(Version::of("v3.channel.k8s.io").expect("v3").resize);
        let v4 = Version::of("v4.channel.k8s.io").expect("v4");
        assert!(v4.resize && v4.json_status);
        assert_eq!(Version::of("v5.channel.k8s.io"), Some(v4));
        assert_eq!(Version::of("base64.channel.k8s.io"), Some(v1));
        assert_eq!(Version::of("portforward.k8s.io"), None);
    }

    #[tokio::test]
    async fn resizes_are_read_across_split_writes() {
        let (mut client, server) = tokio::io::duplex(1024);
        let (tx, mut rx) = tokio::sync::mpsc::channel(8);
        let task = tokio::spawn(read_resizes(Box::pin(server), tx));
        client
            .write_all(b"{\"Width\":80,\"Height\":24}{\"Width\":1")
            .await
            .expect("write");
        client.write_all(b"00,\"Height\":50}").await.expect("write");
        drop(client);
        let got: Vec<TermSize> = [rx.recv().await, rx.recv().await]
            .into_iter()
            .flatten()
            .collect();
        assert_eq!(
            got,
            [
                TermSize {
                    width: 80,
                    height: 24
                },
                TermSize {
                    width: 100,
                    height: 50
                }
            ]
        );
        task.await.expect("task");
    }
}
