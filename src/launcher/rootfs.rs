//! Builds the container's view of the filesystem inside its new mount namespace, then
//! pivots into it: /proc, a read-only /sys, a tmpfs /dev with the standard devices and a
//! private devpts, /dev/shm, /dev/mqueue, the spec's own mounts, masked and read-only
//! kernel paths.
//!
//! Mount targets and the working directory come from the image and the request, and the
//! image may be hostile: every one is resolved *inside* the rootfs (`sys::inroot`), its
//! symlinks followed as the container would see them (`/var/run -> /run` works, `/vol ->
//! /etc` means the image's own /etc, `..` stops at the rootfs), and each mount is made
//! detached and attached onto the descriptor that resolution returned, so nothing can
//! redirect it between the lookup and the mount.
//!
//! The rootfs itself is mounted `nodev`: a device node shipped in an image layer (a
//! `0666` block device, say) cannot be opened. /dev is a tmpfs of our own, without
//! `nodev`, holding only the nodes bound in from the host.

use std::collections::HashMap;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use super::setup::{self, SetupError};
use super::spec::{LaunchSpec, MountPropagation};
use super::LaunchError;
use crate::sys::inroot::{Create, Root};
use crate::sys::mount::{self, Attrs, MsFlags, Propagation};

fn step<'a>(step: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> SetupError + 'a {
    setup::step(step, path.display())
}

/// `dest` (absolute, inside the container) resolved inside `root`, creating what is
/// missing: directories, and the last component as `last` says.
pub fn target(root: &Root, dest: &str, last: Create) -> Result<OwnedFd, LaunchError> {
    if !dest.starts_with('/') {
        return Err(LaunchError::BadTarget {
            target: dest.to_string(),
            reason: "not an absolute path",
        });
    }
    root.resolve_or_create(Path::new(dest), last)
        .map_err(|e| step("resolve mount target", Path::new(dest))(e).into())
}

/// A new filesystem attached at `dest` inside `root`; returns the mount, whose
/// descriptor names it (so files can be made inside it).
fn mount_fs_at(
    root: &Root,
    dest: &str,
    fstype: &'static str,
    options: &[(&str, Option<&str>)],
    attrs: Attrs,
) -> Result<OwnedFd, LaunchError> {
    let t = target(root, dest, Create::Dir)?;
    let m = mount::new_fs(fstype, options, attrs).map_err(step("mount", Path::new(fstype)))?;
    mount::attach(m.as_fd(), t.as_fd()).map_err(step("attach mount", Path::new(dest)))?;
    Ok(m)
}

/// What a container in a user namespace could not reach once inside it (the daemon's
/// 0700 directories, kubelet's volumes): made or opened beforehand by a process still
/// privileged on the host (`launcher::userns`). Empty for every other container, whose
/// child opens what it needs itself.
#[derive(Default)]
pub struct Preopened {
    /// The rootfs, as a detached mount (idmapped when the launch asks).
    rootfs_mount: Option<OwnedFd>,
    /// Attach that mount over `/` rather than at the rootfs's path (out of reach).
    rootfs_mount_over_slash: bool,
    /// Binds of host paths, detached, by source and recursiveness, with whether the
    /// source is a file.
    binds: HashMap<(PathBuf, bool), (OwnedFd, bool)>,
    /// Namespace files to join, by path.
    joins: HashMap<PathBuf, std::fs::File>,
}

impl Preopened {
    /// Everything of the host `spec` needs: the rootfs (idmapped through `idmap` when
    /// given), every bind source, every namespace file.
    pub fn open(spec: &LaunchSpec, idmap: Option<BorrowedFd<'_>>) -> Result<Self, LaunchError> {
        let rootfs = &spec.rootfs;
        // Cloned here, on the host, a copy of a shared mount is its peer: made a slave at
        // once, as the child makes `/` a slave before it binds anything itself, so that
        // nothing mounted in the container reaches the host (and pivot_root, which
        // refuses a shared new root, works).
        let slave = |m: &OwnedFd, what: &Path| {
            mount::set_propagation_of(m.as_fd(), Propagation::Slave, true)
                .map_err(step("make the bind a slave", what))
        };
        let top = mount::clone_tree(rootfs, true).map_err(step("bind rootfs", rootfs))?;
        slave(&top, rootfs)?;
        if let Some(ns) = idmap {
            mount::idmap(top.as_fd(), ns, true).map_err(step("idmap rootfs", rootfs))?;
        }
        let mut pre = Preopened {
            rootfs_mount: Some(top),
            rootfs_mount_over_slash: true,
            ..Default::default()
        };
        let mut sources: Vec<(PathBuf, bool)> = standard_devices(spec)
            .into_iter()
            .map(|n| (Path::new("/dev").join(n), false))
            .collect();
        sources.extend(spec.devices.iter().map(|d| (d.source.clone(), false)));
        sources.extend(spec.shm.iter().map(|s| (s.clone(), false)));
        sources.extend(spec.mounts.iter().map(|m| (m.source.clone(), true)));
        for (source, recursive) in sources {
            if pre.binds.contains_key(&(source.clone(), recursive)) {
                continue;
            }
            let is_file = std::fs::metadata(&source)
                .map(|md| !md.is_dir())
                .map_err(step("inspect mount source", &source))?;
            let m = mount::clone_tree(&source, recursive).map_err(step("bind", &source))?;
            slave(&m, &source)?;
            pre.binds.insert((source, recursive), (m, is_file));
        }
        for j in &spec.join {
            let f = std::fs::File::open(&j.path).map_err(step("open namespace", &j.path))?;
            pre.joins.insert(j.path.clone(), f);
        }
        Ok(pre)
    }

