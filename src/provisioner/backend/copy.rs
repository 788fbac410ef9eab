//! The copy backend: each layer copied over the previous ones into a plain directory, doing
//! by hand what overlayfs does at lookup time, as Mesos' copy backend does with `cp -aT`.
//!
//! Per layer, per directory entry (layers are in the store's overlay form):
//! - a 0/0 character device named X is a whiteout: X (of any kind) is deleted from what
//!   lower layers left, and the device itself is not copied;
//! - a directory with `trusted.overlay.opaque=y` first loses everything lower layers put
//!   in it; this layer's own entries are copied in afterwards, so they stay;
//! - a directory merges into an existing directory, and replaces anything else (a file or
//!   a symlink, which is never followed);
//! - anything else replaces whatever was there, a directory included;
//! - modes (setuid and sticky too), owners, mtimes, symlinks, device nodes, fifos and
//!   xattrs (except `trusted.overlay.*`, which only means something to overlayfs) are kept,
//!   and files hard-linked within one layer stay hard-linked in the rootfs.
//!
//! File data goes through `copy_file_range` (std's `io::copy` between files), which clones
//! extents instead of copying them on filesystems that can (btrfs, XFS with reflink), so
//! no explicit `FICLONE` is needed. The result is an ordinary writable directory, bind
//! mounted onto itself `nodev` (as the overlay and bind backends mount theirs).

use std::collections::HashMap;
use std::fs::{self, File, Metadata, OpenOptions};
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::error::io_err;
use super::rootfs::{provision_or_undo, remove_tree, share};
use super::{Backend, BackendError, BackendKind};
use crate::sys::fs::{self as sysfs, Timestamp};
use crate::sys::mount::{self, MsFlags};

const OPAQUE_XATTR: &[u8] = b"trusted.overlay.opaque";
const OVERLAY_XATTR_PREFIX: &[u8] = b"trusted.overlay.";

/// See the module documentation.
#[derive(Debug, Default, Clone, Copy)]
pub struct CopyBackend;

impl Backend for CopyBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Copy
    }

    fn provision(
        &self,
        layers: &[PathBuf],
        rootfs: &Path,
        scratch: &Path,
    ) -> Result<(), BackendError> {
        provision_or_undo(self, layers, rootfs, scratch, || {
            layers
                .iter()
                .try_for_each(|layer| apply_layer(layer, rootfs))?;
            // A mount of its own, like the other backends' rootfs, so that it can be
            // `nodev`: device nodes copied from the image stay inert.
            mount::bind(rootfs, rootfs)
                .map_err(|e| io_err("bind rootfs onto itself", rootfs, e))?;
            mount::remount_bind(rootfs, MsFlags::MS_NODEV)
                .map_err(|e| io_err("make rootfs nodev", rootfs, e))?;
            share(rootfs)
        })
    }

    fn destroy(&self, rootfs: &Path, scratch: &Path) -> Result<(), BackendError> {
        // `remove_tree` unmounts whatever a container left mounted inside its rootfs first,
        // so the recursive delete cannot reach into /proc, volumes or the host.
        remove_tree(rootfs, "remove copied rootfs")?;
        remove_tree(scratch, "remove copy scratch directory")
    }

    fn writable(&self, rootfs: &Path, _scratch: &Path) -> Option<PathBuf> {
        Some(rootfs.to_path_buf())
    }
}

/// Source inodes with several links that this layer has already copied, by (device,
/// inode), and where to: the next link to one of them becomes a hard link to that copy.
type Copied = HashMap<(u64, u64), PathBuf>;

fn apply_layer(layer: &Path, rootfs: &Path) -> Result<(), BackendError> {
    let meta = lstat(layer)?;
    if !meta.is_dir() {
        return Err(io_err(
            "read layer",
            layer,
            io::Error::from(io::ErrorKind::NotADirectory),
        ));
    }
    apply_dir(layer, rootfs, &meta, &mut Copied::new())
}

/// Copies the entries of layer directory `src` into `dst` (an existing directory), then
/// gives `dst` the metadata of `src`: last, so copying children cannot change its mtime.
fn apply_dir(
    src: &Path,
    dst: &Path,
    meta: &Metadata,
    copied: &mut Copied,
) -> Result<(), BackendError> {
    if is_opaque(src)? {
        empty_dir(dst)?;
    }
    let entries = fs::read_dir(src).map_err(|e| io_err("read layer directory", src, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| io_err("read layer directory", src, e))?;
        let from = entry.path();
        let to = dst.join(entry.file_name());
        let m = lstat(&from)?;
        if is_whiteout(&m) {
            remove_any(&to)?;
        } else if m.is_dir() {
            ensure_dir(&to)?;
            apply_dir(&from, &to, &m, copied)?;
        } else {
            remove_any(&to)?;
            copy_node(&from, &to, &m, copied)?;
        }
    }
    set_metadata(src, dst, meta)
}

