//! Safe parent resolution: every ancestor of a path the worker uses is checked to be a
//! real directory, never a symlink, with a cache of directories already checked.

use std::fs::{self, DirBuilder};
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use super::super::{io_err, UnpackError};
use super::Unpacker;

/// What a parent walk is for: creating an entry (missing parents are made) or checking a
/// hard link target (everything must already exist).
#[derive(Clone, Copy)]
pub(super) enum Walk<'a> {
    Create,
    LinkTarget(&'a Path),
}

impl Unpacker<'_> {
    /// Makes sure every ancestor of `rel` inside `dest` is a real directory, never a
    /// symlink (which the kernel would follow when we use the path). For `Walk::Create`,
    /// missing ancestors are created 0755 root-owned, as containerd and Docker do for
    /// parents a layer does not list.
    pub(super) fn check_parents(
        &mut self,
        entry: &Path,
        rel: &Path,
        walk: Walk<'_>,
    ) -> Result<(), UnpackError> {
        let parent = match rel.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => return Ok(()),
        };
        if self.verified_dirs.contains(parent) {
            return Ok(());
        }
        let mut prefix = PathBuf::new();
        for component in parent.components() {
            prefix.push(component);
            if self.verified_dirs.contains(&prefix) {
                continue;
            }
            let full = self.dest.join(&prefix);
            let problem = match fs::symlink_metadata(&full) {
                Ok(m) if m.file_type().is_dir() => None,
                Ok(m) if m.file_type().is_symlink() => Some(UnpackError::SymlinkInPath {
                    entry: entry.to_path_buf(),
                    component: prefix.clone(),
                }),
                Ok(_) => Some(UnpackError::NotADirectory {
                    entry: entry.to_path_buf(),
                    component: prefix.clone(),
                }),
                Err(e) if e.kind() == io::ErrorKind::NotFound => match walk {
                    Walk::Create => {
                        DirBuilder::new()
                            .mode(0o755)
                            .create(&full)
                            .map_err(|source| io_err("create parent directory", &full, source))?;
                        self.out.inodes += 1;
                        None
                    }
                    Walk::LinkTarget(target) => Some(UnpackError::LinkTargetMissing {
                        entry: entry.to_path_buf(),
                        target: target.to_path_buf(),
                    }),
                },
                Err(e) => return Err(io_err("inspect parent directory", &full, e)),
            };
            if let Some(problem) = problem {
                return Err(match (walk, problem) {
                    (Walk::LinkTarget(target), UnpackError::SymlinkInPath { entry, .. }) => {
                        UnpackError::LinkEscape {
                            entry,
                            target: target.to_path_buf(),
                        }
                    }
                    (Walk::LinkTarget(target), UnpackError::NotADirectory { entry, .. }) => {
                        UnpackError::LinkTargetMissing {
                            entry,
                            target: target.to_path_buf(),
                        }
                    }
                    (_, problem) => problem,
                });
            }
            self.verified_dirs.insert(prefix.clone());
        }
        Ok(())
    }

    /// Forgets everything known about the directory `rel` and below after it was removed.
    pub(super) fn forget_dir(&mut self, rel: &Path) {
        // Directory replacement is rare; dropping the whole cache is simpler than pruning it
        // and keeps it prefix-closed.
        self.verified_dirs.clear();
        // `Path` orders component-wise, so `rel` and its descendants are one contiguous run.
        let doomed: Vec<PathBuf> = self
            .dir_times
            .range(rel.to_path_buf()..)
            .take_while(|(p, _)| p.starts_with(rel))
            .map(|(p, _)| p.clone())
            .collect();
        for path in doomed {
            self.dir_times.remove(&path);
        }
    }
}
