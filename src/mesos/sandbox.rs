//! What LAUNCH_CONTAINER's `ContainerInfo` asks of the sandbox and the process, checked
//! and turned into the containerizer's terms before anything is made (ucr-spec.md §5.2,
//! §5.8):
//! - `volumes`: a relative `host_path` (legacy) or a `SANDBOX_PATH` source (type `SELF`)
//!   is a directory made inside the sandbox (`volume/sandbox_path`), the legacy kind with
//!   the mode and owner of the container path in the image (a private 1777 `/tmp`); an
//!   absolute `host_path` or a `HOST_PATH` source must exist on the host and is bound
//!   as it is (`volume/host_path`); `mode: RO` is read-only. Sandbox volumes need an
//!   absolute `container_path`, as Mesos's `SELF` type does; a host path with a relative
//!   one lands in the sandbox.
//! - `rlimit_info`: each `RLMT_*` with both values or neither (unlimited), soft at most
//!   hard; Mesos fails such a launch at exec, ucr says so at once (400).
//!
//! Every refusal is a 400 naming the value.

use std::path::{Path, PathBuf};

use http::StatusCode;

use super::codec::Refused;
use super::wire::v1::{r_limit_info, volume, RLimitInfo, Volume};
use crate::containerizer::types::{Mount, Rlimit, RlimitResource, SandboxVolume};
use crate::isolators::volume::sandbox_path::stays_inside;

fn bad(message: String) -> Refused {
    Refused(StatusCode::BAD_REQUEST, message)
}

/// The volumes, split by where their source is: inside the sandbox, or on the host.
pub fn volumes(
    volumes: &[Volume],
    sandbox_directory: &str,
) -> Result<(Vec<SandboxVolume>, Vec<Mount>), Refused> {
    let mut inside = Vec::new();
    let mut host = Vec::new();
    for v in volumes {
        let cp = &v.container_path;
        let readonly = match volume::Mode::try_from(v.mode) {
            Ok(volume::Mode::Rw) => false,
            Ok(volume::Mode::Ro) => true,
            Err(_) => {
                return Err(bad(format!(
                    "Invalid volume {cp:?}: mode {} is neither RW nor RO",
                    v.mode
                )))
            }
        };
        if cp.is_empty() {
            return Err(bad("Invalid volume: 'container_path' is empty".into()));
        }
        let source = match (&v.source, &v.host_path) {
            (Some(s), None) => source(s, cp)?,
            (None, Some(h)) if h.starts_with('/') => Source::Host(PathBuf::from(h)),
            (None, Some(h)) => Source::Sandbox(PathBuf::from(h), true),
            (None, None) => {
                return Err(bad(format!(
                    "Invalid volume {cp:?}: ucr supports volumes with a 'host_path' or a \
                     HOST_PATH or SANDBOX_PATH 'source'"
                )))
            }
            (Some(_), Some(_)) => {
                return Err(bad(format!(
                    "Invalid volume {cp:?}: only one of 'host_path' and 'source' may be set"
                )))
            }
        };
        match source {
            Source::Sandbox(path, like_image) => {
                if !stays_inside(&path) {
                    return Err(bad(format!(
                        "Invalid volume {cp:?}: sandbox path {:?} must be relative and stay \
                         inside the sandbox",
                        path.display().to_string()
                    )));
                }
                if !cp.starts_with('/') {
                    return Err(bad(format!(
                        "Invalid volume {cp:?}: 'container_path' is relative for SANDBOX_PATH \
                         volume SELF type"
                    )));
                }
                inside.push(SandboxVolume {
                    path,
                    container_path: cp.clone(),
                    readonly,
                    like_image,
                });
            }
            Source::Host(path) => {
                if !path.exists() {
                    return Err(bad(format!(
                        "Invalid volume {cp:?}: host path {:?} does not exist",
                        path.display().to_string()
                    )));
                }
                host.push(Mount {
                    host_path: path,
                    container_path: container_path(cp, sandbox_directory)?,
                    readonly,
                    propagation: Default::default(),
                });
            }
        }
    }
    Ok((inside, host))
}

enum Source {
    /// Below the sandbox; true: like the image's directory (legacy relative host_path).
    Sandbox(PathBuf, bool),
    Host(PathBuf),
}

