//! A standalone container's own network (Mesos `network_infos` naming CNI networks,
//! ucr-spec §5.9): a pod has one from its sandbox, a standalone container with networks
//! gets network and UTS namespaces of its own, pinned under `<cni state>/standalone/<id>`,
//! one interface per network (`eth0`, `eth1`… in the order given), its hostname (the
//! request's, else the container id) and `/etc/{hosts,hostname,resolv.conf}` written
//! there and bound in. `resolv.conf` is the first plugin's DNS that names servers, else
//! the host's. Host ports go through each network's `portMappings` capability (the
//! portmap plugin), as Mesos's port mapper's DNAT rules do. Without networks it stays on the host's network, as Mesos's does.
//!
//! Everything is keyed by the container id, so DEL works from the CNI cache after a
//! restart, and a crash between ADD and the container's record is undone at start-up by
//! [`orphans`].

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::files::{self, DnsConfig};
use super::{Attachment, Cni};
use crate::containerizer::types::{ContainerConfig, Pod};
use crate::isolators::{io, ContainerContext, IsolatorError, Known};
use crate::launcher::spec::{JoinNamespace, Mount, MountPropagation, NamespaceKind};
use crate::launcher::LaunchSpec;
use crate::sys::netns::{self, PodNamespace, PodPins};

/// Interfaces per container: `eth0`…`eth7`.
pub const MAX_NETWORKS: usize = 8;

fn ifname(i: usize) -> String {
    format!("eth{i}")
}

fn pins(dir: &Path) -> PodPins {
    PodPins {
        user: dir.join("user"),
        net: dir.join("net"),
        ipc: dir.join("ipc"),
        uts: dir.join("uts"),
    }
}

/// The container's hostname in its own UTS namespace.
pub fn hostname(id: &str, c: &ContainerConfig) -> String {
    c.hostname.clone().unwrap_or_else(|| id.to_string())
}

/// Refuses what cannot be given, before anything is made.
pub fn check(cni: &Cni, c: &ContainerConfig, pod: Option<&Pod>) -> Result<(), IsolatorError> {
    let invalid = |field, value: &str, reason| IsolatorError::Invalid {
        field,
        value: value.to_string(),
        reason,
    };
    if c.networks.is_empty() {
        return match &c.hostname {
            Some(h) => Err(invalid(
                "hostname",
                h,
                "needs a network of its own (name a CNI network)",
            )),
            None => Ok(()),
        };
    }
    if pod.is_some() {
        return Err(invalid(
            "networks",
            &c.networks.join(","),
            "a pod's containers share their pod's network",
        ));
    }
    if c.networks.len() > MAX_NETWORKS {
        return Err(invalid(
            "networks",
            &c.networks.join(","),
            "at most 8 networks per container",
        ));
    }
    let known = cni.networks();
    for (i, name) in c.networks.iter().enumerate() {
        if name.is_empty() {
            return Err(invalid("network name", name, "must not be empty"));
        }
        if c.networks[..i].contains(name) {
            return Err(invalid("network name", name, "is named twice"));
        }
        if !known.contains(name) {
            return Err(invalid(
                "network name",
                name,
                "is not a CNI network in the config directory",
            ));
        }
    }
    for (network, ports) in &c.port_mappings {
        if !c.networks.contains(network) {
            return Err(invalid(
                "port_mappings network",
                network,
                "is not one of the container's networks",
            ));
        }
        if !ports.is_empty() && !cni.has_capability(network, "portMappings") {
            return Err(invalid(
                "port_mappings network",
                network,
                "has no plugin with the portMappings capability (e.g. portmap)",
            ));
        }
    }
    if let Some(h) = &c.hostname {
        files::check(h, &DnsConfig::default()).map_err(|_| {
            invalid(
                "hostname",
                h,
                "is not a valid hostname (letters, digits, '-' and '.', at most 64)",
            )
        })?;
    }
    Ok(())
}

/// Makes the namespaces, attaches each network and adds the namespaces and files to the
/// launch. On failure, undoes its own part (the table calls `cleanup` only for isolators
/// that finished).
pub fn prepare(
    cni: &Cni,
    c: &ContainerContext<'_>,
    launch: &mut LaunchSpec,
) -> Result<(), IsolatorError> {
    if c.pod.is_some() || c.config.networks.is_empty() {
        return Ok(());
    }
    let made = attach(cni, c);
    let (dir, ips) = match made {
        Ok(v) => v,
        Err(e) => {
            let _ = cleanup(cni, c.id, c.config.networks.len());
            return Err(e);
        }
    };
    let pins = pins(&dir);
    launch.join.push(JoinNamespace {
        kind: NamespaceKind::Net,
        path: pins.net.clone(),
        owner: None,
    });
    launch.join.push(JoinNamespace {
        kind: NamespaceKind::Uts,
        path: pins.uts.clone(),
        owner: None,
    });
    let etc = dir.join("etc");
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
    tracing::info!(container = %c.id, networks = ?c.config.networks, ?ips, "standalone container attached");
    Ok(())
}

