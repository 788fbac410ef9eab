//! Paths from images, end to end over the CRI: volumes and working directories on the
//! symlinked paths every Debian or Ubuntu image has (`/var/run -> /run`), on a
//! busybox image of that layout and on a real debootstrapped Debian; symlinks planted
//! to lead out of the rootfs; device nodes shipped in a layer. Needs root; says so and
//! skips otherwise. The images are built by `hack/build-test-images.sh`.

mod common;

use std::path::Path;

use common::pods::{
    assert_nothing_left, container_config, create, daemon, exec_ok, pod_config, run_pod,
    run_to_exit, running, stop_remove_pod, Rt,
};
use common::*;
use k8s_cri::v1 as cri;

const DEBIAN_LAYOUT: &str = "127.0.0.1:5000/ucr-test/debian-layout:latest";
const DEBIAN: &str = "127.0.0.1:5000/ucr-test/debian:bookworm";
const HOSTILE_LINKS: &str = "127.0.0.1:5000/ucr-test/hostile-links:latest";
const DEVNODES: &str = "127.0.0.1:5000/ucr-test/devnodes:latest";

/// Where kubelet mounts every pod's service-account token.
const TOKEN_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

fn on_image(mut c: cri::ContainerConfig, image: &str) -> cri::ContainerConfig {
    c.image = Some(cri::ImageSpec {
        image: image.into(),
        ..Default::default()
    });
    c
}

fn volume(host: &Path, container: &str, readonly: bool) -> cri::Mount {
    cri::Mount {
        host_path: host.display().to_string(),
        container_path: container.into(),
        readonly,
        ..Default::default()
    }
}

/// A directory standing for kubelet's projected token volume.
fn token_volume(dir: &Path) -> std::path::PathBuf {
    let token = dir.join("token-volume");
    std::fs::create_dir_all(&token).expect("token dir");
    std::fs::write(token.join("token"), "eyJhbGciOi.test-token").expect("token");
    std::fs::write(token.join("namespace"), "default").expect("namespace");
    token
}

/// A container on `image` with the token volume read-only at [`TOKEN_DIR`] and its
/// working directory under `/var/run`: it prints the token, where it is, and that the
/// volume refuses writes. Both paths cross `/var/run -> /run`.
async fn token_and_workdir(
    rt: &mut Rt,
    pod: &str,
    pc: &cri::PodSandboxConfig,
    dir: &Path,
    image: &str,
) {
    let mut c = on_image(
        container_config(
            &format!(
                "token-{}",
                image
                    .rsplit('/')
                    .next()
                    .unwrap_or("x")
                    .replace([':', '.'], "-")
            ),
            &format!(
                "cat {TOKEN_DIR}/token; echo; pwd -P; touch here; ls /run/app; \
                 touch {TOKEN_DIR}/x 2>/dev/null || echo read-only"
            ),
        ),
        image,
    );
    c.working_dir = "/var/run/app".into();
    c.mounts = vec![volume(&token_volume(dir), TOKEN_DIR, true)];
    let (status, out) = run_to_exit(rt, pod, pc, c).await;
    assert_eq!(status.exit_code, 0, "{}: {status:?} {out:?}", image);
    assert_eq!(
        out,
        ["eyJhbGciOi.test-token", "/run/app", "here", "read-only"],
        "{image}"
    );
}

#[tokio::test]
async fn volumes_and_workdirs_on_symlinked_paths_of_debian_images() {
    require_root!("volumes_and_workdirs_on_symlinked_paths_of_debian_images");
    let (d, mut rt) = daemon().await;
    let mut images = d.images().await;
    for image in [DEBIAN_LAYOUT, DEBIAN] {
        pull(&mut images, image).await.expect("pull");
    }
    let pc = pod_config("debian-paths", &d.dir.path().join("logs"));
    let pod = run_pod(&mut rt, &pc).await;
    token_and_workdir(&mut rt, &pod, &pc, d.dir.path(), DEBIAN_LAYOUT).await;
    // A real distribution image: bash, setuid binaries, debootstrap's own /dev nodes.
    token_and_workdir(&mut rt, &pod, &pc, d.dir.path(), DEBIAN).await;
    let c = on_image(
        container_config(
            "debian-bash",
            "bash -c 'echo $BASH_VERSION' | cut -d. -f1; test -u /usr/bin/su && echo setuid; \
             . /etc/os-release; echo $ID",
        ),
        DEBIAN,
    );
    let (status, out) = run_to_exit(&mut rt, &pod, &pc, c).await;
    assert_eq!(status.exit_code, 0, "{status:?} {out:?}");
    assert_eq!(out, ["5", "setuid", "debian"]);
    stop_remove_pod(&mut rt, &pod).await;
    assert_nothing_left(&d);
}

