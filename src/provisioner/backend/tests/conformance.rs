//! The conformance suite: the same cases against every backend. Where a backend cannot do
//! something by design (bind with several layers, bind writes), the case checks that it
//! refuses cleanly instead.

use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use tar::EntryType;

use super::*;
use crate::provisioner::backend::{for_kind, Backend, BackendError, BackendKind};
use crate::sys::fs as sysfs;

/// One test module per backend, each running every case.
macro_rules! conformance {
    ($($module:ident => $kind:expr),* $(,)?) => {$(
        mod $module {
            use super::*;

            #[test]
            fn single_layer_needs_root() { single_layer($kind) }
            #[test]
            fn three_layers_whiteouts_and_swaps_need_root() { three_layers($kind) }
            #[test]
            fn writes_need_root() { writes($kind) }
            #[test]
            fn destroy_leaves_nothing_needs_root() { destroy_leaves_nothing($kind) }
            #[test]
            fn destroy_unmounts_what_the_container_mounted_needs_root() {
                destroy_unmounts_nested($kind)
            }
            #[test]
            fn deep_image_needs_root() { deep_image($kind) }
            #[test]
            fn existing_rootfs_is_refused_needs_root() { existing_rootfs($kind) }
            #[test]
            fn failed_provision_leaves_nothing_needs_root() { failed_provision($kind) }
            #[test]
            fn no_layers_is_refused() { no_layers($kind) }
        }
    )*};
}

conformance! {
    overlay => BackendKind::Overlay,
    copy => BackendKind::Copy,
    bind => BackendKind::Bind,
}

fn provision(backend: &dyn Backend, f: &Fixture) -> Result<(), BackendError> {
    backend.provision(&f.layers, &f.rootfs(), &f.scratch())
}

fn read(path: &Path) -> String {
    String::from_utf8(fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display())))
        .expect("utf8")
}

fn lstat(path: &Path) -> fs::Metadata {
    fs::symlink_metadata(path).unwrap_or_else(|e| panic!("lstat {}: {e}", path.display()))
}

fn perms(path: &Path) -> u32 {
    lstat(path).mode() & 0o7777
}

fn single_layer_tar() -> Vec<u8> {
    Layer::new()
        .dir(".", 0o751)
        .dir("etc", 0o755)
        .xattr("user.note", b"hello")
        .file("etc/passwd", 0o644, b"root:x:0:0")
        .file("secret", 0o600, b"s")
        .dir("tmp", 0o1777)
        .dir("bin", 0o755)
        .owner(1000, 2000)
        .file("bin/tool", 0o4755, b"#!tool")
        .owner(0, 0)
        .hardlink("bin/tool2", "bin/tool")
        .symlink("bin/sh", "tool")
        .symlink("abs", "/etc/passwd")
        .dir("data", 0o750)
        .file("data/x", 0o644, b"x")
        .device("run/fifo", EntryType::Fifo, 0o600, 0, 0)
        .device("dev/null", EntryType::Char, 0o666, 1, 3)
        .bytes()
}

