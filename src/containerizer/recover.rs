//! What a restarted daemon finds: every pod and container from the database, checked
//! against reality.
//!
//! - A running container whose monitor is alive stays running, with its process identity
//!   (pid and start time) read again from the monitor's record; one whose monitor
//!   recorded an exit meanwhile gets that exit; one whose monitor is gone without a
//!   record has exited with an unknown end (`Containerizer::ended`: liveness is decided
//!   by process identity, never by `kill(pid, 0)`, which a reused pid passes).
//! - A container recorded as `Starting` (the daemon died during StartContainer) is
//!   adopted if its monitor got as far as starting the process, and otherwise put back to
//!   `Created`, its half-started monitor killed, so a retried start starts it once.
//! - A pod whose pinned namespaces are gone (the run root is lost at reboot) is NotReady.
//! - What a crash left half made (a pod or container on disk that never reached the
//!   database) is undone, and the trash is emptied in the background.
//! - Image use counts are recomputed from the containers (`reconcile_images`).

use std::collections::HashMap;
use std::sync::Arc;

use super::types::{Container, ContainerState, PodState};
use super::{blocking, Containerizer};
use crate::monitor;

impl Containerizer {
    pub(super) fn recover(&self) -> Result<(), super::ContainerizerError> {
        let pods = self.db.pods()?;
        let containers = self.db.containers()?;
        let mut running = Vec::new();
        {
            let mut cache = self.cache();
            for mut pod in pods {
                if pod.state == PodState::Ready && !self.paths.pod_dir(&pod.id).exists() {
                    tracing::warn!(pod = %pod.id, "pod state lost (reboot?): marking it not ready");
                    pod.state = PodState::NotReady;
                    self.db.put_pod(&pod)?;
                }
                cache.pods.insert(pod.id.clone(), pod);
            }
            for mut c in containers {
                if c.state == ContainerState::Starting {
                    self.settle_start(&mut c);
                    self.db.put_container(&c)?;
                }
                if c.state == ContainerState::Running {
                    // The monitor's record is the truth (a database from before process
                    // identities holds a bare pid).
                    if let Ok(Some(p)) = monitor::recorded_container(&self.paths.bundle(&c.id)) {
                        c.process = Some(p);
                    }
                    running.push(c.id.clone());
                }
                cache.containers.insert(c.id.clone(), c);
            }
            tracing::info!(
                pods = cache.pods.len(),
                containers = cache.containers.len(),
                "recovered containerizer state"
            );
        }
        for id in running {
            self.refreshed_now(&id)?;
        }
        self.trash.requeue_all();
        Ok(())
    }

    /// A container the daemon was starting when it died: `Running` if its monitor got as
    /// far as the process (the pid file is written before the exec is reported; an exit
    /// record may follow), else `Created` again.
    fn settle_start(&self, c: &mut Container) {
        let bundle = self.paths.bundle(&c.id);
        let exited = matches!(monitor::read_exit(&bundle), Ok(Some(_)));
        let process = monitor::recorded_container(&bundle).ok().flatten();
        if exited || process.is_some() {
            tracing::info!(container = %c.id, "adopting a container started before the restart");
            c.state = ContainerState::Running;
            c.process = process;
            return;
        }
        // The monitor is before the exec (holding the process for the daemon, which is
        // gone) or on its way out: it must not start anything now.
        if let Ok(Some(m)) = monitor::live_monitor(&bundle) {
            let _ = m.signal(libc::SIGKILL);
        }
        for name in [monitor::MONITOR_PID_FILE, monitor::CONTAINER_PID_FILE] {
            let _ = std::fs::remove_file(bundle.join(name));
        }
        tracing::info!(container = %c.id, "a start interrupted by the restart: created again");
        c.state = ContainerState::Created;
        c.process = None;
    }

    /// Sets each image's use count to the number of containers (in any state) made from
    /// it: the two databases have no transaction in common (see
    /// `Store::reconcile_use_counts`). The daemon runs it once after `open`.
    pub async fn reconcile_images(&self) -> Result<(), super::ContainerizerError> {
        let mut counts: HashMap<String, u64> = HashMap::new();
        for c in self.cache().containers.values() {
            *counts.entry(c.image_id.clone()).or_default() += 1;
        }
        self.store.reconcile_use_counts(&counts).await?;
        Ok(())
    }

    /// Undoes what a crash left half made: pods and containers on disk that never reached
    /// the database (their isolators cleaned up, pins gone, rootfs removed). The daemon
    /// runs it once after `open`, before serving.
    pub async fn sweep_half_made(self: &Arc<Self>) {
        let pods: Vec<String> = {
            let cache = self.cache();
            self.paths
                .pod_ids_on_disk()
                .into_iter()
                .filter(|id| !cache.pods.contains_key(id))
                .collect()
        };
        for id in pods {
            tracing::warn!(pod = %id, "removing a pod sandbox left half made by a crash");
            self.cleanup_unrecorded_pod(&id).await;
        }
        let containers: Vec<String> = {
            let cache = self.cache();
            self.paths
                .container_ids_on_disk()
                .into_iter()
                .filter(|id| !cache.containers.contains_key(id))
                .collect()
        };
        for id in containers {
            tracing::warn!(container = %id, "removing a container left half made by a crash");
            let me = Arc::clone(self);
            let _ = blocking(move || {
                me.discard_now(&id);
                Ok(())
            })
            .await;
        }
        // What isolators hold for pods and containers the daemon does not know (cgroups
        // made just before a crash, or left by one that died mid-removal) goes too; what
        // they hold for the ones it knows is learnt again (net_cls handles).
        let me = Arc::clone(self);
        let _ = blocking(move || {
            let (pods, containers): (Vec<_>, Vec<_>) = {
                let cache = me.cache();
                (
                    cache.pods.values().cloned().collect(),
                    cache.containers.values().cloned().collect(),
                )
            };
            let orphans = me.isolators.recover(&crate::isolators::Known {
                pods: &pods,
                containers: &containers,
            });
            if !orphans.is_empty() {
                tracing::info!(
                    ?orphans,
                    "removed what isolators held for unknown pods and containers"
                );
            }
            Ok(())
        })
        .await;
    }
}
