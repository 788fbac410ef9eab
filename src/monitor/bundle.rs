//! The bundle directory the daemon and a container's monitor share:
//!
//! ```text
//! <bundle>/
//! ├── monitor.json   written by the daemon before `ucr monitor`: spec + log path
//! ├── monitor.pid    the monitor's pid and start time, from detaching until it exits
//! ├── pid            the container's pid and start time, once it has exec'd (stale
//! │                  after exit.json)
//! ├── attach         the attach socket (SEQPACKET, 0600), while the monitor runs
//! └── exit.json      how the container ended; its presence means "exited"
//! ```
//!
//! Every file the monitor writes appears atomically (a temporary file in the bundle,
//! then rename), so the daemon never reads half a pid or half a record, even when it
//! polls while the monitor writes.

use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::sys::pidfd::ProcessId;

/// The monitor's input, written by the daemon.
pub const CONFIG_FILE: &str = "monitor.json";
/// The detached monitor's pid.
pub const MONITOR_PID_FILE: &str = "monitor.pid";
/// The container's pid.
pub const CONTAINER_PID_FILE: &str = "pid";
/// The container's [`ExitRecord`](super::ExitRecord).
pub const EXIT_FILE: &str = "exit.json";

/// Writes `contents` to `bundle/name` so that readers see either no file (or the previous
/// one) or all of it: a temporary file in the same directory, then rename(2). Created
/// 0600: a bundle's files are the daemon's and the monitor's alone (see `perm`).
///
/// No fsync: bundles live with the containers they describe, and after a host crash those
/// containers are gone whatever the files say.
pub fn write_atomic(bundle: &Path, name: &str, contents: &[u8]) -> io::Result<()> {
    let target = bundle.join(name);
    let temp = bundle.join(format!(".{name}.{}.tmp", std::process::id()));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(crate::perm::PRIVATE_FILE)
        .open(&temp)
        .and_then(|mut f| f.write_all(contents))
        .and_then(|()| std::fs::rename(&temp, &target));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(with_path(e, "writing", &target));
    }
    Ok(())
}

/// A pid file's line: `<pid> <start time>`.
pub fn process_line(id: ProcessId) -> String {
    format!("{} {}\n", id.pid, id.start_time)
}

/// Reads a pid file of the bundle ([`MONITOR_PID_FILE`] or [`CONTAINER_PID_FILE`]): the
/// pid, and the start time when the file has one (monitors before 0.1 wrote the pid
/// alone). `None` when it does not exist.
pub fn read_process(bundle: &Path, name: &str) -> io::Result<Option<(i32, Option<u64>)>> {
    let path = bundle.join(name);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(with_path(e, "reading", &path)),
    };
    let bad = || {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("reading {}: not a pid: {text:?}", path.display()),
        )
    };
    let mut fields = text.split_ascii_whitespace();
    let pid = match fields.next().map(str::parse::<i32>) {
        Some(Ok(pid)) if pid > 0 => pid,
        _ => return Err(bad()),
    };
    let start_time = match fields.next().map(str::parse::<u64>) {
        None => None,
        Some(Ok(t)) => Some(t),
        Some(Err(_)) => return Err(bad()),
    };
    Ok(Some((pid, start_time)))
}

/// The pid in a pid file of the bundle, as [`read_process`] reads it.
pub fn read_pid(bundle: &Path, name: &str) -> io::Result<Option<i32>> {
    Ok(read_process(bundle, name)?.map(|(pid, _)| pid))
}

/// The monitor of `bundle` if it is still running: the process `monitor.pid` records,
/// pid and start time. The check matters because a monitor killed with SIGKILL leaves
/// its pid file behind, and the kernel may have given that pid to an unrelated process
/// since. A file without a start time (an older monitor) is checked by the process's
/// command line instead.
pub fn live_monitor(bundle: &Path) -> io::Result<Option<ProcessId>> {
    let Some((pid, start_time)) = read_process(bundle, MONITOR_PID_FILE)? else {
        return Ok(None);
    };
    let id = match start_time {
        Some(start_time) => ProcessId { pid, start_time },
        None if is_monitor_of(pid, bundle) => match ProcessId::of(pid) {
            Ok(id) => id,
            Err(_) => return Ok(None),
        },
        None => return Ok(None),
    };
    Ok(id.is_running().then_some(id))
}

/// The container's first process as the bundle records it, whether or not it still runs.
/// A file without a start time (an older monitor) is trusted only while the process with
/// that pid is still the child of the bundle's live monitor, which cannot have reaped it.
pub fn recorded_container(bundle: &Path) -> io::Result<Option<ProcessId>> {
    let Some((pid, start_time)) = read_process(bundle, CONTAINER_PID_FILE)? else {
        return Ok(None);
    };
    if let Some(start_time) = start_time {
        return Ok(Some(ProcessId { pid, start_time }));
    }
    let Some(monitor) = live_monitor(bundle)? else {
        return Ok(None);
    };
    Ok(match crate::sys::pidfd::stat(pid) {
        Ok(s) if s.ppid == monitor.pid => Some(ProcessId {
            pid,
            start_time: s.start_time,
        }),
        _ => None,
    })
}

