//! Pods and containers end to end: the real daemon over its CRI socket, real namespaces,
//! mounts and processes. Needs root; says so and skips otherwise.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use k8s_cri::v1 as cri;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use tonic::transport::Channel;
use tonic::Code;

type Rt = RuntimeServiceClient<Channel>;

const BUSYBOX: &str = "127.0.0.1:5000/ucr-test/busybox:latest";

macro_rules! require_root {
    ($name:expr) => {
        require_registries();
        if !is_root() {
            eprintln!("SKIPPED {}: needs root (namespaces, mounts)", $name);
            return;
        }
    };
}

async fn daemon() -> (Daemon, Rt) {
    let d = Daemon::start(&[]);
    let mut images = d.images().await;
    pull(&mut images, BUSYBOX).await.expect("pull busybox");
    let rt = d.runtime().await;
    (d, rt)
}

fn pod_config(name: &str, logs: &Path) -> cri::PodSandboxConfig {
    cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata {
            name: name.into(),
            uid: format!("uid-{name}"),
            namespace: "default".into(),
            attempt: 0,
        }),
        hostname: format!("{name}-host"),
        log_directory: logs.display().to_string(),
        ..Default::default()
    }
}

fn container_config(name: &str, script: &str) -> cri::ContainerConfig {
    cri::ContainerConfig {
        metadata: Some(cri::ContainerMetadata {
            name: name.into(),
            attempt: 0,
        }),
        image: Some(cri::ImageSpec {
            image: BUSYBOX.into(),
            ..Default::default()
        }),
        command: vec!["sh".into(), "-c".into(), script.into()],
        log_path: format!("{name}.log"),
        ..Default::default()
    }
}

async fn run_pod(rt: &mut Rt, config: &cri::PodSandboxConfig) -> String {
    rt.run_pod_sandbox(cri::RunPodSandboxRequest {
        config: Some(config.clone()),
        runtime_handler: String::new(),
    })
    .await
    .expect("RunPodSandbox")
    .into_inner()
    .pod_sandbox_id
}

async fn create(
    rt: &mut Rt,
    pod: &str,
    pod_config: &cri::PodSandboxConfig,
    c: cri::ContainerConfig,
) -> Result<String, tonic::Status> {
    rt.create_container(cri::CreateContainerRequest {
        pod_sandbox_id: pod.into(),
        config: Some(c),
        sandbox_config: Some(pod_config.clone()),
    })
    .await
    .map(|r| r.into_inner().container_id)
}

async fn start(rt: &mut Rt, id: &str) {
    rt.start_container(cri::StartContainerRequest {
        container_id: id.into(),
    })
    .await
    .expect("StartContainer");
}

async fn status(rt: &mut Rt, id: &str) -> cri::ContainerStatus {
    rt.container_status(cri::ContainerStatusRequest {
        container_id: id.into(),
        verbose: false,
    })
    .await
    .expect("ContainerStatus")
    .into_inner()
    .status
    .expect("status")
}

