//! What `ucr exec` runs: a plain struct the daemon writes as JSON (CRI ExecSync, later
//! Exec). The daemon fills every field from the container's own configuration merged with
//! the request (env, user), as containerd does for `runc exec`'s process spec.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ExecSpec {
    /// The container's first process as the host sees it (the pid the monitor recorded).
    /// Its namespaces and root directory are the ones joined.
    pub pid: i32,
    /// argv; `args[0]` is looked up in `PATH` (from `env`) when it has no `/`.
    pub args: Vec<String>,
    /// `KEY=VALUE` entries: the container's environment with the request's on top.
    pub env: Vec<String>,
    /// Working directory inside the container; empty means `/`. Not created when missing
    /// (unlike the first process's): an exec must not change the container's filesystem.
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    #[serde(default)]
    pub additional_gids: Vec<u32>,
    /// Capability names without `CAP_`; `None` means Docker's default set. The daemon
    /// passes the container's own set, so an exec gets no more than the container has.
    #[serde(default)]
    pub capabilities: Option<Vec<String>>,
    #[serde(default)]
    pub no_new_privs: bool,
}
