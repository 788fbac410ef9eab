//! A per-connection shim that makes the CRI socket accept gRPC clients which send the
//! socket *path* as the HTTP/2 `:authority` (grpc-go before 1.5x does this for unix
//! targets: crictl/critest 1.26 and older kubelets send `/run/ucr/ucr.sock`). The h2
//! server under tonic validates `:authority` as an RFC 3986 authority and resets such a
//! stream with PROTOCOL_ERROR, so without this every call from those clients fails.
//!
//! Bytes from the daemon to the client pass through untouched. Bytes from the client are
//! parsed as HTTP/2 frames: every header block (HEADERS plus its CONTINUATIONs) is
//! HPACK-decoded, an invalid `:authority` becomes `localhost`, and the block is encoded
//! again. Every block is re-encoded, not only the ones that change, because the client's
//! encoder and our decoder share one dynamic table, and our encoder and h2's decoder
//! another; forwarding a client block verbatim could reference entries h2 never saw. Our
//! encoder never inserts into h2's table (literals without indexing only), so that side
//! needs no state at all. All other frames are copied unchanged.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, BytesMut};
use futures::{Stream, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream, ReadBuf};
use tokio::net::{UnixListener, UnixStream};
use tokio_stream::wrappers::UnixListenerStream;
use tonic::codegen::http::uri::Authority;
use tonic::transport::server::Connected;

const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const FRAME_HEADER: usize = 9;
const HEADERS: u8 = 0x1;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;
/// SETTINGS_MAX_FRAME_SIZE's minimum, which every HTTP/2 server accepts.
const MAX_FRAME: usize = 16_384;
/// Largest header block we buffer; gRPC metadata is limited to a few KiB anyway.
const MAX_BLOCK: usize = 1 << 20;
/// SETTINGS_HEADER_TABLE_SIZE's default: h2 never advertises another, so a client may not
/// grow its table past this.
const HPACK_TABLE: usize = 4096;
/// How much the server side may have unread before the pump waits.
const DUPLEX_BUFFER: usize = 256 << 10;

#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    #[error("client did not start with the HTTP/2 connection preface")]
    BadPreface,
    #[error(
        "stream {stream}: frame type {kind:#x} inside a header block of stream {block_stream}"
    )]
    InterruptedBlock {
        stream: u32,
        kind: u8,
        block_stream: u32,
    },
    #[error("stream {stream}: HEADERS padding or priority longer than the frame")]
    BadPadding { stream: u32 },
    #[error("stream {stream}: header block larger than {MAX_BLOCK} bytes")]
    BlockTooLarge { stream: u32 },
    #[error("stream {stream}: HPACK: {source}")]
    Hpack {
        stream: u32,
        source: loona_hpack::decoder::DecoderError,
    },
    #[error("connection: {0}")]
    Io(#[from] io::Error),
}

/// The accepted connections of `listener`, each behind its own shim.
pub fn incoming(listener: UnixListener) -> impl Stream<Item = io::Result<Shimmed>> {
    UnixListenerStream::new(listener).map(|conn| conn.map(shim))
}

fn shim(client: UnixStream) -> Shimmed {
    let (server_end, shim_end) = tokio::io::duplex(DUPLEX_BUFFER);
    tokio::spawn(async move {
        match pump(client, shim_end).await {
            // grpc-go resets the socket rather than shutting it down when it is done.
            Ok(()) | Err(ShimError::Io(_)) => {}
            Err(e) => tracing::debug!(error = %e, "CRI connection closed by the authority shim"),
        }
    });
    Shimmed(server_end)
}

/// Client → rewriter → server, and server → client verbatim. An error on either side
/// drops both, which closes the connection.
async fn pump(client: UnixStream, shim_end: DuplexStream) -> Result<(), ShimError> {
    let (mut client_rd, mut client_wr) = client.into_split();
    let (mut server_rd, mut server_wr) = tokio::io::split(shim_end);
    let upstream = async {
        let mut rewriter = Rewriter::default();
        let mut buf = vec![0; 64 << 10];
        let mut out = Vec::new();
        loop {
            let n = client_rd.read(&mut buf).await?;
            if n == 0 {
                server_wr.shutdown().await?;
                return Ok::<_, ShimError>(());
            }
            out.clear();
            rewriter.feed(&buf[..n], &mut out)?;
            server_wr.write_all(&out).await?;
        }
    };
    let downstream = async {
        tokio::io::copy(&mut server_rd, &mut client_wr).await?;
        client_wr.shutdown().await?;
        Ok::<_, ShimError>(())
    };
    tokio::try_join!(upstream, downstream).map(|_| ())
}

