//! What a plugin is told besides its config: CNI_ARGS (the pod's identity, as kubelet's
//! dockershim and containerd send it), `runtimeConfig` (the capabilities it declared),
//! and `prevResult` when chained. Computed once per ADD and cached, so the DEL after a
//! restart tells portmap the same mappings it is to remove.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::conf::{NetworkList, PluginConf};
use super::error::CniError;
use super::types::Attachment;

/// The runtime half of an invocation, independent of the plugin.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RuntimeArgs {
    /// CNI_ARGS pairs in order.
    pub cni_args: Vec<(String, String)>,
    /// Capability name → the value passed in `runtimeConfig`, only for those that are
    /// set (plugins treat an absent capability as "nothing asked").
    pub capabilities: Map<String, Value>,
}

impl RuntimeArgs {
    pub fn from_attachment(att: &Attachment) -> RuntimeArgs {
        let cni_args = [
            // Plugins that do not know the K8S_ keys must not fail on them.
            ("IgnoreUnknown", "1"),
            ("K8S_POD_NAMESPACE", att.pod_namespace.as_str()),
            ("K8S_POD_NAME", att.pod_name.as_str()),
            ("K8S_POD_INFRA_CONTAINER_ID", att.container_id.as_str()),
            ("K8S_POD_UID", att.pod_uid.as_str()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let mut caps = Map::new();
        // A hostPort of 0 means "no host port" in the CRI; kubelet and containerd drop
        // such mappings rather than ask portmap for port 0.
        let ports: Vec<Value> = att
            .port_mappings
            .iter()
            .filter(|p| p.host_port != 0)
            .map(|p| {
                let mut m = json!({
                    "hostPort": p.host_port,
                    "containerPort": p.container_port,
                    "protocol": p.protocol.to_ascii_lowercase(),
                });
                if !p.host_ip.is_empty() {
                    m["hostIP"] = json!(p.host_ip);
                }
                m
            })
            .collect();
        if !ports.is_empty() {
            caps.insert("portMappings".into(), Value::Array(ports));
        }
        if let Some(b) = &att.bandwidth {
            caps.insert(
                "bandwidth".into(),
                json!({
                    "ingressRate": b.ingress_rate, "ingressBurst": b.ingress_burst,
                    "egressRate": b.egress_rate, "egressBurst": b.egress_burst,
                }),
            );
        }
        if let Some(d) = &att.dns {
            caps.insert(
                "dns".into(),
                json!({"servers": d.servers, "searches": d.searches, "options": d.options}),
            );
        }
        if !att.ips.is_empty() {
            caps.insert("ips".into(), json!(att.ips));
        }
        RuntimeArgs {
            cni_args,
            capabilities: caps,
        }
    }

    /// CNI_ARGS: `K=V` pairs joined by `;`.
    pub fn cni_args_string(&self) -> String {
        self.cni_args
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(";")
    }
}

/// A plugin's stdin: its own config with the list's `name` and `cniVersion` injected,
/// `prevResult` when given, and `runtimeConfig` holding only what it declared in
/// `capabilities` (replacing any static `runtimeConfig`, as libcni does).
pub fn plugin_stdin(
    list: &NetworkList,
    plugin: &PluginConf,
    runtime: &RuntimeArgs,
    prev_result: Option<&Value>,
) -> Vec<u8> {
    let mut conf = plugin.raw.clone();
    conf.insert("name".into(), json!(list.name));
    conf.insert("cniVersion".into(), json!(list.cni_version));
    if let Some(prev) = prev_result {
        conf.insert("prevResult".into(), prev.clone());
    }
    let runtime_config: Map<String, Value> = plugin
        .capabilities
        .iter()
        .filter_map(|cap| {
            runtime
                .capabilities
                .get(cap)
                .map(|v| (cap.clone(), v.clone()))
        })
        .collect();
    if !runtime_config.is_empty() {
        conf.insert("runtimeConfig".into(), Value::Object(runtime_config));
    }
    // Serialising a Map of Values cannot fail.
    serde_json::to_vec(&conf).unwrap_or_default()
}

fn invalid(field: &'static str, value: &str, reason: &'static str) -> Result<(), CniError> {
    Err(CniError::InvalidAttachment {
        field,
        value: value.to_owned(),
        reason,
    })
}

/// The container id and interface name become cache file names, CNI_CONTAINERID and
/// CNI_IFNAME: letters, digits, `_.-` for ids; the kernel's `dev_valid_name()` rules
/// (at most IFNAMSIZ-1 bytes, no `/`, `:` or spaces) for interfaces.
pub fn validate_ids(container_id: &str, ifname: &str) -> Result<(), CniError> {
    let id_ok = !container_id.is_empty()
        && container_id != "."
        && container_id != ".."
        && container_id.len() <= 255
        && container_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if !id_ok {
        return invalid(
            "container_id",
            container_id,
            "must be letters, digits, '_', '.', '-'",
        );
    }
    if ifname.is_empty()
        || ifname.len() > 15
        || ifname == "."
        || ifname == ".."
        || ifname
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control())
    {
        return invalid("ifname", ifname, "not a valid interface name");
    }
    Ok(())
}

/// Rejects what would break the CNI protocol or our cache layout: ids and names become
/// file names and `;`/`=`-separated CNI_ARGS values.
pub fn validate(att: &Attachment) -> Result<(), CniError> {
    validate_ids(&att.container_id, &att.ifname)?;
    if !att.netns.is_absolute() {
        return invalid(
            "netns",
            &att.netns.display().to_string(),
            "must be an absolute path",
        );
    }
    if att.network.as_deref() == Some("") {
        return invalid(
            "network",
            "",
            "must not be empty (use None for the default)",
        );
    }
    for (field, value) in [
        ("pod_namespace", &att.pod_namespace),
        ("pod_name", &att.pod_name),
        ("pod_uid", &att.pod_uid),
    ] {
        if value.contains([';', '=']) || value.chars().any(char::is_control) {
            return invalid(
                field,
                value,
                "must not contain ';', '=' or control characters",
            );
        }
    }
    for p in &att.port_mappings {
        if !["tcp", "udp", "sctp"].contains(&p.protocol.to_ascii_lowercase().as_str()) {
            return invalid(
                "port_mappings.protocol",
                &p.protocol,
                "must be tcp, udp or sctp",
            );
        }
        if p.host_port != 0 && p.container_port == 0 {
            return invalid("port_mappings.container_port", "0", "must not be 0");
        }
        if !p.host_ip.is_empty() && p.host_ip.parse::<IpAddr>().is_err() {
            return invalid("port_mappings.host_ip", &p.host_ip, "not an IP address");
        }
    }
    for ip in &att.ips {
        let addr = ip.split_once('/').map_or(ip.as_str(), |(a, _)| a);
        if addr.parse::<IpAddr>().is_err() {
            return invalid("ips", ip, "not an IP address");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
