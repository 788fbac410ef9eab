//! Mount syscalls the rootfs backends and the launcher need (overlay, bind, filesystems,
//! read-only remount, propagation, lazy unmount) and `/proc/self/mountinfo` parsing to
//! find out what is mounted where.
//!
//! Whether a path is a mount point is always *discovered* from mountinfo, never inferred
//! from what we think we mounted earlier: the daemon may have restarted, a previous
//! teardown may have half-failed, or someone else may have mounted over our paths.
//!
//! All wrappers act on the exact path given and return `io::Result`; callers wrap errors
//! with the operation and path.

use std::ffi::OsString;
use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::MntFlags;
/// Mount flags, for callers of [`mount_fs`].
pub use nix::mount::MsFlags;
use nix::sys::statvfs::{statvfs, FsFlags};

const NONE: Option<&str> = None;

/// Mounts an overlayfs at `target` with `options` as the mount data (`lowerdir=...,
/// upperdir=...,workdir=...`; bytes, since paths need not be UTF-8). The caller keeps
/// `options` within [`mount_data_limit`]. `nodev`: an image's device nodes stay inert.
pub fn mount_overlay(target: &Path, options: &[u8]) -> io::Result<()> {
    nix::mount::mount(
        Some("overlay"),
        target,
        Some("overlay"),
        MsFlags::MS_NODEV,
        Some(options),
    )?;
    Ok(())
}

/// Bind-mounts `source` at `target`, non-recursively: mounts below `source` are not
/// carried along (a layer directory has none, and a container must not see host mounts
/// that happen to sit under the store).
pub fn bind(source: &Path, target: &Path) -> io::Result<()> {
    nix::mount::mount(Some(source), target, NONE, MsFlags::MS_BIND, NONE)?;
    Ok(())
}

/// Makes the bind mount at `target` read-only. A bind mount ignores `MS_RDONLY` when it is
/// created, so this is the second step after [`bind`]. The mount's current nosuid, nodev,
/// noexec and atime flags are carried over (discovered with `statvfs`): a remount replaces
/// all per-mount flags, and dropping a flag that is locked (inherited from a more
/// privileged mount namespace) fails with EPERM, as runc found out.
pub fn remount_read_only(target: &Path) -> io::Result<()> {
    remount_bind(target, MsFlags::MS_RDONLY)
}

/// Adds the per-mount flags `add` (`MS_RDONLY`, `MS_NODEV`…) to the bind mount at
/// `target`, keeping the ones it has, as [`remount_read_only`] explains.
pub fn remount_bind(target: &Path, add: MsFlags) -> io::Result<()> {
    let current = statvfs(target)?.flags();
    let mut flags = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | add;
    for (have, keep) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if current.contains(have) {
            flags |= keep;
        }
    }
    nix::mount::mount(NONE, target, NONE, flags, NONE)?;
    Ok(())
}

/// Mount propagation types (mount_namespaces(7)), applied to one mount, not recursively.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Propagation {
    /// Neither receives nor sends mount events.
    Private,
    /// Receives events from its master peer group, sends none back.
    Slave,
    /// Joins (or forms) a peer group: events go both ways between peers.
    Shared,
}

/// Changes the propagation type of the mount at `target` (which must be a mount point).
/// Like [`bind`], with everything mounted below `source` too.
pub fn bind_recursive(source: &Path, target: &Path) -> io::Result<()> {
    nix::mount::mount(
        Some(source),
        target,
        NONE,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        NONE,
    )?;
    Ok(())
}

/// Mounts a kernel filesystem (`proc`, `sysfs`, `tmpfs`, `devpts`, `mqueue`).
pub fn mount_fs(fstype: &str, target: &Path, flags: MsFlags, data: Option<&str>) -> io::Result<()> {
    nix::mount::mount(Some(fstype), target, Some(fstype), flags, data)?;
    Ok(())
}

/// Mounts the cgroup v1 hierarchy of `controller` at `target` (`mount -t cgroup -o
/// <controller> cgroup <target>`), nosuid, nodev and noexec as systemd mounts them.
pub fn mount_cgroup_v1(target: &Path, controller: &str) -> io::Result<()> {
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    nix::mount::mount(
        Some("cgroup"),
        target,
        Some("cgroup"),
        flags,
        Some(controller),
    )?;
    Ok(())
}