/// The server's end of a shimmed connection, as tonic wants it.
pub struct Shimmed(DuplexStream);

impl Connected for Shimmed {
    type ConnectInfo = ();
    fn connect_info(&self) -> Self::ConnectInfo {}
}

impl AsyncRead for Shimmed {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Shimmed {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

/// A header block being gathered from HEADERS and CONTINUATION frames.
struct Block {
    stream: u32,
    /// END_STREAM and PRIORITY of the HEADERS frame; padding is dropped.
    flags: u8,
    priority: Option<[u8; 5]>,
    fragment: Vec<u8>,
}

/// The client → server half of the shim, without IO so it can be tested on bytes.
pub(crate) struct Rewriter {
    input: BytesMut,
    preface_seen: bool,
    /// Payload bytes of a pass-through frame still to copy.
    passthrough: usize,
    block: Option<Block>,
    decoder: loona_hpack::Decoder<'static>,
}

impl Default for Rewriter {
    fn default() -> Self {
        let mut decoder = loona_hpack::Decoder::new();
        decoder.set_max_allowed_table_size(HPACK_TABLE);
        Rewriter {
            input: BytesMut::new(),
            preface_seen: false,
            passthrough: 0,
            block: None,
            decoder,
        }
    }
}

impl Rewriter {
    /// Takes the next bytes from the client and appends what the server should get to
    /// `out`. Partial frames are kept until the rest arrives.
    pub(crate) fn feed(&mut self, bytes: &[u8], out: &mut Vec<u8>) -> Result<(), ShimError> {
        self.input.extend_from_slice(bytes);
        if !self.preface_seen {
            if self.input.len() < PREFACE.len() {
                return Ok(());
            }
            if self.input[..PREFACE.len()] != PREFACE[..] {
                return Err(ShimError::BadPreface);
            }
            out.extend_from_slice(&self.input.split_to(PREFACE.len()));
            self.preface_seen = true;
        }
        loop {
            if self.passthrough > 0 {
                let n = self.passthrough.min(self.input.len());
                out.extend_from_slice(&self.input.split_to(n));
                self.passthrough -= n;
                if self.passthrough > 0 {
                    return Ok(());
                }
            }
            let Some(head) = self.input.get(..FRAME_HEADER) else {
                return Ok(());
            };
            let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
            let (kind, flags) = (head[3], head[4]);
            let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
            match &self.block {
                // RFC 9113 §6.10: nothing may come between a header block's frames.
                Some(b) if kind != CONTINUATION || stream != b.stream => {
                    return Err(ShimError::InterruptedBlock {
                        stream,
                        kind,
                        block_stream: b.stream,
                    });
                }
                // Anything else, including a stray CONTINUATION, is h2's to judge.
                None if kind != HEADERS => {
                    out.extend_from_slice(&self.input.split_to(FRAME_HEADER));
                    self.passthrough = len;
                    continue;
                }
                _ => {}
            }
            let gathered = self.block.as_ref().map_or(0, |b| b.fragment.len());
            if gathered + len > MAX_BLOCK {
                return Err(ShimError::BlockTooLarge { stream });
            }
            if self.input.len() < FRAME_HEADER + len {
                return Ok(());
            }
            self.input.advance(FRAME_HEADER);
            let payload = self.input.split_to(len);
            let block = match self.block.take() {
                Some(mut b) => {
                    b.fragment.extend_from_slice(&payload);
                    b
                }
                None => start_block(stream, flags, &payload)?,
            };
            if flags & END_HEADERS != 0 {
                self.finish(block, out)?;
            } else {
                self.block = Some(block);
            }
        }
    }

