//! The policy on real cgroups of this host: what the kernel's v1 controller lists after
//! `apply_v1`, and what processes in a v1 or v2 cgroup may actually open and create.
//!
//! Needs root, and a devices v1 hierarchy (for the v1 tests) or a cgroup2 mount at
//! /sys/fs/cgroup/unified or /sys/fs/cgroup (for the v2 tests); each test prints why it
//! is skipped otherwise. Every cgroup made is removed again, also when a test fails.
//! Probes run in a `sh` that first moves itself into the cgroup (`echo 0 > cgroup.procs`)
//! and then opens or creates a node; an `EPERM` from the device check is told apart from
//! other failures by its message, hence `LC_ALL=C`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use super::effective::Effective;
use super::rules::{policy, Access, DeviceKind, DeviceRule};
use super::v1::{apply_v1, hierarchy, read_v1};
use super::v2::apply_v2;
use crate::sys::bpf;

/// The tests below make cgroups and device nodes: one at a time keeps failures readable.
static SERIAL: Mutex<()> = Mutex::new(());

const R: Access = Access::READ;
const W: Access = Access::WRITE;

fn is_root(test: &str) -> bool {
    let root = nix::unistd::geteuid().is_root();
    if !root {
        eprintln!("SKIPPED {test}: needs root (cgroups, device nodes, bpf)");
    }
    root
}

fn v1_base(test: &str) -> Option<PathBuf> {
    let base = hierarchy().expect("mountinfo");
    if base.is_none() {
        eprintln!("SKIPPED {test}: no cgroup v1 devices hierarchy is mounted");
    }
    base
}

fn v2_base(test: &str) -> Option<PathBuf> {
    let mounts = crate::sys::mount::mountinfo().expect("mountinfo");
    let base = ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| {
            mounts
                .iter()
                .any(|m| m.mount_point == *p && m.fs_type == "cgroup2")
        });
    if base.is_none() {
        eprintln!("SKIPPED {test}: no cgroup2 hierarchy is mounted");
    }
    base
}

/// A cgroup made for a test, removed on drop.
struct Cgroup(PathBuf);

impl Cgroup {
    fn new(base: &Path, prefix: &str) -> Cgroup {
        let dir = base.join(format!("{prefix}-{:08x}", rand::random::<u32>()));
        std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        Cgroup(dir)
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        // The probes have been waited for, so the cgroup is empty.
        if let Err(e) = std::fs::remove_dir(&self.0) {
            eprintln!("could not remove cgroup {}: {e}", self.0.display());
        }
    }
}

/// Runs `script` (with `$2…` = `args`) in a shell that has joined `cgroup`: Ok when it
/// succeeds, else its stderr.
fn in_cgroup(cgroup: &Path, script: &str, args: &[&Path]) -> Result<(), String> {
    let out = Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("echo 0 > \"$1\" || exit 99; {script}"))
        .arg("sh")
        .arg(cgroup.join("cgroup.procs"))
        .args(args)
        .env("LC_ALL", "C")
        .output()
        .expect("run sh");
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    match out.status.code() {
        Some(0) => Ok(()),
        Some(99) => panic!("could not join {}: {stderr}", cgroup.display()),
        _ => Err(stderr),
    }
}

/// Whether a process in `cgroup` may open `node` for `access` (read, write or both);
/// panics on any failure but the device check's EPERM.
fn may_open(cgroup: &Path, node: &Path, access: Access) -> bool {
    let redirect = match (access.contains(R), access.contains(W)) {
        (true, false) => "exec 3<\"$2\"",
        (false, true) => "exec 3>\"$2\"",
        _ => "exec 3<>\"$2\"",
    };
    allowed(in_cgroup(cgroup, redirect, &[node]), "open", node)
}

/// Whether a process in `cgroup` may create a block device node 7:1 at `path`.
fn may_mknod(cgroup: &Path, path: &Path) -> bool {
    let result = in_cgroup(cgroup, "exec mknod \"$2\" b 7 1", &[path]);
    let _ = std::fs::remove_file(path);
    allowed(result, "mknod", path)
}

fn allowed(result: Result<(), String>, op: &str, path: &Path) -> bool {
    match result {
        Ok(()) => true,
        Err(e) if e.contains("Operation not permitted") => false,
        Err(e) => panic!("{op} {}: unexpected failure: {e}", path.display()),
    }
}

/// A block device node 7:0 (the first loop device), mode 0666, in a fresh directory.
fn loop_node() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = dir.path().join("loop0");
    crate::sys::fs::mknod_block(&node, 0o666, 7, 0).expect("mknod b 7 0");
    (dir, node)
}

fn deny(rule: &str) -> DeviceRule {
    DeviceRule {
        allow: false,
        ..rule.parse().expect("rule")
    }
}

fn allow(rule: &str) -> DeviceRule {
    rule.parse().expect("rule")
}

/// What `devices.list` shows for the state a list leaves.
fn listed(state: &Effective) -> Vec<DeviceRule> {
    if state.default_allow {
        vec![DeviceRule::all(true)]
    } else {
        state.exceptions.clone()
    }
}

