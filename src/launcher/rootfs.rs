//! Builds the container's view of the filesystem inside its new mount namespace, then
//! pivots into it: /proc, a read-only /sys, a tmpfs /dev with the standard devices and a
//! private devpts, /dev/shm, /dev/mqueue, the spec's own mounts, masked and read-only
//! kernel paths.
//!
//! Mount targets come from the image, which may be hostile: a target whose path crosses
//! a symlink inside the rootfs is refused (the mount would land wherever the link
//! points, possibly on the host).

use std::path::{Component, Path, PathBuf};

use super::setup::{self, SetupError};
use super::spec::{LaunchSpec, MountPropagation};
use super::LaunchError;
use crate::sys::mount::{self, MsFlags, Propagation};

fn step<'a>(step: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> SetupError + 'a {
    setup::step(step, path.display())
}

/// `dest` (absolute, inside the container) as a host path under `rootfs`, creating what is
/// missing: directories, and the last component as a file when `file` is true.
pub fn target(rootfs: &Path, dest: &str, file: bool) -> Result<PathBuf, LaunchError> {
    let rel = Path::new(dest);
    if !rel.is_absolute() {
        return Err(LaunchError::BadTarget {
            target: dest.to_string(),
            reason: "not an absolute path",
        });
    }
    let parts: Vec<_> = rel
        .components()
        .filter(|c| !matches!(c, Component::RootDir | Component::CurDir))
        .collect();
    let mut path = rootfs.to_path_buf();
    for (i, part) in parts.iter().enumerate() {
        let Component::Normal(name) = part else {
            return Err(LaunchError::BadTarget {
                target: dest.to_string(),
                reason: "contains ..",
            });
        };
        path.push(name);
        let last = i + 1 == parts.len();
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(LaunchError::BadTarget {
                    target: dest.to_string(),
                    reason: "crosses a symlink in the image",
                })
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if last && file {
                    std::fs::File::create(&path).map_err(step("create mount target", &path))?;
                } else {
                    std::fs::create_dir(&path).map_err(step("create mount target", &path))?;
                }
            }
            Err(e) => return Err(step("inspect mount target", &path)(e).into()),
        }
    }
    Ok(path)
}

const NOSUID_NOEXEC_NODEV: MsFlags = MsFlags::MS_NOSUID
    .union(MsFlags::MS_NOEXEC)
    .union(MsFlags::MS_NODEV);

/// Everything before the pivot: runs in the child, in its new mount namespace.
pub fn prepare(spec: &LaunchSpec) -> Result<(), LaunchError> {
    let root = &spec.rootfs;
    // Normally every mount becomes a slave: host events come in, ours never go out. A
    // bidirectional volume must stay a peer of its source on the host, so then the
    // host's mounts are left as they are and the rootfs, under which everything of ours
    // goes, is made private instead; each bind below then gets its propagation set.
    let bidirectional = spec
        .mounts
        .iter()
        .any(|m| m.propagation == MountPropagation::Bidirectional);
    if bidirectional {
        mount::set_propagation_recursive(root, Propagation::Private)
            .map_err(step("make the rootfs rprivate", root))?;
    } else {
        mount::make_tree_slave(Path::new("/")).map_err(step("make / rslave", Path::new("/")))?;
    }
    // A bind of a host mount joins that mount's peer group; only bidirectional volumes
    // may stay there.
    let private = |t: &Path| -> Result<(), LaunchError> {
        if bidirectional {
            mount::set_propagation_recursive(t, Propagation::Private)
                .map_err(step("make mount rprivate", t))?;
        }
        Ok(())
    };
    // pivot_root needs the new root to be a mount point.
    mount::bind_recursive(root, root).map_err(step("bind rootfs", root))?;

    let proc_ = target(root, "/proc", false)?;
    mount::mount_fs("proc", &proc_, NOSUID_NOEXEC_NODEV, None)
        .map_err(step("mount proc", &proc_))?;
    let sys = target(root, "/sys", false)?;
    // Privileged containers may change kernel settings (as with Docker's --privileged).
    let sys_ro = if spec.privileged {
        MsFlags::empty()
    } else {
        MsFlags::MS_RDONLY
    };
    mount::mount_fs("sysfs", &sys, NOSUID_NOEXEC_NODEV | sys_ro, None)
        .map_err(step("mount sysfs", &sys))?;

    let dev = target(root, "/dev", false)?;
    mount::mount_fs(
        "tmpfs",
        &dev,
        MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
        Some("mode=755,size=65536k"),
    )
    .map_err(step("mount /dev", &dev))?;
    // The host's device nodes, bound in: no mknod needed, and the same nodes Mesos copies.
    // A privileged container gets every device the host has, as runc gives it.
    let devices = if spec.privileged {
        host_devices()
    } else {
        ["null", "zero", "full", "random", "urandom", "tty"]
            .iter()
            .map(|n| n.to_string())
            .collect()
    };
    for name in devices {
        let host = Path::new("/dev").join(&name);
        let t = target(root, &format!("/dev/{name}"), true)?;
        mount::bind(&host, &t).map_err(step("bind device", &t))?;
        private(&t)?;
    }
    let pts = target(root, "/dev/pts", false)?;
    mount::mount_fs(
        "devpts",
        &pts,
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620,gid=5"),
    )
    .map_err(step("mount devpts", &pts))?;
    for (link, to) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        let l = dev.join(link);
        std::os::unix::fs::symlink(to, &l).map_err(step("link", &l))?;
    }
    let shm = target(root, "/dev/shm", false)?;
    match &spec.shm {
        Some(pod_shm) => {
            mount::bind(pod_shm, &shm).map_err(step("bind pod /dev/shm", &shm))?;
            private(&shm)?;
        }
        None => mount::mount_fs(
            "tmpfs",
            &shm,
            NOSUID_NOEXEC_NODEV,
            Some("mode=1777,size=65536k"),
        )
        .map_err(step("mount /dev/shm", &shm))?,
    }
    let mq = target(root, "/dev/mqueue", false)?;
    mount::mount_fs("mqueue", &mq, NOSUID_NOEXEC_NODEV, None).map_err(step("mount mqueue", &mq))?;

    for m in &spec.mounts {
        let is_file = std::fs::metadata(&m.source)
            .map(|md| !md.is_dir())
            .map_err(step("inspect mount source", &m.source))?;
        let t = target(root, &m.destination, is_file)?;
        mount::bind_recursive(&m.source, &t).map_err(step("bind mount", &t))?;
        if m.readonly {
            mount::remount_read_only(&t).map_err(step("make mount read-only", &t))?;
        }
        let propagation = match m.propagation {
            MountPropagation::Private => Propagation::Private,
            MountPropagation::HostToContainer => Propagation::Slave,
            MountPropagation::Bidirectional => Propagation::Shared,
        };
        mount::set_propagation_recursive(&t, propagation)
            .map_err(step("set mount propagation", &t))?;
    }
    Ok(())
}

