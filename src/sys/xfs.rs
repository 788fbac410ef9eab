//! XFS project ids and project quotas, by the kernel's documented ABI: the
//! `FS_IOC_FSGETXATTR` / `FS_IOC_FSSETXATTR` ioctls (`struct fsxattr`,
//! include/uapi/linux/fs.h) and `quotactl_fd(2)` with the XFS quota commands
//! (`struct fs_quota_statv`, `struct fs_disk_quota`, include/uapi/linux/dqblk_xfs.h).
//!
//! The structures are declared here rather than taken from a crate: `libc` has neither,
//! and each is small, fixed by the ABI and checked by a size assertion below.
//!
//! `quotactl_fd` (Linux 5.14) names the filesystem by any open file on it, so no block
//! device path has to be found (a loop device, a dm device, a container without
//! `/dev/block`), which the older `quotactl(2)` needs.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// `XFS_SUPER_MAGIC` (`statfs.f_type` of an XFS filesystem).
pub const XFS_SUPER_MAGIC: i64 = 0x5846_5342;

/// `struct fsxattr`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct FsXattr {
    xflags: u32,
    extsize: u32,
    nextents: u32,
    projid: u32,
    cowextsize: u32,
    pad: [u8; 8],
}
const _: () = assert!(std::mem::size_of::<FsXattr>() == 28);

/// `FS_XFLAG_PROJINHERIT`: new inodes in this directory take its project id.
const FS_XFLAG_PROJINHERIT: u32 = 0x0000_0200;

// `_IOR('X', 31, struct fsxattr)` and `_IOW('X', 32, struct fsxattr)`.
nix::ioctl_read!(ioc_fsgetxattr, b'X', 31, FsXattr);
nix::ioctl_write_ptr!(ioc_fssetxattr, b'X', 32, FsXattr);

fn get_xattr(fd: BorrowedFd<'_>) -> io::Result<FsXattr> {
    let mut attr = FsXattr::default();
    // SAFETY: `fd` is a live descriptor for the call's duration (borrowed), and `attr` is
    // a properly aligned, writable `struct fsxattr` of the size the request code encodes;
    // the kernel writes at most that many bytes.
    unsafe { ioc_fsgetxattr(fd.as_raw_fd(), &mut attr) }.map_err(io::Error::from)?;
    Ok(attr)
}

/// The project id of the file or directory open at `fd` (0: none).
pub fn get_project(fd: BorrowedFd<'_>) -> io::Result<u32> {
    Ok(get_xattr(fd)?.projid)
}

/// Sets the project id of the file or directory open at `fd`, and sets (or clears)
/// `FS_XFLAG_PROJINHERIT` so that what is created below a directory later gets the id
/// too. Pass `inherit: false` for regular files: the flag only means something on
/// directories. Needs `CAP_FOWNER` (or owning the inode) in the initial user namespace.
pub fn set_project(fd: BorrowedFd<'_>, projid: u32, inherit: bool) -> io::Result<()> {
    // Read-modify-write: the other flags (append-only, immutable, extent size hints) stay
    // as they are.
    let mut attr = get_xattr(fd)?;
    attr.projid = projid;
    if inherit {
        attr.xflags |= FS_XFLAG_PROJINHERIT;
    } else {
        attr.xflags &= !FS_XFLAG_PROJINHERIT;
    }
    // SAFETY: `fd` is live for the call (borrowed); `attr` is a valid `struct fsxattr`
    // that the kernel only reads.
    unsafe { ioc_fssetxattr(fd.as_raw_fd(), &attr) }.map_err(io::Error::from)?;
    Ok(())
}

/// `statfs.f_type` of the filesystem holding `fd`.
pub fn fs_magic(fd: BorrowedFd<'_>) -> io::Result<i64> {
    #[allow(clippy::useless_conversion)] // f_type's width differs between targets
    Ok(i64::from(rustix::fs::fstatfs(fd)?.f_type))
}

// dqblk_xfs.h: `XQM_CMD(x) = ('X' << 8) + x`; quota.h: `QCMD(cmd, type)`.
const fn xqm_cmd(x: u32) -> u32 {
    ((b'X' as u32) << 8) + x
}
const Q_XGETQUOTA: u32 = xqm_cmd(3);
const Q_XSETQLIM: u32 = xqm_cmd(4);
const Q_XGETQSTATV: u32 = xqm_cmd(8);
const PRJQUOTA: u32 = 2;
const fn qcmd(cmd: u32, kind: u32) -> u32 {
    (cmd << 8) | (kind & 0xff)
}

