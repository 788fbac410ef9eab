//! What the per-container monitor needs from the kernel to run as a small, detached,
//! single-threaded event loop: setsid to leave the daemon (after `process::fork`),
//! descriptor hygiene, signals turned into a readable descriptor (signalfd), poll, and
//! reaping children.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

fn errno(e: Errno) -> io::Error {
    io::Error::from(e)
}

/// Starts a new session (and process group) led by this process, without a controlling
/// terminal: signals sent to the daemon's group or terminal no longer reach it.
pub fn setsid() -> io::Result<()> {
    nix::unistd::setsid().map(drop).map_err(errno)
}

/// Points stdin, stdout and stderr at `/dev/null`.
pub fn stdio_to_null() -> io::Result<()> {
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?;
    nix::unistd::dup2_stdin(&null).map_err(errno)?;
    nix::unistd::dup2_stdout(&null).map_err(errno)?;
    nix::unistd::dup2_stderr(&null).map_err(errno)
}

/// Takes ownership of a descriptor inherited by number (`--sync-fd N`), marked
/// close-on-exec so it never reaches the container. A standard descriptor (0–2) is
/// duplicated above 2 instead, so that pointing stdio at `/dev/null` later keeps it.
pub fn take_inherited_fd(fd: RawFd) -> io::Result<OwnedFd> {
    if fd < 0 {
        return Err(Errno::EBADF.into());
    }
    // SAFETY: the descriptor is only borrowed for the duration of these fcntl calls, and
    // F_GETFD fails with EBADF (before anything else uses it) when it is not open.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    fcntl(borrowed, FcntlArg::F_GETFD).map_err(errno)?;
    if fd <= 2 {
        let dup = fcntl(borrowed, FcntlArg::F_DUPFD_CLOEXEC(3)).map_err(errno)?;
        // SAFETY: F_DUPFD_CLOEXEC just returned this new descriptor; nothing else owns it.
        return Ok(unsafe { OwnedFd::from_raw_fd(dup) });
    }
    fcntl(borrowed, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).map_err(errno)?;
    // SAFETY: the descriptor is open (checked above) and was handed to this process by
    // number on its command line; no other part of the process opened or owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Marks every open descriptor from 3 up close-on-exec, so nothing the daemon leaked to
/// us (a socket, another container's pipe) is inherited by the container.
pub fn cloexec_above_stdio() -> io::Result<()> {
    for entry in std::fs::read_dir("/proc/self/fd")? {
        let Some(fd) = entry?
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<RawFd>().ok())
        else {
            continue;
        };
        if fd > 2 {
            // SAFETY: borrowed only for this fcntl; a descriptor listed a moment ago
            // that has since closed (read_dir's own) just fails with EBADF, ignored.
            let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
            let _ = fcntl(borrowed, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC));
        }
    }
    Ok(())
}

/// Makes reads on `fd` return `WouldBlock` instead of waiting.
pub fn set_nonblocking(fd: impl AsFd) -> io::Result<()> {
    let flags = fcntl(&fd, FcntlArg::F_GETFL).map_err(errno)?;
    let flags = OFlag::from_bits_retain(flags) | OFlag::O_NONBLOCK;
    fcntl(&fd, FcntlArg::F_SETFL(flags))
        .map(drop)
        .map_err(errno)
}

/// Signals blocked for normal delivery and read, one at a time, from a descriptor that
/// [`wait_readable`] can watch alongside the container's pipes.
#[derive(Debug)]
pub struct SignalQueue {
    fd: SignalFd,
}

impl SignalQueue {
    /// Blocks `signals` (this process has a single thread, so the thread mask is the
    /// process's) and opens a non-blocking, close-on-exec signalfd for them.
    pub fn block(signals: &[Signal]) -> io::Result<Self> {
        let mut set = SigSet::empty();
        for s in signals {
            set.add(*s);
        }
        set.thread_block().map_err(errno)?;
        let fd = SignalFd::with_flags(&set, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
            .map_err(errno)?;
        Ok(Self { fd })
    }

    /// The next pending signal, or `None` when there is none right now.
    pub fn next(&self) -> io::Result<Option<Signal>> {
        loop {
            match self.fd.read_signal() {
                Ok(None) => return Ok(None),
                // A signal number outside nix's list cannot be one we blocked: skip it.
                Ok(Some(info)) => match Signal::try_from(info.ssi_signo as i32) {
                    Ok(sig) => return Ok(Some(sig)),
                    Err(_) => continue,
                },
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(errno(e)),
            }
        }
    }
}

impl AsFd for SignalQueue {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Waits until one of `fds` is readable, at end of file or in error, or `timeout_ms`
/// passes (`-1`: no timeout). Returns which are ready; `None` entries (closed streams)
/// are not watched and never ready. An interrupted wait reports nothing ready.
pub fn wait_readable<const N: usize>(
    fds: [Option<BorrowedFd<'_>>; N],
    timeout_ms: i32,
) -> io::Result<[bool; N]> {
    let mut polled = fds.map(|fd| libc::pollfd {
        // poll(2) skips entries with a negative descriptor.
        fd: fd.map_or(-1, |fd| fd.as_raw_fd()),
        events: libc::POLLIN,
        revents: 0,
    });
    // SAFETY: `polled` is a valid, exclusively borrowed array of `N` pollfd structures
    // for the duration of the call, and every non-negative descriptor in it is borrowed
    // from a live owner for at least as long (the `BorrowedFd` lifetimes).
    let rc = unsafe { libc::poll(polled.as_mut_ptr(), N as libc::nfds_t, timeout_ms) };
    if rc < 0 {
        let err = io::Error::last_os_error();
        if err.kind() == io::ErrorKind::Interrupted {
            return Ok([false; N]);
        }
        return Err(err);
    }
    // POLLHUP and POLLERR come without POLLIN at end of file or on error; the read that
    // follows sees which.
    let ready = libc::POLLIN | libc::POLLHUP | libc::POLLERR | libc::POLLNVAL;
    Ok(polled.map(|p| p.fd >= 0 && p.revents & ready != 0))
}

/// How a child ended, as wait(2) reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildExit {
    Exited(i32),
    Signaled(i32),
}

/// Reaps, without blocking, every child that has ended, and returns how `pid` ended if
/// it was among them. Other children are reaped too so none stays a zombie.
pub fn reap_children(pid: Pid) -> io::Result<Option<ChildExit>> {
    let mut found = None;
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return Ok(found),
            Ok(WaitStatus::Exited(p, code)) if p == pid => found = Some(ChildExit::Exited(code)),
            Ok(WaitStatus::Signaled(p, sig, _)) if p == pid => {
                found = Some(ChildExit::Signaled(sig as i32))
            }
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(e) => return Err(errno(e)),
        }
    }
}

/// Sets SIGCHLD to SIG_IGN, so the kernel reaps this process's children (inherited
/// orphans included) the moment they exit: an init that never has to call wait.
pub fn autoreap_children() -> io::Result<()> {
    // SAFETY: installing SIG_IGN runs no handler code, so nothing about it can be unsound.
    unsafe { nix::sys::signal::signal(Signal::SIGCHLD, nix::sys::signal::SigHandler::SigIgn) }
        .map(|_| ())
        .map_err(io::Error::from)
}

/// Sleeps until a signal arrives, forever if none does.
pub fn pause_forever() -> ! {
    loop {
        nix::unistd::pause();
    }
}
