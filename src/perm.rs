//! Who may read ucr's state: nobody but root. Container specs and the databases hold
//! environments (Secrets passed as env vars), and the store holds images a pod's owner
//! may not want others to read. As containerd does (after CVE-2021-41103), the roots
//! (`--root`, `--run-root`) are 0711, everything directly below them 0700, and every
//! file holding a spec, an environment, credentials or a database is created 0600.
//!
//! Modes are given at creation, never loosened and then fixed; [`tighten`] exists only
//! for state an older version of ucr left readable, once at start-up.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// `--root` and `--run-root`: others may pass through (to a socket) but not list them.
pub const ROOT_DIR: u32 = 0o711;
/// Every directory of ours below the roots.
pub const PRIVATE_DIR: u32 = 0o700;
/// Every file of ours holding a spec, an environment, credentials or a database.
pub const PRIVATE_FILE: u32 = 0o600;

/// Creates a root directory (missing parents as the system makes them), or brings an
/// existing one to [`ROOT_DIR`].
pub fn root_dir(dir: &Path) -> io::Result<()> {
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    match DirBuilder::new().mode(ROOT_DIR).create(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => set_mode(dir, ROOT_DIR),
        Err(e) => Err(e),
    }
}

/// Creates `dir` and what is missing above it as [`PRIVATE_DIR`].
pub fn private_dir(dir: &Path) -> io::Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(PRIVATE_DIR)
        .create(dir)
}

/// [`private_dir`] for a component's top directory (the store's, `containers/`): one
/// that already exists, maybe made by an older ucr or by hand, is tightened too.
pub fn own_dir(dir: &Path) -> io::Result<()> {
    private_dir(dir)?;
    let mode = std::fs::metadata(dir)?.permissions().mode() & 0o7777;
    if mode & !PRIVATE_DIR != 0 {
        set_mode(dir, PRIVATE_DIR)?;
    }
    Ok(())
}

/// Opens `path` for writing, truncating it; a new file is created [`PRIVATE_FILE`].
pub fn create_private(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(PRIVATE_FILE)
        .open(path)
}

/// Writes `contents` to a new [`PRIVATE_FILE`] at `path` (replacing what was there).
pub fn write_private(path: &Path, contents: &[u8]) -> io::Result<()> {
    create_private(path)?.write_all(contents)
}

/// [`write_private`] through a temporary file and a rename: a reader (or a daemon
/// restarted after a crash) sees the old contents or the new, never half of them.
pub fn write_private_atomic(path: &Path, contents: &[u8]) -> io::Result<()> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let temp = path.with_file_name(format!(
        ".{}.{}.tmp",
        name.unwrap_or_default(),
        std::process::id()
    ));
    let written = write_private(&temp, contents).and_then(|()| std::fs::rename(&temp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}

/// For an install made by an older ucr: every directory directly inside `dir` becomes
/// [`PRIVATE_DIR`] and every regular file [`PRIVATE_FILE`], when it is more open than that.
/// Sockets, symlinks and what lies deeper are left alone (a 0700 directory closes them
/// off), and so is every entry named in `keep` (another root that sits inside this one).
/// A missing `dir` is fine.
pub fn tighten(dir: &Path, keep: &[&Path]) -> io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        if keep.iter().any(|k| *k == path) {
            continue;
        }
        let kind = entry.file_type()?;
        let wanted = if kind.is_dir() {
            PRIVATE_DIR
        } else if kind.is_file() {
            PRIVATE_FILE
        } else {
            continue;
        };
        let mode = entry.metadata()?.permissions().mode() & 0o7777;
        if mode & !wanted != 0 {
            tracing::info!(path = %path.display(), mode = format!("{mode:o}"), "closing state left readable by an older ucr");
            set_mode(&path, wanted)?;
        }
    }
    Ok(())
}

fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn mode(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).expect("lstat").mode() & 0o7777
    }

    #[test]
    fn modes_at_creation() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("var/lib/ucr");
        root_dir(&root).expect("root");
        assert_eq!(mode(&root), ROOT_DIR);
        private_dir(&root.join("containers/abc")).expect("private");
        assert_eq!(mode(&root.join("containers")), PRIVATE_DIR);
        assert_eq!(mode(&root.join("containers/abc")), PRIVATE_DIR);
        write_private(&root.join("containers/abc/spec.json"), b"{}").expect("write");
        assert_eq!(mode(&root.join("containers/abc/spec.json")), PRIVATE_FILE);
    }

    #[test]
    fn an_old_install_is_tightened_one_level_deep() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("containers/abc/rootfs")).expect("mkdir");
        std::fs::create_dir_all(root.join("run")).expect("mkdir");
        std::fs::write(root.join("db.redb"), b"x").expect("write");
        for p in ["", "containers", "containers/abc/rootfs", "run"] {
            set_mode(&root.join(p), 0o755).expect("chmod");
        }
        set_mode(&root.join("db.redb"), 0o644).expect("chmod");
        std::os::unix::fs::symlink("/etc", root.join("link")).expect("symlink");
        root_dir(&root).expect("root");
        tighten(&root, &[&root.join("run")]).expect("tighten");
        assert_eq!(mode(&root), ROOT_DIR);
        assert_eq!(mode(&root.join("containers")), PRIVATE_DIR);
        assert_eq!(mode(&root.join("db.redb")), PRIVATE_FILE);
        // Deeper entries keep their modes (a rootfs must stay as its image made it), and
        // so does what the caller keeps.
        assert_eq!(mode(&root.join("containers/abc/rootfs")), 0o755);
        assert_eq!(mode(&root.join("run")), 0o755);
        assert_eq!(mode(Path::new("/etc")) & 0o755, 0o755);
        tighten(&root.join("missing"), &[]).expect("missing is fine");
    }
}