/// After the pivot: hide and freeze kernel paths, make / read-only if asked.
pub fn finish(spec: &LaunchSpec) -> Result<(), LaunchError> {
    for p in &spec.masked_paths {
        let path = Path::new(p);
        match std::fs::symlink_metadata(path) {
            Ok(m) if m.is_dir() => {
                mount::mount_fs("tmpfs", path, MsFlags::MS_RDONLY, Some("size=0"))
                    .map_err(step("mask", path))?
            }
            Ok(_) => mount::bind(Path::new("/dev/null"), path).map_err(step("mask", path))?,
            Err(_) => {} // not in this kernel
        }
    }
    for p in &spec.readonly_paths {
        let path = Path::new(p);
        if path.exists() {
            mount::bind_recursive(path, path).map_err(step("bind read-only path", path))?;
            mount::remount_read_only(path).map_err(step("make path read-only", path))?;
        }
    }
    if spec.readonly_rootfs {
        mount::remount_read_only(Path::new("/"))
            .map_err(step("make rootfs read-only", Path::new("/")))?;
    }
    Ok(())
}

/// The host's device nodes (character and block devices) under /dev, as paths relative
/// to it, skipping the directories the container gets its own of (pts, shm, mqueue) and
/// the console and ptmx, which belong to the container's own devpts.
fn host_devices() -> Vec<String> {
    use std::os::unix::fs::FileTypeExt;
    let mut found = Vec::new();
    let mut dirs = vec![PathBuf::new()];
    while let Some(rel) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(Path::new("/dev").join(&rel)) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = rel.join(entry.file_name());
            let skip = ["pts", "shm", "mqueue", "console", "ptmx", "fd", "core"];
            if rel.as_os_str().is_empty() && skip.iter().any(|s| entry.file_name() == *s) {
                continue;
            }
            let Ok(ft) = entry.file_type() else { continue };
            if ft.is_dir() {
                dirs.push(name);
            } else if ft.is_char_device() || ft.is_block_device() {
                found.push(name.to_string_lossy().into_owned());
            }
        }
    }
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_created_and_symlinks_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        let t = target(root, "/etc/hosts", true).expect("created");
        assert!(t.is_file() && t.starts_with(root));
        assert!(target(root, "/a/b/c", false).expect("dirs").is_dir());
        std::os::unix::fs::symlink("/etc", root.join("evil")).expect("symlink");
        let e = target(root, "/evil/passwd", true).expect_err("through a symlink");
        assert!(e.to_string().contains("crosses a symlink"), "{e}");
        assert!(target(root, "relative", false).is_err());
        assert!(target(root, "/a/../../x", false).is_err());
    }
}
