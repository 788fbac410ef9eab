//! What a restarted daemon finds: every pod and container from the database, checked
//! against reality. A running container whose monitor is alive stays running, with its
//! process identity (pid and start time) read again from the monitor's record; one whose
//! monitor recorded an exit meanwhile gets that exit; one whose monitor is gone without a
//! record has exited with an unknown end (`Containerizer::ended`: liveness is decided by
//! process identity, never by `kill(pid, 0)`, which a reused pid passes). A pod whose
//! pinned namespaces are gone
//! (the run root is lost at reboot) is NotReady. What a crash left half made (a pod or
//! container on disk that never reached the database) is undone.

use super::types::{ContainerState, PodState};
use super::Containerizer;
use crate::monitor;

impl Containerizer {
    pub(super) fn recover(&self) -> Result<(), super::ContainerizerError> {
        let pods = self.db.pods()?;
        let containers = self.db.containers()?;
        let mut cache = self.cache();
        for mut pod in pods {
            if pod.state == PodState::Ready && !self.paths.pod_dir(&pod.id).exists() {
                tracing::warn!(pod = %pod.id, "pod state lost (reboot?): marking it not ready");
                pod.state = PodState::NotReady;
                self.db.put_pod(&pod)?;
            }
            cache.pods.insert(pod.id.clone(), pod);
        }
        let mut running = Vec::new();
        for mut c in containers {
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
        drop(cache);
        for id in running {
            self.refreshed(&id)?;
        }
        Ok(())
    }

    /// Undoes what a crash left half made: pods and containers on disk that never reached
    /// the database (their network detached, pins and pod init gone, rootfs removed).
    /// The daemon runs it once after `open`, before serving.
    pub async fn sweep_half_made(&self) {
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
            if let Err(e) = self.detach(&id).await {
                tracing::warn!(pod = %id, error = %e, "detaching its network");
            }
            let (paths, pid) = (self.paths.clone(), id.clone());
            let _ =
                tokio::task::spawn_blocking(move || super::pod::teardown_pod(&paths, &pid)).await;
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
            self.discard_now(&id);
        }
    }
}
