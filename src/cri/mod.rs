//! The Kubernetes CRI front door (RuntimeService + ImageService, `runtime.v1`) and ucr's
//! admin API, on one unix socket. Handlers are thin: they validate and translate the
//! request, call the core, and translate back. Errors become `tonic::Status` in one place
//! (`status`), and every call goes through one instrumentation wrapper (`instrument`).
//!
//! - `image`: ImageService; `runtime`: RuntimeService; `admin`: ucr's own calls.

mod admin;
pub mod client;
mod image;
mod observe;
mod runtime;
pub mod status;
mod validate;

use std::future::Future;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use tokio::net::UnixListener;
use tonic::{Response, Status};
use tracing::Instrument;

pub use crate::core::Core;
use crate::transport::h2_authority_rewriter;

/// Generated admin API types (proto/ucr/admin/v1/admin.proto).
pub mod admin_api {
    tonic::include_proto!("ucr.admin.v1");
}

/// Serves until `shutdown` resolves. The socket is created mode 0660 (owner and group
/// only: whoever can talk to it can run anything as root).
pub async fn serve(
    socket: &Path,
    group: Option<u32>,
    core: Arc<Core>,
    stream: Option<Arc<crate::streaming::StreamServer>>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    if let Some(dir) = socket.parent() {
        std::fs::create_dir_all(dir).map_err(|source| ServeError::Socket {
            path: socket.display().to_string(),
            source,
        })?;
    }
    // A socket file left by a daemon that was killed would make bind fail.
    match std::fs::remove_file(socket) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(ServeError::Socket {
                path: socket.display().to_string(),
                source: e,
            })
        }
        _ => {}
    }
    let listener = UnixListener::bind(socket).map_err(|source| ServeError::Socket {
        path: socket.display().to_string(),
        source,
    })?;
    // Root and the `--listen-group` may connect; nobody else.
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o660))
        .and_then(|()| match group {
            Some(gid) => std::os::unix::fs::chown(socket, None, Some(gid)),
            None => Ok(()),
        })
        .map_err(|source| ServeError::Socket {
            path: socket.display().to_string(),
            source,
        })?;
    tracing::info!(socket = %socket.display(), "serving CRI");
    let max = 64 << 20; // kubelet lists thousands of containers in one message
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let server = tonic::transport::Server::builder()
        .add_service(
            k8s_cri::v1::runtime_service_server::RuntimeServiceServer::new(runtime::Runtime::new(
                core.clone(),
                stream,
            ))
            .max_decoding_message_size(max)
            .max_encoding_message_size(max),
        )
        .add_service(
            k8s_cri::v1::image_service_server::ImageServiceServer::new(image::Images::new(
                core.clone(),
            ))
            .max_decoding_message_size(max)
            .max_encoding_message_size(max),
        )
        .add_service(admin_api::admin_server::AdminServer::new(
            admin::Admin::new(core),
        ))
        // Through the shim that fixes crictl 1.26's `:authority`.
        .serve_with_incoming_shutdown(h2_authority_rewriter::incoming(listener), async move {
            let _ = stop_rx.changed().await;
        });
    // Graceful shutdown waits for every connection to close, and kubelet never closes
    // its own: give in-flight calls a moment, then stop anyway.
    let grace = async {
        shutdown.await;
        let _ = stop_tx.send(true);
        tokio::time::sleep(SHUTDOWN_GRACE).await;
        tracing::info!("clients still connected after {SHUTDOWN_GRACE:?}; stopping anyway");
    };
    let result = tokio::select! {
        r = server => r.map_err(|e| ServeError::Transport(e.to_string())),
        _ = grace => Ok(()),
    };
    let _ = std::fs::remove_file(socket);
    result
}

/// How long in-flight calls get to finish after SIGTERM.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("CRI socket {path}: {source}")]
    Socket {
        path: String,
        source: std::io::Error,
    },
    #[error("gRPC server: {0}")]
    Transport(String),
}

/// The one wrapper around every handler: a span naming the call and its subject (and
/// the pod or container id it names), the time taken, the outcome logged once and
/// counted (`ucr_cri_requests_total`, `ucr_cri_request_duration_seconds`).
pub(crate) async fn instrument<T>(
    call: &'static str,
    subject: &str,
    work: impl Future<Output = Result<T, Status>>,
) -> Result<Response<T>, Status> {
    let span = observe::span(call, subject);
    async move {
        let started = Instant::now();
        let result = work.await;
        let took = started.elapsed();
        let code = result
            .as_ref()
            .map_or_else(|s| s.code(), |_| tonic::Code::Ok);
        crate::metrics::prometheus::families().cri_call(call, observe::code_name(code), took);
        let ms = took.as_secs_f64() * 1000.0;
        match &result {
            Ok(_) => tracing::debug!(ms, "ok"),
            Err(s) => tracing::info!(ms, code = ?s.code(), message = s.message(), "failed"),
        }
        result.map(Response::new)
    }
    .instrument(span)
    .await
}
