//! `linux/capabilities` (ucr-spec.md §5.7): the container's capability set. Docker's
//! default set (what containerd gives), plus the request's adds, minus its drops (`ALL`
//! works in both, as in Kubernetes); every capability the daemon has when privileged.
//! The launcher makes it the bounding, effective, permitted and inheritable sets.

use crate::containerizer::types::ContainerConfig;
use crate::isolators::{ContainerContext, Isolator, IsolatorError};
use crate::launcher::spec::DEFAULT_CAPABILITIES;
use crate::launcher::LaunchSpec;

pub struct Capabilities;

impl Isolator for Capabilities {
    fn name(&self) -> &'static str {
        "linux/capabilities"
    }

    fn prepare(
        &self,
        c: &ContainerContext<'_>,
        launch: &mut LaunchSpec,
    ) -> Result<(), IsolatorError> {
        launch.process.capabilities = Some(capabilities(c.config));
        Ok(())
    }
}

/// The capability set for a container (names without `CAP_`).
pub fn capabilities(config: &ContainerConfig) -> Vec<String> {
    let norm = |c: &String| c.trim_start_matches("CAP_").to_ascii_uppercase();
    // "All" is all we can give: the daemon's bounding set. The kernel may know fewer
    // capabilities than the caps crate, and a host may withhold some (this one lacks
    // CAP_SYS_RESOURCE); asking for more makes capset fail.
    let all: Vec<String> = caps::read(None, caps::CapSet::Bounding)
        .unwrap_or_else(|_| caps::all())
        .iter()
        .map(|c| c.to_string().trim_start_matches("CAP_").to_string())
        .collect();
    if config.privileged || config.add_capabilities.iter().any(|c| norm(c) == "ALL") {
        return all;
    }
    let mut set: Vec<String> = DEFAULT_CAPABILITIES.iter().map(|s| s.to_string()).collect();
    for c in &config.add_capabilities {
        if !set.contains(&norm(c)) {
            set.push(norm(c));
        }
    }
    if config.drop_capabilities.iter().any(|c| norm(c) == "ALL") {
        set.clear();
    }
    set.retain(|c| !config.drop_capabilities.iter().any(|d| norm(d) == *c));
    set
}