/// Makes every mount at and below `target` a slave: events from the host still reach
/// us, ours never reach the host (Mesos' propagation for containers).
pub fn make_tree_slave(target: &Path) -> io::Result<()> {
    nix::mount::mount(
        NONE,
        target,
        NONE,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        NONE,
    )?;
    Ok(())
}

pub fn set_propagation(target: &Path, propagation: Propagation) -> io::Result<()> {
    let flags = match propagation {
        Propagation::Private => MsFlags::MS_PRIVATE,
        Propagation::Slave => MsFlags::MS_SLAVE,
        Propagation::Shared => MsFlags::MS_SHARED,
    };
    nix::mount::mount(NONE, target, NONE, flags, NONE)?;
    Ok(())
}

/// [`set_propagation`] for `target` and every mount below it.
pub fn set_propagation_recursive(target: &Path, propagation: Propagation) -> io::Result<()> {
    let flags = match propagation {
        Propagation::Private => MsFlags::MS_PRIVATE,
        Propagation::Slave => MsFlags::MS_SLAVE,
        Propagation::Shared => MsFlags::MS_SHARED,
    };
    nix::mount::mount(NONE, target, NONE, flags | MsFlags::MS_REC, NONE)?;
    Ok(())
}

/// The propagation tags (`shared:N`, `master:N`) of the mount `path` is on, as this
/// process sees it; `None` when mountinfo names no mount containing it.
pub fn propagation_of(path: &Path) -> io::Result<Option<Vec<String>>> {
    let path = std::fs::canonicalize(path)?;
    Ok(mountinfo()?
        .into_iter()
        .filter(|m| path.starts_with(&m.mount_point))
        .max_by_key(|m| m.mount_point.components().count())
        .map(|m| m.propagation))
}

