//! SPDY/3 frames as they are on the wire (SPDY/3 draft, section 2.2 and 2.6). Every frame
//! starts with 8 bytes; all integers are big-endian:
//!
//! ```text
//! control: |1| version (15) | type (16) |   data: |0| stream id (31)    |
//!          | flags (8) | length (24)    |         | flags (8) | length (24) |
//! ```
//!
//! `length` counts the bytes after the header, so no frame is longer than 8 + 2^24 - 1.
//! Header blocks (SYN_STREAM, SYN_REPLY, HEADERS) are carried as the compressed bytes they
//! are: decompressing them needs the connection's zlib state, which lives in `headers`.
//! Reserved bits (the "X" bits before stream ids and window deltas) are written as zero and
//! ignored on reading, as the spec asks.

use std::fmt;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::SpdyError;

/// The only version spoken; SPDY/3.1 frames say 3 too.
pub const VERSION: u16 = 3;
/// The largest length a 24-bit field can carry.
pub const MAX_LENGTH: usize = (1 << 24) - 1;
/// Stream ids, associated ids and window deltas are 31 bits.
pub const MAX_STREAM_ID: u32 = 0x7fff_ffff;
const HEADER_LEN: usize = 8;
const CONTROL_BIT: u32 = 0x8000_0000;

/// FLAG_FIN on SYN_STREAM, SYN_REPLY, HEADERS and DATA: the sender is done sending.
const FLAG_FIN: u8 = 0x01;
/// FLAG_UNIDIRECTIONAL on SYN_STREAM: the recipient may not send on the stream.
const FLAG_UNIDIRECTIONAL: u8 = 0x02;
/// FLAG_SETTINGS_CLEAR_SETTINGS on SETTINGS.
const FLAG_CLEAR_SETTINGS: u8 = 0x01;

const SYN_STREAM: u16 = 1;
const SYN_REPLY: u16 = 2;
const RST_STREAM: u16 = 3;
const SETTINGS: u16 = 4;
const PING: u16 = 6;
const GOAWAY: u16 = 7;
const HEADERS: u16 = 8;
const WINDOW_UPDATE: u16 = 9;

/// SETTINGS ids that matter here (SPDY/3 section 2.6.4).
pub const SETTINGS_MAX_CONCURRENT_STREAMS: u32 = 4;
pub const SETTINGS_INITIAL_WINDOW_SIZE: u32 = 7;

/// A RST_STREAM status code. Kept as the number on the wire so codes this side does not
/// know survive a round trip; 0 is not a valid status and never decodes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct RstStatus(pub u32);

impl RstStatus {
    pub const PROTOCOL_ERROR: Self = Self(1);
    pub const INVALID_STREAM: Self = Self(2);
    pub const REFUSED_STREAM: Self = Self(3);
    pub const UNSUPPORTED_VERSION: Self = Self(4);
    pub const CANCEL: Self = Self(5);
    pub const INTERNAL_ERROR: Self = Self(6);
    pub const FLOW_CONTROL_ERROR: Self = Self(7);
    pub const STREAM_IN_USE: Self = Self(8);
    pub const STREAM_ALREADY_CLOSED: Self = Self(9);
    pub const INVALID_CREDENTIALS: Self = Self(10);
    pub const FRAME_TOO_LARGE: Self = Self(11);

    fn name(self) -> Option<&'static str> {
        const NAMES: [&str; 11] = [
            "PROTOCOL_ERROR",
            "INVALID_STREAM",
            "REFUSED_STREAM",
            "UNSUPPORTED_VERSION",
            "CANCEL",
            "INTERNAL_ERROR",
            "FLOW_CONTROL_ERROR",
            "STREAM_IN_USE",
            "STREAM_ALREADY_CLOSED",
            "INVALID_CREDENTIALS",
            "FRAME_TOO_LARGE",
        ];
        let index = usize::try_from(self.0).ok()?.checked_sub(1)?;
        NAMES.get(index).copied()
    }
}

impl fmt::Display for RstStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "status {}", self.0),
        }
    }
}

impl fmt::Debug for RstStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A GOAWAY status code. The SPDY/3 draft numbers INTERNAL_ERROR 11, while Go's spdy
/// package (moby/spdystream `spdy/types.go`, `GoAwayInternalError`) and later drafts use 2;
/// this side only ever sends OK and PROTOCOL_ERROR, so the mismatch never reaches a peer.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct GoAwayStatus(pub u32);

