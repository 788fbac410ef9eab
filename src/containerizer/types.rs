//! What the front doors hand the containerizer and get back: plain Rust, no protobuf or
//! HTTP types, and no door's rules. Each door resolves its requests into these (the CRI
//! door's `cri/runtime/`, the Mesos door's `mesos/`): a container arrives with its argv,
//! working directory and user already decided, its log path absolute, its stop signal
//! known.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::sys::pidfd::ProcessId;

pub type Labels = BTreeMap<String, String>;

/// A pod's identity as kubelet gives it, kept for listing it back.
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

/// Traffic shaping for a pod's network (CNI `bandwidth` capability).
pub use crate::isolators::network::cni::Bandwidth;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct PodConfig {
    /// The door's idempotency key: a second request with the key of a pod that exists (or
    /// is being made) gets that pod. The CRI door uses namespace/name/uid/attempt, as
    /// kubelet retries a slow RunPodSandbox with the same four.
    #[serde(default)]
    pub key: String,
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
    #[serde(default)]
    pub bandwidth: Option<Bandwidth>,
    /// Namespaced sysctls set in the pod's namespaces (`linux/sysctls` checks them).
    #[serde(default)]
    pub sysctls: Labels,
    /// The pod's cgroup, as a path below each hierarchy's root (kubelet's
    /// `/kubepods/burstable/pod<uid>`); `None`: one of ours under `--cgroups-root`.
    #[serde(default)]
    pub cgroup_parent: Option<String>,
    /// The sandbox's SELinux label, if the request sets one.
    #[serde(default)]
    pub selinux: Option<SelinuxLabel>,
    /// A user namespace of the pod's own (CRI `userns_options` mode POD); `None`: the
    /// host's.
    #[serde(default)]
    pub userns: Option<UserNamespace>,
}

/// One range of a user namespace's mapping (CRI `IDMapping`).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct IdMapping {
    pub container_id: u32,
    pub host_id: u32,
    pub length: u32,
}

/// A pod's user namespace: its uid and gid mappings, as kubelet allocates them.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct UserNamespace {
    pub uids: Vec<IdMapping>,
    pub gids: Vec<IdMapping>,
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

/// Whose PID namespace a pod's or container's processes live in.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub enum PidMode {
    /// A new one per container (the CRI default; every Mesos standalone container).
    #[default]
    Container,
    /// The pod's shared namespace (`shareProcessNamespace`).
    Pod,
    /// The host's (`hostPID`).
    Node,
    /// The namespace of another, running container (ephemeral debug containers).
    Target(String),
}

/// A pod's lifecycle: `Ready` from RunPodSandbox until StopPodSandbox, then `NotReady`
/// until removed. Containers are created and started only in a ready pod.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum PodState {
    Ready,
    NotReady,
}

impl PodState {
    /// Whether containers may be created or started in the pod.
    pub fn can_run_containers(self) -> bool {
        self == PodState::Ready
    }
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

/// Resource limits, as the door resolved them (the CRI's `LinuxContainerResources`, a
/// Mesos task's resources); `None` or empty: not limited. The cgroups isolators apply
/// them at start and on update, and report them back.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Resources {
    /// CFS shares (v1 `cpu.shares`; converted to `cpu.weight` on v2).
    #[serde(default)]
    pub cpu_shares: Option<u64>,
    /// CFS quota and period, microseconds.
    #[serde(default)]
    pub cpu_quota: Option<i64>,
    #[serde(default)]
    pub cpu_period: Option<u64>,
    /// `cpuset.cpus` and `cpuset.mems` lists (`0-3,7`).
    #[serde(default)]
    pub cpuset_cpus: Option<String>,
    #[serde(default)]
    pub cpuset_mems: Option<String>,
    /// Bytes.
    #[serde(default)]
    pub memory_limit: Option<i64>,
    /// Memory plus swap, bytes (kubelet's and the CRI's meaning; -1: unlimited swap).
    #[serde(default)]
    pub memory_swap_limit: Option<i64>,
    /// Most processes (and threads) at once.
    #[serde(default)]
    pub pids_limit: Option<i64>,
    /// Page size as the kernel names it (`2MB`, `1GB`) to a limit in bytes.
    #[serde(default)]
    pub hugepage_limits: BTreeMap<String, u64>,
    /// Block I/O weight (v1 `blkio.weight`, v2 `io.weight`).
    #[serde(default)]
    pub blkio_weight: Option<u16>,
    /// cgroup v2 files to write as they are (the CRI's `unified`); refused on v1.
    #[serde(default)]
    pub unified: BTreeMap<String, String>,
    /// The writable layer's and sandbox's size limit in bytes (`disk/du`, `disk/xfs`).
    #[serde(default)]
    pub disk_limit: Option<u64>,
}

