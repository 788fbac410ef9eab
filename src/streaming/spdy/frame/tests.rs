#![allow(clippy::unwrap_used)]

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

use super::*;

/// Each frame next to its wire bytes, laid out by hand from the diagrams in SPDY/3
/// section 2.6 (control bit + version 3 = 0x8003, then the type; flags; 24-bit length).
fn vectors() -> Vec<(Frame, Vec<u8>)> {
    vec![
        (
            Frame::SynStream {
                stream_id: 1,
                associated_id: 0,
                priority: 2,
                slot: 0,
                fin: true,
                unidirectional: false,
                header_block: Bytes::from_static(&[1, 2, 3]),
            },
            vec![
                0x80, 0x03, 0x00, 0x01, // SYN_STREAM
                0x01, 0x00, 0x00, 0x0d, // FLAG_FIN, length 10 + 3
                0x00, 0x00, 0x00, 0x01, // stream 1
                0x00, 0x00, 0x00, 0x00, // associated-to 0
                0x40, 0x00, // priority 2 in the top 3 bits, slot 0
                0x01, 0x02, 0x03,
            ],
        ),
        (
            Frame::SynStream {
                stream_id: 2,
                associated_id: 1,
                priority: 7,
                slot: 9,
                fin: false,
                unidirectional: true,
                header_block: Bytes::new(),
            },
            vec![
                0x80, 0x03, 0x00, 0x01, // SYN_STREAM
                0x02, 0x00, 0x00, 0x0a, // FLAG_UNIDIRECTIONAL, length 10
                0x00, 0x00, 0x00, 0x02, // stream 2
                0x00, 0x00, 0x00, 0x01, // associated-to 1
                0xe0, 0x09, // priority 7, slot 9
            ],
        ),
        (
            Frame::SynReply {
                stream_id: 1,
                fin: false,
                header_block: Bytes::from_static(&[0xaa]),
            },
            vec![
                0x80, 0x03, 0x00, 0x02, // SYN_REPLY
                0x00, 0x00, 0x00, 0x05, // no flags, length 4 + 1
                0x00, 0x00, 0x00, 0x01, 0xaa,
            ],
        ),
        (
            Frame::RstStream {
                stream_id: 5,
                status: RstStatus::REFUSED_STREAM,
            },
            vec![
                0x80, 0x03, 0x00, 0x03, // RST_STREAM
                0x00, 0x00, 0x00, 0x08, // always 8
                0x00, 0x00, 0x00, 0x05, // stream 5
                0x00, 0x00, 0x00, 0x03, // REFUSED_STREAM
            ],
        ),
        (
            Frame::Settings {
                clear_persisted: false,
                entries: vec![
                    Setting {
                        flags: 0x01,
                        id: SETTINGS_INITIAL_WINDOW_SIZE,
                        value: 0x1_0000,
                    },
                    Setting {
                        flags: 0,
                        id: SETTINGS_MAX_CONCURRENT_STREAMS,
                        value: 1000,
                    },
                ],
            },
            vec![
                0x80, 0x03, 0x00, 0x04, // SETTINGS
                0x00, 0x00, 0x00, 0x14, // length 4 + 2 * 8
                0x00, 0x00, 0x00, 0x02, // 2 entries
                0x01, 0x00, 0x00, 0x07, // FLAG_SETTINGS_PERSIST_VALUE, INITIAL_WINDOW_SIZE
                0x00, 0x01, 0x00, 0x00, // 65536
                0x00, 0x00, 0x00, 0x04, // MAX_CONCURRENT_STREAMS
                0x00, 0x00, 0x03, 0xe8, // 1000
            ],
        ),
        (
            Frame::Settings {
                clear_persisted: true,
                entries: vec![],
            },
            vec![
                0x80, 0x03, 0x00, 0x04, // SETTINGS
                0x01, 0x00, 0x00, 0x04, // FLAG_SETTINGS_CLEAR_SETTINGS, length 4
                0x00, 0x00, 0x00, 0x00,
            ],
        ),
        (
            Frame::Ping { id: 0xdead_beef },
            vec![
                0x80, 0x03, 0x00, 0x06, // PING
                0x00, 0x00, 0x00, 0x04, // always 4
                0xde, 0xad, 0xbe, 0xef,
            ],
        ),
        (
            Frame::GoAway {
                last_good_stream_id: 3,
                status: GoAwayStatus::PROTOCOL_ERROR,
            },
            vec![
                0x80, 0x03, 0x00, 0x07, // GOAWAY
                0x00, 0x00, 0x00, 0x08, // always 8
                0x00, 0x00, 0x00, 0x03, // last good stream 3
                0x00, 0x00, 0x00, 0x01, // PROTOCOL_ERROR
            ],
        ),
        (
            Frame::Headers {
                stream_id: 3,
                fin: true,
                header_block: Bytes::from_static(&[0x01]),
            },
            vec![
                0x80, 0x03, 0x00, 0x08, // HEADERS
                0x01, 0x00, 0x00, 0x05, // FLAG_FIN, length 4 + 1
                0x00, 0x00, 0x00, 0x03, 0x01,
            ],
        ),
        (
            Frame::WindowUpdate {
                stream_id: 0,
                delta: 0x7fff_ffff,
            },
            vec![
                0x80, 0x03, 0x00, 0x09, // WINDOW_UPDATE
                0x00, 0x00, 0x00, 0x08, // always 8
                0x00, 0x00, 0x00, 0x00, // stream 0: the session (SPDY/3.1)
                0x7f, 0xff, 0xff, 0xff, // largest delta
            ],
        ),
        (
            Frame::Data {
                stream_id: 1,
                fin: true,
                data: Bytes::from_static(b"hi"),
            },
            vec![
                0x00, 0x00, 0x00, 0x01, // control bit 0, stream 1
                0x01, 0x00, 0x00, 0x02, // FLAG_FIN, length 2
                b'h', b'i',
            ],
        ),
        (
            Frame::Data {
                stream_id: 0x7fff_ffff,
                fin: false,
                data: Bytes::new(),
            },
            vec![0x7f, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00],
        ),
    ]
}

