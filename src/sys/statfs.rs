//! Filesystem capacity, for image GC's disk watcher.

use std::path::Path;

#[derive(Debug, Clone, Copy)]
pub struct Usage {
    pub total_bytes: u64,
    /// Bytes an unprivileged writer could still use (`f_bavail`): what matters for "full".
    pub avail_bytes: u64,
}

impl Usage {
    pub fn used_fraction(&self) -> f64 {
        if self.total_bytes == 0 {
            return 0.0;
        }
        1.0 - self.avail_bytes as f64 / self.total_bytes as f64
    }
}

pub fn usage(path: &Path) -> std::io::Result<Usage> {
    let st = nix::sys::statvfs::statvfs(path).map_err(std::io::Error::from)?;
    let frag = st.fragment_size() as u64;
    Ok(Usage {
        total_bytes: st.blocks() as u64 * frag,
        avail_bytes: st.blocks_available() as u64 * frag,
    })
}
