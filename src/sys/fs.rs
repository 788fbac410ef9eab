//! Filesystem syscalls used by layer unpacking that std does not offer: device nodes and
//! fifos, extended attributes, and timestamps on a path without following a final symlink.
//!
//! Everything else the unpacker needs (create, link, symlink, `lchown`, `fchown`, `chmod`)
//! comes from std. These wrappers are deliberately thin: they take a path, return
//! `io::Result`, and never follow a symlink in the *last* component (the `l*` variants and
//! `AT_SYMLINK_NOFOLLOW`); making sure no *intermediate* component is a symlink is the
//! caller's job.

use std::ffi::CString;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::sys::stat::{self, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;

/// A point in time with nanosecond precision, as tar PAX headers and `utimensat` use it.
/// Seconds may be negative (before 1970).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Timestamp {
    pub secs: i64,
    pub nanos: u32,
}

impl Timestamp {
    fn to_timespec(self) -> TimeSpec {
        // `nanos` is always < 1e9 when built by the unpacker; clamp anyway so a bad value
        // cannot make the kernel return EINVAL.
        TimeSpec::new(self.secs, i64::from(self.nanos.min(999_999_999)))
    }
}

/// Creates a character device node. The permission bits in `mode` are subject to the
/// process umask (as with mknod(2)); callers that need exact bits chmod afterwards.
pub fn mknod_char(path: &Path, mode: u32, major: u64, minor: u64) -> io::Result<()> {
    mknod(path, SFlag::S_IFCHR, mode, stat::makedev(major, minor))
}

/// Creates a block device node (umask applies, as for [`mknod_char`]).
pub fn mknod_block(path: &Path, mode: u32, major: u64, minor: u64) -> io::Result<()> {
    mknod(path, SFlag::S_IFBLK, mode, stat::makedev(major, minor))
}

/// Creates a fifo (umask applies, as for [`mknod_char`]).
pub fn mkfifo(path: &Path, mode: u32) -> io::Result<()> {
    nix::unistd::mkfifo(path, Mode::from_bits_truncate(mode))?;
    Ok(())
}

fn mknod(path: &Path, kind: SFlag, mode: u32, dev: libc::dev_t) -> io::Result<()> {
    stat::mknod(path, kind, Mode::from_bits_truncate(mode), dev)?;
    Ok(())
}

/// A memfd holding `bytes`, sealed against any change, that can be exec'd (`MFD_EXEC`
/// where the kernel knows it, 6.3+): a program run without a file on disk.
pub fn sealed_memfd(name: &str, bytes: &[u8]) -> io::Result<std::os::fd::OwnedFd> {
    use rustix::fs::{MemfdFlags, SealFlags};
    let base = MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING;
    let fd = match rustix::fs::memfd_create(name, base | MemfdFlags::EXEC) {
        Err(rustix::io::Errno::INVAL) => rustix::fs::memfd_create(name, base)?,
        other => other?,
    };
    let mut file = std::fs::File::from(fd);
    std::io::Write::write_all(&mut file, bytes)?;
    let fd = std::os::fd::OwnedFd::from(file);
    rustix::fs::fcntl_add_seals(
        &fd,
        SealFlags::SEAL | SealFlags::SHRINK | SealFlags::GROW | SealFlags::WRITE,
    )?;
    Ok(fd)
}

/// Creates the symlink `name` -> `target` in the directory `dir`.
pub fn symlink_at(target: &str, dir: impl AsFd, name: &str) -> io::Result<()> {
    rustix::fs::symlinkat(target, dir, name)?;
    Ok(())
}

/// Sets access and modification times of `path` itself: a symlink's own times are set,
/// never its target's (`utimensat(AT_FDCWD, path, .., AT_SYMLINK_NOFOLLOW)`).
pub fn lutimes(path: &Path, atime: Timestamp, mtime: Timestamp) -> io::Result<()> {
    stat::utimensat(
        nix::fcntl::AT_FDCWD,
        path,
        &atime.to_timespec(),
        &mtime.to_timespec(),
        UtimensatFlags::NoFollowSymlink,
    )?;
    Ok(())
}

/// Sets access and modification times of an open file (`futimens`), saving the path lookup.
pub fn futimens(fd: impl AsFd, atime: Timestamp, mtime: Timestamp) -> io::Result<()> {
    stat::futimens(fd, &atime.to_timespec(), &mtime.to_timespec())?;
    Ok(())
}

