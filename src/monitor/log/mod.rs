//! A container's output on disk, in one of two formats ([`LogFormat`]): the CRI
//! container log file below (what `kubectl logs` reads through kubelet), or a Mesos
//! sandbox's plain `stdout` and `stderr` files (`files`).
//!
//! The CRI container log file: what `kubectl logs` reads through kubelet.
//!
//! Each record is one line,
//!
//! ```text
//! 2016-10-06T00:17:09.669794202Z stdout F the content
//! └──── timestamp, UTC ────────┘ stream tag └ content ┘
//! ```
//!
//! as kubelet's reader (`pkg/kubelet/kuberuntime/logs`, `parseCRILog`) splits it: timestamp
//! up to the first space (parsed as RFC 3339 with nanoseconds), `stdout`/`stderr`, a tag whose
//! first `:`-separated field is `F` (full) or `P` (partial), then everything after the third
//! space. kubelet prints an `F` record's content *with* its newline and a `P` record's
//! without, so a long line split into `P…P F` reads back as the original line.
//!
//! Splitting follows containerd's CRI logger (`internal/cri/io/logger.go`, `redirectLogs`):
//! - the `\n` ends the record and is not content; a `\r` right before it is dropped too
//!   (containerd's `readLine` strips `"\r\n"`), any other `\r` is content;
//! - content longer than [`MAX_LINE`] (containerd's default `max_container_log_line_size`,
//!   16 KiB) is cut into `P` records of exactly `MAX_LINE` bytes followed by the rest, so a
//!   line of exactly 16384 bytes is still a single `F`;
//! - at end of stream a last line without newline is written as `P`, not `F`: containerd's
//!   comment reads "readLine only returns error when the message doesn't end with a newline,
//!   in that case it should be treated as a partial line".
//!
//! Timestamps are always UTC with `Z` and nine fractional digits (kubelet's own fixed-width
//! `RFC3339NanoFixed`, which its lenient RFC 3339 parser accepts). containerd instead prints
//! Go's `RFC3339Nano` in the daemon's local zone, which drops trailing zeros; fixed width
//! and one zone keep our records byte-sortable across both streams and across restarts.
//!
//! This runs inside the per-container monitor (target < 1 MiB RSS): the only heap it holds is
//! the unterminated tail of each stream (at most `MAX_LINE + 1` bytes) and one reusable
//! record buffer; complete lines go from the caller's slice to the record buffer directly.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{io_kind, ErrorKind, Kind};

mod files;
#[cfg(test)]
mod tests;

pub use files::FilesWriter;

/// How a container's output is written: the door decides (the CRI door, CRI log lines;
/// the Mesos door, a sandbox's plain files).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// One file of CRI log records (timestamp, stream, tag, line).
    #[default]
    Cri,
    /// `stdout` and `stderr` in a directory, the raw bytes of each stream (Mesos).
    Files,
}

/// The monitor's writer, in the container's format.
#[derive(Debug)]
pub enum LogWriter {
    Cri(CriLogWriter),
    Files(FilesWriter),
}

impl LogWriter {
    /// Feeds `data` read from `stream` (see [`CriLogWriter::write`]).
    pub fn write(&mut self, stream: Stream, data: &[u8], now: SystemTime) -> Result<(), LogError> {
        match self {
            LogWriter::Cri(w) => w.write(stream, data, now),
            LogWriter::Files(w) => w.write(stream, data),
        }
    }

    /// At the end of `stream` (only CRI lines have something pending).
    pub fn flush_partial(&mut self, stream: Stream, now: SystemTime) -> Result<(), LogError> {
        match self {
            LogWriter::Cri(w) => w.flush_partial(stream, now),
            LogWriter::Files(_) => Ok(()),
        }
    }

    /// Opens the file(s) again (CRI `ReopenContainerLog`).
    pub fn reopen(&mut self) -> Result<(), LogError> {
        match self {
            LogWriter::Cri(w) => w.reopen(),
            LogWriter::Files(w) => w.reopen(),
        }
    }
}

/// Longest content of one record, in bytes; longer lines become `P` records of this size.
pub const MAX_LINE: usize = 16 * 1024;

/// Permission bits of a newly created log file (before the umask): kubelet and log
/// collectors running in the node's admin group read it, nobody else.
const LOG_MODE: u32 = 0o640;

