//! `disk/du` against trees whose figures the tests work out on their own: by hand from
//! `lstat` of each known inode, and with GNU `du -s -x` and `find`.

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use super::*;
use crate::isolators::disk::walk::{walk_with, Failed};

/// Allocated bytes and inode count of the given paths, by hand: `lstat` each, count each
/// inode once.
fn by_hand(paths: &[PathBuf]) -> DiskUsage {
    let mut seen = HashSet::new();
    let mut usage = DiskUsage::default();
    for p in paths {
        let m = fs::symlink_metadata(p).expect("lstat");
        if seen.insert((m.dev(), m.ino())) {
            usage.bytes += m.blocks() * 512;
            usage.inodes += 1;
        }
    }
    usage
}

/// `du -s -x` of `dirs` together, in bytes and in inodes (GNU du counts a hard-linked
/// inode once in both modes).
fn gnu_du(dirs: &[&Path]) -> Option<DiskUsage> {
    let run = |mode: &str| -> Option<u64> {
        let out = Command::new("du")
            .args(["-s", "-x", "-c", mode])
            .args(dirs)
            .output()
            .ok()?;
        assert!(
            out.status.success(),
            "du failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).expect("du output is UTF-8");
        // `-c`: the last line is the grand total, with hard links across operands once.
        let total = text.lines().last()?;
        total.split_whitespace().next()?.parse().ok()
    };
    Some(DiskUsage {
        bytes: run("--block-size=1")?,
        inodes: run("--inodes")?,
    })
}

fn find_count(dir: &Path) -> u64 {
    let out = Command::new("find")
        .arg(dir)
        .arg("-xdev")
        .output()
        .expect("find");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).lines().count() as u64
}

struct Known {
    _tmp: tempfile::TempDir,
    _outside: tempfile::TempDir,
    root: PathBuf,
    /// Every path in the tree, the root first; the hard link too.
    paths: Vec<PathBuf>,
}

/// The known tree:
/// ```text
/// root/
///   small.txt       1 byte ("a")
///   big.bin         1 MiB of 0xab
///   sparse.bin      10 MiB long, one byte written at the end
///   sub/
///     nested.txt    10 000 bytes of "x"
///     big.link      hard link to ../big.bin
///   to-outside ->   symlink to a 4 MiB file outside the tree
///   empty/
/// ```
fn known_tree() -> Known {
    let tmp = tempfile::tempdir().expect("tempdir");
    let outside = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("root");
    fs::create_dir(&root).expect("mkdir root");
    fs::write(root.join("small.txt"), b"a").expect("write");
    fs::write(root.join("big.bin"), vec![0xab; 1 << 20]).expect("write");
    let sparse = fs::File::create(root.join("sparse.bin")).expect("create");
    sparse.set_len(10 << 20).expect("truncate");
    std::os::unix::fs::FileExt::write_at(&sparse, b"z", (10 << 20) - 1).expect("write_at");
    sparse.sync_all().expect("fsync");
    fs::create_dir(root.join("sub")).expect("mkdir");
    fs::write(root.join("sub/nested.txt"), vec![b'x'; 10_000]).expect("write");
    fs::hard_link(root.join("big.bin"), root.join("sub/big.link")).expect("link");
    let far = outside.path().join("far.bin");
    fs::write(&far, vec![1u8; 4 << 20]).expect("write");
    std::os::unix::fs::symlink(&far, root.join("to-outside")).expect("symlink");
    fs::create_dir(root.join("empty")).expect("mkdir");
    let paths = [
        "",
        "small.txt",
        "big.bin",
        "sparse.bin",
        "sub",
        "sub/nested.txt",
        "sub/big.link",
        "to-outside",
        "empty",
    ]
    .iter()
    .map(|p| {
        if p.is_empty() {
            root.clone()
        } else {
            root.join(p)
        }
    })
    .collect();
    Known {
        _tmp: tmp,
        _outside: outside,
        root,
        paths,
    }
}

