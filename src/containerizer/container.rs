//! Containers: create (rootfs + launch spec), start (a monitor per container), stop
//! (stop signal, then SIGKILL after the timeout), remove, status. The monitor's files in
//! the bundle are the truth about a running container: its pid, and its exit once it
//! has ended — also when the daemon was down at the time.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::error::{io, ContainerizerError};
use super::types::{
    Container, ContainerConfig, ContainerFilter, ContainerState, EventKind, PidMode, Pod, PodState,
};
use super::{new_id, now_ns, validate_name, Containerizer};
use crate::isolators::docker::runtime::{self as docker, ImageRuntime};
use crate::launcher::spec::{
    JoinNamespace, LaunchSpec, Mount, MountPropagation, NamespaceKind, Process,
    DEFAULT_CAPABILITIES, MASKED_PATHS, READONLY_PATHS,
};
use crate::monitor::{self, MonitorConfig};
use crate::sys::pidfd::ProcessId;

/// In the bundle while a stop is under way: the deadline (ns) after which it kills.
const STOP_MARKER: &str = "stopping";

fn name_key(pod_id: &str, c: &ContainerConfig) -> String {
    format!("{pod_id}/{}/{}", c.metadata.name, c.metadata.attempt)
}

/// A log path must stay inside the pod's log directory.
fn validate_log_path(value: &str) -> Result<(), ContainerizerError> {
    let p = Path::new(value);
    if p.is_absolute()
        || p.components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(ContainerizerError::Invalid {
            field: "log_path",
            value: value.to_string(),
            reason: "must be relative to the pod's log directory and stay inside it",
        });
    }
    Ok(())
}

impl Containerizer {
    /// CreateContainer. A retry (same pod, name and attempt) returns the same container.
    pub async fn create_container(
        self: &Arc<Self>,
        pod_id: &str,
        config: ContainerConfig,
    ) -> Result<Container, ContainerizerError> {
        validate_name("metadata.name", &config.metadata.name)?;
        validate_log_path(&config.log_path)?;
        if config.image.is_empty() {
            return Err(ContainerizerError::Invalid {
                field: "image.image",
                value: String::new(),
                reason: "must not be empty",
            });
        }
        let pod = self.pod_status(pod_id)?;
        if pod.state != PodState::Ready {
            return Err(ContainerizerError::PodNotReady { id: pod.id });
        }
        let key = name_key(&pod.id, &config);
        if let Some(c) = self
            .cache()
            .containers
            .values()
            .find(|c| name_key(&c.pod_id, &c.config) == key)
        {
            return Ok(c.clone());
        }
        let me = Arc::clone(self);
        let (flight, _) = self
            .container_flights
            .join(&key, async move { me.build(pod, config).await });
        let id = flight.await.map_err(|e| {
            Arc::try_unwrap(e).unwrap_or_else(|e| ContainerizerError::Start {
                id: String::new(),
                message: crate::error::chain(&*e),
            })
        })?;
        self.container_status(&id)
    }

