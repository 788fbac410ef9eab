//! Process creation and identity: clone into new namespaces, fork, the error pipe, stdio,
//! user switching, capabilities, no_new_privs, signal dispositions and exec.

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

/// [`clone_process`] straight into the cgroup v2 directory `cgroup` (`clone3` with
/// `CLONE_INTO_CGROUP`, Linux 5.7): the child never runs a moment outside it, so it is
/// limited from its first instruction and none of its children can escape it.
///
/// `clone3` is called without a stack of its own, so (without `CLONE_VM`) the child goes
/// on like a forked child, on its copy of the caller's stack: it runs `child` and exits
/// with its result. The same single-threaded rule as [`clone_process`] applies.
pub fn clone_process_into(
    mut child: Box<dyn FnMut() -> isize + '_>,
    flags: CloneFlags,
    cgroup: std::os::fd::BorrowedFd<'_>,
) -> io::Result<Pid> {
    /// `struct clone_args` (linux/sched.h), as of `CLONE_ARGS_SIZE_VER2`.
    #[repr(C)]
    #[derive(Default)]
    struct CloneArgs {
        flags: u64,
        pidfd: u64,
        child_tid: u64,
        parent_tid: u64,
        exit_signal: u64,
        stack: u64,
        stack_size: u64,
        tls: u64,
        set_tid: u64,
        set_tid_size: u64,
        cgroup: u64,
    }
    const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
    let args = CloneArgs {
        flags: flags.bits() as u64 | CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: cgroup.as_raw_fd() as u64,
        ..CloneArgs::default()
    };
    // SAFETY: `args` is a valid, fully initialised `clone_args` of the size passed, alive
    // for the call. Without CLONE_VM the child gets a copy of the address space (stack
    // included, as with fork) in which no other thread exists (the caller is
    // single-threaded, see above), so running Rust code there is sound.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match rc {
        -1 => Err(io::Error::last_os_error()),
        0 => {
            let code = child();
            // SAFETY: the child must not return into the caller's frames (they belong to
            // the parent's logic); _exit ends it without running the parent's atexit
            // handlers or flushing buffers it shares a copy of.
            unsafe { libc::_exit(code as i32) }
        }
        pid => Ok(Pid::from_raw(pid as i32)),
    }
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

/// Replaces the process image with the program in the open file `program` (a memfd, say),
/// with argv `args` and an empty environment. Returns only on failure.
pub fn exec_fd(program: &OwnedFd, args: &[&str]) -> io::Error {
    let argv: Vec<CString> = args
        .iter()
        .map(|a| CString::new(*a).unwrap_or_default())
        .collect();
    let env: [CString; 0] = [];
    match nix::unistd::fexecve(program, &argv, &env) {
        Err(e) => errno(e),
        Ok(never) => match never {},
    }
}

/// Closes stdin, stdout and stderr, for a process that has nothing to read or say.
pub fn close_stdio() -> io::Result<()> {
    for fd in 0..=2 {
        match nix::unistd::close(fd) {
            Ok(()) | Err(nix::errno::Errno::EBADF) => {}
            Err(e) => return Err(errno(e)),
        }
    }
    Ok(())
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

// ---- Running a command in an existing container (`ucr nsexec`) ----

/// Enters the namespace behind `ns`, an open `/proc/<pid>/ns/*` file. A descriptor rather
/// than a path (as `ns::join` takes) so that the caller can open every namespace of its
/// target first: once it has joined the mount namespace, `/proc/<pid>` means something
/// else, and the pinned descriptors also keep a reused pid from mixing two processes'
/// namespaces.
pub fn join_namespace(ns: &std::fs::File, kind: CloneFlags) -> io::Result<()> {
    nix::sched::setns(ns, kind).map_err(errno)
}

/// Makes the open directory `dir` the process's root and working directory.
pub fn chroot_into(dir: &std::fs::File) -> io::Result<()> {
    nix::unistd::fchdir(dir).map_err(errno)?;
    nix::unistd::chroot(".").map_err(errno)
}

/// Which side of a [`fork`] this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forked {
    Parent { child: Pid },
    Child,
}