fn decoder() -> FrameDecoder {
    FrameDecoder::new(MAX_LENGTH)
}

fn decode_all(bytes: &[u8]) -> Result<Vec<Frame>, SpdyError> {
    let mut src = BytesMut::from(bytes);
    let mut frames = Vec::new();
    while let Some(frame) = decoder().decode(&mut src)? {
        frames.push(frame);
    }
    assert!(src.is_empty(), "{} bytes left over", src.len());
    Ok(frames)
}

#[test]
fn encodes_the_spec_layouts() {
    for (frame, wire) in vectors() {
        let mut dst = BytesMut::new();
        frame.encode(&mut dst).unwrap();
        assert_eq!(&dst[..], &wire[..], "{frame:?}");
    }
}

#[test]
fn decodes_the_spec_layouts() {
    for (frame, wire) in vectors() {
        assert_eq!(decode_all(&wire).unwrap(), vec![frame]);
    }
}

#[test]
fn every_prefix_is_incomplete_and_left_alone() {
    for (frame, wire) in vectors() {
        for cut in 0..wire.len() {
            let mut src = BytesMut::from(&wire[..cut]);
            assert!(
                decoder().decode(&mut src).unwrap().is_none(),
                "{frame:?} cut at {cut}"
            );
            assert_eq!(&src[..], &wire[..cut]);
        }
    }
}

#[test]
fn frames_arriving_a_byte_at_a_time() {
    let wire: Vec<u8> = vectors().into_iter().flat_map(|(_, w)| w).collect();
    let mut dec = decoder();
    let mut src = BytesMut::new();
    let mut frames = Vec::new();
    for byte in wire {
        src.extend_from_slice(&[byte]);
        if let Some(frame) = dec.decode(&mut src).unwrap() {
            frames.push(frame);
        }
    }
    let expected: Vec<Frame> = vectors().into_iter().map(|(f, _)| f).collect();
    assert_eq!(frames, expected);
}

