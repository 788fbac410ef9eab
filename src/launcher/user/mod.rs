//! Resolving a container's user (`USER` in the image config, or the CRI security context)
//! against the image's own `/etc/passwd` and `/etc/group`.
//!
//! The accepted forms are the OCI image spec's: `user`, `uid`, `user:group`, `uid:gid`,
//! `uid:group`, `user:gid`, or empty for root. The results match containerd's CRI plugin
//! (`pkg/oci/spec_opts.go`: `WithUser`, `WithUserID`, `WithUsername`, `WithAdditionalGIDs`
//! and the CRI's `WithSupplementalGroups`) so images behave the same on ucr:
//! - a numeric uid need not exist in the image; its gid is the passwd entry's, else 0;
//! - a user *name* must exist, and so must a group name;
//! - supplementary groups are those whose member list names the user, skipping a group
//!   with the user's own name, and are looked up by the user part of the spec even when a
//!   group was given; a uid absent from passwd has none;
//! - the primary gid is included in `additional_gids` (containerd's `ensureAdditionalGids`),
//!   and the caller's extra gids (CRI `supplemental_groups`) are merged in, deduplicated and
//!   sorted (containerd's `mergeGids`).
//!
//! The rootfs is untrusted: `/etc` or `/etc/passwd` may be symlinks meant to make a
//! privileged process read host files (`etc/passwd -> /etc/shadow`). Every path is resolved
//! inside the rootfs (`sys::inroot`), and only regular files of sane size are read.

use std::io;
use std::path::{Path, PathBuf};

use crate::error::{io_kind, ErrorKind, Kind};
use crate::sys::inroot::Root;

#[cfg(test)]
mod tests;

/// Linux's own limit on symlinks followed in one lookup (`MAXSYMLINKS`).
pub const MAX_SYMLINK_HOPS: u32 = crate::sys::inroot::MAX_SYMLINKS;

/// Largest passwd or group file we will read. Real ones are kilobytes; the cap only stops a
/// hostile image from making the daemon read gigabytes.
const MAX_DB_BYTES: u64 = 16 * 1024 * 1024;

/// runc requires ids to fit in an `int32`, and containerd refuses larger ones up front.
const MAX_ID: u64 = i32::MAX as u64;

const PASSWD: &str = "etc/passwd";
const GROUP: &str = "etc/group";

/// Who the container's process runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups for `setgroups`, sorted, without duplicates, including `gid`.
    pub additional_gids: Vec<u32>,
    /// `$HOME` for the process when the launch spec sets none ("/" when the image says
    /// nothing, as runc defaults it).
    pub home: String,
    /// The passwd name of `uid`, when the image has one.
    pub name: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("invalid user {spec:?}: {reason}")]
    InvalidSpec { spec: String, reason: &'static str },
    #[error("user {user:?} not found in {}", rootfs.join(PASSWD).display())]
    UnknownUser { user: String, rootfs: PathBuf },
    #[error("group {group:?} not found in {}", rootfs.join(GROUP).display())]
    UnknownGroup { group: String, rootfs: PathBuf },
    #[error("cannot resolve user name {user:?}: the image at {rootfs} has no /etc/passwd")]
    NoPasswdFile { user: String, rootfs: PathBuf },
    #[error("cannot resolve group name {group:?}: the image at {rootfs} has no /etc/group")]
    NoGroupFile { group: String, rootfs: PathBuf },
    #[error("reading {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("reading {path}: not a regular file")]
    NotRegularFile { path: PathBuf },
    #[error("reading {path}: larger than {limit} bytes")]
    TooLarge { path: PathBuf, limit: u64 },
    #[error("resolving {path} inside {root}: {source}")]
    Resolve {
        root: PathBuf,
        path: PathBuf,
        source: io::Error,
    },
    #[error("resolving {path} inside {root}: more than {MAX_SYMLINK_HOPS} symlinks")]
    TooManySymlinks { root: PathBuf, path: PathBuf },
}

impl Kind for UserError {
    fn kind(&self) -> ErrorKind {
        match self {
            UserError::InvalidSpec { .. } => ErrorKind::InvalidArgument,
            // The request is well-formed; this image just cannot satisfy it.
            UserError::UnknownUser { .. }
            | UserError::UnknownGroup { .. }
            | UserError::NoPasswdFile { .. }
            | UserError::NoGroupFile { .. }
            | UserError::NotRegularFile { .. }
            | UserError::TooLarge { .. }
            | UserError::TooManySymlinks { .. } => ErrorKind::FailedPrecondition,
            UserError::Read { source, .. } | UserError::Resolve { source, .. } => io_kind(source),
        }
    }
}