    async fn build(
        self: Arc<Self>,
        pod: Pod,
        config: ContainerConfig,
    ) -> Result<String, ContainerizerError> {
        let image =
            self.store
                .status(&config.image)?
                .ok_or_else(|| ContainerizerError::ImageNotFound {
                    image: config.image.clone(),
                })?;
        let image_config = self.store.config(&image.id)?.unwrap_or_default();
        let runtime = ImageRuntime::from_image_config_bytes(&image_config)?;
        let args = docker::cri_argv(&runtime, &config.command, &config.args)?;
        for m in &config.mounts {
            if !m.container_path.starts_with('/') {
                return Err(ContainerizerError::Invalid {
                    field: "mounts.container_path",
                    value: m.container_path.clone(),
                    reason: "must be an absolute path",
                });
            }
            if !m.host_path.exists() {
                return Err(ContainerizerError::Invalid {
                    field: "mounts.host_path",
                    value: m.host_path.display().to_string(),
                    reason: "does not exist",
                });
            }
            check_propagation(m)?;
        }
        let id = new_id();
        let layers = self.store.layer_dirs(&image.id)?;
        let me = Arc::clone(&self);
        let (cid, pod2, cfg, rt) = (id.clone(), pod.clone(), config.clone(), runtime.clone());
        let built =
            tokio::task::spawn_blocking(move || me.prepare(&cid, &pod2, &cfg, &rt, args, &layers))
                .await
                .map_err(|e| ContainerizerError::Task(e.to_string()))?;
        if let Err(e) = built {
            self.discard(&id).await;
            return Err(e);
        }
        if let Err(e) = self.store.acquire(&image.id).await {
            self.discard(&id).await;
            return Err(e.into());
        }
        let log_path = (!pod.config.log_directory.is_empty() && !config.log_path.is_empty())
            .then(|| Path::new(&pod.config.log_directory).join(&config.log_path));
        let container = Container {
            id: id.clone(),
            pod_id: pod.id.clone(),
            config,
            state: ContainerState::Created,
            image_id: image.id.clone(),
            created_at_ns: now_ns(),
            started_at_ns: 0,
            finished_at_ns: 0,
            exit_code: 0,
            reason: String::new(),
            message: String::new(),
            log_path,
            process: None,
        };
        if let Err(e) = self.db.put_container(&container) {
            let _ = self.store.release(&image.id).await;
            self.discard(&id).await;
            return Err(e.into());
        }
        self.cache()
            .containers
            .insert(id.clone(), container.clone());
        self.emit(&container, EventKind::Created);
        tracing::info!(container = %id, pod = %pod.id, image = %image.id, "container created");
        Ok(id)
    }

