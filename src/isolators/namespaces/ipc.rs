//! `namespaces/ipc` (ucr-spec.md §5.3): the pod's IPC namespace and its `/dev/shm`, shared
//! by its containers; a host-IPC pod's containers stay in the host's, with the host's
//! `/dev/shm`. A standalone container gets a namespace and a `/dev/shm` of its own.

use async_trait::async_trait;

use crate::containerizer::types::PodConfig;
use crate::isolators::{
    blocking, io, ContainerContext, Isolator, IsolatorError, PodContext, PodPlan,
};
use crate::launcher::spec::{JoinNamespace, NamespaceKind};
use crate::launcher::LaunchSpec;
use crate::sys::mount::{self, MsFlags};
use crate::sys::netns::PodNamespace;

pub struct IpcNamespace;

#[async_trait]
impl Isolator for IpcNamespace {
    fn name(&self) -> &'static str {
        "namespaces/ipc"
    }

    fn plan_pod(&self, pod: &PodConfig, plan: &mut PodPlan) -> Result<(), IsolatorError> {
        if !pod.host_ipc {
            plan.need(PodNamespace::Ipc);
        }
        Ok(())
    }

    async fn prepare_pod(&self, pod: &mut PodContext<'_>) -> Result<(), IsolatorError> {
        if pod.config().host_ipc {
            return Ok(());
        }
        let shm = pod.paths.pod_shm(pod.id());
        blocking(move || {
            crate::perm::private_dir(&shm).map_err(io("create pod /dev/shm", &shm))?;
            mount::mount_fs(
                "tmpfs",
                &shm,
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
                Some("mode=1777,size=65536k"),
            )
            .map_err(io("mount pod /dev/shm", &shm))
        })
        .await
    }

    async fn cleanup_pod(&self, pod: &mut PodContext<'_>) -> Result<(), IsolatorError> {
        let shm = pod.paths.pod_shm(pod.id());
        blocking(move || {
            mount::detach(&shm)
                .map(drop)
                .map_err(io("unmount pod /dev/shm", &shm))
        })
        .await
    }

    fn prepare(
        &self,
        c: &ContainerContext<'_>,
        launch: &mut LaunchSpec,
    ) -> Result<(), IsolatorError> {
        match c.pod {
            None => {
                launch.new_ipc_namespace = true;
                launch.shm = None;
            }
            Some(pod) if pod.config.host_ipc => {
                launch.new_ipc_namespace = false;
                launch.shm = Some("/dev/shm".into());
            }
            Some(pod) => {
                launch.join.push(JoinNamespace {
                    kind: NamespaceKind::Ipc,
                    path: c.paths.pod_ns(&pod.id, "ipc"),
                    owner: None,
                });
                launch.new_ipc_namespace = true;
                launch.shm = Some(c.paths.pod_shm(&pod.id));
            }
        }
        Ok(())
    }
}
