//! The disk isolators end to end: `disk/du`'s figures in the CRI stats against `du` on
//! the container's writable layer, a container killed over its disk limit with the
//! reason said, and `disk/xfs` refusing to start where the kernel cannot enforce project
//! quotas (this one has no XFS quota support, so that is what can run here). Needs root;
//! says so and skips otherwise.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::pods::{
    assert_nothing_left, container_config, pod_config, run_pod, running, stop_remove_pod,
    wait_exited, Rt, BUSYBOX,
};
use common::*;
use k8s_cri::v1 as cri;

async fn daemon_with(args: &[&str]) -> (Daemon, Rt) {
    let d = Daemon::start(args);
    let mut images = d.images().await;
    pull(&mut images, BUSYBOX).await.expect("pull busybox");
    let rt = d.runtime().await;
    (d, rt)
}

async fn writable_layer(rt: &mut Rt, id: &str) -> Option<(u64, u64)> {
    let s = rt
        .container_stats(cri::ContainerStatsRequest {
            container_id: id.into(),
        })
        .await
        .ok()?
        .into_inner()
        .stats?;
    let w = s.writable_layer?;
    Some((w.used_bytes?.value, w.inodes_used?.value))
}

/// `du -s -x` of `dir`: allocated bytes and inodes, as GNU coreutils counts them.
fn du(dir: &Path) -> (u64, u64) {
    let run = |extra: &str| -> u64 {
        let out = Command::new("du")
            .args(["-s", "-x", extra])
            .arg(dir)
            .output()
            .expect("du");
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .expect("a number")
    };
    (run("--block-size=1"), run("--inodes"))
}

#[tokio::test]
async fn du_figures_are_the_writable_layers() {
    require_root!("du_figures_are_the_writable_layers");
    let (d, mut rt) = daemon_with(&["--container-disk-watch-interval", "1s"]).await;
    let pc = pod_config("du", &d.dir.path().join("logs"));
    let pod = run_pod(&mut rt, &pc).await;
    let id = running(
        &mut rt,
        &pod,
        &pc,
        container_config(
            "writer",
            "head -c 3000000 /dev/zero > /big; mkdir -p /d/e; echo x > /d/e/small; \
             ln /big /d/again; echo done; exec sleep 600",
        ),
    )
    .await;
    let upper = d.root.join("containers").join(&id).join("scratch/upper");
    assert!(
        upper.is_dir(),
        "the overlay's writable layer is at {}",
        upper.display()
    );
    // The watcher measures every second; the container writes once and then sleeps.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let want = du(&upper);
        let got = writable_layer(&mut rt, &id).await;
        if got == Some(want) && want.0 >= 3_000_000 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "stats {got:?}, du {want:?} on {}",
            upper.display()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop_remove_pod(&mut rt, &pod).await;
    assert_nothing_left(&d);
}

#[tokio::test]
async fn a_container_over_its_disk_limit_is_killed_with_the_reason() {
    require_root!("a_container_over_its_disk_limit_is_killed_with_the_reason");
    let (d, mut rt) = daemon_with(&[
        "--container-disk-watch-interval",
        "1s",
        "--enforce-container-disk-quota",
    ])
    .await;
    let pc = pod_config("quota", &d.dir.path().join("logs"));
    let pod = run_pod(&mut rt, &pc).await;
    let mut c = container_config(
        "filler",
        "head -c 4000000 /dev/zero > /fill; exec sleep 600",
    );
    c.annotations
        .insert("ucr.io/ephemeral-storage-limit".into(), "2Mi".into());
    let id = running(&mut rt, &pod, &pc, c).await;
    let s = wait_exited(&mut rt, &id, Duration::from_secs(30)).await;
    assert_eq!(s.reason, "DiskQuotaExceeded", "{s:?}");
    assert!(s.message.contains("exceeds quota"), "{}", s.message);
    assert_eq!(s.exit_code, 137, "killed");

    // Within its limit, the same container runs on.
    let mut c = container_config("small", "head -c 100000 /dev/zero > /fill; exec sleep 600");
    c.annotations
        .insert("ucr.io/ephemeral-storage-limit".into(), "2Mi".into());
    let small = running(&mut rt, &pod, &pc, c).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        common::pods::status(&mut rt, &small).await.state,
        cri::ContainerState::ContainerRunning as i32
    );
    // A malformed limit is refused, naming it.
    let mut bad = container_config("bad", "true");
    bad.annotations
        .insert("ucr.io/ephemeral-storage-limit".into(), "lots".into());
    let e = common::pods::create(&mut rt, &pod, &pc, bad)
        .await
        .expect_err("refused");
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert!(e.message().contains("lots"), "{}", e.message());
    stop_remove_pod(&mut rt, &pod).await;
    assert_nothing_left(&d);
}