    /// Decodes a complete block, fixes `:authority`, and writes it out as HEADERS (+
    /// CONTINUATION) frames.
    fn finish(&mut self, block: Block, out: &mut Vec<u8>) -> Result<(), ShimError> {
        let mut encoded = Vec::with_capacity(block.fragment.len() * 2);
        self.decoder
            .decode_with_cb(&block.fragment, |name, value| {
                // Authority::from_maybe_shared is the very check h2 applies.
                let value: &[u8] = if &*name == b":authority" && Authority::try_from(&*value).is_err() {
                    tracing::trace!(authority = %String::from_utf8_lossy(&value), "replacing :authority");
                    b"localhost"
                } else {
                    &value
                };
                encode_literal(&name, value, &mut encoded);
            })
            .map_err(|source| ShimError::Hpack { stream: block.stream, source })?;

        let prefix: &[u8] = block.priority.as_ref().map_or(&[], |p| &p[..]);
        let (first, mut rest) = encoded.split_at(encoded.len().min(MAX_FRAME - prefix.len()));
        let end = |rest: &[u8]| if rest.is_empty() { END_HEADERS } else { 0 };
        write_frame(
            out,
            HEADERS,
            block.flags | end(rest),
            block.stream,
            &[prefix, first],
        );
        while !rest.is_empty() {
            let (chunk, tail) = rest.split_at(rest.len().min(MAX_FRAME));
            rest = tail;
            write_frame(out, CONTINUATION, end(rest), block.stream, &[chunk]);
        }
        Ok(())
    }
}

/// Strips padding and priority from a HEADERS payload (RFC 9113 §6.2).
fn start_block(stream: u32, flags: u8, payload: &[u8]) -> Result<Block, ShimError> {
    let mut p = payload;
    let mut pad = 0;
    if flags & PADDED != 0 {
        let (&n, rest) = p.split_first().ok_or(ShimError::BadPadding { stream })?;
        (pad, p) = (usize::from(n), rest);
    }
    let mut priority = None;
    if flags & PRIORITY != 0 {
        let (fields, rest) = p
            .split_first_chunk::<5>()
            .ok_or(ShimError::BadPadding { stream })?;
        (priority, p) = (Some(*fields), rest);
    }
    let Some(fragment) = p.len().checked_sub(pad).map(|n| p[..n].to_vec()) else {
        return Err(ShimError::BadPadding { stream });
    };
    Ok(Block {
        stream,
        flags: flags & (END_STREAM | PRIORITY),
        priority,
        fragment,
    })
}

/// "Literal Header Field without Indexing — New Name" (RFC 7541 §6.2.2), no Huffman: it
/// leaves h2's dynamic table untouched, so it can never fall out of step with ours.
fn encode_literal(name: &[u8], value: &[u8], out: &mut Vec<u8>) {
    out.push(0x00);
    for s in [name, value] {
        // A 7-bit-prefix length with H=0 (RFC 7541 §5.1, §5.2).
        let _ = loona_hpack::encoder::encode_integer_into(s.len(), 7, 0, out);
        out.extend_from_slice(s);
    }
}

fn write_frame(out: &mut Vec<u8>, kind: u8, flags: u8, stream: u32, parts: &[&[u8]]) {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    out.extend_from_slice(&(len as u32).to_be_bytes()[1..]);
    out.extend_from_slice(&[kind, flags]);
    out.extend_from_slice(&stream.to_be_bytes());
    for p in parts {
        out.extend_from_slice(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Headers = Vec<(Vec<u8>, Vec<u8>)>;
    /// Type, flags, stream id and payload.
    type Frame = (u8, u8, u32, Vec<u8>);

    fn headers(authority: &str, path: &str) -> Vec<(&'static [u8], Vec<u8>)> {
        vec![
            (b":method", b"POST".to_vec()),
            (b":scheme", b"http".to_vec()),
            (b":path", path.as_bytes().to_vec()),
            (b":authority", authority.as_bytes().to_vec()),
            (b"content-type", b"application/grpc".to_vec()),
            (b"user-agent", b"grpc-go/1.40.0".to_vec()),
        ]
    }

    fn encode(enc: &mut loona_hpack::Encoder<'_>, hs: &[(&'static [u8], Vec<u8>)]) -> Vec<u8> {
        enc.encode(hs.iter().map(|(n, v)| (*n, &v[..])))
    }

    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        write_frame(&mut out, kind, flags, stream, &[payload]);
        out
    }

    /// Splits the rewriter's output into frames and decodes each header block with a
    /// fresh decoder per connection, as h2 would.
    fn parse_output(mut out: &[u8]) -> (Vec<Frame>, Vec<Headers>) {
        assert!(out.starts_with(PREFACE));
        out = &out[PREFACE.len()..];
        let mut frames = Vec::new();
        while !out.is_empty() {
            let len = u32::from_be_bytes([0, out[0], out[1], out[2]]) as usize;
            let stream = u32::from_be_bytes([out[5], out[6], out[7], out[8]]);
            frames.push((out[3], out[4], stream, out[9..9 + len].to_vec()));
            assert!(len <= MAX_FRAME);
            out = &out[9 + len..];
        }
        let mut decoder = loona_hpack::Decoder::new();
        let mut blocks = Vec::new();
        let mut block = Vec::new();
        for (kind, flags, _, payload) in &frames {
            if *kind != HEADERS && *kind != CONTINUATION {
                continue;
            }
            assert_eq!(flags & PADDED, 0);
            let skip = if *kind == HEADERS && flags & PRIORITY != 0 {
                5
            } else {
                0
            };
            block.extend_from_slice(&payload[skip..]);
            if flags & END_HEADERS != 0 {
                blocks.push(decoder.decode(&block).expect("output decodes"));
                block.clear();
            }
        }
        (frames, blocks)
    }

