//! CRI helpers shared by the pod and container tests: a daemon with busybox pulled, pod
//! and container configs, lifecycle calls that must succeed, and the leak checks.

use std::path::Path;
use std::time::{Duration, Instant};

use k8s_cri::v1 as cri;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use tonic::transport::Channel;

use super::{pull, Daemon};

pub type Rt = RuntimeServiceClient<Channel>;

pub const BUSYBOX: &str = "127.0.0.1:5000/ucr-test/busybox:latest";

pub async fn daemon() -> (Daemon, Rt) {
    let d = Daemon::start(&[]);
    let mut images = d.images().await;
    pull(&mut images, BUSYBOX).await.expect("pull busybox");
    let rt = d.runtime().await;
    (d, rt)
}

/// The namespace options kubelet sends for a pod (and its containers) that does not share
/// its process namespace: PID per container. (The CRI's zero value is POD, a shared one.)
pub fn kubelet_namespaces() -> Option<cri::NamespaceOption> {
    Some(cri::NamespaceOption {
        pid: cri::NamespaceMode::Container as i32,
        ..Default::default()
    })
}

/// A pod as kubelet would ask for it: its own network, IPC and UTS namespaces, a PID
/// namespace per container.
pub fn pod_config(name: &str, logs: &Path) -> cri::PodSandboxConfig {
    cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata {
            name: name.into(),
            uid: format!("uid-{name}"),
            namespace: "default".into(),
            attempt: 0,
        }),
        hostname: format!("{name}-host"),
        log_directory: logs.display().to_string(),
        linux: Some(cri::LinuxPodSandboxConfig {
            security_context: Some(cri::LinuxSandboxSecurityContext {
                namespace_options: kubelet_namespaces(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub fn container_config(name: &str, script: &str) -> cri::ContainerConfig {
    cri::ContainerConfig {
        metadata: Some(cri::ContainerMetadata {
            name: name.into(),
            attempt: 0,
        }),
        image: Some(cri::ImageSpec {
            image: BUSYBOX.into(),
            ..Default::default()
        }),
        command: vec!["sh".into(), "-c".into(), script.into()],
        log_path: format!("{name}.log"),
        linux: Some(cri::LinuxContainerConfig {
            security_context: Some(cri::LinuxContainerSecurityContext {
                namespace_options: kubelet_namespaces(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub async fn run_pod(rt: &mut Rt, config: &cri::PodSandboxConfig) -> String {
    rt.run_pod_sandbox(cri::RunPodSandboxRequest {
        config: Some(config.clone()),
        runtime_handler: String::new(),
    })
    .await
    .expect("RunPodSandbox")
    .into_inner()
    .pod_sandbox_id
}

pub async fn create(
    rt: &mut Rt,
    pod: &str,
    pod_config: &cri::PodSandboxConfig,
    c: cri::ContainerConfig,
) -> Result<String, tonic::Status> {
    rt.create_container(cri::CreateContainerRequest {
        pod_sandbox_id: pod.into(),
        config: Some(c),
        sandbox_config: Some(pod_config.clone()),
    })
    .await
    .map(|r| r.into_inner().container_id)
}

pub async fn start(rt: &mut Rt, id: &str) {
    rt.start_container(cri::StartContainerRequest {
        container_id: id.into(),
    })
    .await
    .expect("StartContainer");
}

pub async fn status(rt: &mut Rt, id: &str) -> cri::ContainerStatus {
    rt.container_status(cri::ContainerStatusRequest {
        container_id: id.into(),
        verbose: false,
    })
    .await
    .expect("ContainerStatus")
    .into_inner()
    .status
    .expect("status")
}

pub async fn wait_exited(rt: &mut Rt, id: &str, limit: Duration) -> cri::ContainerStatus {
    let deadline = Instant::now() + limit;
    loop {
        let s = status(rt, id).await;
        if s.state == cri::ContainerState::ContainerExited as i32 {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "container {id} still {:?}",
            s.state
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn stop_remove_pod(rt: &mut Rt, pod: &str) {
    rt.stop_pod_sandbox(cri::StopPodSandboxRequest {
        pod_sandbox_id: pod.into(),
    })
    .await
    .expect("StopPodSandbox");
    rt.remove_pod_sandbox(cri::RemovePodSandboxRequest {
        pod_sandbox_id: pod.into(),
    })
    .await
    .expect("RemovePodSandbox");
}

/// What a removed pod could leave behind: mounts under the daemon's dirs, monitor
/// processes, state directories. Removed containers are deleted in the background (the
/// trash), so this waits a while for the last of them before it asserts.
pub fn assert_nothing_left(d: &Daemon) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match leftovers(d) {
            None => return,
            Some(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            Some(what) => panic!("{what}"),
        }
    }
}

/// What is left behind, said; `None` when nothing is.
fn leftovers(d: &Daemon) -> Option<String> {
    let dir = d.dir.path().display().to_string();
    let mounts: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(&dir))
        .map(str::to_string)
        .collect();
    if !mounts.is_empty() {
        return Some(format!("leaked mounts: {mounts:#?}"));
    }
    let run = d.run_root().display().to_string();
    // A pod init says `ucr-pod-init <pod id>`; the ids this daemon made are in its log.
    let logs = d.logs();
    let monitors: Vec<String> = live_processes()
        .into_iter()
        .map(|(_, c)| c)
        .filter(|c| {
            let monitor = c.contains(" monitor ") || c.contains("ucr-monitor ");
            let init = c
                .strip_prefix("ucr-pod-init ")
                .is_some_and(|id| logs.contains(id.trim()));
            (monitor && c.contains(&run)) || init || (c.contains(" pod-init ") && c.contains(&run))
        })
        .collect();
    if !monitors.is_empty() {
        return Some(format!("leaked monitors or pod inits: {monitors:#?}"));
    }
    // No cgroup of a pod or container is left under the daemon's root: only the
    // monitors' own, empty.
    for dir in super::cgroup_dirs(&d.cgroups_root()) {
        let left: Vec<String> = super::cgroups_below(&dir)
            .into_iter()
            .filter(|c| c != "monitors")
            .collect();
        if !left.is_empty() {
            return Some(format!("leaked cgroups under {}: {left:?}", dir.display()));
        }
        let procs = std::fs::read_to_string(dir.join("monitors/cgroup.procs")).unwrap_or_default();
        if !procs.trim().is_empty() {
            return Some(format!(
                "processes left in {}/monitors: {procs}",
                dir.display()
            ));
        }
    }
    // Every CNI ADD was undone by a DEL (the isolator keeps an entry until then).
    for sub in [
        d.root.join("cni/ucr"),
        d.root.join("containers"),
        d.root.join("trash"),
        d.run_root().join("pods"),
        d.run_root().join("containers"),
        d.run_root().join("cgroups"),
    ] {
        let left: Vec<_> = std::fs::read_dir(&sub)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .collect();
        if !left.is_empty() {
            return Some(format!("leftovers in {}: {left:?}", sub.display()));
        }
    }
    None
}

/// The stdout lines a container wrote to its CRI log (`<ts> <stream> <P|F> <text>`),
/// partial records joined, stderr skipped.
pub fn stdout_lines(log: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(log)
        .unwrap_or_else(|e| panic!("reading the log {}: {e}", log.display()));
    let mut lines = Vec::new();
    let mut partial = String::new();
    for l in text.lines() {
        let mut parts = l.splitn(4, ' ');
        let (_, stream, tag, content) = (
            parts.next(),
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
        );
        if stream != "stdout" {
            continue;
        }
        partial.push_str(content);
        if tag == "F" {
            lines.push(std::mem::take(&mut partial));
        }
    }
    lines
}

/// Creates and starts a container, waits for it to end; its status and stdout lines.
pub async fn run_to_exit(
    rt: &mut Rt,
    pod: &str,
    pc: &cri::PodSandboxConfig,
    c: cri::ContainerConfig,
) -> (cri::ContainerStatus, Vec<String>) {
    let log = Path::new(&pc.log_directory).join(&c.log_path);
    let id = create(rt, pod, pc, c).await.expect("create");
    start(rt, &id).await;
    let s = wait_exited(rt, &id, Duration::from_secs(20)).await;
    (s, stdout_lines(&log))
}

/// ExecSync that must succeed; its stdout.
pub async fn exec_ok(rt: &mut Rt, id: &str, cmd: &[&str]) -> String {
    let out = rt
        .exec_sync(cri::ExecSyncRequest {
            container_id: id.into(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            timeout: 20,
        })
        .await
        .expect("ExecSync")
        .into_inner();
    assert_eq!(
        out.exit_code,
        0,
        "{cmd:?}: stderr {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub async fn list_pods(rt: &mut Rt, filter: cri::PodSandboxFilter) -> Vec<String> {
    let mut ids: Vec<String> = rt
        .list_pod_sandbox(cri::ListPodSandboxRequest {
            filter: Some(filter),
        })
        .await
        .expect("ListPodSandbox")
        .into_inner()
        .items
        .into_iter()
        .map(|p| p.id)
        .collect();
    ids.sort();
    ids
}

pub async fn list_containers(rt: &mut Rt, filter: cri::ContainerFilter) -> Vec<String> {
    let mut ids: Vec<String> = rt
        .list_containers(cri::ListContainersRequest {
            filter: Some(filter),
        })
        .await
        .expect("ListContainers")
        .into_inner()
        .containers
        .into_iter()
        .map(|c| c.id)
        .collect();
    ids.sort();
    ids
}

pub fn sorted(ids: &[&String]) -> Vec<String> {
    let mut v: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

/// `/proc/self/mountinfo` lines of filesystem type `fstype` whose mount point is under `dir`.
pub fn mounts_of_type_under(fstype: &str, dir: &Path) -> Vec<String> {
    let dir = dir.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter(|l| {
            let mount_point = l.split(' ').nth(4).unwrap_or("");
            let fs = l.split(" - ").nth(1).and_then(|r| r.split(' ').next());
            mount_point.starts_with(&dir) && fs == Some(fstype)
        })
        .map(str::to_string)
        .collect()
}

/// Container processes (or their children) of the daemon in `dir`: processes in another
/// mount namespace than ours whose mounts name `dir` (the overlay's upper dir, the pod's
/// /etc files). `/proc/<pid>/root` would not do: it reads `/` from outside the
/// container's mount namespace.
pub fn processes_inside(dir: &Path) -> Vec<String> {
    let dir = dir.display().to_string();
    let ours = std::fs::read_link("/proc/self/ns/mnt").ok();
    live_processes()
        .iter()
        .filter(|(p, _)| std::fs::read_link(p.join("ns/mnt")).ok() != ours)
        .filter(|(p, _)| {
            std::fs::read_to_string(p.join("mountinfo")).is_ok_and(|m| m.contains(&dir))
        })
        .map(describe)
        .collect()
}

/// CreateContainer and StartContainer, both of which must succeed; the container id.
pub async fn running(
    rt: &mut Rt,
    pod: &str,
    pc: &cri::PodSandboxConfig,
    c: cri::ContainerConfig,
) -> String {
    let id = create(rt, pod, pc, c).await.expect("CreateContainer");
    start(rt, &id).await;
    id
}

pub async fn pod_status(rt: &mut Rt, pod: &str) -> cri::PodSandboxStatus {
    rt.pod_sandbox_status(cri::PodSandboxStatusRequest {
        pod_sandbox_id: pod.into(),
        verbose: false,
    })
    .await
    .expect("PodSandboxStatus")
    .into_inner()
    .status
    .expect("status")
}

/// Every live (not zombie) process: its `/proc/<pid>` directory and its command line
/// with spaces for NULs. Tests filter it for what they look for.
pub fn live_processes() -> Vec<(std::path::PathBuf, String)> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter(|e| {
            std::fs::read_to_string(e.path().join("stat"))
                .is_ok_and(|s| !s.rsplit(')').next().unwrap_or("").starts_with(" Z"))
        })
        .map(|e| {
            let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            (e.path(), String::from_utf8_lossy(&cmd).replace('\0', " "))
        })
        .collect()
}

/// How many live processes run exactly `sleep <n>` (a container's command, or a copy of
/// it).
pub fn sleeps(n: u32) -> usize {
    let wanted = format!("sleep {n} ");
    live_processes()
        .iter()
        .filter(|(_, c)| *c == wanted)
        .count()
}

/// Waits (up to 5 s) for [`sleeps`]`(n)` to be `want`, then asserts it.
pub async fn settle_sleeps(n: u32, want: usize) {
    for _ in 0..100 {
        if sleeps(n) == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(sleeps(n), want, "processes running sleep {n}");
}

/// `pid <n>: <command line>` for a [`live_processes`] entry, for assertion messages.
pub fn describe(process: &(std::path::PathBuf, String)) -> String {
    let pid = process.0.file_name().unwrap_or_default().to_string_lossy();
    format!("pid {pid}: {}", process.1)
}
