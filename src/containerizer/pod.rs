//! Pod sandboxes without a pause container: the pod's namespaces are created on a
//! throw-away thread (as its isolators' plan asks) and pinned by bind mounts under the run
//! root; the isolators then make the rest (the network, /dev/shm, the pod init, the /etc
//! files). Containers join all of that by path.
//!
//! A pod's lock is exclusive for Run, Stop and Remove, shared for creating and starting
//! its containers (`locks`).

use std::sync::Arc;

use super::error::{io, ContainerizerError};
use super::types::{ContainerFilter, Pod, PodConfig, PodFilter, PodState};
use super::{blocking, new_id, now_ns, paths::Paths, Containerizer};
use crate::isolators::{PodContext, PodPlan};
use crate::sys::netns::{self, PodNamespace, PodPins};

fn pins(paths: &Paths, id: &str) -> PodPins {
    PodPins {
        user: paths.pod_ns(id, "user"),
        net: paths.pod_ns(id, "net"),
        ipc: paths.pod_ns(id, "ipc"),
        uts: paths.pod_ns(id, "uts"),
    }
}

impl Containerizer {
    /// RunPodSandbox. A request with the key of a pod that exists, or is being made, gets
    /// that pod.
    pub async fn run_pod(self: &Arc<Self>, config: PodConfig) -> Result<Pod, ContainerizerError> {
        if config.key.is_empty() {
            return Err(ContainerizerError::Invalid {
                field: "key",
                value: String::new(),
                reason: "must not be empty",
            });
        }
        if !config.log_directory.is_empty()
            && !std::path::Path::new(&config.log_directory).is_absolute()
        {
            return Err(ContainerizerError::Invalid {
                field: "log_directory",
                value: config.log_directory.clone(),
                reason: "must be an absolute path",
            });
        }
        // Everything the request could get wrong, and a missing network, before anything
        // is made.
        let plan = self.isolators.plan_pod(&config)?;
        let key = config.key.clone();
        if let Some(existing) = self.cache().pods.values().find(|p| p.config.key == key) {
            return Ok(existing.clone());
        }
        let me = Arc::clone(self);
        let (flight, _) = self
            .pod_flights
            .join(&key, async move { me.create_pod(config, plan).await });
        let id = flight.await.map_err(super::flight_error)?;
        self.pod_status(&id)
    }

    async fn create_pod(
        self: Arc<Self>,
        config: PodConfig,
        plan: PodPlan,
    ) -> Result<String, ContainerizerError> {
        let id = new_id();
        let _lock = self.locks.pod_exclusive(&id).await;
        let (paths, pid, p) = (self.paths.clone(), id.clone(), plan.clone());
        let binary = self.binary.clone();
        let made = blocking(move || make_sandbox(&paths, &binary, &pid, &p)).await;
        if let Err(e) = made {
            self.teardown(&id).await;
            return Err(e);
        }
        crate::crash::point("pod:namespaces-made");
        let mut pod = Pod {
            id: id.clone(),
            config,
            state: PodState::Ready,
            created_at_ns: now_ns(),
            netns: plan
                .namespaces
                .contains(&PodNamespace::Net)
                .then(|| self.paths.pod_ns(&id, "net")),
            ips: Vec::new(),
        };
        let prepared = self
            .isolators
            .prepare_pod(&mut PodContext {
                pod: &mut pod,
                paths: &self.paths,
                init_cgroups: Vec::new(),
            })
            .await;
        if let Err(e) = prepared {
            self.teardown(&id).await;
            return Err(e.into());
        }
        crate::crash::point("pod:prepared");
        let (me, record) = (Arc::clone(&self), pod.clone());
        if let Err(e) = blocking(move || Ok(me.db.put_pod(&record)?)).await {
            let _ = self
                .isolators
                .cleanup_pod(&mut PodContext {
                    pod: &mut pod,
                    paths: &self.paths,
                    init_cgroups: Vec::new(),
                })
                .await;
            self.teardown(&id).await;
            return Err(e);
        }
        tracing::info!(pod = %id, key = %pod.config.key, "pod sandbox ready");
        self.cache().pods.insert(id.clone(), pod);
        Ok(id)
    }