async fn wait_exited(rt: &mut Rt, id: &str, limit: Duration) -> cri::ContainerStatus {
    let deadline = Instant::now() + limit;
    loop {
        let s = status(rt, id).await;
        if s.state == cri::ContainerState::ContainerExited as i32 {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "container {id} still {:?}",
            s.state
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn stop_remove_pod(rt: &mut Rt, pod: &str) {
    rt.stop_pod_sandbox(cri::StopPodSandboxRequest {
        pod_sandbox_id: pod.into(),
    })
    .await
    .expect("StopPodSandbox");
    rt.remove_pod_sandbox(cri::RemovePodSandboxRequest {
        pod_sandbox_id: pod.into(),
    })
    .await
    .expect("RemovePodSandbox");
}

/// What a removed pod could leave behind: mounts under the daemon's dirs, monitor
/// processes, state directories.
fn assert_nothing_left(d: &Daemon) {
    let dir = d.dir.path().display().to_string();
    let mounts: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(&dir))
        .map(str::to_string)
        .collect();
    assert!(mounts.is_empty(), "leaked mounts: {mounts:#?}");
    let run = d.run_root().display().to_string();
    let monitors: Vec<String> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(" monitor ") && c.contains(&run))
        .collect();
    assert!(monitors.is_empty(), "leaked monitors: {monitors:#?}");
    for sub in [
        d.root.join("containers"),
        d.run_root().join("pods"),
        d.run_root().join("containers"),
    ] {
        let left: Vec<_> = std::fs::read_dir(&sub)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .collect();
        assert!(left.is_empty(), "leftovers in {}: {left:?}", sub.display());
    }
}

#[tokio::test]
async fn lifecycle_logs_exit_codes_and_reasons() {
    require_root!("lifecycle_logs_exit_codes_and_reasons");
    let (d, mut rt) = daemon().await;
    let logs = d.dir.path().join("logs");
    let pc = pod_config("life", &logs);
    let pod = run_pod(&mut rt, &pc).await;

    let failing = create(
        &mut rt,
        &pod,
        &pc,
        container_config("fail", "echo out; echo err >&2; hostname; exit 3"),
    )
    .await
    .expect("create");
    assert_eq!(
        status(&mut rt, &failing).await.state,
        cri::ContainerState::ContainerCreated as i32
    );
    start(&mut rt, &failing).await;
    let s = wait_exited(&mut rt, &failing, Duration::from_secs(10)).await;
    assert_eq!((s.exit_code, s.reason.as_str()), (3, "Error"));
    assert!(s.started_at > 0 && s.finished_at >= s.started_at);
    assert_eq!(s.image_ref, status_image_id(&d).await);
    let log = std::fs::read_to_string(logs.join("fail.log")).expect("log file");
    let records: Vec<(&str, &str, &str)> = log
        .lines()
        .map(|l| {
            let mut parts = l.splitn(4, ' ');
            let ts = parts.next().unwrap_or("");
            assert!(
                ts.ends_with('Z') && ts.len() == 30,
                "RFC3339Nano timestamp: {ts}"
            );
            (
                parts.next().unwrap_or(""),
                parts.next().unwrap_or(""),
                parts.next().unwrap_or(""),
            )
        })
        .collect();
    assert!(records.contains(&("stdout", "F", "out")), "{log}");
    assert!(records.contains(&("stderr", "F", "err")), "{log}");
    assert!(
        records.contains(&("stdout", "F", "life-host")),
        "the pod's hostname: {log}"
    );

    let ok = create(&mut rt, &pod, &pc, container_config("ok", "exit 0"))
        .await
        .expect("create");
    start(&mut rt, &ok).await;
    let s = wait_exited(&mut rt, &ok, Duration::from_secs(10)).await;
    assert_eq!((s.exit_code, s.reason.as_str()), (0, "Completed"));

    // A long line is split into 16 KiB partial records.
    let long = create(
        &mut rt,
        &pod,
        &pc,
        container_config("long", "head -c 40000 /dev/zero | tr '\\0' a; echo"),
    )
    .await
    .expect("create");
    start(&mut rt, &long).await;
    wait_exited(&mut rt, &long, Duration::from_secs(10)).await;
    let log = std::fs::read_to_string(logs.join("long.log")).expect("log");
    let tags: Vec<&str> = log
        .lines()
        .map(|l| l.split(' ').nth(2).unwrap_or(""))
        .collect();
    assert_eq!(
        tags,
        vec!["P", "P", "F"],
        "40000 bytes = 16384 + 16384 + 7232"
    );

    let listed = rt
        .list_containers(cri::ListContainersRequest {
            filter: Some(cri::ContainerFilter {
                pod_sandbox_id: pod.clone(),
                ..Default::default()
            }),
        })
        .await
        .expect("list")
        .into_inner()
        .containers;
    assert_eq!(listed.len(), 3);
    stop_remove_pod(&mut rt, &pod).await;
    assert!(rt
        .list_containers(cri::ListContainersRequest { filter: None })
        .await
        .expect("list")
        .into_inner()
        .containers
        .is_empty());
    assert_nothing_left(&d);
}

async fn status_image_id(d: &Daemon) -> String {
    let mut images = d.images().await;
    common::status(&mut images, BUSYBOX)
        .await
        .expect("image")
        .id
}

#[tokio::test]
async fn stop_uses_the_signal_then_the_timeout() {
    require_root!("stop_uses_the_signal_then_the_timeout");
    let (d, mut rt) = daemon().await;
    let pc = pod_config("stop", &d.dir.path().join("logs"));
    let pod = run_pod(&mut rt, &pc).await;
    // Exits on SIGTERM: stops at once, with its own exit code.
    let polite = create(
        &mut rt,
        &pod,
        &pc,
        container_config(
            "polite",
            "trap 'exit 0' TERM; while true; do sleep 0.1; done",
        ),
    )
    .await
    .expect("create");
    start(&mut rt, &polite).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t = Instant::now();
    rt.stop_container(cri::StopContainerRequest {
        container_id: polite.clone(),
        timeout: 30,
    })
    .await
    .expect("stop");
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    assert_eq!(status(&mut rt, &polite).await.exit_code, 0);
    // PID 1 without a TERM handler ignores TERM: killed after the timeout.
    let stubborn = create(
        &mut rt,
        &pod,
        &pc,
        container_config("stubborn", "sleep 1000"),
    )
    .await
    .expect("create");
    start(&mut rt, &stubborn).await;
    let t = Instant::now();
    rt.stop_container(cri::StopContainerRequest {
        container_id: stubborn.clone(),
        timeout: 2,
    })
    .await
    .expect("stop");
    assert!(
        t.elapsed() >= Duration::from_secs(2),
        "waited the timeout: {:?}",
        t.elapsed()
    );
    let s = status(&mut rt, &stubborn).await;
    assert_eq!((s.exit_code, s.reason.as_str()), (137, "Error"));
    // Stopping again is fine.
    rt.stop_container(cri::StopContainerRequest {
        container_id: stubborn.clone(),
        timeout: 2,
    })
    .await
    .expect("idempotent stop");
    stop_remove_pod(&mut rt, &pod).await;
    assert_nothing_left(&d);
}

#[tokio::test]
async fn exec_sync_runs_inside_with_a_timeout() {
    require_root!("exec_sync_runs_inside_with_a_timeout");
    let (d, mut rt) = daemon().await;
    let pc = pod_config("exec", &d.dir.path().join("logs"));
    let pod = run_pod(&mut rt, &pc).await;
    let c = create(
        &mut rt,
        &pod,
        &pc,
        container_config("sleeper", "sleep 1000"),
    )
    .await
    .expect("create");
    start(&mut rt, &c).await;
    let exec = |cmd: &[&str], timeout: i64| cri::ExecSyncRequest {
        container_id: c.clone(),
        cmd: cmd.iter().map(|s| s.to_string()).collect(),
        timeout,
    };
    let out = rt
        .exec_sync(exec(
            &[
                "sh",
                "-c",
                "hostname; cat /proc/1/cmdline | tr '\\0' ' '; echo oops >&2; exit 7",
            ],
            10,
        ))
        .await
        .expect("exec")
        .into_inner();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "exec-host\nsleep 1000 "
    );
    assert_eq!(String::from_utf8_lossy(&out.stderr), "oops\n");
    assert_eq!(out.exit_code, 7);
    // A timeout kills the command and says so.
    let t = Instant::now();
    let e = rt
        .exec_sync(exec(&["sleep", "30"], 1))
        .await
        .expect_err("timeout");
    assert_eq!(e.code(), Code::DeadlineExceeded, "{e:?}");
    assert!(t.elapsed() < Duration::from_secs(10));
    // A background child holding stdout does not keep the call waiting.
    let t = Instant::now();
    let out = rt
        .exec_sync(exec(&["sh", "-c", "sleep 30 & echo done"], 20))
        .await
        .expect("exec")
        .into_inner();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "done\n");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    stop_remove_pod(&mut rt, &pod).await;
    assert_nothing_left(&d);
}

