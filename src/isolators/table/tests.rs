//! The table's order, and cleanup in reverse when a prepare fails half-way, with isolators
//! that only record what is asked of them.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::*;
use crate::containerizer::paths::Paths;
use crate::containerizer::types::{ContainerConfig, Pod, PodState};
use crate::isolators::docker::runtime::ImageRuntime;

type Log = Arc<Mutex<Vec<String>>>;

/// Records each call as `<hook> <name>`; fails the hook named in `fail`.
struct Recorder {
    name: &'static str,
    log: Log,
    fail: Option<&'static str>,
}

impl Recorder {
    fn call(&self, hook: &'static str) -> Result<(), IsolatorError> {
        self.log
            .lock()
            .expect("log")
            .push(format!("{hook} {}", self.name));
        if self.fail == Some(hook) {
            return Err(IsolatorError::Unavailable(format!("{} refuses", self.name)));
        }
        Ok(())
    }
}

#[async_trait]
impl Isolator for Recorder {
    fn name(&self) -> &'static str {
        self.name
    }
    fn plan_pod(&self, _: &PodConfig, _: &mut PodPlan) -> Result<(), IsolatorError> {
        self.call("plan_pod")
    }
    async fn prepare_pod(&self, _: &mut PodContext<'_>) -> Result<(), IsolatorError> {
        self.call("prepare_pod")
    }
    async fn cleanup_pod(&self, _: &mut PodContext<'_>) -> Result<(), IsolatorError> {
        self.call("cleanup_pod")
    }
    fn prepare(&self, _: &ContainerContext<'_>, _: &mut LaunchSpec) -> Result<(), IsolatorError> {
        self.call("prepare")
    }
    fn isolate(&self, _: &ContainerContext<'_>, _: ProcessId) -> Result<(), IsolatorError> {
        self.call("isolate")
    }
    fn cleanup(&self, _: &ContainerContext<'_>) -> Result<(), IsolatorError> {
        self.call("cleanup")
    }
}

fn table(log: &Log, fail: Option<(&'static str, &'static str)>) -> Isolators {
    let make = |name| -> Box<dyn Isolator> {
        Box::new(Recorder {
            name,
            log: log.clone(),
            fail: fail.filter(|(n, _)| *n == name).map(|(_, hook)| hook),
        })
    };
    Isolators::of(vec![make("a/one"), make("b/two"), make("c/three")])
}

fn taken(log: &Log) -> Vec<String> {
    std::mem::take(&mut *log.lock().expect("log"))
}

fn pod() -> Pod {
    Pod {
        id: "p".into(),
        config: PodConfig::default(),
        state: PodState::Ready,
        created_at_ns: 0,
        netns: None,
        ips: Vec::new(),
    }
}

#[tokio::test]
async fn pods_prepare_in_order_and_a_failure_cleans_up_in_reverse() {
    let log = Log::default();
    let paths = Paths::new(
        std::path::Path::new("/nonexistent"),
        std::path::Path::new("/nonexistent"),
    );
    let t = table(&log, None);
    assert_eq!(t.names(), ["a/one", "b/two", "c/three"]);
    t.plan_pod(&PodConfig::default()).expect("plan");
    let mut p = pod();
    t.prepare_pod(&mut PodContext {
        pod: &mut p,
        paths: &paths,
        init_cgroups: Vec::new(),
    })
    .await
    .expect("prepare");
    t.cleanup_pod(&mut PodContext {
        pod: &mut p,
        paths: &paths,
        init_cgroups: Vec::new(),
    })
    .await
    .expect("cleanup");
    assert_eq!(
        taken(&log),
        [
            "plan_pod a/one",
            "plan_pod b/two",
            "plan_pod c/three",
            "prepare_pod a/one",
            "prepare_pod b/two",
            "prepare_pod c/three",
            "cleanup_pod c/three",
            "cleanup_pod b/two",
            "cleanup_pod a/one",
        ]
    );

    // The second fails: it and the first are cleaned up, last first; the third is
    // never touched. The error names the isolator.
    let t = table(&log, Some(("b/two", "prepare_pod")));
    let e = t
        .prepare_pod(&mut PodContext {
            pod: &mut p,
            paths: &paths,
            init_cgroups: Vec::new(),
        })
        .await
        .expect_err("b fails");
    assert_eq!(e.to_string(), "b/two: b/two refuses");
    assert_eq!(
        taken(&log),
        [
            "prepare_pod a/one",
            "prepare_pod b/two",
            "cleanup_pod b/two",
            "cleanup_pod a/one"
        ]
    );

    // Cleanup goes on past a failure and reports the first one.
    let t = table(&log, Some(("b/two", "cleanup_pod")));
    let e = t
        .cleanup_pod(&mut PodContext {
            pod: &mut p,
            paths: &paths,
            init_cgroups: Vec::new(),
        })
        .await
        .expect_err("b fails");
    assert_eq!(e.isolator, "b/two");
    assert_eq!(
        taken(&log),
        [
            "cleanup_pod c/three",
            "cleanup_pod b/two",
            "cleanup_pod a/one"
        ]
    );
}

