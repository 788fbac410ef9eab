//! Applying a device policy to a cgroup v2 cgroup: load the program generated for the
//! rules and attach it, in place of the one ucr attached before.

use std::fs::File;
use std::os::fd::AsFd;
use std::path::Path;

use super::error::{io, DeviceError};
use super::program::program;
use super::rules::DeviceRule;
use crate::sys::bpf;

/// The program calls no GPL-only helper, so the kernel takes any license string; this is
/// ucr's own.
const LICENSE: &str = "Apache-2.0";

/// Sets the device policy of the cgroup2 directory `cgroup_dir` to `rules` (applied in
/// order to "deny everything", as in v1).
///
/// With no device program attached to the cgroup yet, the new one is attached; with one
/// (ucr's, from an earlier call), the new one replaces it in one step, so the cgroup is
/// never without a policy. With several (something else attached too), the new one is
/// attached first and the old ones detached after: while both are attached a device must
/// be allowed by both, so the moment in between is stricter than either, never looser.
pub fn apply_v2(cgroup_dir: &Path, rules: &[DeviceRule]) -> Result<(), DeviceError> {
    let insns: Vec<u64> = program(rules)?.iter().map(|i| i.to_u64()).collect();
    let prog = bpf::load_cgroup_device_program(&insns, LICENSE)
        .map_err(io("load the device program for", cgroup_dir))?;
    let cgroup = File::open(cgroup_dir).map_err(io("open cgroup", cgroup_dir))?;
    let (cg, prog) = (cgroup.as_fd(), prog.as_fd());
    let attached = bpf::query(cg).map_err(io("list the device programs of", cgroup_dir))?;
    let old_program =
        |id| bpf::program_by_id(id).map_err(io("open an attached device program of", cgroup_dir));
    match attached[..] {
        [] => bpf::attach(cg, prog, None).map_err(io("attach a device program to", cgroup_dir)),
        [id] => {
            let old = old_program(id)?;
            bpf::attach(cg, prog, Some(old.as_fd()))
                .map_err(io("replace the device program of", cgroup_dir))
        }
        ref several => {
            bpf::attach(cg, prog, None).map_err(io("attach a device program to", cgroup_dir))?;
            for &id in several {
                let old = old_program(id)?;
                bpf::detach(cg, old.as_fd())
                    .map_err(io("detach an old device program from", cgroup_dir))?;
            }
            Ok(())
        }
    }
}
