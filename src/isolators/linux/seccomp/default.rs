//! `RuntimeDefault` (and the CRI's `runtime/default`, `docker/default`): the default
//! policy of Docker and containerd, as data of our own, built into a [`Profile`] so that
//! it goes through the same selection and compilation as a profile from a file.
//!
//! Its shape: every system call not allowed here fails with EPERM. Allowed are the
//! calls ordinary programs make ([`ALLOWED`]); more with certain capabilities, because a
//! container given CAP_SYS_ADMIN is meant to mount, CAP_SYS_PTRACE to trace
//! ([`WITH_CAPABILITY`]); a few only on the architectures that have them ([`ON_ARCH`]);
//! and some only with harmless arguments: `personality` with the usual personas,
//! `socket` with any family but AF_ALG and AF_VSOCK, `clone` without namespace flags
//! unless CAP_SYS_ADMIN. Without CAP_SYS_ADMIN, `clone3` (whose flags sit behind a
//! pointer a filter cannot read) fails with ENOSYS, so that libcs fall back to `clone`.
//!
//! The io_uring calls (`io_uring_setup`, `io_uring_enter`, `io_uring_register`) are not
//! allowed: io_uring performs operations the filter never sees, and it has been a
//! steady source of kernel exploits. containerd 2.0 and Docker 25 dropped them from
//! their defaults for that reason.

use super::profile::{Action, Arch, ArchMap, Arg, Condition, Op, Profile, Rule};

/// Allowed for every container.
#[rustfmt::skip]
pub const ALLOWED: &[&str] = &[
    "accept", "accept4", "access", "adjtimex", "alarm",
    "bind", "brk",
    "cachestat", "capget", "capset", "chdir", "chmod", "chown", "chown32", "clock_adjtime",
    "clock_adjtime64", "clock_getres", "clock_getres_time64", "clock_gettime",
    "clock_gettime64", "clock_nanosleep", "clock_nanosleep_time64", "close", "close_range",
    "connect", "copy_file_range", "creat",
    "dup", "dup2", "dup3",
    "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_pwait",
    "epoll_pwait2", "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2", "execve",
    "execveat", "exit", "exit_group",
    "faccessat", "faccessat2", "fadvise64", "fadvise64_64", "fallocate", "fanotify_mark",
    "fchdir", "fchmod", "fchmodat", "fchmodat2", "fchown", "fchown32", "fchownat", "fcntl",
    "fcntl64", "fdatasync", "fgetxattr", "flistxattr", "flock", "fork", "fremovexattr",
    "fsetxattr", "fstat", "fstat64", "fstatat64", "fstatfs", "fstatfs64", "fsync",
    "ftruncate", "ftruncate64", "futex", "futex_requeue", "futex_time64", "futex_wait",
    "futex_waitv", "futex_wake", "futimesat",
    "get_robust_list", "get_thread_area", "getcpu", "getcwd", "getdents", "getdents64",
    "getegid", "getegid32", "geteuid", "geteuid32", "getgid", "getgid32", "getgroups",
    "getgroups32", "getitimer", "getpeername", "getpgid", "getpgrp", "getpid", "getppid",
    "getpriority", "getrandom", "getresgid", "getresgid32", "getresuid", "getresuid32",
    "getrlimit", "getrusage", "getsid", "getsockname", "getsockopt", "gettid",
    "gettimeofday", "getuid", "getuid32", "getxattr", "getxattrat",
    "inotify_add_watch", "inotify_init", "inotify_init1", "inotify_rm_watch", "io_cancel",
    "io_destroy", "io_getevents", "io_pgetevents", "io_pgetevents_time64", "io_setup",
    "io_submit", "ioctl", "ioprio_get", "ioprio_set", "ipc",
    "kill",
    "landlock_add_rule", "landlock_create_ruleset", "landlock_restrict_self", "lchown",
    "lchown32", "lgetxattr", "link", "linkat", "listen", "listmount", "listxattr",
    "listxattrat", "llistxattr", "_llseek", "lremovexattr", "lseek", "lsetxattr", "lstat",
    "lstat64",
    "madvise", "map_shadow_stack", "membarrier", "memfd_create", "memfd_secret", "mincore",
    "mkdir", "mkdirat", "mknod", "mknodat", "mlock", "mlock2", "mlockall", "mmap", "mmap2",
    "mprotect", "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive",
    "mq_timedreceive_time64", "mq_timedsend", "mq_timedsend_time64", "mq_unlink", "mremap",
    "mseal", "msgctl", "msgget", "msgrcv", "msgsnd", "msync", "munlock", "munlockall",
    "munmap",
    "name_to_handle_at", "nanosleep", "newfstatat", "_newselect",
    "open", "openat", "openat2",
    "pause", "pidfd_open", "pidfd_send_signal", "pipe", "pipe2", "pkey_alloc", "pkey_free",
    "pkey_mprotect", "poll", "ppoll", "ppoll_time64", "prctl", "pread64", "preadv",
    "preadv2", "prlimit64", "process_mrelease", "pselect6", "pselect6_time64", "pwrite64",
    "pwritev", "pwritev2",
    "read", "readahead", "readlink", "readlinkat", "readv", "recv", "recvfrom", "recvmmsg",
    "recvmmsg_time64", "recvmsg", "remap_file_pages", "removexattr", "removexattrat",
    "rename", "renameat", "renameat2", "restart_syscall", "riscv_hwprobe", "rmdir", "rseq",
    "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn",
    "rt_sigsuspend", "rt_sigtimedwait", "rt_sigtimedwait_time64", "rt_tgsigqueueinfo",
    "sched_get_priority_max", "sched_get_priority_min", "sched_getaffinity",
    "sched_getattr", "sched_getparam", "sched_getscheduler", "sched_rr_get_interval",
    "sched_rr_get_interval_time64", "sched_setaffinity", "sched_setattr", "sched_setparam",
    "sched_setscheduler", "sched_yield", "seccomp", "select", "semctl", "semget", "semop",
    "semtimedop", "semtimedop_time64", "send", "sendfile", "sendfile64", "sendmmsg",
    "sendmsg", "sendto", "set_robust_list", "set_thread_area", "set_tid_address",
    "setfsgid", "setfsgid32", "setfsuid", "setfsuid32", "setgid", "setgid32", "setgroups",
    "setgroups32", "setitimer", "setpgid", "setpriority", "setregid", "setregid32",
    "setresgid", "setresgid32", "setresuid", "setresuid32", "setreuid", "setreuid32",
    "setrlimit", "setsid", "setsockopt", "setuid", "setuid32", "setxattr", "setxattrat",
    "shmat", "shmctl", "shmdt", "shmget", "shutdown", "sigaltstack", "signalfd",
    "signalfd4", "sigprocmask", "sigreturn", "socketcall", "socketpair", "splice", "stat",
    "stat64", "statfs", "statfs64", "statmount", "statx", "symlink", "symlinkat", "sync",
    "sync_file_range", "syncfs", "sysinfo",
    "tee", "tgkill", "time", "timer_create", "timer_delete", "timer_getoverrun",
    "timer_gettime", "timer_gettime64", "timer_settime", "timer_settime64",
    "timerfd_create", "timerfd_gettime", "timerfd_gettime64", "timerfd_settime",
    "timerfd_settime64", "times", "tkill", "truncate", "truncate64",
    "ugetrlimit", "umask", "uname", "unlink", "unlinkat", "uretprobe", "utime", "utimensat",
    "utimensat_time64", "utimes",
    "vfork", "vmsplice",
    "wait4", "waitid", "waitpid", "write", "writev",
];