fn attach(cni: &Cni, c: &ContainerContext<'_>) -> Result<(PathBuf, Vec<IpAddr>), IsolatorError> {
    let dir = cni.standalone_dir(c.id);
    crate::perm::private_dir(&dir).map_err(io("create", &dir))?;
    let pins = pins(&dir);
    let name = hostname(c.id, c.config);
    netns::create_pinned(&[PodNamespace::Net, PodNamespace::Uts], &pins, Some(&name))
        .map_err(io("create network namespaces at", &dir))?;
    // Called on a blocking thread of the daemon's runtime (the table's contract), where
    // waiting for the plugins' processes is allowed.
    let runtime = tokio::runtime::Handle::current();
    let mut ips = Vec::new();
    let mut dns = None;
    for (i, network) in c.config.networks.iter().enumerate() {
        let att = Attachment {
            container_id: c.id.to_string(),
            netns: pins.net.clone(),
            ifname: ifname(i),
            network: Some(network.clone()),
            pod_namespace: String::new(),
            pod_name: String::new(),
            pod_uid: String::new(),
            port_mappings: c
                .config
                .port_mappings
                .get(network)
                .into_iter()
                .flatten()
                .map(super::isolator::port_mapping)
                .collect(),
            bandwidth: None,
            dns: None,
            ips: Vec::new(),
        };
        let net = runtime.block_on(cni.add(&att))?;
        if dns.is_none() && !net.dns.servers.is_empty() {
            dns = Some(DnsConfig {
                servers: net.dns.servers.clone(),
                searches: net.dns.searches.clone(),
                options: net.dns.options.clone(),
            });
        }
        ips.extend(net.ips);
    }
    let etc = dir.join("etc");
    crate::perm::private_dir(&etc).map_err(io("create", &etc))?;
    files::write_all(
        &etc,
        &name,
        &ips,
        &dns.unwrap_or_default(),
        Path::new(files::HOST_RESOLV_CONF),
    )?;
    Ok((dir, ips))
}

/// DEL of every interface (from the cache: works after a restart or a config's removal),
/// then the pins and files. Idempotent; `count` bounds the interfaces tried.
pub fn cleanup(cni: &Cni, id: &str, count: usize) -> Result<(), IsolatorError> {
    let dir = cni.standalone_dir(id);
    let pins = pins(&dir);
    let netns = netns::is_pinned(&pins.net).then_some(pins.net.as_path());
    let runtime = tokio::runtime::Handle::current();
    let mut first = None;
    for i in 0..count.max(1) {
        if let Err(e) = runtime.block_on(cni.del(id, &ifname(i), netns)) {
            first.get_or_insert(IsolatorError::from(e));
        }
    }
    if let Some(e) = first {
        // The pins stay, so a later DEL can still name the namespace.
        return Err(e);
    }
    netns::remove_pinned(&pins).map_err(io("unpin namespaces at", &dir))?;
    match std::fs::remove_dir_all(&dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io("remove", &dir)(e)),
        _ => Ok(()),
    }
}

/// The container's addresses, from the cached ADD results (primary first).
pub fn ips(cni: &Cni, id: &str, count: usize) -> Vec<String> {
    (0..count)
        .filter_map(|i| cni.cached(id, &ifname(i)))
        .flat_map(|n| n.ips)
        .map(|ip| ip.to_string())
        .collect()
}

/// The pinned network namespace, while it is there.
pub fn netns_pin(cni: &Cni, id: &str) -> Option<PathBuf> {
    let pin = pins(&cni.standalone_dir(id)).net;
    netns::is_pinned(&pin).then_some(pin)
}

/// Start-up: what a crash left for standalone containers the daemon does not know (an
/// ADD done, the container never recorded), DEL'd and unpinned. Pods are not touched:
/// their own sweep does that. Returns the ids cleaned.
pub fn orphans(cni: &Cni, known: &Known<'_>) -> Vec<String> {
    let is_known = |id: &String| {
        known.containers.iter().any(|c| &c.id == id) || known.pods.iter().any(|p| &p.id == id)
    };
    let mut ids = cni.standalone_ids();
    ids.extend(cni.cached_ids());
    ids.sort();
    ids.dedup();
    ids.retain(|id| !is_known(id));
    // A cache entry without a standalone dir may be a pod's left half made; the pod
    // sweep (which runs first) has DEL'd those, so what remains here is ours or stale.
    ids.into_iter()
        .filter(|id| match cleanup(cni, id, MAX_NETWORKS) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(id = %id, error = %crate::error::chain(&e), "cleaning up an orphaned network");
                false
            }
        })
        .collect()
}
