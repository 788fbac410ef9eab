//! The compiled programs, run call by call as the kernel would (`bpf_run`): x86_64 system
//! call numbers, so on x86_64 hosts only.
#![cfg(target_arch = "x86_64")]

use super::super::bpf_run::{self, errno, run, Call, RET_ALLOW};
use super::super::compile::compile;
use super::super::default;
use super::super::profile::Profile;
use super::super::select::select;
use super::{default_caps, host};

const EPERM: i32 = libc::EPERM;

/// RuntimeDefault compiled for a container with Docker's capabilities plus `extra`.
fn runtime_default(extra: &[&str]) -> Vec<u8> {
    let mut caps = default_caps();
    caps.extend_from_slice(extra);
    let c = compile(&select(&default::profile(), &host(&caps, (6, 18)))).expect("compiles");
    assert_eq!(c.flags, 0);
    c.program
}

fn x86_64(program: &[u8], nr: i64, args: &[u64]) -> u32 {
    run(program, &Call::x86_64(nr as u32, args))
}

#[test]
fn io_uring_fails_with_eperm_whatever_the_capabilities() {
    for extra in [
        &[][..],
        &["SYS_ADMIN", "SYS_PTRACE", "SYS_RESOURCE", "IPC_LOCK"],
    ] {
        let p = runtime_default(extra);
        for nr in [
            libc::SYS_io_uring_setup,
            libc::SYS_io_uring_enter,
            libc::SYS_io_uring_register,
        ] {
            assert_eq!(x86_64(&p, nr, &[1, 0]), errno(EPERM), "{nr} with {extra:?}");
        }
        // The i386 ABI's numbers are the same three (425-427).
        assert_eq!(
            run(&p, &Call::on(bpf_run::AUDIT_ARCH_I386, 425, &[])),
            errno(EPERM)
        );
    }
}

#[test]
fn ordinary_calls_pass_on_every_abi_of_the_host() {
    let p = runtime_default(&[]);
    for nr in [
        libc::SYS_read,
        libc::SYS_write,
        libc::SYS_openat,
        libc::SYS_mkdir,
        libc::SYS_execve,
        libc::SYS_exit_group,
        libc::SYS_getppid,
    ] {
        assert_eq!(x86_64(&p, nr, &[]), RET_ALLOW, "{nr}");
    }
    // i386 mkdir (39) and x32 read.
    assert_eq!(
        run(&p, &Call::on(bpf_run::AUDIT_ARCH_I386, 39, &[])),
        RET_ALLOW
    );
    assert_eq!(
        run(
            &p,
            &Call::on(bpf_run::AUDIT_ARCH_X86_64, bpf_run::X32_BIT, &[])
        ),
        RET_ALLOW
    );
    // An ABI the filter does not know is killed, not let through.
    assert_eq!(
        run(&p, &Call::on(bpf_run::AUDIT_ARCH_AARCH64, 63, &[])),
        bpf_run::RET_KILL_THREAD
    );
}

#[test]
fn sys_admin_calls_need_sys_admin() {
    let plain = runtime_default(&[]);
    let admin = runtime_default(&["SYS_ADMIN"]);
    for nr in [
        libc::SYS_mount,
        libc::SYS_umount2,
        libc::SYS_unshare,
        libc::SYS_setns,
        libc::SYS_sethostname,
    ] {
        assert_eq!(
            x86_64(&plain, nr, &[]),
            errno(EPERM),
            "{nr} without SYS_ADMIN"
        );
        assert_eq!(x86_64(&admin, nr, &[]), RET_ALLOW, "{nr} with SYS_ADMIN");
    }
    // What even SYS_ADMIN does not get.
    for nr in [
        libc::SYS_pivot_root,
        libc::SYS_keyctl,
        libc::SYS_swapoff,
        libc::SYS_kexec_load,
    ] {
        assert_eq!(x86_64(&admin, nr, &[]), errno(EPERM), "{nr}");
    }
    // clone3: ENOSYS without (so libcs fall back to clone), allowed with.
    assert_eq!(x86_64(&plain, libc::SYS_clone3, &[]), errno(libc::ENOSYS));
    assert_eq!(x86_64(&admin, libc::SYS_clone3, &[]), RET_ALLOW);
}

