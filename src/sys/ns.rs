//! Namespaces, pivot_root and the hostname: thin wrappers over nix, used by the launcher
//! in the container's first process (after clone, before exec). Mounts are in `mount`.

use std::io;
use std::os::fd::BorrowedFd;
use std::path::Path;

use nix::mount::{umount2, MntFlags};
use nix::sched::CloneFlags;

fn errno(e: nix::errno::Errno) -> io::Error {
    io::Error::from(e)
}

/// Enters the namespace pinned at `path` (a bind-mounted `/proc/<pid>/ns/*` file).
pub fn join(path: &Path, kind: CloneFlags) -> io::Result<()> {
    let f = std::fs::File::open(path)?;
    nix::sched::setns(f, kind).map_err(errno)
}

pub fn unshare(flags: CloneFlags) -> io::Result<()> {
    nix::sched::unshare(flags).map_err(errno)
}

/// Makes the directory behind `new_root` (a mount's root) the process's root and detaches
/// the old one. The `pivot_root(".", ".")` form needs no directory for the old root
/// inside the image.
pub fn pivot_into(new_root: BorrowedFd<'_>) -> io::Result<()> {
    let old_root = std::fs::File::open("/")?;
    nix::unistd::fchdir(new_root).map_err(errno)?;
    nix::unistd::pivot_root(".", ".").map_err(errno)?;
    // The old root now sits on top of the new one. Step onto it (the kernel does not
    // promise where "." is after pivot_root) and make it a slave before unmounting it, so
    // the unmount cannot reach the host's peers of its mounts (they are left shared when
    // the container has a bidirectional volume). runc does the same.
    nix::unistd::fchdir(&old_root).map_err(errno)?;
    nix::mount::mount(
        None::<&str>,
        ".",
        None::<&str>,
        nix::mount::MsFlags::MS_SLAVE | nix::mount::MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(errno)?;
    umount2(".", MntFlags::MNT_DETACH).map_err(errno)?;
    nix::unistd::chdir("/").map_err(errno)
}

/// Makes the directory behind `dir` the working directory (an `O_PATH` descriptor will do).
pub fn change_dir(dir: BorrowedFd<'_>) -> io::Result<()> {
    nix::unistd::fchdir(dir).map_err(errno)
}

pub fn set_hostname(name: &str) -> io::Result<()> {
    nix::unistd::sethostname(name).map_err(errno)
}
