//! The overlay backend: one overlayfs mount with every layer as a read-only lower dir and a
//! per-container upper dir, so the rootfs is writable and the layers stay shared.
//!
//! Scratch layout (as Mesos' overlay backend, which names the alias dir `links`):
//! ```text
//! <scratch>/
//! ├── l/        short aliases, one per layer: l/0 -> base layer dir, ..., l/<N-1> -> top
//! ├── upper/    the container's changes (overlay upperdir)
//! └── work/     overlayfs' private work dir (must be on upper's filesystem)
//! ```
//!
//! Mount options must fit in one page (4095 bytes with 4 KiB pages), and store paths
//! (`<store>/layers/<64 hex>/rootfs`) are over 100 bytes each, so a deep image would not
//! fit. The lower dirs are therefore named through the aliases: `<scratch>/l/<n>` when
//! that fits, else `/proc/self/fd/<fd>/<n>` through a directory fd of `l/` held across the
//! mount call, which keeps each entry near 20 bytes however long the scratch path is
//! (enough for Docker's 127-layer maximum). Docker instead `chdir`s into the alias dir in a
//! re-executed child and passes relative paths; `chdir` is process-wide and unsafe in a
//! multi-threaded daemon. The new mount API (`fsconfig` with `lowerdir+`, Linux 6.8) takes
//! one layer per call and would lift the limit altogether.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::error::io_err;
use super::rootfs::{
    absolute, provision_or_undo, remove_mount_point, remove_tree, share, unmount_all,
};
use super::{Backend, BackendError, BackendKind};
use crate::provisioner::store::paths::StorePaths;
use crate::sys::mount;

/// See the module documentation.
#[derive(Debug, Default, Clone, Copy)]
pub struct OverlayBackend;

impl Backend for OverlayBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Overlay
    }

    fn provision(
        &self,
        layers: &[PathBuf],
        rootfs: &Path,
        scratch: &Path,
    ) -> Result<(), BackendError> {
        let rootfs = absolute(rootfs)?;
        let scratch = absolute(scratch)?;
        provision_or_undo(self, layers, &rootfs, &scratch, || {
            mount_layers(layers, &rootfs, &scratch)
        })
    }

    fn destroy(&self, rootfs: &Path, scratch: &Path) -> Result<(), BackendError> {
        // Unmounting first matters: deleting `scratch` while the overlay is mounted would
        // pull the upper dir out from under a live mount.
        unmount_all(rootfs)?;
        remove_mount_point(rootfs)?;
        remove_tree(scratch, "remove overlay scratch directory")
    }

    fn writable(&self, _rootfs: &Path, scratch: &Path) -> Option<PathBuf> {
        Some(scratch.join("upper"))
    }

    /// An overlay mount cannot be idmapped, but its lower layers can: each is given to
    /// overlayfs as an idmapped, detached clone (named by `/proc/self/fd/N`, held open
    /// until the mount call returns), so the image's root-owned files show as the user
    /// namespace root's. The upper dir stays as it is (overlayfs writes it with the
    /// mounter's ids, which an idmapping of the host's root could not represent): what the
    /// container writes is stored under its host ids, and its root directory belongs to
    /// the namespace's root.
    fn provision_idmapped(
        &self,
        layers: &[PathBuf],
        rootfs: &Path,
        scratch: &Path,
        idmap: &super::Idmap<'_>,
    ) -> Result<super::IdmapDone, BackendError> {
        let rootfs = absolute(rootfs)?;
        let scratch = absolute(scratch)?;
        provision_or_undo(self, layers, &rootfs, &scratch, || {
            mount_idmapped_layers(layers, &rootfs, &scratch, idmap)
        })?;
        Ok(super::IdmapDone::ByBackend)
    }
}

