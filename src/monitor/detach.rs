//! Leaving the daemon: the monitor must outlive it, and must not become a zombie the
//! daemon has to reap.
//!
//! `ucr monitor` forks once. The parent waits only until the child says it has detached
//! (and written `monitor.pid`), then exits 0, so the daemon's wait for its child is short
//! and the real monitor is reparented to init. The child starts a new session (no signal
//! aimed at the daemon's process group or terminal reaches it) and points its stdio at
//! `/dev/null` (the daemon's pipes or terminal may go away with the daemon).
//!
//! All of this runs before any thread could exist: the monitor never starts one, which the
//! launcher's clone and this fork both require.

use std::fs::File;
use std::io::{Read, Write};
use std::process::ExitCode;

use super::error::MonitorError;
use crate::sys::process::{self, Forked};
use crate::sys::signal;

/// Which process we are after [`detach`].
pub(super) enum Detached {
    /// The short-lived parent: return this from `main`.
    Parent(ExitCode),
    /// The monitor proper, in its own session with stdio on `/dev/null`.
    Child(Release),
}

/// The child's handle on the waiting parent: [`Release::done`] lets it exit 0. Dropping
/// it unreleased (an early error) makes the parent exit 1.
pub(super) struct Release(File);

impl Release {
    pub(super) fn done(mut self) {
        // If the parent is gone, nobody is waiting: nothing to do about an error.
        let _ = self.0.write_all(b"1");
    }
}

pub(super) fn detach() -> Result<Detached, MonitorError> {
    let step = |step| move |source| MonitorError::Detach { step, source };
    let (read_end, write_end) = process::cloexec_pipe().map_err(step("pipe"))?;
    match process::fork().map_err(step("fork"))? {
        Forked::Parent { .. } => {
            drop(write_end);
            let mut released = [0u8; 1];
            // One byte: released. EOF: the child failed (it reported why on the sync
            // descriptor) or died.
            let code = match File::from(read_end).read(&mut released) {
                Ok(1) => ExitCode::SUCCESS,
                _ => {
                    eprintln!("ucr monitor: the detached monitor exited before starting");
                    ExitCode::FAILURE
                }
            };
            Ok(Detached::Parent(code))
        }
        Forked::Child => {
            drop(read_end);
            signal::setsid().map_err(step("setsid"))?;
            signal::stdio_to_null().map_err(step("stdio to /dev/null"))?;
            Ok(Detached::Child(Release(File::from(write_end))))
        }
    }
}
