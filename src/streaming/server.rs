//! The HTTP side of the streaming server: one listener, three paths (`/exec/<token>`,
//! `/attach/<token>`, `/portforward/<token>`), and the upgrade to SPDY/3.1 or WebSocket
//! with the subprotocol both sides know. The token is redeemed before anything else: an
//! unknown, expired, reused or misplaced one gets 404 and nothing happens.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderMap, Method, Request as HttpRequest, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

use super::tokens::{Request, Tokens, TooMany};
use super::{dispatch, remotecommand};
use crate::core::Core;

/// The port-forward subprotocol of SPDY.
pub const PORT_FORWARD: &str = "portforward.k8s.io";

/// The streaming server: where the CRI door parks requests, and what serves them.
pub struct StreamServer {
    tokens: Tokens,
    base_url: String,
    core: Arc<Core>,
}

#[derive(Debug, thiserror::Error)]
pub enum StreamingError {
    #[error("streaming server: listening on {address}: {source}")]
    Listen {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("streaming server: {0}")]
    Tls(String),
}

impl crate::error::Kind for StreamingError {
    fn kind(&self) -> crate::error::ErrorKind {
        crate::error::ErrorKind::Internal
    }
}

impl StreamServer {
    /// Binds `address` (port 0: a free one) and serves on it until the process ends.
    pub async fn start(
        address: SocketAddr,
        tls: Option<super::tls::TlsFiles>,
        core: Arc<Core>,
    ) -> Result<Arc<StreamServer>, StreamingError> {
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .map_err(|source| StreamingError::Listen { address, source })?;
        let bound = listener
            .local_addr()
            .map_err(|source| StreamingError::Listen { address, source })?;
        let acceptor = tls.map(|files| files.acceptor()).transpose()?;
        let scheme = if acceptor.is_some() { "https" } else { "http" };
        let server = Arc::new(StreamServer {
            tokens: Tokens::default(),
            base_url: format!("{scheme}://{bound}"),
            core,
        });
        tracing::info!(url = %server.base_url, "streaming server listening");
        let serving = server.clone();
        tokio::spawn(async move { serving.accept(listener, acceptor).await });
        Ok(server)
    }

    /// Parks `request` and returns the URL its client redeems it on.
    pub fn url_for(&self, request: Request) -> Result<String, TooMany> {
        let kind = request.kind();
        let token = self.tokens.insert(request)?;
        Ok(format!("{}/{kind}/{token}", self.base_url))
    }

    async fn accept(
        self: Arc<Self>,
        listener: tokio::net::TcpListener,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) {
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors and the like: wait a little rather than spin.
                    tracing::warn!(error = %e, "streaming server: accept");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            let server = self.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                match tls {
                    Some(tls) => match tls.accept(stream).await {
                        Ok(stream) => server.serve_connection(TokioIo::new(stream)).await,
                        Err(e) => tracing::debug!(%peer, error = %e, "TLS handshake"),
                    },
                    None => server.serve_connection(TokioIo::new(stream)).await,
                }
            });
        }
    }

    async fn serve_connection<S>(self: Arc<Self>, io: TokioIo<S>)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let service = hyper::service::service_fn(move |req| {
            let server = self.clone();
            async move { Ok::<_, std::convert::Infallible>(server.handle(req)) }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .serve_connection(io, service)
            .with_upgrades();
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "streaming connection");
        }
    }

    fn handle(self: Arc<Self>, mut req: HttpRequest<Incoming>) -> Response<Full<Bytes>> {
        if req.method() != Method::GET && req.method() != Method::POST {
            return plain(StatusCode::METHOD_NOT_ALLOWED, "use GET or POST");
        }
        let path = req.uri().path().trim_start_matches('/').to_string();
        let Some((kind, token)) = path.split_once('/') else {
            return plain(StatusCode::NOT_FOUND, "not found");
        };
        let Some(request) = self.tokens.take(kind, token) else {
            return plain(StatusCode::NOT_FOUND, "unknown or expired token");
        };
        let headers = req.headers();
        let upgrade = header_value(headers, header::UPGRADE).to_ascii_lowercase();
        let offered = offered_protocols(headers, &upgrade);
        let port_forward = matches!(request, Request::PortForward { .. });
        match upgrade.as_str() {
            "websocket" => {
                let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY) else {
                    return plain(StatusCode::BAD_REQUEST, "missing Sec-WebSocket-Key");
                };
                let accept =
                    tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
                let supported: &[&str] = if port_forward {
                    &dispatch::WS_PORT_FORWARD
                } else {
                    &dispatch::WS_REMOTE_COMMAND
                };
                let Some(protocol) = negotiate(&offered, supported, "channel.k8s.io") else {
                    return refused(&offered, supported);
                };
                let query = req.uri().query().unwrap_or_default().to_string();
                let upgraded = hyper::upgrade::on(&mut req);
                let core = self.core.clone();
                let chosen = protocol.clone();
                tokio::spawn(async move {
                    match upgraded.await {
                        Ok(io) => {
                            let ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
                                TokioIo::new(io),
                                tokio_tungstenite::tungstenite::protocol::Role::Server,
                                None,
                            )
                            .await;
                            dispatch::over_websocket(core, request, ws, &chosen, &query).await;
                        }
                        Err(e) => tracing::debug!(error = %e, "websocket upgrade"),
                    }
                });
                let mut resp = Response::builder()
                    .status(StatusCode::SWITCHING_PROTOCOLS)
                    .header(header::CONNECTION, "Upgrade")
                    .header(header::UPGRADE, "websocket")
                    .header(header::SEC_WEBSOCKET_ACCEPT, accept);
                if !protocol.is_empty() && !offered.is_empty() {
                    resp = resp.header(header::SEC_WEBSOCKET_PROTOCOL, protocol);
                }
                resp.body(Full::new(Bytes::new()))
                    .unwrap_or_else(|_| plain(StatusCode::INTERNAL_SERVER_ERROR, "response"))
            }
            "spdy/3.1" => {
                let supported: &[&str] = if port_forward {
                    &[PORT_FORWARD]
                } else {
                    &remotecommand::PROTOCOLS
                };
                // A client that names no protocol speaks the first one (kubelet's rule).
                let fallback = if port_forward {
                    PORT_FORWARD
                } else {
                    "channel.k8s.io"
                };
                let Some(protocol) = negotiate(&offered, supported, fallback) else {
                    return refused(&offered, supported);
                };
                let upgraded = hyper::upgrade::on(&mut req);
                let core = self.core.clone();
                let chosen = protocol.clone();
                tokio::spawn(async move {
                    match upgraded.await {
                        Ok(io) => {
                            dispatch::over_spdy(core, request, TokioIo::new(io), &chosen).await
                        }
                        Err(e) => tracing::debug!(error = %e, "SPDY upgrade"),
                    }
                });
                let mut resp = Response::builder()
                    .status(StatusCode::SWITCHING_PROTOCOLS)
                    .header(header::CONNECTION, "Upgrade")
                    .header(header::UPGRADE, "SPDY/3.1");
                if !offered.is_empty() {
                    resp = resp.header("X-Stream-Protocol-Version", protocol);
                }
                resp.body(Full::new(Bytes::new()))
                    .unwrap_or_else(|_| plain(StatusCode::INTERNAL_SERVER_ERROR, "response"))
            }
            _ => plain(
                StatusCode::BAD_REQUEST,
                "upgrade request required (SPDY/3.1 or websocket)",
            ),
        }
    }
}

