//! Backend tests. `conformance` is the one suite every backend must pass (root needed:
//! mounts, mknod, chown, `trusted.*` xattrs); `select` covers choosing a backend;
//! `overlay` the overlay-only option-length handling. Layers are built the way the store
//! builds them: tars unpacked by `store::unpack::unpack_layer`.

mod conformance;
mod overlay;
mod select;

use std::fs;
use std::path::{Path, PathBuf};

use crate::provisioner::store::unpack::unpack_layer;
use crate::provisioner::testing::{require_root, Layer, MTIME};
use crate::sys::mount;

/// A temp dir laid out like the real thing: `store/layers/<64 hex>/rootfs` for layers and
/// `containers/c/{rootfs,scratch}` for the container. Checks on drop that no mount was
/// left anywhere below it (and cleans up if one was, so one failure does not leak).
struct Fixture {
    dir: tempfile::TempDir,
    layers: Vec<PathBuf>,
}

impl Fixture {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("tempdir"),
            layers: Vec::new(),
        }
    }

    fn with_layers(tars: impl IntoIterator<Item = Vec<u8>>) -> Self {
        let mut f = Self::new();
        for tar in tars {
            f.add_layer(&tar);
        }
        f
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn store(&self) -> PathBuf {
        self.path().join("store")
    }

    /// Unpacks `tar` as the next layer up and returns its rootfs dir.
    fn add_layer(&mut self, tar: &[u8]) -> PathBuf {
        let n = self.layers.len();
        let dir = self.store().join(format!("layers/{n:064x}/rootfs"));
        fs::create_dir_all(&dir).expect("mkdir layer");
        unpack_layer(tar, &dir).expect("unpack layer");
        self.layers.push(dir.clone());
        dir
    }

    fn rootfs(&self) -> PathBuf {
        self.path().join("containers/c/rootfs")
    }

    fn scratch(&self) -> PathBuf {
        self.path().join("containers/c/scratch")
    }

    /// Mount points anywhere below the fixture.
    fn mounts(&self) -> Vec<PathBuf> {
        mount::mounts_at_or_under(self.path()).expect("mountinfo")
    }

    fn assert_nothing_left(&self) {
        assert_eq!(self.mounts(), Vec::<PathBuf>::new(), "mounts left behind");
        assert!(!exists(&self.rootfs()), "rootfs left behind");
        assert!(!exists(&self.scratch()), "scratch left behind");
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let left = mount::mounts_at_or_under(self.path()).unwrap_or_default();
        for point in &left {
            let _ = mount::detach(point);
        }
        if !left.is_empty() && !std::thread::panicking() {
            panic!("test left mounts behind: {left:?}");
        }
    }
}

/// Whether anything (even a dangling symlink) is at `path`.
fn exists(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok()
}
