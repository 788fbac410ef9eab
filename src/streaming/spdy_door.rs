//! Remote commands and port-forwarding over SPDY/3.1, kubelet's way: the client opens one
//! stream per channel, named by its `streamType` header (`error`, `stdin`, `stdout`,
//! `stderr`, `resize`); for port-forwarding, a `data` and an `error` stream per
//! connection, paired by `requestID` and aimed by `port`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite};

use super::dispatch;
use super::portforward::{self, Target};
use super::remotecommand::{self, Channels, Version};
use super::spdy::{self, Connection, Incoming, RstStatus};
use super::tokens::Request;
use crate::core::Core;

/// How long the client has to open every stream it needs (kubelet's default).
const STREAM_CREATION_TIMEOUT: Duration = Duration::from_secs(30);

pub async fn serve<S>(core: Arc<Core>, request: Request, io: S, protocol: &str)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (conn, incoming) = Connection::server(io);
    match request {
        Request::PortForward { pod, netns } => {
            port_forward(&conn, incoming, Target { pod, netns }).await
        }
        request => remote_command(&core, request, &conn, incoming, protocol).await,
    }
    conn.close().await;
}

async fn remote_command(
    core: &Arc<Core>,
    request: Request,
    conn: &Connection,
    mut incoming: tokio::sync::mpsc::Receiver<Incoming>,
    protocol: &str,
) {
    let streams = match &request {
        Request::Exec { streams, .. } | Request::Attach { streams, .. } => *streams,
        Request::PortForward { .. } => return,
    };
    let version = Version::of(protocol).unwrap_or(Version {
        resize: false,
        json_status: false,
    });
    let mut expected = vec!["error"];
    for (wanted, name) in [
        (streams.stdin, "stdin"),
        (streams.stdout, "stdout"),
        (streams.stderr, "stderr"),
        (streams.tty && version.resize, "resize"),
    ] {
        if wanted {
            expected.push(name);
        }
    }
    let mut got: HashMap<&'static str, spdy::Stream> = HashMap::new();
    let deadline = tokio::time::sleep(STREAM_CREATION_TIMEOUT);
    tokio::pin!(deadline);
    while got.len() < expected.len() {
        tokio::select! {
            next = incoming.recv() => {
                let Some(stream) = next else { return };
                let kind = spdy::get(&stream.headers, "streamtype").unwrap_or_default();
                match expected.iter().find(|e| **e == kind) {
                    Some(&name) if !got.contains_key(name) => match stream.accept().await {
                        Ok(s) => {
                            got.insert(name, s);
                        }
                        Err(_) => return,
                    },
                    // Unknown or repeated: not part of this session.
                    _ => stream.refuse(RstStatus::PROTOCOL_ERROR).await,
                }
            }
            () = &mut deadline => {
                tracing::debug!(?expected, got = ?got.keys().collect::<Vec<_>>(), "SPDY session: streams not opened in time");
                return;
            }
        }
    }
    let mut reader = |name| {
        got.remove(name).map(|s| {
            let (r, _w) = tokio::io::split(s);
            Box::pin(r) as remotecommand::Reader
        })
    };
    let (stdin, resize) = (reader("stdin"), reader("resize"));
    let mut writer = |name| {
        got.remove(name)
            .map(|s| Box::pin(s) as remotecommand::Writer)
    };
    let (stdout, stderr, error) = (writer("stdout"), writer("stderr"), writer("error"));
    let closed = conn.clone();
    let channels = Channels {
        stdin,
        stdout,
        stderr,
        error,
        resize,
        gone: Box::pin(async move { closed.closed().await }),
    };
    let (session, kind) = dispatch::open(core, &request).await;
    remotecommand::serve(session, channels, version, kind).await;
}

/// A connection being set up: its streams as they arrive.
struct Pair {
    data: Option<spdy::Stream>,
    error: Option<spdy::Stream>,
    port: Option<u16>,
    since: Instant,
}

async fn port_forward(
    conn: &Connection,
    mut incoming: tokio::sync::mpsc::Receiver<Incoming>,
    target: Target,
) {
    let mut pairs: HashMap<String, Pair> = HashMap::new();
    let mut forwards = tokio::task::JoinSet::new();
    loop {
        let stream = tokio::select! {
            next = incoming.recv() => match next {
                Some(stream) => stream,
                None => break,
            },
            () = conn.closed() => break,
        };
        // Pairs the client never completed are dropped after kubelet's timeout.
        pairs.retain(|_, p| p.since.elapsed() < STREAM_CREATION_TIMEOUT);
        let kind = spdy::get(&stream.headers, "streamtype")
            .unwrap_or_default()
            .to_string();
        if kind != "data" && kind != "error" {
            stream.refuse(RstStatus::PROTOCOL_ERROR).await;
            continue;
        }
        let port = spdy::get(&stream.headers, "port").and_then(|p| p.parse::<u16>().ok());
        // Clients older than `requestID` pair a data stream with the error stream opened
        // just before it (two ids earlier).
        let request = spdy::get(&stream.headers, "requestid")
            .map(str::to_string)
            .unwrap_or_else(|| {
                let id = stream.id;
                (if kind == "data" {
                    id.saturating_sub(2)
                } else {
                    id
                })
                .to_string()
            });
        let Ok(accepted) = stream.accept().await else {
            break;
        };
        let pair = pairs.entry(request.clone()).or_insert_with(|| Pair {
            data: None,
            error: None,
            port: None,
            since: Instant::now(),
        });
        pair.port = pair.port.or(port);
        if kind == "data" {
            pair.data = Some(accepted);
        } else {
            pair.error = Some(accepted);
        }
        if pair.data.is_none() || pair.error.is_none() {
            continue;
        }
        let Some(Pair {
            data: Some(data),
            error: Some(error),
            port,
            ..
        }) = pairs.remove(&request)
        else {
            continue;
        };
        let target = target.clone();
        forwards.spawn(async move {
            let mut error: remotecommand::Writer = Box::pin(error);
            let Some(port) = port.filter(|p| *p > 0) else {
                use tokio::io::AsyncWriteExt;
                let _ = error.write_all(b"invalid or missing port header").await;
                let _ = error.shutdown().await;
                return;
            };
            let (r, w) = tokio::io::split(data);
            portforward::forward(&target, port, (Box::pin(r), Box::pin(w)), error).await;
        });
    }
    // The client closed the connection: so are the connections it forwarded.
    forwards.abort_all();
}
