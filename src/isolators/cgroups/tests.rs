//! The cgroups isolator against fake cgroup2 trees in a tempdir (this node's cgroup2
//! mount has no controllers, so v2 is exercised on files laid out as the kernel lays them
//! out), and against a fake v1 layout for what v1 refuses. The real v1 hierarchies are
//! exercised end to end by `test/cgroups.rs`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::subsystems::{self, Spec, Subsystem};
use super::*;
use crate::containerizer::paths::Paths;
use crate::containerizer::types::{Container, ContainerConfig, ContainerState, Pod, PodState};
use crate::isolators::docker::runtime::ImageRuntime;

/// A fake unified hierarchy rooted at `root`, offering `controllers`.
pub(crate) fn fake_v2(root: &Path, controllers: &str) -> Layout {
    std::fs::create_dir_all(root).expect("root");
    std::fs::write(root.join("cgroup.controllers"), controllers).expect("controllers");
    std::fs::write(root.join("cgroup.subtree_control"), "").expect("subtree");
    Layout::V2 {
        root: root.to_path_buf(),
        controllers: controllers.split_whitespace().map(String::from).collect(),
    }
}

/// The isolator over a fake v2 tree under `dir`, with every subsystem and net_cls off.
pub(crate) fn fake(dir: &Path) -> Cgroups {
    let layout = fake_v2(&dir.join("cgroup"), "cpu cpuset memory pids hugetlb io");
    let opts = CgroupsOptions {
        hierarchy: dir.join("hierarchy"),
        root: CgroupPath::parse("/ucr").expect("root"),
        net_cls: None,
        pids_limit: None,
        state_dir: dir.join("state"),
    };
    // The v2 device policy is a BPF program the kernel attaches to a real cgroup2
    // directory only; it is tested on this node's cgroup2 mount (`devices::root_tests`).
    let mut subs = default_subsystems(&opts);
    subs.retain(|s| s.name() != "cgroups/devices");
    Cgroups::with_layout(layout, opts, subs).expect("isolator")
}

fn pod(id: &str, parent: Option<&str>) -> Pod {
    let config = crate::containerizer::types::PodConfig {
        cgroup_parent: parent.map(String::from),
        ..Default::default()
    };
    Pod {
        id: id.into(),
        config,
        state: PodState::Ready,
        created_at_ns: 1,
        netns: None,
        ips: Vec::new(),
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    cgroups: Cgroups,
    paths: Paths,
    image: ImageRuntime,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let cgroups = fake(dir.path());
    let paths = Paths::new(&dir.path().join("root"), &dir.path().join("run"));
    Fixture {
        root: dir.path().join("cgroup"),
        _dir: dir,
        cgroups,
        paths,
        image: ImageRuntime::default(),
    }
}

impl Fixture {
    fn ctx<'a>(
        &'a self,
        id: &'a str,
        c: &'a ContainerConfig,
        pod: Option<&'a Pod>,
    ) -> ContainerContext<'a> {
        ContainerContext {
            id,
            config: c,
            pod,
            image: &self.image,
            rootfs: Path::new("/nonexistent"),
            writable: None,
            paths: &self.paths,
            pid_target: None,
        }
    }
}

/// A real cgroup directory's files go with it on rmdir; a fake one's would block it.
/// Drops every regular file below the root, as the kernel would on rmdir.
fn drop_files_below(root: &Path) {
    fn walk(dir: &Path, top: bool) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, false);
            } else if !top {
                std::fs::remove_file(&p).expect("drop file");
            }
        }
    }
    walk(root, true);
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .trim()
        .to_string()
}