#[tokio::test]
async fn state_survives_a_daemon_kill() {
    require_root!("state_survives_a_daemon_kill");
    let (mut d, mut rt) = daemon().await;
    let pc = pod_config("recover", &d.dir.path().join("logs"));
    let pod = run_pod(&mut rt, &pc).await;
    let long = create(&mut rt, &pod, &pc, container_config("long", "sleep 1000"))
        .await
        .expect("create");
    let short = create(
        &mut rt,
        &pod,
        &pc,
        container_config("short", "sleep 2; exit 4"),
    )
    .await
    .expect("create");
    let idle = create(&mut rt, &pod, &pc, container_config("idle", "true"))
        .await
        .expect("create");
    start(&mut rt, &long).await;
    start(&mut rt, &short).await;
    drop(rt);
    d.kill9();
    // `short` exits while the daemon is down.
    tokio::time::sleep(Duration::from_secs(3)).await;
    d.restart();
    let mut rt = d.runtime().await;
    assert_eq!(
        status(&mut rt, &long).await.state,
        cri::ContainerState::ContainerRunning as i32
    );
    let s = status(&mut rt, &short).await;
    assert_eq!(
        (s.state, s.exit_code),
        (cri::ContainerState::ContainerExited as i32, 4)
    );
    assert_eq!(
        status(&mut rt, &idle).await.state,
        cri::ContainerState::ContainerCreated as i32
    );
    let pods = rt
        .list_pod_sandbox(cri::ListPodSandboxRequest { filter: None })
        .await
        .expect("list pods")
        .into_inner()
        .items;
    assert_eq!(pods.len(), 1);
    assert_eq!(pods[0].state, cri::PodSandboxState::SandboxReady as i32);
    stop_remove_pod(&mut rt, &pod).await;
    assert_nothing_left(&d);
}

