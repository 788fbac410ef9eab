//! `linux/seccomp` (Mesos's isolator of that name): the container's seccomp filter.
//!
//! A container asks for a profile ([`SeccompProfile`]): `RuntimeDefault` (Docker's and
//! containerd's default policy, `default`), a `Localhost` file in Docker's JSON
//! (`profile`, read by `path`), unconfined, or nothing, which `--seccomp-default` turns
//! into `RuntimeDefault` as kubelet's SeccompDefault does. A privileged container is
//! unconfined whatever it asks, as with containerd.
//!
//! The profile is read and checked when the container is created (a missing or malformed
//! one is refused, naming the file and what is wrong, before anything is made), made
//! concrete for the container's capabilities and this host (`select`), and compiled to a
//! classic BPF program (`compile`) that goes into the launch spec: the launcher and
//! `ucr nsexec` load it as the last step before exec (`launcher::identity`), and an
//! exec'd command gets the container's. It comes after `linux/capabilities` in the table,
//! since the default profile allows more to a container with more capabilities.

pub mod compile;
pub mod default;
pub mod error;
pub mod path;
pub mod profile;
pub mod select;

#[cfg(test)]
mod bpf_run;
#[cfg(test)]
mod tests;

use std::path::PathBuf;

pub use error::SeccompError;

use crate::containerizer::types::{ContainerConfig, Pod, SeccompProfile};
use crate::isolators::{ContainerContext, Isolator, IsolatorError};
use crate::launcher::seccomp::SeccompFilter;
use crate::launcher::spec::DEFAULT_CAPABILITIES;
use crate::launcher::LaunchSpec;
use profile::{Arch, Profile};
use select::Host;

/// Where kubelet keeps seccomp profiles (its `--root-dir` + `seccomp`).
pub const DEFAULT_PROFILE_ROOT: &str = "/var/lib/kubelet/seccomp";

pub struct Seccomp {
    profile_root: PathBuf,
    /// `--seccomp-default`: `RuntimeDefault` for containers that ask for nothing.
    runtime_default_by_default: bool,
}

/// A profile to apply, once the request is resolved (`None` is unconfined).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    RuntimeDefault,
    Localhost(PathBuf),
}

impl Seccomp {
    pub fn new(profile_root: PathBuf, runtime_default_by_default: bool) -> Self {
        Seccomp {
            profile_root,
            runtime_default_by_default,
        }
    }

    /// The profile `c` gets: none when privileged, the daemon's default when it asks for
    /// nothing.
    pub fn source(&self, c: &ContainerConfig) -> Option<Source> {
        if c.privileged {
            return None;
        }
        match &c.seccomp {
            SeccompProfile::NotAsked => self
                .runtime_default_by_default
                .then_some(Source::RuntimeDefault),
            SeccompProfile::Unconfined => None,
            SeccompProfile::RuntimeDefault => Some(Source::RuntimeDefault),
            SeccompProfile::Localhost(p) => Some(Source::Localhost(p.clone())),
        }
    }

    /// The profile, read and checked, and the name errors give it.
    pub fn load(&self, source: &Source) -> Result<(String, Profile), SeccompError> {
        match source {
            Source::RuntimeDefault => Ok(("RuntimeDefault".into(), default::profile())),
            Source::Localhost(reference) => {
                let (path, bytes) = path::read(&self.profile_root, reference)?;
                let profile = Profile::parse(&bytes).map_err(|source| SeccompError::Parse {
                    path: path.clone(),
                    source,
                })?;
                profile.check().map_err(|problem| SeccompError::Invalid {
                    path: path.clone(),
                    problem,
                })?;
                Ok((path.display().to_string(), profile))
            }
        }
    }

    /// The program for `source`, for a container with capabilities `caps`.
    pub fn filter(&self, source: &Source, caps: &[String]) -> Result<SeccompFilter, SeccompError> {
        let (name, profile) = self.load(source)?;
        let host = Host {
            caps: caps.to_vec(),
            arch: Arch::native(),
            kernel: crate::sys::seccomp::kernel_version().map_err(SeccompError::Kernel)?,
        };
        let selected = select::select(&profile, &host);
        let compiled = compile::compile(&selected).map_err(|source| SeccompError::Compile {
            name: name.clone(),
            source,
        })?;
        if !compiled.unknown.is_empty() {
            // As runc: a profile may name system calls newer than the library knows.
            tracing::debug!(profile = %name, unknown = ?compiled.unknown, "seccomp: system calls libseccomp does not know, skipped");
        }
        Ok(SeccompFilter {
            program: compiled.program,
            flags: compiled.flags,
        })
    }
}

impl Isolator for Seccomp {
    fn name(&self) -> &'static str {
        "linux/seccomp"
    }

    /// A profile that is missing or malformed is refused before anything is made.
    fn check(&self, c: &ContainerConfig, _pod: Option<&Pod>) -> Result<(), IsolatorError> {
        if let Some(source) = self.source(c) {
            self.load(&source)?;
        }
        Ok(())
    }

    fn prepare(
        &self,
        c: &ContainerContext<'_>,
        launch: &mut LaunchSpec,
    ) -> Result<(), IsolatorError> {
        let Some(source) = self.source(c.config) else {
            return Ok(());
        };
        // The set `linux/capabilities` (earlier in the table) decided.
        let caps: Vec<String> = match &launch.process.capabilities {
            Some(caps) => caps.clone(),
            None => DEFAULT_CAPABILITIES.iter().map(|c| c.to_string()).collect(),
        };
        launch.process.seccomp = Some(self.filter(&source, &caps)?);
        Ok(())
    }
}