#[test]
fn clone_personality_and_socket_by_argument() {
    let plain = runtime_default(&[]);
    let admin = runtime_default(&["SYS_ADMIN"]);
    let thread = (libc::CLONE_VM | libc::CLONE_THREAD | libc::CLONE_SIGHAND) as u64;
    assert_eq!(x86_64(&plain, libc::SYS_clone, &[thread]), RET_ALLOW);
    for ns in [
        libc::CLONE_NEWUSER,
        libc::CLONE_NEWNS,
        libc::CLONE_NEWNET,
        libc::CLONE_NEWPID,
        libc::CLONE_NEWCGROUP,
    ] {
        let flags = thread | ns as u64;
        assert_eq!(
            x86_64(&plain, libc::SYS_clone, &[flags]),
            errno(EPERM),
            "{ns:#x}"
        );
        assert_eq!(
            x86_64(&admin, libc::SYS_clone, &[flags]),
            RET_ALLOW,
            "{ns:#x}"
        );
    }
    for persona in default::PERSONAS {
        assert_eq!(
            x86_64(&plain, libc::SYS_personality, &[*persona]),
            RET_ALLOW
        );
    }
    // READ_IMPLIES_EXEC, ADDR_NO_RANDOMIZE: refused.
    for persona in [0x40_0000u64, 0x4_0000] {
        assert_eq!(
            x86_64(&plain, libc::SYS_personality, &[persona]),
            errno(EPERM)
        );
    }
    for family in [
        libc::AF_UNIX,
        libc::AF_INET,
        libc::AF_INET6,
        libc::AF_NETLINK,
        39,
        41,
        45,
    ] {
        assert_eq!(
            x86_64(&plain, libc::SYS_socket, &[family as u64]),
            RET_ALLOW,
            "family {family}"
        );
    }
    for family in [libc::AF_ALG, libc::AF_VSOCK] {
        assert_eq!(
            x86_64(&plain, libc::SYS_socket, &[family as u64]),
            errno(EPERM),
            "family {family}"
        );
    }
}

#[test]
fn tracing_calls() {
    let plain = runtime_default(&[]);
    let traced = runtime_default(&["SYS_PTRACE"]);
    // ptrace itself on this kernel (from 4.8) for all; kcmp and pidfd_getfd not.
    assert_eq!(x86_64(&plain, libc::SYS_ptrace, &[]), RET_ALLOW);
    for nr in [libc::SYS_kcmp, libc::SYS_pidfd_getfd] {
        assert_eq!(x86_64(&plain, nr, &[]), errno(EPERM), "{nr}");
        assert_eq!(x86_64(&traced, nr, &[]), RET_ALLOW, "{nr}");
    }
}

/// Calls newer than any the profile names get ENOSYS on the host's own ABI (so a libc
/// falls back); x32 and i386 calls go through the filter as compiled.
#[test]
fn unknown_newer_calls_get_enosys() {
    let p = runtime_default(&[]);
    assert_eq!(x86_64(&p, 1000, &[]), errno(libc::ENOSYS));
    assert_eq!(x86_64(&p, 0x3fff_ffff, &[]), errno(libc::ENOSYS));
    assert_eq!(
        run(
            &p,
            &Call::on(bpf_run::AUDIT_ARCH_X86_64, bpf_run::X32_BIT | 1000, &[])
        ),
        errno(EPERM)
    );
    assert_eq!(
        run(&p, &Call::on(bpf_run::AUDIT_ARCH_I386, 1000, &[])),
        errno(EPERM)
    );
    // Below the highest named, an unlisted call is refused as the profile says.
    assert_eq!(x86_64(&p, libc::SYS_keyctl, &[]), errno(EPERM));
}

fn profile(json: &str) -> Vec<u8> {
    let p = Profile::parse(json.as_bytes()).expect("parses");
    p.check().expect("valid");
    compile(&select(&p, &host(&default_caps(), (6, 18))))
        .expect("compiles")
        .program
}

