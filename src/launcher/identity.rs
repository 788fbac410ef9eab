//! Who a process runs as: the last steps before exec that the container's first process
//! and `ucr exec`'s command both take, in this order. Each caller does what must come
//! after on its own (`ucr exec` re-arms its parent-death signal, which the user switch
//! clears).

use super::setup::{step, SetupError};
use super::spec::DEFAULT_CAPABILITIES;
use crate::sys::process;

/// Narrows the capability bounding set to `capabilities` (`None`: Docker's default set),
/// becomes `uid:gid` with `groups`, takes exactly those capabilities, then sets
/// no_new_privs if asked. The bounding set goes first: dropping from it needs
/// CAP_SETPCAP, which a non-root user no longer has.
pub(crate) fn apply(
    uid: u32,
    gid: u32,
    groups: &[u32],
    capabilities: Option<&[String]>,
    no_new_privs: bool,
) -> Result<(), SetupError> {
    let caps: Vec<String> = match capabilities {
        Some(c) => c.to_vec(),
        None => DEFAULT_CAPABILITIES.iter().map(|s| s.to_string()).collect(),
    };
    process::limit_bounding_set(&caps).map_err(step("limit capability bounding set", ""))?;
    process::switch_user(uid, gid, groups).map_err(step("switch user", ""))?;
    process::set_capabilities(&caps).map_err(step("set capabilities", ""))?;
    if no_new_privs {
        process::set_no_new_privs().map_err(step("set no_new_privs", ""))?;
    }
    Ok(())
}