#[test]
fn known_tree_matches_du_find_and_hand_arithmetic() {
    let k = known_tree();
    let got = measure(&[&k.root]).expect("measure");

    let hand = by_hand(&k.paths);
    assert_eq!(got, hand, "walker vs lstat of every known path");
    // 9 names, 8 inodes: the hard link is the same inode as big.bin.
    assert_eq!(got.inodes, 8);
    assert_eq!(find_count(&k.root), 9);
    // Allocated, not apparent: the 4 MiB file behind the symlink is not in, the sparse
    // file costs far less than its 10 MiB, big.bin is in once.
    assert!(got.bytes >= (1 << 20) + 10_000, "{got:?}");
    assert!(got.bytes < 2 << 20, "{got:?}");

    match gnu_du(&[&k.root]) {
        Some(du) => assert_eq!(got, du, "walker vs du -s -x"),
        None => eprintln!("skipping the du comparison: GNU du not found"),
    }
}

#[test]
fn hard_links_and_nested_roots_count_once_across_dirs() {
    let k = known_tree();
    let other = k.root.parent().expect("parent").join("other");
    fs::create_dir(&other).expect("mkdir");
    fs::hard_link(k.root.join("big.bin"), other.join("again.bin")).expect("link");
    fs::write(other.join("own.txt"), b"own").expect("write");

    let one = measure(&[&k.root]).expect("measure root");
    let both = measure(&[&k.root, &other]).expect("measure both");
    let own = fs::symlink_metadata(other.join("own.txt")).expect("lstat");
    let other_dir = fs::symlink_metadata(&other).expect("lstat");
    assert_eq!(
        both.inodes,
        one.inodes + 2,
        "other/ and own.txt; again.bin is big.bin"
    );
    assert_eq!(
        both.bytes,
        one.bytes + (own.blocks() + other_dir.blocks()) * 512
    );
    if let Some(du) = gnu_du(&[&k.root, &other]) {
        assert_eq!(both, du, "walker vs du -s -x -c of both");
    }

    // A root inside another adds nothing, in either order.
    let sub = k.root.join("sub");
    assert_eq!(measure(&[&k.root, &sub]).expect("measure"), one);
    assert_eq!(measure(&[&sub, &k.root]).expect("measure"), one);
}

#[test]
fn a_symlink_root_is_refused_and_a_missing_root_names_its_path() {
    let k = known_tree();
    let link = k.root.parent().expect("parent").join("root-link");
    std::os::unix::fs::symlink(&k.root, &link).expect("symlink");
    let err = measure(&[&link]).expect_err("symlink root measured");
    assert!(err.to_string().contains(&*link.to_string_lossy()), "{err}");

    let missing = k.root.join("no-such-dir");
    let err = measure(&[&missing]).expect_err("missing root measured");
    assert_eq!(
        err.to_string(),
        format!(
            "disk/du: cannot open directory {}: No such file or directory (os error 2)",
            missing.display()
        )
    );
}

/// Builds `a/ b/ c/` each with one file, and returns the root.
fn three_dirs(tmp: &Path) -> PathBuf {
    let root = tmp.join("root");
    for d in ["a", "b", "c"] {
        fs::create_dir_all(root.join(d).join("deeper")).expect("mkdir");
        fs::write(root.join(d).join("f"), vec![b'q'; 5000]).expect("write");
    }
    root
}

