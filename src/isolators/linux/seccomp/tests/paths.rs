//! Localhost profile paths: relative ones below the root and only there, absolute ones
//! as they are; missing or odd files named in the error.

use std::os::unix::fs::symlink;
use std::path::Path;

use super::super::error::SeccompError;
use super::super::path::{read, MAX_PROFILE_SIZE};

fn setup() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("seccomp");
    std::fs::create_dir_all(root.join("profiles")).expect("mkdir");
    std::fs::write(root.join("profiles/a.json"), "{}").expect("write");
    std::fs::write(dir.path().join("outside.json"), "{}").expect("write");
    (dir, root)
}

#[test]
fn relative_paths_are_below_the_root() {
    let (_dir, root) = setup();
    let (path, bytes) = read(&root, Path::new("profiles/a.json")).expect("read");
    assert_eq!(path, root.join("profiles/a.json"));
    assert_eq!(bytes, b"{}");
    // `..` that stays inside, and a symlink that does, are fine.
    read(&root, Path::new("profiles/../profiles/a.json")).expect("stays inside");
    symlink("profiles/a.json", root.join("inside.json")).expect("symlink");
    read(&root, Path::new("inside.json")).expect("a symlink within the root");
}

#[test]
fn leaving_the_root_is_refused() {
    let (dir, root) = setup();
    symlink(dir.path().join("outside.json"), root.join("abs-link.json")).expect("symlink");
    symlink("../outside.json", root.join("rel-link.json")).expect("symlink");
    symlink("../..", root.join("profiles/up")).expect("symlink");
    for escape in [
        "../outside.json",
        "profiles/../../outside.json",
        "abs-link.json",
        "rel-link.json",
        "profiles/up/outside.json",
    ] {
        let e = read(&root, Path::new(escape)).expect_err(escape);
        assert!(matches!(e, SeccompError::Escapes { .. }), "{escape}: {e}");
        let message = e.to_string();
        assert!(
            message.contains(&format!("{escape:?}"))
                && message.contains(&root.display().to_string()),
            "{message}"
        );
    }
}

#[test]
fn absolute_paths_are_read_as_they_are() {
    let (dir, root) = setup();
    let outside = dir.path().join("outside.json");
    let (path, _) = read(&root, &outside).expect("absolute, as containerd allows");
    assert_eq!(path, outside);
}

#[test]
fn a_missing_or_odd_file_is_named() {
    let (dir, root) = setup();
    let e = read(&root, Path::new("profiles/missing.json")).expect_err("missing");
    assert_eq!(
        e.to_string(),
        format!(
            "seccomp profile {}: No such file or directory (os error 2)",
            root.join("profiles/missing.json").display()
        )
    );
    let e = read(&root, &dir.path().join("nope.json")).expect_err("missing");
    assert!(e.to_string().contains("nope.json: No such file"), "{e}");
    let e = read(&root, Path::new("profiles")).expect_err("a directory");
    assert!(e.to_string().contains("not a regular file"), "{e}");
    crate::sys::fs::mkfifo(&root.join("fifo.json"), 0o600).expect("mkfifo");
    let e = read(&root, Path::new("fifo.json")).expect_err("a fifo, not opened");
    assert!(e.to_string().contains("not a regular file"), "{e}");
    let e = read(&root, Path::new("")).expect_err("empty");
    assert_eq!(e.to_string(), "seccomp profile path is empty");
    let big = root.join("big.json");
    std::fs::write(&big, vec![b' '; MAX_PROFILE_SIZE as usize + 1]).expect("write");
    let e = read(&root, Path::new("big.json")).expect_err("too large");
    assert!(e.to_string().contains("larger than"), "{e}");
}