fn source(s: &volume::Source, cp: &str) -> Result<Source, Refused> {
    use volume::source::{sandbox_path, Type};
    match s.r#type() {
        Type::HostPath => match &s.host_path {
            Some(h) if h.path.starts_with('/') => Ok(Source::Host(PathBuf::from(&h.path))),
            Some(h) => Err(bad(format!(
                "Invalid volume {cp:?}: HOST_PATH {:?} is not absolute",
                h.path
            ))),
            None => Err(bad(format!(
                "Invalid volume {cp:?}: HOST_PATH source without 'host_path'"
            ))),
        },
        Type::SandboxPath => match &s.sandbox_path {
            Some(p) if p.r#type() == sandbox_path::Type::Self_ => {
                Ok(Source::Sandbox(PathBuf::from(&p.path), false))
            }
            Some(p) if p.r#type() == sandbox_path::Type::Parent => Err(bad(format!(
                "Invalid volume {cp:?}: SANDBOX_PATH volume PARENT type only works for nested \
                 container"
            ))),
            Some(_) => Err(bad(format!(
                "Invalid volume {cp:?}: Unknown SANDBOX_PATH volume type"
            ))),
            None => Err(bad(format!(
                "Invalid volume {cp:?}: SANDBOX_PATH source without 'sandbox_path'"
            ))),
        },
        other => Err(bad(format!(
            "Invalid volume {cp:?}: source type {} is not supported by ucr",
            other.as_str_name()
        ))),
    }
}

/// An absolute container path as given; a relative one in the sandbox.
fn container_path(cp: &str, sandbox_directory: &str) -> Result<String, Refused> {
    if cp.starts_with('/') {
        return Ok(cp.to_string());
    }
    if !stays_inside(Path::new(cp)) {
        return Err(bad(format!(
            "Invalid volume {cp:?}: a relative 'container_path' must stay inside the sandbox"
        )));
    }
    Ok(format!("{}/{cp}", sandbox_directory.trim_end_matches('/')))
}

/// `rlimit_info`'s limits, checked by Mesos's rules.
pub fn rlimits(info: Option<&RLimitInfo>) -> Result<Vec<Rlimit>, Refused> {
    use r_limit_info::r_limit::Type;
    let mut out = Vec::new();
    for r in info.iter().flat_map(|i| &i.rlimits) {
        let t = r.r#type();
        let resource = match t {
            Type::Unknown => {
                return Err(bad(format!(
                    "Invalid rlimit: unknown type {}",
                    r.r#type.unwrap_or_default()
                )))
            }
            Type::RlmtAs => RlimitResource::As,
            Type::RlmtCore => RlimitResource::Core,
            Type::RlmtCpu => RlimitResource::Cpu,
            Type::RlmtData => RlimitResource::Data,
            Type::RlmtFsize => RlimitResource::Fsize,
            Type::RlmtLocks => RlimitResource::Locks,
            Type::RlmtMemlock => RlimitResource::Memlock,
            Type::RlmtMsgqueue => RlimitResource::Msgqueue,
            Type::RlmtNice => RlimitResource::Nice,
            Type::RlmtNofile => RlimitResource::Nofile,
            Type::RlmtNproc => RlimitResource::Nproc,
            Type::RlmtRss => RlimitResource::Rss,
            Type::RlmtRtprio => RlimitResource::Rtprio,
            Type::RlmtRttime => RlimitResource::Rttime,
            Type::RlmtSigpending => RlimitResource::Sigpending,
            Type::RlmtStack => RlimitResource::Stack,
        };
        let limit = Rlimit {
            resource,
            soft: r.soft,
            hard: r.hard,
        };
        if let Some(why) = crate::isolators::posix::rlimits::invalid(&limit) {
            return Err(bad(format!(
                "Invalid rlimit {} (soft {}, hard {}): {why}",
                t.as_str_name(),
                shown(r.soft),
                shown(r.hard)
            )));
        }
        out.push(limit);
    }
    Ok(out)
}

fn shown(v: Option<u64>) -> String {
    v.map_or_else(|| "unset".into(), |v| v.to_string())
}

#[cfg(test)]
#[path = "sandbox_tests.rs"]
mod tests;
