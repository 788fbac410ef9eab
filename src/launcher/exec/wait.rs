//! The parent's side once the command runs: pass on the signals meant for it, and wait.

use nix::sys::signal::Signal;
use nix::unistd::Pid;

use super::ExecError;
use crate::sys::kill;
use crate::sys::process::{self, BlockedSignals};

/// Signals `ucr nsexec` passes on to the command rather than dying of: the daemon (or a
/// user at a terminal) stopping `ucr nsexec` means stopping the command. SIGKILL cannot be
/// caught; the command's parent-death signal covers it.
pub const FORWARDED: [Signal; 4] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
];

/// The daemon's "time is up" for an ExecSync: `ucr nsexec` SIGKILLs the command and reaps
/// it before exiting. Killing `ucr nsexec` itself would orphan the command into the
/// container's PID namespace, whose init may never reap it (a zombie that `pgrep` still
/// finds, as critest checks).
pub const KILL_COMMAND: Signal = Signal::SIGALRM;

/// Everything [`wait_forwarding`] takes from `BlockedSignals::wait`.
pub fn blocked() -> Vec<Signal> {
    let mut all = vec![Signal::SIGCHLD, KILL_COMMAND];
    all.extend(FORWARDED);
    all
}

/// Waits for `child` to end, forwarding each of [`FORWARDED`] to it meanwhile, and returns
/// its exit code (128 + signal when killed). `signals` must hold [`blocked`] since before
/// the fork, so that nothing sent in between is lost or kills this process instead.
pub fn wait_forwarding(child: Pid, signals: &BlockedSignals) -> Result<i32, ExecError> {
    let wait_err = |source| ExecError::Wait {
        pid: child.as_raw(),
        source,
    };
    loop {
        // SIGCHLD also comes for stops and continues, and several may merge into one:
        // ask without blocking after each.
        if let Some(code) = process::try_exit_code(child).map_err(wait_err)? {
            return Ok(code);
        }
        let signal = signals.wait().map_err(wait_err)?;
        if signal == KILL_COMMAND {
            kill::signal(child.as_raw(), libc::SIGKILL);
        } else if FORWARDED.contains(&signal) {
            // ESRCH: it ended meanwhile; the next round collects it.
            kill::signal(child.as_raw(), signal as i32);
        }
    }
}
