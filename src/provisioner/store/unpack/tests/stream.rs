//! The stream: compression detection, diff_ids, truncation and read errors, and the
//! reader stopping when the worker fails.

use std::fs;
use std::io::{self, Read};

use super::*;
use crate::provisioner::store::unpack::queue::QUEUE_DEPTH;
use crate::provisioner::store::unpack::{detect_compression, Compression};

#[test]
fn detects_compression_from_magic() {
    assert_eq!(detect_compression(&[0x1f, 0x8b, 8, 0]), Compression::Gzip);
    assert_eq!(
        detect_compression(&[0x28, 0xb5, 0x2f, 0xfd]),
        Compression::Zstd
    );
    assert_eq!(detect_compression(b"etc/"), Compression::None);
    assert_eq!(detect_compression(&[0x1f]), Compression::None);
    assert_eq!(detect_compression(&[]), Compression::None);
}

#[test]
fn all_compressions_give_the_same_diff_id() {
    let raw = sample_layer();
    let expected = sha256_id(&raw);
    let zstd = zstd::encode_all(&raw[..], 3).expect("zstd");
    for (name, stream) in [("none", raw.clone()), ("gzip", gzip(&raw)), ("zstd", zstd)] {
        let s = Scratch::new();
        let out = s.unpack(&stream).expect(name);
        assert_eq!(out.diff_id, expected, "{name}");
        assert_eq!(out.size, 3 * IO_BUFFER as u64 + 123 + 5, "{name}");
        assert_eq!(out.inodes, 3, "{name}");
        assert_eq!(fs::read(s.root().join("data/small")).expect(name), b"hello");
        assert_eq!(
            fs::metadata(s.root().join("data/big")).expect(name).len(),
            3 * IO_BUFFER as u64 + 123
        );
    }
}

#[test]
fn empty_layer_has_the_hash_of_its_zero_blocks() {
    let raw = Layer::new().bytes();
    assert_eq!(raw.len(), 1024);
    let out = Scratch::new().unpack(&raw).expect("unpack");
    assert_eq!(out.diff_id, sha256_id(&raw));
    assert_eq!(out.inodes, 0);
}

#[test]
fn truncated_gzip_is_an_error() {
    let gz = gzip(&sample_layer());
    let cut = &gz[..gz.len() / 2];
    let err = Scratch::new().unpack(cut).expect_err("must fail");
    assert!(
        matches!(
            err,
            UnpackError::Decompress {
                compression: Compression::Gzip,
                ..
            }
        ),
        "{err:?}"
    );
    // Cut inside the gzip trailer, after all the tar data: still an error.
    let cut = &gz[..gz.len() - 4];
    let err = Scratch::new().unpack(cut).expect_err("must fail");
    assert!(matches!(err, UnpackError::Decompress { .. }), "{err:?}");
}

#[test]
fn truncated_plain_tar_inside_a_file_is_an_error() {
    let raw = sample_layer();
    let err = Scratch::new()
        .unpack(&raw[..IO_BUFFER])
        .expect_err("must fail");
    assert!(matches!(err, UnpackError::Truncated { .. }), "{err:?}");
}

#[test]
fn read_errors_are_reported_as_stream_errors() {
    struct Failing;
    impl Read for Failing {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "registry hung up",
            ))
        }
    }
    let head = Layer::new().file("f", 0o644, &[7u8; 4096]).bytes();
    let stream = (&head[..1024]).chain(Failing);
    let s = Scratch::new();
    match unpack_layer(stream, &s.root()) {
        Err(UnpackError::Read { source }) => {
            assert_eq!(source.kind(), io::ErrorKind::ConnectionReset)
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_failure_on_the_filesystem_side_stops_a_long_stream() {
    // The worker fails on the second entry while more than a queue's worth of data is
    // still to come: the reader must notice and stop, not block or keep writing.
    let s = Scratch::new();
    let big = vec![0u8; (QUEUE_DEPTH + 4) * IO_BUFFER];
    let layer = Layer::new()
        .symlink("evil", &s.outside().to_string_lossy())
        .file("evil/file", 0o644, b"pwned")
        .file("big", 0o644, &big)
        .file("after", 0o644, b"x")
        .bytes();
    let err = s.unpack(&layer).expect_err("must reject");
    assert!(matches!(err, UnpackError::SymlinkInPath { .. }), "{err:?}");
    assert!(!s.root().join("after").exists());
    s.assert_outside_empty();
}
