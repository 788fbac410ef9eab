//! `disk/xfs`: range parsing and allocation without privileges; labelling and the
//! support check on a loop-mounted XFS the test makes (root and `mkfs.xfs` needed).

use std::fs;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::*;

fn range(s: &str) -> ProjectRange {
    ProjectRange::parse(s).expect("valid range")
}

#[test]
fn ranges_parse_in_mesos_and_bare_spellings() {
    assert_eq!(range(DEFAULT_PROJECT_RANGE).len(), 5001);
    assert_eq!(range("[5000-10000]"), range("5000-10000"));
    assert_eq!(range(" [ 5000 - 10000 ] "), range("5000-10000"));
    assert_eq!(range("[7-7]").len(), 1);
    // Several ranges, out of order and overlapping, merge.
    let r = range("[20-30,1-10,8-12,31-31]");
    assert_eq!(r.to_string(), "[1-12,20-31]");
    assert_eq!(r.len(), 24);
    assert!(r.contains(12) && r.contains(31) && !r.contains(13) && !r.contains(0));
    assert_eq!(range("[1-4294967295]").len(), 4_294_967_295);
}

#[test]
fn bad_ranges_say_what_is_wrong() {
    let cases = [
        ("", RangeProblem::Shape),
        ("[]", RangeProblem::Shape),
        ("5000", RangeProblem::Shape),
        ("[5000-10000", RangeProblem::Shape),
        ("5000-10000]", RangeProblem::Shape),
        ("-5-10", RangeProblem::Shape),
        ("[1-2,]", RangeProblem::Shape),
        ("5000-abc", RangeProblem::NotAnId("abc".into())),
        ("1-4294967296", RangeProblem::NotAnId("4294967296".into())),
        ("[-1-5]", RangeProblem::Shape),
        ("[10-5]", RangeProblem::Backwards { first: 10, last: 5 }),
        ("[0-10]", RangeProblem::HoldsZero),
    ];
    for (input, want) in cases {
        match ProjectRange::parse(input) {
            Err(XfsError::Range {
                input: got_input,
                problem,
            }) => {
                assert_eq!(got_input, input);
                assert_eq!(problem, want, "{input:?}");
            }
            other => panic!("{input:?}: {other:?}"),
        }
    }
    let err = ProjectRange::parse("[0-10]").expect_err("zero");
    assert_eq!(
        err.to_string(),
        "disk/xfs: invalid --xfs-project-range \"[0-10]\": it holds 0, which XFS reserves for \"no project\""
    );
    let err = ProjectRange::parse("[10-5]").expect_err("backwards");
    assert_eq!(
        err.to_string(),
        "disk/xfs: invalid --xfs-project-range \"[10-5]\": 10-5 runs backwards"
    );
    let err = ProjectRange::parse("5000").expect_err("shape");
    assert_eq!(
        err.to_string(),
        "disk/xfs: invalid --xfs-project-range \"5000\": expected first-last, optionally in \
         brackets and comma-separated, e.g. \"[5000-10000]\""
    );
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
}

#[test]
fn allocation_is_lowest_free_unique_and_runs_out() {
    let p = Projects::new(range("[10-12,20-20]"));
    assert_eq!((p.total(), p.free()), (4, 4));
    let got: Vec<u32> = (0..4).map(|_| p.allocate().expect("allocate")).collect();
    assert_eq!(got, vec![10, 11, 12, 20]);
    assert_eq!(p.free(), 0);
    let err = p.allocate().expect_err("exhausted");
    assert_eq!(
        err.to_string(),
        "disk/xfs: Failed to assign project ID, range exhausted (all 4 ids of [10-12,20-20] are in use)"
    );
    assert_eq!(err.kind(), ErrorKind::ResourceExhausted);

    // Released ids come back, the lowest first.
    p.release(20);
    p.release(11);
    assert_eq!(p.free(), 2);
    assert_eq!(p.allocate().expect("reuse"), 11);
    assert_eq!(p.allocate().expect("reuse"), 20);
    // Releasing an id never handed out changes nothing.
    p.release(99);
    assert_eq!(p.free(), 0);
}

