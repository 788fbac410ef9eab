//! The filesystem worker: applies `Op`s under `dest` in tar order. `parents` keeps every
//! path it uses free of symlinks, `nodes` creates what entries describe, `whiteout`
//! applies the overlayfs markers.

mod nodes;
mod parents;
mod whiteout;

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::mpsc::Sender;

use super::meta::Meta;
use super::queue::{Node, Op, OpReceiver};
use super::{io_err, UnpackError, UnpackedLayer};
use crate::sys::fs::{self as sysfs, Timestamp};

/// The filesystem side: applies `Op`s under `dest`, keeping the no-escape invariant.
pub(super) struct Unpacker<'d> {
    dest: &'d Path,
    /// Where emptied full-size data buffers go back to the reading side.
    recycle: Sender<Vec<u8>>,
    /// Relative paths known to be real directories (not symlinks) right now. Prefix-closed:
    /// a path is only added after all its ancestors were, so clearing it on any directory
    /// removal is enough to keep it true.
    verified_dirs: HashSet<PathBuf>,
    /// Directory times, applied last because creating children changes a directory's mtime.
    /// Entries under a removed directory are dropped, so every key still names a directory
    /// reached without symlinks when `finish` runs.
    dir_times: BTreeMap<PathBuf, (Timestamp, Timestamp)>,
    out: UnpackedLayer,
}

/// Whether the worker should go on; it stops early only when the reading side went away
/// in the middle of a file (the reader failed, and reports its own error).
enum Flow {
    Continue,
    Abandoned,
}

impl<'d> Unpacker<'d> {
    pub(super) fn new(dest: &'d Path, recycle: Sender<Vec<u8>>) -> Self {
        Self {
            dest,
            recycle,
            verified_dirs: HashSet::new(),
            dir_times: BTreeMap::new(),
            out: UnpackedLayer::default(),
        }
    }

    /// Applies operations until `End` (then returns the result) or until the reading side
    /// hangs up without `End` (it failed; returns `None`).
    pub(super) fn run(
        mut self,
        ops: &mut OpReceiver,
    ) -> Result<Option<UnpackedLayer>, UnpackError> {
        while let Some(op) = ops.next() {
            let flow = match op {
                Op::End => return self.finish().map(Some),
                Op::Create {
                    raw,
                    rel,
                    meta,
                    node,
                } => self.create(&raw, &rel, &meta, node, ops)?,
                Op::Whiteout {
                    raw,
                    rel,
                    parent,
                    name,
                } => self.whiteout(&raw, &rel, &parent, &name)?,
                Op::Opaque { raw, rel, parent } => self.opaque(&raw, &rel, &parent)?,
                // Data always directly follows its file's `Create` and is consumed there.
                Op::Data(_) => Flow::Abandoned,
            };
            if let Flow::Abandoned = flow {
                break;
            }
        }
        Ok(None)
    }

    fn create(
        &mut self,
        raw: &Path,
        rel: &Path,
        meta: &Meta,
        node: Node,
        ops: &mut OpReceiver,
    ) -> Result<Flow, UnpackError> {
        match node {
            Node::File { size } => return self.file(raw, rel, meta, size, ops),
            Node::Dir => self.dir(raw, rel, meta)?,
            Node::Symlink { target } => self.symlink(raw, rel, &target, meta)?,
            Node::HardLink { target } => self.hard_link(raw, rel, &target)?,
            Node::Char { major, minor } => {
                self.special(raw, rel, meta, "create device node", |p| {
                    sysfs::mknod_char(p, 0o600, major, minor)
                })?
            }
            Node::Block { major, minor } => {
                self.special(raw, rel, meta, "create device node", |p| {
                    sysfs::mknod_block(p, 0o600, major, minor)
                })?
            }
            Node::Fifo => {
                self.special(raw, rel, meta, "create fifo", |p| sysfs::mkfifo(p, 0o600))?
            }
        }
        Ok(Flow::Continue)
    }

    fn full(&self, rel: &Path) -> PathBuf {
        if rel.as_os_str().is_empty() {
            self.dest.to_path_buf()
        } else {
            self.dest.join(rel)
        }
    }

    /// Runs `create` at `full`; if something is already there, removes it and retries once.
    /// Tar semantics: a later entry replaces an earlier one (a file does not write through
    /// an existing symlink or into an existing hard link's shared inode).
    fn create_replacing<T>(
        &mut self,
        rel: &Path,
        full: &Path,
        op: &'static str,
        mut create: impl FnMut(&Path) -> io::Result<T>,
    ) -> Result<T, UnpackError> {
        match create(full) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                self.remove_existing(rel, full)?;
                create(full).map_err(|source| io_err(op, full, source))
            }
            result => result.map_err(|source| io_err(op, full, source)),
        }
    }

    fn remove_existing(&mut self, rel: &Path, full: &Path) -> Result<(), UnpackError> {
        let meta = fs::symlink_metadata(full)
            .map_err(|source| io_err("inspect existing entry", full, source))?;
        if meta.file_type().is_dir() {
            // std's remove_dir_all does not follow symlinks inside the tree.
            fs::remove_dir_all(full)
                .map_err(|source| io_err("remove replaced directory", full, source))?;
            self.forget_dir(rel);
        } else {
            fs::remove_file(full)
                .map_err(|source| io_err("remove replaced entry", full, source))?;
        }
        Ok(())
    }

    /// Applies directory times. Order does not matter: setting a directory's times does
    /// not touch its parent's.
    fn finish(self) -> Result<UnpackedLayer, UnpackError> {
        for (rel, (atime, mtime)) in &self.dir_times {
            let full = self.full(rel);
            sysfs::lutimes(&full, *atime, *mtime)
                .map_err(|source| io_err("set directory times", &full, source))?;
        }
        Ok(self.out)
    }
}
