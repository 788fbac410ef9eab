//! Guarded lifecycles: calls that race each other against the real daemon end in one of
//! the legal outcomes and leak nothing, and a Mesos-style standalone container (no pod,
//! a client-chosen id) runs through the containerizer's own API, as the Mesos door will
//! drive it. Needs root; says so and skips otherwise.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::pods::{
    assert_nothing_left, container_config, create, daemon, pod_config, run_pod, settle_sleeps,
    sleeps, status, stop_remove_pod, BUSYBOX,
};
use common::*;
use k8s_cri::v1 as cri;
use tonic::Code;

/// Rounds of each race: enough for both orders to happen on two cores.
const ROUNDS: usize = 12;

#[tokio::test]
async fn start_racing_stop_pod_never_runs_in_a_stopped_pod() {
    require_root!("start_racing_stop_pod_never_runs_in_a_stopped_pod");
    let (d, rt) = daemon().await;
    let logs = d.dir.path().join("logs");
    for round in 0..ROUNDS {
        let mut rt1 = rt.clone();
        let mut rt2 = rt.clone();
        let pc = pod_config(&format!("race-start-{round}"), &logs);
        let pod = run_pod(&mut rt1, &pc).await;
        let n = 71000 + round as u32;
        let id = create(
            &mut rt1,
            &pod,
            &pc,
            container_config("c", &format!("exec sleep {n}")),
        )
        .await
        .expect("create");
        let (started, stopped) = tokio::join!(
            rt1.start_container(cri::StartContainerRequest {
                container_id: id.clone(),
            }),
            rt2.stop_pod_sandbox(cri::StopPodSandboxRequest {
                pod_sandbox_id: pod.clone(),
            }),
        );
        stopped.expect("StopPodSandbox always succeeds");
        // Either the start came first and the stop killed it, or the stop came first and
        // the start was refused naming the pod. Never a container running in a pod
        // whose network is gone.
        if let Err(e) = &started {
            assert_eq!(e.code(), Code::FailedPrecondition, "{}", e.message());
            assert!(e.message().contains(&pod), "{}", e.message());
        }
        let s = status(&mut rt1, &id).await;
        assert_ne!(
            s.state,
            cri::ContainerState::ContainerRunning as i32,
            "round {round}"
        );
        settle_sleeps(n, 0).await;
        stop_remove_pod(&mut rt1, &pod).await;
    }
    assert_nothing_left(&d);
}

#[tokio::test]
async fn create_racing_remove_pod_leaves_no_container_behind() {
    require_root!("create_racing_remove_pod_leaves_no_container_behind");
    let (d, rt) = daemon().await;
    let logs = d.dir.path().join("logs");
    for round in 0..ROUNDS {
        let mut rt1 = rt.clone();
        let mut rt2 = rt.clone();
        let pc = pod_config(&format!("race-create-{round}"), &logs);
        let pod = run_pod(&mut rt1, &pc).await;
        let (created, removed) = tokio::join!(
            create(&mut rt1, &pod, &pc, container_config("c", "exec sleep 1")),
            rt2.remove_pod_sandbox(cri::RemovePodSandboxRequest {
                pod_sandbox_id: pod.clone(),
            }),
        );
        removed.expect("RemovePodSandbox always succeeds");
        if let Err(e) = &created {
            assert!(
                matches!(e.code(), Code::NotFound | Code::FailedPrecondition),
                "{:?} {}",
                e.code(),
                e.message()
            );
        }
        // Whichever came first, the pod and everything in it are gone.
        let left = rt1
            .list_containers(cri::ListContainersRequest { filter: None })
            .await
            .expect("ListContainers")
            .into_inner()
            .containers;
        assert!(left.is_empty(), "round {round}: {left:?}");
    }
    assert_nothing_left(&d);
    // No use count was leaked: the image can go.
    let mut images = d.images().await;
    remove(&mut images, BUSYBOX).await.expect("RemoveImage");
}

#[tokio::test]
async fn start_racing_remove_container_leaves_nothing_running() {
    require_root!("start_racing_remove_container_leaves_nothing_running");
    let (d, rt) = daemon().await;
    let logs = d.dir.path().join("logs");
    let mut rt0 = rt.clone();
    let pc = pod_config("race-remove", &logs);
    let pod = run_pod(&mut rt0, &pc).await;
    for round in 0..ROUNDS {
        let mut rt1 = rt.clone();
        let mut rt2 = rt.clone();
        let n = 72000 + round as u32;
        let id = create(
            &mut rt1,
            &pod,
            &pc,
            container_config(&format!("c{round}"), &format!("exec sleep {n}")),
        )
        .await
        .expect("create");
        let (started, removed) = tokio::join!(
            rt1.start_container(cri::StartContainerRequest {
                container_id: id.clone(),
            }),
            rt2.remove_container(cri::RemoveContainerRequest {
                container_id: id.clone(),
            }),
        );
        removed.expect("RemoveContainer always succeeds");
        if let Err(e) = &started {
            assert_eq!(e.code(), Code::NotFound, "{}", e.message());
        }
        // Started then removed (which stops it), or removed before it could start:
        // no process either way, and no record.
        settle_sleeps(n, 0).await;
        let e = rt1
            .container_status(cri::ContainerStatusRequest {
                container_id: id.clone(),
                verbose: false,
            })
            .await
            .expect_err("removed");
        assert_eq!(e.code(), Code::NotFound);
    }
    stop_remove_pod(&mut rt0, &pod).await;
    assert_nothing_left(&d);
}

