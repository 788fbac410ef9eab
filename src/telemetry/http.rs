//! `--metrics-listen`: `GET /metrics` (the Prometheus families, OpenMetrics text) and
//! `GET /healthz` (200 while the daemon serves). Read-only: any other method is 405, any
//! other path 404, and no request is read beyond its head.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

use crate::core::Core;

/// What Prometheus asks for and `prometheus-client`'s text encoder writes.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug, thiserror::Error)]
#[error("metrics endpoint: listening on {address}: {source}")]
pub struct ListenError {
    address: SocketAddr,
    source: std::io::Error,
}

/// Binds `address` and serves until the process ends; returns the bound address.
pub async fn start(address: SocketAddr, core: Arc<Core>) -> Result<SocketAddr, ListenError> {
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|source| ListenError { address, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| ListenError { address, source })?;
    tracing::info!(address = %bound, "serving metrics");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                // Out of descriptors, most likely: wait rather than spin.
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            };
            let core = core.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let core = core.clone();
                    async move { Ok::<_, std::convert::Infallible>(handle(core, req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(bound)
}

async fn handle(core: Arc<Core>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    if path != "/metrics" && path != "/healthz" {
        return text(StatusCode::NOT_FOUND, "not found\n");
    }
    if req.method() != Method::GET {
        let mut resp = text(StatusCode::METHOD_NOT_ALLOWED, "only GET\n");
        resp.headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("GET"));
        return resp;
    }
    if path == "/healthz" {
        return text(StatusCode::OK, "ok\n");
    }
    // The gauges read the store's database: off the async threads.
    let encoded =
        tokio::task::spawn_blocking(move || crate::metrics::prometheus::families().encode(&core))
            .await;
    match encoded {
        Ok(Ok(body)) => {
            let mut resp = Response::new(Full::new(Bytes::from(body)));
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static(OPENMETRICS),
            );
            resp
        }
        Ok(Err(e)) => text(StatusCode::INTERNAL_SERVER_ERROR, &format!("{e}\n")),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, &format!("{e}\n")),
    }
}

fn text(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(message.to_string())));
    *resp.status_mut() = status;
    resp
}