/// Sets extended attribute `name` on `path` itself (not a symlink's target).
/// Names are raw bytes because tar PAX `SCHILY.xattr.<name>` keys are.
pub fn lsetxattr(path: &Path, name: &[u8], value: &[u8]) -> io::Result<()> {
    let c_path = c_path(path)?;
    let c_name = c_string(name)?;
    // SAFETY: `c_path` and `c_name` are NUL-terminated strings that outlive the call;
    // `value` is a valid slice and its exact length is passed, so the kernel reads only
    // `value.len()` bytes from it. lsetxattr does not retain any pointer after returning.
    let rc = unsafe {
        libc::lsetxattr(
            c_path.as_ptr(),
            c_name.as_ptr(),
            value.as_ptr().cast::<libc::c_void>(),
            value.len(),
            0,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Reads extended attribute `name` of `path` itself; `Ok(None)` when it is not set.
pub fn lgetxattr(path: &Path, name: &[u8]) -> io::Result<Option<Vec<u8>>> {
    let c_path = c_path(path)?;
    let c_name = c_string(name)?;
    // The attribute can change size between the size query and the read (ERANGE); retry.
    loop {
        // SAFETY: both strings are NUL-terminated and live across the call; a null buffer
        // with size 0 asks the kernel only for the value's length and writes nothing.
        let len =
            unsafe { libc::lgetxattr(c_path.as_ptr(), c_name.as_ptr(), std::ptr::null_mut(), 0) };
        if len < 0 {
            return match io::Error::last_os_error() {
                e if e.raw_os_error() == Some(libc::ENODATA) => Ok(None),
                e => Err(e),
            };
        }
        let mut buf = vec![0u8; len.unsigned_abs()];
        // SAFETY: `buf` is a live, writable allocation of exactly `buf.len()` bytes and that
        // length is passed, so the kernel writes at most `buf.len()` bytes into it.
        let got = unsafe {
            libc::lgetxattr(
                c_path.as_ptr(),
                c_name.as_ptr(),
                buf.as_mut_ptr().cast::<libc::c_void>(),
                buf.len(),
            )
        };
        if got >= 0 {
            buf.truncate(got.unsigned_abs());
            return Ok(Some(buf));
        }
        match io::Error::last_os_error() {
            e if e.raw_os_error() == Some(libc::ERANGE) => continue,
            e if e.raw_os_error() == Some(libc::ENODATA) => return Ok(None),
            e => return Err(e),
        }
    }
}

/// Lists the extended attribute names of `path` itself (not a symlink's target), as raw
/// bytes. A filesystem without xattr support yields an empty list.
pub fn llistxattr(path: &Path) -> io::Result<Vec<Vec<u8>>> {
    let c_path = c_path(path)?;
    // The list can grow between the size query and the read (ERANGE); retry.
    loop {
        // SAFETY: `c_path` is NUL-terminated and lives across the call; a null buffer with
        // size 0 asks the kernel only for the list's length and writes nothing.
        let len = unsafe { libc::llistxattr(c_path.as_ptr(), std::ptr::null_mut(), 0) };
        if len < 0 {
            return match io::Error::last_os_error() {
                e if is_xattr_unsupported(&e) => Ok(Vec::new()),
                e => Err(e),
            };
        }
        if len == 0 {
            return Ok(Vec::new());
        }
        let mut buf = vec![0u8; len.unsigned_abs()];
        // SAFETY: `buf` is a live, writable allocation of exactly `buf.len()` bytes and that
        // length is passed, so the kernel writes at most `buf.len()` bytes into it.
        let got = unsafe {
            libc::llistxattr(
                c_path.as_ptr(),
                buf.as_mut_ptr().cast::<libc::c_char>(),
                buf.len(),
            )
        };
        if got >= 0 {
            buf.truncate(got.unsigned_abs());
            // The kernel returns the names NUL-terminated, one after another.
            return Ok(buf
                .split(|&b| b == 0)
                .filter(|name| !name.is_empty())
                .map(<[u8]>::to_vec)
                .collect());
        }
        match io::Error::last_os_error() {
            e if e.raw_os_error() == Some(libc::ERANGE) => continue,
            e => return Err(e),
        }
    }
}

/// Whether an xattr error means "this filesystem or file type does not take that
/// attribute" (EOPNOTSUPP), as opposed to a real failure.
pub fn is_xattr_unsupported(err: &io::Error) -> bool {
    err.raw_os_error() == Some(libc::EOPNOTSUPP)
}

/// Whether an error is EPERM (e.g. `user.*` xattrs on a symlink or device node, which
/// Linux refuses by design).
pub fn is_permission_denied(err: &io::Error) -> bool {
    err.raw_os_error() == Some(libc::EPERM)
}

fn c_path(path: &Path) -> io::Result<CString> {
    c_string(path.as_os_str().as_bytes())
}

fn c_string(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "path or attribute name contains a NUL byte",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_xattr_round_trip_and_missing_is_none() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").expect("write");
        match lsetxattr(&file, b"user.ucr.test", b"value") {
            Ok(()) => {}
            Err(e) if is_xattr_unsupported(&e) => {
                eprintln!(
                    "skipping: filesystem of {} has no user xattrs",
                    file.display()
                );
                return;
            }
            Err(e) => panic!("lsetxattr: {e}"),
        }
        assert_eq!(
            lgetxattr(&file, b"user.ucr.test").expect("get"),
            Some(b"value".to_vec())
        );
        assert_eq!(lgetxattr(&file, b"user.ucr.none").expect("get"), None);
        assert!(llistxattr(&file)
            .expect("list")
            .contains(&b"user.ucr.test".to_vec()));
    }

    #[test]
    fn lutimes_sets_symlink_own_time() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("target");
        std::fs::write(&target, b"x").expect("write");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).expect("symlink");
        let t = Timestamp {
            secs: 1_000_000,
            nanos: 5,
        };
        lutimes(&link, t, t).expect("lutimes");
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            std::fs::symlink_metadata(&link).expect("lstat").mtime(),
            1_000_000
        );
        assert_ne!(std::fs::metadata(&target).expect("stat").mtime(), 1_000_000);
    }

    #[test]
    fn mkfifo_creates_fifo() {
        use std::os::unix::fs::FileTypeExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("fifo");
        mkfifo(&p, 0o600).expect("mkfifo");
        assert!(std::fs::symlink_metadata(&p)
            .expect("lstat")
            .file_type()
            .is_fifo());
    }
}
