//! The layer stream below the tar parser: every uncompressed byte is hashed for the
//! diff_id, and a failure of the stream itself is told apart from a tar format error.

use std::cell::Cell;
use std::io::{self, Read};
use std::rc::Rc;

use sha2::{Digest, Sha256};

use super::{Compression, UnpackError};

/// Reads until `buf` is full or the stream ends; returns how many bytes were read.
pub(super) fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
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
pub(super) struct HashingReader<S> {
    pub(super) inner: S,
    pub(super) hasher: Sha256,
    pub(super) failure: Rc<Cell<Option<io::Error>>>,
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
pub(super) struct StreamErrors {
    pub(super) compression: Compression,
    pub(super) failure: Rc<Cell<Option<io::Error>>>,
}

impl StreamErrors {
    pub(super) fn classify(
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
