//! User namespaces (CRI `userns_options`, Kubernetes `hostUsers: false`): writing a new
//! namespace's id mappings, and entering one.

use std::io::{self, Write};
use std::path::Path;

/// One range of a mapping: `length` ids from `inside` (in the namespace) onto `outside`
/// (on the host), as a line of `/proc/<pid>/uid_map` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub inside: u32,
    pub outside: u32,
    pub length: u32,
}

/// The text of a map file: one `inside outside length` line per range.
pub fn map_text(ranges: &[Range]) -> String {
    ranges
        .iter()
        .map(|r| format!("{} {} {}\n", r.inside, r.outside, r.length))
        .collect()
}

/// Writes the uid and gid mappings of the user namespace process `pid` has just made
/// (each file can be written once, in a single write; the writer must be privileged in
/// the parent namespace, as the daemon is).
pub fn write_maps(pid: i32, uids: &[Range], gids: &[Range]) -> io::Result<()> {
    for (file, ranges) in [("uid_map", uids), ("gid_map", gids)] {
        let path = format!("/proc/{pid}/{file}");
        let text = map_text(ranges);
        let mut f = std::fs::OpenOptions::new().write(true).open(&path)?;
        f.write_all(text.as_bytes())
            .map_err(|e| io::Error::new(e.kind(), format!("writing {path}: {e}")))?;
    }
    Ok(())
}

/// Enters the user namespace at `path`. Only a single-threaded process may: the caller
/// is a helper process of its own (`launcher`), never the daemon.
pub fn enter(path: &Path) -> io::Result<()> {
    super::ns::join(path, nix::sched::CloneFlags::CLONE_NEWUSER)
}

/// Makes a new user namespace for this process (single-threaded only, as `enter`).
pub fn unshare() -> io::Result<()> {
    super::ns::unshare(nix::sched::CloneFlags::CLONE_NEWUSER)
}

/// Whether the namespace files `a` and `b` are one namespace (same nsfs inode).
pub fn same(a: &Path, b: &Path) -> io::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let (ma, mb) = (std::fs::metadata(a)?, std::fs::metadata(b)?);
    Ok(ma.dev() == mb.dev() && ma.ino() == mb.ino())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_files_take_one_line_per_range() {
        let r = [
            Range {
                inside: 0,
                outside: 200_000,
                length: 65_536,
            },
            Range {
                inside: 65_536,
                outside: 300_000,
                length: 1,
            },
        ];
        assert_eq!(map_text(&r), "0 200000 65536\n65536 300000 1\n");
    }
}