#[test]
fn containers_prepare_in_order_and_a_failure_cleans_up_in_reverse() {
    let log = Log::default();
    let paths = Paths::new(
        std::path::Path::new("/nonexistent"),
        std::path::Path::new("/nonexistent"),
    );
    let (config, image) = (ContainerConfig::default(), ImageRuntime::default());
    let ctx = ContainerContext {
        id: "c",
        config: &config,
        pod: None,
        image: &image,
        rootfs: std::path::Path::new("/nonexistent"),
        writable: None,
        paths: &paths,
        pid_target: None,
    };
    let mut spec: LaunchSpec = serde_json::from_value(serde_json::json!({
        "rootfs": "/r", "args": ["true"], "env": [], "cwd": "/", "uid": 0, "gid": 0,
    }))
    .expect("spec");
    let me = ProcessId {
        pid: 1,
        start_time: 1,
    };
    let t = table(&log, None);
    t.prepare(&ctx, &mut spec).expect("prepare");
    t.isolate(&ctx, me).expect("isolate");
    t.cleanup(&ctx).expect("cleanup");
    assert_eq!(
        taken(&log),
        [
            "prepare a/one",
            "prepare b/two",
            "prepare c/three",
            "isolate a/one",
            "isolate b/two",
            "isolate c/three",
            "cleanup c/three",
            "cleanup b/two",
            "cleanup a/one",
        ]
    );
    let t = table(&log, Some(("c/three", "prepare")));
    let e = t.prepare(&ctx, &mut spec).expect_err("c fails");
    assert_eq!(e.isolator, "c/three");
    assert_eq!(
        taken(&log),
        [
            "prepare a/one",
            "prepare b/two",
            "prepare c/three",
            "cleanup c/three",
            "cleanup b/two",
            "cleanup a/one",
        ]
    );
}

/// The parts of a standard table that need no node: a CNI without networks, cgroups
/// over a fake tree in `dir`, seccomp without profiles.
fn parts(
    dir: &std::path::Path,
) -> (
    crate::isolators::network::cni::Cni,
    Cgroups,
    crate::isolators::linux::seccomp::Seccomp,
) {
    let cni = crate::isolators::network::cni::Cni::new(crate::isolators::network::cni::CniConfig {
        conf_dir: "/nonexistent".into(),
        bin_dirs: Vec::new(),
        cache_dir: "/nonexistent".into(),
        plugin_timeout: std::time::Duration::from_secs(1),
    });
    let cgroups = crate::isolators::cgroups::tests::fake(dir);
    let seccomp = crate::isolators::linux::seccomp::Seccomp::new("/nonexistent".into(), false);
    (cni, cgroups, seccomp)
}

#[test]
fn a_selection_keeps_the_tables_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cni, cgroups, seccomp) = parts(dir.path());
    let cgroups = cgroups.retain_subsystems(|n| n != "cgroups/blkio");
    assert!(!cgroups.subsystem_names().contains(&"cgroups/blkio"));
    assert!(cgroups.subsystem_names().contains(&"cgroups/mem"));
    let keep = |n: &str| matches!(n, "linux/seccomp" | "cgroups" | "docker/runtime");
    let t = Isolators::selected(
        cni,
        "/nonexistent/ucr".into(),
        cgroups,
        Vec::new(),
        seccomp,
        &keep,
    );
    assert_eq!(t.names(), ["docker/runtime", "cgroups", "linux/seccomp"]);
}

/// `--isolation`'s names (config::isolation::KNOWN) are exactly the table's and the
/// cgroups subsystems', so neither can drift from the other.
#[test]
fn isolation_knows_every_isolator_of_the_table() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cni, cgroups, seccomp) = parts(dir.path());
    let table = Isolators::standard(cni, "/nonexistent/ucr".into(), cgroups, Vec::new(), seccomp);
    let opts = crate::isolators::cgroups::CgroupsOptions {
        hierarchy: dir.path().join("h"),
        root: crate::isolators::cgroups::path::CgroupPath::parse("/ucr").expect("root"),
        net_cls: Some(
            crate::isolators::cgroups::subsystems::net_cls::Handles::parse("0x10", "0x1,0xff")
                .expect("handles"),
        ),
        pids_limit: None,
        state_dir: dir.path().join("s"),
    };
    let mut names: Vec<&str> = table.names();
    names.extend(
        crate::isolators::cgroups::default_subsystems(&opts)
            .iter()
            .map(|s| s.name()),
    );
    // The disk isolators are made by the daemon, as --isolation asks.
    names.extend(["disk/du", "disk/xfs"]);
    names.retain(|n| *n != "cgroups");
    let known = crate::config::isolation::KNOWN;
    for n in &names {
        assert!(known.contains(n), "{n} is not in config::isolation::KNOWN");
    }
    for k in known {
        assert!(names.contains(&k), "{k} is in KNOWN but not in the table");
    }
}

#[test]
fn the_standard_table_has_the_mesos_names_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cni, cgroups, seccomp) = parts(dir.path());
    let t = Isolators::standard(cni, "/nonexistent/ucr".into(), cgroups, Vec::new(), seccomp);
    assert_eq!(
        t.names(),
        [
            "docker/runtime",
            "cgroups",
            "namespaces/user",
            "namespaces/ipc",
            "linux/sysctls",
            "network/cni",
            "namespaces/pid",
            "filesystem/linux",
            "linux/devices",
            "volume/sandbox_path",
            "volume/host_path",
            "posix/rlimits",
            "linux/apparmor",
            "linux/selinux",
            "linux/capabilities",
            "linux/nnp",
            "linux/seccomp",
        ]
    );
}
