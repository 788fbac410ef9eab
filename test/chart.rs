//! The Helm chart (`charts/ucr`), checked without a cluster: `helm lint --strict`, `helm
//! template` with the default values and with `charts/ucr/ci/custom-values.yaml`, every
//! rendered object deserialized into the `k8s-openapi` types and serialized back (a
//! misspelled or misplaced field is dropped on the way and fails the comparison), and the
//! ConfigMap's config file accepted by ucr's own config parser. Needs the real helm
//! binary (`UCR_HELM`, which `hack/test-env.sh` installs and exports); says so and skips
//! otherwise.

use std::path::{Path, PathBuf};
use std::process::Command;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{ConfigMap, ServiceAccount};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

const CHART: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/charts/ucr");

fn helm() -> Option<PathBuf> {
    let helm = std::env::var_os("UCR_HELM").map(PathBuf::from);
    if helm.as_deref().is_none_or(|h| !h.exists()) {
        eprintln!("SKIPPED: needs helm: set UCR_HELM (eval \"$(hack/test-env.sh)\" does)");
        return None;
    }
    helm
}

/// Runs helm; its stdout, or its stderr as the error.
fn run(helm: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new(helm).args(args).output().expect("run helm");
    if out.status.success() {
        Ok(String::from_utf8(out.stdout).expect("UTF-8"))
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn template(helm: &Path, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["template", "ucr", CHART, "--namespace", "kube-system"];
    args.extend(extra);
    let yaml = run(helm, &args).unwrap_or_else(|e| panic!("helm template: {e}"));
    serde_yaml::Deserializer::from_str(&yaml)
        .map(|doc| Value::deserialize(doc).expect("a YAML document"))
        .filter(|v| !v.is_null())
        .collect()
}

/// `object` as `T` and back must be `object` itself.
fn round_trips<T: DeserializeOwned + Serialize>(object: &Value) {
    let typed: T = serde_json::from_value(object.clone())
        .unwrap_or_else(|e| panic!("not a valid {}: {e}\n{object:#}", kind(object)));
    let back = serde_json::to_value(&typed).expect("serialize");
    let mut changed = Vec::new();
    differences(object, &back, String::new(), &mut changed);
    assert!(
        changed.is_empty(),
        "{} changes when read as the Kubernetes type (a field misspelled or misplaced): {changed:#?}",
        kind(object)
    );
}

/// Where `a` and `b` differ, as JSON paths.
fn differences(a: &Value, b: &Value, path: String, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for key in x.keys().chain(y.keys().filter(|k| !x.contains_key(*k))) {
                let p = format!("{path}.{key}");
                match (x.get(key), y.get(key)) {
                    (Some(l), Some(r)) => differences(l, r, p, out),
                    (Some(_), None) => out.push(format!("{p}: dropped")),
                    (None, _) => out.push(format!("{p}: added")),
                }
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (l, r)) in x.iter().zip(y).enumerate() {
                differences(l, r, format!("{path}[{i}]"), out);
            }
        }
        _ if a != b => out.push(format!("{path}: {a} became {b}")),
        _ => {}
    }
}

fn kind(object: &Value) -> &str {
    object["kind"].as_str().unwrap_or("?")
}

/// Every object round-trips; returns them by kind.
fn check_all(objects: &[Value]) -> (DaemonSet, ConfigMap) {
    let mut daemonset = None;
    let mut configmap = None;
    for o in objects {
        match kind(o) {
            "DaemonSet" => {
                round_trips::<DaemonSet>(o);
                daemonset = Some(serde_json::from_value(o.clone()).expect("DaemonSet"));
            }
            "ConfigMap" => {
                round_trips::<ConfigMap>(o);
                configmap = Some(serde_json::from_value(o.clone()).expect("ConfigMap"));
            }
            "ServiceAccount" => round_trips::<ServiceAccount>(o),
            other => panic!("the chart renders an unexpected kind {other}"),
        }
    }
    (
        daemonset.expect("a DaemonSet"),
        configmap.expect("a ConfigMap"),
    )
}

/// The ConfigMap's config file, read by ucr's own config parser (unknown keys are errors
/// there).
fn settings_of(configmap: &ConfigMap) -> ucr::config::Settings {
    let text = &configmap.data.as_ref().expect("data")["config.toml"];
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("config.toml");
    std::fs::write(&file, text).expect("write");
    ucr::config::ServeFlags {
        config: Some(file),
        ..Default::default()
    }
    .resolve()
    .unwrap_or_else(|e| panic!("ucr refuses the chart's config: {e}\n{text}"))
}

