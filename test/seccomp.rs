//! `linux/seccomp` end to end over the CRI: RuntimeDefault, unconfined and Localhost
//! profiles as a container and its ExecSync'd commands see them, refused profiles,
//! privileged containers, `--seccomp-default`, io_uring. Needs root; says so and skips
//! otherwise.

mod common;

use common::pods::{
    assert_nothing_left, container_config, create, daemon, exec_ok, kubelet_namespaces, pod_config,
    run_pod, running, stdout_lines, stop_remove_pod, Rt, BUSYBOX,
};
use common::*;
use k8s_cri::v1 as cri;
use tonic::Code;

const DEBIAN: &str = "127.0.0.1:5000/ucr-test/debian:bookworm";

/// `c` with the security context `sc` (PID per container unless `sc` says otherwise).
fn with_context(
    mut c: cri::ContainerConfig,
    mut sc: cri::LinuxContainerSecurityContext,
) -> cri::ContainerConfig {
    if sc.namespace_options.is_none() {
        sc.namespace_options = kubelet_namespaces();
    }
    c.linux = Some(cri::LinuxContainerConfig {
        security_context: Some(sc),
        ..Default::default()
    });
    c
}

/// A security context asking for `profile` the current way (`SecurityProfile`), with
/// capabilities `add`.
fn asking(
    kind: cri::security_profile::ProfileType,
    reference: &str,
    add: &[&str],
) -> cri::LinuxContainerSecurityContext {
    cri::LinuxContainerSecurityContext {
        seccomp: Some(cri::SecurityProfile {
            profile_type: kind as i32,
            localhost_ref: reference.into(),
        }),
        capabilities: Some(cri::Capability {
            add_capabilities: add.iter().map(|c| c.to_string()).collect(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The same with the deprecated string (`runtime/default`, `localhost/<path>`…).
#[allow(deprecated)]
fn asking_by_path(path: &str) -> cri::LinuxContainerSecurityContext {
    cri::LinuxContainerSecurityContext {
        seccomp_profile_path: path.into(),
        ..Default::default()
    }
}

/// A sleeping container that first writes its own seccomp status lines to its log.
fn sleeper(name: &str, sc: cri::LinuxContainerSecurityContext) -> cri::ContainerConfig {
    with_context(
        container_config(name, "grep Seccomp /proc/self/status; exec sleep 1000"),
        sc,
    )
}

/// ExecSync that may fail: exit code, stdout, stderr.
async fn exec(rt: &mut Rt, id: &str, cmd: &[&str]) -> (i32, String, String) {
    let out = rt
        .exec_sync(cri::ExecSyncRequest {
            container_id: id.into(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            timeout: 20,
        })
        .await
        .expect("ExecSync")
        .into_inner();
    (
        out.exit_code,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `Seccomp:` and `Seccomp_filters:` of `/proc/self/status` as an exec'd command sees it.
async fn exec_seccomp(rt: &mut Rt, id: &str) -> String {
    exec_ok(rt, id, &["grep", "Seccomp", "/proc/self/status"]).await
}

/// The container's own first lines (its `grep Seccomp`), once they are there.
async fn logged_seccomp(pc: &cri::PodSandboxConfig, name: &str) -> String {
    let log = std::path::Path::new(&pc.log_directory).join(format!("{name}.log"));
    for _ in 0..100 {
        let lines = stdout_lines(&log);
        if lines.len() >= 2 {
            return lines.join("\n") + "\n";
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("no seccomp lines in {}", log.display());
}

const FILTERED: &str = "Seccomp:\t2\nSeccomp_filters:\t1\n";
const UNCONFINED: &str = "Seccomp:\t0\nSeccomp_filters:\t0\n";

#[tokio::test]
async fn runtime_default_confines_a_container_and_what_is_exec_d_into_it() {
    require_root!("runtime_default_confines_a_container_and_what_is_exec_d_into_it");
    use cri::security_profile::ProfileType;
    let (d, mut rt) = daemon().await;
    let pc = pod_config("seccomp-default", &d.dir.path().join("logs"));
    let pod = run_pod(&mut rt, &pc).await;

    let confined = running(
        &mut rt,
        &pod,
        &pc,
        sleeper("confined", asking(ProfileType::RuntimeDefault, "", &[])),
    )
    .await;
    assert_eq!(
        logged_seccomp(&pc, "confined").await,
        FILTERED,
        "the container's own process"
    );
    assert_eq!(
        exec_seccomp(&mut rt, &confined).await,
        FILTERED,
        "an ExecSync'd command"
    );
    // A user namespace needs no capability, so only the filter can refuse it.
    let (code, _, err) = exec(&mut rt, &confined, &["unshare", "-U", "true"]).await;
    assert_ne!(code, 0);
    assert!(err.contains("Operation not permitted"), "{err}");
    // The ordinary things work.
    exec_ok(
        &mut rt,
        &confined,
        &[
            "sh",
            "-c",
            "mkdir /tmp/d && echo x > /tmp/d/f && cat /tmp/d/f",
        ],
    )
    .await;

    // The filter's two places (see `launcher::identity`): first, before the user and
    // capability changes, without no_new_privs; last, right before exec, with it. Either
    // way a non-root container and its execs end up under it.
    for (name, nnp) in [("user", false), ("user-nnp", true)] {
        let mut sc = asking(ProfileType::RuntimeDefault, "", &[]);
        sc.run_as_user = Some(cri::Int64Value { value: 1000 });
        sc.no_new_privs = nnp;
        let c = running(&mut rt, &pod, &pc, sleeper(name, sc)).await;
        assert_eq!(logged_seccomp(&pc, name).await, FILTERED, "{name}");
        assert_eq!(exec_seccomp(&mut rt, &c).await, FILTERED, "{name}");
        let nnp_line = exec_ok(&mut rt, &c, &["grep", "NoNewPrivs", "/proc/self/status"]).await;
        assert_eq!(nnp_line, format!("NoNewPrivs:\t{}\n", nnp as u8), "{name}");
        assert_eq!(
            exec_ok(&mut rt, &c, &["id", "-u"]).await,
            "1000\n",
            "{name}"
        );
        let (code, _, err) = exec(&mut rt, &c, &["unshare", "-U", "true"]).await;
        assert!(
            code != 0 && err.contains("Operation not permitted"),
            "{name}: {err}"
        );
    }

    // The same, unconfined: the user namespace is made.
    let free = running(
        &mut rt,
        &pod,
        &pc,
        sleeper("free", asking_by_path("unconfined")),
    )
    .await;
    assert_eq!(logged_seccomp(&pc, "free").await, UNCONFINED);
    assert_eq!(exec_seccomp(&mut rt, &free).await, UNCONFINED);
    exec_ok(&mut rt, &free, &["unshare", "-U", "true"]).await;

    // With CAP_SYS_ADMIN, RuntimeDefault lets the container mount and set its hostname
    // as Docker's does, but pivot_root stays refused whatever the capabilities.
    for (name, sc) in [
        (
            "admin",
            asking(ProfileType::RuntimeDefault, "", &["SYS_ADMIN"]),
        ),
        ("admin-legacy", {
            let mut sc = asking_by_path("docker/default");
            sc.capabilities = Some(cri::Capability {
                add_capabilities: vec!["SYS_ADMIN".into()],
                ..Default::default()
            });
            sc
        }),
    ] {
        let admin = running(&mut rt, &pod, &pc, sleeper(name, sc)).await;
        assert_eq!(exec_seccomp(&mut rt, &admin).await, FILTERED, "{name}");
        exec_ok(&mut rt, &admin, &["mount", "-t", "tmpfs", "tmpfs", "/tmp"]).await;
        exec_ok(&mut rt, &admin, &["hostname", "renamed"]).await;
        let (code, _, err) = exec(&mut rt, &admin, &["pivot_root", "/", "/tmp"]).await;
        assert_ne!(code, 0);
        assert!(err.contains("Operation not permitted"), "{name}: {err}");
    }
    // Unconfined with CAP_SYS_ADMIN, the kernel itself answers pivot_root (not EPERM).
    let free_admin = running(
        &mut rt,
        &pod,
        &pc,
        sleeper(
            "free-admin",
            asking(ProfileType::Unconfined, "", &["SYS_ADMIN"]),
        ),
    )
    .await;
    let (code, _, err) = exec(&mut rt, &free_admin, &["pivot_root", "/", "/tmp"]).await;
    assert_ne!(code, 0);
    assert!(!err.contains("Operation not permitted"), "{err}");

    // Without SYS_ADMIN, the default profile refuses sethostname (critest's check).
    let (code, _, err) = exec(&mut rt, &confined, &["hostname", "renamed"]).await;
    assert_ne!(code, 0);
    assert!(err.contains("Operation not permitted"), "{err}");

    stop_remove_pod(&mut rt, &pod).await;
    assert_nothing_left(&d);
}

/// A profile blocking mkdir with its own errno (ENOSPC), below the profile root.
const BLOCK_MKDIR: &str = r#"{
    "defaultAction": "SCMP_ACT_ALLOW",
    "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 28}
    ]
}"#;

/// critest's: chmod refused with EPERM.
const BLOCK_CHMOD: &str = r#"{
    "defaultAction": "SCMP_ACT_ALLOW",
    "syscalls": [{"names": ["chmod", "fchmodat", "fchmodat2"], "action": "SCMP_ACT_ERRNO"}]
}"#;

#[tokio::test]
async fn localhost_profiles_and_the_ones_refused() {
    require_root!("localhost_profiles_and_the_ones_refused");
    let profiles = tempfile::tempdir().expect("tempdir");
    let root = profiles.path().join("seccomp");
    std::fs::create_dir_all(root.join("team")).expect("mkdir");
    std::fs::write(root.join("team/block-mkdir.json"), BLOCK_MKDIR).expect("write");
    let chmod = profiles.path().join("block-chmod.json");
    std::fs::write(&chmod, BLOCK_CHMOD).expect("write");
    std::fs::write(root.join("broken.json"), r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_SOMETIMES"}]}"#).expect("write");
    std::fs::write(root.join("no-default.json"), r#"{"syscalls": []}"#).expect("write");

    let d = Daemon::start(&["--seccomp-profile-root", root.to_str().expect("utf8")]);
    pull(&mut d.images().await, BUSYBOX)
        .await
        .expect("pull busybox");
    let mut rt = d.runtime().await;
    let pc = pod_config("seccomp-local", &d.dir.path().join("logs"));
    let pod = run_pod(&mut rt, &pc).await;
    use cri::security_profile::ProfileType::Localhost;

    // Relative to the root, with its own errno: mkdir fails with it, the rest works.
    let c = running(
        &mut rt,
        &pod,
        &pc,
        sleeper("mkdir", asking(Localhost, "team/block-mkdir.json", &[])),
    )
    .await;
    assert_eq!(logged_seccomp(&pc, "mkdir").await, FILTERED);
    let (code, _, err) = exec(&mut rt, &c, &["mkdir", "/tmp/d"]).await;
    assert_ne!(code, 0);
    assert!(err.contains("No space left on device"), "{err}");
    exec_ok(&mut rt, &c, &["sh", "-c", "touch /tmp/f && ls /tmp"]).await;

    // Absolute, by the deprecated string, as critest asks: chmod fails with EPERM.
    let path = format!("localhost/{}", chmod.display());
    let c = running(&mut rt, &pod, &pc, sleeper("chmod", asking_by_path(&path))).await;
    let (code, _, err) = exec(&mut rt, &c, &["chmod", "400", "/"]).await;
    assert_ne!(code, 0);
    assert!(err.contains("Operation not permitted"), "{err}");

    // Privileged: unconfined whatever is asked, as containerd does.
    let mut sc = asking(Localhost, "team/block-mkdir.json", &[]);
    sc.privileged = true;
    let p = running(&mut rt, &pod, &pc, sleeper("privileged", sc)).await;
    assert_eq!(logged_seccomp(&pc, "privileged").await, UNCONFINED);
    exec_ok(&mut rt, &p, &["mkdir", "/tmp/d"]).await;
    let mut sc = asking_by_path("runtime/default");
    sc.privileged = true;
    let p = running(&mut rt, &pod, &pc, sleeper("privileged-default", sc)).await;
    assert_eq!(exec_seccomp(&mut rt, &p).await, UNCONFINED);

    // Refused profiles: InvalidArgument naming the file and what is wrong; nothing made.
    let before = list_containers(&mut rt).await;
    let refused = [
        (
            asking(Localhost, "team/missing.json", &[]),
            vec![
                root.join("team/missing.json").display().to_string(),
                "No such file or directory".into(),
            ],
        ),
        (
            asking(Localhost, "broken.json", &[]),
            vec![
                root.join("broken.json").display().to_string(),
                "unknown variant `SCMP_ACT_SOMETIMES`".into(),
                "line 1 column".into(),
            ],
        ),
        (
            asking(Localhost, "no-default.json", &[]),
            vec![
                root.join("no-default.json").display().to_string(),
                "defaultAction: is missing".into(),
            ],
        ),
        (
            asking(Localhost, "../block-chmod.json", &[]),
            vec![
                "\"../block-chmod.json\"".into(),
                "leads out of the profile root".into(),
            ],
        ),
        // critest: a path without `localhost/`.
        (
            asking_by_path(&chmod.display().to_string()),
            vec![
                format!("{:?}", chmod.display().to_string()),
                "localhost/<path>".into(),
            ],
        ),
    ];
    for (i, (sc, says)) in refused.into_iter().enumerate() {
        let e = create(&mut rt, &pod, &pc, sleeper(&format!("refused-{i}"), sc))
            .await
            .expect_err("refused");
        assert_eq!(e.code(), Code::InvalidArgument, "{}", e.message());
        for s in says {
            assert!(e.message().contains(&s), "{:?} lacks {s:?}", e.message());
        }
    }
    assert_eq!(
        list_containers(&mut rt).await,
        before,
        "a refused container left a record"
    );

    stop_remove_pod(&mut rt, &pod).await;
    assert_nothing_left(&d);
}

async fn list_containers(rt: &mut Rt) -> Vec<String> {
    let mut ids = common::pods::list_containers(rt, cri::ContainerFilter::default()).await;
    ids.sort();
    ids
}

#[tokio::test]
async fn seccomp_default_confines_containers_that_ask_for_nothing() {
    require_root!("seccomp_default_confines_containers_that_ask_for_nothing");
    let d = Daemon::start(&["--seccomp-default"]);
    pull(&mut d.images().await, BUSYBOX)
        .await
        .expect("pull busybox");
    let mut rt = d.runtime().await;
    let pc = pod_config("seccomp-flag", &d.dir.path().join("logs"));
    let pod = run_pod(&mut rt, &pc).await;
    let c = running(
        &mut rt,
        &pod,
        &pc,
        sleeper("nothing-asked", Default::default()),
    )
    .await;
    assert_eq!(logged_seccomp(&pc, "nothing-asked").await, FILTERED);
    assert_eq!(exec_seccomp(&mut rt, &c).await, FILTERED);
    // Asking for unconfined still gets it.
    let free = running(
        &mut rt,
        &pod,
        &pc,
        sleeper("unconfined", asking_by_path("unconfined")),
    )
    .await;
    assert_eq!(exec_seccomp(&mut rt, &free).await, UNCONFINED);
    stop_remove_pod(&mut rt, &pod).await;
    assert_nothing_left(&d);
}

/// io_uring_setup(1, NULL) from perl in the Debian test image: the filter answers
/// EPERM (1); without one the kernel looks at the NULL and answers EFAULT (14).
#[tokio::test]
async fn io_uring_is_refused_under_runtime_default() {
    require_root!("io_uring_is_refused_under_runtime_default");
    let disabled =
        std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled").unwrap_or_default();
    if disabled.trim() != "0" && !disabled.is_empty() {
        eprintln!(
            "skipped: kernel.io_uring_disabled is {}, so io_uring fails with or without a filter",
            disabled.trim()
        );
        return;
    }
    let (d, mut rt) = daemon().await;
    pull(&mut d.images().await, DEBIAN)
        .await
        .expect("pull debian");
    let pc = pod_config("seccomp-uring", &d.dir.path().join("logs"));
    let pod = run_pod(&mut rt, &pc).await;
    let perl = "syscall(425, 1, 0); print $!+0";
    for (name, sc, errno) in [
        ("uring-default", asking_by_path("runtime/default"), "1"),
        ("uring-free", asking_by_path("unconfined"), "14"),
    ] {
        let mut c = sleeper(name, sc);
        c.image = spec(DEBIAN);
        let id = running(&mut rt, &pod, &pc, c).await;
        let got = exec_ok(&mut rt, &id, &["perl", "-e", perl]).await;
        assert_eq!(got, errno, "{name}");
    }
    stop_remove_pod(&mut rt, &pod).await;
    assert_nothing_left(&d);
}
