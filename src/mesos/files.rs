//! LIST_FILES and READ_FILE on standalone containers' sandboxes (ucr-spec.md §6, Mesos
//! `src/files/files.cpp`). The agent serves files under virtual paths it attached; ucr
//! attaches each standalone container's sandbox at `/containers/<id>`, so
//! `/containers/<id>/stdout` is its output. CRI containers have no sandbox here and are
//! not found.
//!
//! As in Mesos: a path nothing is attached at is 404, as is a missing file; a path
//! that leaves the sandbox through a symlink is 400 ("inaccessible"); other failures
//! are 500. Unlike Mesos, which canonicalizes with `realpath` and then compares
//! prefixes (a check a rename can race), every lookup here is made by the kernel below
//! the sandbox's descriptor (`sys::beneath`), and `..` in a path is refused outright.
//! Listing a file gives an empty list, as Mesos's `os::ls` failing does; READ_FILE
//! gives the whole file's `size`, and at most 16 pages of `data` from `offset`.

use std::collections::HashMap;
use std::os::fd::AsFd;
use std::path::{Component, Path, PathBuf};

use http::StatusCode;

use super::calls::Agent;
use super::codec::Refused;
use super::wire::v1::agent::{call, response, Response};
use super::wire::v1::{ContainerId, FileInfo, TimeInfo};
use crate::sys::beneath::{self, Stat};

/// Where standalone containers' sandboxes are attached.
const PREFIX: &str = "/containers/";

/// Mesos caps a read at 16 pages.
fn max_read() -> usize {
    16 * beneath::page_size()
}

/// A virtual path taken apart: the container id and the path inside its sandbox.
#[derive(Debug, PartialEq, Eq)]
pub struct Target {
    pub id: String,
    pub rel: PathBuf,
}

/// Takes a virtual path apart; `Err(400)` for a malformed one, `Err(404)` for one
/// nothing is attached at.
pub fn parse(path: &str) -> Result<Target, Refused> {
    let invalid = |why: &str| {
        Refused(
            StatusCode::BAD_REQUEST,
            format!("Invalid path {path:?}: {why}"),
        )
    };
    if !path.starts_with('/') {
        return Err(invalid("must be absolute, such as /containers/<id>/stdout"));
    }
    if path.contains('\0') {
        return Err(invalid("contains a NUL byte"));
    }
    let trimmed = path.trim_end_matches('/');
    let rest = if trimmed == PREFIX.trim_end_matches('/') {
        ""
    } else if let Some(rest) = trimmed.strip_prefix(PREFIX) {
        rest
    } else {
        return Err(Refused(
            StatusCode::NOT_FOUND,
            format!("Path {path:?} not found: ucr serves /containers/<id>/..."),
        ));
    };
    let mut parts = Path::new(rest).components();
    let id = match parts.next() {
        Some(Component::Normal(id)) => id.to_string_lossy().into_owned(),
        Some(Component::ParentDir) => return Err(invalid("'..' is not allowed")),
        _ => return Err(invalid("names no container")),
    };
    let mut rel = PathBuf::new();
    for c in parts {
        match c {
            Component::Normal(name) => rel.push(name),
            Component::CurDir => {}
            _ => return Err(invalid("'..' is not allowed")),
        }
    }
    Ok(Target { id, rel })
}

/// The sandbox's descriptor for a standalone container that exists.
async fn sandbox(agent: &Agent, t: &Target) -> Result<std::os::fd::OwnedFd, Refused> {
    let not_found = || {
        Refused(
            StatusCode::NOT_FOUND,
            format!("Container {} not found", t.id),
        )
    };
    // An id Mesos would refuse names no container.
    let id = ContainerId {
        value: t.id.clone(),
        parent: None,
    };
    super::containers::valid_id(&id).map_err(|_| not_found())?;
    match agent.core.containerizer.container_status(&t.id).await {
        Ok(c) if c.pod_id.is_none() => {}
        _ => return Err(not_found()),
    }
    let dir = agent.sandboxes.join(&t.id);
    beneath::open_base(&dir).map_err(|e| match e.raw_os_error() {
        Some(libc::ENOENT) => not_found(),
        _ => internal(&dir, e),
    })
}

fn internal(path: &Path, e: std::io::Error) -> Refused {
    Refused(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("Failed to open {}: {e}", path.display()),
    )
}