/// Lazily unmounts the top mount at `target` (`umount2(MNT_DETACH)`): it disappears from
/// the namespace at once, together with everything mounted below it, and the kernel
/// finishes the unmount when the last user lets go. Returns whether something was
/// unmounted; EINVAL (not a mount point) and ENOENT (no such path) are `Ok(false)`, so
/// teardown can call this on whatever state a crash left behind.
pub fn detach(target: &Path) -> io::Result<bool> {
    match nix::mount::umount2(target, MntFlags::MNT_DETACH) {
        Ok(()) => Ok(true),
        Err(Errno::EINVAL) | Err(Errno::ENOENT) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

// ---- Mounts as descriptors (the new mount API, Linux 5.2+; mount_setattr 5.12+) ----
//
// The launcher builds the container's mounts with these: a mount is made detached,
// given its flags while nobody can see it, then attached onto a descriptor that
// `sys::inroot` resolved inside the rootfs. No path is looked up twice, and the mount's
// own descriptor stays usable afterwards (to create files in a fresh /dev, say), which
// `mount(2)` onto `/proc/self/fd/N` cannot offer: that path names what lies *under* the
// new mount.

pub use rustix::mount::MountAttrFlags as Attrs;

/// A new, detached instance of a kernel filesystem (`proc`, `sysfs`, `tmpfs`, `devpts`,
/// `mqueue`) with `options` (`key=value`, or a bare flag when the value is `None`) and the
/// per-mount `attrs` (`MOUNT_ATTR_RDONLY`, `NOSUID`…). Filesystems tied to a namespace
/// (proc, sysfs, mqueue) take the caller's.
pub fn new_fs(fstype: &str, options: &[(&str, Option<&str>)], attrs: Attrs) -> io::Result<OwnedFd> {
    use rustix::mount::{fsconfig_create, fsconfig_set_flag, fsconfig_set_string, fsmount};
    use rustix::mount::{FsMountFlags, FsOpenFlags};
    let fs = rustix::mount::fsopen(fstype, FsOpenFlags::FSOPEN_CLOEXEC)?;
    for (key, value) in options {
        match value {
            Some(v) => fsconfig_set_string(&fs, *key, *v)?,
            None => fsconfig_set_flag(&fs, *key)?,
        }
    }
    fsconfig_create(&fs)?;
    Ok(fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, attrs)?)
}

/// A detached copy of the mount at `source` (a trusted host path), with everything
/// mounted below it when `recursive` (a bind mount, not yet attached anywhere). The copy
/// keeps the propagation of what it copies: a copy of a shared mount is its peer.
pub fn clone_tree(source: &Path, recursive: bool) -> io::Result<OwnedFd> {
    use rustix::mount::OpenTreeFlags;
    let mut flags = OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC;
    if recursive {
        flags |= OpenTreeFlags::AT_RECURSIVE;
    }
    Ok(rustix::mount::open_tree(rustix::fs::CWD, source, flags)?)
}

/// Attaches the detached `mount` onto `target` (any descriptor of a file or directory,
/// usually `O_PATH` from `sys::inroot`). `mount` then names the attached mount.
pub fn attach(mount: BorrowedFd<'_>, target: BorrowedFd<'_>) -> io::Result<()> {
    use rustix::mount::MoveMountFlags;
    rustix::mount::move_mount(
        mount,
        "",
        target,
        "",
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
    )?;
    Ok(())
}

/// Sets `attrs` on the mount behind `mount` (and every mount below it when `recursive`),
/// leaving its other flags alone; unlike a remount, a flag locked by a more privileged
/// namespace is never touched. Works on detached mounts too.
pub fn set_attrs(mount: BorrowedFd<'_>, attrs: Attrs, recursive: bool) -> io::Result<()> {
    setattr(mount, attrs.bits().into(), 0, recursive, None)
}

/// Makes the detached mount `mount` (and those below it when `recursive`) an idmapped
/// mount: files appear, and are created, with their ids translated through the mappings
/// of the user namespace `userns` (Linux 5.12; overlayfs since 5.19). Must be done by a
/// process privileged on the host, before the mount is attached.
pub fn idmap(mount: BorrowedFd<'_>, userns: BorrowedFd<'_>, recursive: bool) -> io::Result<()> {
    /// `MOUNT_ATTR_IDMAP` (linux/mount.h).
    const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
    setattr(mount, MOUNT_ATTR_IDMAP, 0, recursive, Some(userns))
}

/// Changes the propagation of the mount behind `mount` (and below it when `recursive`).
pub fn set_propagation_of(
    mount: BorrowedFd<'_>,
    propagation: Propagation,
    recursive: bool,
) -> io::Result<()> {
    use rustix::mount::MountPropagationFlags as P;
    let flag = match propagation {
        Propagation::Private => P::PRIVATE,
        Propagation::Slave => P::DOWNSTREAM,
        Propagation::Shared => P::SHARED,
    };
    setattr(mount, 0, flag.bits().into(), recursive, None)
}

fn setattr(
    mount: BorrowedFd<'_>,
    set: u64,
    propagation: u64,
    recursive: bool,
    userns: Option<BorrowedFd<'_>>,
) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    /// `struct mount_attr` (linux/mount.h); libc has no binding for it yet.
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    let attr = MountAttr {
        attr_set: set,
        attr_clr: 0,
        propagation,
        userns_fd: userns.map_or(0, |fd| fd.as_raw_fd() as u64),
    };
    /// `AT_RECURSIVE` (linux/fcntl.h), which libc lacks for Linux.
    const AT_RECURSIVE: libc::c_uint = 0x8000;
    let mut flags = libc::AT_EMPTY_PATH as libc::c_uint;
    if recursive {
        flags |= AT_RECURSIVE;
    }
    // SAFETY: mount_setattr reads `size_of::<MountAttr>()` bytes from `&attr`, a live,
    // properly laid out `struct mount_attr` (repr(C), four u64s, as the kernel's
    // MOUNT_ATTR_SIZE_VER0); the path is a NUL-terminated empty string; `mount` is an
    // open descriptor for the duration of the call. Nothing is retained afterwards.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            mount.as_raw_fd(),
            c"".as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The longest mount data string (`mount(2)`'s last argument) the kernel accepts: it copies
/// at most one page, which must include the terminating NUL.
pub fn mount_data_limit() -> usize {
    let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .and_then(|p| usize::try_from(p).ok())
        // 4096 is the smallest page size Linux runs with, so it is the safe guess.
        .unwrap_or(4096);
    page - 1
}

/// One line of `/proc/self/mountinfo` (proc(5)), with the fields the runtime uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    pub mount_id: u32,
    pub parent_id: u32,
    /// The directory of the source filesystem mounted here (`/` unless a bind mount of a
    /// subdirectory).
    pub root: PathBuf,
    /// Where it is mounted, relative to this process's root.
    pub mount_point: PathBuf,
    /// Per-mount options (`rw,nosuid,relatime`).
    pub mount_options: String,
    /// Optional fields such as `shared:3` or `master:1`.
    pub propagation: Vec<String>,
    pub fs_type: String,
    pub source: String,
    /// Per-superblock options (`rw,lowerdir=...` for overlay).
    pub super_options: String,
}

/// Reads and parses `/proc/self/mountinfo`.
pub fn mountinfo() -> io::Result<Vec<MountEntry>> {
    parse_mountinfo(&std::fs::read("/proc/self/mountinfo")?)
}

/// Parses mountinfo text. Paths are unescaped (the kernel writes space, tab, newline and
/// backslash as `\ooo` octal) and kept as raw bytes, since mount points need not be UTF-8.
pub fn parse_mountinfo(text: &[u8]) -> io::Result<Vec<MountEntry>> {
    text.split(|&b| b == b'\n')
        .filter(|line| !line.is_empty())
        .map(parse_line)
        .collect()
}

fn parse_line(line: &[u8]) -> io::Result<MountEntry> {
    let bad = |what: &str| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("mountinfo line {:?}: {what}", String::from_utf8_lossy(line)),
        )
    };
    let mut fields = line.split(|&b| b == b' ');
    let mut next = |what: &str| fields.next().ok_or_else(|| bad(what));
    let mount_id = parse_u32(next("missing mount id")?).ok_or_else(|| bad("bad mount id"))?;
    let parent_id = parse_u32(next("missing parent id")?).ok_or_else(|| bad("bad parent id"))?;
    let _dev = next("missing major:minor")?;
    let root = unescape_path(next("missing root")?);
    let mount_point = unescape_path(next("missing mount point")?);
    let mount_options = lossy(next("missing mount options")?);
    let mut propagation = Vec::new();
    loop {
        let field = next("missing '-' separator")?;
        if field == b"-" {
            break;
        }
        propagation.push(lossy(field));
    }
    let fs_type = lossy(next("missing filesystem type")?);
    let source = lossy(&unescape(next("missing source")?));
    let super_options = lossy(next("missing super options")?);
    Ok(MountEntry {
        mount_id,
        parent_id,
        root,
        mount_point,
        mount_options,
        propagation,
        fs_type,
        source,
        super_options,
    })
}

