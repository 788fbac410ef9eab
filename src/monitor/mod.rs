//! The per-container monitor, `ucr monitor` (conmon's counterpart): starts the container's
//! first process, holds its stdio (pipes, or the master of a terminal the container made),
//! writes its output to its log (CRI lines, or a Mesos sandbox's plain `stdout` and
//! `stderr`: `log`) and to whoever is attached (`attach`), feeds it their input, and
//! records how the container ended. One per container. It outlives the daemon, so a
//! daemon restart or crash leaves containers running and their logs flowing; and it stays
//! small (target < 1 MiB RSS): one thread, no tokio, one poll(2) loop.
//!
//! # Contract with the daemon
//!
//! Files live in the container's bundle directory (layout in [`bundle`]).
//!
//! 1. The daemon writes `monitor.json`, a [`MonitorConfig`] (launch spec and CRI log path),
//!    with [`MonitorConfig::store`].
//! 2. It runs `ucr-monitor --bundle <absolute dir> --sync-fd <N> [--hold-fd <M>]`,
//!    descriptor `N` being the write end of a pipe and `M` the read end of another (both
//!    inherited: not close-on-exec; `sys::spawn::pass_fds`). The daemon closes its own
//!    copies of the ends it gave away after spawning.
//! 3. It waits for that process, which exits 0 as soon as the monitor proper has detached
//!    and written `monitor.pid` (1 if that failed). The monitor proper is a forked child
//!    in its own session with stdio on `/dev/null`, reparented to init: never a zombie of
//!    the daemon's, and untouched by the daemon's death. (So the daemon must not make
//!    itself a child subreaper, or it would inherit the monitors and have to reap them.)
//! 4. It reads reports from the sync pipe (`crate::handshake`). With a hold descriptor,
//!    first `held <pid> <start time>`: the container's process exists and waits before
//!    doing anything; the daemon runs its isolators' `isolate`, then writes [`RELEASE`]
//!    on the hold pipe (or closes it, and the process is killed before it ran). Then
//!    `ok <pid>` once the container process has exec'd and `pid` is written, or
//!    `error <message>` (launch failures carry runc's wording, e.g. `exec: "x":
//!    executable file not found in $PATH`); after an error nothing runs, the monitor
//!    exits, and no `exit.json` is written.
//! 5. While the container runs, the daemon stops it by signalling the pid in `pid`, never
//!    the monitor (which ignores SIGTERM, SIGINT and SIGHUP: the container's life is its
//!    own), has the log reopened after rotation with [`request_reopen`] (SIGUSR1), and
//!    attaches to it through the `attach` socket (protocol in [`attach`];
//!    `attach::client` is the daemon's end), which exists from before the container
//!    starts until the monitor exits.
//! 6. When the container ends, the monitor copies what is left in the pipes (to the log
//!    and the attachers), writes `exit.json` (an [`ExitRecord`], read with [`read_exit`]),
//!    then closes the attachers' connections and the socket, removes `monitor.pid`, and
//!    exits. `exit.json` present: the container exited (and `pid` is stale). `monitor.pid`
//!    present but [`live_monitor`] `None`: the monitor was killed before recording the end;
//!    the container's fate is unknown.
//!
//! Every file the monitor writes appears atomically (temporary file, then rename).

pub mod attach;
pub mod bundle;
mod config;
mod detach;
mod error;
mod exit;
mod input;
pub mod log;
mod run;
mod supervise;
mod sync;

use std::process::ExitCode;

pub use bundle::{
    live_monitor, read_pid, read_process, recorded_container, request_reopen, CONFIG_FILE,
    CONTAINER_PID_FILE, EXIT_FILE, MONITOR_PID_FILE,
};
pub use config::MonitorConfig;
pub use error::MonitorError;
pub use exit::{read_exit, ExitRecord};
pub use sync::RELEASE;

use crate::handshake::Report;
use run::Started;
use sync::{HoldFd, SyncFd};

/// `ucr monitor --bundle DIR [--sync-fd N]`. Everything up to the sync report runs before
/// any thread exists, and no thread is ever started: `launcher::spawn` and the fork in
/// `detach` both need that.
pub fn main(bundle: &std::path::Path, sync_fd: Option<i32>, hold_fd: Option<i32>) -> ExitCode {
    let mut sync = match SyncFd::take(sync_fd) {
        Ok(sync) => sync,
        Err(e) => return failed(e, &mut SyncFd::none()),
    };
    let mut hold = match HoldFd::take(hold_fd) {
        Ok(hold) => hold,
        Err(e) => return failed(e, &mut sync),
    };
    let running = match run::start(bundle, &mut sync, &mut hold) {
        Ok(Started::Parent(code)) => return code,
        Ok(Started::Running(running)) => running,
        Err(e) => return failed(e, &mut sync),
    };
    sync.report(&Report::Started {
        pid: running.container.as_raw(),
    });
    drop(sync);
    running.supervise()
}

fn failed(e: MonitorError, sync: &mut SyncFd) -> ExitCode {
    let message = crate::error::chain(&e);
    // Before detaching this reaches the daemon's stderr; after, /dev/null.
    eprintln!("ucr monitor: {message}");
    sync.report(&Report::Failed { message });
    ExitCode::FAILURE
}
