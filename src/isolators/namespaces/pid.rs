//! `namespaces/pid` (ucr-spec.md §5.3): whose PID namespace a container's processes live
//! in. Its own (the CRI default; every standalone container), the pod's shared one
//! (`shareProcessNamespace`: PID 1 is the pod init, `launcher::pod_init`, which this
//! isolator starts with the pod and stops first), the host's, or another running
//! container's (ephemeral debug containers).

use std::path::{Path, PathBuf};

use async_trait::async_trait;

use crate::containerizer::types::{ContainerConfig, PidMode, Pod};
use crate::isolators::{blocking, io, ContainerContext, Isolator, IsolatorError, PodContext};
use crate::launcher::pod_init;
use crate::launcher::spec::{JoinNamespace, NamespaceKind};
use crate::launcher::LaunchSpec;
use crate::sys::netns;

pub struct PidNamespace {
    /// The `ucr` binary, run as `ucr pod-init`.
    binary: PathBuf,
}

impl PidNamespace {
    pub fn new(binary: PathBuf) -> Self {
        PidNamespace { binary }
    }
}

#[async_trait]
impl Isolator for PidNamespace {
    fn name(&self) -> &'static str {
        "namespaces/pid"
    }

    async fn prepare_pod(&self, pod: &mut PodContext<'_>) -> Result<(), IsolatorError> {
        if pod.config().pid != PidMode::Pod {
            return Ok(());
        }
        let (binary, dir) = (self.binary.clone(), pod.paths.pod_dir(pod.id()));
        let pin = pod.paths.pod_ns(pod.id(), "pid");
        // The pod's cgroup (`cgroups` comes first in the table): the init joins it
        // before it execs, with everything it forks.
        let cgroups = pod.init_cgroups.clone();
        let userns = pod
            .config()
            .userns
            .is_some()
            .then(|| pod.paths.pod_ns(pod.id(), "user"));
        blocking(move || {
            let init = pod_init::start(&binary, &dir, &cgroups, userns.as_deref())
                .map_err(io("start pod init", &dir))?;
            netns::pin(Path::new(&format!("/proc/{}/ns/pid", init.pid)), &pin)
                .map_err(io("pin pod PID namespace", &pin))
        })
        .await
    }

    async fn cleanup_pod(&self, pod: &mut PodContext<'_>) -> Result<(), IsolatorError> {
        let dir = pod.paths.pod_dir(pod.id());
        let pin = pod.paths.pod_ns(pod.id(), "pid");
        blocking(move || {
            // Killing the init ends whatever the containers left in the namespace.
            pod_init::stop(&dir).map_err(io("stop pod init", &dir))?;
            netns::unpin(&pin).map_err(io("unpin pod PID namespace", &pin))
        })
        .await
    }

    fn check(&self, c: &ContainerConfig, pod: Option<&Pod>) -> Result<(), IsolatorError> {
        if c.pid == PidMode::Pod && pod.is_none_or(|p| p.config.pid != PidMode::Pod) {
            return Err(IsolatorError::Invalid {
                field: "namespace_options.pid",
                value: "POD".into(),
                reason: "the pod sandbox was not created with a shared PID namespace",
            });
        }
        Ok(())
    }

    fn prepare(
        &self,
        c: &ContainerContext<'_>,
        launch: &mut LaunchSpec,
    ) -> Result<(), IsolatorError> {
        let join = |path: PathBuf, owner| JoinNamespace {
            kind: NamespaceKind::Pid,
            path,
            owner,
        };
        launch.new_pid_namespace = false;
        match (&c.config.pid, c.pod) {
            (PidMode::Container, _) => launch.new_pid_namespace = true,
            (PidMode::Node, _) => {}
            (PidMode::Pod, Some(pod)) => {
                launch.join.push(join(c.paths.pod_ns(&pod.id, "pid"), None))
            }
            (PidMode::Pod, None) => self.check(c.config, None)?,
            (PidMode::Target(id), _) => {
                // The containerizer checked it runs; the launcher checks again as it
                // joins, since a pid alone could name another process by then.
                let target = c.pid_target.ok_or(IsolatorError::Invalid {
                    field: "namespace_options.target_id",
                    value: id.clone(),
                    reason: "is not running",
                })?;
                let path = PathBuf::from(format!("/proc/{}/ns/pid", target.pid));
                launch.join.push(join(path, Some(target)));
            }
        }
        Ok(())
    }
}