impl GoAwayStatus {
    pub const OK: Self = Self(0);
    pub const PROTOCOL_ERROR: Self = Self(1);
}

/// One SETTINGS entry: on the wire an 8-bit flags byte and a 24-bit id form one
/// big-endian 32-bit word (SPDY/2 had them little-endian; SPDY/3 fixed that), then the
/// 32-bit value.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Setting {
    pub flags: u8,
    /// 24 bits.
    pub id: u32,
    pub value: u32,
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Frame {
    SynStream {
        stream_id: u32,
        associated_id: u32,
        /// 3 bits, 0 the highest.
        priority: u8,
        slot: u8,
        fin: bool,
        unidirectional: bool,
        header_block: Bytes,
    },
    SynReply {
        stream_id: u32,
        fin: bool,
        header_block: Bytes,
    },
    RstStream {
        stream_id: u32,
        status: RstStatus,
    },
    Settings {
        clear_persisted: bool,
        entries: Vec<Setting>,
    },
    Ping {
        id: u32,
    },
    GoAway {
        last_good_stream_id: u32,
        status: GoAwayStatus,
    },
    Headers {
        stream_id: u32,
        fin: bool,
        header_block: Bytes,
    },
    /// Stream id 0 is the session window (SPDY/3.1).
    WindowUpdate {
        stream_id: u32,
        delta: u32,
    },
    Data {
        stream_id: u32,
        fin: bool,
        data: Bytes,
    },
}

impl Frame {
    /// Appends the frame's wire form to `dst`. Fails only when the payload does not fit the
    /// 24-bit length; nothing is written then.
    pub fn encode(&self, dst: &mut BytesMut) -> Result<(), SpdyError> {
        match self {
            Frame::SynStream {
                stream_id,
                associated_id,
                priority,
                slot,
                fin,
                unidirectional,
                header_block,
            } => {
                let flags = flag(*fin, FLAG_FIN) | flag(*unidirectional, FLAG_UNIDIRECTIONAL);
                control_header(dst, SYN_STREAM, flags, 10 + header_block.len())?;
                dst.put_u32(stream_id & MAX_STREAM_ID);
                dst.put_u32(associated_id & MAX_STREAM_ID);
                // Priority is the top 3 bits of this byte; the other 5 are unused.
                dst.put_u8((priority & 0x07) << 5);
                dst.put_u8(*slot);
                dst.put_slice(header_block);
            }
            Frame::SynReply {
                stream_id,
                fin,
                header_block,
            } => {
                control_header(dst, SYN_REPLY, flag(*fin, FLAG_FIN), 4 + header_block.len())?;
                dst.put_u32(stream_id & MAX_STREAM_ID);
                dst.put_slice(header_block);
            }
            Frame::RstStream { stream_id, status } => {
                control_header(dst, RST_STREAM, 0, 8)?;
                dst.put_u32(stream_id & MAX_STREAM_ID);
                dst.put_u32(status.0);
            }
            Frame::Settings {
                clear_persisted,
                entries,
            } => {
                let len = entries
                    .len()
                    .checked_mul(8)
                    .and_then(|n| n.checked_add(4))
                    .unwrap_or(usize::MAX);
                let count = u32::try_from(entries.len()).unwrap_or(u32::MAX);
                control_header(
                    dst,
                    SETTINGS,
                    flag(*clear_persisted, FLAG_CLEAR_SETTINGS),
                    len,
                )?;
                dst.put_u32(count);
                for entry in entries {
                    dst.put_u32(u32::from(entry.flags) << 24 | (entry.id & 0x00ff_ffff));
                    dst.put_u32(entry.value);
                }
            }
            Frame::Ping { id } => {
                control_header(dst, PING, 0, 4)?;
                dst.put_u32(*id);
            }
            Frame::GoAway {
                last_good_stream_id,
                status,
            } => {
                control_header(dst, GOAWAY, 0, 8)?;
                dst.put_u32(last_good_stream_id & MAX_STREAM_ID);
                dst.put_u32(status.0);
            }
            Frame::Headers {
                stream_id,
                fin,
                header_block,
            } => {
                control_header(dst, HEADERS, flag(*fin, FLAG_FIN), 4 + header_block.len())?;
                dst.put_u32(stream_id & MAX_STREAM_ID);
                dst.put_slice(header_block);
            }
            Frame::WindowUpdate { stream_id, delta } => {
                control_header(dst, WINDOW_UPDATE, 0, 8)?;
                dst.put_u32(stream_id & MAX_STREAM_ID);
                dst.put_u32(delta & MAX_STREAM_ID);
            }
            Frame::Data {
                stream_id,
                fin,
                data,
            } => {
                let len = checked_len(data.len())?;
                dst.reserve(HEADER_LEN + data.len());
                dst.put_u32(stream_id & MAX_STREAM_ID);
                dst.put_u32(u32::from(flag(*fin, FLAG_FIN)) << 24 | len);
                dst.put_slice(data);
            }
        }
        Ok(())
    }
}

