//! Which PAX xattrs a layer may set, and setting them.

use std::path::Path;

use super::meta::Meta;
use super::{io_err, UnpackError};
use crate::sys::fs as sysfs;

/// Which `SCHILY.xattr.*` attributes a layer may set.
///
/// - `user.*`: ordinary application data.
/// - `security.capability`: file capabilities (e.g. ping's `cap_net_raw`), which images
///   rely on in place of setuid.
/// - `system.posix_acl_access` / `system.posix_acl_default`: POSIX ACLs, part of the
///   file's permissions just like the mode bits.
///
/// Everything else is dropped. `trusted.*` is the host's privileged namespace and in
/// particular `trusted.overlay.*` is what overlayfs trusts on lower dirs: a layer setting
/// `trusted.overlay.opaque`, `.redirect`, `.metacopy` or `.origin` could hide or pull in
/// files of other layers behind the runtime's back, so the only overlay xattrs on disk are
/// the ones this unpacker writes from `.wh..wh..opq` markers. Other `security.*` attributes
/// (SELinux labels, IMA/EVM signatures) are host policy that the runtime applies, not
/// something an image may forge.
pub(super) fn xattr_allowed(name: &[u8]) -> bool {
    name.starts_with(b"user.")
        || name == b"security.capability"
        || name == b"system.posix_acl_access"
        || name == b"system.posix_acl_default"
}

/// Sets the entry's allowed xattrs. EOPNOTSUPP (a filesystem without user xattrs) is
/// logged and skipped, as containerd does; with `lenient_perm`, so is EPERM, which Linux
/// returns for `user.*` on symlinks and device nodes by design.
pub(super) fn set_xattrs(full: &Path, meta: &Meta, lenient_perm: bool) -> Result<(), UnpackError> {
    for (name, value) in &meta.xattrs {
        match sysfs::lsetxattr(full, name, value) {
            Ok(()) => {}
            Err(e)
                if sysfs::is_xattr_unsupported(&e)
                    || (lenient_perm && sysfs::is_permission_denied(&e)) =>
            {
                tracing::warn!(
                    path = %full.display(),
                    xattr = %String::from_utf8_lossy(name),
                    error = %e,
                    "xattr not supported here; skipped"
                );
            }
            Err(source) => return Err(io_err("set xattr on", full, source)),
        }
    }
    Ok(())
}