    /// The blocking part of creation: rootfs, user, mounts, the launch spec on disk.
    fn prepare(
        &self,
        id: &str,
        pod: &Pod,
        config: &ContainerConfig,
        runtime: &ImageRuntime,
        args: Vec<String>,
        layers: &[PathBuf],
    ) -> Result<(), ContainerizerError> {
        let rootfs = self.paths.rootfs(id);
        let scratch = self.paths.scratch(id);
        crate::perm::private_dir(&self.paths.container_dir(id))
            .map_err(io("create container dir", &rootfs))?;
        self.backend.provision(layers, &rootfs, &scratch)?;
        let user_spec = config
            .user
            .clone()
            .or_else(|| runtime.user().map(str::to_string))
            .unwrap_or_default();
        let user =
            crate::launcher::user::resolve(&rootfs, &user_spec, &config.supplemental_groups)?;
        let hostname = std::fs::read_to_string(self.paths.pod_etc(&pod.id).join("hostname"))
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| pod.config.hostname.clone());
        let mut env = docker::merge_env(runtime.env(), &config.env);
        env = docker::with_hostname(env, &hostname);
        if !env.iter().any(|e| e.starts_with("HOME=")) {
            env.push(format!("HOME={}", user.home));
        }
        let mut mounts: Vec<Mount> = Vec::new();
        for file in ["hosts", "hostname", "resolv.conf"] {
            let dest = format!("/etc/{file}");
            if !config.mounts.iter().any(|m| m.container_path == dest) {
                mounts.push(Mount {
                    source: self.paths.pod_etc(&pod.id).join(file),
                    destination: dest,
                    readonly: false,
                    propagation: MountPropagation::Private,
                });
            }
        }
        mounts.extend(config.mounts.iter().map(|m| Mount {
            source: m.host_path.clone(),
            destination: m.container_path.clone(),
            readonly: m.readonly,
            propagation: m.propagation,
        }));
        let mut join = Vec::new();
        if let Some(net) = &pod.netns {
            join.push(JoinNamespace {
                kind: NamespaceKind::Net,
                path: net.clone(),
                owner: None,
            });
            join.push(JoinNamespace {
                kind: NamespaceKind::Uts,
                path: self.paths.pod_ns(&pod.id, "uts"),
                owner: None,
            });
        }
        if !pod.config.host_ipc {
            join.push(JoinNamespace {
                kind: NamespaceKind::Ipc,
                path: self.paths.pod_ns(&pod.id, "ipc"),
                owner: None,
            });
        }
        let (new_pid_namespace, pid_join) = self.pid_namespace(pod, config)?;
        join.extend(pid_join);
        // Privileged: nothing hidden or frozen (containerd and CRI-O do the same); otherwise
        // the request's lists, or ours when it sends none.
        let paths_or = |given: &[String], default: &[&str]| -> Vec<String> {
            if config.privileged {
                Vec::new()
            } else if given.is_empty() {
                default.iter().map(|p| p.to_string()).collect()
            } else {
                given.to_vec()
            }
        };
        let spec = LaunchSpec {
            rootfs: rootfs.clone(),
            process: Process {
                args,
                env,
                cwd: docker::cri_working_dir(runtime, &config.working_dir),
                uid: user.uid,
                gid: user.gid,
                additional_gids: user.additional_gids.clone(),
                no_new_privs: config.no_new_privs,
                capabilities: Some(capabilities(config)),
            },
            // A host-network pod has no UTS namespace of its own to join.
            hostname: pod
                .netns
                .is_none()
                .then(|| hostname.clone())
                .filter(|_| !pod.config.host_network),
            join,
            new_pid_namespace,
            new_ipc_namespace: !pod.config.host_ipc,
            mounts,
            shm: Some(if pod.config.host_ipc {
                PathBuf::from("/dev/shm")
            } else {
                self.paths.pod_shm(&pod.id)
            }),
            readonly_rootfs: config.readonly_rootfs,
            // Applied by the launcher where allowed; see `Containerizer::open`.
            oom_score_adj: config.oom_score_adj,
            masked_paths: paths_or(&config.masked_paths, MASKED_PATHS),
            readonly_paths: paths_or(&config.readonly_paths, READONLY_PATHS),
            privileged: config.privileged,
        };
        let bundle = self.paths.bundle(id);
        crate::perm::private_dir(&bundle).map_err(io("create bundle", &bundle))?;
        let log_path = (!pod.config.log_directory.is_empty() && !config.log_path.is_empty())
            .then(|| Path::new(&pod.config.log_directory).join(&config.log_path));
        let monitor_config = MonitorConfig {
            spec,
            log_path: log_path.unwrap_or_default(),
            log_dir: PathBuf::from(&pod.config.log_directory),
        };
        // 0600: the spec holds the container's environment (see `perm`).
        let file = bundle.join(monitor::CONFIG_FILE);
        monitor_config
            .store(&bundle)
            .map_err(io("write launch spec", &file))
    }

    /// Whether the container gets a PID namespace of its own, and which one it joins if not.
    fn pid_namespace(
        &self,
        pod: &Pod,
        config: &ContainerConfig,
    ) -> Result<(bool, Option<JoinNamespace>), ContainerizerError> {
        let join = |path: PathBuf, owner: Option<ProcessId>| {
            Some(JoinNamespace {
                kind: NamespaceKind::Pid,
                path,
                owner,
            })
        };
        match &config.pid {
            PidMode::Container => Ok((true, None)),
            PidMode::Node => Ok((false, None)),
            PidMode::Pod => {
                if pod.config.pid != PidMode::Pod {
                    return Err(ContainerizerError::Invalid {
                        field: "namespace_options.pid",
                        value: "POD".into(),
                        reason: "the pod sandbox was not created with a shared PID namespace",
                    });
                }
                Ok((false, join(self.paths.pod_ns(&pod.id, "pid"), None)))
            }
            PidMode::Target(target) => {
                let id = self.known_container(target)?;
                let c = self.refreshed(&id)?;
                match (c.state, c.process) {
                    (ContainerState::Running, Some(p)) if p.is_running() => Ok((
                        false,
                        join(PathBuf::from(format!("/proc/{}/ns/pid", p.pid)), Some(p)),
                    )),
                    _ => Err(ContainerizerError::BadState {
                        id,
                        state: c.state,
                        op: "share its PID namespace",
                    }),
                }
            }
        }
    }

    /// Undoes a partial creation (rootfs, bundle, container dir).
    async fn discard(&self, id: &str) {
        self.discard_now(id)
    }

    /// [`Self::discard`], blocking (a few unmounts and removals).
    pub(super) fn discard_now(&self, id: &str) {
        let (rootfs, scratch) = (self.paths.rootfs(id), self.paths.scratch(id));
        if let Err(e) = self.backend.destroy(&rootfs, &scratch) {
            tracing::warn!(container = %id, error = %e, "destroying rootfs");
        }
        for dir in [self.paths.bundle(id), self.paths.container_dir(id)] {
            let _ = std::fs::remove_dir_all(dir);
        }
    }

    /// StartContainer: starts the monitor, which starts the process.
    pub async fn start_container(self: &Arc<Self>, wanted: &str) -> Result<(), ContainerizerError> {
        let id = self.known_container(wanted)?;
        let lock = self.lock_for(&id);
        let _held = lock.lock().await;
        let mut c = self.refreshed(&id)?;
        if c.state != ContainerState::Created {
            return Err(ContainerizerError::BadState {
                id,
                state: c.state,
                op: "start",
            });
        }
        self.make_log_dir(&c)?;
        let (binary, bundle) = (self.binary.clone(), self.paths.bundle(&id));
        let started = tokio::task::spawn_blocking(move || spawn_monitor(&binary, &bundle))
            .await
            .map_err(|e| ContainerizerError::Task(e.to_string()))?;
        match started {
            Ok(process) => {
                c.state = ContainerState::Running;
                c.process = Some(process);
                c.started_at_ns = now_ns();
                self.save(&c)?;
                self.emit(&c, EventKind::Started);
                tracing::info!(container = %id, pid = process.pid, "container started");
                self.watch_exit(&id);
                Ok(())
            }
            Err(message) => {
                // As containerd does: the container is done, with the reason on record.
                c.state = ContainerState::Exited;
                c.exit_code = 128;
                c.reason = "StartError".into();
                c.message = message.clone();
                c.finished_at_ns = now_ns();
                self.save(&c)?;
                Err(ContainerizerError::Start { id, message })
            }
        }
    }

    /// The directories of the container's log path below the pod's log directory, made
    /// without following symlinks: a container may see the log directory through a
    /// volume and plant one (kubelet makes the log directory itself; it is taken as is).
    fn make_log_dir(&self, c: &Container) -> Result<(), ContainerizerError> {
        let Some(pod) = self.cache().pods.get(&c.pod_id).cloned() else {
            return Ok(());
        };
        let base = Path::new(&pod.config.log_directory);
        let Some(rel) = c
            .log_path
            .as_ref()
            .and_then(|p| p.strip_prefix(base).ok())
            .and_then(Path::parent)
        else {
            return Ok(());
        };
        std::fs::create_dir_all(base).map_err(io("create log dir", base))?;
        let root = crate::sys::inroot::Root::open(base).map_err(io("open log dir", base))?;
        crate::sys::inroot::mkdir_all_beneath(std::os::fd::AsFd::as_fd(&root), rel, 0o755)
            .map_err(io("create log dir", &base.join(rel)))
    }

    fn save(&self, c: &Container) -> Result<(), ContainerizerError> {
        self.db.put_container(c)?;
        self.cache().containers.insert(c.id.clone(), c.clone());
        Ok(())
    }

    fn known_container(&self, wanted: &str) -> Result<String, ContainerizerError> {
        self.container_id(wanted)?
            .ok_or_else(|| ContainerizerError::ContainerNotFound {
                id: wanted.to_string(),
            })
    }

    /// The container, with its end applied if it has ended (see [`Self::ended`]).
    /// Applying it is atomic: of two callers racing, one records the exit and emits
    /// STOPPED.
    pub(super) fn refreshed(&self, id: &str) -> Result<Container, ContainerizerError> {
        let _one = self.exits.lock().unwrap_or_else(|p| p.into_inner());
        let mut c = self
            .cache()
            .containers
            .get(id)
            .cloned()
            .ok_or_else(|| ContainerizerError::ContainerNotFound { id: id.to_string() })?;
        if c.state != ContainerState::Running {
            return Ok(c);
        }
        match self.ended(&c) {
            None => return Ok(c),
            Some(Some(exit)) => {
                c.exit_code = exit.exit_code;
                c.finished_at_ns = exit.finished_at_ns;
                // The monitor saw the exec; the daemon only saw its report, possibly
                // after a fast process had already ended.
                if exit.started_at_ns > 0 {
                    c.started_at_ns = exit.started_at_ns;
                }
                c.reason = if exit.oom_killed {
                    "OOMKilled"
                } else if exit.exit_code == 0 {
                    "Completed"
                } else {
                    "Error"
                }
                .into();
            }
            Some(None) => {
                // containerd's answer when a shim is gone: exit code 255, reason Unknown.
                c.exit_code = 255;
                c.finished_at_ns = now_ns();
                c.reason = "Unknown".into();
                c.message = "its monitor ended without recording how the container ended".into();
            }
        }
        c.state = ContainerState::Exited;
        c.process = None;
        self.save(&c)?;
        self.emit(&c, EventKind::Stopped);
        Ok(c)
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

    pub fn container_status(&self, wanted: &str) -> Result<Container, ContainerizerError> {
        let id = self.known_container(wanted)?;
        self.refreshed(&id)
    }

    pub fn list_containers(
        &self,
        filter: &ContainerFilter,
    ) -> Result<Vec<Container>, ContainerizerError> {
        let wanted_id = match &filter.id {
            Some(w) if !w.is_empty() => match self.container_id(w)? {
                Some(id) => Some(id),
                None => return Ok(vec![]),
            },
            _ => None,
        };
        let wanted_pod = match &filter.pod_id {
            Some(w) if !w.is_empty() => match self.pod_id(w)? {
                Some(id) => Some(id),
                None => return Ok(vec![]),
            },
            _ => None,
        };
        // From the cache: the exit watcher records exits as they happen, so kubelet's
        // relist (every second) does not read every running container's bundle.
        let all: Vec<Container> = self.cache().containers.values().cloned().collect();
        let mut out = Vec::new();
        for c in all {
            if wanted_id.as_ref().is_some_and(|w| *w != c.id)
                || wanted_pod.as_ref().is_some_and(|w| *w != c.pod_id)
                || filter.state.is_some_and(|s| s != c.state)
                || !filter
                    .labels
                    .iter()
                    .all(|(k, v)| c.config.labels.get(k) == Some(v))
            {
                continue;
            }
            out.push(c);
        }
        out.sort_by_key(|c| c.created_at_ns);
        Ok(out)
    }

    /// StopContainer: the image's stop signal (else SIGTERM), SIGKILL after `timeout`
    /// seconds. Idempotent: a container that is not running is left as it is.
    pub async fn stop_container(
        self: &Arc<Self>,
        wanted: &str,
        timeout: i64,
    ) -> Result<(), ContainerizerError> {
        let id = self.known_container(wanted)?;
        let lock = self.lock_for(&id);
        let _held = lock.lock().await;
        let c = self.refreshed(&id)?;
        let (ContainerState::Running, Some(process)) = (c.state, c.process) else {
            return Ok(());
        };
        let signal = self.stop_signal(&c);
        let bundle = self.paths.bundle(&id);
        let grace = super::timeout(timeout).unwrap_or(Duration::ZERO);
        // Written before the first signal: if the daemon dies mid-stop, the restarted one
        // finishes the stop by this deadline (`resume_stops`).
        let marker = bundle.join(STOP_MARKER);
        let deadline = now_ns().saturating_add(grace.as_nanos() as i64);
        crate::perm::write_private(&marker, deadline.to_string().as_bytes())
            .map_err(io("record stop", &marker))?;
        tokio::task::spawn_blocking(move || {
            // Signals go to the recorded process only, through a pidfd: once it has
            // ended, its pid may be another process's (see `sys::pidfd`).
            let send = |sig| match process.signal(sig) {
                Ok(sent) => sent,
                Err(e) => {
                    tracing::warn!(pid = process.pid, error = %e, "signalling the container");
                    false
                }
            };
            if !grace.is_zero() && send(signal) && wait_exit(&bundle, grace) {
                return;
            }
            send(libc::SIGKILL);
            // SIGKILL cannot be ignored; the wait is for the monitor to record it (or,
            // when the process had already ended, to finish doing so).
            wait_exit(&bundle, Duration::from_secs(10));
        })
        .await
        .map_err(|e| ContainerizerError::Task(e.to_string()))?;
        let c = self.refreshed(&id)?;
        let _ = std::fs::remove_file(&marker);
        tracing::info!(container = %id, exit_code = c.exit_code, "container stopped");
        Ok(())
    }

    /// Notices the container's end as it happens (kubelet's evented PLEG waits for the
    /// STOPPED event): waits on its monitor, which exits right after recording the exit.
    pub(super) fn watch_exit(self: &Arc<Self>, id: &str) {
        let bundle = self.paths.bundle(id);
        // The monitor removes its pid file as it exits: no file, or no such process,
        // means the container has already ended and its record is there to read.
        let monitor_fd = monitor::live_monitor(&bundle)
            .ok()
            .flatten()
            .and_then(|m| m.open().ok().flatten());
        let me = Arc::clone(self);
        let id = id.to_string();
        tokio::spawn(async move {
            if let Some(fd) = monitor_fd {
                if let Err(e) = crate::sys::pidfd::exited(fd).await {
                    tracing::warn!(container = %id, error = %e, "waiting for the monitor");
                }
            }
            let _ = me.refreshed(&id);
        });
    }

    /// After start-up, for every container that was running: watch for its end, and
    /// finish a stop a previous daemon had begun (the marker holds the deadline it had
    /// promised).
    pub fn resume(self: &Arc<Self>) {
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
            let remaining =
                (text.trim().parse::<i64>().unwrap_or(0) - now_ns()).max(0) / 1_000_000_000;
            tracing::info!(container = %id, remaining_s = remaining, "finishing a stop begun before the restart");
            let me = Arc::clone(self);
            tokio::spawn(async move {
                if let Err(e) = me.stop_container(&id, remaining).await {
                    tracing::warn!(container = %id, error = %e, "finishing an interrupted stop");
                }
            });
        }
    }

    fn stop_signal(&self, c: &Container) -> i32 {
        let config = self
            .store
            .config(&c.image_id)
            .ok()
            .flatten()
            .unwrap_or_default();
        ImageRuntime::from_image_config_bytes(&config)
            .ok()
            .and_then(|rt| rt.stop_signal().and_then(crate::sys::kill::parse_signal))
            .unwrap_or(libc::SIGTERM)
    }

    /// RemoveContainer: stops it if needed, then removes its rootfs and bundle. The log
    /// stays (kubelet owns log files). An unknown container is not an error.
    pub async fn remove_container(
        self: &Arc<Self>,
        wanted: &str,
    ) -> Result<(), ContainerizerError> {
        let Some(id) = self.container_id(wanted)? else {
            return Ok(());
        };
        self.stop_container(&id, 0).await?;
        let lock = self.lock_for(&id);
        let _held = lock.lock().await;
        let Some(c) = self.cache().containers.get(&id).cloned() else {
            return Ok(());
        };
        let me = Arc::clone(self);
        let cid = id.clone();
        tokio::task::spawn_blocking(move || {
            me.backend
                .destroy(&me.paths.rootfs(&cid), &me.paths.scratch(&cid))?;
            for dir in [me.paths.bundle(&cid), me.paths.container_dir(&cid)] {
                match std::fs::remove_dir_all(&dir) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(io("remove", &dir)(e))
                    }
                    _ => {}
                }
            }
            Ok::<_, ContainerizerError>(())
        })
        .await
        .map_err(|e| ContainerizerError::Task(e.to_string()))??;
        if let Err(e) = self.store.release(&c.image_id).await {
            tracing::warn!(container = %id, error = %e, "releasing image");
        }
        self.db.delete_container(&id)?;
        self.cache().containers.remove(&id);
        self.forget_lock(&id);
        self.emit(&c, EventKind::Deleted);
        tracing::info!(container = %id, "container removed");
        Ok(())
    }

    /// ReopenContainerLog: the monitor reopens the log path (after kubelet rotated it).
    pub fn reopen_log(&self, wanted: &str) -> Result<(), ContainerizerError> {
        let id = self.known_container(wanted)?;
        let c = self.refreshed(&id)?;
        if c.state != ContainerState::Running {
            return Err(ContainerizerError::BadState {
                id,
                state: c.state,
                op: "reopen its log",
            });
        }
        let bundle = self.paths.bundle(&id);
        monitor::request_reopen(&bundle).map_err(io("signal monitor", &bundle))
    }
}