#[test]
fn root_v1_devices_list_matches_the_model() {
    let test = "root_v1_devices_list_matches_the_model";
    if !is_root(test) {
        return;
    }
    let Some(base) = v1_base(test) else {
        return;
    };
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let cgroup = Cgroup::new(&base, "ucr-test");
    let lists = [
        policy(false, &[]),
        policy(
            false,
            &[allow("b 7:0 rw"), allow("c 1:3 r"), allow("b 7:0 m")],
        ),
        policy(false, &[deny("c 10:200 rw"), deny("c 5:0 w")]),
        policy(true, &[]),
        vec![DeviceRule::all(false)],
    ];
    for rules in lists {
        apply_v1(&cgroup.0, &rules).expect("apply_v1");
        let want = listed(&Effective::of(&rules).expect("model"));
        assert_eq!(
            read_v1(&cgroup.0).expect("read_v1"),
            want,
            "after {rules:?}"
        );
    }
}

#[test]
fn root_v2_enforces_the_policy_and_replaces_it_live() {
    let test = "root_v2_enforces_the_policy_and_replaces_it_live";
    if !is_root(test) {
        return;
    }
    let Some(base) = v2_base(test) else {
        return;
    };
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let cgroup = Cgroup::new(&base, "ucr-devtest");
    let (dir, node) = loop_node();

    apply_v2(&cgroup.0, &policy(false, &[])).expect("apply the default policy");
    assert!(
        may_open(&cgroup.0, Path::new("/dev/null"), R | W),
        "/dev/null"
    );
    assert!(
        !may_open(&cgroup.0, &node, R | W),
        "b 7:0 is not in the defaults"
    );
    assert!(!may_open(&cgroup.0, &node, R));
    assert!(
        may_mknod(&cgroup.0, &dir.path().join("new")),
        "mknod of anything"
    );

    apply_v2(&cgroup.0, &policy(false, &[allow("b 7:0 rw")])).expect("replace");
    assert!(
        may_open(&cgroup.0, &node, R | W),
        "allowed after the update"
    );
    assert!(may_open(&cgroup.0, Path::new("/dev/null"), R | W));

    let cg = std::fs::File::open(&cgroup.0).expect("open cgroup");
    let ids = bpf::query(std::os::fd::AsFd::as_fd(&cg)).expect("query");
    assert_eq!(ids.len(), 1, "the update replaced the program: {ids:?}");
}

/// The same lists, the same opens, under v1 and under v2: both decide as the model does.
#[test]
fn root_v1_and_v2_agree_with_the_model() {
    let test = "root_v1_and_v2_agree_with_the_model";
    if !is_root(test) {
        return;
    }
    let (Some(v1), Some(v2)) = (v1_base(test), v2_base(test)) else {
        return;
    };
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (v1, v2) = (
        Cgroup::new(&v1, "ucr-test"),
        Cgroup::new(&v2, "ucr-devtest"),
    );
    let (dir, node) = loop_node();
    let lists = [
        policy(false, &[]),
        policy(false, &[allow("b 7:0 r")]),
        policy(false, &[allow("b 7:* rw")]),
        policy(true, &[]),
        vec![DeviceRule::all(true), deny("b 7:0 w")],
        vec![DeviceRule::all(false), allow("b *:0 w")],
        vec![DeviceRule::all(false)],
    ];
    for rules in lists {
        let model = Effective::of(&rules).expect("model");
        apply_v1(&v1.0, &rules).expect("apply_v1");
        apply_v2(&v2.0, &rules).expect("apply_v2");
        for access in [R, W, R | W] {
            let want = model.permits(DeviceKind::Block, 7, 0, access);
            for cgroup in [&v1.0, &v2.0] {
                let got = may_open(cgroup, &node, access);
                assert_eq!(
                    got,
                    want,
                    "open {access} in {} under {rules:?}",
                    cgroup.display()
                );
            }
        }
        let want = model.permits(DeviceKind::Block, 7, 1, Access::MKNOD);
        for cgroup in [&v1.0, &v2.0] {
            let got = may_mknod(cgroup, &dir.path().join("made"));
            assert_eq!(got, want, "mknod in {} under {rules:?}", cgroup.display());
        }
    }
}

/// Something else attached a device program too: `apply_v2` attaches its own and then
/// detaches every other, leaving one.
#[test]
fn root_v2_apply_takes_over_from_several_programs() {
    let test = "root_v2_apply_takes_over_from_several_programs";
    if !is_root(test) {
        return;
    }
    let Some(base) = v2_base(test) else {
        return;
    };
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let cgroup = Cgroup::new(&base, "ucr-devtest");
    let (_dir, node) = loop_node();
    let cg = std::fs::File::open(&cgroup.0).expect("open cgroup");
    let cg = std::os::fd::AsFd::as_fd(&cg);
    let allow_all: Vec<u64> = super::program::program(&policy(true, &[]))
        .expect("program")
        .iter()
        .map(|i| i.to_u64())
        .collect();
    for _ in 0..2 {
        let prog = bpf::load_cgroup_device_program(&allow_all, "Apache-2.0").expect("load");
        bpf::attach(cg, std::os::fd::AsFd::as_fd(&prog), None).expect("attach");
    }
    assert_eq!(bpf::query(cg).expect("query").len(), 2);

    apply_v2(&cgroup.0, &policy(false, &[])).expect("apply");
    assert_eq!(bpf::query(cg).expect("query").len(), 1);
    assert!(
        !may_open(&cgroup.0, &node, R),
        "the new policy alone decides"
    );
    assert!(may_open(&cgroup.0, Path::new("/dev/null"), R | W));
}
