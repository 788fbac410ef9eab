//! One cgroup (a pod's, a container's) across the hierarchies ucr uses: a directory in
//! each v1 hierarchy, or one directory on v2. Making, joining, killing and removing it.
//!
//! The directories are made and removed through `cgroups-rs`'s controllers (its cpuset
//! controller fills a new v1 cpuset's empty `cpus`/`mems` from its parent, without which
//! no process could join). What it lacks is written here: enabling controllers for
//! children on v2 (its `Cgroup` type does that only under `/sys/fs/cgroup`, whatever
//! root it is given), `cgroup.kill`, and waiting for a frozen v1 cgroup.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cgroups_rs::fs::Controller;

use super::error::{io, CgroupsError};
use super::layout::Layout;
use super::path::CgroupPath;

/// How long a kill waits for the cgroup to empty: SIGKILL acts at once, but a process in
/// uninterruptible sleep (a hung NFS read) takes its time.
const EMPTY_WAIT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct Cgroup {
    layout: Arc<Layout>,
    path: CgroupPath,
}

impl Cgroup {
    pub fn new(layout: Arc<Layout>, path: CgroupPath) -> Self {
        Cgroup { layout, path }
    }

    pub fn path(&self) -> &CgroupPath {
        &self.path
    }

    pub fn is_v2(&self) -> bool {
        self.layout.is_v2()
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Its directory in the hierarchy of `controller`, when that is mounted.
    pub fn dir(&self, controller: &str) -> Option<PathBuf> {
        self.layout.mount_of(controller).map(|m| self.path.under(m))
    }

    /// Its directories in the hierarchies of `controllers` (deduplicated: one on v2, one
    /// for `cpu` and `cpuacct` mounted together).
    pub fn dirs(&self, controllers: &[&str]) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = Vec::new();
        for c in controllers {
            if let Some(d) = self.dir(c) {
                if !out.contains(&d) {
                    out.push(d);
                }
            }
        }
        out
    }

    /// The `cgroup.procs` files a process writes `0` into to join it.
    pub fn procs_files(&self, controllers: &[&str]) -> Vec<PathBuf> {
        self.dirs(controllers)
            .into_iter()
            .map(|d| d.join("cgroup.procs"))
            .collect()
    }

    /// The crate's controller for `controller`'s directory of this cgroup; `None` when
    /// that hierarchy is not mounted. Used for what every hierarchy has (create, delete,
    /// join); each subsystem uses its own typed controller for its files.
    fn handle(&self, controller: &str) -> Option<Box<dyn Controller>> {
        use cgroups_rs::fs::{cpuset::CpuSetController, freezer::FreezerController};
        let mount = self.layout.mount_of(controller)?.to_path_buf();
        let dir = self.path.under(&mount);
        let v2 = self.is_v2();
        Some(match controller {
            // The cpuset controller's create fills the new level's cpus and mems.
            "cpuset" if !v2 => Box::new(CpuSetController::new(dir, mount, false)),
            // Any typed controller does for the rest: create and delete are the same.
            _ => Box::new(FreezerController::new(dir, mount, v2)),
        })
    }

    /// Makes it (and missing ancestors) in the hierarchies of `controllers`; returns the
    /// directories it made, deepest last, so that a caller can record them and remove
    /// exactly those.
    pub fn create(&self, controllers: &[&str]) -> Result<Vec<PathBuf>, CgroupsError> {
        let mut made = Vec::new();
        for level in self.path.lineage() {
            let at = Cgroup::new(Arc::clone(&self.layout), level);
            if self.is_v2() {
                let dir = at.path.under(self.layout.tracking()[0]);
                if !dir.exists() {
                    at.handle("freezer")
                        .map(|h| h.create())
                        .transpose()
                        .map_err(|e| CgroupsError::from_crate("create", &dir, e))?;
                    made.push(dir);
                }
                continue;
            }
            for c in controllers {
                let (Some(dir), Some(h)) = (at.dir(c), at.handle(c)) else {
                    continue;
                };
                if !dir.exists() && !made.contains(&dir) {
                    h.create()
                        .map_err(|e| CgroupsError::from_crate("create", &dir, e))?;
                    made.push(dir);
                }
            }
        }
        if self.is_v2() {
            self.enable_v2_controllers()?;
        }
        Ok(made)
    }

    /// v2: a cgroup's children get only the controllers its `cgroup.subtree_control`
    /// enables, so each ancestor of this cgroup enables every controller the root
    /// offers, top down (a level offers what its parent enabled). One at a time: one that
    /// a level refuses (a threaded subtree, a controller busy elsewhere) must not keep
    /// the others off, and is only warned about.
    fn enable_v2_controllers(&self) -> Result<(), CgroupsError> {
        let Layout::V2 { root, controllers } = self.layout.as_ref() else {
            return Ok(());
        };
        let mut parents = vec![root.clone()];
        let lineage = self.path.lineage();
        parents.extend(
            lineage
                .iter()
                .take(lineage.len().saturating_sub(1))
                .map(|p| p.under(root)),
        );
        for dir in parents {
            let file = dir.join("cgroup.subtree_control");
            let enabled = std::fs::read_to_string(&file).unwrap_or_default();
            for c in controllers {
                if enabled.split_whitespace().any(|e| e == c) {
                    continue;
                }
                if let Err(e) = std::fs::write(&file, format!("+{c}")) {
                    tracing::warn!(file = %file.display(), controller = %c, error = %e, "enabling a cgroup v2 controller");
                }
            }
        }
        Ok(())
    }

