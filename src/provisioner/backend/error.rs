//! What can go wrong building or removing a root filesystem.

use std::io;
use std::path::{Path, PathBuf};

use crate::error::{io_kind, ErrorKind, Kind};

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("unknown rootfs backend {name:?}: expected overlay, copy, bind or auto")]
    UnknownKind { name: String },
    #[error(
        "the overlay backend is unusable on the filesystem of {}: trial mount failed at \
         {op} {}",
        .store_dir.display(), .path.display()
    )]
    OverlayUnsupported {
        store_dir: PathBuf,
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the image has no layers; cannot build rootfs {}", .rootfs.display())]
    NoLayers { rootfs: PathBuf },
    #[error("the bind backend needs a single-layer image; this one has {count} layers")]
    BindMultipleLayers { count: usize },
    #[error("rootfs {} already exists", .path.display())]
    RootfsExists { path: PathBuf },
    #[error(
        "overlay mount options for {layers} layers are {len} bytes, over the kernel's \
         {limit}-byte limit"
    )]
    OverlayOptionsTooLong {
        layers: usize,
        len: usize,
        limit: usize,
    },
    #[error("mounting an overlay of {layers} layers at {}", .rootfs.display())]
    OverlayMount {
        rootfs: PathBuf,
        layers: usize,
        #[source]
        source: io::Error,
    },
    #[error("{} is still mounted after unmounting it repeatedly", .path.display())]
    StillMounted { path: PathBuf },
    #[error("{op} {}", .path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl Kind for BackendError {
    fn kind(&self) -> ErrorKind {
        match self {
            BackendError::UnknownKind { .. } | BackendError::NoLayers { .. } => {
                ErrorKind::InvalidArgument
            }
            BackendError::OverlayUnsupported { .. }
            | BackendError::BindMultipleLayers { .. }
            | BackendError::OverlayOptionsTooLong { .. } => ErrorKind::FailedPrecondition,
            BackendError::RootfsExists { .. } => ErrorKind::AlreadyExists,
            BackendError::StillMounted { .. } => ErrorKind::Internal,
            BackendError::OverlayMount { source, .. } | BackendError::Io { source, .. } => {
                io_kind(source)
            }
        }
    }
}

/// Shorthand for [`BackendError::Io`].
pub(super) fn io_err(op: &'static str, path: &Path, source: io::Error) -> BackendError {
    BackendError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// The error and its sources on one line, for logs.
pub(super) fn chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
