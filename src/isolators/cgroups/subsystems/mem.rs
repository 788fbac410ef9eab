//! `cgroups/mem`: the memory limit and the memory+swap limit with kubelet's meaning;
//! usage for the stats; OOM kills, read from the kernel's counters, so that one is known
//! after a restart too (the cgroup outlives the daemon until the container is removed).

use cgroups_rs::fs::memory::MemController;

use super::{flat_keyed, typed, Spec, Subsystem};
use crate::isolators::cgroups::cgroup::Cgroup;
use crate::isolators::cgroups::error::{from_setter, CgroupsError};
use crate::isolators::{LimitKind, Limitation, MemoryUsage, Usage};

pub struct Mem;

/// v1 reports "no limit" as the largest page-aligned i64.
const V1_UNLIMITED: u64 = 1 << 62;

impl Subsystem for Mem {
    fn name(&self) -> &'static str {
        "cgroups/mem"
    }

    fn controllers(&self) -> &'static [&'static str] {
        &["memory"]
    }

    fn apply(&self, cg: &Cgroup, spec: &Spec<'_>) -> Result<(), CgroupsError> {
        let r = spec.resources;
        let (mem, dir) = typed(cg, "memory", self.name(), MemController::new)?;
        let limit = r.memory_limit.filter(|l| *l != 0);
        // Swap only where the kernel accounts it (v1 `swapaccount`, v2 `memory.swap.max`);
        // kubelet asks for "no swap" (swap limit = memory limit) on nodes without any.
        let swap_file = if cg.is_v2() {
            "memory.swap.max"
        } else {
            "memory.memsw.limit_in_bytes"
        };
        let swap = r
            .memory_swap_limit
            .filter(|s| *s != 0)
            .filter(|_| dir.join(swap_file).exists());
        let set_limit = |l: i64| {
            mem.set_limit(l)
                .map_err(|e| from_setter("memory_limit_in_bytes", &l.to_string(), &dir, e))
        };
        let set_swap = |s: i64| -> Result<(), CgroupsError> {
            let value = if !cg.is_v2() || s < 0 {
                s.max(-1)
            } else {
                // v2 limits swap alone: memory+swap less memory.
                (s - limit.unwrap_or(0)).max(0)
            };
            mem.set_memswap_limit(value)
                .map_err(|e| from_setter("memory_swap_limit_in_bytes", &s.to_string(), &dir, e))
        };
        match (limit, swap) {
            (Some(l), Some(s)) => {
                // v1 wants memory <= memory+swap at every moment: raising both needs swap
                // first, lowering both memory first. Try one order, then the other.
                if set_limit(l).and_then(|_| set_swap(s)).is_err() {
                    set_swap(s)?;
                    set_limit(l)?;
                }
            }
            (Some(l), None) => set_limit(l)?,
            (None, Some(s)) => set_swap(s)?,
            (None, None) => {}
        }
        Ok(())
    }

    fn usage(&self, cg: &Cgroup, u: &mut Usage) -> Result<(), CgroupsError> {
        let Some(dir) = cg.dir("memory") else {
            return Ok(());
        };
        // By hand: the crate's `memory_stat()` reads a dozen files (NUMA, kmem…); the
        // stats want three.
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap_or_default();
        let stat = flat_keyed(&dir.join("memory.stat"));
        let get = |k: &str| stat.get(k).copied().unwrap_or(0);
        let (usage, limit, inactive_file, rss, faults, major) = if cg.is_v2() {
            let limit = read("memory.max").trim().parse::<u64>().ok();
            (
                read("memory.current").trim().parse::<u64>().unwrap_or(0),
                limit,
                get("inactive_file"),
                get("anon"),
                get("pgfault"),
                get("pgmajfault"),
            )
        } else {
            let limit = read("memory.limit_in_bytes")
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|l| *l < V1_UNLIMITED);
            (
                read("memory.usage_in_bytes")
                    .trim()
                    .parse::<u64>()
                    .unwrap_or(0),
                limit,
                get("total_inactive_file"),
                get("total_rss"),
                get("total_pgfault"),
                get("total_pgmajfault"),
            )
        };
        u.memory = Some(MemoryUsage {
            usage,
            // kubelet's working set: what cannot be reclaimed easily.
            working_set: usage.saturating_sub(inactive_file),
            rss,
            page_faults: faults,
            major_page_faults: major,
            limit,
        });
        Ok(())
    }

    fn limitation(&self, cg: &Cgroup) -> Option<Limitation> {
        let dir = cg.dir("memory")?;
        let (file, kills) = if cg.is_v2() {
            let f = dir.join("memory.events");
            let n = flat_keyed(&f).get("oom_kill").copied();
            (f, n)
        } else {
            let f = dir.join("memory.oom_control");
            let n = flat_keyed(&f).get("oom_kill").copied();
            (f, n)
        };
        let kills = kills.filter(|n| *n > 0)?;
        let limit = if cg.is_v2() {
            std::fs::read_to_string(dir.join("memory.max")).unwrap_or_default()
        } else {
            std::fs::read_to_string(dir.join("memory.limit_in_bytes")).unwrap_or_default()
        };
        Some(Limitation {
            kind: LimitKind::Memory,
            message: format!(
                "the kernel's OOM killer killed {kills} process(es) at the memory limit of {} bytes ({})",
                limit.trim(),
                file.display()
            ),
        })
    }
}