/// An LSM profile as a request names it (CRI `SecurityProfile`, or the deprecated
/// `runtime/default` / `unconfined` / `localhost/<name>` strings).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub enum LsmProfile {
    /// The request says nothing.
    #[default]
    NotAsked,
    RuntimeDefault,
    Unconfined,
    /// A profile loaded on the node, by name.
    Localhost(String),
}

/// An SELinux label (CRI `SELinuxOption`); any part set means one is asked for.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct SelinuxLabel {
    pub user: String,
    pub role: String,
    pub r#type: String,
    pub level: String,
}

impl SelinuxLabel {
    pub fn is_empty(&self) -> bool {
        self.user.is_empty()
            && self.role.is_empty()
            && self.r#type.is_empty()
            && self.level.is_empty()
    }
}

impl std::fmt::Display for SelinuxLabel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}:{}",
            self.user, self.role, self.r#type, self.level
        )
    }
}

/// A host device made available in the container (CRI `Device`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Device {
    /// The device node on the host.
    pub host_path: PathBuf,
    /// Where it appears in the container; below `/dev`.
    pub container_path: String,
    /// `r`, `w` and `m` as the devices cgroup spells them.
    pub permissions: String,
}

/// The container's first process, as the door decided it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ProcessConfig {
    /// argv; `argv[0]` is looked up in the container's `PATH` when it has no `/`, unless
    /// `executable` names the program.
    pub argv: Vec<String>,
    /// The program, when it is not `argv[0]` (Mesos: `value` run with `arguments`).
    #[serde(default)]
    pub executable: Option<String>,
    /// The request's environment; the image's `Env` goes under it when `image_env`.
    pub env: Vec<(String, String)>,
    /// Absolute, inside the container; created when missing.
    pub cwd: String,
    /// A docker user spec (`uid`, `name`, `uid:gid`…) resolved against the image's
    /// `/etc/passwd`; `None` is root.
    pub user: Option<String>,
    pub supplemental_groups: Vec<u32>,
    /// Only the primary group and `supplemental_groups`, none from the image's
    /// `/etc/group` (CRI `SupplementalGroupsPolicy Strict`).
    #[serde(default)]
    pub strict_groups: bool,
    /// Whether the image's `Env` applies (Mesos's `--docker_ignore_runtime` says no).
    pub image_env: bool,
}

/// Where the container's output goes: `dir` (a directory the door trusts, such as
/// kubelet's pod log directory, made if missing) and `path` below it, whose directories
/// and file are made without following symlinks. With [`LogFormat::Files`] (a Mesos
/// sandbox) `path` is empty and the output is `dir/stdout` and `dir/stderr`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct LogTarget {
    pub dir: PathBuf,
    pub path: PathBuf,
    #[serde(default)]
    pub format: LogFormat,
}

pub use crate::monitor::log::LogFormat;

