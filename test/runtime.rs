//! Pods and containers end to end: the real daemon over its CRI socket, real namespaces,
//! mounts and processes. Needs root; says so and skips otherwise.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::pods::{
    assert_nothing_left, container_config, create, daemon, exec_ok, kubelet_namespaces,
    list_containers, list_pods, mounts_of_type_under, pod_config, pod_status, processes_inside,
    run_pod, run_to_exit, sorted, start, status, stdout_lines, stop_remove_pod, wait_exited,
    BUSYBOX,
};
use common::*;
use k8s_cri::v1 as cri;
use tonic::Code;

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
    // The timed-out command is gone, not left a zombie under the container's PID 1
    // (which never reaps): only PID 1 itself is a `sleep`.
    let out = rt
        .exec_sync(exec(
            &["sh", "-c", "for p in /proc/[0-9]*; do [ \"$(cat $p/comm)\" = sleep ] && echo ${p#/proc/}; done; true"],
            10,
        ))
        .await
        .expect("exec")
        .into_inner();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "1\n",
        "sleeps left: {:?}",
        out
    );
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

// ---------------------------------------------------------------------------------------
// Helpers for the tests below.

// ---------------------------------------------------------------------------------------

/// Churn, not size, is what a node sees: 500 pods, each with one running container,
/// created and removed by a pool of 8 concurrent workers (runp, create, start, stopp,
/// rmp). Afterwards nothing may have accumulated: no mounts (the pinned namespaces are
/// nsfs bind mounts), monitors, processes, state directories, pull scratch files, and
/// the image is no longer counted as in use, so RemoveImage succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn five_hundred_pods_eight_at_a_time_leak_nothing() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    require_root!("five_hundred_pods_eight_at_a_time_leak_nothing");
    const PODS: usize = 500;
    const WORKERS: usize = 8;
    let (d, rt) = daemon().await;
    let logs = d.dir.path().join("logs");
    let next = Arc::new(AtomicUsize::new(0));
    let t = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..WORKERS {
        let (mut rt, next, logs) = (rt.clone(), Arc::clone(&next), logs.clone());
        let dir = d.dir.path().to_path_buf();
        workers.push(tokio::spawn(async move {
            let mut seen = None;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= PODS {
                    return seen;
                }
                // Each pod its own log directory, as kubelet gives them.
                let pc = pod_config(&format!("churn-{i}"), &logs.join(format!("churn-{i}")));
                let pod = run_pod(&mut rt, &pc).await;
                let c = create(&mut rt, &pod, &pc, container_config("c", "sleep 3600"))
                    .await
                    .unwrap_or_else(|e| panic!("create in pod {i}: {e:?}"));
                start(&mut rt, &c).await;
                if i == 0 {
                    // Proof that the leak check below can see container processes;
                    // asserted after the teardown, so a failure leaks nothing.
                    seen = Some(processes_inside(&dir));
                }
                stop_remove_pod(&mut rt, &pod).await;
            }
        }));
    }
    let mut seen_running = Vec::new();
    for w in workers {
        seen_running.extend(w.await.expect("worker").into_iter().flatten());
    }
    let elapsed = t.elapsed();
    eprintln!(
        "five_hundred_pods_eight_at_a_time_leak_nothing: {PODS} pods in {elapsed:?} \
         ({:?} per pod, {WORKERS} at a time)",
        elapsed / PODS as u32
    );
    let mut rt = rt;
    assert!(
        list_pods(&mut rt, cri::PodSandboxFilter::default())
            .await
            .is_empty(),
        "pods left listed"
    );
    assert_nothing_left(&d);
    let nsfs = mounts_of_type_under("nsfs", d.dir.path());
    assert!(nsfs.is_empty(), "leaked namespace pins: {nsfs:#?}");
    assert!(
        seen_running.iter().any(|p| p.contains("sleep 3600")),
        "the process leak check cannot see a running container: {seen_running:#?}"
    );
    let procs = processes_inside(d.dir.path());
    assert!(procs.is_empty(), "leaked container processes: {procs:#?}");
    let tmp: Vec<_> = std::fs::read_dir(d.store().join("tmp"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(tmp.is_empty(), "leftovers in the store's tmp/: {tmp:?}");
    // Every container released its image: the verbose status says 0, and removal works.
    let mut images = d.images().await;
    let info = images
        .image_status(cri::ImageStatusRequest {
            image: spec(BUSYBOX),
            verbose: true,
        })
        .await
        .expect("ImageStatus")
        .into_inner()
        .info;
    let info: serde_json::Value =
        serde_json::from_str(info.get("info").expect("verbose info")).expect("info json");
    assert_eq!(info["useCount"], 0, "image still counted as used: {info}");
    remove(&mut images, BUSYBOX)
        .await
        .expect("RemoveImage after every container is gone");
    assert!(common::status(&mut images, BUSYBOX).await.is_none());
}

/// kubelet rotates container logs by renaming the file and calling ReopenContainerLog:
/// later output must go to a new file at the original path, and the renamed file must
/// stop growing. A container that is not running has no log to reopen.
#[tokio::test]
async fn reopen_container_log_moves_to_a_new_file() {
    require_root!("reopen_container_log_moves_to_a_new_file");
    let (d, mut rt) = daemon().await;
    let logs = d.dir.path().join("logs");
    let pc = pod_config("reopen", &logs);
    let pod = run_pod(&mut rt, &pc).await;
    // A numbered line every 100 ms, so lost or duplicated lines would show.
    let c = create(
        &mut rt,
        &pod,
        &pc,
        container_config(
            "ticker",
            "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done",
        ),
    )
    .await
    .expect("create");
    start(&mut rt, &c).await;
    let path = logs.join("ticker.log");
    let rotated = logs.join("ticker.log.1");
    let wait_lines = |p: std::path::PathBuf, n: usize| async move {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if p.exists() && stdout_lines(&p).len() >= n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} has fewer than {n} lines",
                p.display()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    wait_lines(path.clone(), 3).await;
    std::fs::rename(&path, &rotated).expect("rotate");
    rt.reopen_container_log(cri::ReopenContainerLogRequest {
        container_id: c.clone(),
    })
    .await
    .expect("ReopenContainerLog");
    // New lines land in a new file at the original path…
    wait_lines(path.clone(), 3).await;
    // …and the renamed one no longer grows.
    let size = std::fs::metadata(&rotated).expect("rotated").len();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        std::fs::metadata(&rotated).expect("rotated").len(),
        size,
        "the rotated file still grows"
    );
    // Nothing lost or repeated across the switch: the numbers continue.
    let number = |l: &String| -> u64 {
        l.strip_prefix("tick ")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("unexpected line {l:?}"))
    };
    let old = stdout_lines(&rotated);
    let new = stdout_lines(&path);
    assert_eq!(
        number(new.first().expect("new lines")),
        number(old.last().expect("old lines")) + 1,
        "old file {old:?}, new file {new:?}"
    );
    // Once the container has exited, there is nothing to reopen.
    rt.stop_container(cri::StopContainerRequest {
        container_id: c.clone(),
        timeout: 0,
    })
    .await
    .expect("stop");
    let e = rt
        .reopen_container_log(cri::ReopenContainerLogRequest {
            container_id: c.clone(),
        })
        .await
        .expect_err("reopen on an exited container");
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    stop_remove_pod(&mut rt, &pod).await;
    assert_nothing_left(&d);
}

