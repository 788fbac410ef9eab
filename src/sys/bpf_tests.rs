//! Loading needs root (CAP_BPF or CAP_SYS_ADMIN), attaching also a cgroup2 hierarchy at
//! /sys/fs/cgroup/unified (or /sys/fs/cgroup); without them each test prints why it is
//! skipped. The policy itself is tested in `isolators::cgroups::devices`.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use super::*;

/// `w0 = verdict; exit`.
fn constant(verdict: u8) -> [u64; 2] {
    [
        u64::from_ne_bytes([0xb4, 0, 0, 0, verdict, 0, 0, 0]),
        u64::from_ne_bytes([0x95, 0, 0, 0, 0, 0, 0, 0]),
    ]
}

fn root(test: &str) -> bool {
    let root = nix::unistd::geteuid().is_root();
    if !root {
        eprintln!("SKIPPED {test}: needs root (bpf(2) program loads)");
    }
    root
}

/// A fresh cgroup2 directory, removed on drop.
struct Cgroup(PathBuf);

impl Cgroup {
    fn new(test: &str) -> Option<Cgroup> {
        let mounts = crate::sys::mount::mountinfo().expect("mountinfo");
        let Some(base) = ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
            .into_iter()
            .map(Path::new)
            .find(|p| {
                mounts
                    .iter()
                    .any(|m| m.mount_point == *p && m.fs_type == "cgroup2")
            })
        else {
            eprintln!("SKIPPED {test}: no cgroup2 hierarchy mounted");
            return None;
        };
        let dir = base.join(format!("ucr-bpftest-{:08x}", rand::random::<u32>()));
        std::fs::create_dir(&dir).expect("create cgroup");
        Some(Cgroup(dir))
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir(&self.0) {
            eprintln!("could not remove {}: {e}", self.0.display());
        }
    }
}

#[test]
fn loads_a_program_under_a_non_gpl_license() {
    if !root("loads_a_program_under_a_non_gpl_license") {
        return;
    }
    load_cgroup_device_program(&constant(1), "Apache-2.0").expect("load");
}

#[test]
fn a_rejected_program_reports_the_verifier_log() {
    if !root("a_rejected_program_reports_the_verifier_log") {
        return;
    }
    // `exit` with r0 never set.
    let exit_only = [constant(1)[1]];
    let err = load_cgroup_device_program(&exit_only, "Apache-2.0").expect_err("rejected");
    let text = err.to_string();
    assert!(text.contains("verifier log:"), "{text}");
    assert!(text.contains("R0"), "the log names the register: {text}");
}

#[test]
fn attach_replace_query_detach() {
    let test = "attach_replace_query_detach";
    if !root(test) {
        return;
    }
    let Some(cgroup) = Cgroup::new(test) else {
        return;
    };
    let dir = std::fs::File::open(&cgroup.0).expect("open cgroup");
    let cg = dir.as_fd();
    assert_eq!(query(cg).expect("query"), Vec::<u32>::new());

    let first = load_cgroup_device_program(&constant(1), "Apache-2.0").expect("load");
    let second = load_cgroup_device_program(&constant(1), "Apache-2.0").expect("load");
    attach(cg, first.as_fd(), None).expect("attach");
    attach(cg, second.as_fd(), None).expect("attach a second");
    let ids = query(cg).expect("query");
    assert_eq!(ids.len(), 2, "{ids:?}");

    // The replacement takes the first one's place.
    let third = load_cgroup_device_program(&constant(1), "Apache-2.0").expect("load");
    attach(cg, third.as_fd(), Some(first.as_fd())).expect("replace");
    let after = query(cg).expect("query");
    assert_eq!(after.len(), 2, "{after:?}");
    assert_eq!(after[1], ids[1], "the second is untouched");
    assert_ne!(after[0], ids[0], "the first was replaced");

    let by_id = program_by_id(after[0]).expect("by id");
    detach(cg, by_id.as_fd()).expect("detach");
    detach(cg, second.as_fd()).expect("detach");
    assert_eq!(query(cg).expect("query"), Vec::<u32>::new());
}
