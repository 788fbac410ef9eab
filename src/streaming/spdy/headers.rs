//! SPDY/3 header blocks (section 2.6.10): a 32-bit count, then that many pairs of 32-bit
//! length-prefixed names and values. A header with several values is sent once, its values
//! joined by NUL bytes; names are lower-case ASCII and appear once per block.
//!
//! Blocks are zlib-compressed, and the zlib stream is per connection and per direction: the
//! compressor that wrote the previous block writes the next (a sync flush ends each block)
//! and both sides start from the SPDY/3 dictionary. So one `HeaderCompressor` belongs to a
//! connection's writer and one `HeaderDecompressor` to its reader, and every block sent or
//! received must pass through them in wire order. A block that fails to inflate leaves the
//! reader's zlib state unusable: that is a session error. A block that inflates but does not
//! parse only affects its stream; that is why inflating and parsing are separate here.

use bytes::Bytes;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::dictionary::{DICTIONARY, DICTIONARY_ID};
use super::SpdyError;

/// Header names and values in the order received. Names are lower-case; a header sent with
/// several NUL-separated values appears once per value.
pub type Headers = Vec<(String, String)>;

/// The largest inflated header block accepted or produced. Kubernetes streams carry a
/// handful of short headers (`streamtype`, `port`, `requestid`); this only stops a block
/// from inflating without bound.
pub const MAX_BLOCK_LEN: usize = 1 << 20;
/// The most headers (counting each of a header's values) in one block.
pub const MAX_HEADERS: usize = 1024;

/// The first value of header `name`, compared ASCII case-insensitively. Names on the wire are
/// lower-case, but Kubernetes code names headers in Go's canonical form ("Streamtype" via
/// `http.Header.Get`), so callers need not care about case either.
pub fn get<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Checks that `headers` can be sent, the way `encode_block` would refuse them.
pub fn validate(headers: &[(String, String)]) -> Result<(), SpdyError> {
    encode_block(headers).map(drop)
}

/// The uncompressed block for `headers`. Names are lower-cased (spdystream does the same
/// when writing); repeated names are merged into one NUL-joined value, since a block may
/// not name a header twice.
pub fn encode_block(headers: &[(String, String)]) -> Result<Vec<u8>, SpdyError> {
    if headers.len() > MAX_HEADERS {
        return Err(SpdyError::HeaderBlock("too many headers"));
    }
    let mut merged: Vec<(String, String)> = Vec::with_capacity(headers.len());
    for (name, value) in headers {
        if name.is_empty() {
            return Err(SpdyError::HeaderBlock("empty header name"));
        }
        if !name.bytes().all(|b| b.is_ascii() && b != 0) {
            return Err(SpdyError::HeaderBlock("header name is not NUL-free ASCII"));
        }
        if value.contains('\0') {
            return Err(SpdyError::HeaderBlock("header value holds a NUL"));
        }
        let name = name.to_ascii_lowercase();
        match merged.iter_mut().find(|(n, _)| *n == name) {
            // The spec allows an empty value only on its own, not in a list.
            Some((_, joined)) if joined.is_empty() || value.is_empty() => {
                return Err(SpdyError::HeaderBlock("empty value of a repeated header"));
            }
            Some((_, joined)) => {
                joined.push('\0');
                joined.push_str(value);
            }
            None => merged.push((name, value.clone())),
        }
    }
    let len = 4 + merged
        .iter()
        .map(|(n, v)| 8 + n.len() + v.len())
        .sum::<usize>();
    if len > MAX_BLOCK_LEN {
        return Err(SpdyError::HeaderBlockTooLarge { max: MAX_BLOCK_LEN });
    }
    let mut block = Vec::with_capacity(len);
    // Every length below is at most MAX_BLOCK_LEN, so the casts cannot truncate.
    block.extend_from_slice(&(merged.len() as u32).to_be_bytes());
    for (name, value) in &merged {
        block.extend_from_slice(&(name.len() as u32).to_be_bytes());
        block.extend_from_slice(name.as_bytes());
        block.extend_from_slice(&(value.len() as u32).to_be_bytes());
        block.extend_from_slice(value.as_bytes());
    }
    Ok(block)
}

/// Parses an uncompressed block. Names are lower-cased rather than refused when they are
/// not: the spec asks senders for lower case but names no error for receivers, and every
/// lookup here is case-insensitive anyway.
pub fn decode_block(mut raw: &[u8]) -> Result<Headers, SpdyError> {
    let count = take_u32(&mut raw)? as usize;
    if count > MAX_HEADERS {
        return Err(SpdyError::HeaderBlock("too many headers"));
    }
    // Capacity from the count is bounded by MAX_HEADERS; the loop bounds the rest.
    let mut headers: Headers = Vec::with_capacity(count);
    for _ in 0..count {
        let name = take_field(&mut raw)?;
        if name.is_empty() {
            return Err(SpdyError::HeaderBlock("empty header name"));
        }
        if !name.iter().all(|b| b.is_ascii() && *b != 0) {
            return Err(SpdyError::HeaderBlock("header name is not NUL-free ASCII"));
        }
        let name = String::from_utf8(name.to_ascii_lowercase())
            .map_err(|_| SpdyError::HeaderBlock("header name is not ASCII"))?;
        if headers.iter().any(|(n, _)| *n == name) {
            return Err(SpdyError::HeaderBlock("header name repeated in one block"));
        }
        let value = std::str::from_utf8(take_field(&mut raw)?)
            .map_err(|_| SpdyError::HeaderBlock("header value is not UTF-8"))?;
        // An empty value stands alone; a list may not hold empty values (section 2.6.10).
        if value.contains('\0') && value.split('\0').any(str::is_empty) {
            return Err(SpdyError::HeaderBlock(
                "empty value in a NUL-separated list",
            ));
        }
        for value in value.split('\0') {
            if headers.len() == MAX_HEADERS {
                return Err(SpdyError::HeaderBlock("too many headers"));
            }
            headers.push((name.clone(), value.to_owned()));
        }
    }
    if !raw.is_empty() {
        return Err(SpdyError::HeaderBlock("bytes after the last header"));
    }
    Ok(headers)
}

