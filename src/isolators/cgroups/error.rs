//! What goes wrong in the cgroups isolators, and which kind of error each is.

use std::path::{Path, PathBuf};

use crate::error::{io_kind, ErrorKind, Kind};

#[derive(Debug, thiserror::Error)]
pub enum CgroupsError {
    #[error(transparent)]
    Path(#[from] super::path::PathError),
    #[error(transparent)]
    Layout(#[from] super::layout::LayoutError),
    #[error(transparent)]
    Devices(#[from] super::devices::error::DeviceError),
    /// The kernel refused a value (EINVAL, ERANGE, EBUSY for a memory limit below the
    /// usage…): the client asked for something this node cannot do.
    #[error("{field} {value:?}: the kernel refused it (writing {file}): {source}")]
    Refused {
        field: String,
        value: String,
        file: PathBuf,
        source: std::io::Error,
    },
    /// A request this node's cgroups cannot take, whatever the value.
    #[error("{field} {value:?}: {reason}")]
    Unsupported {
        field: String,
        value: String,
        reason: String,
    },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cgroup {path} still has processes {pids:?} after they were killed")]
    NotEmpty { path: PathBuf, pids: Vec<i32> },
    #[error("{0}")]
    State(String),
    /// Every handle of a pool is taken.
    #[error("{0}")]
    Exhausted(String),
}

impl CgroupsError {
    /// A `cgroups-rs` failure on `path`, with the I/O error it carries when it has one.
    pub fn from_crate(op: &'static str, path: &Path, e: cgroups_rs::fs::error::Error) -> Self {
        let source = std::error::Error::source(&e)
            .and_then(|s| s.downcast_ref::<std::io::Error>())
            .map(|s| std::io::Error::new(s.kind(), s.to_string()))
            .unwrap_or_else(|| std::io::Error::other(e.to_string()));
        CgroupsError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }

    /// A write of `value` for the request's `field` into `file` that failed: a refusal
    /// when the kernel said the value is wrong, else an I/O failure.
    pub fn write(field: &str, value: &str, file: &Path, source: std::io::Error) -> Self {
        match source.raw_os_error() {
            Some(libc::EINVAL) | Some(libc::ERANGE) | Some(libc::EBUSY) | Some(libc::EOVERFLOW) => {
                CgroupsError::Refused {
                    field: field.to_string(),
                    value: value.to_string(),
                    file: file.to_path_buf(),
                    source,
                }
            }
            _ => CgroupsError::Io {
                op: "write",
                path: file.to_path_buf(),
                source,
            },
        }
    }
}

impl Kind for CgroupsError {
    fn kind(&self) -> ErrorKind {
        match self {
            CgroupsError::Path(_) | CgroupsError::Refused { .. } => ErrorKind::InvalidArgument,
            CgroupsError::Unsupported { .. } => ErrorKind::InvalidArgument,
            CgroupsError::Layout(_) | CgroupsError::State(_) => ErrorKind::Internal,
            CgroupsError::Devices(e) => e.kind(),
            CgroupsError::Io { source, .. } => io_kind(source),
            CgroupsError::NotEmpty { .. } => ErrorKind::Internal,
            CgroupsError::Exhausted(_) => ErrorKind::ResourceExhausted,
        }
    }
}

/// For `map_err`: the failure of `op` on `path`.
pub fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> CgroupsError {
    let path = path.to_path_buf();
    move |source| CgroupsError::Io { op, path, source }
}

/// Writes `value` into `dir/file` for the request's `field`, with [`CgroupsError::write`]
/// wording a failure. For the files the crate has no setter for.
pub fn write_file(dir: &Path, file: &str, field: &str, value: &str) -> Result<(), CgroupsError> {
    let path = dir.join(file);
    std::fs::write(&path, value).map_err(|e| CgroupsError::write(field, value, &path, e))
}

/// A `cgroups-rs` setter's failure for the request's `field`: refusals keep their errno.
pub fn from_setter(
    field: &str,
    value: &str,
    dir: &Path,
    e: cgroups_rs::fs::error::Error,
) -> CgroupsError {
    let file = match e.kind() {
        cgroups_rs::fs::error::ErrorKind::WriteFailed(f, _) => dir.join(f),
        _ => dir.to_path_buf(),
    };
    match std::error::Error::source(&e).and_then(|s| s.downcast_ref::<std::io::Error>()) {
        Some(io) => CgroupsError::write(
            field,
            value,
            &file,
            std::io::Error::from_raw_os_error(io.raw_os_error().unwrap_or(libc::EIO)),
        ),
        None => CgroupsError::Io {
            op: "write",
            path: file,
            source: std::io::Error::other(e.to_string()),
        },
    }
}
