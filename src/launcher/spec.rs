//! What the launcher needs to start a container's first process: a plain struct, close to
//! the `process`, `mounts` and `linux.namespaces` parts of the OCI runtime spec, that the
//! containerizer fills in and hands to the monitor (as JSON in the run root).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The process to run, as OCI's `process`: what a container's first process
/// ([`LaunchSpec`]) and a command exec'd into it (`exec::ExecSpec`) have in common. Both
/// flatten it, so its fields sit at the top level of their JSON as they always have.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Process {
    /// argv; `args[0]` is looked up in the container's `PATH` (from `env`) when it has
    /// no `/`, unless `executable` names the program.
    pub args: Vec<String>,
    /// The program, when it is not `args[0]` (Mesos's `CommandInfo.value` with
    /// `shell=false` runs `value` with `arguments` as the whole argv).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executable: Option<String>,
    /// `KEY=VALUE` entries, already merged (image, then CRI; for an exec, the container's
    /// with the request's on top).
    pub env: Vec<String>,
    /// Working directory inside the container. The first process's is created when
    /// missing; an exec's is not (an exec must not change the container's filesystem),
    /// and empty means `/`.
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    #[serde(default)]
    pub additional_gids: Vec<u32>,
    /// Capability names without `CAP_`; `None` means Docker's default set. An exec gets
    /// the container's own set, so no more than the container has.
    #[serde(default)]
    pub capabilities: Option<Vec<String>>,
    #[serde(default)]
    pub no_new_privs: bool,
    /// The AppArmor profile the program is exec'd under (on a node with AppArmor).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apparmor_profile: Option<String>,
    /// The seccomp filter (`linux/seccomp`), compiled by the daemon; `None`: unconfined.
    /// An exec gets the container's, so it is confined as the container is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seccomp: Option<super::seccomp::SeccompFilter>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LaunchSpec {
    /// The prepared root filesystem (a backend's rootfs directory).
    pub rootfs: PathBuf,
    #[serde(flatten)]
    pub process: Process,
    #[serde(default)]
    pub hostname: Option<String>,
    /// Existing namespaces to enter (the pod's network and IPC namespaces).
    #[serde(default)]
    pub join: Vec<JoinNamespace>,
    /// Give the process its own PID namespace (it becomes PID 1 there). Without one, it
    /// lives in the namespace of a `Pid` entry of `join` (the pod's), else the host's.
    #[serde(default = "yes")]
    pub new_pid_namespace: bool,
    /// Give the process its own IPC namespace when `join` has none to enter; false for a
    /// host-IPC pod, whose containers stay in the host's.
    #[serde(default = "yes")]
    pub new_ipc_namespace: bool,
    /// Mounts on top of the standard ones (/proc, /sys, /dev…), in order.
    #[serde(default)]
    pub mounts: Vec<Mount>,
    /// What to mount at /dev/shm: the pod's shared directory, else a private tmpfs.
    #[serde(default)]
    pub shm: Option<PathBuf>,
    #[serde(default)]
    pub readonly_rootfs: bool,
    #[serde(default)]
    pub oom_score_adj: Option<i32>,
    /// Paths hidden from the container (an empty tmpfs on directories, `/dev/null` on
    /// files).
    #[serde(default = "default_masked")]
    pub masked_paths: Vec<String>,
    /// Paths made read-only.
    #[serde(default = "default_readonly")]
    pub readonly_paths: Vec<String>,
    /// A privileged container: the host's devices, a writable `/sys`. (Its capabilities,
    /// and its empty masked and read-only lists, are the containerizer's business.)
    #[serde(default)]
    pub privileged: bool,
    /// Host device nodes bound in below `/dev` (the CRI's `devices`).
    #[serde(default)]
    pub devices: Vec<DeviceNode>,
    /// The container's cgroup directories, one per hierarchy (the cgroups isolator's);
    /// `ucr nsexec` joins each.
    #[serde(default)]
    pub cgroups: Vec<PathBuf>,
    /// cgroup v2: the directory the launcher clones the process straight into
    /// (`CLONE_INTO_CGROUP`), so it never runs a moment outside it. On v1 the daemon
    /// moves it while the monitor holds it.
    #[serde(default)]
    pub clone_into_cgroup: Option<PathBuf>,
    /// `cgroup.procs` files the monitor moves itself into before anything else, out of
    /// the daemon's cgroup.
    #[serde(default)]
    pub monitor_cgroups: Vec<PathBuf>,
    /// The pod's user namespace (a pin), which the container joins before it makes its
    /// own namespaces; its rootfs is then mounted idmapped through it.
    #[serde(default)]
    pub userns: Option<PathBuf>,
    /// With `userns`: the launcher idmaps the rootfs bind through it (a rootfs that is a
    /// plain directory); false when the backend gave the rootfs idmapped layers already.
    #[serde(default)]
    pub idmap_rootfs: bool,
    /// Resource limits set just before exec (`posix/rlimits`), in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rlimits: Vec<Rlimit>,
}

pub use crate::sys::rlimit::Resource as RlimitResource;

/// One resource limit; `None` is unlimited (Mesos: neither given means unlimited).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Rlimit {
    pub resource: RlimitResource,
    #[serde(default)]
    pub soft: Option<u64>,
    #[serde(default)]
    pub hard: Option<u64>,
}

/// A host device node made available in the container.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DeviceNode {
    /// The node on the host.
    pub source: PathBuf,
    /// Below `/dev` in the container (`/dev/fuse`).
    pub destination: String,
}

