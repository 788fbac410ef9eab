//! StartContainer, StopContainer, RemoveContainer: each holds the container's lock
//! throughout (Start the pod's too, shared), and checks the state's guard first.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::super::error::{io, ContainerizerError};
use super::super::types::{Container, ContainerState, Ending, EventKind};
use super::super::{blocking, now_ns, Containerizer};
use super::monitor;
use crate::monitor as bundle_files;

/// In the bundle while a stop is under way: the deadline (ns) after which it kills.
pub(super) const STOP_MARKER: &str = "stopping";

impl Containerizer {
    /// StartContainer: records `Starting`, starts the monitor, lets the isolators place
    /// the held process, releases it, and records `Running` (or the start's failure: the
    /// container is then Exited, as containerd does, with the reason on record).
    pub async fn start_container(self: &Arc<Self>, id: &str) -> Result<(), ContainerizerError> {
        let pod_id = self.known_container(id)?.pod_id;
        let _pod = match &pod_id {
            Some(p) => Some(self.locks.pod_shared(p).await),
            None => None,
        };
        let _held = self.locks.container(id).await;
        let mut c = self.refreshed(id).await?;
        if !c.state.can_start() {
            return Err(ContainerizerError::BadState {
                id: c.id,
                state: c.state,
                op: "start",
            });
        }
        if let Some(p) = &pod_id {
            let pod = self.pod_status(p)?;
            if !pod.state.can_run_containers() {
                return Err(ContainerizerError::PodNotReady { id: pod.id });
            }
        }
        let me = Arc::clone(self);
        let mut starting = c.clone();
        starting.state = ContainerState::Starting;
        let started = blocking(move || {
            me.make_log_dir(&starting)?;
            // Before the monitor exists: a daemon that dies from here on finds it and
            // adopts what the monitor made, or puts it back to Created (`recover`).
            me.save(&starting)?;
            crate::crash::point("start:starting-recorded");
            let owned = me.owned_context(&starting)?;
            let ctx = me.context(&starting, &owned);
            Ok(monitor::launch(
                &me.binary,
                &me.paths.bundle(&starting.id),
                monitor::isolate_with(&me.isolators, &ctx),
            ))
        })
        .await?;
        let me = Arc::clone(self);
        match started {
            Ok(process) => {
                c.state = ContainerState::Running;
                c.process = Some(process);
                c.started_at_ns = now_ns();
                let saved = c.clone();
                blocking(move || me.save(&saved)).await?;
                self.emit(&c, EventKind::Started);
                tracing::info!(container = %c.id, pid = process.pid, "container started");
                self.watch_exit(&c.id);
                Ok(())
            }
            Err(message) => {
                c.state = ContainerState::Exited;
                c.exit_code = 128;
                c.ending = Some(Ending::StartFailed {
                    message: message.clone(),
                });
                c.finished_at_ns = now_ns();
                let saved = c.clone();
                blocking(move || me.save(&saved)).await?;
                Err(ContainerizerError::Start { id: c.id, message })
            }
        }
    }

    /// The directories of the container's log path below its log directory, made without
    /// following symlinks: a container may see the log directory through a volume and
    /// plant one (kubelet makes the log directory itself; it is taken as is).
    fn make_log_dir(&self, c: &Container) -> Result<(), ContainerizerError> {
        let Some(log) = &c.config.log else {
            return Ok(());
        };
        let Some(rel) = log.path.parent() else {
            return Ok(());
        };
        std::fs::create_dir_all(&log.dir).map_err(io("create log dir", &log.dir))?;
        let root =
            crate::sys::inroot::Root::open(&log.dir).map_err(io("open log dir", &log.dir))?;
        crate::sys::inroot::mkdir_all_beneath(std::os::fd::AsFd::as_fd(&root), rel, 0o755)
            .map_err(io("create log dir", &log.dir.join(rel)))
    }

    pub(in crate::containerizer) fn save(&self, c: &Container) -> Result<(), ContainerizerError> {
        self.db.put_container(c)?;
        self.cache().containers.insert(c.id.clone(), c.clone());
        Ok(())
    }

    /// StopContainer: its stop signal (SIGTERM by default), SIGKILL after `timeout`
    /// seconds (clamped to a year). Idempotent: a container that is not running is left
    /// as it is.
    pub async fn stop_container(
        self: &Arc<Self>,
        id: &str,
        timeout: i64,
    ) -> Result<(), ContainerizerError> {
        self.known_container(id)?;
        let _held = self.locks.container(id).await;
        self.stop_locked(id, timeout).await
    }

