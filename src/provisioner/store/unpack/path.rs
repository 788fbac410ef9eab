//! The lexical half of the no-escape invariant: entry paths are made relative to the
//! layer root without consulting the filesystem. The other half, checking that no parent
//! is a symlink, is `apply::parents`.

use std::path::{Component, Path, PathBuf};

/// Lexically normalises an entry path relative to the layer root: drops `/` and `.`,
/// resolves `..` against earlier components, and returns `None` when a `..` would climb
/// above the root. The empty path is the root itself.
pub(super) fn normalize(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(name) => out.push(name),
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::Prefix(_) => return None,
        }
    }
    Some(out)
}