fn mount_idmapped_layers(
    layers: &[PathBuf],
    rootfs: &Path,
    scratch: &Path,
    idmap: &super::Idmap<'_>,
) -> Result<(), BackendError> {
    let upper = scratch.join("upper");
    let work = scratch.join("work");
    for dir in [&upper, &work] {
        std::fs::create_dir_all(dir).map_err(|e| io_err("create overlay dir", dir, e))?;
    }
    root_like_top_layer(&upper, layers)?;
    std::os::unix::fs::lchown(&upper, Some(idmap.root_uid), Some(idmap.root_gid))
        .map_err(|e| io_err("give the namespace root", &upper, e))?;
    let ns =
        File::open(idmap.userns).map_err(|e| io_err("open user namespace", idmap.userns, e))?;
    let mut held = Vec::with_capacity(layers.len());
    for layer in layers {
        let m = mount::clone_tree(layer, false).map_err(|e| io_err("bind layer", layer, e))?;
        mount::idmap(
            std::os::fd::AsFd::as_fd(&m),
            std::os::fd::AsFd::as_fd(&ns),
            false,
        )
        .map_err(|e| io_err("idmap layer", layer, e))?;
        held.push(m);
    }
    let fds: Vec<String> = held
        .iter()
        .rev()
        .map(|m| format!("/proc/self/fd/{}", m.as_raw_fd()))
        .collect();
    let mut opts = format!("lowerdir={},upperdir=", fds.join(":")).into_bytes();
    escape_into(&mut opts, upper.as_os_str().as_bytes());
    opts.extend_from_slice(b",workdir=");
    escape_into(&mut opts, work.as_os_str().as_bytes());
    if opts.len() > mount::mount_data_limit() {
        return Err(BackendError::OverlayOptionsTooLong {
            layers: layers.len(),
            len: opts.len(),
            limit: mount::mount_data_limit(),
        });
    }
    mount::mount_overlay(rootfs, &opts).map_err(|source| BackendError::OverlayMount {
        rootfs: rootfs.to_path_buf(),
        layers: layers.len(),
        source,
    })?;
    drop(held);
    share(rootfs)
}

fn mount_layers(layers: &[PathBuf], rootfs: &Path, scratch: &Path) -> Result<(), BackendError> {
    let links = scratch.join("l");
    let upper = scratch.join("upper");
    let work = scratch.join("work");
    std::fs::create_dir_all(&links).map_err(|e| io_err("create layer alias dir", &links, e))?;
    for dir in [&upper, &work] {
        std::fs::create_dir(dir).map_err(|e| io_err("create overlay dir", dir, e))?;
    }
    root_like_top_layer(&upper, layers)?;
    for (n, layer) in layers.iter().enumerate() {
        // Absolute targets: a relative one would resolve against `l/`.
        let target = absolute(layer)?;
        let alias = links.join(n.to_string());
        std::os::unix::fs::symlink(&target, &alias)
            .map_err(|e| io_err("create layer alias", &alias, e))?;
    }

    let limit = mount::mount_data_limit();
    let by_path = options(links.as_os_str().as_bytes(), layers.len(), &upper, &work);
    let result = if by_path.len() <= limit {
        mount::mount_overlay(rootfs, &by_path)
    } else {
        // Held open until the mount call returns; the kernel resolves the paths then.
        let dir = File::open(&links).map_err(|e| io_err("open layer alias dir", &links, e))?;
        let prefix = format!("/proc/self/fd/{}", dir.as_raw_fd());
        let by_fd = options(prefix.as_bytes(), layers.len(), &upper, &work);
        if by_fd.len() > limit {
            return Err(BackendError::OverlayOptionsTooLong {
                layers: layers.len(),
                len: by_fd.len(),
                limit,
            });
        }
        mount::mount_overlay(rootfs, &by_fd)
    };
    result.map_err(|source| BackendError::OverlayMount {
        rootfs: rootfs.to_path_buf(),
        layers: layers.len(),
        source,
    })?;
    share(rootfs)
}

/// The merged root directory shows the upper dir's own owner and mode. Give it the top
/// layer root's, as the copy and bind backends' rootfs has, rather than whatever the
/// daemon's umask would make it.
fn root_like_top_layer(upper: &Path, layers: &[PathBuf]) -> Result<(), BackendError> {
    let Some(top) = layers.last() else {
        return Ok(());
    };
    let meta = std::fs::metadata(top).map_err(|e| io_err("stat layer", top, e))?;
    std::os::unix::fs::lchown(upper, Some(meta.uid()), Some(meta.gid()))
        .map_err(|e| io_err("set owner of", upper, e))?;
    std::fs::set_permissions(upper, std::fs::Permissions::from_mode(meta.mode() & 0o7777))
        .map_err(|e| io_err("set mode of", upper, e))
}

/// `lowerdir=<prefix>/<N-1>:...:<prefix>/0,upperdir=<upper>,workdir=<work>`: overlayfs
/// lists the topmost lower dir first, hence the reversed order.
fn options(prefix: &[u8], layers: usize, upper: &Path, work: &Path) -> Vec<u8> {
    let mut out = b"lowerdir=".to_vec();
    for n in (0..layers).rev() {
        escape_into(&mut out, prefix);
        out.push(b'/');
        out.extend_from_slice(n.to_string().as_bytes());
        if n > 0 {
            out.push(b':');
        }
    }
    out.extend_from_slice(b",upperdir=");
    escape_into(&mut out, upper.as_os_str().as_bytes());
    out.extend_from_slice(b",workdir=");
    escape_into(&mut out, work.as_os_str().as_bytes());
    out
}