    /// [`Self::stop_container`] for a caller that holds the container's lock.
    pub(in crate::containerizer) async fn stop_locked(
        self: &Arc<Self>,
        id: &str,
        timeout: i64,
    ) -> Result<(), ContainerizerError> {
        let c = self.refreshed(id).await?;
        let (ContainerState::Running, Some(process)) = (c.state, c.process) else {
            return Ok(());
        };
        let signal = c.config.stop_signal.unwrap_or(libc::SIGTERM);
        let bundle = self.paths.bundle(id);
        let grace = super::super::timeout(timeout).unwrap_or(Duration::ZERO);
        // Written before the first signal: if the daemon dies mid-stop, the restarted one
        // finishes the stop by this deadline (`resume`).
        let marker = bundle.join(STOP_MARKER);
        let deadline = now_ns().saturating_add(grace.as_nanos() as i64);
        let (me, stopping) = (Arc::clone(self), c.clone());
        blocking(move || {
            crate::perm::write_private(&marker, deadline.to_string().as_bytes())
                .map_err(io("record stop", &marker))?;
            // Signals go to the recorded process only, through a pidfd: once it has
            // ended, its pid may be another process's (see `sys::pidfd`).
            let send = |sig| match process.signal(sig) {
                Ok(sent) => sent,
                Err(e) => {
                    tracing::warn!(pid = process.pid, error = %e, "signalling the container");
                    false
                }
            };
            if grace.is_zero() || !send(signal) || !wait_exit(&bundle, grace) {
                send(libc::SIGKILL);
                // SIGKILL cannot be ignored; the wait is for the monitor to record it
                // (or, when the process had already ended, to finish doing so).
                wait_exit(&bundle, Duration::from_secs(10));
            }
            // The first process is gone; its children may not be (a host-PID container's
            // outlive it): every process in the container's cgroup ends too.
            let owned = me.owned_context(&stopping)?;
            if let Err(e) = me.isolators.kill_all(&me.context(&stopping, &owned)) {
                tracing::warn!(container = %stopping.id, error = %crate::error::chain(&e), "ending the container's other processes");
            }
            Ok(())
        })
        .await?;
        let c = self.refreshed(id).await?;
        let _ = std::fs::remove_file(self.paths.bundle(id).join(STOP_MARKER));
        tracing::info!(container = %id, exit_code = c.exit_code, "container stopped");
        Ok(())
    }

    /// RemoveContainer: stops it if needed, then, in one critical section, undoes its
    /// isolators, moves its directory to the trash (deleted in the background), releases
    /// its image and forgets it. The log stays (kubelet owns log files). An unknown
    /// container is not an error.
    pub async fn remove_container(self: &Arc<Self>, id: &str) -> Result<(), ContainerizerError> {
        if !self.cache().containers.contains_key(id) {
            return Ok(());
        }
        let held = self.locks.container(id).await;
        self.stop_locked(id, 0).await?;
        let Some(c) = self.cache().containers.get(id).cloned() else {
            return Ok(());
        };
        let me = Arc::clone(self);
        let gone = c.clone();
        blocking(move || {
            if let Ok(owned) = me.owned_context(&gone) {
                if let Err(e) = me.isolators.cleanup(&me.context(&gone, &owned)) {
                    tracing::warn!(container = %gone.id, error = %crate::error::chain(&e), "isolator cleanup");
                }
            }
            let dir = me.paths.container_dir(&gone.id);
            me.trash
                .put(&dir, &gone.id)
                .map_err(io("move to the trash", &dir))?;
            crate::crash::point("remove:trashed");
            let bundle = me.paths.bundle(&gone.id);
            match std::fs::remove_dir_all(&bundle) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(io("remove", &bundle)(e))
                }
                _ => Ok(()),
            }
        })
        .await?;
        if let Err(e) = self.store.release(&c.image_id).await {
            tracing::warn!(container = %id, error = %e, "releasing image");
        }
        crate::crash::point("remove:released");
        let me = Arc::clone(self);
        let cid = id.to_string();
        blocking(move || Ok(me.db.delete_container(&cid)?)).await?;
        self.cache().containers.remove(id);
        drop(held);
        self.locks.forget(id);
        self.emit(&c, EventKind::Deleted);
        tracing::info!(container = %id, "container removed");
        Ok(())
    }
}

/// Polls the bundle for the monitor's exit record, up to `limit`. The monitor records a
/// killed container within a millisecond or so: start polling fast, then back off.
fn wait_exit(bundle: &Path, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    let mut pause = Duration::from_micros(500);
    loop {
        if matches!(bundle_files::read_exit(bundle), Ok(Some(_))) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(10));
    }
}