#[tokio::test]
async fn hostile_symlinks_resolve_inside_the_rootfs() {
    require_root!("hostile_symlinks_resolve_inside_the_rootfs");
    let (d, mut rt) = daemon().await;
    pull(&mut d.images().await, HOSTILE_LINKS)
        .await
        .expect("pull");
    let pc = pod_config("hostile-links", &d.dir.path().join("logs"));
    let pod = run_pod(&mut rt, &pc).await;
    let data = d.dir.path().join("data");
    std::fs::create_dir_all(&data).expect("data");
    std::fs::write(data.join("file"), "from the volume").expect("file");
    // Unique names: nothing of this test may appear on the host, and nothing else may
    // be taken for it.
    let tag = format!("ucr-test-{}", std::process::id());
    let mut c = on_image(
        container_config(
            "hostile",
            &format!(
                "cat /etc/{tag}-vol/file; echo; cat /tmp/{tag}-up/file; echo; \
                 test -L /vol && test -L /up && echo links-kept; pwd -P"
            ),
        ),
        HOSTILE_LINKS,
    );
    // `/vol -> /etc` and `/up -> ../../../../tmp`, for the volumes and the working
    // directory alike.
    c.mounts = vec![
        volume(&data, &format!("/vol/{tag}-vol"), false),
        volume(&data, &format!("/up/{tag}-up"), true),
    ];
    c.working_dir = format!("/up/{tag}-wd");
    let (status, out) = run_to_exit(&mut rt, &pod, &pc, c).await;
    assert_eq!(status.exit_code, 0, "{status:?} {out:?}");
    assert_eq!(
        out,
        [
            "from the volume".to_string(),
            "from the volume".to_string(),
            "links-kept".to_string(),
            format!("/tmp/{tag}-wd")
        ]
    );
    for host in [
        format!("/etc/{tag}-vol"),
        format!("/tmp/{tag}-up"),
        format!("/tmp/{tag}-wd"),
    ] {
        assert!(!Path::new(&host).exists(), "{host} appeared on the host");
    }
    stop_remove_pod(&mut rt, &pod).await;
    assert_nothing_left(&d);
}

#[tokio::test]
async fn device_nodes_from_an_image_cannot_be_opened() {
    require_root!("device_nodes_from_an_image_cannot_be_opened");
    let (d, mut rt) = daemon().await;
    pull(&mut d.images().await, DEVNODES).await.expect("pull");
    // Without nodev a uid-1000 container could open the image's 0666 `b 7 0`: the
    // refusal below means something only where the kernel has that device.
    assert!(
        Path::new("/sys/block/loop0").exists(),
        "this host has no loop0; the test would prove nothing"
    );
    let pc = pod_config("devnodes", &d.dir.path().join("logs"));
    let pod = run_pod(&mut rt, &pc).await;

    // The layer's 0666 nodes are there, and refuse to open (the rootfs is nodev), for a
    // uid-1000 container without capabilities as for root; /dev's nodes work.
    let script = "ls -l /loop0 /mem | cut -c1-10; \
                  head -c 1 /loop0 >/dev/null 2>&1 || echo loop0-refused; \
                  head -c 1 /mem >/dev/null 2>&1 || echo mem-refused; \
                  echo x > /dev/null && echo null-ok; \
                  head -c 4 /dev/zero | wc -c; head -c 4 /dev/urandom | wc -c";
    let mut plain = on_image(container_config("user", script), DEVNODES);
    plain.linux = Some(cri::LinuxContainerConfig {
        security_context: Some(cri::LinuxContainerSecurityContext {
            run_as_user: Some(cri::Int64Value { value: 1000 }),
            capabilities: Some(cri::Capability {
                drop_capabilities: vec!["ALL".into()],
                ..Default::default()
            }),
            namespace_options: common::pods::kubelet_namespaces(),
            ..Default::default()
        }),
        ..Default::default()
    });
    let root = on_image(container_config("root", script), DEVNODES);
    for c in [plain, root] {
        let (status, out) = run_to_exit(&mut rt, &pod, &pc, c).await;
        assert_eq!(status.exit_code, 0, "{status:?} {out:?}");
        assert_eq!(
            out,
            [
                "brw-rw-rw-",
                "crw-rw-rw-",
                "loop0-refused",
                "mem-refused",
                "null-ok",
                "4",
                "4"
            ]
        );
    }
    // Also through ExecSync, into a running container.
    let id = running(
        &mut rt,
        &pod,
        &pc,
        on_image(container_config("sleeper", "exec sleep 60"), DEVNODES),
    )
    .await;
    let out = exec_ok(&mut rt, &id, &["sh", "-c", "cat /mem 2>&1; true"]).await;
    assert!(out.contains("Permission denied"), "{out}");
    stop_remove_pod(&mut rt, &pod).await;
    assert_nothing_left(&d);
}

#[tokio::test]
async fn a_mount_target_that_is_not_absolute_is_refused() {
    require_root!("a_mount_target_that_is_not_absolute_is_refused");
    let (d, mut rt) = daemon().await;
    let pc = pod_config("relative-target", &d.dir.path().join("logs"));
    let pod = run_pod(&mut rt, &pc).await;
    let mut c = container_config("relative", "true");
    c.mounts = vec![volume(d.dir.path(), "data", false)];
    let e = create(&mut rt, &pod, &pc, c)
        .await
        .expect_err("a relative mount target");
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert!(
        e.message().contains("mounts.container_path \"data\"") && e.message().contains("absolute"),
        "{}",
        e.message()
    );
    stop_remove_pod(&mut rt, &pod).await;
    assert_nothing_left(&d);
}
