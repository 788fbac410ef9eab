//! What a restarted daemon does with what it finds: a stop under way completes; Mesos'
//! `--recover cleanup` removes everything and exits. Needs root.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::pods::{container_config, pod_config, run_pod, running, BUSYBOX};
use common::*;
use k8s_cri::v1 as cri;

async fn pod_with_sleeper(d: &Daemon, name: &str) -> (String, String) {
    pull(&mut d.images().await, BUSYBOX).await.expect("pull");
    let mut rt = d.runtime().await;
    let pc = pod_config(name, &d.dir.path().join("logs"));
    let pod = run_pod(&mut rt, &pc).await;
    let c = running(
        &mut rt,
        &pod,
        &pc,
        container_config("sleeper", "exec sleep 1000"),
    )
    .await;
    (pod, c)
}

#[tokio::test]
async fn a_stop_under_way_completes_after_a_restart() {
    require_registries();
    if !is_root() {
        eprintln!("SKIPPED a_stop_under_way_completes_after_a_restart: needs root");
        return;
    }
    let mut d = Daemon::start(&[]);
    let (pod, c) = pod_with_sleeper(&d, "midstop").await;
    let mut rt = d.runtime().await;
    let id = c.clone();
    // A 3 s stop; the daemon dies one second in.
    let stopping = tokio::spawn(async move {
        rt.stop_container(cri::StopContainerRequest {
            container_id: id,
            timeout: 3,
        })
        .await
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    d.kill9();
    let _ = stopping.await;
    let restarted = Instant::now();
    d.restart();
    // Nobody asks again: the new daemon kills it when the promised deadline passes.
    let mut rt = d.runtime().await;
    loop {
        let s = rt
            .container_status(cri::ContainerStatusRequest {
                container_id: c.clone(),
                verbose: false,
            })
            .await
            .expect("status")
            .into_inner()
            .status
            .expect("status");
        if s.state == cri::ContainerState::ContainerExited as i32 {
            assert_eq!(s.exit_code, 137);
            break;
        }
        assert!(
            restarted.elapsed() < Duration::from_secs(15),
            "the stop was not finished:\n{}",
            d.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    rt.remove_pod_sandbox(cri::RemovePodSandboxRequest {
        pod_sandbox_id: pod,
    })
    .await
    .expect("rmp");
}

#[tokio::test]
async fn recover_cleanup_removes_everything_and_exits() {
    require_registries();
    if !is_root() {
        eprintln!("SKIPPED recover_cleanup_removes_everything_and_exits: needs root");
        return;
    }
    let mut d = Daemon::start(&[]);
    pod_with_sleeper(&d, "cleanup").await;
    d.kill9();
    let status = Command::new(env!("CARGO_BIN_EXE_ucr"))
        .arg("serve")
        .arg("--root")
        .arg(&d.root)
        .arg("--run-root")
        .arg(d.run_root())
        .arg("--listen")
        .arg(&d.socket)
        .args(["--recover", "cleanup"])
        .status()
        .expect("ucr serve --recover cleanup");
    assert!(status.success(), "cleanup run failed");
    let dir = d.dir.path().display().to_string();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    assert!(!mounts.contains(&dir), "mounts left:\n{mounts}");
    let monitors = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .filter(|c| {
            String::from_utf8_lossy(c).contains(&dir)
                && String::from_utf8_lossy(c).contains("monitor")
        })
        .count();
    assert_eq!(monitors, 0, "monitors left");
    d.restart();
    let pods = d
        .runtime()
        .await
        .list_pod_sandbox(cri::ListPodSandboxRequest { filter: None })
        .await
        .expect("list")
        .into_inner()
        .items;
    assert!(pods.is_empty(), "{pods:?}");
}

/// A daemon killed half-way through RunPodSandbox or CreateContainer leaves a pod or
/// container on disk that never reached its database: pinned namespaces, a pod init, a
/// rootfs. The next start removes them.
#[tokio::test]
async fn half_made_pods_and_containers_are_swept_at_start() {
    require_registries();
    if !is_root() {
        eprintln!("SKIPPED half_made_pods_and_containers_are_swept_at_start: needs root");
        return;
    }
    let mut d = Daemon::start(&[]);
    d.kill9();
    // What a crash inside RunPodSandbox leaves: a pod dir, a pinned namespace, an init.
    let pod_dir = d.run_root().join("pods").join("f".repeat(64));
    std::fs::create_dir_all(pod_dir.join("ns")).expect("pod dir");
    let pin = pod_dir.join("ns").join("ipc");
    std::fs::write(&pin, "").expect("pin file");
    let bound = Command::new("mount")
        .args(["--bind", "/proc/self/ns/ipc"])
        .arg(&pin)
        .status()
        .expect("mount");
    assert!(bound.success(), "bind-mounting a namespace");
    let init = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "exec 3>/dev/null; exec {} pod-init --dir {} --sync-fd 3",
            env!("CARGO_BIN_EXE_ucr"),
            pod_dir.display()
        ))
        .status()
        .expect("ucr pod-init");
    assert!(init.success(), "starting a pod init");
    // `<pid> <start time>`.
    let init_pid: i32 = std::fs::read_to_string(pod_dir.join("init.pid"))
        .expect("init.pid")
        .split_whitespace()
        .next()
        .and_then(|p| p.parse().ok())
        .expect("a pid");
    // And a container inside CreateContainer: its dirs, no record.
    let cid = "c".repeat(64);
    let rootfs = d.root.join("containers").join(&cid).join("rootfs");
    std::fs::create_dir_all(&rootfs).expect("rootfs dir");
    std::fs::create_dir_all(d.run_root().join("containers").join(&cid)).expect("bundle");

    d.restart();
    d.runtime().await; // serving: recovery is done
    assert!(!pod_dir.exists(), "half-made pod dir left");
    assert!(!rootfs.exists(), "half-made container dir left");
    assert!(!d.run_root().join("containers").join(&cid).exists());
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    assert!(!mounts.contains(&pin.display().to_string()), "pin left");
    let stat = std::fs::read_to_string(format!("/proc/{init_pid}/stat")).unwrap_or_default();
    let state = stat.rsplit(')').next().unwrap_or("").trim_start();
    assert!(
        stat.is_empty() || state.starts_with('Z'),
        "pod init {init_pid} still running: {stat}"
    );
}
