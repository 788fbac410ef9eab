//! RecordIO, the framing of Mesos's streaming calls (`application/recordio`): each
//! record is its length in decimal ASCII, a `\n`, then that many bytes (a JSON or
//! protobuf message, as `Message-Content-Type`/`Message-Accept` say). Mesos's
//! `common/recordio.hpp` frames and reads it the same way.
//!
//! The decoder is incremental (bytes arrive in whatever chunks the connection gives) and
//! distrusts its input: a length that is not decimal, longer than 20 digits, or above
//! [`MAX_RECORD`] is an error as soon as it is seen, before any of the record is kept,
//! so a client cannot make the daemon buffer more than one bounded record.

use bytes::{Buf, Bytes, BytesMut};

/// The largest record accepted: far above any call or ProcessIO chunk Mesos sends (its
/// switchboard reads stdio in pages), small enough that one client cannot take much.
pub const MAX_RECORD: usize = 16 << 20;
/// Digits in a length: `u64::MAX` has 20; more is garbage.
const MAX_DIGITS: usize = 20;

/// One record framed for the wire.
pub fn encode(record: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(record.len() + 12);
    out.extend_from_slice(record.len().to_string().as_bytes());
    out.extend_from_slice(b"\n");
    out.extend_from_slice(record);
    out.freeze()
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RecordIoError {
    #[error("malformed RecordIO length {0:?}: expected decimal digits and '\\n'")]
    BadLength(String),
    #[error("RecordIO record of {0} bytes is larger than the {MAX_RECORD} accepted")]
    TooLarge(u64),
    #[error("RecordIO stream ended inside a record")]
    Truncated,
}

/// Reads records out of the chunks fed to it.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: BytesMut,
    /// The length of the record being read, once its header has been read.
    want: Option<usize>,
}

impl Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds bytes as they arrived.
    pub fn feed(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// The next whole record, `None` until one is complete. After an error the stream
    /// is not worth reading further.
    pub fn next_record(&mut self) -> Result<Option<Bytes>, RecordIoError> {
        let want = match self.want {
            Some(n) => n,
            None => {
                let Some(newline) = self.buf.iter().position(|b| *b == b'\n') else {
                    // No header yet; but a header is short, and anything longer or
                    // not digits is refused now rather than after 16 MiB of it.
                    if self.buf.len() > MAX_DIGITS || !self.buf.iter().all(u8::is_ascii_digit) {
                        return Err(self.bad_length(self.buf.len()));
                    }
                    return Ok(None);
                };
                let header = &self.buf[..newline];
                if header.is_empty()
                    || header.len() > MAX_DIGITS
                    || !header.iter().all(u8::is_ascii_digit)
                {
                    return Err(self.bad_length(newline));
                }
                // All digits: the only way not to parse is to overflow, which is too
                // large by any measure.
                let n: u64 = std::str::from_utf8(header)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(u64::MAX);
                if n > MAX_RECORD as u64 {
                    return Err(RecordIoError::TooLarge(n));
                }
                self.buf.advance(newline + 1);
                self.want = Some(n as usize);
                n as usize
            }
        };
        if self.buf.len() < want {
            return Ok(None);
        }
        self.want = None;
        Ok(Some(self.buf.split_to(want).freeze()))
    }

    /// At the end of the stream: an error if it stopped inside a record.
    pub fn finish(&self) -> Result<(), RecordIoError> {
        if self.want.is_some() || !self.buf.is_empty() {
            return Err(RecordIoError::Truncated);
        }
        Ok(())
    }

    fn bad_length(&self, upto: usize) -> RecordIoError {
        let shown = &self.buf[..upto.min(24)];
        RecordIoError::BadLength(String::from_utf8_lossy(shown).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(d: &mut Decoder) -> Vec<Bytes> {
        let mut out = Vec::new();
        while let Some(r) = d.next_record().expect("records") {
            out.push(r);
        }
        out
    }

    #[test]
    fn frames_and_reads_back_whole_or_split_at_every_byte() {
        let records: [&[u8]; 4] = [b"hello", b"", b"{\"type\":\"DATA\"}", &[0u8, 10, 255]];
        let wire: Vec<u8> = records.iter().flat_map(|r| encode(r).to_vec()).collect();
        assert_eq!(&wire[..8], b"5\nhello0");
        let mut d = Decoder::new();
        d.feed(&wire);
        assert_eq!(all(&mut d), records.to_vec());
        d.finish().expect("clean end");
        for split in 0..=wire.len() {
            let mut d = Decoder::new();
            d.feed(&wire[..split]);
            let mut got = all(&mut d);
            d.feed(&wire[split..]);
            got.extend(all(&mut d));
            assert_eq!(got, records.to_vec(), "split at {split}");
            d.finish().expect("clean end");
        }
        // One byte at a time.
        let mut d = Decoder::new();
        let mut got = Vec::new();
        for b in &wire {
            d.feed(std::slice::from_ref(b));
            got.extend(all(&mut d));
        }
        assert_eq!(got, records.to_vec());
    }

    #[test]
    fn refuses_malformed_and_absurd_lengths_before_buffering_them() {
        for bad in [
            &b"abc\nxyz"[..],
            b"\nx",
            b"-1\n",
            b" 5\nhello",
            b"5 \nhello",
            b"0x5\n",
        ] {
            let mut d = Decoder::new();
            d.feed(bad);
            assert!(
                matches!(d.next_record(), Err(RecordIoError::BadLength(_))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        // No newline yet, but already not a length.
        let mut d = Decoder::new();
        d.feed(b"12x");
        assert!(matches!(d.next_record(), Err(RecordIoError::BadLength(_))));
        let mut d = Decoder::new();
        d.feed(&[b'9'; 21]);
        assert!(matches!(d.next_record(), Err(RecordIoError::BadLength(_))));
        // Too large, refused on the header alone.
        let mut d = Decoder::new();
        d.feed(format!("{}\n", MAX_RECORD + 1).as_bytes());
        assert_eq!(
            d.next_record(),
            Err(RecordIoError::TooLarge(MAX_RECORD as u64 + 1))
        );
        let mut d = Decoder::new();
        d.feed(b"99999999999999999999\n");
        assert!(matches!(d.next_record(), Err(RecordIoError::TooLarge(_))));
        // A stream cut inside a record or a header.
        let mut d = Decoder::new();
        d.feed(b"5\nhel");
        assert_eq!(d.next_record(), Ok(None));
        assert_eq!(d.finish(), Err(RecordIoError::Truncated));
        let mut d = Decoder::new();
        d.feed(b"5");
        assert_eq!(d.next_record(), Ok(None));
        assert_eq!(d.finish(), Err(RecordIoError::Truncated));
    }
}
