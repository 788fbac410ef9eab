//! Process creation and identity: clone into new namespaces, the error pipe, stdio,
//! user switching, capabilities, no_new_privs and exec.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use nix::sched::CloneFlags;
use nix::unistd::{Gid, Pid, Uid};

fn errno(e: nix::errno::Errno) -> io::Error {
    io::Error::from(e)
}

/// Starts `child` as a new process in the namespaces `flags` creates (`CLONE_NEWPID` makes
/// it PID 1 of a new PID namespace). Returns its pid; SIGCHLD tells the parent of its end.
///
/// Must be called from a single-threaded process (the launcher runs in `ucr monitor` /
/// `ucr launch`, which start no threads before this): without `CLONE_VM` the child gets a
/// copy of the address space in which no other thread can be holding a lock, so the
/// child may allocate and use std freely.
pub fn clone_process(child: Box<dyn FnMut() -> isize + '_>, flags: CloneFlags) -> io::Result<Pid> {
    let mut stack = vec![0u8; 1 << 20];
    // SAFETY: the callback runs in a new process with its own copy of memory (no
    // CLONE_VM), so it cannot race with the parent; the stack buffer is valid for the
    // duration of the call and the child's copy of it lives until it execs or exits. The
    // caller guarantees single-threadedness (see the doc comment) so no lock is held by
    // a thread that does not exist in the child.
    let pid = unsafe { nix::sched::clone(child, &mut stack, flags, Some(libc::SIGCHLD)) };
    pid.map_err(errno)
}

/// A pipe whose ends close on exec: the child reports a setup failure through it, and a
/// successful exec closes it, which the parent reads as "started".
pub fn cloexec_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(errno)
}

/// Installs `fds` as the process's stdin, stdout and stderr.
pub fn install_stdio(stdin: RawFd, stdout: RawFd, stderr: RawFd) -> io::Result<()> {
    for (from, to) in [(stdin, 0), (stdout, 1), (stderr, 2)] {
        if from != to {
            // SAFETY: dup2 only manipulates the descriptor table; `from` is a descriptor
            // the caller owns and `to` is one of the three standard descriptors, which
            // this process (about to exec) is meant to replace.
            let rc = unsafe { libc::dup2(from, to) };
            if rc < 0 {
                return Err(io::Error::last_os_error());
            }
        }
    }
    Ok(())
}

pub fn set_no_new_privs() -> io::Result<()> {
    nix::sys::prctl::set_no_new_privs().map_err(errno)
}

/// Becomes `uid:gid` with `groups`, keeping the permitted capabilities across the uid
/// change (they are narrowed to the container's set right after).
pub fn switch_user(uid: u32, gid: u32, groups: &[u32]) -> io::Result<()> {
    let groups: Vec<Gid> = groups.iter().map(|g| Gid::from_raw(*g)).collect();
    nix::unistd::setgroups(&groups).map_err(errno)?;
    nix::sys::prctl::set_keepcaps(true).map_err(errno)?;
    nix::unistd::setresgid(Gid::from_raw(gid), Gid::from_raw(gid), Gid::from_raw(gid))
        .map_err(errno)?;
    nix::unistd::setresuid(Uid::from_raw(uid), Uid::from_raw(uid), Uid::from_raw(uid))
        .map_err(errno)?;
    nix::sys::prctl::set_keepcaps(false).map_err(errno)
}

fn parse_caps(names: &[String]) -> io::Result<caps::CapsHashSet> {
    let mut out = caps::CapsHashSet::new();
    for name in names {
        let cap: caps::Capability = format!(
            "CAP_{}",
            name.trim_start_matches("CAP_").to_ascii_uppercase()
        )
        .parse()
        .map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("unknown capability {name:?}"),
            )
        })?;
        out.insert(cap);
    }
    Ok(out)
}

fn caps_err(e: caps::errors::CapsError) -> io::Error {
    io::Error::other(e.to_string())
}

/// Removes every capability not in `keep` (names without `CAP_`) from the bounding set.
/// Needs CAP_SETPCAP, so it runs before the switch to the container's user.
pub fn limit_bounding_set(keep: &[String]) -> io::Result<()> {
    use caps::CapSet;
    let wanted = parse_caps(keep)?;
    for cap in caps::all() {
        if !wanted.contains(&cap) && caps::has_cap(None, CapSet::Bounding, cap).unwrap_or(false) {
            caps::drop(None, CapSet::Bounding, cap).map_err(caps_err)?;
        }
    }
    Ok(())
}

/// Makes the effective, permitted and inheritable sets exactly `keep` (after the user
/// switch, which kept the permitted set thanks to PR_SET_KEEPCAPS).
pub fn set_capabilities(keep: &[String]) -> io::Result<()> {
    use caps::CapSet;
    let wanted = parse_caps(keep)?;
    // Effective may only rise within permitted, and permitted may only shrink: order
    // matters.
    caps::set(None, CapSet::Inheritable, &wanted).map_err(caps_err)?;
    caps::set(None, CapSet::Effective, &wanted).map_err(caps_err)?;
    caps::set(None, CapSet::Permitted, &wanted).map_err(caps_err)
}

/// Writes `/proc/self/oom_score_adj`. Lowering it needs CAP_SYS_RESOURCE, which some hosts
/// withhold (containerd's `restrict_oom_score_adj`): the caller decides what a failure means.
pub fn set_oom_score_adj(value: i32) -> io::Result<()> {
    std::fs::write("/proc/self/oom_score_adj", value.to_string())
}

/// Replaces the process image. Returns only on failure.
pub fn exec(path: &CString, argv: &[CString], env: &[CString]) -> io::Error {
    match nix::unistd::execve(path, argv, env) {
        Err(e) => errno(e),
        Ok(never) => match never {},
    }
}

/// Waits for `pid` and returns its wait status as the shell reports it: the exit code,
/// or 128 + the signal number.
pub fn wait_exit_code(pid: Pid) -> io::Result<i32> {
    use nix::sys::wait::{waitpid, WaitStatus};
    loop {
        match waitpid(pid, None).map_err(errno)? {
            WaitStatus::Exited(_, code) => return Ok(code),
            WaitStatus::Signaled(_, sig, _) => return Ok(128 + sig as i32),
            _ => continue,
        }
    }
}

pub fn raw(fd: &OwnedFd) -> RawFd {
    fd.as_raw_fd()
}