/// Reads `events` until `last` arrives for container `id` (15 s at most): that
/// container's events in order, with their timestamps. An error (said after cleanup, so
/// a failing test leaves no pod behind) says what was seen and `why_missing`.
async fn events_of(
    events: &mut tonic::Streaming<cri::ContainerEventResponse>,
    id: &str,
    last: cri::ContainerEventType,
    why_missing: &str,
) -> Result<Vec<(cri::ContainerEventType, i64)>, String> {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut seen = Vec::new();
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let e = match tokio::time::timeout(remaining, events.message()).await {
            Ok(Ok(Some(e))) => e,
            Ok(Ok(None)) => return Err(format!("the event stream ended; saw {seen:?}")),
            Ok(Err(e)) => return Err(format!("the event stream failed: {e:?}; saw {seen:?}")),
            Err(_) => {
                return Err(format!(
                    "no {last:?} for {id} within 15s; saw {seen:?}. {why_missing}"
                ))
            }
        };
        if e.container_id != id {
            continue;
        }
        let kind = cri::ContainerEventType::try_from(e.container_event_type)
            .map_err(|_| format!("unknown event type {}", e.container_event_type))?;
        seen.push((kind, e.created_at));
        if kind == last {
            return Ok(seen);
        }
    }
}

/// GetContainerEvents (kubelet's evented PLEG) streams each lifecycle change of a
/// container, in order, with increasing timestamps.
#[tokio::test]
async fn container_events_are_streamed() {
    use cri::ContainerEventType as E;
    require_root!("container_events_are_streamed");
    let (d, mut rt) = daemon().await;
    // Subscribed before anything happens: every event below must arrive.
    let mut events = rt
        .get_container_events(cri::GetEventsRequest {})
        .await
        .expect("GetContainerEvents")
        .into_inner();
    let pc = pod_config("events", &d.dir.path().join("logs"));
    let pod = run_pod(&mut rt, &pc).await;
    let c = create(&mut rt, &pod, &pc, container_config("ev", "sleep 1000"))
        .await
        .expect("create");
    start(&mut rt, &c).await;
    rt.stop_container(cri::StopContainerRequest {
        container_id: c.clone(),
        timeout: 0,
    })
    .await
    .expect("stop");
    rt.remove_container(cri::RemoveContainerRequest {
        container_id: c.clone(),
    })
    .await
    .expect("remove");
    let seen = events_of(&mut events, &c, E::ContainerDeletedEvent, "").await;
    stop_remove_pod(&mut rt, &pod).await;
    assert_nothing_left(&d);
    let seen = seen.unwrap_or_else(|e| panic!("{e}"));
    let kinds: Vec<E> = seen.iter().map(|(k, _)| *k).collect();
    assert_eq!(
        kinds,
        vec![
            E::ContainerCreatedEvent,
            E::ContainerStartedEvent,
            E::ContainerStoppedEvent,
            E::ContainerDeletedEvent
        ]
    );
    assert!(
        seen.iter().all(|(_, at)| *at > 0) && seen.windows(2).all(|w| w[0].1 <= w[1].1),
        "timestamps set and in order: {seen:?}"
    );
}