/// One side of the spec: a number or a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Id<'a> {
    Num(u32),
    Name(&'a str),
}

/// Resolves `spec` against the image at `rootfs`; `extra_gids` (CRI `supplemental_groups`)
/// are added to the user's own supplementary groups (the image's `/etc/group`), or, when
/// `strict` (CRI `SupplementalGroupsPolicy Strict`), replace them: only the primary group
/// and `extra_gids`.
pub fn resolve(
    rootfs: &Path,
    spec: &str,
    extra_gids: &[u32],
    strict: bool,
) -> Result<ResolvedUser, UserError> {
    let (user, group) = parse_spec(spec)?;
    let passwd = read_db(rootfs, PASSWD)?;
    let groups = read_db(rootfs, GROUP)?;

    let (uid, entry) = match user {
        Id::Name(name) => {
            let data = passwd.as_deref().ok_or_else(|| UserError::NoPasswdFile {
                user: name.to_string(),
                rootfs: rootfs.to_path_buf(),
            })?;
            let found = passwd_entries(data).find(|e| e.name == name);
            let entry = found.ok_or_else(|| UserError::UnknownUser {
                user: name.to_string(),
                rootfs: rootfs.to_path_buf(),
            })?;
            (entry.uid, Some(entry))
        }
        Id::Num(uid) => {
            let entry = passwd
                .as_deref()
                .and_then(|data| passwd_entries(data).find(|e| e.uid == uid));
            (uid, entry)
        }
    };

    let gid = match group {
        Some(Id::Num(gid)) => gid,
        Some(Id::Name(name)) => {
            let data = groups.as_deref().ok_or_else(|| UserError::NoGroupFile {
                group: name.to_string(),
                rootfs: rootfs.to_path_buf(),
            })?;
            let found = group_entries(data).find(|g| g.name == name);
            found
                .ok_or_else(|| UserError::UnknownGroup {
                    group: name.to_string(),
                    rootfs: rootfs.to_path_buf(),
                })?
                .gid
        }
        // An empty spec is containerd's runtime default 0:0, whatever passwd says of uid 0;
        // otherwise the passwd gid, or 0 for a uid the image does not know (`WithUserID`).
        None if spec.is_empty() => 0,
        None => entry.as_ref().map_or(0, |e| e.gid),
    };

    let mut additional_gids = vec![gid];
    if let (Some(e), Some(data), false) = (&entry, groups.as_deref(), strict) {
        // containerd's `WithAdditionalGIDs`: "we only want supplemental groups", so the
        // group named like the user is skipped even when the user is listed in it.
        additional_gids.extend(
            group_entries(data)
                .filter(|g| g.name != e.name && g.has_member(e.name))
                .map(|g| g.gid),
        );
    }
    additional_gids.extend_from_slice(extra_gids);
    additional_gids.sort_unstable();
    additional_gids.dedup();

    let home = match &entry {
        Some(e) if !e.home.is_empty() => e.home.to_string(),
        _ => "/".to_string(),
    };
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids,
        home,
        name: entry.map(|e| e.name.to_string()),
    })
}

/// Splits `user[:group]`; empty means root.
fn parse_spec(spec: &str) -> Result<(Id<'_>, Option<Id<'_>>), UserError> {
    if spec.is_empty() {
        return Ok((Id::Num(0), None));
    }
    let (user, group) = match spec.split_once(':') {
        None => (spec, None),
        Some((_, group)) if group.contains(':') => {
            return Err(invalid(spec, "more than one ':'"));
        }
        Some((user, group)) => (user, Some(group)),
    };
    let user = parse_id(spec, user, "empty user", "uid out of range")?;
    let group = match group {
        Some(group) => Some(parse_id(spec, group, "empty group", "gid out of range")?),
        None => None,
    };
    Ok((user, group))
}

