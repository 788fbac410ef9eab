//! Backend tests. `conformance` is the one suite every backend must pass (root needed:
//! mounts, mknod, chown, `trusted.*` xattrs); `select` covers choosing a backend;
//! `overlay` the overlay-only option-length handling. Layers are built the way the store
//! builds them: tars unpacked by `store::unpack::unpack_layer`.

mod conformance;
mod overlay;
mod select;

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use tar::{Builder, EntryType, Header};

use crate::provisioner::store::unpack::unpack_layer;
use crate::sys::mount;

/// The mtime of every tar entry.
const MTIME: u64 = 1_600_000_000;

fn is_root() -> bool {
    fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// Skips the test, saying why, when not running as root.
macro_rules! require_root {
    ($why:literal) => {
        if !is_root() {
            eprintln!(concat!("skipping: needs root (", $why, ")"));
            return;
        }
    };
}
use require_root;

/// An in-memory layer tar. Entries are owned by root unless [`Tar::owner`] says otherwise.
struct Tar {
    builder: Builder<Vec<u8>>,
    uid: u64,
    gid: u64,
}

impl Tar {
    fn new() -> Self {
        Self {
            builder: Builder::new(Vec::new()),
            uid: 0,
            gid: 0,
        }
    }

    /// Owner of the entries added after this call.
    fn owner(mut self, uid: u64, gid: u64) -> Self {
        self.uid = uid;
        self.gid = gid;
        self
    }

    fn header(&self, kind: EntryType, mode: u32, size: u64) -> Header {
        let mut h = Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_mtime(MTIME);
        h.set_uid(self.uid);
        h.set_gid(self.gid);
        h
    }

    fn file(mut self, path: &str, mode: u32, data: &[u8]) -> Self {
        let mut h = self.header(EntryType::Regular, mode, data.len() as u64);
        self.builder
            .append_data(&mut h, path, data)
            .expect("append file");
        self
    }

    fn dir(mut self, path: &str, mode: u32) -> Self {
        let mut h = self.header(EntryType::Directory, mode, 0);
        self.builder
            .append_data(&mut h, path, io::empty())
            .expect("append dir");
        self
    }

    fn symlink(mut self, path: &str, target: &str) -> Self {
        let mut h = self.header(EntryType::Symlink, 0o777, 0);
        self.builder
            .append_link(&mut h, path, target)
            .expect("append symlink");
        self
    }

    fn hardlink(mut self, path: &str, target: &str) -> Self {
        let mut h = self.header(EntryType::Link, 0o644, 0);
        self.builder
            .append_link(&mut h, path, target)
            .expect("append hardlink");
        self
    }

    fn node(mut self, path: &str, kind: EntryType, mode: u32, major: u32, minor: u32) -> Self {
        let mut h = self.header(kind, mode, 0);
        h.set_device_major(major).expect("major");
        h.set_device_minor(minor).expect("minor");
        self.builder
            .append_data(&mut h, path, io::empty())
            .expect("append node");
        self
    }

    /// A PAX header giving the next entry the xattr `name=value`.
    fn xattr(mut self, name: &str, value: &[u8]) -> Self {
        let key = format!("SCHILY.xattr.{name}");
        let rest = key.len() + value.len() + 3; // ' ', '=', '\n'
        let mut len = rest + 1;
        while len != rest + len.to_string().len() {
            len = rest + len.to_string().len();
        }
        let mut body = format!("{len} {key}=").into_bytes();
        body.extend_from_slice(value);
        body.push(b'\n');
        let mut h = self.header(EntryType::XHeader, 0o644, body.len() as u64);
        h.set_path("PaxHeader").expect("pax path");
        h.set_cksum();
        self.builder.append(&h, &body[..]).expect("append pax");
        self
    }

    /// A `.wh.<name>` marker deleting `path` of lower layers.
    fn whiteout(self, path: &str) -> Self {
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
        let marker = if dir.is_empty() {
            format!(".wh.{name}")
        } else {
            format!("{dir}/.wh.{name}")
        };
        self.file(&marker, 0o644, b"")
    }

    /// A `.wh..wh..opq` marker making `dir` opaque to lower layers.
    fn opaque(self, dir: &str) -> Self {
        self.file(&format!("{dir}/.wh..wh..opq"), 0o644, b"")
    }

    fn bytes(self) -> Vec<u8> {
        self.builder.into_inner().expect("finish tar")
    }
}

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
