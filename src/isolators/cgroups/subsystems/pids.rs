//! `cgroups/pids`: the most processes (and threads) the container may have at once,
//! which is what stops a fork bomb from taking the node down; the count for the stats.

use cgroups_rs::fs::pid::PidController;
use cgroups_rs::fs::MaxValue;

use super::{typed, Spec, Subsystem};
use crate::isolators::cgroups::cgroup::Cgroup;
use crate::isolators::cgroups::error::{from_setter, CgroupsError};
use crate::isolators::Usage;

pub struct Pids {
    /// For containers whose request sets none (`--pids-limit`).
    pub default: Option<i64>,
}

impl Subsystem for Pids {
    fn name(&self) -> &'static str {
        "cgroups/pids"
    }

    fn controllers(&self) -> &'static [&'static str] {
        &["pids"]
    }

    fn apply(&self, cg: &Cgroup, spec: &Spec<'_>) -> Result<(), CgroupsError> {
        let asked = spec.resources.pids_limit.filter(|l| *l != 0);
        let default = self.default.filter(|_| spec.creating);
        let Some(limit) = asked.or(default) else {
            return Ok(());
        };
        let (pids, dir) = typed(cg, "pids", self.name(), PidController::new)?;
        let value = if limit < 0 {
            MaxValue::Max
        } else {
            MaxValue::Value(limit)
        };
        pids.set_pid_max(value)
            .map_err(|e| from_setter("pids_limit", &limit.to_string(), &dir, e))
    }

    fn usage(&self, cg: &Cgroup, u: &mut Usage) -> Result<(), CgroupsError> {
        let Some(dir) = cg.dir("pids") else {
            return Ok(());
        };
        if let Ok(text) = std::fs::read_to_string(dir.join("pids.current")) {
            u.processes = text.trim().parse().ok();
        }
        Ok(())
    }
}