/// A part made of an optional sign and digits is an id (Go's `strconv.Atoi` accepts the
/// sign too, which is how containerd decides); anything else is a name.
fn parse_id<'a>(
    spec: &str,
    part: &'a str,
    empty: &'static str,
    out_of_range: &'static str,
) -> Result<Id<'a>, UserError> {
    if part.is_empty() {
        return Err(invalid(spec, empty));
    }
    let digits = part.strip_prefix(['+', '-']).unwrap_or(part);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(Id::Name(part));
    }
    if part.starts_with('-') && digits.bytes().any(|b| b != b'0') {
        return Err(invalid(spec, out_of_range));
    }
    match digits.parse::<u64>() {
        Ok(id) if id <= MAX_ID => Ok(Id::Num(id as u32)),
        _ => Err(invalid(spec, out_of_range)),
    }
}

fn invalid(spec: &str, reason: &'static str) -> UserError {
    UserError::InvalidSpec {
        spec: spec.to_string(),
        reason,
    }
}

/// Reads `rootfs/<rel>` resolved inside the rootfs (`sys::inroot`); `None` when the image
/// has no such file.
fn read_db(rootfs: &Path, rel: &str) -> Result<Option<Vec<u8>>, UserError> {
    use std::io::Read;
    let path = rootfs.join(rel);
    let root = Root::open(rootfs).map_err(|source| UserError::Read {
        path: path.clone(),
        source,
    })?;
    // Only a regular file is opened at all: a fifo planted at etc/passwd would block
    // forever, and a device could be read without end.
    let (file, len) = match root.open_regular_file(Path::new(rel)) {
        Ok(found) => found,
        Err(e) if is_absent(&e) => return Ok(None),
        Err(e) if e.kind() == io::ErrorKind::InvalidInput => {
            return Err(UserError::NotRegularFile { path })
        }
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(UserError::TooManySymlinks {
                root: rootfs.to_path_buf(),
                path: PathBuf::from(rel),
            })
        }
        Err(source) => {
            return Err(UserError::Resolve {
                root: rootfs.to_path_buf(),
                path: PathBuf::from(rel),
                source,
            })
        }
    };
    if len > MAX_DB_BYTES {
        return Err(UserError::TooLarge {
            path,
            limit: MAX_DB_BYTES,
        });
    }
    let mut data = Vec::new();
    file.take(MAX_DB_BYTES)
        .read_to_end(&mut data)
        .map_err(|source| UserError::Read { path, source })?;
    Ok(Some(data))
}

/// "Not there": the file, or a directory on the way, is missing or is not a directory.
fn is_absent(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

/// One usable `/etc/passwd` line: `name:password:uid:gid:gecos:home:shell`.
#[derive(Debug, Clone, Copy)]
struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
    home: &'a str,
}

/// One usable `/etc/group` line: `name:password:gid:member,member,…`.
#[derive(Debug, Clone, Copy)]
struct GroupEntry<'a> {
    name: &'a str,
    gid: u32,
    members: &'a str,
}

impl GroupEntry<'_> {
    fn has_member(&self, user: &str) -> bool {
        self.members.split(',').any(|m| m.trim() == user)
    }
}

/// The file's lines with comments, blanks and non-UTF-8 lines dropped, trimmed.
fn lines(data: &[u8]) -> impl Iterator<Item = &str> {
    data.split(|&b| b == b'\n')
        .filter_map(|line| std::str::from_utf8(line).ok())
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
}

/// Usable entries in file order (so `find` gives the first match, as libc does). Lines that
/// are too short, have an empty name or non-numeric ids are skipped rather than failing
/// the container: one bad line in an image should not hide the good ones.
fn passwd_entries(data: &[u8]) -> impl Iterator<Item = PasswdEntry<'_>> {
    lines(data).filter_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next().filter(|n| !n.is_empty())?;
        let _password = fields.next()?;
        let uid = fields.next()?.trim().parse().ok()?;
        let gid = fields.next()?.trim().parse().ok()?;
        let _gecos = fields.next();
        let home = fields.next().unwrap_or("");
        Some(PasswdEntry {
            name,
            uid,
            gid,
            home,
        })
    })
}

fn group_entries(data: &[u8]) -> impl Iterator<Item = GroupEntry<'_>> {
    lines(data).filter_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next().filter(|n| !n.is_empty())?;
        let _password = fields.next()?;
        let gid = fields.next()?.trim().parse().ok()?;
        let members = fields.next().unwrap_or("");
        Some(GroupEntry { name, gid, members })
    })
}
