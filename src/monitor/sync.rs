//! The monitor's ends of its pipes to the daemon: the sync descriptor, on which it reports
//! (`handshake`: `held`, then `ok` or `error`), and, when the daemon asks it to hold the
//! container before exec, the hold descriptor, on which the daemon releases it.

use std::fs::File;
use std::io::Read;

use super::error::MonitorError;
use crate::handshake::{self, Report};
use crate::sys::signal::take_inherited_fd;

/// The monitor's end of the sync descriptor, if it was given one.
#[derive(Debug)]
pub(super) struct SyncFd(Option<File>);

impl SyncFd {
    pub(super) fn none() -> Self {
        Self(None)
    }

    pub(super) fn take(fd: Option<i32>) -> Result<Self, MonitorError> {
        take(fd).map(Self)
    }

    /// Writes `report`, keeping the descriptor open for the final one.
    pub(super) fn send(&mut self, report: &Report) {
        if let Some(file) = self.0.as_mut() {
            let _ = handshake::send(file, report);
        }
    }

    /// Writes the final `report` and closes the descriptor; later reports are dropped. A
    /// write error is ignored: the daemon that would read it is gone, and the container's
    /// fate no longer depends on it.
    pub(super) fn report(&mut self, report: &Report) {
        if let Some(mut file) = self.0.take() {
            let _ = handshake::send(&mut file, report);
        }
    }

    /// Closes this process's copy without reporting (the detaching parent's).
    pub(super) fn close(&mut self) {
        self.0 = None;
    }
}

/// The monitor's end of the hold descriptor: the daemon writes one byte to release the
/// held container, or closes it (it failed, or died) to have it killed.
#[derive(Debug)]
pub(super) struct HoldFd(Option<File>);

impl HoldFd {
    pub(super) fn take(fd: Option<i32>) -> Result<Self, MonitorError> {
        take(fd).map(Self)
    }

    pub(super) fn is_set(&self) -> bool {
        self.0.is_some()
    }

    /// Waits for the daemon's word: `Ok` to release the container.
    pub(super) fn wait_release(&mut self) -> Result<(), String> {
        let Some(file) = self.0.as_mut() else {
            return Ok(());
        };
        let mut byte = [0u8; 1];
        match file.read(&mut byte) {
            Ok(1) if byte[0] == RELEASE => Ok(()),
            Ok(_) => Err("the daemon did not release the container".into()),
            Err(e) => Err(format!(
                "waiting for the daemon to release the container: {e}"
            )),
        }
    }

    pub(super) fn close(&mut self) {
        self.0 = None;
    }
}

/// The byte that releases a held container.
pub const RELEASE: u8 = b'g';

fn take(fd: Option<i32>) -> Result<Option<File>, MonitorError> {
    let Some(fd) = fd else {
        return Ok(None);
    };
    let owned = take_inherited_fd(fd).map_err(|source| MonitorError::SyncFd { fd, source })?;
    Ok(Some(File::from(owned)))
}
