//! Security-context fields a pod or container may send that ucr must not drop in
//! silence, end to end: AppArmor and SELinux on a node with neither (refused when a
//! specific profile or label is asked for, accepted otherwise), ambient capabilities
//! (refused), and the supplementary groups under both policies as `id` shows them. Needs
//! root; says so and skips otherwise.

mod common;

use common::pods::{
    assert_nothing_left, container_config, create, daemon, exec_ok, pod_config, run_pod, running,
    stop_remove_pod,
};
use common::*;
use k8s_cri::v1 as cri;
use tonic::Code;

fn with_context(
    mut c: cri::ContainerConfig,
    edit: impl FnOnce(&mut cri::LinuxContainerSecurityContext),
) -> cri::ContainerConfig {
    if let Some(sc) = c.linux.as_mut().and_then(|l| l.security_context.as_mut()) {
        edit(sc);
    }
    c
}

fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.trim() == "Y")
}

#[tokio::test]
async fn lsm_requests_are_applied_or_refused_never_dropped() {
    require_root!("lsm_requests_are_applied_or_refused_never_dropped");
    if apparmor_enabled() || std::path::Path::new("/sys/fs/selinux/enforce").exists() {
        eprintln!(
            "SKIPPED lsm_requests_are_applied_or_refused_never_dropped: this node runs an \
             LSM; the test is for one without AppArmor and SELinux"
        );
        return;
    }
    let (d, mut rt) = daemon().await;
    let pc = pod_config("lsm", &d.dir.path().join("logs"));
    let pod = run_pod(&mut rt, &pc).await;

    // A named AppArmor profile, in the field and in the deprecated string.
    let named = with_context(container_config("named", "exec sleep 600"), |sc| {
        sc.apparmor = Some(cri::SecurityProfile {
            profile_type: cri::security_profile::ProfileType::Localhost as i32,
            localhost_ref: "k8s-apparmor-example".into(),
        });
    });
    let e = create(&mut rt, &pod, &pc, named)
        .await
        .expect_err("refused");
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message().contains("localhost/k8s-apparmor-example"),
        "{}",
        e.message()
    );
    assert!(
        e.message().contains("AppArmor is not enabled"),
        "{}",
        e.message()
    );
    #[allow(deprecated)]
    let legacy = with_context(container_config("legacy", "exec sleep 600"), |sc| {
        sc.apparmor_profile = "localhost/k8s-apparmor-example".into();
    });
    let e = create(&mut rt, &pod, &pc, legacy)
        .await
        .expect_err("refused");
    assert_eq!(e.code(), Code::InvalidArgument);
    #[allow(deprecated)]
    let garbage = with_context(container_config("garbage", "exec sleep 600"), |sc| {
        sc.apparmor_profile = "/etc/apparmor.d/x".into();
    });
    let e = create(&mut rt, &pod, &pc, garbage)
        .await
        .expect_err("refused");
    assert!(e.message().contains("apparmor_profile"), "{}", e.message());

    // RuntimeDefault and Unconfined are accepted: the container runs.
    for (name, t) in [
        (
            "default",
            cri::security_profile::ProfileType::RuntimeDefault,
        ),
        ("unconfined", cri::security_profile::ProfileType::Unconfined),
    ] {
        let c = with_context(container_config(name, "exec sleep 600"), |sc| {
            sc.apparmor = Some(cri::SecurityProfile {
                profile_type: t as i32,
                localhost_ref: String::new(),
            });
        });
        let id = running(&mut rt, &pod, &pc, c).await;
        assert_eq!(exec_ok(&mut rt, &id, &["echo", "ran"]).await.trim(), "ran");
    }

    // An SELinux label on a container, and on a pod.
    let labelled = with_context(container_config("labelled", "exec sleep 600"), |sc| {
        sc.selinux_options = Some(cri::SeLinuxOption {
            r#type: "spc_t".into(),
            ..Default::default()
        });
    });
    let e = create(&mut rt, &pod, &pc, labelled)
        .await
        .expect_err("refused");
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message().contains("SELinux is not enabled"),
        "{}",
        e.message()
    );
    let mut lpc = pod_config("labelled-pod", &d.dir.path().join("logs"));
    if let Some(sc) = lpc.linux.as_mut().and_then(|l| l.security_context.as_mut()) {
        sc.selinux_options = Some(cri::SeLinuxOption {
            level: "s0:c1,c2".into(),
            ..Default::default()
        });
    }
    let e = rt
        .run_pod_sandbox(cri::RunPodSandboxRequest {
            config: Some(lpc),
            runtime_handler: String::new(),
        })
        .await
        .expect_err("refused");
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("s0:c1,c2"), "{}", e.message());

    // Ambient capabilities are not applied, so they are refused.
    let ambient = with_context(container_config("ambient", "exec sleep 600"), |sc| {
        sc.capabilities = Some(cri::Capability {
            add_ambient_capabilities: vec!["NET_BIND_SERVICE".into()],
            ..Default::default()
        });
    });
    let e = create(&mut rt, &pod, &pc, ambient)
        .await
        .expect_err("refused");
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("NET_BIND_SERVICE"), "{}", e.message());

    stop_remove_pod(&mut rt, &pod).await;
    assert_nothing_left(&d);
}

#[tokio::test]
async fn supplementary_groups_follow_the_policy() {
    require_root!("supplementary_groups_follow_the_policy");
    let (d, mut rt) = daemon().await;
    let pc = pod_config("groups", &d.dir.path().join("logs"));
    let pod = run_pod(&mut rt, &pc).await;
    let as_ucruser = |name: &str, policy: cri::SupplementalGroupsPolicy| {
        with_context(container_config(name, "exec sleep 600"), |sc| {
            sc.run_as_username = "ucruser".into();
            sc.supplemental_groups = vec![4242];
            sc.supplemental_groups_policy = policy as i32;
        })
    };
    // Merge (the default): the image's /etc/group memberships (wheel 10, ucrgroup 1000)
    // and the request's.
    let merge = running(
        &mut rt,
        &pod,
        &pc,
        as_ucruser("merge", cri::SupplementalGroupsPolicy::Merge),
    )
    .await;
    assert_eq!(exec_ok(&mut rt, &merge, &["id", "-u"]).await.trim(), "1000");
    let mut groups: Vec<String> = exec_ok(&mut rt, &merge, &["id", "-G"])
        .await
        .split_whitespace()
        .map(String::from)
        .collect();
    groups.sort();
    assert_eq!(groups, ["10", "1000", "4242"]);
    // Strict: the primary group and the request's only.
    let strict = running(
        &mut rt,
        &pod,
        &pc,
        as_ucruser("strict", cri::SupplementalGroupsPolicy::Strict),
    )
    .await;
    let mut groups: Vec<String> = exec_ok(&mut rt, &strict, &["id", "-G"])
        .await
        .split_whitespace()
        .map(String::from)
        .collect();
    groups.sort();
    assert_eq!(groups, ["1000", "4242"]);
    // run_as_group without a user is refused.
    let group_only = with_context(container_config("group-only", "true"), |sc| {
        sc.run_as_group = Some(cri::Int64Value { value: 5 });
    });
    let e = create(&mut rt, &pod, &pc, group_only)
        .await
        .expect_err("refused");
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("run_as_group"), "{}", e.message());
    stop_remove_pod(&mut rt, &pod).await;
    assert_nothing_left(&d);
}