/// Allowed when the container has the capability (its bounding set; names without
/// `CAP_`).
pub const WITH_CAPABILITY: &[(&str, &[&str])] = &[
    ("DAC_READ_SEARCH", &["open_by_handle_at"]),
    (
        "SYS_ADMIN",
        &[
            "bpf",
            "clone",
            "clone3",
            "fanotify_init",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "lookup_dcookie",
            "lsm_get_self_attr",
            "lsm_list_modules",
            "lsm_set_self_attr",
            "mount",
            "mount_setattr",
            "move_mount",
            "open_tree",
            "perf_event_open",
            "quotactl",
            "quotactl_fd",
            "setdomainname",
            "sethostname",
            "setns",
            "syslog",
            "umount",
            "umount2",
            "unshare",
        ],
    ),
    ("SYS_BOOT", &["reboot"]),
    ("SYS_CHROOT", &["chroot"]),
    (
        "SYS_MODULE",
        &["delete_module", "init_module", "finit_module"],
    ),
    ("SYS_PACCT", &["acct"]),
    (
        "SYS_PTRACE",
        &[
            "kcmp",
            "pidfd_getfd",
            "process_madvise",
            "process_vm_readv",
            "process_vm_writev",
            "ptrace",
        ],
    ),
    ("SYS_RAWIO", &["iopl", "ioperm"]),
    (
        "SYS_TIME",
        &["settimeofday", "stime", "clock_settime", "clock_settime64"],
    ),
    ("SYS_TTY_CONFIG", &["vhangup"]),
    (
        "SYS_NICE",
        &[
            "get_mempolicy",
            "mbind",
            "set_mempolicy",
            "set_mempolicy_home_node",
        ],
    ),
    ("SYSLOG", &["syslog"]),
    ("BPF", &["bpf"]),
    ("PERFMON", &["perf_event_open"]),
];