/// Length of a record's timestamp, `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`.
pub const TIMESTAMP_LEN: usize = 30;

/// Largest instant we can print with a four-digit year: 9999-12-31T23:59:59Z.
const MAX_SECS: u64 = 253_402_300_799;

/// Which of the container's output streams a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    /// The name the CRI log format uses (`runtimeapi.Stdout` / `Stderr`).
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }

    fn index(self) -> usize {
        match self {
            Stream::Stdout => 0,
            Stream::Stderr => 1,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("opening container log {path}: {source}")]
    Open { path: PathBuf, source: io::Error },
    #[error("writing {stream} record to container log {path}: {source}")]
    Write {
        path: PathBuf,
        stream: &'static str,
        source: io::Error,
    },
    #[error("reopening container log {path} (still writing to the previous file): {source}")]
    Reopen { path: PathBuf, source: io::Error },
}

impl Kind for LogError {
    fn kind(&self) -> ErrorKind {
        match self {
            LogError::Open { source, .. }
            | LogError::Write { source, .. }
            | LogError::Reopen { source, .. } => io_kind(source),
        }
    }
}

/// `F` or `P`, the record's tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tag {
    Full,
    Partial,
}

impl Tag {
    fn as_str(self) -> &'static str {
        match self {
            Tag::Full => "F",
            Tag::Partial => "P",
        }
    }
}

/// Writes a container's stdout and stderr into one CRI log file.
///
/// Not thread-safe by design: the monitor owns it and feeds both streams from one loop, so
/// records from the two streams never interleave *within* a line, and each record reaches
/// the file in a single `write(2)` on an `O_APPEND` descriptor.
#[derive(Debug)]
pub struct CriLogWriter {
    sink: Sink,
    /// The unterminated tail of each stream's current line, indexed by [`Stream::index`].
    /// Holds at most `MAX_LINE` content bytes plus one `\r` that may turn out to be half of a
    /// `"\r\n"` terminator.
    pending: [Vec<u8>; 2],
}

/// The file side, kept apart from `pending` so a record can be built from a pending tail
/// and the caller's bytes without copying either first.
#[derive(Debug)]
struct Sink {
    path: PathBuf,
    /// The trusted directory the log is opened below, and the path below it (see
    /// [`CriLogWriter::open_beneath`]).
    base: PathBuf,
    rel: PathBuf,
    file: File,
    /// Reused for every record, so a steady stream of lines allocates nothing.
    record: Vec<u8>,
}

impl CriLogWriter {
    /// Opens (creating with mode 0640 if needed) `path` for appending. Existing content is
    /// kept: a restarted monitor continues the same file, as kubelet expects. A symlink
    /// at `path` is refused (see [`Self::open_beneath`]).
    pub fn open(path: &Path) -> Result<Self, LogError> {
        let base = path.parent().unwrap_or(Path::new("/"));
        let rel = path.file_name().map_or(PathBuf::new(), PathBuf::from);
        Self::open_beneath(base, &rel)
    }

    /// Opens `base/rel`: `base` (kubelet's pod log directory) as given, `rel` (the
    /// container's log path) without following any symlink. The monitor writes as root in
    /// a directory that a container may see through a volume, and a symlink planted at
    /// `0.log` (say, to `/etc/shadow`) must not make it append there.
    pub fn open_beneath(base: &Path, rel: &Path) -> Result<Self, LogError> {
        let path = base.join(rel);
        let file = open_log(base, rel).map_err(|source| LogError::Open {
            path: path.clone(),
            source,
        })?;
        Ok(Self {
            sink: Sink {
                path,
                base: base.to_path_buf(),
                rel: rel.to_path_buf(),
                file,
                record: Vec::new(),
            },
            pending: [Vec::new(), Vec::new()],
        })
    }

    /// The file this writer appends to.
    pub fn path(&self) -> &Path {
        &self.sink.path
    }