#[test]
fn reserved_bits_are_ignored() {
    let wire = [
        0x80, 0x03, 0x00, 0x09, 0x00, 0x00, 0x00, 0x08, // WINDOW_UPDATE
        0x80, 0x00, 0x00, 0x05, // X bit set, stream 5
        0x80, 0x00, 0x00, 0x10, // X bit set, delta 16
    ];
    let frames = decode_all(&wire).unwrap();
    assert_eq!(
        frames,
        vec![Frame::WindowUpdate {
            stream_id: 5,
            delta: 16
        }]
    );
}

#[test]
fn unknown_control_frames_are_skipped() {
    let mut wire = vec![
        0x80, 0x03, 0x00, 0x0a, 0x00, 0x00, 0x00, 0x03, // CREDENTIAL, 3 bytes
        0xff, 0xff, 0xff,
    ];
    wire.extend_from_slice(&[0x80, 0x03, 0x00, 0x06, 0x00, 0x00, 0x00, 0x04, 0, 0, 0, 7]);
    assert_eq!(decode_all(&wire).unwrap(), vec![Frame::Ping { id: 7 }]);
    // Until the unknown frame is whole, nothing is consumed.
    let mut src = BytesMut::from(&wire[..10]);
    assert!(decoder().decode(&mut src).unwrap().is_none());
    assert_eq!(src.len(), 10);
}

#[test]
fn oversized_frames_are_refused_from_their_header() {
    let mut src = BytesMut::from(&[0x00, 0x00, 0x00, 0x01, 0x00, 0xff, 0xff, 0xff][..]);
    let capacity = src.capacity();
    let err = FrameDecoder::new(1 << 20).decode(&mut src).unwrap_err();
    assert!(matches!(err, SpdyError::FrameTooLarge { len: 0xff_ffff, max } if max == 1 << 20));
    assert_eq!(src.len(), 8);
    assert_eq!(src.capacity(), capacity);
}

#[test]
fn encoding_refuses_payloads_past_24_bits() {
    let frame = Frame::Data {
        stream_id: 1,
        fin: false,
        data: Bytes::from(vec![0; MAX_LENGTH + 1]),
    };
    let mut dst = BytesMut::new();
    assert!(matches!(
        frame.encode(&mut dst),
        Err(SpdyError::FrameTooLarge { .. })
    ));
    assert!(dst.is_empty());
}

#[test]
fn malformed_frames_are_errors() {
    let cases: &[(&str, &[u8])] = &[
        ("DATA on stream 0", &[0, 0, 0, 0, 0, 0, 0, 0]),
        (
            "version 2",
            &[0x80, 0x02, 0x00, 0x06, 0, 0, 0, 4, 0, 0, 0, 1],
        ),
        (
            "short SYN_STREAM",
            &[
                0x80, 0x03, 0x00, 0x01, 0, 0, 0, 9, 0, 0, 0, 1, 0, 0, 0, 0, 0,
            ],
        ),
        (
            "SYN_STREAM on stream 0",
            &[
                0x80, 0x03, 0x00, 0x01, 0, 0, 0, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            ],
        ),
        (
            "short SYN_REPLY",
            &[0x80, 0x03, 0x00, 0x02, 0, 0, 0, 2, 0, 1],
        ),
        (
            "RST_STREAM of 4 bytes",
            &[0x80, 0x03, 0x00, 0x03, 0, 0, 0, 4, 0, 0, 0, 1],
        ),
        (
            "RST_STREAM status 0",
            &[0x80, 0x03, 0x00, 0x03, 0, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0, 0],
        ),
        (
            "SETTINGS count too high",
            &[0x80, 0x03, 0x00, 0x04, 0, 0, 0, 4, 0xff, 0xff, 0xff, 0xff],
        ),
        (
            "SETTINGS count too low",
            &[
                0x80, 0x03, 0x00, 0x04, 0, 0, 0, 12, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 1,
            ],
        ),
        (
            "PING of 8 bytes",
            &[0x80, 0x03, 0x00, 0x06, 0, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0, 1],
        ),
        (
            "SPDY/2 GOAWAY",
            &[0x80, 0x03, 0x00, 0x07, 0, 0, 0, 4, 0, 0, 0, 1],
        ),
        (
            "HEADERS on stream 0",
            &[0x80, 0x03, 0x00, 0x08, 0, 0, 0, 4, 0, 0, 0, 0],
        ),
        (
            "WINDOW_UPDATE of 4 bytes",
            &[0x80, 0x03, 0x00, 0x09, 0, 0, 0, 4, 0, 0, 0, 1],
        ),
    ];
    for (what, wire) in cases {
        let mut src = BytesMut::from(*wire);
        assert!(decoder().decode(&mut src).is_err(), "{what} decoded");
    }
}

