//! The CRI door's rules for a container's process, containerd's (`WithProcessArgs` and
//! `containerSpec` in its CRI plugin), which kubelet and critest expect: how the request's
//! `command`, `args`, `working_dir` and user combine with the image's `Entrypoint`, `Cmd`,
//! `WorkingDir` and `User`. The containerizer gets the result, resolved.

use crate::isolators::docker::runtime::{ImageRuntime, RuntimeError};

/// The container's argv from `ContainerConfig.command` / `.args` and the image.
///
/// As containerd (after docker's `merge` in `daemon/commit.go`):
/// - `command` set: it replaces the Entrypoint *and* drops the image Cmd; `args` follow it;
/// - only `args` set: they replace the Cmd, after the image Entrypoint;
/// - neither: Entrypoint then Cmd;
/// - nothing at all: [`RuntimeError::NoCommand`].
///
/// Kubernetes' `command`/`args` are Entrypoint/Cmd under other names; an empty list is
/// "not set" (protobuf cannot tell them apart).
pub fn cri_argv(
    image: &ImageRuntime,
    command: &[String],
    args: &[String],
) -> Result<Vec<String>, RuntimeError> {
    let (command, args) = if command.is_empty() {
        let args = if args.is_empty() { image.cmd() } else { args };
        (image.entrypoint(), args)
    } else {
        (command, args)
    };
    if command.is_empty() && args.is_empty() {
        return Err(RuntimeError::NoCommand);
    }
    Ok(command.iter().chain(args).cloned().collect())
}

/// The process's working directory: the request's if set (CRI sends `""` for unset), else
/// the image `WorkingDir` if non-empty, else `/` (containerd leaves the OCI default `/`).
pub fn cri_working_dir(image: &ImageRuntime, requested: &str) -> String {
    if !requested.is_empty() {
        requested.to_owned()
    } else {
        image.working_dir().unwrap_or("/").to_owned()
    }
}

/// The user spec to run as: the request's (the caller renders `run_as_user` /
/// `run_as_username` / `run_as_group` into docker's `user[:group]` form) if set, else the
/// image `User`; `None` means root. Resolving names against the rootfs's `/etc/passwd` is the
/// launcher's job.
pub fn cri_user<'a>(image: &'a ImageRuntime, requested: Option<&'a str>) -> Option<&'a str> {
    requested.filter(|u| !u.is_empty()).or(image.user())
}

#[cfg(test)]
#[path = "process_tests.rs"]
mod tests;
