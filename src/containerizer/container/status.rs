//! What a container's monitor says of it: its end, noticed as it happens (a task waits on
//! each monitor) or on first look after a restart; ContainerStatus, ListContainers,
//! ReopenContainerLog.

use std::sync::Arc;

use super::super::error::{io, ContainerizerError};
use super::super::types::{Container, ContainerFilter, ContainerState, Ending, EventKind};
use super::super::{blocking, now_ns, Containerizer};
use super::lifecycle::STOP_MARKER;
use crate::monitor;

impl Containerizer {
    pub(in crate::containerizer) fn known_container(
        &self,
        id: &str,
    ) -> Result<Container, ContainerizerError> {
        self.cache()
            .containers
            .get(id)
            .cloned()
            .ok_or_else(|| ContainerizerError::ContainerNotFound { id: id.to_string() })
    }

    /// The container, with its end applied if it has ended (see [`Self::ended`]). Reads
    /// a few files, and writes the database when it records an end: off the async
    /// threads.
    pub(in crate::containerizer) async fn refreshed(
        self: &Arc<Self>,
        id: &str,
    ) -> Result<Container, ContainerizerError> {
        let (me, id) = (Arc::clone(self), id.to_string());
        blocking(move || me.refreshed_now(&id)).await
    }

    /// [`Self::refreshed`], blocking. Of two callers noticing an end at once, one records
    /// it and emits STOPPED.
    pub(in crate::containerizer) fn refreshed_now(
        &self,
        id: &str,
    ) -> Result<Container, ContainerizerError> {
        let c = self.known_container(id)?;
        // Starting: the start call owns it (and holds its lock) until it says how it went.
        if c.state != ContainerState::Running {
            return Ok(c);
        }
        let Some(end) = self.ended(&c) else {
            return Ok(c);
        };
        let record = self.locks.record(id);
        let _one = record.lock().unwrap_or_else(|p| p.into_inner());
        let mut c = self.known_container(id)?;
        if c.state != ContainerState::Running {
            return Ok(c);
        }
        // Its isolators' view of the end: a limit that ended it (the kernel's OOM
        // counters outlive the process, so this holds after a restart too), and, when it
        // had no PID namespace of its own, whatever it left running is ended as well (as
        // containerd does for such containers).
        let limitation = self.after_exit(&c);
        match end {
            Some(exit) => {
                c.exit_code = exit.exit_code;
                c.finished_at_ns = exit.finished_at_ns;
                // The monitor saw the exec; the daemon only saw its report, possibly
                // after a fast process had already ended.
                if exit.started_at_ns > 0 {
                    c.started_at_ns = exit.started_at_ns;
                }
                let oom = limitation
                    .as_ref()
                    .is_some_and(|l| l.kind == crate::isolators::LimitKind::Memory)
                    // A process that ended on its own, successfully, was not the victim.
                    && exit.exit_code != 0;
                c.ending = Some(Ending::Exited {
                    code: exit.exit_code,
                    signal: exit.signal,
                    oom_killed: exit.oom_killed || oom,
                    limitation,
                });
            }
            None => {
                // containerd's answer when a shim is gone: exit code 255, reason Unknown.
                c.exit_code = 255;
                c.finished_at_ns = now_ns();
                c.ending = Some(Ending::Lost {
                    message: "its monitor ended without recording how the container ended".into(),
                });
            }
        }
        c.state = ContainerState::Exited;
        c.process = None;
        self.save(&c)?;
        if matches!(
            c.ending,
            Some(Ending::Exited {
                oom_killed: true,
                ..
            })
        ) {
            // Once per container: only a running one gets here.
            crate::metrics::prometheus::families().oom_killed();
        }
        self.emit(&c, EventKind::Stopped);
        Ok(c)
    }

    /// What the isolators say once the container has ended (see `refreshed_now`).
    fn after_exit(&self, c: &Container) -> Option<crate::isolators::Limitation> {
        let owned = self.owned_context(c).ok()?;
        let ctx = self.context(c, &owned);
        if c.config.pid != crate::containerizer::types::PidMode::Container {
            if let Err(e) = self.isolators.kill_all(&ctx) {
                tracing::warn!(container = %c.id, error = %crate::error::chain(&e), "ending what the container left running");
            }
        }
        self.isolators.limitation(&ctx)
    }

    /// Whether a running container has ended: `Some(Some(record))` when its monitor
    /// recorded the end; `Some(None)` when the monitor is gone without a record, and then
    /// the container's process, if it still runs with nobody to collect its output or
    /// exit, is killed (a container is never left running unwatched); `None` while the
    /// monitor watches it.
    fn ended(&self, c: &Container) -> Option<Option<monitor::ExitRecord>> {
        let bundle = self.paths.bundle(&c.id);
        if let Ok(Some(exit)) = monitor::read_exit(&bundle) {
            return Some(Some(exit));
        }
        match monitor::live_monitor(&bundle) {
            // A pid file we cannot read is no proof that the monitor is gone.
            Ok(Some(_)) | Err(_) => return None,
            Ok(None) => {}
        }
        // The monitor records the end before it goes: look again, it may have just done so.
        if let Ok(Some(exit)) = monitor::read_exit(&bundle) {
            return Some(Some(exit));
        }
        if let Some(p) = c.process {
            if p.signal(libc::SIGKILL).unwrap_or(false) {
                tracing::warn!(container = %c.id, pid = p.pid, "monitor gone: killed the container's process");
            }
        }
        tracing::warn!(container = %c.id, "monitor gone without an exit record");
        Some(None)
    }

