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
    fn errors_name_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = MonitorConfig::load(dir.path()).expect_err("missing");
        assert!(err.to_string().contains("monitor.json"), "{err}");
        std::fs::write(dir.path().join(CONFIG_FILE), b"{").expect("write");
        let err = MonitorConfig::load(dir.path()).expect_err("garbled");
        assert!(matches!(err, MonitorError::ParseConfig { .. }), "{err}");
    }
}