#[test]
fn v2_container_gets_its_limits_in_the_kernels_files_and_is_cloned_into_it() {
    let f = fixture();
    let p = pod("pod1", Some("/kubepods/burstable/podabc"));
    let mut c = ContainerConfig::default();
    c.resources.memory_limit = Some(64 << 20);
    c.resources.memory_swap_limit = Some(96 << 20);
    c.resources.pids_limit = Some(42);
    c.resources.cpu_shares = Some(1024);
    c.resources.unified = [("memory.high".to_string(), "50000000".to_string())].into();
    let dir = f.root.join("kubepods/burstable/podabc/c1");
    // The kernel makes these files with the cgroup; the swap one exists with swap on.
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("memory.swap.max"), "max").expect("swap file");
    let mut launch = crate::launcher::LaunchSpec {
        ..serde_json::from_str(r#"{"rootfs":"/","args":[],"env":[],"cwd":"/","uid":0,"gid":0}"#)
            .expect("spec")
    };
    f.cgroups
        .prepare(&f.ctx("c1", &c, Some(&p)), &mut launch)
        .expect("prepare");
    assert_eq!(read(&dir.join("memory.max")), (64u64 << 20).to_string());
    assert_eq!(
        read(&dir.join("memory.swap.max")),
        (32u64 << 20).to_string(),
        "v2 limits swap alone: memory+swap less memory"
    );
    assert_eq!(read(&dir.join("pids.max")), "42");
    assert_eq!(
        read(&dir.join("cpu.weight")),
        "39",
        "shares 1024 as a weight"
    );
    assert_eq!(read(&dir.join("memory.high")), "50000000");
    assert_eq!(launch.clone_into_cgroup.as_deref(), Some(dir.as_path()));
    assert_eq!(launch.cgroups, vec![dir.clone()]);
    assert_eq!(
        launch.monitor_cgroups,
        vec![f.root.join("ucr/monitors/cgroup.procs")]
    );
    // Every ancestor enabled its controllers for its children (a fake file keeps the
    // last write only; the kernel's accumulates).
    for level in [
        "",
        "kubepods",
        "kubepods/burstable",
        "kubepods/burstable/podabc",
    ] {
        let s = read(&f.root.join(level).join("cgroup.subtree_control"));
        assert!(s.starts_with('+'), "{level}: {s:?}");
    }
    let record = f.cgroups.records.get("c1").expect("recorded");
    assert_eq!(
        record.own,
        vec![CgroupPath::parse("/kubepods/burstable/podabc/c1").expect("p")]
    );
    // The test made the directories (for the swap file), so nothing is recorded as
    // made, and nothing above the container's own cgroup will be removed.
    assert!(record.made.is_empty(), "{record:?}");
}

