//! Creation and teardown shared by every backend, so "at least one layer", "rootfs must
//! not pre-exist", "undo on failure" and "no mount left behind" are written once.

use std::io;
use std::path::{Path, PathBuf};

use super::error::{chain, io_err};
use super::{Backend, BackendError};
use crate::sys::mount::{self, Propagation};

/// How often teardown re-reads mountinfo and detaches what it finds before giving up.
/// Each round removes the top mount of every stack, so this bounds how deeply mounts may
/// be stacked on one path; a container stacks two or three at most.
const UNMOUNT_ROUNDS: usize = 32;

/// Creates the empty `rootfs` directory (and missing parents). An existing `rootfs` is an
/// error and is left untouched: it may be another container's.
pub(super) fn create_rootfs(rootfs: &Path) -> Result<(), BackendError> {
    if let Some(parent) = rootfs.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| io_err("create parent directories of rootfs", rootfs, e))?;
    }
    match std::fs::create_dir(rootfs) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(BackendError::RootfsExists {
            path: rootfs.to_path_buf(),
        }),
        Err(e) => Err(io_err("create rootfs directory", rootfs, e)),
    }
}

/// Refuses an image without layers (no backend can make a rootfs of nothing), then
/// creates `rootfs` and runs `build`; if `build` fails, destroys what it made so a
/// failed provision leaves neither mounts nor directories behind. The original error is
/// returned; a failing cleanup is logged.
pub(super) fn provision_or_undo(
    backend: &dyn Backend,
    layers: &[PathBuf],
    rootfs: &Path,
    scratch: &Path,
    build: impl FnOnce() -> Result<(), BackendError>,
) -> Result<(), BackendError> {
    if layers.is_empty() {
        return Err(BackendError::NoLayers {
            rootfs: rootfs.to_path_buf(),
        });
    }
    create_rootfs(rootfs)?;
    let result = build();
    if let Err(e) = &result {
        if let Err(undo) = backend.destroy(rootfs, scratch) {
            tracing::warn!(
                backend = %backend.kind(),
                rootfs = %rootfs.display(),
                error = %chain(e),
                cleanup_error = %chain(&undo),
                "cleaning up after a failed provision failed"
            );
        }
    }
    result
}

/// Lazily unmounts everything mounted at or below `path` (including what a container
/// mounted inside its rootfs) until mountinfo lists nothing there.
pub(super) fn unmount_all(path: &Path) -> Result<(), BackendError> {
    for _ in 0..UNMOUNT_ROUNDS {
        let mounts = mount::mounts_at_or_under(path)
            .map_err(|e| io_err("read mountinfo for mounts under", path, e))?;
        if mounts.is_empty() {
            return Ok(());
        }
        for point in mounts {
            mount::detach(&point).map_err(|e| io_err("unmount", &point, e))?;
        }
    }
    Err(BackendError::StillMounted {
        path: path.to_path_buf(),
    })
}

/// Removes a directory that should be an empty mount point once unmounted. `rmdir` rather
/// than a recursive delete: if something is unexpectedly still there (a mount we failed to
/// see), refusing is better than deleting a layer's files through it.
pub(super) fn remove_mount_point(path: &Path) -> Result<(), BackendError> {
    match std::fs::remove_dir(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err("remove rootfs mount point", path, e)),
    }
}

/// Unmounts anything below `path`, then deletes it recursively (symlinks are removed, not
/// followed). A missing `path` is fine.
pub(super) fn remove_tree(path: &Path, what: &'static str) -> Result<(), BackendError> {
    unmount_all(path)?;
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(what, path, e)),
    }
}

/// `path` made absolute against the working directory, without resolving symlinks: alias
/// targets and mount options must not depend on where the daemon happens to run.
pub(super) fn absolute(path: &Path) -> Result<PathBuf, BackendError> {
    std::path::absolute(path).map_err(|e| io_err("make path absolute", path, e))
}

/// As Mesos does after mounting a rootfs: `slave` takes the new mount out of the peer
/// group of the mount it sits on (so what a container mounts inside its rootfs does not
/// spread to the host's peers), and `shared` then makes it a peer group of its own, so
/// mounts made later under the rootfs from the host side (volumes) reach the container's
/// copy of it.
pub(super) fn share(rootfs: &Path) -> Result<(), BackendError> {
    mount::set_propagation(rootfs, Propagation::Slave)
        .map_err(|e| io_err("make rootfs mount a slave", rootfs, e))?;
    mount::set_propagation(rootfs, Propagation::Shared)
        .map_err(|e| io_err("make rootfs mount shared", rootfs, e))
}
