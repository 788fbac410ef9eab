//! Overlay-only behaviour: mount option length and escaping.

use std::fs;

use super::*;
use crate::provisioner::backend::{Backend, BackendError, OverlayBackend};

fn deep_fixture(depth: usize) -> Fixture {
    let mut f = Fixture::new();
    for i in 0..depth {
        f.add_layer(
            &Layer::new()
                .file(&format!("layer-{i}"), 0o644, b"x")
                .bytes(),
        );
    }
    f
}

/// The overlay's mount options, as mountinfo reports them.
fn super_options(rootfs: &Path) -> String {
    let rootfs = fs::canonicalize(rootfs).expect("canonicalize");
    mount::mountinfo()
        .expect("mountinfo")
        .into_iter()
        .rfind(|m| m.mount_point == rootfs)
        .expect("rootfs is mounted")
        .super_options
}

#[test]
fn short_scratch_names_layers_by_alias_path_needs_root() {
    require_root!("mounts");
    let f = deep_fixture(3);
    OverlayBackend
        .provision(&f.layers, &f.rootfs(), &f.scratch())
        .expect("provision");
    let opts = super_options(&f.rootfs());
    let scratch = fs::canonicalize(f.scratch()).expect("canonicalize");
    let want = format!("lowerdir={s}/l/2:{s}/l/1:{s}/l/0", s = scratch.display());
    assert!(opts.contains(&want), "{opts}");
    OverlayBackend
        .destroy(&f.rootfs(), &f.scratch())
        .expect("destroy");
    f.assert_nothing_left();
}

/// A scratch path so long that even 120 short aliases overflow a page: the layers are
/// named through `/proc/self/fd/<fd>` instead, and the mount still works.
#[test]
fn long_scratch_path_uses_fd_relative_aliases_needs_root() {
    require_root!("mounts");
    const DEPTH: usize = 120;
    let f = deep_fixture(DEPTH);
    let scratch = f.path().join("s".repeat(200)).join("t".repeat(200));
    let rootfs = f.rootfs();
    OverlayBackend
        .provision(&f.layers, &rootfs, &scratch)
        .expect("provision");
    assert!(super_options(&rootfs).contains("lowerdir=/proc/self/fd/"));
    for i in 0..DEPTH {
        assert!(exists(&rootfs.join(format!("layer-{i}"))), "layer-{i}");
    }
    OverlayBackend.destroy(&rootfs, &scratch).expect("destroy");
    assert!(!exists(&scratch));
    f.assert_nothing_left();
}

/// `,` and `:` in paths are escaped, not taken as separators.
#[test]
fn separators_in_paths_are_escaped_needs_root() {
    require_root!("mounts");
    let f = deep_fixture(2);
    let scratch = f.path().join("a,b:c\\d");
    OverlayBackend
        .provision(&f.layers, &f.rootfs(), &scratch)
        .expect("provision");
    assert!(exists(&f.rootfs().join("layer-0")));
    assert!(exists(&f.rootfs().join("layer-1")));
    fs::write(f.rootfs().join("new"), b"n").expect("write");
    assert!(
        exists(&scratch.join("upper/new")),
        "writes land in the upper dir"
    );
    OverlayBackend
        .destroy(&f.rootfs(), &scratch)
        .expect("destroy");
    assert!(!exists(&scratch));
    f.assert_nothing_left();
}

/// When even the fd-relative form cannot fit (here: upper and work dirs that alone fill a
/// page), the error names the layer count and nothing is left behind.
#[test]
fn options_over_a_page_are_refused_needs_root() {
    require_root!("mounts");
    let f = deep_fixture(1);
    let mut scratch = f.path().to_path_buf();
    while scratch.as_os_str().len() < 2100 {
        scratch.push("x".repeat(200));
    }
    let err = OverlayBackend
        .provision(&f.layers, &f.rootfs(), &scratch)
        .expect_err("options too long");
    match &err {
        BackendError::OverlayOptionsTooLong { layers, len, limit } => {
            assert_eq!(*layers, 1);
            assert!(len > limit);
        }
        other => panic!("unexpected error {other:?}"),
    }
    assert!(err.to_string().contains("for 1 layers"), "{err}");
    assert!(!exists(&scratch));
    f.assert_nothing_left();
}