#[test]
fn a_localhost_profile_with_its_own_errno_and_allow_by_default() {
    let p = profile(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 28},
            {"names": ["chmod"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["no_such_call_anywhere"], "action": "SCMP_ACT_KILL"}
        ]}"#,
    );
    assert_eq!(x86_64(&p, libc::SYS_mkdir, &[]), errno(libc::ENOSPC));
    assert_eq!(x86_64(&p, libc::SYS_mkdirat, &[]), errno(libc::ENOSPC));
    assert_eq!(
        x86_64(&p, libc::SYS_chmod, &[]),
        errno(EPERM),
        "errnoRet defaults to EPERM"
    );
    assert_eq!(x86_64(&p, libc::SYS_write, &[]), RET_ALLOW);
    // Allowing by default: no ENOSYS stub, a new call is allowed too.
    assert_eq!(x86_64(&p, 1000, &[]), RET_ALLOW);
    // No archMap, no architectures: the host's own ABI only.
    assert_eq!(
        run(&p, &Call::on(bpf_run::AUDIT_ARCH_I386, 39, &[])),
        bpf_run::RET_KILL_THREAD
    );
}

/// As runc reads them: conditions on distinct arguments all hold; several on one
/// argument are alternatives.
#[test]
fn argument_conditions_combine_as_runc_reads_them() {
    let p = profile(
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"], "syscalls": [
            {"names": ["read", "exit_group"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["kill"], "action": "SCMP_ACT_ALLOW", "args": [
                {"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                {"index": 1, "value": 15, "op": "SCMP_CMP_EQ"}]},
            {"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [
                {"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                {"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}]},
            {"names": ["openat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13, "args": [
                {"index": 2, "value": 3, "valueTwo": 1, "op": "SCMP_CMP_MASKED_EQ"}]},
            {"names": ["getppid"], "action": "SCMP_ACT_KILL_PROCESS"}
        ]}"#,
    );
    assert_eq!(x86_64(&p, libc::SYS_kill, &[1, 15]), RET_ALLOW);
    assert_eq!(x86_64(&p, libc::SYS_kill, &[1, 9]), errno(EPERM));
    assert_eq!(x86_64(&p, libc::SYS_kill, &[2, 15]), errno(EPERM));
    assert_eq!(x86_64(&p, libc::SYS_socket, &[1]), RET_ALLOW);
    assert_eq!(x86_64(&p, libc::SYS_socket, &[2]), RET_ALLOW);
    assert_eq!(x86_64(&p, libc::SYS_socket, &[10]), errno(EPERM));
    // O_WRONLY (1) in the access mode, whatever the other flags: EACCES; otherwise the
    // default's EPERM.
    assert_eq!(
        x86_64(&p, libc::SYS_openat, &[0, 0, 1]),
        errno(libc::EACCES)
    );
    assert_eq!(
        x86_64(&p, libc::SYS_openat, &[0, 0, 0o101]),
        errno(libc::EACCES)
    );
    assert_eq!(x86_64(&p, libc::SYS_openat, &[0, 0, 0]), errno(EPERM));
    assert_eq!(
        x86_64(&p, libc::SYS_getppid, &[]),
        bpf_run::RET_KILL_PROCESS
    );
}

#[test]
fn flags_pass_through_and_the_program_fits_the_kernel() {
    let p = Profile::parse(
        br#"{"defaultAction": "SCMP_ACT_LOG", "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"]}"#,
    )
    .expect("parses");
    let c = compile(&select(&p, &host(&[], (6, 18)))).expect("compiles");
    assert_eq!(
        c.flags,
        (libc::SECCOMP_FILTER_FLAG_LOG | libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW) as u32
    );
    // The default profile, with every capability (its longest form), is well inside
    // the kernel's 4096 instructions.
    let all: Vec<String> = caps::all()
        .iter()
        .map(|c| c.to_string()[4..].to_string())
        .collect();
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    let longest = compile(&select(&default::profile(), &host(&all, (6, 18)))).expect("compiles");
    assert!(
        longest.program.len() / 8 < 2048,
        "{} instructions",
        longest.program.len() / 8
    );
}
