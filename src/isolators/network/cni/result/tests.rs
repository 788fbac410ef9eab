//! Results as real plugins print them, one per CNI version.

#![allow(clippy::unwrap_used)]

use std::net::IpAddr;

use serde_json::json;

use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// bridge + host-local, dual stack, as printed for cniVersion 0.3.1 / 0.4.0 (these carry
/// `version` in each ip; 1.0.0 dropped it).
fn bridge_result(version: &str) -> Value {
    let mut ips = json!([
        {"address": "fd00:10::5/64", "gateway": "fd00:10::1", "interface": 2},
        {"address": "10.88.0.5/16", "gateway": "10.88.0.1", "interface": 2},
    ]);
    if version.starts_with("0.") {
        ips[0]["version"] = json!("6");
        ips[1]["version"] = json!("4");
    }
    json!({
        "cniVersion": version,
        "interfaces": [
            {"name": "cni0", "mac": "aa:bb:cc:00:00:01"},
            {"name": "veth1234", "mac": "aa:bb:cc:00:00:02"},
            {"name": "eth0", "mac": "aa:bb:cc:00:00:03", "sandbox": "/run/netns/p"},
        ],
        "ips": ips,
        "routes": [{"dst": "0.0.0.0/0", "gw": "10.88.0.1"}, {"dst": "::/0"}],
        "dns": {"nameservers": ["10.96.0.10"], "domain": "cluster.local",
                "search": ["svc.cluster.local"], "options": ["ndots:5"]},
    })
}

#[test]
fn current_versions_give_the_sandbox_interface_ips_ipv4_first() {
    for version in ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"] {
        let raw = bridge_result(version);
        let net = parse(&raw, "eth0").unwrap();
        assert_eq!(net.ips, [ip("10.88.0.5"), ip("fd00:10::5")], "{version}");
        assert_eq!(net.interfaces.len(), 3);
        assert_eq!(net.interfaces[2].sandbox.as_deref(), Some("/run/netns/p"));
        assert_eq!(net.interfaces[0].sandbox, None);
        assert_eq!(
            net.interfaces[2].ips[1],
            IpConfig {
                address: ip("10.88.0.5"),
                prefix_len: 16,
                gateway: Some(ip("10.88.0.1"))
            }
        );
        assert_eq!(net.routes[0].gateway, Some(ip("10.88.0.1")));
        assert_eq!(net.routes[1].gateway, None);
        assert_eq!(net.dns.servers, ["10.96.0.10"]);
        assert_eq!(net.dns.searches, ["cluster.local", "svc.cluster.local"]);
        assert_eq!(net.dns.options, ["ndots:5"]);
        assert_eq!(net.raw, raw);
    }
}

#[test]
fn host_side_addresses_are_not_the_pods() {
    let raw = json!({"cniVersion": "1.0.0",
        "interfaces": [{"name": "cni0"}, {"name": "eth0", "sandbox": "/ns"}],
        "ips": [{"address": "10.0.0.1/24", "interface": 0},
                {"address": "10.0.0.7/24", "interface": 1}]});
    assert_eq!(parse(&raw, "eth0").unwrap().ips, [ip("10.0.0.7")]);
}

#[test]
fn addresses_without_interfaces_all_count() {
    // host-local alone prints no interfaces.
    let raw = json!({"cniVersion": "0.4.0",
        "ips": [{"version": "4", "address": "10.1.2.3/24", "gateway": "10.1.2.1"}]});
    let net = parse(&raw, "eth0").unwrap();
    assert_eq!(net.ips, [ip("10.1.2.3")]);
    assert!(net.interfaces.is_empty());
    assert_eq!(net.dns, Dns::default());
}

#[test]
fn the_legacy_shape_is_read() {
    let raw = json!({"cniVersion": "0.2.0",
        "ip6": {"ip": "fd00::9/64"},
        "ip4": {"ip": "10.1.0.9/16", "gateway": "10.1.0.1",
                "routes": [{"dst": "0.0.0.0/0", "gw": "10.1.0.1"}]},
        "dns": {"nameservers": ["8.8.8.8"]}});
    let net = parse(&raw, "eth0").unwrap();
    assert_eq!(net.ips, [ip("10.1.0.9"), ip("fd00::9")]);
    assert_eq!(net.routes.len(), 1);
    assert_eq!(net.dns.servers, ["8.8.8.8"]);
}

#[test]
fn malformed_results_say_where() {
    for (raw, want) in [
        (json!([]), "not a JSON object"),
        (
            json!({"ips": [{"address": "10.0.0.1"}]}),
            "ips[0]: \"10.0.0.1\" is not in CIDR form",
        ),
        (
            json!({"ips": [{"address": "10.0.0.1/33"}]}),
            "bad prefix length",
        ),
        (json!({"ips": [{"address": "x/24"}]}), "bad address"),
        (json!({"ips": {}}), "\"ips\" is not an array"),
        (json!({"interfaces": [{}]}), "interfaces[0] has no \"name\""),
        (json!({"ip4": {}}), "ip4 has no \"ip\""),
        (
            json!({"dns": {"nameservers": [1]}}),
            "dns.nameservers holds a non-string",
        ),
        (
            json!({"routes": [{"dst": "0.0.0.0/0", "gw": "nope"}]}),
            "routes[0]: gw",
        ),
    ] {
        let err = parse(&raw, "eth0").unwrap_err();
        assert!(err.contains(want), "{raw}: {err}");
    }
}
