//! Layer unpacker: turns one image layer (a tar stream, optionally gzip- or
//! zstd-compressed) into a directory in the overlayfs on-disk format.
//!
//! The output is what both the overlay backend (as a lower dir) and the copy backend read:
//! - a `.wh.<name>` whiteout becomes a character device 0/0 named `<name>`;
//! - a `.wh..wh..opq` marker in D becomes the xattr `trusted.overlay.opaque=y` on D;
//! - everything else is created as the tar says, with numeric ownership, full mode bits
//!   (setuid/setgid/sticky), mtimes, allowed xattrs, device nodes, fifos and links.
//!
//! Layers are untrusted input. The invariant this module keeps is that nothing is ever
//! created, written, chowned, chmodded or timestamped outside `dest`:
//! - entry paths are normalised lexically (`/` and `./` prefixes dropped, `a/../b` is `b`)
//!   and rejected when a `..` would climb above the layer root;
//! - parent directories are checked with `lstat` and a symlink anywhere among them is an
//!   error (the kernel would follow it); verified directories are cached so a layer with
//!   many files in one directory costs one `lstat` per directory, not per file, and the
//!   cache is dropped whenever a directory is replaced;
//! - the final component is never followed: files are created `O_CREAT|O_EXCL` after
//!   removing whatever was there, and metadata goes through `lchown`, `lsetxattr`,
//!   `utimensat(AT_SYMLINK_NOFOLLOW)` or the open file descriptor;
//! - symlink entries may point anywhere (absolute targets are normal in images and are
//!   resolved inside the container's rootfs later), but hard link targets must name an
//!   existing non-directory inside the layer reached without symlinks.
//!
//! Unpacking is a two-stage pipeline: the calling thread reads, decompresses, hashes and
//! parses the stream, and one scoped worker thread applies the entries to the filesystem
//! in tar order, so decompression overlaps with the syscalls.
//!
//! The diff_id is the sha256 of the uncompressed stream, every byte the decompressor yields
//! up to EOF (including the end-of-archive zero blocks and any padding after them), so it
//! matches `sha256sum` of the uncompressed tar and the image config's `rootfs.diff_ids`.
//! The caller must compare the two: that is the layer's integrity check, and it is what
//! catches an uncompressed stream truncated exactly at an entry boundary, which tar itself
//! cannot tell from a clean end.

use std::cell::Cell;
use std::collections::{BTreeMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::fs::{self, DirBuilder, OpenOptions, Permissions};
use std::io::{self, BufReader, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::thread;

use sha2::{Digest, Sha256};
use tar::EntryType;

use crate::sys::fs::{self as sysfs, Timestamp};

/// Read/copy buffer size: large reads amortise decompressor and syscall overhead.
const IO_BUFFER: usize = 1 << 20;
/// Batches of operations queued between the reading thread and the filesystem worker.
/// A batch holds at most about `IO_BUFFER` bytes of file data (one chunk may overshoot it),
/// so this bounds memory in flight to about 16 MiB.
const QUEUE_DEPTH: usize = 8;
/// Operations per batch: batching keeps the two threads from waking each other once per
/// small file, which on a layer of many small files costs more than it overlaps.
const BATCH_OPS: usize = 512;
const WHITEOUT_PREFIX: &[u8] = b".wh.";
/// AUFS metadata (`.wh..wh..plnk`, `.wh..wh..tmp`, ...); Docker and containerd skip it.
const WHITEOUT_META_PREFIX: &[u8] = b".wh..wh.";
const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";
const OPAQUE_XATTR: &[u8] = b"trusted.overlay.opaque";
const PAX_XATTR_PREFIX: &[u8] = b"SCHILY.xattr.";

/// What unpacking one layer produced, recorded in the store's metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnpackedLayer {
    /// `sha256:<hex>` of the uncompressed tar stream (all bytes, trailing padding included).
    pub diff_id: String,
    /// Bytes of regular file content written.
    pub size: u64,
    /// Filesystem objects created: files, directories (including parents the layer did not
    /// list), symlinks, device nodes, fifos and whiteout devices. Hard links add no inode and
    /// are not counted; an entry merged into an existing directory is not counted.
    pub inodes: u64,
    /// Paths (relative to the layer root) deleted by `.wh.<name>` markers, in tar order.
    pub whiteouts: Vec<PathBuf>,
    /// Directories made opaque by `.wh..wh..opq` (the layer root is the empty path).
    pub opaque_dirs: Vec<PathBuf>,
}

/// Compression of a layer stream, detected from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

/// Why unpacking a layer failed. Entry paths are as written in the tar (before
/// normalisation), so they can be matched against `tar tvf` output.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("reading the layer stream")]
    Read {
        #[source]
        source: io::Error,
    },
    #[error("decompressing the {compression:?} layer stream")]
    Decompress {
        compression: Compression,
        #[source]
        source: io::Error,
    },
    #[error("reading the next tar header")]
    Tar {
        #[source]
        source: io::Error,
    },
    #[error("reading the data of entry {}", .entry.display())]
    EntryData {
        entry: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("entry {}: invalid {field} in tar header", .entry.display())]
    Header {
        entry: PathBuf,
        field: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("entry {}: archive ended after {written} of {expected} bytes", .entry.display())]
    Truncated {
        entry: PathBuf,
        expected: u64,
        written: u64,
    },
    #[error("entry {}: path escapes the layer root", .entry.display())]
    PathEscape { entry: PathBuf },
    #[error(
        "entry {}: parent {} is a symlink; refusing to write through it",
        .entry.display(), .component.display()
    )]
    SymlinkInPath { entry: PathBuf, component: PathBuf },
    #[error("entry {}: parent {} is not a directory", .entry.display(), .component.display())]
    NotADirectory { entry: PathBuf, component: PathBuf },
    #[error("entry {}: only a directory may stand for the layer root", .entry.display())]
    RootNotDirectory { entry: PathBuf },
    #[error("entry {}: link entry without a link name", .entry.display())]
    MissingLinkName { entry: PathBuf },
    #[error(
        "entry {}: hard link target {} is outside the layer or behind a symlink",
        .entry.display(), .target.display()
    )]
    LinkEscape { entry: PathBuf, target: PathBuf },
    #[error(
        "entry {}: hard link target {} does not exist in the layer",
        .entry.display(), .target.display()
    )]
    LinkTargetMissing { entry: PathBuf, target: PathBuf },
    #[error("entry {}: whiteout names no file", .entry.display())]
    InvalidWhiteout { entry: PathBuf },
    #[error("entry {}: unsupported tar entry type {kind:#04x}", .entry.display())]
    UnsupportedEntryType { entry: PathBuf, kind: u8 },
    #[error("{op} {}", .path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Recognises gzip (`1f 8b`) and zstd (`28 b5 2f fd`) magic; anything else is taken to be
/// an uncompressed tar.
pub fn detect_compression(magic: &[u8]) -> Compression {
    if magic.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

/// Unpacks a layer tar stream (compressed or not, auto-detected from its first bytes) into
/// `dest`, an existing empty directory. Errors leave `dest` in an unspecified state: the
/// caller unpacks into a temp dir and deletes it on error.
///
/// Blocking (file I/O and decompression) and uses one extra scoped thread for the
/// filesystem work; call it from `spawn_blocking` in async code.
pub fn unpack_layer<R: Read>(mut reader: R, dest: &Path) -> Result<UnpackedLayer, UnpackError> {
    let mut magic = [0u8; 4];
    let got = read_up_to(&mut reader, &mut magic).map_err(|source| UnpackError::Read { source })?;
    let compression = detect_compression(&magic[..got]);
    let head: &[u8] = &magic[..got];
    let raw = head.chain(reader);
    match compression {
        Compression::None => unpack_stream(raw, compression, dest),
        Compression::Gzip => {
            // Multi-member aware, as Go's gzip reader (used by Docker and containerd) is.
            let input = BufReader::with_capacity(IO_BUFFER, raw);
            unpack_stream(
                flate2::bufread::MultiGzDecoder::new(input),
                compression,
                dest,
            )
        }
        Compression::Zstd => {
            let input = BufReader::with_capacity(IO_BUFFER, raw);
            let decoder = zstd::stream::read::Decoder::with_buffer(input).map_err(|source| {
                UnpackError::Decompress {
                    compression,
                    source,
                }
            })?;
            unpack_stream(decoder, compression, dest)
        }
    }
}

/// Reads until `buf` is full or the stream ends; returns how many bytes were read.
fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Hashes every byte read through it, and remembers the first error of the underlying
/// stream so it can be reported as a read/decompression failure rather than as whatever
/// the tar parser makes of it.
struct HashingReader<S> {
    inner: S,
    hasher: Sha256,
    failure: Rc<Cell<Option<io::Error>>>,
}

impl<S: Read> Read for HashingReader<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.hasher.update(&buf[..n]);
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) => {
                let copy = io::Error::new(e.kind(), e.to_string());
                let first = self.failure.take().unwrap_or(e);
                self.failure.set(Some(first));
                Err(copy)
            }
        }
    }
}