/// A volume that should see host mounts must come from a mount that passes them on: a
/// shared one (or, host-to-container only, a slave), as containerd insists too.
/// Otherwise the request would silently get a private mount.
fn check_propagation(m: &crate::containerizer::types::Mount) -> Result<(), ContainerizerError> {
    let (wanted, reason): (&[&str], &'static str) = match m.propagation {
        MountPropagation::Private => return Ok(()),
        MountPropagation::HostToContainer => (
            &["shared:", "master:"],
            "is not on a shared or slave mount (HOST_TO_CONTAINER needs one)",
        ),
        MountPropagation::Bidirectional => (
            &["shared:"],
            "is not on a shared mount (BIDIRECTIONAL needs one)",
        ),
    };
    let tags = crate::sys::mount::propagation_of(&m.host_path)
        .map_err(io("read mount propagation of", &m.host_path))?
        .unwrap_or_default();
    if tags.iter().any(|t| wanted.iter().any(|w| t.starts_with(w))) {
        return Ok(());
    }
    Err(ContainerizerError::Invalid {
        field: "mounts.host_path",
        value: m.host_path.display().to_string(),
        reason,
    })
}

/// The capability set for a container: Docker's default plus adds minus drops; all of
/// them when privileged. `ALL` works in both lists, as in Kubernetes.
fn capabilities(config: &ContainerConfig) -> Vec<String> {
    let norm = |c: &String| c.trim_start_matches("CAP_").to_ascii_uppercase();
    // "All" is all we can give: the daemon's bounding set. The kernel may know fewer
    // capabilities than the caps crate, and a host may withhold some (this one lacks
    // CAP_SYS_RESOURCE); asking for more makes capset fail.
    let all: Vec<String> = caps::read(None, caps::CapSet::Bounding)
        .unwrap_or_else(|_| caps::all())
        .iter()
        .map(|c| c.to_string().trim_start_matches("CAP_").to_string())
        .collect();
    if config.privileged || config.add_capabilities.iter().any(|c| norm(c) == "ALL") {
        return all;
    }
    let mut set: Vec<String> = DEFAULT_CAPABILITIES.iter().map(|s| s.to_string()).collect();
    for c in &config.add_capabilities {
        if !set.contains(&norm(c)) {
            set.push(norm(c));
        }
    }
    if config.drop_capabilities.iter().any(|c| norm(c) == "ALL") {
        set.clear();
    }
    set.retain(|c| !config.drop_capabilities.iter().any(|d| norm(d) == *c));
    set
}