/// Copies one non-directory, or links it to this layer's earlier copy of the same inode.
fn copy_node(
    from: &Path,
    to: &Path,
    m: &Metadata,
    copied: &mut Copied,
) -> Result<(), BackendError> {
    let key = (m.dev(), m.ino());
    if m.nlink() > 1 {
        if let Some(first) = copied.get(&key) {
            return fs::hard_link(first, to).map_err(|e| io_err("hard-link", to, e));
        }
    }
    let ft = m.file_type();
    let mode = m.mode() & 0o7777;
    if ft.is_file() {
        copy_file(from, to)?;
    } else if ft.is_symlink() {
        let target = fs::read_link(from).map_err(|e| io_err("read symlink", from, e))?;
        std::os::unix::fs::symlink(target, to).map_err(|e| io_err("create symlink", to, e))?;
    } else if ft.is_char_device() || ft.is_block_device() {
        // Pure arithmetic on the device number, not a syscall.
        let (major, minor) = (
            nix::sys::stat::major(m.rdev()),
            nix::sys::stat::minor(m.rdev()),
        );
        let made = if ft.is_char_device() {
            sysfs::mknod_char(to, mode, major, minor)
        } else {
            sysfs::mknod_block(to, mode, major, minor)
        };
        made.map_err(|e| io_err("create device node", to, e))?;
    } else if ft.is_fifo() {
        sysfs::mkfifo(to, mode).map_err(|e| io_err("create fifo", to, e))?;
    } else {
        // Sockets cannot come from a tar layer; one here was made by something else.
        tracing::warn!(path = %from.display(), "socket in a layer; not copied");
        return Ok(());
    }
    set_metadata(from, to, m)?;
    if m.nlink() > 1 {
        copied.insert(key, to.to_path_buf());
    }
    Ok(())
}

fn copy_file(from: &Path, to: &Path) -> Result<(), BackendError> {
    let mut src = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(from)
        .map_err(|e| io_err("open layer file", from, e))?;
    // Owner-only until `set_metadata` gives it the layer's owner and mode.
    let mut dst: File = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(to)
        .map_err(|e| io_err("create file", to, e))?;
    io::copy(&mut src, &mut dst).map_err(|e| io_err("copy file data to", to, e))?;
    Ok(())
}

/// Owner, then mode, then xattrs, then times: chown clears setuid/setgid bits and
/// `security.capability`, and every change before the last one bumps the times.
fn set_metadata(from: &Path, to: &Path, m: &Metadata) -> Result<(), BackendError> {
    std::os::unix::fs::lchown(to, Some(m.uid()), Some(m.gid()))
        .map_err(|e| io_err("set owner of", to, e))?;
    let symlink = m.file_type().is_symlink();
    if !symlink {
        // Never on a symlink: chmod would follow it.
        fs::set_permissions(to, fs::Permissions::from_mode(m.mode() & 0o7777))
            .map_err(|e| io_err("set mode of", to, e))?;
    }
    copy_xattrs(from, to, m)?;
    let atime = Timestamp {
        secs: m.atime(),
        nanos: nanos(m.atime_nsec()),
    };
    let mtime = Timestamp {
        secs: m.mtime(),
        nanos: nanos(m.mtime_nsec()),
    };
    sysfs::lutimes(to, atime, mtime).map_err(|e| io_err("set times of", to, e))
}

fn nanos(n: i64) -> u32 {
    u32::try_from(n).unwrap_or(0)
}

/// Copies every xattr but overlayfs' own. Like the unpacker, a filesystem without xattrs
/// (EOPNOTSUPP) and `user.*` on symlinks and device nodes (EPERM, by Linux design) are
/// logged and skipped.
fn copy_xattrs(from: &Path, to: &Path, m: &Metadata) -> Result<(), BackendError> {
    let names = sysfs::llistxattr(from).map_err(|e| io_err("list xattrs of", from, e))?;
    let special = !m.is_dir() && !m.is_file();
    for name in names
        .iter()
        .filter(|n| !n.starts_with(OVERLAY_XATTR_PREFIX))
    {
        let Some(value) =
            sysfs::lgetxattr(from, name).map_err(|e| io_err("read xattr of", from, e))?
        else {
            continue; // removed since listing
        };
        match sysfs::lsetxattr(to, name, &value) {
            Ok(()) => {}
            Err(e)
                if sysfs::is_xattr_unsupported(&e)
                    || (special && sysfs::is_permission_denied(&e)) =>
            {
                tracing::warn!(
                    path = %to.display(),
                    xattr = %String::from_utf8_lossy(name),
                    error = %e,
                    "xattr not supported here; skipped"
                );
            }
            Err(e) => return Err(io_err("set xattr on", to, e)),
        }
    }
    Ok(())
}

fn lstat(path: &Path) -> Result<Metadata, BackendError> {
    fs::symlink_metadata(path).map_err(|e| io_err("stat", path, e))
}

/// The store's form of a `.wh.` marker: a character device with device number 0/0.
fn is_whiteout(m: &Metadata) -> bool {
    m.file_type().is_char_device() && m.rdev() == 0
}

fn is_opaque(dir: &Path) -> Result<bool, BackendError> {
    match sysfs::lgetxattr(dir, OPAQUE_XATTR) {
        Ok(value) => Ok(value.as_deref() == Some(b"y")),
        Err(e) if sysfs::is_xattr_unsupported(&e) => Ok(false),
        Err(e) => Err(io_err("read opaque xattr of", dir, e)),
    }
}

/// Makes `path` a directory: kept if it is one, else whatever is there (a file, or a
/// symlink, even one pointing at a directory) is replaced by an empty one.
fn ensure_dir(path: &Path) -> Result<(), BackendError> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => return Ok(()),
        Ok(_) => fs::remove_file(path).map_err(|e| io_err("remove", path, e))?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err("stat", path, e)),
    }
    fs::create_dir(path).map_err(|e| io_err("create directory", path, e))
}

/// Removes whatever is at `path` (a directory with its contents); nothing there is fine.
fn remove_any(path: &Path) -> Result<(), BackendError> {
    let removed = match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => return Err(io_err("stat", path, e)),
    };
    removed.map_err(|e| io_err("remove", path, e))
}

fn empty_dir(dir: &Path) -> Result<(), BackendError> {
    let entries = fs::read_dir(dir).map_err(|e| io_err("read directory", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| io_err("read directory", dir, e))?;
        remove_any(&entry.path())?;
    }
    Ok(())
}