    pub async fn container_status(
        self: &Arc<Self>,
        id: &str,
    ) -> Result<Container, ContainerizerError> {
        self.refreshed(id).await
    }

    pub fn list_containers(&self, filter: &ContainerFilter) -> Vec<Container> {
        // From the cache: the exit watcher records exits as they happen, so kubelet's
        // relist (every second) does not read every running container's bundle.
        let mut out: Vec<Container> = self
            .cache()
            .containers
            .values()
            .filter(|c| filter.id.as_ref().is_none_or(|w| *w == c.id))
            .filter(|c| {
                filter
                    .pod_id
                    .as_ref()
                    .is_none_or(|w| c.pod_id.as_ref() == Some(w))
            })
            .filter(|c| filter.in_pod.is_none_or(|p| p == c.pod_id.is_some()))
            .filter(|c| filter.state.is_none_or(|s| s == c.state))
            .filter(|c| {
                filter
                    .labels
                    .iter()
                    .all(|(k, v)| c.config.labels.get(k) == Some(v))
            })
            .cloned()
            .collect();
        out.sort_by_key(|c| c.created_at_ns);
        out
    }

    /// Notices the container's end as it happens (kubelet's evented PLEG waits for the
    /// STOPPED event): waits on its monitor, which exits right after recording the exit.
    pub(in crate::containerizer) fn watch_exit(self: &Arc<Self>, id: &str) {
        let bundle = self.paths.bundle(id);
        // The monitor removes its pid file as it exits: no file, or no such process,
        // means the container has already ended and its record is there to read.
        let monitor_fd = monitor::live_monitor(&bundle)
            .ok()
            .flatten()
            .and_then(|m| m.open().ok().flatten());
        let me = Arc::clone(self);
        let id = id.to_string();
        // Counted alive from here until its pidfd says it has exited.
        let alive = monitor_fd
            .as_ref()
            .map(|_| crate::metrics::prometheus::families().monitor_watched());
        tokio::spawn(async move {
            if let Some(fd) = monitor_fd {
                if let Err(e) = crate::sys::pidfd::exited(fd).await {
                    tracing::warn!(container = %id, error = %e, "waiting for the monitor");
                }
            }
            drop(alive);
            let _ = me.refreshed(&id).await;
        });
    }

    /// After start-up, for every container that was running: watch for its end, and
    /// finish a stop a previous daemon had begun (the marker holds the deadline it had
    /// promised).
    /// Kills each container an isolator finds over one of its limits (`disk/du` with
    /// enforcement), as Mesos destroys a container on a `ContainerLimitation`; the
    /// isolator's `limitation` gives the reason once its end is recorded.
    fn watch_limits(self: &Arc<Self>) {
        for mut rx in self.isolators.take_limits() {
            let me = Arc::clone(self);
            tokio::spawn(async move {
                while let Some((id, limitation)) = rx.recv().await {
                    tracing::warn!(container = %id, reason = %limitation.message, "killing a container over its limit");
                    if let Err(e) = me.stop_container(&id, 0).await {
                        tracing::warn!(container = %id, error = %e, "killing a container over its limit");
                    }
                }
            });
        }
    }

    pub fn resume(self: &Arc<Self>) {
        self.watch_limits();
        let running: Vec<String> = self
            .cache()
            .containers
            .values()
            .filter(|c| c.state == ContainerState::Running)
            .map(|c| c.id.clone())
            .collect();
        for id in running {
            self.watch_exit(&id);
            let marker = self.paths.bundle(&id).join(STOP_MARKER);
            let Ok(text) = std::fs::read_to_string(&marker) else {
                continue;
            };
            let remaining = text
                .trim()
                .parse::<i64>()
                .unwrap_or(0)
                .saturating_sub(now_ns())
                .max(0)
                / 1_000_000_000;
            tracing::info!(container = %id, remaining_s = remaining, "finishing a stop begun before the restart");
            let me = Arc::clone(self);
            tokio::spawn(async move {
                if let Err(e) = me.stop_container(&id, remaining).await {
                    tracing::warn!(container = %id, error = %e, "finishing an interrupted stop");
                }
            });
        }
    }

    /// ReopenContainerLog: the monitor reopens the log path (after kubelet rotated it).
    pub async fn reopen_log(self: &Arc<Self>, id: &str) -> Result<(), ContainerizerError> {
        let c = self.refreshed(id).await?;
        if c.state != ContainerState::Running {
            return Err(ContainerizerError::BadState {
                id: c.id,
                state: c.state,
                op: "reopen its log",
            });
        }
        let bundle = self.paths.bundle(&c.id);
        monitor::request_reopen(&bundle).map_err(io("signal monitor", &bundle))
    }
}
