//! Starting helper processes: the monitor with one extra inherited descriptor, CNI
//! plugins that die with the daemon.

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

/// Makes the child of `cmd` die (SIGKILL) with the process that spawns it: a CNI plugin
/// still running when the daemon is killed must not go on changing the node behind the
/// restarted daemon's back (it DELs what the plugin's ADD began). The signal fires when
/// the spawning *thread* exits; spawn from an async task, whose runtime worker threads
/// live as long as the daemon.
pub fn die_with_spawner(cmd: &mut tokio::process::Command) {
    // SAFETY: the hook runs in the forked child before exec and only calls prctl and
    // getppid, which are async-signal-safe; it touches no memory shared with the parent.
    let parent = unsafe { libc::getpid() };
    // SAFETY: as above.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The spawner may have died before prctl: then nothing would ever fire.
            if libc::getppid() != parent {
                return Err(std::io::Error::other("the daemon died while spawning"));
            }
            Ok(())
        });
    }
}
