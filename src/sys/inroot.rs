//! Paths resolved *inside* a directory, as if it were `/`: the container's rootfs before
//! the pivot, a log directory kubelet gave us. An image is hostile input, and its
//! symlinks (`/var/run -> /run`, but also `/vol -> /etc` or `/up -> ../../../../tmp`)
//! must land inside the rootfs, never on the host.
//!
//! Everything is descriptor-based, as runc and libpathrs do it, so no path is looked up
//! twice and a rename racing us cannot redirect a mount (CVE-2021-30465):
//! - [`Root::resolve`] first asks the kernel: `openat2(RESOLVE_IN_ROOT |
//!   RESOLVE_NO_MAGICLINKS)` to an `O_PATH` descriptor. Symlinks are followed with
//!   absolute targets taken from the root, `..` stops at the root, and procfs magic links
//!   (`/proc/<pid>/root`, `/proc/<pid>/fd/N`) are refused.
//! - When something is missing and the caller wants it created, a walk of our own takes
//!   one component at a time with `openat(O_PATH | O_NOFOLLOW)` from the descriptor of
//!   the directory before it, expands symlinks itself by the same rules (a dangling
//!   `/var/run -> /run` creates `/run` inside the root), and creates what is missing with
//!   `mkdirat` or `openat(O_CREAT | O_EXCL | O_NOFOLLOW)` relative to that descriptor.
//!   `..` pops the walk's own stack of descriptors, so it never consults the filesystem
//!   and cannot climb out.
//!
//! The result is an `O_PATH` descriptor of the target itself, to mount onto (see
//! `sys::mount::attach`) or to reopen.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path};

use rustix::fs::{self as rfs, Mode, OFlags, ResolveFlags};

/// Linux's own limit on symlinks followed in one lookup (`MAXSYMLINKS`).
pub const MAX_SYMLINKS: u32 = 40;

/// procfs's `f_type`: symlinks there are magic (they jump to a process's files).
const PROC_SUPER_MAGIC: i64 = 0x9fa0;

/// What to create when the last component of a path is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Create {
    /// A directory (mode 0755 before the umask), as are the missing parents.
    Dir,
    /// An empty regular file (mode 0644 before the umask), the parents as directories.
    File,
}

/// A directory that paths are resolved inside.
#[derive(Debug)]
pub struct Root {
    fd: OwnedFd,
}

impl Root {
    /// Opens the directory at `path` (a trusted host path: symlinks in it are followed).
    pub fn open(path: &Path) -> io::Result<Root> {
        let fd = rfs::open(
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Root { fd })
    }

    /// The directory behind `fd` (a mount made with `sys::mount`, say).
    pub fn from_fd(fd: OwnedFd) -> Root {
        Root { fd }
    }

    /// `path` (absolute or not, either way from the root), or an error: `ENOENT` when it
    /// does not exist, `ELOOP` for a magic link or more than [`MAX_SYMLINKS`] symlinks.
    pub fn resolve(&self, path: &Path) -> io::Result<OwnedFd> {
        // openat2 fails with EAGAIN when a rename elsewhere raced its `..` handling; the
        // walk has no such limitation, so after a few tries it takes over.
        for _ in 0..4 {
            match rfs::openat2(
                &self.fd,
                relative(path),
                OFlags::PATH | OFlags::CLOEXEC,
                Mode::empty(),
                ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
            ) {
                Err(rustix::io::Errno::AGAIN) => continue,
                other => return other.map_err(io::Error::from),
            }
        }
        self.walk(path, None)
    }

    /// [`Root::resolve`], creating what is missing: directories, and the last component
    /// as `last` says.
    pub fn resolve_or_create(&self, path: &Path, last: Create) -> io::Result<OwnedFd> {
        match self.resolve(path) {
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => self.walk(path, Some(last)),
            other => other,
        }
    }

    /// Opens the regular file at `path` for reading. Anything else (a fifo that would
    /// block, a device) is `EINVAL` without having been opened.
    pub fn open_regular_file(&self, path: &Path) -> io::Result<(File, u64)> {
        let fd = self.resolve(path)?;
        let stat = rfs::fstat(&fd)?;
        if rfs::FileType::from_raw_mode(stat.st_mode) != rfs::FileType::RegularFile {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a regular file",
            ));
        }
        Ok((reopen_read(&fd)?, stat.st_size as u64))
    }

    /// The walk described in the module comment. `create: None` only resolves.
    fn walk(&self, path: &Path, create: Option<Create>) -> io::Result<OwnedFd> {
        let mut todo: VecDeque<OsString> = steps(path).collect();
        // The directories walked through below the root; `..` pops it.
        let mut stack: Vec<OwnedFd> = Vec::new();
        let mut links = 0;
        // Creation races (someone else created or replaced the name first) are retried,
        // but not forever.
        let mut races = 0;
        while let Some(name) = todo.pop_front() {
            if name == ".." {
                stack.pop();
                continue;
            }
            let dir = stack.last().map_or(self.fd.as_fd(), |fd| fd.as_fd());
            let last = todo.is_empty();
            let fd = match open_nofollow(dir, &name) {
                Ok(fd) => fd,
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) && create.is_some() => {
                    races += 1;
                    if races > MAX_SYMLINKS {
                        return Err(io::Error::from_raw_os_error(libc::EAGAIN));
                    }
                    let file = last && create == Some(Create::File);
                    match make(dir, &name, file) {
                        Ok(()) => {}
                        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
                        Err(e) => return Err(e),
                    }
                    // Look again: whatever is there now goes through the same checks.
                    todo.push_front(name);
                    continue;
                }
                Err(e) => return Err(e),
            };
            let stat = rfs::fstat(&fd)?;
            match rfs::FileType::from_raw_mode(stat.st_mode) {
                rfs::FileType::Symlink => {
                    links += 1;
                    if links > MAX_SYMLINKS || is_procfs(&fd)? {
                        return Err(io::Error::from_raw_os_error(libc::ELOOP));
                    }
                    let target = rfs::readlinkat(&fd, "", Vec::new())?;
                    let target = Path::new(OsStr::from_bytes(target.as_bytes()));
                    if target.has_root() {
                        stack.clear();
                    }
                    for step in steps(target).collect::<Vec<_>>().into_iter().rev() {
                        todo.push_front(step);
                    }
                }
                rfs::FileType::Directory => stack.push(fd),
                _ if last => return Ok(fd),
                _ => return Err(io::Error::from_raw_os_error(libc::ENOTDIR)),
            }
        }
        match stack.pop() {
            Some(fd) => Ok(fd),
            None => Ok(self.fd.try_clone()?),
        }
    }
}