/// (a) What one layer holds shows up with its metadata.
fn single_layer(kind: BackendKind) {
    require_root!("mounts, chown, mknod");
    let f = Fixture::with_layers([single_layer_tar()]);
    let backend = for_kind(kind);
    provision(&*backend, &f).expect("provision");
    let r = f.rootfs();

    assert_eq!(
        perms(&f.layers[0]),
        0o751,
        "the tar sets the layer root's mode"
    );
    assert_eq!(
        perms(&r),
        0o751,
        "the rootfs root has the layer root's mode"
    );
    assert_eq!(read(&r.join("etc/passwd")), "root:x:0:0");
    assert_eq!(perms(&r.join("etc/passwd")), 0o644);
    assert_eq!(lstat(&r.join("etc/passwd")).mtime(), MTIME as i64);
    assert_eq!(
        sysfs::lgetxattr(&r.join("etc/passwd"), b"user.note").expect("getxattr"),
        Some(b"hello".to_vec())
    );
    assert_eq!(perms(&r.join("secret")), 0o600);
    assert!(lstat(&r.join("tmp")).is_dir());
    assert_eq!(perms(&r.join("tmp")), 0o1777);

    let tool = lstat(&r.join("bin/tool"));
    assert_eq!(tool.mode() & 0o7777, 0o4755, "setuid kept after chown");
    assert_eq!((tool.uid(), tool.gid()), (1000, 2000));
    let tool2 = lstat(&r.join("bin/tool2"));
    assert_eq!(tool2.ino(), tool.ino(), "hard link kept");
    assert!(tool.nlink() >= 2);

    assert_eq!(
        fs::read_link(r.join("bin/sh")).expect("readlink"),
        Path::new("tool")
    );
    assert_eq!(
        fs::read_link(r.join("abs")).expect("readlink"),
        Path::new("/etc/passwd")
    );
    assert_eq!(read(&r.join("bin/sh")), "#!tool");

    let data = lstat(&r.join("data"));
    assert_eq!(data.mode() & 0o7777, 0o750);
    assert_eq!(
        data.mtime(),
        MTIME as i64,
        "dir mtime survives copying its children"
    );

    assert!(lstat(&r.join("run/fifo")).file_type().is_fifo());
    let null = lstat(&r.join("dev/null"));
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), lstat(&f.layers[0].join("dev/null")).rdev());
    // ...but it cannot be opened, not even by root: the rootfs is mounted nodev.
    let flags = nix::sys::statvfs::statvfs(&r).expect("statvfs").flags();
    assert!(
        flags.contains(nix::sys::statvfs::FsFlags::ST_NODEV),
        "{flags:?}"
    );
    let e = fs::File::open(r.join("dev/null")).expect_err("a device on a nodev mount");
    assert_eq!(e.raw_os_error(), Some(libc::EACCES), "{e}");

    backend.destroy(&f.rootfs(), &f.scratch()).expect("destroy");
    f.assert_nothing_left();
}

fn three_layer_tars() -> [Vec<u8>; 3] {
    let base = Layer::new()
        .file("f", 0o644, b"base")
        .file("D/old", 0o644, b"old")
        .file("D/sub/x", 0o644, b"x")
        .file("f2d", 0o644, b"was a file")
        .file("d2f/inner", 0o644, b"inner")
        .file("sym/y", 0o644, b"y")
        .file("merge/a", 0o644, b"a")
        .file("wdir/z", 0o644, b"z")
        .file("back", 0o644, b"v1")
        .bytes();
    let middle = Layer::new()
        .whiteout("f")
        .dir("D", 0o755)
        .file("D/mine", 0o644, b"mine")
        .opaque("D")
        .file("f2d/child", 0o644, b"child")
        .file("d2f", 0o600, b"now a file")
        .symlink("sym", "merge")
        .file("merge/b", 0o644, b"b")
        .whiteout("wdir")
        .whiteout("back")
        .bytes();
    let top = Layer::new()
        .file("merge/c", 0o644, b"c")
        .file("D/top", 0o644, b"top")
        .file("back", 0o644, b"v2")
        .bytes();
    [base, middle, top]
}

