//! Creating the nodes entries describe: regular files (with their data), directories,
//! symlinks, hard links, device nodes and fifos, each with the entry's metadata.

use std::fs::{self, DirBuilder, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use super::super::meta::Meta;
use super::super::path::normalize;
use super::super::queue::{Op, OpReceiver};
use super::super::xattr::set_xattrs;
use super::super::{io_err, UnpackError, IO_BUFFER};
use super::parents::Walk;
use super::{Flow, Unpacker};
use crate::sys::fs as sysfs;

impl Unpacker<'_> {
    /// Creates a regular file and writes the `size` bytes of `Data` that follow its
    /// `Create`.
    pub(super) fn file(
        &mut self,
        raw: &Path,
        rel: &Path,
        meta: &Meta,
        size: u64,
        ops: &mut OpReceiver,
    ) -> Result<Flow, UnpackError> {
        self.check_parents(raw, rel, Walk::Create)?;
        let full = self.full(rel);
        // O_CREAT|O_EXCL never follows a symlink at the final component.
        let mut file = self.create_replacing(rel, &full, "create file", |p| {
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(p)
        })?;
        let mut written = 0u64;
        while written < size {
            let Some(Op::Data(chunk)) = ops.next() else {
                return Ok(Flow::Abandoned);
            };
            file.write_all(&chunk)
                .map_err(|source| io_err("write file", &full, source))?;
            written += chunk.len() as u64;
            if chunk.capacity() >= IO_BUFFER {
                // The reader may be gone already; then the buffer is simply freed.
                let _ = self.recycle.send(chunk);
            }
        }
        // Order matters: chown clears setuid/setgid and security.capability, so chown
        // first, then chmod, then xattrs; times last since nothing after changes them.
        std::os::unix::fs::fchown(&file, Some(meta.uid), Some(meta.gid))
            .map_err(|source| io_err("chown file", &full, source))?;
        file.set_permissions(Permissions::from_mode(meta.mode))
            .map_err(|source| io_err("chmod file", &full, source))?;
        set_xattrs(&full, meta, false)?;
        sysfs::futimens(&file, meta.atime, meta.mtime)
            .map_err(|source| io_err("set file times", &full, source))?;
        self.out.size += written;
        self.out.inodes += 1;
        Ok(Flow::Continue)
    }

    pub(super) fn dir(&mut self, raw: &Path, rel: &Path, meta: &Meta) -> Result<(), UnpackError> {
        let full = self.full(rel);
        if !rel.as_os_str().is_empty() {
            self.check_parents(raw, rel, Walk::Create)?;
            let mkdir = |p: &Path| DirBuilder::new().mode(0o700).create(p);
            match mkdir(&full) {
                Ok(()) => self.out.inodes += 1,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    let existing = fs::symlink_metadata(&full)
                        .map_err(|source| io_err("inspect existing entry", &full, source))?;
                    // A directory over a directory merges; anything else is replaced.
                    if !existing.file_type().is_dir() {
                        fs::remove_file(&full)
                            .map_err(|source| io_err("remove replaced entry", &full, source))?;
                        mkdir(&full).map_err(|source| io_err("create directory", &full, source))?;
                        self.out.inodes += 1;
                    }
                }
                Err(e) => return Err(io_err("create directory", &full, e)),
            }
            self.verified_dirs.insert(rel.to_path_buf());
        }
        // `full` is a real directory reached without symlinks, so the path-based calls
        // below act on it and nothing else.
        std::os::unix::fs::lchown(&full, Some(meta.uid), Some(meta.gid))
            .map_err(|source| io_err("chown directory", &full, source))?;
        fs::set_permissions(&full, Permissions::from_mode(meta.mode))
            .map_err(|source| io_err("chmod directory", &full, source))?;
        set_xattrs(&full, meta, false)?;
        self.dir_times
            .insert(rel.to_path_buf(), (meta.atime, meta.mtime));
        Ok(())
    }

    pub(super) fn symlink(
        &mut self,
        raw: &Path,
        rel: &Path,
        target: &Path,
        meta: &Meta,
    ) -> Result<(), UnpackError> {
        self.check_parents(raw, rel, Walk::Create)?;
        let full = self.full(rel);
        self.create_replacing(rel, &full, "create symlink", |p| {
            std::os::unix::fs::symlink(target, p)
        })?;
        // Symlinks have no mode of their own on Linux; owner and times are set on the link.
        std::os::unix::fs::lchown(&full, Some(meta.uid), Some(meta.gid))
            .map_err(|source| io_err("chown symlink", &full, source))?;
        set_xattrs(&full, meta, true)?;
        sysfs::lutimes(&full, meta.atime, meta.mtime)
            .map_err(|source| io_err("set symlink times", &full, source))?;
        self.out.inodes += 1;
        Ok(())
    }

    /// A hard link shares its target's inode, so the entry's own header metadata is not
    /// applied (GNU tar and containerd do the same).
    pub(super) fn hard_link(
        &mut self,
        raw: &Path,
        rel: &Path,
        target_raw: &Path,
    ) -> Result<(), UnpackError> {
        let escape = || UnpackError::LinkEscape {
            entry: raw.to_path_buf(),
            target: target_raw.to_path_buf(),
        };
        let target = normalize(target_raw).ok_or_else(escape)?;
        if target.as_os_str().is_empty() {
            return Err(escape());
        }
        self.check_parents(raw, &target, Walk::LinkTarget(target_raw))?;
        let target_full = self.full(&target);
        match fs::symlink_metadata(&target_full) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(UnpackError::LinkTargetMissing {
                    entry: raw.to_path_buf(),
                    target: target_raw.to_path_buf(),
                })
            }
            Err(e) => return Err(io_err("inspect hard link target", &target_full, e)),
        }
        if target == rel {
            return Ok(());
        }
        self.check_parents(raw, rel, Walk::Create)?;
        let full = self.full(rel);
        // link(2) does not follow a symlink target: linking to a symlink links the symlink.
        self.create_replacing(rel, &full, "create hard link", |p| {
            fs::hard_link(&target_full, p)
        })
    }

    /// Device nodes and fifos: `mknod` does the creating, the rest is shared.
    pub(super) fn special(
        &mut self,
        raw: &Path,
        rel: &Path,
        meta: &Meta,
        op: &'static str,
        create: impl FnMut(&Path) -> io::Result<()>,
    ) -> Result<(), UnpackError> {
        self.check_parents(raw, rel, Walk::Create)?;
        let full = self.full(rel);
        self.create_replacing(rel, &full, op, create)?;
        std::os::unix::fs::lchown(&full, Some(meta.uid), Some(meta.gid))
            .map_err(|source| io_err("chown special file", &full, source))?;
        // chmod(2) on a device node or fifo changes the node; it does not open it.
        fs::set_permissions(&full, Permissions::from_mode(meta.mode))
            .map_err(|source| io_err("chmod special file", &full, source))?;
        set_xattrs(&full, meta, true)?;
        sysfs::lutimes(&full, meta.atime, meta.mtime)
            .map_err(|source| io_err("set special file times", &full, source))?;
        self.out.inodes += 1;
        Ok(())
    }
}
