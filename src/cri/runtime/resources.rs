//! The CRI's `LinuxContainerResources` and `Device` ↔ the containerizer's `Resources` and
//! `Device`. The CRI's zero means "not set" for every number; negative sizes and periods
//! are refused here, and the rest is checked by the kernel when the cgroups isolators
//! write it (a refusal is InvalidArgument naming the field).

use std::path::{Component, Path};

use k8s_cri::v1 as cri;
use tonic::Status;

use crate::containerizer::types::{Device, Resources};

fn non_negative(field: &str, v: i64) -> Result<Option<i64>, Status> {
    match v {
        0 => Ok(None),
        v if v < 0 => Err(Status::invalid_argument(format!(
            "{field} {v}: must not be negative"
        ))),
        v => Ok(Some(v)),
    }
}

pub fn from_cri(r: &cri::LinuxContainerResources) -> Result<Resources, Status> {
    let mut hugepages = std::collections::BTreeMap::new();
    for h in &r.hugepage_limits {
        let size = h.page_size.trim();
        if size.is_empty() || !size.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(Status::invalid_argument(format!(
                "hugepage_limits.page_size {:?}: expected a size such as 2MB or 1GB",
                h.page_size
            )));
        }
        hugepages.insert(size.to_string(), h.limit);
    }
    // -1 is "unlimited" for swap (kubelet's UnlimitedSwap); other negatives are errors.
    let swap = match r.memory_swap_limit_in_bytes {
        -1 => Some(-1),
        v => non_negative("memory_swap_limit_in_bytes", v)?,
    };
    Ok(Resources {
        cpu_shares: non_negative("cpu_shares", r.cpu_shares)?.map(|v| v as u64),
        // A negative quota is "no limit", as runc takes it.
        cpu_quota: (r.cpu_quota != 0).then_some(r.cpu_quota),
        cpu_period: non_negative("cpu_period", r.cpu_period)?.map(|v| v as u64),
        cpuset_cpus: (!r.cpuset_cpus.is_empty()).then(|| r.cpuset_cpus.clone()),
        cpuset_mems: (!r.cpuset_mems.is_empty()).then(|| r.cpuset_mems.clone()),
        memory_limit: non_negative("memory_limit_in_bytes", r.memory_limit_in_bytes)?,
        memory_swap_limit: swap,
        hugepage_limits: hugepages,
        unified: r.unified.clone().into_iter().collect(),
        ..Resources::default()
    })
}

/// The annotation that carries a container's `ephemeral-storage` limit to the disk
/// isolators (kubelet enforces that limit itself by eviction and does not pass it to the
/// runtime; an operator or admission webhook that wants the runtime to enforce it too
/// sets this), as bytes or a Kubernetes quantity (`512Mi`, `2G`).
pub const DISK_LIMIT_ANNOTATION: &str = "ucr.io/ephemeral-storage-limit";

/// A Kubernetes quantity of bytes: digits with an optional binary (`Ki`…`Ei`) or
/// decimal (`k`, `K`, `M`…`E`) suffix.
pub fn quantity(value: &str) -> Result<u64, Status> {
    let bad = || {
        Status::invalid_argument(format!(
            "annotation {DISK_LIMIT_ANNOTATION} {value:?}: expected bytes or a quantity such as 512Mi"
        ))
    };
    let v = value.trim();
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (digits, suffix) = v.split_at(split);
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let mult: u64 = match suffix {
        "" => 1,
        "k" | "K" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        "P" => 1_000_000_000_000_000,
        "E" => 1_000_000_000_000_000_000,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        "Pi" => 1 << 50,
        "Ei" => 1 << 60,
        _ => return Err(bad()),
    };
    n.checked_mul(mult).filter(|b| *b > 0).ok_or_else(bad)
}

/// What ContainerStatus reports: the limits in force (as last applied).
pub fn to_cri(r: &Resources, oom_score_adj: Option<i32>) -> cri::LinuxContainerResources {
    cri::LinuxContainerResources {
        cpu_period: r.cpu_period.unwrap_or(0) as i64,
        cpu_quota: r.cpu_quota.unwrap_or(0),
        cpu_shares: r.cpu_shares.unwrap_or(0) as i64,
        memory_limit_in_bytes: r.memory_limit.unwrap_or(0),
        oom_score_adj: i64::from(oom_score_adj.unwrap_or(0)),
        cpuset_cpus: r.cpuset_cpus.clone().unwrap_or_default(),
        cpuset_mems: r.cpuset_mems.clone().unwrap_or_default(),
        hugepage_limits: r
            .hugepage_limits
            .iter()
            .map(|(page_size, limit)| cri::HugepageLimit {
                page_size: page_size.clone(),
                limit: *limit,
            })
            .collect(),
        unified: r.unified.clone().into_iter().collect(),
        memory_swap_limit_in_bytes: r.memory_swap_limit.unwrap_or(0),
    }
}

