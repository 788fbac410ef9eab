//! What a restarted daemon finds: every pod and container from the database, checked
//! against reality. A running container whose monitor is alive stays running; one whose
//! monitor recorded an exit meanwhile gets that exit (applied on first look); one whose
//! monitor is gone without a record is Unknown. A pod whose pinned namespaces are gone
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
        for mut c in containers {
            if c.state == ContainerState::Running {
                let bundle = self.paths.bundle(&c.id);
                let exited = matches!(monitor::read_exit(&bundle), Ok(Some(_)));
                let monitor_alive = monitor::read_pid(&bundle, monitor::MONITOR_PID_FILE)
                    .ok()
                    .flatten()
                    .is_some_and(crate::sys::kill::alive);
                if !exited && !monitor_alive {
                    tracing::warn!(container = %c.id, "monitor gone without an exit record: state unknown");
                    c.state = ContainerState::Unknown;
                    c.pid = None;
                    self.db.put_container(&c)?;
                }
            }
            cache.containers.insert(c.id.clone(), c);
        }
        for id in self.paths.pod_ids_on_disk() {
            if !cache.pods.contains_key(&id) {
                tracing::warn!(pod = %id, "removing a pod sandbox left half made by a crash");
                super::pod::teardown_pod(&self.paths, &id);
            }
        }
        for id in self.paths.container_ids_on_disk() {
            if !cache.containers.contains_key(&id) {
                tracing::warn!(container = %id, "removing a container left half made by a crash");
                self.discard_now(&id);
            }
        }
        tracing::info!(
            pods = cache.pods.len(),
            containers = cache.containers.len(),
            "recovered containerizer state"
        );
        Ok(())
    }
}
