//! Reading a `Localhost` profile. kubelet sends an absolute path (it has joined its own
//! seccomp root already), which is read as it is, as containerd does. A relative one is
//! below `--seccomp-profile-root` (kubelet's root, `/var/lib/kubelet/seccomp`, by
//! default) and must stay there: no `..` above it, no symlink out of it, resolved by
//! the kernel on one descriptor (`RESOLVE_BENEATH`), so nothing can be swapped between
//! the check and the read.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::error::SeccompError;
use crate::sys::inroot;

/// Docker's default profile is 20 KB; nothing reasonable comes near this.
pub const MAX_PROFILE_SIZE: u64 = 4 << 20;

/// The profile `reference` names, as the path it was read from and its bytes.
pub fn read(root: &Path, reference: &Path) -> Result<(PathBuf, Vec<u8>), SeccompError> {
    if reference.as_os_str().is_empty() {
        return Err(SeccompError::EmptyPath);
    }
    let path = root.join(reference);
    let file = if reference.is_absolute() {
        inroot::open_regular(reference)
    } else {
        inroot::open_regular_beneath(root, reference)
    };
    let file = file.map_err(|source| {
        if source.raw_os_error() == Some(libc::EXDEV) {
            SeccompError::Escapes {
                path: reference.to_path_buf(),
                root: root.to_path_buf(),
            }
        } else {
            SeccompError::Read {
                path: path.clone(),
                source,
            }
        }
    })?;
    let mut bytes = Vec::new();
    file.take(MAX_PROFILE_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| SeccompError::Read {
            path: path.clone(),
            source,
        })?;
    if bytes.len() as u64 > MAX_PROFILE_SIZE {
        return Err(SeccompError::TooLarge {
            path,
            limit: MAX_PROFILE_SIZE,
        });
    }
    Ok((path, bytes))
}
