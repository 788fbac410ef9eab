//! `linux/selinux`: ucr does not label processes or files for SELinux. A pod or container
//! that asks for a label is refused with the reason (SELinux absent from the node, or
//! present but not supported by ucr), never run unlabelled in silence.

use std::path::{Path, PathBuf};

use crate::containerizer::types::{ContainerConfig, Pod, PodConfig, SelinuxLabel};
use crate::isolators::{Isolator, IsolatorError, PodPlan};

pub struct Selinux {
    root: PathBuf,
}

impl Selinux {
    pub fn new() -> Self {
        Self::at(Path::new("/"))
    }

    pub fn at(root: &Path) -> Self {
        Selinux {
            root: root.to_path_buf(),
        }
    }

    /// Whether the kernel runs SELinux (selinuxfs is mounted and says so).
    pub fn enabled(&self) -> bool {
        self.root.join("sys/fs/selinux/enforce").exists()
    }

    fn refuse(&self, field: &'static str, label: &SelinuxLabel) -> IsolatorError {
        IsolatorError::Invalid {
            field,
            value: label.to_string(),
            reason: if self.enabled() {
                "ucr does not apply SELinux labels"
            } else {
                "SELinux is not enabled on this node's kernel"
            },
        }
    }
}

impl Default for Selinux {
    fn default() -> Self {
        Self::new()
    }
}

impl Isolator for Selinux {
    fn name(&self) -> &'static str {
        "linux/selinux"
    }

    fn plan_pod(&self, pod: &PodConfig, _plan: &mut PodPlan) -> Result<(), IsolatorError> {
        match &pod.selinux {
            Some(l) => Err(self.refuse("security_context.selinux_options", l)),
            None => Ok(()),
        }
    }

    fn check(&self, c: &ContainerConfig, _pod: Option<&Pod>) -> Result<(), IsolatorError> {
        match &c.selinux {
            Some(l) => Err(self.refuse("security_context.selinux_options", l)),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_label_is_refused_saying_why() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Selinux::at(dir.path());
        let c = ContainerConfig {
            selinux: Some(SelinuxLabel {
                r#type: "spc_t".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let e = s.check(&c, None).expect_err("no SELinux");
        assert!(e.to_string().contains("not enabled"), "{e}");
        assert!(e.to_string().contains("spc_t"), "{e}");
        std::fs::create_dir_all(dir.path().join("sys/fs/selinux")).expect("fs");
        std::fs::write(dir.path().join("sys/fs/selinux/enforce"), "1").expect("w");
        let e = s.check(&c, None).expect_err("not supported");
        assert!(e.to_string().contains("does not apply"), "{e}");
        s.check(&ContainerConfig::default(), None)
            .expect("nothing asked");
    }
}
