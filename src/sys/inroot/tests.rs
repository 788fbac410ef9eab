use std::os::fd::AsRawFd;
use std::os::unix::fs::symlink;
use std::path::PathBuf;

use super::*;

/// Where the kernel says a descriptor points.
fn where_is(fd: &OwnedFd) -> PathBuf {
    std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).expect("readlink")
}

fn errno(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(0)
}

/// A rootfs shaped like a Debian image plus the two hostile links of the issue, inside a
/// parent directory that stands for the host (`host/`, `host/tmp`).
struct Fixture {
    _dir: tempfile::TempDir,
    host: PathBuf,
    root: PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let host = dir.path().join("host");
    let root = host.join("a/b/rootfs");
    for d in ["usr/bin", "etc", "run"] {
        std::fs::create_dir_all(root.join(d)).expect("mkdir");
    }
    std::fs::create_dir_all(host.join("tmp")).expect("mkdir");
    std::fs::create_dir_all(host.join("etc")).expect("mkdir");
    std::fs::create_dir(root.join("var")).expect("mkdir");
    symlink("usr/bin", root.join("bin")).expect("symlink");
    symlink("/run", root.join("var/run")).expect("symlink");
    symlink("/etc", root.join("vol")).expect("symlink");
    symlink("../../../../tmp", root.join("up")).expect("symlink");
    std::fs::write(root.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").expect("write");
    Fixture {
        _dir: dir,
        host,
        root,
    }
}

#[test]
fn existing_paths_resolve_through_symlinks_inside_the_root() {
    let f = fixture();
    let root = Root::open(&f.root).expect("open root");
    let fd = root.resolve(Path::new("/bin")).expect("bin");
    assert_eq!(where_is(&fd), f.root.join("usr/bin"));
    let fd = root.resolve(Path::new("var/run")).expect("var/run");
    assert_eq!(where_is(&fd), f.root.join("run"));
    let fd = root.resolve(Path::new("/")).expect("root itself");
    assert_eq!(where_is(&fd), f.root);
    let e = root.resolve(Path::new("/missing")).expect_err("missing");
    assert_eq!(errno(&e), libc::ENOENT);
}

#[test]
fn hostile_symlinks_create_inside_the_root_and_never_on_the_host() {
    let f = fixture();
    let root = Root::open(&f.root).expect("open root");
    // `/vol -> /etc`: the image's own /etc.
    let fd = root
        .resolve_or_create(Path::new("/vol/x"), Create::File)
        .expect("vol/x");
    assert_eq!(where_is(&fd), f.root.join("etc/x"));
    assert!(f.root.join("etc/x").is_file());
    // `/up -> ../../../../tmp`: `..` stops at the root, so it is the rootfs's /tmp.
    let fd = root
        .resolve_or_create(Path::new("/up/x/y"), Create::Dir)
        .expect("up/x/y");
    assert_eq!(where_is(&fd), f.root.join("tmp/x/y"));
    assert!(!f.host.join("etc/x").exists());
    assert!(!f.host.join("tmp/x").exists());
    // The same through `..` written in the path itself.
    let fd = root
        .resolve_or_create(Path::new("/../../../../tmp/z"), Create::Dir)
        .expect("dotdot");
    assert_eq!(where_is(&fd), f.root.join("tmp/z"));
    assert!(!f.host.join("tmp/z").exists());
}

#[test]
fn a_volume_under_var_run_lands_in_run() {
    let f = fixture();
    let root = Root::open(&f.root).expect("open root");
    let target = "/var/run/secrets/kubernetes.io/serviceaccount";
    let fd = root
        .resolve_or_create(Path::new(target), Create::Dir)
        .expect("token dir");
    assert_eq!(
        where_is(&fd),
        f.root.join("run/secrets/kubernetes.io/serviceaccount")
    );
    assert!(std::fs::symlink_metadata(f.root.join("var/run"))
        .expect("lstat")
        .file_type()
        .is_symlink());
}

#[test]
fn a_dangling_symlink_has_its_target_created_inside_the_root() {
    let f = fixture();
    std::fs::remove_dir(f.root.join("run")).expect("rmdir run");
    let root = Root::open(&f.root).expect("open root");
    let fd = root
        .resolve_or_create(Path::new("/var/run/app"), Create::Dir)
        .expect("through dangling link");
    assert_eq!(where_is(&fd), f.root.join("run/app"));
}

#[test]
fn loops_files_in_the_way_and_magic_links_are_refused() {
    let f = fixture();
    symlink("loop2", f.root.join("loop1")).expect("symlink");
    symlink("loop1", f.root.join("loop2")).expect("symlink");
    let root = Root::open(&f.root).expect("open root");
    for create in [None, Some(Create::Dir)] {
        let e = match create {
            None => root.resolve(Path::new("/loop1/x")),
            Some(c) => root.resolve_or_create(Path::new("/loop1/x"), c),
        }
        .expect_err("loop");
        assert_eq!(errno(&e), libc::ELOOP, "{e}");
    }
    let e = root
        .resolve_or_create(Path::new("/etc/passwd/x"), Create::Dir)
        .expect_err("file in the way");
    assert_eq!(errno(&e), libc::ENOTDIR, "{e}");
    // From the host's root, /proc/self/root is a magic link: refused by openat2, and by
    // our own walk before it could create anything.
    let host = Root::open(Path::new("/")).expect("open /");
    let e = host
        .resolve(Path::new("/proc/self/root/etc"))
        .expect_err("magic");
    assert_eq!(errno(&e), libc::ELOOP, "{e}");
    let e = host
        .walk(
            Path::new("/proc/self/root/ucr-must-not-exist"),
            Some(Create::Dir),
        )
        .expect_err("magic");
    assert_eq!(errno(&e), libc::ELOOP, "{e}");
    assert!(!Path::new("/ucr-must-not-exist").exists());
}

#[test]
fn only_regular_files_are_opened_for_reading() {
    use std::io::Read;
    let f = fixture();
    symlink("/etc/passwd", f.root.join("etc/passwd-link")).expect("symlink");
    nix::unistd::mkfifo(&f.root.join("etc/fifo"), nix::sys::stat::Mode::S_IRWXU).expect("fifo");
    let root = Root::open(&f.root).expect("open root");
    let (mut file, len) = root
        .open_regular_file(Path::new("/etc/passwd-link"))
        .expect("through a link");
    let mut text = String::new();
    file.read_to_string(&mut text).expect("read");
    assert!(text.starts_with("root:"));
    assert_eq!(len, text.len() as u64);
    let e = root
        .open_regular_file(Path::new("/etc/fifo"))
        .expect_err("fifo");
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
}

#[test]
fn beneath_helpers_refuse_every_symlink() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = Root::open(dir.path()).expect("open");
    mkdir_all_beneath(base.as_fd(), Path::new("c/0"), 0o755).expect("mkdir");
    let mut f = open_append_beneath(base.as_fd(), Path::new("c/0/0.log"), 0o640).expect("log");
    std::io::Write::write_all(&mut f, b"x").expect("write");
    let outside = tempfile::tempdir().expect("tempdir");
    symlink(outside.path(), dir.path().join("evil")).expect("symlink");
    symlink(outside.path().join("f"), dir.path().join("c/0/1.log")).expect("symlink");
    let e = mkdir_all_beneath(base.as_fd(), Path::new("evil/x"), 0o755).expect_err("dir");
    assert_eq!(errno(&e), libc::ENOTDIR, "{e}");
    let e = open_append_beneath(base.as_fd(), Path::new("c/0/1.log"), 0o640).expect_err("file");
    assert_eq!(errno(&e), libc::ELOOP, "{e}");
    let e = open_append_beneath(base.as_fd(), Path::new("evil/f"), 0o640).expect_err("dir link");
    assert_eq!(errno(&e), libc::ELOOP, "{e}");
    assert!(std::fs::read_dir(outside.path())
        .expect("list")
        .next()
        .is_none());
    assert!(mkdir_all_beneath(base.as_fd(), Path::new("../x"), 0o755).is_err());
}

#[test]
fn forty_symlinks_are_followed_and_forty_one_are_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("end"), "").expect("write");
    // l0 -> l1 -> … -> l{n-1} -> end: n symlinks to reach `end` from l0.
    let chain = |n: usize, prefix: &str| {
        for i in 0..n {
            let target = if i + 1 == n {
                "end".to_string()
            } else {
                format!("{prefix}{}", i + 1)
            };
            symlink(target, dir.path().join(format!("{prefix}{i}"))).expect("symlink");
        }
    };
    chain(40, "a");
    chain(41, "b");
    let root = Root::open(dir.path()).expect("open");
    for create in [None, Some(Create::File)] {
        let fd = root.walk(Path::new("a0"), create).expect("40 links");
        assert_eq!(where_is(&fd), dir.path().join("end"));
        let e = root.walk(Path::new("b0"), create).expect_err("41 links");
        assert_eq!(errno(&e), libc::ELOOP, "{e}");
    }
    assert_eq!(
        where_is(&root.resolve(Path::new("a0")).expect("kernel: 40")),
        dir.path().join("end")
    );
}