fn parse_u32(field: &[u8]) -> Option<u32> {
    std::str::from_utf8(field).ok()?.parse().ok()
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn unescape_path(field: &[u8]) -> PathBuf {
    PathBuf::from(OsString::from_vec(unescape(field)))
}

/// Undoes the kernel's `\ooo` escaping; anything that is not a 3-digit octal escape is
/// kept as written.
fn unescape(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        if field[i] == b'\\' && i + 3 < field.len() && is_octal_escape(&field[i + 1..i + 4]) {
            let d = &field[i + 1..i + 4];
            out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
            i += 4;
        } else {
            out.push(field[i]);
            i += 1;
        }
    }
    out
}

fn is_octal_escape(digits: &[u8]) -> bool {
    // The first digit is at most 3 so the value fits in a byte.
    matches!(digits, [b'0'..=b'3', b'0'..=b'7', b'0'..=b'7'])
}

/// Whether `path` is currently a mount point in this mount namespace. A path that does not
/// exist is not one. Symlinks in `path` are resolved first, because mountinfo lists
/// resolved paths.
pub fn is_mount_point(path: &Path) -> io::Result<bool> {
    let Some(path) = resolve(path)? else {
        return Ok(false);
    };
    Ok(mountinfo()?.iter().any(|m| m.mount_point == path))
}

