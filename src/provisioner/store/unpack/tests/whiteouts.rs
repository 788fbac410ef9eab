//! Whiteouts, opaque markers and AUFS metadata.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

use super::*;
use crate::provisioner::store::unpack::OPAQUE_XATTR;
use crate::sys::fs as sysfs;

#[test]
fn whiteouts_become_char_devices_and_are_recorded() {
    require_root!("mknod");
    let layer = Layer::new()
        .file(".wh.gone", 0o644, b"")
        .dir("usr", 0o755)
        .file("usr/.wh.lib", 0o644, b"")
        .file("deep/er/.wh.x", 0o644, b"")
        .bytes();
    let s = Scratch::new();
    let out = s.unpack(&layer).expect("unpack");
    for path in ["gone", "usr/lib", "deep/er/x"] {
        let m = fs::symlink_metadata(s.root().join(path)).expect(path);
        assert!(m.file_type().is_char_device(), "{path}");
        assert_eq!(m.rdev(), 0, "{path}");
    }
    assert!(!s.root().join(".wh.gone").exists());
    assert!(!s.root().join("usr/.wh.lib").exists());
    assert_eq!(
        out.whiteouts,
        vec![
            PathBuf::from("gone"),
            PathBuf::from("usr/lib"),
            PathBuf::from("deep/er/x")
        ]
    );
}

#[test]
fn invalid_whiteout_names_are_rejected() {
    for name in ["a/.wh..", "a/.wh."] {
        let layer = Layer::new().file(name, 0o644, b"").bytes();
        let s = Scratch::new();
        let err = s.unpack(&layer).expect_err(name);
        assert!(
            matches!(err, UnpackError::InvalidWhiteout { .. }),
            "{name}: {err:?}"
        );
    }
}

#[test]
fn opaque_marker_sets_xattr_and_keeps_same_layer_files() {
    require_root!("trusted.* xattrs");
    let layer = Layer::new()
        .dir("etc", 0o755)
        .file("etc/before", 0o644, b"1")
        .file("etc/.wh..wh..opq", 0o644, b"")
        .file("etc/after", 0o644, b"2")
        .file(".wh..wh..opq", 0o644, b"")
        .bytes();
    let s = Scratch::new();
    let out = s.unpack(&layer).expect("unpack");
    let root = s.root();
    assert_eq!(
        sysfs::lgetxattr(&root.join("etc"), OPAQUE_XATTR).expect("getxattr"),
        Some(b"y".to_vec())
    );
    assert_eq!(
        sysfs::lgetxattr(&root, OPAQUE_XATTR).expect("getxattr"),
        Some(b"y".to_vec())
    );
    assert_eq!(fs::read(root.join("etc/before")).expect("before"), b"1");
    assert_eq!(fs::read(root.join("etc/after")).expect("after"), b"2");
    assert!(!root.join("etc/.wh..wh..opq").exists());
    assert!(!root.join(".wh..wh..opq").exists());
    assert_eq!(out.opaque_dirs, vec![PathBuf::from("etc"), PathBuf::new()]);
}

#[test]
fn aufs_metadata_is_skipped() {
    let layer = Layer::new()
        .dir(".wh..wh..plnk", 0o700)
        .file(".wh..wh..plnk/123.456", 0o644, b"x")
        .file("ok", 0o644, b"y")
        .bytes();
    let s = Scratch::new();
    s.unpack(&layer).expect("unpack");
    assert!(!s.root().join(".wh..wh..plnk").exists());
    assert!(s.root().join("ok").exists());
}
