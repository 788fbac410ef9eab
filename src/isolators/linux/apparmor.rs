//! `linux/apparmor`: the AppArmor profile a container's programs run under. On a node
//! with AppArmor, `Localhost` profiles (loaded by the operator) are applied through
//! `/proc/self/attr/apparmor/exec` just before the exec (`launcher::apparmor`). ucr ships
//! no default profile of its own: `RuntimeDefault`, `Unconfined` and no request run
//! unconfined, said once in the log. On a node without AppArmor (this project's own),
//! `RuntimeDefault` and `Unconfined` are accepted the same way, and a `Localhost` profile
//! is refused, never silently dropped. A privileged container runs unconfined, as
//! containerd runs it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::containerizer::types::{ContainerConfig, LsmProfile, Pod};
use crate::isolators::{ContainerContext, Isolator, IsolatorError};
use crate::launcher::LaunchSpec;

pub struct AppArmor {
    /// Where the node's securityfs and sysfs are (`/`; a fake tree in tests).
    root: PathBuf,
    said: AtomicBool,
}

impl AppArmor {
    pub fn new() -> Self {
        Self::at(Path::new("/"))
    }

    /// Reading the node's state under `root` (tests give a fake tree).
    pub fn at(root: &Path) -> Self {
        AppArmor {
            root: root.to_path_buf(),
            said: AtomicBool::new(false),
        }
    }

    /// Whether the kernel runs AppArmor (the module's `enabled` parameter).
    pub fn enabled(&self) -> bool {
        std::fs::read_to_string(self.root.join("sys/module/apparmor/parameters/enabled"))
            .is_ok_and(|s| s.trim() == "Y")
    }

    /// Whether a profile of that name is loaded (securityfs lists `name (mode)`).
    fn loaded(&self, name: &str) -> bool {
        std::fs::read_to_string(self.root.join("sys/kernel/security/apparmor/profiles")).is_ok_and(
            |list| {
                list.lines()
                    .any(|l| l.rsplit_once(" (").is_some_and(|(n, _)| n == name))
            },
        )
    }

    fn say_once(&self, what: &str) {
        if !self.said.swap(true, Ordering::Relaxed) {
            tracing::info!("{what}");
        }
    }
}

impl Default for AppArmor {
    fn default() -> Self {
        Self::new()
    }
}

impl Isolator for AppArmor {
    fn name(&self) -> &'static str {
        "linux/apparmor"
    }

    fn check(&self, c: &ContainerConfig, _pod: Option<&Pod>) -> Result<(), IsolatorError> {
        if c.privileged {
            return Ok(());
        }
        match &c.apparmor {
            LsmProfile::Localhost(name) if !self.enabled() => Err(IsolatorError::Invalid {
                field: "apparmor",
                value: format!("localhost/{name}"),
                reason: "AppArmor is not enabled on this node's kernel",
            }),
            LsmProfile::Localhost(name) if !self.loaded(name) => Err(IsolatorError::Invalid {
                field: "apparmor",
                value: format!("localhost/{name}"),
                reason: "no AppArmor profile of that name is loaded on this node",
            }),
            LsmProfile::RuntimeDefault | LsmProfile::Unconfined if !self.enabled() => {
                self.say_once(
                    "AppArmor is not enabled on this node: containers asking for \
                     RuntimeDefault or Unconfined AppArmor run without it",
                );
                Ok(())
            }
            LsmProfile::RuntimeDefault => {
                self.say_once(
                    "ucr ships no default AppArmor profile: containers asking for \
                     RuntimeDefault run unconfined (name a loaded profile with localhost/)",
                );
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn prepare(
        &self,
        c: &ContainerContext<'_>,
        launch: &mut LaunchSpec,
    ) -> Result<(), IsolatorError> {
        if let (LsmProfile::Localhost(name), false) = (&c.config.apparmor, c.config.privileged) {
            launch.process.apparmor_profile = Some(name.clone());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(enabled: bool, profiles: &str) -> (tempfile::TempDir, AppArmor) {
        let dir = tempfile::tempdir().expect("tempdir");
        let params = dir.path().join("sys/module/apparmor/parameters");
        std::fs::create_dir_all(&params).expect("params");
        std::fs::write(params.join("enabled"), if enabled { "Y\n" } else { "N\n" }).expect("w");
        let sec = dir.path().join("sys/kernel/security/apparmor");
        std::fs::create_dir_all(&sec).expect("securityfs");
        std::fs::write(sec.join("profiles"), profiles).expect("w");
        let a = AppArmor::at(dir.path());
        (dir, a)
    }

    fn asking(p: LsmProfile) -> ContainerConfig {
        ContainerConfig {
            apparmor: p,
            ..Default::default()
        }
    }

    #[test]
    fn without_apparmor_a_named_profile_is_refused_and_the_rest_accepted() {
        let (_d, a) = node(false, "");
        let e = a
            .check(&asking(LsmProfile::Localhost("k8s-nginx".into())), None)
            .expect_err("refused");
        assert!(e.to_string().contains("localhost/k8s-nginx"), "{e}");
        assert!(e.to_string().contains("not enabled"), "{e}");
        for ok in [
            LsmProfile::RuntimeDefault,
            LsmProfile::Unconfined,
            LsmProfile::NotAsked,
        ] {
            a.check(&asking(ok), None).expect("accepted");
        }
        let mut privileged = asking(LsmProfile::Localhost("x".into()));
        privileged.privileged = true;
        a.check(&privileged, None)
            .expect("privileged runs unconfined");
    }

    #[test]
    fn with_apparmor_only_loaded_profiles_are_taken() {
        let (_d, a) = node(true, "k8s-nginx (enforce)\n/usr/bin/man (complain)\n");
        a.check(&asking(LsmProfile::Localhost("k8s-nginx".into())), None)
            .expect("loaded");
        let e = a
            .check(&asking(LsmProfile::Localhost("k8s".into())), None)
            .expect_err("not loaded");
        assert!(e.to_string().contains("no AppArmor profile"), "{e}");
    }
}
