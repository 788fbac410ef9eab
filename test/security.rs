//! Namespace modes and the security context, end to end over the CRI: shared, private and
//! host PID namespaces (the pod init), masked and read-only paths, privileged containers.
//! Needs root; says so and skips otherwise.

mod common;

use common::pods::{
    assert_nothing_left, container_config, create, daemon, exec_ok, kubelet_namespaces,
    live_processes, pod_config, pod_status, run_pod, running, stop_remove_pod,
};
use common::*;
use k8s_cri::v1 as cri;
use tonic::Code;

fn with_pid(mut pc: cri::PodSandboxConfig, mode: cri::NamespaceMode) -> cri::PodSandboxConfig {
    pc.linux = Some(cri::LinuxPodSandboxConfig {
        security_context: Some(cri::LinuxSandboxSecurityContext {
            namespace_options: Some(cri::NamespaceOption {
                pid: mode as i32,
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    });
    pc
}

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

fn pid_context(mode: cri::NamespaceMode) -> cri::LinuxContainerSecurityContext {
    cri::LinuxContainerSecurityContext {
        namespace_options: Some(cri::NamespaceOption {
            pid: mode as i32,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The pod inits this daemon's pods record (`<pod dir>/init.pid`) that are still
/// alive (zombies do not count).
fn pod_inits(d: &Daemon) -> Vec<i32> {
    let pods = std::fs::read_dir(d.run_root().join("pods"))
        .into_iter()
        .flatten();
    let live: Vec<String> = live_processes()
        .into_iter()
        .map(|(p, _)| {
            p.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    pods.flatten()
        .filter_map(|pod| std::fs::read_to_string(pod.path().join("init.pid")).ok())
        .filter_map(|t| t.split_whitespace().next()?.parse::<i32>().ok())
        .filter(|pid| live.contains(&pid.to_string()))
        .collect()
}

/// `Key:\tvalue` of `/proc/<pid>/status`.
fn status_field(pid: i32, key: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"))
        .trim()
        .to_string()
}

#[tokio::test]
async fn a_pod_can_share_one_pid_namespace() {
    require_root!("a_pod_can_share_one_pid_namespace");
    let (d, mut rt) = daemon().await;
    let logs = d.dir.path().join("logs-shared");
    // POD is also what a request without namespace options gets (the CRI's zero value).
    let pc = with_pid(pod_config("shared-pid", &logs), cri::NamespaceMode::Pod);
    let pod = run_pod(&mut rt, &pc).await;
    let inits = pod_inits(&d);
    assert_eq!(inits.len(), 1, "one pod init runs");
    let init_pid = inits[0];

    // The init is nobody, as the pause container is: uid and gid 65535, no capability
    // in any set, no_new_privs, not dumpable (its /proc files then belong to root), and
    // its root is an empty directory of its own, not the host's /.
    for key in ["Uid", "Gid"] {
        assert_eq!(
            status_field(init_pid, key),
            "65535\t65535\t65535\t65535",
            "{key}"
        );
    }
    for key in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert_eq!(status_field(init_pid, key), "0000000000000000", "{key}");
    }
    assert_eq!(status_field(init_pid, "NoNewPrivs"), "1");
    use std::os::unix::fs::MetadataExt;
    let owner = std::fs::metadata(format!("/proc/{init_pid}/status")).expect("stat");
    assert_eq!(owner.uid(), 0, "a dumpable process owns its /proc files");
    let root = std::fs::read_dir(format!("/proc/{init_pid}/root")).expect("its root");
    assert_eq!(root.count(), 0, "the init's root holds nothing");
    let mounts = std::fs::read_to_string(format!("/proc/{init_pid}/mountinfo")).expect("mounts");
    assert_eq!(
        mounts.lines().count(),
        1,
        "one mount, its empty root:\n{mounts}"
    );

    let ctx = || pid_context(cri::NamespaceMode::Pod);
    let first = with_context(container_config("first", "exec sleep 1001"), ctx());
    // SYS_PTRACE, as `kubectl debug --profile=general` adds: /proc/1/root is reachable,
    // and shows nothing.
    let mut debug = ctx();
    debug.capabilities = Some(cri::Capability {
        add_capabilities: vec!["SYS_PTRACE".into()],
        ..Default::default()
    });
    let second = with_context(container_config("second", "exec sleep 1002"), debug);
    let _a = running(&mut rt, &pod, &pc, first).await;
    let b = running(&mut rt, &pod, &pc, second).await;

    // PID 1 is our init, and each container sees the other's processes.
    let init = exec_ok(&mut rt, &b, &["cat", "/proc/1/cmdline"]).await;
    assert_eq!(init, format!("ucr-pod-init\0{pod}\0"), "PID 1 is {init:?}");
    let seen = exec_ok(&mut rt, &b, &["ls", "-A", "/proc/1/root/"]).await;
    assert_eq!(seen, "", "the host's / through /proc/1/root");
    let ps = exec_ok(&mut rt, &b, &["ps", "-o", "args"]).await;
    assert!(
        ps.contains("sleep 1001") && ps.contains("sleep 1002"),
        "ps in the second container:\n{ps}"
    );
    let pod_status = pod_status(&mut rt, &pod).await;
    let options = pod_status
        .linux
        .and_then(|l| l.namespaces)
        .and_then(|n| n.options);
    assert_eq!(options.map(|o| o.pid), Some(cri::NamespaceMode::Pod as i32));

    // Stopping the pod ends the init, and with it everything in the namespace.
    rt.stop_pod_sandbox(cri::StopPodSandboxRequest {
        pod_sandbox_id: pod.clone(),
    })
    .await
    .expect("StopPodSandbox");
    assert!(pod_inits(&d).is_empty(), "init left: {:?}", pod_inits(&d));
    let gone = std::fs::read_to_string(format!("/proc/{init_pid}/stat")).unwrap_or_default();
    assert!(
        gone.is_empty() || gone.rsplit(')').next().unwrap_or("").starts_with(" Z"),
        "pod init {init_pid} still running"
    );
    stop_remove_pod(&mut rt, &pod).await;
    assert_nothing_left(&d);
}

#[tokio::test]
async fn private_and_host_pid_namespaces() {
    require_root!("private_and_host_pid_namespaces");
    let (d, mut rt) = daemon().await;
    let logs = d.dir.path().join("logs-pid");
    // What kubelet sends unless the pod shares its process namespace. (The CRI's zero
    // value is POD: a request that says nothing gets the shared namespace.)
    let pc = with_pid(
        pod_config("pid-modes", &logs),
        cri::NamespaceMode::Container,
    );
    let pod = run_pod(&mut rt, &pc).await;
    assert!(
        pod_inits(&d).is_empty(),
        "no init without a shared namespace"
    );

    // The container's own namespace, its command as PID 1.
    let own = with_context(
        container_config("own", "exec sleep 1003"),
        pid_context(cri::NamespaceMode::Container),
    );
    let own = running(&mut rt, &pod, &pc, own).await;
    let one = exec_ok(&mut rt, &own, &["cat", "/proc/1/cmdline"]).await;
    assert_eq!(one.replace('\0', " ").trim(), "sleep 1003");

    // hostPID: this test process is visible from inside.
    let host = with_context(
        container_config("host", "exec sleep 1004"),
        pid_context(cri::NamespaceMode::Node),
    );
    let host = running(&mut rt, &pod, &pc, host).await;
    let me = std::process::id().to_string();
    let seen = exec_ok(&mut rt, &host, &["ls", "/proc"]).await;
    assert!(
        seen.split_whitespace().any(|p| p == me),
        "pid {me} not in the host-PID container's /proc"
    );

    // Asking for the pod's namespace in a pod that has none is the caller's mistake.
    let wrong = with_context(
        container_config("wrong", "sleep 1"),
        pid_context(cri::NamespaceMode::Pod),
    );
    let e = create(&mut rt, &pod, &pc, wrong)
        .await
        .expect_err("no shared namespace to join");
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("shared PID namespace"), "{e:?}");

    stop_remove_pod(&mut rt, &pod).await;
    assert_nothing_left(&d);
}

#[tokio::test]
async fn masked_read_only_and_privileged() {
    require_root!("masked_read_only_and_privileged");
    let (d, mut rt) = daemon().await;
    let logs = d.dir.path().join("logs-sec");
    let pc = pod_config("security", &logs);
    let pod = run_pod(&mut rt, &pc).await;
    let sleep = |name: &str| container_config(name, "exec sleep 1000");
    let mounted = |info: &str, path: &str| info.lines().any(|l| l.split(' ').nth(4) == Some(path));

    // Defaults: kernel paths hidden, /proc/sys and /sys read-only, few devices.
    let plain = running(&mut rt, &pod, &pc, sleep("plain")).await;
    let info = exec_ok(&mut rt, &plain, &["cat", "/proc/self/mountinfo"]).await;
    assert!(
        mounted(&info, "/proc/keys"),
        "/proc/keys not masked:\n{info}"
    );
    assert!(
        mounted(&info, "/proc/sys"),
        "/proc/sys not read-only:\n{info}"
    );
    let sys = exec_ok(&mut rt, &plain, &["sh", "-c", "touch /sys/x 2>&1; true"]).await;
    assert!(sys.contains("Read-only file system"), "{sys}");
    let kmsg = exec_ok(&mut rt, &plain, &["sh", "-c", "test -e /dev/kmsg; echo $?"]).await;
    assert_eq!(
        kmsg.trim(),
        "1",
        "a host device in an unprivileged container"
    );

    // The request's own lists replace the defaults.
    let own_lists = with_context(
        sleep("lists"),
        cri::LinuxContainerSecurityContext {
            masked_paths: vec!["/etc/passwd".into()],
            readonly_paths: vec!["/tmp".into()],
            ..Default::default()
        },
    );
    let lists = running(&mut rt, &pod, &pc, own_lists).await;
    let passwd = exec_ok(&mut rt, &lists, &["wc", "-c", "/etc/passwd"]).await;
    assert!(
        passwd.trim().starts_with('0'),
        "passwd not masked: {passwd}"
    );
    let tmp = exec_ok(&mut rt, &lists, &["sh", "-c", "touch /tmp/x 2>&1; true"]).await;
    assert!(tmp.contains("Read-only file system"), "{tmp}");
    let info = exec_ok(&mut rt, &lists, &["cat", "/proc/self/mountinfo"]).await;
    assert!(
        !mounted(&info, "/proc/keys"),
        "defaults still applied:\n{info}"
    );

    // Privileged: every capability, host devices, a writable /sys, nothing masked.
    let privileged = with_context(
        sleep("privileged"),
        cri::LinuxContainerSecurityContext {
            privileged: true,
            ..Default::default()
        },
    );
    let p = running(&mut rt, &pod, &pc, privileged).await;
    let caps = exec_ok(&mut rt, &p, &["grep", "CapEff", "/proc/self/status"]).await;
    // All the daemon has (its bounding set, like this test's), not all the kernel knows.
    let bounding = caps::read(None, caps::CapSet::Bounding).expect("bounding set");
    let all = bounding.iter().fold(0u64, |m, c| m | (1u64 << c.index()));
    assert!(
        caps.trim().ends_with(&format!("{all:016x}")),
        "CapEff {caps} (want {all:016x})"
    );
    if std::path::Path::new("/dev/kmsg").exists() {
        exec_ok(&mut rt, &p, &["test", "-c", "/dev/kmsg"]).await;
    }
    let info = exec_ok(&mut rt, &p, &["cat", "/proc/self/mountinfo"]).await;
    assert!(
        !mounted(&info, "/proc/keys"),
        "masked when privileged:\n{info}"
    );
    let sys_line = info
        .lines()
        .find(|l| l.split(' ').nth(4) == Some("/sys"))
        .unwrap_or_default()
        .to_string();
    assert!(sys_line.contains(" rw,"), "/sys: {sys_line}");

    stop_remove_pod(&mut rt, &pod).await;
    assert_nothing_left(&d);
}

#[tokio::test]
async fn pod_sysctls_apply_to_the_pod_alone() {
    require_root!("pod_sysctls_apply_to_the_pod_alone");
    let (d, mut rt) = daemon().await;
    let logs = d.dir.path().join("logs-sysctl");
    let host_before = std::fs::read_to_string("/proc/sys/fs/mqueue/msg_max").expect("host");
    let mut pc = pod_config("sysctls", &logs);
    let linux = pc.linux.get_or_insert_with(Default::default);
    linux.sysctls = [
        ("kernel.shm_rmid_forced", "1"),
        ("fs.mqueue.msg_max", "100"),
        ("net.ipv4.ip_unprivileged_port_start", "80"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let pod = run_pod(&mut rt, &pc).await;
    let c = running(
        &mut rt,
        &pod,
        &pc,
        container_config("reader", "exec sleep 1000"),
    )
    .await;
    for (path, want) in [
        ("/proc/sys/kernel/shm_rmid_forced", "1"),
        ("/proc/sys/fs/mqueue/msg_max", "100"),
        ("/proc/sys/net/ipv4/ip_unprivileged_port_start", "80"),
    ] {
        let got = exec_ok(&mut rt, &c, &["cat", path]).await;
        assert_eq!(got.trim(), want, "{path} inside the pod");
    }
    let host_after = std::fs::read_to_string("/proc/sys/fs/mqueue/msg_max").expect("host");
    assert_eq!(host_before, host_after, "the host's value changed");
    stop_remove_pod(&mut rt, &pod).await;

    // A sysctl that is not namespaced would change the host: refused, nothing made.
    let mut bad = pod_config("bad-sysctl", &logs);
    bad.metadata.as_mut().expect("metadata").uid = "bad".into();
    let linux = bad.linux.get_or_insert_with(Default::default);
    linux.sysctls = [("vm.overcommit_memory".to_string(), "1".to_string())].into();
    let e = rt
        .run_pod_sandbox(cri::RunPodSandboxRequest {
            config: Some(bad),
            runtime_handler: String::new(),
        })
        .await
        .expect_err("refused");
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("vm.overcommit_memory"), "{e:?}");
    assert_nothing_left(&d);
}

/// A host-IPC pod's containers see the host's System V IPC objects; other pods see none
/// of them.
#[tokio::test]
async fn host_ipc_shares_the_hosts_ipc_objects() {
    require_root!("host_ipc_shares_the_hosts_ipc_objects");
    let (d, mut rt) = daemon().await;
    let logs = d.dir.path().join("logs-ipc");
    let made = std::process::Command::new("ipcmk")
        .args(["-M", "4096"])
        .output()
        .expect("ipcmk");
    let text = String::from_utf8_lossy(&made.stdout).into_owned();
    let shmid = text
        .trim()
        .rsplit(' ')
        .next()
        .unwrap_or_default()
        .to_string();
    assert!(
        made.status.success() && shmid.parse::<u32>().is_ok(),
        "ipcmk: {text}"
    );
    // Column 2 of /proc/sysvipc/shm is the id, as ipcs -m shows it.
    let ids = "awk 'NR > 1 { print $2 }' /proc/sysvipc/shm";
    let mut host = pod_config("host-ipc", &logs);
    let opts = host
        .linux
        .as_mut()
        .and_then(|l| l.security_context.as_mut())
        .and_then(|s| s.namespace_options.as_mut())
        .expect("namespace options");
    opts.ipc = cri::NamespaceMode::Node as i32;
    let own = pod_config("own-ipc", &logs);
    let mut seen = Vec::new();
    for pc in [&host, &own] {
        let pod = run_pod(&mut rt, pc).await;
        let c = running(
            &mut rt,
            &pod,
            pc,
            container_config("ipc", "exec sleep 1000"),
        )
        .await;
        seen.push(exec_ok(&mut rt, &c, &["sh", "-c", ids]).await);
        stop_remove_pod(&mut rt, &pod).await;
    }
    let _ = std::process::Command::new("ipcrm")
        .args(["-m", &shmid])
        .status();
    assert!(
        seen[0].lines().any(|l| l.trim() == shmid),
        "host-IPC pod does not see segment {shmid}: {:?}",
        seen[0]
    );
    assert!(
        !seen[1].lines().any(|l| l.trim() == shmid),
        "a pod of its own sees the host's segment {shmid}"
    );
    assert_nothing_left(&d);
}
