use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use super::*;

const PASSWD_TEXT: &str = "\
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
# a comment:x:5:5::/nowhere:
app:x:1000:1000:App User:/home/app:/bin/sh

this line is malformed
short:x:7
badnum:x:abc:1::/bad:/bin/sh
app:x:1001:1001:second app, ignored:/dup:/bin/sh
nohome:x:1002:1002:::
  spaced:x:1003:1003::/home/spaced:/bin/sh  \r
";

const GROUP_TEXT: &str = "\
root:x:0:root
wheel:x:10:root,app
app:x:1000:app
audio:x:29: app , other
video:x:44:other
staff:x:50:
# staff:x:51:app
bad:x:notnum:app
staff:x:52:app
dup-member:x:60:app,app
";

/// A rootfs with the given files under it (relative paths; parents created).
fn rootfs(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (rel, text) in files {
        let path = dir.path().join(rel);
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        fs::write(&path, text).expect("write");
    }
    dir
}

fn standard() -> tempfile::TempDir {
    rootfs(&[("etc/passwd", PASSWD_TEXT), ("etc/group", GROUP_TEXT)])
}

fn user(uid: u32, gid: u32, gids: &[u32], home: &str, name: Option<&str>) -> ResolvedUser {
    ResolvedUser {
        uid,
        gid,
        additional_gids: gids.to_vec(),
        home: home.to_string(),
        name: name.map(str::to_string),
    }
}

fn ok(root: &Path, spec: &str) -> ResolvedUser {
    resolve(root, spec, &[], false).unwrap_or_else(|e| panic!("resolving {spec:?}: {e}"))
}

// app's supplementary groups: wheel (10), audio (29), dup-member (60); `app` (1000) is
// skipped because it is named like the user, `staff` (52) comes after the first `staff`
// but matches by membership, not by name.
const APP_SUPPLEMENTARY: [u32; 4] = [10, 29, 52, 60];

fn with_primary(primary: u32, supplementary: &[u32]) -> Vec<u32> {
    let mut all = supplementary.to_vec();
    all.push(primary);
    all.sort_unstable();
    all.dedup();
    all
}

#[test]
fn empty_spec_is_root_with_roots_groups() {
    let root = standard();
    assert_eq!(
        ok(root.path(), ""),
        user(0, 0, &[0, 10], "/root", Some("root"))
    );
}

#[test]
fn name() {
    let root = standard();
    assert_eq!(
        ok(root.path(), "app"),
        user(
            1000,
            1000,
            &with_primary(1000, &APP_SUPPLEMENTARY),
            "/home/app",
            Some("app")
        )
    );
}

#[test]
fn uid_known_to_passwd_takes_its_gid_home_and_name() {
    let root = standard();
    assert_eq!(ok(root.path(), "1000"), ok(root.path(), "app"));
}

#[test]
fn uid_unknown_to_passwd_gets_gid_0_and_home_slash() {
    let root = standard();
    assert_eq!(ok(root.path(), "4242"), user(4242, 0, &[0], "/", None));
}

#[test]
fn uid_colon_gid() {
    let root = standard();
    assert_eq!(
        ok(root.path(), "1000:44"),
        user(
            1000,
            44,
            &with_primary(44, &APP_SUPPLEMENTARY),
            "/home/app",
            Some("app")
        )
    );
    assert_eq!(
        ok(root.path(), "4242:4343"),
        user(4242, 4343, &[4343], "/", None)
    );
}

#[test]
fn name_colon_group() {
    let root = standard();
    let got = ok(root.path(), "app:video");
    assert_eq!((got.uid, got.gid), (1000, 44));
    assert_eq!(got.additional_gids, with_primary(44, &APP_SUPPLEMENTARY));
}

#[test]
fn uid_colon_group() {
    let root = standard();
    let got = ok(root.path(), "4242:staff");
    // The first `staff` line wins (50, not 52); an unknown uid has no supplementary groups.
    assert_eq!(got, user(4242, 50, &[50], "/", None));
}

#[test]
fn name_colon_gid() {
    let root = standard();
    let got = ok(root.path(), "daemon:7");
    assert_eq!(got, user(1, 7, &[7], "/usr/sbin", Some("daemon")));
}

#[test]
fn extra_gids_are_merged_sorted_and_deduplicated() {
    let root = standard();
    let got = resolve(root.path(), "app", &[29, 5, 5, 1000, 7000], false).expect("resolve");
    assert_eq!(got.additional_gids, [5, 10, 29, 52, 60, 1000, 7000]);
}

#[test]
fn strict_groups_leave_the_images_group_file_out() {
    let root = standard();
    // The primary group and what the request names; none of /etc/group's memberships.
    let got = resolve(root.path(), "app", &[29, 7000], true).expect("resolve");
    assert_eq!(got.additional_gids, [29, 1000, 7000]);
}