#[test]
fn allocation_is_unique_across_threads() {
    let p = std::sync::Arc::new(Projects::new(range("[1-1000]")));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let p = std::sync::Arc::clone(&p);
            std::thread::spawn(move || {
                (0..250)
                    .map(|_| p.allocate().expect("allocate"))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut all: Vec<u32> = handles
        .into_iter()
        .flat_map(|h| h.join().expect("thread"))
        .collect();
    all.sort_unstable();
    assert_eq!(all, (1..=1000).collect::<Vec<_>>());
    assert!(p.allocate().is_err());
}

#[test]
fn check_supported_names_a_filesystem_that_is_not_xfs() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let magic =
        crate::sys::xfs::fs_magic(Dir::open(tmp.path()).expect("open").as_fd()).expect("statfs");
    if magic == crate::sys::xfs::XFS_SUPER_MAGIC {
        eprintln!("skipping: the temporary directory is on XFS");
        return;
    }
    let err = check_supported(tmp.path(), false).expect_err("not XFS");
    assert!(matches!(err, XfsError::NotXfs { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "disk/xfs: {} is not on XFS (it is on {}); project quotas need the work directory \
             on XFS mounted with -o prjquota",
            tmp.path().display(),
            fs_name(magic)
        )
    );
    let missing = tmp.path().join("missing");
    let err = check_supported(&missing, false).expect_err("missing");
    assert_eq!(
        err.to_string(),
        format!(
            "disk/xfs: cannot open {} to check its filesystem: No such file or directory (os error 2)",
            missing.display()
        )
    );
}

#[test]
fn limits_under_one_block_are_refused_before_any_syscall() {
    let err = set_limits(Path::new("/nonexistent"), 5000, 100, 100).expect_err("too small");
    assert_eq!(
        err.to_string(),
        "disk/xfs: quota limit of 100 bytes for project 5000 is under one 512-byte block (0 removes the limit)"
    );
}

/// A 300 MB XFS image on a loop device, mounted; unmounted and detached on drop, so a
/// failed assertion leaves no mount or loop device behind.
struct LoopXfs {
    device: String,
    mnt: PathBuf,
    mounted: bool,
    /// Whether `-o prjquota` was accepted.
    prjquota: bool,
}

fn run(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

impl LoopXfs {
    fn make(dir: &Path) -> LoopXfs {
        let image = dir.join("xfs.img");
        fs::File::create(&image)
            .expect("create image")
            .set_len(300 << 20)
            .expect("truncate");
        run(Command::new("mkfs.xfs").arg("-q").arg(&image)).expect("mkfs.xfs");
        let mnt = dir.join("mnt");
        fs::create_dir(&mnt).expect("mkdir mnt");
        let device = run(Command::new("losetup")
            .args(["--find", "--show"])
            .arg(&image))
        .expect("losetup");
        let mut fs = LoopXfs {
            device,
            mnt,
            mounted: false,
            prjquota: false,
        };
        match run(Command::new("mount")
            .args(["-t", "xfs", "-o", "prjquota", &fs.device])
            .arg(&fs.mnt))
        {
            Ok(_) => fs.prjquota = true,
            Err(e) => {
                eprintln!("note: mount -o prjquota refused ({e}); mounting without it");
                run(Command::new("mount")
                    .args(["-t", "xfs", &fs.device])
                    .arg(&fs.mnt))
                .expect("mount xfs");
            }
        }
        fs.mounted = true;
        fs
    }
}

impl Drop for LoopXfs {
    fn drop(&mut self) {
        if self.mounted {
            if let Err(e) = run(Command::new("umount").arg(&self.mnt)) {
                eprintln!("umount failed ({e}); detaching lazily");
                let _ = crate::sys::mount::detach(&self.mnt);
            }
        }
        if let Err(e) = run(Command::new("losetup").args(["-d", &self.device])) {
            eprintln!("losetup -d {} failed: {e}", self.device);
        }
    }
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `xfs_io -c lsproj <path>`: "projid = N".
fn lsproj(path: &Path) -> Option<u32> {
    let out = run(Command::new("xfs_io")
        .args(["-r", "-c", "lsproj"])
        .arg(path))
    .ok()?;
    out.strip_prefix("projid = ")?.trim().parse().ok()
}

/// The project id of a regular file, through the ioctl.
fn file_project(path: &Path) -> u32 {
    let f = fs::File::open(path).expect("open");
    crate::sys::xfs::get_project(f.as_fd()).expect("FS_IOC_FSGETXATTR")
}

#[test]
fn project_ids_on_a_loop_mounted_xfs_needs_root() {
    crate::provisioner::testing::require_root!("losetup, mount");
    if !have("mkfs.xfs") || !have("losetup") {
        eprintln!("skipping: needs mkfs.xfs (xfsprogs) and losetup");
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let xfs = LoopXfs::make(tmp.path());

    // The support check says exactly what is missing.
    match check_supported(&xfs.mnt, true) {
        Ok(()) => assert!(xfs.prjquota, "supported without prjquota?"),
        Err(e) if !xfs.prjquota => {
            assert!(matches!(e, XfsError::NoKernelQuota { .. }), "{e:?}");
            assert_eq!(
                e.to_string(),
                format!(
                    "disk/xfs: {} is on XFS but the kernel has no XFS quota support \
                     (quotactl_fd(Q_XGETQSTATV, PRJQUOTA) fails with ENOSYS; it needs a kernel \
                     built with CONFIG_XFS_QUOTA=y)",
                    xfs.mnt.display()
                )
            );
            println!("check_supported on this kernel: {e}");
        }
        Err(e) => panic!("mounted with prjquota, yet: {e}"),
    }

    // A sandbox with content already: labelled all the way down, symlinks not followed.
    let sandbox = xfs.mnt.join("sandbox");
    fs::create_dir_all(sandbox.join("a/b")).expect("mkdir");
    fs::write(sandbox.join("a/b/file"), b"data").expect("write");
    let outside = xfs.mnt.join("outside");
    fs::write(&outside, b"not the sandbox's").expect("write");
    std::os::unix::fs::symlink(&outside, sandbox.join("a/link")).expect("symlink");
    crate::sys::fs::mkfifo(&sandbox.join("a/fifo"), 0o600).expect("mkfifo");
    let unlabelled = xfs.mnt.join("other");
    fs::create_dir(&unlabelled).expect("mkdir");

    let projects = Projects::new(range("[5000-5002]"));
    let id = projects.assign(&sandbox).expect("assign");
    assert_eq!(id, 5000);
    assert_eq!(project_of(&sandbox).expect("read"), Some(5000));
    assert_eq!(project_of(&sandbox.join("a/b")).expect("read"), Some(5000));
    assert_eq!(file_project(&sandbox.join("a/b/file")), 5000);
    assert_eq!(
        file_project(&outside),
        0,
        "the symlink's target was not labelled"
    );
    assert_eq!(project_of(&unlabelled).expect("read"), None);
    if have("xfs_io") {
        assert_eq!(lsproj(&sandbox), Some(5000), "xfs_io -c lsproj");
        assert_eq!(lsproj(&sandbox.join("a/b/file")), Some(5000));
    } else {
        eprintln!("note: xfs_io missing, project ids checked through the ioctl only");
    }
    if have("lsattr") {
        // PROJINHERIT shows as `P`.
        let out = run(Command::new("lsattr").args(["-d", "-p"]).arg(&sandbox)).expect("lsattr");
        let mut fields = out.split_whitespace();
        assert_eq!(fields.next(), Some("5000"), "{out}");
        assert!(
            fields.next().is_some_and(|flags| flags.contains('P')),
            "{out}"
        );
    }

    // New files and directories below inherit the id from the filesystem.
    fs::write(sandbox.join("a/new.txt"), b"new").expect("write");
    fs::create_dir(sandbox.join("a/newdir")).expect("mkdir");
    fs::write(sandbox.join("a/newdir/deeper.txt"), b"deeper").expect("write");
    assert_eq!(file_project(&sandbox.join("a/new.txt")), 5000);
    assert_eq!(
        project_of(&sandbox.join("a/newdir")).expect("read"),
        Some(5000)
    );
    assert_eq!(file_project(&sandbox.join("a/newdir/deeper.txt")), 5000);

    // After a restart: the ids in use are learnt from the directories.
    let after = Projects::new(range("[5000-5002]"));
    assert_eq!(
        after.recover(&[&sandbox, &unlabelled]).expect("recover"),
        vec![Some(5000), None]
    );
    assert_eq!(after.free(), 2);
    assert_eq!(after.assign(&unlabelled).expect("assign"), 5001);

    // Clearing (id 0) takes the label and the inherit flag off.
    set_project_tree(&sandbox, 0).expect("clear");
    assert_eq!(project_of(&sandbox).expect("read"), None);
    assert_eq!(file_project(&sandbox.join("a/b/file")), 0);
    fs::write(sandbox.join("after-clear"), b"x").expect("write");
    assert_eq!(file_project(&sandbox.join("after-clear")), 0);

    // Limits: set and read back where the kernel has XFS quotas; refused by name here.
    match set_limits(&xfs.mnt, 5001, 1 << 20, 2 << 20) {
        Ok(()) => {
            let u = usage(&xfs.mnt, 5001).expect("usage").expect("a record");
            assert_eq!((u.soft_limit, u.hard_limit), (1 << 20, 2 << 20));
            set_limits(&xfs.mnt, 5001, 0, 0).expect("clear limits");
        }
        Err(e) => {
            assert!(!xfs.prjquota, "limits refused with prjquota on: {e}");
            assert!(e.to_string().contains("Function not implemented"), "{e}");
        }
    }

    drop(xfs);
    let left = run(Command::new("losetup")
        .arg("-j")
        .arg(tmp.path().join("xfs.img")))
    .expect("losetup -j");
    assert_eq!(left, "", "loop device left attached");
}
