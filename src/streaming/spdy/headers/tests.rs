#![allow(clippy::unwrap_used)]

use proptest::prelude::*;

use super::*;

fn h(pairs: &[(&str, &str)]) -> Headers {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

/// Two consecutive blocks from one zlib stream, made with CPython's zlib 1.2.13 and the
/// SPDY/3 dictionary (`zlib.compressobj(level=9, zdict=dictionary)`, each block followed by
/// `flush(zlib.Z_SYNC_FLUSH)`), from these uncompressed blocks:
/// 1. `streamtype: stdin`
/// 2. `accept: a\0b`, `port: 8080`, `streamtype: data`
///
/// The first starts `78 f9` (FDICT set) and names dictionary e3c6a7c2.
const PYTHON_BLOCK_1: &str = "78f9e3c6a7c202a62346703a2b294a4dcc851625acc525c03c01000000ffff";
const PYTHON_BLOCK_2: &str = "02a5479482973991210952561781b38585818501865e50319408000000ffff";

#[test]
fn inflates_blocks_zlib_made_with_the_dictionary() {
    let mut inflate = HeaderDecompressor::new();
    let first = inflate
        .decompress(&hex::decode(PYTHON_BLOCK_1).unwrap())
        .unwrap();
    assert_eq!(decode_block(&first).unwrap(), h(&[("streamtype", "stdin")]));
    // The second block leans on the first's history: it only inflates in sequence.
    let second = inflate
        .decompress(&hex::decode(PYTHON_BLOCK_2).unwrap())
        .unwrap();
    assert_eq!(
        decode_block(&second).unwrap(),
        h(&[
            ("accept", "a"),
            ("accept", "b"),
            ("port", "8080"),
            ("streamtype", "data")
        ])
    );
    assert!(HeaderDecompressor::new()
        .decompress(&hex::decode(PYTHON_BLOCK_2).unwrap())
        .is_err());
}

#[test]
fn blocks_round_trip_through_one_pair() {
    let mut deflate = HeaderCompressor::new();
    let mut inflate = HeaderDecompressor::new();
    let blocks = [
        h(&[("streamtype", "error")]),
        h(&[("streamtype", "stdout"), ("requestid", "1")]),
        h(&[("streamtype", "stdout"), ("requestid", "1")]),
        h(&[]),
        h(&[("port", "80"), ("x-empty", "")]),
    ];
    let mut sizes = Vec::new();
    for headers in &blocks {
        let compressed = deflate.compress(headers).unwrap();
        sizes.push(compressed.len());
        let raw = inflate.decompress(&compressed).unwrap();
        assert_eq!(&decode_block(&raw).unwrap(), headers);
    }
    // A repeat of the previous block costs a few bytes: the state carried over.
    assert!(sizes[2] < sizes[1] / 2, "{sizes:?}");
}

#[test]
fn our_first_block_names_the_dictionary() {
    let block = HeaderCompressor::new()
        .compress(&h(&[("streamtype", "stdin")]))
        .unwrap();
    // RFC 1950: deflate with a 32 KiB window, FDICT set, then the dictionary's Adler-32.
    assert_eq!(block[0], 0x78);
    assert_ne!(block[1] & 0x20, 0);
    assert_eq!(u16::from_be_bytes([block[0], block[1]]) % 31, 0);
    assert_eq!(&block[2..6], &DICTIONARY_ID.to_be_bytes());
    // Ends with the sync flush marker: an empty stored block.
    assert_eq!(&block[block.len() - 4..], &[0x00, 0x00, 0xff, 0xff]);
}

#[test]
fn encodes_the_block_layout() {
    let raw = encode_block(&h(&[("Port", "80"), ("port", "443"), ("x", "")])).unwrap();
    let mut expected = vec![0, 0, 0, 2];
    expected.extend_from_slice(&[0, 0, 0, 4]);
    expected.extend_from_slice(b"port");
    expected.extend_from_slice(&[0, 0, 0, 6]);
    expected.extend_from_slice(b"80\x00443");
    expected.extend_from_slice(&[0, 0, 0, 1]);
    expected.extend_from_slice(b"x");
    expected.extend_from_slice(&[0, 0, 0, 0]);
    assert_eq!(raw, expected);
    assert_eq!(
        decode_block(&raw).unwrap(),
        h(&[("port", "80"), ("port", "443"), ("x", "")])
    );
}

#[test]
fn refuses_headers_it_cannot_send() {
    for bad in [
        h(&[("", "v")]),
        h(&[("a\0b", "v")]),
        h(&[("naïve", "v")]),
        h(&[("a", "x\0y")]),
        h(&[("a", ""), ("a", "y")]),
    ] {
        assert!(encode_block(&bad).is_err(), "{bad:?}");
    }
    let many: Headers = (0..=MAX_HEADERS)
        .map(|i| (format!("h{i}"), String::new()))
        .collect();
    assert!(encode_block(&many).is_err());
    let huge = vec![("big".to_string(), "x".repeat(MAX_BLOCK_LEN))];
    assert!(matches!(
        encode_block(&huge),
        Err(SpdyError::HeaderBlockTooLarge { .. })
    ));
}

fn block(count: u32, fields: &[&[u8]]) -> Vec<u8> {
    let mut raw = count.to_be_bytes().to_vec();
    for field in fields {
        raw.extend_from_slice(&(field.len() as u32).to_be_bytes());
        raw.extend_from_slice(field);
    }
    raw
}

#[test]
fn lower_cases_names_it_receives() {
    let raw = block(1, &[b"StreamType", b"stdin"]);
    assert_eq!(decode_block(&raw).unwrap(), h(&[("streamtype", "stdin")]));
}

#[test]
fn refuses_malformed_blocks() {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("truncated count", vec![0, 0]),
        ("count past the pairs", block(2, &[b"a", b"b"])),
        ("count too large", block(MAX_HEADERS as u32 + 1, &[])),
        ("length past the end", vec![0, 0, 0, 1, 0, 0, 0, 9, b'a']),
        ("empty name", block(1, &[b"", b"v"])),
        ("NUL in a name", block(1, &[b"a\0", b"v"])),
        ("repeated name", block(2, &[b"a", b"1", b"A", b"2"])),
        ("leading NUL", block(1, &[b"a", b"\0x"])),
        ("trailing NUL", block(1, &[b"a", b"x\0"])),
        ("double NUL", block(1, &[b"a", b"x\0\0y"])),
        ("value not UTF-8", block(1, &[b"a", b"\xff"])),
        ("trailing bytes", [block(0, &[]), vec![0]].concat()),
    ];
    for (what, raw) in cases {
        assert!(decode_block(&raw).is_err(), "{what}");
    }
}

