//! Which profile a container gets, and what a bad one looks like to the caller.

use super::super::{Seccomp, Source};
use crate::containerizer::types::{ContainerConfig, SeccompProfile};
use crate::error::{ErrorKind, Kind};
use crate::isolators::{Isolator, IsolatorError};

fn asking(seccomp: SeccompProfile, privileged: bool) -> ContainerConfig {
    ContainerConfig {
        seccomp,
        privileged,
        ..ContainerConfig::default()
    }
}

#[test]
fn the_profile_each_request_gets() {
    let plain = Seccomp::new("/profiles".into(), false);
    let defaulting = Seccomp::new("/profiles".into(), true);
    let local = SeccompProfile::Localhost("a.json".into());
    let cases = [
        (SeccompProfile::NotAsked, None, Some(Source::RuntimeDefault)),
        (SeccompProfile::Unconfined, None, None),
        (
            SeccompProfile::RuntimeDefault,
            Some(Source::RuntimeDefault),
            Some(Source::RuntimeDefault),
        ),
        (
            local.clone(),
            Some(Source::Localhost("a.json".into())),
            Some(Source::Localhost("a.json".into())),
        ),
    ];
    for (asked, without_flag, with_flag) in cases {
        assert_eq!(
            plain.source(&asking(asked.clone(), false)),
            without_flag,
            "{asked:?}"
        );
        assert_eq!(
            defaulting.source(&asking(asked.clone(), false)),
            with_flag,
            "{asked:?} with --seccomp-default"
        );
        // Privileged: unconfined, whatever is asked, as containerd does.
        assert_eq!(
            defaulting.source(&asking(asked.clone(), true)),
            None,
            "{asked:?} privileged"
        );
    }
}

#[test]
fn a_missing_or_malformed_profile_is_refused_at_check() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("bad.json"), r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOPE"}]}"#).expect("write");
    let s = Seccomp::new(dir.path().into(), false);
    for (file, says) in [
        ("missing.json", "No such file or directory"),
        ("bad.json", "unknown variant `SCMP_ACT_NOPE`"),
    ] {
        let e = s
            .check(&asking(SeccompProfile::Localhost(file.into()), false), None)
            .expect_err(file);
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
        let message = e.to_string();
        assert!(
            message.contains(&dir.path().join(file).display().to_string())
                && message.contains(says),
            "{message}"
        );
        assert!(matches!(e, IsolatorError::Seccomp(_)));
    }
    // A privileged container's profile is not even read.
    s.check(
        &asking(SeccompProfile::Localhost("missing.json".into()), true),
        None,
    )
    .expect("ignored when privileged");
}

#[test]
fn the_filter_for_a_container_is_a_loadable_program() {
    let s = Seccomp::new("/nonexistent".into(), false);
    let caps: Vec<String> = crate::launcher::spec::DEFAULT_CAPABILITIES
        .iter()
        .map(|c| c.to_string())
        .collect();
    let f = s.filter(&Source::RuntimeDefault, &caps).expect("compiles");
    let program = crate::sys::seccomp::Program::from_bytes(&f.program).expect("whole instructions");
    assert!(program.len() > 100, "{} instructions", program.len());
    assert_eq!(f.flags, 0);
}
