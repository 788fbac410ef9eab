//! What each kind of entry becomes on disk: contents, modes, owners, times, links,
//! devices, xattrs, and later entries replacing earlier ones.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use super::*;
use crate::provisioner::store::unpack::meta::parse_pax_time;
use crate::provisioner::store::unpack::OPAQUE_XATTR;
use crate::sys::fs::{self as sysfs, Timestamp};

#[test]
fn parses_pax_times() {
    let t = |s: &str| parse_pax_time(s.as_bytes());
    assert_eq!(t("12"), Some(Timestamp { secs: 12, nanos: 0 }));
    assert_eq!(
        t("12.5"),
        Some(Timestamp {
            secs: 12,
            nanos: 500_000_000
        })
    );
    assert_eq!(
        t("1.1234567891"),
        Some(Timestamp {
            secs: 1,
            nanos: 123_456_789
        })
    );
    assert_eq!(
        t("-1.25"),
        Some(Timestamp {
            secs: -2,
            nanos: 750_000_000
        })
    );
    assert_eq!(t("x"), None);
    assert_eq!(t(".5"), None);
}

#[test]
fn files_dirs_modes_mtimes_and_owners_as_root() {
    require_root!("chown to other uids and setuid bits");
    let layer = Layer::new()
        .owner(0, 0)
        .dir("./", 0o755)
        .owner(1000, 1001)
        .dir("home/user", 0o750)
        .file("home/user/.profile", 0o640, b"export A=1\n")
        .owner(0, 0)
        .file("usr/bin/sudo", 0o4755, b"#!/bin/true\n")
        .file("usr/bin/wall", 0o2755, b"")
        .dir("tmp", 0o1777)
        .file("tmp/later-child", 0o600, b"x")
        .bytes();
    let s = Scratch::new();
    let out = s.unpack(&layer).expect("unpack");
    let root = s.root();

    let home = fs::symlink_metadata(root.join("home/user")).expect("home");
    assert!(home.is_dir());
    assert_eq!(
        (home.uid(), home.gid(), home.mode() & 0o7777),
        (1000, 1001, 0o750)
    );
    let profile = fs::symlink_metadata(root.join("home/user/.profile")).expect("profile");
    assert_eq!(
        (profile.uid(), profile.gid(), profile.mode() & 0o7777),
        (1000, 1001, 0o640)
    );
    assert_eq!(
        fs::read(root.join("home/user/.profile")).expect("read"),
        b"export A=1\n"
    );
    assert_eq!(profile.mtime(), MTIME as i64);

    // setuid/setgid survive chown because the mode is set after it.
    let sudo = fs::symlink_metadata(root.join("usr/bin/sudo")).expect("sudo");
    assert_eq!(sudo.mode() & 0o7777, 0o4755);
    let wall = fs::symlink_metadata(root.join("usr/bin/wall")).expect("wall");
    assert_eq!(wall.mode() & 0o7777, 0o2755);

    // Directory mtimes are applied after their children were created.
    let tmp = fs::symlink_metadata(root.join("tmp")).expect("tmp");
    assert_eq!(tmp.mode() & 0o7777, 0o1777);
    assert_eq!(tmp.mtime(), MTIME as i64);
    assert_eq!(home.mtime(), MTIME as i64);
    let dest = fs::symlink_metadata(&root).expect("root");
    assert_eq!((dest.mtime(), dest.mode() & 0o7777), (MTIME as i64, 0o755));

    // `home` and `usr`, `usr/bin` were not listed: created 0755 with a fresh mtime.
    let usr = fs::symlink_metadata(root.join("usr")).expect("usr");
    assert_eq!(usr.mode() & 0o7777, 0o755);

    assert_eq!(out.size, 11 + 12 + 1);
    // home, home/user, .profile, usr, usr/bin, sudo, wall, tmp, later-child
    assert_eq!(out.inodes, 9);
    assert!(out.whiteouts.is_empty() && out.opaque_dirs.is_empty());
}

