//! Removed containers, deleted in the background. RemoveContainer renames the container's
//! directory (its rootfs mount and the backend's scratch inside) into `trash/` while it
//! holds the container's lock, which is quick; a thread of this module then unmounts
//! what is mounted there and deletes it (an overlay unmount syncs its filesystem, and a
//! copied rootfs is a tree of files: both slow). A restart finishes what a crash
//! interrupted: everything found in `trash/` at start-up is queued again.
//!
//! A name in `trash/` is never reused: a container's id, or the id with a suffix when
//! the same id was removed before and is still being deleted.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Sender};
use std::sync::Mutex;

use crate::sys::mount;

pub struct Trash {
    dir: PathBuf,
    queue: Mutex<Sender<PathBuf>>,
}

impl Trash {
    /// Starts the deleting thread. `dir` must exist (see `Paths::prepare`).
    pub fn new(dir: PathBuf) -> Trash {
        let (tx, rx) = channel::<PathBuf>();
        let spawned = std::thread::Builder::new()
            .name("ucr-trash".into())
            .spawn(move || {
                for path in rx {
                    if let Err(e) = delete(&path) {
                        tracing::warn!(path = %path.display(), error = %e, "deleting a removed container");
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "no thread for deleting removed containers: they stay in the trash");
        }
        Trash {
            dir,
            queue: Mutex::new(tx),
        }
    }

    /// Moves `from` into the trash and queues it for deletion. A missing `from` is fine.
    pub fn put(&self, from: &Path, name: &str) -> io::Result<()> {
        let mut to = self.dir.join(name);
        let mut n = 0;
        while to.exists() {
            n += 1;
            to = self.dir.join(format!("{name}.{n}"));
        }
        match std::fs::rename(from, &to) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        }
        self.queue(to);
        Ok(())
    }

    /// Queues whatever is in the trash (left by a daemon that died before deleting it).
    pub fn requeue_all(&self) {
        for entry in std::fs::read_dir(&self.dir).into_iter().flatten().flatten() {
            self.queue(entry.path());
        }
    }

    /// Deletes everything in the trash now, on this thread (for `--recover cleanup`,
    /// which exits right after).
    pub fn empty_now(&self) {
        for entry in std::fs::read_dir(&self.dir).into_iter().flatten().flatten() {
            if let Err(e) = delete(&entry.path()) {
                tracing::warn!(path = %entry.path().display(), error = %e, "deleting a removed container");
            }
        }
    }

    fn queue(&self, path: PathBuf) {
        let sent = self
            .queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(path.clone());
        if sent.is_err() {
            // No thread: delete here rather than never.
            let _ = delete(&path);
        }
    }
}

/// Unmounts everything at or below `path` (deepest first, lazily: a mount another
/// namespace still references goes when it lets go), then deletes the tree, never
/// following a symlink.
fn delete(path: &Path) -> io::Result<()> {
    for point in mount::mounts_at_or_under(path)? {
        mount::detach(&point)?;
    }
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}
