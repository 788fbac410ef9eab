//! Unpacker tests against in-memory layers and a scratch directory. Tests that need root
//! say so in their name or through `require_root!`, and skip with a printed reason.

use std::fs;
use std::io::Write;
use std::path::PathBuf;

use sha2::{Digest, Sha256};
use tar::EntryType;

use super::{unpack_layer, UnpackError, UnpackedLayer, IO_BUFFER};
use crate::provisioner::testing::{require_root, Layer, MTIME};

mod entries;
mod escapes;
mod stream;
mod whiteouts;

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
