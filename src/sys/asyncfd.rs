//! Registering owned descriptors with tokio's reactor (ptys, SEQPACKET sockets: what
//! tokio has no type for).

use std::io;
use std::os::fd::OwnedFd;

use tokio::io::unix::AsyncFd;

/// Watches `fd` (which should be non-blocking) for readiness. Must run inside a tokio
/// runtime.
pub fn register(fd: OwnedFd) -> io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: tokio requires the descriptor to stay open and name the same open file for
    // the AsyncFd's whole life. An OwnedFd moved into it is closed only when the AsyncFd
    // drops it, and its `as_raw_fd` never changes.
    let registered = unsafe { AsyncFd::register(fd) };
    registered.map_err(io::Error::from)
}