    /// The namespace file at `path`, if it was opened beforehand.
    pub fn join_file(&self, path: &Path) -> Option<&std::fs::File> {
        self.joins.get(path)
    }
}

/// The host's device nodes every container gets (all of them when privileged).
fn standard_devices(spec: &LaunchSpec) -> Vec<String> {
    if spec.privileged {
        host_devices()
    } else {
        ["null", "zero", "full", "random", "urandom", "tty"]
            .iter()
            .map(|n| n.to_string())
            .collect()
    }
}

/// A bind of the host's `source` at `dest` inside `root`, read-only when asked.
fn bind_at(
    root: &Root,
    source: &Path,
    dest: &str,
    recursive: bool,
    readonly: bool,
    pre: &mut Preopened,
) -> Result<OwnedFd, LaunchError> {
    let (m, is_file) = match pre.binds.remove(&(source.to_path_buf(), recursive)) {
        Some(made) => made,
        None => {
            let is_file = std::fs::metadata(source)
                .map(|md| !md.is_dir())
                .map_err(step("inspect mount source", source))?;
            let m = mount::clone_tree(source, recursive).map_err(step("bind", source))?;
            (m, is_file)
        }
    };
    let last = if is_file { Create::File } else { Create::Dir };
    let t = target(root, dest, last)?;
    if readonly {
        // Before it is attached: the mount is never writable where the container is.
        mount::set_attrs(m.as_fd(), Attrs::MOUNT_ATTR_RDONLY, false)
            .map_err(step("make mount read-only", source))?;
    }
    mount::attach(m.as_fd(), t.as_fd()).map_err(step("attach bind mount", Path::new(dest)))?;
    Ok(m)
}

const NOSUID_NOEXEC_NODEV: Attrs = Attrs::MOUNT_ATTR_NOSUID
    .union(Attrs::MOUNT_ATTR_NOEXEC)
    .union(Attrs::MOUNT_ATTR_NODEV);

