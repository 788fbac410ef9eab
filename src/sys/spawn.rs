//! Starting helper processes: the monitor and other helpers with inherited descriptors,
//! CNI plugins that die with the daemon.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::Command;

/// The descriptor number the child sees the (first) passed descriptor as.
pub const PASSED_FD: i32 = 3;

/// Arranges for `fd` to be descriptor 3 in the child of `cmd`. Every descriptor the daemon
/// opens is close-on-exec, so nothing else leaks into the child.
pub fn pass_fd(cmd: &mut Command, fd: &OwnedFd) {
    pass_fds(cmd, &[fd]);
}

/// Arranges for `fds` to be descriptors 3, 4… (in order) in the child of `cmd`.
pub fn pass_fds(cmd: &mut Command, fds: &[&OwnedFd]) {
    let raws: Vec<i32> = fds.iter().map(|fd| fd.as_raw_fd()).collect();
    // SAFETY: the hook runs in the forked child before exec and only calls fcntl and
    // dup2, which are async-signal-safe; `raws` was allocated before the fork and is
    // only read. Each source descriptor stays open in the parent (which owns it) until
    // spawn returns, so the child's copies are valid. Sources are first moved above the
    // targets' range, so that placing one never clobbers another still to be placed.
    unsafe {
        cmd.pre_exec(move || {
            let base = PASSED_FD + raws.len() as i32;
            let mut moved = [0i32; 8];
            if raws.len() > moved.len() {
                return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
            }
            for (i, raw) in raws.iter().enumerate() {
                // Close-on-exec: these temporary copies must not reach the program.
                let fd = libc::fcntl(*raw, libc::F_DUPFD_CLOEXEC, base);
                if fd < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                moved[i] = fd;
            }
            for (i, fd) in moved[..raws.len()].iter().enumerate() {
                // dup2 clears close-on-exec on the new descriptor.
                if libc::dup2(*fd, PASSED_FD + i as i32) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

/// Makes the child of `cmd` join the cgroups whose `cgroup.procs` files are `procs`
/// before it execs (so it and everything it starts are in them from their first
/// instruction). The files are opened here, in the parent; a cgroup that cannot be
/// joined fails the spawn.
pub fn join_cgroups(cmd: &mut Command, procs: &[std::path::PathBuf]) -> std::io::Result<()> {
    let files: Vec<std::fs::File> = procs
        .iter()
        .map(|p| std::fs::OpenOptions::new().write(true).open(p))
        .collect::<Result<_, _>>()?;
    // SAFETY: the hook runs in the forked child before exec and only calls write(2) on
    // descriptors opened before the fork (kept alive by the closure, which owns them),
    // with a static buffer: async-signal-safe, no allocation.
    unsafe {
        cmd.pre_exec(move || {
            for f in &files {
                // "0": the writing process itself.
                if libc::write(f.as_raw_fd(), b"0".as_ptr().cast(), 1) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    Ok(())
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
