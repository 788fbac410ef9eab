//! The client's own terminal, for `ucr exec -it`: raw mode while a remote terminal owns
//! the keyboard (every key goes to the container, Ctrl-C included, as `docker exec -it`
//! and `kubectl exec -it` do), restored however the session ends.

use std::io;
use std::os::fd::{AsFd, OwnedFd};

use rustix::termios::{tcgetattr, tcsetattr, OptionalActions, Termios};

/// Puts a terminal in raw mode until dropped, then restores what it was.
pub struct RawMode {
    fd: OwnedFd,
    saved: Termios,
}

impl RawMode {
    pub fn enter(terminal: impl AsFd) -> io::Result<RawMode> {
        let fd = terminal.as_fd().try_clone_to_owned()?;
        let saved = tcgetattr(&fd)?;
        let mut raw = saved.clone();
        raw.make_raw();
        tcsetattr(&fd, OptionalActions::Now, &raw)?;
        Ok(RawMode { fd, saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // Drain: output still queued would otherwise be written after the restore.
        let _ = tcsetattr(&self.fd, OptionalActions::Drain, &self.saved);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::console::{open_master, open_slave};
    use rustix::termios::LocalModes;
    use std::path::Path;

    #[test]
    fn raw_mode_is_entered_and_undone() {
        let ptmx = Path::new("/dev/ptmx");
        let Ok(master) = open_master(ptmx) else {
            eprintln!("skipping: no /dev/ptmx here");
            return;
        };
        let slave = open_slave(master.as_fd(), ptmx).expect("slave");
        let cooked = tcgetattr(&slave).expect("attrs");
        assert!(cooked.local_modes.contains(LocalModes::ICANON));
        {
            let _raw = RawMode::enter(&slave).expect("raw");
            let now = tcgetattr(&slave).expect("attrs");
            assert!(!now.local_modes.contains(LocalModes::ICANON));
            assert!(!now.local_modes.contains(LocalModes::ECHO));
        }
        let back = tcgetattr(&slave).expect("attrs");
        assert!(back.local_modes.contains(LocalModes::ICANON));
    }
}
