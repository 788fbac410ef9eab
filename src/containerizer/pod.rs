//! Pod sandboxes without a pause container: the pod's network, IPC and UTS namespaces are
//! created on a throw-away thread and pinned by bind mounts under the run root; the pod's
//! /etc files and /dev/shm live beside them. Containers join all of that by path. A pod
//! that shares one PID namespace also gets a tiny init of ours (`launcher::pod_init`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::error::{io, ContainerizerError};
use super::types::{ContainerFilter, PidMode, Pod, PodConfig, PodFilter, PodState};
use super::{
    network, new_id, now_ns, paths::Paths, pod_files, sysctl, validate_name, Containerizer,
};
use crate::launcher::pod_init;
use crate::sys::mount::{self, MsFlags};
use crate::sys::netns::{self, PodNamespace, PodPins};

/// What kubelet's retry of the same RunPodSandbox carries.
fn name_key(c: &PodConfig) -> String {
    let m = &c.metadata;
    format!("{}/{}/{}/{}", m.namespace, m.name, m.uid, m.attempt)
}

fn pins(paths: &Paths, id: &str) -> PodPins {
    PodPins {
        net: paths.pod_ns(id, "net"),
        ipc: paths.pod_ns(id, "ipc"),
        uts: paths.pod_ns(id, "uts"),
    }
}

impl Containerizer {
    /// RunPodSandbox. A retry (same namespace, name, uid and attempt), in flight or done,
    /// returns the same pod.
    pub async fn run_pod(self: &Arc<Self>, config: PodConfig) -> Result<Pod, ContainerizerError> {
        validate_name("metadata.name", &config.metadata.name)?;
        validate_name("metadata.namespace", &config.metadata.namespace)?;
        validate_name("metadata.uid", &config.metadata.uid)?;
        if !config.log_directory.is_empty() && !Path::new(&config.log_directory).is_absolute() {
            return Err(ContainerizerError::Invalid {
                field: "log_directory",
                value: config.log_directory.clone(),
                reason: "must be an absolute path",
            });
        }
        // A bad hostname or bandwidth annotation is the caller's mistake, and a missing
        // network the node's: say so before anything is created.
        pod_files::hostname_file(&pod_hostname(&config))?;
        let key = name_key(&config);
        network::bandwidth(&key, &config)?;
        sysctl::resolve(&config)?;
        self.check_network(&key, &config)?;
        if let Some(existing) = self
            .cache()
            .pods
            .values()
            .find(|p| name_key(&p.config) == key)
        {
            return Ok(existing.clone());
        }
        let me = Arc::clone(self);
        let (flight, _) = self
            .pod_flights
            .join(&key, async move { me.create_pod(config).await });
        let id = flight.await.map_err(shared)?;
        self.pod_status(&id)
    }

    async fn create_pod(self: Arc<Self>, config: PodConfig) -> Result<String, ContainerizerError> {
        let id = new_id();
        let (paths, binary) = (self.paths.clone(), self.binary.clone());
        let (pid, cfg) = (id.clone(), config.clone());
        let netns = tokio::task::spawn_blocking(move || {
            let result = setup_pod(&paths, &binary, &pid, &cfg);
            if result.is_err() {
                teardown_pod(&paths, &pid);
            }
            result
        })
        .await
        .map_err(|e| ContainerizerError::Task(e.to_string()))??;
        let mut ips = Vec::new();
        if let Some(pin) = &netns {
            let bw = network::bandwidth(&id, &config)?;
            match self.attach(&id, pin, &config, bw).await {
                Ok(found) => ips = found.iter().map(|ip| ip.to_string()).collect(),
                Err(e) => {
                    let (paths, pid) = (self.paths.clone(), id.clone());
                    let _ = tokio::task::spawn_blocking(move || teardown_pod(&paths, &pid)).await;
                    return Err(e);
                }
            }
        }
        let pod = Pod {
            id: id.clone(),
            config,
            state: PodState::Ready,
            created_at_ns: now_ns(),
            netns,
            ips,
        };
        if let Err(e) = self.db.put_pod(&pod) {
            if pod.netns.is_some() {
                let _ = self.detach(&id).await;
            }
            let (paths, pid) = (self.paths.clone(), id.clone());
            let _ = tokio::task::spawn_blocking(move || teardown_pod(&paths, &pid)).await;
            return Err(e.into());
        }
        tracing::info!(pod = %id, name = %name_key(&pod.config), "pod sandbox ready");
        self.cache().pods.insert(id.clone(), pod);
        Ok(id)
    }

