//! A container's launch spec: a base the containerizer fills from what the door resolved
//! (argv, working directory, rootfs), then every isolator's part, in the table's order.

use std::path::PathBuf;

use super::super::error::{io, ContainerizerError};
use super::super::types::{Container, ContainerConfig, Pod};
use super::super::Containerizer;
use crate::isolators::docker::runtime::ImageRuntime;
use crate::isolators::ContainerContext;
use crate::launcher::{LaunchSpec, Process};
use crate::monitor::MonitorConfig;
use crate::sys::pidfd::ProcessId;

/// What an isolator's context borrows, owned: for a container that exists.
pub(in crate::containerizer) struct Owned {
    pub pod: Option<Pod>,
    pub image: ImageRuntime,
    pub rootfs: PathBuf,
    pub writable: Option<PathBuf>,
}

impl Containerizer {
    /// The blocking part of creation: the rootfs, the launch spec, `monitor.json`. On
    /// failure the isolators have undone their part; the caller removes the rest.
    pub(super) fn prepare_container(
        &self,
        id: &str,
        pod: Option<&Pod>,
        config: &ContainerConfig,
        image: &ImageRuntime,
        layers: &[PathBuf],
        pid_target: Option<ProcessId>,
    ) -> Result<(), ContainerizerError> {
        let rootfs = self.paths.rootfs(id);
        let scratch = self.paths.scratch(id);
        crate::perm::private_dir(&self.paths.container_dir(id))
            .map_err(io("create container dir", &rootfs))?;
        // In a pod with a user namespace of its own, the image's files must be its root's.
        let userns = pod.and_then(|p| p.config.userns.as_ref().map(|u| (p, u)));
        let idmap_done = match userns {
            Some((p, u)) => {
                let pin = self.paths.pod_ns(&p.id, "user");
                let root = |map: &[crate::containerizer::types::IdMapping]| {
                    map.iter()
                        .find(|m| m.container_id == 0)
                        .map_or(0, |m| m.host_id)
                };
                let idmap = crate::provisioner::backend::Idmap {
                    userns: &pin,
                    root_uid: root(&u.uids),
                    root_gid: root(&u.gids),
                };
                Some(
                    self.backend
                        .provision_idmapped(layers, &rootfs, &scratch, &idmap)?,
                )
            }
            None => {
                self.backend.provision(layers, &rootfs, &scratch)?;
                None
            }
        };
        let writable = self.backend.writable(&rootfs, &scratch);
        let ctx = ContainerContext {
            id,
            config,
            pod,
            image,
            rootfs: &rootfs,
            writable: writable.as_deref(),
            paths: &self.paths,
            pid_target,
        };
        let mut spec = base_spec(&rootfs, config);
        self.isolators.prepare(&ctx, &mut spec)?;
        spec.idmap_rootfs = idmap_done == Some(crate::provisioner::backend::IdmapDone::ByLauncher);
        let bundle = self.paths.bundle(id);
        crate::perm::private_dir(&bundle).map_err(io("create bundle", &bundle))?;
        let log = config.log.clone().unwrap_or_default();
        let monitor_config = MonitorConfig {
            spec,
            log_path: config
                .log
                .as_ref()
                .map(|l| l.full_path())
                .unwrap_or_default(),
            log_dir: log.dir,
            log_format: log.format,
            stdin: config.stdin,
            stdin_once: config.stdin_once,
            tty: config.tty,
        };
        // 0600: the spec holds the container's environment (see `perm`).
        let file = bundle.join(crate::monitor::CONFIG_FILE);
        monitor_config
            .store(&bundle)
            .map_err(io("write launch spec", &file))
    }

    /// What an isolator's context needs of an existing container, looked up again.
    pub(in crate::containerizer) fn owned_context(
        &self,
        c: &Container,
    ) -> Result<Owned, ContainerizerError> {
        let pod = match &c.pod_id {
            Some(p) => self.cache().pods.get(p).cloned(),
            None => None,
        };
        let image_config = self.store.config(&c.image_id)?.unwrap_or_default();
        let rootfs = self.paths.rootfs(&c.id);
        Ok(Owned {
            pod,
            image: ImageRuntime::from_image_config_bytes(&image_config).unwrap_or_default(),
            writable: self.backend.writable(&rootfs, &self.paths.scratch(&c.id)),
            rootfs,
        })
    }

    pub(in crate::containerizer) fn context<'a>(
        &'a self,
        c: &'a Container,
        owned: &'a Owned,
    ) -> ContainerContext<'a> {
        ContainerContext {
            id: &c.id,
            config: &c.config,
            pod: owned.pod.as_ref(),
            image: &owned.image,
            rootfs: &owned.rootfs,
            writable: owned.writable.as_deref(),
            paths: &self.paths,
            pid_target: None,
        }
    }
}

/// The spec before the isolators: the door's process, in the rootfs, with namespaces of
/// its own and nothing else (each isolator adds or narrows its part).
fn base_spec(rootfs: &std::path::Path, config: &ContainerConfig) -> LaunchSpec {
    LaunchSpec {
        rootfs: rootfs.to_path_buf(),
        process: Process {
            args: config.process.argv.clone(),
            executable: config.process.executable.clone(),
            env: Vec::new(),
            cwd: config.process.cwd.clone(),
            uid: 0,
            gid: 0,
            additional_gids: Vec::new(),
            capabilities: None,
            no_new_privs: false,
            apparmor_profile: None,
            seccomp: None,
        },
        hostname: None,
        join: Vec::new(),
        new_pid_namespace: true,
        new_ipc_namespace: true,
        mounts: Vec::new(),
        shm: None,
        readonly_rootfs: false,
        // Applied by the launcher where allowed; see `Containerizer::open`.
        oom_score_adj: config.oom_score_adj,
        masked_paths: Vec::new(),
        readonly_paths: Vec::new(),
        privileged: false,
        devices: Vec::new(),
        cgroups: Vec::new(),
        clone_into_cgroup: None,
        monitor_cgroups: Vec::new(),
        userns: None,
        idmap_rootfs: false,
        rlimits: Vec::new(),
    }
}
