//! Directory descriptors for walking trees a container owns and can change while we walk
//! them (its writable layer, its sandbox): every lookup is one name relative to an open
//! directory, never a path looked up again from the top, and no symlink is ever followed
//! (`O_NOFOLLOW`, `AT_SYMLINK_NOFOLLOW`). A rename racing the walk can hide a subtree
//! from it, but can never send it outside the tree.
//!
//! The walk itself (`isolators::disk::walk`) is plain logic on top of [`Dir`].

use std::ffi::{CStr, CString};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, StatxFlags};

/// What `statx` says about one inode, reduced to what accounting and labelling need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    pub dev: u64,
    pub ino: u64,
    pub kind: Kind,
    pub nlink: u32,
    /// 512-byte blocks allocated (`st_blocks`), whatever the filesystem's block size.
    pub blocks: u64,
    /// The mount the inode was reached through (`STATX_MNT_ID`, Linux 5.8+); `None` on
    /// older kernels.
    pub mount: Option<u64>,
}

impl Meta {
    /// The identity of the inode: equal for two hard links of one file.
    pub fn id(&self) -> (u64, u64) {
        (self.dev, self.ino)
    }

    /// Whether `self` was reached through another mount than `other`. With mount ids this
    /// sees same-filesystem bind mounts too (they share `st_dev`); without them it falls
    /// back to comparing devices, as `du -x` does.
    pub fn other_mount_than(&self, other: &Meta) -> bool {
        match (self.mount, other.mount) {
            (Some(a), Some(b)) => a != b,
            _ => self.dev != other.dev,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    Regular,
    Symlink,
    /// Devices, fifos, sockets.
    Other,
}

/// What `getdents` said an entry was when the directory was read. Only a hint: the entry
/// may have been replaced since, and some filesystems do not say (`DT_UNKNOWN`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hint {
    Dir,
    NotDir,
    Unknown,
}

/// One name read from a directory (never `.` or `..`).
#[derive(Debug, Clone)]
pub struct Entry {
    pub name: CString,
    pub hint: Hint,
}

/// An open directory (`O_RDONLY | O_DIRECTORY`), readable and usable as the base of
/// `*at` calls.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
}

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// Everything the walk looks at. `STATX_DONT_SYNC`: a network filesystem may answer from
/// its cache, a figure 15 s old is fine. `AT_NO_AUTOMOUNT`: an automount point below a
/// container's directory is not ours to trigger.
const STATX_MASK: StatxFlags = StatxFlags::TYPE
    .union(StatxFlags::MODE)
    .union(StatxFlags::NLINK)
    .union(StatxFlags::INO)
    .union(StatxFlags::BLOCKS)
    .union(StatxFlags::MNT_ID);
const STATX_AT: AtFlags = AtFlags::SYMLINK_NOFOLLOW
    .union(AtFlags::NO_AUTOMOUNT)
    .union(AtFlags::STATX_DONT_SYNC);

impl Dir {
    /// Opens the directory at `path`, a host path the daemon chose. A symlink as its last
    /// component is refused (`ELOOP`), as `du` does not follow one given as an operand.
    pub fn open(path: &Path) -> io::Result<Dir> {
        let fd = rfs::open(path, DIR_FLAGS, Mode::empty())?;
        Ok(Dir { fd })
    }

    /// Opens the subdirectory `name`. `ENOTDIR` or `ELOOP` when `name` is (now) not a
    /// directory or a symlink; a fifo or device is never opened, since `O_DIRECTORY` is
    /// checked before the open reaches the inode.
    pub fn open_subdir(&self, name: &CStr) -> io::Result<Dir> {
        let fd = rfs::openat(&self.fd, name, DIR_FLAGS, Mode::empty())?;
        Ok(Dir { fd })
    }

    /// Opens this directory's parent (`..`). The caller checks the result is the parent
    /// it expects: a rename may have moved this directory since it was opened.
    pub fn open_parent(&self) -> io::Result<Dir> {
        self.open_subdir(c"..")
    }

    /// `statx` of this directory itself.
    pub fn meta(&self) -> io::Result<Meta> {
        let st = rfs::statx(&self.fd, c"", STATX_AT | AtFlags::EMPTY_PATH, STATX_MASK)?;
        Ok(meta_of(&st))
    }

    /// `statx` of `name` in this directory, not following a symlink.
    pub fn meta_at(&self, name: &CStr) -> io::Result<Meta> {
        let st = rfs::statx(&self.fd, name, STATX_AT, STATX_MASK)?;
        Ok(meta_of(&st))
    }

