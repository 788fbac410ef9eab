//! What an upgraded connection is used for: the redeemed request, on the negotiated
//! transport. Sessions are opened on the core only once the client's side is set up, as
//! kubelet does, so a client that never completes the upgrade starts nothing.

use std::sync::Arc;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;

use super::portforward::{self, Target};
use super::remotecommand::{self, Channels, Kind, Version};
use super::tokens::Request;
use super::ws;
use crate::containerizer::session::Session;
use crate::containerizer::ContainerizerError;
use crate::core::Core;

/// WebSocket subprotocols for Exec and Attach, newest first.
pub const WS_REMOTE_COMMAND: [&str; 5] = [
    "v5.channel.k8s.io",
    "v4.channel.k8s.io",
    "v4.base64.channel.k8s.io",
    "channel.k8s.io",
    "base64.channel.k8s.io",
];
/// WebSocket subprotocols for PortForward.
pub const WS_PORT_FORWARD: [&str; 5] = [
    "v4.channel.k8s.io",
    "v4.base64.channel.k8s.io",
    "channel.k8s.io",
    "base64.channel.k8s.io",
    "portforward.k8s.io",
];

/// The remote-command channel numbers.
const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const ERROR: u8 = 3;
const RESIZE: u8 = 4;

/// Opens the session a remote-command request stands for.
pub async fn open(
    core: &Arc<Core>,
    request: &Request,
) -> (Result<Session, ContainerizerError>, Kind) {
    match request {
        Request::Exec {
            container,
            cmd,
            streams,
        } => (
            core.containerizer
                .exec_session(container, cmd, *streams)
                .await,
            Kind::Exec,
        ),
        Request::Attach { container, streams } => (
            core.containerizer.attach(container, *streams).await,
            Kind::Attach,
        ),
        Request::PortForward { .. } => (
            Err(ContainerizerError::Task(
                "not a remote-command request".into(),
            )),
            Kind::Exec,
        ),
    }
}

pub async fn over_websocket<S>(
    core: Arc<Core>,
    request: Request,
    ws: WebSocketStream<S>,
    protocol: &str,
    query: &str,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let framing = ws::Framing {
        base64: protocol.contains("base64"),
    };
    if let Request::PortForward { pod, netns } = request {
        let target = Target { pod, netns };
        return port_forward_websocket(target, ws, framing, query).await;
    }
    let streams = match &request {
        Request::Exec { streams, .. } | Request::Attach { streams, .. } => *streams,
        Request::PortForward { .. } => return,
    };
    let version = Version::of(protocol).unwrap_or(Version {
        resize: false,
        json_status: false,
    });
    let mut incoming = Vec::new();
    if streams.stdin {
        incoming.push(STDIN);
    }
    if streams.tty && version.resize {
        incoming.push(RESIZE);
    }
    let mut outgoing = vec![ERROR];
    if streams.stdout {
        outgoing.push(STDOUT);
    }
    if streams.stderr {
        outgoing.push(STDERR);
    }
    let mut mux = ws::mux(ws, framing, &incoming, &outgoing, Vec::new());
    let mut take_in = |c: u8| {
        mux.incoming
            .remove(&c)
            .map(|p| Box::pin(p) as remotecommand::Reader)
    };
    let (stdin, resize) = (take_in(STDIN), take_in(RESIZE));
    let mut take_out = |c: u8| {
        mux.outgoing
            .remove(&c)
            .map(|p| Box::pin(p) as remotecommand::Writer)
    };
    let (stdout, stderr, error) = (take_out(STDOUT), take_out(STDERR), take_out(ERROR));
    let gone = mux.gone;
    let channels = Channels {
        stdin,
        stdout,
        stderr,
        error,
        resize,
        gone: Box::pin(async move {
            let _ = gone.await;
        }),
    };
    let (session, kind) = open(&core, &request).await;
    remotecommand::serve(session, channels, version, kind).await;
}

/// WebSocket port-forward: the ports come from the query; port `i` has data channel
/// `2i` and error channel `2i + 1`, each announced by a first message holding the port
/// (two bytes, little-endian), as kubelet sends them.
async fn port_forward_websocket<S>(
    target: Target,
    ws: WebSocketStream<S>,
    framing: ws::Framing,
    query: &str,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let ports = match portforward::ports_from_query(query) {
        Ok(ports) if ports.len() <= 64 => ports,
        Ok(_) => {
            tracing::debug!("websocket port-forward: more than 64 ports asked for");
            return;
        }
        Err(e) => {
            tracing::debug!(error = %e, "websocket port-forward");
            return;
        }
    };
    let data: Vec<u8> = (0..ports.len()).map(|i| 2 * i as u8).collect();
    let outgoing: Vec<u8> = (0..ports.len() * 2).map(|i| i as u8).collect();
    let first = ports
        .iter()
        .enumerate()
        .flat_map(|(i, p)| {
            let port = Bytes::copy_from_slice(&p.to_le_bytes());
            [(2 * i as u8, port.clone()), (2 * i as u8 + 1, port)]
        })
        .collect();
    let mut mux = ws::mux(ws, framing, &data, &outgoing, first);
    let mut forwards = tokio::task::JoinSet::new();
    for (i, port) in ports.into_iter().enumerate() {
        let (d, e) = (2 * i as u8, 2 * i as u8 + 1);
        let (Some(input), Some(output), Some(error)) = (
            mux.incoming.remove(&d),
            mux.outgoing.remove(&d),
            mux.outgoing.remove(&e),
        ) else {
            continue;
        };
        let target = target.clone();
        forwards.spawn(async move {
            portforward::forward(
                &target,
                port,
                portforward::halves(input, output),
                Box::pin(error),
            )
            .await
        });
    }
    tokio::select! {
        _ = async { while forwards.join_next().await.is_some() {} } => {}
        // The client is gone: connections to the pod are closed with it.
        _ = mux.gone => forwards.abort_all(),
    }
}

/// SPDY: set up by the SPDY module's connection.
pub async fn over_spdy<S>(core: Arc<Core>, request: Request, io: S, protocol: &str)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    super::spdy_door::serve(core, request, io, protocol).await
}
