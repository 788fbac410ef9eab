//! Starting helper processes (the monitor) with one extra inherited descriptor.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::Command;

/// The descriptor number the child sees the passed descriptor as.
pub const PASSED_FD: i32 = 3;

/// Arranges for `fd` to be descriptor 3 in the child of `cmd`. Every descriptor the daemon
/// opens is close-on-exec, so nothing else leaks into the child.
pub fn pass_fd(cmd: &mut Command, fd: &OwnedFd) {
    let raw = fd.as_raw_fd();
    // SAFETY: the hook runs in the forked child before exec and only calls dup2/fcntl,
    // which are async-signal-safe; `raw` stays open in the parent (which owns `fd`) until
    // after spawn returns, so the child's copy is valid.
    unsafe {
        cmd.pre_exec(move || {
            if raw == PASSED_FD {
                let flags = libc::fcntl(raw, libc::F_GETFD);
                if flags < 0 || libc::fcntl(raw, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            } else if libc::dup2(raw, PASSED_FD) < 0 {
                // dup2 clears close-on-exec on the new descriptor.
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}
