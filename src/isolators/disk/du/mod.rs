//! `disk/du`: how much disk a container's directories use, measured in-process.
//!
//! Mesos runs `du -k -s <dir>` for this; ucr walks the trees itself (see `walk`), which
//! spares a process per container every interval and walks a tree the container can
//! change without following its symlinks. The figures are those of GNU `du -s -x`:
//! - bytes are allocated bytes (`st_blocks * 512`), not file sizes: a sparse file costs
//!   what it occupies, a 1-byte file a whole block;
//! - inodes count every entry (files, directories, symlinks, the rest), the roots too;
//! - a file with several hard links counts once, across all the directories measured
//!   together, and so does a directory reached twice (roots nested in one another);
//! - nothing on another mount below a root counts.

use std::collections::HashSet;
use std::path::Path;

use super::walk::{walk, Event, Step, WalkError};

pub mod isolator;
pub mod watch;
use crate::error::{io_kind, ErrorKind, Kind};
use crate::sys::dirfd::Kind as FileKind;

/// Disk a set of directories uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiskUsage {
    /// Allocated bytes (`st_blocks * 512`, as `du` counts).
    pub bytes: u64,
    /// Inodes: every file, directory, symlink and other entry, the roots included.
    pub inodes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum DuError {
    #[error("disk/du: {0}")]
    Walk(#[from] WalkError),
}

impl Kind for DuError {
    fn kind(&self) -> ErrorKind {
        match self {
            DuError::Walk(e) => io_kind(&e.source),
        }
    }
}

/// Measures `dirs` together: a hard-linked file or a directory reached from two of them
/// counts once. Each must be a directory (a symlink is refused, as `du -s` does not
/// follow one either).
pub fn measure(dirs: &[&Path]) -> Result<DiskUsage, DuError> {
    let mut counter = Counter::default();
    for dir in dirs {
        walk(dir, |event| Ok(counter.visit(&event)))?;
    }
    Ok(counter.usage)
}

/// The running total of a measurement.
#[derive(Default)]
pub(super) struct Counter {
    pub(super) usage: DiskUsage,
    /// Inodes that may be reached again: directories, and files with more than one link.
    seen: HashSet<(u64, u64)>,
}

impl Counter {
    pub(super) fn visit(&mut self, event: &Event<'_>) -> Step {
        let meta = event.meta();
        let reachable_twice = meta.kind == FileKind::Dir || meta.nlink > 1;
        if reachable_twice && !self.seen.insert(meta.id()) {
            // Counted already; a directory's subtree was walked already too.
            return Step::Skip;
        }
        self.usage.bytes = self
            .usage
            .bytes
            .saturating_add(meta.blocks.saturating_mul(512));
        self.usage.inodes += 1;
        Step::Descend
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