fn take_u32(raw: &mut &[u8]) -> Result<u32, SpdyError> {
    let Some((word, rest)) = raw.split_first_chunk::<4>() else {
        return Err(SpdyError::HeaderBlock("truncated"));
    };
    *raw = rest;
    Ok(u32::from_be_bytes(*word))
}

fn take_field<'a>(raw: &mut &'a [u8]) -> Result<&'a [u8], SpdyError> {
    let len = take_u32(raw)? as usize;
    if len > raw.len() {
        return Err(SpdyError::HeaderBlock("length runs past the block"));
    }
    let (field, rest) = raw.split_at(len);
    *raw = rest;
    Ok(field)
}

/// The sending half of a connection's header compression.
pub struct HeaderCompressor {
    z: Compress,
    primed: bool,
}

impl Default for HeaderCompressor {
    fn default() -> Self {
        Self::new()
    }
}

impl HeaderCompressor {
    pub fn new() -> Self {
        Self {
            z: Compress::new(Compression::default(), true),
            primed: false,
        }
    }

    /// The compressed block for `headers`, ending in a sync flush so the peer can inflate it
    /// whole. Must be called in the order the blocks go on the wire.
    pub fn compress(&mut self, headers: &[(String, String)]) -> Result<Bytes, SpdyError> {
        let raw = encode_block(headers)?;
        if !self.primed {
            // deflateSetDictionary before the first byte: the zlib header then carries
            // FDICT and the dictionary's id, as SPDY/3 peers expect. flate2 offers this
            // with the zlib-rs backend (`Compress::set_dictionary` is `any_zlib`-only,
            // and not available with miniz_oxide).
            self.z
                .set_dictionary(&DICTIONARY)
                .map_err(SpdyError::Compress)?;
            self.primed = true;
        }
        let start = self.z.total_in();
        let mut out = Vec::with_capacity(raw.len() / 2 + 64);
        loop {
            let consumed = (self.z.total_in() - start) as usize;
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity().max(256));
            }
            let written = out.len();
            self.z
                .compress_vec(&raw[consumed..], &mut out, FlushCompress::Sync)
                .map_err(SpdyError::Compress)?;
            let now_consumed = (self.z.total_in() - start) as usize;
            // A sync flush is complete once all input is in and zlib stopped short of
            // filling the output (zlib's deflate contract for Z_SYNC_FLUSH).
            if now_consumed == raw.len() && out.len() < out.capacity() {
                break;
            }
            if now_consumed == consumed && out.len() == written && out.len() < out.capacity() {
                // No progress with room to spare: zlib has nothing more to give.
                break;
            }
        }
        Ok(out.into())
    }
}

/// The receiving half of a connection's header compression.
pub struct HeaderDecompressor {
    z: Decompress,
}

impl Default for HeaderDecompressor {
    fn default() -> Self {
        Self::new()
    }
}

impl HeaderDecompressor {
    pub fn new() -> Self {
        Self {
            z: Decompress::new(true),
        }
    }

    /// Inflates one block, which must be the next one the peer compressed. Any error here
    /// leaves the zlib state out of step with the peer's: the caller ends the session.
    pub fn decompress(&mut self, block: &[u8]) -> Result<Vec<u8>, SpdyError> {
        let start = self.z.total_in();
        let mut out = Vec::new();
        loop {
            let consumed = (self.z.total_in() - start) as usize;
            // One byte past the limit tells a block at the limit from one beyond it.
            let room = (MAX_BLOCK_LEN + 1).saturating_sub(out.len());
            if room == 0 {
                return Err(SpdyError::HeaderBlockTooLarge { max: MAX_BLOCK_LEN });
            }
            if out.capacity() == out.len() {
                out.reserve((block.len() * 4).clamp(256, room));
            }
            let written = out.len();
            let status =
                match self
                    .z
                    .decompress_vec(&block[consumed..], &mut out, FlushDecompress::Sync)
                {
                    Ok(status) => status,
                    // The stream's header names a dictionary (zlib's Z_NEED_DICT, which flate2
                    // reports as an error carrying the id). Only SPDY/3's will do.
                    Err(e) => match e.needs_dictionary() {
                        Some(DICTIONARY_ID) => {
                            self.z
                                .set_dictionary(&DICTIONARY)
                                .map_err(SpdyError::Decompress)?;
                            continue;
                        }
                        Some(other) => return Err(SpdyError::UnknownDictionary(other)),
                        None => return Err(SpdyError::Decompress(e)),
                    },
                };
            let now_consumed = (self.z.total_in() - start) as usize;
            if out.len() > MAX_BLOCK_LEN {
                return Err(SpdyError::HeaderBlockTooLarge { max: MAX_BLOCK_LEN });
            }
            // Inflate writes all it can; if it left room, it has nothing more to give.
            let drained = out.len() < out.capacity();
            if now_consumed == block.len() && drained {
                break;
            }
            let stuck = now_consumed == consumed && out.len() == written;
            if stuck || status == Status::StreamEnd {
                // Input left over that inflate will not take: the peer ended its zlib
                // stream or sent garbage. Either way its next block would not inflate.
                if now_consumed != block.len() {
                    return Err(SpdyError::HeaderBlock("compressed bytes after the end"));
                }
                break;
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
