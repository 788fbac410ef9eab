//! CNI_ARGS, runtimeConfig and stdin as plugins receive them.

#![allow(clippy::unwrap_used)]

use super::*;
use crate::isolators::network::cni::types::{Bandwidth, Dns, PortMapping};

fn att() -> Attachment {
    Attachment {
        container_id: "abc".into(),
        netns: "/run/netns/x".into(),
        ifname: "eth0".into(),
        pod_namespace: "ns".into(),
        pod_name: "p".into(),
        pod_uid: "u".into(),
        ..Attachment::default()
    }
}

#[test]
fn cni_args_carry_the_pod_identity() {
    assert_eq!(
        RuntimeArgs::from_attachment(&att()).cni_args_string(),
        "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p;\
         K8S_POD_INFRA_CONTAINER_ID=abc;K8S_POD_UID=u"
    );
}

#[test]
fn capabilities_hold_only_what_is_set_in_the_wire_names() {
    assert!(RuntimeArgs::from_attachment(&att()).capabilities.is_empty());
    let mut a = att();
    a.port_mappings = vec![
        PortMapping {
            host_port: 80,
            container_port: 8080,
            protocol: "UDP".into(),
            host_ip: "10.0.0.1".into(),
        },
        // No host port: not a mapping at all.
        PortMapping {
            host_port: 0,
            container_port: 9090,
            protocol: "tcp".into(),
            host_ip: String::new(),
        },
    ];
    a.bandwidth = Some(Bandwidth {
        ingress_rate: 1,
        ingress_burst: 2,
        egress_rate: 3,
        egress_burst: 4,
    });
    a.dns = Some(Dns {
        servers: vec!["1.1.1.1".into()],
        searches: vec!["a".into()],
        options: vec![],
    });
    a.ips = vec!["10.0.0.9/24".into()];
    let caps = RuntimeArgs::from_attachment(&a).capabilities;
    assert_eq!(
        Value::Object(caps),
        json!({
            "portMappings": [{"hostPort": 80, "containerPort": 8080, "protocol": "udp", "hostIP": "10.0.0.1"}],
            "bandwidth": {"ingressRate": 1, "ingressBurst": 2, "egressRate": 3, "egressBurst": 4},
            "dns": {"servers": ["1.1.1.1"], "searches": ["a"], "options": []},
            "ips": ["10.0.0.9/24"],
        })
    );
}

#[test]
fn stdin_injects_name_version_prev_result_and_declared_capabilities() {
    let list = super::super::conf::parse(
        br#"{"cniVersion":"0.4.0","name":"net","plugins":[
            {"type":"portmap","name":"ignored","cniVersion":"9","capabilities":{"portMappings":true,"ips":true},
             "runtimeConfig":{"static":1}},
            {"type":"bridge","runtimeConfig":{"static":1}}]}"#,
    )
    .unwrap();
    let mut a = att();
    a.port_mappings = vec![PortMapping {
        host_port: 1,
        container_port: 2,
        protocol: "tcp".into(),
        host_ip: String::new(),
    }];
    a.dns = Some(Dns::default());
    let rt = RuntimeArgs::from_attachment(&a);
    let prev = json!({"cniVersion": "0.4.0", "ips": []});
    let first: Value =
        serde_json::from_slice(&plugin_stdin(&list, &list.plugins[0], &rt, Some(&prev))).unwrap();
    assert_eq!(first["name"], "net");
    assert_eq!(first["cniVersion"], "0.4.0");
    assert_eq!(first["prevResult"], prev);
    assert_eq!(
        first["runtimeConfig"],
        json!({"portMappings": [{"hostPort": 1, "containerPort": 2, "protocol": "tcp"}]})
    );
    // Nothing declared: any static runtimeConfig stays as the config wrote it.
    let second: Value =
        serde_json::from_slice(&plugin_stdin(&list, &list.plugins[1], &rt, None)).unwrap();
    assert_eq!(second["runtimeConfig"], json!({"static": 1}));
    assert!(second.get("prevResult").is_none());
}
