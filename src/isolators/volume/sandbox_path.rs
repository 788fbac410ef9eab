//! `volume/sandbox_path` (ucr-spec.md §5.2, §8.9): a Mesos container's sandbox and the
//! volumes made inside it. The door makes the sandbox (below a directory only root may
//! enter) and says where the container sees it (`--sandbox_directory`); at prepare, with
//! the rootfs provisioned and the user resolved (`docker/runtime` ran first), this
//! isolator
//! - makes the sandbox's `stdout` and `stderr` (the monitor appends to them) and its
//!   volume directories, one name at a time without following symlinks;
//! - gives them and the sandbox to the container's user, as the Mesos agent chowns a
//!   sandbox to the task's user, so a `nobody` task can write there and no other host
//!   user can (the sandbox's parent stays root's alone);
//! - binds the sandbox at `--sandbox_directory`, then each volume at its container path
//!   (read-only for `mode: RO`), before the host-path volumes (`volume/host_path` comes
//!   next in the table);
//! - sets `MESOS_SANDBOX` unless the image or the request set it: in Mesos the agent's
//!   variable goes under the isolators' (the image's `Env`) and the command's own.
//!
//! A volume "like the image" (Mesos's legacy relative `host_path`, whose
//! filesystem/shared semantics copy the container path's mode and owner) gets the mode
//! and owner of that directory in the image: `/tmp` becomes a private 1777 `/tmp`.
//! Other sandbox volumes (`SANDBOX_PATH`) belong to the sandbox's owner, 0755.

use std::os::fd::AsFd;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::containerizer::types::{ContainerConfig, Pod};
use crate::isolators::{io, ContainerContext, Isolator, IsolatorError};
use crate::launcher::spec::Mount;
use crate::launcher::LaunchSpec;
use crate::sys::owned::{self, Owner};

/// The mode of the sandbox's `stdout` and `stderr`: the container's user reads and writes
/// them, root reads them for `READ_FILE`.
const OUTPUT_MODE: u32 = 0o640;

/// A Mesos sandbox, as the door made it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Sandbox {
    /// The directory on the host; its parent is root's alone.
    pub dir: PathBuf,
    /// Where the container sees it: absolute (`--sandbox_directory`).
    pub container_path: String,
    /// Volumes whose source is a directory inside the sandbox, bound in this order.
    #[serde(default)]
    pub volumes: Vec<SandboxVolume>,
}

/// A directory inside the sandbox bound into the container.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct SandboxVolume {
    /// Below the sandbox: relative, without `..`.
    pub path: PathBuf,
    /// Absolute, inside the container (resolved in the rootfs by the launcher).
    pub container_path: String,
    pub readonly: bool,
    /// Made with the mode and owner of `container_path`'s directory in the image (when it
    /// has one), rather than the sandbox owner's.
    #[serde(default)]
    pub like_image: bool,
}

/// Whether `path` is relative and stays where it starts (no `..`, not empty).
pub fn stays_inside(path: &Path) -> bool {
    !path.as_os_str().is_empty()
        && path
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

pub struct SandboxPath;

impl Isolator for SandboxPath {
    fn name(&self) -> &'static str {
        "volume/sandbox_path"
    }

    fn check(&self, c: &ContainerConfig, _pod: Option<&Pod>) -> Result<(), IsolatorError> {
        let Some(s) = &c.sandbox else {
            return Ok(());
        };
        let bad = |field, value: String, reason| IsolatorError::Invalid {
            field,
            value,
            reason,
        };
        if !s.container_path.starts_with('/') {
            return Err(bad(
                "sandbox.container_path",
                s.container_path.clone(),
                "must be an absolute path",
            ));
        }
        for v in &s.volumes {
            if !stays_inside(&v.path) {
                return Err(bad(
                    "volumes.host_path",
                    v.path.display().to_string(),
                    "must be a relative path inside the sandbox (no '..')",
                ));
            }
            if !v.container_path.starts_with('/') {
                return Err(bad(
                    "volumes.container_path",
                    v.container_path.clone(),
                    "must be an absolute path",
                ));
            }
        }
        Ok(())
    }

    fn prepare(
        &self,
        c: &ContainerContext<'_>,
        launch: &mut LaunchSpec,
    ) -> Result<(), IsolatorError> {
        let Some(s) = &c.config.sandbox else {
            return Ok(());
        };
        let owner = Owner {
            uid: launch.process.uid,
            gid: launch.process.gid,
        };
        let dir = owned::open_dir(&s.dir).map_err(io("open sandbox", &s.dir))?;
        for name in ["stdout", "stderr"] {
            owned::file_owned_at(dir.as_fd(), name, OUTPUT_MODE, owner)
                .map_err(io("create", &s.dir.join(name)))?;
        }
        let image =
            crate::sys::inroot::Root::open(c.rootfs).map_err(io("open rootfs", c.rootfs))?;
        for v in &s.volumes {
            let like = if v.like_image {
                match image.resolve(Path::new(&v.container_path)) {
                    Ok(fd) => Some(
                        owned::mode_and_owner(fd.as_fd())
                            .map_err(io("stat in the image", Path::new(&v.container_path)))?,
                    ),
                    // Not in the image: the launcher makes it; the volume is the user's.
                    Err(_) => None,
                }
            } else {
                None
            };
            let (mode, who) = like.unwrap_or((0o755, owner));
            owned::mkdir_owned_beneath(dir.as_fd(), &v.path, mode, who)
                .map_err(io("create volume", &s.dir.join(&v.path)))?;
        }
        // Last: until now only root could write below it.
        owned::set_dir_owner(&dir, owner, None).map_err(io("chown sandbox", &s.dir))?;
        launch.mounts.push(Mount {
            source: s.dir.clone(),
            destination: s.container_path.clone(),
            readonly: false,
            propagation: Default::default(),
        });
        for v in &s.volumes {
            launch.mounts.push(Mount {
                source: s.dir.join(&v.path),
                destination: v.container_path.clone(),
                readonly: v.readonly,
                propagation: Default::default(),
            });
        }
        if !launch
            .process
            .env
            .iter()
            .any(|e| e.starts_with("MESOS_SANDBOX="))
        {
            launch
                .process
                .env
                .push(format!("MESOS_SANDBOX={}", s.container_path));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_paths_must_stay_inside() {
        for ok in ["tmp", "a/b", "./x"] {
            assert!(stays_inside(Path::new(ok)), "{ok}");
        }
        for bad in ["", "/tmp", "..", "a/../..", "a/..", "../x"] {
            assert!(!stays_inside(Path::new(bad)), "{bad}");
        }
    }

    #[test]
    fn check_names_the_bad_value() {
        let config = |volume: SandboxVolume| ContainerConfig {
            sandbox: Some(Sandbox {
                dir: "/s".into(),
                container_path: "/mnt/mesos/sandbox".into(),
                volumes: vec![volume],
            }),
            ..Default::default()
        };
        let e = SandboxPath
            .check(
                &config(SandboxVolume {
                    path: "../../etc".into(),
                    container_path: "/etc".into(),
                    ..Default::default()
                }),
                None,
            )
            .expect_err("an escape");
        assert!(e.to_string().contains("../../etc"), "{e}");
        let e = SandboxPath
            .check(
                &config(SandboxVolume {
                    path: "tmp".into(),
                    container_path: "tmp".into(),
                    ..Default::default()
                }),
                None,
            )
            .expect_err("relative");
        assert!(e.to_string().contains("absolute"), "{e}");
    }
}