/// Turns an error seen while reading the archive into the right variant: the stream's own
/// error when the stream failed, otherwise what `otherwise` builds (a tar format problem).
struct StreamErrors {
    compression: Compression,
    failure: Rc<Cell<Option<io::Error>>>,
}

impl StreamErrors {
    fn classify(
        &self,
        err: io::Error,
        otherwise: impl FnOnce(io::Error) -> UnpackError,
    ) -> UnpackError {
        match self.failure.take() {
            Some(source) if self.compression == Compression::None => UnpackError::Read { source },
            Some(source) => UnpackError::Decompress {
                compression: self.compression,
                source,
            },
            None => otherwise(err),
        }
    }
}

fn unpack_stream<S: Read>(
    stream: S,
    compression: Compression,
    dest: &Path,
) -> Result<UnpackedLayer, UnpackError> {
    let errs = StreamErrors {
        compression,
        failure: Rc::new(Cell::new(None)),
    };
    let hashing = HashingReader {
        inner: stream,
        hasher: Sha256::new(),
        failure: Rc::clone(&errs.failure),
    };
    // Hash before buffering so the hasher sees large chunks; tar reads 512-byte headers
    // from the buffer.
    let mut archive = tar::Archive::new(BufReader::with_capacity(IO_BUFFER, hashing));

    // Two-stage pipeline: this thread reads, decompresses, hashes and parses (CPU-bound);
    // a worker does the filesystem work (syscall-bound), so the two overlap. The worker
    // applies operations strictly in tar order, so the result is the same as a serial
    // unpack. The stream stays on this thread, so `R` need not be `Send`.
    let (ops_tx, ops_rx) = mpsc::sync_channel::<Vec<Op>>(QUEUE_DEPTH);
    let (recycle_tx, recycle_rx) = mpsc::channel::<Vec<u8>>();
    let span = tracing::Span::current();
    let (read, applied) = thread::scope(|scope| {
        let worker = thread::Builder::new()
            .name("ucr-unpack".into())
            .spawn_scoped(scope, move || {
                let _entered = span.enter();
                Unpacker::new(dest, recycle_tx).run(&mut OpReceiver::new(ops_rx))
            })
            .map_err(|source| io_err("spawn unpack thread for", dest, source))?;
        let mut ops = OpSender::new(ops_tx);
        let read = read_archive(&mut archive, &errs, &mut ops, &recycle_rx).and_then(|()| {
            // The archive ends at its first zero block; hash the rest (the second zero
            // block and any record padding) so the digest covers the whole stream.
            let mut rest = archive.into_inner();
            io::copy(&mut rest, &mut io::sink()).map_err(|e| {
                Stop::Failed(errs.classify(e, |source| UnpackError::Read { source }))
            })?;
            ops.push(Op::End, 0)?;
            ops.flush()?;
            Ok(rest.into_inner().hasher.finalize())
        });
        drop(ops);
        let applied = worker
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        Ok::<_, UnpackError>((read, applied))
    })?;
    match (read, applied) {
        // When both sides failed, the worker's error is about an earlier entry.
        (_, Err(e)) | (Err(Stop::Failed(e)), _) => Err(e),
        (Ok(digest), Ok(Some(mut layer))) => {
            layer.diff_id = format!("sha256:{}", hex::encode(digest));
            Ok(layer)
        }
        // Neither side stopped with an error yet the other saw it go away: cannot happen
        // (the worker only leaves early on error, and only without `End` when we failed),
        // but report it rather than panic.
        (Err(Stop::WorkerGone), Ok(_)) | (Ok(_), Ok(None)) => Err(io_err(
            "unpack layer into",
            dest,
            io::Error::other("unpack thread stopped before the end of the archive"),
        )),
    }
}

/// Why the reading side stopped early.
enum Stop {
    Failed(UnpackError),
    /// The worker hung up: it failed, and its error is the one to report.
    WorkerGone,
}

impl From<UnpackError> for Stop {
    fn from(e: UnpackError) -> Self {
        Stop::Failed(e)
    }
}

/// Filesystem work for the worker, in tar order.
enum Op {
    Create {
        raw: PathBuf,
        rel: PathBuf,
        meta: Meta,
        node: Node,
    },
    /// `.wh.<name>` in `parent`.
    Whiteout {
        raw: PathBuf,
        rel: PathBuf,
        parent: PathBuf,
        name: OsString,
    },
    /// `.wh..wh..opq` in `parent`.
    Opaque {
        raw: PathBuf,
        rel: PathBuf,
        parent: PathBuf,
    },
    /// Content of the regular file created by the preceding `Create`, in order; exactly
    /// `size` bytes in total follow it.
    Data(Vec<u8>),
    /// The archive was read completely: apply directory times and report.
    End,
}

enum Node {
    File { size: u64 },
    Dir,
    Symlink { target: PathBuf },
    HardLink { target: PathBuf },
    Char { major: u64, minor: u64 },
    Block { major: u64, minor: u64 },
    Fifo,
}

/// The reading side of the queue: collects operations into batches.
struct OpSender {
    tx: SyncSender<Vec<Op>>,
    batch: Vec<Op>,
    bytes: usize,
}

impl OpSender {
    fn new(tx: SyncSender<Vec<Op>>) -> Self {
        Self {
            tx,
            batch: Vec::with_capacity(BATCH_OPS),
            bytes: 0,
        }
    }

    /// Queues `op` (carrying `bytes` of file data), sending the batch when it is full.
    fn push(&mut self, op: Op, bytes: usize) -> Result<(), Stop> {
        self.batch.push(op);
        self.bytes += bytes;
        if self.batch.len() >= BATCH_OPS || self.bytes >= IO_BUFFER {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), Stop> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH_OPS));
        self.bytes = 0;
        self.tx.send(batch).map_err(|_| Stop::WorkerGone)
    }
}

/// The worker side of the queue: yields operations one by one, `None` once the reading
/// side has hung up and everything it sent was consumed.
struct OpReceiver {
    rx: Receiver<Vec<Op>>,
    current: std::vec::IntoIter<Op>,
}

impl OpReceiver {
    fn new(rx: Receiver<Vec<Op>>) -> Self {
        Self {
            rx,
            current: Vec::new().into_iter(),
        }
    }

    fn next(&mut self) -> Option<Op> {
        loop {
            if let Some(op) = self.current.next() {
                return Some(op);
            }
            self.current = self.rx.recv().ok()?.into_iter();
        }
    }
}

/// Reads every entry, turning each into an `Op` for the worker (plus `Data` for files).
fn read_archive<R: Read>(
    archive: &mut tar::Archive<R>,
    errs: &StreamErrors,
    ops: &mut OpSender,
    recycled: &Receiver<Vec<u8>>,
) -> Result<(), Stop> {
    let entries = archive
        .entries()
        .map_err(|source| UnpackError::Tar { source })?;
    for entry in entries {
        let mut entry =
            entry.map_err(|e| errs.classify(e, |source| UnpackError::Tar { source }))?;
        let Some(op) = plan(&mut entry, errs)? else {
            continue;
        };
        let file = match &op {
            Op::Create {
                raw,
                node: Node::File { size },
                ..
            } => Some((raw.clone(), *size)),
            _ => None,
        };
        ops.push(op, 0)?;
        if let Some((raw, size)) = file {
            send_data(&mut entry, &raw, size, errs, ops, recycled)?;
        }
    }
    Ok(())
}

/// Sends a regular file's `size` bytes of content in chunks of at most `IO_BUFFER`,
/// reusing buffers the worker hands back.
fn send_data<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    raw: &Path,
    size: u64,
    errs: &StreamErrors,
    ops: &mut OpSender,
    recycled: &Receiver<Vec<u8>>,
) -> Result<(), Stop> {
    let mut sent = 0u64;
    while sent < size {
        let want = usize::try_from(size - sent).map_or(IO_BUFFER, |left| left.min(IO_BUFFER));
        let mut chunk = if want == IO_BUFFER {
            recycled.try_recv().unwrap_or_default()
        } else {
            Vec::new()
        };
        chunk.resize(want, 0);
        let mut filled = 0;
        while filled < want {
            match entry.read(&mut chunk[filled..]) {
                Ok(0) => {
                    // The tar reader returns EOF early when the stream ends inside an entry.
                    return Err(Stop::Failed(errs.classify(
                        io::ErrorKind::UnexpectedEof.into(),
                        |_| UnpackError::Truncated {
                            entry: raw.to_path_buf(),
                            expected: size,
                            written: sent + filled as u64,
                        },
                    )));
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(Stop::Failed(errs.classify(e, |source| {
                        UnpackError::EntryData {
                            entry: raw.to_path_buf(),
                            source,
                        }
                    })))
                }
            }
        }
        sent += want as u64;
        ops.push(Op::Data(chunk), want)?;
    }
    Ok(())
}

