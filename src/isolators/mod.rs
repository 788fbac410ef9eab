//! Isolators: each owns one aspect of a pod or container, as in the Mesos containerizer
//! (ucr-spec.md §5), and carries its Mesos name (`network/cni`, `namespaces/pid`…). The
//! folders follow the names: `network/cni/` holds `network/cni`.
//!
//! # The contract
//! An [`Isolator`] implements only the hooks it needs; every hook has a no-op default.
//!
//! Pods (a sandbox of shared namespaces and files, made before its containers):
//! - [`Isolator::plan_pod`]: checks the request and says what the sandbox needs made
//!   before anything else (namespaces, hostname, sysctls). Nothing exists yet, so a bad
//!   request fails here and changes nothing.
//! - [`Isolator::prepare_pod`]: once the namespaces exist: networks, the pod init, files.
//! - [`Isolator::cleanup_pod`]: undoes `prepare_pod`; idempotent, and works from what is
//!   on disk alone (after a crash, a restart, a reboot).
//!
//! Containers:
//! - [`Isolator::check`]: checks the request before anything is made for it;
//! - [`Isolator::prepare`]: what it adds to the launch: mounts, environment, namespaces,
//!   capabilities, cgroups, devices, a seccomp filter.
//! - [`Isolator::isolate`]: after the container's process exists and before it execs
//!   (the monitor holds it until every isolator has run).
//! - [`Isolator::update`], [`Isolator::usage`], [`Isolator::status`]: while it runs.
//! - [`Isolator::cleanup`]: when it is removed (or its creation failed part-way).
//! - [`Isolator::recover`]: at start-up, given the containers the daemon knows, the ids
//!   of what it holds for containers it does not (orphans to clean up).
//!
//! The container hooks block (mounts, files): the containerizer calls them off the async
//! threads. The pod hooks are async (CNI plugins are processes to wait for).
//!
//! [`Isolators`] (`table`) is the one ordered table: prepare runs in its order, cleanup
//! in reverse, and a prepare that fails part-way is undone by cleaning up, in reverse,
//! what was prepared.

pub mod cgroups;
pub mod disk;
pub mod docker;
pub mod filesystem;
pub mod linux;
pub mod namespaces;
pub mod network;
pub mod posix;
mod table;
pub mod volume;

use std::path::Path;

use async_trait::async_trait;

pub use table::{Failed, Isolators};

use crate::containerizer::paths::Paths;
use crate::containerizer::types::{Container, ContainerConfig, Pod, PodConfig};
use crate::error::{io_kind, ErrorKind, Kind};
use crate::launcher::LaunchSpec;
use crate::sys::netns::PodNamespace;
use crate::sys::pidfd::ProcessId;

/// What a pod's isolators want made before they run: the containerizer creates these
/// namespaces (pinned under the pod's directory), sets the hostname and writes the
/// sysctls inside them, all in one step.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PodPlan {
    pub namespaces: Vec<PodNamespace>,
    /// Set in the new UTS namespace.
    pub hostname: Option<String>,
    /// `/proc/sys` paths and values, written from inside the new namespaces.
    pub sysctls: Vec<(std::path::PathBuf, String)>,
    /// A user namespace of the pod's own, which the others are made inside.
    pub userns: Option<crate::containerizer::types::UserNamespace>,
}

impl PodPlan {
    pub fn need(&mut self, ns: PodNamespace) {
        if !self.namespaces.contains(&ns) {
            self.namespaces.push(ns);
        }
    }
}

/// A pod as its isolators see it. `pod.netns` is set once the namespaces exist;
/// `pod.ips` is filled in by `network/cni`.
pub struct PodContext<'a> {
    pub pod: &'a mut Pod,
    pub paths: &'a Paths,
    /// `cgroup.procs` files the pod's own processes (its init) join before they exec;
    /// filled in by `cgroups`, which comes before `namespaces/pid` in the table.
    pub init_cgroups: Vec<std::path::PathBuf>,
}

impl PodContext<'_> {
    pub fn id(&self) -> &str {
        &self.pod.id
    }
    pub fn config(&self) -> &PodConfig {
        &self.pod.config
    }
}

/// A container as its isolators see it.
pub struct ContainerContext<'a> {
    pub id: &'a str,
    pub config: &'a ContainerConfig,
    /// Its pod; `None` for a standalone container.
    pub pod: Option<&'a Pod>,
    /// The image's runtime config (`Env`, `User`…).
    pub image: &'a docker::runtime::ImageRuntime,
    /// The provisioned root filesystem.
    pub rootfs: &'a Path,
    /// Where what the container writes lands (its writable layer), when it has one.
    pub writable: Option<&'a Path>,
    pub paths: &'a Paths,
    /// For `PidMode::Target`: the target container's process, checked to be running.
    pub pid_target: Option<ProcessId>,
}

