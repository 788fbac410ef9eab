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
            let stat = flat_keyed(&dir.join("cpu.stat"));
            let ns = |k: &str| stat.get(k).map(|usec| usec.saturating_mul(1000));
            u.cpu_ns = ns("usage_usec");
            u.cpu_user_ns = ns("user_usec");
            u.cpu_system_ns = ns("system_usec");
            u.cpu_throttling = throttling(&stat, "throttled_usec", 1000);
            return Ok(());
        }
        // v1 has the times in cpuacct and the throttling in cpu (separate hierarchies on
        // some nodes). By hand: the crate's `CpuAcctController::cpuacct()` reads nine
        // files, and a stats call for a hundred containers wants few.
        if let Some(dir) = cg.dir("cpuacct") {
            if let Ok(text) = std::fs::read_to_string(dir.join("cpuacct.usage")) {
                u.cpu_ns = text.trim().parse().ok();
            }
            // In USER_HZ ticks.
            let stat = flat_keyed(&dir.join("cpuacct.stat"));
            let tick_ns = 1_000_000_000 / clock_ticks();
            u.cpu_user_ns = stat.get("user").map(|t| t.saturating_mul(tick_ns));
            u.cpu_system_ns = stat.get("system").map(|t| t.saturating_mul(tick_ns));
        }
        if let Some(dir) = cg.dir("cpu") {
            u.cpu_throttling = throttling(&flat_keyed(&dir.join("cpu.stat")), "throttled_time", 1);
        }
        Ok(())
    }
}

/// CFS throttling from a `cpu.stat` (the throttled time under `key`, in units of
/// `to_ns` nanoseconds); none when the file has no such counters.
fn throttling(
    stat: &std::collections::BTreeMap<String, u64>,
    key: &str,
    to_ns: u64,
) -> Option<crate::isolators::CpuThrottling> {
    Some(crate::isolators::CpuThrottling {
        periods: *stat.get("nr_periods")?,
        throttled_periods: *stat.get("nr_throttled")?,
        throttled_ns: stat.get(key)?.saturating_mul(to_ns),
    })
}

/// USER_HZ, the unit of `cpuacct.stat` (100 on every Linux build, read anyway), once:
/// a stats call reads it for every container.
fn clock_ticks() -> u64 {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
            .ok()
            .flatten()
            .and_then(|t| u64::try_from(t).ok())
            .filter(|t| *t > 0)
            .unwrap_or(100)
    })
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
