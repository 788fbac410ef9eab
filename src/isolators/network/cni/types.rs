//! What callers hand in (an [`Attachment`]) and get back (a [`PodNetwork`]). Plain data:
//! no CNI wire format here (that is `args.rs` going out and `result.rs` coming back).

use std::net::IpAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// One interface of one pod on one CNI network: everything an ADD needs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// The pod sandbox's id (CNI_CONTAINERID, and K8S_POD_INFRA_CONTAINER_ID as kubelet
    /// sends it).
    pub container_id: String,
    /// The pinned network namespace file (CNI_NETNS).
    pub netns: PathBuf,
    /// The interface name inside the pod (CNI_IFNAME), `eth0` for the default network.
    pub ifname: String,
    /// A named network from the config directory; `None` is the default (first) one.
    pub network: Option<String>,
    pub pod_namespace: String,
    pub pod_name: String,
    pub pod_uid: String,
    /// The `portMappings` capability (the portmap plugin's hostPort rules).
    pub port_mappings: Vec<PortMapping>,
    /// The `bandwidth` capability (see [`super::bandwidth_from_annotations`]).
    pub bandwidth: Option<Bandwidth>,
    /// The `dns` capability (for plugins that program DNS, e.g. on Windows-like setups).
    pub dns: Option<Dns>,
    /// The `ips` capability: addresses the pod asks for (static IPAM).
    pub ips: Vec<String>,
}

/// A hostPort mapping as the CRI's `PortMapping` gives it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMapping {
    pub host_port: u16,
    pub container_port: u16,
    /// `tcp`, `udp` or `sctp` (lower case, as portmap wants it).
    pub protocol: String,
    /// Empty means every host address.
    pub host_ip: String,
}

/// Traffic shaping in bits per second and bits of burst, as the bandwidth plugin's
/// `runtimeConfig.bandwidth` wants them. Zero means "not shaped in that direction".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bandwidth {
    pub ingress_rate: u64,
    pub ingress_burst: u64,
    pub egress_rate: u64,
    pub egress_burst: u64,
}

/// DNS settings: what the pod asks for (the `dns` capability) or what a plugin reports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dns {
    pub servers: Vec<String>,
    /// Search domains. A plugin's `domain` comes first here, since resolv.conf's `domain`
    /// is only the default search list.
    pub searches: Vec<String>,
    pub options: Vec<String>,
}

/// What the network gave the pod, read from the final plugin's result.
#[derive(Debug, Clone, PartialEq)]
pub struct PodNetwork {
    /// The pod's addresses on the attached interface, IPv4 before IPv6 (kubelet takes
    /// the first as the pod's primary IP), otherwise in the plugin's order.
    pub ips: Vec<IpAddr>,
    pub interfaces: Vec<Interface>,
    pub routes: Vec<Route>,
    pub dns: Dns,
    /// The final result exactly as the last plugin printed it.
    pub raw: serde_json::Value,
}

/// An interface a plugin created or configured (in the pod or on the host).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    pub mac: Option<String>,
    /// The network namespace path for interfaces inside the pod; `None` on the host.
    pub sandbox: Option<String>,
    pub ips: Vec<IpConfig>,
}

/// One address with its prefix, as `10.88.0.5/16`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpConfig {
    pub address: IpAddr,
    pub prefix_len: u8,
    pub gateway: Option<IpAddr>,
}

/// A route a plugin installed in the pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The destination in CIDR form as the plugin wrote it (`0.0.0.0/0`).
    pub dst: String,
    pub gateway: Option<IpAddr>,
}
