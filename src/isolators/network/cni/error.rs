//! The CNI library's errors. Each names the CNI operation, the network, the plugin and its
//! path where there is one; a plugin's own message is carried verbatim, because it is
//! usually the only clue an operator gets (kubelet shows it in the pod's events).

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::exec::Op;
use crate::error::{io_kind, ErrorKind, Kind};

/// CNI error code 11, "try again later" (CNI spec 1.0, "Error" section).
const CODE_TRY_AGAIN_LATER: u64 = 11;

#[derive(Debug, thiserror::Error)]
pub enum CniError {
    /// No usable network config: the node's network is not ready.
    #[error("no CNI network is ready: {reason}")]
    NoNetwork { reason: String },
    #[error("CNI network {name:?} not found in {}", conf_dir.display())]
    UnknownNetwork { name: String, conf_dir: PathBuf },
    #[error("invalid CNI attachment: {field} {value:?}: {reason}")]
    InvalidAttachment {
        field: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error("invalid {annotation} annotation {value:?}: {reason}")]
    InvalidBandwidth {
        annotation: String,
        value: String,
        reason: String,
    },
    #[error("CNI {op} on network {network:?}: plugin {plugin:?} not found in {bin_dirs}")]
    PluginNotFound {
        op: Op,
        network: String,
        plugin: String,
        bin_dirs: String,
    },
    #[error("{call}: starting it: {source}")]
    PluginSpawn {
        call: Box<PluginCall>,
        source: std::io::Error,
    },
    #[error("{call}: did not finish within {timeout:?} and was killed")]
    PluginTimeout {
        call: Box<PluginCall>,
        timeout: Duration,
    },
    /// The plugin exited non-zero; `message` is its error `msg` (and `details`), or its
    /// stderr when it printed no JSON error.
    #[error("{call}: failed: {message}")]
    PluginFailed {
        call: Box<PluginCall>,
        /// The CNI error code, when the plugin printed a JSON error.
        code: Option<u64>,
        message: String,
    },
    #[error(
        "CNI {op} on network {network:?}: plugin {plugin} printed an invalid result: {reason}"
    )]
    BadResult {
        op: Op,
        network: String,
        plugin: String,
        reason: String,
    },
    /// A plugin does not speak the network's `cniVersion` (from its VERSION answer).
    #[error(
        "CNI network {network:?}: plugin {plugin} does not support cniVersion {version} \
         (it supports {supported:?})"
    )]
    UnsupportedVersion {
        network: String,
        plugin: String,
        version: String,
        supported: Vec<String>,
    },
    #[error("{op} CNI cache {}: {source}", path.display())]
    Cache {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("CNI cache {} is corrupt: {reason}", path.display())]
    CorruptCache { path: PathBuf, reason: String },
    #[error("{container_id} is already attached as {ifname} to CNI network {network:?}")]
    AlreadyAttached {
        container_id: String,
        ifname: String,
        network: String,
    },
    #[error("{container_id} has no CNI attachment {ifname}")]
    NotAttached {
        container_id: String,
        ifname: String,
    },
    /// ADD failed and the DEL that should have undone it failed too; the cache entry is
    /// kept so a later `del` can finish the cleanup.
    #[error("{add} (undoing it with DEL also failed: {del})")]
    RollbackFailed {
        add: Box<CniError>,
        del: Box<CniError>,
    },
}

/// Which plugin call failed (boxed in the variants: errors travel by value a lot).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginCall {
    pub op: Op,
    pub network: String,
    /// Empty for VERSION, which concerns no container.
    pub container_id: String,
    pub plugin: String,
    pub path: PathBuf,
}

impl fmt::Display for PluginCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CNI {}", self.op)?;
        if !self.container_id.is_empty() {
            write!(f, " of {}", self.container_id)?;
        }
        write!(
            f,
            " on network {:?}: plugin {} ({})",
            self.network,
            self.plugin,
            self.path.display()
        )
    }
}

impl Kind for CniError {
    fn kind(&self) -> ErrorKind {
        use CniError::*;
        match self {
            NoNetwork { .. } | PluginNotFound { .. } | UnsupportedVersion { .. } => {
                ErrorKind::FailedPrecondition
            }
            UnknownNetwork { .. } | NotAttached { .. } => ErrorKind::NotFound,
            InvalidAttachment { .. } | InvalidBandwidth { .. } => ErrorKind::InvalidArgument,
            AlreadyAttached { .. } => ErrorKind::AlreadyExists,
            PluginTimeout { .. } => ErrorKind::DeadlineExceeded,
            PluginFailed { code, .. } if *code == Some(CODE_TRY_AGAIN_LATER) => {
                ErrorKind::Unavailable
            }
            PluginFailed { .. } | PluginSpawn { .. } | BadResult { .. } | CorruptCache { .. } => {
                ErrorKind::Internal
            }
            Cache { source, .. } => io_kind(source),
            RollbackFailed { add, .. } => add.kind(),
        }
    }
}
