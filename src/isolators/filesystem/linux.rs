//! `filesystem/linux` (ucr-spec.md §5.2): the container's own view of the kernel's
//! filesystems. The launcher mounts /proc, /sys and a /dev of its own in every container;
//! this isolator decides what of them the container may see and change:
//! - masked paths (an empty tmpfs on directories, `/dev/null` on files) and read-only
//!   paths: the request's lists, or Docker's defaults when it sends none (as containerd
//!   treats an empty list);
//! - a read-only rootfs when asked;
//! - privileged containers: nothing masked or frozen, a writable /sys and the host's
//!   devices (containerd and CRI-O do the same).

use crate::isolators::{ContainerContext, Isolator, IsolatorError};
use crate::launcher::spec::{MASKED_PATHS, READONLY_PATHS};
use crate::launcher::LaunchSpec;

pub struct FilesystemLinux;

impl Isolator for FilesystemLinux {
    fn name(&self) -> &'static str {
        "filesystem/linux"
    }

    fn prepare(
        &self,
        c: &ContainerContext<'_>,
        launch: &mut LaunchSpec,
    ) -> Result<(), IsolatorError> {
        let config = c.config;
        let paths_or = |given: &[String], default: &[&str]| -> Vec<String> {
            if config.privileged {
                Vec::new()
            } else if given.is_empty() {
                default.iter().map(|p| p.to_string()).collect()
            } else {
                given.to_vec()
            }
        };
        launch.masked_paths = paths_or(&config.masked_paths, MASKED_PATHS);
        launch.readonly_paths = paths_or(&config.readonly_paths, READONLY_PATHS);
        launch.readonly_rootfs = config.readonly_rootfs;
        launch.privileged = config.privileged;
        Ok(())
    }
}