/// Whether this kernel has `quotactl_fd(2)` at all. Needed to read an `ENOSYS` from it
/// right: the same errno means "no such syscall" and "this filesystem has no quota
/// operations" (XFS in a kernel built without `CONFIG_XFS_QUOTA`). With a bad descriptor
/// an existing syscall answers `EBADF` before looking at anything else.
pub fn has_quotactl_fd() -> bool {
    // SAFETY: quotactl_fd with descriptor -1 fails with EBADF before it reads `addr`
    // (null) or does anything else; no memory of ours is involved.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_quotactl_fd,
            -1 as libc::c_int,
            qcmd(Q_XGETQSTATV, PRJQUOTA),
            0 as libc::c_uint,
            std::ptr::null_mut::<libc::c_void>(),
        )
    };
    !(rc == -1 && io::Error::last_os_error().raw_os_error() == Some(libc::ENOSYS))
}

/// `quotactl_fd(fd, QCMD(cmd, PRJQUOTA), id, addr)`.
///
/// # Safety
/// `addr` must point to a live, writable value of the structure `cmd` expects.
unsafe fn quotactl_prj(
    fd: BorrowedFd<'_>,
    cmd: u32,
    id: u32,
    addr: *mut libc::c_void,
) -> io::Result<()> {
    // SAFETY: the descriptor is live (borrowed); the caller vouches for `addr`.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_quotactl_fd,
            fd.as_raw_fd() as libc::c_uint,
            qcmd(cmd, PRJQUOTA),
            id,
            addr,
        )
    };
    if rc == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `struct fs_qfilestatv`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
struct FsQfilestatv {
    ino: u64,
    nblks: u64,
    nextents: u32,
    pad: u32,
}

/// `struct fs_quota_statv` (`Q_XGETQSTATV`): versioned, with the same layout on every
/// architecture, unlike `fs_quota_stat`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
struct FsQuotaStatv {
    version: i8,
    pad1: u8,
    flags: u16,
    incoredqs: u32,
    uquota: FsQfilestatv,
    gquota: FsQfilestatv,
    pquota: FsQfilestatv,
    btimelimit: i32,
    itimelimit: i32,
    rtbtimelimit: i32,
    bwarnlimit: u16,
    iwarnlimit: u16,
    rtbwarnlimit: u16,
    pad3: u16,
    pad4: u32,
    pad2: [u64; 7],
}
const _: () = assert!(std::mem::size_of::<FsQuotaStatv>() == 160);

const FS_QSTATV_VERSION1: i8 = 1;
const FS_QUOTA_PDQ_ACCT: u16 = 1 << 4;
const FS_QUOTA_PDQ_ENFD: u16 = 1 << 5;

/// Project quota state of a filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaState {
    /// Usage is counted per project (`prjquota` or `pqnoenforce` at mount).
    pub accounting: bool,
    /// Limits are enforced (`prjquota`; not `pqnoenforce`).
    pub enforcing: bool,
}

/// The project quota state of the filesystem holding `fd` (`Q_XGETQSTATV`). `ENOSYS`
/// when the filesystem has no quota support in this kernel (see [`has_quotactl_fd`]).
pub fn project_quota_state(fd: BorrowedFd<'_>) -> io::Result<QuotaState> {
    let mut statv = FsQuotaStatv {
        version: FS_QSTATV_VERSION1,
        ..FsQuotaStatv::default()
    };
    // SAFETY: `statv` is a live, writable `struct fs_quota_statv`, the structure
    // Q_XGETQSTATV fills.
    unsafe { quotactl_prj(fd, Q_XGETQSTATV, 0, (&raw mut statv).cast()) }?;
    Ok(QuotaState {
        accounting: statv.flags & FS_QUOTA_PDQ_ACCT != 0,
        enforcing: statv.flags & FS_QUOTA_PDQ_ENFD != 0,
    })
}

