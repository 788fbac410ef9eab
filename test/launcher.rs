//! The native launcher, through `ucr launch` (the launcher without the daemon), on a real
//! busybox rootfs from the local registry. Needs root (namespaces, mounts); says so and
//! skips otherwise.

mod common;

use std::path::Path;

use common::*;
use ucr::launcher::spec::{LaunchSpec, Mount};

fn spec(rootfs: &Path, script: &str) -> LaunchSpec {
    LaunchSpec {
        hostname: Some("pod-a".into()),
        ..launch_spec(rootfs, script)
    }
}

fn launch(dir: &Path, spec: &LaunchSpec) -> Run {
    capture(&mut ucr_with_spec(dir, "launch", spec))
}

#[tokio::test]
async fn a_process_runs_isolated_in_its_rootfs() {
    require_root!("a_process_runs_isolated_in_its_rootfs");
    let dir = tempfile::tempdir().expect("tempdir");
    let rootfs = busybox_rootfs(dir.path()).await;
    let script = "echo pid=$$; hostname; id -u; id -g; grep CapBnd /proc/self/status; \
                  grep SigIgn /proc/self/status; \
                  ls /dev | tr '\\n' ' '; echo; touch /sys/x 2>/dev/null || echo sys-ro; \
                  echo 1 > /proc/sys/vm/overcommit_memory 2>/dev/null || echo procsys-ro; \
                  test -e /host-marker || echo no-host; pwd";
    std::fs::write("/tmp/ucr-launcher-host-marker", b"x").ok();
    let mut s = spec(&rootfs, script);
    s.process.cwd = "/work/dir".into();
    let r = launch(dir.path(), &s);
    assert_eq!(r.code, Some(0), "stderr: {}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines[0], "pid=1", "PID 1 of its own namespace");
    assert_eq!(lines[1], "pod-a");
    assert_eq!((lines[2], lines[3]), ("0", "0"));
    // Docker's default set, and nothing more.
    assert_eq!(lines[4], "CapBnd:\t00000000a80425fb");
    // SIGPIPE (13, bit 12) must not stay ignored: Rust ignores it in ucr itself.
    let ignored =
        u64::from_str_radix(lines[5].trim_start_matches("SigIgn:\t"), 16).expect("hex mask");
    assert_eq!(
        ignored & (1 << 12),
        0,
        "SIGPIPE is ignored in the container: {}",
        lines[5]
    );
    let lines: Vec<&str> = [&lines[..5], &lines[6..]].concat();
    for dev in [
        "null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "mqueue", "ptmx",
    ] {
        assert!(
            lines[5].split(' ').any(|d| d == dev),
            "/dev/{dev} missing: {}",
            lines[5]
        );
    }
    assert_eq!(
        &lines[6..],
        ["sys-ro", "procsys-ro", "no-host", "/work/dir"]
    );
    assert!(
        rootfs.join("work/dir").is_dir(),
        "working dir created in the rootfs"
    );
    assert_eq!(mounts_under(&rootfs), 0, "no mount outlives the container");
}

#[tokio::test]
async fn user_exit_codes_mounts_and_errors() {
    require_root!("user_exit_codes_mounts_and_errors");
    let dir = tempfile::tempdir().expect("tempdir");
    let rootfs = busybox_rootfs(dir.path()).await;

    // A user, its groups, capabilities cleared for non-root, no_new_privs.
    let mut s = spec(
        &rootfs,
        "id -u; id -g; id -G; grep -E 'CapEff|NoNewPrivs' /proc/self/status",
    );
    s.process.uid = 1000;
    s.process.gid = 1000;
    s.process.additional_gids = vec![10, 1000];
    s.process.no_new_privs = true;
    let r = launch(dir.path(), &s);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(
        r.stdout,
        "1000\n1000\n1000 10\nCapEff:\t0000000000000000\nNoNewPrivs:\t1\n"
    );

    // Exit codes and signals come back.
    assert_eq!(launch(dir.path(), &spec(&rootfs, "exit 7")).code, Some(7));
    // (PID 1 of a namespace ignores SIGKILL sent from inside it, so this one shares ours.)
    let mut s = spec(&rootfs, "kill -9 $$");
    s.new_pid_namespace = false;
    assert_eq!(launch(dir.path(), &s).code, Some(128 + 9));

    // Bind mounts, read-only ones refuse writes.
    let data = dir.path().join("data");
    std::fs::create_dir(&data).expect("data dir");
    std::fs::write(data.join("in"), b"from host").expect("file");
    let mut s = spec(
        &rootfs,
        "cat /mnt/data/in; echo x > /mnt/data/out 2>/dev/null || echo ro",
    );
    s.mounts.push(Mount {
        source: data.clone(),
        destination: "/mnt/data".into(),
        readonly: true,
        propagation: Default::default(),
    });
    let r = launch(dir.path(), &s);
    assert_eq!(r.stdout, "from hostro\n", "{}", r.stderr);
    assert!(!data.join("out").exists());

    // A mount target through a symlink in the image follows it inside the rootfs:
    // `/evil -> /etc` means the image's own /etc, never the host's.
    std::os::unix::fs::symlink("/etc", rootfs.join("evil")).expect("symlink");
    let mut s = spec(&rootfs, "cat /etc/ucr-evil/in");
    s.mounts.push(Mount {
        source: data.clone(),
        destination: "/evil/ucr-evil".into(),
        readonly: false,
        propagation: Default::default(),
    });
    let r = launch(dir.path(), &s);
    assert_eq!(r.stdout, "from host", "{}", r.stderr);
    assert!(rootfs.join("etc/ucr-evil").is_dir());
    assert!(!Path::new("/etc/ucr-evil").exists());

    // A program other than argv[0] (Mesos: `value` run with `arguments` as argv): busybox,
    // exec'd as /bin/sh, sees the argv[0] it was given and says it has no such applet.
    let mut s = spec(&rootfs, "");
    s.process.executable = Some("/bin/sh".into());
    s.process.args = vec!["my-argv0".into(), "-c".into(), "echo hi".into()];
    let r = launch(dir.path(), &s);
    assert!(
        r.stderr.contains("my-argv0: applet not found"),
        "{}",
        r.stderr
    );

    // A missing program: runc's message, exit 127.
    let mut s = spec(&rootfs, "");
    s.process.args = vec!["no-such-program".into()];
    let r = launch(dir.path(), &s);
    assert_eq!(r.code, Some(127));
    assert!(
        r.stderr.contains("executable file not found in $PATH"),
        "{}",
        r.stderr
    );
    assert_eq!(mounts_under(&rootfs), 0);
    assert_eq!(mounts_under(&data), 0);
}

/// The node's cgroup2 mount, if it has one (`/sys/fs/cgroup/unified` on a hybrid node).
fn cgroup2_mount() -> Option<std::path::PathBuf> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .ok()?
        .lines()
        .find_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let mut f = left.split(' ');
            let root = f.nth(3)?;
            let point = f.next()?;
            (right.starts_with("cgroup2 ") && root == "/").then(|| std::path::PathBuf::from(point))
        })
}