/// What an isolator reports about a running container (for the doors' status calls).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IsolatorStatus {
    /// The container's IPs, primary first.
    pub ips: Vec<String>,
    /// Details for a verbose status (`net_cls` handle, cgroup paths), by key.
    pub info: std::collections::BTreeMap<String, String>,
}

pub use crate::containerizer::types::Resources;

/// Resource usage as the kernel counts it, for the stats calls; each resource isolator
/// fills in its part (`None`: nobody measures it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    /// CPU time used since the cgroup was made, nanoseconds (all cores).
    pub cpu_ns: Option<u64>,
    /// The same split into user and system time (Mesos's `cpus_{user,system}_time_secs`).
    pub cpu_user_ns: Option<u64>,
    pub cpu_system_ns: Option<u64>,
    /// CFS quota enforcement, when the kernel counts it.
    pub cpu_throttling: Option<CpuThrottling>,
    pub memory: Option<MemoryUsage>,
    /// Processes (v2: and threads) in the cgroup.
    pub processes: Option<u64>,
    /// The writable layer (and sandbox): bytes and inodes.
    pub disk: Option<DiskUsage>,
    /// The interfaces of the pod, or of a standalone container with networks of its own.
    pub network: Vec<InterfaceUsage>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuThrottling {
    /// CFS periods that had runnable tasks, and those in which the quota ran out.
    pub periods: u64,
    pub throttled_periods: u64,
    pub throttled_ns: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryUsage {
    /// Everything charged, page cache included.
    pub usage: u64,
    /// `usage` less inactive file pages: what kubelet evicts on.
    pub working_set: u64,
    /// Anonymous memory.
    pub rss: u64,
    pub page_faults: u64,
    pub major_page_faults: u64,
    /// The limit in force, when there is one.
    pub limit: Option<u64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiskUsage {
    pub bytes: u64,
    pub inodes: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InterfaceUsage {
    pub name: String,
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errors: u64,
    pub rx_dropped: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub tx_dropped: u64,
}

/// A limit that ended a container (Mesos's `ContainerLimitation`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Limitation {
    pub kind: LimitKind,
    /// What happened, for the operator.
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum LimitKind {
    /// The kernel's OOM killer killed a process of the container.
    Memory,
    /// It wrote past its disk limit (`disk/du` with enforcement).
    Disk,
}

/// The containers and pods the daemon knows at start-up (for [`Isolator::recover`]).
pub struct Known<'a> {
    pub pods: &'a [Pod],
    pub containers: &'a [Container],
}

#[async_trait]
pub trait Isolator: Send + Sync {
    /// The Mesos name, as `--isolation` selects isolators.
    fn name(&self) -> &'static str;

    /// Whether the node can give what this isolator provides now; why not, when it
    /// cannot (no pod network configured yet).
    fn ready(&self) -> Result<(), String> {
        Ok(())
    }

    /// Checks the pod request and adds what the sandbox needs to `plan`. Pure: nothing
    /// exists yet.
    fn plan_pod(&self, _pod: &PodConfig, _plan: &mut PodPlan) -> Result<(), IsolatorError> {
        Ok(())
    }

    /// Once the pod's namespaces exist (see [`PodPlan`]).
    async fn prepare_pod(&self, _pod: &mut PodContext<'_>) -> Result<(), IsolatorError> {
        Ok(())
    }

    /// Undoes [`Isolator::prepare_pod`], whatever part of it happened. Idempotent.
    async fn cleanup_pod(&self, _pod: &mut PodContext<'_>) -> Result<(), IsolatorError> {
        Ok(())
    }

    /// Checks the container request before anything is made for it. Blocking, but quick.
    fn check(&self, _c: &ContainerConfig, _pod: Option<&Pod>) -> Result<(), IsolatorError> {
        Ok(())
    }

    /// Adds what this isolator owns to the container's launch. Blocking.
    fn prepare(
        &self,
        _c: &ContainerContext<'_>,
        _launch: &mut LaunchSpec,
    ) -> Result<(), IsolatorError> {
        Ok(())
    }

    /// After the container's process exists, before it execs. Blocking.
    fn isolate(&self, _c: &ContainerContext<'_>, _process: ProcessId) -> Result<(), IsolatorError> {
        Ok(())
    }

    /// Applies new limits to a running container (`UpdateContainerResources`). Blocking.
    fn update(&self, _c: &ContainerContext<'_>, _r: &Resources) -> Result<(), IsolatorError> {
        Ok(())
    }

    /// Adds what it measures of the container to `u`. Blocking, and quick: a stats call
    /// asks for every container at once.
    fn usage(&self, _c: &ContainerContext<'_>, _u: &mut Usage) -> Result<(), IsolatorError> {
        Ok(())
    }

    /// Adds what it measures of the whole pod to `u`. Blocking, quick.
    fn pod_usage(&self, _pod: &Pod, _u: &mut Usage) -> Result<(), IsolatorError> {
        Ok(())
    }

    /// Ends every process the container still has, not only its first one (a host-PID
    /// container's children live on after it). Blocking.
    fn kill_all(&self, _c: &ContainerContext<'_>) -> Result<(), IsolatorError> {
        Ok(())
    }

    /// Once the container has ended: whether one of its limits ended it. Blocking, and
    /// works after a restart (from what the kernel or the isolator kept).
    fn limitation(&self, _c: &ContainerContext<'_>) -> Option<Limitation> {
        None
    }

    /// For an isolator that watches its limits (Mesos's `watch`): the containers it
    /// finds over one, each to be killed with that reason. The containerizer takes the
    /// receiver once, at start-up; it records nothing itself (`limitation` says why
    /// afterwards, from what the isolator kept).
    fn limits(&self) -> Option<tokio::sync::mpsc::UnboundedReceiver<(String, Limitation)>> {
        None
    }

    fn status(
        &self,
        _c: &ContainerContext<'_>,
        _s: &mut IsolatorStatus,
    ) -> Result<(), IsolatorError> {
        Ok(())
    }

    /// Undoes [`Isolator::prepare`], whatever part of it happened. Blocking, idempotent.
    fn cleanup(&self, _c: &ContainerContext<'_>) -> Result<(), IsolatorError> {
        Ok(())
    }

    /// Ids of pods or containers it holds something for that `known` does not list.
    fn recover(&self, _known: &Known<'_>) -> Result<Vec<String>, IsolatorError> {
        Ok(Vec::new())
    }
}

/// What went wrong in an isolator. The table adds the isolator's name.
#[derive(Debug, thiserror::Error)]
pub enum IsolatorError {
    /// Something the request asked for that the isolator refuses.
    #[error("{field} {value:?}: {reason}")]
    Invalid {
        field: &'static str,
        value: String,
        reason: &'static str,
    },
    /// The request needs something the node lacks (no pod network configured).
    #[error("{0}")]
    Unavailable(String),
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Network(#[from] network::cni::CniError),
    #[error(transparent)]
    Files(#[from] network::cni::files::PodFilesError),
    #[error(transparent)]
    User(#[from] crate::launcher::user::UserError),
    #[error(transparent)]
    Runtime(#[from] docker::runtime::RuntimeError),
    /// Boxed: it carries the field, the value and the file the kernel refused.
    #[error(transparent)]
    Cgroups(Box<cgroups::error::CgroupsError>),
    #[error(transparent)]
    Seccomp(#[from] linux::seccomp::SeccompError),
}

impl From<cgroups::error::CgroupsError> for IsolatorError {
    fn from(e: cgroups::error::CgroupsError) -> Self {
        IsolatorError::Cgroups(Box::new(e))
    }
}

impl Kind for IsolatorError {
    fn kind(&self) -> ErrorKind {
        match self {
            IsolatorError::Invalid { .. } => ErrorKind::InvalidArgument,
            IsolatorError::Unavailable(_) => ErrorKind::FailedPrecondition,
            IsolatorError::Io { source, .. } => io_kind(source),
            IsolatorError::Network(e) => e.kind(),
            IsolatorError::Files(e) => e.kind(),
            IsolatorError::User(e) => e.kind(),
            IsolatorError::Runtime(e) => e.kind(),
            IsolatorError::Cgroups(e) => e.kind(),
            IsolatorError::Seccomp(e) => e.kind(),
        }
    }
}

/// Runs blocking work (mounts, files, a helper process) of an async hook off the async
/// threads.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, IsolatorError> + Send + 'static,
) -> Result<T, IsolatorError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| IsolatorError::Io {
            op: "run blocking work",
            path: String::new(),
            source: std::io::Error::other(e.to_string()),
        })?
}

/// For `map_err`: the failure of `op` on `path`.
pub fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> IsolatorError {
    let path = path.display().to_string();
    move |source| IsolatorError::Io { op, path, source }
}
