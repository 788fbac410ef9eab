//! UpdateContainerResources, the stats calls and a container's isolation details: what the
//! resource isolators apply and measure, through the table.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::super::error::ContainerizerError;
use super::super::types::{Container, ContainerState, Resources};
use super::super::{blocking, now_ns, Containerizer};
use crate::isolators::Usage;

/// A container's usage at a moment.
#[derive(Debug, Clone)]
pub struct ContainerStats {
    pub container: Container,
    pub usage: Usage,
    /// When the figures were read (ns since the epoch).
    pub timestamp_ns: i64,
}

/// A pod's usage (its cgroup, its network) and its containers'.
#[derive(Debug, Clone)]
pub struct PodStats {
    pub pod: super::super::types::Pod,
    pub usage: Usage,
    pub timestamp_ns: i64,
    pub containers: Vec<ContainerStats>,
}

/// The new request's values over the old: the CRI sends every field, zero for "not
/// set", and containerd keeps what is in force for those.
fn merged(old: &Resources, new: &Resources) -> Resources {
    Resources {
        cpu_shares: new.cpu_shares.or(old.cpu_shares),
        cpu_quota: new.cpu_quota.or(old.cpu_quota),
        cpu_period: new.cpu_period.or(old.cpu_period),
        cpuset_cpus: new.cpuset_cpus.clone().or_else(|| old.cpuset_cpus.clone()),
        cpuset_mems: new.cpuset_mems.clone().or_else(|| old.cpuset_mems.clone()),
        memory_limit: new.memory_limit.or(old.memory_limit),
        memory_swap_limit: new.memory_swap_limit.or(old.memory_swap_limit),
        pids_limit: new.pids_limit.or(old.pids_limit),
        hugepage_limits: if new.hugepage_limits.is_empty() {
            old.hugepage_limits.clone()
        } else {
            new.hugepage_limits.clone()
        },
        blkio_weight: new.blkio_weight.or(old.blkio_weight),
        unified: if new.unified.is_empty() {
            old.unified.clone()
        } else {
            new.unified.clone()
        },
        disk_limit: new.disk_limit.or(old.disk_limit),
    }
}

impl Containerizer {
    /// UpdateContainerResources: the new limits, applied live (a created container's
    /// cgroup exists already) and recorded, so ContainerStatus reports what is in force.
    /// A value the kernel refuses is InvalidArgument and changes nothing on record.
    pub async fn update_container_resources(
        self: &Arc<Self>,
        id: &str,
        resources: Resources,
    ) -> Result<Container, ContainerizerError> {
        self.known_container(id)?;
        let _held = self.locks.container(id).await;
        let mut c = self.refreshed(id).await?;
        if !matches!(c.state, ContainerState::Created | ContainerState::Running) {
            return Err(ContainerizerError::BadState {
                id: c.id,
                state: c.state,
                op: "update its resources",
            });
        }
        let me = Arc::clone(self);
        blocking(move || {
            let wanted = merged(&c.config.resources, &resources);
            let owned = me.owned_context(&c)?;
            me.isolators.update(&me.context(&c, &owned), &wanted)?;
            c.config.resources = wanted;
            me.save(&c)?;
            Ok(c)
        })
        .await
    }

    /// The usage of running containers (all of them, or those `ids` names). Containers
    /// that are not running have no figures and are left out, as containerd does.
    pub async fn container_stats(
        self: &Arc<Self>,
        ids: Option<Vec<String>>,
    ) -> Result<Vec<ContainerStats>, ContainerizerError> {
        let wanted: Vec<Container> = {
            let cache = self.cache();
            match &ids {
                Some(ids) => ids
                    .iter()
                    .filter_map(|id| cache.containers.get(id).cloned())
                    .collect(),
                None => cache.containers.values().cloned().collect(),
            }
        };
        let me = Arc::clone(self);
        blocking(move || {
            Ok(wanted
                .into_iter()
                .filter(|c| c.state == ContainerState::Running)
                .filter_map(|c| me.stats_of(c))
                .collect())
        })
        .await
    }

    /// One container's figures; `None` when it has none (gone meanwhile).
    fn stats_of(&self, c: Container) -> Option<ContainerStats> {
        let owned = self.owned_context(&c).ok()?;
        let usage = match self.isolators.usage(&self.context(&c, &owned)) {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!(container = %c.id, error = %crate::error::chain(&e), "reading usage");
                return None;
            }
        };
        Some(ContainerStats {
            container: c,
            usage,
            timestamp_ns: now_ns(),
        })
    }

    /// The usage of ready pods (all, or `ids`), with their running containers'.
    pub async fn pod_stats(
        self: &Arc<Self>,
        ids: Option<Vec<String>>,
    ) -> Result<Vec<PodStats>, ContainerizerError> {
        let (pods, containers) = {
            let cache = self.cache();
            let pods: Vec<_> = match &ids {
                Some(ids) => ids
                    .iter()
                    .filter_map(|id| cache.pods.get(id).cloned())
                    .collect(),
                None => cache.pods.values().cloned().collect(),
            };
            let containers: Vec<Container> = cache
                .containers
                .values()
                .filter(|c| c.state == ContainerState::Running)
                .cloned()
                .collect();
            (pods, containers)
        };
        let me = Arc::clone(self);
        blocking(move || {
            let mut out = Vec::new();
            for pod in pods
                .into_iter()
                .filter(|p| p.state == super::super::types::PodState::Ready)
            {
                let usage = match me.isolators.pod_usage(&pod) {
                    Ok(u) => u,
                    Err(e) => {
                        tracing::debug!(pod = %pod.id, error = %crate::error::chain(&e), "reading pod usage");
                        continue;
                    }
                };
                let timestamp_ns = now_ns();
                let mine = containers
                    .iter()
                    .filter(|c| c.pod_id.as_deref() == Some(pod.id.as_str()))
                    .cloned()
                    .filter_map(|c| me.stats_of(c))
                    .collect();
                out.push(PodStats {
                    pod,
                    usage,
                    timestamp_ns,
                    containers: mine,
                });
            }
            Ok(out)
        })
        .await
    }

    /// What the isolators say of a container for a verbose status (cgroup path, net_cls
    /// handle…); empty when it has nothing.
    pub async fn isolation_info(
        self: &Arc<Self>,
        id: &str,
    ) -> Result<BTreeMap<String, String>, ContainerizerError> {
        Ok(self.isolation_status(id).await?.info)
    }

    /// All the isolators say of a container: its own IPs (a standalone container with
    /// networks) and the details of [`Self::isolation_info`].
    pub async fn isolation_status(
        self: &Arc<Self>,
        id: &str,
    ) -> Result<crate::isolators::IsolatorStatus, ContainerizerError> {
        let c = self.known_container(id)?;
        let me = Arc::clone(self);
        blocking(move || {
            let owned = me.owned_context(&c)?;
            Ok(me.isolators.status(&me.context(&c, &owned))?)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_update_keeps_what_it_does_not_set() {
        let old = Resources {
            cpu_shares: Some(512),
            memory_limit: Some(100),
            cpuset_cpus: Some("0".into()),
            ..Default::default()
        };
        let new = Resources {
            memory_limit: Some(200),
            ..Default::default()
        };
        let m = merged(&old, &new);
        assert_eq!(m.memory_limit, Some(200));
        assert_eq!(m.cpu_shares, Some(512));
        assert_eq!(m.cpuset_cpus.as_deref(), Some("0"));
    }
}