    fn get<'a>(hs: &'a Headers, name: &str) -> &'a [u8] {
        &hs.iter()
            .find(|(n, _)| n == name.as_bytes())
            .expect("header present")
            .1
    }

    /// Feeds `input` a few bytes at a time, to exercise partial frames.
    fn rewrite(input: &[u8]) -> Vec<u8> {
        let mut r = Rewriter::default();
        let mut out = Vec::new();
        for chunk in input.chunks(7) {
            r.feed(chunk, &mut out).expect("rewrites");
        }
        assert!(r.block.is_none() && r.passthrough == 0 && r.input.is_empty());
        out
    }

    /// A literal whose name is static-table entry `first & 0x3f` (`first & 0x0f` without
    /// indexing), as grpc-go writes them.
    fn literal(first: u8, value: &str) -> Vec<u8> {
        let mut out = vec![first, value.len() as u8];
        out.extend_from_slice(value.as_bytes());
        out
    }

    #[test]
    fn socket_path_authority_becomes_localhost_and_dynamic_table_is_kept() {
        // Built by hand: loona's encoder never indexes names found in the static table,
        // and the point is a second block whose `:authority` is a dynamic-table reference.
        let mut first = vec![0x83, 0x86]; // :method POST, :scheme http
        first.extend(literal(0x44, "/runtime.v1.RuntimeService/Version")); // :path, indexed → 65
        first.extend(literal(0x41, "/tmp/x.sock")); // :authority, indexed → 64
        first.extend(literal(0x5f, "application/grpc")); // content-type, indexed → 63
        first.extend(literal(0x7a, "grpc-go/1.40.0")); // user-agent, indexed → 62
        let mut second = vec![0x83, 0x86];
        second.extend(literal(0x04, "/runtime.v1.ImageService/ListImages")); // not indexed
        second.extend([0x80 | 64, 0x80 | 63, 0x80 | 62]);
        let data = frame(0x0, END_STREAM, 1, b"\0\0\0\0\0");
        let mut input = PREFACE.to_vec();
        input.extend(frame(0x4, 0, 0, &[])); // SETTINGS
        input.extend(frame(HEADERS, END_HEADERS, 1, &first));
        input.extend(&data);
        input.extend(frame(HEADERS, END_HEADERS | END_STREAM, 3, &second));

        let (frames, blocks) = parse_output(&rewrite(&input));
        assert_eq!(frames.len(), 4);
        assert_eq!(frames[0], (0x4, 0, 0, vec![]));
        assert_eq!(frames[2], (0x0, END_STREAM, 1, b"\0\0\0\0\0".to_vec()));
        assert_eq!(
            (frames[3].0, frames[3].1, frames[3].2),
            (HEADERS, END_HEADERS | END_STREAM, 3)
        );
        assert_eq!(blocks.len(), 2);
        for (block, path) in blocks.iter().zip([
            "/runtime.v1.RuntimeService/Version",
            "/runtime.v1.ImageService/ListImages",
        ]) {
            assert_eq!(get(block, ":authority"), b"localhost");
            assert_eq!(get(block, ":path"), path.as_bytes());
            assert_eq!(get(block, ":method"), b"POST");
            assert_eq!(get(block, ":scheme"), b"http");
            assert_eq!(get(block, "content-type"), b"application/grpc");
            assert_eq!(get(block, "user-agent"), b"grpc-go/1.40.0");
            assert_eq!(block.len(), 6);
        }
    }

    #[test]
    fn encoder_output_with_its_own_dynamic_table_is_decoded() {
        // loona's encoder indexes new names and refers back to them in later blocks.
        let mut enc = loona_hpack::Encoder::new();
        let mut input = PREFACE.to_vec();
        for (stream, path) in [(1, "/a"), (3, "/b"), (5, "/a")] {
            let mut hs = headers("/tmp/x.sock", path);
            hs.push((b"x-trace", b"abc".to_vec()));
            input.extend(frame(HEADERS, END_HEADERS, stream, &encode(&mut enc, &hs)));
        }
        let (_, blocks) = parse_output(&rewrite(&input));
        assert_eq!(blocks.len(), 3);
        for (block, path) in blocks.iter().zip(["/a", "/b", "/a"]) {
            assert_eq!(get(block, ":authority"), b"localhost");
            assert_eq!(get(block, ":path"), path.as_bytes());
            assert_eq!(get(block, "x-trace"), b"abc");
        }
    }

    #[test]
    fn valid_authority_is_kept() {
        let mut enc = loona_hpack::Encoder::new();
        let mut input = PREFACE.to_vec();
        input.extend(frame(
            HEADERS,
            END_HEADERS,
            1,
            &encode(&mut enc, &headers("localhost", "/a")),
        ));
        input.extend(frame(
            HEADERS,
            END_HEADERS,
            3,
            &encode(&mut enc, &headers("unix:8080", "/b")),
        ));
        let (_, blocks) = parse_output(&rewrite(&input));
        assert_eq!(get(&blocks[0], ":authority"), b"localhost");
        assert_eq!(get(&blocks[1], ":authority"), b"unix:8080");
    }

    #[test]
    fn continuation_frames_are_joined_and_large_blocks_split() {
        let mut enc = loona_hpack::Encoder::new();
        let mut hs = headers("/run/ucr/ucr.sock", "/x");
        hs.push((b"x-big", vec![b'a'; 40_000])); // forces CONTINUATIONs on output too
        let block = encode(&mut enc, &hs);
        let (a, rest) = block.split_at(10);
        let (b, c) = rest.split_at(20_000);
        let mut input = PREFACE.to_vec();
        input.extend(frame(HEADERS, END_STREAM, 1, a));
        input.extend(frame(CONTINUATION, 0, 1, b));
        input.extend(frame(CONTINUATION, END_HEADERS, 1, c));

        let (frames, blocks) = parse_output(&rewrite(&input));
        let kinds: Vec<_> = frames.iter().map(|f| (f.0, f.1)).collect();
        assert_eq!(
            kinds,
            [
                (HEADERS, END_STREAM),
                (CONTINUATION, 0),
                (CONTINUATION, END_HEADERS)
            ]
        );
        assert_eq!(get(&blocks[0], ":authority"), b"localhost");
        assert_eq!(get(&blocks[0], "x-big"), &vec![b'a'; 40_000][..]);
        assert_eq!(get(&blocks[0], ":path"), b"/x");
    }

    #[test]
    fn padding_is_dropped_and_priority_kept() {
        let mut enc = loona_hpack::Encoder::new();
        let block = encode(&mut enc, &headers("/tmp/x.sock", "/p"));
        let priority = [0x80, 0, 0, 0, 15]; // exclusive, depends on 0, weight 16
        let mut payload = vec![3u8];
        payload.extend(priority);
        payload.extend(&block);
        payload.extend([0, 0, 0]);
        let mut input = PREFACE.to_vec();
        input.extend(frame(HEADERS, PADDED | PRIORITY | END_HEADERS, 5, &payload));

        let (frames, blocks) = parse_output(&rewrite(&input));
        assert_eq!(frames.len(), 1);
        assert_eq!(
            (frames[0].0, frames[0].1, frames[0].2),
            (HEADERS, PRIORITY | END_HEADERS, 5)
        );
        assert_eq!(frames[0].3[..5], priority);
        assert_eq!(get(&blocks[0], ":authority"), b"localhost");
        assert_eq!(get(&blocks[0], ":path"), b"/p");
    }

    #[test]
    fn malformed_input_is_an_error() {
        let mut out = Vec::new();
        assert!(matches!(
            Rewriter::default().feed(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", &mut out),
            Err(ShimError::BadPreface)
        ));
        let mut input = PREFACE.to_vec();
        input.extend(frame(HEADERS, PADDED | END_HEADERS, 1, &[9, 0x82]));
        assert!(matches!(
            Rewriter::default().feed(&input, &mut out),
            Err(ShimError::BadPadding { .. })
        ));
        let mut input = PREFACE.to_vec();
        input.extend(frame(HEADERS, 0, 1, &[0x82]));
        input.extend(frame(0x0, 0, 1, b"x"));
        assert!(matches!(
            Rewriter::default().feed(&input, &mut out),
            Err(ShimError::InterruptedBlock { .. })
        ));
        let mut input = PREFACE.to_vec();
        input.extend(frame(HEADERS, END_HEADERS, 1, &[0xff, 0x7f])); // index far past both tables
        assert!(matches!(
            Rewriter::default().feed(&input, &mut out),
            Err(ShimError::Hpack { .. })
        ));
    }
}
