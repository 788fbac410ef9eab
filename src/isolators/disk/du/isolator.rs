//! `disk/du` as an isolator: every container's writable layer is measured by the
//! background [`Watcher`] (every `--container-disk-watch-interval`), its figures feed the
//! stats, and with `--enforce-container-disk-quota` a container over its disk limit is
//! killed with a reason saying so (Mesos's `REASON_CONTAINER_LIMITATION_DISK`).
//!
//! What it knows of each container is kept in `<run-root>/disk/`: `<id>.json` (the
//! directories and limit, so a restarted daemon watches them again) and `<id>.limited`
//! (why it was killed, so the reason survives a restart).

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

use super::watch::{OverLimit, Watcher};
use crate::isolators::{
    io, ContainerContext, DiskUsage, Isolator, IsolatorError, Known, LimitKind, Limitation,
    Resources, Usage,
};
use crate::launcher::LaunchSpec;

pub struct DiskDu {
    watcher: Watcher,
    state: PathBuf,
    limits: Mutex<Option<UnboundedReceiver<(String, Limitation)>>>,
}

/// What is watched for a container, on disk for a restart.
#[derive(Debug, Serialize, Deserialize)]
struct Watched {
    dirs: Vec<PathBuf>,
    limit: Option<u64>,
}

impl DiskDu {
    /// Starts the watcher. With `enforce`, a container over its limit is reported to
    /// the containerizer (see [`Isolator::limits`]) to be killed; without, it is only
    /// logged, as Mesos only reports it.
    pub fn new(interval: Duration, enforce: bool, state: PathBuf) -> std::io::Result<DiskDu> {
        crate::perm::private_dir(&state)?;
        let (tx, rx) = unbounded_channel();
        let dir = state.clone();
        let watcher = Watcher::start(interval, move |over: OverLimit| {
            let message = over.message();
            if !enforce {
                tracing::warn!(container = %over.id, %message, "over its disk limit (not enforced)");
                return;
            }
            // Kept before the kill, so that the reason is there whenever the end is
            // recorded, by this daemon or the next.
            let file = dir.join(format!("{}.limited", over.id));
            if let Err(e) = crate::perm::write_private_atomic(&file, message.as_bytes()) {
                tracing::warn!(container = %over.id, error = %e, "recording a disk limitation");
            }
            let _ = tx.send((
                over.id,
                Limitation {
                    kind: LimitKind::Disk,
                    message,
                },
            ));
        })?;
        Ok(DiskDu {
            watcher,
            state,
            limits: Mutex::new(Some(rx)),
        })
    }

    fn record(&self, id: &str) -> PathBuf {
        self.state.join(format!("{id}.json"))
    }

    fn limited(&self, id: &str) -> PathBuf {
        self.state.join(format!("{id}.limited"))
    }

    fn watch(&self, id: &str, w: &Watched) -> Result<(), IsolatorError> {
        let file = self.record(id);
        let bytes = serde_json::to_vec(w).unwrap_or_default();
        crate::perm::write_private_atomic(&file, &bytes).map_err(io("record disk watch", &file))?;
        self.watcher.register(id, w.dirs.clone(), w.limit);
        Ok(())
    }
}

/// What counts against the container's disk: its writable layer and, for a Mesos
/// container, its sandbox (output, sandbox volumes such as a private `/tmp`), as Mesos's
/// `du` counts the sandbox with the overlay's upper directory.
fn measured(c: &ContainerContext<'_>) -> Option<Vec<PathBuf>> {
    let dir = c.writable?;
    let mut dirs = vec![dir.to_path_buf()];
    dirs.extend(c.config.sandbox.as_ref().map(|s| s.dir.clone()));
    Some(dirs)
}

impl Isolator for DiskDu {
    fn name(&self) -> &'static str {
        "disk/du"
    }

    fn prepare(
        &self,
        c: &ContainerContext<'_>,
        _launch: &mut LaunchSpec,
    ) -> Result<(), IsolatorError> {
        let Some(dirs) = measured(c) else {
            return Ok(());
        };
        self.watch(
            c.id,
            &Watched {
                dirs,
                limit: c.config.resources.disk_limit,
            },
        )
    }

    fn update(&self, c: &ContainerContext<'_>, r: &Resources) -> Result<(), IsolatorError> {
        let Some(dirs) = measured(c) else {
            return Ok(());
        };
        if r.disk_limit != c.config.resources.disk_limit {
            self.watch(
                c.id,
                &Watched {
                    dirs,
                    limit: r.disk_limit,
                },
            )?;
        }
        Ok(())
    }

    fn usage(&self, c: &ContainerContext<'_>, u: &mut Usage) -> Result<(), IsolatorError> {
        if let Some((d, _)) = self.watcher.last(c.id) {
            u.disk = Some(DiskUsage {
                bytes: d.bytes,
                inodes: d.inodes,
            });
        }
        Ok(())
    }

    fn limitation(&self, c: &ContainerContext<'_>) -> Option<Limitation> {
        let message = std::fs::read_to_string(self.limited(c.id)).ok()?;
        Some(Limitation {
            kind: LimitKind::Disk,
            message,
        })
    }

    fn limits(&self) -> Option<UnboundedReceiver<(String, Limitation)>> {
        self.limits.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    fn cleanup(&self, c: &ContainerContext<'_>) -> Result<(), IsolatorError> {
        self.watcher.unregister(c.id);
        for f in [self.record(c.id), self.limited(c.id)] {
            match std::fs::remove_file(&f) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(io("remove", &f)(e))
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Watches the known containers again; forgets the records of unknown ones.
    fn recover(&self, known: &Known<'_>) -> Result<Vec<String>, IsolatorError> {
        let mut orphans = Vec::new();
        let Ok(entries) = std::fs::read_dir(&self.state) else {
            return Ok(orphans);
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(id) = name.strip_suffix(".json") else {
                continue;
            };
            if known.containers.iter().any(|c| c.id == id) {
                if let Some(w) = std::fs::read(e.path())
                    .ok()
                    .and_then(|b| serde_json::from_slice::<Watched>(&b).ok())
                {
                    self.watcher.register(id, w.dirs, w.limit);
                }
            } else {
                let _ = std::fs::remove_file(e.path());
                let _ = std::fs::remove_file(self.limited(id));
                orphans.push(id.to_string());
            }
        }
        Ok(orphans)
    }
}
