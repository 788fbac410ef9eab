//! A depth-first walk of a directory tree that its container may be changing while we
//! walk it, shared by `disk/du` (measuring) and `disk/xfs` (labelling with a project id).
//!
//! - Every step is one name relative to an open directory descriptor (`sys::dirfd`), and
//!   no symlink is followed: a container swapping a directory for a symlink to `/` mid-walk
//!   gets a symlink counted, nothing more.
//! - Nothing reached through another mount is visited (`du -x`, Mesos's `FTS_XDEV`): a
//!   container's rootfs and sandbox may carry mounts (volumes, `/etc/hosts`, a tmpfs),
//!   whose bytes are the host's or a volume's and accounted for elsewhere. Counting them
//!   would charge the container for them and, with `--enforce-container-disk-quota`, kill
//!   it for them.
//! - A name that is gone by the time we reach it (`ENOENT`) is skipped: containers delete
//!   files all the time, and a figure a moment old is all anyone asks for.
//! - Iterative, so a deep tree cannot overflow the stack, and with at most
//!   [`MAX_OPEN_DIRS`] directories open at once, so a deep tree cannot exhaust the
//!   daemon's descriptors either: the walk holds each directory's list of names, closes
//!   the descriptors of the shallower ones, and reopens them on the way back up through
//!   `..` of the child it leaves, checking the (device, inode) is the one it left. If a
//!   rename moved things in between, it comes down again from the root by the names it
//!   recorded, checking each step the same way; what cannot be found again was moved
//!   away and is skipped like a vanished directory.

use std::ffi::{CStr, CString};
use std::io;
use std::path::{Path, PathBuf};

use crate::sys::dirfd::{is_gone, is_not_dir, Dir, Entry, Hint, Meta};

/// Directories open at once, the root included. Far below any descriptor limit, and deep
/// enough that ordinary trees never need a reopen.
pub const MAX_OPEN_DIRS: usize = 64;

/// What the walk shows its visitor.
pub enum Event<'a> {
    /// A directory, open: the root first, then each one found. [`Step::Descend`] reads
    /// its entries.
    Dir { dir: &'a Dir, meta: &'a Meta },
    /// Anything else, found in `parent` as `name`. Also a directory that was not one when
    /// its parent was read, seen mid-swap: it is reported, not entered.
    Entry {
        parent: &'a Dir,
        name: &'a CStr,
        meta: &'a Meta,
    },
}

impl Event<'_> {
    pub fn meta(&self) -> &Meta {
        match self {
            Event::Dir { meta, .. } | Event::Entry { meta, .. } => meta,
        }
    }
}

/// What to do with a directory just shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Descend,
    Skip,
}

/// A visitor's failure: what it was doing, and why it failed. The walk adds the path.
#[derive(Debug)]
pub struct Failed {
    pub op: &'static str,
    pub source: io::Error,
}

