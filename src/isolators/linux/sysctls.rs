//! `linux/sysctls`: pod sysctls (CRI `LinuxPodSandboxConfig.sysctls`). Only namespaced
//! ones are allowed, and only for a namespace the pod has of its own, so a pod can never
//! change the host. They are written while the pod's namespaces are created (the
//! containerizer does that from the [`PodPlan`]).

use std::path::PathBuf;

use crate::containerizer::types::PodConfig;
use crate::isolators::{Isolator, IsolatorError, PodPlan};

pub struct Sysctls;

impl Isolator for Sysctls {
    fn name(&self) -> &'static str {
        "linux/sysctls"
    }

    fn plan_pod(&self, pod: &PodConfig, plan: &mut PodPlan) -> Result<(), IsolatorError> {
        plan.sysctls.extend(resolve(pod)?);
        Ok(())
    }
}

/// Which of the pod's namespaces a sysctl belongs to, if any (the kernel's list, as
/// runc and kubelet know it).
fn namespace_of(key: &str) -> Option<&'static str> {
    const IPC: &[&str] = &[
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    if IPC.contains(&key) || key.starts_with("fs.mqueue.") {
        Some("ipc")
    } else if key.starts_with("net.") {
        Some("net")
    } else if key == "kernel.domainname" {
        Some("uts")
    } else {
        None
    }
}

/// The pod's sysctls as `/proc/sys` paths and values; a sysctl that is not namespaced,
/// or whose namespace the pod shares with the host, or a malformed key or value, is
/// refused naming it.
pub fn resolve(config: &PodConfig) -> Result<Vec<(PathBuf, String)>, IsolatorError> {
    let mut out = Vec::new();
    for (key, value) in &config.sysctls {
        let bad = |reason| IsolatorError::Invalid {
            field: "sysctls",
            value: format!("{key}={value}"),
            reason,
        };
        let well_formed = !key.is_empty()
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/'))
            && !key
                .split(['.', '/'])
                .any(|part| part.is_empty() || part == "..");
        if !well_formed {
            return Err(bad("not a sysctl name"));
        }
        if value.contains('\n') {
            return Err(bad("the value has a newline"));
        }
        // Both spellings exist: net.ipv4.conf.eth0.forwarding and net/ipv4/conf/...
        let dotted = key.replace('/', ".");
        let shares_host = match namespace_of(&dotted) {
            None => return Err(bad("not namespaced: it would change the host")),
            Some("net") => config.host_network,
            Some("ipc") => config.host_ipc,
            Some(_) => config.host_network, // UTS goes with the network namespace here
        };
        if shares_host {
            return Err(bad("the pod shares that namespace with the host"));
        }
        out.push((
            PathBuf::from("/proc/sys").join(dotted.replace('.', "/")),
            value.clone(),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(sysctls: &[(&str, &str)], host_network: bool) -> PodConfig {
        PodConfig {
            sysctls: sysctls
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            host_network,
            ..Default::default()
        }
    }

    #[test]
    fn namespaced_sysctls_become_proc_paths() {
        let got = resolve(&pod(
            &[
                ("kernel.shm_rmid_forced", "1"),
                ("net/ipv4/ip_forward", "1"),
            ],
            false,
        ))
        .expect("allowed");
        assert_eq!(
            got,
            vec![
                (
                    PathBuf::from("/proc/sys/kernel/shm_rmid_forced"),
                    "1".into()
                ),
                (PathBuf::from("/proc/sys/net/ipv4/ip_forward"), "1".into()),
            ]
        );
    }

    #[test]
    fn host_wide_or_malformed_sysctls_are_refused() {
        for (key, host_net, why) in [
            ("vm.overcommit_memory", false, "not namespaced"),
            ("net.ipv4.ip_forward", true, "shares that namespace"),
            ("net.../../x", false, "not a sysctl name"),
            ("", false, "not a sysctl name"),
        ] {
            let e = resolve(&pod(&[(key, "1")], host_net)).expect_err(key);
            assert!(e.to_string().contains(why), "{key}: {e}");
        }
        let e = resolve(&pod(&[("net.core.somaxconn", "1\n2")], false)).expect_err("newline");
        assert!(e.to_string().contains("newline"), "{e}");
    }
}
