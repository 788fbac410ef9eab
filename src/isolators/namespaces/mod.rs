//! Namespace isolators: which PID and IPC namespaces a pod's containers live in.

pub mod ipc;
pub mod pid;

/// Runs blocking work (mounts, a helper process) off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, crate::isolators::IsolatorError> + Send + 'static,
) -> Result<T, crate::isolators::IsolatorError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| crate::isolators::IsolatorError::Io {
            op: "run blocking work",
            path: String::new(),
            source: std::io::Error::other(e.to_string()),
        })?
}