#[test]
fn get_ignores_case_and_returns_the_first_value() {
    let headers = h(&[("streamtype", "stdout"), ("port", "80"), ("port", "443")]);
    assert_eq!(get(&headers, "StreamType"), Some("stdout"));
    assert_eq!(get(&headers, "port"), Some("80"));
    assert_eq!(get(&headers, "requestid"), None);
}

fn deflate_with(dictionary: &[u8], data: &[u8]) -> Vec<u8> {
    let mut z = Compress::new(Compression::default(), true);
    z.set_dictionary(dictionary).unwrap();
    let mut out = Vec::with_capacity(data.len() + 1024);
    z.compress_vec(data, &mut out, FlushCompress::Sync).unwrap();
    out
}

#[test]
fn inflating_stops_at_the_limit() {
    // 2 MiB of zeros deflates to a few KiB: a bomb as far as header blocks go.
    let bomb = deflate_with(&DICTIONARY, &vec![0; 2 * MAX_BLOCK_LEN]);
    assert!(bomb.len() < 16 * 1024);
    assert!(matches!(
        HeaderDecompressor::new().decompress(&bomb),
        Err(SpdyError::HeaderBlockTooLarge { .. })
    ));
    let at_limit = deflate_with(&DICTIONARY, &vec![0; MAX_BLOCK_LEN]);
    assert_eq!(
        HeaderDecompressor::new()
            .decompress(&at_limit)
            .unwrap()
            .len(),
        MAX_BLOCK_LEN
    );
}

#[test]
fn refuses_other_dictionaries_and_garbage() {
    let other = deflate_with(b"some other dictionary", b"\0\0\0\0");
    assert!(matches!(
        HeaderDecompressor::new().decompress(&other),
        Err(SpdyError::UnknownDictionary(_))
    ));
    assert!(HeaderDecompressor::new()
        .decompress(&[0x78, 0xbb, 0xff, 0xff, 0xff, 0xff, 0xff])
        .is_err());
}

fn headers_strategy() -> impl Strategy<Value = Headers> {
    prop::collection::vec(("[a-z][a-z0-9-]{0,15}", "[ -~]{1,40}"), 0..12)
}

proptest! {
    // Each case sets up zlib state, which is slow in an unoptimized build.
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn random_blocks_round_trip_in_sequence(blocks in prop::collection::vec(headers_strategy(), 1..6)) {
        let mut deflate = HeaderCompressor::new();
        let mut inflate = HeaderDecompressor::new();
        for headers in blocks {
            let compressed = deflate.compress(&headers).unwrap();
            let decoded = decode_block(&inflate.decompress(&compressed).unwrap()).unwrap();
            // Repeated names come back grouped under their first appearance.
            let mut expected: Headers = Vec::new();
            let mut order: Vec<&str> = Vec::new();
            for (n, _) in &headers {
                if !order.contains(&n.as_str()) {
                    order.push(n);
                }
            }
            for name in order {
                expected.extend(headers.iter().filter(|(n, _)| n == name).cloned());
            }
            prop_assert_eq!(decoded, expected);
        }
    }

    #[test]
    fn inflating_arbitrary_bytes_never_panics(
        blocks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 1..4),
    ) {
        let mut inflate = HeaderDecompressor::new();
        for block in blocks {
            if let Ok(raw) = inflate.decompress(&block) {
                let _ = decode_block(&raw);
            }
        }
    }

    #[test]
    fn parsing_arbitrary_blocks_never_panics(raw in prop::collection::vec(any::<u8>(), 0..128)) {
        let _ = decode_block(&raw);
    }
}