#[tokio::test]
async fn a_process_is_cloned_straight_into_its_cgroup_v2() {
    require_root!("a_process_is_cloned_straight_into_its_cgroup_v2");
    let Some(mount) = cgroup2_mount() else {
        eprintln!("SKIPPED a_process_is_cloned_straight_into_its_cgroup_v2: no cgroup2 mount");
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let rootfs = busybox_rootfs(dir.path()).await;
    let name = format!(
        "ucr-launch-{}",
        dir.path().file_name().unwrap_or_default().to_string_lossy()
    );
    let cgroup = mount.join(&name);
    std::fs::create_dir(&cgroup).expect("make a cgroup2 cgroup");
    struct Remove(std::path::PathBuf);
    impl Drop for Remove {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir(&self.0);
        }
    }
    let _remove = Remove(cgroup.clone());
    // Its first instruction already runs in the cgroup: /proc/self/cgroup says so before
    // anything could have moved it.
    let mut s = spec(&rootfs, "grep '^0::' /proc/self/cgroup");
    s.clone_into_cgroup = Some(cgroup.clone());
    let r = launch(dir.path(), &s);
    assert_eq!(r.code, Some(0), "stderr: {}", r.stderr);
    assert_eq!(r.stdout.trim(), format!("0::/{name}"));

    // A cgroup that is not there: the launch fails and says which.
    let mut s = spec(&rootfs, "true");
    s.clone_into_cgroup = Some(mount.join("ucr-no-such-cgroup"));
    let r = launch(dir.path(), &s);
    assert_ne!(r.code, Some(0));
    assert!(r.stderr.contains("ucr-no-such-cgroup"), "{}", r.stderr);
}
