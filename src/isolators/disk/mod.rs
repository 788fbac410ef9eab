//! Disk isolators: how much disk a container uses, and keeping it within its limit.
//!
//! Mesos has two, and ucr carries both over:
//! - `disk/du` (Mesos's `isolators/posix/disk.cpp`) runs `du -k -s` on each sandbox and
//!   persistent volume every `--container_disk_watch_interval` (15 s), one at a time,
//!   reports the figures in the container's statistics (`disk_used_bytes`,
//!   `disk_limit_bytes`) and, with `--enforce_container_disk_quota`, kills a container
//!   whose usage exceeds its `disk` resource ("Disk usage (X) exceeds quota (Y)",
//!   `REASON_CONTAINER_LIMITATION_DISK`). The container can exceed its quota for up to an
//!   interval: `du` sees, it does not stop.
//! - `disk/xfs` (Mesos's `isolators/xfs/`) gives each sandbox an XFS project id, so the
//!   filesystem itself counts the sandbox's blocks and inodes (no walk) and, with
//!   enforcement, fails writes past the limit with `EDQUOT` (or, with
//!   `--xfs_kill_containers`, lets it run to a headroom and kills it). It needs the work
//!   directory on XFS mounted with `prjquota` and a kernel with XFS quota support.
//!
//! ucr measures in-process instead of running `du` ([`du`]: a descriptor-based walk
//! that follows no symlink and crosses no mount), keeps the last figure per container
//! in a background [`watch`]er that also reports containers over their limit, and
//! labels directories and sets project quotas through the kernel's ioctls and
//! `quotactl_fd` ([`xfs`], on `sys::xfs`). The figures feed the CRI stats as the
//! container's writable layer usage (`ContainerStats.writable_layer`: used bytes and
//! inodes used): the measured directories are the container's overlay upper and work
//! directories, as Mesos counts them as sandbox usage.
//!
//! The isolators themselves (the `Isolator` hooks: register at `prepare`, figures at
//! `usage`, forget at `cleanup`, ids learnt at `recover`) sit on this machinery.

pub mod du;
pub mod walk;

pub mod xfs;