/// Decides what one tar entry means: nothing (skipped), a whiteout, an opaque marker, or
/// a node to create. Pure apart from reading the entry's PAX header; every filesystem
/// check happens in the worker, in order.
fn plan<R: Read>(
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

/// Metadata of one entry, read from its header and PAX extensions.
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    atime: Timestamp,
    mtime: Timestamp,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// The filesystem side: applies `Op`s under `dest`, keeping the no-escape invariant.
struct Unpacker<'d> {
    dest: &'d Path,
    /// Where emptied full-size data buffers go back to the reading side.
    recycle: Sender<Vec<u8>>,
    /// Relative paths known to be real directories (not symlinks) right now. Prefix-closed:
    /// a path is only added after all its ancestors were, so clearing it on any directory
    /// removal is enough to keep it true.
    verified_dirs: HashSet<PathBuf>,
    /// Directory times, applied last because creating children changes a directory's mtime.
    /// Entries under a removed directory are dropped, so every key still names a directory
    /// reached without symlinks when `finish` runs.
    dir_times: BTreeMap<PathBuf, (Timestamp, Timestamp)>,
    out: UnpackedLayer,
}

/// What a parent walk is for: creating an entry (missing parents are made) or checking a
/// hard link target (everything must already exist).
#[derive(Clone, Copy)]
enum Walk<'a> {
    Create,
    LinkTarget(&'a Path),
}

/// Whether the worker should go on; it stops early only when the reading side went away
/// in the middle of a file (the reader failed, and reports its own error).
enum Flow {
    Continue,
    Abandoned,
}

impl<'d> Unpacker<'d> {
    fn new(dest: &'d Path, recycle: Sender<Vec<u8>>) -> Self {
        Self {
            dest,
            recycle,
            verified_dirs: HashSet::new(),
            dir_times: BTreeMap::new(),
            out: UnpackedLayer::default(),
        }
    }

    /// Applies operations until `End` (then returns the result) or until the reading side
    /// hangs up without `End` (it failed; returns `None`).
    fn run(mut self, ops: &mut OpReceiver) -> Result<Option<UnpackedLayer>, UnpackError> {
        while let Some(op) = ops.next() {
            let flow = match op {
                Op::End => return self.finish().map(Some),
                Op::Create {
                    raw,
                    rel,
                    meta,
                    node,
                } => self.create(&raw, &rel, &meta, node, ops)?,
                Op::Whiteout {
                    raw,
                    rel,
                    parent,
                    name,
                } => self.whiteout(&raw, &rel, &parent, &name)?,
                Op::Opaque { raw, rel, parent } => self.opaque(&raw, &rel, &parent)?,
                // Data always directly follows its file's `Create` and is consumed there.
                Op::Data(_) => Flow::Abandoned,
            };
            if let Flow::Abandoned = flow {
                break;
            }
        }
        Ok(None)
    }

    fn create(
        &mut self,
        raw: &Path,
        rel: &Path,
        meta: &Meta,
        node: Node,
        ops: &mut OpReceiver,
    ) -> Result<Flow, UnpackError> {
        match node {
            Node::File { size } => return self.file(raw, rel, meta, size, ops),
            Node::Dir => self.dir(raw, rel, meta)?,
            Node::Symlink { target } => self.symlink(raw, rel, &target, meta)?,
            Node::HardLink { target } => self.hard_link(raw, rel, &target)?,
            Node::Char { major, minor } => {
                self.special(raw, rel, meta, "create device node", |p| {
                    sysfs::mknod_char(p, 0o600, major, minor)
                })?
            }
            Node::Block { major, minor } => {
                self.special(raw, rel, meta, "create device node", |p| {
                    sysfs::mknod_block(p, 0o600, major, minor)
                })?
            }
            Node::Fifo => {
                self.special(raw, rel, meta, "create fifo", |p| sysfs::mkfifo(p, 0o600))?
            }
        }
        Ok(Flow::Continue)
    }

    fn full(&self, rel: &Path) -> PathBuf {
        if rel.as_os_str().is_empty() {
            self.dest.to_path_buf()
        } else {
            self.dest.join(rel)
        }
    }

