//! `linux/nnp`: `no_new_privs` for the container's process (and what is exec'd into it),
//! so setuid binaries and file capabilities grant nothing, as Mesos's isolator of that
//! name and the CRI's `no_new_privs` ask.

use crate::isolators::{ContainerContext, Isolator, IsolatorError};
use crate::launcher::LaunchSpec;

pub struct NoNewPrivs;

impl Isolator for NoNewPrivs {
    fn name(&self) -> &'static str {
        "linux/nnp"
    }

    fn prepare(
        &self,
        c: &ContainerContext<'_>,
        launch: &mut LaunchSpec,
    ) -> Result<(), IsolatorError> {
        launch.process.no_new_privs = c.config.no_new_privs;
        Ok(())
    }
}
