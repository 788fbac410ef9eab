//! The containerizer's errors. Each names the operation and the pod, container or path.

use crate::error::{io_kind, ErrorKind, Kind};

#[derive(Debug, thiserror::Error)]
pub enum ContainerizerError {
    #[error("{field} {value:?}: {reason}")]
    Invalid {
        field: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error("pod sandbox {id:?} not found")]
    PodNotFound { id: String },
    #[error("container {id:?} not found")]
    ContainerNotFound { id: String },
    #[error("pod sandbox {id} is not ready")]
    PodNotReady { id: String },
    #[error("container {id} is {state:?}: cannot {op}")]
    BadState {
        id: String,
        state: super::types::ContainerState,
        op: &'static str,
    },
    #[error("image {image:?} is not present; pull it first")]
    ImageNotFound { image: String },
    #[error(transparent)]
    Store(#[from] crate::provisioner::store::StoreError),
    #[error(transparent)]
    Backend(#[from] crate::provisioner::backend::BackendError),
    #[error(transparent)]
    Runtime(#[from] crate::isolators::docker::runtime::RuntimeError),
    #[error(transparent)]
    Db(#[from] super::db::DbError),
    /// An isolator refused or failed (its name in the message).
    #[error(transparent)]
    Isolator(#[from] crate::isolators::Failed),
    #[error("container {id:?} already exists")]
    AlreadyExists { id: String },
    #[error("container {id}: {message}")]
    Start { id: String, message: String },
    #[error("exec in container {id} timed out after {seconds}s")]
    ExecTimeout { id: String, seconds: i64 },
    /// The command could not be started; `kind` is `ucr nsexec`'s verdict.
    #[error("exec in container {id}: {message}")]
    Exec {
        id: String,
        kind: ErrorKind,
        message: String,
    },
    #[error("container {id} is not running: its process {pid} has ended")]
    ProcessGone { id: String, pid: i32 },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("background task failed: {0}")]
    Task(String),
    #[error("attaching to container {id}: {source}")]
    Attach {
        id: String,
        source: crate::monitor::attach::client::AttachError,
    },
}

impl Kind for ContainerizerError {
    fn kind(&self) -> ErrorKind {
        use ContainerizerError::*;
        match self {
            Invalid { .. } => ErrorKind::InvalidArgument,
            PodNotFound { .. } | ContainerNotFound { .. } | ImageNotFound { .. } => {
                ErrorKind::NotFound
            }
            PodNotReady { .. } | BadState { .. } | ProcessGone { .. } => {
                ErrorKind::FailedPrecondition
            }
            Exec { kind, .. } => *kind,
            ExecTimeout { .. } => ErrorKind::DeadlineExceeded,
            AlreadyExists { .. } => ErrorKind::AlreadyExists,
            Store(e) => e.kind(),
            Backend(e) => e.kind(),
            Runtime(e) => e.kind(),
            Isolator(e) => e.kind(),
            Db(_) | Task(_) | Start { .. } => ErrorKind::Internal,
            Io { source, .. } => io_kind(source),
            Attach { source, .. } => source.kind(),
        }
    }
}

pub fn io(
    op: &'static str,
    path: &std::path::Path,
) -> impl FnOnce(std::io::Error) -> ContainerizerError {
    let path = path.display().to_string();
    move |source| ContainerizerError::Io { op, path, source }
}