    /// Makes sure every ancestor of `rel` inside `dest` is a real directory, never a
    /// symlink (which the kernel would follow when we use the path). For `Walk::Create`,
    /// missing ancestors are created 0755 root-owned, as containerd and Docker do for
    /// parents a layer does not list.
    fn check_parents(
        &mut self,
        entry: &Path,
        rel: &Path,
        walk: Walk<'_>,
    ) -> Result<(), UnpackError> {
        let parent = match rel.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => return Ok(()),
        };
        if self.verified_dirs.contains(parent) {
            return Ok(());
        }
        let mut prefix = PathBuf::new();
        for component in parent.components() {
            prefix.push(component);
            if self.verified_dirs.contains(&prefix) {
                continue;
            }
            let full = self.dest.join(&prefix);
            let problem = match fs::symlink_metadata(&full) {
                Ok(m) if m.file_type().is_dir() => None,
                Ok(m) if m.file_type().is_symlink() => Some(UnpackError::SymlinkInPath {
                    entry: entry.to_path_buf(),
                    component: prefix.clone(),
                }),
                Ok(_) => Some(UnpackError::NotADirectory {
                    entry: entry.to_path_buf(),
                    component: prefix.clone(),
                }),
                Err(e) if e.kind() == io::ErrorKind::NotFound => match walk {
                    Walk::Create => {
                        DirBuilder::new()
                            .mode(0o755)
                            .create(&full)
                            .map_err(|source| io_err("create parent directory", &full, source))?;
                        self.out.inodes += 1;
                        None
                    }
                    Walk::LinkTarget(target) => Some(UnpackError::LinkTargetMissing {
                        entry: entry.to_path_buf(),
                        target: target.to_path_buf(),
                    }),
                },
                Err(e) => return Err(io_err("inspect parent directory", &full, e)),
            };
            if let Some(problem) = problem {
                return Err(match (walk, problem) {
                    (Walk::LinkTarget(target), UnpackError::SymlinkInPath { entry, .. }) => {
                        UnpackError::LinkEscape {
                            entry,
                            target: target.to_path_buf(),
                        }
                    }
                    (Walk::LinkTarget(target), UnpackError::NotADirectory { entry, .. }) => {
                        UnpackError::LinkTargetMissing {
                            entry,
                            target: target.to_path_buf(),
                        }
                    }
                    (_, problem) => problem,
                });
            }
            self.verified_dirs.insert(prefix.clone());
        }
        Ok(())
    }

    /// Runs `create` at `full`; if something is already there, removes it and retries once.
    /// Tar semantics: a later entry replaces an earlier one (a file does not write through
    /// an existing symlink or into an existing hard link's shared inode).
    fn create_replacing<T>(
        &mut self,
        rel: &Path,
        full: &Path,
        op: &'static str,
        mut create: impl FnMut(&Path) -> io::Result<T>,
    ) -> Result<T, UnpackError> {
        match create(full) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                self.remove_existing(rel, full)?;
                create(full).map_err(|source| io_err(op, full, source))
            }
            result => result.map_err(|source| io_err(op, full, source)),
        }
    }

    fn remove_existing(&mut self, rel: &Path, full: &Path) -> Result<(), UnpackError> {
        let meta = fs::symlink_metadata(full)
            .map_err(|source| io_err("inspect existing entry", full, source))?;
        if meta.file_type().is_dir() {
            // std's remove_dir_all does not follow symlinks inside the tree.
            fs::remove_dir_all(full)
                .map_err(|source| io_err("remove replaced directory", full, source))?;
            self.forget_dir(rel);
        } else {
            fs::remove_file(full)
                .map_err(|source| io_err("remove replaced entry", full, source))?;
        }
        Ok(())
    }

    /// Forgets everything known about the directory `rel` and below after it was removed.
    fn forget_dir(&mut self, rel: &Path) {
        // Directory replacement is rare; dropping the whole cache is simpler than pruning it
        // and keeps it prefix-closed.
        self.verified_dirs.clear();
        // `Path` orders component-wise, so `rel` and its descendants are one contiguous run.
        let doomed: Vec<PathBuf> = self
            .dir_times
            .range(rel.to_path_buf()..)
            .take_while(|(p, _)| p.starts_with(rel))
            .map(|(p, _)| p.clone())
            .collect();
        for path in doomed {
            self.dir_times.remove(&path);
        }
    }

    /// Creates a regular file and writes the `size` bytes of `Data` that follow its
    /// `Create`.
    fn file(
        &mut self,
        raw: &Path,
        rel: &Path,
        meta: &Meta,
        size: u64,
        ops: &mut OpReceiver,
    ) -> Result<Flow, UnpackError> {
        self.check_parents(raw, rel, Walk::Create)?;
        let full = self.full(rel);
        // O_CREAT|O_EXCL never follows a symlink at the final component.
        let mut file = self.create_replacing(rel, &full, "create file", |p| {
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(p)
        })?;
        let mut written = 0u64;
        while written < size {
            let Some(Op::Data(chunk)) = ops.next() else {
                return Ok(Flow::Abandoned);
            };
            file.write_all(&chunk)
                .map_err(|source| io_err("write file", &full, source))?;
            written += chunk.len() as u64;
            if chunk.capacity() >= IO_BUFFER {
                // The reader may be gone already; then the buffer is simply freed.
                let _ = self.recycle.send(chunk);
            }
        }
        // Order matters: chown clears setuid/setgid and security.capability, so chown
        // first, then chmod, then xattrs; times last since nothing after changes them.
        std::os::unix::fs::fchown(&file, Some(meta.uid), Some(meta.gid))
            .map_err(|source| io_err("chown file", &full, source))?;
        file.set_permissions(Permissions::from_mode(meta.mode))
            .map_err(|source| io_err("chmod file", &full, source))?;
        set_xattrs(&full, meta, false)?;
        sysfs::futimens(&file, meta.atime, meta.mtime)
            .map_err(|source| io_err("set file times", &full, source))?;
        self.out.size += written;
        self.out.inodes += 1;
        Ok(Flow::Continue)
    }

    fn dir(&mut self, raw: &Path, rel: &Path, meta: &Meta) -> Result<(), UnpackError> {
        let full = self.full(rel);
        if !rel.as_os_str().is_empty() {
            self.check_parents(raw, rel, Walk::Create)?;
            let mkdir = |p: &Path| DirBuilder::new().mode(0o700).create(p);
            match mkdir(&full) {
                Ok(()) => self.out.inodes += 1,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    let existing = fs::symlink_metadata(&full)
                        .map_err(|source| io_err("inspect existing entry", &full, source))?;
                    // A directory over a directory merges; anything else is replaced.
                    if !existing.file_type().is_dir() {
                        fs::remove_file(&full)
                            .map_err(|source| io_err("remove replaced entry", &full, source))?;
                        mkdir(&full).map_err(|source| io_err("create directory", &full, source))?;
                        self.out.inodes += 1;
                    }
                }
                Err(e) => return Err(io_err("create directory", &full, e)),
            }
            self.verified_dirs.insert(rel.to_path_buf());
        }
        // `full` is a real directory reached without symlinks, so the path-based calls
        // below act on it and nothing else.
        std::os::unix::fs::lchown(&full, Some(meta.uid), Some(meta.gid))
            .map_err(|source| io_err("chown directory", &full, source))?;
        fs::set_permissions(&full, Permissions::from_mode(meta.mode))
            .map_err(|source| io_err("chmod directory", &full, source))?;
        set_xattrs(&full, meta, false)?;
        self.dir_times
            .insert(rel.to_path_buf(), (meta.atime, meta.mtime));
        Ok(())
    }

    fn symlink(
        &mut self,
        raw: &Path,
        rel: &Path,
        target: &Path,
        meta: &Meta,
    ) -> Result<(), UnpackError> {
        self.check_parents(raw, rel, Walk::Create)?;
        let full = self.full(rel);
        self.create_replacing(rel, &full, "create symlink", |p| {
            std::os::unix::fs::symlink(target, p)
        })?;
        // Symlinks have no mode of their own on Linux; owner and times are set on the link.
        std::os::unix::fs::lchown(&full, Some(meta.uid), Some(meta.gid))
            .map_err(|source| io_err("chown symlink", &full, source))?;
        set_xattrs(&full, meta, true)?;
        sysfs::lutimes(&full, meta.atime, meta.mtime)
            .map_err(|source| io_err("set symlink times", &full, source))?;
        self.out.inodes += 1;
        Ok(())
    }

    /// A hard link shares its target's inode, so the entry's own header metadata is not
    /// applied (GNU tar and containerd do the same).
    fn hard_link(&mut self, raw: &Path, rel: &Path, target_raw: &Path) -> Result<(), UnpackError> {
        let escape = || UnpackError::LinkEscape {
            entry: raw.to_path_buf(),
            target: target_raw.to_path_buf(),
        };
        let target = normalize(target_raw).ok_or_else(escape)?;
        if target.as_os_str().is_empty() {
            return Err(escape());
        }
        self.check_parents(raw, &target, Walk::LinkTarget(target_raw))?;
        let target_full = self.full(&target);
        match fs::symlink_metadata(&target_full) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(UnpackError::LinkTargetMissing {
                    entry: raw.to_path_buf(),
                    target: target_raw.to_path_buf(),
                })
            }
            Err(e) => return Err(io_err("inspect hard link target", &target_full, e)),
        }
        if target == rel {
            return Ok(());
        }
        self.check_parents(raw, rel, Walk::Create)?;
        let full = self.full(rel);
        // link(2) does not follow a symlink target: linking to a symlink links the symlink.
        self.create_replacing(rel, &full, "create hard link", |p| {
            fs::hard_link(&target_full, p)
        })
    }

    /// Device nodes and fifos: `mknod` does the creating, the rest is shared.
    fn special(
        &mut self,
        raw: &Path,
        rel: &Path,
        meta: &Meta,
        op: &'static str,
        create: impl FnMut(&Path) -> io::Result<()>,
    ) -> Result<(), UnpackError> {
        self.check_parents(raw, rel, Walk::Create)?;
        let full = self.full(rel);
        self.create_replacing(rel, &full, op, create)?;
        std::os::unix::fs::lchown(&full, Some(meta.uid), Some(meta.gid))
            .map_err(|source| io_err("chown special file", &full, source))?;
        // chmod(2) on a device node or fifo changes the node; it does not open it.
        fs::set_permissions(&full, Permissions::from_mode(meta.mode))
            .map_err(|source| io_err("chmod special file", &full, source))?;
        set_xattrs(&full, meta, true)?;
        sysfs::lutimes(&full, meta.atime, meta.mtime)
            .map_err(|source| io_err("set special file times", &full, source))?;
        self.out.inodes += 1;
        Ok(())
    }

    /// `.wh.<name>` in D: overlayfs hides D/<name> of lower layers when this layer has a
    /// 0/0 character device there. It replaces anything the same layer put at D/<name>
    /// earlier (the later entry wins, as in containerd). `name` was checked by `plan`.
    fn whiteout(
        &mut self,
        raw: &Path,
        rel: &Path,
        parent: &Path,
        name: &OsStr,
    ) -> Result<Flow, UnpackError> {
        self.check_parents(raw, rel, Walk::Create)?;
        let target = parent.join(name);
        let full = self.full(&target);
        self.create_replacing(&target, &full, "create whiteout", |p| {
            sysfs::mknod_char(p, 0, 0, 0)
        })?;
        self.out.inodes += 1;
        self.out.whiteouts.push(target);
        Ok(Flow::Continue)
    }

    /// `.wh..wh..opq` in D: D hides all of lower layers' D, but keeps what this layer puts
    /// in D (before or after the marker), which is exactly overlayfs' opaque xattr.
    fn opaque(&mut self, raw: &Path, rel: &Path, parent: &Path) -> Result<Flow, UnpackError> {
        self.check_parents(raw, rel, Walk::Create)?;
        let full = self.full(parent);
        sysfs::lsetxattr(&full, OPAQUE_XATTR, b"y")
            .map_err(|source| io_err("set opaque xattr on", &full, source))?;
        self.out.opaque_dirs.push(parent.to_path_buf());
        Ok(Flow::Continue)
    }

    /// Applies directory times. Order does not matter: setting a directory's times does
    /// not touch its parent's.
    fn finish(self) -> Result<UnpackedLayer, UnpackError> {
        for (rel, (atime, mtime)) in &self.dir_times {
            let full = self.full(rel);
            sysfs::lutimes(&full, *atime, *mtime)
                .map_err(|source| io_err("set directory times", &full, source))?;
        }
        Ok(self.out)
    }
}

