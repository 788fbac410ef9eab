//! What can go wrong setting a device policy on a cgroup.

use std::path::PathBuf;

use super::effective::PolicyError;
use super::rules::RuleError;
use crate::error::{io_kind, ErrorKind, Kind};

#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// The rule list is one ucr refuses to apply (nothing was changed).
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error("{op} {}: {source}", .path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// A line of `devices.list` that is not a rule.
    #[error("{} line {line:?}: {source}", .path.display())]
    List {
        path: PathBuf,
        line: String,
        source: RuleError,
    },
}

impl Kind for DeviceError {
    fn kind(&self) -> ErrorKind {
        match self {
            DeviceError::Policy(_) => ErrorKind::InvalidArgument,
            DeviceError::Io { source, .. } => io_kind(source),
            DeviceError::List { .. } => ErrorKind::Internal,
        }
    }
}

/// For `map_err`: the failure of `op` on `path`.
pub(super) fn io(
    op: &'static str,
    path: &std::path::Path,
) -> impl FnOnce(std::io::Error) -> DeviceError {
    let path = path.to_path_buf();
    move |source| DeviceError::Io { op, path, source }
}