    pub fn pod_status(&self, wanted: &str) -> Result<Pod, ContainerizerError> {
        let id = self
            .pod_id(wanted)?
            .ok_or_else(|| ContainerizerError::PodNotFound {
                id: wanted.to_string(),
            })?;
        self.cache()
            .pods
            .get(&id)
            .cloned()
            .ok_or(ContainerizerError::PodNotFound { id })
    }

    pub fn list_pods(&self, filter: &PodFilter) -> Result<Vec<Pod>, ContainerizerError> {
        let wanted_id = match &filter.id {
            Some(w) if !w.is_empty() => match self.pod_id(w)? {
                Some(id) => Some(id),
                None => return Ok(vec![]),
            },
            _ => None,
        };
        let mut pods: Vec<Pod> = self
            .cache()
            .pods
            .values()
            .filter(|p| wanted_id.as_ref().is_none_or(|id| *id == p.id))
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
        Ok(pods)
    }

    /// StopPodSandbox: kills every container of the pod; the pod stays (NotReady) until
    /// removed. Idempotent; an unknown pod is not an error (it may already be removed).
    pub async fn stop_pod(self: &Arc<Self>, wanted: &str) -> Result<(), ContainerizerError> {
        let Some(id) = self.pod_id(wanted)? else {
            return Ok(());
        };
        for c in self.list_containers(&ContainerFilter {
            pod_id: Some(id.clone()),
            ..Default::default()
        })? {
            self.stop_container(&c.id, 0).await?;
        }
        let lock = self.lock_for(&id);
        let _held = lock.lock().await;
        let Some(mut pod) = self.cache().pods.get(&id).cloned() else {
            return Ok(());
        };
        // Ends whatever the containers left in a shared PID namespace.
        let dir = self.paths.pod_dir(&id);
        if let Err(e) = pod_init::stop(&dir) {
            tracing::warn!(pod = %id, error = %e, "stopping the pod init");
        }
        // CNI DEL: veth, IP reservation and host ports go now; kubelet retries the stop
        // while this fails. Repeating it is harmless.
        if !pod.config.host_network {
            self.detach(&id).await?;
        }
        if pod.state != PodState::NotReady {
            pod.state = PodState::NotReady;
            self.db.put_pod(&pod)?;
            self.cache().pods.insert(id.clone(), pod);
            tracing::info!(pod = %id, "pod sandbox stopped");
        }
        Ok(())
    }

    /// Removes every pod and container (`--recover cleanup`), containers outside any
    /// known pod included.
    pub async fn remove_everything(self: &Arc<Self>) -> Result<(), ContainerizerError> {
        let pods: Vec<String> = self.cache().pods.keys().cloned().collect();
        for id in pods {
            self.remove_pod(&id).await?;
        }
        let orphans: Vec<String> = self.cache().containers.keys().cloned().collect();
        for id in orphans {
            self.remove_container(&id).await?;
        }
        Ok(())
    }

