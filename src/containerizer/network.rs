//! A pod's network through the CNI isolator (`isolators::network::cni`), as kubelet's
//! runtimes do it: ADD when the sandbox is made (after its namespace exists), DEL when it
//! is stopped, the pod IPs written into its `/etc/hosts`. Host-network pods have none.
//!
//! The pod id is the CNI container id and the interface is `eth0`, so a restarted daemon
//! (or the start-up sweep of a pod a crash left half made) can DEL from the isolator's
//! on-disk cache alone.

use std::net::IpAddr;
use std::path::Path;

use super::error::ContainerizerError;
use super::pod_files;
use super::types::{PodConfig, PortMapping};
use super::Containerizer;
use crate::isolators::network::cni::{self, Attachment, Cni};

/// The pod's interface inside its namespace.
pub const IFNAME: &str = "eth0";

/// What kubelet's bandwidth annotations ask for, checked before anything is created.
pub fn bandwidth(
    id: &str,
    config: &PodConfig,
) -> Result<Option<cni::Bandwidth>, ContainerizerError> {
    cni::bandwidth_from_annotations(&config.annotations).map_err(|source| {
        ContainerizerError::Network {
            id: id.to_string(),
            source,
        }
    })
}

fn attachment(
    id: &str,
    netns: &Path,
    config: &PodConfig,
    bw: Option<cni::Bandwidth>,
) -> Attachment {
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
        bandwidth: bw,
        dns: Some(cni::Dns {
            servers: config.dns.servers.clone(),
            searches: config.dns.searches.clone(),
            options: config.dns.options.clone(),
        }),
        ips: Vec::new(),
    }
}

fn port_mapping(p: &PortMapping) -> cni::PortMapping {
    cni::PortMapping {
        host_port: p.host_port,
        container_port: p.container_port,
        protocol: p.protocol.clone(),
        host_ip: p.host_ip.clone(),
    }
}

impl Containerizer {
    /// Whether pods can be networked now; the reason when not (CRI `NetworkReady`).
    pub fn network_ready(&self) -> Result<(), String> {
        self.network.ready()
    }

    /// Fails fast, before anything is made, when the pod needs a network and none is
    /// configured.
    pub(super) fn check_network(
        &self,
        id: &str,
        config: &PodConfig,
    ) -> Result<(), ContainerizerError> {
        if config.host_network {
            return Ok(());
        }
        self.network
            .ready()
            .map_err(|reason| ContainerizerError::Network {
                id: id.to_string(),
                source: cni::CniError::NoNetwork { reason },
            })
    }

    /// CNI ADD for a new pod whose namespace is pinned at `netns`; then its hosts file
    /// names its IPs. Returns the IPs, primary first. On failure nothing stays attached.
    pub(super) async fn attach(
        &self,
        id: &str,
        netns: &Path,
        config: &PodConfig,
        bw: Option<cni::Bandwidth>,
    ) -> Result<Vec<IpAddr>, ContainerizerError> {
        let att = attachment(id, netns, config, bw);
        let wrap = |source| ContainerizerError::Network {
            id: id.to_string(),
            source,
        };
        let net = match self.network.add(&att).await {
            Ok(net) => net,
            Err(e) => {
                // The isolator undoes a failed chain itself; a DEL that finds nothing
                // cached is a no-op, and one that does clears what its undo could not.
                let _ = self.network.del(id, IFNAME, Some(netns)).await;
                return Err(wrap(e));
            }
        };
        let hostname = std::fs::read_to_string(self.paths.pod_etc(id).join(pod_files::HOSTNAME))
            .map(|h| h.trim().to_string())
            .unwrap_or_default();
        if let Err(e) = pod_files::write_hosts(&self.paths.pod_etc(id), &hostname, &net.ips) {
            let _ = self.network.del(id, IFNAME, Some(netns)).await;
            return Err(e.into());
        }
        Ok(net.ips)
    }

    /// CNI DEL for a pod. Idempotent: nothing attached (or already detached) is fine, and
    /// it works without the namespace (gone after a reboot) or the config file.
    pub(super) async fn detach(&self, id: &str) -> Result<(), ContainerizerError> {
        let pin = self.paths.pod_ns(id, "net");
        let netns = crate::sys::netns::is_pinned(&pin).then_some(pin.as_path());
        self.network
            .del(id, IFNAME, netns)
            .await
            .map_err(|source| ContainerizerError::Network {
                id: id.to_string(),
                source,
            })
    }
}

/// The CNI isolator a containerizer uses.
pub fn isolator(
    conf_dir: &Path,
    bin_dirs: &[std::path::PathBuf],
    cache_dir: &Path,
    timeout: std::time::Duration,
) -> Cni {
    Cni::new(cni::CniConfig {
        conf_dir: conf_dir.to_path_buf(),
        bin_dirs: bin_dirs.to_vec(),
        cache_dir: cache_dir.to_path_buf(),
        plugin_timeout: timeout,
    })
}