/// (b) Whiteouts, opaque dirs, kind swaps and merges across three layers.
fn three_layers(kind: BackendKind) {
    require_root!("mounts, trusted.* xattrs, whiteout devices");
    let f = Fixture::with_layers(three_layer_tars());
    let backend = for_kind(kind);
    if kind == BackendKind::Bind {
        let err = provision(&*backend, &f).expect_err("bind takes one layer");
        assert!(
            matches!(err, BackendError::BindMultipleLayers { count: 3 }),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "the bind backend needs a single-layer image; this one has 3 layers"
        );
        f.assert_nothing_left();
        return;
    }
    provision(&*backend, &f).expect("provision");
    let r = f.rootfs();

    assert!(!exists(&r.join("f")), "whiteout hides the lower file");
    assert!(!exists(&r.join("wdir")), "whiteout hides a lower dir");
    assert_eq!(
        read(&r.join("back")),
        "v2",
        "a higher layer re-adds a whited-out path"
    );

    let mut d: Vec<_> = fs::read_dir(r.join("D"))
        .expect("read D")
        .map(|e| e.expect("dirent").file_name().into_string().expect("utf8"))
        .collect();
    d.sort();
    assert_eq!(d, ["mine", "top"], "opaque D hides lower content only");
    assert!(
        !matches!(
            sysfs::lgetxattr(&r.join("D"), b"trusted.overlay.opaque"),
            Ok(Some(_))
        ),
        "the opaque marker itself is not visible in the rootfs"
    );

    assert!(lstat(&r.join("f2d")).is_dir(), "file replaced by dir");
    assert_eq!(read(&r.join("f2d/child")), "child");
    let d2f = lstat(&r.join("d2f"));
    assert!(d2f.is_file(), "dir replaced by file");
    assert_eq!(d2f.mode() & 0o7777, 0o600);
    assert_eq!(read(&r.join("d2f")), "now a file");
    assert!(
        lstat(&r.join("sym")).file_type().is_symlink(),
        "dir replaced by symlink"
    );
    assert_eq!(
        fs::read_link(r.join("sym")).expect("readlink"),
        Path::new("merge")
    );

    for (name, content) in [("a", "a"), ("b", "b"), ("c", "c")] {
        assert_eq!(read(&r.join("merge").join(name)), content, "merged dir");
    }
    // Nothing of the markers' overlay form leaks as a device node.
    for entry in fs::read_dir(&r).expect("read rootfs") {
        let m = entry.expect("dirent").metadata().expect("stat");
        assert!(!m.file_type().is_char_device(), "a whiteout device leaked");
    }

    backend.destroy(&f.rootfs(), &f.scratch()).expect("destroy");
    f.assert_nothing_left();
}

/// (c) Overlay and copy give a writable rootfs that leaves the layers untouched; bind is
/// read-only.
fn writes(kind: BackendKind) {
    require_root!("mounts");
    let f = Fixture::with_layers([single_layer_tar()]);
    let backend = for_kind(kind);
    provision(&*backend, &f).expect("provision");
    let r = f.rootfs();
    let layer = &f.layers[0];

    let created = fs::write(r.join("new-file"), b"new");
    let changed = fs::write(r.join("etc/passwd"), b"changed");
    if kind == BackendKind::Bind {
        for result in [created, changed] {
            let err = result.expect_err("bind rootfs is read-only");
            assert_eq!(err.raw_os_error(), Some(libc::EROFS), "{err}");
        }
    } else {
        created.expect("create a file in the rootfs");
        changed.expect("change a layer's file in the rootfs");
        fs::remove_file(r.join("secret")).expect("delete a layer's file in the rootfs");
        assert_eq!(read(&r.join("new-file")), "new");
        assert_eq!(read(&r.join("etc/passwd")), "changed");
        assert!(!exists(&r.join("secret")));
    }
    assert!(!exists(&layer.join("new-file")), "layer dir unchanged");
    assert_eq!(
        read(&layer.join("etc/passwd")),
        "root:x:0:0",
        "layer file unchanged"
    );
    assert!(exists(&layer.join("secret")), "layer file not deleted");

    backend.destroy(&f.rootfs(), &f.scratch()).expect("destroy");
    f.assert_nothing_left();
}

/// (d) Destroy unmounts and removes everything, and is idempotent.
fn destroy_leaves_nothing(kind: BackendKind) {
    require_root!("mounts");
    let f = Fixture::with_layers([single_layer_tar()]);
    let backend = for_kind(kind);
    backend
        .destroy(&f.rootfs(), &f.scratch())
        .expect("destroy before provision");
    provision(&*backend, &f).expect("provision");
    if kind != BackendKind::Copy {
        assert!(mount::is_mount_point(&f.rootfs()).expect("mountinfo"));
    }
    backend.destroy(&f.rootfs(), &f.scratch()).expect("destroy");
    f.assert_nothing_left();
    backend
        .destroy(&f.rootfs(), &f.scratch())
        .expect("destroy again");
    f.assert_nothing_left();
    assert!(exists(&f.layers[0].join("etc/passwd")), "layer intact");
}