/// Runs the monitor for a bundle and waits for its `ok <pid>` / `error <why>` report:
/// `ucr-monitor` when it sits beside `ucr` (it is smaller), else `ucr monitor`. Returns
/// the container's process as the monitor recorded it in the bundle (with its start
/// time) before reporting.
fn spawn_monitor(binary: &Path, bundle: &Path) -> Result<ProcessId, String> {
    let (read_end, write_end) =
        crate::sys::process::cloexec_pipe().map_err(|e| format!("pipe: {e}"))?;
    let own = binary.with_file_name("ucr-monitor");
    let mut cmd = if own.is_file() {
        std::process::Command::new(own)
    } else {
        let mut cmd = std::process::Command::new(binary);
        cmd.arg("monitor");
        cmd
    };
    cmd.arg("--bundle")
        .arg(bundle)
        .arg("--sync-fd")
        .arg(crate::sys::spawn::PASSED_FD.to_string())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    crate::sys::spawn::pass_fd(&mut cmd, &write_end);
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("starting monitor {}: {e}", binary.display()))?;
    drop(write_end);
    let mut report = String::new();
    let _ = std::fs::File::from(read_end).read_to_string(&mut report);
    // The monitor's first process exits as soon as the detached one has reported.
    let _ = child.wait();
    let report = report.trim();
    if let Some(pid) = report.strip_prefix("ok ") {
        let pid: i32 = pid
            .trim()
            .parse()
            .map_err(|_| format!("monitor reported a bad pid {pid:?}"))?;
        return match monitor::read_process(bundle, monitor::CONTAINER_PID_FILE) {
            Ok(Some((p, Some(start_time)))) if p == pid => Ok(ProcessId { pid, start_time }),
            other => Err(format!(
                "the monitor reported pid {pid} but recorded {other:?} in its bundle"
            )),
        };
    }
    Err(report
        .strip_prefix("error ")
        .map(str::to_string)
        .unwrap_or_else(|| format!("monitor ended without reporting (said {report:?})")))
}

/// Polls the bundle for the monitor's exit record, up to `limit`. The monitor records a
/// killed container within a millisecond or so: start polling fast, then back off.
fn wait_exit(bundle: &Path, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    let mut pause = Duration::from_micros(500);
    loop {
        if matches!(monitor::read_exit(bundle), Ok(Some(_))) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(10));
    }
}
