//! Where the containerizer keeps things. Nobody else builds these paths.
//!
//! ```text
//! <root>/containerizer.redb              pods and containers (survives restarts)
//! <root>/containers/<cid>/rootfs/        the container's root (a backend mount point)
//! <root>/containers/<cid>/scratch/       the backend's own (overlay upper/work dirs)
//! <root>/trash/<cid>/                    a removed container's dir, being deleted in the
//!                                        background (rootfs and scratch inside)
//! <run-root>/pods/<pid>/ns/{net,ipc,uts,pid} pinned namespaces (bind mounts of nsfs files)
//! <run-root>/pods/<pid>/init.pid         the pod init's pid (shared PID namespace only)
//! <run-root>/pods/<pid>/etc/             hosts, hostname, resolv.conf bound into containers
//! <run-root>/pods/<pid>/shm/             the pod's /dev/shm (a tmpfs)
//! <run-root>/containers/<cid>/           the monitor's bundle: monitor.json, pid,
//!                                        monitor.pid, attach (socket), exit.json
//! ```
//! Every directory here is 0700 and every file holding a spec 0600 (`perm`); only the
//! pod's `etc/` files, bound into its containers, are readable by others (0644).
//!
//! Rootfses live under the persistent root (upper dirs can be large, and a running
//! container must survive a daemon restart); everything that dies with a reboot lives in
//! the run root.

use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Paths {
    root: PathBuf,
    run_root: PathBuf,
}

impl Paths {
    pub fn new(root: &Path, run_root: &Path) -> Self {
        Paths {
            root: root.to_path_buf(),
            run_root: run_root.to_path_buf(),
        }
    }
    /// Creates the directories everything else lives in, 0700 (see `perm`), and closes
    /// what an older version left readable below them: each container's and pod's
    /// directory, and the files in bundles (specs with environments).
    pub fn prepare(&self) -> std::io::Result<()> {
        let dirs = [
            self.root.join("containers"),
            self.run_root.join("containers"),
            self.run_root.join("pods"),
            self.trash(),
        ];
        for dir in &dirs {
            crate::perm::own_dir(dir)?;
            crate::perm::tighten(dir, &[])?;
        }
        for id in names_in(&dirs[1]) {
            crate::perm::tighten(&self.bundle(&id), &[])?;
        }
        Ok(())
    }
    /// Where removed containers go to be deleted (same filesystem as their rootfs, so
    /// moving them is a rename).
    pub fn trash(&self) -> PathBuf {
        self.root.join("trash")
    }
    pub fn db(&self) -> PathBuf {
        self.root.join("containerizer.redb")
    }
    /// The ids that have a directory under `<root>/containers`, `<run-root>/containers` or
    /// `<run-root>/pods` (for the start-up sweep of what a crash left half made).
    pub fn container_ids_on_disk(&self) -> Vec<String> {
        let mut ids = names_in(&self.root.join("containers"));
        ids.extend(names_in(&self.run_root.join("containers")));
        ids.sort();
        ids.dedup();
        ids
    }
    pub fn pod_ids_on_disk(&self) -> Vec<String> {
        names_in(&self.run_root.join("pods"))
    }
    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.root.join("containers").join(id)
    }
    pub fn rootfs(&self, id: &str) -> PathBuf {
        self.container_dir(id).join("rootfs")
    }
    pub fn scratch(&self, id: &str) -> PathBuf {
        self.container_dir(id).join("scratch")
    }
    pub fn bundle(&self, id: &str) -> PathBuf {
        self.run_root.join("containers").join(id)
    }
    pub fn pod_dir(&self, id: &str) -> PathBuf {
        self.run_root.join("pods").join(id)
    }
    pub fn pod_ns(&self, id: &str, kind: &str) -> PathBuf {
        self.pod_dir(id).join("ns").join(kind)
    }
    pub fn pod_etc(&self, id: &str) -> PathBuf {
        self.pod_dir(id).join("etc")
    }
    pub fn pod_shm(&self, id: &str) -> PathBuf {
        self.pod_dir(id).join("shm")
    }
}

fn names_in(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .collect()
}