    pub fn pod_status(&self, id: &str) -> Result<Pod, ContainerizerError> {
        self.cache()
            .pods
            .get(id)
            .cloned()
            .ok_or_else(|| ContainerizerError::PodNotFound { id: id.to_string() })
    }

    pub fn list_pods(&self, filter: &PodFilter) -> Vec<Pod> {
        let mut pods: Vec<Pod> = self
            .cache()
            .pods
            .values()
            .filter(|p| filter.id.as_ref().is_none_or(|id| *id == p.id))
            .filter(|p| filter.state.is_none_or(|s| s == p.state))
            .filter(|p| {
                filter
                    .labels
                    .iter()
                    .all(|(k, v)| p.config.labels.get(k) == Some(v))
            })
            .cloned()
            .collect();
        pods.sort_by_key(|p| p.created_at_ns);
        pods
    }

    /// StopPodSandbox: kills every container of the pod and undoes its isolators (the
    /// network goes, the pod init ends, and with it anything left in a shared PID
    /// namespace); the pod stays (NotReady) until removed. Idempotent, and retried by
    /// kubelet while it fails; an unknown pod is not an error.
    pub async fn stop_pod(self: &Arc<Self>, id: &str) -> Result<(), ContainerizerError> {
        if !self.cache().pods.contains_key(id) {
            return Ok(());
        }
        let _lock = self.locks.pod_exclusive(id).await;
        self.stop_pod_locked(id).await
    }

    async fn stop_pod_locked(self: &Arc<Self>, id: &str) -> Result<(), ContainerizerError> {
        let Some(mut pod) = self.cache().pods.get(id).cloned() else {
            return Ok(());
        };
        for c in self.list_containers(&ContainerFilter {
            pod_id: Some(id.to_string()),
            ..Default::default()
        }) {
            self.stop_container(&c.id, 0).await?;
        }
        self.isolators
            .cleanup_pod(&mut PodContext {
                pod: &mut pod,
                paths: &self.paths,
                init_cgroups: Vec::new(),
            })
            .await?;
        if pod.state != PodState::NotReady {
            pod.state = PodState::NotReady;
            let (me, record) = (Arc::clone(self), pod.clone());
            blocking(move || Ok(me.db.put_pod(&record)?)).await?;
            self.cache().pods.insert(id.to_string(), pod);
            tracing::info!(pod = %id, "pod sandbox stopped");
        }
        Ok(())
    }

    /// Removes every pod and container (`--recover cleanup`), standalone containers
    /// included, and empties the trash.
    pub async fn remove_everything(self: &Arc<Self>) -> Result<(), ContainerizerError> {
        let pods: Vec<String> = self.cache().pods.keys().cloned().collect();
        for id in pods {
            self.remove_pod(&id).await?;
        }
        let rest: Vec<String> = self.cache().containers.keys().cloned().collect();
        for id in rest {
            self.remove_container(&id).await?;
        }
        let me = Arc::clone(self);
        blocking(move || {
            me.trash.empty_now();
            Ok(())
        })
        .await
    }