/// A container that exits by itself is reported (CONTAINER_STOPPED_EVENT) without any
/// client asking for its status first: kubelet's evented PLEG relies on the event to
/// learn that a container died, and relists only rarely.
#[tokio::test]
async fn container_exit_is_streamed_without_polling() {
    use cri::ContainerEventType as E;
    require_root!("container_exit_is_streamed_without_polling");
    let (d, mut rt) = daemon().await;
    let mut events = rt
        .get_container_events(cri::GetEventsRequest {})
        .await
        .expect("GetContainerEvents")
        .into_inner();
    let pc = pod_config("exitev", &d.dir.path().join("logs"));
    let pod = run_pod(&mut rt, &pc).await;
    let c = create(&mut rt, &pod, &pc, container_config("quick", "exit 0"))
        .await
        .expect("create");
    start(&mut rt, &c).await;
    // No ContainerStatus, ListContainers or StopContainer from here on.
    let seen = events_of(
        &mut events,
        &c,
        E::ContainerStoppedEvent,
        "The daemon notices an exit only when a call looks at the container \
         (Containerizer::refreshed); it needs an exit watcher for running containers.",
    )
    .await;
    stop_remove_pod(&mut rt, &pod).await;
    assert_nothing_left(&d);
    let seen = seen.unwrap_or_else(|e| panic!("{e}"));
    let kinds: Vec<E> = seen.iter().map(|(k, _)| *k).collect();
    assert_eq!(
        kinds,
        vec![
            E::ContainerCreatedEvent,
            E::ContainerStartedEvent,
            E::ContainerStoppedEvent
        ]
    );
}

