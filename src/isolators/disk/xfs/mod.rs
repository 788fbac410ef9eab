//! `disk/xfs`: XFS project quotas. Each sandbox gets a project id from a configured range
//! (Mesos's `--xfs_project_range`, `[5000-10000]` by default); the id is set on its
//! directory with `FS_XFLAG_PROJINHERIT`, so everything created below it later is
//! charged to the project by the filesystem itself, and what exists already is labelled
//! by a walk. The kernel then counts the project's blocks and inodes (no walk needed to
//! measure), and can enforce a limit on them.
//!
//! As in Mesos:
//! - id 0 means "no project" to XFS (and to recovery here), so a range holding it is
//!   refused;
//! - the lowest free id is handed out; exhaustion fails with "Failed to assign project
//!   ID, range exhausted";
//! - only directories and regular files are labelled: symlinks and special files cannot
//!   be opened for the ioctl (new ones still inherit the id when created);
//! - the walk does not cross into other mounts, nor follow symlinks;
//! - after a restart the ids in use are learnt again from the directories' own project
//!   ids; an id outside the (maybe changed) range stays in use but never returns to the
//!   free pool;
//! - limits are set in 512-byte basic blocks, rounded down; a non-zero limit under one
//!   block is refused (0 would remove the limit).

pub mod isolator;
mod projects;

use std::io;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

pub use projects::{ProjectRange, Projects, RangeProblem, DEFAULT_PROJECT_RANGE};

use super::walk::{walk, Event, Failed, Step, WalkError};
use crate::error::{io_kind, ErrorKind, Kind};
use crate::sys::dirfd::{Dir, Kind as FileKind};
use crate::sys::xfs as sys;

/// The 512-byte "basic block" of the XFS quota ABI.
const BASIC_BLOCK: u64 = 512;

#[derive(Debug, thiserror::Error)]
pub enum XfsError {
    #[error("disk/xfs: invalid --xfs-project-range {input:?}: {problem}")]
    Range {
        input: String,
        problem: RangeProblem,
    },
    #[error("disk/xfs: Failed to assign project ID, range exhausted (all {total} ids of {range} are in use)")]
    Exhausted { range: ProjectRange, total: u64 },
    #[error("disk/xfs: Failed to assign project {id} to {}: {source}", path.display())]
    Label {
        path: PathBuf,
        id: u32,
        #[source]
        source: WalkError,
    },
    #[error("disk/xfs: cannot read the project id of {}: {source}", path.display())]
    ReadProject {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("disk/xfs: cannot open {} to check its filesystem: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "disk/xfs: {} is not on XFS (it is on {fs}); project quotas need the work \
         directory on XFS mounted with -o prjquota",
        path.display()
    )]
    NotXfs { path: PathBuf, fs: String },
    #[error(
        "disk/xfs: {} is on XFS but the kernel has no XFS quota support \
         (quotactl_fd(Q_XGETQSTATV, PRJQUOTA) fails with ENOSYS; it needs a kernel built \
         with CONFIG_XFS_QUOTA=y)",
        path.display()
    )]
    NoKernelQuota { path: PathBuf },
    #[error(
        "disk/xfs: cannot check the project quotas of {}: the kernel has no quotactl_fd(2) \
         (Linux 5.14+ built with CONFIG_QUOTACTL=y)",
        path.display()
    )]
    NoQuotactl { path: PathBuf },
    #[error(
        "disk/xfs: {} is on XFS mounted without project quotas: mount it with -o prjquota",
        path.display()
    )]
    NoPrjquota { path: PathBuf },
    #[error(
        "disk/xfs: {} is on XFS mounted with pqnoenforce: project usage is counted but \
         limits are not enforced; mount it with -o prjquota, or turn \
         --enforce-container-disk-quota off",
        path.display()
    )]
    NotEnforcing { path: PathBuf },
    #[error("disk/xfs: cannot read the project quota state of {}: {source}", path.display())]
    QuotaState {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "disk/xfs: quota limit of {bytes} bytes for project {id} is under one 512-byte \
         block (0 removes the limit)"
    )]
    LimitTooSmall { id: u32, bytes: u64 },
    #[error("disk/xfs: cannot {op} of project {id} on {}: {source}", path.display())]
    Quota {
        op: &'static str,
        path: PathBuf,
        id: u32,
        #[source]
        source: io::Error,
    },
}

impl Kind for XfsError {
    fn kind(&self) -> ErrorKind {
        match self {
            XfsError::Range { .. } | XfsError::LimitTooSmall { .. } => ErrorKind::InvalidArgument,
            XfsError::Exhausted { .. } => ErrorKind::ResourceExhausted,
            XfsError::NotXfs { .. }
            | XfsError::NoKernelQuota { .. }
            | XfsError::NoQuotactl { .. }
            | XfsError::NoPrjquota { .. }
            | XfsError::NotEnforcing { .. } => ErrorKind::FailedPrecondition,
            XfsError::Label { source, .. } => io_kind(&source.source),
            XfsError::ReadProject { source, .. }
            | XfsError::Open { source, .. }
            | XfsError::QuotaState { source, .. }
            | XfsError::Quota { source, .. } => io_kind(source),
        }
    }
}

/// The project id of directory `dir` (`None`: 0, not labelled).
pub fn project_of(dir: &Path) -> Result<Option<u32>, XfsError> {
    let read = |source| XfsError::ReadProject {
        path: dir.to_path_buf(),
        source,
    };
    let d = Dir::open(dir).map_err(read)?;
    let id = sys::get_project(d.as_fd()).map_err(read)?;
    Ok((id != 0).then_some(id))
}

