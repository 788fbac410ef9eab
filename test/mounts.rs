//! Volume mount propagation (CRI `MountPropagation`), end to end: a host directory on a
//! shared mount, bound into a privileged container three times. What the host mounts
//! under it reaches the HOST_TO_CONTAINER and BIDIRECTIONAL copies and not the PRIVATE
//! one; what the container mounts under the BIDIRECTIONAL copy reaches the host. Needs
//! root; says so and skips otherwise.

mod common;

use std::path::Path;
use std::process::Command;

use common::pods::{
    assert_nothing_left, container_config, create, daemon, exec_ok, kubelet_namespaces, pod_config,
    run_pod, running, stop_remove_pod,
};
use common::*;
use k8s_cri::v1 as cri;
use tonic::Code;

fn sh(script: &str) {
    let ok = Command::new("sh")
        .args(["-c", script])
        .status()
        .expect("sh");
    assert!(ok.success(), "{script}");
}

/// Unmounts everything at and under `dir` (lazily) when dropped.
struct Unmount(String);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new("umount").args(["-R", "-l", &self.0]).status();
    }
}

fn mounted_at(mountinfo: &str, path: &str) -> bool {
    mountinfo.lines().any(|l| l.split(' ').nth(4) == Some(path))
}

fn volume(host: &Path, at: &str, propagation: cri::MountPropagation) -> cri::Mount {
    cri::Mount {
        host_path: host.display().to_string(),
        container_path: at.into(),
        propagation: propagation as i32,
        ..Default::default()
    }
}

#[tokio::test]
async fn mount_propagation_modes() {
    require_root!("mount_propagation_modes");
    let (d, mut rt) = daemon().await;
    let shared = d.dir.path().join("shared");
    let private = d.dir.path().join("private");
    std::fs::create_dir_all(&shared).expect("mkdir");
    std::fs::create_dir_all(&private).expect("mkdir");
    let (s, p) = (shared.display().to_string(), private.display().to_string());
    let _undo = (Unmount(s.clone()), Unmount(p.clone()));
    sh(&format!(
        "mount --bind {s} {s} && mount --make-rshared {s} && \
         mount --bind {p} {p} && mount --make-rprivate {p}"
    ));

    let logs = d.dir.path().join("logs");
    let pc = pod_config("volumes", &logs);
    let pod = run_pod(&mut rt, &pc).await;

    // A volume that wants host mounts from a private mount would silently get none.
    let mut wrong = container_config("wrong", "sleep 1");
    wrong.mounts = vec![volume(
        &private,
        "/v",
        cri::MountPropagation::PropagationBidirectional,
    )];
    let e = create(&mut rt, &pod, &pc, wrong)
        .await
        .expect_err("refused");
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("shared mount"), "{e:?}");

    let mut c = container_config("mounter", "exec sleep 1000");
    c.mounts = vec![
        volume(
            &shared,
            "/bidi",
            cri::MountPropagation::PropagationBidirectional,
        ),
        volume(
            &shared,
            "/h2c",
            cri::MountPropagation::PropagationHostToContainer,
        ),
        volume(&shared, "/priv", cri::MountPropagation::PropagationPrivate),
    ];
    // Mounting inside needs CAP_SYS_ADMIN.
    c.linux = Some(cri::LinuxContainerConfig {
        security_context: Some(cri::LinuxContainerSecurityContext {
            privileged: true,
            namespace_options: kubelet_namespaces(),
            ..Default::default()
        }),
        ..Default::default()
    });
    let id = running(&mut rt, &pod, &pc, c).await;

    // Host to container.
    sh(&format!(
        "mkdir -p {s}/fromhost && mount -t tmpfs fromhost {s}/fromhost"
    ));
    let inside = exec_ok(&mut rt, &id, &["cat", "/proc/self/mountinfo"]).await;
    assert!(
        mounted_at(&inside, "/h2c/fromhost"),
        "HOST_TO_CONTAINER:\n{inside}"
    );
    assert!(
        mounted_at(&inside, "/bidi/fromhost"),
        "BIDIRECTIONAL:\n{inside}"
    );
    assert!(!mounted_at(&inside, "/priv/fromhost"), "PRIVATE:\n{inside}");

    // Container to host, through the bidirectional volume only.
    exec_ok(
        &mut rt,
        &id,
        &[
            "sh",
            "-c",
            "mkdir -p /bidi/fromctr && mount -t tmpfs fromctr /bidi/fromctr",
        ],
    )
    .await;
    let host = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let inside = exec_ok(&mut rt, &id, &["cat", "/proc/self/mountinfo"]).await;
    assert!(
        mounted_at(&host, &format!("{s}/fromctr")),
        "the container's mount did not reach the host:\n{}\n---inside---\n{}",
        host.lines()
            .filter(|l| l.contains("shared"))
            .collect::<Vec<_>>()
            .join("\n"),
        inside
            .lines()
            .filter(|l| l.contains("bidi") || l.contains("h2c"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    // Nothing else of the container's reached the host.
    let rootfs_mounts = host
        .lines()
        .filter(|l| {
            l.split(' ').nth(4).is_some_and(|m| {
                m.contains("/rootfs/") && m.starts_with(&d.dir.path().display().to_string())
            })
        })
        .count();
    assert_eq!(
        rootfs_mounts, 0,
        "container mounts leaked to the host:\n{host}"
    );

    stop_remove_pod(&mut rt, &pod).await;
    drop(_undo);
    assert_nothing_left(&d);
}
