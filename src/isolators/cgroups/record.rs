//! What the cgroups isolator made, on disk: one small file per pod or container under
//! `<run-root>/cgroups/`, written *before* the cgroup is made, so that a daemon killed at
//! any point can find and remove what it made (`Cgroups::recover`). The run root goes
//! with a reboot, as every cgroup does.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::{io, CgroupsError};
use super::path::CgroupPath;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Cgroups that are wholly ours (a container's, a pod init's, a pod's under
    /// `--cgroups-root`): removed, in every hierarchy, whatever is below them.
    pub own: Vec<CgroupPath>,
    /// Directories made because they were missing (a `cgroup_parent` kubelet had not
    /// made): removed when empty.
    #[serde(default)]
    pub made: Vec<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct Records {
    dir: PathBuf,
}

impl Records {
    pub fn new(dir: PathBuf) -> Result<Records, CgroupsError> {
        crate::perm::private_dir(&dir).map_err(io("create", &dir))?;
        Ok(Records { dir })
    }

    fn file(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    pub fn put(&self, id: &str, r: &Record) -> Result<(), CgroupsError> {
        let file = self.file(id);
        let bytes = serde_json::to_vec(r).map_err(|e| CgroupsError::State(e.to_string()))?;
        crate::perm::write_private_atomic(&file, &bytes).map_err(io("write", &file))
    }

    pub fn get(&self, id: &str) -> Option<Record> {
        let bytes = std::fs::read(self.file(id)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    pub fn remove(&self, id: &str) -> Result<(), CgroupsError> {
        let file = self.file(id);
        match std::fs::remove_file(&file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io("remove", &file)(e)),
            _ => Ok(()),
        }
    }

    /// Every id with a record.
    pub fn ids(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| !n.starts_with('.'))
            .collect()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}
