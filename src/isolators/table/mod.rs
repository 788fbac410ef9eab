//! The isolator table: which isolators run, in which order. Prepare hooks run top to
//! bottom, cleanup hooks bottom to top, and a prepare that fails part-way is undone by
//! cleaning up, bottom to top, the isolators already prepared.
//!
//! The order, and why:
//! 1. `docker/runtime` (containers only): the image's `Env` under the request's, and the
//!    user resolved against the image's `/etc/passwd`, first, so that `HOME` is known and
//!    what follows only adds to the environment (`network/cni`'s `HOSTNAME`).
//! 2. `cgroups` (its subsystems `cgroups/devices`, `cgroups/cpu`, `cgroups/mem`…): the
//!    pod's and container's cgroups and limits, early, so that a request the kernel
//!    refuses fails before anything else is made, and before `namespaces/pid` starts the
//!    pod init that joins its cgroup; cleaned up late, after everything that may still
//!    run processes in it.
//! 3. `namespaces/user`: a pod's own user namespace, which its other namespaces are
//!    made inside, and which its containers join.
//! 4. `namespaces/ipc`: the pod's IPC namespace and its /dev/shm, which nothing else
//!    needs but everything may use.
//! 5. `linux/sysctls`: checks the pod's sysctls against the namespaces planned; they are
//!    written while the namespaces are made.
//! 6. `network/cni`: the pod's network and UTS namespaces, its CNI networks, and its
//!    `/etc/hosts`, `/etc/hostname`, `/etc/resolv.conf` (bound into containers before any
//!    volume, so a volume at one of those paths wins).
//! 7. `namespaces/pid`: the pod init, last of the pod's: the network is up when it starts,
//!    and it is the first thing stopped.
//! 8. `filesystem/linux`: masked and read-only kernel paths, a read-only rootfs.
//! 9. `linux/devices`: the request's host devices below `/dev`.
//! 10. `volume/sandbox_path`, `volume/host_path`: a Mesos container's sandbox and the
//!     volumes made in it (owned by the user `docker/runtime` resolved), then the
//!     request's host volumes and their propagation, after the pod's files so a volume
//!     can replace one, and after the sandbox so one can land inside it.
//! 11. `posix/rlimits`: resource limits, set by the launcher just before exec.
//! 12. `disk/du`, `disk/xfs` (as `--isolation` asks): the writable layer (and a Mesos
//!     sandbox) watched and measured, or given an XFS project and its quota.
//! 13. `linux/apparmor`, `linux/selinux`: the LSM fields, applied where the node can and
//!     refused where it cannot, never dropped.
//! 14. `linux/capabilities`: the capability set (all of them when privileged).
//! 15. `linux/nnp`: `no_new_privs`.
//! 16. `linux/seccomp`: the seccomp filter, compiled last: the default profile allows
//!     more to a container with more capabilities, so it needs the final set.
//!
//! `--isolation` selects which of them run, by these Mesos names (`config::isolation`
//! checks the list, and refuses one without what the CRI door needs); the selection
//! never changes the order.

use std::sync::Arc;

use super::cgroups::Cgroups;
use super::docker::runtime::DockerRuntime;
use super::filesystem::linux::FilesystemLinux;
use super::linux::{
    apparmor::AppArmor, capabilities::Capabilities, devices::Devices, nnp::NoNewPrivs,
    seccomp::Seccomp, selinux::Selinux, sysctls::Sysctls,
};
use super::namespaces::{ipc::IpcNamespace, pid::PidNamespace, user::UserNamespace};
use super::network::cni::isolator::NetworkCni;
use super::posix::rlimits::Rlimits;
use super::volume::host_path::HostPath;
use super::volume::sandbox_path::SandboxPath;
use super::{
    ContainerContext, Isolator, IsolatorError, IsolatorStatus, Known, Limitation, PodContext,
    PodPlan, Resources, Usage,
};
use crate::containerizer::types::{Pod, PodConfig};
use crate::launcher::LaunchSpec;
use crate::sys::pidfd::ProcessId;

/// A failure of one isolator, named.
#[derive(Debug, thiserror::Error)]
#[error("{isolator}: {source}")]
pub struct Failed {
    pub isolator: &'static str,
    #[source]
    pub source: IsolatorError,
}

impl crate::error::Kind for Failed {
    fn kind(&self) -> crate::error::ErrorKind {
        self.source.kind()
    }
}

