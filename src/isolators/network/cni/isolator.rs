//! The `network/cni` isolator: a pod's network, as kubelet's runtimes make it (ucr-spec.md
//! §5.9 for Mesos's). For the pod:
//! - plan: network and UTS namespaces and the hostname (none for host-network pods), and
//!   a clear refusal when the pod needs a network and none is configured;
//! - prepare: the pod's `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf`, then CNI
//!   ADD (after the namespace exists), then the hosts file again with the pod's IPs;
//! - cleanup: CNI DEL, from the isolator's cache alone, so it works after a crash, a
//!   restart or the config's removal (and without the namespace, gone after a reboot).
//!
//! For a container of the pod: its namespaces joined, the pod's files bound in (unless a
//! volume takes one of those paths), `HOSTNAME` in its environment.
//!
//! The pod id is the CNI container id and the interface is `eth0`.
//!
//! A standalone container (the Mesos door's) may name networks of its own: see
//! `standalone`.

use std::net::IpAddr;
use std::path::Path;

use async_trait::async_trait;

use super::files::{self, DnsConfig};
use super::{standalone, Attachment, Cni};
use crate::containerizer::types::{ContainerConfig, Pod, PodConfig, PortMapping};
use crate::isolators::docker::runtime::with_hostname;
use crate::isolators::{
    blocking, ContainerContext, InterfaceUsage, Isolator, IsolatorError, IsolatorStatus, Known,
    PodContext, PodPlan, Usage,
};
use crate::launcher::spec::{JoinNamespace, Mount, MountPropagation, NamespaceKind};
use crate::launcher::LaunchSpec;
use crate::sys::netns::PodNamespace;

/// The pod's interface inside its namespace.
pub const IFNAME: &str = "eth0";

pub struct NetworkCni {
    cni: Cni,
}

impl NetworkCni {
    pub fn new(cni: Cni) -> Self {
        NetworkCni { cni }
    }
}

/// The pod's hostname: the request's, else the node's (containerd does the same; the pod
/// name can be longer than a hostname may be).
pub fn pod_hostname(config: &PodConfig) -> String {
    if !config.hostname.is_empty() {
        return config.hostname.clone();
    }
    nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "localhost".into())
}

fn dns(config: &PodConfig) -> DnsConfig {
    DnsConfig {
        servers: config.dns.servers.clone(),
        searches: config.dns.searches.clone(),
        options: config.dns.options.clone(),
    }
}

