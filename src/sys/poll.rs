//! poll(2) over a set of descriptors that changes from one turn of a loop to the next
//! (the monitor's: its signals, the container's output and stdin, the attach socket and
//! each attacher). `signal::wait_readable` covers the fixed, read-only case.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// The descriptors of one wait, and what each is waited for. Rebuilt every turn (its
/// buffer kept), so it never outlives the descriptors it names: polling a number that
/// was closed meanwhile is not unsound, only wrong (POLLNVAL), and the loop does not do it.
#[derive(Debug, Default)]
pub struct PollSet {
    fds: Vec<libc::pollfd>,
}

/// What a descriptor was found ready for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ready {
    /// Data to read, or the end of it (POLLIN, POLLHUP, POLLERR: the read says which).
    pub read: bool,
    /// Room to write, or an error the write will report (POLLOUT, POLLERR, POLLHUP).
    pub write: bool,
    /// The peer hung up (POLLHUP), reported even when only writing was asked for.
    pub hangup: bool,
}

impl PollSet {
    /// Empties the set, keeping its buffer.
    pub fn clear(&mut self) {
        self.fds.clear();
    }

    /// Adds `fd` (nothing, when `None`: its slot is never ready), to be woken when it can
    /// be read (`read`) or written (`write`); returns its index for [`PollSet::ready`].
    pub fn add(&mut self, fd: Option<BorrowedFd<'_>>, read: bool, write: bool) -> usize {
        let mut events = 0;
        if read {
            events |= libc::POLLIN;
        }
        if write {
            events |= libc::POLLOUT;
        }
        self.fds.push(libc::pollfd {
            // poll(2) skips entries with a negative descriptor.
            fd: fd.map_or(-1, |fd| fd.as_raw_fd()),
            events,
            revents: 0,
        });
        self.fds.len() - 1
    }

    /// Waits until something in the set is ready or `timeout_ms` passes (`-1`: no
    /// timeout). An interrupted wait returns with nothing ready.
    pub fn wait(&mut self, timeout_ms: i32) -> io::Result<()> {
        for p in &mut self.fds {
            p.revents = 0;
        }
        // SAFETY: `fds` is a valid, exclusively borrowed array of `len` pollfd structures
        // for the duration of the call; the kernel writes only their `revents`.
        let rc = unsafe {
            libc::poll(
                self.fds.as_mut_ptr(),
                self.fds.len() as libc::nfds_t,
                timeout_ms,
            )
        };
        if rc < 0 {
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
        Ok(())
    }

    /// What the descriptor at `index` is ready for after [`PollSet::wait`].
    pub fn ready(&self, index: usize) -> Ready {
        let Some(p) = self.fds.get(index).filter(|p| p.fd >= 0) else {
            return Ready::default();
        };
        let r = p.revents;
        let trouble = libc::POLLHUP | libc::POLLERR | libc::POLLNVAL;
        Ready {
            read: p.events & libc::POLLIN != 0 && r & (libc::POLLIN | trouble) != 0,
            write: p.events & libc::POLLOUT != 0 && r & (libc::POLLOUT | trouble) != 0,
            hangup: r & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn readiness_of_a_pipe() {
        let (r, w) = crate::sys::process::cloexec_pipe().expect("pipe");
        let mut set = PollSet::default();
        let ri = set.add(Some(r.as_fd()), true, false);
        let wi = set.add(Some(w.as_fd()), false, true);
        let none = set.add(None, true, true);
        set.wait(0).expect("poll");
        assert!(!set.ready(ri).read, "nothing written yet");
        assert!(set.ready(wi).write, "an empty pipe has room");
        assert_eq!(set.ready(none), Ready::default());
        nix::unistd::write(&w, b"x").expect("write");
        set.wait(0).expect("poll");
        assert!(set.ready(ri).read);
        drop(w);
        set.clear();
        let ri = set.add(Some(r.as_fd()), false, false);
        set.wait(0).expect("poll");
        assert!(
            set.ready(ri).hangup,
            "a closed writer is a hang-up, even unasked"
        );
        assert!(!set.ready(ri).read, "reading was not asked for");
    }
}