/// The table, in order (see the module docs).
#[derive(Clone)]
pub struct Isolators {
    list: Arc<Vec<Box<dyn Isolator>>>,
}

impl Isolators {
    /// The table every daemon runs. `cni` is the pods' network; `binary` the `ucr` binary
    /// (re-executed as `ucr pod-init`).
    pub fn standard(
        cni: crate::isolators::network::cni::Cni,
        binary: std::path::PathBuf,
        cgroups: Cgroups,
        disk: Vec<Box<dyn Isolator>>,
        seccomp: Seccomp,
    ) -> Self {
        Self::selected(cni, binary, cgroups, disk, seccomp, &|_| true)
    }

    /// The table with only the isolators `keep` accepts by name (Mesos `--isolation`),
    /// in the table's order.
    pub fn selected(
        cni: crate::isolators::network::cni::Cni,
        binary: std::path::PathBuf,
        cgroups: Cgroups,
        disk: Vec<Box<dyn Isolator>>,
        seccomp: Seccomp,
        keep: &dyn Fn(&str) -> bool,
    ) -> Self {
        let mut list: Vec<Box<dyn Isolator>> = vec![
            Box::new(DockerRuntime),
            Box::new(cgroups),
            Box::new(UserNamespace),
            Box::new(IpcNamespace),
            Box::new(Sysctls),
            Box::new(NetworkCni::new(cni)),
            Box::new(PidNamespace::new(binary)),
            Box::new(FilesystemLinux),
            Box::new(Devices),
            Box::new(SandboxPath),
            Box::new(HostPath),
            Box::new(Rlimits),
        ];
        list.extend(disk);
        list.extend([
            Box::new(AppArmor::new()) as Box<dyn Isolator>,
            Box::new(Selinux::new()),
            Box::new(Capabilities),
            Box::new(NoNewPrivs),
            Box::new(seccomp),
        ]);
        list.retain(|i| keep(i.name()));
        Self::of(list)
    }

    /// Every isolator's limit reports (see [`Isolator::limits`]); each can be taken once.
    pub fn take_limits(&self) -> Vec<tokio::sync::mpsc::UnboundedReceiver<(String, Limitation)>> {
        self.list.iter().filter_map(|i| i.limits()).collect()
    }

    /// A table of these isolators, in this order.
    pub fn of(list: Vec<Box<dyn Isolator>>) -> Self {
        Isolators {
            list: Arc::new(list),
        }
    }

