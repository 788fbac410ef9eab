//! Pod sandbox messages ↔ containerizer types.

use std::collections::HashMap;

use k8s_cri::v1 as cri;

use crate::containerizer::types::{
    DnsConfig, IdMapping, Labels, PidMode, Pod, PodConfig, PodFilter, PodMetadata, PodState,
    PortMapping, UserNamespace,
};

/// `NamespaceMode::NODE`: share the host's namespace.
const NODE: i32 = cri::NamespaceMode::Node as i32;

pub fn labels(map: HashMap<String, String>) -> Labels {
    map.into_iter().collect()
}

fn to_map(labels: &Labels) -> HashMap<String, String> {
    labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

pub fn config(c: cri::PodSandboxConfig) -> Result<PodConfig, tonic::Status> {
    let m = c.metadata.unwrap_or_default();
    crate::cri::validate::pod_name(&m.name)?;
    crate::cri::validate::namespace(&m.namespace)?;
    crate::cri::validate::uid(&m.uid)?;
    let annotations = labels(c.annotations);
    // kubelet's bandwidth annotations, read as its runtimes read them.
    let bandwidth = crate::isolators::network::cni::bandwidth_from_annotations(&annotations)
        .map_err(|e| tonic::Status::invalid_argument(crate::error::chain(&e)))?;
    let ns = c
        .linux
        .as_ref()
        .and_then(|l| l.security_context.as_ref())
        .and_then(|s| s.namespace_options.clone())
        .unwrap_or_default();
    let sysctls = c
        .linux
        .as_ref()
        .map(|l| l.sysctls.clone().into_iter().collect())
        .unwrap_or_default();
    let dns = c.dns_config.unwrap_or_default();
    Ok(PodConfig {
        // kubelet retries a slow RunPodSandbox with the same four: same pod.
        key: format!("{}/{}/{}/{}", m.namespace, m.name, m.uid, m.attempt),
        metadata: PodMetadata {
            name: m.name,
            uid: m.uid,
            namespace: m.namespace,
            attempt: m.attempt,
        },
        hostname: c.hostname,
        log_directory: c.log_directory,
        dns: DnsConfig {
            servers: dns.servers,
            searches: dns.searches,
            options: dns.options,
        },
        labels: labels(c.labels),
        annotations,
        bandwidth,
        host_network: ns.network == NODE,
        host_ipc: ns.ipc == NODE,
        pid: pid_mode(&ns),
        port_mappings: c
            .port_mappings
            .iter()
            .map(port_mapping)
            .collect::<Result<_, _>>()?,
        sysctls,
        cgroup_parent: c
            .linux
            .as_ref()
            .map(|l| l.cgroup_parent.clone())
            .filter(|p| !p.is_empty()),
        userns: userns(&ns)?,
        selinux: super::security::selinux(
            c.linux
                .as_ref()
                .and_then(|l| l.security_context.as_ref())
                .and_then(|s| s.selinux_options.as_ref()),
        ),
    })
}

fn port_mapping(p: &cri::PortMapping) -> Result<PortMapping, tonic::Status> {
    let port = |what: &str, v: i32| {
        u16::try_from(v).map_err(|_| {
            tonic::Status::invalid_argument(format!("port_mappings: {what} {v} is not a port"))
        })
    };
    Ok(PortMapping {
        protocol: match cri::Protocol::try_from(p.protocol) {
            Ok(cri::Protocol::Tcp) => "tcp",
            Ok(cri::Protocol::Udp) => "udp",
            Ok(cri::Protocol::Sctp) => "sctp",
            Err(_) => {
                return Err(tonic::Status::invalid_argument(format!(
                    "port_mappings: unknown protocol {}",
                    p.protocol
                )))
            }
        }
        .into(),
        container_port: port("container_port", p.container_port)?,
        host_port: port("host_port", p.host_port)?,
        host_ip: p.host_ip.clone(),
    })
}

/// The PID mode a `NamespaceOption` asks for (pod or container level).
/// `userns_options`: mode NODE (or none) is the host's user namespace; POD a namespace of
/// the pod's own with kubelet's mappings. Kubelet sends no other mode.
pub fn userns(ns: &cri::NamespaceOption) -> Result<Option<UserNamespace>, tonic::Status> {
    let Some(u) = &ns.userns_options else {
        return Ok(None);
    };
    let map = |list: &[cri::IdMapping]| {
        list.iter()
            .map(|m| IdMapping {
                container_id: m.container_id,
                host_id: m.host_id,
                length: m.length,
            })
            .collect::<Vec<_>>()
    };
    match cri::NamespaceMode::try_from(u.mode) {
        Ok(cri::NamespaceMode::Node) => Ok(None),
        Ok(cri::NamespaceMode::Pod) => Ok(Some(UserNamespace {
            uids: map(&u.uids),
            gids: map(&u.gids),
        })),
        _ => Err(tonic::Status::invalid_argument(format!(
            "userns_options.mode {}: only NODE (the host's) and POD (the pod's own) are supported",
            u.mode
        ))),
    }
}

pub fn pid_mode(ns: &cri::NamespaceOption) -> PidMode {
    match cri::NamespaceMode::try_from(ns.pid) {
        Ok(cri::NamespaceMode::Pod) => PidMode::Pod,
        Ok(cri::NamespaceMode::Node) => PidMode::Node,
        Ok(cri::NamespaceMode::Target) => PidMode::Target(ns.target_id.clone()),
        _ => PidMode::Container,
    }
}

fn pid_mode_code(mode: &PidMode) -> i32 {
    (match mode {
        PidMode::Container => cri::NamespaceMode::Container,
        PidMode::Pod => cri::NamespaceMode::Pod,
        PidMode::Node => cri::NamespaceMode::Node,
        PidMode::Target(_) => cri::NamespaceMode::Target,
    }) as i32
}

fn metadata(p: &Pod) -> cri::PodSandboxMetadata {
    let m = &p.config.metadata;
    cri::PodSandboxMetadata {
        name: m.name.clone(),
        uid: m.uid.clone(),
        namespace: m.namespace.clone(),
        attempt: m.attempt,
    }
}

pub fn state(s: PodState) -> i32 {
    match s {
        PodState::Ready => cri::PodSandboxState::SandboxReady as i32,
        PodState::NotReady => cri::PodSandboxState::SandboxNotready as i32,
    }
}

pub fn status(p: &Pod) -> cri::PodSandboxStatus {
    let mode = |host: bool| {
        if host {
            NODE
        } else {
            cri::NamespaceMode::Pod as i32
        }
    };
    cri::PodSandboxStatus {
        id: p.id.clone(),
        metadata: Some(metadata(p)),
        state: state(p.state),
        created_at: p.created_at_ns,
        network: Some(cri::PodSandboxNetworkStatus {
            ip: p.ips.first().cloned().unwrap_or_default(),
            additional_ips: p
                .ips
                .iter()
                .skip(1)
                .map(|ip| cri::PodIp { ip: ip.clone() })
                .collect(),
        }),
        linux: Some(cri::LinuxPodSandboxStatus {
            namespaces: Some(cri::Namespace {
                options: Some(cri::NamespaceOption {
                    network: mode(p.config.host_network),
                    ipc: mode(p.config.host_ipc),
                    pid: pid_mode_code(&p.config.pid),
                    target_id: match &p.config.pid {
                        PidMode::Target(t) => t.clone(),
                        _ => String::new(),
                    },
                    ..Default::default()
                }),
            }),
        }),
        labels: to_map(&p.config.labels),
        annotations: to_map(&p.config.annotations),
        runtime_handler: String::new(),
    }
}

pub fn summary(p: &Pod) -> cri::PodSandbox {
    cri::PodSandbox {
        id: p.id.clone(),
        metadata: Some(metadata(p)),
        state: state(p.state),
        created_at: p.created_at_ns,
        labels: to_map(&p.config.labels),
        annotations: to_map(&p.config.annotations),
        runtime_handler: String::new(),
    }
}

pub fn filter(f: Option<cri::PodSandboxFilter>) -> PodFilter {
    let Some(f) = f else {
        return PodFilter::default();
    };
    PodFilter {
        id: (!f.id.is_empty()).then_some(f.id),
        state: f.state.map(|s| {
            if s.state == cri::PodSandboxState::SandboxReady as i32 {
                PodState::Ready
            } else {
                PodState::NotReady
            }
        }),
        labels: labels(f.label_selector),
    }
}

/// Verbose `info`: what an operator debugging a pod wants to see.
pub fn info(p: &Pod) -> HashMap<String, String> {
    let info = serde_json::json!({
        "id": p.id,
        "netns": p.netns,
        "config": p.config,
    });
    HashMap::from([("info".to_string(), info.to_string())])
}
