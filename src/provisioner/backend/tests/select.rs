//! Choosing a backend, and parsing backend names.

use std::fs;

use super::*;
use crate::error::{ErrorKind, Kind};
use crate::provisioner::backend::{select, BackendChoice, BackendError, BackendKind};

#[test]
fn kinds_parse_exactly_and_print_back() {
    for kind in [BackendKind::Overlay, BackendKind::Copy, BackendKind::Bind] {
        assert_eq!(
            kind.to_string().parse::<BackendKind>().expect("parse"),
            kind
        );
        assert_eq!(
            kind.as_str().parse::<BackendChoice>().expect("parse"),
            BackendChoice::Kind(kind)
        );
    }
    assert_eq!(
        "auto".parse::<BackendChoice>().expect("parse"),
        BackendChoice::Auto
    );
}

#[test]
fn unknown_names_are_invalid_arguments() {
    for name in ["", "aufs", "Overlay", " copy", "auto ", "overlay2"] {
        let err = name.parse::<BackendKind>().expect_err(name);
        assert!(
            matches!(&err, BackendError::UnknownKind { name: n } if n == name),
            "{err:?}"
        );
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        assert!(
            err.to_string()
                .contains("expected overlay, copy, bind or auto"),
            "{err}"
        );
        assert!(name.parse::<BackendChoice>().is_err(), "{name}");
    }
}

#[test]
fn auto_is_not_a_kind() {
    let err = "auto".parse::<BackendKind>().expect_err("auto");
    assert!(matches!(err, BackendError::UnknownKind { .. }), "{err:?}");
}

#[test]
fn select_rejects_unknown_names() {
    let f = Fixture::new();
    let err = select("zfs", &f.store()).err().expect("unknown backend");
    assert!(matches!(err, BackendError::UnknownKind { .. }), "{err:?}");
}

#[test]
fn copy_and_bind_are_taken_as_given() {
    let f = Fixture::new();
    assert_eq!(
        select("copy", &f.store()).expect("copy").kind(),
        BackendKind::Copy
    );
    assert_eq!(
        select("bind", &f.store()).expect("bind").kind(),
        BackendKind::Bind
    );
}

#[test]
fn auto_takes_overlay_here_and_cleans_up_its_probe_needs_root() {
    require_root!("overlay mount");
    let f = Fixture::new();
    assert_eq!(
        select("auto", &f.store()).expect("auto").kind(),
        BackendKind::Overlay
    );
    assert_eq!(
        select("overlay", &f.store()).expect("overlay").kind(),
        BackendKind::Overlay
    );
    let left: Vec<_> = fs::read_dir(f.store().join("tmp"))
        .expect("store tmp dir exists")
        .map(|e| e.expect("dirent").file_name())
        .collect();
    assert!(left.is_empty(), "probe left {left:?}");
    assert!(f.mounts().is_empty());
}

/// On a store where overlay cannot work (here a read-only filesystem), `auto` falls back
/// to copy and an explicit `overlay` fails with the reason.
#[test]
fn unusable_overlay_falls_back_to_copy_needs_root() {
    require_root!("bind mounts");
    let f = Fixture::new();
    let store = f.store();
    fs::create_dir(&store).expect("mkdir store");
    mount::bind(&store, &store).expect("bind store");
    mount::remount_read_only(&store).expect("remount store read-only");

    let auto = select("auto", &store).map(|b| b.kind());
    let explicit = select("overlay", &store).map(|b| b.kind());
    mount::detach(&store).expect("unmount store");

    assert_eq!(auto.expect("auto"), BackendKind::Copy);
    let err = explicit.expect_err("overlay on a read-only store");
    assert!(
        matches!(&err, BackendError::OverlayUnsupported { source, .. }
            if source.raw_os_error() == Some(libc::EROFS)),
        "{err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::FailedPrecondition);
    assert!(f.mounts().is_empty());
}
