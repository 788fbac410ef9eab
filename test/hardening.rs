//! What a hostile or careless client, or another user of the node, could do, end to end
//! against the real daemon: read its state, reach a process through a reused pid, take
//! a failure to start a command for its exit code, crash it with huge timeouts, smuggle
//! keys into `CNI_ARGS` through names, or plant a symlink where it writes a log. Needs
//! root; says so and skips otherwise.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::pods::{
    assert_nothing_left, container_config, create, daemon, exec_ok, list_pods, pod_config, run_pod,
    running, status, stop_remove_pod, wait_exited, Rt,
};
use common::*;
use k8s_cri::v1 as cri;
use tonic::Code;

const SECRET: &str = "hunter2-ucr-test-secret";

/// Runs `args` as `nobody` (uid and gid 65534, no supplementary groups); its stdout and
/// whether it succeeded.
fn as_nobody(args: &[&str]) -> (String, bool) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .uid(65534)
        .gid(65534)
        .output()
        .expect("run as nobody");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        out.status.success(),
    )
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).expect("lstat").mode() & 0o7777
}

#[tokio::test]
async fn nobody_on_the_host_reads_no_state() {
    require_root!("nobody_on_the_host_reads_no_state");
    // An install left by an older version: everything world-readable.
    let dir = tempfile::Builder::new()
        .prefix("ucr-test-")
        .tempdir()
        .expect("tempdir");
    // The test's own directory must not be what keeps others out.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let root = dir.path().join("root");
    for d in ["containers", "images"] {
        std::fs::create_dir_all(root.join(d)).expect("old dirs");
        std::fs::set_permissions(root.join(d), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
    }
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let d = Daemon::start_at(dir, root, &[]);
    let mut images = d.images().await;
    pull(&mut images, common::pods::BUSYBOX)
        .await
        .expect("pull");
    let mut rt = d.runtime().await;
    let pc = pod_config("secrets", &d.dir.path().join("logs"));
    let pod = run_pod(&mut rt, &pc).await;
    let mut c = container_config("app", "exec sleep 60");
    c.envs = vec![cri::KeyValue {
        key: "DB_PASSWORD".into(),
        value: SECRET.into(),
    }];
    let id = running(&mut rt, &pod, &pc, c).await;
    let _ = exec_ok(&mut rt, &id, &["true"]).await;

    let roots = [d.root.clone(), d.run_root()];
    // Root finds the secret in the state (so the search below can fail)...
    let found = Command::new("grep")
        .args(["-rlsI", SECRET])
        .args(&roots)
        .output()
        .expect("grep");
    assert!(
        !found.stdout.is_empty(),
        "the secret is not in the state at all"
    );
    // ...nobody finds nothing, and cannot even list what is below the roots.
    let mut args = vec!["grep", "-rls", SECRET];
    let root_strs: Vec<String> = roots.iter().map(|r| r.display().to_string()).collect();
    args.extend(root_strs.iter().map(String::as_str));
    let (out, _) = as_nobody(&args);
    assert_eq!(out, "", "nobody read the secret in these files");
    for r in &roots {
        assert_eq!(mode(r), 0o711, "{}", r.display());
        let (_, listed) = as_nobody(&["ls", &r.display().to_string()]);
        assert!(!listed, "nobody listed {}", r.display());
    }
    // Every directory below the roots is closed, every file is unreadable to others:
    // a walk by root, with each entry checked as nobody would meet it.
    let mut open: Vec<String> = Vec::new();
    for r in &roots {
        for entry in std::fs::read_dir(r).expect("list root").flatten() {
            let p = entry.path();
            let m = mode(&p);
            let kind = entry.file_type().expect("type");
            if (kind.is_dir() && m & 0o007 != 0) || (kind.is_file() && m & 0o044 != 0) {
                open.push(format!("{} {m:o}", p.display()));
            }
        }
    }
    assert!(open.is_empty(), "readable by others: {open:?}");
    for p in [
        d.root.join("containers"),
        d.root.join("images"),
        d.root.join("containers").join(&id),
        d.run_root().join("containers").join(&id),
    ] {
        assert_eq!(mode(&p), 0o700, "{}", p.display());
    }
    for f in [
        d.root.join("containerizer.redb"),
        d.root.join("images/meta.redb"),
        d.run_root()
            .join("containers")
            .join(&id)
            .join("monitor.json"),
    ] {
        assert_eq!(mode(&f), 0o600, "{}", f.display());
    }
    stop_remove_pod(&mut rt, &pod).await;
    assert_nothing_left(&d);
}

/// `(pid, start time)` the bundle's `pid` file records.
fn recorded(bundle: &Path) -> (i32, u64) {
    let text = std::fs::read_to_string(bundle.join("pid")).expect("pid file");
    let mut f = text.split_whitespace();
    let pid = f.next().and_then(|p| p.parse().ok()).expect("pid");
    let start = f.next().and_then(|p| p.parse().ok()).expect("start time");
    (pid, start)
}

#[tokio::test]
async fn a_reused_pid_is_never_entered_or_signalled() {
    require_root!("a_reused_pid_is_never_entered_or_signalled");
    let (mut d, mut rt) = daemon().await;
    let pc = pod_config("reused-pid", &d.dir.path().join("logs"));
    let pod = run_pod(&mut rt, &pc).await;
    let id = running(
        &mut rt,
        &pod,
        &pc,
        container_config("victim", "exec sleep 300"),
    )
    .await;
    let bundle = d.run_root().join("containers").join(&id);
    let (real_pid, start_time) = recorded(&bundle);

    // While the daemon is down, the recorded pid comes to name a host process: what the
    // kernel does with a pid once its process has been reaped. Simulated by pointing the
    // record at a host `sleep`, keeping the container's start time.
    d.kill9();
    let mut host = Command::new("sleep")
        .arg("300")
        .spawn()
        .expect("host sleep");
    std::fs::write(bundle.join("pid"), format!("{} {start_time}\n", host.id())).expect("pid");
    d.restart();
    let mut rt = d.runtime().await;

    let marker = std::env::temp_dir().join(format!("ucr-reused-pid-{}", std::process::id()));
    let e = rt
        .exec_sync(cri::ExecSyncRequest {
            container_id: id.clone(),
            cmd: vec!["touch".into(), marker.display().to_string()],
            timeout: 10,
        })
        .await
        .expect_err("entered the host process");
    assert_eq!(e.code(), Code::FailedPrecondition, "{}", e.message());
    assert!(e.message().contains("not running"), "{}", e.message());
    assert!(!marker.exists(), "the command ran in the host's namespaces");
    // StopContainer signals the recorded process only: the host one lives on.
    rt.stop_container(cri::StopContainerRequest {
        container_id: id.clone(),
        timeout: 0,
    })
    .await
    .expect("StopContainer");
    assert!(
        host.try_wait().expect("try_wait").is_none(),
        "the host process was killed"
    );
    host.kill().expect("kill");
    host.wait().expect("wait");

    // The stop ended the real container all the same: every process in the container's
    // cgroup goes, whatever its pid record says (and only those: the host process above
    // lived on). Its monitor records the end; removal leaves nothing.
    let deadline = Instant::now() + Duration::from_secs(10);
    while nix::sys::signal::kill(nix::unistd::Pid::from_raw(real_pid), None).is_ok() {
        assert!(Instant::now() < deadline, "the real container still runs");
        std::thread::sleep(Duration::from_millis(20));
    }
    wait_exited(&mut rt, &id, Duration::from_secs(20)).await;
    stop_remove_pod(&mut rt, &pod).await;
    assert_nothing_left(&d);
}

/// ExecSync as kubelet sends it.
async fn exec(
    rt: &mut Rt,
    id: &str,
    cmd: &[&str],
    timeout: i64,
) -> Result<cri::ExecSyncResponse, tonic::Status> {
    rt.exec_sync(cri::ExecSyncRequest {
        container_id: id.into(),
        cmd: cmd.iter().map(|s| s.to_string()).collect(),
        timeout,
    })
    .await
    .map(|r| r.into_inner())
}

#[tokio::test]
async fn exec_failures_are_errors_and_exit_codes_are_the_commands() {
    require_root!("exec_failures_are_errors_and_exit_codes_are_the_commands");
    let (d, mut rt) = daemon().await;
    let pc = pod_config("exec-codes", &d.dir.path().join("logs"));
    let pod = run_pod(&mut rt, &pc).await;
    let id = running(
        &mut rt,
        &pod,
        &pc,
        container_config("app", "exec sleep 300"),
    )
    .await;

    // The command's own 255 and 127 are exit codes.
    for code in [255, 127, 3] {
        let r = exec(&mut rt, &id, &["sh", "-c", &format!("exit {code}")], 10)
            .await
            .expect("ExecSync");
        assert_eq!(r.exit_code, code);
    }
    // A command that cannot start is an error naming why.
    let e = exec(&mut rt, &id, &["no-such-program"], 10)
        .await
        .expect_err("not found");
    assert_eq!(e.code(), Code::NotFound, "{}", e.message());
    assert!(
        e.message()
            .contains(r#"exec: "no-such-program": executable file not found in $PATH"#),
        "{}",
        e.message()
    );
    let e = exec(&mut rt, &id, &["/etc/passwd"], 10)
        .await
        .expect_err("not executable");
    assert_eq!(e.code(), Code::FailedPrecondition, "{}", e.message());

    // Huge timeouts are clamped, not a panic: the calls answer and the daemon lives on.
    let r = exec(&mut rt, &id, &["echo", "patient"], i64::MAX)
        .await
        .expect("ExecSync with i64::MAX");
    assert_eq!(String::from_utf8_lossy(&r.stdout), "patient\n");
    let r = exec(&mut rt, &id, &["echo", "negative"], i64::MIN)
        .await
        .expect("ExecSync with i64::MIN");
    assert_eq!(r.exit_code, 0);
    let polite = running(
        &mut rt,
        &pod,
        &pc,
        container_config(
            "polite",
            "trap 'exit 0' TERM; while true; do sleep 0.1; done",
        ),
    )
    .await;
    let t = Instant::now();
    rt.stop_container(cri::StopContainerRequest {
        container_id: polite.clone(),
        timeout: i64::MAX,
    })
    .await
    .expect("StopContainer with i64::MAX");
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "stop took {:?}",
        t.elapsed()
    );
    assert_eq!(status(&mut rt, &polite).await.exit_code, 0);

    // Once the container has ended, ExecSync is refused, not an exit code.
    rt.stop_container(cri::StopContainerRequest {
        container_id: id.clone(),
        timeout: i64::MIN,
    })
    .await
    .expect("StopContainer with i64::MIN");
    let e = exec(&mut rt, &id, &["true"], 10).await.expect_err("exited");
    assert_eq!(e.code(), Code::FailedPrecondition, "{}", e.message());
    stop_remove_pod(&mut rt, &pod).await;
    assert!(
        d.logs().find("panicked").is_none(),
        "the daemon panicked:\n{}",
        d.logs()
    );
    assert_nothing_left(&d);
}

#[tokio::test]
async fn names_that_could_smuggle_keys_or_paths_are_refused() {
    require_root!("names_that_could_smuggle_keys_or_paths_are_refused");
    let (d, mut rt) = daemon().await;
    let logs = d.dir.path().join("logs");
    let long = "a".repeat(300);
    for (field, bad) in [
        ("name", "web;K8S_POD_NAMESPACE=kube-system"),
        ("name", "a=b"),
        ("name", "../../etc"),
        ("name", long.as_str()),
        ("namespace", "default;x"),
        ("namespace", "a/b"),
        ("uid", "1;2"),
    ] {
        let mut pc = pod_config("good", &logs);
        let m = pc.metadata.as_mut().expect("metadata");
        match field {
            "name" => m.name = bad.into(),
            "namespace" => m.namespace = bad.into(),
            _ => m.uid = bad.into(),
        }
        let e = rt
            .run_pod_sandbox(cri::RunPodSandboxRequest {
                config: Some(pc),
                runtime_handler: String::new(),
            })
            .await
            .expect_err(bad);
        assert_eq!(e.code(), Code::InvalidArgument, "{bad}: {}", e.message());
        assert!(
            e.message().starts_with(&format!("metadata.{field}")),
            "{bad}: {}",
            e.message()
        );
    }
    assert!(list_pods(&mut rt, Default::default()).await.is_empty());
    let pc = pod_config("good", &logs);
    let pod = run_pod(&mut rt, &pc).await;
    for bad in ["c;d", "c=d", "c/d", long.as_str()] {
        let e = create(&mut rt, &pod, &pc, container_config(bad, "true"))
            .await
            .expect_err(bad);
        assert_eq!(e.code(), Code::InvalidArgument, "{bad}: {}", e.message());
        assert!(e.message().starts_with("metadata.name"), "{}", e.message());
    }
    stop_remove_pod(&mut rt, &pod).await;
    assert_nothing_left(&d);
}

#[tokio::test]
async fn a_symlink_planted_in_the_log_directory_is_not_followed() {
    require_root!("a_symlink_planted_in_the_log_directory_is_not_followed");
    let (d, mut rt) = daemon().await;
    let logs = d.dir.path().join("logs");
    let pc = pod_config("log-links", &logs);
    let pod = run_pod(&mut rt, &pc).await;
    let victim = d.dir.path().join("victim");
    std::fs::write(&victim, "precious\n").expect("victim");
    let elsewhere = d.dir.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).expect("elsewhere");
    std::fs::create_dir_all(&logs).expect("logs");
    // What a container seeing the log directory through a volume could plant: the log
    // file itself, or a directory on its way.
    std::os::unix::fs::symlink(&victim, logs.join("file.log")).expect("symlink");
    std::os::unix::fs::symlink(&elsewhere, logs.join("dir")).expect("symlink");
    for (name, log_path) in [("file", "file.log"), ("dir", "dir/0.log")] {
        let mut c = container_config(name, "echo written");
        c.log_path = log_path.into();
        let id = create(&mut rt, &pod, &pc, c).await.expect("create");
        let e = rt
            .start_container(cri::StartContainerRequest {
                container_id: id.clone(),
            })
            .await
            .expect_err(log_path);
        assert!(
            e.message().contains("symbolic links") || e.message().contains("Not a directory"),
            "{log_path}: {}",
            e.message()
        );
    }
    assert_eq!(
        std::fs::read_to_string(&victim).expect("victim"),
        "precious\n"
    );
    assert_eq!(std::fs::read_dir(&elsewhere).expect("list").count(), 0);
    stop_remove_pod(&mut rt, &pod).await;
    assert_nothing_left(&d);
}