    /// Feeds `data` read from `stream`: every line it completes becomes records stamped with
    /// `now`; an unterminated tail is kept until the next call (or [`Self::flush_partial`]).
    ///
    /// A failed write loses that record but not the stream's position: the rest of `data` is
    /// still processed and the first error is returned afterwards. containerd does the same
    /// ("Continue on write error to drain the container output"), and the container must
    /// never block on a full pipe because the log disk is full.
    pub fn write(&mut self, stream: Stream, data: &[u8], now: SystemTime) -> Result<(), LogError> {
        let stamp = format_timestamp(now);
        let mut first_error = None;
        let mut rest = data;
        while let Some(nl) = rest.iter().position(|&b| b == b'\n') {
            self.feed(stream, &rest[..nl], true, &stamp, &mut first_error);
            rest = &rest[nl + 1..];
        }
        if !rest.is_empty() {
            self.feed(stream, rest, false, &stamp, &mut first_error);
        }
        first_error.map_or(Ok(()), Err)
    }

    /// At end of `stream`: writes its unterminated last line, if any, as `P` (containerd's
    /// choice, see the module comment). A pending lone `\r` is content here, since no `\n`
    /// can follow it any more.
    pub fn flush_partial(&mut self, stream: Stream, now: SystemTime) -> Result<(), LogError> {
        let stamp = format_timestamp(now);
        let mut first_error = None;
        let pending = &mut self.pending[stream.index()];
        let mut start = 0;
        while start < pending.len() {
            let end = (start + MAX_LINE).min(pending.len());
            let chunk = &pending[start..end];
            note(
                &mut first_error,
                self.sink.emit(stream, Tag::Partial, &stamp, chunk, &[]),
            );
            start = end;
        }
        pending.clear();
        // The stream is over: give the line buffer's memory back.
        pending.shrink_to_fit();
        first_error.map_or(Ok(()), Err)
    }

    /// Closes and reopens the path, for CRI `ReopenContainerLog` after kubelet renamed the
    /// file during rotation; later records go to a fresh file at the same path, while
    /// unterminated tails stay buffered and land in the new file.
    ///
    /// The new file is opened *before* the old handle is dropped, so on error the writer
    /// keeps appending to the old (renamed) file. That is what kubelet counts on: when
    /// `ReopenContainerLog` fails it renames the rotated file back to the log path
    /// (`rotateLatestLog`) and retries next round, so nothing is lost either way.
    pub fn reopen(&mut self) -> Result<(), LogError> {
        let file =
            open_log(&self.sink.base, &self.sink.rel).map_err(|source| LogError::Reopen {
                path: self.sink.path.clone(),
                source,
            })?;
        self.sink.file = file;
        Ok(())
    }

    /// Appends `segment` (newline-free) to the stream's current line, emitting `P` records
    /// while more than `MAX_LINE` bytes are certainly content, and the `F` record when
    /// `terminated` (the segment was followed by `\n`).
    fn feed(
        &mut self,
        stream: Stream,
        segment: &[u8],
        terminated: bool,
        stamp: &[u8; TIMESTAMP_LEN],
        first_error: &mut Option<LogError>,
    ) {
        let pending = &mut self.pending[stream.index()];
        let mut segment = segment;
        loop {
            let total = pending.len() + segment.len();
            // A trailing '\r' is not content when the '\n' follows, and may not be when the
            // line is still open (the '\n' may come in the next chunk), so it never forces a
            // split. Without this, "16384 bytes + \r\n" written in two pieces would come out
            // as P + F("") instead of one F, unlike containerd.
            let content = total - usize::from(last_byte(pending, segment) == Some(b'\r'));
            if content <= MAX_LINE {
                break;
            }
            if pending.len() >= MAX_LINE {
                let result = self
                    .sink
                    .emit(stream, Tag::Partial, stamp, &pending[..MAX_LINE], &[]);
                note(first_error, result);
                pending.drain(..MAX_LINE);
            } else {
                let (head, tail) = segment.split_at(MAX_LINE - pending.len());
                let result = self.sink.emit(stream, Tag::Partial, stamp, pending, head);
                note(first_error, result);
                pending.clear();
                segment = tail;
            }
        }
        if terminated {
            let (head, tail) = strip_trailing_cr(pending, segment);
            let result = self.sink.emit(stream, Tag::Full, stamp, head, tail);
            note(first_error, result);
            pending.clear();
        } else {
            reserve_bounded(pending, segment.len());
            pending.extend_from_slice(segment);
        }
    }
}

