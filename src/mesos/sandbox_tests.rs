use super::*;
use crate::mesos::wire::v1::r_limit_info::r_limit::Type as RType;
use crate::mesos::wire::v1::r_limit_info::RLimit;
use crate::mesos::wire::v1::volume::source::{sandbox_path, SandboxPath};

fn legacy(container_path: &str, host_path: &str, mode: volume::Mode) -> Volume {
    Volume {
        mode: mode as i32,
        container_path: container_path.into(),
        host_path: Some(host_path.into()),
        source: None,
    }
}

fn status(r: Result<impl std::fmt::Debug, Refused>) -> (StatusCode, String) {
    let e = r.expect_err("refused");
    (e.0, e.1)
}

#[test]
fn relative_host_paths_are_sandbox_volumes_like_the_image() {
    let (inside, host) = volumes(
        &[
            legacy("/tmp", "tmp", volume::Mode::Rw),
            legacy("/ro", "a/b", volume::Mode::Ro),
        ],
        "/mnt/mesos/sandbox",
    )
    .expect("valid");
    assert!(host.is_empty());
    assert_eq!(
        inside,
        [
            SandboxVolume {
                path: "tmp".into(),
                container_path: "/tmp".into(),
                readonly: false,
                like_image: true
            },
            SandboxVolume {
                path: "a/b".into(),
                container_path: "/ro".into(),
                readonly: true,
                like_image: true
            }
        ]
    );
}

#[test]
fn sandbox_path_sources_belong_to_the_sandbox() {
    let v = Volume {
        mode: volume::Mode::Rw as i32,
        container_path: "/data".into(),
        host_path: None,
        source: Some(volume::Source {
            r#type: Some(volume::source::Type::SandboxPath as i32),
            host_path: None,
            sandbox_path: Some(SandboxPath {
                r#type: Some(sandbox_path::Type::Self_ as i32),
                path: "data".into(),
            }),
        }),
    };
    let (inside, _) = volumes(std::slice::from_ref(&v), "/mnt/mesos/sandbox").expect("valid");
    assert!(!inside[0].like_image);
    let mut parent = v;
    if let Some(s) = parent.source.as_mut().and_then(|s| s.sandbox_path.as_mut()) {
        s.r#type = Some(sandbox_path::Type::Parent as i32);
    }
    let (code, m) = status(volumes(&[parent], "/s"));
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert!(m.contains("PARENT"), "{m}");
}

#[test]
fn escapes_and_missing_host_paths_are_400_naming_the_value() {
    for (v, named) in [
        (legacy("/x", "../../etc", volume::Mode::Rw), "../../etc"),
        (legacy("/x", "a/../..", volume::Mode::Rw), "a/../.."),
        (legacy("x", "data", volume::Mode::Rw), "relative"),
        (
            legacy("/x", "/nonexistent/ucr-test", volume::Mode::Rw),
            "/nonexistent/ucr-test",
        ),
        (legacy("../x", "/tmp", volume::Mode::Rw), "../x"),
        (legacy("", "/tmp", volume::Mode::Rw), "container_path"),
    ] {
        let (code, m) = status(volumes(&[v], "/mnt/mesos/sandbox"));
        assert_eq!(code, StatusCode::BAD_REQUEST, "{m}");
        assert!(m.contains(named), "{named}: {m}");
    }
    let mut no_mode = legacy("/x", "x", volume::Mode::Rw);
    no_mode.mode = 0;
    assert_eq!(status(volumes(&[no_mode], "/s")).0, StatusCode::BAD_REQUEST);
}

#[test]
fn absolute_host_paths_are_bound_and_relative_targets_land_in_the_sandbox() {
    let (inside, host) = volumes(
        &[
            legacy("/etc/hostfile", "/etc", volume::Mode::Ro),
            legacy("logs", "/tmp", volume::Mode::Rw),
        ],
        "/mnt/mesos/sandbox",
    )
    .expect("valid");
    assert!(inside.is_empty());
    assert_eq!(host[0].container_path, "/etc/hostfile");
    assert!(host[0].readonly);
    assert_eq!(host[1].container_path, "/mnt/mesos/sandbox/logs");
    assert!(!host[1].readonly);
}

#[test]
fn rlimits_by_mesos_rules() {
    let limit = |t: RType, soft, hard| RLimit {
        r#type: Some(t as i32),
        soft,
        hard,
    };
    let info = |l: Vec<RLimit>| RLimitInfo { rlimits: l };
    let got = rlimits(Some(&info(vec![
        limit(RType::RlmtNofile, Some(100), Some(200)),
        limit(RType::RlmtCore, None, None),
    ])))
    .expect("valid");
    assert_eq!(
        got,
        [
            Rlimit {
                resource: RlimitResource::Nofile,
                soft: Some(100),
                hard: Some(200)
            },
            Rlimit {
                resource: RlimitResource::Core,
                soft: None,
                hard: None
            }
        ]
    );
    let (code, m) = status(rlimits(Some(&info(vec![limit(
        RType::RlmtNofile,
        Some(300),
        Some(200),
    )]))));
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert!(m.contains("RLMT_NOFILE") && m.contains("300"), "{m}");
    let (_, m) = status(rlimits(Some(&info(vec![limit(
        RType::RlmtStack,
        Some(1),
        None,
    )]))));
    assert!(m.contains("RLMT_STACK"), "{m}");
    assert_eq!(
        status(rlimits(Some(&info(vec![limit(
            RType::Unknown,
            None,
            None
        )]))))
        .0,
        StatusCode::BAD_REQUEST
    );
    assert!(rlimits(None).expect("none").is_empty());
}