#[test]
fn a_directory_vanishing_mid_walk_is_skipped() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = three_dirs(tmp.path());
    let a = fs::symlink_metadata(root.join("a")).expect("lstat").ino();
    let c = fs::symlink_metadata(root.join("c")).expect("lstat").ino();

    // Entering a/ (names are walked in order), b/ and c/ are still pending in root's
    // list: b/ disappears before it is reached, c/ right after it is opened.
    let mut counter = Counter::default();
    let (b_dir, c_dir) = (root.join("b"), root.join("c"));
    walk_with(&root, 64, |event| {
        if let Event::Dir { meta, .. } = &event {
            if meta.ino == a {
                fs::remove_dir_all(&b_dir).expect("remove b");
            }
            if meta.ino == c {
                fs::remove_dir_all(&c_dir).expect("remove c");
            }
        }
        Ok::<_, Failed>(counter.visit(&event))
    })
    .expect("walk survives vanishing directories");

    // root, a/, a/deeper/, a/f and c/ itself (seen before it went).
    let mut expected = by_hand(&[
        root.clone(),
        root.join("a"),
        root.join("a/deeper"),
        root.join("a/f"),
    ]);
    expected.inodes += 1;
    assert_eq!(counter.usage.inodes, expected.inodes);
    assert!(
        counter.usage.bytes >= expected.bytes,
        "{:?} vs {expected:?}",
        counter.usage
    );
}

/// Makes a chain of `depth` directories `d/d/d/…` below `root` (deeper than PATH_MAX
/// allows a path to name), one file in every tenth, walking down by descriptor.
fn deep_chain(root: &Path, depth: usize) -> u64 {
    use rustix::fs::{mkdirat, openat, Mode, OFlags};
    let mut dir = openat(
        rustix::fs::CWD,
        root,
        OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .expect("open root");
    let mut inodes = 1;
    for level in 0..depth {
        mkdirat(&dir, "d", Mode::from_raw_mode(0o755)).expect("mkdirat");
        if level % 10 == 0 {
            let f = openat(
                &dir,
                "f",
                OFlags::CREATE | OFlags::WRONLY | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o644),
            )
            .expect("create f");
            rustix::io::write(&f, &[7u8; 3000]).expect("write f");
            inodes += 1;
        }
        dir = openat(
            &dir,
            "d",
            OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .expect("open d");
        inodes += 1;
    }
    inodes
}

#[test]
fn a_tree_deeper_than_path_max_and_the_descriptor_budget_is_measured() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("deep");
    fs::create_dir(&root).expect("mkdir");
    let inodes = deep_chain(&root, 3000);

    let got = measure(&[&root]).expect("measure deep tree");
    assert_eq!(got.inodes, inodes);
    if let Some(du) = gnu_du(&[&root]) {
        assert_eq!(got, du, "walker vs du on a 3000-deep chain");
    }

    // With two descriptors (the root and the current directory) every step back up is a
    // reopen through `..`, and the figure is the same.
    let mut counter = Counter::default();
    walk_with(&root, 2, |e| Ok::<_, Failed>(counter.visit(&e))).expect("walk");
    assert_eq!(counter.usage, got);
}

#[test]
fn a_directory_moved_away_mid_walk_is_found_again_from_the_root() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("root");
    // root/a/{b/c/d/f, z1, z2/g}: names are walked in order, so b/ is walked before z1
    // and z2, which stay pending in a's list while b/ is walked.
    fs::create_dir_all(root.join("a/b/c/d")).expect("mkdir");
    fs::write(root.join("a/b/c/d/f"), b"f").expect("write");
    fs::write(root.join("a/z1"), b"z1").expect("write");
    fs::create_dir(root.join("a/z2")).expect("mkdir");
    fs::write(root.join("a/z2/g"), b"g").expect("write");
    let d = fs::symlink_metadata(root.join("a/b/c/d"))
        .expect("lstat")
        .ino();
    let away = tmp.path().join("away");

    // With two descriptors, a/ is closed while d/ is walked; b/ then leaves the tree, so
    // on the way back `..` of b/ is no longer a/ and a/ must be found again from the root.
    let mut counter = Counter::default();
    walk_with(&root, 2, |event| {
        if matches!(&event, Event::Dir { meta, .. } if meta.ino == d) {
            fs::rename(root.join("a/b"), &away).expect("move b away");
        }
        Ok::<_, Failed>(counter.visit(&event))
    })
    .expect("walk");
    // root a b c d f z1 z2 g: b/ was counted on the way in; a/'s pending z1, z2 still are.
    assert_eq!(counter.usage.inodes, 9);
}

