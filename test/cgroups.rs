//! The resource isolators end to end, against this node's real cgroup hierarchies (v1
//! here; the v2 code runs against fake trees in `isolators::cgroups::tests` and the
//! launcher's CLONE_INTO_CGROUP against the real cgroup2 mount in `test/launcher.rs`):
//! limits in the kernel's files after create and update, kubelet's QoS parents, OOM kills
//! reported (also across a restart), a fork bomb stopped by the pids limit, a host-PID
//! container's children ended by stop, stats that are the kernel's counters, net_cls
//! handles, the device policy, and no cgroup left behind. Needs root and cgroup v1
//! hierarchies; says so and skips otherwise.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::pods::{
    assert_nothing_left, container_config, create, exec_ok, pod_config, run_pod, running, sleeps,
    stop_remove_pod, wait_exited, Rt, BUSYBOX,
};
use common::*;
use k8s_cri::v1 as cri;
use tonic::Code;

/// The mount point of the v1 hierarchy holding `controller`.
fn hierarchy(controller: &str) -> Option<PathBuf> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .ok()?
        .lines()
        .find_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let mut r = right.split(' ');
            let (fstype, _, opts) = (r.next()?, r.next()?, r.next()?);
            let point = left.split(' ').nth(4)?;
            (fstype == "cgroup" && opts.split(',').any(|o| o == controller))
                .then(|| PathBuf::from(point))
        })
}

/// Skips (loudly) a test on a node without cgroup v1 memory and cpu hierarchies.
macro_rules! require_v1 {
    ($name:expr) => {
        require_root!($name);
        if hierarchy("memory").is_none() || hierarchy("cpu").is_none() {
            eprintln!(
                "SKIPPED {}: needs cgroup v1 memory and cpu hierarchies",
                $name
            );
            return;
        }
    };
}

/// `<hierarchy of controller>/<path>/<file>`, trimmed.
fn read(controller: &str, path: &str, file: &str) -> String {
    let p = hierarchy(controller)
        .expect("hierarchy")
        .join(path.trim_start_matches('/'))
        .join(file);
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .trim()
        .to_string()
}

fn exists(controller: &str, path: &str) -> bool {
    hierarchy(controller).is_some_and(|h| h.join(path.trim_start_matches('/')).exists())
}

async fn daemon_with(args: &[&str]) -> (Daemon, Rt) {
    let d = Daemon::start(args);
    let mut images = d.images().await;
    pull(&mut images, BUSYBOX).await.expect("pull busybox");
    let rt = d.runtime().await;
    (d, rt)
}

/// A pod under a kubelet-style QoS parent (below the daemon's own cgroups root, so that
/// tests side by side stay apart).
fn pod_with_parent(d: &Daemon, name: &str) -> (cri::PodSandboxConfig, String) {
    let mut pc = pod_config(name, &d.dir.path().join("logs"));
    let parent = format!("/{}/kubepods/burstable/poduid-{name}", d.cgroups_root());
    if let Some(l) = pc.linux.as_mut() {
        l.cgroup_parent = parent.clone();
    }
    (pc, parent)
}

fn with_resources(
    mut c: cri::ContainerConfig,
    r: cri::LinuxContainerResources,
) -> cri::ContainerConfig {
    if let Some(l) = c.linux.as_mut() {
        l.resources = Some(r);
    }
    c
}

async fn verbose_info(rt: &mut Rt, id: &str) -> serde_json::Value {
    let r = rt
        .container_status(cri::ContainerStatusRequest {
            container_id: id.into(),
            verbose: true,
        })
        .await
        .expect("ContainerStatus")
        .into_inner();
    serde_json::from_str(r.info.get("info").expect("info")).expect("json")
}

fn pid_of(info: &serde_json::Value) -> i64 {
    info["pid"].as_i64().expect("pid")
}

