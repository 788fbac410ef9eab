//! `volume/host_path` (ucr-spec.md §5.2): host directories and files bound into the
//! container at absolute paths, read-only when asked, with the propagation the request
//! wants (CRI `MountPropagation`): private, host-to-container (`rslave`) or bidirectional
//! (`rshared`). The targets are resolved inside the rootfs by the launcher.

use crate::containerizer::types::{ContainerConfig, Mount as Volume, Pod};
use crate::isolators::{io, ContainerContext, Isolator, IsolatorError};
use crate::launcher::spec::{Mount, MountPropagation};
use crate::launcher::LaunchSpec;

pub struct HostPath;

impl Isolator for HostPath {
    fn name(&self) -> &'static str {
        "volume/host_path"
    }

    fn check(&self, c: &ContainerConfig, _pod: Option<&Pod>) -> Result<(), IsolatorError> {
        c.mounts.iter().try_for_each(check)
    }

    fn prepare(
        &self,
        c: &ContainerContext<'_>,
        launch: &mut LaunchSpec,
    ) -> Result<(), IsolatorError> {
        for v in &c.config.mounts {
            launch.mounts.push(Mount {
                source: v.host_path.clone(),
                destination: v.container_path.clone(),
                readonly: v.readonly,
                propagation: v.propagation,
            });
        }
        Ok(())
    }
}

/// A volume must name an absolute target and an existing source; one that should see
/// host mounts must come from a mount that passes them on: a shared one (or,
/// host-to-container only, a slave), as containerd insists too. Otherwise the request
/// would silently get a private mount.
pub fn check(v: &Volume) -> Result<(), IsolatorError> {
    let bad = |field, value: String, reason| IsolatorError::Invalid {
        field,
        value,
        reason,
    };
    if !v.container_path.starts_with('/') {
        return Err(bad(
            "mounts.container_path",
            v.container_path.clone(),
            "must be an absolute path",
        ));
    }
    let source = || v.host_path.display().to_string();
    if !v.host_path.exists() {
        return Err(bad("mounts.host_path", source(), "does not exist"));
    }
    let (wanted, reason): (&[&str], &'static str) = match v.propagation {
        MountPropagation::Private => return Ok(()),
        MountPropagation::HostToContainer => (
            &["shared:", "master:"],
            "is not on a shared or slave mount (HOST_TO_CONTAINER needs one)",
        ),
        MountPropagation::Bidirectional => (
            &["shared:"],
            "is not on a shared mount (BIDIRECTIONAL needs one)",
        ),
    };
    let tags = crate::sys::mount::propagation_of(&v.host_path)
        .map_err(io("read mount propagation of", &v.host_path))?
        .unwrap_or_default();
    if tags.iter().any(|t| wanted.iter().any(|w| t.starts_with(w))) {
        return Ok(());
    }
    Err(bad("mounts.host_path", source(), reason))
}