/// Every mount point at `path` or below it, deepest first (the order to unmount them in),
/// each listed once even when several mounts are stacked on it. Empty when `path` does not
/// exist.
pub fn mounts_at_or_under(path: &Path) -> io::Result<Vec<PathBuf>> {
    let Some(path) = resolve(path)? else {
        return Ok(Vec::new());
    };
    let mut found: Vec<PathBuf> = mountinfo()?
        .into_iter()
        .map(|m| m.mount_point)
        .filter(|p| p.starts_with(&path))
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    found.dedup();
    Ok(found)
}

fn resolve(path: &Path) -> io::Result<Option<PathBuf>> {
    match std::fs::canonicalize(path) {
        Ok(p) => Ok(Some(p)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &[u8] = b"\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw,discard
90 27 0:50 / /tmp/a\\040b\\134c rw,relatime shared:7 master:2 - overlay overlay rw,lowerdir=/l/1:/l/0,upperdir=/u,workdir=/w
91 27 254:0 /srv/data /mnt/x\\011y ro,nosuid - ext4 /dev/vda rw
";

    #[test]
    fn parses_fields_optional_tags_and_escapes() {
        let all = parse_mountinfo(SAMPLE).expect("parse");
        assert_eq!(all.len(), 4);
        assert_eq!(all[0].mount_point, PathBuf::from("/proc"));
        assert_eq!(all[0].fs_type, "proc");
        assert!(all[0].propagation.is_empty());
        assert_eq!(all[1].propagation, vec!["shared:1".to_string()]);
        let ovl = &all[2];
        assert_eq!((ovl.mount_id, ovl.parent_id), (90, 27));
        assert_eq!(ovl.mount_point, PathBuf::from("/tmp/a b\\c"));
        assert_eq!(ovl.propagation, vec!["shared:7", "master:2"]);
        assert_eq!(ovl.fs_type, "overlay");
        assert!(ovl.super_options.contains("lowerdir=/l/1:/l/0"));
        assert_eq!(all[3].root, PathBuf::from("/srv/data"));
        assert_eq!(all[3].mount_point, PathBuf::from("/mnt/x\ty"));
        assert_eq!(all[3].mount_options, "ro,nosuid");
    }

    #[test]
    fn malformed_lines_are_errors() {
        for line in [
            &b"1 2 0:1 / /x rw shared:1 ext4 /dev/a rw"[..],
            b"x 2 0:1 / /x rw - a b c",
        ] {
            let err = parse_mountinfo(line).expect_err("malformed");
            assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        }
    }

    #[test]
    fn unescape_keeps_non_escapes() {
        assert_eq!(unescape(b"a\\0"), b"a\\0");
        assert_eq!(unescape(b"a\\999b"), b"a\\999b");
        assert_eq!(unescape(b"\\040\\011"), b" \t");
    }

    #[test]
    fn root_is_a_mount_point_and_missing_paths_are_not() {
        assert!(is_mount_point(Path::new("/")).expect("mountinfo"));
        assert!(!is_mount_point(Path::new("/nonexistent/ucr/path")).expect("mountinfo"));
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(!is_mount_point(dir.path()).expect("mountinfo"));
        assert!(mounts_at_or_under(dir.path())
            .expect("mountinfo")
            .is_empty());
    }

    #[test]
    fn detach_tolerates_non_mounts() {
        let dir = tempfile::tempdir().expect("tempdir");
        match detach(dir.path()) {
            Ok(unmounted) => assert!(!unmounted),
            // Unprivileged umount2 fails with EPERM before looking at the path.
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
                eprintln!("skipping: needs root (umount2)");
                return;
            }
            Err(e) => panic!("detach: {e}"),
        }
        assert!(!detach(&dir.path().join("missing")).expect("detach missing"));
    }

    #[test]
    fn data_limit_is_a_page_minus_nul() {
        assert!(mount_data_limit() >= 4095);
    }
}