/// `rel` in the sandbox, or the status Mesos gives.
fn lookup(
    base: &std::os::fd::OwnedFd,
    path: &str,
    rel: &Path,
) -> Result<(std::os::fd::OwnedFd, Stat), Refused> {
    beneath::lookup(base.as_fd(), rel).map_err(|e| match e.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::ENOTDIR) => {
            Refused(StatusCode::NOT_FOUND, format!("Path {path:?} not found"))
        }
        // Out of the sandbox (a symlink pointing out), or a magic link.
        Some(libc::EXDEV) | Some(libc::ELOOP) => Refused(
            StatusCode::BAD_REQUEST,
            format!("Path {path:?} is inaccessible"),
        ),
        Some(libc::ENAMETOOLONG) => Refused(
            StatusCode::BAD_REQUEST,
            format!("Path {path:?} is too long"),
        ),
        _ => Refused(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("Failed to look up {path:?}: {e}"),
        ),
    })
}

pub async fn list(agent: &Agent, call: &call::ListFiles) -> Result<Response, Refused> {
    let t = parse(&call.path)?;
    let base = sandbox(agent, &t).await?;
    let path = call.path.trim_end_matches('/').to_string();
    let rel = t.rel.clone();
    let infos = tokio::task::spawn_blocking(move || -> Result<Vec<FileInfo>, Refused> {
        let (fd, stat) = lookup(&base, &path, &rel)?;
        if !stat.is_dir() {
            return Ok(Vec::new());
        }
        let mut entries = beneath::list(fd.as_fd()).map_err(|e| {
            Refused(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("Failed to list {path:?}: {e}"),
            )
        })?;
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let mut names = Names::default();
        Ok(entries
            .into_iter()
            .map(|(name, s)| {
                file_info(format!("{path}/{}", name.to_string_lossy()), &s, &mut names)
            })
            .collect())
    })
    .await
    .map_err(|e| Refused(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    Ok(Response {
        r#type: Some(response::Type::ListFiles as i32),
        list_files: Some(response::ListFiles { file_infos: infos }),
        ..Default::default()
    })
}

pub async fn read(agent: &Agent, call: &call::ReadFile) -> Result<Response, Refused> {
    let t = parse(&call.path)?;
    let base = sandbox(agent, &t).await?;
    let path = call.path.clone();
    let (offset, length) = (call.offset, call.length);
    let rel = t.rel.clone();
    let (size, data) = tokio::task::spawn_blocking(move || -> Result<(u64, Vec<u8>), Refused> {
        let (fd, stat) = lookup(&base, &path, &rel)?;
        if stat.is_dir() {
            return Err(Refused(
                StatusCode::BAD_REQUEST,
                format!("Cannot read a directory: {path:?}"),
            ));
        }
        let file = beneath::open_regular(&fd).map_err(|e| match e.raw_os_error() {
            Some(libc::EINVAL) => Refused(
                StatusCode::BAD_REQUEST,
                format!("Cannot read {path:?}: not a regular file"),
            ),
            _ => Refused(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("Failed to open {path:?}: {e}"),
            ),
        })?;
        // The size now: the file may grow while we read, and Mesos gives its size.
        let size = file
            .metadata()
            .map_err(|e| Refused(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
            .len();
        let want = read_length(size, offset, length);
        if want == 0 {
            return Ok((size, Vec::new()));
        }
        let data = beneath::read_at(&file, offset, want).map_err(|e| {
            Refused(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("Failed to read {path:?}: {e}"),
            )
        })?;
        Ok((size, data))
    })
    .await
    .map_err(|e| Refused(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    Ok(Response {
        r#type: Some(response::Type::ReadFile as i32),
        read_file: Some(response::ReadFile { size, data }),
        ..Default::default()
    })
}

/// How many bytes READ_FILE reads, as Mesos decides: nothing at or past the end, the rest
/// of the file without a `length`, and never more than 16 pages.
pub fn read_length(size: u64, offset: u64, length: Option<u64>) -> usize {
    if offset >= size {
        return 0;
    }
    let want = length.unwrap_or(size - offset);
    want.min(max_read() as u64) as usize
}

fn file_info(path: String, s: &Stat, names: &mut Names) -> FileInfo {
    FileInfo {
        path,
        nlink: Some(s.nlink.min(i32::MAX as u64) as i32),
        size: Some(s.size),
        mtime: Some(TimeInfo {
            // Whole seconds, as Mesos gives them.
            nanoseconds: s.mtime.saturating_mul(1_000_000_000),
        }),
        mode: Some(s.mode),
        uid: Some(names.user(s.uid)),
        gid: Some(names.group(s.gid)),
    }
}

/// The host's user and group names, read once per call: a name when the host has one
/// for the id, else the number (as Mesos's `getpwuid`/`getgrgid` fallbacks).
#[derive(Default)]
struct Names {
    users: Option<HashMap<u32, String>>,
    groups: Option<HashMap<u32, String>>,
}

impl Names {
    fn user(&mut self, id: u32) -> String {
        let map = self.users.get_or_insert_with(|| ids("/etc/passwd"));
        map.get(&id).cloned().unwrap_or_else(|| id.to_string())
    }

    fn group(&mut self, id: u32) -> String {
        let map = self.groups.get_or_insert_with(|| ids("/etc/group"));
        map.get(&id).cloned().unwrap_or_else(|| id.to_string())
    }
}

/// `name:x:id:...` lines of a passwd or group file, by id (the first name for an id).
fn ids(file: &str) -> HashMap<u32, String> {
    parse_ids(&std::fs::read_to_string(file).unwrap_or_default())
}

fn parse_ids(text: &str) -> HashMap<u32, String> {
    let mut out = HashMap::new();
    for line in text.lines() {
        let mut fields = line.split(':');
        let (Some(name), Some(_), Some(id)) = (fields.next(), fields.next(), fields.next()) else {
            continue;
        };
        if let Ok(id) = id.parse() {
            out.entry(id).or_insert_with(|| name.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(id: &str, rel: &str) -> Target {
        Target {
            id: id.into(),
            rel: rel.into(),
        }
    }

    #[test]
    fn virtual_paths_map_into_the_sandbox() {
        assert_eq!(parse("/containers/c1").expect("ok"), target("c1", ""));
        assert_eq!(parse("/containers/c1/").expect("ok"), target("c1", ""));
        assert_eq!(
            parse("/containers/c1//a/./b/").expect("ok"),
            target("c1", "a/b")
        );
        assert_eq!(
            parse("/containers/c1/stdout").expect("ok"),
            target("c1", "stdout")
        );
    }

    #[test]
    fn bad_virtual_paths_are_400_and_unattached_ones_404() {
        let status = |p: &str| parse(p).expect_err(p).0;
        for bad in [
            "containers/c1",
            "",
            "/containers/",
            "/containers",
            "/containers/..",
            "/containers/../etc",
            "/containers/c1/../c2",
            "/containers/c1/a/../../x",
            "/containers/c1/a\0b",
        ] {
            assert_eq!(status(bad), StatusCode::BAD_REQUEST, "{bad}");
        }
        for missing in ["/", "/etc/passwd", "/slave/log", "/containersx/c1"] {
            assert_eq!(status(missing), StatusCode::NOT_FOUND, "{missing}");
        }
    }

    #[test]
    fn reads_are_capped_at_16_pages() {
        let cap = 16 * beneath::page_size();
        assert_eq!(read_length(10, 0, None), 10);
        assert_eq!(read_length(10, 4, None), 6);
        assert_eq!(read_length(10, 4, Some(3)), 3);
        assert_eq!(read_length(10, 10, None), 0);
        assert_eq!(read_length(10, 99, Some(5)), 0);
        assert_eq!(read_length(10, 0, Some(0)), 0);
        assert_eq!(read_length(1 << 30, 0, None), cap);
        assert_eq!(read_length(1 << 30, 5, Some(u64::MAX)), cap);
    }

    #[test]
    fn names_come_from_passwd_lines() {
        let m = parse_ids(
            "root:x:0:0:root:/root:/bin/sh\nbroken\nnobody:x:65534:65534::/:/x\nalias:x:0:0\n",
        );
        assert_eq!(m.get(&0).map(String::as_str), Some("root"));
        assert_eq!(m.get(&65534).map(String::as_str), Some("nobody"));
        assert_eq!(m.len(), 2);
    }
}