/// The filters of ListPodSandbox and ListContainers: ids (also unique prefixes, as crictl
/// sends), states, pod ids, label selectors (every pair must match).
#[tokio::test]
async fn list_filters() {
    require_root!("list_filters");
    let (d, mut rt) = daemon().await;
    let logs = d.dir.path().join("logs");
    let labels = |pairs: &[(&str, &str)]| -> std::collections::HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let mut pca = pod_config("list-a", &logs.join("a"));
    pca.labels = labels(&[("app", "a"), ("tier", "web")]);
    let mut pcb = pod_config("list-b", &logs.join("b"));
    pcb.labels = labels(&[("app", "b"), ("tier", "web")]);
    let a = run_pod(&mut rt, &pca).await;
    let b = run_pod(&mut rt, &pcb).await;
    let prefix = |id: &str| id[..12].to_string();
    assert!(!b.starts_with(&prefix(&a)) && !a.starts_with(&prefix(&b)));

    // Containers: in pod a, one running and one created; in pod b, one that will be
    // exited once the pod is stopped.
    let mut cc = container_config("runs", "sleep 1000");
    cc.labels = labels(&[("role", "x"), ("tier", "web")]);
    let running = create(&mut rt, &a, &pca, cc).await.expect("create");
    start(&mut rt, &running).await;
    let mut cc = container_config("waits", "sleep 1000");
    cc.labels = labels(&[("role", "y"), ("tier", "web")]);
    let created = create(&mut rt, &a, &pca, cc).await.expect("create");
    let mut cc = container_config("ends", "sleep 1000");
    cc.labels = labels(&[("role", "x"), ("tier", "db")]);
    let exited = create(&mut rt, &b, &pcb, cc).await.expect("create");
    start(&mut rt, &exited).await;

    use cri::PodSandboxFilter as PF;
    let ready = |s: cri::PodSandboxState| Some(cri::PodSandboxStateValue { state: s as i32 });
    // By id, full or a unique prefix; an unknown id lists nothing.
    for wanted in [a.clone(), prefix(&a)] {
        let got = list_pods(
            &mut rt,
            PF {
                id: wanted.clone(),
                ..Default::default()
            },
        )
        .await;
        assert_eq!(got, vec![a.clone()], "pod id filter {wanted}");
    }
    assert!(list_pods(
        &mut rt,
        PF {
            id: "0000ffff0000ffff".into(),
            ..Default::default()
        }
    )
    .await
    .is_empty());
    // By labels: every pair of the selector must match.
    let by_labels = |pairs: &[(&str, &str)]| PF {
        label_selector: labels(pairs),
        ..Default::default()
    };
    assert_eq!(
        list_pods(&mut rt, by_labels(&[("app", "a")])).await,
        vec![a.clone()]
    );
    assert_eq!(
        list_pods(&mut rt, by_labels(&[("tier", "web")])).await,
        sorted(&[&a, &b])
    );
    assert_eq!(
        list_pods(&mut rt, by_labels(&[("tier", "web"), ("app", "b")])).await,
        vec![b.clone()]
    );
    assert!(list_pods(&mut rt, by_labels(&[("app", "c")]))
        .await
        .is_empty());
    // By state: both ready until b is stopped.
    let by_state = |s| PF {
        state: ready(s),
        ..Default::default()
    };
    assert_eq!(
        list_pods(&mut rt, by_state(cri::PodSandboxState::SandboxReady)).await,
        sorted(&[&a, &b])
    );
    rt.stop_pod_sandbox(cri::StopPodSandboxRequest {
        pod_sandbox_id: b.clone(),
    })
    .await
    .expect("StopPodSandbox");
    assert_eq!(
        list_pods(&mut rt, by_state(cri::PodSandboxState::SandboxReady)).await,
        vec![a.clone()]
    );
    assert_eq!(
        list_pods(&mut rt, by_state(cri::PodSandboxState::SandboxNotready)).await,
        vec![b.clone()]
    );
    // State and labels together.
    assert!(list_pods(
        &mut rt,
        PF {
            state: ready(cri::PodSandboxState::SandboxNotready),
            label_selector: labels(&[("app", "a")]),
            ..Default::default()
        }
    )
    .await
    .is_empty());

    use cri::ContainerFilter as CF;
    let state = |s: cri::ContainerState| Some(cri::ContainerStateValue { state: s as i32 });
    // By id, full or a unique prefix.
    for wanted in [running.clone(), prefix(&running)] {
        let got = list_containers(
            &mut rt,
            CF {
                id: wanted.clone(),
                ..Default::default()
            },
        )
        .await;
        assert_eq!(got, vec![running.clone()], "container id filter {wanted}");
    }
    // By state.
    for (s, want) in [
        (cri::ContainerState::ContainerRunning, &running),
        (cri::ContainerState::ContainerCreated, &created),
        (cri::ContainerState::ContainerExited, &exited),
    ] {
        let got = list_containers(
            &mut rt,
            CF {
                state: state(s),
                ..Default::default()
            },
        )
        .await;
        assert_eq!(got, vec![want.clone()], "state {s:?}");
    }
    // By pod (full id or prefix).
    for (pod, want) in [
        (a.clone(), sorted(&[&running, &created])),
        (prefix(&a), sorted(&[&running, &created])),
        (b.clone(), vec![exited.clone()]),
    ] {
        let got = list_containers(
            &mut rt,
            CF {
                pod_sandbox_id: pod.clone(),
                ..Default::default()
            },
        )
        .await;
        assert_eq!(got, want, "pod filter {pod}");
    }
    // By labels.
    let by_labels = |pairs: &[(&str, &str)]| CF {
        label_selector: labels(pairs),
        ..Default::default()
    };
    assert_eq!(
        list_containers(&mut rt, by_labels(&[("role", "x")])).await,
        sorted(&[&running, &exited])
    );
    assert_eq!(
        list_containers(&mut rt, by_labels(&[("role", "x"), ("tier", "web")])).await,
        vec![running.clone()]
    );
    assert!(list_containers(&mut rt, by_labels(&[("role", "z")]))
        .await
        .is_empty());
    // Everything combined.
    assert_eq!(
        list_containers(
            &mut rt,
            CF {
                pod_sandbox_id: a.clone(),
                state: state(cri::ContainerState::ContainerCreated),
                label_selector: labels(&[("tier", "web")]),
                ..Default::default()
            }
        )
        .await,
        vec![created.clone()]
    );
    stop_remove_pod(&mut rt, &a).await;
    stop_remove_pod(&mut rt, &b).await;
    assert_nothing_left(&d);
}

