//! `cgroups/cpu`: CPU shares (v2 weight) and the CFS quota and period; CPU time used,
//! from `cpuacct` on v1 and `cpu.stat` on v2.

use cgroups_rs::fs::cpu::CpuController;

use super::{flat_keyed, typed, Spec, Subsystem};
use crate::isolators::cgroups::cgroup::Cgroup;
use crate::isolators::cgroups::error::{from_setter, CgroupsError};
use crate::isolators::Usage;

pub struct Cpu;

/// cgroup v1 shares to v2 weight, as the OCI runtimes convert them (both ranges mapped
/// linearly: shares 2..262144 onto weight 1..10000), so the same pod spec weighs the same
/// on either version.
pub fn shares_to_weight(shares: u64) -> u64 {
    let shares = shares.clamp(2, 262_144);
    1 + ((shares - 2) * 9999) / 262_142
}

impl Subsystem for Cpu {
    fn name(&self) -> &'static str {
        "cgroups/cpu"
    }

    fn controllers(&self) -> &'static [&'static str] {
        &["cpu", "cpuacct"]
    }

    fn apply(&self, cg: &Cgroup, spec: &Spec<'_>) -> Result<(), CgroupsError> {
        let r = spec.resources;
        let (cpu, dir) = typed(cg, "cpu", self.name(), CpuController::new)?;
        if let Some(shares) = r.cpu_shares.filter(|s| *s > 0) {
            let value = if cg.is_v2() {
                shares_to_weight(shares)
            } else {
                shares
            };
            cpu.set_shares(value)
                .map_err(|e| from_setter("cpu_shares", &shares.to_string(), &dir, e))?;
        }
        if r.cpu_quota.is_some() || r.cpu_period.is_some() {
            // 0 means "not set" in the CRI; a negative quota means no limit.
            let quota = r.cpu_quota.filter(|q| *q != 0).map(|q| q.max(-1));
            let period = r.cpu_period.filter(|p| *p != 0);
            let value = format!("{quota:?}/{period:?}");
            // v1 checks the quota against the period in force: a new, shorter period
            // with the old quota can be refused, so on refusal try the other order.
            cpu.set_cfs_quota_and_period(quota, period)
                .or_else(|_| {
                    if let Some(p) = period {
                        cpu.set_cfs_period(p)?;
                    }
                    if let Some(q) = quota {
                        cpu.set_cfs_quota(q)?;
                    }
                    Ok(())
                })
                .map_err(|e| from_setter("cpu_quota/cpu_period", &value, &dir, e))?;
        }
        Ok(())
    }

    fn usage(&self, cg: &Cgroup, u: &mut Usage) -> Result<(), CgroupsError> {
        if cg.is_v2() {
            let Some(dir) = cg.dir("cpu").or_else(|| cg.dir("freezer")) else {
                return Ok(());
            };
            // `cpu.stat` exists in every v2 cgroup, with or without the cpu controller.
            if let Some(usec) = flat_keyed(&dir.join("cpu.stat")).get("usage_usec") {
                u.cpu_ns = Some(usec.saturating_mul(1000));
            }
            return Ok(());
        }
        let Some(dir) = cg.dir("cpuacct") else {
            return Ok(());
        };
        // By hand: the crate's `CpuAcctController::cpuacct()` reads nine files, and a
        // stats call for a hundred containers wants one each.
        if let Ok(text) = std::fs::read_to_string(dir.join("cpuacct.usage")) {
            u.cpu_ns = text.trim().parse().ok();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_map_onto_weights_at_both_ends_and_the_default() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(0), 1, "clamped");
        assert_eq!(shares_to_weight(u64::MAX), 10_000, "clamped");
    }
}
