//! What one tar entry means: nothing (skipped), a whiteout, an opaque marker, or a node
//! to create. Nothing here touches the filesystem.

use std::ffi::OsStr;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use tar::EntryType;

use super::meta::read_meta;
use super::path::normalize;
use super::queue::{Node, Op};
use super::stream::StreamErrors;
use super::{UnpackError, OPAQUE_MARKER, WHITEOUT_META_PREFIX, WHITEOUT_PREFIX};

/// Decides what one tar entry means: nothing (skipped), a whiteout, an opaque marker, or
/// a node to create. Pure apart from reading the entry's PAX header; every filesystem
/// check happens in the worker, in order.
pub(super) fn plan<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    errs: &StreamErrors,
) -> Result<Option<Op>, UnpackError> {
    let mut kind = entry.header().entry_type();
    if kind.is_pax_global_extensions() {
        // Global PAX headers carry archive-wide defaults nobody emits for layers; Docker
        // and containerd ignore them too.
        return Ok(None);
    }
    let raw = PathBuf::from(OsStr::from_bytes(&entry.path_bytes()));
    let rel = normalize(&raw).ok_or_else(|| UnpackError::PathEscape { entry: raw.clone() })?;

    // Entries inside AUFS metadata directories (`.wh..wh..plnk/...`) are skipped whole.
    if rel.parent().is_some_and(|parent| {
        parent
            .components()
            .any(|c| c.as_os_str().as_bytes().starts_with(WHITEOUT_META_PREFIX))
    }) {
        tracing::debug!(entry = %raw.display(), "skipping AUFS metadata");
        return Ok(None);
    }
    if let Some(name) = rel.file_name().map(OsStr::as_bytes) {
        if let Some(target) = name.strip_prefix(WHITEOUT_PREFIX) {
            let parent = rel.parent().unwrap_or(Path::new("")).to_path_buf();
            if name == OPAQUE_MARKER {
                return Ok(Some(Op::Opaque { raw, rel, parent }));
            }
            if name.starts_with(WHITEOUT_META_PREFIX) {
                tracing::debug!(entry = %raw.display(), "skipping AUFS metadata");
                return Ok(None);
            }
            if target.is_empty() || target == b"." || target == b".." {
                return Err(UnpackError::InvalidWhiteout { entry: raw });
            }
            let name = OsStr::from_bytes(target).to_os_string();
            return Ok(Some(Op::Whiteout {
                raw,
                rel,
                parent,
                name,
            }));
        }
    }

    // Pre-POSIX tars mark directories as old-style regular files ('\0') with a trailing
    // slash; Go's archive/tar (so Docker) reads them as directories.
    if entry.header().as_bytes()[156] == 0 && entry.path_bytes().ends_with(b"/") {
        kind = EntryType::Directory;
    }
    if rel.as_os_str().is_empty() && kind != EntryType::Directory {
        return Err(UnpackError::RootNotDirectory { entry: raw });
    }
    let device = |field, value: io::Result<Option<u32>>| {
        value
            .map(|v| u64::from(v.unwrap_or(0)))
            .map_err(|source| UnpackError::Header {
                entry: raw.clone(),
                field,
                source,
            })
    };
    let node = match kind {
        EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
            Node::File { size: entry.size() }
        }
        EntryType::Directory => Node::Dir,
        EntryType::Symlink => Node::Symlink {
            target: link_name(entry, &raw)?,
        },
        EntryType::Link => Node::HardLink {
            target: link_name(entry, &raw)?,
        },
        EntryType::Char | EntryType::Block => {
            let major = device("device major", entry.header().device_major())?;
            let minor = device("device minor", entry.header().device_minor())?;
            if kind == EntryType::Char {
                Node::Char { major, minor }
            } else {
                Node::Block { major, minor }
            }
        }
        EntryType::Fifo => Node::Fifo,
        other => {
            return Err(UnpackError::UnsupportedEntryType {
                entry: raw,
                kind: other.as_byte(),
            })
        }
    };
    let meta = read_meta(entry, &raw, errs)?;
    Ok(Some(Op::Create {
        raw,
        rel,
        meta,
        node,
    }))
}

fn link_name<R: Read>(entry: &tar::Entry<'_, R>, raw: &Path) -> Result<PathBuf, UnpackError> {
    match entry.link_name_bytes() {
        Some(bytes) if !bytes.is_empty() => Ok(PathBuf::from(OsStr::from_bytes(&bytes))),
        _ => Err(UnpackError::MissingLinkName {
            entry: raw.to_path_buf(),
        }),
    }
}
