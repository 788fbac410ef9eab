//! `cgroups/cpuset`: the CPUs and memory nodes the container may use. A new v1 cpuset
//! starts empty; `Cgroup::create` fills it from its parent before anything joins.

use cgroups_rs::fs::cpuset::CpuSetController;

use super::{typed, Spec, Subsystem};
use crate::isolators::cgroups::cgroup::Cgroup;
use crate::isolators::cgroups::error::{from_setter, CgroupsError};

pub struct Cpuset;

impl Subsystem for Cpuset {
    fn name(&self) -> &'static str {
        "cgroups/cpuset"
    }

    fn controllers(&self) -> &'static [&'static str] {
        &["cpuset"]
    }

    fn apply(&self, cg: &Cgroup, spec: &Spec<'_>) -> Result<(), CgroupsError> {
        let r = spec.resources;
        let cpus = r.cpuset_cpus.as_deref().filter(|s| !s.is_empty());
        let mems = r.cpuset_mems.as_deref().filter(|s| !s.is_empty());
        if cpus.is_none() && mems.is_none() {
            return Ok(());
        }
        let (cpuset, dir) = typed(cg, "cpuset", self.name(), CpuSetController::new)?;
        if let Some(c) = cpus {
            cpuset
                .set_cpus(c)
                .map_err(|e| from_setter("cpuset_cpus", c, &dir, e))?;
        }
        if let Some(m) = mems {
            cpuset
                .set_mems(m)
                .map_err(|e| from_setter("cpuset_mems", m, &dir, e))?;
        }
        Ok(())
    }
}