fn flag(set: bool, bit: u8) -> u8 {
    if set {
        bit
    } else {
        0
    }
}

fn checked_len(len: usize) -> Result<u32, SpdyError> {
    match u32::try_from(len) {
        Ok(n) if len <= MAX_LENGTH => Ok(n),
        _ => Err(SpdyError::FrameTooLarge {
            len,
            max: MAX_LENGTH,
        }),
    }
}

fn control_header(dst: &mut BytesMut, kind: u16, flags: u8, len: usize) -> Result<(), SpdyError> {
    let len = checked_len(len)?;
    dst.reserve(HEADER_LEN + len as usize);
    dst.put_u32(CONTROL_BIT | u32::from(VERSION) << 16 | u32::from(kind));
    dst.put_u32(u32::from(flags) << 24 | len);
    Ok(())
}

/// Takes whole frames off the front of a buffer. Keeps no state between frames, so after
/// an error the connection is beyond saving anyway and the caller drops it.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    max_len: usize,
}

impl FrameDecoder {
    /// Frames whose length field exceeds `max_len` (capped at the 24-bit maximum) are
    /// refused from their 8-byte header, before any of their payload is buffered.
    pub fn new(max_len: usize) -> Self {
        Self {
            max_len: max_len.min(MAX_LENGTH),
        }
    }

    /// The next whole frame, `Ok(None)` when `src` holds only part of one (the caller reads
    /// more and calls again). Consumes the frame's bytes. Control frames of unknown types
    /// are consumed and skipped, as SPDY/3 asks (section 2.2.1 keeps types extensible).
    pub fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, SpdyError> {
        loop {
            let Some(header) = src.get(..HEADER_LEN) else {
                return Ok(None);
            };
            let first = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
            let flags = header[4];
            let len =
                usize::from(header[5]) << 16 | usize::from(header[6]) << 8 | usize::from(header[7]);
            if len > self.max_len {
                return Err(SpdyError::FrameTooLarge {
                    len,
                    max: self.max_len,
                });
            }
            if src.len() < HEADER_LEN + len {
                return Ok(None);
            }
            let mut payload = src.split_to(HEADER_LEN + len).freeze();
            payload.advance(HEADER_LEN);
            if first & CONTROL_BIT == 0 {
                return data(first & MAX_STREAM_ID, flags, payload).map(Some);
            }
            // Versions are checked before types: another version's layouts differ.
            let version = ((first >> 16) & 0x7fff) as u16;
            if version != VERSION {
                return Err(SpdyError::UnsupportedVersion(version));
            }
            let kind = (first & 0xffff) as u16;
            let frame = match kind {
                SYN_STREAM => syn_stream(flags, payload)?,
                SYN_REPLY => syn_reply(flags, payload)?,
                RST_STREAM => rst_stream(payload)?,
                SETTINGS => settings(flags, payload)?,
                PING => ping(payload)?,
                GOAWAY => goaway(payload)?,
                HEADERS => headers(flags, payload)?,
                WINDOW_UPDATE => window_update(payload)?,
                // CREDENTIAL (10) and anything newer: nothing here uses them.
                _ => continue,
            };
            return Ok(Some(frame));
        }
    }
}

fn malformed(frame: &'static str, reason: &'static str) -> SpdyError {
    SpdyError::MalformedFrame { frame, reason }
}

/// A stream id field: 31 bits, and 0 names no stream.
fn stream_id(frame: &'static str, payload: &mut Bytes) -> Result<u32, SpdyError> {
    match payload.get_u32() & MAX_STREAM_ID {
        0 => Err(malformed(frame, "stream id 0")),
        id => Ok(id),
    }
}

fn exact_len(frame: &'static str, payload: &Bytes, len: usize) -> Result<(), SpdyError> {
    if payload.len() == len {
        Ok(())
    } else {
        Err(malformed(frame, "wrong length for its type"))
    }
}