/// Unmounts on drop, so a failed assertion leaves nothing mounted.
struct Unmount(Vec<PathBuf>);

impl Drop for Unmount {
    fn drop(&mut self) {
        for target in self.0.iter().rev() {
            let _ = crate::sys::mount::detach(target);
        }
    }
}

#[test]
fn mounts_below_the_root_are_not_counted_needs_root() {
    crate::provisioner::testing::require_root!("bind and tmpfs mounts");
    let k = known_tree();
    let elsewhere = k.root.parent().expect("parent").join("elsewhere");
    fs::create_dir(&elsewhere).expect("mkdir");
    fs::write(elsewhere.join("payload"), vec![9u8; 2 << 20]).expect("write");
    for d in ["bind-here", "tmpfs-here"] {
        fs::create_dir(k.root.join(d)).expect("mkdir");
    }
    fs::write(k.root.join("file-bind-here"), b"").expect("write");
    let before = measure(&[&k.root]).expect("measure");
    let mountpoints = by_hand(&[
        k.root.join("bind-here"),
        k.root.join("tmpfs-here"),
        k.root.join("file-bind-here"),
    ]);

    let mut guard = Unmount(Vec::new());
    // A bind mount from the same filesystem: same st_dev, only the mount id tells.
    crate::sys::mount::bind(&elsewhere, &k.root.join("bind-here")).expect("bind mount");
    guard.0.push(k.root.join("bind-here"));
    crate::sys::mount::bind(&elsewhere.join("payload"), &k.root.join("file-bind-here"))
        .expect("file bind mount");
    guard.0.push(k.root.join("file-bind-here"));
    crate::sys::mount::mount_fs(
        "tmpfs",
        &k.root.join("tmpfs-here"),
        crate::sys::mount::MsFlags::empty(),
        Some("size=8m"),
    )
    .expect("mount tmpfs");
    guard.0.push(k.root.join("tmpfs-here"));
    fs::write(k.root.join("tmpfs-here/t"), vec![1u8; 1 << 20]).expect("write into tmpfs");

    let after = measure(&[&k.root]).expect("measure");
    // The mount points themselves are hidden by what is mounted on them, as with du -x.
    assert_eq!(after.inodes, before.inodes - mountpoints.inodes);
    assert_eq!(after.bytes, before.bytes - mountpoints.bytes);
    drop(guard);
    assert_eq!(
        measure(&[&k.root]).expect("measure"),
        before,
        "unmounted: all back"
    );
}

/// `cargo test --lib du_bench -- --ignored --nocapture` (or hack/bench-du.sh): 100 000
/// files in 100 directories, timed against GNU du on the same tree.
#[test]
#[ignore = "benchmark: builds a 100k-file tree"]
fn du_bench_100k_files() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("tree");
    for d in 0..100 {
        let dir = root.join(format!("d{d:03}"));
        fs::create_dir_all(&dir).expect("mkdir");
        for f in 0..1000 {
            fs::write(dir.join(format!("f{f:04}")), [b'x'; 100]).expect("write");
        }
    }
    // Once to warm the dentry and inode caches, as the watcher's 15 s rounds find them.
    let first = measure(&[&root]).expect("measure");
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        let got = measure(&[&root]).expect("measure");
        best = best.min(t.elapsed().as_secs_f64());
        assert_eq!(got, first);
    }
    let t = Instant::now();
    let du = gnu_du(&[&root]);
    let du_time = t.elapsed().as_secs_f64() / 2.0; // two du runs (bytes, inodes)
    assert_eq!(Some(first), du);
    println!(
        "du bench: {} inodes, {} bytes: ucr measure best of 5 {:.1} ms; GNU du -s {:.1} ms",
        first.inodes,
        first.bytes,
        best * 1e3,
        du_time * 1e3
    );
}
