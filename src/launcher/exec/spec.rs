//! What `ucr exec` runs: a plain struct the daemon writes as JSON (CRI ExecSync, later
//! Exec). The daemon fills every field from the container's own configuration merged with
//! the request (env, user), as containerd does for `runc exec`'s process spec.

use serde::{Deserialize, Serialize};

use crate::launcher::spec::Process;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ExecSpec {
    /// The container's first process as the host sees it (the pid the monitor recorded).
    /// Its namespaces and root directory are the ones joined.
    pub pid: i32,
    /// What to run: the container's own process settings with the request's argv.
    #[serde(flatten)]
    pub process: Process,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An exec spec as builds before [`Process`] wrote it: every field at the top level.
    const OLD_FORMAT: &str = r#"{
        "pid": 4242,
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
    fn an_old_format_spec_parses_and_is_written_back_the_same() {
        let spec: ExecSpec = serde_json::from_str(OLD_FORMAT).expect("parse");
        assert_eq!(spec.pid, 4242);
        assert_eq!(
            spec.process,
            Process {
                args: vec!["cat".into(), "/etc/hostname".into()],
                env: vec!["PATH=/bin".into(), "X=1".into()],
                cwd: String::new(),
                uid: 1000,
                gid: 1000,
                additional_gids: vec![10],
                capabilities: None,
                no_new_privs: true,
            }
        );
        let old: serde_json::Value = serde_json::from_str(OLD_FORMAT).expect("json");
        assert_eq!(serde_json::to_value(&spec).expect("serialize"), old);
    }
}