impl AsFd for Root {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// `path` without its leading `/`, for openat2 (an absolute path would be taken from the
/// root anyway with RESOLVE_IN_ROOT, but an empty one must be `.`).
fn relative(path: &Path) -> &Path {
    let rel = path.strip_prefix("/").unwrap_or(path);
    if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    }
}

/// The names and `..`s of `path`, in order (`/` and `.` change nothing).
fn steps(path: &Path) -> impl Iterator<Item = OsString> + '_ {
    path.components().filter_map(|c| match c {
        Component::Normal(name) => Some(name.to_os_string()),
        Component::ParentDir => Some(OsString::from("..")),
        Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
    })
}

fn open_nofollow(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<OwnedFd> {
    Ok(rfs::openat(
        dir,
        name,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// Creates `name` in `dir`: an empty file or a directory, never following a symlink.
fn make(dir: BorrowedFd<'_>, name: &OsStr, file: bool) -> io::Result<()> {
    if file {
        rfs::openat(
            dir,
            name,
            OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::WRONLY | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
        )?;
    } else {
        rfs::mkdirat(dir, name, Mode::from_raw_mode(0o755))?;
    }
    Ok(())
}

fn is_procfs(fd: &OwnedFd) -> io::Result<bool> {
    Ok(rfs::fstatfs(fd)?.f_type as i64 == PROC_SUPER_MAGIC)
}

/// Opens what an `O_PATH` descriptor names for reading, through its `/proc/self/fd`
/// entry: the same inode, without a second path lookup.
pub fn reopen_read(fd: &OwnedFd) -> io::Result<File> {
    use std::os::fd::AsRawFd;
    let owned = rfs::open(
        format!("/proc/self/fd/{}", fd.as_raw_fd()),
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY,
        Mode::empty(),
    )?;
    Ok(File::from(owned))
}

/// Opens the regular file at `path` for reading (symlinks followed), or `EINVAL` without
/// having opened anything else (a fifo would block).
pub fn open_regular(path: &Path) -> io::Result<File> {
    let fd = rfs::open(path, OFlags::PATH | OFlags::CLOEXEC, Mode::empty())?;
    regular(fd)
}

fn regular(fd: OwnedFd) -> io::Result<File> {
    let stat = rfs::fstat(&fd)?;
    if rfs::FileType::from_raw_mode(stat.st_mode) != rfs::FileType::RegularFile {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    reopen_read(&fd)
}

/// Opens the regular file `rel` below the directory `dir` for reading, refusing to leave
/// `dir` on the way (`RESOLVE_BENEATH`: `..` above it, an absolute symlink or one that
/// climbs out fail with `EXDEV`) and anything but a regular file (`EINVAL`, never opened:
/// a fifo would block). Symlinks that stay below `dir` are followed.
pub fn open_regular_beneath(dir: &Path, rel: &Path) -> io::Result<File> {
    let dir = rfs::open(
        dir,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let fd = rfs::openat2(
        &dir,
        rel,
        OFlags::PATH | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
    )?;
    regular(fd)
}

/// Opens (creating with `mode` when missing) the file `rel` below the directory `dir` for
/// appending, refusing every symlink on the way and at the end (`RESOLVE_BENEATH |
/// RESOLVE_NO_SYMLINKS`): for files the daemon writes as root in directories others can
/// write to, such as container logs.
pub fn open_append_beneath(dir: BorrowedFd<'_>, rel: &Path, mode: u32) -> io::Result<File> {
    let fd = rfs::openat2(
        dir,
        rel,
        OFlags::WRONLY | OFlags::APPEND | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(mode),
        ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
    )?;
    Ok(File::from(fd))
}

/// Creates the directories of `rel` below `dir` that are missing (mode `mode` before the
/// umask), refusing symlinks as [`open_append_beneath`] does.
pub fn mkdir_all_beneath(dir: BorrowedFd<'_>, rel: &Path, mode: u32) -> io::Result<()> {
    let mut current = rfs::openat(
        dir,
        ".",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    for c in rel.components() {
        let Component::Normal(name) = c else {
            if matches!(c, Component::CurDir) {
                continue;
            }
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "must be a relative path without ..",
            ));
        };
        match rfs::mkdirat(&current, name, Mode::from_raw_mode(mode)) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(e.into()),
        }
        current = rfs::openat(
            &current,
            name,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