/// Labels `dir`, the directories and the regular files below it with project `id`
/// (0 clears), directories with `FS_XFLAG_PROJINHERIT` (cleared with 0) so that what is
/// created in them later gets `id` from the filesystem.
pub fn set_project_tree(dir: &Path, id: u32) -> Result<(), XfsError> {
    let label = |event: Event<'_>| -> Result<Step, Failed> {
        let failed = |source| Failed {
            op: "set the project id of",
            source,
        };
        match event {
            Event::Dir { dir, .. } => sys::set_project(dir.as_fd(), id, id != 0).map_err(failed)?,
            Event::Entry { parent, name, meta } if meta.kind == FileKind::Regular => {
                let opened = parent
                    .open_regular_at(name)
                    .map_err(|source| Failed { op: "open", source });
                match opened {
                    Ok(Some(file)) => sys::set_project(file.as_fd(), id, false).map_err(failed)?,
                    // Replaced by something else, or removed, since it was listed.
                    Ok(None) => {}
                    Err(f) if f.source.raw_os_error() == Some(libc::ENOENT) => {}
                    Err(f) => return Err(f),
                }
            }
            Event::Entry { .. } => {}
        }
        Ok(Step::Descend)
    };
    walk(dir, label).map_err(|source| XfsError::Label {
        path: dir.to_path_buf(),
        id,
        source,
    })
}

/// `statfs` magic numbers of filesystems a work directory is commonly on, for the
/// "not XFS" message.
fn fs_name(magic: i64) -> String {
    match magic {
        0xef53 => "ext2/ext3/ext4".into(),
        0x0102_1994 => "tmpfs".into(),
        0x794c_7630 => "overlayfs".into(),
        0x9123_683e => "btrfs".into(),
        0x2fc1_2fc1 => "zfs".into(),
        0x6969 => "nfs".into(),
        0x6573_5546 => "a FUSE filesystem".into(),
        other => format!("a filesystem with magic {other:#x}"),
    }
}

/// Checks that `path` (the work directory, where sandboxes live) can have XFS project
/// quotas: on XFS, a kernel with XFS quota support, mounted with project accounting and,
/// when `enforce` (`--enforce-container-disk-quota`), with enforcement. The daemon calls
/// it at start-up and refuses to start with its message.
pub fn check_supported(path: &Path, enforce: bool) -> Result<(), XfsError> {
    let path_buf = || path.to_path_buf();
    let dir = Dir::open(path).map_err(|source| XfsError::Open {
        path: path_buf(),
        source,
    })?;
    let magic = sys::fs_magic(dir.as_fd()).map_err(|source| XfsError::Open {
        path: path_buf(),
        source,
    })?;
    if magic != sys::XFS_SUPER_MAGIC {
        return Err(XfsError::NotXfs {
            path: path_buf(),
            fs: fs_name(magic),
        });
    }
    let state = match sys::project_quota_state(dir.as_fd()) {
        Ok(state) => state,
        Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => {
            return Err(if sys::has_quotactl_fd() {
                XfsError::NoKernelQuota { path: path_buf() }
            } else {
                XfsError::NoQuotactl { path: path_buf() }
            });
        }
        Err(source) => {
            return Err(XfsError::QuotaState {
                path: path_buf(),
                source,
            })
        }
    };
    if !state.accounting {
        return Err(XfsError::NoPrjquota { path: path_buf() });
    }
    if enforce && !state.enforcing {
        return Err(XfsError::NotEnforcing { path: path_buf() });
    }
    Ok(())
}

/// A project's usage and limits as the kernel counts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProjectUsage {
    pub bytes: u64,
    pub inodes: u64,
    pub soft_limit: u64,
    pub hard_limit: u64,
}

/// Sets project `id`'s soft and hard block limits, in bytes, on the filesystem holding
/// `path`: Mesos sets soft = hard = the limit, or hard = limit + `--xfs_quota_headroom`
/// when it kills on a soft-limit breach. 0 and 0 remove the limits.
pub fn set_limits(path: &Path, id: u32, soft: u64, hard: u64) -> Result<(), XfsError> {
    for bytes in [soft, hard] {
        if bytes != 0 && bytes < BASIC_BLOCK {
            return Err(XfsError::LimitTooSmall { id, bytes });
        }
    }
    let fail = |source| XfsError::Quota {
        op: "set the limits",
        path: path.to_path_buf(),
        id,
        source,
    };
    let dir = Dir::open(path).map_err(fail)?;
    sys::set_project_limits(dir.as_fd(), id, soft / BASIC_BLOCK, hard / BASIC_BLOCK).map_err(fail)
}

/// Project `id`'s usage and limits on the filesystem holding `path` (`None`: the kernel
/// has no record of it: nothing charged, no limit).
pub fn usage(path: &Path, id: u32) -> Result<Option<ProjectUsage>, XfsError> {
    let fail = |source| XfsError::Quota {
        op: "read the usage",
        path: path.to_path_buf(),
        id,
        source,
    };
    let dir = Dir::open(path).map_err(fail)?;
    let quota = sys::get_project_quota(dir.as_fd(), id).map_err(fail)?;
    Ok(quota.map(|q| ProjectUsage {
        bytes: q.used_bb * BASIC_BLOCK,
        inodes: q.inodes,
        soft_limit: q.soft_bb * BASIC_BLOCK,
        hard_limit: q.hard_bb * BASIC_BLOCK,
    }))
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
