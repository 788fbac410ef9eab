//! `monitor.json`: what the daemon asks one monitor to do.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::bundle::CONFIG_FILE;
use super::error::MonitorError;
use crate::launcher::LaunchSpec;

/// The monitor's whole input. Fields added later must carry `#[serde(default)]`, so a
/// newer daemon's monitor can still read a bundle written before an upgrade (recovery
/// restarts nothing, but tools read these files).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonitorConfig {
    /// The container's first process.
    pub spec: LaunchSpec,
    /// The CRI log file (the pod's log directory joined with the container's log path).
    /// Empty: the output is read and dropped, as containerd does when kubelet sends no
    /// log path.
    pub log_path: PathBuf,
    /// The pod's log directory, which `log_path` is below: the part of it after this one
    /// is opened without following symlinks (`CriLogWriter::open_beneath`). Empty in
    /// bundles of older versions: then only the file itself must not be a symlink.
    #[serde(default)]
    pub log_dir: PathBuf,
    /// CRI log lines in `log_path`, or (`Files`, a Mesos sandbox) the raw `stdout` and
    /// `stderr` files in the directory `log_path`.
    #[serde(default)]
    pub log_format: super::log::LogFormat,
    /// Keep the container's stdin open for attachers (CRI `stdin`); otherwise it is
    /// `/dev/null`.
    #[serde(default)]
    pub stdin: bool,
    /// Close stdin when the first attacher with stdin ends it (CRI `stdin_once`; see
    /// `monitor::input`).
    #[serde(default)]
    pub stdin_once: bool,
    /// Give the container a terminal (CRI `tty`): its stdio is a pty of its own devpts,
    /// and all its output is stdout.
    #[serde(default)]
    pub tty: bool,
}

impl MonitorConfig {
    /// Reads `bundle/monitor.json`.
    pub fn load(bundle: &Path) -> Result<Self, MonitorError> {
        let path = bundle.join(CONFIG_FILE);
        let bytes = std::fs::read(&path).map_err(|source| MonitorError::ReadConfig {
            path: path.clone(),
            source,
        })?;
        serde_json::from_slice(&bytes).map_err(|source| MonitorError::ParseConfig { path, source })
    }

    /// Writes `bundle/monitor.json` atomically (the daemon's side).
    pub fn store(&self, bundle: &Path) -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        super::bundle::write_atomic(bundle, CONFIG_FILE, &json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> MonitorConfig {
        MonitorConfig {
            spec: serde_json::from_value(serde_json::json!({
                "rootfs": "/rootfs",
                "args": ["sh", "-c", "echo hi"],
                "env": ["PATH=/bin"],
                "cwd": "/",
                "uid": 0,
                "gid": 0,
            }))
            .expect("minimal spec"),
            log_path: "/var/log/pods/p/c/0.log".into(),
            log_dir: "/var/log/pods/p".into(),
            log_format: Default::default(),
            stdin: true,
            stdin_once: false,
            tty: true,
        }
    }

    #[test]
    fn round_trips_through_the_bundle() {
        let dir = tempfile::tempdir().expect("tempdir");
        let written = config();
        written.store(dir.path()).expect("store");
        assert_eq!(MonitorConfig::load(dir.path()).expect("load"), written);
    }

    #[test]
    fn a_bundle_written_before_attach_loads_without_stdin_or_terminal() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut json = serde_json::to_value(config()).expect("json");
        let obj = json.as_object_mut().expect("object");
        for key in ["stdin", "stdin_once", "tty"] {
            obj.remove(key);
        }
        std::fs::write(dir.path().join(CONFIG_FILE), json.to_string()).expect("write");
        let loaded = MonitorConfig::load(dir.path()).expect("load");
        assert!(!loaded.stdin && !loaded.stdin_once && !loaded.tty);
    }

    #[test]
    fn errors_name_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = MonitorConfig::load(dir.path()).expect_err("missing");
        assert!(err.to_string().contains("monitor.json"), "{err}");
        std::fs::write(dir.path().join(CONFIG_FILE), b"{").expect("write");
        let err = MonitorConfig::load(dir.path()).expect_err("garbled");
        assert!(matches!(err, MonitorError::ParseConfig { .. }), "{err}");
    }
}
