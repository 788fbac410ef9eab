//! Waiting for a process that is not our child (a detached monitor): a pidfd becomes
//! readable when the process exits (Linux 5.3+).

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

/// A pidfd for `pid`; `ESRCH` when the process is already gone.
pub fn open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1; no
    // memory is passed to the kernel.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor to us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Resolves when the process behind `fd` has exited.
pub async fn exited(fd: OwnedFd) -> io::Result<()> {
    // SAFETY: `fd` is an OwnedFd moved into the AsyncFd, so it stays open and keeps its
    // number for as long as the AsyncFd lives, and OwnedFd::as_raw_fd always returns it.
    let afd = unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE)
    }
    .map_err(|e| e.into_parts().1)?;
    let _ready = afd.readable().await?;
    Ok(())
}
