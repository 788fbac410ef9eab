//! Namespaces, pivot_root and the hostname: thin wrappers over nix, used by the launcher
//! in the container's first process (after clone, before exec). Mounts are in `mount`.

use std::io;
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

/// Makes `new_root` the process's root and detaches the old one. The `pivot_root(".",
/// ".")` form needs no directory for the old root inside the image.
pub fn pivot_into(new_root: &Path) -> io::Result<()> {
    nix::unistd::chdir(new_root).map_err(errno)?;
    nix::unistd::pivot_root(".", ".").map_err(errno)?;
    umount2(".", MntFlags::MNT_DETACH).map_err(errno)?;
    nix::unistd::chdir("/").map_err(errno)
}

pub fn set_hostname(name: &str) -> io::Result<()> {
    nix::unistd::sethostname(name).map_err(errno)
}
