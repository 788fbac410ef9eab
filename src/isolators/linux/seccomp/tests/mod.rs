//! `linux/seccomp` without loading anything: profiles parsed and checked, narrowed to a
//! container, compiled, and the compiled programs run call by call (`bpf_run`); profile
//! paths resolved against a root; the isolator's choice of profile.

mod compiled;
mod isolator;
mod paths;
mod profiles;
mod runtime_default;

use super::profile::Arch;
use super::select::Host;

/// A host like this one, with the container capabilities `caps` (without `CAP_`).
fn host(caps: &[&str], kernel: (u64, u64)) -> Host {
    Host {
        caps: caps.iter().map(|c| c.to_string()).collect(),
        arch: Arch::X86_64,
        kernel,
    }
}

/// Docker's default capabilities.
fn default_caps() -> Vec<&'static str> {
    crate::launcher::spec::DEFAULT_CAPABILITIES.to_vec()
}
