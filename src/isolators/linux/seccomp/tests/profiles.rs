//! Profiles as Docker writes them: what parses, what `check` refuses (and how it says
//! where), and `includes`/`excludes` narrowing.

use super::super::profile::{Action, Arch, Op, Profile};
use super::super::select::select;
use super::host;

const GOOD: &str = r#"{
    "defaultAction": "SCMP_ACT_ERRNO",
    "defaultErrnoRet": 1,
    "archMap": [
        {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
        {"architecture": "SCMP_ARCH_RISCV64", "subArchitectures": null}
    ],
    "syscalls": [
        {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW", "comment": "io"},
        {"name": "mkdir", "action": "SCMP_ACT_ERRNO", "errnoRet": 28, "unknownField": true},
        {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
        {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}],
         "excludes": {"caps": ["CAP_SYS_ADMIN"], "arches": ["s390", "s390x"]}},
        {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
        {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64", "x32"]}},
        {"names": ["s390_runtime_instr"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["s390x"]}},
        {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4.8"}},
        {"names": ["old_call"], "action": "SCMP_ACT_ALLOW", "excludes": {"minKernel": "5.0"}}
    ]
}"#;

fn names(p: &Profile) -> Vec<String> {
    p.syscalls
        .iter()
        .flat_map(|r| r.syscalls())
        .map(str::to_string)
        .collect()
}

#[test]
fn a_docker_profile_parses_with_its_extensions() {
    let p = Profile::parse(GOOD.as_bytes()).expect("parses");
    p.check().expect("valid");
    assert_eq!(p.default_action, Some(Action::Errno));
    assert_eq!(p.default_errno_ret, Some(1));
    assert_eq!(
        p.arch_map[1].sub_architectures,
        Vec::<Arch>::new(),
        "null is empty"
    );
    assert_eq!(p.syscalls[1].syscalls(), ["mkdir"], "the one-name spelling");
    assert_eq!(p.syscalls[1].errno_ret, Some(28));
    let masked = p.syscalls[3].args[0];
    assert_eq!(
        (masked.op, masked.value, masked.value_two),
        (Op::MaskedEqual, 0x7e02_0000, 0)
    );
    assert_eq!(
        p.syscalls[7].includes.as_ref().and_then(|c| c.min_kernel),
        Some((4, 8))
    );
}

#[test]
fn includes_and_excludes_narrow_it_to_the_container_and_host() {
    let p = Profile::parse(GOOD.as_bytes()).expect("parses");
    let plain = select(&p, &host(&["CHOWN"], (6, 18)));
    assert_eq!(
        plain.architectures,
        [Arch::X86_64, Arch::X86, Arch::X32],
        "archMap's entry"
    );
    assert!(plain.arch_map.is_empty());
    assert_eq!(
        names(&plain),
        [
            "read",
            "write",
            "mkdir",
            "personality",
            "clone",
            "arch_prctl",
            "ptrace"
        ]
    );
    assert!(plain
        .syscalls
        .iter()
        .all(|r| r.includes.is_none() && r.excludes.is_none()));

    // CAP_SYS_ADMIN (spelled either way): mount in, the masked clone out.
    for admin in ["SYS_ADMIN", "CAP_SYS_ADMIN"] {
        let n = names(&select(&p, &host(&["CHOWN", admin], (6, 18))));
        assert!(
            n.contains(&"mount".to_string()) && !n.contains(&"clone".to_string()),
            "{n:?}"
        );
    }
    // An old kernel: no ptrace, and the rule excluded from 5.0 on is in.
    let old = names(&select(&p, &host(&[], (4, 4))));
    assert!(!old.contains(&"ptrace".to_string()) && old.contains(&"old_call".to_string()));
    // Another architecture: its archMap entry, its arch-only rules.
    let mut s390 = host(&[], (6, 18));
    s390.arch = Arch::S390X;
    let n = select(&p, &s390);
    assert!(
        n.architectures.is_empty(),
        "no archMap entry: the host's ABI alone"
    );
    let n = names(&n);
    assert!(n.contains(&"s390_runtime_instr".to_string()));
    assert!(!n.contains(&"arch_prctl".to_string()) && !n.contains(&"clone".to_string()));
}

/// Each malformed profile, and what the error must say.
#[test]
fn malformed_profiles_are_refused_saying_where_and_what() {
    let parse_errors = [
        ("{\"defaultAction\": ", "EOF while parsing"),
        (
            "\"text\"",
            "invalid type: string \"text\", expected struct Profile",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_FOO"}"#,
            "unknown variant `SCMP_ACT_FOO`",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["x"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_SIMILAR"}]}]}"#,
            "unknown variant `SCMP_CMP_SIMILAR`",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_VAX"]}"#,
            "unknown variant `SCMP_ARCH_VAX`",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["x"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4"}}]}"#,
            "minKernel \"4\": expected \"<major>.<minor>\"",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["x"], "action": "SCMP_ACT_ALLOW", "args": [{"index": -1, "value": 1, "op": "SCMP_CMP_EQ"}]}]}"#,
            "invalid value: integer `-1`",
        ),
    ];
    for (json, says) in parse_errors {
        let e = Profile::parse(json.as_bytes()).expect_err(json);
        assert!(e.to_string().contains(says), "{json}: {e}");
        assert!(e.to_string().contains("line 1 column"), "{e}");
    }

    let check_errors = [
        (r#"{"syscalls": []}"#, "defaultAction: is missing"),
        (
            r#"{"defaultAction": "SCMP_ACT_NOTIFY"}"#,
            "defaultAction: a seccomp agent",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1}"#,
            "defaultErrnoRet: is only meaningful with SCMP_ACT_ERRNO",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86"], "archMap": [{"architecture": "SCMP_ARCH_X86_64"}]}"#,
            "architectures: and archMap are both given",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "listenerPath": "/run/agent.sock"}"#,
            "listenerPath: a seccomp agent",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}, {"name": "a", "names": ["b"], "action": "SCMP_ACT_ALLOW"}]}"#,
            "syscalls[1]: has both name and names",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": [], "action": "SCMP_ACT_ALLOW"}]}"#,
            "syscalls[0]: names no system call",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read", " "], "action": "SCMP_ACT_ALLOW"}]}"#,
            "syscalls[0].names[1]: is empty",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"]}]}"#,
            "syscalls[0].action: is missing",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "errnoRet": 5}]}"#,
            "syscalls[0].errnoRet: is only meaningful",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 6, "value": 0, "op": "SCMP_CMP_EQ"}]}]}"#,
            "syscalls[0].args[0].index: 6 is not an argument",
        ),
    ];
    for (json, says) in check_errors {
        let p = Profile::parse(json.as_bytes()).expect(json);
        let e = p.check().expect_err(json);
        assert!(e.to_string().starts_with(says), "{json}: {e}");
    }
}