#[test]
fn first_match_wins_and_malformed_lines_are_skipped() {
    let root = standard();
    // `app` appears twice: uid 1000 wins. `badnum`, `short` and the comment are skipped.
    assert_eq!(ok(root.path(), "app").uid, 1000);
    assert!(matches!(
        resolve(root.path(), "badnum", &[], false),
        Err(UserError::UnknownUser { .. })
    ));
    assert!(matches!(
        resolve(root.path(), "short", &[], false),
        Err(UserError::UnknownUser { .. })
    ));
    assert!(matches!(
        resolve(root.path(), "# a comment", &[], false),
        Err(UserError::UnknownUser { .. })
    ));
    // A commented-out group does not count, nor does one with a non-numeric gid.
    assert!(matches!(
        resolve(root.path(), "app:bad", &[], false),
        Err(UserError::UnknownGroup { .. })
    ));
}

#[test]
fn empty_home_defaults_to_slash_and_lines_are_trimmed() {
    let root = standard();
    assert_eq!(
        ok(root.path(), "nohome"),
        user(1002, 1002, &[1002], "/", Some("nohome"))
    );
    assert_eq!(
        ok(root.path(), "spaced"),
        user(1003, 1003, &[1003], "/home/spaced", Some("spaced"))
    );
}

#[test]
fn unknown_user_names_the_user_and_the_file() {
    let root = standard();
    let err = resolve(root.path(), "nobody-here", &[], false).expect_err("unknown");
    assert!(matches!(err, UserError::UnknownUser { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("\"nobody-here\""), "{msg}");
    assert!(
        msg.contains(&root.path().join("etc/passwd").display().to_string()),
        "{msg}"
    );
    assert_eq!(err.kind(), ErrorKind::FailedPrecondition);
}

#[test]
fn unknown_group_names_the_group_and_the_file() {
    let root = standard();
    let err = resolve(root.path(), "app:nogroup", &[], false).expect_err("unknown");
    assert!(matches!(err, UserError::UnknownGroup { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("\"nogroup\""), "{msg}");
    assert!(
        msg.contains(&root.path().join("etc/group").display().to_string()),
        "{msg}"
    );
}

#[test]
fn invalid_specs_are_rejected() {
    let root = standard();
    for (spec, reason) in [
        ("a:b:c", "more than one ':'"),
        (":", "empty user"),
        (":0", "empty user"),
        ("app:", "empty group"),
        ("2147483648", "uid out of range"),
        ("99999999999999999999999", "uid out of range"),
        ("-1", "uid out of range"),
        ("0:-5", "gid out of range"),
    ] {
        match resolve(root.path(), spec, &[], false) {
            Err(UserError::InvalidSpec { spec: s, reason: r }) => {
                assert_eq!((s.as_str(), r), (spec, reason));
            }
            other => panic!("{spec:?}: expected InvalidSpec, got {other:?}"),
        }
    }
    assert_eq!(ok(root.path(), "2147483647").uid, 2_147_483_647);
    let err = resolve(root.path(), "a:b:c", &[], false).expect_err("invalid");
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
}

#[test]
fn missing_files_allow_numeric_specs_only() {
    let root = rootfs(&[]);
    assert_eq!(ok(root.path(), ""), user(0, 0, &[0], "/", None));
    assert_eq!(ok(root.path(), "1000"), user(1000, 0, &[0], "/", None));
    assert_eq!(
        ok(root.path(), "1000:1000"),
        user(1000, 1000, &[1000], "/", None)
    );
    let err = resolve(root.path(), "app", &[], false).expect_err("no passwd");
    assert!(matches!(err, UserError::NoPasswdFile { .. }), "{err:?}");
    assert!(err.to_string().contains("no /etc/passwd"), "{err}");
    let err = resolve(root.path(), "1000:staff", &[], false).expect_err("no group");
    assert!(matches!(err, UserError::NoGroupFile { .. }), "{err:?}");
    assert!(err.to_string().contains("no /etc/group"), "{err}");
}

#[test]
fn passwd_without_group_file_still_resolves_names() {
    let root = rootfs(&[("etc/passwd", PASSWD_TEXT)]);
    assert_eq!(
        ok(root.path(), "app"),
        user(1000, 1000, &[1000], "/home/app", Some("app"))
    );
}

#[test]
fn etc_being_a_file_counts_as_missing() {
    let root = rootfs(&[("etc", "not a directory")]);
    assert_eq!(ok(root.path(), "5:6"), user(5, 6, &[6], "/", None));
}

#[test]
fn absolute_symlink_to_shadow_resolves_inside_the_rootfs() {
    let root = rootfs(&[
        // A fake "shadow" in the image, in passwd format so reading it is observable.
        ("etc/shadow", "app:x:555:556::/inside:/bin/sh\n"),
        ("etc/group", GROUP_TEXT),
    ]);
    symlink("/etc/shadow", root.path().join("etc/passwd")).expect("symlink");
    let got = ok(root.path(), "app");
    assert_eq!((got.uid, got.gid, got.home.as_str()), (555, 556, "/inside"));
}

#[test]
fn absolute_symlink_to_a_host_file_missing_in_the_image_is_just_missing() {
    let root = rootfs(&[]);
    fs::create_dir(root.path().join("etc")).expect("mkdir");
    // The host has /etc/shadow (or at least /etc/hostname); the image does not.
    symlink("/etc/hostname", root.path().join("etc/passwd")).expect("symlink");
    let err = resolve(root.path(), "root", &[], false).expect_err("must not read the host file");
    assert!(matches!(err, UserError::NoPasswdFile { .. }), "{err:?}");
}

#[test]
fn dot_dot_chains_stay_inside() {
    let root = rootfs(&[("real/etc/passwd", "app:x:777:778::/r:/bin/sh\n")]);
    symlink("../../../../../../../real/etc", root.path().join("etc")).expect("symlink");
    assert_eq!(ok(root.path(), "app").uid, 777);
}

#[test]
fn relative_symlink_in_a_subdirectory_is_resolved_from_its_directory() {
    let root = rootfs(&[("usr/share/base/passwd", "app:x:1:2::/b:/bin/sh\n")]);
    fs::create_dir(root.path().join("etc")).expect("mkdir");
    symlink("../usr/share/base/passwd", root.path().join("etc/passwd")).expect("symlink");
    assert_eq!(ok(root.path(), "app").uid, 1);
}

#[test]
fn dot_dot_after_a_symlink_climbs_from_its_target() {
    let root = rootfs(&[
        ("a/etc/passwd", "app:x:3:4::/a:/bin/sh\n"),
        ("etc/passwd", ""),
    ]);
    fs::create_dir(root.path().join("a/b")).expect("mkdir");
    fs::remove_file(root.path().join("etc/passwd")).expect("rm");
    symlink("a/b", root.path().join("link")).expect("symlink");
    // Physical semantics, as the kernel resolves it: link/.. is a/, not the root.
    symlink("/link/../etc/passwd", root.path().join("etc/passwd")).expect("symlink");
    assert_eq!(ok(root.path(), "app").uid, 3);
}

#[test]
fn symlink_loops_are_cut_off() {
    let root = rootfs(&[]);
    fs::create_dir(root.path().join("etc")).expect("mkdir");
    symlink("group", root.path().join("etc/passwd")).expect("symlink");
    symlink("/etc/passwd", root.path().join("etc/group")).expect("symlink");
    let err = resolve(root.path(), "0", &[], false).expect_err("loop");
    assert!(matches!(err, UserError::TooManySymlinks { .. }), "{err:?}");
    assert!(err.to_string().contains("more than 40 symlinks"), "{err}");
}

#[test]
fn passwd_that_is_a_directory_is_refused() {
    let root = rootfs(&[("etc/passwd/x", "")]);
    let err = resolve(root.path(), "0", &[], false).expect_err("directory");
    assert!(matches!(err, UserError::NotRegularFile { .. }), "{err:?}");
    assert!(err.to_string().contains("etc/passwd"), "{err}");
}

#[test]
fn passwd_that_is_a_fifo_is_refused_without_blocking() {
    let root = rootfs(&[]);
    fs::create_dir(root.path().join("etc")).expect("mkdir");
    crate::sys::fs::mkfifo(&root.path().join("etc/passwd"), 0o644).expect("mkfifo");
    let err = resolve(root.path(), "app", &[], false).expect_err("fifo");
    assert!(matches!(err, UserError::NotRegularFile { .. }), "{err:?}");
}

#[test]
fn oversized_passwd_is_refused() {
    let root = rootfs(&[("etc/passwd", "")]);
    let file = fs::OpenOptions::new()
        .write(true)
        .open(root.path().join("etc/passwd"))
        .expect("open");
    // Sparse: no 16 MiB is actually written.
    file.set_len(MAX_DB_BYTES + 1).expect("set_len");
    let err = resolve(root.path(), "0", &[], false).expect_err("too large");
    assert!(matches!(err, UserError::TooLarge { .. }), "{err:?}");
}

#[test]
fn non_utf8_lines_are_skipped() {
    let dir = rootfs(&[]);
    fs::create_dir(dir.path().join("etc")).expect("mkdir");
    let mut passwd = b"bad\xff:x:9:9::/x:/bin/sh\n".to_vec();
    passwd.extend_from_slice(b"good:x:8:8::/g:/bin/sh\n");
    fs::write(dir.path().join("etc/passwd"), passwd).expect("write");
    assert_eq!(ok(dir.path(), "good").uid, 8);
    assert_eq!(ok(dir.path(), "9").name, None);
}
