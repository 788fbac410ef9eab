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
//!
//! Layout: `stream` (hashing and error attribution below the tar parser), `pipeline`
//! (the reading thread, and running it alongside the worker), `queue` (what passes
//! between the two), `entry` and `meta` (what a tar entry means), `path` (lexical
//! normalisation), `apply` (the filesystem worker and its no-escape checks) and `xattr`
//! (which xattrs a layer may set).

mod apply;
mod entry;
mod meta;
mod path;
mod pipeline;
mod queue;
mod stream;
#[cfg(test)]
mod tests;
mod xattr;

use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use pipeline::unpack_stream;
use stream::read_up_to;

/// Read/copy buffer size: large reads amortise decompressor and syscall overhead.
const IO_BUFFER: usize = 1 << 20;

// How layers name whiteouts (OCI image spec), and the xattr overlayfs reads for opaque dirs.
const WHITEOUT_PREFIX: &[u8] = b".wh.";
/// AUFS metadata (`.wh..wh..plnk`, `.wh..wh..tmp`, ...); Docker and containerd skip it.
const WHITEOUT_META_PREFIX: &[u8] = b".wh..wh.";
const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";
const OPAQUE_XATTR: &[u8] = b"trusted.overlay.opaque";

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

fn io_err(op: &'static str, path: &Path, source: io::Error) -> UnpackError {
    UnpackError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}
