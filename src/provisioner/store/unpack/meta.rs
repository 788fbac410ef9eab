//! An entry's mode, ownership, times and xattrs, from its header and PAX extensions.

use std::io::{self, Read};
use std::path::Path;

use super::stream::StreamErrors;
use super::xattr::xattr_allowed;
use super::UnpackError;
use crate::sys::fs::Timestamp;

const PAX_XATTR_PREFIX: &[u8] = b"SCHILY.xattr.";

/// Metadata of one entry, read from its header and PAX extensions.
pub(super) struct Meta {
    pub(super) mode: u32,
    pub(super) uid: u32,
    pub(super) gid: u32,
    pub(super) atime: Timestamp,
    pub(super) mtime: Timestamp,
    pub(super) xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

pub(super) fn read_meta<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    raw: &Path,
    errs: &StreamErrors,
) -> Result<Meta, UnpackError> {
    let header_err = |field: &'static str| {
        move |source: io::Error| UnpackError::Header {
            entry: raw.to_path_buf(),
            field,
            source,
        }
    };
    let out_of_range =
        |what: &str| io::Error::new(io::ErrorKind::InvalidData, format!("{what} out of range"));
    let header = entry.header();
    let mode = header.mode().map_err(header_err("mode"))? & 0o7777;
    // The tar crate already applies PAX `uid`/`gid` overrides to the header.
    let uid = header.uid().map_err(header_err("uid"))?;
    let uid = u32::try_from(uid).map_err(|_| header_err("uid")(out_of_range("uid")))?;
    let gid = header.gid().map_err(header_err("gid"))?;
    let gid = u32::try_from(gid).map_err(|_| header_err("gid")(out_of_range("gid")))?;
    let mtime = header.mtime().map_err(header_err("mtime"))?;
    let mut mtime = Timestamp {
        secs: i64::try_from(mtime).unwrap_or(i64::MAX),
        nanos: 0,
    };
    let mut atime = None;
    let mut xattrs = Vec::new();
    let extensions = entry.pax_extensions().map_err(|e| {
        errs.classify(e, |source| UnpackError::EntryData {
            entry: raw.to_path_buf(),
            source,
        })
    })?;
    if let Some(extensions) = extensions {
        for extension in extensions {
            let extension = extension.map_err(header_err("PAX extended header"))?;
            let key = extension.key_bytes();
            if key == b"mtime" {
                // Sub-second precision lives only here (e.g. `1700000000.123456789`).
                if let Some(t) = parse_pax_time(extension.value_bytes()) {
                    mtime = t;
                }
            } else if key == b"atime" {
                atime = parse_pax_time(extension.value_bytes());
            } else if let Some(name) = key.strip_prefix(PAX_XATTR_PREFIX) {
                if xattr_allowed(name) {
                    xattrs.push((name.to_vec(), extension.value_bytes().to_vec()));
                } else {
                    tracing::debug!(
                        entry = %raw.display(),
                        xattr = %String::from_utf8_lossy(name),
                        "dropping xattr not allowed in layers"
                    );
                }
            }
        }
    }
    Ok(Meta {
        mode,
        uid,
        gid,
        atime: atime.unwrap_or(mtime),
        mtime,
        xattrs,
    })
}

/// Parses a PAX time value: decimal seconds with an optional fraction, possibly negative.
/// Returns `None` for anything malformed (the header's whole seconds are used instead).
pub(super) fn parse_pax_time(value: &[u8]) -> Option<Timestamp> {
    let text = std::str::from_utf8(value).ok()?;
    let (negative, text) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs: i64 = whole.parse().ok()?;
    let mut nanos: u32 = 0;
    for i in 0..9 {
        let digit = fraction
            .as_bytes()
            .get(i)
            .map_or(0, |b| u32::from(b - b'0'));
        nanos = nanos * 10 + digit;
    }
    Some(if !negative {
        Timestamp { secs, nanos }
    } else if nanos == 0 {
        Timestamp { secs: -secs, nanos }
    } else {
        Timestamp {
            secs: -secs - 1,
            nanos: 1_000_000_000 - nanos,
        }
    })
}