/// For CRI `ReopenContainerLog`: asks the monitor of `bundle` to reopen its log file
/// (SIGUSR1), after kubelet renamed the old one. Returns once the signal is sent; the
/// monitor reopens on its next loop turn, so new output lands in the new file shortly.
pub fn request_reopen(bundle: &Path) -> io::Result<()> {
    let monitor = live_monitor(bundle)?.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "reopening the log of {}: its monitor is not running",
                bundle.display()
            ),
        )
    })?;
    match monitor.signal(libc::SIGUSR1) {
        Ok(true) => Ok(()),
        Ok(false) => Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "reopening the log of {}: its monitor has exited",
                bundle.display()
            ),
        )),
        Err(e) => Err(with_path(e, "signalling the monitor of", bundle)),
    }
}

/// Whether `/proc/<pid>/cmdline` is `… monitor … --bundle <dir>` (or `ucr-monitor …`) with `<dir>` resolving
/// to `bundle` (relative to the process's working directory when relative).
fn is_monitor_of(pid: i32, bundle: &Path) -> bool {
    let proc = PathBuf::from(format!("/proc/{pid}"));
    let Ok(cmdline) = std::fs::read(proc.join("cmdline")) else {
        return false;
    };
    let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
    // `ucr monitor …` or `…/ucr-monitor …`.
    let named = args.first().is_some_and(|a0| a0.ends_with(b"ucr-monitor"));
    if !named && !args.iter().any(|a| *a == b"monitor") {
        return false;
    }
    let given = args.windows(2).find_map(|w| match w {
        [flag, value] if *flag == b"--bundle" => Some(*value),
        [flag, _] => flag.strip_prefix(b"--bundle="),
        _ => None,
    });
    let Some(given) = given.map(|g| Path::new(std::ffi::OsStr::from_bytes(g))) else {
        return false;
    };
    let resolved = if given.is_absolute() {
        given.to_path_buf()
    } else {
        match std::fs::read_link(proc.join("cwd")) {
            Ok(cwd) => cwd.join(given),
            Err(_) => return false,
        }
    };
    match (resolved.canonicalize(), bundle.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Puts the operation and path in front of an I/O error, keeping its kind.
pub(super) fn with_path(e: io::Error, op: &str, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{op} {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_atomic(dir.path(), "pid", b"12\n").expect("first");
        write_atomic(dir.path(), "pid", b"34\n").expect("second");
        assert_eq!(read_pid(dir.path(), "pid").expect("read"), Some(34));
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["pid"]);
    }

    #[test]
    fn atomic_write_names_the_path_on_failure() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("gone");
        let err = write_atomic(&missing, "pid", b"1").expect_err("no directory");
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(err.to_string().contains("gone/pid"), "{err}");
    }

    #[test]
    fn pid_files_missing_or_garbled() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(read_pid(dir.path(), MONITOR_PID_FILE).expect("read"), None);
        std::fs::write(dir.path().join("pid"), "abc").expect("write");
        let err = read_pid(dir.path(), "pid").expect_err("garbled");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        std::fs::write(dir.path().join("pid"), "0").expect("write");
        assert!(read_pid(dir.path(), "pid").is_err(), "0 is no pid");
        std::fs::write(dir.path().join("pid"), "12 x").expect("write");
        assert!(
            read_process(dir.path(), "pid").is_err(),
            "x is no start time"
        );
        std::fs::write(dir.path().join("pid"), "12 345\n").expect("write");
        assert_eq!(
            read_process(dir.path(), "pid").expect("read"),
            Some((12, Some(345)))
        );
        std::fs::write(dir.path().join("pid"), "12\n").expect("write");
        assert_eq!(
            read_process(dir.path(), "pid").expect("read"),
            Some((12, None))
        );
    }

    #[test]
    fn a_recorded_pid_that_now_names_another_process_is_not_live() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Our own pid with someone else's start time: what a reused pid looks like.
        let me = ProcessId::of(std::process::id() as i32).expect("stat");
        let other = ProcessId {
            start_time: me.start_time + 1,
            ..me
        };
        write_atomic(dir.path(), MONITOR_PID_FILE, process_line(other).as_bytes()).expect("write");
        assert_eq!(live_monitor(dir.path()).expect("check"), None);
        write_atomic(dir.path(), MONITOR_PID_FILE, process_line(me).as_bytes()).expect("write");
        assert_eq!(live_monitor(dir.path()).expect("check"), Some(me));
        // Without a start time, a container pid is believed only as the monitor's child.
        write_atomic(dir.path(), CONTAINER_PID_FILE, b"1\n").expect("write");
        assert_eq!(recorded_container(dir.path()).expect("read"), None);
    }

    #[test]
    fn a_stale_monitor_pid_is_not_signalled() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Our own pid: alive, but not a monitor of this bundle.
        write_atomic(
            dir.path(),
            MONITOR_PID_FILE,
            std::process::id().to_string().as_bytes(),
        )
        .expect("write");
        assert_eq!(live_monitor(dir.path()).expect("check"), None);
        let err = request_reopen(dir.path()).expect_err("not a monitor");
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }
}
