//! `cgroups/devices`: which device nodes the container may open or create. Deny all,
//! then runc's default list, then the request's devices with their permissions; a
//! privileged container may use any (`devices::rules::policy`). On v1 through the
//! devices hierarchy's files, on v2 through a BPF device program on the container's
//! cgroup (`devices::v2`). The rootfs is mounted nodev as well, so a node shipped in an
//! image cannot be opened even where this subsystem does not run.

use std::os::unix::fs::{FileTypeExt, MetadataExt};

use super::{dir_of, Spec, Subsystem};
use crate::containerizer::types::Device;
use crate::isolators::cgroups::cgroup::Cgroup;
use crate::isolators::cgroups::devices::rules::{self, Access, DeviceRule};
use crate::isolators::cgroups::devices::{v1, v2};
use crate::isolators::cgroups::error::CgroupsError;

pub struct Devices;

/// The rule that allows a requested host device: its type and numbers, read from the
/// node on the host, with the requested access.
fn rule_for(d: &Device) -> Result<DeviceRule, CgroupsError> {
    let value = d.host_path.display().to_string();
    let meta = std::fs::metadata(&d.host_path).map_err(|e| CgroupsError::Unsupported {
        field: "devices.host_path".into(),
        value: value.clone(),
        reason: e.to_string(),
    })?;
    let access: Access =
        d.permissions
            .parse()
            .map_err(|e: rules::RuleError| CgroupsError::Unsupported {
                field: "devices.permissions".into(),
                value: d.permissions.clone(),
                reason: e.to_string(),
            })?;
    let rdev = meta.rdev();
    let (major, minor) = (libc::major(rdev), libc::minor(rdev));
    let ft = meta.file_type();
    if ft.is_char_device() {
        Ok(DeviceRule::char(Some(major), Some(minor), access))
    } else if ft.is_block_device() {
        Ok(DeviceRule::block(Some(major), Some(minor), access))
    } else {
        Err(CgroupsError::Unsupported {
            field: "devices.host_path".into(),
            value,
            reason: "is not a device node".into(),
        })
    }
}

impl Subsystem for Devices {
    fn name(&self) -> &'static str {
        "cgroups/devices"
    }

    fn controllers(&self) -> &'static [&'static str] {
        &["devices"]
    }

    fn apply(&self, cg: &Cgroup, spec: &Spec<'_>) -> Result<(), CgroupsError> {
        // The policy is set once, at creation: an update carries no devices.
        if !spec.creating {
            return Ok(());
        }
        let extra = spec
            .devices
            .iter()
            .map(rule_for)
            .collect::<Result<Vec<_>, _>>()?;
        let policy = rules::policy(spec.privileged, &extra);
        if cg.is_v2() {
            let dir = dir_of(cg, "freezer", self.name())?;
            v2::apply_v2(&dir, &policy)?;
        } else {
            let dir = dir_of(cg, "devices", self.name())?;
            v1::apply_v1(&dir, &policy)?;
        }
        Ok(())
    }
}
