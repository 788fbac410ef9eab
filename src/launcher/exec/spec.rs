//! What `ucr nsexec` runs: a plain struct the daemon writes as JSON (CRI ExecSync, later
//! Exec). The daemon fills every field from the container's own configuration merged with
//! the request (env, user), as containerd does for `runc exec`'s process spec.

use serde::{Deserialize, Serialize};

use crate::launcher::spec::Process;
use crate::sys::pidfd::ProcessId;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ExecSpec {
    /// The container's first process as the host sees it: the pid and start time the
    /// monitor recorded (`pid`, `start_time` in the JSON). Its namespaces and root
    /// directory are the ones joined, and only if that very process still runs: a bare
    /// pid could have been reused by any process of the host.
    #[serde(flatten)]
    pub target: ProcessId,
    /// What to run: the container's own process settings with the request's argv.
    #[serde(flatten)]
    pub process: Process,
    /// `cgroup.procs` files of the container's cgroups: the command's process joins each
    /// before it execs (host paths, opened before entering the container). Empty until
    /// the cgroups isolators fill it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cgroup_procs: Vec<std::path::PathBuf>,
    /// Give the command a terminal: a pty allocated inside the container (its devpts),
    /// owned by the command's user, its controlling terminal and all three of its stdio.
    /// The master goes to the daemon over `--console-fd`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub terminal: bool,
    /// The terminal's size, set before the command starts (Mesos's `tty_info` sizes a
    /// session's terminal before its command runs); `None`: the kernel's 0×0 until the
    /// daemon resizes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<TerminalSize>,
}

/// A terminal's size in character cells.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct TerminalSize {
    pub rows: u16,
    pub cols: u16,
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = r#"{
        "pid": 4242,
        "start_time": 987654,
        "args": ["cat", "/etc/hostname"],
        "env": ["PATH=/bin", "X=1"],
        "cwd": "",
        "uid": 1000,
        "gid": 1000,
        "additional_gids": [10],
        "capabilities": null,
        "no_new_privs": true
    }"#;

    #[test]
    fn the_fields_sit_at_the_top_level_and_round_trip() {
        let spec: ExecSpec = serde_json::from_str(SPEC).expect("parse");
        assert_eq!(
            spec.target,
            ProcessId {
                pid: 4242,
                start_time: 987654
            }
        );
        assert_eq!(
            spec.process,
            Process {
                args: vec!["cat".into(), "/etc/hostname".into()],
                executable: None,
                env: vec!["PATH=/bin".into(), "X=1".into()],
                cwd: String::new(),
                uid: 1000,
                gid: 1000,
                additional_gids: vec![10],
                capabilities: None,
                no_new_privs: true,
                apparmor_profile: None,
                seccomp: None,
            }
        );
        let json: serde_json::Value = serde_json::from_str(SPEC).expect("json");
        assert_eq!(serde_json::to_value(&spec).expect("serialize"), json);
    }

    #[test]
    fn a_bare_pid_is_refused() {
        let mut json: serde_json::Value = serde_json::from_str(SPEC).expect("json");
        json.as_object_mut().expect("object").remove("start_time");
        let e = serde_json::from_value::<ExecSpec>(json).expect_err("no start time");
        assert!(e.to_string().contains("start_time"), "{e}");
    }
}
