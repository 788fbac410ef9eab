//! What can stop a monitor before its container runs (reported on the sync descriptor),
//! or while it supervises one (nobody left to tell but the exit record).

use std::path::PathBuf;

use crate::error::{io_kind, ErrorKind, Kind};
use crate::launcher::LaunchError;

use super::log::LogError;

#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error("taking the sync descriptor {fd}: {source}")]
    SyncFd { fd: i32, source: std::io::Error },
    #[error("reading the monitor config {path}: {source}")]
    ReadConfig {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("parsing the monitor config {path}: {source}")]
    ParseConfig {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("detaching the monitor ({step}): {source}")]
    Detach {
        step: &'static str,
        source: std::io::Error,
    },
    /// Carries the operation and path in the I/O error (see `bundle::write_atomic`).
    #[error("{0}")]
    Bundle(std::io::Error),
    #[error("creating the container's {what}: {source}")]
    Stdio {
        what: &'static str,
        source: std::io::Error,
    },
    #[error("creating the attach socket in {bundle}: {source}")]
    AttachSocket {
        bundle: PathBuf,
        source: std::io::Error,
    },
    /// The container's process exec'd without handing over its terminal's master.
    #[error("the container's process sent no terminal")]
    NoTerminal,
    #[error(transparent)]
    Log(#[from] LogError),
    /// The launcher's own message (runc's wording for a missing program), unprefixed:
    /// the daemon puts it after its own context, as containerd does with runc's.
    #[error(transparent)]
    Launch(#[from] LaunchError),
    #[error("watching the container ({step}): {source}")]
    Supervise {
        step: &'static str,
        source: std::io::Error,
    },
}

impl Kind for MonitorError {
    fn kind(&self) -> ErrorKind {
        match self {
            MonitorError::ParseConfig { .. } => ErrorKind::InvalidArgument,
            MonitorError::ReadConfig { source, .. }
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                ErrorKind::NotFound
            }
            MonitorError::Log(e) => e.kind(),
            MonitorError::NoTerminal => ErrorKind::Internal,
            MonitorError::Launch(e) => e.kind(),
            MonitorError::SyncFd { source, .. }
            | MonitorError::ReadConfig { source, .. }
            | MonitorError::Detach { source, .. }
            | MonitorError::Bundle(source)
            | MonitorError::Stdio { source, .. }
            | MonitorError::AttachSocket { source, .. }
            | MonitorError::Supervise { source, .. } => io_kind(source),
        }
    }
}