#[tokio::test]
async fn retries_return_the_same_pod_and_container() {
    require_root!("retries_return_the_same_pod_and_container");
    let (d, mut rt) = daemon().await;
    let pc = pod_config("retry", &d.dir.path().join("logs"));
    let (mut a, mut b) = (rt.clone(), rt.clone());
    let (p1, p2) = tokio::join!(run_pod(&mut a, &pc), run_pod(&mut b, &pc));
    assert_eq!(p1, p2, "concurrent retries share one RunPodSandbox");
    assert_eq!(
        run_pod(&mut rt, &pc).await,
        p1,
        "a retry after it finished gets it too"
    );
    let c1 = create(&mut rt, &p1, &pc, container_config("c", "sleep 1"))
        .await
        .expect("create");
    let c2 = create(&mut rt, &p1, &pc, container_config("c", "sleep 1"))
        .await
        .expect("retry");
    assert_eq!(c1, c2);
    stop_remove_pod(&mut rt, &p1).await;
    assert_nothing_left(&d);
}

#[tokio::test]
async fn bad_requests_are_refused_precisely() {
    require_root!("bad_requests_are_refused_precisely");
    let (d, mut rt) = daemon().await;
    let logs = d.dir.path().join("logs");
    let mut bad = pod_config("", &logs);
    let e = rt
        .run_pod_sandbox(cri::RunPodSandboxRequest {
            config: Some(bad.clone()),
            runtime_handler: String::new(),
        })
        .await
        .expect_err("empty name");
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("metadata.name"), "{}", e.message());
    bad = pod_config("a/b", &logs);
    let e = rt
        .run_pod_sandbox(cri::RunPodSandboxRequest {
            config: Some(bad),
            runtime_handler: String::new(),
        })
        .await
        .expect_err("slash");
    assert_eq!(e.code(), Code::InvalidArgument);

    let pc = pod_config("bad", &logs);
    let pod = run_pod(&mut rt, &pc).await;
    let mut c = container_config("escape", "true");
    c.log_path = "../../etc/evil.log".into();
    let e = create(&mut rt, &pod, &pc, c).await.expect_err("log escape");
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("log_path"), "{}", e.message());
    let mut c = container_config("noimage", "true");
    c.image = Some(cri::ImageSpec {
        image: format!("{REGISTRY}/ucr-test/not-pulled:latest"),
        ..Default::default()
    });
    let e = create(&mut rt, &pod, &pc, c)
        .await
        .expect_err("image not pulled");
    assert_eq!(e.code(), Code::NotFound);
    let e = create(
        &mut rt,
        "0123456789abcdef",
        &pc,
        container_config("x", "true"),
    )
    .await
    .expect_err("no pod");
    assert_eq!(e.code(), Code::NotFound);
    let e = rt
        .start_container(cri::StartContainerRequest {
            container_id: "feedface".into(),
        })
        .await
        .expect_err("no container");
    assert_eq!(e.code(), Code::NotFound);
    // Removing what is not there is fine (kubelet retries removals).
    rt.remove_container(cri::RemoveContainerRequest {
        container_id: "feedface".into(),
    })
    .await
    .expect("idempotent remove");
    stop_remove_pod(&mut rt, &pod).await;
    stop_remove_pod(&mut rt, &pod).await;
    assert_nothing_left(&d);
}

/// 20 pods with a running container each, started at once, then everything removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_pods_at_once_leave_nothing_behind() {
    require_root!("twenty_pods_at_once_leave_nothing_behind");
    let (d, rt) = daemon().await;
    let logs = d.dir.path().join("logs");
    let mut tasks = Vec::new();
    for i in 0..20 {
        let mut rt = rt.clone();
        let pc = pod_config(&format!("many-{i}"), &logs);
        tasks.push(tokio::spawn(async move {
            let pod = run_pod(&mut rt, &pc).await;
            let c = create(&mut rt, &pod, &pc, container_config("c", "sleep 1000"))
                .await
                .expect("create");
            start(&mut rt, &c).await;
            assert_eq!(
                status(&mut rt, &c).await.state,
                cri::ContainerState::ContainerRunning as i32
            );
            pod
        }));
    }
    let mut pods = Vec::new();
    for t in tasks {
        pods.push(t.await.expect("join"));
    }
    let mut removals = Vec::new();
    for pod in pods {
        let mut rt = rt.clone();
        removals.push(tokio::spawn(
            async move { stop_remove_pod(&mut rt, &pod).await },
        ));
    }
    for r in removals {
        r.await.expect("join");
    }
    assert_nothing_left(&d);
}
