//! Holding on to a process that is not our child (a detached monitor, a container's
//! first process): a pidfd names one process for good, becomes readable when it exits
//! (Linux 5.3+), and takes signals for it alone.
//!
//! A bare pid does not: once its process has been reaped, the kernel hands the number to
//! the next process, and a runtime that signals or `setns`es by a recorded pid may reach
//! that stranger (the host's own processes included). So ucr records a [`ProcessId`], the
//! pid with the process's start time (`/proc/<pid>/stat` field 22, in clock ticks since
//! boot), and checks both before every signal, liveness decision or namespace entry.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

/// One process, for as long as the system runs: its pid and its start time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProcessId {
    pub pid: i32,
    /// `/proc/<pid>/stat` field 22.
    pub start_time: u64,
}

/// What `/proc/<pid>/stat` says of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// `R`, `S`, `Z`…
    pub state: char,
    pub ppid: i32,
    pub start_time: u64,
}

impl ProcessId {
    /// The process that has `pid` now; `NotFound` when there is none.
    pub fn of(pid: i32) -> io::Result<ProcessId> {
        Ok(ProcessId {
            pid,
            start_time: stat(pid)?.start_time,
        })
    }

    /// Whether this very process still runs: its pid names a process with its start time
    /// that is not a zombie (a zombie has ended; only its parent has yet to notice).
    pub fn is_running(&self) -> bool {
        matches!(stat(self.pid), Ok(s) if s.start_time == self.start_time && s.state != 'Z')
    }

    /// A pidfd for this very process, or `None` when it has ended. The check comes after
    /// the open: a pid cannot be reused while its process lives, so a match then means
    /// the descriptor holds the process recorded, whatever happens next.
    pub fn open(&self) -> io::Result<Option<OwnedFd>> {
        if self.pid <= 0 {
            return Ok(None);
        }
        let fd = match open(self.pid) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(self.is_running().then_some(fd))
    }

    /// Sends `sig` to this very process; `Ok(false)` when it has ended.
    pub fn signal(&self, sig: i32) -> io::Result<bool> {
        match self.open()? {
            Some(fd) => send_signal(&fd, sig).map(|()| true).or_else(|e| {
                // It ended between the check and the signal.
                if e.raw_os_error() == Some(libc::ESRCH) {
                    Ok(false)
                } else {
                    Err(e)
                }
            }),
            None => Ok(false),
        }
    }
}

/// Reads `/proc/<pid>/stat`.
pub fn stat(pid: i32) -> io::Result<Stat> {
    if pid <= 0 {
        return Err(io::Error::from(io::ErrorKind::NotFound));
    }
    let text = std::fs::read(format!("/proc/{pid}/stat"))?;
    parse_stat(&text).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("unexpected /proc/{pid}/stat"),
        )
    })
}

/// Parses a `/proc/<pid>/stat` line. The command name (field 2) is in parentheses and may
/// hold spaces and parentheses itself, so the fields are counted after the *last* `)`.
pub fn parse_stat(text: &[u8]) -> Option<Stat> {
    let close = text.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(&text[close + 1..]).ok()?;
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    // fields[0] is field 3 (state), so field N is fields[N - 3].
    Some(Stat {
        state: fields.first()?.chars().next()?,
        ppid: fields.get(1)?.parse().ok()?,
        start_time: fields.get(19)?.parse().ok()?,
    })
}

/// Sends `sig` to the process behind the pidfd `fd`.
pub fn send_signal(fd: &OwnedFd, sig: i32) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: pidfd_send_signal takes a descriptor, a signal number, a siginfo pointer
    // (null: the kernel fills in one as kill(2) would) and flags; no memory of ours is
    // read or written. An invalid signal number is EINVAL.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_last_parenthesis() {
        let line = b"4242 (a (weird) name) S 17 4242 4242 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 987654 1000 10\n";
        assert_eq!(
            parse_stat(line),
            Some(Stat {
                state: 'S',
                ppid: 17,
                start_time: 987654
            })
        );
        assert_eq!(parse_stat(b"1 (x) S 0"), None);
        assert_eq!(parse_stat(b"garbage"), None);
    }

    #[test]
    fn a_process_is_known_by_its_start_time_not_its_pid() {
        let mut child = std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .expect("spawn sleep");
        let me = ProcessId::of(child.id() as i32).expect("stat");
        assert!(me.is_running());
        assert!(me.open().expect("pidfd").is_some());
        // The same pid with another start time: what a reused pid looks like.
        let other = ProcessId {
            start_time: me.start_time + 1,
            ..me
        };
        assert!(!other.is_running());
        assert!(other.open().expect("pidfd").is_none());
        assert!(!other.signal(libc::SIGKILL).expect("not sent"));
        assert!(
            child.try_wait().expect("try_wait").is_none(),
            "must not be killed"
        );
        assert!(me.signal(libc::SIGKILL).expect("sent"));
        child.wait().expect("wait");
        assert!(!me.is_running());
        assert!(!me.signal(libc::SIGKILL).expect("gone"));
    }
}