#[tokio::test]
async fn a_standalone_container_runs_without_a_pod_under_a_client_chosen_id() {
    use ucr::containerizer::types::{ContainerConfig, ContainerState, LogTarget, ProcessConfig};
    use ucr::containerizer::{Containerizer, Options};
    require_root!("a_standalone_container_runs_without_a_pod_under_a_client_chosen_id");
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let store = open_store(&d.join("store"));
    let image = format!("{REGISTRY}/ucr-test/busybox:latest");
    store.pull(&image, None).await.expect("pull");
    let backend = ucr::provisioner::backend::select("auto", &d.join("store")).expect("backend");
    let binary = std::path::PathBuf::from(env!("CARGO_BIN_EXE_ucr"));
    let cni = ucr::isolators::network::cni::Cni::new(ucr::isolators::network::cni::CniConfig {
        conf_dir: d.join("no-networks"),
        bin_dirs: Vec::new(),
        cache_dir: d.join("cni-cache"),
        plugin_timeout: Duration::from_secs(5),
    });
    // A cgroups root of its own (the tempdir's name): tests side by side stay apart.
    let cgroups_root = format!("/{}", d.file_name().unwrap_or_default().to_string_lossy());
    let cgroups = ucr::isolators::cgroups::Cgroups::new(ucr::isolators::cgroups::CgroupsOptions {
        hierarchy: "/sys/fs/cgroup".into(),
        root: ucr::isolators::cgroups::path::CgroupPath::parse(&cgroups_root).expect("root"),
        net_cls: None,
        pids_limit: None,
        state_dir: d.join("run/cgroups"),
    })
    .expect("cgroups");
    let c: Arc<Containerizer> = Containerizer::open(Options {
        root: d.join("root"),
        run_root: d.join("run"),
        store: store.clone(),
        backend,
        binary: binary.clone(),
        isolators: ucr::isolators::Isolators::standard(
            cni,
            binary,
            cgroups,
            Vec::new(),
            ucr::isolators::linux::seccomp::Seccomp::new(d.join("seccomp"), false),
        ),
    })
    .expect("containerizer");
    // What the Mesos door will send for LAUNCH_CONTAINER: its own id (exact, no prefix
    // games), the command its table resolved, no pod.
    let id = "standalone-task.1";
    let config = ContainerConfig {
        key: id.into(),
        id: Some(id.into()),
        image: image.clone(),
        process: ProcessConfig {
            argv: vec![
                "sh".into(),
                "-c".into(),
                "hostname; echo $GREETING; exec sleep 73001".into(),
            ],
            executable: None,
            env: vec![("GREETING".into(), "hello".into())],
            cwd: "/tmp".into(),
            user: None,
            supplemental_groups: Vec::new(),
            strict_groups: false,
            image_env: true,
        },
        log: Some(LogTarget {
            dir: d.join("logs"),
            path: "standalone.log".into(),
            format: Default::default(),
        }),
        // What the Mesos door sets from a task's resources.
        resources: ucr::containerizer::types::Resources {
            memory_limit: Some(48 << 20),
            pids_limit: Some(20),
            ..Default::default()
        },
        ..Default::default()
    };
    let (made, new) = c
        .create_container(None, config.clone())
        .await
        .expect("create");
    assert!(new);
    assert_eq!((made.id.as_str(), made.pod_id.clone()), (id, None));
    // The same id again is that container (Mesos answers 202), not a second one.
    let (again, new) = c
        .create_container(None, config)
        .await
        .expect("create again");
    assert!(!new);
    assert_eq!(again.id, id);
    // Ids are exact.
    assert!(c.container_status("standalone").await.is_err());

    c.start_container(id).await.expect("start");
    let running = c.container_status(id).await.expect("status");
    assert_eq!(running.state, ContainerState::Running);
    let pid = running.process.expect("its process").pid;
    // Namespaces of its own (PID, IPC, mount, UTS); the host's network, as Mesos gives a
    // container without network_infos.
    for (ns, own) in [("pid", true), ("ipc", true), ("mnt", true), ("net", false)] {
        let theirs = std::fs::read_link(format!("/proc/{pid}/ns/{ns}")).expect("ns");
        let ours = std::fs::read_link(format!("/proc/self/ns/{ns}")).expect("ns");
        assert_eq!(theirs != ours, own, "{ns} namespace");
    }
    let log = d.join("logs/standalone.log");
    for _ in 0..100 {
        if std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("hello")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        std::fs::read_to_string(&log)
            .expect("log")
            .contains(" stdout F hello"),
        "the container's output reaches its log"
    );
    // Its cgroup: under the root, limited as asked.
    let memory = cgroup_dirs(&format!("{cgroups_root}/{id}"))
        .into_iter()
        .find(|p| p.join("memory.limit_in_bytes").exists())
        .expect("a memory cgroup");
    assert_eq!(
        std::fs::read_to_string(memory.join("memory.limit_in_bytes"))
            .expect("limit")
            .trim(),
        (48u64 << 20).to_string()
    );
    let pids = cgroup_dirs(&format!("{cgroups_root}/{id}"))
        .into_iter()
        .find(|p| p.join("pids.max").exists())
        .expect("a pids cgroup");
    assert_eq!(
        std::fs::read_to_string(pids.join("pids.max"))
            .expect("max")
            .trim(),
        "20"
    );
    c.stop_container(id, 0).await.expect("stop");
    assert_eq!(
        c.container_status(id).await.expect("status").state,
        ContainerState::Exited
    );
    c.remove_container(id).await.expect("remove");
    assert!(
        !memory.exists() && !pids.exists(),
        "its cgroups went with it"
    );
    for dir in cgroup_dirs(&cgroups_root) {
        remove_cgroup_tree(&dir);
    }
    assert!(c.container_status(id).await.is_err());
    assert_eq!(sleeps(73001), 0);
    // The rootfs is unmounted and deleted in the background (the trash).
    for _ in 0..100 {
        if mounts_under(d) == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(mounts_under(d), 0, "mounts left under {}", d.display());
}