    /// RemovePodSandbox: stops it, removes its containers, unpins its namespaces and
    /// deletes its files. Idempotent; an unknown pod is not an error.
    pub async fn remove_pod(self: &Arc<Self>, wanted: &str) -> Result<(), ContainerizerError> {
        let Some(id) = self.pod_id(wanted)? else {
            return Ok(());
        };
        self.stop_pod(&id).await?;
        for c in self.list_containers(&ContainerFilter {
            pod_id: Some(id.clone()),
            ..Default::default()
        })? {
            self.remove_container(&c.id).await?;
        }
        let lock = self.lock_for(&id);
        let _held = lock.lock().await;
        let (paths, pid) = (self.paths.clone(), id.clone());
        tokio::task::spawn_blocking(move || teardown_pod(&paths, &pid))
            .await
            .map_err(|e| ContainerizerError::Task(e.to_string()))?;
        self.db.delete_pod(&id)?;
        self.cache().pods.remove(&id);
        self.forget_lock(&id);
        tracing::info!(pod = %id, "pod sandbox removed");
        Ok(())
    }
}

fn shared(e: Arc<ContainerizerError>) -> ContainerizerError {
    Arc::try_unwrap(e).unwrap_or_else(|e| ContainerizerError::Start {
        id: String::new(),
        message: crate::error::chain(&*e),
    })
}

/// Namespaces, /etc files and /dev/shm for a new pod. Returns the network namespace pin.
fn setup_pod(
    paths: &Paths,
    binary: &Path,
    id: &str,
    config: &PodConfig,
) -> Result<Option<PathBuf>, ContainerizerError> {
    let dir = paths.pod_dir(id);
    for d in [dir.join("ns"), paths.pod_etc(id), paths.pod_shm(id)] {
        crate::perm::private_dir(&d).map_err(io("create pod dir", &d))?;
    }
    let mut kinds = Vec::new();
    if !config.host_network {
        kinds.push(PodNamespace::Net);
        kinds.push(PodNamespace::Uts);
    }
    if !config.host_ipc {
        kinds.push(PodNamespace::Ipc);
    }
    let pins = pins(paths, id);
    let hostname = pod_hostname(config);
    netns::create_pinned_with(
        &kinds,
        &pins,
        (!config.host_network).then_some(hostname.as_str()),
        &sysctl::resolve(config)?,
    )
    .map_err(io("create pod namespaces", &dir))?;
    if config.pid == PidMode::Pod {
        let init = pod_init::start(binary, &dir).map_err(io("start pod init", &dir))?;
        let pin = paths.pod_ns(id, "pid");
        netns::pin(Path::new(&format!("/proc/{}/ns/pid", init.pid)), &pin)
            .map_err(io("pin pod PID namespace", &pin))?;
    }
    let dns = pod_files::DnsConfig {
        servers: config.dns.servers.clone(),
        searches: config.dns.searches.clone(),
        options: config.dns.options.clone(),
    };
    // Pod IPs come with the network isolator; until then hosts names only localhost.
    pod_files::write_all(
        &paths.pod_etc(id),
        &hostname,
        &[],
        &dns,
        Path::new(pod_files::HOST_RESOLV_CONF),
    )?;
    if !config.host_ipc {
        let shm = paths.pod_shm(id);
        mount::mount_fs(
            "tmpfs",
            &shm,
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            Some("mode=1777,size=65536k"),
        )
        .map_err(io("mount pod /dev/shm", &shm))?;
    }
    Ok((!config.host_network).then(|| pins.net.clone()))
}

/// The pod's hostname: the request's, else the node's (containerd does the same; the
/// pod name can be longer than a hostname may be).
fn pod_hostname(config: &PodConfig) -> String {
    if !config.hostname.is_empty() {
        return config.hostname.clone();
    }
    nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "localhost".into())
}

/// Undoes `setup_pod`, whatever part of it happened. Errors are logged: removal must get
/// as far as it can.
pub(super) fn teardown_pod(paths: &Paths, id: &str) {
    if let Err(e) = pod_init::stop(&paths.pod_dir(id)) {
        tracing::warn!(pod = %id, error = %e, "stopping the pod init");
    }
    if let Err(e) = netns::unpin(&paths.pod_ns(id, "pid")) {
        tracing::warn!(pod = %id, error = %e, "unpinning the pod PID namespace");
    }
    let shm = paths.pod_shm(id);
    if let Err(e) = mount::detach(&shm) {
        tracing::warn!(pod = %id, error = %e, "unmounting pod /dev/shm");
    }
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
