//! Files and directories the daemon makes, as root, inside a directory a container's user
//! will own (a Mesos sandbox and the volumes in it): created one name at a time relative
//! to the directory before it, never through a symlink (`O_NOFOLLOW`), then given their
//! owner and mode through the descriptor just opened, so no path is looked up twice.

use std::fs::{File, Permissions};
use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path};

use rustix::fs::{self as rfs, Mode, OFlags};

/// Who gets what is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
}

/// Mode bits (with set-id and sticky bits) and owner of what `fd` names (`O_PATH` will do).
pub fn mode_and_owner(fd: BorrowedFd<'_>) -> io::Result<(u32, Owner)> {
    let st = rfs::fstat(fd)?;
    Ok((
        st.st_mode & 0o7777,
        Owner {
            uid: st.st_uid,
            gid: st.st_gid,
        },
    ))
}

/// Gives the directory `dir` (open for reading) `owner` and, when given, `mode`.
pub fn set_dir_owner(dir: &File, owner: Owner, mode: Option<u32>) -> io::Result<()> {
    std::os::unix::fs::fchown(dir, Some(owner.uid), Some(owner.gid))?;
    if let Some(mode) = mode {
        dir.set_permissions(Permissions::from_mode(mode))?;
    }
    Ok(())
}

/// Opens the directory at `path` (a trusted host path) for reading, for
/// [`set_dir_owner`] and as the base of the calls below.
pub fn open_dir(path: &Path) -> io::Result<File> {
    let fd = rfs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    Ok(File::from(fd))
}

/// Makes the directories of `rel` (relative, no `..`) below `dir` that are missing, each
/// given `owner`; the last gets `mode` (set-id and sticky bits included, whatever the
/// umask), the ones before it 0755. Existing ones are taken as they are, but must be
/// directories, not symlinks.
pub fn mkdir_owned_beneath(
    dir: BorrowedFd<'_>,
    rel: &Path,
    mode: u32,
    owner: Owner,
) -> io::Result<()> {
    let names = normal_names(rel)?;
    let mut current: OwnedFd = rfs::openat(
        dir,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    for (n, name) in names.iter().enumerate() {
        let made = match rfs::mkdirat(&current, *name, Mode::from_raw_mode(0o700)) {
            Ok(()) => true,
            Err(rustix::io::Errno::EXIST) => false,
            Err(e) => return Err(e.into()),
        };
        let next = rfs::openat(
            &current,
            *name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let last = n + 1 == names.len();
        if made || last {
            let mode = if last { mode } else { 0o755 };
            set_dir_owner(&File::from(next.try_clone()?), owner, Some(mode))?;
        }
        current = next;
    }
    Ok(())
}

/// Creates (or opens, when it is there) the regular file `name` in `dir`, never through
/// a symlink, and gives it `owner` and `mode`.
pub fn file_owned_at(dir: BorrowedFd<'_>, name: &str, mode: u32, owner: Owner) -> io::Result<()> {
    let fd = rfs::openat(
        dir,
        name,
        OFlags::WRONLY | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::from_raw_mode(mode),
    )?;
    let st = rfs::fstat(&fd)?;
    if rfs::FileType::from_raw_mode(st.st_mode) != rfs::FileType::RegularFile {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    let file = File::from(fd);
    std::os::unix::fs::fchown(&file, Some(owner.uid), Some(owner.gid))?;
    file.set_permissions(Permissions::from_mode(mode))
}

fn normal_names(rel: &Path) -> io::Result<Vec<&std::ffi::OsStr>> {
    let mut names = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(name) => names.push(name),
            Component::CurDir => {}
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "must be a relative path without ..",
                ))
            }
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;

    fn me() -> Owner {
        Owner {
            uid: nix::unistd::geteuid().as_raw(),
            gid: nix::unistd::getegid().as_raw(),
        }
    }

    #[test]
    fn directories_get_their_mode_past_the_umask_and_symlinks_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let base = open_dir(dir.path()).expect("open");
        mkdir_owned_beneath(base.as_fd(), Path::new("a/tmp"), 0o1777, me()).expect("mkdir");
        let mode = |p: &str| std::fs::metadata(dir.path().join(p)).expect("stat").mode() & 0o7777;
        assert_eq!(mode("a"), 0o755);
        assert_eq!(mode("a/tmp"), 0o1777);
        // Again: existing directories are fine, and the last one gets the mode again.
        mkdir_owned_beneath(base.as_fd(), Path::new("a/tmp"), 0o700, me()).expect("again");
        assert_eq!(mode("a/tmp"), 0o700);
        let outside = tempfile::tempdir().expect("tempdir");
        std::os::unix::fs::symlink(outside.path(), dir.path().join("link")).expect("symlink");
        mkdir_owned_beneath(base.as_fd(), Path::new("link/x"), 0o755, me()).expect_err("link");
        assert!(!outside.path().join("x").exists());
        for bad in ["../x", "/abs"] {
            mkdir_owned_beneath(base.as_fd(), Path::new(bad), 0o755, me()).expect_err(bad);
        }
    }

    #[test]
    fn files_are_made_or_taken_but_never_through_a_symlink() {
        let dir = tempfile::tempdir().expect("tempdir");
        let base = open_dir(dir.path()).expect("open");
        file_owned_at(base.as_fd(), "stdout", 0o640, me()).expect("create");
        std::fs::write(dir.path().join("stdout"), "kept").expect("write");
        file_owned_at(base.as_fd(), "stdout", 0o640, me()).expect("existing");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("stdout")).expect("read"),
            "kept"
        );
        let outside = tempfile::tempdir().expect("tempdir");
        let victim = outside.path().join("victim");
        std::fs::write(&victim, "").expect("victim");
        std::os::unix::fs::symlink(&victim, dir.path().join("stderr")).expect("symlink");
        file_owned_at(base.as_fd(), "stderr", 0o640, me()).expect_err("a symlink");
        let (mode, owner) = mode_and_owner(base.as_fd()).expect("stat");
        assert_eq!(owner, me());
        assert_ne!(mode, 0);
    }
}