/// What a container's process sees of its config: the user, working directory (created
/// if the image lacks it), environment (the pod's hostname as $HOSTNAME), and a read-only
/// host mount. ContainerStatus reports the mount; the pod's verbose status names its
/// network namespace.
#[tokio::test]
async fn status_reports_mounts_user_env_and_workdir() {
    require_root!("status_reports_mounts_user_env_and_workdir");
    let (d, mut rt) = daemon().await;
    let pc = pod_config("seen", &d.dir.path().join("logs"));
    let pod = run_pod(&mut rt, &pc).await;
    // World-writable, so only the mount's read-only flag can stop uid 1000 writing.
    let host = d.dir.path().join("host-data");
    std::fs::create_dir(&host).expect("host dir");
    std::fs::write(host.join("hello"), "from host\n").expect("host file");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&host, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    }
    let mut cc = container_config(
        "seen",
        "id -u; pwd; echo \"$FOO\"; echo \"$HOSTNAME\"; cat /data/hello; \
         if touch /data/new 2>/dev/null; then echo writable; else echo read-only; fi",
    );
    cc.working_dir = "/w".into();
    cc.envs = vec![cri::KeyValue {
        key: "FOO".into(),
        value: "bar".into(),
    }];
    cc.mounts = vec![cri::Mount {
        container_path: "/data".into(),
        host_path: host.display().to_string(),
        readonly: true,
        ..Default::default()
    }];
    cc.linux = Some(cri::LinuxContainerConfig {
        security_context: Some(cri::LinuxContainerSecurityContext {
            run_as_user: Some(cri::Int64Value { value: 1000 }),
            namespace_options: kubelet_namespaces(),
            ..Default::default()
        }),
        ..Default::default()
    });
    let log = Path::new(&pc.log_directory).join(&cc.log_path);
    let id = create(&mut rt, &pod, &pc, cc).await.expect("create");
    start(&mut rt, &id).await;
    let s = wait_exited(&mut rt, &id, Duration::from_secs(20)).await;
    let lines = stdout_lines(&log);
    assert_eq!(
        lines,
        vec!["1000", "/w", "bar", "seen-host", "from host", "read-only"],
        "exit {} {}",
        s.exit_code,
        s.message
    );
    assert!(
        !host.join("new").exists(),
        "wrote through a read-only mount"
    );
    let mount = s
        .mounts
        .iter()
        .find(|m| m.container_path == "/data")
        .unwrap_or_else(|| panic!("/data not in ContainerStatus mounts: {:?}", s.mounts));
    assert_eq!(
        (mount.host_path.as_str(), mount.readonly),
        (host.display().to_string().as_str(), true)
    );
    // The verbose pod status names the pinned network namespace.
    let resp = rt
        .pod_sandbox_status(cri::PodSandboxStatusRequest {
            pod_sandbox_id: pod.clone(),
            verbose: true,
        })
        .await
        .expect("PodSandboxStatus")
        .into_inner();
    let info: serde_json::Value =
        serde_json::from_str(resp.info.get("info").expect("verbose info")).expect("json");
    let netns = info["netns"]
        .as_str()
        .unwrap_or_else(|| panic!("no netns path in {info}"));
    assert!(
        !mounts_of_type_under("nsfs", Path::new(netns)).is_empty(),
        "{netns} is not a pinned namespace"
    );
    stop_remove_pod(&mut rt, &pod).await;
    assert_nothing_left(&d);
}

