//! `cgroups/hugetlb`: a limit per huge page size (`2MB`, `1GB`, as kubelet and the
//! kernel's file names spell them).

use cgroups_rs::fs::hugetlb::HugeTlbController;

use super::{typed, Spec, Subsystem};
use crate::isolators::cgroups::cgroup::Cgroup;
use crate::isolators::cgroups::error::{from_setter, CgroupsError};

pub struct HugeTlb;

impl Subsystem for HugeTlb {
    fn name(&self) -> &'static str {
        "cgroups/hugetlb"
    }

    fn controllers(&self) -> &'static [&'static str] {
        &["hugetlb"]
    }

    fn apply(&self, cg: &Cgroup, spec: &Spec<'_>) -> Result<(), CgroupsError> {
        let limits = &spec.resources.hugepage_limits;
        if limits.is_empty() {
            return Ok(());
        }
        let (h, dir) = typed(cg, "hugetlb", self.name(), HugeTlbController::new)?;
        for (size, limit) in limits {
            // A size this node has no pool for has no file: say so rather than "ENOENT".
            if !h.size_supported(size) {
                return Err(CgroupsError::Unsupported {
                    field: "hugepage_limits.page_size".into(),
                    value: size.clone(),
                    reason: format!(
                        "this node has no huge pages of that size (it has: {})",
                        h.get_sizes().join(", ")
                    ),
                });
            }
            h.set_limit_in_bytes(size, *limit).map_err(|e| {
                from_setter(
                    &format!("hugepage_limits[{size}]"),
                    &limit.to_string(),
                    &dir,
                    e,
                )
            })?;
        }
        Ok(())
    }
}