impl LogTarget {
    /// The log file; for [`LogFormat::Files`], the directory holding the files.
    pub fn full_path(&self) -> PathBuf {
        match self.format {
            LogFormat::Cri => self.dir.join(&self.path),
            LogFormat::Files => self.dir.clone(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ContainerConfig {
    /// The door's idempotency key: a create with the key of a container that exists (or
    /// is being made) gets that container. The CRI door uses pod/name/attempt; the Mesos
    /// door, the container id.
    pub key: String,
    /// An id the client chose (Mesos); `None`: a fresh one. Ids are exact, never prefixes.
    #[serde(default)]
    pub id: Option<String>,
    pub metadata: ContainerMetadata,
    /// The image as the request names it (a reference or an id).
    pub image: String,
    pub process: ProcessConfig,
    pub mounts: Vec<Mount>,
    pub labels: Labels,
    pub annotations: Labels,
    pub log: Option<LogTarget>,
    /// The signal that asks it to stop (the image's `StopSignal`); `None`: SIGTERM.
    pub stop_signal: Option<i32>,
    pub readonly_rootfs: bool,
    pub no_new_privs: bool,
    pub privileged: bool,
    /// Capability names to add to and drop from Docker's default set (`ALL` works).
    pub add_capabilities: Vec<String>,
    pub drop_capabilities: Vec<String>,
    /// kubelet's OOM score adjustment for the container's QoS class.
    #[serde(default)]
    pub oom_score_adj: Option<i32>,
    #[serde(default)]
    pub pid: PidMode,
    /// A standalone container's CNI networks by name (Mesos `network_infos`): network and
    /// UTS namespaces of its own, one interface per network (`eth0`, `eth1`…). Empty: the
    /// host's network. A pod's containers have their pod's instead.
    #[serde(default)]
    pub networks: Vec<String>,
    /// Host ports into a standalone container, by the network they go through (Mesos
    /// `NetworkInfo.port_mappings`): that network's `portMappings` capability.
    #[serde(default)]
    pub port_mappings: BTreeMap<String, Vec<PortMapping>>,
    /// Its hostname when it has networks of its own (Mesos: `ContainerInfo.hostname`, else
    /// the container id).
    #[serde(default)]
    pub hostname: Option<String>,
    /// Paths hidden from the container; empty: the runtime's defaults (as containerd
    /// treats an empty list). Ignored when privileged.
    #[serde(default)]
    pub masked_paths: Vec<String>,
    /// Paths made read-only; empty: the runtime's defaults. Ignored when privileged.
    #[serde(default)]
    pub readonly_paths: Vec<String>,
    #[serde(default)]
    pub resources: Resources,
    #[serde(default)]
    pub devices: Vec<Device>,
    #[serde(default)]
    pub apparmor: LsmProfile,
    #[serde(default)]
    pub selinux: Option<SelinuxLabel>,
    #[serde(default)]
    pub seccomp: SeccompProfile,
    /// Keep the container's stdin open for attachers (CRI `stdin`); otherwise it reads
    /// `/dev/null`.
    #[serde(default)]
    pub stdin: bool,
    /// Close its stdin once the first attachment that had it ends (CRI `stdin_once`);
    /// not with a terminal (see `monitor::input`).
    #[serde(default)]
    pub stdin_once: bool,
    /// A terminal for its stdio (CRI `tty`), one of its own `/dev/pts`.
    #[serde(default)]
    pub tty: bool,
    /// A Mesos container's sandbox and the volumes made in it (`volume/sandbox_path`).
    #[serde(default)]
    pub sandbox: Option<Sandbox>,
    /// Resource limits (`posix/rlimits`).
    #[serde(default)]
    pub rlimits: Vec<Rlimit>,
}

pub use crate::isolators::volume::sandbox_path::{Sandbox, SandboxVolume};
pub use crate::launcher::spec::{Rlimit, RlimitResource};

/// A container's lifecycle. Each call checks its guard first:
/// - StartContainer needs `Created`;
/// - `Starting` is recorded before its monitor is spawned, so a daemon that dies mid-start
///   finds it and adopts what the monitor made, or puts it back to `Created`;
/// - StopContainer acts on `Running` (and `Starting`, by waiting for it), is a no-op
///   otherwise;
/// - `Unknown` only ever comes from a door's filter; the containerizer never records it.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum ContainerState {
    Created,
    Starting,
    Running,
    Exited,
    Unknown,
}

impl ContainerState {
    pub fn can_start(self) -> bool {
        self == ContainerState::Created
    }
    pub fn can_exec(self) -> bool {
        self == ContainerState::Running
    }
    /// Whether it has (or may have) a process to stop.
    pub fn is_live(self) -> bool {
        matches!(self, ContainerState::Starting | ContainerState::Running)
    }
}

/// How a container ended, in the core's terms; each door words it its own way (the CRI
/// door: reasons `Completed`, `Error`, `OOMKilled`, `StartError`, `Unknown`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub enum Ending {
    /// Its process ended: the exit code, or 128 + the signal that killed it.
    Exited {
        code: i32,
        signal: Option<i32>,
        oom_killed: bool,
        /// The limit that ended it, when one did (an OOM kill, a disk quota).
        #[serde(default)]
        limitation: Option<crate::isolators::Limitation>,
    },
    /// It never ran: the launch failed (`message` says why, in the launcher's words).
    StartFailed { message: String },
    /// Its monitor ended without recording how; the process was killed if it still ran.
    Lost { message: String },
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Container {
    pub id: String,
    /// None for a standalone container (Mesos), with namespaces of its own.
    pub pod_id: Option<String>,
    pub config: ContainerConfig,
    pub state: ContainerState,
    /// The image id the container was created from.
    pub image_id: String,
    pub created_at_ns: i64,
    pub started_at_ns: i64,
    pub finished_at_ns: i64,
    /// The exit code once exited (128 + signal when killed; see [`Ending`]).
    pub exit_code: i32,
    #[serde(default)]
    pub ending: Option<Ending>,
    /// The container's first process on the host, while it runs: pid and start time, as
    /// its monitor recorded them (a pid alone could name another process by now).
    #[serde(default)]
    pub process: Option<ProcessId>,
}

impl Container {
    /// The CRI log file, if any.
    pub fn log_path(&self) -> Option<PathBuf> {
        self.config.log.as_ref().map(LogTarget::full_path)
    }
}

#[derive(Debug, Clone, Default)]
pub struct ContainerFilter {
    pub id: Option<String>,
    pub pod_id: Option<String>,
    /// Only the containers of pods (the CRI door's view), or only standalone ones (the
    /// Mesos door's): each door sees its own.
    pub in_pod: Option<bool>,
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
    pub pod_id: Option<String>,
    pub kind: EventKind,
    pub at_ns: i64,
}

/// The seccomp profile a container asks for (`linux/seccomp`). A privileged container is
/// unconfined whatever it asks, as with containerd.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub enum SeccompProfile {
    /// Nothing asked: the daemon's default (`--seccomp-default`: `RuntimeDefault`;
    /// otherwise unconfined, as kubelet's own default is).
    #[default]
    NotAsked,
    Unconfined,
    /// Docker's and containerd's default policy (`isolators::linux::seccomp::default`).
    RuntimeDefault,
    /// A profile in Docker's JSON on the node: a relative path is below
    /// `--seccomp-profile-root` and must stay there; an absolute one is read as it is.
    Localhost(PathBuf),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_container_recorded_before_attach_has_no_stdin_or_terminal() {
        let mut json = serde_json::to_value(ContainerConfig {
            stdin: true,
            stdin_once: true,
            tty: true,
            ..Default::default()
        })
        .expect("json");
        let obj = json.as_object_mut().expect("object");
        for key in ["stdin", "stdin_once", "tty"] {
            assert!(obj.remove(key).is_some(), "{key} is recorded");
        }
        let old: ContainerConfig = serde_json::from_value(json).expect("an old record loads");
        assert!(!old.stdin && !old.stdin_once && !old.tty);
    }
}