    /// Moves process `pid` (and its future children) into it, in every hierarchy of
    /// `controllers`.
    pub fn join(&self, controllers: &[&str], pid: i32) -> Result<(), CgroupsError> {
        for file in self.procs_files(controllers) {
            std::fs::write(&file, pid.to_string()).map_err(io("join", &file))?;
        }
        Ok(())
    }

    /// Every process in it and in the cgroups below it, from the hierarchy that tracks
    /// all of ours (the freezer's on v1, the one on v2).
    pub fn pids(&self) -> Vec<i32> {
        let Some(dir) = self.kill_dir() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        collect_pids(&dir, &mut out);
        out
    }

    /// The directory whose processes are this cgroup's processes: freezer on v1 (every
    /// container is placed in it), the cgroup itself on v2.
    fn kill_dir(&self) -> Option<PathBuf> {
        self.dir("freezer").or_else(|| self.dir("memory"))
    }

    /// Ends every process in it: on v2 through `cgroup.kill`; on v1 by freezing it (no
    /// process can fork or exit meanwhile, so no pid is missed or reused), sending
    /// SIGKILL to each, and thawing it. Then waits for it to be empty.
    pub fn kill_all(&self) -> Result<(), CgroupsError> {
        let Some(dir) = self.kill_dir() else {
            return Ok(());
        };
        if !dir.exists() || self.pids().is_empty() {
            return Ok(());
        }
        let kill_file = dir.join("cgroup.kill");
        if self.is_v2() && kill_file.exists() {
            std::fs::write(&kill_file, "1").map_err(io("kill", &kill_file))?;
        } else if let Some(freezer) = self.dir("freezer").filter(|d| d.exists()) {
            self.kill_frozen(&freezer)?;
        } else {
            for pid in self.pids() {
                crate::sys::kill::signal(pid, libc::SIGKILL);
            }
        }
        self.wait_empty(&dir)
    }

    fn kill_frozen(&self, dir: &Path) -> Result<(), CgroupsError> {
        use cgroups_rs::fs::freezer::FreezerController;
        let mount = self.layout.mount_of("freezer").unwrap_or(dir).to_path_buf();
        let f = FreezerController::new(dir.to_path_buf(), mount, self.is_v2());
        f.freeze()
            .map_err(|e| CgroupsError::from_crate("freeze", dir, e))?;
        // FREEZING until every task has stopped; a task in uninterruptible sleep can hold
        // that up, and killing an unfrozen cgroup still ends it, so go on after a while.
        let deadline = Instant::now() + Duration::from_secs(2);
        // By hand: the crate's `FreezerState` is private, so its `state()` cannot be
        // matched on.
        let frozen = || {
            std::fs::read_to_string(dir.join("freezer.state")).is_ok_and(|s| s.trim() == "FROZEN")
        };
        while !frozen() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        for pid in self.pids() {
            crate::sys::kill::signal(pid, libc::SIGKILL);
        }
        f.thaw()
            .map_err(|e| CgroupsError::from_crate("thaw", dir, e))
    }

    fn wait_empty(&self, dir: &Path) -> Result<(), CgroupsError> {
        let deadline = Instant::now() + EMPTY_WAIT;
        let mut pause = Duration::from_micros(200);
        loop {
            let mut left = Vec::new();
            collect_pids(dir, &mut left);
            if left.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(CgroupsError::NotEmpty {
                    path: dir.to_path_buf(),
                    pids: left,
                });
            }
            // New arrivals (a fork that raced the v1 fallback) get theirs too.
            for pid in &left {
                crate::sys::kill::signal(*pid, libc::SIGKILL);
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }

    /// Removes the directories `dirs` (deepest first), which must be this cgroup's or
    /// below it; a directory already gone is fine.
    pub fn remove_dirs(&self, dirs: &[PathBuf]) -> Result<(), CgroupsError> {
        let mut sorted: Vec<&PathBuf> = dirs.iter().collect();
        sorted.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
        let mut first = None;
        for dir in sorted {
            let mount = self
                .layout
                .tracking()
                .into_iter()
                .find(|m| dir.starts_with(m))
                .map(Path::to_path_buf)
                .unwrap_or_else(|| dir.clone());
            let h =
                cgroups_rs::fs::freezer::FreezerController::new(dir.clone(), mount, self.is_v2());
            // The crate retries for a while: a killed process leaves its cgroup a moment
            // after it is reaped.
            if let Err(e) = h.delete() {
                first.get_or_insert(CgroupsError::from_crate("remove", dir, e));
            }
        }
        first.map_or(Ok(()), Err)
    }
}

fn collect_pids(dir: &Path, out: &mut Vec<i32>) {
    if let Ok(text) = std::fs::read_to_string(dir.join("cgroup.procs")) {
        out.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
    }
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                collect_pids(&e.path(), out);
            }
        }
    }
}
