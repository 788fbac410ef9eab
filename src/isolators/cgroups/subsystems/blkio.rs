//! `cgroups/blkio`: the block I/O weight (v1 `blkio.weight`, v2 `io.weight`). The weight
//! file exists only with an I/O scheduler that honours it (BFQ on v1), so a weight on a
//! node without one is refused, not silently dropped.

use cgroups_rs::fs::blkio::BlkIoController;

use super::{dir_of, typed, Spec, Subsystem};
use crate::isolators::cgroups::cgroup::Cgroup;
use crate::isolators::cgroups::error::{from_setter, write_file, CgroupsError};

pub struct BlkIo;

impl Subsystem for BlkIo {
    fn name(&self) -> &'static str {
        "cgroups/blkio"
    }

    fn controllers(&self) -> &'static [&'static str] {
        &["blkio", "io"]
    }

    fn apply(&self, cg: &Cgroup, spec: &Spec<'_>) -> Result<(), CgroupsError> {
        let Some(weight) = spec.resources.blkio_weight.filter(|w| *w > 0) else {
            return Ok(());
        };
        let value = weight.to_string();
        if cg.is_v2() {
            // By hand: the crate writes v2 weights to `io.bfq.weight`; the controller's
            // own file is `io.weight`.
            let dir = dir_of(cg, "io", self.name())?;
            return write_file(&dir, "io.weight", "blkio_weight", &value);
        }
        let (blkio, dir) = typed(cg, "blkio", self.name(), BlkIoController::new)?;
        if !dir.join("blkio.weight").exists() {
            return Err(CgroupsError::Unsupported {
                field: "blkio_weight".into(),
                value,
                reason: "this node's blkio controller has no weight file (the CFQ or BFQ I/O \
                         scheduler provides one)"
                    .into(),
            });
        }
        blkio
            .set_weight(u64::from(weight))
            .map_err(|e| from_setter("blkio_weight", &value, &dir, e))
    }
}
