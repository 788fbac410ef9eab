//! The daemon's side of a container's monitor: spawn it, let the isolators place the held
//! process, release it, and learn whether it runs (`crate::handshake`), with a deadline at
//! every step, so a launch wedged on a hung mount source fails the call instead of
//! wedging it (and every retry).

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use crate::handshake::{self, Report};
use crate::isolators::ContainerContext;
use crate::monitor;
use crate::sys::pidfd::ProcessId;

/// The longest a launch may take, from spawning the monitor to the exec: kubelet's own
/// deadline for a runtime call (`--runtime-request-timeout`, 2 minutes by default).
pub const LAUNCH_DEADLINE: Duration = Duration::from_secs(120);

/// Runs the monitor for a bundle: `ucr-monitor` when it sits beside `ucr` (it is
/// smaller), else `ucr monitor`. It holds the container's process before exec while
/// `isolate` runs (the isolators' hook), then releases it. Returns the process as the
/// monitor recorded it once it has exec'd, or why it does not run (then nothing does).
pub fn launch(
    binary: &Path,
    bundle: &Path,
    isolate: impl FnOnce(ProcessId) -> Result<(), String>,
) -> Result<ProcessId, String> {
    let pipe = || crate::sys::process::cloexec_pipe().map_err(|e| format!("pipe: {e}"));
    let (sync_r, sync_w) = pipe()?;
    let (hold_r, hold_w) = pipe()?;
    let own = binary.with_file_name("ucr-monitor");
    let mut cmd = if own.is_file() {
        std::process::Command::new(own)
    } else {
        let mut cmd = std::process::Command::new(binary);
        cmd.arg("monitor");
        cmd
    };
    let (sync_fd, hold_fd) = (
        crate::sys::spawn::PASSED_FD,
        crate::sys::spawn::PASSED_FD + 1,
    );
    cmd.arg("--bundle")
        .arg(bundle)
        .arg("--sync-fd")
        .arg(sync_fd.to_string())
        .arg("--hold-fd")
        .arg(hold_fd.to_string())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    crate::sys::spawn::pass_fds(&mut cmd, &[&sync_w, &hold_r]);
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("starting monitor {}: {e}", binary.display()))?;
    drop((sync_w, hold_r));
    let mut sync = std::fs::File::from(sync_r);
    let mut hold = Some(std::fs::File::from(hold_w));
    let first = handshake::receive(&mut sync, LAUNCH_DEADLINE);
    // The monitor's first process exits as soon as the detached one runs.
    let _ = child.wait();
    let process = match first {
        Ok(Report::Held(process)) => process,
        other => return Err(abandon(bundle, None, other)),
    };
    if let Err(why) = isolate(process) {
        // Closing the hold pipe unreleased makes the monitor kill the process unrun.
        drop(hold.take());
        let _ = handshake::receive(&mut sync, LAUNCH_DEADLINE);
        return Err(why);
    }
    crate::crash::point("start:isolated");
    if let Some(mut h) = hold.take() {
        h.write_all(&[monitor::RELEASE])
            .map_err(|e| format!("releasing the container: {e}"))?;
    }
    match handshake::receive(&mut sync, LAUNCH_DEADLINE) {
        Ok(Report::Started { pid }) if pid == process.pid => {
            match monitor::recorded_container(bundle) {
                Ok(Some(p)) if p == process => Ok(p),
                other => Err(format!(
                    "the monitor reported pid {pid} but recorded {other:?} in its bundle"
                )),
            }
        }
        other => Err(abandon(bundle, Some(process), other)),
    }
}

/// After a report that is not the one expected: kills what the monitor may still be
/// doing (a launch past its deadline) and says why.
fn abandon(bundle: &Path, process: Option<ProcessId>, report: std::io::Result<Report>) -> String {
    if let Some(p) = process {
        let _ = p.signal(libc::SIGKILL);
    }
    if let Ok(Some(m)) = monitor::live_monitor(bundle) {
        if matches!(report, Err(ref e) if e.kind() == std::io::ErrorKind::TimedOut) {
            let _ = m.signal(libc::SIGKILL);
        }
    }
    match report {
        Ok(Report::Failed { message }) => message,
        Ok(other) => format!("unexpected report from the monitor: {other:?}"),
        Err(e) => format!("the monitor: {e}"),
    }
}

/// The isolators' `isolate` for a held process, as [`launch`] wants it.
pub fn isolate_with<'a>(
    isolators: &'a crate::isolators::Isolators,
    ctx: &'a ContainerContext<'a>,
) -> impl FnOnce(ProcessId) -> Result<(), String> + 'a {
    move |p| {
        isolators
            .isolate(ctx, p)
            .map_err(|e| crate::error::chain(&e))
    }
}
