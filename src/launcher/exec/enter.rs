//! Entering a running container from the host: its namespaces and its root directory.

use std::fs::File;
use std::io;

use nix::sched::CloneFlags;

use super::ExecError;
use crate::sys::pidfd::ProcessId;
use crate::sys::process;

/// The namespaces joined, in order, after the container's user namespace when it has one
/// of its own (a pod's, `launcher::userns`): entered first, so that the capabilities
/// needed to join the others are those the container's root holds over them. The mount
/// namespace comes last: joining it changes what paths (among them `/proc/<pid>/...`)
/// resolve to. No cgroup namespace (the launcher keeps the host's).
const NAMESPACES: [(&str, CloneFlags); 5] = [
    ("ipc", CloneFlags::CLONE_NEWIPC),
    ("uts", CloneFlags::CLONE_NEWUTS),
    ("net", CloneFlags::CLONE_NEWNET),
    ("pid", CloneFlags::CLONE_NEWPID),
    ("mnt", CloneFlags::CLONE_NEWNS),
];

/// A running container, pinned: descriptors for each of its first process's namespaces
/// and for its root directory, all opened before any is used.
pub struct Target {
    pid: i32,
    namespaces: Vec<(&'static str, CloneFlags, File)>,
    root: File,
}

impl Target {
    /// Opens the namespaces and root of `target`, refusing (`NoProcess`) unless that very
    /// process, pid *and* start time, runs from before the first open until after the
    /// last: its pid cannot be reused meanwhile, so every file opened belongs to it, never
    /// to whichever process got the pid after the container ended.
    pub fn open(target: ProcessId) -> Result<Target, ExecError> {
        let pid = target.pid;
        let gone = || ExecError::NoProcess {
            pid,
            start_time: target.start_time,
        };
        // Non-positive pids would name no process in /proc (or worse, a process group for
        // kill): refused by `is_running` like a vanished container.
        if !target.is_running() {
            return Err(gone());
        }
        let open = |what: &str| {
            File::open(format!("/proc/{pid}/{what}")).map_err(|source| {
                if source.kind() == io::ErrorKind::NotFound {
                    gone()
                } else {
                    ExecError::Enter {
                        step: "open",
                        what: what.to_string(),
                        pid,
                        source,
                    }
                }
            })
        };
        let mut namespaces = Vec::with_capacity(NAMESPACES.len() + 1);
        // Joining one's own user namespace is an error (EINVAL): only a different one.
        let theirs = std::path::PathBuf::from(format!("/proc/{pid}/ns/user"));
        let own = crate::sys::userns::same(&theirs, std::path::Path::new("/proc/self/ns/user"))
            .map_err(|source| ExecError::Enter {
                step: "compare",
                what: "ns/user".into(),
                pid,
                source,
            })?;
        if !own {
            namespaces.push(("user", CloneFlags::CLONE_NEWUSER, open("ns/user")?));
        }
        for (name, kind) in NAMESPACES {
            namespaces.push((name, kind, open(&format!("ns/{name}"))?));
        }
        let root = open("root")?;
        if !target.is_running() {
            return Err(gone());
        }
        Ok(Target {
            pid,
            namespaces,
            root,
        })
    }

    /// Moves this process into the container: every namespace (the PID namespace applies
    /// to children forked afterwards only), then the container's root directory.
    ///
    /// setns(CLONE_NEWNS) leaves the caller at the top of the namespace's mount tree,
    /// which is the container's rootfs only if the container got there by pivot_root and
    /// nothing stacked on it since. The first process's own root, as `/proc/<pid>/root`
    /// showed it before joining, is exact however the container entered its rootfs
    /// (`nsenter --root` does the same). The descriptors are closed when this returns, so
    /// none reaches the command.
    pub fn enter(self) -> Result<(), ExecError> {
        let pid = self.pid;
        for (name, kind, file) in &self.namespaces {
            process::join_namespace(file, *kind).map_err(|source| ExecError::Enter {
                step: "join",
                what: format!("ns/{name}"),
                pid,
                source,
            })?;
        }
        process::chroot_into(&self.root).map_err(|source| ExecError::Enter {
            step: "chroot to",
            what: "root".to_string(),
            pid,
            source,
        })
    }
}