impl Sink {
    /// Writes one record whose content is `head` followed by `tail`, in a single write.
    fn emit(
        &mut self,
        stream: Stream,
        tag: Tag,
        stamp: &[u8; TIMESTAMP_LEN],
        head: &[u8],
        tail: &[u8],
    ) -> Result<(), LogError> {
        let record = &mut self.record;
        record.clear();
        // Exact, so a full 16 KiB record does not double the buffer to 32 KiB.
        record.reserve_exact(TIMESTAMP_LEN + 11 + head.len() + tail.len());
        record.extend_from_slice(stamp);
        record.push(b' ');
        record.extend_from_slice(stream.as_str().as_bytes());
        record.push(b' ');
        record.extend_from_slice(tag.as_str().as_bytes());
        record.push(b' ');
        record.extend_from_slice(head);
        record.extend_from_slice(tail);
        record.push(b'\n');
        self.file
            .write_all(record)
            .map_err(|source| LogError::Write {
                path: self.path.clone(),
                stream: stream.as_str(),
                source,
            })
    }
}

fn open_log(base: &Path, rel: &Path) -> io::Result<File> {
    let base = crate::sys::inroot::Root::open(base)?;
    crate::sys::inroot::open_append_beneath(base.as_fd(), rel, LOG_MODE)
}

/// Keeps the first error; later ones are usually the same failure again.
fn note(first_error: &mut Option<LogError>, result: Result<(), LogError>) {
    if let Err(err) = result {
        first_error.get_or_insert(err);
    }
}

fn last_byte(head: &[u8], tail: &[u8]) -> Option<u8> {
    tail.last().or(head.last()).copied()
}

/// Drops one `\r` ending the concatenation `head ++ tail` (the `"\r\n"` terminator's half).
fn strip_trailing_cr<'a>(head: &'a [u8], tail: &'a [u8]) -> (&'a [u8], &'a [u8]) {
    match (head, tail) {
        (_, [rest @ .., b'\r']) => (head, rest),
        ([rest @ .., b'\r'], []) => (rest, tail),
        _ => (head, tail),
    }
}

/// Grows `buf` for `extra` more bytes without letting `Vec`'s doubling overshoot the most a
/// pending tail can hold (`MAX_LINE + 1`), which would waste up to 16 KiB per stream.
fn reserve_bounded(buf: &mut Vec<u8>, extra: usize) {
    let needed = buf.len() + extra;
    if needed > buf.capacity() {
        let target = needed.max(buf.capacity() * 2).clamp(64, MAX_LINE + 1);
        buf.reserve_exact(target.max(needed) - buf.len());
    }
}

/// Formats `now` as `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ` in UTC without allocating.
///
/// Instants before 1970 print as the epoch and after year 9999 as its last second: the CRI
/// format has no room for either, and a clock that far off is the host's problem.
pub fn format_timestamp(now: SystemTime) -> [u8; TIMESTAMP_LEN] {
    let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let (secs, nanos) = if since_epoch.as_secs() > MAX_SECS {
        (MAX_SECS, 999_999_999)
    } else {
        (since_epoch.as_secs(), since_epoch.subsec_nanos())
    };
    let (year, month, day) = civil_from_days(secs / 86_400);
    let second_of_day = secs % 86_400;

    let mut out = *b"0000-00-00T00:00:00.000000000Z";
    put_digits(&mut out[0..4], u64::from(year));
    put_digits(&mut out[5..7], u64::from(month));
    put_digits(&mut out[8..10], u64::from(day));
    put_digits(&mut out[11..13], second_of_day / 3600);
    put_digits(&mut out[14..16], second_of_day / 60 % 60);
    put_digits(&mut out[17..19], second_of_day % 60);
    put_digits(&mut out[20..29], u64::from(nanos));
    out
}

/// Writes `value` as exactly `out.len()` decimal digits, zero-padded on the left.
fn put_digits(out: &mut [u8], mut value: u64) {
    for slot in out.iter_mut().rev() {
        // `value % 10` is below 10, so the cast cannot truncate.
        *slot = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day): Howard Hinnant's
/// `civil_from_days`, restricted to non-negative day counts.
fn civil_from_days(days: u64) -> (u32, u32, u32) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    // Bounded by MAX_SECS: year <= 9999, month <= 12, day <= 31.
    (year as u32, month as u32, day as u32)
}