#[test]
fn files_and_modes_unprivileged() {
    let layer = Layer::new()
        .dir("etc", 0o755)
        .file("etc/hostname", 0o644, b"box\n")
        .file("bin/run", 0o755, b"#!/bin/sh\n")
        .bytes();
    let s = Scratch::new();
    s.unpack(&layer).expect("unpack");
    let run = fs::symlink_metadata(s.root().join("bin/run")).expect("run");
    assert_eq!(run.mode() & 0o7777, 0o755);
    assert_eq!(run.mtime(), MTIME as i64);
    assert_eq!(
        fs::read(s.root().join("etc/hostname")).expect("read"),
        b"box\n"
    );
    let etc = fs::symlink_metadata(s.root().join("etc")).expect("etc");
    assert_eq!(etc.mtime(), MTIME as i64);
}

#[test]
fn symlinks_and_hardlinks_are_preserved() {
    let layer = Layer::new()
        .file("etc/passwd.real", 0o644, b"root:x:0:0\n")
        .symlink("etc/passwd", "/etc/passwd.real")
        .symlink("etc/rel", "../usr/lib")
        .hardlink("etc/passwd.hard", "etc/passwd.real")
        .hardlink("etc/passwd.abs", "/etc/passwd.real")
        .hardlink("etc/link-to-symlink", "./etc/passwd")
        .bytes();
    let s = Scratch::new();
    let out = s.unpack(&layer).expect("unpack");
    let root = s.root();
    assert_eq!(
        fs::read_link(root.join("etc/passwd")).expect("readlink"),
        Path::new("/etc/passwd.real")
    );
    assert_eq!(
        fs::read_link(root.join("etc/rel")).expect("readlink"),
        Path::new("../usr/lib")
    );
    let link = fs::symlink_metadata(root.join("etc/passwd")).expect("lstat");
    assert_eq!(link.mtime(), MTIME as i64);
    let real = fs::symlink_metadata(root.join("etc/passwd.real")).expect("real");
    for name in ["etc/passwd.hard", "etc/passwd.abs"] {
        let hard = fs::symlink_metadata(root.join(name)).expect("hard");
        assert_eq!(hard.ino(), real.ino(), "{name}");
    }
    assert_eq!(real.nlink(), 3);
    let to_symlink = fs::symlink_metadata(root.join("etc/link-to-symlink")).expect("lstat");
    assert!(to_symlink.file_type().is_symlink());
    assert_eq!(to_symlink.ino(), link.ino());
    // etc, passwd.real, two symlinks; hard links add no inodes.
    assert_eq!(out.inodes, 4);
}

#[test]
fn symlink_ownership_as_root() {
    require_root!("lchown to other uids");
    let layer = Layer::new()
        .owner(33, 44)
        .symlink("link", "/nowhere")
        .bytes();
    let s = Scratch::new();
    s.unpack(&layer).expect("unpack");
    let m = fs::symlink_metadata(s.root().join("link")).expect("lstat");
    assert_eq!((m.uid(), m.gid()), (33, 44));
}

#[test]
fn replacing_entries_follows_tar_order() {
    let layer = Layer::new()
        .dir("x", 0o755)
        .file("x/child", 0o644, b"1")
        .file("x", 0o644, b"now a file")
        .file("y", 0o644, b"a file")
        .dir("y", 0o700)
        .dir("z", 0o755)
        .file("z/keep", 0o644, b"k")
        .dir("z", 0o711)
        .file("w", 0o644, b"old")
        .file("w", 0o600, b"new")
        .bytes();
    let s = Scratch::new();
    s.unpack(&layer).expect("unpack");
    let root = s.root();
    assert_eq!(fs::read(root.join("x")).expect("x"), b"now a file");
    assert!(fs::symlink_metadata(root.join("y")).expect("y").is_dir());
    assert_eq!(fs::read(root.join("z/keep")).expect("merged"), b"k");
    let z = fs::symlink_metadata(root.join("z")).expect("z");
    assert_eq!(z.mode() & 0o7777, 0o711);
    assert_eq!(fs::read(root.join("w")).expect("w"), b"new");
}