/// `ucr serve` that is expected to refuse to start: its exit status and output.
fn serve_refused(root: &Path, dir: &Path, args: &[&str]) -> (bool, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ucr"))
        .arg("serve")
        .arg("--root")
        .arg(root)
        .arg("--run-root")
        .arg(dir.join("run"))
        .arg("--listen")
        .arg(dir.join("ucr.sock"))
        .args(["--cgroups-root", "ucr-test-disk-refusal"])
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("ucr serve");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("output");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test]
async fn disk_xfs_refuses_to_start_where_quotas_cannot_work() {
    require_root!("disk_xfs_refuses_to_start_where_quotas_cannot_work");
    let dir = tempfile::tempdir().expect("tempdir");
    // Not XFS at all.
    let (ok, out) = serve_refused(
        &dir.path().join("root"),
        dir.path(),
        &["--isolation", &xfs_isolation()],
    );
    assert!(!ok, "started: {out}");
    assert!(out.contains("is not on XFS"), "{out}");
    assert!(!dir.path().join("ucr.sock").exists());
    assert!(
        cgroup_dirs("ucr-test-disk-refusal").is_empty(),
        "a daemon that refused to start made cgroups"
    );

    // XFS, on a loop device of our own.
    if Command::new("mkfs.xfs").arg("-V").output().is_err() {
        eprintln!("SKIPPED the XFS half of disk_xfs_refuses_to_start_where_quotas_cannot_work: no mkfs.xfs");
        return;
    }
    let img = dir.path().join("xfs.img");
    std::fs::File::create(&img)
        .and_then(|f| f.set_len(300 << 20))
        .expect("image");
    assert!(Command::new("mkfs.xfs")
        .args(["-q", "-f"])
        .arg(&img)
        .status()
        .expect("mkfs.xfs")
        .success());
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).expect("mnt");
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    // With prjquota where the kernel allows it; this one has no XFS quota code at all.
    let with_quota = Command::new("mount")
        .args(["-o", "loop,prjquota"])
        .arg(&img)
        .arg(&mnt)
        .status()
        .expect("mount")
        .success();
    if !with_quota {
        assert!(Command::new("mount")
            .args(["-o", "loop"])
            .arg(&img)
            .arg(&mnt)
            .status()
            .expect("mount")
            .success());
    }
    let _unmount = Unmount(mnt.clone());
    let (ok, out) = serve_refused(
        &mnt.join("root"),
        dir.path(),
        &["--isolation", &xfs_isolation()],
    );
    if with_quota && ok {
        eprintln!("SKIPPED: this kernel has XFS project quotas; nothing to refuse");
        return;
    }
    assert!(!ok, "started: {out}");
    assert!(
        out.contains("the kernel has no XFS quota support")
            || out.contains("mounted without project quotas"),
        "{out}"
    );
}

/// `--isolation` selects (as Mesos's does): every isolator of ucr's, with disk/xfs for
/// disk/du.
fn xfs_isolation() -> String {
    ucr::config::isolation::KNOWN
        .iter()
        .filter(|n| **n != "disk/du")
        .copied()
        .collect::<Vec<_>>()
        .join(",")
}

#[tokio::test]
async fn isolation_names_what_it_does_not_know() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ok, out) = serve_refused(
        &dir.path().join("root"),
        dir.path(),
        &["--isolation", "disk/du,gpu/nvidia"],
    );
    assert!(!ok, "started: {out}");
    assert!(
        out.contains("gpu/nvidia") && out.contains("--isolation"),
        "{out}"
    );
}
