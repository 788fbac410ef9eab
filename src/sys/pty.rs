//! Pseudo-terminals for containers: allocated from the devpts of whichever root the
//! caller is in (a container's own, once `ucr exec` or the launcher has entered it), so
//! the terminal's name (`/dev/pts/N`) means something inside the container.

use std::io;
use std::os::fd::{AsFd, OwnedFd};

use rustix::pty::OpenptFlags;

/// A new pty pair from `/dev/ptmx` (the current root's): the master for whoever copies
/// the session, and the slave, already opened through the master (TIOCGPTPEER, so no
/// `/dev/pts/N` path is looked up, which a container could have replaced). Both are
/// close-on-exec and neither becomes our controlling terminal.
pub fn open() -> io::Result<(OwnedFd, OwnedFd)> {
    let flags = OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC;
    let master = rustix::pty::openpt(flags)?;
    rustix::pty::unlockpt(&master)?;
    let slave = rustix::pty::ioctl_tiocgptpeer(&master, flags)?;
    Ok((master, slave))
}

/// Gives the terminal to the process's user. The group stays the one devpts set (the
/// container's `tty`, gid 5, from the mount's `gid=` option), as it is for ttys
/// everywhere.
pub fn give_to(slave: impl AsFd, uid: u32) -> io::Result<()> {
    let uid = rustix::fs::Uid::from_raw(uid);
    rustix::fs::fchown(slave, Some(uid), None)?;
    Ok(())
}

/// Makes `slave` the calling process's controlling terminal, in a new session of its
/// own (a process group leader cannot start one: call it in a freshly forked child).
pub fn make_controlling(slave: impl AsFd) -> io::Result<()> {
    rustix::process::setsid()?;
    rustix::process::ioctl_tiocsctty(slave)?;
    Ok(())
}

/// TIOCSWINSZ: the size the terminal reports (`stty size`); its foreground process
/// group gets SIGWINCH.
pub fn set_size(master: impl AsFd, width: u16, height: u16) -> io::Result<()> {
    let size = rustix::termios::Winsize {
        ws_row: height,
        ws_col: width,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    rustix::termios::tcsetwinsize(master, size)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn a_pair_carries_bytes_and_its_size() {
        let (master, slave) = open().expect("open a pty");
        set_size(&master, 132, 43).expect("resize");
        let size = rustix::termios::tcgetwinsize(&slave).expect("size");
        assert_eq!((size.ws_col, size.ws_row), (132, 43));
        let mut s = std::fs::File::from(slave);
        s.write_all(b"hi\n").expect("write slave");
        let mut buf = [0u8; 16];
        let n = std::fs::File::from(master).read(&mut buf).expect("read");
        // The line discipline turns \n into \r\n (ONLCR), as a terminal's reader sees it.
        assert_eq!(&buf[..n], b"hi\r\n");
    }
}
