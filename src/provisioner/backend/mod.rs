//! Root filesystem backends: turn an image's unpacked layers (base first, whiteouts already
//! in overlayfs form, see `store::unpack`) into a container's root filesystem, and take it
//! down again. As in Mesos' provisioner (`provisioner/backends/*`):
//!
//! - `overlay`: an overlayfs mount of all layers plus a writable upper dir. Any number of
//!   layers; the default when the kernel and the store's filesystem allow it.
//! - `copy`: the layers copied one over another into a plain directory, applying
//!   whiteouts on the way. Slow and space-hungry, but works everywhere.
//! - `bind`: a read-only bind mount of the only layer of a single-layer image. Never
//!   chosen automatically.
//!
//! `rootfs` (shared creation and teardown) keeps the "no mount left behind" rule in one
//! place; `error` holds [`BackendError`].
//!
//! All methods block on filesystem work; async callers run them in `spawn_blocking`.

mod bind;
mod copy;
mod error;
mod overlay;
mod rootfs;
#[cfg(test)]
mod tests;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

pub use bind::BindBackend;
pub use copy::CopyBackend;
pub use error::BackendError;
pub use overlay::OverlayBackend;

/// Builds and removes container root filesystems from image layers.
pub trait Backend: Send + Sync {
    fn kind(&self) -> BackendKind;

    /// Builds the root filesystem at `rootfs` from `layers` (layer rootfs dirs, base layer
    /// first). `rootfs` must not exist yet; missing parents are created. `scratch` is a
    /// per-container directory this backend owns for its own bookkeeping (created when
    /// needed). On error nothing is left mounted and `rootfs` and `scratch` are removed.
    fn provision(
        &self,
        layers: &[PathBuf],
        rootfs: &Path,
        scratch: &Path,
    ) -> Result<(), BackendError>;

    /// Removes what [`Backend::provision`] made: unmounts `rootfs` (and anything mounted
    /// below it), removes it and `scratch`. Idempotent: missing paths are fine, so it can
    /// be retried after a crash or a partial failure.
    fn destroy(&self, rootfs: &Path, scratch: &Path) -> Result<(), BackendError>;

    /// The directory holding what the container writes (its writable layer), for disk
    /// accounting: overlay's upper dir, the copied tree; `None` for a read-only rootfs.
    fn writable(&self, rootfs: &Path, scratch: &Path) -> Option<PathBuf>;

    /// [`Backend::provision`] for a container in a user namespace of its pod's (see
    /// [`Idmap`]): files the image gives uid 0 must be the namespace root's. Returns
    /// whether that is done; otherwise the launcher idmaps the whole rootfs when it binds
    /// it, which works on a plain directory (copy, bind) but not on an overlay mount.
    fn provision_idmapped(
        &self,
        layers: &[PathBuf],
        rootfs: &Path,
        scratch: &Path,
        _idmap: &Idmap<'_>,
    ) -> Result<IdmapDone, BackendError> {
        self.provision(layers, rootfs, scratch)?;
        Ok(IdmapDone::ByLauncher)
    }
}

/// A user namespace a rootfs is for: its pin, and the host ids of its root.
#[derive(Debug, Clone, Copy)]
pub struct Idmap<'a> {
    pub userns: &'a Path,
    pub root_uid: u32,
    pub root_gid: u32,
}

/// Who idmaps the rootfs (see [`Backend::provision_idmapped`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdmapDone {
    /// The backend did: its layers are idmapped mounts.
    ByBackend,
    /// The launcher must idmap the rootfs bind.
    ByLauncher,
}

/// A concrete backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BackendKind {
    Overlay,
    Copy,
    Bind,
}

impl BackendKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Overlay => "overlay",
            BackendKind::Copy => "copy",
            BackendKind::Bind => "bind",
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for BackendKind {
    type Err = BackendError;

    /// `overlay`, `copy` or `bind`. `auto` is not a kind; parse a [`BackendChoice`] to
    /// accept it.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.parse::<BackendChoice>()? {
            BackendChoice::Kind(kind) => Ok(kind),
            BackendChoice::Auto => Err(BackendError::UnknownKind {
                name: s.to_string(),
            }),
        }
    }
}

/// What the configuration asks for: a given backend, or `auto` (resolved by [`select`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendChoice {
    Auto,
    Kind(BackendKind),
}

impl FromStr for BackendChoice {
    type Err = BackendError;

    /// Exact, lower-case names as in Mesos' `--image_provisioner_backend`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(BackendChoice::Auto),
            "overlay" => Ok(BackendChoice::Kind(BackendKind::Overlay)),
            "copy" => Ok(BackendChoice::Kind(BackendKind::Copy)),
            "bind" => Ok(BackendChoice::Kind(BackendKind::Bind)),
            _ => Err(BackendError::UnknownKind {
                name: s.to_string(),
            }),
        }
    }
}

/// Picks the backend for new root filesystems at startup.
///
/// `auto` takes overlay when a trial overlay mount with its layer and upper dir on the
/// store's filesystem (`store_dir`, created if missing) works, else copy; bind is never
/// chosen automatically since it only handles single-layer images. An explicit `overlay`
/// is trial-mounted too, so an unusable one fails at startup with the reason rather than
/// at the first container; `copy` and `bind` are taken as given.
pub fn select(requested: &str, store_dir: &Path) -> Result<Box<dyn Backend>, BackendError> {
    let kind = match requested.parse::<BackendChoice>()? {
        BackendChoice::Kind(BackendKind::Overlay) => {
            overlay::probe(store_dir)?;
            BackendKind::Overlay
        }
        BackendChoice::Kind(kind) => kind,
        BackendChoice::Auto => match overlay::probe(store_dir) {
            Ok(()) => BackendKind::Overlay,
            Err(e) => {
                tracing::info!(
                    error = %error::chain(&e),
                    "overlay rootfs backend unavailable; using copy"
                );
                BackendKind::Copy
            }
        },
    };
    tracing::info!(backend = %kind, "rootfs backend selected");
    Ok(for_kind(kind))
}

/// The backend of a given kind without any availability check: for taking down root
/// filesystems that an earlier run (perhaps configured with another backend) made.
pub fn for_kind(kind: BackendKind) -> Box<dyn Backend> {
    match kind {
        BackendKind::Overlay => Box::new(OverlayBackend),
        BackendKind::Copy => Box::new(CopyBackend),
        BackendKind::Bind => Box::new(BindBackend),
    }
}