#[test]
fn device_nodes_and_fifos_as_root() {
    require_root!("mknod of devices and chown");
    let layer = Layer::new()
        .owner(0, 5)
        .device("dev/null", EntryType::Char, 0o666, 1, 3)
        .device("dev/loop0", EntryType::Block, 0o660, 7, 0)
        .device("run/fifo", EntryType::Fifo, 0o620, 0, 0)
        .bytes();
    let s = Scratch::new();
    s.unpack(&layer).expect("unpack");
    let null = fs::symlink_metadata(s.root().join("dev/null")).expect("null");
    assert!(null.file_type().is_char_device());
    assert_eq!(
        (null.rdev(), null.mode() & 0o7777, null.gid()),
        (0x103, 0o666, 5)
    );
    let loop0 = fs::symlink_metadata(s.root().join("dev/loop0")).expect("loop0");
    assert!(loop0.file_type().is_block_device());
    assert_eq!((loop0.rdev(), loop0.mode() & 0o7777), (0x700, 0o660));
    let fifo = fs::symlink_metadata(s.root().join("run/fifo")).expect("fifo");
    assert!(fifo.file_type().is_fifo());
    assert_eq!((fifo.mode() & 0o7777, fifo.mtime()), (0o620, MTIME as i64));
}

#[test]
fn fifo_unprivileged() {
    let layer = Layer::new()
        .device("fifo", EntryType::Fifo, 0o640, 0, 0)
        .bytes();
    let s = Scratch::new();
    s.unpack(&layer).expect("unpack");
    let fifo = fs::symlink_metadata(s.root().join("fifo")).expect("fifo");
    assert!(fifo.file_type().is_fifo());
    assert_eq!(fifo.mode() & 0o7777, 0o640);
}

#[test]
fn pax_xattrs_are_filtered_and_capabilities_survive_chown() {
    require_root!("security.capability and chown");
    // VFS_CAP_REVISION_2 with the effective flag, permitting cap_net_bind_service.
    let cap: [u8; 20] = [1, 0, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    let layer = Layer::new()
        .owner(1000, 1000)
        .pax(&[
            ("SCHILY.xattr.user.origin", b"layer"),
            ("SCHILY.xattr.trusted.overlay.opaque", b"y"),
            ("SCHILY.xattr.trusted.overlay.redirect", b"/etc"),
            (
                "SCHILY.xattr.security.selinux",
                b"system_u:object_r:shadow_t:s0",
            ),
            ("SCHILY.xattr.security.capability", &cap),
            ("mtime", b"1600000000.25"),
        ])
        .file("bin/ping", 0o755, b"\x7fELF")
        .pax(&[("SCHILY.xattr.trusted.overlay.opaque", b"y")])
        .dir("forged", 0o755)
        .bytes();
    let s = Scratch::new();
    s.unpack(&layer).expect("unpack");
    let ping = s.root().join("bin/ping");
    let get = |p: &Path, name: &[u8]| sysfs::lgetxattr(p, name).expect("getxattr");
    assert_eq!(get(&ping, b"user.origin"), Some(b"layer".to_vec()));
    assert_eq!(get(&ping, b"security.capability"), Some(cap.to_vec()));
    assert_eq!(get(&ping, b"trusted.overlay.opaque"), None);
    assert_eq!(get(&ping, b"trusted.overlay.redirect"), None);
    let m = fs::symlink_metadata(&ping).expect("ping");
    assert_eq!((m.uid(), m.mode() & 0o7777), (1000, 0o755));
    assert_eq!((m.mtime(), m.mtime_nsec()), (MTIME as i64, 250_000_000));
    assert_eq!(get(&s.root().join("forged"), OPAQUE_XATTR), None);
}

#[test]
fn long_names_and_link_targets() {
    let long_dir = "d".repeat(120);
    let long_file = format!("{long_dir}/{}", "f".repeat(150));
    let long_target = format!("/{}", "t".repeat(200));
    let layer = Layer::new()
        .file(&long_file, 0o644, b"long")
        .symlink("short", &long_target)
        .hardlink("hard", &long_file)
        .bytes();
    let s = Scratch::new();
    s.unpack(&layer).expect("unpack");
    assert_eq!(fs::read(s.root().join(&long_file)).expect("long"), b"long");
    assert_eq!(
        fs::read_link(s.root().join("short")).expect("readlink"),
        Path::new(&long_target)
    );
    assert_eq!(fs::read(s.root().join("hard")).expect("hard"), b"long");
}