fn header_value(headers: &HeaderMap, name: header::HeaderName) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// The subprotocols the client offers, in its order of preference: SPDY clients send
/// `X-Stream-Protocol-Version` (repeated or comma-separated), WebSocket clients
/// `Sec-WebSocket-Protocol`.
fn offered_protocols(headers: &HeaderMap, upgrade: &str) -> Vec<String> {
    let name = if upgrade == "websocket" {
        header::SEC_WEBSOCKET_PROTOCOL.as_str()
    } else {
        "x-stream-protocol-version"
    };
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

/// The first protocol the client offers that we speak; `fallback` when it offers none.
fn negotiate(offered: &[String], supported: &[&str], fallback: &str) -> Option<String> {
    if offered.is_empty() {
        return Some(fallback.to_string());
    }
    offered
        .iter()
        .find(|p| supported.contains(&p.as_str()))
        .cloned()
}

fn refused(offered: &[String], supported: &[&str]) -> Response<Full<Bytes>> {
    plain(
        StatusCode::FORBIDDEN,
        &format!(
            "unable to upgrade: unable to negotiate protocol: client supports {offered:?}, server supports {supported:?}"
        ),
    )
}

fn plain(status: StatusCode, text: &str) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(format!("{text}\n"))));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clients_preference_wins_among_what_we_speak() {
        let offered = vec!["v5.channel.k8s.io".to_string(), "v4.channel.k8s.io".into()];
        assert_eq!(
            negotiate(&offered, &remotecommand::PROTOCOLS, "x"),
            Some("v4.channel.k8s.io".into())
        );
        assert_eq!(
            negotiate(&[], &remotecommand::PROTOCOLS, "channel.k8s.io"),
            Some("channel.k8s.io".into())
        );
        assert_eq!(
            negotiate(&["nope".into()], &remotecommand::PROTOCOLS, "x"),
            None
        );
    }

    #[test]
    fn offered_protocols_may_repeat_or_be_listed() {
        let mut h = HeaderMap::new();
        h.append(
            "X-Stream-Protocol-Version",
            "v4.channel.k8s.io".parse().expect("v"),
        );
        h.append(
            "X-Stream-Protocol-Version",
            "v3.channel.k8s.io, channel.k8s.io".parse().expect("v"),
        );
        assert_eq!(
            offered_protocols(&h, "spdy/3.1"),
            ["v4.channel.k8s.io", "v3.channel.k8s.io", "channel.k8s.io"]
        );
    }
}