    /// Every entry, read in one go from the start (`.` and `..` left out). The whole list
    /// is held so the descriptor can be closed while the walk is deeper down.
    pub fn entries(&self) -> io::Result<Vec<Entry>> {
        // On a second descriptor (`openat(fd, ".")`): `rustix::fs::Dir` owns the one it
        // reads from, and ours stays the base of the `*at` calls. On a directory removed
        // meanwhile that open fails with ENOENT, which the walk takes as "vanished".
        let mut dir = rfs::Dir::read_from(&self.fd)?;
        let mut out = Vec::new();
        while let Some(entry) = dir.read() {
            let entry = entry?;
            let name = entry.file_name();
            if name == c"." || name == c".." {
                continue;
            }
            let hint = match entry.file_type() {
                FileType::Directory => Hint::Dir,
                FileType::Unknown => Hint::Unknown,
                _ => Hint::NotDir,
            };
            out.push(Entry {
                name: name.to_owned(),
                hint,
            });
        }
        Ok(out)
    }

    /// Opens the regular file `name` for reading (to issue an ioctl on it), or `None` when
    /// `name` is not a regular file. The file is first opened `O_PATH | O_NOFOLLOW`,
    /// checked, then reopened through `/proc/self/fd`: a fifo or device swapped in by a
    /// container between our `statx` and the open is never opened for real (which could
    /// block, or have side effects for a device).
    pub fn open_regular_at(&self, name: &CStr) -> io::Result<Option<File>> {
        let path = rfs::openat(
            &self.fd,
            name,
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        if rfs::fstat(&path)?.st_mode & libc::S_IFMT != libc::S_IFREG {
            return Ok(None);
        }
        let file = rfs::open(
            format!("/proc/self/fd/{}", path.as_raw_fd()),
            OFlags::RDONLY | OFlags::NOCTTY | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Some(File::from(file)))
    }
}

impl AsFd for Dir {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

fn meta_of(st: &rfs::Statx) -> Meta {
    let kind = match u32::from(st.stx_mode) & libc::S_IFMT {
        libc::S_IFDIR => Kind::Dir,
        libc::S_IFREG => Kind::Regular,
        libc::S_IFLNK => Kind::Symlink,
        _ => Kind::Other,
    };
    let mount = (st.stx_mask & StatxFlags::MNT_ID.bits() != 0).then_some(st.stx_mnt_id);
    Meta {
        dev: libc::makedev(st.stx_dev_major, st.stx_dev_minor),
        ino: st.stx_ino,
        kind,
        nlink: st.stx_nlink,
        blocks: st.stx_blocks,
        mount,
    }
}

/// Whether an error means the name is gone (removed or renamed away while we walked).
pub fn is_gone(err: &io::Error) -> bool {
    err.raw_os_error() == Some(libc::ENOENT)
}

/// Whether `open_subdir` failed because the name is not a directory (any more): a file,
/// a symlink, a fifo.
pub fn is_not_dir(err: &io::Error) -> bool {
    matches!(err.raw_os_error(), Some(libc::ENOTDIR) | Some(libc::ELOOP))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_and_entries_do_not_follow_symlinks() {
        let tmp = tempfile::tempdir().expect("tempdir");
        std::fs::write(tmp.path().join("f"), b"x").expect("write f");
        std::fs::create_dir(tmp.path().join("d")).expect("mkdir d");
        std::os::unix::fs::symlink("/etc", tmp.path().join("l")).expect("symlink l");

        let dir = Dir::open(tmp.path()).expect("open");
        let mut names: Vec<_> = dir
            .entries()
            .expect("entries")
            .into_iter()
            .map(|e| (e.name.into_string().expect("utf-8"), e.hint))
            .collect();
        names.sort_by(|a, b| a.0.cmp(&b.0));
        // tmpfs and ext4 report d_type, so the hints are exact here.
        assert_eq!(
            names,
            vec![
                ("d".to_string(), Hint::Dir),
                ("f".to_string(), Hint::NotDir),
                ("l".to_string(), Hint::NotDir)
            ]
        );
        assert_eq!(dir.meta_at(c"l").expect("stat l").kind, Kind::Symlink);
        assert_eq!(dir.meta_at(c"f").expect("stat f").kind, Kind::Regular);
        let err = dir
            .open_subdir(c"l")
            .expect_err("symlink opened as a directory");
        assert!(is_not_dir(&err), "{err}");
        let err = dir
            .open_subdir(c"f")
            .expect_err("file opened as a directory");
        assert!(is_not_dir(&err), "{err}");
        assert!(is_gone(&dir.meta_at(c"missing").expect_err("missing")));
        assert!(dir.open_regular_at(c"l").expect("open l").is_none());
        assert!(dir.open_regular_at(c"f").expect("open f").is_some());

        let sub = dir.open_subdir(c"d").expect("open d");
        assert_eq!(
            sub.open_parent().expect("..").meta().expect("stat ..").id(),
            dir.meta().expect("stat").id()
        );
    }
}