fn min_len(frame: &'static str, payload: &Bytes, len: usize) -> Result<(), SpdyError> {
    if payload.len() >= len {
        Ok(())
    } else {
        Err(malformed(frame, "shorter than its fixed fields"))
    }
}

fn data(stream_id: u32, flags: u8, data: Bytes) -> Result<Frame, SpdyError> {
    if stream_id == 0 {
        return Err(malformed("DATA", "stream id 0"));
    }
    Ok(Frame::Data {
        stream_id,
        fin: flags & FLAG_FIN != 0,
        data,
    })
}

fn syn_stream(flags: u8, mut payload: Bytes) -> Result<Frame, SpdyError> {
    const NAME: &str = "SYN_STREAM";
    min_len(NAME, &payload, 10)?;
    let stream_id = stream_id(NAME, &mut payload)?;
    let associated_id = payload.get_u32() & MAX_STREAM_ID;
    let priority = payload.get_u8() >> 5;
    let slot = payload.get_u8();
    Ok(Frame::SynStream {
        stream_id,
        associated_id,
        priority,
        slot,
        fin: flags & FLAG_FIN != 0,
        unidirectional: flags & FLAG_UNIDIRECTIONAL != 0,
        header_block: payload,
    })
}

fn syn_reply(flags: u8, mut payload: Bytes) -> Result<Frame, SpdyError> {
    const NAME: &str = "SYN_REPLY";
    min_len(NAME, &payload, 4)?;
    let stream_id = stream_id(NAME, &mut payload)?;
    Ok(Frame::SynReply {
        stream_id,
        fin: flags & FLAG_FIN != 0,
        header_block: payload,
    })
}

fn headers(flags: u8, mut payload: Bytes) -> Result<Frame, SpdyError> {
    const NAME: &str = "HEADERS";
    min_len(NAME, &payload, 4)?;
    let stream_id = stream_id(NAME, &mut payload)?;
    Ok(Frame::Headers {
        stream_id,
        fin: flags & FLAG_FIN != 0,
        header_block: payload,
    })
}

fn rst_stream(mut payload: Bytes) -> Result<Frame, SpdyError> {
    const NAME: &str = "RST_STREAM";
    exact_len(NAME, &payload, 8)?;
    let stream_id = stream_id(NAME, &mut payload)?;
    match payload.get_u32() {
        0 => Err(malformed(NAME, "status 0")),
        status => Ok(Frame::RstStream {
            stream_id,
            status: RstStatus(status),
        }),
    }
}

fn settings(flags: u8, mut payload: Bytes) -> Result<Frame, SpdyError> {
    const NAME: &str = "SETTINGS";
    min_len(NAME, &payload, 4)?;
    let count = payload.get_u32() as usize;
    // The count must match the length exactly; checking it first also bounds the
    // allocation below by bytes already received.
    if count.checked_mul(8) != Some(payload.len()) {
        return Err(malformed(NAME, "entry count does not match the length"));
    }
    let mut entries = Vec::with_capacity(count);
    for _ in 0..count {
        let word = payload.get_u32();
        entries.push(Setting {
            flags: (word >> 24) as u8,
            id: word & 0x00ff_ffff,
            value: payload.get_u32(),
        });
    }
    Ok(Frame::Settings {
        clear_persisted: flags & FLAG_CLEAR_SETTINGS != 0,
        entries,
    })
}

fn ping(mut payload: Bytes) -> Result<Frame, SpdyError> {
    exact_len("PING", &payload, 4)?;
    Ok(Frame::Ping {
        id: payload.get_u32(),
    })
}

fn goaway(mut payload: Bytes) -> Result<Frame, SpdyError> {
    // SPDY/2's GOAWAY had no status (length 4); spdystream refuses that too.
    exact_len("GOAWAY", &payload, 8)?;
    Ok(Frame::GoAway {
        last_good_stream_id: payload.get_u32() & MAX_STREAM_ID,
        status: GoAwayStatus(payload.get_u32()),
    })
}

fn window_update(mut payload: Bytes) -> Result<Frame, SpdyError> {
    exact_len("WINDOW_UPDATE", &payload, 8)?;
    Ok(Frame::WindowUpdate {
        stream_id: payload.get_u32() & MAX_STREAM_ID,
        delta: payload.get_u32() & MAX_STREAM_ID,
    })
}

#[cfg(test)]
mod tests;