/// overlayfs splits its options at `,` and the lower dir list at `:`, and takes `\` as the
/// escape for both, so paths containing any of the three need a backslash before them.
fn escape_into(out: &mut Vec<u8>, path: &[u8]) {
    for &b in path {
        if matches!(b, b'\\' | b',' | b':') {
            out.push(b'\\');
        }
        out.push(b);
    }
}

/// Trial mount for [`super::select`]: a one-layer overlay with its lower and upper dirs in
/// a scratch directory of the store at `store_dir`, on the filesystem real layers live on.
/// Checks that a lower file shows through and that a write lands in the upper dir, then
/// unmounts and removes everything, also on failure.
pub(super) fn probe(store_dir: &Path) -> Result<(), BackendError> {
    let unsupported =
        |op: &'static str, path: &Path, source: io::Error| BackendError::OverlayUnsupported {
            store_dir: store_dir.to_path_buf(),
            op,
            path: path.to_path_buf(),
            source,
        };
    // The store's tmp/ is wiped at start-up, so a probe a crash interrupted does not last.
    let dir = absolute(&StorePaths::new(store_dir.to_path_buf()).scratch("overlay-probe"))?;
    if let Some(tmp) = dir.parent() {
        std::fs::create_dir_all(tmp).map_err(|e| unsupported("create", tmp, e))?;
    }
    std::fs::create_dir(&dir).map_err(|e| unsupported("create probe directory", &dir, e))?;
    let result = trial_mount(&dir, &unsupported);
    // Unmounts the trial overlay before deleting, also when the trial failed half-way.
    let cleanup = remove_tree(&dir, "remove overlay probe directory");
    result?;
    cleanup
}

fn trial_mount(
    dir: &Path,
    unsupported: &dyn Fn(&'static str, &Path, io::Error) -> BackendError,
) -> Result<(), BackendError> {
    let [lower, upper, work, merged] = ["lower", "upper", "work", "merged"].map(|d| dir.join(d));
    for d in [&lower, &upper, &work, &merged] {
        std::fs::create_dir(d).map_err(|e| unsupported("create", d, e))?;
    }
    let seen = lower.join("seen");
    std::fs::write(&seen, b"lower").map_err(|e| unsupported("write", &seen, e))?;
    let mut opts = b"lowerdir=".to_vec();
    escape_into(&mut opts, lower.as_os_str().as_bytes());
    opts.extend_from_slice(b",upperdir=");
    escape_into(&mut opts, upper.as_os_str().as_bytes());
    opts.extend_from_slice(b",workdir=");
    escape_into(&mut opts, work.as_os_str().as_bytes());
    mount::mount_overlay(&merged, &opts)
        .map_err(|e| unsupported("mount overlay on", &merged, e))?;

    let through = merged.join("seen");
    let mut content = Vec::new();
    File::open(&through)
        .and_then(|mut f| f.read_to_end(&mut content))
        .map_err(|e| unsupported("read lower file through", &through, e))?;
    if content != b"lower" {
        return Err(unsupported(
            "compare lower file through",
            &through,
            io::Error::other("content differs from the lower dir's"),
        ));
    }
    let written = merged.join("written");
    std::fs::write(&written, b"upper").map_err(|e| unsupported("write", &written, e))?;
    let landed = upper.join("written");
    if !landed.exists() {
        return Err(unsupported(
            "find written file in upper dir",
            &landed,
            io::Error::from(io::ErrorKind::NotFound),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_list_top_layer_first_and_escape_separators() {
        let got = options(
            b"/s,x/l",
            3,
            Path::new("/s:u/upper"),
            Path::new("/s\\w/work"),
        );
        assert_eq!(
            String::from_utf8(got).expect("utf8"),
            "lowerdir=/s\\,x/l/2:/s\\,x/l/1:/s\\,x/l/0,upperdir=/s\\:u/upper,workdir=/s\\\\w/work"
        );
    }

    #[test]
    fn one_layer_has_no_separator() {
        let got = options(b"/s/l", 1, Path::new("/u"), Path::new("/w"));
        assert_eq!(got, b"lowerdir=/s/l/0,upperdir=/u,workdir=/w");
    }

    #[test]
    fn fd_form_fits_dockers_layer_maximum() {
        let up = Path::new("/var/lib/ucr/provisioner/containers/0123456789abcdef/upper");
        let got = options(b"/proc/self/fd/1023", 127, up, up);
        assert!(got.len() <= 4095, "{} bytes", got.len());
    }
}
