//! The overlayfs markers: `.wh.<name>` becomes a 0/0 character device, `.wh..wh..opq`
//! the opaque xattr on its directory.

use std::ffi::OsStr;
use std::path::Path;

use super::super::{io_err, UnpackError, OPAQUE_XATTR};
use super::parents::Walk;
use super::{Flow, Unpacker};
use crate::sys::fs as sysfs;

impl Unpacker<'_> {
    /// `.wh.<name>` in D: overlayfs hides D/<name> of lower layers when this layer has a
    /// 0/0 character device there. It replaces anything the same layer put at D/<name>
    /// earlier (the later entry wins, as in containerd). `name` was checked by `plan`.
    pub(super) fn whiteout(
        &mut self,
        raw: &Path,
        rel: &Path,
        parent: &Path,
        name: &OsStr,
    ) -> Result<Flow, UnpackError> {
        self.check_parents(raw, rel, Walk::Create)?;
        let target = parent.join(name);
        let full = self.full(&target);
        self.create_replacing(&target, &full, "create whiteout", |p| {
            sysfs::mknod_char(p, 0, 0, 0)
        })?;
        self.out.inodes += 1;
        self.out.whiteouts.push(target);
        Ok(Flow::Continue)
    }

    /// `.wh..wh..opq` in D: D hides all of lower layers' D, but keeps what this layer puts
    /// in D (before or after the marker), which is exactly overlayfs' opaque xattr.
    pub(super) fn opaque(
        &mut self,
        raw: &Path,
        rel: &Path,
        parent: &Path,
    ) -> Result<Flow, UnpackError> {
        self.check_parents(raw, rel, Walk::Create)?;
        let full = self.full(parent);
        sysfs::lsetxattr(&full, OPAQUE_XATTR, b"y")
            .map_err(|source| io_err("set opaque xattr on", &full, source))?;
        self.out.opaque_dirs.push(parent.to_path_buf());
        Ok(Flow::Continue)
    }
}
