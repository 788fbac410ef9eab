//! The Mesos door's HTTP server on `--mesos-listen`: `POST /api/v1` (the v1 operator API,
//! JSON or protobuf both ways, RecordIO for the streaming calls: see `stream`), the legacy
//! `GET /health` and `/version`, and the other legacy endpoints (`legacy`), each behind
//! its realm's authentication (`auth`).

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use prost::Message;

use super::calls::{self, Agent};
use super::codec::{self, Format, Refused};
use super::observe;
use super::stream::{self, Body};
use super::wire::v1::agent::Call;
use tracing::Instrument as _;

/// The largest call body read: a LAUNCH_CONTAINER is a few kilobytes.
const MAX_BODY: usize = 4 << 20;

#[derive(Debug, thiserror::Error)]
#[error("Mesos operator API: listening on {address}: {source}")]
pub struct ListenError {
    address: SocketAddr,
    source: std::io::Error,
}

/// Binds `address` and serves the door until the process ends.
pub async fn start(address: SocketAddr, agent: Agent) -> Result<SocketAddr, ListenError> {
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|source| ListenError { address, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| ListenError { address, source })?;
    tracing::info!(address = %bound, "serving the Mesos operator API");
    let agent = Arc::new(agent);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            };
            let agent = agent.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let agent = agent.clone();
                    async move { Ok::<_, std::convert::Infallible>(handle(&agent, req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(bound)
}

async fn handle(agent: &Agent, req: Request<Incoming>) -> Response<Body> {
    // Before anything else, as libprocess authenticates before routing to the handler.
    if let Err(realm) = agent.auth.check(req.uri().path(), req.headers()) {
        return super::auth::unauthorized(realm).map(BodyExt::boxed);
    }
    if let Some(resp) = super::legacy::serve(agent, req.method(), req.uri()).await {
        return resp.map(BodyExt::boxed);
    }
    if (req.uri().path(), req.method()) == ("/api/v1", &Method::POST) {
        return match api(agent, req).await {
            Ok(resp) => resp,
            Err(Refused(status, message)) => text(status, &message).map(BodyExt::boxed),
        };
    }
    match (req.uri().path(), req.method()) {
        ("/api/v1", _) => {
            let mut resp = text(StatusCode::METHOD_NOT_ALLOWED, "Expecting 'POST'");
            resp.headers_mut()
                .insert(header::ALLOW, header::HeaderValue::from_static("POST"));
            resp
        }
        ("/health", &Method::GET) => Response::new(Full::new(Bytes::new())),
        ("/version", &Method::GET) => {
            let v = calls::version();
            let body = serde_json::json!({"version": v.version});
            let mut resp = Response::new(Full::new(Bytes::from(body.to_string())));
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static(codec::JSON),
            );
            resp
        }
        _ => text(StatusCode::NOT_FOUND, "Not found"),
    }
    .map(BodyExt::boxed)
}

/// One v1 call: parsed, answered inside its span, and counted by type and status.
async fn api(agent: &Agent, req: Request<Incoming>) -> Result<Response<Body>, Refused> {
    let unparsed = |Refused(status, _): &Refused| observe::counted(observe::UNPARSED, *status);
    let media = stream::negotiate(req.headers()).inspect_err(unparsed)?;
    if media.streamed_input {
        // ATTACH_CONTAINER_INPUT: its body is read as it comes, record by record.
        let result = super::attach::input(agent, media, req.into_body()).await;
        observe::counted("ATTACH_CONTAINER_INPUT", status_of(&result));
        return result;
    }
    let call = parse(req, &media).await.inspect_err(unparsed)?;
    let result = respond(agent, &call, &media)
        .instrument(observe::span(&call))
        .await;
    observe::counted(observe::call_name(&call), status_of(&result));
    result
}

fn status_of(result: &Result<Response<Body>, Refused>) -> StatusCode {
    match result {
        Ok(resp) => resp.status(),
        Err(Refused(status, _)) => *status,
    }
}

/// The body, read whole (at most `MAX_BODY`), as a Call the media types allow.
async fn parse(req: Request<Incoming>, media: &stream::Media) -> Result<Call, Refused> {
    let body = Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| {
            Refused(
                StatusCode::BAD_REQUEST,
                format!("Failed to read the body (at most {MAX_BODY} bytes): {e}"),
            )
        })?
        .to_bytes();
    let call = stream::decode_call(media.input, &body).map_err(|e| {
        Refused(
            StatusCode::BAD_REQUEST,
            format!("Failed to parse body into Call: {e}"),
        )
    })?;
    stream::check_call(media, call.r#type())?;
    Ok(call)
}

async fn respond(
    agent: &Agent,
    call: &Call,
    media: &stream::Media,
) -> Result<Response<Body>, Refused> {
    if let Some(answer) = super::attach::streaming(agent, call, media).await {
        return answer;
    }
    let output = media.output;
    let (status, answer) = calls::answer(agent, call).await?;
    let Some(answer) = answer else {
        let mut resp = Response::new(stream::full(Bytes::new()));
        *resp.status_mut() = status;
        return Ok(resp);
    };
    let bytes = match output {
        Format::Json => serde_json::to_vec(&answer)
            .map_err(|e| Refused(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?,
        Format::Protobuf => answer.encode_to_vec(),
    };
    let mut resp = Response::new(stream::full(bytes));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(output.content_type()),
    );
    Ok(resp)
}

fn text(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(message.to_string())));
    *resp.status_mut() = status;
    resp
}