fn default_masked() -> Vec<String> {
    MASKED_PATHS.iter().map(|p| p.to_string()).collect()
}

fn default_readonly() -> Vec<String> {
    READONLY_PATHS.iter().map(|p| p.to_string()).collect()
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum NamespaceKind {
    Net,
    Ipc,
    Uts,
    Pid,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct JoinNamespace {
    pub kind: NamespaceKind,
    /// A namespace file, e.g. a bind mount of `/proc/<pid>/ns/net` under the run root.
    pub path: PathBuf,
    /// When `path` is a `/proc/<pid>/ns/*` file of another container's process: that
    /// process. The namespace is joined only if it still runs after the file is opened,
    /// so a reused pid cannot lead into a stranger's (or the host's) namespace.
    #[serde(default)]
    pub owner: Option<crate::sys::pidfd::ProcessId>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Mount {
    /// Host path (a file or a directory).
    pub source: PathBuf,
    /// Absolute path inside the container.
    pub destination: String,
    #[serde(default)]
    pub readonly: bool,
    #[serde(default)]
    pub propagation: MountPropagation,
}

/// How mount events cross a bind mount (CRI `MountPropagation`).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum MountPropagation {
    /// Neither way (`rprivate`).
    #[default]
    Private,
    /// Mounts made on the host under the source appear in the container (`rslave`).
    HostToContainer,
    /// Both ways (`rshared`); the source must be on a shared mount.
    Bidirectional,
}

/// The capabilities Docker and containerd give a container by default.
pub const DEFAULT_CAPABILITIES: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];

/// `/proc` and `/sys` entries hidden from containers (Docker's defaults), and those made
/// read-only, so a container cannot read kernel memory or change host kernel settings.
pub const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
];
pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

#[cfg(test)]
mod tests {
    use super::*;

    /// A spec as builds before [`Process`] wrote it into a bundle's `monitor.json`: every
    /// field at the top level. Containers started by such a build are still running.
    const OLD_FORMAT: &str = r#"{
        "rootfs": "/rootfs",
        "args": ["sh", "-c", "echo hi"],
        "env": ["PATH=/bin"],
        "cwd": "/work",
        "uid": 1000,
        "gid": 1001,
        "additional_gids": [10, 1001],
        "hostname": "pod-a",
        "join": [{"kind": "net", "path": "/run/ucr/pods/p/ns/net"}],
        "new_pid_namespace": false,
        "mounts": [{"source": "/host", "destination": "/data", "readonly": true}],
        "shm": "/run/ucr/pods/p/shm",
        "readonly_rootfs": true,
        "no_new_privs": true,
        "capabilities": ["CHOWN", "KILL"],
        "oom_score_adj": -500,
        "masked_paths": ["/proc/kcore"],
        "readonly_paths": ["/proc/sys"],
        "privileged": false
    }"#;

    #[test]
    fn an_old_format_spec_parses_and_is_written_back_the_same() {
        let spec: LaunchSpec = serde_json::from_str(OLD_FORMAT).expect("parse");
        assert_eq!(
            spec.process,
            Process {
                executable: None,
                args: vec!["sh".into(), "-c".into(), "echo hi".into()],
                env: vec!["PATH=/bin".into()],
                cwd: "/work".into(),
                uid: 1000,
                gid: 1001,
                additional_gids: vec![10, 1001],
                capabilities: Some(vec!["CHOWN".into(), "KILL".into()]),
                no_new_privs: true,
                apparmor_profile: None,
                seccomp: None,
            }
        );
        assert_eq!(spec.hostname.as_deref(), Some("pod-a"));
        assert_eq!(spec.oom_score_adj, Some(-500));
        // Written back, every field it had keeps its name and value (fields added since
        // appear beside them with their defaults).
        let old: serde_json::Value = serde_json::from_str(OLD_FORMAT).expect("json");
        let new = serde_json::to_value(&spec).expect("serialize");
        assert_kept(&old, &new, "spec");
        assert_eq!(new["new_ipc_namespace"], true);
        assert_eq!(new["mounts"][0]["propagation"], "private");
    }

    /// Every field of `old`, at any depth, is in `new` with the same value.
    fn assert_kept(old: &serde_json::Value, new: &serde_json::Value, at: &str) {
        match (old, new) {
            (serde_json::Value::Object(o), serde_json::Value::Object(n)) => {
                for (key, value) in o {
                    let got = n.get(key).unwrap_or_else(|| panic!("{at}.{key} dropped"));
                    assert_kept(value, got, &format!("{at}.{key}"));
                }
            }
            (serde_json::Value::Array(o), serde_json::Value::Array(n)) => {
                assert_eq!(o.len(), n.len(), "{at}");
                for (i, (a, b)) in o.iter().zip(n).enumerate() {
                    assert_kept(a, b, &format!("{at}[{i}]"));
                }
            }
            _ => assert_eq!(old, new, "{at}"),
        }
    }

    #[test]
    fn an_old_minimal_spec_takes_the_defaults() {
        let spec: LaunchSpec = serde_json::from_str(
            r#"{"rootfs": "/r", "args": ["true"], "env": [], "cwd": "/", "uid": 0, "gid": 0}"#,
        )
        .expect("parse");
        assert!(spec.process.additional_gids.is_empty());
        assert_eq!(spec.process.capabilities, None);
        assert!(!spec.process.no_new_privs);
        assert!(spec.new_pid_namespace);
        assert!(spec.new_ipc_namespace);
        assert_eq!(spec.masked_paths, default_masked());
    }
}
