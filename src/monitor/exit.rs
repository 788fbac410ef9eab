//! `exit.json`: how the container ended, written once by its monitor.

use std::io;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::bundle::{with_path, write_atomic, EXIT_FILE};
use crate::sys::signal::ChildExit;

/// The container's end, as CRI `ContainerStatus` reports it (`exit_code`, `started_at`,
/// `finished_at`, reason `OOMKilled`/`Error`/`Completed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitRecord {
    /// The exit status, or 128 + the signal number when a signal killed it (the shell's
    /// convention, which kubelet and `docker ps` show too).
    pub exit_code: i32,
    /// The signal that killed it, if one did.
    pub signal: Option<i32>,
    /// When the process exec'd, in nanoseconds since the Unix epoch.
    pub started_at_ns: i64,
    /// When the monitor reaped it, in nanoseconds since the Unix epoch.
    pub finished_at_ns: i64,
    /// Always false for now: the cgroup isolator will provide it (from the container's
    /// `memory.events` `oom_kill` count), since the exit status alone cannot tell an OOM
    /// kill from any other SIGKILL.
    #[serde(default)]
    pub oom_killed: bool,
}

impl ExitRecord {
    pub fn new(exit: ChildExit, started: SystemTime, finished: SystemTime) -> Self {
        let (exit_code, signal) = match exit {
            ChildExit::Exited(code) => (code, None),
            ChildExit::Signaled(sig) => (128 + sig, Some(sig)),
        };
        Self {
            exit_code,
            signal,
            started_at_ns: unix_nanos(started),
            finished_at_ns: unix_nanos(finished),
            oom_killed: false,
        }
    }

    /// Writes `bundle/exit.json` atomically.
    pub fn store(&self, bundle: &Path) -> io::Result<()> {
        let json = serde_json::to_vec(self).map_err(io::Error::other)?;
        write_atomic(bundle, EXIT_FILE, &json)
    }
}

/// The container's [`ExitRecord`], or `None` while it has not exited (or its monitor died
/// before recording it: the daemon tells the two apart with `live_monitor`).
pub fn read_exit(bundle: &Path) -> io::Result<Option<ExitRecord>> {
    let path = bundle.join(EXIT_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(with_path(e, "reading", &path)),
    };
    serde_json::from_slice(&bytes).map(Some).map_err(|e| {
        with_path(
            io::Error::new(io::ErrorKind::InvalidData, e),
            "parsing",
            &path,
        )
    })
}

/// Nanoseconds since the epoch, saturating (an i64 lasts until 2262).
pub fn unix_nanos(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn exit_codes_and_signals() {
        let start = UNIX_EPOCH + Duration::new(1_700_000_000, 5);
        let end = start + Duration::from_secs(2);
        let exited = ExitRecord::new(ChildExit::Exited(3), start, end);
        assert_eq!((exited.exit_code, exited.signal), (3, None));
        assert_eq!(exited.started_at_ns, 1_700_000_000_000_000_005);
        assert_eq!(exited.finished_at_ns, 1_700_000_002_000_000_005);
        let killed = ExitRecord::new(ChildExit::Signaled(9), start, end);
        assert_eq!((killed.exit_code, killed.signal), (137, Some(9)));
        assert!(!killed.oom_killed);
    }

    #[test]
    fn round_trips_through_the_bundle() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(read_exit(dir.path()).expect("read"), None);
        let record = ExitRecord::new(ChildExit::Signaled(15), UNIX_EPOCH, SystemTime::now());
        record.store(dir.path()).expect("store");
        assert_eq!(read_exit(dir.path()).expect("read"), Some(record));
    }

    #[test]
    fn a_record_without_oom_killed_still_reads() {
        let dir = tempfile::tempdir().expect("tempdir");
        let json = br#"{"exit_code":0,"signal":null,"started_at_ns":1,"finished_at_ns":2}"#;
        std::fs::write(dir.path().join(EXIT_FILE), json).expect("write");
        let record = read_exit(dir.path()).expect("read").expect("some");
        assert_eq!(record.exit_code, 0);
        assert!(!record.oom_killed);
    }

    #[test]
    fn a_garbled_record_is_invalid_data() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(EXIT_FILE), b"{\"exit_").expect("write");
        let err = read_exit(dir.path()).expect_err("garbled");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("exit.json"), "{err}");
    }
}
