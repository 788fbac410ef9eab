//! `namespaces/user` (CRI `userns_options` mode POD, Kubernetes `hostUsers: false`,
//! KEP-127; Mesos never had it): a pod gets a user namespace of its own with the uid and
//! gid mappings kubelet allocates, its other namespaces are made inside it
//! (`launcher::pod_ns`), and its containers join it: their root is an unprivileged uid
//! on the host. The rootfs is an idmapped mount (image files owned by root are root's
//! inside); volumes are bound as they are, so a file the container's root writes there
//! belongs to the mapped host uid, and host root's files show as `nobody`.

use crate::containerizer::types::{ContainerConfig, IdMapping, PidMode, Pod, PodConfig};
use crate::isolators::{ContainerContext, Isolator, IsolatorError, PodPlan};
use crate::launcher::LaunchSpec;
use crate::sys::netns::PodNamespace;

pub struct UserNamespace;

/// The kernel's limit on ranges in one map file (`UID_GID_MAP_MAX_EXTENTS`).
const MAX_RANGES: usize = 340;

fn invalid(field: &'static str, value: String, reason: &'static str) -> IsolatorError {
    IsolatorError::Invalid {
        field,
        value,
        reason,
    }
}

/// Checks one map: ranges that fit in 32 bits, do not overlap inside or outside, map the
/// container's root, and never map onto the host's root.
fn check_map(field: &'static str, map: &[IdMapping]) -> Result<(), IsolatorError> {
    let shown = || format!("{map:?}");
    if map.is_empty() || map.len() > MAX_RANGES {
        return Err(invalid(
            field,
            shown(),
            "must have between 1 and 340 ranges",
        ));
    }
    let end = |start: u32, len: u32| u64::from(start) + u64::from(len);
    for m in map {
        if m.length == 0
            || end(m.container_id, m.length) > 1 << 32
            || end(m.host_id, m.length) > 1 << 32
        {
            return Err(invalid(
                field,
                shown(),
                "a range is empty or runs past 2^32",
            ));
        }
        if m.host_id == 0 {
            return Err(invalid(
                field,
                shown(),
                "maps onto the host's root (host id 0): that is no user namespace at all",
            ));
        }
    }
    for (i, a) in map.iter().enumerate() {
        for b in &map[i + 1..] {
            let overlap =
                |s1, l1, s2, l2| u64::from(s1) < end(s2, l2) && u64::from(s2) < end(s1, l1);
            if overlap(a.container_id, a.length, b.container_id, b.length)
                || overlap(a.host_id, a.length, b.host_id, b.length)
            {
                return Err(invalid(field, shown(), "ranges overlap"));
            }
        }
    }
    if !map.iter().any(|m| {
        m.container_id == 0
            || (m.container_id..m.container_id.saturating_add(m.length)).contains(&0)
    }) {
        return Err(invalid(
            field,
            shown(),
            "does not map the container's root (id 0)",
        ));
    }
    Ok(())
}

impl Isolator for UserNamespace {
    fn name(&self) -> &'static str {
        "namespaces/user"
    }

    fn plan_pod(&self, pod: &PodConfig, plan: &mut PodPlan) -> Result<(), IsolatorError> {
        let Some(u) = &pod.userns else {
            return Ok(());
        };
        check_map("userns_options.uids", &u.uids)?;
        check_map("userns_options.gids", &u.gids)?;
        // The host's namespaces belong to the host's user namespace: a pod cannot both
        // have its own and share those (kubelet refuses these combinations too).
        for (host, what) in [
            (pod.host_network, "network"),
            (pod.host_ipc, "ipc"),
            (pod.pid == PidMode::Node, "pid"),
        ] {
            if host {
                return Err(invalid(
                    "userns_options.mode",
                    format!("POD with the host's {what} namespace"),
                    "a pod with its own user namespace cannot share the host's namespaces",
                ));
            }
        }
        plan.need(PodNamespace::User);
        plan.userns = Some(u.clone());
        Ok(())
    }

    fn check(&self, c: &ContainerConfig, pod: Option<&Pod>) -> Result<(), IsolatorError> {
        let in_userns = pod.is_some_and(|p| p.config.userns.is_some());
        if in_userns && (c.pid == PidMode::Node) {
            return Err(invalid(
                "namespace_options.pid",
                "NODE".into(),
                "a container in a pod's user namespace cannot share the host's PID namespace",
            ));
        }
        Ok(())
    }

    fn prepare(
        &self,
        c: &ContainerContext<'_>,
        launch: &mut LaunchSpec,
    ) -> Result<(), IsolatorError> {
        if let Some(pod) = c.pod.filter(|p| p.config.userns.is_some()) {
            launch.userns = Some(c.paths.pod_ns(&pod.id, "user"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(container_id: u32, host_id: u32, length: u32) -> IdMapping {
        IdMapping {
            container_id,
            host_id,
            length,
        }
    }

    #[test]
    fn kubelets_mappings_are_taken() {
        check_map("uids", &[m(0, 65536 * 3, 65536)]).expect("kubelet's");
        check_map("uids", &[m(0, 200_000, 1), m(1, 300_000, 999)]).expect("two ranges");
    }

    #[test]
    fn bad_mappings_are_refused_saying_why() {
        for (map, why) in [
            (vec![], "between 1 and 340"),
            (vec![m(0, 0, 65536)], "host's root"),
            (vec![m(0, 100_000, 0)], "empty"),
            (vec![m(0, u32::MAX, 2)], "2^32"),
            (vec![m(1, 100_000, 10)], "container's root"),
            (vec![m(0, 100_000, 10), m(5, 200_000, 10)], "overlap"),
            (vec![m(0, 100_000, 10), m(10, 100_005, 10)], "overlap"),
        ] {
            let e = check_map("uids", &map).expect_err(why);
            assert!(e.to_string().contains(why), "{map:?}: {e}");
        }
    }
}
