//! Test helpers shared by the provisioner's suites: an in-memory layer tar builder and the
//! root check. The unpacker's tests (`store/unpack/tests`) and the backend conformance
//! suite (`backend/tests`) both build layers with [`Layer`], so a layer means the same
//! thing in both and a new entry kind is added once.

use std::io;
use std::os::unix::fs::MetadataExt;

use tar::{Builder, EntryType, Header};

/// The mtime of every tar entry.
pub(crate) const MTIME: u64 = 1_600_000_000;

/// The uid/gid this test process creates files as.
pub(crate) fn my_ids() -> (u32, u32) {
    let probe = tempfile::NamedTempFile::new().expect("probe file");
    let meta = probe.as_file().metadata().expect("stat probe");
    (meta.uid(), meta.gid())
}

pub(crate) fn is_root() -> bool {
    my_ids().0 == 0
}

/// Skips the test, saying why, when not running as root.
macro_rules! require_root {
    ($why:literal) => {
        if !$crate::provisioner::testing::is_root() {
            eprintln!(concat!("skipping: needs root (", $why, ")"));
            return;
        }
    };
}
pub(crate) use require_root;

/// An in-memory layer tar. Entries default to the test process's own uid/gid (root in the
/// tests that need root), so tests that do not check ownership also run unprivileged;
/// [`Layer::owner`] changes it for the entries after it.
pub(crate) struct Layer {
    builder: Builder<Vec<u8>>,
    uid: u64,
    gid: u64,
}

impl Layer {
    pub(crate) fn new() -> Self {
        let (uid, gid) = my_ids();
        Self {
            builder: Builder::new(Vec::new()),
            uid: u64::from(uid),
            gid: u64::from(gid),
        }
    }

    /// Owner of the entries added after this call.
    pub(crate) fn owner(mut self, uid: u64, gid: u64) -> Self {
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

    pub(crate) fn file(mut self, path: &str, mode: u32, data: &[u8]) -> Self {
        let mut h = self.header(EntryType::Regular, mode, data.len() as u64);
        self.builder
            .append_data(&mut h, path, data)
            .expect("append file");
        self
    }

    pub(crate) fn dir(mut self, path: &str, mode: u32) -> Self {
        let mut h = self.header(EntryType::Directory, mode, 0);
        self.builder
            .append_data(&mut h, path, io::empty())
            .expect("append dir");
        self
    }

    pub(crate) fn symlink(mut self, path: &str, target: &str) -> Self {
        let mut h = self.header(EntryType::Symlink, 0o777, 0);
        self.builder
            .append_link(&mut h, path, target)
            .expect("append symlink");
        self
    }

    pub(crate) fn hardlink(mut self, path: &str, target: &str) -> Self {
        let mut h = self.header(EntryType::Link, 0o644, 0);
        self.builder
            .append_link(&mut h, path, target)
            .expect("append hardlink");
        self
    }

    /// A device node or fifo (`kind` says which).
    pub(crate) fn device(
        mut self,
        path: &str,
        kind: EntryType,
        mode: u32,
        major: u32,
        minor: u32,
    ) -> Self {
        let mut h = self.header(kind, mode, 0);
        h.set_device_major(major).expect("major");
        h.set_device_minor(minor).expect("minor");
        self.builder
            .append_data(&mut h, path, io::empty())
            .expect("append device");
        self
    }

    /// An entry whose name (and link name) bytes go into the header verbatim, bypassing
    /// the Builder's refusal of `..` and absolute paths: what a hostile layer contains.
    pub(crate) fn raw(mut self, kind: EntryType, name: &[u8], link: &[u8], data: &[u8]) -> Self {
        let mut h = self.header(kind, 0o644, data.len() as u64);
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link);
        h.set_cksum();
        self.builder.append(&h, data).expect("append raw");
        self
    }

    /// A PAX extended header describing the next entry.
    pub(crate) fn pax(mut self, records: &[(&str, &[u8])]) -> Self {
        let mut body = Vec::new();
        for (key, value) in records {
            let rest = key.len() + value.len() + 3; // ' ', '=', '\n'
            let mut len = rest + 1;
            while len != rest + len.to_string().len() {
                len = rest + len.to_string().len();
            }
            body.extend_from_slice(format!("{len} {key}=").as_bytes());
            body.extend_from_slice(value);
            body.push(b'\n');
        }
        let mut h = self.header(EntryType::XHeader, 0o644, body.len() as u64);
        h.set_path("PaxHeader").expect("pax path");
        h.set_cksum();
        self.builder.append(&h, &body[..]).expect("append pax");
        self
    }

    /// A PAX header giving the next entry the xattr `name=value`.
    pub(crate) fn xattr(self, name: &str, value: &[u8]) -> Self {
        self.pax(&[(&format!("SCHILY.xattr.{name}"), value)])
    }

    /// A `.wh.<name>` marker deleting `path` of lower layers.
    pub(crate) fn whiteout(self, path: &str) -> Self {
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
        let marker = if dir.is_empty() {
            format!(".wh.{name}")
        } else {
            format!("{dir}/.wh.{name}")
        };
        self.file(&marker, 0o644, b"")
    }

    /// A `.wh..wh..opq` marker making `dir` opaque to lower layers.
    pub(crate) fn opaque(self, dir: &str) -> Self {
        self.file(&format!("{dir}/.wh..wh..opq"), 0o644, b"")
    }

    pub(crate) fn bytes(self) -> Vec<u8> {
        self.builder.into_inner().expect("finish tar")
    }
}