/// A failed walk step, with the path it failed on (built from the names walked, for the
/// message only: nothing is looked up by it).
#[derive(Debug, thiserror::Error)]
#[error("cannot {op} {}: {source}", path.display())]
pub struct WalkError {
    pub op: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

/// Walks the tree at `root` (a directory; a symlink is refused), showing `visit` every
/// directory and entry on the same mount as `root`, `root` first.
pub fn walk<F>(root: &Path, visit: F) -> Result<(), WalkError>
where
    F: FnMut(Event<'_>) -> Result<Step, Failed>,
{
    walk_with(root, MAX_OPEN_DIRS, visit)
}

/// [`walk`] with another descriptor budget (at least 2), for the tests to force reopens.
pub(crate) fn walk_with<F>(root: &Path, max_open: usize, mut visit: F) -> Result<(), WalkError>
where
    F: FnMut(Event<'_>) -> Result<Step, Failed>,
{
    let fail = |op, source| WalkError {
        op,
        path: root.to_path_buf(),
        source,
    };
    let dir = Dir::open(root).map_err(|e| fail("open directory", e))?;
    let meta = dir.meta().map_err(|e| fail("stat", e))?;
    let step = visit(Event::Dir {
        dir: &dir,
        meta: &meta,
    })
    .map_err(|f| fail(f.op, f.source))?;
    if step == Step::Skip {
        return Ok(());
    }
    let pending = sorted(dir.entries().map_err(|e| fail("read directory", e))?);
    let mut walk = Walk {
        root,
        root_meta: meta,
        max_open: max_open.max(2),
        stack: vec![Frame {
            dir: Some(dir),
            id: meta.id(),
            name: CString::default(),
            pending,
        }],
        first_open: 1,
    };
    while let Some(top) = walk.stack.last_mut() {
        match top.pending.pop() {
            Some(entry) => walk.visit_entry(entry, &mut visit)?,
            None => walk.pop()?,
        }
    }
    Ok(())
}

/// One directory on the way down.
struct Frame {
    /// `None` while closed to keep within the descriptor budget.
    dir: Option<Dir>,
    /// (device, inode): what a reopen must find.
    id: (u64, u64),
    /// Its name in its parent (empty for the root).
    name: CString,
    /// Entries not visited yet, the next one last.
    pending: Vec<Entry>,
}

struct Walk<'r> {
    root: &'r Path,
    root_meta: Meta,
    max_open: usize,
    stack: Vec<Frame>,
    /// Frames `1..first_open` are closed, `first_open..` open; the root always is.
    first_open: usize,
}

impl Walk<'_> {
    fn visit_entry<F>(&mut self, entry: Entry, visit: &mut F) -> Result<(), WalkError>
    where
        F: FnMut(Event<'_>) -> Result<Step, Failed>,
    {
        let top = self.stack.last().expect("walked with a frame on the stack");
        let parent = top.dir.as_ref().expect("the top frame is always open");
        if entry.hint != Hint::NotDir {
            // Opening first, then `fstat` on what was opened: the figures are those of
            // the directory we enter, whatever the name points at a moment later.
            match parent.open_subdir(&entry.name) {
                Ok(sub) => {
                    let meta = sub.meta().map_err(|e| self.error("stat", &entry.name, e))?;
                    if meta.other_mount_than(&self.root_meta) {
                        return Ok(());
                    }
                    let step = visit(Event::Dir {
                        dir: &sub,
                        meta: &meta,
                    })
                    .map_err(|f| self.error(f.op, &entry.name, f.source))?;
                    if step == Step::Skip {
                        return Ok(());
                    }
                    let pending = match sub.entries() {
                        Ok(entries) => sorted(entries),
                        Err(e) if is_gone(&e) => return Ok(()),
                        Err(e) => return Err(self.error("read directory", &entry.name, e)),
                    };
                    self.push(Frame {
                        dir: Some(sub),
                        id: meta.id(),
                        name: entry.name,
                        pending,
                    });
                    return Ok(());
                }
                Err(e) if is_gone(&e) => return Ok(()),
                Err(e) if is_not_dir(&e) => {}
                Err(e) => return Err(self.error("open directory", &entry.name, e)),
            }
        }
        let meta = match parent.meta_at(&entry.name) {
            Ok(meta) => meta,
            Err(e) if is_gone(&e) => return Ok(()),
            Err(e) => return Err(self.error("stat", &entry.name, e)),
        };
        if meta.other_mount_than(&self.root_meta) {
            return Ok(());
        }
        visit(Event::Entry {
            parent,
            name: &entry.name,
            meta: &meta,
        })
        .map_err(|f| self.error(f.op, &entry.name, f.source))?;
        Ok(())
    }

    fn push(&mut self, frame: Frame) {
        self.stack.push(frame);
        let open = 1 + self.stack.len() - self.first_open;
        if open > self.max_open {
            // The shallowest open frame below the root: the last to be needed again.
            self.stack[self.first_open].dir = None;
            self.first_open += 1;
        }
    }

    /// Leaves the top directory; reopens its parent if that was closed.
    fn pop(&mut self) -> Result<(), WalkError> {
        let done = self
            .stack
            .pop()
            .expect("popped a frame from a non-empty stack");
        let len = self.stack.len();
        if len == 0 {
            return Ok(());
        }
        self.first_open = self.first_open.min(len);
        let top = len - 1;
        if top >= 1 && top < self.first_open {
            let child = done.dir.expect("the top frame is always open");
            self.reopen(top, &child)?;
        }
        Ok(())
    }

    /// Reopens frame `at` (closed, now the top), having just left `child`, its child.
    fn reopen(&mut self, at: usize, child: &Dir) -> Result<(), WalkError> {
        let want = self.stack[at].id;
        let parent = child.open_parent().and_then(|p| Ok((p.meta()?.id(), p)));
        if let Ok((id, parent)) = parent {
            if id == want {
                self.stack[at].dir = Some(parent);
                self.first_open = at;
                return Ok(());
            }
        }
        // `child` was moved: come down again from the root by the recorded names.
        let mut dir: Option<Dir> = None;
        for depth in 1..=at {
            let base = match &dir {
                Some(d) => d,
                None => self.stack[0].dir.as_ref().expect("the root stays open"),
            };
            let frame = &self.stack[depth];
            let found = match base.open_subdir(&frame.name) {
                Ok(d) => {
                    let meta = d.meta().map_err(|e| self.error_at(depth, "stat", e))?;
                    (meta.id() == frame.id).then_some(d)
                }
                Err(e) if is_gone(&e) || is_not_dir(&e) => None,
                Err(e) => return Err(self.error_at(depth, "reopen directory", e)),
            };
            match found {
                Some(d) => dir = Some(d),
                None => {
                    // Frame `depth` and below are not where they were: skip what was
                    // left of them, as for a directory that vanished.
                    self.stack.truncate(depth);
                    self.first_open = depth;
                    if depth > 1 {
                        self.stack[depth - 1].dir = dir;
                        self.first_open = depth - 1;
                    }
                    return Ok(());
                }
            }
        }
        self.stack[at].dir = dir;
        self.first_open = at;
        Ok(())
    }

    /// The path of frame `depth`, for a message.
    fn path_to(&self, depth: usize) -> PathBuf {
        let mut path = self.root.to_path_buf();
        for frame in &self.stack[1..=depth] {
            path.push(os_str(&frame.name));
        }
        path
    }

    fn error(&self, op: &'static str, name: &CStr, source: io::Error) -> WalkError {
        let mut path = self.path_to(self.stack.len() - 1);
        path.push(os_str(name));
        WalkError { op, path, source }
    }

    fn error_at(&self, depth: usize, op: &'static str, source: io::Error) -> WalkError {
        WalkError {
            op,
            path: self.path_to(depth),
            source,
        }
    }
}

fn os_str(name: &CStr) -> &std::ffi::OsStr {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::OsStr::from_bytes(name.to_bytes())
}

/// Names in reverse order, so that popping from the end visits them in order: the walk is
/// the same every time, which makes its tests (and its logs) reproducible.
fn sorted(mut entries: Vec<Entry>) -> Vec<Entry> {
    entries.sort_unstable_by(|a, b| b.name.cmp(&a.name));
    entries
}
