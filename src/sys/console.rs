//! Pseudo-terminals for containers with a terminal (CRI `tty`), as runc makes them for a
//! `--console-socket`: opened by the container's process itself, after it has pivoted
//! into its root, from the container's own devpts (`/dev/ptmx -> pts/ptmx`), so the
//! terminal is `/dev/pts/N` *inside* the container and `tty` there names it. The master
//! then travels to the monitor (`sys::fdpass`), which copies between it and the log and
//! attachers and sets its size.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::Path;

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

/// A terminal's size in character cells, as TIOCSWINSZ takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WindowSize {
    pub rows: u16,
    pub cols: u16,
}

/// Opens the pty multiplexer at `ptmx` (`/dev/ptmx` inside the container) and unlocks
/// the new terminal's slave, as posix_openpt(3) and unlockpt(3) do: the master, not
/// inherited across exec and without becoming anyone's controlling terminal.
pub fn open_master(ptmx: &Path) -> io::Result<OwnedFd> {
    let master = nix::fcntl::open(
        ptmx,
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads one int through the pointer, which points at a live local
    // for the duration of the call; `master` is an open descriptor we own.
    let rc = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(master)
}

/// Opens the slave of `master` through the master itself (TIOCGPTPEER, Linux 4.13), so
/// no path is looked up: what a path names could have been swapped by then, the master's
/// own peer cannot. On an older kernel, `/dev/pts/<n>` beside the `ptmx` it came from.
/// Close-on-exec: the caller dup2s it onto stdio, which clears the flag there.
pub fn open_slave(master: BorrowedFd<'_>, ptmx: &Path) -> io::Result<OwnedFd> {
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    // SAFETY: TIOCGPTPEER takes its flags by value and returns a new descriptor, which
    // nothing else owns; `master` is borrowed open for the call.
    let fd = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTPEER, flags) };
    if fd >= 0 {
        // SAFETY: the kernel just returned this descriptor to us; nothing else owns it.
        return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
    }
    let err = io::Error::last_os_error();
    if !matches!(err.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOTTY)) {
        return Err(err);
    }
    let mut n: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes one unsigned int through the pointer, which points at a
    // live local for the duration of the call.
    let rc = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTN, &mut n) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    let dir = ptmx.parent().unwrap_or(Path::new("/dev"));
    let path = dir.join("pts").join(n.to_string());
    Ok(nix::fcntl::open(
        &path,
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?)
}

/// Makes `uid` the terminal's owner and leaves its group alone, as runc's
/// `fixStdioPermissions` does: devpts gave it the `tty` group (the mount's `gid=5`),
/// and the container's user must be able to use (and `chmod`) its own terminal.
pub fn give_to(slave: BorrowedFd<'_>, uid: u32) -> io::Result<()> {
    nix::unistd::fchown(slave, Some(nix::unistd::Uid::from_raw(uid)), None)?;
    Ok(())
}

/// Starts a new session and makes `slave` its controlling terminal (setsid, TIOCSCTTY):
/// the container's process then gets SIGHUP and job control signals from it, as a login
/// shell would. Must come before dropping privileges only in that TIOCSCTTY's "steal"
/// argument is 0, so no capability is needed; the caller is not a process group leader
/// (a freshly cloned child), as setsid requires.
pub fn become_session_leader(slave: BorrowedFd<'_>) -> io::Result<()> {
    nix::unistd::setsid()?;
    // SAFETY: TIOCSCTTY takes an int argument by value (0: do not steal the terminal
    // from another session); `slave` is borrowed open for the call.
    let rc = unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0 as libc::c_int) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sets the terminal's size (TIOCSWINSZ on the master); the kernel sends SIGWINCH to the
/// terminal's foreground process group, as a terminal emulator's resize does.
pub fn set_window_size(master: impl AsFd, size: WindowSize) -> io::Result<()> {
    let ws = libc::winsize {
        ws_row: size.rows,
        ws_col: size.cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one `struct winsize` through the pointer, which points at a
    // live, initialised local for the duration of the call.
    let rc = unsafe { libc::ioctl(master.as_fd().as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The terminal's size (TIOCGWINSZ), for tests and diagnostics.
pub fn window_size(fd: impl AsFd) -> io::Result<WindowSize> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `struct winsize` through the pointer, which points at
    // a live local for the duration of the call.
    let rc = unsafe { libc::ioctl(fd.as_fd().as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(WindowSize {
        rows: ws.ws_row,
        cols: ws.ws_col,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// The host's own devpts: no root needed to make a terminal there.
    #[test]
    fn a_terminal_pair_carries_bytes_and_its_size() {
        let ptmx = Path::new("/dev/ptmx");
        let master = match open_master(ptmx) {
            Ok(m) => m,
            Err(e) => {
                eprintln!("skipping: no /dev/ptmx here ({e})");
                return;
            }
        };
        let slave = open_slave(master.as_fd(), ptmx).expect("slave");
        set_window_size(
            &master,
            WindowSize {
                rows: 33,
                cols: 101,
            },
        )
        .expect("resize");
        assert_eq!(
            window_size(&slave).expect("size"),
            WindowSize {
                rows: 33,
                cols: 101
            }
        );
        let mut s = std::fs::File::from(slave);
        s.write_all(b"hi\n").expect("write");
        let mut m = std::fs::File::from(master);
        let mut buf = [0u8; 16];
        let n = m.read(&mut buf).expect("read");
        // The line discipline's default ONLCR turns "\n" into "\r\n".
        assert_eq!(&buf[..n], b"hi\r\n");
    }
}