#[test]
fn the_chart_lints_and_renders_valid_objects() {
    let Some(helm) = helm() else { return };
    let custom = format!("{CHART}/ci/custom-values.yaml");
    run(&helm, &["lint", "--strict", CHART]).unwrap_or_else(|e| panic!("lint: {e}"));
    run(&helm, &["lint", "--strict", CHART, "-f", &custom])
        .unwrap_or_else(|e| panic!("lint custom: {e}"));

    // Defaults: what a node needs.
    let (ds, cm) = check_all(&template(&helm, &[]));
    let pod = ds
        .spec
        .as_ref()
        .expect("spec")
        .template
        .spec
        .clone()
        .expect("pod spec");
    assert_eq!((pod.host_pid, pod.host_network), (Some(true), Some(true)));
    let tolerations = pod.tolerations.clone().expect("tolerations");
    assert!(
        tolerations
            .iter()
            .any(|t| t.operator.as_deref() == Some("Exists") && t.key.is_none()),
        "tolerates every taint"
    );
    let c = &pod.containers[0];
    assert_eq!(
        c.security_context.as_ref().and_then(|s| s.privileged),
        Some(true)
    );
    let mounts = c.volume_mounts.clone().expect("mounts");
    let propagation = |path: &str| {
        mounts
            .iter()
            .find(|m| m.mount_path == path)
            .unwrap_or_else(|| panic!("{path} mounted"))
            .mount_propagation
            .clone()
    };
    for path in ["/var/lib/ucr", "/run/ucr"] {
        assert_eq!(
            propagation(path).as_deref(),
            Some("Bidirectional"),
            "{path}"
        );
    }
    for path in [
        "/var/log/pods",
        "/etc/cni/net.d",
        "/opt/cni/bin",
        "/sys/fs/cgroup",
    ] {
        propagation(path);
    }
    let probe = c
        .liveness_probe
        .as_ref()
        .and_then(|p| p.http_get.as_ref())
        .expect("probe");
    assert_eq!(probe.path.as_deref(), Some("/health"));
    assert_eq!(
        probe.port,
        k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(5051)
    );
    assert!(c.readiness_probe.is_some());
    assert!(c
        .resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .is_some());
    assert_eq!(
        ds.spec
            .as_ref()
            .and_then(|s| s.update_strategy.as_ref())
            .and_then(|u| u.type_.as_deref()),
        Some("RollingUpdate")
    );
    let settings = settings_of(&cm);
    assert_eq!(settings.listen, PathBuf::from("/run/ucr/ucr.sock"));
    assert_eq!(settings.mesos_listen.map(|a| a.port()), Some(5051));

    // Every value changed: still valid, and each reaches its place.
    let (ds, cm) = check_all(&template(&helm, &["-f", &custom]));
    assert_eq!(ds.metadata.name.as_deref(), Some("node-runtime"));
    let pod = ds
        .spec
        .as_ref()
        .expect("spec")
        .template
        .spec
        .clone()
        .expect("pod spec");
    assert_eq!(
        pod.containers[0].image.as_deref(),
        Some("registry.example/ucr:9.9.9")
    );
    assert_eq!(pod.service_account_name.as_deref(), Some("runtime"));
    let port = pod.containers[0]
        .liveness_probe
        .as_ref()
        .and_then(|p| p.http_get.as_ref())
        .map(|h| h.port.clone());
    assert_eq!(
        port,
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(15051))
    );
    let strategy = ds
        .spec
        .as_ref()
        .and_then(|s| s.update_strategy.clone())
        .expect("strategy");
    assert_eq!(strategy.type_.as_deref(), Some("OnDelete"));
    assert!(
        strategy.rolling_update.is_none(),
        "OnDelete takes no rollingUpdate"
    );
    let settings = settings_of(&cm);
    assert_eq!(settings.listen, PathBuf::from("/run/ucr/cri.sock"));
    assert_eq!(settings.mirrors["docker.io"].len(), 2);
    assert_eq!(settings.pids_limit, Some(4096));
    assert!(!settings.isolation.has("cgroups/net_cls"));
    assert!(settings.isolation.has("disk/du"));
    assert!(settings.seccomp_default);
}

#[test]
fn the_chart_refuses_bad_values() {
    let Some(helm) = helm() else { return };
    for (set, says) in [
        ("config.logLevel=loud", "logLevel"),
        ("config.root=relative/dir", "root"),
        ("image.pullPolicy=Sometimes", "pullPolicy"),
        ("typo=1", "typo"),
        (
            "config.mesos.listen=",
            "probes.enabled needs config.mesos.listen",
        ),
    ] {
        let e = run(&helm, &["template", "ucr", CHART, "--set", set])
            .expect_err(&format!("--set {set} accepted"));
        assert!(e.contains(says), "--set {set}: {e}");
    }
}