/// The pod's /etc/resolv.conf, /etc/hosts and /etc/hostname as kubelet expects them: the
/// DNSConfig rendered (search, nameserver, options lines), or the host's resolv.conf when
/// the pod has no DNSConfig (dnsPolicy: Default).
#[tokio::test]
async fn dns_and_hosts_files() {
    require_root!("dns_and_hosts_files");
    let (d, mut rt) = daemon().await;
    let logs = d.dir.path().join("logs");
    let mut pc = pod_config("dns", &logs.join("dns"));
    pc.dns_config = Some(cri::DnsConfig {
        servers: vec!["10.0.0.10".into()],
        searches: vec!["a.svc".into(), "b.svc".into()],
        options: vec!["ndots:5".into()],
    });
    let pod = run_pod(&mut rt, &pc).await;
    let c = create(&mut rt, &pod, &pc, container_config("c", "sleep 1000"))
        .await
        .expect("create");
    start(&mut rt, &c).await;
    assert_eq!(
        exec_ok(&mut rt, &c, &["cat", "/etc/resolv.conf"]).await,
        "search a.svc b.svc\nnameserver 10.0.0.10\noptions ndots:5\n"
    );
    let hosts = exec_ok(&mut rt, &c, &["cat", "/etc/hosts"]).await;
    assert!(
        hosts.lines().any(|l| {
            let mut f = l.split_whitespace();
            f.next() == Some("127.0.0.1") && f.any(|n| n == "localhost")
        }),
        "{hosts}"
    );
    assert_eq!(
        exec_ok(&mut rt, &c, &["cat", "/etc/hostname"]).await,
        "dns-host\n"
    );
    stop_remove_pod(&mut rt, &pod).await;

    let pc = pod_config("nodns", &logs.join("nodns"));
    let pod = run_pod(&mut rt, &pc).await;
    let c = create(&mut rt, &pod, &pc, container_config("c", "sleep 1000"))
        .await
        .expect("create");
    start(&mut rt, &c).await;
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    assert_eq!(
        exec_ok(&mut rt, &c, &["cat", "/etc/resolv.conf"]).await,
        host
    );
    stop_remove_pod(&mut rt, &pod).await;
    assert_nothing_left(&d);
}