/// Everything before the pivot: runs in the child, in its new mount namespace. Returns
/// the container's root: the rootfs mount the pivot goes into. `pre`: what was opened
/// before the clone (see [`Preopened`]).
pub fn prepare(spec: &LaunchSpec, pre: &mut Preopened) -> Result<Root, LaunchError> {
    let rootfs = &spec.rootfs;
    // Normally every mount becomes a slave: host events come in, ours never go out. A
    // bidirectional volume must stay a peer of its source on the host, so then the
    // host's mounts are left as they are and the rootfs, under which everything of ours
    // goes, is made private instead; each bind below then gets its propagation set.
    let bidirectional = spec
        .mounts
        .iter()
        .any(|m| m.propagation == MountPropagation::Bidirectional);
    if bidirectional && !pre.rootfs_mount_over_slash {
        mount::set_propagation_recursive(rootfs, Propagation::Private)
            .map_err(step("make the rootfs rprivate", rootfs))?;
    } else {
        mount::make_tree_slave(Path::new("/")).map_err(step("make / rslave", Path::new("/")))?;
    }
    // A bind of a host mount joins that mount's peer group; only bidirectional volumes
    // may stay there.
    let private = |m: &OwnedFd, what: &Path| -> Result<(), LaunchError> {
        if bidirectional {
            mount::set_propagation_of(m.as_fd(), Propagation::Private, true)
                .map_err(step("make mount rprivate", what))?;
        }
        Ok(())
    };
    // pivot_root needs the new root to be a mount point: a bind of the rootfs onto
    // itself, nodev (see the module comment; the backends mount theirs nodev too).
    let top = match pre.rootfs_mount.take() {
        Some(m) => m,
        None => mount::clone_tree(rootfs, true).map_err(step("bind rootfs", rootfs))?,
    };
    mount::set_attrs(top.as_fd(), Attrs::MOUNT_ATTR_NODEV, false)
        .map_err(step("make the rootfs nodev", rootfs))?;
    // A container in a user namespace cannot walk the daemon's 0700 directories to its
    // rootfs: its rootfs goes over `/` instead (in this mount namespace only), which
    // serves pivot_root as well as any mount point.
    let at = match pre.rootfs_mount_over_slash {
        true => Root::open(Path::new("/")).map_err(step("open /", Path::new("/")))?,
        false => Root::open(rootfs).map_err(step("open rootfs", rootfs))?,
    };
    mount::attach(top.as_fd(), at.as_fd()).map_err(step("attach rootfs", rootfs))?;
    let root = Root::from_fd(top);

    mount_fs_at(&root, "/proc", "proc", &[], NOSUID_NOEXEC_NODEV)?;
    // Privileged containers may change kernel settings (as with Docker's --privileged).
    let sys_ro = if spec.privileged {
        Attrs::empty()
    } else {
        Attrs::MOUNT_ATTR_RDONLY
    };
    mount_fs_at(&root, "/sys", "sysfs", &[], NOSUID_NOEXEC_NODEV | sys_ro)?;

    let dev = mount_fs_at(
        &root,
        "/dev",
        "tmpfs",
        &[("mode", Some("755")), ("size", Some("65536k"))],
        Attrs::MOUNT_ATTR_NOSUID | Attrs::MOUNT_ATTR_STRICTATIME,
    )?;
    // Everything below goes into our fresh tmpfs, through its own descriptor.
    let dev = Root::from_fd(dev);
    // The host's device nodes, bound in: no mknod needed, and the same nodes Mesos copies.
    // A privileged container gets every device the host has, as runc gives it.
    for name in standard_devices(spec) {
        let host = Path::new("/dev").join(&name);
        let m = bind_at(&dev, &host, &format!("/{name}"), false, false, pre)?;
        private(&m, &host)?;
    }
    // The request's devices (checked to be device nodes by `linux/devices`); whether the
    // container may open them is the devices cgroup's decision.
    for d in &spec.devices {
        let below = d.destination.strip_prefix("/dev").unwrap_or(&d.destination);
        let m = bind_at(&dev, &d.source, below, false, false, pre)?;
        private(&m, &d.source)?;
    }
    mount_fs_at(
        &dev,
        "/pts",
        "devpts",
        &[
            ("ptmxmode", Some("0666")),
            ("mode", Some("0620")),
            ("gid", Some("5")),
        ],
        Attrs::MOUNT_ATTR_NOSUID | Attrs::MOUNT_ATTR_NOEXEC,
    )?;
    for (link, to) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        crate::sys::fs::symlink_at(to, dev.as_fd(), link)
            .map_err(step("link", &Path::new("/dev").join(link)))?;
    }
    match &spec.shm {
        Some(pod_shm) => {
            let m = bind_at(&dev, pod_shm, "/shm", false, false, pre)?;
            private(&m, pod_shm)?;
        }
        None => {
            mount_fs_at(
                &dev,
                "/shm",
                "tmpfs",
                &[("mode", Some("1777")), ("size", Some("65536k"))],
                NOSUID_NOEXEC_NODEV,
            )?;
        }
    }
    mount_fs_at(&dev, "/mqueue", "mqueue", &[], NOSUID_NOEXEC_NODEV)?;

    for m in &spec.mounts {
        let mnt = bind_at(&root, &m.source, &m.destination, true, m.readonly, pre)?;
        let propagation = match m.propagation {
            MountPropagation::Private => Propagation::Private,
            MountPropagation::HostToContainer => Propagation::Slave,
            MountPropagation::Bidirectional => Propagation::Shared,
        };
        mount::set_propagation_of(mnt.as_fd(), propagation, true).map_err(step(
            "set mount propagation",
            &PathBuf::from(&m.destination),
        ))?;
    }
    Ok(root)
}

/// The working directory, resolved inside `root` like a mount target and created when
/// missing (as root, like containerd); after the volumes, so that one inside a volume is
/// the volume's. The descriptor stays valid across the pivot, for `fchdir`.
pub fn workdir(root: &Root, cwd: &str) -> Result<OwnedFd, LaunchError> {
    let cwd = if cwd.is_empty() { "/" } else { cwd };
    target(root, cwd, Create::Dir)
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
    fn targets_resolve_inside_the_rootfs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root_path = dir.path().join("rootfs");
        std::fs::create_dir(&root_path).expect("mkdir");
        std::os::unix::fs::symlink("/etc", root_path.join("vol")).expect("symlink");
        let root = Root::open(&root_path).expect("open");
        target(&root, "/etc/hosts", Create::File).expect("created");
        assert!(root_path.join("etc/hosts").is_file());
        target(&root, "/a/b/c", Create::Dir).expect("dirs");
        assert!(root_path.join("a/b/c").is_dir());
        target(&root, "/vol/passwd", Create::File).expect("through the image's link");
        assert!(root_path.join("etc/passwd").is_file());
        let e = target(&root, "relative", Create::Dir).expect_err("relative");
        assert!(e.to_string().contains("not an absolute path"), "{e}");
        target(&root, "/a/../../x", Create::Dir).expect("stops at the root");
        assert!(root_path.join("x").is_dir());
    }
}
