//! ADD, CHECK and DEL through a two-plugin chain: what each plugin is told, in which
//! order, and what the cache keeps.

use std::net::IpAddr;

use serde_json::json;

use super::*;

fn world() -> World {
    let w = World::new();
    w.ok_plugin("a", RESULT_A);
    w.ok_plugin("b", RESULT_B);
    w.conf("10-podnet.conflist", LIST);
    w
}

#[tokio::test]
async fn add_runs_the_chain_in_order_with_env_and_prev_results() {
    let w = world();
    let cni = w.cni();
    let netns = w.dir.path().join("netns");
    let net = cni.add(&attachment("c1", &netns)).await.unwrap();
    let ips: Vec<IpAddr> = vec!["10.9.0.2".parse().unwrap(), "fd00::2".parse().unwrap()];
    assert_eq!(net.ips, ips, "IPv4 first");
    assert_eq!(net.raw, serde_json::from_str::<Value>(RESULT_B).unwrap());
    assert_eq!(
        net.routes.len(),
        1,
        "the last plugin's result is the final one"
    );

    let calls = w.calls();
    let order: Vec<_> = calls
        .iter()
        .map(|c| (c.plugin.as_str(), c.command.as_str()))
        .collect();
    assert_eq!(order, [("a", "ADD"), ("b", "ADD")]);
    for c in &calls {
        assert_eq!(c.env("CNI_CONTAINERID"), "c1");
        assert_eq!(c.env("CNI_NETNS"), netns.to_str().unwrap());
        assert_eq!(c.env("CNI_IFNAME"), "eth0");
        assert_eq!(
            c.env("CNI_ARGS"),
            "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web;\
             K8S_POD_INFRA_CONTAINER_ID=c1;K8S_POD_UID=uid-1"
        );
        assert_eq!(
            c.env("CNI_PATH"),
            format!(
                "{}:{}",
                w.dir.path().join("nobin").display(),
                w.bin_dir().display()
            )
        );
        assert_ne!(c.env("PATH"), "<unset>");
        assert_eq!(c.stdin["name"], "podnet");
        assert_eq!(c.stdin["cniVersion"], "1.0.0");
    }
    // a: its own keys, nothing it did not declare, no prevResult.
    assert_eq!(calls[0].stdin["subnet"], "10.9.0.0/24");
    assert!(calls[0].stdin.get("prevResult").is_none());
    assert!(calls[0].stdin.get("runtimeConfig").is_none());
    // b: a's result, and only the declared capabilities that are set (dns is set but
    // not declared; bandwidth is declared but not set).
    assert_eq!(
        calls[1].stdin["prevResult"],
        serde_json::from_str::<Value>(RESULT_A).unwrap()
    );
    assert_eq!(
        calls[1].stdin["runtimeConfig"],
        json!({"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]})
    );

    assert_eq!(cni.cached("c1", "eth0"), Some(net));
    assert_eq!(cni.cached("c1", "eth1"), None);
    assert_eq!(w.cache_entries().len(), 1);
}

#[tokio::test]
async fn check_and_del_use_the_cached_result_and_del_runs_in_reverse() {
    let w = world();
    let cni = w.cni();
    let netns = w.dir.path().to_path_buf();
    let att = attachment("c1", &netns);
    cni.add(&att).await.unwrap();
    w.calls();
    let result_b = serde_json::from_str::<Value>(RESULT_B).unwrap();

    cni.check(&att).await.unwrap();
    let calls = w.calls();
    let order: Vec<_> = calls
        .iter()
        .map(|c| (c.plugin.as_str(), c.command.as_str()))
        .collect();
    assert_eq!(order, [("a", "CHECK"), ("b", "CHECK")]);
    assert!(calls.iter().all(|c| c.stdin["prevResult"] == result_b));

    cni.del("c1", "eth0", Some(&netns)).await.unwrap();
    let calls = w.calls();
    let order: Vec<_> = calls
        .iter()
        .map(|c| (c.plugin.as_str(), c.command.as_str()))
        .collect();
    assert_eq!(order, [("b", "DEL"), ("a", "DEL")]);
    assert!(calls.iter().all(|c| c.stdin["prevResult"] == result_b));
    assert_eq!(
        calls[0].stdin["runtimeConfig"]["portMappings"][0]["hostPort"],
        8080
    );
    assert_eq!(calls[0].env("CNI_NETNS"), netns.to_str().unwrap());
    assert!(w.cache_entries().is_empty());
    assert_eq!(cni.cached("c1", "eth0"), None);

    // Idempotent: nothing cached, nothing run.
    cni.del("c1", "eth0", None).await.unwrap();
    assert!(w.calls().is_empty());
    use crate::error::{ErrorKind, Kind};
    assert_eq!(
        cni.check(&att).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

#[tokio::test]
async fn del_after_a_restart_works_without_the_config_file() {
    let w = world();
    let mut att = attachment("c1", w.dir.path());
    att.bandwidth = Some(Bandwidth {
        ingress_rate: 1000,
        ingress_burst: 2000,
        egress_rate: 0,
        egress_burst: 0,
    });
    w.cni().add(&att).await.unwrap();
    w.calls();
    std::fs::remove_file(w.conf_dir().join("10-podnet.conflist")).unwrap();
    let restarted = w.cni();
    assert!(restarted.ready().is_err());
    assert_eq!(restarted.cached("c1", "eth0").unwrap().ips.len(), 2);
    // The namespace is gone: CNI_NETNS is empty, as the spec allows for DEL.
    let gone = w.dir.path().join("no-such-netns");
    restarted.del("c1", "eth0", Some(&gone)).await.unwrap();
    let calls = w.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].env("CNI_NETNS"), "");
    assert_eq!(calls[0].stdin["subnet"], Value::Null, "b's own config");
    assert_eq!(
        calls[1].stdin["subnet"], "10.9.0.0/24",
        "a's config came from the cache"
    );
    assert_eq!(
        calls[0].stdin["runtimeConfig"]["bandwidth"],
        json!({"ingressRate": 1000, "ingressBurst": 2000, "egressRate": 0, "egressBurst": 0})
    );
    assert!(calls[0].env("CNI_ARGS").contains("K8S_POD_NAME=web"));
    assert!(w.cache_entries().is_empty());
}

#[tokio::test]
async fn old_versions_get_no_prev_result_on_del_and_no_check() {
    let w = World::new();
    w.ok_plugin("a", r#"{"cniVersion":"0.2.0","ip4":{"ip":"10.1.0.9/16"}}"#);
    w.conf(
        "10-old.conf",
        r#"{"cniVersion":"0.2.0","name":"old","type":"a"}"#,
    );
    let cni = w.cni();
    let att = attachment("c1", w.dir.path());
    let net = cni.add(&att).await.unwrap();
    assert_eq!(net.ips, ["10.1.0.9".parse::<IpAddr>().unwrap()]);
    cni.check(&att).await.unwrap();
    cni.del("c1", "eth0", None).await.unwrap();
    let calls = w.calls();
    let order: Vec<_> = calls.iter().map(|c| c.command.as_str()).collect();
    assert_eq!(order, ["ADD", "DEL"], "no CHECK before 0.4.0");
    assert!(calls[1].stdin.get("prevResult").is_none());
}

#[tokio::test]
async fn adding_twice_is_refused_and_different_pods_run_concurrently() {
    use crate::error::{ErrorKind, Kind};
    let w = world();
    let cni = w.cni();
    let adds = (0..4).map(|i| {
        let cni = cni.clone();
        let att = attachment(&format!("c{i}"), w.dir.path());
        tokio::spawn(async move { cni.add(&att).await })
    });
    for add in futures::future::join_all(adds).await {
        add.unwrap().unwrap();
    }
    assert_eq!(w.cache_entries().len(), 4);
    let err = cni.add(&attachment("c0", w.dir.path())).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    let dels = (0..4).map(|i| {
        let cni = cni.clone();
        tokio::spawn(async move { cni.del(&format!("c{i}"), "eth0", None).await })
    });
    for del in futures::future::join_all(dels).await {
        del.unwrap().unwrap();
    }
    assert!(w.cache_entries().is_empty());
}

#[tokio::test]
async fn validate_asks_every_plugin_for_its_versions() {
    let w = World::new();
    let versions = r#"[ "$CNI_COMMAND" = VERSION ] && echo '{"cniVersion":"1.0.0","supportedVersions":["0.4.0","1.0.0"]}'; exit 0"#;
    w.plugin("a", versions);
    w.plugin("b", versions);
    w.conf("10-podnet.conflist", LIST);
    w.conf(
        "20-new.conf",
        r#"{"cniVersion":"1.1.0","name":"new","type":"a"}"#,
    );
    let cni = w.cni();
    cni.validate(None).await.unwrap();
    let calls = w.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].env("CNI_COMMAND"), "VERSION");
    assert_eq!(calls[0].env("CNI_CONTAINERID"), "<unset>");
    let err = cni.validate(Some("new")).await.unwrap_err().to_string();
    assert!(err.contains("does not support cniVersion 1.1.0"), "{err}");
}
