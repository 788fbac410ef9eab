//! The pod init: PID 1 of a pod's shared PID namespace (CRI `NamespaceMode POD`, a pod
//! with `shareProcessNamespace`). A PID namespace, unlike a network or IPC one, cannot be
//! held by a bind mount alone: once its first process exits, no process can enter it
//! again. So a pod that shares one gets this tiny process instead of a pause container:
//! `ucr pod-init` re-executed, which does nothing but sit there and let the kernel reap
//! the orphans reparented to it.
//!
//! # Contract with the daemon
//! 1. The daemon runs `ucr pod-init --dir <pod dir> --sync-fd 3` (descriptor 3 the write
//!    end of a pipe, see `sys::spawn::pass_fd`) and waits for that process.
//! 2. It starts a new session, unshares its PID namespace for children and forks: the
//!    child is PID 1 there. The parent writes the child's host pid to `<dir>/init.pid`
//!    (atomically), reports `ok <pid>` on the pipe and exits; the init is reparented to
//!    the host's init and outlives the daemon, like a monitor.
//! 3. Containers of the pod enter the namespace through `/proc/<pid>/ns/pid` (the daemon
//!    pins it under the pod's `ns/` directory).
//! 4. [`stop`] kills it with SIGKILL (the only signal an init takes from outside its
//!    namespace without a handler); the kernel then kills every process left in the
//!    namespace. `init.pid` is written before the daemon hears of the init, so a daemon
//!    killed at any point leaves a file that [`stop`] can act on.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use nix::sched::CloneFlags;

use crate::sys::process::{self, Forked};
use crate::sys::{kill, ns, signal, spawn};

/// The file under the pod directory holding the init's host pid.
pub const PID_FILE: &str = "init.pid";

/// The subcommand name; also how [`stop`] recognises the process behind a pid.
const SUBCOMMAND: &str = "pod-init";

/// Starts the init of the pod whose run directory is `dir`; returns its host pid once it
/// runs and `init.pid` is written. Blocking (spawns and waits for a process).
pub fn start(binary: &Path, dir: &Path) -> io::Result<i32> {
    let (read_end, write_end) = process::cloexec_pipe()?;
    let mut cmd = std::process::Command::new(binary);
    cmd.arg(SUBCOMMAND)
        .arg("--dir")
        .arg(dir)
        .arg("--sync-fd")
        .arg(spawn::PASSED_FD.to_string())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    spawn::pass_fd(&mut cmd, &write_end);
    let mut child = cmd.spawn()?;
    drop(write_end);
    let report = std::io::read_to_string(std::fs::File::from(read_end)).unwrap_or_default();
    let _ = child.wait();
    let report = report.trim();
    match report.strip_prefix("ok ").map(str::parse::<i32>) {
        Some(Ok(pid)) if pid > 0 => Ok(pid),
        _ => Err(io::Error::other(format!(
            "pod init did not start: {}",
            report.strip_prefix("error ").unwrap_or(report)
        ))),
    }
}

/// Kills the pod's init, if one runs (and is ours: the pid file may be stale and the pid
/// reused), and removes its pid file. Safe to repeat.
pub fn stop(dir: &Path) -> io::Result<()> {
    let file = dir.join(PID_FILE);
    let pid = match std::fs::read_to_string(&file) {
        Ok(text) => text.trim().parse::<i32>().ok(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if let Some(pid) = pid.filter(|p| *p > 0) {
        if is_init_of(pid, dir) {
            kill::signal(pid, libc::SIGKILL);
        }
    }
    match std::fs::remove_file(&file) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Whether `pid` is a live `ucr pod-init --dir <dir>` (its command line says so).
fn is_init_of(pid: i32, dir: &Path) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    let dir = dir.as_os_str().as_encoded_bytes();
    args.contains(&SUBCOMMAND.as_bytes()) && args.contains(&dir)
}

/// `ucr pod-init`: see the module docs. Single-threaded, like the monitor.
pub fn main(dir: &Path, sync_fd: i32) -> ExitCode {
    let Ok(fd) = signal::take_inherited_fd(sync_fd) else {
        return ExitCode::FAILURE;
    };
    let mut sync = std::fs::File::from(fd);
    if let Err(e) = signal::setsid().and_then(|_| ns::unshare(CloneFlags::CLONE_NEWPID)) {
        let _ = writeln!(sync, "error preparing the pod init: {e}");
        return ExitCode::FAILURE;
    }
    let forked = match process::fork() {
        Ok(f) => f,
        Err(e) => {
            let _ = writeln!(sync, "error fork: {e}");
            return ExitCode::FAILURE;
        }
    };
    match forked {
        Forked::Child => {
            // The sync pipe must close here, or the daemon would wait for EOF forever;
            // our stdio is the daemon's business too.
            drop(sync);
            let _ = signal::stdio_to_null();
            let _ = std::env::set_current_dir("/");
            if signal::autoreap_children().is_err() {
                process::exit_now(1);
            }
            signal::pause_forever()
        }
        Forked::Parent { child } => {
            let pid = child.as_raw();
            if let Err(e) = write_pid(dir, pid) {
                kill::signal(pid, libc::SIGKILL);
                let _ = writeln!(sync, "error writing {}: {e}", dir.join(PID_FILE).display());
                return ExitCode::FAILURE;
            }
            let _ = writeln!(sync, "ok {pid}");
            ExitCode::SUCCESS
        }
    }
}

fn write_pid(dir: &Path, pid: i32) -> io::Result<()> {
    let tmp: PathBuf = dir.join(format!(".{PID_FILE}.tmp"));
    crate::perm::write_private(&tmp, format!("{pid}\n").as_bytes())?;
    std::fs::rename(&tmp, dir.join(PID_FILE))
}
