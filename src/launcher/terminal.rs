//! The container's terminal (CRI `tty`), made the way runc makes it for a console
//! socket: by the container's first process once it is inside its root, from the
//! container's own devpts, so the terminal is one of the container's `/dev/pts/N`. The
//! master goes to the monitor over `socket` (SCM_RIGHTS); the process keeps the slave as
//! its stdin, stdout, stderr and controlling terminal.

use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::Path;

use super::setup::{step, SetupError};
use crate::sys::{console, fdpass, process};

/// The container's pty multiplexer: its own devpts's, not the `/dev/ptmx` link to it
/// (one lookup fewer, and the same node: `rootfs` mounts devpts with `ptmxmode=0666`).
const PTMX: &str = "/dev/pts/ptmx";

/// Makes the terminal, hands its master over `socket`, and installs the slave as stdio
/// and controlling terminal, owned by `uid` (its group stays devpts's `tty`, as with
/// runc). Runs after the pivot and before the user switch (the chown needs CAP_CHOWN).
pub(super) fn take(socket: RawFd, uid: u32) -> Result<(), SetupError> {
    let ptmx = Path::new(PTMX);
    let master = console::open_master(ptmx).map_err(step("open the terminal", PTMX))?;
    let slave = console::open_slave(master.as_fd(), ptmx)
        .map_err(step("open the terminal's slave", PTMX))?;
    console::give_to(slave.as_fd(), uid).map_err(step("chown the terminal", uid))?;
    fdpass::send_fd(socket, master.as_fd())
        .map_err(step("hand the terminal to the monitor", ""))?;
    // Ours is closed; the monitor holds the master now.
    drop(master);
    console::become_session_leader(slave.as_fd())
        .map_err(step("make the terminal the controlling terminal", ""))?;
    let fd = slave.as_raw_fd();
    process::install_stdio(fd, fd, fd).map_err(step("install the terminal as stdio", ""))?;
    if fd <= 2 {
        // It is one of the three now: closing it would take that one away.
        let _ = std::os::fd::IntoRawFd::into_raw_fd(slave);
    }
    Ok(())
}
