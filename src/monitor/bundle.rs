//! The bundle directory the daemon and a container's monitor share:
//!
//! ```text
//! <bundle>/
//! ├── monitor.json   written by the daemon before `ucr monitor`: spec + log path
//! ├── monitor.pid    the monitor's pid, from detaching until it exits
//! ├── pid            the container's pid, once it has exec'd (stale after exit.json)
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

use crate::sys::kill;

/// The monitor's input, written by the daemon.
pub const CONFIG_FILE: &str = "monitor.json";
/// The detached monitor's pid.
pub const MONITOR_PID_FILE: &str = "monitor.pid";
/// The container's pid.
pub const CONTAINER_PID_FILE: &str = "pid";
/// The container's [`ExitRecord`](super::ExitRecord).
pub const EXIT_FILE: &str = "exit.json";

/// Writes `contents` to `bundle/name` so that readers see either no file (or the previous
/// one) or all of it: a temporary file in the same directory, then rename(2).
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
        .mode(0o644)
        .open(&temp)
        .and_then(|mut f| f.write_all(contents))
        .and_then(|()| std::fs::rename(&temp, &target));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(with_path(e, "writing", &target));
    }
    Ok(())
}

/// Reads a pid file of the bundle ([`MONITOR_PID_FILE`] or [`CONTAINER_PID_FILE`]);
/// `None` when it does not exist.
pub fn read_pid(bundle: &Path, name: &str) -> io::Result<Option<i32>> {
    let path = bundle.join(name);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(with_path(e, "reading", &path)),
    };
    match text.trim().parse::<i32>() {
        Ok(pid) if pid > 0 => Ok(Some(pid)),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("reading {}: not a pid: {text:?}", path.display()),
        )),
    }
}

/// The pid of the monitor of `bundle` if it is still running: `monitor.pid` exists and
/// names a live `ucr monitor` process for this very bundle. The identity check matters
/// because a monitor killed with SIGKILL leaves its pid file behind, and the kernel may
/// have given that pid to an unrelated process since.
pub fn live_monitor(bundle: &Path) -> io::Result<Option<i32>> {
    let Some(pid) = read_pid(bundle, MONITOR_PID_FILE)? else {
        return Ok(None);
    };
    Ok(is_monitor_of(pid, bundle).then_some(pid))
}

/// For CRI `ReopenContainerLog`: asks the monitor of `bundle` to reopen its log file
/// (SIGUSR1), after kubelet renamed the old one. Returns once the signal is sent; the
/// monitor reopens on its next loop turn, so new output lands in the new file shortly.
pub fn request_reopen(bundle: &Path) -> io::Result<()> {
    let pid = live_monitor(bundle)?.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "reopening the log of {}: its monitor is not running",
                bundle.display()
            ),
        )
    })?;
    kill::send(pid, libc::SIGUSR1).map_err(|e| with_path(e, "signalling the monitor of", bundle))
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