/// Lexically normalises an entry path relative to the layer root: drops `/` and `.`,
/// resolves `..` against earlier components, and returns `None` when a `..` would climb
/// above the root. The empty path is the root itself.
fn normalize(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(name) => out.push(name),
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

fn link_name<R: Read>(entry: &tar::Entry<'_, R>, raw: &Path) -> Result<PathBuf, UnpackError> {
    match entry.link_name_bytes() {
        Some(bytes) if !bytes.is_empty() => Ok(PathBuf::from(OsStr::from_bytes(&bytes))),
        _ => Err(UnpackError::MissingLinkName {
            entry: raw.to_path_buf(),
        }),
    }
}

fn read_meta<R: Read>(
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

/// Which `SCHILY.xattr.*` attributes a layer may set.
///
/// - `user.*`: ordinary application data.
/// - `security.capability`: file capabilities (e.g. ping's `cap_net_raw`), which images
///   rely on in place of setuid.
/// - `system.posix_acl_access` / `system.posix_acl_default`: POSIX ACLs, part of the
///   file's permissions just like the mode bits.
///
/// Everything else is dropped. `trusted.*` is the host's privileged namespace and in
/// particular `trusted.overlay.*` is what overlayfs trusts on lower dirs: a layer setting
/// `trusted.overlay.opaque`, `.redirect`, `.metacopy` or `.origin` could hide or pull in
/// files of other layers behind the runtime's back, so the only overlay xattrs on disk are
/// the ones this unpacker writes from `.wh..wh..opq` markers. Other `security.*` attributes
/// (SELinux labels, IMA/EVM signatures) are host policy that the runtime applies, not
/// something an image may forge.
fn xattr_allowed(name: &[u8]) -> bool {
    name.starts_with(b"user.")
        || name == b"security.capability"
        || name == b"system.posix_acl_access"
        || name == b"system.posix_acl_default"
}

/// Sets the entry's allowed xattrs. EOPNOTSUPP (a filesystem without user xattrs) is
/// logged and skipped, as containerd does; with `lenient_perm`, so is EPERM, which Linux
/// returns for `user.*` on symlinks and device nodes by design.
fn set_xattrs(full: &Path, meta: &Meta, lenient_perm: bool) -> Result<(), UnpackError> {
    for (name, value) in &meta.xattrs {
        match sysfs::lsetxattr(full, name, value) {
            Ok(()) => {}
            Err(e)
                if sysfs::is_xattr_unsupported(&e)
                    || (lenient_perm && sysfs::is_permission_denied(&e)) =>
            {
                tracing::warn!(
                    path = %full.display(),
                    xattr = %String::from_utf8_lossy(name),
                    error = %e,
                    "xattr not supported here; skipped"
                );
            }
            Err(source) => return Err(io_err("set xattr on", full, source)),
        }
    }
    Ok(())
}

/// Parses a PAX time value: decimal seconds with an optional fraction, possibly negative.
/// Returns `None` for anything malformed (the header's whole seconds are used instead).
fn parse_pax_time(value: &[u8]) -> Option<Timestamp> {
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

fn io_err(op: &'static str, path: &Path, source: io::Error) -> UnpackError {
    UnpackError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    use tar::{Builder, Header};

    const MTIME: u64 = 1_600_000_000;

    /// The uid/gid this test process creates files as.
    fn my_ids() -> (u32, u32) {
        let probe = tempfile::NamedTempFile::new().expect("probe file");
        let meta = probe.as_file().metadata().expect("stat probe");
        (meta.uid(), meta.gid())
    }

    fn is_root() -> bool {
        my_ids().0 == 0
    }

    macro_rules! require_root {
        ($why:literal) => {
            if !is_root() {
                eprintln!(concat!("skipping: needs root (", $why, ")"));
                return;
            }
        };
    }

    /// An in-memory layer. Entries default to the test process's own uid/gid, so tests
    /// that do not check ownership also run unprivileged.
    struct Layer {
        builder: Builder<Vec<u8>>,
        uid: u64,
        gid: u64,
    }

    impl Layer {
        fn new() -> Self {
            let (uid, gid) = my_ids();
            Self {
                builder: Builder::new(Vec::new()),
                uid: u64::from(uid),
                gid: u64::from(gid),
            }
        }

        fn owner(mut self, uid: u64, gid: u64) -> Self {
            self.uid = uid;
            self.gid = gid;
            self
        }

        fn header(&self, kind: EntryType, mode: u32, size: u64) -> Header {
            let mut h = Header::new_gnu();
            h.set_entry_type(kind);
            h.set_mode(mode);
            h.set_size(size);
            h.set_mtime(MTIME);
            h.set_uid(self.uid);
            h.set_gid(self.gid);
            h
        }

        fn file(mut self, path: &str, mode: u32, data: &[u8]) -> Self {
            let mut h = self.header(EntryType::Regular, mode, data.len() as u64);
            self.builder
                .append_data(&mut h, path, data)
                .expect("append file");
            self
        }

        fn dir(mut self, path: &str, mode: u32) -> Self {
            let mut h = self.header(EntryType::Directory, mode, 0);
            self.builder
                .append_data(&mut h, path, io::empty())
                .expect("append dir");
            self
        }

        fn symlink(mut self, path: &str, target: &str) -> Self {
            let mut h = self.header(EntryType::Symlink, 0o777, 0);
            self.builder
                .append_link(&mut h, path, target)
                .expect("append symlink");
            self
        }

        fn hardlink(mut self, path: &str, target: &str) -> Self {
            let mut h = self.header(EntryType::Link, 0o644, 0);
            self.builder
                .append_link(&mut h, path, target)
                .expect("append hardlink");
            self
        }

        fn device(
            mut self,
            path: &str,
            kind: EntryType,
            mode: u32,
            major: u32,
            minor: u32,
        ) -> Self {
            let mut h = self.header(kind, mode, 0);
            h.set_device_major(major).expect("major");
            h.set_device_minor(minor).expect("minor");
            self.builder
                .append_data(&mut h, path, io::empty())
                .expect("append device");
            self
        }

        /// An entry whose name (and link name) bytes go into the header verbatim, bypassing
        /// the Builder's refusal of `..` and absolute paths: what a hostile layer contains.
        fn raw(mut self, kind: EntryType, name: &[u8], link: &[u8], data: &[u8]) -> Self {
            let mut h = self.header(kind, 0o644, data.len() as u64);
            h.as_old_mut().name[..name.len()].copy_from_slice(name);
            h.as_old_mut().linkname[..link.len()].copy_from_slice(link);
            h.set_cksum();
            self.builder.append(&h, data).expect("append raw");
            self
        }

        /// A PAX extended header describing the next entry.
        fn pax(mut self, records: &[(&str, &[u8])]) -> Self {
            let mut body = Vec::new();
            for (key, value) in records {
                let rest = key.len() + value.len() + 3; // ' ', '=', '\n'
                let mut len = rest + 1;
                while len != rest + len.to_string().len() {
                    len = rest + len.to_string().len();
                }
                body.extend_from_slice(format!("{len} {key}=").as_bytes());
                body.extend_from_slice(value);
                body.push(b'\n');
            }
            let mut h = self.header(EntryType::XHeader, 0o644, body.len() as u64);
            h.set_path("PaxHeader").expect("pax path");
            h.set_cksum();
            self.builder.append(&h, &body[..]).expect("append pax");
            self
        }

        fn bytes(self) -> Vec<u8> {
            self.builder.into_inner().expect("finish tar")
        }
    }

    /// A temp dir holding `root` (the unpack destination) and `outside` (must stay empty).
    struct Scratch {
        dir: tempfile::TempDir,
    }

    impl Scratch {
        fn new() -> Self {
            let dir = tempfile::tempdir().expect("tempdir");
            fs::create_dir(dir.path().join("root")).expect("mkdir root");
            fs::create_dir(dir.path().join("outside")).expect("mkdir outside");
            Self { dir }
        }
        fn root(&self) -> PathBuf {
            self.dir.path().join("root")
        }
        fn outside(&self) -> PathBuf {
            self.dir.path().join("outside")
        }
        fn unpack(&self, layer: &[u8]) -> Result<UnpackedLayer, UnpackError> {
            unpack_layer(layer, &self.root())
        }
        fn assert_outside_empty(&self) {
            let left: Vec<_> = fs::read_dir(self.outside())
                .expect("read outside")
                .map(|e| e.expect("dirent").file_name())
                .collect();
            assert!(left.is_empty(), "written outside dest: {left:?}");
        }
    }

    fn sha256_id(bytes: &[u8]) -> String {
        format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
    }

    #[test]
    fn detects_compression_from_magic() {
        assert_eq!(detect_compression(&[0x1f, 0x8b, 8, 0]), Compression::Gzip);
        assert_eq!(
            detect_compression(&[0x28, 0xb5, 0x2f, 0xfd]),
            Compression::Zstd
        );
        assert_eq!(detect_compression(b"etc/"), Compression::None);
        assert_eq!(detect_compression(&[0x1f]), Compression::None);
        assert_eq!(detect_compression(&[]), Compression::None);
    }

    #[test]
    fn normalize_strips_root_and_dots_and_refuses_climbing() {
        let n = |p: &str| normalize(Path::new(p));
        assert_eq!(n("/etc/passwd"), Some(PathBuf::from("etc/passwd")));
        assert_eq!(n("./etc/./passwd"), Some(PathBuf::from("etc/passwd")));
        assert_eq!(n("a/../b"), Some(PathBuf::from("b")));
        assert_eq!(n("./"), Some(PathBuf::new()));
        assert_eq!(n("../escape"), None);
        assert_eq!(n("a/../../escape"), None);
        assert_eq!(n("/../etc"), None);
    }

    #[test]
    fn parses_pax_times() {
        let t = |s: &str| parse_pax_time(s.as_bytes());
        assert_eq!(t("12"), Some(Timestamp { secs: 12, nanos: 0 }));
        assert_eq!(
            t("12.5"),
            Some(Timestamp {
                secs: 12,
                nanos: 500_000_000
            })
        );
        assert_eq!(
            t("1.1234567891"),
            Some(Timestamp {
                secs: 1,
                nanos: 123_456_789
            })
        );
        assert_eq!(
            t("-1.25"),
            Some(Timestamp {
                secs: -2,
                nanos: 750_000_000
            })
        );
        assert_eq!(t("x"), None);
        assert_eq!(t(".5"), None);
    }

    #[test]
    fn files_dirs_modes_mtimes_and_owners_as_root() {
        require_root!("chown to other uids and setuid bits");
        let layer = Layer::new()
            .owner(0, 0)
            .dir("./", 0o755)
            .owner(1000, 1001)
            .dir("home/user", 0o750)
            .file("home/user/.profile", 0o640, b"export A=1\n")
            .owner(0, 0)
            .file("usr/bin/sudo", 0o4755, b"#!/bin/true\n")
            .file("usr/bin/wall", 0o2755, b"")
            .dir("tmp", 0o1777)
            .file("tmp/later-child", 0o600, b"x")
            .bytes();
        let s = Scratch::new();
        let out = s.unpack(&layer).expect("unpack");
        let root = s.root();

        let home = fs::symlink_metadata(root.join("home/user")).expect("home");
        assert!(home.is_dir());
        assert_eq!(
            (home.uid(), home.gid(), home.mode() & 0o7777),
            (1000, 1001, 0o750)
        );
        let profile = fs::symlink_metadata(root.join("home/user/.profile")).expect("profile");
        assert_eq!(
            (profile.uid(), profile.gid(), profile.mode() & 0o7777),
            (1000, 1001, 0o640)
        );
        assert_eq!(
            fs::read(root.join("home/user/.profile")).expect("read"),
            b"export A=1\n"
        );
        assert_eq!(profile.mtime(), MTIME as i64);

        // setuid/setgid survive chown because the mode is set after it.
        let sudo = fs::symlink_metadata(root.join("usr/bin/sudo")).expect("sudo");
        assert_eq!(sudo.mode() & 0o7777, 0o4755);
        let wall = fs::symlink_metadata(root.join("usr/bin/wall")).expect("wall");
        assert_eq!(wall.mode() & 0o7777, 0o2755);

        // Directory mtimes are applied after their children were created.
        let tmp = fs::symlink_metadata(root.join("tmp")).expect("tmp");
        assert_eq!(tmp.mode() & 0o7777, 0o1777);
        assert_eq!(tmp.mtime(), MTIME as i64);
        assert_eq!(home.mtime(), MTIME as i64);
        let dest = fs::symlink_metadata(&root).expect("root");
        assert_eq!((dest.mtime(), dest.mode() & 0o7777), (MTIME as i64, 0o755));

        // `home` and `usr`, `usr/bin` were not listed: created 0755 with a fresh mtime.
        let usr = fs::symlink_metadata(root.join("usr")).expect("usr");
        assert_eq!(usr.mode() & 0o7777, 0o755);

        assert_eq!(out.size, 11 + 12 + 1);
        // home, home/user, .profile, usr, usr/bin, sudo, wall, tmp, later-child
        assert_eq!(out.inodes, 9);
        assert!(out.whiteouts.is_empty() && out.opaque_dirs.is_empty());
    }

    #[test]
    fn files_and_modes_unprivileged() {
        let layer = Layer::new()
            .dir("etc", 0o755)
            .file("etc/hostname", 0o644, b"box\n")
            .file("bin/run", 0o755, b"#!/bin/sh\n")
            .bytes();
        let s = Scratch::new();
        s.unpack(&layer).expect("unpack");
        let run = fs::symlink_metadata(s.root().join("bin/run")).expect("run");
        assert_eq!(run.mode() & 0o7777, 0o755);
        assert_eq!(run.mtime(), MTIME as i64);
        assert_eq!(
            fs::read(s.root().join("etc/hostname")).expect("read"),
            b"box\n"
        );
        let etc = fs::symlink_metadata(s.root().join("etc")).expect("etc");
        assert_eq!(etc.mtime(), MTIME as i64);
    }

    #[test]
    fn symlinks_and_hardlinks_are_preserved() {
        let layer = Layer::new()
            .file("etc/passwd.real", 0o644, b"root:x:0:0\n")
            .symlink("etc/passwd", "/etc/passwd.real")
            .symlink("etc/rel", "../usr/lib")
            .hardlink("etc/passwd.hard", "etc/passwd.real")
            .hardlink("etc/passwd.abs", "/etc/passwd.real")
            .hardlink("etc/link-to-symlink", "./etc/passwd")
            .bytes();
        let s = Scratch::new();
        let out = s.unpack(&layer).expect("unpack");
        let root = s.root();
        assert_eq!(
            fs::read_link(root.join("etc/passwd")).expect("readlink"),
            Path::new("/etc/passwd.real")
        );
        assert_eq!(
            fs::read_link(root.join("etc/rel")).expect("readlink"),
            Path::new("../usr/lib")
        );
        let link = fs::symlink_metadata(root.join("etc/passwd")).expect("lstat");
        assert_eq!(link.mtime(), MTIME as i64);
        let real = fs::symlink_metadata(root.join("etc/passwd.real")).expect("real");
        for name in ["etc/passwd.hard", "etc/passwd.abs"] {
            let hard = fs::symlink_metadata(root.join(name)).expect("hard");
            assert_eq!(hard.ino(), real.ino(), "{name}");
        }
        assert_eq!(real.nlink(), 3);
        let to_symlink = fs::symlink_metadata(root.join("etc/link-to-symlink")).expect("lstat");
        assert!(to_symlink.file_type().is_symlink());
        assert_eq!(to_symlink.ino(), link.ino());
        // etc, passwd.real, two symlinks; hard links add no inodes.
        assert_eq!(out.inodes, 4);
    }

    #[test]
    fn symlink_ownership_as_root() {
        require_root!("lchown to other uids");
        let layer = Layer::new()
            .owner(33, 44)
            .symlink("link", "/nowhere")
            .bytes();
        let s = Scratch::new();
        s.unpack(&layer).expect("unpack");
        let m = fs::symlink_metadata(s.root().join("link")).expect("lstat");
        assert_eq!((m.uid(), m.gid()), (33, 44));
    }

    #[test]
    fn whiteouts_become_char_devices_and_are_recorded() {
        require_root!("mknod");
        let layer = Layer::new()
            .file(".wh.gone", 0o644, b"")
            .dir("usr", 0o755)
            .file("usr/.wh.lib", 0o644, b"")
            .file("deep/er/.wh.x", 0o644, b"")
            .bytes();
        let s = Scratch::new();
        let out = s.unpack(&layer).expect("unpack");
        for path in ["gone", "usr/lib", "deep/er/x"] {
            let m = fs::symlink_metadata(s.root().join(path)).expect(path);
            assert!(m.file_type().is_char_device(), "{path}");
            assert_eq!(m.rdev(), 0, "{path}");
        }
        assert!(!s.root().join(".wh.gone").exists());
        assert!(!s.root().join("usr/.wh.lib").exists());
        assert_eq!(
            out.whiteouts,
            vec![
                PathBuf::from("gone"),
                PathBuf::from("usr/lib"),
                PathBuf::from("deep/er/x")
            ]
        );
    }

    #[test]
    fn invalid_whiteout_names_are_rejected() {
        for name in ["a/.wh..", "a/.wh."] {
            let layer = Layer::new().file(name, 0o644, b"").bytes();
            let s = Scratch::new();
            let err = s.unpack(&layer).expect_err(name);
            assert!(
                matches!(err, UnpackError::InvalidWhiteout { .. }),
                "{name}: {err:?}"
            );
        }
    }

    #[test]
    fn opaque_marker_sets_xattr_and_keeps_same_layer_files() {
        require_root!("trusted.* xattrs");
        let layer = Layer::new()
            .dir("etc", 0o755)
            .file("etc/before", 0o644, b"1")
            .file("etc/.wh..wh..opq", 0o644, b"")
            .file("etc/after", 0o644, b"2")
            .file(".wh..wh..opq", 0o644, b"")
            .bytes();
        let s = Scratch::new();
        let out = s.unpack(&layer).expect("unpack");
        let root = s.root();
        assert_eq!(
            sysfs::lgetxattr(&root.join("etc"), OPAQUE_XATTR).expect("getxattr"),
            Some(b"y".to_vec())
        );
        assert_eq!(
            sysfs::lgetxattr(&root, OPAQUE_XATTR).expect("getxattr"),
            Some(b"y".to_vec())
        );
        assert_eq!(fs::read(root.join("etc/before")).expect("before"), b"1");
        assert_eq!(fs::read(root.join("etc/after")).expect("after"), b"2");
        assert!(!root.join("etc/.wh..wh..opq").exists());
        assert!(!root.join(".wh..wh..opq").exists());
        assert_eq!(out.opaque_dirs, vec![PathBuf::from("etc"), PathBuf::new()]);
    }

    #[test]
    fn aufs_metadata_is_skipped() {
        let layer = Layer::new()
            .dir(".wh..wh..plnk", 0o700)
            .file(".wh..wh..plnk/123.456", 0o644, b"x")
            .file("ok", 0o644, b"y")
            .bytes();
        let s = Scratch::new();
        s.unpack(&layer).expect("unpack");
        assert!(!s.root().join(".wh..wh..plnk").exists());
        assert!(s.root().join("ok").exists());
    }

    #[test]
    fn parent_dir_escape_is_rejected() {
        for name in [&b"../escape"[..], b"a/../../escape", b"/../outside/escape"] {
            let layer = Layer::new()
                .raw(EntryType::Regular, name, b"", b"pwned")
                .bytes();
            let s = Scratch::new();
            let err = s.unpack(&layer).expect_err("must reject");
            assert!(matches!(err, UnpackError::PathEscape { .. }), "{err:?}");
            s.assert_outside_empty();
            assert!(!s.dir.path().join("escape").exists());
        }
    }

    #[test]
    fn absolute_and_dot_paths_are_normalised_into_dest() {
        let layer = Layer::new()
            .raw(EntryType::Regular, b"/abs/path", b"", b"a")
            .raw(EntryType::Regular, b"./etc/passwd", b"", b"b")
            .raw(EntryType::Regular, b"x/../lexical", b"", b"c")
            .bytes();
        let s = Scratch::new();
        s.unpack(&layer).expect("unpack");
        assert_eq!(fs::read(s.root().join("abs/path")).expect("abs"), b"a");
        assert_eq!(fs::read(s.root().join("etc/passwd")).expect("dot"), b"b");
        assert_eq!(fs::read(s.root().join("lexical")).expect("lexical"), b"c");
    }

    #[test]
    fn writing_through_a_symlinked_parent_is_rejected() {
        let s = Scratch::new();
        let outside = s.outside().to_string_lossy().into_owned();
        for target in [outside.as_str(), "../outside"] {
            let layer = Layer::new()
                .symlink("evil", target)
                .file("evil/file", 0o644, b"pwned")
                .bytes();
            let s = Scratch::new();
            let err = s.unpack(&layer).expect_err("must reject");
            assert!(
                matches!(&err, UnpackError::SymlinkInPath { component, .. } if component == Path::new("evil")),
                "{err:?}"
            );
            s.assert_outside_empty();
        }
        // A directory entry below the symlink is refused the same way.
        let layer = Layer::new()
            .symlink("evil", &outside)
            .dir("evil/sub", 0o755)
            .bytes();
        let err = s.unpack(&layer).expect_err("must reject");
        assert!(matches!(err, UnpackError::SymlinkInPath { .. }), "{err:?}");
        s.assert_outside_empty();
    }

    #[test]
    fn a_failure_on_the_filesystem_side_stops_a_long_stream() {
        // The worker fails on the second entry while more than a queue's worth of data is
        // still to come: the reader must notice and stop, not block or keep writing.
        let s = Scratch::new();
        let big = vec![0u8; (QUEUE_DEPTH + 4) * IO_BUFFER];
        let layer = Layer::new()
            .symlink("evil", &s.outside().to_string_lossy())
            .file("evil/file", 0o644, b"pwned")
            .file("big", 0o644, &big)
            .file("after", 0o644, b"x")
            .bytes();
        let err = s.unpack(&layer).expect_err("must reject");
        assert!(matches!(err, UnpackError::SymlinkInPath { .. }), "{err:?}");
        assert!(!s.root().join("after").exists());
        s.assert_outside_empty();
    }

    #[test]
    fn a_directory_later_replaced_by_a_symlink_is_not_followed() {
        // Caches must not vouch for `a` once a later entry turned it into a symlink, and
        // deferred directory times must not be applied through it.
        let s = Scratch::new();
        fs::create_dir(s.outside().join("b")).expect("mkdir outside/b");
        let before = fs::symlink_metadata(s.outside().join("b"))
            .expect("stat")
            .mtime();
        let layer = Layer::new()
            .dir("a", 0o755)
            .dir("a/b", 0o755)
            .symlink("a", &s.outside().to_string_lossy())
            .bytes();
        s.unpack(&layer).expect("unpack");
        assert!(fs::symlink_metadata(s.root().join("a"))
            .expect("a")
            .file_type()
            .is_symlink());
        let after = fs::symlink_metadata(s.outside().join("b"))
            .expect("stat")
            .mtime();
        assert_eq!(before, after);
        assert_ne!(after, MTIME as i64);

        let layer = Layer::new()
            .dir("c", 0o755)
            .symlink("c", &s.outside().to_string_lossy())
            .file("c/f", 0o644, b"pwned")
            .bytes();
        let s2 = Scratch::new();
        let err = s2.unpack(&layer).expect_err("must reject");
        assert!(matches!(err, UnpackError::SymlinkInPath { .. }), "{err:?}");
        assert!(!s.outside().join("f").exists());
    }

    #[test]
    fn a_file_replaces_a_symlink_instead_of_writing_through_it() {
        let s = Scratch::new();
        let victim = s.outside().join("victim");
        fs::write(&victim, b"original").expect("write victim");
        let layer = Layer::new()
            .symlink("f", &victim.to_string_lossy())
            .file("f", 0o644, b"new")
            .bytes();
        s.unpack(&layer).expect("unpack");
        assert_eq!(fs::read(&victim).expect("victim"), b"original");
        assert_eq!(fs::read(s.root().join("f")).expect("f"), b"new");
        assert!(fs::symlink_metadata(s.root().join("f"))
            .expect("f")
            .is_file());
    }

    #[test]
    fn replacing_entries_follows_tar_order() {
        let layer = Layer::new()
            .dir("x", 0o755)
            .file("x/child", 0o644, b"1")
            .file("x", 0o644, b"now a file")
            .file("y", 0o644, b"a file")
            .dir("y", 0o700)
            .dir("z", 0o755)
            .file("z/keep", 0o644, b"k")
            .dir("z", 0o711)
            .file("w", 0o644, b"old")
            .file("w", 0o600, b"new")
            .bytes();
        let s = Scratch::new();
        s.unpack(&layer).expect("unpack");
        let root = s.root();
        assert_eq!(fs::read(root.join("x")).expect("x"), b"now a file");
        assert!(fs::symlink_metadata(root.join("y")).expect("y").is_dir());
        assert_eq!(fs::read(root.join("z/keep")).expect("merged"), b"k");
        let z = fs::symlink_metadata(root.join("z")).expect("z");
        assert_eq!(z.mode() & 0o7777, 0o711);
        assert_eq!(fs::read(root.join("w")).expect("w"), b"new");
    }

    #[test]
    fn non_directory_at_root_is_rejected() {
        let layer = Layer::new()
            .raw(EntryType::Regular, b"./", b"", b"")
            .bytes();
        let s = Scratch::new();
        let err = s.unpack(&layer).expect_err("must reject");
        assert!(
            matches!(err, UnpackError::RootNotDirectory { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn hardlink_escaping_the_layer_is_rejected() {
        for target in ["../../etc/passwd", "a/../../../etc/passwd"] {
            let layer = Layer::new().hardlink("passwd", target).bytes();
            let s = Scratch::new();
            let err = s.unpack(&layer).expect_err("must reject");
            assert!(
                matches!(err, UnpackError::LinkEscape { .. }),
                "{target}: {err:?}"
            );
            assert!(!s.root().join("passwd").exists());
        }
    }

    #[test]
    fn hardlink_through_symlinked_parent_is_rejected() {
        let s = Scratch::new();
        fs::write(s.outside().join("secret"), b"host secret").expect("write secret");
        let layer = Layer::new()
            .symlink("sl", &s.outside().to_string_lossy())
            .hardlink("stolen", "sl/secret")
            .bytes();
        let err = s.unpack(&layer).expect_err("must reject");
        assert!(matches!(err, UnpackError::LinkEscape { .. }), "{err:?}");
        assert!(fs::symlink_metadata(s.root().join("stolen")).is_err());
        let secret = fs::symlink_metadata(s.outside().join("secret")).expect("secret");
        assert_eq!(secret.nlink(), 1);
    }

    #[test]
    fn hardlink_to_missing_target_is_rejected() {
        let layer = Layer::new().hardlink("a", "nope").bytes();
        let s = Scratch::new();
        let err = s.unpack(&layer).expect_err("must reject");
        assert!(
            matches!(err, UnpackError::LinkTargetMissing { .. }),
            "{err:?}"
        );
        let layer = Layer::new().hardlink("a", "no/such/dir/file").bytes();
        let err = Scratch::new().unpack(&layer).expect_err("must reject");
        assert!(
            matches!(err, UnpackError::LinkTargetMissing { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn device_nodes_and_fifos_as_root() {
        require_root!("mknod of devices and chown");
        let layer = Layer::new()
            .owner(0, 5)
            .device("dev/null", EntryType::Char, 0o666, 1, 3)
            .device("dev/loop0", EntryType::Block, 0o660, 7, 0)
            .device("run/fifo", EntryType::Fifo, 0o620, 0, 0)
            .bytes();
        let s = Scratch::new();
        s.unpack(&layer).expect("unpack");
        let null = fs::symlink_metadata(s.root().join("dev/null")).expect("null");
        assert!(null.file_type().is_char_device());
        assert_eq!(
            (null.rdev(), null.mode() & 0o7777, null.gid()),
            (0x103, 0o666, 5)
        );
        let loop0 = fs::symlink_metadata(s.root().join("dev/loop0")).expect("loop0");
        assert!(loop0.file_type().is_block_device());
        assert_eq!((loop0.rdev(), loop0.mode() & 0o7777), (0x700, 0o660));
        let fifo = fs::symlink_metadata(s.root().join("run/fifo")).expect("fifo");
        assert!(fifo.file_type().is_fifo());
        assert_eq!((fifo.mode() & 0o7777, fifo.mtime()), (0o620, MTIME as i64));
    }

    #[test]
    fn fifo_unprivileged() {
        let layer = Layer::new()
            .device("fifo", EntryType::Fifo, 0o640, 0, 0)
            .bytes();
        let s = Scratch::new();
        s.unpack(&layer).expect("unpack");
        let fifo = fs::symlink_metadata(s.root().join("fifo")).expect("fifo");
        assert!(fifo.file_type().is_fifo());
        assert_eq!(fifo.mode() & 0o7777, 0o640);
    }

    #[test]
    fn pax_xattrs_are_filtered_and_capabilities_survive_chown() {
        require_root!("security.capability and chown");
        // VFS_CAP_REVISION_2 with the effective flag, permitting cap_net_bind_service.
        let cap: [u8; 20] = [1, 0, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let layer = Layer::new()
            .owner(1000, 1000)
            .pax(&[
                ("SCHILY.xattr.user.origin", b"layer"),
                ("SCHILY.xattr.trusted.overlay.opaque", b"y"),
                ("SCHILY.xattr.trusted.overlay.redirect", b"/etc"),
                (
                    "SCHILY.xattr.security.selinux",
                    b"system_u:object_r:shadow_t:s0",
                ),
                ("SCHILY.xattr.security.capability", &cap),
                ("mtime", b"1600000000.25"),
            ])
            .file("bin/ping", 0o755, b"\x7fELF")
            .pax(&[("SCHILY.xattr.trusted.overlay.opaque", b"y")])
            .dir("forged", 0o755)
            .bytes();
        let s = Scratch::new();
        s.unpack(&layer).expect("unpack");
        let ping = s.root().join("bin/ping");
        let get = |p: &Path, name: &[u8]| sysfs::lgetxattr(p, name).expect("getxattr");
        assert_eq!(get(&ping, b"user.origin"), Some(b"layer".to_vec()));
        assert_eq!(get(&ping, b"security.capability"), Some(cap.to_vec()));
        assert_eq!(get(&ping, b"trusted.overlay.opaque"), None);
        assert_eq!(get(&ping, b"trusted.overlay.redirect"), None);
        let m = fs::symlink_metadata(&ping).expect("ping");
        assert_eq!((m.uid(), m.mode() & 0o7777), (1000, 0o755));
        assert_eq!((m.mtime(), m.mtime_nsec()), (MTIME as i64, 250_000_000));
        assert_eq!(get(&s.root().join("forged"), OPAQUE_XATTR), None);
    }

    #[test]
    fn long_names_and_link_targets() {
        let long_dir = "d".repeat(120);
        let long_file = format!("{long_dir}/{}", "f".repeat(150));
        let long_target = format!("/{}", "t".repeat(200));
        let layer = Layer::new()
            .file(&long_file, 0o644, b"long")
            .symlink("short", &long_target)
            .hardlink("hard", &long_file)
            .bytes();
        let s = Scratch::new();
        s.unpack(&layer).expect("unpack");
        assert_eq!(fs::read(s.root().join(&long_file)).expect("long"), b"long");
        assert_eq!(
            fs::read_link(s.root().join("short")).expect("readlink"),
            Path::new(&long_target)
        );
        assert_eq!(fs::read(s.root().join("hard")).expect("hard"), b"long");
    }

    fn sample_layer() -> Vec<u8> {
        // Big enough to span several read buffers, with incompressible-ish data.
        let mut big = vec![0u8; 3 * IO_BUFFER + 123];
        let mut x: u32 = 0x1234_5678;
        for b in big.iter_mut() {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            *b = x as u8;
        }
        let mut raw = Layer::new()
            .dir("data", 0o755)
            .file("data/big", 0o644, &big)
            .file("data/small", 0o644, b"hello")
            .bytes();
        // Record padding after the end-of-archive blocks, as `tar -b20` and Docker write.
        raw.resize(raw.len().next_multiple_of(10240) + 10240, 0);
        raw
    }

    fn gzip(raw: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(raw).expect("gzip");
        enc.finish().expect("gzip finish")
    }

    #[test]
    fn all_compressions_give_the_same_diff_id() {
        let raw = sample_layer();
        let expected = sha256_id(&raw);
        let zstd = zstd::encode_all(&raw[..], 3).expect("zstd");
        for (name, stream) in [("none", raw.clone()), ("gzip", gzip(&raw)), ("zstd", zstd)] {
            let s = Scratch::new();
            let out = s.unpack(&stream).expect(name);
            assert_eq!(out.diff_id, expected, "{name}");
            assert_eq!(out.size, 3 * IO_BUFFER as u64 + 123 + 5, "{name}");
            assert_eq!(out.inodes, 3, "{name}");
            assert_eq!(fs::read(s.root().join("data/small")).expect(name), b"hello");
            assert_eq!(
                fs::metadata(s.root().join("data/big")).expect(name).len(),
                3 * IO_BUFFER as u64 + 123
            );
        }
    }

    #[test]
    fn empty_layer_has_the_hash_of_its_zero_blocks() {
        let raw = Layer::new().bytes();
        assert_eq!(raw.len(), 1024);
        let out = Scratch::new().unpack(&raw).expect("unpack");
        assert_eq!(out.diff_id, sha256_id(&raw));
        assert_eq!(out.inodes, 0);
    }

    #[test]
    fn truncated_gzip_is_an_error() {
        let gz = gzip(&sample_layer());
        let cut = &gz[..gz.len() / 2];
        let err = Scratch::new().unpack(cut).expect_err("must fail");
        assert!(
            matches!(
                err,
                UnpackError::Decompress {
                    compression: Compression::Gzip,
                    ..
                }
            ),
            "{err:?}"
        );
        // Cut inside the gzip trailer, after all the tar data: still an error.
        let cut = &gz[..gz.len() - 4];
        let err = Scratch::new().unpack(cut).expect_err("must fail");
        assert!(matches!(err, UnpackError::Decompress { .. }), "{err:?}");
    }

    #[test]
    fn truncated_plain_tar_inside_a_file_is_an_error() {
        let raw = sample_layer();
        let err = Scratch::new()
            .unpack(&raw[..IO_BUFFER])
            .expect_err("must fail");
        assert!(matches!(err, UnpackError::Truncated { .. }), "{err:?}");
    }

    #[test]
    fn read_errors_are_reported_as_stream_errors() {
        struct Failing;
        impl Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::new(
                    io::ErrorKind::ConnectionReset,
                    "registry hung up",
                ))
            }
        }
        let head = Layer::new().file("f", 0o644, &[7u8; 4096]).bytes();
        let stream = (&head[..1024]).chain(Failing);
        let s = Scratch::new();
        match unpack_layer(stream, &s.root()) {
            Err(UnpackError::Read { source }) => {
                assert_eq!(source.kind(), io::ErrorKind::ConnectionReset)
            }
            other => panic!("{other:?}"),
        }
    }
}
