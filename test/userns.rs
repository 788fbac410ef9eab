//! Pods with a user namespace of their own (CRI `userns_options` mode POD, Kubernetes
//! `hostUsers: false`), end to end: the mappings kubelet sends are the container's, its
//! root is an unprivileged uid on the host, the image's files are root's inside (an
//! idmapped rootfs), a volume shows the host's ownership through the mapping, ExecSync
//! runs in the namespace too, a shared PID namespace works inside it, and nothing is
//! left after removal. Needs root; says so and skips otherwise.

mod common;

use std::os::unix::fs::MetadataExt;

use common::pods::{
    assert_nothing_left, container_config, create, daemon, exec_ok, pod_config, run_pod, running,
    stop_remove_pod,
};
use common::*;
use k8s_cri::v1 as cri;
use tonic::Code;

/// The host ids the pod's range starts at: one per test, far from any real user.
const HOST_BASE: u32 = 3_000_000;

fn userns(host: u32) -> cri::UserNamespace {
    let map = vec![cri::IdMapping {
        host_id: host,
        container_id: 0,
        length: 65536,
    }];
    cri::UserNamespace {
        mode: cri::NamespaceMode::Pod as i32,
        uids: map.clone(),
        gids: map,
    }
}

fn with_userns(
    mut pc: cri::PodSandboxConfig,
    u: &cri::UserNamespace,
    pid: cri::NamespaceMode,
) -> cri::PodSandboxConfig {
    if let Some(ns) = pc
        .linux
        .as_mut()
        .and_then(|l| l.security_context.as_mut())
        .and_then(|s| s.namespace_options.as_mut())
    {
        ns.userns_options = Some(u.clone());
        ns.pid = pid as i32;
    }
    pc
}

fn container_in(
    name: &str,
    script: &str,
    u: &cri::UserNamespace,
    pid: cri::NamespaceMode,
) -> cri::ContainerConfig {
    let mut c = container_config(name, script);
    if let Some(ns) = c
        .linux
        .as_mut()
        .and_then(|l| l.security_context.as_mut())
        .and_then(|s| s.namespace_options.as_mut())
    {
        ns.userns_options = Some(u.clone());
        ns.pid = pid as i32;
    }
    c
}

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(String::from).collect()
}

#[tokio::test]
async fn a_pod_with_its_own_user_namespace() {
    require_root!("a_pod_with_its_own_user_namespace");
    let (d, mut rt) = daemon().await;
    let host = HOST_BASE;
    let u = userns(host);
    let pc = with_userns(
        pod_config("userns", &d.dir.path().join("logs")),
        &u,
        cri::NamespaceMode::Container,
    );
    let pod = run_pod(&mut rt, &pc).await;

    // A volume: a directory anyone may write, with a file of the host's root in it.
    let vol = d.dir.path().join("vol");
    std::fs::create_dir(&vol).expect("vol");
    std::fs::set_permissions(&vol, std::os::unix::fs::PermissionsExt::from_mode(0o777))
        .expect("chmod");
    std::fs::write(vol.join("host-file"), "x").expect("host file");
    let mut c = container_in("app", "exec sleep 600", &u, cri::NamespaceMode::Container);
    if let Some(sc) = c.linux.as_mut().and_then(|l| l.security_context.as_mut()) {
        sc.capabilities = Some(cri::Capability {
            add_capabilities: vec!["NET_ADMIN".into()],
            ..Default::default()
        });
    }
    c.mounts = vec![cri::Mount {
        host_path: vol.display().to_string(),
        container_path: "/vol".into(),
        ..Default::default()
    }];
    let id = running(&mut rt, &pod, &pc, c).await;

    // The mappings are kubelet's; root inside.
    assert_eq!(
        words(&exec_ok(&mut rt, &id, &["cat", "/proc/self/uid_map"]).await),
        ["0", &host.to_string(), "65536"]
    );
    assert_eq!(
        words(&exec_ok(&mut rt, &id, &["cat", "/proc/self/gid_map"]).await),
        ["0", &host.to_string(), "65536"]
    );
    assert_eq!(exec_ok(&mut rt, &id, &["id", "-u"]).await.trim(), "0");
    // On the host the container's root is the mapped uid, not root.
    let info = rt
        .container_status(cri::ContainerStatusRequest {
            container_id: id.clone(),
            verbose: true,
        })
        .await
        .expect("status")
        .into_inner()
        .info;
    let info: serde_json::Value = serde_json::from_str(&info["info"]).expect("json");
    let pid = info["pid"].as_i64().expect("pid");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).expect("Uid");
    assert_eq!(words(uid_line)[1], host.to_string(), "{uid_line}");
    // The image's files are root's inside (an idmapped rootfs).
    let ls = exec_ok(&mut rt, &id, &["ls", "-ln", "/bin/busybox"]).await;
    assert_eq!(words(&ls)[2], "0", "{ls}");
    // A volume as the host has it: what root writes is the mapped uid's on the host, and
    // the host root's file is nobody's inside.
    exec_ok(&mut rt, &id, &["touch", "/vol/made-inside"]).await;
    let made = std::fs::metadata(vol.join("made-inside")).expect("made");
    assert_eq!((made.uid(), made.gid()), (host, host));
    let ls = exec_ok(&mut rt, &id, &["ls", "-ln", "/vol/host-file"]).await;
    assert_eq!(words(&ls)[2], "65534", "{ls}");
    // The pod's network namespace belongs to the pod's user namespace: with NET_ADMIN
    // (held only there) the container's root may bring a link down.
    exec_ok(&mut rt, &id, &["ip", "link", "set", "lo", "down"]).await;

    // A container asking for another user namespace than its pod's is refused.
    let other = container_in(
        "other",
        "true",
        &userns(host + 70_000),
        cri::NamespaceMode::Container,
    );
    let e = create(&mut rt, &pod, &pc, other)
        .await
        .expect_err("refused");
    assert_eq!(e.code(), Code::InvalidArgument);
    stop_remove_pod(&mut rt, &pod).await;
    assert_nothing_left(&d);
}