async fn resources_of(rt: &mut Rt, id: &str) -> cri::LinuxContainerResources {
    common::pods::status(rt, id)
        .await
        .resources
        .and_then(|r| r.linux)
        .expect("resources")
}

#[tokio::test]
async fn limits_reach_the_kernel_at_create_and_on_update() {
    require_v1!("limits_reach_the_kernel_at_create_and_on_update");
    let (d, mut rt) = daemon_with(&[]).await;
    let (pc, parent) = pod_with_parent(&d, "limits");
    let pod = run_pod(&mut rt, &pc).await;
    let c = with_resources(
        container_config("app", "exec sleep 600"),
        cri::LinuxContainerResources {
            memory_limit_in_bytes: 64 << 20,
            cpu_shares: 256,
            cpu_quota: 50_000,
            cpu_period: 100_000,
            cpuset_cpus: "0".into(),
            ..Default::default()
        },
    );
    let id = running(&mut rt, &pod, &pc, c).await;
    let cg = format!("{parent}/{id}");
    assert_eq!(
        read("memory", &cg, "memory.limit_in_bytes"),
        (64u64 << 20).to_string()
    );
    assert_eq!(read("cpu", &cg, "cpu.shares"), "256");
    assert_eq!(read("cpu", &cg, "cpu.cfs_quota_us"), "50000");
    assert_eq!(read("cpu", &cg, "cpu.cfs_period_us"), "100000");
    assert_eq!(read("cpuset", &cg, "cpuset.cpus"), "0");
    // The device policy is in force: deny by default, runc's list allowed.
    let devices = read("devices", &cg, "devices.list");
    assert!(devices.contains("c 1:3 rwm"), "{devices}");
    assert!(!devices.contains("a *:* rwm"), "{devices}");

    // The process is in its cgroups (it joined before it ran), the monitor is not.
    let info = verbose_info(&mut rt, &id).await;
    assert_eq!(info["isolation"]["cgroupsPath"], cg.as_str());
    let own = std::fs::read_to_string(format!("/proc/{}/cgroup", pid_of(&info))).expect("cgroup");
    for controller in ["memory", "cpu", "pids", "freezer", "devices"] {
        assert!(
            own.lines()
                .any(|l| l.contains(controller) && l.ends_with(&cg)),
            "{controller} not {cg}: {own}"
        );
    }
    let monitor: i64 = std::fs::read_to_string(
        d.run_root()
            .join("containers")
            .join(&id)
            .join("monitor.pid"),
    )
    .expect("monitor.pid")
    .split_whitespace()
    .next()
    .and_then(|p| p.parse().ok())
    .expect("pid");
    let mon = std::fs::read_to_string(format!("/proc/{monitor}/cgroup")).expect("cgroup");
    let monitors = format!("/{}/monitors", d.cgroups_root());
    assert!(
        mon.lines()
            .filter(|l| l.contains("memory") || l.contains("name=systemd"))
            .all(|l| l.ends_with(&monitors)),
        "the monitor left the daemon's cgroup for {monitors}: {mon}"
    );
    // ExecSync's command joins the container's cgroups.
    let inside = exec_ok(&mut rt, &id, &["cat", "/proc/self/cgroup"]).await;
    assert!(
        inside
            .lines()
            .any(|l| l.contains(":memory:") && l.ends_with(&cg)),
        "{inside}"
    );

    let r = resources_of(&mut rt, &id).await;
    assert_eq!(
        (r.memory_limit_in_bytes, r.cpu_shares, r.cpu_quota),
        (64 << 20, 256, 50_000)
    );

    // Live update: what it sets changes, what it leaves at zero stays.
    rt.update_container_resources(cri::UpdateContainerResourcesRequest {
        container_id: id.clone(),
        linux: Some(cri::LinuxContainerResources {
            memory_limit_in_bytes: 128 << 20,
            cpu_quota: 20_000,
            ..Default::default()
        }),
        ..Default::default()
    })
    .await
    .expect("UpdateContainerResources");
    assert_eq!(
        read("memory", &cg, "memory.limit_in_bytes"),
        (128u64 << 20).to_string()
    );
    assert_eq!(read("cpu", &cg, "cpu.cfs_quota_us"), "20000");
    assert_eq!(read("cpu", &cg, "cpu.shares"), "256");
    let r = resources_of(&mut rt, &id).await;
    assert_eq!(
        (r.memory_limit_in_bytes, r.cpu_quota, r.cpu_shares),
        (128 << 20, 20_000, 256)
    );

    // A limit below what the container uses: the kernel says no, the call says which
    // value, and nothing changes.
    let e = rt
        .update_container_resources(cri::UpdateContainerResourcesRequest {
            container_id: id.clone(),
            linux: Some(cri::LinuxContainerResources {
                memory_limit_in_bytes: 4096,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect_err("refused");
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(
        e.message().contains("memory_limit_in_bytes"),
        "{}",
        e.message()
    );
    assert_eq!(
        read("memory", &cg, "memory.limit_in_bytes"),
        (128u64 << 20).to_string()
    );
    assert_eq!(
        resources_of(&mut rt, &id).await.memory_limit_in_bytes,
        128 << 20
    );

    stop_remove_pod(&mut rt, &pod).await;
    for controller in ["memory", "cpu", "cpuset", "devices", "freezer"] {
        assert!(!exists(controller, &cg), "{controller} {cg} is left");
        // kubelet's parent did not exist, so ucr made it, and removed it with the pod.
        assert!(
            !exists(controller, &parent),
            "{controller} {parent} is left"
        );
    }
    assert_nothing_left(&d);
}

#[tokio::test]
async fn a_systemd_parent_is_refused_and_nothing_is_made() {
    require_v1!("a_systemd_parent_is_refused_and_nothing_is_made");
    let (d, mut rt) = daemon_with(&[]).await;
    let mut pc = pod_config("slice", &d.dir.path().join("logs"));
    if let Some(l) = pc.linux.as_mut() {
        l.cgroup_parent = "kubepods-burstable-poduid_slice.slice".into();
    }
    let e = rt
        .run_pod_sandbox(cri::RunPodSandboxRequest {
            config: Some(pc),
            runtime_handler: String::new(),
        })
        .await
        .expect_err("refused");
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("cgroupfs"), "{}", e.message());
    let pods = rt
        .list_pod_sandbox(cri::ListPodSandboxRequest::default())
        .await
        .expect("list")
        .into_inner()
        .items;
    assert!(pods.is_empty());
    // And RuntimeConfig tells kubelet which driver to use.
    let config = rt
        .runtime_config(cri::RuntimeConfigRequest {})
        .await
        .expect("RuntimeConfig")
        .into_inner();
    assert_eq!(
        config.linux.map(|l| l.cgroup_driver),
        Some(cri::CgroupDriver::Cgroupfs as i32)
    );
    assert_nothing_left(&d);
}

#[tokio::test]
async fn an_oom_kill_is_reported_even_when_the_daemon_was_down() {
    require_v1!("an_oom_kill_is_reported_even_when_the_daemon_was_down");
    let (mut d, mut rt) = daemon_with(&[]).await;
    let pc = pod_config("oom", &d.dir.path().join("logs"));
    let pod = run_pod(&mut rt, &pc).await;
    let limited = |name: &str, script: &str| {
        with_resources(
            container_config(name, script),
            cri::LinuxContainerResources {
                memory_limit_in_bytes: 24 << 20,
                memory_swap_limit_in_bytes: 24 << 20,
                ..Default::default()
            },
        )
    };
    // `tail` keeps a line that never ends: it grows until the limit.
    let now = running(&mut rt, &pod, &pc, limited("now", "exec tail /dev/zero")).await;
    let s = wait_exited(&mut rt, &now, Duration::from_secs(60)).await;
    assert_eq!(s.reason, "OOMKilled", "{s:?}");
    assert_eq!(s.exit_code, 137);

    // One that reaches its limit while no daemon watches.
    let later = running(
        &mut rt,
        &pod,
        &pc,
        limited("later", "sleep 2; exec tail /dev/zero"),
    )
    .await;
    d.kill9();
    std::thread::sleep(Duration::from_secs(6));
    d.restart();
    let mut rt = d.runtime().await;
    let s = wait_exited(&mut rt, &later, Duration::from_secs(60)).await;
    assert_eq!(s.reason, "OOMKilled", "{s:?}");
    assert!(s.message.contains("OOM"), "{}", s.message);

    // A container that ends on its own is not called OOMKilled.
    let fine = running(&mut rt, &pod, &pc, limited("fine", "exit 3")).await;
    let s = wait_exited(&mut rt, &fine, Duration::from_secs(30)).await;
    assert_eq!((s.reason.as_str(), s.exit_code), ("Error", 3));
    stop_remove_pod(&mut rt, &pod).await;
    assert_nothing_left(&d);
}

#[tokio::test]
async fn a_pids_limit_stops_a_fork_bomb() {
    require_v1!("a_pids_limit_stops_a_fork_bomb");
    if hierarchy("pids").is_none() {
        eprintln!("SKIPPED a_pids_limit_stops_a_fork_bomb: no pids hierarchy");
        return;
    }
    let (d, mut rt) = daemon_with(&["--pids-limit", "16"]).await;
    let pc = pod_config("forks", &d.dir.path().join("logs"));
    let pod = run_pod(&mut rt, &pc).await;
    let id = running(
        &mut rt,
        &pod,
        &pc,
        container_config(
            "bomb",
            "i=0; while [ $i -lt 64 ]; do sleep 3131 & i=$((i+1)); done; exec sleep 3132",
        ),
    )
    .await;
    let info = verbose_info(&mut rt, &id).await;
    let cg = info["isolation"]["cgroupsPath"]
        .as_str()
        .expect("path")
        .to_string();
    assert_eq!(read("pids", &cg, "pids.max"), "16");
    // A non-interactive shell gives up at the first fork the kernel refuses; its PID
    // namespace, and the sleeps it had started, end with it.
    let s = wait_exited(&mut rt, &id, Duration::from_secs(30)).await;
    assert_ne!(s.exit_code, 0, "{s:?}");
    let log = std::fs::read_to_string(d.dir.path().join("logs/bomb.log")).expect("log");
    assert!(log.contains("can't fork"), "{log}");
    assert_eq!(sleeps(3132), 0, "it never got past the forks");
    let refused = read("pids", &cg, "pids.events");
    assert!(
        refused.starts_with("max ") && !refused.ends_with(" 0"),
        "the kernel refused no fork: {refused}"
    );
    stop_remove_pod(&mut rt, &pod).await;
    assert_eq!(sleeps(3131), 0);
    assert_nothing_left(&d);
}

#[tokio::test]
async fn stopping_a_host_pid_container_ends_its_children() {
    require_v1!("stopping_a_host_pid_container_ends_its_children");
    let (d, mut rt) = daemon_with(&[]).await;
    let host_pid = Some(cri::NamespaceOption {
        pid: cri::NamespaceMode::Node as i32,
        ..Default::default()
    });
    let mut pc = pod_config("hostpid", &d.dir.path().join("logs"));
    if let Some(sc) = pc.linux.as_mut().and_then(|l| l.security_context.as_mut()) {
        sc.namespace_options = host_pid.clone();
    }
    let pod = run_pod(&mut rt, &pc).await;
    let mut c = container_config("parent", "sleep 4711 & sleep 4711 & exec sleep 4712");
    if let Some(sc) = c.linux.as_mut().and_then(|l| l.security_context.as_mut()) {
        sc.namespace_options = host_pid;
    }
    let id = running(&mut rt, &pod, &pc, c).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while sleeps(4711) < 2 || sleeps(4712) < 1 {
        assert!(Instant::now() < deadline, "the sleeps did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    rt.stop_container(cri::StopContainerRequest {
        container_id: id.clone(),
        timeout: 0,
    })
    .await
    .expect("StopContainer");
    // In the host's PID namespace nothing ends them but the cgroup kill.
    assert_eq!(sleeps(4712), 0, "the first process is gone");
    assert_eq!(sleeps(4711), 0, "its children are gone too");
    stop_remove_pod(&mut rt, &pod).await;
    assert_nothing_left(&d);
}

#[tokio::test]
async fn stats_are_the_kernels_counters() {
    require_v1!("stats_are_the_kernels_counters");
    let (d, mut rt) = daemon_with(&[]).await;
    let (pc, parent) = pod_with_parent(&d, "stats");
    let pod = run_pod(&mut rt, &pc).await;
    let c = with_resources(
        container_config(
            "idle",
            "head -c 3000000 /dev/zero > /dev/shm/x; exec sleep 600",
        ),
        cri::LinuxContainerResources {
            memory_limit_in_bytes: 256 << 20,
            ..Default::default()
        },
    );
    let id = running(&mut rt, &pod, &pc, c).await;
    let cg = format!("{parent}/{id}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while read("memory", &cg, "memory.usage_in_bytes")
        .parse::<u64>()
        .unwrap_or(0)
        < 3_000_000
    {
        assert!(
            Instant::now() < deadline,
            "the container did not fill its tmpfs"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let cpu_before: u64 = read("cpuacct", &cg, "cpuacct.usage").parse().expect("cpu");
    let mem_before: u64 = read("memory", &cg, "memory.usage_in_bytes")
        .parse()
        .expect("mem");
    let s = rt
        .container_stats(cri::ContainerStatsRequest {
            container_id: id.clone(),
        })
        .await
        .expect("ContainerStats")
        .into_inner()
        .stats
        .expect("stats");
    let cpu_after: u64 = read("cpuacct", &cg, "cpuacct.usage").parse().expect("cpu");
    let mem_after: u64 = read("memory", &cg, "memory.usage_in_bytes")
        .parse()
        .expect("mem");
    let cpu = s.cpu.expect("cpu");
    let used = cpu.usage_core_nano_seconds.expect("usage").value;
    assert!(cpu.timestamp > 0);
    assert!(
        (cpu_before..=cpu_after).contains(&used),
        "{cpu_before} <= {used} <= {cpu_after}"
    );
    let mem = s.memory.expect("memory");
    assert!(mem.timestamp > 0);
    let usage = mem.usage_bytes.expect("usage").value;
    let (lo, hi) = (mem_before.min(mem_after), mem_before.max(mem_after));
    assert!((lo..=hi).contains(&usage), "{lo} <= {usage} <= {hi}");
    let ws = mem.working_set_bytes.expect("ws").value;
    assert!(
        ws >= 3_000_000 && ws <= usage,
        "working set {ws} of {usage} (3 MB in shm)"
    );
    assert_eq!(
        mem.available_bytes.expect("available").value,
        (256u64 << 20) - ws
    );
    assert_eq!(s.attributes.expect("attributes").id, id);

    // The list has it; a filter on another pod does not.
    let list = rt
        .list_container_stats(cri::ListContainerStatsRequest { filter: None })
        .await
        .expect("ListContainerStats")
        .into_inner()
        .stats;
    assert_eq!(list.len(), 1);
    let none = rt
        .list_container_stats(cri::ListContainerStatsRequest {
            filter: Some(cri::ContainerStatsFilter {
                pod_sandbox_id: "nosuchpod".into(),
                ..Default::default()
            }),
        })
        .await
        .expect("ListContainerStats")
        .into_inner()
        .stats;
    assert!(none.is_empty());

    // The pod: its cgroup's counters, its network's, its processes.
    let p = rt
        .pod_sandbox_stats(cri::PodSandboxStatsRequest {
            pod_sandbox_id: pod.clone(),
        })
        .await
        .expect("PodSandboxStats")
        .into_inner()
        .stats
        .expect("stats");
    let linux = p.linux.expect("linux");
    assert_eq!(
        linux
            .process
            .expect("process")
            .process_count
            .expect("count")
            .value,
        read("pids", &parent, "pids.current")
            .parse::<u64>()
            .expect("pids")
    );
    let net = linux.network.expect("network");
    let eth0 = net.default_interface.expect("default interface");
    assert_eq!(eth0.name, "eth0");
    assert!(linux.memory.expect("memory").usage_bytes.expect("u").value >= usage);
    assert_eq!(linux.containers.len(), 1);

    // The metrics kubelet asks for: each described, with values from the same counters.
    let descriptors = rt
        .list_metric_descriptors(cri::ListMetricDescriptorsRequest {})
        .await
        .expect("ListMetricDescriptors")
        .into_inner()
        .descriptors;
    let metrics = rt
        .list_pod_sandbox_metrics(cri::ListPodSandboxMetricsRequest {})
        .await
        .expect("ListPodSandboxMetrics")
        .into_inner()
        .pod_metrics;
    let ours = metrics
        .iter()
        .find(|m| m.pod_sandbox_id == pod)
        .expect("pod metrics");
    let cm = &ours.container_metrics[0];
    assert_eq!(cm.container_id, id);
    let ws_metric = cm
        .metrics
        .iter()
        .find(|m| m.name == "container_memory_working_set_bytes")
        .expect("working set");
    assert!(ws_metric.value.as_ref().expect("v").value >= 3_000_000);
    for m in cm.metrics.iter().chain(&ours.metrics) {
        let d = descriptors
            .iter()
            .find(|d| d.name == m.name)
            .expect("described");
        assert_eq!(d.label_keys.len(), m.label_values.len(), "{}", m.name);
    }
    stop_remove_pod(&mut rt, &pod).await;
    assert_nothing_left(&d);
}

#[tokio::test]
async fn net_cls_handles_are_unique_and_survive_a_restart() {
    require_v1!("net_cls_handles_are_unique_and_survive_a_restart");
    let (mut d, mut rt) = daemon_with(&[
        "--cgroups-net-cls-primary-handle",
        "0x10",
        "--cgroups-net-cls-secondary-handles",
        "0x1,0xff",
    ])
    .await;
    let pc = pod_config("netcls", &d.dir.path().join("logs"));
    let pod = run_pod(&mut rt, &pc).await;
    let mut handles = std::collections::BTreeMap::new();
    for n in 0..50 {
        let id = create(
            &mut rt,
            &pod,
            &pc,
            container_config(&format!("c{n}"), "exec sleep 600"),
        )
        .await
        .expect("create");
        let info = verbose_info(&mut rt, &id).await;
        let cg = info["isolation"]["cgroupsPath"]
            .as_str()
            .expect("path")
            .to_string();
        let classid: u64 = read("net_cls", &cg, "net_cls.classid")
            .parse()
            .expect("classid");
        assert_eq!(classid >> 16, 0x10, "primary handle");
        assert!((1..=0xff).contains(&(classid & 0xffff)), "{classid:#x}");
        assert_eq!(
            info["isolation"]["netClsClassid"].as_str(),
            Some(classid.to_string().as_str())
        );
        handles.insert(id, classid);
    }
    let unique: std::collections::BTreeSet<_> = handles.values().collect();
    assert_eq!(unique.len(), 50, "handles: {handles:?}");

    d.restart();
    let mut rt = d.runtime().await;
    for (id, classid) in &handles {
        let info = verbose_info(&mut rt, id).await;
        assert_eq!(
            info["isolation"]["netClsClassid"].as_str(),
            Some(classid.to_string().as_str()),
            "{id} after the restart"
        );
    }
    // A new container after the restart gets a handle nobody holds.
    let new = create(
        &mut rt,
        &pod,
        &pc,
        container_config("new", "exec sleep 600"),
    )
    .await
    .expect("create");
    let info = verbose_info(&mut rt, &new).await;
    let fresh: u64 = info["isolation"]["netClsClassid"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("classid");
    assert!(!unique.contains(&fresh), "{fresh:#x} was taken");
    stop_remove_pod(&mut rt, &pod).await;
    assert_nothing_left(&d);
}

#[tokio::test]
async fn a_device_node_made_at_run_time_cannot_be_opened() {
    require_v1!("a_device_node_made_at_run_time_cannot_be_opened");
    let (d, mut rt) = daemon_with(&[]).await;
    let pc = pod_config("devices", &d.dir.path().join("logs"));
    let pod = run_pod(&mut rt, &pc).await;
    // Root in the container with CAP_MKNOD (Docker's default set): it can make the node
    // in /dev (a tmpfs that allows devices), but the devices cgroup refuses to open it.
    let id = running(
        &mut rt,
        &pod,
        &pc,
        container_config(
            "mknod",
            "mknod /dev/ucr-loop b 7 0 && echo made; head -c 1 /dev/ucr-loop; echo rc=$?; \
             head -c 1 /dev/zero | wc -c; exec sleep 600",
        ),
    )
    .await;
    let log = d.dir.path().join("logs/mknod.log");
    let deadline = Instant::now() + Duration::from_secs(20);
    let lines = loop {
        let l = common::pods::stdout_lines(&log);
        if l.len() >= 3 {
            break l;
        }
        assert!(Instant::now() < deadline, "output: {l:?}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(lines[0], "made", "{lines:?}");
    assert_eq!(lines[1], "rc=1", "the block device opened: {lines:?}");
    assert_eq!(lines[2], "1", "/dev/zero still works: {lines:?}");
    let errors = std::fs::read_to_string(&log).expect("log");
    assert!(errors.contains("Operation not permitted"), "{errors}");
    assert!(!id.is_empty());
    stop_remove_pod(&mut rt, &pod).await;
    assert_nothing_left(&d);
}

#[tokio::test]
async fn a_requested_device_is_allowed_with_its_permissions_only() {
    require_v1!("a_requested_device_is_allowed_with_its_permissions_only");
    // A loop device of our own, backed by a file: a block device the test may read.
    let dir = tempfile::tempdir().expect("tempdir");
    let img = dir.path().join("disk.img");
    std::fs::write(&img, vec![7u8; 1 << 20]).expect("image");
    let out = std::process::Command::new("losetup")
        .args(["-f", "--show"])
        .arg(&img)
        .output()
        .expect("losetup");
    if !out.status.success() {
        eprintln!(
            "SKIPPED a_requested_device_is_allowed_with_its_permissions_only: losetup: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return;
    }
    let loopdev = String::from_utf8_lossy(&out.stdout).trim().to_string();
    struct Detach(String);
    impl Drop for Detach {
        fn drop(&mut self) {
            let _ = std::process::Command::new("losetup")
                .args(["-d", &self.0])
                .status();
        }
    }
    let _detach = Detach(loopdev.clone());

    let (d, mut rt) = daemon_with(&[]).await;
    let pc = pod_config("disk", &d.dir.path().join("logs"));
    let pod = run_pod(&mut rt, &pc).await;
    let mut c = container_config(
        "reader",
        "head -c 4 /dev/xvdb | od -An -tu1 | tr -s ' '; echo x > /dev/xvdb; echo write=$?; exec sleep 600",
    );
    c.devices = vec![cri::Device {
        container_path: "/dev/xvdb".into(),
        host_path: loopdev.clone(),
        permissions: "r".into(),
    }];
    let _id = running(&mut rt, &pod, &pc, c).await;
    let log = d.dir.path().join("logs/reader.log");
    let deadline = Instant::now() + Duration::from_secs(20);
    let lines = loop {
        let l = common::pods::stdout_lines(&log);
        if l.len() >= 2 {
            break l;
        }
        assert!(Instant::now() < deadline, "output: {l:?}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(lines[0].trim(), "7 7 7 7", "{lines:?}");
    assert_eq!(
        lines[1], "write=1",
        "written though only r was allowed: {lines:?}"
    );

    // A host path that is not a device is refused, naming it.
    let mut bad = container_config("bad", "true");
    bad.devices = vec![cri::Device {
        container_path: "/dev/xvdc".into(),
        host_path: "/etc/passwd".into(),
        permissions: "rw".into(),
    }];
    let e = create(&mut rt, &pod, &pc, bad).await.expect_err("refused");
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("/etc/passwd"), "{}", e.message());
    stop_remove_pod(&mut rt, &pod).await;
    assert_nothing_left(&d);
}

#[tokio::test]
async fn recover_cleanup_removes_every_cgroup() {
    require_v1!("recover_cleanup_removes_every_cgroup");
    let (mut d, mut rt) = daemon_with(&[]).await;
    let (pc, parent) = pod_with_parent(&d, "cleanup");
    let pod = run_pod(&mut rt, &pc).await;
    let id = running(
        &mut rt,
        &pod,
        &pc,
        container_config("app", "exec sleep 600"),
    )
    .await;
    let cg = format!("{parent}/{id}");
    assert!(exists("memory", &cg));
    d.kill9();
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_ucr"))
        .arg("serve")
        .arg("--root")
        .arg(&d.root)
        .arg("--run-root")
        .arg(d.run_root())
        .arg("--listen")
        .arg(d.dir.path().join("cleanup.sock"))
        .args(["--cgroups-root", &d.cgroups_root()])
        .args(["--cni-conf-dir", &test_cni_conf_dir().display().to_string()])
        .args(["--cni-bin-dir", "/usr/lib/cni", "--recover", "cleanup"])
        .status()
        .expect("ucr serve --recover cleanup");
    assert!(status.success());
    for controller in ["memory", "cpu", "freezer", "devices", "pids"] {
        assert!(!exists(controller, &cg), "{controller} {cg} is left");
        assert!(
            !exists(controller, &parent),
            "{controller} {parent} is left"
        );
    }
    assert_nothing_left(&d);
}

#[tokio::test]
async fn a_pod_init_runs_in_its_pods_cgroup() {
    require_v1!("a_pod_init_runs_in_its_pods_cgroup");
    let (d, mut rt) = daemon_with(&[]).await;
    let (mut pc, parent) = pod_with_parent(&d, "shared");
    if let Some(sc) = pc.linux.as_mut().and_then(|l| l.security_context.as_mut()) {
        sc.namespace_options = Some(cri::NamespaceOption {
            pid: cri::NamespaceMode::Pod as i32,
            ..Default::default()
        });
    }
    let pod = run_pod(&mut rt, &pc).await;
    let line = std::fs::read_to_string(d.run_root().join("pods").join(&pod).join("init.pid"))
        .expect("init.pid");
    let pid = line.split_whitespace().next().expect("pid");
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("cgroup");
    let leaf = format!("{parent}/{pod}");
    for controller in ["memory", "cpu", "pids"] {
        assert!(
            own.lines()
                .any(|l| l.contains(controller) && l.ends_with(&leaf)),
            "{controller} not {leaf}: {own}"
        );
    }
    stop_remove_pod(&mut rt, &pod).await;
    assert!(!exists("memory", &leaf) && !exists("memory", &parent));
    assert_nothing_left(&d);
}
