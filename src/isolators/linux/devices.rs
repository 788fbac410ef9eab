//! `linux/devices` (Mesos's isolator of the same name): the request's host devices (the
//! CRI's `devices`) appear below the container's `/dev`, bound in from the host. Only
//! device nodes are taken: a host path that is a regular file or a directory would be a
//! volume in disguise. Whether the container may open them is `cgroups/devices`'s
//! decision, which allows exactly these with the requested permissions.

use std::os::unix::fs::FileTypeExt;

use crate::containerizer::types::{ContainerConfig, Pod};
use crate::isolators::{ContainerContext, Isolator, IsolatorError};
use crate::launcher::spec::DeviceNode;
use crate::launcher::LaunchSpec;

pub struct Devices;

impl Isolator for Devices {
    fn name(&self) -> &'static str {
        "linux/devices"
    }

    fn check(&self, c: &ContainerConfig, _pod: Option<&Pod>) -> Result<(), IsolatorError> {
        for d in &c.devices {
            let value = d.host_path.display().to_string();
            match std::fs::metadata(&d.host_path) {
                Ok(m) if m.file_type().is_char_device() || m.file_type().is_block_device() => {}
                Ok(_) => {
                    return Err(IsolatorError::Invalid {
                        field: "devices.host_path",
                        value,
                        reason: "is not a device node",
                    })
                }
                Err(_) => {
                    return Err(IsolatorError::Invalid {
                        field: "devices.host_path",
                        value,
                        reason: "does not exist on this node",
                    })
                }
            }
        }
        Ok(())
    }

    fn prepare(
        &self,
        c: &ContainerContext<'_>,
        launch: &mut LaunchSpec,
    ) -> Result<(), IsolatorError> {
        launch.devices = c
            .config
            .devices
            .iter()
            .map(|d| DeviceNode {
                source: d.host_path.clone(),
                destination: d.container_path.clone(),
            })
            .collect();
        Ok(())
    }
}
