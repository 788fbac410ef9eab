//! The cgroups subsystems, each under its Mesos name (`cgroups/cpu`, `cgroups/mem`…), as
//! Mesos's cgroups isolator has one per controller. Each writes its controller's files in
//! a container's cgroup (at start and on update), and reads them back for the stats.
//! They call `cgroups-rs`'s typed controllers for the files it knows, and write by hand
//! (saying so) the few it lacks.

pub mod blkio;
pub mod cpu;
pub mod cpuset;
pub mod devices;
pub mod hugetlb;
pub mod mem;
pub mod net_cls;
pub mod pids;

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::cgroup::Cgroup;
use super::error::CgroupsError;
use super::layout::Layout;
use crate::containerizer::types::{Device, Resources};
use crate::isolators::{Limitation, Usage};

/// What a subsystem applies to a container's cgroup.
pub struct Spec<'a> {
    pub id: &'a str,
    pub resources: &'a Resources,
    pub privileged: bool,
    pub devices: &'a [Device],
    /// At creation (every value written, defaults included), or an update (only what
    /// the request sets).
    pub creating: bool,
}

pub trait Subsystem: Send + Sync {
    /// The Mesos name (`cgroups/mem`).
    fn name(&self) -> &'static str;

    /// The v1 controllers whose hierarchies it needs (v2: the controller names the
    /// unified hierarchy uses, which differ only for `blkio`/`io`).
    fn controllers(&self) -> &'static [&'static str];

    /// Checks a request against this node before anything is made.
    fn check(&self, _r: &Resources, _layout: &Layout) -> Result<(), CgroupsError> {
        Ok(())
    }

    fn apply(&self, cg: &Cgroup, spec: &Spec<'_>) -> Result<(), CgroupsError>;

    fn usage(&self, _cg: &Cgroup, _u: &mut Usage) -> Result<(), CgroupsError> {
        Ok(())
    }

    /// Adds what a verbose status shows of it.
    fn status(&self, _id: &str, _cg: &Cgroup, _info: &mut BTreeMap<String, String>) {}

    /// Whether its limit ended the container.
    fn limitation(&self, _cg: &Cgroup) -> Option<Limitation> {
        None
    }

    /// The container is gone: forget what it held (a `net_cls` handle).
    fn release(&self, _id: &str) {}

    /// After a restart, for a container that still exists: learn again what it holds.
    fn recover(&self, _id: &str, _cg: &Cgroup) {}
}

/// The directory of `cg` in `controller`'s hierarchy, or why there is none.
pub(super) fn dir_of(cg: &Cgroup, controller: &str, name: &str) -> Result<PathBuf, CgroupsError> {
    cg.dir(controller).ok_or_else(|| {
        CgroupsError::State(format!(
            "{name}: no {controller} cgroup hierarchy is mounted on this node"
        ))
    })
}

/// A typed `cgroups-rs` controller for `cg` in `controller`'s hierarchy.
pub(super) fn typed<T>(
    cg: &Cgroup,
    controller: &str,
    name: &str,
    make: impl FnOnce(PathBuf, PathBuf, bool) -> T,
) -> Result<(T, PathBuf), CgroupsError> {
    let dir = dir_of(cg, controller, name)?;
    let mount = cg
        .layout()
        .mount_of(controller)
        .map(std::path::Path::to_path_buf)
        .unwrap_or_else(|| dir.clone());
    Ok((make(dir.clone(), mount, cg.is_v2()), dir))
}

/// Reads a flat-keyed file (`memory.stat`, `cpu.stat`, `memory.events`) into a map.
pub(super) fn flat_keyed(path: &std::path::Path) -> BTreeMap<String, u64> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}