/// Allowed on hosts of these architectures (as Docker names them).
pub const ON_ARCH: &[(&[&str], &[&str])] = &[
    (&["amd64", "x32"], &["arch_prctl"]),
    (&["amd64", "x32", "x86"], &["modify_ldt"]),
    (&["ppc64le"], &["sync_file_range2", "swapcontext"]),
    (
        &["arm", "arm64"],
        &[
            "arm_fadvise64_64",
            "arm_sync_file_range",
            "sync_file_range2",
            "breakpoint",
            "cacheflush",
            "set_tls",
        ],
    ),
    (
        &["s390", "s390x"],
        &[
            "s390_pci_mmio_read",
            "s390_pci_mmio_write",
            "s390_runtime_instr",
        ],
    ),
    (&["riscv64"], &["riscv_flush_icache", "riscv_hwprobe"]),
];

/// The personas `personality` may switch to: the default (PER_LINUX), PER_LINUX32,
/// those two with UNAME26, and 0xffffffff, which only asks for the current one.
pub const PERSONAS: &[u64] = &[0x0, 0x8, 0x2_0000, 0x2_0008, 0xffff_ffff];

/// `socket` families refused: AF_ALG (38, the kernel's crypto API) and AF_VSOCK (40,
/// the host-guest channel of virtual machines).
const AF_ALG: u64 = 38;
const AF_VSOCK: u64 = 40;

/// The namespace flags of `clone`: CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER,
/// NEWPID, NEWNET.
pub const CLONE_NAMESPACES: u64 = 0x7e02_0000;

const ENOSYS: u32 = 38;

/// The profile, for any host and container; `select` narrows it to one.
pub fn profile() -> Profile {
    let allow = |names: &[&str]| Rule {
        names: names.iter().map(|n| n.to_string()).collect(),
        action: Some(Action::Allow),
        ..Rule::default()
    };
    let only = |caps: &[&str], arches: &[&str]| {
        Some(Condition {
            caps: caps.iter().map(|c| format!("CAP_{c}")).collect(),
            arches: arches.iter().map(|a| a.to_string()).collect(),
            min_kernel: None,
        })
    };
    let when = |name: &str, index: u32, op: Op, value: u64, value_two: u64| Rule {
        args: vec![Arg {
            index,
            value,
            value_two,
            op,
        }],
        ..allow(&[name])
    };
    let mut rules = vec![allow(ALLOWED)];
    // Ptrace is allowed to all from 4.8, the kernel whose seccomp checks the calls a
    // tracer makes a tracee perform (before, tracing could sidestep the filter).
    rules.push(Rule {
        includes: Some(Condition {
            min_kernel: Some((4, 8)),
            ..Condition::default()
        }),
        ..allow(&["process_vm_readv", "process_vm_writev", "ptrace"])
    });
    // One range per rule: several conditions on one argument would be or-ed (see
    // `compile`), letting both families through.
    rules.push(when("socket", 0, Op::Less, AF_ALG, 0));
    rules.push(when("socket", 0, Op::Equal, AF_ALG + 1, 0));
    rules.push(when("socket", 0, Op::Greater, AF_VSOCK, 0));
    for persona in PERSONAS {
        rules.push(when("personality", 0, Op::Equal, *persona, 0));
    }
    for (arches, names) in ON_ARCH {
        rules.push(Rule {
            includes: only(&[], arches),
            ..allow(names)
        });
    }
    for (cap, names) in WITH_CAPABILITY {
        rules.push(Rule {
            includes: only(&[cap], &[]),
            ..allow(names)
        });
    }
    // Without CAP_SYS_ADMIN: `clone` only without namespace flags (on s390 the flags are
    // the second argument), and `clone3` ENOSYS.
    let no_admin = only(&["SYS_ADMIN"], &[]);
    rules.push(Rule {
        excludes: only(&["SYS_ADMIN"], &["s390", "s390x"]),
        ..when("clone", 0, Op::MaskedEqual, CLONE_NAMESPACES, 0)
    });
    rules.push(Rule {
        includes: only(&[], &["s390", "s390x"]),
        excludes: no_admin.clone(),
        ..when("clone", 1, Op::MaskedEqual, CLONE_NAMESPACES, 0)
    });
    rules.push(Rule {
        names: vec!["clone3".into()],
        action: Some(Action::Errno),
        errno_ret: Some(ENOSYS),
        excludes: no_admin,
        ..Rule::default()
    });
    Profile {
        default_action: Some(Action::Errno),
        default_errno_ret: Some(1), // EPERM
        // 32-bit programs run on 64-bit hosts: filter their ABIs too, rather than kill
        // them for not being the host's.
        arch_map: vec![
            ArchMap {
                architecture: Arch::X86_64,
                sub_architectures: vec![Arch::X86, Arch::X32],
            },
            ArchMap {
                architecture: Arch::Aarch64,
                sub_architectures: vec![Arch::Arm],
            },
            ArchMap {
                architecture: Arch::S390X,
                sub_architectures: vec![Arch::S390],
            },
        ],
        syscalls: rules,
        ..Profile::default()
    }
}