/// fork(2).
///
/// Must be called from a single-threaded process (the monitor, `ucr nsexec`), like
/// `clone_process`: the child is then a full copy in which no lock can be held by a
/// thread that does not exist there, so it may allocate and carry on as ordinary Rust.
/// A child that is not to return into its caller's code leaves through [`exit_now`].
pub fn fork() -> io::Result<Forked> {
    // SAFETY: the caller guarantees the process is single-threaded (see the doc comment),
    // which is the condition under which the child may run arbitrary code after fork.
    match unsafe { nix::unistd::fork() }.map_err(errno)? {
        nix::unistd::ForkResult::Parent { child } => Ok(Forked::Parent { child }),
        nix::unistd::ForkResult::Child => Ok(Forked::Child),
    }
}

/// Ends this process at once with `code` (`_exit`): buffers a forked child inherited are
/// not flushed a second time and no exit handler of the parent's runs twice.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit ends the process at once; it touches no memory of ours.
    unsafe { libc::_exit(code) }
}

/// Signals held pending (blocked) so that a single-threaded process can take them one at a
/// time with [`BlockedSignals::wait`] instead of running handlers. A child forked meanwhile
/// inherits the blocked mask, and `execve` keeps it: the child calls
/// [`BlockedSignals::restore`] before exec.
pub struct BlockedSignals {
    set: nix::sys::signal::SigSet,
    previous: nix::sys::signal::SigSet,
}

impl BlockedSignals {
    pub fn block(signals: &[nix::sys::signal::Signal]) -> io::Result<BlockedSignals> {
        use nix::sys::signal::{SigSet, SigmaskHow};
        let mut set = SigSet::empty();
        for s in signals {
            set.add(*s);
        }
        let previous = set.thread_swap_mask(SigmaskHow::SIG_BLOCK).map_err(errno)?;
        Ok(BlockedSignals { set, previous })
    }

    /// Takes the next of the blocked signals, waiting for one if none is pending.
    pub fn wait(&self) -> io::Result<nix::sys::signal::Signal> {
        self.set.wait().map_err(errno)
    }

    /// Puts back the signal mask from before [`BlockedSignals::block`].
    pub fn restore(&self) -> io::Result<()> {
        self.previous.thread_set_mask().map_err(errno)
    }
}

/// Like [`wait_exit_code`] but returns `None` at once if `pid` is still running.
pub fn try_exit_code(pid: Pid) -> io::Result<Option<i32>> {
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    match waitpid(pid, Some(WaitPidFlag::WNOHANG)).map_err(errno)? {
        WaitStatus::Exited(_, code) => Ok(Some(code)),
        WaitStatus::Signaled(_, sig, _) => Ok(Some(128 + sig as i32)),
        _ => Ok(None),
    }
}

/// Asks the kernel to SIGKILL this process when its parent dies. The setting is cleared
/// whenever the process's uid, gid or capabilities change (commit_creds), so set it again
/// after switching user.
pub fn kill_with_parent() -> io::Result<()> {
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL).map_err(errno)
}

pub fn parent_pid() -> Pid {
    nix::unistd::getppid()
}

/// Controls whether other processes of the same user may ptrace this one or open its
/// `/proc/<pid>` entries (`exe`, `fd`, `mem`). Exec sets it back for ordinary binaries.
pub fn set_dumpable(dumpable: bool) -> io::Result<()> {
    nix::sys::prctl::set_dumpable(dumpable).map_err(errno)
}

/// Gives every standard signal (1-31) its default action back, before an exec into
/// someone else's program. The Rust runtime ignores SIGPIPE before `main`, and whatever
/// started this process may have ignored others (SIGQUIT, SIGHUP under nohup); an ignored
/// signal stays ignored across `execve`, so without this the command would, say, get EPIPE
/// instead of dying when it writes to a closed pipe. (Real-time signals are left alone:
/// glibc reserves two of them and refuses to change those.)
pub fn default_signal_actions() -> io::Result<()> {
    use nix::sys::signal::{signal, SigHandler, Signal};
    for sig in Signal::iterator() {
        if matches!(sig, Signal::SIGKILL | Signal::SIGSTOP) {
            continue;
        }
        // SAFETY: installing SIG_DFL registers no handler function, so nothing can run
        // asynchronously in this process as a result of this call.
        unsafe { signal(sig, SigHandler::SigDfl) }.map_err(errno)?;
    }
    Ok(())
}

/// Whether this process may lower OOM scores (CAP_SYS_RESOURCE in its effective set).
pub fn has_sys_resource() -> bool {
    caps::has_cap(
        None,
        caps::CapSet::Effective,
        caps::Capability::CAP_SYS_RESOURCE,
    )
    .unwrap_or(false)
}