#[test]
fn v2_update_rewrites_only_what_it_sets_and_a_refusal_names_the_field() {
    let f = fixture();
    let c = ContainerConfig::default();
    let mut launch: crate::launcher::LaunchSpec =
        serde_json::from_str(r#"{"rootfs":"/","args":[],"env":[],"cwd":"/","uid":0,"gid":0}"#)
            .expect("spec");
    f.cgroups
        .prepare(&f.ctx("c2", &c, None), &mut launch)
        .expect("prepare");
    let dir = f.root.join("ucr/c2");
    std::fs::write(dir.join("cpu.max"), "max 100000").expect("cpu.max");
    let r = Resources {
        cpu_quota: Some(50_000),
        cpu_period: Some(100_000),
        ..Default::default()
    };
    f.cgroups
        .update(&f.ctx("c2", &c, None), &r)
        .expect("update");
    assert_eq!(read(&dir.join("cpu.max")), "50000 100000");
    assert!(!dir.join("memory.max").exists(), "untouched");

    let bad = Resources {
        unified: [("cgroup.procs".to_string(), "1".to_string())].into(),
        ..Default::default()
    };
    let e = f
        .cgroups
        .update(&f.ctx("c2", &c, None), &bad)
        .expect_err("refused");
    assert_eq!(
        crate::error::Kind::kind(&e),
        crate::error::ErrorKind::InvalidArgument
    );
    assert!(e.to_string().contains("cgroup.procs"), "{e}");
}

#[test]
fn v2_usage_and_oom_come_from_the_kernels_counters() {
    let f = fixture();
    let c = ContainerConfig::default();
    let mut launch: crate::launcher::LaunchSpec =
        serde_json::from_str(r#"{"rootfs":"/","args":[],"env":[],"cwd":"/","uid":0,"gid":0}"#)
            .expect("spec");
    let ctx = f.ctx("c3", &c, None);
    f.cgroups.prepare(&ctx, &mut launch).expect("prepare");
    let dir = f.root.join("ucr/c3");
    std::fs::write(dir.join("memory.current"), "1000000\n").expect("w");
    std::fs::write(dir.join("memory.max"), "4000000\n").expect("w");
    std::fs::write(
        dir.join("memory.stat"),
        "anon 600000\nfile 400000\ninactive_file 300000\npgfault 77\npgmajfault 3\n",
    )
    .expect("w");
    std::fs::write(
        dir.join("cpu.stat"),
        "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 40\nnr_throttled 3\nthrottled_usec 2500\n",
    )
    .expect("w");
    std::fs::write(dir.join("pids.current"), "4\n").expect("w");
    let mut u = Usage::default();
    f.cgroups.usage(&ctx, &mut u).expect("usage");
    assert_eq!(u.cpu_ns, Some(1_500_000));
    assert_eq!(
        (u.cpu_user_ns, u.cpu_system_ns),
        (Some(1_000_000), Some(500_000))
    );
    assert_eq!(
        u.cpu_throttling,
        Some(crate::isolators::CpuThrottling {
            periods: 40,
            throttled_periods: 3,
            throttled_ns: 2_500_000
        })
    );
    assert_eq!(u.processes, Some(4));
    let m = u.memory.expect("memory");
    assert_eq!(m.usage, 1_000_000);
    assert_eq!(m.working_set, 700_000, "usage less inactive file");
    assert_eq!(m.rss, 600_000);
    assert_eq!((m.page_faults, m.major_page_faults), (77, 3));
    assert_eq!(m.limit, Some(4_000_000));

    assert_eq!(f.cgroups.limitation(&ctx), None);
    std::fs::write(
        dir.join("memory.events"),
        "low 0\nhigh 0\nmax 9\noom 1\noom_kill 1\n",
    )
    .expect("w");
    let l = f.cgroups.limitation(&ctx).expect("an OOM kill");
    assert_eq!(l.kind, crate::isolators::LimitKind::Memory);
    assert!(l.message.contains("4000000"), "{}", l.message);
}

#[test]
fn cleanup_and_recover_remove_what_was_made_and_nothing_else() {
    let f = fixture();
    let p = pod("pod9", None);
    let c = ContainerConfig::default();
    let mut launch: crate::launcher::LaunchSpec =
        serde_json::from_str(r#"{"rootfs":"/","args":[],"env":[],"cwd":"/","uid":0,"gid":0}"#)
            .expect("spec");
    let procs = f.cgroups.make_pod(&p).expect("pod");
    assert!(procs.is_empty(), "no init without a shared PID namespace");
    f.cgroups
        .prepare(&f.ctx("kept", &c, Some(&p)), &mut launch)
        .expect("kept");
    f.cgroups
        .prepare(&f.ctx("orphan", &c, Some(&p)), &mut launch)
        .expect("orphan");
    f.cgroups
        .prepare(&f.ctx("gone", &c, None), &mut launch)
        .expect("gone");
    drop_files_below(&f.root);
    f.cgroups
        .cleanup(&f.ctx("gone", &c, None))
        .expect("cleanup");
    assert!(!f.root.join("ucr/gone").exists());
    assert!(f.cgroups.records.get("gone").is_none());

    // After a restart that knows the pod and one container: the other goes.
    let known_c = Container {
        id: "kept".into(),
        pod_id: Some("pod9".into()),
        config: c.clone(),
        state: ContainerState::Running,
        image_id: String::new(),
        created_at_ns: 0,
        started_at_ns: 0,
        finished_at_ns: 0,
        exit_code: 0,
        ending: None,
        process: None,
    };
    let orphans = f
        .cgroups
        .recover(&Known {
            pods: std::slice::from_ref(&p),
            containers: std::slice::from_ref(&known_c),
        })
        .expect("recover");
    assert_eq!(orphans, vec!["orphan".to_string()]);
    assert!(!f.root.join("ucr/pod9/orphan").exists());
    assert!(f.root.join("ucr/pod9/kept").exists());
    // The pod's own cgroup (ours, without a parent) goes with the pod.
    drop_files_below(&f.root);
    f.cgroups.cleanup(&f.ctx("kept", &c, Some(&p))).expect("c");
    f.cgroups.unmake_pod("pod9").expect("pod");
    assert!(!f.root.join("ucr/pod9").exists());
}

#[test]
fn a_pod_init_gets_a_leaf_of_its_own() {
    let f = fixture();
    let mut p = pod("pod5", Some("/kubepods/pod5uid"));
    p.config.pid = PidMode::Pod;
    let procs = f.cgroups.make_pod(&p).expect("pod");
    assert_eq!(
        procs,
        vec![f.root.join("kubepods/pod5uid/pod5/cgroup.procs")]
    );
    drop_files_below(&f.root);
    f.cgroups.unmake_pod("pod5").expect("unmake");
    assert!(!f.root.join("kubepods/pod5uid/pod5").exists());
    assert!(
        !f.root.join("kubepods/pod5uid").exists(),
        "made because it was missing, so removed"
    );
}

#[test]
fn systemd_parents_and_v2_maps_on_v1_are_refused_before_anything_is_made() {
    let f = fixture();
    let config = crate::containerizer::types::PodConfig {
        cgroup_parent: Some("kubepods-burstable-pod1.slice".into()),
        ..Default::default()
    };
    let e = f
        .cgroups
        .plan_pod(&config, &mut PodPlan::default())
        .expect_err("systemd");
    assert!(e.to_string().contains("cgroupfs"), "{e}");

    let dir = tempfile::tempdir().expect("tempdir");
    let v1 = Layout::V1 {
        hierarchies: vec![layout::Hierarchy {
            mount_point: dir.path().join("memory"),
            controllers: BTreeSet::from(["memory".to_string()]),
        }],
        unified: None,
    };
    let opts = CgroupsOptions {
        hierarchy: dir.path().into(),
        root: CgroupPath::parse("/ucr").expect("root"),
        net_cls: None,
        pids_limit: None,
        state_dir: dir.path().join("state"),
    };
    let subs = default_subsystems(&opts);
    let c1 = Cgroups::with_layout(v1, opts, subs).expect("v1");
    let mut c = ContainerConfig::default();
    c.resources.unified = [("memory.high".to_string(), "1".to_string())].into();
    let e = c1.check(&c, None).expect_err("v1");
    assert!(e.to_string().contains("cgroup v1"), "{e}");
    let made: Vec<_> = std::fs::read_dir(dir.path().join("memory/ucr"))
        .expect("root")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(made, ["monitors"], "nothing but the monitors' cgroup");
}

#[test]
fn v2_cpu_usage_is_read_without_the_cpu_controller_too() {
    let dir = tempfile::tempdir().expect("tempdir");
    let layout = fake_v2(&dir.path().join("cg"), "memory");
    let cg = Cgroup::new(
        std::sync::Arc::new(layout),
        CgroupPath::parse("/x").expect("p"),
    );
    std::fs::create_dir_all(dir.path().join("cg/x")).expect("dir");
    std::fs::write(dir.path().join("cg/x/cpu.stat"), "usage_usec 7\n").expect("w");
    let mut u = Usage::default();
    subsystems::cpu::Cpu.usage(&cg, &mut u).expect("usage");
    assert_eq!(u.cpu_ns, Some(7000));
    // No throttling counters without the cpu controller: none, not zeros.
    assert_eq!(u.cpu_throttling, None);
    let spec = Spec {
        id: "x",
        resources: &Resources::default(),
        privileged: false,
        devices: &[],
        creating: true,
    };
    subsystems::mem::Mem
        .apply(&cg, &spec)
        .expect("nothing to write");
}