/// `struct fs_disk_quota` (`Q_XGETQUOTA`, `Q_XSETQLIM`).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
struct FsDiskQuota {
    version: i8,
    flags: i8,
    fieldmask: u16,
    id: u32,
    blk_hardlimit: u64,
    blk_softlimit: u64,
    ino_hardlimit: u64,
    ino_softlimit: u64,
    bcount: u64,
    icount: u64,
    itimer: i32,
    btimer: i32,
    iwarns: u16,
    bwarns: u16,
    itimer_hi: i8,
    btimer_hi: i8,
    rtbtimer_hi: i8,
    padding2: i8,
    rtb_hardlimit: u64,
    rtb_softlimit: u64,
    rtbcount: u64,
    rtbtimer: i32,
    rtbwarns: u16,
    padding3: i16,
    padding4: [u8; 8],
}
const _: () = assert!(std::mem::size_of::<FsDiskQuota>() == 112);

const FS_DQUOT_VERSION: i8 = 1;
const FS_PROJ_QUOTA: i8 = 2;
const FS_DQ_BSOFT: u16 = 1 << 2;
const FS_DQ_BHARD: u16 = 1 << 3;

/// Sets project `projid`'s block limits, in 512-byte basic blocks (the unit of the XFS
/// quota ABI), on the filesystem holding `fd`. 0 and 0 remove the limits.
///
/// Not exercised by the tests: the kernel they run on has no XFS quota support. Written
/// to the ABI as xfs_quota(8)'s `limit -p bsoft=… bhard=…` uses it.
pub fn set_project_limits(
    fd: BorrowedFd<'_>,
    projid: u32,
    soft_bb: u64,
    hard_bb: u64,
) -> io::Result<()> {
    let mut quota = FsDiskQuota {
        version: FS_DQUOT_VERSION,
        flags: FS_PROJ_QUOTA,
        fieldmask: FS_DQ_BSOFT | FS_DQ_BHARD,
        id: projid,
        blk_softlimit: soft_bb,
        blk_hardlimit: hard_bb,
        ..FsDiskQuota::default()
    };
    // SAFETY: `quota` is a live `struct fs_disk_quota`; Q_XSETQLIM only reads it (the
    // pointer is `*mut` because the syscall's argument is).
    unsafe { quotactl_prj(fd, Q_XSETQLIM, projid, (&raw mut quota).cast()) }
}

/// A project's usage and limits, in 512-byte basic blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProjectQuota {
    pub used_bb: u64,
    pub inodes: u64,
    pub soft_bb: u64,
    pub hard_bb: u64,
}

/// Project `projid`'s usage and limits on the filesystem holding `fd` (`Q_XGETQUOTA`);
/// `None` when the kernel has no record for it (`ENOENT`: nothing charged, no limit).
///
/// Untested here for the same reason as [`set_project_limits`].
pub fn get_project_quota(fd: BorrowedFd<'_>, projid: u32) -> io::Result<Option<ProjectQuota>> {
    let mut quota = FsDiskQuota {
        version: FS_DQUOT_VERSION,
        flags: FS_PROJ_QUOTA,
        id: projid,
        ..FsDiskQuota::default()
    };
    // SAFETY: `quota` is a live, writable `struct fs_disk_quota`, which Q_XGETQUOTA fills.
    match unsafe { quotactl_prj(fd, Q_XGETQUOTA, projid, (&raw mut quota).cast()) } {
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
        Err(e) => Err(e),
        Ok(()) => Ok(Some(ProjectQuota {
            used_bb: quota.bcount,
            inodes: quota.icount,
            soft_bb: quota.blk_softlimit,
            hard_bb: quota.blk_hardlimit,
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_codes_match_the_kernel_headers() {
        // Values from the kernel headers (and strace): FS_IOC_FSGETXATTR is 0x801c581f,
        // Q_XGETQSTATV for PRJQUOTA is 0x580802.
        assert_eq!(
            nix::request_code_read!(b'X', 31, std::mem::size_of::<FsXattr>()),
            0x801c_581f
        );
        assert_eq!(
            nix::request_code_write!(b'X', 32, std::mem::size_of::<FsXattr>()),
            0x401c_5820
        );
        assert_eq!(qcmd(Q_XGETQSTATV, PRJQUOTA), 0x0058_0802);
        assert_eq!(qcmd(Q_XSETQLIM, PRJQUOTA), 0x0058_0402);
        assert_eq!(qcmd(Q_XGETQUOTA, PRJQUOTA), 0x0058_0302);
    }

    #[test]
    fn quotactl_fd_is_probed_without_side_effects() {
        if !has_quotactl_fd() {
            eprintln!("skipping: needs quotactl_fd(2) (Linux 5.14+ with CONFIG_QUOTACTL)");
            return;
        }
        // A second probe answers the same: the first changed nothing.
        assert!(has_quotactl_fd());
    }
}
