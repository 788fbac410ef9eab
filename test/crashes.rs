//! `kill -9` of the daemon at each step of making a pod, creating, starting and removing a
//! container: after a restart no container runs twice or untracked, nothing half made is
//! left, and image use counts are right (an image with no users can be removed).
//!
//! The daemon kills itself at named points (`src/crash.rs`), which exist only in a build
//! with the `crash-points` feature; the README's test command turns it on. Needs root;
//! says so and skips otherwise.

mod common;

#[cfg(not(feature = "crash-points"))]
#[test]
fn crash_tests_need_the_crash_points_feature() {
    eprintln!(
        "SKIPPED crash tests: this build has no crash points; run them with \
         `cargo nextest run --features crash-points` (hack/test.sh does)"
    );
}

#[cfg(feature = "crash-points")]
mod points {
    use std::time::Duration;

    use super::common::pods::{
        assert_nothing_left, container_config, create, daemon, list_containers, list_pods,
        pod_config, run_pod, settle_sleeps, start, status, stop_remove_pod, Rt, BUSYBOX,
    };
    use super::common::*;
    use k8s_cri::v1 as cri;

    /// Restarts `d` to die at `point`; a client of it.
    async fn crashing(d: &mut Daemon, point: &str) -> Rt {
        d.restart_crashing_at(point);
        d.runtime().await
    }

    /// Waits for the daemon to have died at its crash point, then starts it normally.
    async fn after_the_crash(d: &mut Daemon, point: &str) -> Rt {
        for _ in 0..100 {
            if d.has_exited() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            d.has_exited(),
            "the daemon did not die at {point}:\n{}",
            d.logs()
        );
        d.restart();
        d.runtime().await
    }

    /// The image can be removed: no container left holds a use of it.
    async fn image_is_free(d: &Daemon) {
        let mut images = d.images().await;
        remove(&mut images, BUSYBOX)
            .await
            .expect("RemoveImage: its use count is right");
    }

    #[tokio::test]
    async fn a_crash_while_creating_leaves_no_container_and_no_use() {
        require_root!("a_crash_while_creating_leaves_no_container_and_no_use");
        for (i, point) in ["create:image-acquired", "create:prepared"]
            .into_iter()
            .enumerate()
        {
            let (mut d, mut rt) = daemon().await;
            let pc = pod_config("crash-create", &d.dir.path().join("logs"));
            let pod = run_pod(&mut rt, &pc).await;
            let n = 74000 + i as u32;
            let c = || container_config("c", &format!("exec sleep {n}"));
            let mut rt = crashing(&mut d, point).await;
            create(&mut rt, &pod, &pc, c())
                .await
                .expect_err("the daemon dies");
            let mut rt = after_the_crash(&mut d, point).await;
            let left = list_containers(&mut rt, Default::default()).await;
            assert!(
                left.is_empty(),
                "{point}: half-made container listed: {left:?}"
            );
            // A retried create makes it once, and it runs once.
            let id = create(&mut rt, &pod, &pc, c()).await.expect("create again");
            start(&mut rt, &id).await;
            settle_sleeps(n, 1).await;
            stop_remove_pod(&mut rt, &pod).await;
            assert_nothing_left(&d);
            image_is_free(&d).await;
        }
    }

    #[tokio::test]
    async fn a_crash_while_starting_never_runs_a_container_twice() {
        require_root!("a_crash_while_starting_never_runs_a_container_twice");
        for (i, point) in ["start:starting-recorded", "start:isolated"]
            .into_iter()
            .enumerate()
        {
            let (mut d, mut rt) = daemon().await;
            let pc = pod_config("crash-start", &d.dir.path().join("logs"));
            let pod = run_pod(&mut rt, &pc).await;
            let n = 74100 + i as u32;
            let id = create(
                &mut rt,
                &pod,
                &pc,
                container_config("c", &format!("exec sleep {n}")),
            )
            .await
            .expect("create");
            let mut rt = crashing(&mut d, point).await;
            rt.start_container(cri::StartContainerRequest {
                container_id: id.clone(),
            })
            .await
            .expect_err("the daemon dies");
            let mut rt = after_the_crash(&mut d, point).await;
            // The start never got as far as the process: created again, nothing runs.
            let s = status(&mut rt, &id).await;
            assert_eq!(
                s.state,
                cri::ContainerState::ContainerCreated as i32,
                "{point}: {s:?}"
            );
            settle_sleeps(n, 0).await;
            // The retried start runs it exactly once.
            start(&mut rt, &id).await;
            settle_sleeps(n, 1).await;
            stop_remove_pod(&mut rt, &pod).await;
            settle_sleeps(n, 0).await;
            assert_nothing_left(&d);
            image_is_free(&d).await;
        }
    }

    #[tokio::test]
    async fn a_crash_while_removing_is_finished_by_a_retry() {
        require_root!("a_crash_while_removing_is_finished_by_a_retry");
        for (i, point) in ["remove:trashed", "remove:released"]
            .into_iter()
            .enumerate()
        {
            let (mut d, mut rt) = daemon().await;
            let pc = pod_config("crash-remove", &d.dir.path().join("logs"));
            let pod = run_pod(&mut rt, &pc).await;
            let n = 74200 + i as u32;
            let id = create(
                &mut rt,
                &pod,
                &pc,
                container_config("c", &format!("exec sleep {n}")),
            )
            .await
            .expect("create");
            start(&mut rt, &id).await;
            let mut rt = crashing(&mut d, point).await;
            rt.remove_container(cri::RemoveContainerRequest {
                container_id: id.clone(),
            })
            .await
            .expect_err("the daemon dies");
            let mut rt = after_the_crash(&mut d, point).await;
            // It was stopped before the crash; kubelet retries the removal.
            settle_sleeps(n, 0).await;
            rt.remove_container(cri::RemoveContainerRequest {
                container_id: id.clone(),
            })
            .await
            .expect("RemoveContainer again");
            assert!(list_containers(&mut rt, Default::default())
                .await
                .is_empty());
            stop_remove_pod(&mut rt, &pod).await;
            assert_nothing_left(&d);
            image_is_free(&d).await;
        }
    }

    #[tokio::test]
    async fn a_crash_while_making_a_pod_leaves_nothing_of_it() {
        require_root!("a_crash_while_making_a_pod_leaves_nothing_of_it");
        for point in ["pod:namespaces-made", "pod:prepared"] {
            let (mut d, _) = daemon().await;
            // A shared PID namespace, so the pod init is part of what must go too.
            let mut pc = pod_config("crash-pod", &d.dir.path().join("logs"));
            if let Some(sc) = pc.linux.as_mut().and_then(|l| l.security_context.as_mut()) {
                sc.namespace_options = Some(cri::NamespaceOption {
                    pid: cri::NamespaceMode::Pod as i32,
                    ..Default::default()
                });
            }
            let mut rt = crashing(&mut d, point).await;
            rt.run_pod_sandbox(cri::RunPodSandboxRequest {
                config: Some(pc.clone()),
                runtime_handler: String::new(),
            })
            .await
            .expect_err("the daemon dies");
            let mut rt = after_the_crash(&mut d, point).await;
            assert!(
                list_pods(&mut rt, Default::default()).await.is_empty(),
                "{point}"
            );
            // Its namespaces, network (CNI DEL from the cache) and init are gone.
            assert_nothing_left(&d);
            let pod = run_pod(&mut rt, &pc).await;
            stop_remove_pod(&mut rt, &pod).await;
            assert_nothing_left(&d);
        }
    }
}
