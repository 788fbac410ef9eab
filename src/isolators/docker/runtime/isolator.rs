//! The `docker/runtime` isolator: what the image's runtime config gives the process once
//! the door has chosen its command: the image's `Env` under the request's (unless the
//! door says the runtime is ignored), and the user, resolved against the image's own
//! `/etc/passwd` and `/etc/group`, with `HOME` from there when nothing sets it.

use super::{merge_env, ImageRuntime};
use crate::isolators::{ContainerContext, Isolator, IsolatorError};
use crate::launcher::LaunchSpec;

pub struct DockerRuntime;

impl Isolator for DockerRuntime {
    fn name(&self) -> &'static str {
        "docker/runtime"
    }

    fn prepare(
        &self,
        c: &ContainerContext<'_>,
        launch: &mut LaunchSpec,
    ) -> Result<(), IsolatorError> {
        let p = &c.config.process;
        let none = ImageRuntime::default();
        let image = if p.image_env { c.image } else { &none };
        launch.process.env = merge_env(image.env(), &p.env);
        let spec = p.user.clone().unwrap_or_default();
        let user = crate::launcher::user::resolve(
            c.rootfs,
            &spec,
            &p.supplemental_groups,
            p.strict_groups,
        )?;
        launch.process.uid = user.uid;
        launch.process.gid = user.gid;
        launch.process.additional_gids = user.additional_gids;
        if !launch.process.env.iter().any(|e| e.starts_with("HOME=")) {
            launch.process.env.push(format!("HOME={}", user.home));
        }
        Ok(())
    }
}
