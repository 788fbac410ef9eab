//! What the front doors hand the containerizer and get back: plain Rust, no protobuf or
//! HTTP types. The CRI adapter (`cri/runtime.rs`) translates to and from these.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub type Labels = BTreeMap<String, String>;

/// A pod's identity as kubelet gives it: (namespace, name, uid, attempt) names one pod
/// sandbox; a retry with the same four gets the same sandbox back.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct PodMetadata {
    pub name: String,
    pub uid: String,
    pub namespace: String,
    pub attempt: u32,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct DnsConfig {
    pub servers: Vec<String>,
    pub searches: Vec<String>,
    pub options: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct PodConfig {
    pub metadata: PodMetadata,
    pub hostname: String,
    /// Absolute directory under which container log paths are relative.
    pub log_directory: String,
    pub dns: DnsConfig,
    pub labels: Labels,
    pub annotations: Labels,
    /// `NamespaceMode NODE` for the network: no namespace, the host's files.
    pub host_network: bool,
    pub host_ipc: bool,
    /// `Pod`: one PID namespace for the whole pod, held by a tiny init of ours;
    /// `Node`: the host's; otherwise each container gets its own.
    #[serde(default)]
    pub pid: PidMode,
    /// Host ports forwarded to the pod (CNI `portMappings`).
    #[serde(default)]
    pub port_mappings: Vec<PortMapping>,
    /// Namespaced sysctls set in the pod's namespaces (`sysctl` checks them).
    #[serde(default)]
    pub sysctls: Labels,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct PortMapping {
    /// `tcp`, `udp` or `sctp`.
    pub protocol: String,
    pub container_port: u16,
    /// 0: none (only documents the container port).
    pub host_port: u16,
    /// Empty: all of the host's addresses.
    pub host_ip: String,
}

/// Whose PID namespace a pod's or container's processes live in (CRI `NamespaceMode` for
/// PID).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub enum PidMode {
    /// A new one per container (the CRI default).
    #[default]
    Container,
    /// The pod's shared namespace (`shareProcessNamespace`).
    Pod,
    /// The host's (`hostPID`).
    Node,
    /// The namespace of another, running container (ephemeral debug containers).
    Target(String),
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum PodState {
    Ready,
    NotReady,
}

/// A pod as the front doors see it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Pod {
    pub id: String,
    pub config: PodConfig,
    pub state: PodState,
    pub created_at_ns: i64,
    /// The pinned network namespace (none for host-network pods).
    pub netns: Option<PathBuf>,
    /// The pod's IPs from its network, primary (IPv4 when it has one) first.
    #[serde(default)]
    pub ips: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct PodFilter {
    pub id: Option<String>,
    pub state: Option<PodState>,
    pub labels: Labels,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ContainerMetadata {
    pub name: String,
    pub attempt: u32,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Mount {
    pub host_path: PathBuf,
    pub container_path: String,
    pub readonly: bool,
    #[serde(default)]
    pub propagation: crate::launcher::spec::MountPropagation,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ContainerConfig {
    pub metadata: ContainerMetadata,
    /// The image as the request names it (a reference or an id).
    pub image: String,
    pub command: Vec<String>,
    pub args: Vec<String>,
    pub working_dir: String,
    pub env: Vec<(String, String)>,
    pub mounts: Vec<Mount>,
    pub labels: Labels,
    pub annotations: Labels,
    /// Relative to the pod's log directory.
    pub log_path: String,
    /// `run_as_user` / `run_as_username` / `run_as_group`, as a docker user spec
    /// (`uid`, `name`, `uid:gid`…); `None` takes the image's.
    pub user: Option<String>,
    pub supplemental_groups: Vec<u32>,
    pub readonly_rootfs: bool,
    pub no_new_privs: bool,
    pub privileged: bool,
    /// `None`: Docker's default set; otherwise capability names to add and drop.
    pub add_capabilities: Vec<String>,
    pub drop_capabilities: Vec<String>,
    /// kubelet's OOM score adjustment for the container's QoS class.
    #[serde(default)]
    pub oom_score_adj: Option<i32>,
    #[serde(default)]
    pub pid: PidMode,
    /// Paths hidden from the container; empty: the runtime's defaults (as containerd
    /// treats an empty list). Ignored when privileged.
    #[serde(default)]
    pub masked_paths: Vec<String>,
    /// Paths made read-only; empty: the runtime's defaults. Ignored when privileged.
    #[serde(default)]
    pub readonly_paths: Vec<String>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum ContainerState {
    Created,
    Running,
    Exited,
    Unknown,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Container {
    pub id: String,
    pub pod_id: String,
    pub config: ContainerConfig,
    pub state: ContainerState,
    /// The image id the container was created from.
    pub image_id: String,
    pub created_at_ns: i64,
    pub started_at_ns: i64,
    pub finished_at_ns: i64,
    pub exit_code: i32,
    /// `Completed`, `Error`, `OOMKilled` (CRI reasons).
    pub reason: String,
    pub message: String,
    /// Absolute path of the CRI log (pod log directory + config log path), if any.
    pub log_path: Option<PathBuf>,
    /// The container's first process on the host, while it runs: pid and start time, as
    /// its monitor recorded them (a pid alone could name another process by now).
    /// Records of older versions held a bare `pid`; recovery reads the bundle again.
    #[serde(default)]
    pub process: Option<crate::sys::pidfd::ProcessId>,
}

#[derive(Debug, Clone, Default)]
pub struct ContainerFilter {
    pub id: Option<String>,
    pub pod_id: Option<String>,
    pub state: Option<ContainerState>,
    pub labels: Labels,
}

/// What `ExecSync` returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecOutput {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub exit_code: i32,
}

/// Lifecycle events, for `GetContainerEvents`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Created,
    Started,
    Stopped,
    Deleted,
}

#[derive(Debug, Clone)]
pub struct Event {
    pub container_id: String,
    pub pod_id: String,
    pub kind: EventKind,
    pub at_ns: i64,
}