    /// RemovePodSandbox: stops it, removes its containers, unpins its namespaces and
    /// deletes its files, in one critical section. Idempotent; an unknown pod is not an
    /// error.
    pub async fn remove_pod(self: &Arc<Self>, id: &str) -> Result<(), ContainerizerError> {
        if !self.cache().pods.contains_key(id) {
            return Ok(());
        }
        let lock = self.locks.pod_exclusive(id).await;
        self.stop_pod_locked(id).await?;
        for c in self.list_containers(&ContainerFilter {
            pod_id: Some(id.to_string()),
            ..Default::default()
        }) {
            self.remove_container(&c.id).await?;
        }
        // Again, now that the containers are gone: what lives as long as the pod's
        // containers (its cgroup) goes now; the rest was undone at stop (idempotent).
        let pod = self.cache().pods.get(id).cloned();
        if let Some(mut pod) = pod {
            self.isolators
                .cleanup_pod(&mut PodContext {
                    pod: &mut pod,
                    paths: &self.paths,
                    init_cgroups: Vec::new(),
                })
                .await?;
        }
        self.teardown(id).await;
        let (me, pid) = (Arc::clone(self), id.to_string());
        blocking(move || Ok(me.db.delete_pod(&pid)?)).await?;
        self.cache().pods.remove(id);
        drop(lock);
        self.locks.forget(id);
        tracing::info!(pod = %id, "pod sandbox removed");
        Ok(())
    }

    /// Undoes the isolators of a pod that never reached the database (the start-up sweep
    /// of what a crash left half made), from what is on disk alone.
    pub(super) async fn cleanup_unrecorded_pod(&self, id: &str) {
        let mut pod = Pod {
            id: id.to_string(),
            config: PodConfig::default(),
            state: PodState::NotReady,
            created_at_ns: 0,
            netns: None,
            ips: Vec::new(),
        };
        if let Err(e) = self
            .isolators
            .cleanup_pod(&mut PodContext {
                pod: &mut pod,
                paths: &self.paths,
                init_cgroups: Vec::new(),
            })
            .await
        {
            tracing::warn!(pod = %id, error = %crate::error::chain(&e), "cleaning up a half-made pod");
        }
        self.teardown(id).await;
    }

    /// Unpins the pod's namespaces and deletes its directory, whatever part of them
    /// exists. Errors are logged: removal must get as far as it can.
    async fn teardown(&self, id: &str) {
        let (paths, pid) = (self.paths.clone(), id.to_string());
        let _ = blocking(move || {
            teardown_sandbox(&paths, &pid);
            Ok(())
        })
        .await;
    }
}

/// The pod's directories and the namespaces its isolators planned, pinned. With a user
/// namespace of its own, a helper process makes them all inside it (`launcher::pod_ns`);
/// otherwise a thread of the daemon does.
fn make_sandbox(
    paths: &Paths,
    binary: &std::path::Path,
    id: &str,
    plan: &PodPlan,
) -> Result<(), ContainerizerError> {
    let dir = paths.pod_dir(id);
    for d in [dir.join("ns"), paths.pod_etc(id)] {
        crate::perm::private_dir(&d).map_err(io("create pod dir", &d))?;
    }
    if let Some(u) = &plan.userns {
        let range = |m: &crate::containerizer::types::IdMapping| crate::sys::userns::Range {
            inside: m.container_id,
            outside: m.host_id,
            length: m.length,
        };
        let spec = crate::launcher::pod_ns::PodNsSpec {
            kinds: plan
                .namespaces
                .iter()
                .filter(|k| **k != PodNamespace::User)
                .map(|k| k.proc_name().to_string())
                .collect(),
            hostname: plan.hostname.clone(),
            sysctls: plan.sysctls.clone(),
            uids: u.uids.iter().map(range).collect(),
            gids: u.gids.iter().map(range).collect(),
        };
        return crate::launcher::pod_ns::create(binary, &spec, &pins(paths, id))
            .map_err(io("create pod namespaces in a user namespace", &dir));
    }
    netns::create_pinned_with(
        &plan.namespaces,
        &pins(paths, id),
        plan.hostname.as_deref(),
        &plan.sysctls,
    )
    .map_err(io("create pod namespaces", &dir))
}

fn teardown_sandbox(paths: &Paths, id: &str) {
    if let Err(e) = netns::remove_pinned(&pins(paths, id)) {
        tracing::warn!(pod = %id, error = %e, "unpinning pod namespaces");
    }
    let dir = paths.pod_dir(id);
    match std::fs::remove_dir_all(&dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            tracing::warn!(pod = %id, error = %e, "removing pod dir")
        }
        _ => {}
    }
}
