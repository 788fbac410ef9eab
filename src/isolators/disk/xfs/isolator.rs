//! `disk/xfs` as an isolator: each container's writable layer gets an XFS project id
//! (its own blocks and inodes then counted by the filesystem), its `disk` limit becomes
//! the project's hard limit (writes past it fail with EDQUOT), and the kernel's count
//! feeds the stats. Asked for on a filesystem or kernel that cannot do it, the daemon
//! refuses to start (`new` runs [`check_supported`] on the root).
//!
//! `<run-root>/xfs/<id>` keeps each container's directory and project id, for `cleanup`
//! and for a restart (the ids in use are learnt again from the directories themselves).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{check_supported, set_limits, usage, ProjectRange, Projects, XfsError};
use crate::isolators::{
    io, ContainerContext, DiskUsage, Isolator, IsolatorError, Known, Resources, Usage,
};
use crate::launcher::LaunchSpec;

pub struct DiskXfs {
    projects: Projects,
    state: PathBuf,
}

#[derive(Debug, Serialize, Deserialize)]
struct Labelled {
    dir: PathBuf,
    project: u32,
}

impl DiskXfs {
    /// Checks that `root` (where writable layers live) can have project quotas, with
    /// enforcement when `enforce`, and takes ids from `range`.
    pub fn new(
        root: &Path,
        range: ProjectRange,
        enforce: bool,
        state: PathBuf,
    ) -> Result<DiskXfs, XfsError> {
        check_supported(root, enforce)?;
        crate::perm::private_dir(&state).map_err(|source| XfsError::Open {
            path: state.clone(),
            source,
        })?;
        Ok(DiskXfs {
            projects: Projects::new(range),
            state,
        })
    }

    fn record(&self, id: &str) -> PathBuf {
        self.state.join(id)
    }

    fn labelled(&self, id: &str) -> Option<Labelled> {
        let bytes = std::fs::read(self.record(id)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    fn limit(&self, l: &Labelled, bytes: Option<u64>) -> Result<(), IsolatorError> {
        let b = bytes.unwrap_or(0);
        set_limits(&l.dir, l.project, b, b).map_err(xfs)
    }
}

fn xfs(e: XfsError) -> IsolatorError {
    IsolatorError::Unavailable(e.to_string())
}

impl Isolator for DiskXfs {
    fn name(&self) -> &'static str {
        "disk/xfs"
    }

    fn prepare(
        &self,
        c: &ContainerContext<'_>,
        _launch: &mut LaunchSpec,
    ) -> Result<(), IsolatorError> {
        let Some(dir) = c.writable else {
            return Ok(());
        };
        let project = self.projects.assign(dir).map_err(xfs)?;
        let l = Labelled {
            dir: dir.to_path_buf(),
            project,
        };
        let file = self.record(c.id);
        let bytes = serde_json::to_vec(&l).unwrap_or_default();
        if let Err(e) = crate::perm::write_private_atomic(&file, &bytes) {
            self.projects.release(project);
            return Err(io("record the project", &file)(e));
        }
        self.limit(&l, c.config.resources.disk_limit)
    }

    fn update(&self, c: &ContainerContext<'_>, r: &Resources) -> Result<(), IsolatorError> {
        match self.labelled(c.id) {
            Some(l) if r.disk_limit != c.config.resources.disk_limit => {
                self.limit(&l, r.disk_limit)
            }
            _ => Ok(()),
        }
    }

    fn usage(&self, c: &ContainerContext<'_>, u: &mut Usage) -> Result<(), IsolatorError> {
        if let Some(l) = self.labelled(c.id) {
            if let Some(p) = usage(&l.dir, l.project).map_err(xfs)? {
                u.disk = Some(DiskUsage {
                    bytes: p.bytes,
                    inodes: p.inodes,
                });
            }
        }
        Ok(())
    }

    fn cleanup(&self, c: &ContainerContext<'_>) -> Result<(), IsolatorError> {
        if let Some(l) = self.labelled(c.id) {
            // The limit goes with the id, so the next owner of the id starts without one.
            let _ = set_limits(&l.dir, l.project, 0, 0);
            self.projects.release(l.project);
        }
        let file = self.record(c.id);
        match std::fs::remove_file(&file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io("remove", &file)(e)),
            _ => Ok(()),
        }
    }

    fn recover(&self, known: &Known<'_>) -> Result<Vec<String>, IsolatorError> {
        let mut orphans = Vec::new();
        let Ok(entries) = std::fs::read_dir(&self.state) else {
            return Ok(orphans);
        };
        for e in entries.flatten() {
            let id = e.file_name().to_string_lossy().into_owned();
            let Some(l) = self.labelled(&id) else {
                continue;
            };
            if known.containers.iter().any(|c| c.id == id) {
                self.projects.recover(&[&l.dir]).map_err(xfs)?;
            } else {
                let _ = std::fs::remove_file(e.path());
                orphans.push(id);
            }
        }
        Ok(orphans)
    }
}
