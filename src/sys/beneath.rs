//! Looking at files below a directory a container writes to (its Mesos sandbox), for
//! `LIST_FILES` and `READ_FILE`: every lookup is `openat2(RESOLVE_BENEATH |
//! RESOLVE_NO_MAGICLINKS)` from the directory's descriptor, so a symlink the container
//! planted (`ln -s / escape`, `ln -s /etc/shadow x`) or a `..` that climbs out fails
//! with `EXDEV` instead of reaching the host; symlinks that stay below are followed, as
//! Mesos's `realpath` check allows. Entries of a listing are described without following
//! them (`AT_SYMLINK_NOFOLLOW`): a symlink shows as itself, never as the host file it
//! names.

use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::path::Path;

use rustix::fs::{self as rfs, AtFlags, Mode, OFlags, ResolveFlags};

/// What `stat` says, as Mesos's `FileInfo` wants it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// `st_mode`: type and permission bits.
    pub mode: u32,
    pub nlink: u64,
    pub size: u64,
    /// Seconds since the epoch.
    pub mtime: i64,
    pub uid: u32,
    pub gid: u32,
}

impl Stat {
    pub fn is_dir(&self) -> bool {
        rfs::FileType::from_raw_mode(self.mode) == rfs::FileType::Directory
    }
    pub fn is_regular(&self) -> bool {
        rfs::FileType::from_raw_mode(self.mode) == rfs::FileType::RegularFile
    }
}

fn stat_of(st: &rfs::Stat) -> Stat {
    Stat {
        mode: st.st_mode,
        nlink: st.st_nlink,
        size: st.st_size as u64,
        mtime: st.st_mtime,
        uid: st.st_uid,
        gid: st.st_gid,
    }
}

/// Opens the directory at `path` (trusted: the daemon's own) as the base of lookups.
pub fn open_base(path: &Path) -> io::Result<OwnedFd> {
    Ok(rfs::open(
        path,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// `rel` below `base` as an `O_PATH` descriptor (empty: `base` itself), and its stat.
/// `EXDEV` when the lookup would leave `base`.
pub fn lookup(base: BorrowedFd<'_>, rel: &Path) -> io::Result<(OwnedFd, Stat)> {
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    let fd = loop {
        match rfs::openat2(
            base,
            rel,
            OFlags::PATH | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
        ) {
            // A rename elsewhere raced the lookup's `..` handling: look again.
            Err(rustix::io::Errno::AGAIN) => continue,
            other => break other?,
        }
    };
    let st = rfs::fstat(&fd)?;
    Ok((fd, stat_of(&st)))
}

/// The entries of the directory `dir` (from [`lookup`]), each described without
/// following it; entries gone between the listing and their stat are left out.
pub fn list(dir: BorrowedFd<'_>) -> io::Result<Vec<(OsString, Stat)>> {
    let open = rfs::openat(
        dir,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut out = Vec::new();
    for entry in rfs::Dir::read_from(&open)? {
        let entry = entry?;
        let name = entry.file_name();
        if name.to_bytes() == b"." || name.to_bytes() == b".." {
            continue;
        }
        match rfs::statat(&open, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => out.push((OsString::from_vec(name.to_bytes().to_vec()), stat_of(&st))),
            Err(rustix::io::Errno::NOENT) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(out)
}

/// Opens the regular file `fd` names (from [`lookup`]) for reading, without a second
/// lookup; anything else is `EINVAL` (a fifo would block).
pub fn open_regular(fd: &OwnedFd) -> io::Result<File> {
    let st = rfs::fstat(fd)?;
    if rfs::FileType::from_raw_mode(st.st_mode) != rfs::FileType::RegularFile {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    super::inroot::reopen_read(fd)
}

/// The system's page size (4096 when it cannot be read: the smallest Linux runs with).
pub fn page_size() -> usize {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .and_then(|p| usize::try_from(p).ok())
        .unwrap_or(4096)
}

/// Reads up to `len` bytes at `offset` (fewer at the end of the file).
pub fn read_at(file: &File, offset: u64, len: usize) -> io::Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; len];
    let mut done = 0;
    while done < len {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    buf.truncate(done);
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;
    use std::os::unix::fs::symlink;

    #[test]
    fn symlinks_out_are_refused_and_those_inside_followed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        std::fs::create_dir(d.join("sub")).expect("mkdir");
        std::fs::write(d.join("sub/f"), b"inside").expect("write");
        symlink("/", d.join("escape")).expect("symlink");
        symlink("/etc/passwd", d.join("x")).expect("symlink");
        symlink("../../../../../etc/passwd", d.join("sub/up")).expect("symlink");
        symlink("sub/f", d.join("ok")).expect("symlink");
        let base = open_base(d).expect("base");
        for bad in [
            "escape",
            "escape/etc/passwd",
            "x",
            "sub/up",
            "../",
            "sub/../../etc",
        ] {
            let e = lookup(base.as_fd(), Path::new(bad)).expect_err(bad);
            assert_eq!(e.raw_os_error(), Some(libc::EXDEV), "{bad}: {e}");
        }
        let (fd, st) = lookup(base.as_fd(), Path::new("ok")).expect("ok");
        assert!(st.is_regular());
        let f = open_regular(&fd).expect("open");
        assert_eq!(read_at(&f, 2, 100).expect("read"), b"side");
        let (root, st) = lookup(base.as_fd(), Path::new("")).expect("itself");
        assert!(st.is_dir());
        let mut names: Vec<_> = list(root.as_fd())
            .expect("list")
            .into_iter()
            .map(|(n, s)| (n.into_string().expect("utf-8"), s.is_dir()))
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                ("escape".to_string(), false),
                ("ok".to_string(), false),
                ("sub".to_string(), true),
                ("x".to_string(), false)
            ]
        );
    }

    #[test]
    fn only_regular_files_are_opened() {
        let dir = tempfile::tempdir().expect("tempdir");
        crate::sys::fs::mkfifo(&dir.path().join("fifo"), 0o600).expect("fifo");
        let base = open_base(dir.path()).expect("base");
        let (fd, _) = lookup(base.as_fd(), Path::new("fifo")).expect("lookup");
        let e = open_regular(&fd).expect_err("a fifo");
        assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
    }
}
