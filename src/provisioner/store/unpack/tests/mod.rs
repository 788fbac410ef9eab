//! Unpacker tests against in-memory layers and a scratch directory. Tests that need root
//! say so in their name or through `require_root!`, and skip with a printed reason.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use sha2::{Digest, Sha256};
use tar::{Builder, EntryType, Header};

use super::{unpack_layer, UnpackError, UnpackedLayer, IO_BUFFER};

const MTIME: u64 = 1_600_000_000;

/// The uid/gid this test process creates files as.
fn my_ids() -> (u32, u32) {
    let probe = tempfile::NamedTempFile::new().expect("probe file");
    let meta = probe.as_file().metadata().expect("stat probe");
    (meta.uid(), meta.gid())
}

fn is_root() -> bool {
    my_ids().0 == 0
}

macro_rules! require_root {
    ($why:literal) => {
        if !is_root() {
            eprintln!(concat!("skipping: needs root (", $why, ")"));
            return;
        }
    };
}

mod entries;
mod escapes;
mod stream;
mod whiteouts;

/// An in-memory layer. Entries default to the test process's own uid/gid, so tests
/// that do not check ownership also run unprivileged.
struct Layer {
    builder: Builder<Vec<u8>>,
    uid: u64,
    gid: u64,
}

impl Layer {
    fn new() -> Self {
        let (uid, gid) = my_ids();
        Self {
            builder: Builder::new(Vec::new()),
            uid: u64::from(uid),
            gid: u64::from(gid),
        }
    }

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

    fn device(mut self, path: &str, kind: EntryType, mode: u32, major: u32, minor: u32) -> Self {
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
    fn raw(mut self, kind: EntryType, name: &[u8], link: &[u8], data: &[u8]) -> Self {
        let mut h = self.header(kind, 0o644, data.len() as u64);
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link);
        h.set_cksum();
        self.builder.append(&h, data).expect("append raw");
        self
    }

    /// A PAX extended header describing the next entry.
    fn pax(mut self, records: &[(&str, &[u8])]) -> Self {
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

    fn bytes(self) -> Vec<u8> {
        self.builder.into_inner().expect("finish tar")
    }
}

/// A temp dir holding `root` (the unpack destination) and `outside` (must stay empty).
struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::create_dir(dir.path().join("root")).expect("mkdir root");
        fs::create_dir(dir.path().join("outside")).expect("mkdir outside");
        Self { dir }
    }
    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }
    fn outside(&self) -> PathBuf {
        self.dir.path().join("outside")
    }
    fn unpack(&self, layer: &[u8]) -> Result<UnpackedLayer, UnpackError> {
        unpack_layer(layer, &self.root())
    }
    fn assert_outside_empty(&self) {
        let left: Vec<_> = fs::read_dir(self.outside())
            .expect("read outside")
            .map(|e| e.expect("dirent").file_name())
            .collect();
        assert!(left.is_empty(), "written outside dest: {left:?}");
    }
}

fn sha256_id(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn sample_layer() -> Vec<u8> {
    // Big enough to span several read buffers, with incompressible-ish data.
    let mut big = vec![0u8; 3 * IO_BUFFER + 123];
    let mut x: u32 = 0x1234_5678;
    for b in big.iter_mut() {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *b = x as u8;
    }
    let mut raw = Layer::new()
        .dir("data", 0o755)
        .file("data/big", 0o644, &big)
        .file("data/small", 0o644, b"hello")
        .bytes();
    // Record padding after the end-of-archive blocks, as `tar -b20` and Docker write.
    raw.resize(raw.len().next_multiple_of(10240) + 10240, 0);
    raw
}

fn gzip(raw: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(raw).expect("gzip");
    enc.finish().expect("gzip finish")
}