/// containerd's rules for the process (docker's): `command` replaces the Entrypoint and
/// `args` the Cmd; args alone follow the image Entrypoint (none here, so they become the
/// whole argv); nothing anywhere is refused; image Env applies unless the request sets
/// the same key.
#[tokio::test]
async fn docker_runtime_semantics_through_the_cri() {
    require_root!("docker_runtime_semantics_through_the_cri");
    let (d, mut rt) = daemon().await;
    let mut images = d.images().await;
    let pc = pod_config("docker", &d.dir.path().join("logs"));
    let pod = run_pod(&mut rt, &pc).await;
    let with = |name: &str, command: &[&str], args: &[&str]| {
        let mut c = container_config(name, "");
        c.command = command.iter().map(|s| s.to_string()).collect();
        c.args = args.iter().map(|s| s.to_string()).collect();
        c
    };

    // busybox: no Entrypoint, Cmd ["sh"].
    let (s, out) = run_to_exit(
        &mut rt,
        &pod,
        &pc,
        with("cmd", &["sh", "-c", "echo a"], &[]),
    )
    .await;
    assert_eq!((s.exit_code, out), (0, vec!["a".to_string()]));
    let (s, out) = run_to_exit(&mut rt, &pod, &pc, with("cmdargs", &["echo"], &["x", "y"])).await;
    assert_eq!((s.exit_code, out), (0, vec!["x y".to_string()]));
    // Args alone replace Cmd: argv is ["-c", "echo z"], which cannot be executed.
    let id = create(&mut rt, &pod, &pc, with("argsonly", &[], &["-c", "echo z"]))
        .await
        .expect("create: args alone are a valid request");
    match rt
        .start_container(cri::StartContainerRequest {
            container_id: id.clone(),
        })
        .await
    {
        Err(e) => assert!(e.message().contains("\"-c\""), "{e:?}"),
        Ok(_) => {
            let s = wait_exited(&mut rt, &id, Duration::from_secs(10)).await;
            assert_ne!(s.exit_code, 0, "argv [-c, echo z] ran: {s:?}");
        }
    }
    let s = status(&mut rt, &id).await;
    assert_eq!(s.state, cri::ContainerState::ContainerExited as i32);
    assert_ne!(s.exit_code, 0);
    assert!(
        !stdout_lines(&Path::new(&pc.log_directory).join("argsonly.log"))
            .iter()
            .any(|l| l == "z")
    );

    // An image with neither Entrypoint nor Cmd, and a request with neither: refused with
    // containerd's words.
    let bare = push::push_image_config(
        REGISTRY,
        &push::unique_repo("nocmd"),
        "latest",
        &[(
            push::layer(&[push::Entry::File("hello", b"hi\n")]),
            push::Compression::Gzip,
        )],
        serde_json::json!({"Env": ["PATH=/bin"]}),
    )
    .await;
    pull(&mut images, &bare.reference).await.expect("pull bare");
    let mut c = with("nothing", &[], &[]);
    c.image = spec(&bare.reference);
    let e = create(&mut rt, &pod, &pc, c)
        .await
        .expect_err("no command anywhere");
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("no command specified"), "{e:?}");

    // Image Env reaches the process unless the request sets the same key.
    let envy = push::push_derived(
        REGISTRY,
        "ucr-test/busybox",
        "latest",
        &push::unique_repo("env"),
        "latest",
        serde_json::json!({
            "Env": ["PATH=/usr/bin:/bin", "IMG_ONLY=image", "SHARED=image"],
            "Cmd": ["sh"],
        }),
    )
    .await;
    pull(&mut images, &envy.reference).await.expect("pull env");
    let mut c = with(
        "env",
        &["sh", "-c", "echo \"$IMG_ONLY $SHARED $REQ_ONLY\""],
        &[],
    );
    c.image = spec(&envy.reference);
    c.envs = vec![
        cri::KeyValue {
            key: "SHARED".into(),
            value: "request".into(),
        },
        cri::KeyValue {
            key: "REQ_ONLY".into(),
            value: "r".into(),
        },
    ];
    let (s, out) = run_to_exit(&mut rt, &pod, &pc, c).await;
    assert_eq!((s.exit_code, out), (0, vec!["image request r".to_string()]));
    stop_remove_pod(&mut rt, &pod).await;
    assert_nothing_left(&d);
}