fn stream_id() -> impl Strategy<Value = u32> {
    1..=MAX_STREAM_ID
}

fn block() -> impl Strategy<Value = Bytes> {
    prop::collection::vec(any::<u8>(), 0..64).prop_map(Bytes::from)
}

fn frame() -> impl Strategy<Value = Frame> {
    prop_oneof![
        (
            stream_id(),
            0..=MAX_STREAM_ID,
            0..8u8,
            any::<u8>(),
            any::<bool>(),
            any::<bool>(),
            block()
        )
            .prop_map(
                |(stream_id, associated_id, priority, slot, fin, unidirectional, header_block)| {
                    Frame::SynStream {
                        stream_id,
                        associated_id,
                        priority,
                        slot,
                        fin,
                        unidirectional,
                        header_block,
                    }
                }
            ),
        (stream_id(), any::<bool>(), block()).prop_map(|(stream_id, fin, header_block)| {
            Frame::SynReply {
                stream_id,
                fin,
                header_block,
            }
        }),
        (stream_id(), 1..=u32::MAX).prop_map(|(stream_id, status)| Frame::RstStream {
            stream_id,
            status: RstStatus(status)
        }),
        (
            any::<bool>(),
            prop::collection::vec((any::<u8>(), 0..=0x00ff_ffffu32, any::<u32>()), 0..8)
        )
            .prop_map(|(clear_persisted, entries)| Frame::Settings {
                clear_persisted,
                entries: entries
                    .into_iter()
                    .map(|(flags, id, value)| Setting { flags, id, value })
                    .collect(),
            }),
        any::<u32>().prop_map(|id| Frame::Ping { id }),
        (0..=MAX_STREAM_ID, any::<u32>()).prop_map(|(last_good_stream_id, status)| Frame::GoAway {
            last_good_stream_id,
            status: GoAwayStatus(status),
        }),
        (stream_id(), any::<bool>(), block()).prop_map(|(stream_id, fin, header_block)| {
            Frame::Headers {
                stream_id,
                fin,
                header_block,
            }
        }),
        (0..=MAX_STREAM_ID, 0..=MAX_STREAM_ID)
            .prop_map(|(stream_id, delta)| Frame::WindowUpdate { stream_id, delta }),
        (
            stream_id(),
            any::<bool>(),
            prop::collection::vec(any::<u8>(), 0..256)
        )
            .prop_map(|(stream_id, fin, data)| Frame::Data {
                stream_id,
                fin,
                data: data.into()
            }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn encode_then_decode_is_identity(frames in prop::collection::vec(frame(), 1..8)) {
        let mut wire = BytesMut::new();
        for frame in &frames {
            frame.encode(&mut wire).unwrap();
        }
        prop_assert_eq!(decode_all(&wire).unwrap(), frames);
    }

    #[test]
    fn decoder_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let mut src = BytesMut::from(&bytes[..]);
        let mut dec = FrameDecoder::new(256);
        while let Ok(Some(_)) = dec.decode(&mut src) {}
    }

    /// Random bytes rarely get past the header checks; flipping bytes of valid frames
    /// reaches the per-type parsers.
    #[test]
    fn decoder_never_panics_on_damaged_frames(
        frames in prop::collection::vec(frame(), 1..4),
        damage in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let mut wire = BytesMut::new();
        for frame in &frames {
            frame.encode(&mut wire).unwrap();
        }
        for (at, byte) in damage {
            let i = at.index(wire.len());
            wire[i] = byte;
        }
        let mut dec = decoder();
        while let Ok(Some(_)) = dec.decode(&mut wire) {}
    }
}
