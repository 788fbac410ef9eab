//! RuntimeDefault as data: what it allows whom (before compiling).

use super::super::default::{self, ALLOWED};
use super::super::profile::{Action, Profile};
use super::super::select::select;
use super::{default_caps, host};

/// The system calls `p` allows without conditions, and those it allows only with some
/// argument values.
fn allowed(p: &Profile) -> (Names, Names) {
    let allow = p
        .syscalls
        .iter()
        .filter(|r| r.action == Some(Action::Allow));
    let (plain, conditional): (Vec<_>, Vec<_>) = allow.partition(|r| r.args.is_empty());
    let names = |rules: Vec<&super::super::profile::Rule>| {
        Names(
            rules
                .iter()
                .flat_map(|r| r.syscalls())
                .map(str::to_string)
                .collect(),
        )
    };
    (names(plain), names(conditional))
}

struct Names(Vec<String>);

impl Names {
    fn contains(&self, name: &&str) -> bool {
        self.0.iter().any(|n| n == name)
    }
}

#[test]
fn it_checks_and_refuses_by_default_with_eperm() {
    let p = default::profile();
    p.check().expect("the default profile is valid");
    assert_eq!(p.default_action, Some(Action::Errno));
    assert_eq!(p.default_errno_ret, Some(libc::EPERM as u32));
}

#[test]
fn io_uring_is_allowed_to_nobody() {
    let p = default::profile();
    let all: Vec<String> = caps::all()
        .iter()
        .map(|c| c.to_string().trim_start_matches("CAP_").to_string())
        .collect();
    for caps in [default_caps(), all.iter().map(String::as_str).collect()] {
        let selected = select(&p, &host(&caps, (6, 18)));
        let (plain, conditional) = allowed(&selected);
        for call in ["io_uring_setup", "io_uring_enter", "io_uring_register"] {
            assert!(
                !plain.contains(&call) && !conditional.contains(&call),
                "{call}"
            );
        }
    }
    assert!(!ALLOWED.iter().any(|n| n.starts_with("io_uring")));
}

#[test]
fn the_capability_calls_need_their_capability() {
    let p = default::profile();
    let (plain, _) = allowed(&select(&p, &host(&default_caps(), (6, 18))));
    for call in [
        "mount",
        "unshare",
        "setns",
        "umount2",
        "sethostname",
        "bpf",
        "kcmp",
        "pidfd_getfd",
        "reboot",
        "init_module",
        "settimeofday",
        "open_by_handle_at",
        "clone3",
    ] {
        assert!(!plain.contains(&call), "{call} without its capability");
    }
    // Docker's default set has SYS_CHROOT.
    assert!(plain.contains(&"chroot"));

    let with = |cap: &str| {
        let mut caps = default_caps();
        caps.push(cap);
        select(&p, &host(&caps, (6, 18)))
    };
    let admin = with("SYS_ADMIN");
    let (plain, conditional) = allowed(&admin);
    for call in [
        "mount",
        "unshare",
        "setns",
        "umount2",
        "sethostname",
        "clone",
        "clone3",
        "open_tree",
        "move_mount",
    ] {
        assert!(plain.contains(&call), "{call} with SYS_ADMIN");
    }
    assert!(
        !conditional.contains(&"clone"),
        "no masked clone with SYS_ADMIN"
    );
    assert!(
        !admin
            .syscalls
            .iter()
            .any(|r| r.action == Some(Action::Errno)),
        "clone3 is allowed, not ENOSYS"
    );
    let (plain, _) = allowed(&with("SYS_PTRACE"));
    for call in ["kcmp", "pidfd_getfd", "process_madvise", "ptrace"] {
        assert!(plain.contains(&call), "{call} with SYS_PTRACE");
    }
    assert!(allowed(&with("SYS_TIME")).0.contains(&"clock_settime"));
    assert!(allowed(&with("SYS_MODULE")).0.contains(&"finit_module"));
}

/// Docker allows ptrace to every container on kernels from 4.8 (where seccomp rechecks
/// what a tracer makes its tracee do); before, only with CAP_SYS_PTRACE.
#[test]
fn ptrace_by_kernel_version() {
    let p = default::profile();
    let (now, _) = allowed(&select(&p, &host(&default_caps(), (6, 18))));
    assert!(now.contains(&"ptrace") && now.contains(&"process_vm_readv"));
    let (old, _) = allowed(&select(&p, &host(&default_caps(), (4, 4))));
    assert!(!old.contains(&"ptrace"));
    let (old_traced, _) = allowed(&select(&p, &host(&["SYS_PTRACE"], (4, 4))));
    assert!(old_traced.contains(&"ptrace"));
}

#[test]
fn argument_conditions_without_sys_admin() {
    let p = select(&default::profile(), &host(&default_caps(), (6, 18)));
    let (plain, conditional) = allowed(&p);
    for call in ["clone", "personality", "socket"] {
        assert!(
            !plain.contains(&call) && conditional.contains(&call),
            "{call}"
        );
    }
    let clone3 = p
        .syscalls
        .iter()
        .find(|r| r.syscalls() == ["clone3"])
        .expect("a clone3 rule");
    assert_eq!(
        (clone3.action, clone3.errno_ret),
        (Some(Action::Errno), Some(libc::ENOSYS as u32))
    );
    assert!(
        plain.contains(&"arch_prctl") && plain.contains(&"modify_ldt"),
        "amd64's own"
    );
    assert!(!plain.contains(&"set_tls"), "arm's own");
}