#[async_trait]
impl Isolator for NetworkCni {
    fn name(&self) -> &'static str {
        "network/cni"
    }

    /// The pod's interfaces and their counters, read through netlink inside its network
    /// namespace (a host-network pod has none of its own: nothing to report, as
    /// containerd reports nothing for one).
    fn pod_usage(
        &self,
        pod: &crate::containerizer::types::Pod,
        u: &mut crate::isolators::Usage,
    ) -> Result<(), IsolatorError> {
        let Some(netns) = &pod.netns else {
            return Ok(());
        };
        u.network = interfaces(netns)?;
        Ok(())
    }

    fn ready(&self) -> Result<(), String> {
        self.cni.ready()
    }

    fn check(&self, c: &ContainerConfig, pod: Option<&Pod>) -> Result<(), IsolatorError> {
        standalone::check(&self.cni, c, pod)
    }

    fn cleanup(&self, c: &ContainerContext<'_>) -> Result<(), IsolatorError> {
        if c.pod.is_some() || c.config.networks.is_empty() {
            return Ok(());
        }
        standalone::cleanup(&self.cni, c.id, c.config.networks.len())
    }

    /// A standalone container's own interfaces (a pod's are the pod's: `pod_usage`).
    fn usage(&self, c: &ContainerContext<'_>, u: &mut Usage) -> Result<(), IsolatorError> {
        if c.pod.is_some() {
            return Ok(());
        }
        if let Some(netns) = standalone::netns_pin(&self.cni, c.id) {
            u.network = interfaces(&netns)?;
        }
        Ok(())
    }

    fn status(
        &self,
        c: &ContainerContext<'_>,
        s: &mut IsolatorStatus,
    ) -> Result<(), IsolatorError> {
        if c.pod.is_none() {
            s.ips = standalone::ips(&self.cni, c.id, c.config.networks.len());
        }
        Ok(())
    }

    fn recover(&self, known: &Known<'_>) -> Result<Vec<String>, IsolatorError> {
        Ok(standalone::orphans(&self.cni, known))
    }

    fn plan_pod(&self, pod: &PodConfig, plan: &mut PodPlan) -> Result<(), IsolatorError> {
        let hostname = pod_hostname(pod);
        files::check(&hostname, &dns(pod))?;
        if pod.host_network {
            return Ok(());
        }
        self.cni.ready().map_err(IsolatorError::Unavailable)?;
        plan.need(PodNamespace::Net);
        plan.need(PodNamespace::Uts);
        plan.hostname = Some(hostname);
        Ok(())
    }

    async fn prepare_pod(&self, pod: &mut PodContext<'_>) -> Result<(), IsolatorError> {
        let etc = pod.paths.pod_etc(pod.id());
        let hostname = pod_hostname(pod.config());
        let dns = dns(pod.config());
        let (dir, name) = (etc.clone(), hostname.clone());
        blocking(move || {
            Ok(files::write_all(
                &dir,
                &name,
                &[],
                &dns,
                Path::new(files::HOST_RESOLV_CONF),
            )?)
        })
        .await?;
        let Some(netns) = pod.pod.netns.clone() else {
            return Ok(());
        };
        let att = attachment(pod.id(), &netns, pod.config());
        let net = match self.cni.add(&att).await {
            Ok(net) => net,
            Err(e) => {
                // The library undoes a failed chain itself; a DEL that finds nothing
                // cached is a no-op, and one that does clears what its undo could not.
                let _ = self.cni.del(pod.id(), IFNAME, Some(&netns)).await;
                return Err(e.into());
            }
        };
        let ips = net.ips.clone();
        blocking(move || Ok(files::write_hosts(&etc, &hostname, &ips)?)).await?;
        // Already IPv4 first (see `PodNetwork::ips`): the CRI's primary IP.
        pod.pod.ips = net.ips.iter().map(IpAddr::to_string).collect();
        Ok(())
    }

    async fn cleanup_pod(&self, pod: &mut PodContext<'_>) -> Result<(), IsolatorError> {
        if pod.config().host_network {
            return Ok(());
        }
        let pin = pod.paths.pod_ns(pod.id(), "net");
        let netns = crate::sys::netns::is_pinned(&pin).then_some(pin.as_path());
        self.cni.del(pod.id(), IFNAME, netns).await?;
        Ok(())
    }

    fn prepare(
        &self,
        c: &ContainerContext<'_>,
        launch: &mut LaunchSpec,
    ) -> Result<(), IsolatorError> {
        let Some(pod) = c.pod else {
            return standalone::prepare(&self.cni, c, launch);
        };
        let etc = c.paths.pod_etc(&pod.id);
        for file in [files::HOSTS, files::HOSTNAME, files::RESOLV_CONF] {
            let dest = format!("/etc/{file}");
            if !c.config.mounts.iter().any(|m| m.container_path == dest) {
                launch.mounts.push(Mount {
                    source: etc.join(file),
                    destination: dest,
                    readonly: false,
                    propagation: MountPropagation::Private,
                });
            }
        }
        if let Some(net) = &pod.netns {
            launch.join.push(JoinNamespace {
                kind: NamespaceKind::Net,
                path: net.clone(),
                owner: None,
            });
            launch.join.push(JoinNamespace {
                kind: NamespaceKind::Uts,
                path: c.paths.pod_ns(&pod.id, "uts"),
                owner: None,
            });
        }
        let hostname = std::fs::read_to_string(etc.join(files::HOSTNAME))
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| pod.config.hostname.clone());
        launch.process.env = with_hostname(std::mem::take(&mut launch.process.env), &hostname);
        Ok(())
    }
}

/// The interfaces of a network namespace and their counters, read through netlink inside
/// it (loopback left out).
fn interfaces(netns: &Path) -> Result<Vec<InterfaceUsage>, IsolatorError> {
    let links = crate::sys::netns::interface_stats(netns)
        .map_err(crate::isolators::io("read interface stats in", netns))?;
    Ok(links
        .into_iter()
        .filter(|l| l.name != "lo")
        .map(|l| InterfaceUsage {
            name: l.name,
            rx_bytes: l.rx_bytes,
            rx_packets: l.rx_packets,
            rx_errors: l.rx_errors,
            rx_dropped: l.rx_dropped,
            tx_bytes: l.tx_bytes,
            tx_packets: l.tx_packets,
            tx_errors: l.tx_errors,
            tx_dropped: l.tx_dropped,
        })
        .collect())
}

fn attachment(id: &str, netns: &Path, config: &PodConfig) -> Attachment {
    let m = &config.metadata;
    Attachment {
        container_id: id.to_string(),
        netns: netns.to_path_buf(),
        ifname: IFNAME.into(),
        network: None,
        pod_namespace: m.namespace.clone(),
        pod_name: m.name.clone(),
        pod_uid: m.uid.clone(),
        port_mappings: config.port_mappings.iter().map(port_mapping).collect(),
        bandwidth: config.bandwidth,
        dns: Some(super::Dns {
            servers: config.dns.servers.clone(),
            searches: config.dns.searches.clone(),
            options: config.dns.options.clone(),
        }),
        ips: Vec::new(),
    }
}

pub(super) fn port_mapping(p: &PortMapping) -> super::PortMapping {
    super::PortMapping {
        host_port: p.host_port,
        container_port: p.container_port,
        protocol: p.protocol.clone(),
        host_ip: p.host_ip.clone(),
    }
}
