//! Hostile layers: nothing is created, written or linked outside `dest`.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::*;
use crate::provisioner::store::unpack::path::normalize;

#[test]
fn normalize_strips_root_and_dots_and_refuses_climbing() {
    let n = |p: &str| normalize(Path::new(p));
    assert_eq!(n("/etc/passwd"), Some(PathBuf::from("etc/passwd")));
    assert_eq!(n("./etc/./passwd"), Some(PathBuf::from("etc/passwd")));
    assert_eq!(n("a/../b"), Some(PathBuf::from("b")));
    assert_eq!(n("./"), Some(PathBuf::new()));
    assert_eq!(n("../escape"), None);
    assert_eq!(n("a/../../escape"), None);
    assert_eq!(n("/../etc"), None);
}

#[test]
fn parent_dir_escape_is_rejected() {
    for name in [&b"../escape"[..], b"a/../../escape", b"/../outside/escape"] {
        let layer = Layer::new()
            .raw(EntryType::Regular, name, b"", b"pwned")
            .bytes();
        let s = Scratch::new();
        let err = s.unpack(&layer).expect_err("must reject");
        assert!(matches!(err, UnpackError::PathEscape { .. }), "{err:?}");
        s.assert_outside_empty();
        assert!(!s.dir.path().join("escape").exists());
    }
}

#[test]
fn absolute_and_dot_paths_are_normalised_into_dest() {
    let layer = Layer::new()
        .raw(EntryType::Regular, b"/abs/path", b"", b"a")
        .raw(EntryType::Regular, b"./etc/passwd", b"", b"b")
        .raw(EntryType::Regular, b"x/../lexical", b"", b"c")
        .bytes();
    let s = Scratch::new();
    s.unpack(&layer).expect("unpack");
    assert_eq!(fs::read(s.root().join("abs/path")).expect("abs"), b"a");
    assert_eq!(fs::read(s.root().join("etc/passwd")).expect("dot"), b"b");
    assert_eq!(fs::read(s.root().join("lexical")).expect("lexical"), b"c");
}

#[test]
fn writing_through_a_symlinked_parent_is_rejected() {
    let s = Scratch::new();
    let outside = s.outside().to_string_lossy().into_owned();
    for target in [outside.as_str(), "../outside"] {
        let layer = Layer::new()
            .symlink("evil", target)
            .file("evil/file", 0o644, b"pwned")
            .bytes();
        let s = Scratch::new();
        let err = s.unpack(&layer).expect_err("must reject");
        assert!(
            matches!(&err, UnpackError::SymlinkInPath { component, .. } if component == Path::new("evil")),
            "{err:?}"
        );
        s.assert_outside_empty();
    }
    // A directory entry below the symlink is refused the same way.
    let layer = Layer::new()
        .symlink("evil", &outside)
        .dir("evil/sub", 0o755)
        .bytes();
    let err = s.unpack(&layer).expect_err("must reject");
    assert!(matches!(err, UnpackError::SymlinkInPath { .. }), "{err:?}");
    s.assert_outside_empty();
}

#[test]
fn a_directory_later_replaced_by_a_symlink_is_not_followed() {
    // Caches must not vouch for `a` once a later entry turned it into a symlink, and
    // deferred directory times must not be applied through it.
    let s = Scratch::new();
    fs::create_dir(s.outside().join("b")).expect("mkdir outside/b");
    let before = fs::symlink_metadata(s.outside().join("b"))
        .expect("stat")
        .mtime();
    let layer = Layer::new()
        .dir("a", 0o755)
        .dir("a/b", 0o755)
        .symlink("a", &s.outside().to_string_lossy())
        .bytes();
    s.unpack(&layer).expect("unpack");
    assert!(fs::symlink_metadata(s.root().join("a"))
        .expect("a")
        .file_type()
        .is_symlink());
    let after = fs::symlink_metadata(s.outside().join("b"))
        .expect("stat")
        .mtime();
    assert_eq!(before, after);
    assert_ne!(after, MTIME as i64);

    let layer = Layer::new()
        .dir("c", 0o755)
        .symlink("c", &s.outside().to_string_lossy())
        .file("c/f", 0o644, b"pwned")
        .bytes();
    let s2 = Scratch::new();
    let err = s2.unpack(&layer).expect_err("must reject");
    assert!(matches!(err, UnpackError::SymlinkInPath { .. }), "{err:?}");
    assert!(!s.outside().join("f").exists());
}

#[test]
fn a_file_replaces_a_symlink_instead_of_writing_through_it() {
    let s = Scratch::new();
    let victim = s.outside().join("victim");
    fs::write(&victim, b"original").expect("write victim");
    let layer = Layer::new()
        .symlink("f", &victim.to_string_lossy())
        .file("f", 0o644, b"new")
        .bytes();
    s.unpack(&layer).expect("unpack");
    assert_eq!(fs::read(&victim).expect("victim"), b"original");
    assert_eq!(fs::read(s.root().join("f")).expect("f"), b"new");
    assert!(fs::symlink_metadata(s.root().join("f"))
        .expect("f")
        .is_file());
}

#[test]
fn non_directory_at_root_is_rejected() {
    let layer = Layer::new()
        .raw(EntryType::Regular, b"./", b"", b"")
        .bytes();
    let s = Scratch::new();
    let err = s.unpack(&layer).expect_err("must reject");
    assert!(
        matches!(err, UnpackError::RootNotDirectory { .. }),
        "{err:?}"
    );
}

#[test]
fn hardlink_escaping_the_layer_is_rejected() {
    for target in ["../../etc/passwd", "a/../../../etc/passwd"] {
        let layer = Layer::new().hardlink("passwd", target).bytes();
        let s = Scratch::new();
        let err = s.unpack(&layer).expect_err("must reject");
        assert!(
            matches!(err, UnpackError::LinkEscape { .. }),
            "{target}: {err:?}"
        );
        assert!(!s.root().join("passwd").exists());
    }
}

#[test]
fn hardlink_through_symlinked_parent_is_rejected() {
    let s = Scratch::new();
    fs::write(s.outside().join("secret"), b"host secret").expect("write secret");
    let layer = Layer::new()
        .symlink("sl", &s.outside().to_string_lossy())
        .hardlink("stolen", "sl/secret")
        .bytes();
    let err = s.unpack(&layer).expect_err("must reject");
    assert!(matches!(err, UnpackError::LinkEscape { .. }), "{err:?}");
    assert!(fs::symlink_metadata(s.root().join("stolen")).is_err());
    let secret = fs::symlink_metadata(s.outside().join("secret")).expect("secret");
    assert_eq!(secret.nlink(), 1);
}

#[test]
fn hardlink_to_missing_target_is_rejected() {
    let layer = Layer::new().hardlink("a", "nope").bytes();
    let s = Scratch::new();
    let err = s.unpack(&layer).expect_err("must reject");
    assert!(
        matches!(err, UnpackError::LinkTargetMissing { .. }),
        "{err:?}"
    );
    let layer = Layer::new().hardlink("a", "no/such/dir/file").bytes();
    let err = Scratch::new().unpack(&layer).expect_err("must reject");
    assert!(
        matches!(err, UnpackError::LinkTargetMissing { .. }),
        "{err:?}"
    );
}