    /// The Mesos names, in order.
    pub fn names(&self) -> Vec<&'static str> {
        self.list.iter().map(|i| i.name()).collect()
    }

    /// Finds an isolator by name (for status calls that only one of them answers).
    pub fn get(&self, name: &str) -> Option<&dyn Isolator> {
        self.list
            .iter()
            .find(|i| i.name() == name)
            .map(|i| i.as_ref())
    }

    pub fn plan_pod(&self, pod: &PodConfig) -> Result<PodPlan, Failed> {
        let mut plan = PodPlan::default();
        for i in self.list.iter() {
            i.plan_pod(pod, &mut plan).map_err(named(i.as_ref()))?;
        }
        Ok(plan)
    }

    /// Prepares the pod in order; on failure, cleans up (in reverse) what was prepared,
    /// the failing isolator included, and returns the failure.
    pub async fn prepare_pod(&self, pod: &mut PodContext<'_>) -> Result<(), Failed> {
        for (n, i) in self.list.iter().enumerate() {
            if let Err(e) = i.prepare_pod(pod).await {
                for undo in self.list[..=n].iter().rev() {
                    if let Err(e) = undo.cleanup_pod(pod).await {
                        tracing::warn!(pod = %pod.id(), isolator = undo.name(), error = %crate::error::chain(&e), "undoing a failed pod preparation");
                    }
                }
                return Err(named(i.as_ref())(e));
            }
        }
        Ok(())
    }

    /// Cleans up every isolator, in reverse, even after one fails; the first failure is
    /// returned.
    pub async fn cleanup_pod(&self, pod: &mut PodContext<'_>) -> Result<(), Failed> {
        let mut first = None;
        for i in self.list.iter().rev() {
            if let Err(e) = i.cleanup_pod(pod).await {
                first.get_or_insert(named(i.as_ref())(e));
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// Checks a container request with every isolator, before anything is made.
    pub fn check(
        &self,
        c: &crate::containerizer::types::ContainerConfig,
        pod: Option<&crate::containerizer::types::Pod>,
    ) -> Result<(), Failed> {
        for i in self.list.iter() {
            i.check(c, pod).map_err(named(i.as_ref()))?;
        }
        Ok(())
    }

    /// Prepares the container's launch in order; on failure, cleans up in reverse what
    /// was prepared, the failing isolator included.
    pub fn prepare(&self, c: &ContainerContext<'_>, launch: &mut LaunchSpec) -> Result<(), Failed> {
        for (n, i) in self.list.iter().enumerate() {
            if let Err(e) = i.prepare(c, launch) {
                self.cleanup_some(c, n + 1);
                return Err(named(i.as_ref())(e));
            }
        }
        Ok(())
    }

    pub fn isolate(&self, c: &ContainerContext<'_>, process: ProcessId) -> Result<(), Failed> {
        for i in self.list.iter() {
            i.isolate(c, process).map_err(named(i.as_ref()))?;
        }
        Ok(())
    }

    /// Cleans up every isolator of a container, in reverse; the first failure is
    /// returned after all have run.
    pub fn cleanup(&self, c: &ContainerContext<'_>) -> Result<(), Failed> {
        let mut first = None;
        for i in self.list.iter().rev() {
            if let Err(e) = i.cleanup(c) {
                first.get_or_insert(named(i.as_ref())(e));
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// Applies new limits with every isolator that takes them; the first failure stops
    /// it (an update is all or nothing per isolator, not across them).
    pub fn update(&self, c: &ContainerContext<'_>, r: &Resources) -> Result<(), Failed> {
        for i in self.list.iter() {
            i.update(c, r).map_err(named(i.as_ref()))?;
        }
        Ok(())
    }

    /// What every isolator measures of the container.
    pub fn usage(&self, c: &ContainerContext<'_>) -> Result<Usage, Failed> {
        let mut u = Usage::default();
        for i in self.list.iter() {
            i.usage(c, &mut u).map_err(named(i.as_ref()))?;
        }
        Ok(u)
    }

    /// What every isolator measures of the pod as a whole.
    pub fn pod_usage(&self, pod: &Pod) -> Result<Usage, Failed> {
        let mut u = Usage::default();
        for i in self.list.iter() {
            i.pod_usage(pod, &mut u).map_err(named(i.as_ref()))?;
        }
        Ok(u)
    }

    pub fn status(&self, c: &ContainerContext<'_>) -> Result<IsolatorStatus, Failed> {
        let mut s = IsolatorStatus::default();
        for i in self.list.iter() {
            i.status(c, &mut s).map_err(named(i.as_ref()))?;
        }
        Ok(s)
    }

    /// Ends every process the container has left, with each isolator that can.
    pub fn kill_all(&self, c: &ContainerContext<'_>) -> Result<(), Failed> {
        let mut first = None;
        for i in self.list.iter() {
            if let Err(e) = i.kill_all(c) {
                first.get_or_insert(named(i.as_ref())(e));
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// The first limit that ended the container, if one did.
    pub fn limitation(&self, c: &ContainerContext<'_>) -> Option<Limitation> {
        self.list.iter().find_map(|i| i.limitation(c))
    }

    /// Every isolator's orphans removed, given what the daemon knows; each failure is
    /// logged and the rest go on.
    pub fn recover(&self, known: &Known<'_>) -> Vec<String> {
        let mut orphans = Vec::new();
        for i in self.list.iter() {
            match i.recover(known) {
                Ok(ids) => orphans.extend(ids),
                Err(e) => {
                    tracing::warn!(isolator = i.name(), error = %crate::error::chain(&e), "recovering isolator state")
                }
            }
        }
        orphans
    }

    fn cleanup_some(&self, c: &ContainerContext<'_>, prepared: usize) {
        for undo in self.list[..prepared].iter().rev() {
            if let Err(e) = undo.cleanup(c) {
                tracing::warn!(container = %c.id, isolator = undo.name(), error = %crate::error::chain(&e), "undoing a failed container preparation");
            }
        }
    }
}

fn named(i: &dyn Isolator) -> impl FnOnce(IsolatorError) -> Failed {
    let isolator = i.name();
    move |source| Failed { isolator, source }
}

#[cfg(test)]
mod tests;
