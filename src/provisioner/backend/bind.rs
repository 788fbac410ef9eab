//! The bind backend: a single-layer image's layer dir bind-mounted read-only as the rootfs,
//! as Mesos' bind backend does. No copying and no upper dir, so the container cannot write
//! to its rootfs (only to volumes mounted into it), and the layer is shared as-is.
//!
//! The layer keeps its whiteouts in overlay form (0/0 character devices), which is harmless
//! in a single-layer image: there is nothing below for them to hide.

use std::path::{Path, PathBuf};

use super::error::io_err;
use super::rootfs::{
    absolute, provision_or_undo, remove_mount_point, remove_tree, share, unmount_all,
};
use super::{Backend, BackendError, BackendKind};
use crate::sys::mount::{self, MsFlags};

/// See the module documentation.
#[derive(Debug, Default, Clone, Copy)]
pub struct BindBackend;

impl Backend for BindBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Bind
    }

    fn provision(
        &self,
        layers: &[PathBuf],
        rootfs: &Path,
        scratch: &Path,
    ) -> Result<(), BackendError> {
        if layers.len() > 1 {
            return Err(BackendError::BindMultipleLayers {
                count: layers.len(),
            });
        }
        let rootfs = absolute(rootfs)?;
        provision_or_undo(self, layers, &rootfs, scratch, || {
            // Exactly one layer: more are refused above, none by `provision_or_undo`.
            let layer = absolute(&layers[0])?;
            mount::bind(&layer, &rootfs).map_err(|e| io_err("bind-mount layer at", &rootfs, e))?;
            // nodev: device nodes in the image stay inert (the launcher binds the real ones).
            mount::remount_bind(&rootfs, MsFlags::MS_RDONLY | MsFlags::MS_NODEV)
                .map_err(|e| io_err("remount read-only", &rootfs, e))?;
            share(&rootfs)
        })
    }

    fn destroy(&self, rootfs: &Path, scratch: &Path) -> Result<(), BackendError> {
        unmount_all(rootfs)?;
        remove_mount_point(rootfs)?;
        // Unused by this backend, but the caller may have created it; it is ours to remove.
        remove_tree(scratch, "remove bind scratch directory")
    }

    fn writable(&self, _rootfs: &Path, _scratch: &Path) -> Option<PathBuf> {
        None
    }
}