/// A pod with `network: NODE` shares the host's network and hostname (kubelet sends no
/// hostname for such pods): its containers see the host's interfaces; nothing of the
/// host's may change, and removal leaves nothing.
#[tokio::test]
async fn host_network_pod() {
    require_root!("host_network_pod");
    let (d, mut rt) = daemon().await;
    let host_name = nix::unistd::gethostname()
        .expect("hostname")
        .to_string_lossy()
        .into_owned();
    // Other tests add and remove veths meanwhile: compare the interfaces that stay (not
    // veths or bridges of test networks), which a pod of its own would not have.
    let steady = |name: &str| !name.starts_with("veth") && !name.starts_with("ucr");
    let mut host_ifaces: Vec<String> = std::fs::read_dir("/sys/class/net")
        .expect("/sys/class/net")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| steady(n))
        .collect();
    host_ifaces.sort();
    assert!(host_ifaces.len() > 1, "only {host_ifaces:?} on the host");
    let mut pc = pod_config("hostnet", &d.dir.path().join("logs"));
    pc.hostname = String::new();
    pc.linux = Some(cri::LinuxPodSandboxConfig {
        security_context: Some(cri::LinuxSandboxSecurityContext {
            namespace_options: Some(cri::NamespaceOption {
                network: cri::NamespaceMode::Node as i32,
                pid: cri::NamespaceMode::Container as i32,
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    });
    let pod = run_pod(&mut rt, &pc).await;
    let st = pod_status(&mut rt, &pod).await;
    let ns = st
        .linux
        .and_then(|l| l.namespaces)
        .and_then(|n| n.options)
        .expect("namespace options");
    assert_eq!(ns.network, cri::NamespaceMode::Node as i32);
    // What the container's own process sees (ls sorts its output).
    let (s, out) = run_to_exit(
        &mut rt,
        &pod,
        &pc,
        container_config(
            "look",
            "ls -1 /sys/class/net; echo --; hostname; cat /etc/hostname",
        ),
    )
    .await;
    assert_eq!(s.exit_code, 0, "{s:?}");
    let split = out.iter().position(|l| l == "--").expect("separator");
    let mut seen: Vec<String> = out[..split].iter().filter(|n| steady(n)).cloned().collect();
    seen.sort();
    assert_eq!(seen, host_ifaces, "the container's interfaces");
    assert_eq!(
        &out[split + 1..],
        &[host_name.clone(), host_name.clone()],
        "hostname and /etc/hostname"
    );
    stop_remove_pod(&mut rt, &pod).await;
    assert_eq!(
        nix::unistd::gethostname()
            .expect("hostname")
            .to_string_lossy(),
        host_name.as_str(),
        "the host's hostname changed"
    );
    assert_nothing_left(&d);
}