/// The CRI's devices: a host node made available below the container's `/dev`, with the
/// devices cgroup's permissions (`rwm` when none are given, as containerd does).
pub fn devices(list: &[cri::Device]) -> Result<Vec<Device>, Status> {
    list.iter()
        .map(|d| {
            let bad = |what: &str, value: &str, why: &str| {
                Status::invalid_argument(format!("devices: {what} {value:?}: {why}"))
            };
            let host = Path::new(&d.host_path);
            if !host.is_absolute() || host.components().any(|c| c == Component::ParentDir) {
                return Err(bad(
                    "host_path",
                    &d.host_path,
                    "must be absolute, without ..",
                ));
            }
            let inside = Path::new(&d.container_path);
            if !inside.starts_with("/dev/")
                || inside.components().any(|c| c == Component::ParentDir)
                || inside == Path::new("/dev/")
            {
                // The rootfs is mounted nodev; only our /dev takes device nodes.
                return Err(bad(
                    "container_path",
                    &d.container_path,
                    "must be a path below /dev, without ..",
                ));
            }
            let permissions = if d.permissions.is_empty() {
                "rwm".to_string()
            } else {
                d.permissions.clone()
            };
            if !permissions.bytes().all(|b| matches!(b, b'r' | b'w' | b'm')) {
                return Err(bad(
                    "permissions",
                    &d.permissions,
                    "expected letters from r, w and m",
                ));
            }
            Ok(Device {
                host_path: host.to_path_buf(),
                container_path: d.container_path.clone(),
                permissions,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_is_unset_and_values_round_trip() {
        let r = cri::LinuxContainerResources {
            cpu_period: 100_000,
            cpu_quota: 50_000,
            cpu_shares: 512,
            memory_limit_in_bytes: 64 << 20,
            memory_swap_limit_in_bytes: 64 << 20,
            cpuset_cpus: "0".into(),
            hugepage_limits: vec![cri::HugepageLimit {
                page_size: "2MB".into(),
                limit: 4 << 20,
            }],
            ..Default::default()
        };
        let ours = from_cri(&r).expect("valid");
        assert_eq!(ours.cpu_shares, Some(512));
        assert_eq!(ours.cpuset_mems, None);
        assert_eq!(ours.hugepage_limits.get("2MB"), Some(&(4 << 20)));
        assert_eq!(to_cri(&ours, None), r);
        assert_eq!(
            from_cri(&cri::LinuxContainerResources::default()).expect("empty"),
            Resources::default()
        );
    }

    #[test]
    fn negative_sizes_are_refused_naming_the_field() {
        for (r, field) in [
            (
                cri::LinuxContainerResources {
                    memory_limit_in_bytes: -5,
                    ..Default::default()
                },
                "memory_limit_in_bytes",
            ),
            (
                cri::LinuxContainerResources {
                    cpu_shares: -1,
                    ..Default::default()
                },
                "cpu_shares",
            ),
            (
                cri::LinuxContainerResources {
                    memory_swap_limit_in_bytes: -2,
                    ..Default::default()
                },
                "memory_swap_limit_in_bytes",
            ),
        ] {
            let e = from_cri(&r).expect_err(field);
            assert_eq!(e.code(), tonic::Code::InvalidArgument);
            assert!(e.message().contains(field), "{}", e.message());
        }
        let unlimited_swap = cri::LinuxContainerResources {
            memory_swap_limit_in_bytes: -1,
            ..Default::default()
        };
        assert_eq!(
            from_cri(&unlimited_swap).expect("-1").memory_swap_limit,
            Some(-1)
        );
    }

    #[test]
    fn quantities_in_both_kinds_of_units() {
        assert_eq!(quantity("1024").expect("bytes"), 1024);
        assert_eq!(quantity("512Mi").expect("Mi"), 512 << 20);
        assert_eq!(quantity("2G").expect("G"), 2_000_000_000);
        for bad in ["", "Mi", "1.5Gi", "-1", "0", "1Zi", "99999999999Ei"] {
            let e = quantity(bad).expect_err(bad);
            assert!(
                e.message().contains(DISK_LIMIT_ANNOTATION),
                "{}",
                e.message()
            );
        }
    }

    #[test]
    fn devices_stay_below_dev_with_valid_permissions() {
        let dev = |h: &str, c: &str, p: &str| cri::Device {
            host_path: h.into(),
            container_path: c.into(),
            permissions: p.into(),
        };
        let ok = devices(&[dev("/dev/fuse", "/dev/fuse", "")]).expect("ok");
        assert_eq!(ok[0].permissions, "rwm");
        for (d, what) in [
            (dev("/dev/fuse", "/etc/fuse", "rw"), "container_path"),
            (dev("/dev/fuse", "/dev/../etc", "rw"), "container_path"),
            (dev("dev/fuse", "/dev/fuse", "rw"), "host_path"),
            (dev("/dev/fuse", "/dev/fuse", "rwx"), "permissions"),
        ] {
            let e = devices(&[d]).expect_err(what);
            assert!(e.message().contains(what), "{}", e.message());
        }
    }
}
