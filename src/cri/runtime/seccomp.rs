//! The CRI's seccomp request → [`SeccompProfile`], by containerd's rules.
//!
//! A container's `LinuxContainerSecurityContext` carries it two ways: the `seccomp`
//! `SecurityProfile`, which wins when present, else the deprecated
//! `seccomp_profile_path` string (`runtime/default`, `docker/default`, `unconfined`,
//! `localhost/<path>`; anything else is refused). The pod's `LinuxSandboxSecurityContext`
//! has the same two fields, but as with containerd they are not a fallback for its
//! containers: kubelet already puts a pod-level profile into each container's own
//! context, and the sandbox's is for the pause container, which ucr does not have.
//! Privileged containers are unconfined whatever they ask; the isolator sees to that.

use k8s_cri::v1 as cri;
use tonic::Status;

use crate::containerizer::types::SeccompProfile;

const LOCALHOST: &str = "localhost/";

/// The profile `sc` asks for.
pub fn profile(sc: &cri::LinuxContainerSecurityContext) -> Result<SeccompProfile, Status> {
    if let Some(p) = &sc.seccomp {
        return security_profile(p);
    }
    #[allow(deprecated)] // still what critest and older kubelets send
    profile_path(&sc.seccomp_profile_path)
}

fn security_profile(p: &cri::SecurityProfile) -> Result<SeccompProfile, Status> {
    use cri::security_profile::ProfileType;
    let kind = ProfileType::try_from(p.profile_type).map_err(|_| {
        Status::invalid_argument(format!(
            "seccomp profile type {} is not RuntimeDefault, Unconfined or Localhost",
            p.profile_type
        ))
    })?;
    if kind != ProfileType::Localhost && !p.localhost_ref.is_empty() {
        return Err(Status::invalid_argument(format!(
            "seccomp localhost_ref {:?} is only meaningful with profile type Localhost, not {}",
            p.localhost_ref,
            kind.as_str_name()
        )));
    }
    Ok(match kind {
        ProfileType::RuntimeDefault => SeccompProfile::RuntimeDefault,
        ProfileType::Unconfined => SeccompProfile::Unconfined,
        ProfileType::Localhost => {
            let path = p
                .localhost_ref
                .strip_prefix(LOCALHOST)
                .unwrap_or(&p.localhost_ref);
            if path.is_empty() {
                return Err(Status::invalid_argument(
                    "seccomp profile type Localhost needs a localhost_ref naming the profile",
                ));
            }
            SeccompProfile::Localhost(path.into())
        }
    })
}

/// The deprecated string form. Empty is "not asked" (unconfined unless the daemon runs
/// with `--seccomp-default`).
fn profile_path(path: &str) -> Result<SeccompProfile, Status> {
    Ok(match path {
        "" => SeccompProfile::NotAsked,
        "runtime/default" | "docker/default" => SeccompProfile::RuntimeDefault,
        "unconfined" => SeccompProfile::Unconfined,
        _ => match path.strip_prefix(LOCALHOST) {
            Some(p) if !p.is_empty() => SeccompProfile::Localhost(p.into()),
            _ => {
                return Err(Status::invalid_argument(format!(
                    "seccomp_profile_path {path:?}: expected runtime/default, docker/default, \
                     unconfined or localhost/<path>"
                )))
            }
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_path(path: &str) -> cri::LinuxContainerSecurityContext {
        #[allow(deprecated)]
        cri::LinuxContainerSecurityContext {
            seccomp_profile_path: path.into(),
            ..Default::default()
        }
    }

    fn with_profile(kind: i32, reference: &str) -> cri::LinuxContainerSecurityContext {
        cri::LinuxContainerSecurityContext {
            seccomp: Some(cri::SecurityProfile {
                profile_type: kind,
                localhost_ref: reference.into(),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn the_legacy_strings() {
        let cases = [
            ("", SeccompProfile::NotAsked),
            ("runtime/default", SeccompProfile::RuntimeDefault),
            ("docker/default", SeccompProfile::RuntimeDefault),
            ("unconfined", SeccompProfile::Unconfined),
            (
                "localhost/profiles/block.json",
                SeccompProfile::Localhost("profiles/block.json".into()),
            ),
            (
                "localhost//tmp/seccomp-tests1/block.json",
                SeccompProfile::Localhost("/tmp/seccomp-tests1/block.json".into()),
            ),
        ];
        for (path, want) in cases {
            assert_eq!(profile(&with_path(path)).expect(path), want, "{path:?}");
        }
    }

    /// critest: "should not support a custom seccomp profile without using localhost/ as
    /// a prefix".
    #[test]
    fn a_bare_path_or_an_unknown_name_is_refused() {
        for path in [
            "/tmp/block.json",
            "block.json",
            "localhost/",
            "runtime/other",
        ] {
            let e = profile(&with_path(path)).expect_err(path);
            assert_eq!(e.code(), tonic::Code::InvalidArgument, "{path}");
            assert!(
                e.message().contains(&format!("{path:?}")),
                "{}",
                e.message()
            );
        }
    }

    #[test]
    fn the_security_profile_wins_over_the_string() {
        let mut sc = with_profile(1, "");
        #[allow(deprecated)]
        {
            sc.seccomp_profile_path = "runtime/default".into();
        }
        assert_eq!(profile(&sc).expect("valid"), SeccompProfile::Unconfined);
        // RuntimeDefault is the zero value: an empty message asks for it.
        assert_eq!(
            profile(&with_profile(0, "")).expect("valid"),
            SeccompProfile::RuntimeDefault
        );
        // kubelet sends an absolute path; containerd also takes it with the prefix.
        for reference in [
            "/var/lib/kubelet/seccomp/a.json",
            "localhost//var/lib/kubelet/seccomp/a.json",
        ] {
            assert_eq!(
                profile(&with_profile(2, reference)).expect("valid"),
                SeccompProfile::Localhost("/var/lib/kubelet/seccomp/a.json".into())
            );
        }
    }

    #[test]
    fn a_security_profile_that_contradicts_itself_is_refused() {
        for (kind, reference, says) in [
            (0, "/a.json", "only meaningful with profile type Localhost"),
            (1, "/a.json", "only meaningful with profile type Localhost"),
            (2, "", "needs a localhost_ref"),
            (7, "", "profile type 7"),
        ] {
            let e = profile(&with_profile(kind, reference)).expect_err("refused");
            assert_eq!(e.code(), tonic::Code::InvalidArgument);
            assert!(e.message().contains(says), "{}", e.message());
        }
    }

    #[test]
    fn nothing_asked_stays_nothing() {
        assert_eq!(
            profile(&cri::LinuxContainerSecurityContext::default()).expect("valid"),
            SeccompProfile::NotAsked
        );
    }
}