/// Mounts a container made inside its rootfs are detached by destroy, and never deleted
/// through.
fn destroy_unmounts_nested(kind: BackendKind) {
    require_root!("mounts");
    let f = Fixture::with_layers([single_layer_tar()]);
    let backend = for_kind(kind);
    provision(&*backend, &f).expect("provision");
    let precious = f.path().join("volume");
    fs::create_dir(&precious).expect("mkdir volume");
    fs::write(precious.join("keep"), b"keep").expect("write volume file");
    // `etc` exists in the image, so this works on a read-only (bind) rootfs too.
    mount::bind(&precious, &f.rootfs().join("etc")).expect("bind volume into rootfs");

    backend.destroy(&f.rootfs(), &f.scratch()).expect("destroy");
    f.assert_nothing_left();
    assert_eq!(
        read(&precious.join("keep")),
        "keep",
        "destroy deleted through a mount"
    );
}

/// (e) 120 layers: more than fit in the mount options as plain store paths.
fn deep_image(kind: BackendKind) {
    require_root!("mounts, whiteout devices");
    const DEPTH: usize = 120;
    let mut f = Fixture::new();
    for i in 0..DEPTH {
        let mut tar = Layer::new()
            .file(&format!("layer-{i}"), 0o644, i.to_string().as_bytes())
            .file("top", 0o644, i.to_string().as_bytes())
            .file(&format!("w-{i}"), 0o644, b"w");
        if i > 0 {
            tar = tar.whiteout(&format!("w-{}", i - 1));
        }
        f.add_layer(&tar.bytes());
    }
    let backend = for_kind(kind);
    if kind == BackendKind::Bind {
        let err = provision(&*backend, &f).expect_err("bind takes one layer");
        assert!(
            matches!(err, BackendError::BindMultipleLayers { count: DEPTH }),
            "{err:?}"
        );
        f.assert_nothing_left();
        return;
    }
    provision(&*backend, &f).expect("provision");
    let r = f.rootfs();
    for i in 0..DEPTH {
        assert_eq!(read(&r.join(format!("layer-{i}"))), i.to_string());
    }
    assert_eq!(read(&r.join("top")), (DEPTH - 1).to_string());
    let ws: Vec<_> = (0..DEPTH)
        .filter(|i| exists(&r.join(format!("w-{i}"))))
        .collect();
    assert_eq!(ws, [DEPTH - 1]);
    backend.destroy(&f.rootfs(), &f.scratch()).expect("destroy");
    f.assert_nothing_left();
}

/// An existing rootfs may be someone else's: refused, and left as it was.
fn existing_rootfs(kind: BackendKind) {
    require_root!("mounts");
    let f = Fixture::with_layers([single_layer_tar()]);
    fs::create_dir_all(f.rootfs()).expect("mkdir rootfs");
    fs::write(f.rootfs().join("theirs"), b"theirs").expect("write");
    let err = provision(&*for_kind(kind), &f).expect_err("rootfs exists");
    assert!(matches!(err, BackendError::RootfsExists { .. }), "{err:?}");
    assert_eq!(read(&f.rootfs().join("theirs")), "theirs");
    assert!(f.mounts().is_empty());
}

/// A provision that fails half-way (a layer vanished) cleans up after itself.
fn failed_provision(kind: BackendKind) {
    require_root!("mounts");
    let mut f = Fixture::with_layers([single_layer_tar()]);
    f.layers[0] = f.path().join("no-such-layer");
    let err = provision(&*for_kind(kind), &f).expect_err("missing layer");
    if let BackendError::Io { source, .. } | BackendError::OverlayMount { source, .. } = &err {
        assert_eq!(source.kind(), ErrorKind::NotFound, "{err:?}");
    } else {
        panic!("unexpected error {err:?}");
    }
    f.assert_nothing_left();
}

fn no_layers(kind: BackendKind) {
    let f = Fixture::new();
    let err = provision(&*for_kind(kind), &f).expect_err("no layers");
    assert!(matches!(err, BackendError::NoLayers { .. }), "{err:?}");
    assert!(!exists(&f.rootfs()));
}