#[tokio::test]
async fn a_shared_pid_namespace_inside_a_user_namespace() {
    require_root!("a_shared_pid_namespace_inside_a_user_namespace");
    let (d, mut rt) = daemon().await;
    let host = HOST_BASE + 100_000;
    let u = userns(host);
    let pc = with_userns(
        pod_config("userns-shared", &d.dir.path().join("logs")),
        &u,
        cri::NamespaceMode::Pod,
    );
    let pod = run_pod(&mut rt, &pc).await;
    let a = running(
        &mut rt,
        &pod,
        &pc,
        container_in("a", "exec sleep 600", &u, cri::NamespaceMode::Pod),
    )
    .await;
    // PID 1 is the pod's init, and the container sees its sibling's process.
    let b = running(
        &mut rt,
        &pod,
        &pc,
        container_in("b", "exec sleep 601", &u, cri::NamespaceMode::Pod),
    )
    .await;
    let ps = exec_ok(&mut rt, &a, &["ps", "-o", "pid,args"]).await;
    assert!(ps.contains("sleep 601"), "{ps}");
    assert_eq!(exec_ok(&mut rt, &b, &["id", "-u"]).await.trim(), "0");
    stop_remove_pod(&mut rt, &pod).await;
    assert_nothing_left(&d);
}

#[tokio::test]
async fn bad_mappings_and_host_namespaces_are_refused() {
    require_root!("bad_mappings_and_host_namespaces_are_refused");
    let (d, mut rt) = daemon().await;
    let mut bad = userns(0);
    bad.gids[0].host_id = 0;
    let pc = with_userns(
        pod_config("userns-bad", &d.dir.path().join("logs")),
        &bad,
        cri::NamespaceMode::Container,
    );
    let e = rt
        .run_pod_sandbox(cri::RunPodSandboxRequest {
            config: Some(pc),
            runtime_handler: String::new(),
        })
        .await
        .expect_err("refused");
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("host's root"), "{}", e.message());
    let mut host_net = with_userns(
        pod_config("userns-hostnet", &d.dir.path().join("logs")),
        &userns(HOST_BASE + 200_000),
        cri::NamespaceMode::Container,
    );
    if let Some(ns) = host_net
        .linux
        .as_mut()
        .and_then(|l| l.security_context.as_mut())
        .and_then(|s| s.namespace_options.as_mut())
    {
        ns.network = cri::NamespaceMode::Node as i32;
    }
    let e = rt
        .run_pod_sandbox(cri::RunPodSandboxRequest {
            config: Some(host_net),
            runtime_handler: String::new(),
        })
        .await
        .expect_err("refused");
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("host's"), "{}", e.message());
    assert_nothing_left(&d);
}
