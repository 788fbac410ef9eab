//! The CRI's security-context fields that are not plain values: LSM profiles (AppArmor's
//! `SecurityProfile` and its deprecated string form) and SELinux labels, mapped to the
//! containerizer's types. Whether the node can honour them is the isolators' decision
//! (`linux/apparmor`, `linux/selinux`); a malformed request is refused here.

use k8s_cri::v1 as cri;
use tonic::Status;

use crate::containerizer::types::{LsmProfile, SelinuxLabel};

/// `SecurityProfile` when set (containerd's precedence), else the deprecated string:
/// `runtime/default`, `unconfined`, `localhost/<name>` (empty: not asked).
pub fn apparmor(
    profile: Option<&cri::SecurityProfile>,
    deprecated: &str,
) -> Result<LsmProfile, Status> {
    if let Some(p) = profile {
        return match cri::security_profile::ProfileType::try_from(p.profile_type) {
            Ok(cri::security_profile::ProfileType::RuntimeDefault) => {
                Ok(LsmProfile::RuntimeDefault)
            }
            Ok(cri::security_profile::ProfileType::Unconfined) => Ok(LsmProfile::Unconfined),
            Ok(cri::security_profile::ProfileType::Localhost) => {
                localhost("apparmor.localhost_ref", &p.localhost_ref)
            }
            Err(_) => Err(Status::invalid_argument(format!(
                "apparmor.profile_type {}: not a profile type",
                p.profile_type
            ))),
        };
    }
    match deprecated {
        "" => Ok(LsmProfile::NotAsked),
        "runtime/default" => Ok(LsmProfile::RuntimeDefault),
        "unconfined" => Ok(LsmProfile::Unconfined),
        other => match other.strip_prefix("localhost/") {
            Some(name) => localhost("apparmor_profile", name),
            None => Err(Status::invalid_argument(format!(
                "apparmor_profile {other:?}: expected runtime/default, unconfined or localhost/<profile>"
            ))),
        },
    }
}

/// An AppArmor profile name: what `aa-status` lists; no newline or NUL, which would let
/// the request write more than a name into `/proc/self/attr/apparmor/exec`.
fn localhost(field: &str, name: &str) -> Result<LsmProfile, Status> {
    if name.is_empty() || name.len() > 4096 || name.chars().any(|c| c.is_control()) {
        return Err(Status::invalid_argument(format!(
            "{field} {name:?}: expected the name of a loaded AppArmor profile"
        )));
    }
    Ok(LsmProfile::Localhost(name.to_string()))
}

/// The label, when any part of it is set.
pub fn selinux(option: Option<&cri::SeLinuxOption>) -> Option<SelinuxLabel> {
    let o = option?;
    let label = SelinuxLabel {
        user: o.user.clone(),
        role: o.role.clone(),
        r#type: o.r#type.clone(),
        level: o.level.clone(),
    };
    (!label.is_empty()).then_some(label)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(t: cri::security_profile::ProfileType, r: &str) -> cri::SecurityProfile {
        cri::SecurityProfile {
            profile_type: t as i32,
            localhost_ref: r.into(),
        }
    }

    #[test]
    fn the_field_wins_over_the_deprecated_string() {
        use cri::security_profile::ProfileType;
        assert_eq!(
            apparmor(Some(&profile(ProfileType::Unconfined, "")), "localhost/x").expect("ok"),
            LsmProfile::Unconfined
        );
        assert_eq!(
            apparmor(Some(&profile(ProfileType::Localhost, "my-profile")), "").expect("ok"),
            LsmProfile::Localhost("my-profile".into())
        );
        assert_eq!(apparmor(None, "").expect("ok"), LsmProfile::NotAsked);
        assert_eq!(
            apparmor(None, "runtime/default").expect("ok"),
            LsmProfile::RuntimeDefault
        );
        assert_eq!(
            apparmor(None, "localhost/k8s-nginx").expect("ok"),
            LsmProfile::Localhost("k8s-nginx".into())
        );
    }

    #[test]
    fn malformed_requests_name_the_field() {
        use cri::security_profile::ProfileType;
        for (p, s, field) in [
            (None, "/etc/apparmor.d/x", "apparmor_profile"),
            (None, "localhost/", "apparmor_profile"),
            (
                Some(profile(ProfileType::Localhost, "a\nchange_profile b")),
                "",
                "apparmor.localhost_ref",
            ),
            (
                Some(profile(ProfileType::Localhost, "")),
                "",
                "apparmor.localhost_ref",
            ),
        ] {
            let e = apparmor(p.as_ref(), s).expect_err(field);
            assert_eq!(e.code(), tonic::Code::InvalidArgument);
            assert!(e.message().starts_with(field), "{}", e.message());
        }
    }

    #[test]
    fn an_empty_selinux_option_is_no_label() {
        assert_eq!(selinux(Some(&cri::SeLinuxOption::default())), None);
        let l = selinux(Some(&cri::SeLinuxOption {
            r#type: "spc_t".into(),
            ..Default::default()
        }))
        .expect("label");
        assert_eq!(l.to_string(), "::spc_t:");
    }
}
