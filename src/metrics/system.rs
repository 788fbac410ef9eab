//! The node's gauges, as libprocess's system metrics name them (`system/load_1min`,
//! `system/cpus_total`, `system/mem_total_bytes`, `system/mem_free_bytes`), read from
//! `/proc` and `/sys` (a root is given so tests read fake files). Like libprocess:
//! CPUs are the online ones, free memory is `MemFree` (not `MemAvailable`). A file
//! that cannot be read or parsed leaves its gauges out rather than making one up.

use std::path::Path;

/// Every system gauge readable under `root` (`/` on a node).
pub fn gauges(root: &Path) -> Vec<(&'static str, f64)> {
    let mut out = Vec::new();
    if let Ok(text) = std::fs::read_to_string(root.join("proc/loadavg")) {
        let loads: Vec<f64> = text
            .split_whitespace()
            .take(3)
            .filter_map(|v| v.parse().ok())
            .collect();
        if let [one, five, fifteen] = loads[..] {
            out.extend([
                ("system/load_1min", one),
                ("system/load_5min", five),
                ("system/load_15min", fifteen),
            ]);
        }
    }
    if let Some(cpus) = std::fs::read_to_string(root.join("sys/devices/system/cpu/online"))
        .ok()
        .and_then(|t| count_cpu_list(&t))
    {
        out.push(("system/cpus_total", cpus as f64));
    }
    if let Ok(text) = std::fs::read_to_string(root.join("proc/meminfo")) {
        for (key, name) in [
            ("MemTotal:", "system/mem_total_bytes"),
            ("MemFree:", "system/mem_free_bytes"),
        ] {
            if let Some(kib) = meminfo_kib(&text, key) {
                out.push((name, (kib * 1024) as f64));
            }
        }
    }
    out
}

/// The number of CPUs in a kernel CPU list (`0-3,8,10-11`).
fn count_cpu_list(text: &str) -> Option<u64> {
    let mut n = 0;
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        n += match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u64, u64) = (a.parse().ok()?, b.parse().ok()?);
                b.checked_sub(a)? + 1
            }
            None => {
                part.parse::<u64>().ok()?;
                1
            }
        };
    }
    (n > 0).then_some(n)
}

fn meminfo_kib(text: &str, key: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_from_fake_proc_and_sys() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::create_dir_all(root.join("proc")).expect("proc");
        std::fs::create_dir_all(root.join("sys/devices/system/cpu")).expect("sys");
        std::fs::write(root.join("proc/loadavg"), "0.50 1.25 2.00 3/400 12345\n").expect("w");
        std::fs::write(
            root.join("proc/meminfo"),
            "MemTotal:        2048 kB\nMemFree:          512 kB\nMemAvailable:    1024 kB\n",
        )
        .expect("w");
        std::fs::write(root.join("sys/devices/system/cpu/online"), "0-3,8,10-11\n").expect("w");
        let g: std::collections::BTreeMap<_, _> = gauges(root).into_iter().collect();
        assert_eq!(g["system/load_1min"], 0.5);
        assert_eq!(g["system/load_15min"], 2.0);
        assert_eq!(g["system/cpus_total"], 7.0);
        assert_eq!(g["system/mem_total_bytes"], 2048.0 * 1024.0);
        assert_eq!(g["system/mem_free_bytes"], 512.0 * 1024.0);
    }

    #[test]
    fn unreadable_files_leave_their_gauges_out() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(gauges(dir.path()).is_empty());
        assert_eq!(count_cpu_list("3-1"), None);
        assert_eq!(count_cpu_list("x"), None);
        assert_eq!(count_cpu_list("0"), Some(1));
    }
}
