//! Message building and decoding, against bytes the crates produce; no socket, no root.

use netlink_packet_core::{DoneMessage, Parseable};
use netlink_packet_route::link::Stats64;

use super::*;

/// One message answering request `seq`, as the kernel would frame it.
fn message(payload: NetlinkPayload<RouteNetlinkMessage>, seq: u32) -> Vec<u8> {
    let mut header = NetlinkHeader::default();
    header.sequence_number = seq;
    let mut msg = NetlinkMessage::new(header, payload);
    msg.finalize();
    let mut bytes = vec![0; msg.buffer_len()];
    msg.serialize(&mut bytes);
    bytes
}

fn new_link(attributes: Vec<LinkAttribute>) -> NetlinkPayload<RouteNetlinkMessage> {
    let mut link = LinkMessage::default();
    link.header.flags = LinkFlags::Up | LinkFlags::LowerUp;
    link.attributes = attributes;
    NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(link))
}

fn done(code: i32) -> NetlinkPayload<RouteNetlinkMessage> {
    let mut done = DoneMessage::default();
    done.code = code;
    NetlinkPayload::Done(done)
}

fn stats64(rx_bytes: u64, tx_bytes: u64, rx_errors: u64, tx_errors: u64) -> Stats64 {
    let mut s = Stats64::default();
    s.rx_packets = 1;
    s.tx_packets = 2;
    s.rx_bytes = rx_bytes;
    s.tx_bytes = tx_bytes;
    s.rx_errors = rx_errors;
    s.tx_errors = tx_errors;
    s.rx_dropped = 7;
    s.tx_dropped = 8;
    s
}

/// The `ifinfomsg` + attributes of an `RTM_NEWLINK` built from `attributes`.
fn link_payload(attributes: Vec<LinkAttribute>) -> Vec<u8> {
    let bytes = message(new_link(attributes), 1);
    bytes[NetlinkHeader::default().buffer_len()..].to_vec()
}

#[test]
fn set_up_request_is_a_setlink_by_name_changing_only_up() {
    let bytes = serialize(set_up_request("lo"), NLM_F_REQUEST | NLM_F_ACK, 7);
    // header 16 + ifinfomsg 16 + IFLA_IFNAME "lo\0" (4 + 3, padded to 8).
    assert_eq!(bytes.len(), 40);
    let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&bytes).expect("decode");
    assert_eq!(msg.header.length, 40);
    assert_eq!(msg.header.message_type, libc::RTM_SETLINK);
    assert_eq!(msg.header.flags, NLM_F_REQUEST | NLM_F_ACK);
    assert_eq!(msg.header.sequence_number, 7);
    let NetlinkPayload::InnerMessage(RouteNetlinkMessage::SetLink(link)) = msg.payload else {
        panic!("not a SetLink: {:?}", msg.payload);
    };
    assert_eq!(link.header.index, 0, "looked up by name");
    assert_eq!(link.header.flags, LinkFlags::Up);
    assert_eq!(link.header.change_mask, LinkFlags::Up);
    assert_eq!(link.attributes, vec![LinkAttribute::IfName("lo".into())]);
}

#[test]
fn dump_request_asks_for_every_link() {
    let request = RouteNetlinkMessage::GetLink(LinkMessage::default());
    let bytes = serialize(request, NLM_F_REQUEST | NLM_F_DUMP, 3);
    let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&bytes).expect("decode");
    assert_eq!(msg.header.message_type, libc::RTM_GETLINK);
    assert_eq!(msg.header.flags, NLM_F_REQUEST | NLM_F_DUMP);
    assert_eq!(msg.header.length as usize, bytes.len());
}

#[test]
fn parses_the_name_and_the_64_bit_counters() {
    let payload = link_payload(vec![
        LinkAttribute::Mtu(1500),
        LinkAttribute::IfName("eth0".into()),
        LinkAttribute::Stats64(stats64(300, 400, 5, 6)),
    ]);
    assert_eq!(
        parse_link(&payload).expect("parse"),
        IfStats {
            name: "eth0".into(),
            up: true,
            rx_bytes: 300,
            tx_bytes: 400,
            rx_errors: 5,
            tx_errors: 6,
            rx_packets: 1,
            tx_packets: 2,
            rx_dropped: 7,
            tx_dropped: 8,
        }
    );
}

#[test]
fn an_attribute_the_crate_cannot_read_does_not_lose_the_link() {
    let mut payload = link_payload(vec![
        LinkAttribute::IfName("eth0".into()),
        LinkAttribute::Stats64(stats64(1, 2, 0, 0)),
    ]);
    // IFLA_MTU holding one byte instead of a u32: the crate's full decoder rejects it.
    payload.extend_from_slice(&5u16.to_ne_bytes());
    payload.extend_from_slice(&libc::IFLA_MTU.to_ne_bytes());
    payload.extend_from_slice(&[9, 0, 0, 0]);
    assert!(
        LinkMessage::parse(payload.as_slice()).is_err(),
        "the whole-message decoder now accepts this; pick another malformed attribute"
    );
    let link = parse_link(&payload).expect("parse");
    assert_eq!((link.name.as_str(), link.rx_bytes), ("eth0", 1));
}

#[test]
fn a_link_without_a_name_or_64_bit_counters_is_an_error() {
    let no_name = link_payload(vec![LinkAttribute::Stats64(stats64(1, 2, 0, 0))]);
    let err = parse_link(&no_name).expect_err("no name");
    assert!(err.to_string().contains("IFLA_IFNAME"), "{err}");
    let no_stats = link_payload(vec![LinkAttribute::IfName("eth0".into())]);
    let err = parse_link(&no_stats).expect_err("no stats");
    assert!(err.to_string().contains("eth0"), "{err}");
    assert!(parse_link(&[0u8; 8]).is_err(), "short header");
}

#[test]
fn datagrams_split_into_the_messages_answering_one_request() {
    let name = |n: &str| LinkAttribute::IfName(n.into());
    let counters = LinkAttribute::Stats64(stats64(10, 20, 0, 0));
    let mut datagram = message(new_link(vec![name("stale"), counters.clone()]), 3);
    datagram.extend(message(new_link(vec![name("lo"), counters.clone()]), 4));
    datagram.extend(message(new_link(vec![name("eth0"), counters]), 4));
    datagram.extend(message(done(0), 4));

    let msgs = decode_datagram(&datagram, 4).expect("decode");
    let names: Vec<&str> = msgs
        .iter()
        .filter_map(|m| match &m.payload {
            NetlinkPayload::InnerMessage(LinkReply::Link(l)) => Some(l.name.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(names, ["lo", "eth0"]);
    assert!(
        matches!(msgs.last().map(|m| &m.payload), Some(NetlinkPayload::Done(d)) if d.code == 0)
    );
}

#[test]
fn a_length_past_the_datagram_is_rejected() {
    let mut datagram = message(done(0), 1);
    datagram[0..4].copy_from_slice(&1000u32.to_ne_bytes());
    assert!(decode_datagram(&datagram, 1).is_err());
    // Only padding left over is fine.
    let mut padded = message(done(-libc::EPERM), 1);
    padded.extend_from_slice(&[0; 4]);
    let msgs = decode_datagram(&padded, 1).expect("decode");
    assert!(matches!(&msgs[0].payload, NetlinkPayload::Done(d) if d.code == -libc::EPERM));
}
