//! CreateContainer.

use std::sync::Arc;

use super::super::error::ContainerizerError;
use super::super::types::{Container, ContainerConfig, ContainerState, EventKind, PidMode};
use super::super::{blocking, new_id, now_ns, validate_name, Containerizer};
use crate::isolators::docker::runtime::ImageRuntime;
use crate::sys::pidfd::ProcessId;

impl Containerizer {
    /// CreateContainer, in `pod_id`'s pod or standalone. Returns the container and whether
    /// this call made it: a request with the key of a container that exists, or is being
    /// made, gets that one (kubelet's retries; a Mesos id launched twice).
    pub async fn create_container(
        self: &Arc<Self>,
        pod_id: Option<&str>,
        config: ContainerConfig,
    ) -> Result<(Container, bool), ContainerizerError> {
        if config.key.is_empty() {
            return Err(ContainerizerError::Invalid {
                field: "key",
                value: String::new(),
                reason: "must not be empty",
            });
        }
        if let Some(id) = &config.id {
            validate_name("container id", id)?;
        }
        if config.image.is_empty() {
            return Err(ContainerizerError::Invalid {
                field: "image",
                value: String::new(),
                reason: "must not be empty",
            });
        }
        if let Some(c) = self.by_key(&config.key) {
            return Ok((c, false));
        }
        if let Some(id) = &config.id {
            if self.cache().containers.contains_key(id) {
                return Err(ContainerizerError::AlreadyExists { id: id.clone() });
            }
        }
        let me = Arc::clone(self);
        let pod_id = pod_id.map(str::to_string);
        let key = config.key.clone();
        let (flight, started) = self
            .container_flights
            .join(&key, async move { me.build(pod_id, config).await });
        let id = flight.await.map_err(super::super::flight_error)?;
        let c = self
            .cache()
            .containers
            .get(&id)
            .cloned()
            .ok_or(ContainerizerError::ContainerNotFound { id })?;
        Ok((c, started))
    }

    fn by_key(&self, key: &str) -> Option<Container> {
        self.cache()
            .containers
            .values()
            .find(|c| c.config.key == key)
            .cloned()
    }

    /// The single flight of a creation (a spawned task: a client that gives up does not
    /// cancel it half-way).
    async fn build(
        self: Arc<Self>,
        pod_id: Option<String>,
        config: ContainerConfig,
    ) -> Result<String, ContainerizerError> {
        // The pod stays as it is until the container is recorded: RemovePodSandbox waits
        // for this, then removes the container with the pod.
        let _pod_lock = match &pod_id {
            Some(p) => Some(self.locks.pod_shared(p).await),
            None => None,
        };
        let pod = match &pod_id {
            Some(p) => {
                let pod = self.pod_status(p)?;
                if !pod.state.can_run_containers() {
                    return Err(ContainerizerError::PodNotReady { id: pod.id });
                }
                Some(pod)
            }
            None => None,
        };
        // Everything the request could get wrong, before anything is made.
        let (me, cfg, p) = (Arc::clone(&self), config.clone(), pod.clone());
        blocking(move || Ok(me.isolators.check(&cfg, p.as_ref())?)).await?;
        let image =
            self.store
                .status(&config.image)?
                .ok_or_else(|| ContainerizerError::ImageNotFound {
                    image: config.image.clone(),
                })?;
        let image_config = self.store.config(&image.id)?.unwrap_or_default();
        let runtime = ImageRuntime::from_image_config_bytes(&image_config)?;
        let pid_target = self.pid_target(&config).await?;
        let id = config.id.clone().unwrap_or_else(new_id);
        // The image is held from before its layers are stacked until the container is
        // removed, so a prune cannot delete a layer under the new rootfs.
        self.store.acquire(&image.id).await?;
        crate::crash::point("create:image-acquired");
        let layers = self.store.layer_dirs(&image.id)?;
        let me = Arc::clone(&self);
        let (cid, p, cfg) = (id.clone(), pod.clone(), config.clone());
        let built = blocking(move || {
            me.prepare_container(&cid, p.as_ref(), &cfg, &runtime, &layers, pid_target)
        })
        .await;
        if let Err(e) = built {
            self.discard(&id, &image.id).await;
            return Err(e);
        }
        crate::crash::point("create:prepared");
        let container = Container {
            id: id.clone(),
            pod_id,
            config,
            state: ContainerState::Created,
            image_id: image.id.clone(),
            created_at_ns: now_ns(),
            started_at_ns: 0,
            finished_at_ns: 0,
            exit_code: 0,
            ending: None,
            process: None,
        };
        let me = Arc::clone(&self);
        let record = container.clone();
        if let Err(e) = blocking(move || Ok(me.db.put_container(&record)?)).await {
            self.discard(&id, &image.id).await;
            return Err(e);
        }
        self.cache()
            .containers
            .insert(id.clone(), container.clone());
        self.emit(&container, EventKind::Created);
        tracing::info!(container = %id, pod = ?container.pod_id, image = %image.id, "container created");
        Ok(id)
    }

    /// For `PidMode::Target`: the target's process, which must be running.
    async fn pid_target(
        self: &Arc<Self>,
        config: &ContainerConfig,
    ) -> Result<Option<ProcessId>, ContainerizerError> {
        let PidMode::Target(target) = &config.pid else {
            return Ok(None);
        };
        let c = self.container_status(target).await?;
        match (c.state, c.process) {
            (ContainerState::Running, Some(p)) if p.is_running() => Ok(Some(p)),
            _ => Err(ContainerizerError::BadState {
                id: c.id,
                state: c.state,
                op: "share its PID namespace",
            }),
        }
    }

    /// Undoes a partial creation: rootfs, bundle, container dir, the image's use.
    async fn discard(self: &Arc<Self>, id: &str, image_id: &str) {
        let (me, cid) = (Arc::clone(self), id.to_string());
        let _ = blocking(move || {
            me.discard_now(&cid);
            Ok(())
        })
        .await;
        if let Err(e) = self.store.release(image_id).await {
            tracing::warn!(container = %id, error = %e, "releasing the image");
        }
    }

    /// Removes a container's rootfs, bundle and directories, blocking. For creations that
    /// failed and for what the start-up sweep finds half made.
    pub(in crate::containerizer) fn discard_now(&self, id: &str) {
        let (rootfs, scratch) = (self.paths.rootfs(id), self.paths.scratch(id));
        if let Err(e) = self.backend.destroy(&rootfs, &scratch) {
            tracing::warn!(container = %id, error = %e, "destroying rootfs");
        }
        for dir in [self.paths.bundle(id), self.paths.container_dir(id)] {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
