//! The two rtnetlink (`NETLINK_ROUTE`) requests pods need: set a link up (`ip link set lo
//! up`) and dump every link with its counters (`ip -s link`).
//!
//! Why these crates: messages are built and decoded by `netlink-packet-route` on top of
//! `netlink-packet-core`, and sent over `netlink-sys`'s plain blocking socket, as the
//! design names them, instead of packing uapi structs by hand. The async `rtnetlink` crate
//! that sits on top of them is left out on purpose: a netlink socket talks to the network
//! namespace of the thread that *created* it, and these calls run on a short-lived thread
//! that has just `setns`-ed into a pod's namespace (see `super::interface_stats`). The
//! socket is therefore opened on that thread and used synchronously there; a reactor to
//! drive it would only add a runtime to a thread that makes two syscalls.
//!
//! The link dump does not decode whole `LinkMessage`s: that parses every attribute
//! (per-family config, link info, VF lists…), and one attribute this crate version
//! misreads fails the whole message (rust-netlink/netlink-packet-route#151 and #138 were
//! such cases after kernel changes). Stats for a pod must not break because of a field
//! they do not use, so each link's header is decoded and only `IFLA_IFNAME` and
//! `IFLA_STATS64` go through the crate's attribute parser. Skipping the rest also keeps a
//! call cheap, which matters at a hundred pods per stats request.

use std::io;

use netlink_packet_core::{
    DecodeError, Emitable, ErrorContext, NetlinkBuffer, NetlinkDeserializable, NetlinkHeader,
    NetlinkMessage, NetlinkPayload, NlasIterator, ParseableParametrized, NLM_F_ACK, NLM_F_DUMP,
    NLM_F_DUMP_INTR, NLM_F_REQUEST,
};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkHeader, LinkMessage};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use super::IfStats;

/// How often a dump the kernel flagged as interrupted (links changed meanwhile) is
/// retried before giving up; iproute2 only warns, but callers here want real numbers.
const DUMP_ATTEMPTS: usize = 5;

/// The receive buffer's starting size. The kernel fills dump datagrams up to the size the
/// reader asks for, capped near 32 KiB, so this keeps the number of reads down; bigger
/// datagrams (one link with many VFs) are still read whole, see [`RouteSocket::read`].
const RECV_BUF: usize = 32 * 1024;

/// A route netlink socket in the network namespace of the thread that opened it.
pub(super) struct RouteSocket {
    socket: Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl RouteSocket {
    /// Opens a socket in the calling thread's network namespace, connected to the kernel.
    pub(super) fn open() -> io::Result<RouteSocket> {
        let socket = Socket::new(NETLINK_ROUTE)?;
        // Connected to the kernel (port 0), the socket refuses datagrams from any other
        // sender, so everything read from it is the kernel's answer.
        socket.connect(&SocketAddr::new(0, 0))?;
        Ok(RouteSocket {
            socket,
            seq: 0,
            buf: Vec::with_capacity(RECV_BUF),
        })
    }

    /// Sets `IFF_UP` on the link called `name` and waits for the kernel's ack.
    pub(super) fn set_link_up(&mut self, name: &str) -> io::Result<()> {
        let seq = self.send(set_up_request(name), NLM_F_REQUEST | NLM_F_ACK)?;
        loop {
            for msg in self.receive(seq)? {
                if let NetlinkPayload::Error(e) = msg.payload {
                    // An error message with no code is the ack.
                    return e.code.map_or(Ok(()), |_| Err(e.to_io()));
                }
            }
        }
    }

    /// Every link in the namespace with its counters.
    pub(super) fn link_stats(&mut self) -> io::Result<Vec<IfStats>> {
        for _ in 1..DUMP_ATTEMPTS {
            if let Some(links) = self.dump_links()? {
                return Ok(links);
            }
        }
        self.dump_links()?.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::Interrupted,
                format!("link dump interrupted by concurrent changes {DUMP_ATTEMPTS} times"),
            )
        })
    }

    /// One `RTM_GETLINK` dump; `None` when the kernel flagged it as interrupted.
    fn dump_links(&mut self) -> io::Result<Option<Vec<IfStats>>> {
        let request = RouteNetlinkMessage::GetLink(LinkMessage::default());
        let seq = self.send(request, NLM_F_REQUEST | NLM_F_DUMP)?;
        let mut links = Vec::new();
        let mut interrupted = false;
        loop {
            for msg in self.receive(seq)? {
                interrupted |= msg.header.flags & NLM_F_DUMP_INTR != 0;
                match msg.payload {
                    NetlinkPayload::InnerMessage(LinkReply::Link(link)) => links.push(link),
                    // DONE carries the dump's own status: 0, or a negative errno.
                    NetlinkPayload::Done(done) if done.code != 0 => {
                        return Err(io::Error::from_raw_os_error(done.code.saturating_abs()))
                    }
                    NetlinkPayload::Done(_) => return Ok((!interrupted).then_some(links)),
                    // A dump is not acked; an error message without a code would be a
                    // harmless ack, so only real errors end it.
                    NetlinkPayload::Error(e) if e.code.is_some() => return Err(e.to_io()),
                    NetlinkPayload::Overrun(_) => {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            "netlink reported an overrun (messages were lost)",
                        ))
                    }
                    // NOOP, acks, and anything newer kernels may add.
                    _ => {}
                }
            }
        }
    }

    /// Sends one request under a fresh sequence number, which it returns.
    fn send(&mut self, request: RouteNetlinkMessage, flags: u16) -> io::Result<u32> {
        self.seq = self.seq.wrapping_add(1);
        let bytes = serialize(request, flags, self.seq);
        let sent = self.socket.send(&bytes, 0)?;
        if sent != bytes.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "short write on a netlink socket",
            ));
        }
        Ok(self.seq)
    }

    /// Reads one datagram and decodes the messages in it that answer request `seq`.
    fn receive(&mut self, seq: u32) -> io::Result<Vec<NetlinkMessage<LinkReply>>> {
        self.read()?;
        decode_datagram(&self.buf, seq).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    /// Reads one datagram into `self.buf`. Its size is peeked first (`MSG_PEEK |
    /// MSG_TRUNC` returns the real length) because a datagram read into a smaller buffer
    /// is silently cut.
    fn read(&mut self) -> io::Result<()> {
        self.buf.clear();
        self.buf.reserve(RECV_BUF);
        let size = retry_interrupted(|| {
            self.socket
                .recv(&mut self.buf, libc::MSG_PEEK | libc::MSG_TRUNC)
        })?;
        self.buf.clear();
        self.buf.reserve(size);
        let got = retry_interrupted(|| self.socket.recv(&mut self.buf, 0))?;
        if got != self.buf.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "netlink datagram of {got} bytes cut to {} bytes",
                    self.buf.len()
                ),
            ));
        }
        Ok(())
    }
}

fn retry_interrupted(mut call: impl FnMut() -> io::Result<usize>) -> io::Result<usize> {
    loop {
        match call() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// `RTM_SETLINK` for the link called `name` (index 0 with `IFLA_IFNAME`: the kernel looks
/// it up by name), changing only `IFF_UP`, to on.
fn set_up_request(name: &str) -> RouteNetlinkMessage {
    let mut link = LinkMessage::default();
    link.header.flags = LinkFlags::Up;
    link.header.change_mask = LinkFlags::Up;
    link.attributes.push(LinkAttribute::IfName(name.to_owned()));
    RouteNetlinkMessage::SetLink(link)
}

/// One request as bytes; the kernel fills in our port id.
fn serialize(request: RouteNetlinkMessage, flags: u16, seq: u32) -> Vec<u8> {
    let mut header = NetlinkHeader::default();
    header.flags = flags;
    header.sequence_number = seq;
    let mut msg = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(request));
    // Sets the header's length and type from the payload.
    msg.finalize();
    let mut bytes = vec![0; msg.buffer_len()];
    msg.serialize(&mut bytes);
    bytes
}

/// Splits a datagram into its messages and decodes those answering request `seq`.
fn decode_datagram(
    mut datagram: &[u8],
    seq: u32,
) -> Result<Vec<NetlinkMessage<LinkReply>>, DecodeError> {
    let mut out = Vec::new();
    // Trailing bytes too short for a header are alignment padding.
    while datagram.len() >= NetlinkHeader::default().buffer_len() {
        let len = NetlinkBuffer::new_checked(datagram)?.length() as usize;
        // Messages start 4-byte aligned (NLMSG_ALIGN); `new_checked` made sure `len`
        // is within the datagram and at least a header long, so this always advances.
        let (msg, rest) = datagram.split_at(len);
        datagram = rest
            .get(len.next_multiple_of(4) - len..)
            .unwrap_or_default();
        if NetlinkBuffer::new(msg).sequence_number() != seq {
            continue;
        }
        out.push(NetlinkMessage::<LinkReply>::deserialize(msg)?);
    }
    Ok(out)
}

/// A reply message as far as this module reads it; the error, done and overrun messages
/// around it are decoded by `netlink-packet-core`.
#[derive(Debug)]
enum LinkReply {
    Link(IfStats),
    /// Anything but `RTM_NEWLINK`; no request here gets one.
    Other,
}

impl NetlinkDeserializable for LinkReply {
    type Error = DecodeError;

    fn deserialize(header: &NetlinkHeader, payload: &[u8]) -> Result<LinkReply, DecodeError> {
        if header.message_type == libc::RTM_NEWLINK {
            parse_link(payload).map(LinkReply::Link)
        } else {
            Ok(LinkReply::Other)
        }
    }
}

/// Decodes the `ifinfomsg` header and, of the attributes, only the name and the 64-bit
/// counters (see the module doc for why not the whole message).
fn parse_link(payload: &[u8]) -> Result<IfStats, DecodeError> {
    let header = LinkHeader::parse(payload).context("link header")?;
    let attributes = payload.get(header.buffer_len()..).unwrap_or_default();
    let mut name = None;
    let mut stats = None;
    for nla in NlasIterator::new(attributes) {
        let nla = nla.context("link attributes")?;
        if nla.kind() != libc::IFLA_IFNAME && nla.kind() != libc::IFLA_STATS64 {
            continue;
        }
        match LinkAttribute::parse_with_param(&nla, header.interface_family)? {
            LinkAttribute::IfName(n) => name = Some(n),
            LinkAttribute::Stats64(s) => stats = Some(s),
            _ => {}
        }
    }
    let name = name.ok_or("link without IFLA_IFNAME")?;
    // Every kernel since 2.6.35 sends IFLA_STATS64 unless asked to skip stats; reporting
    // zeros instead would look like an idle interface.
    let stats = stats.ok_or_else(|| format!("link {name} without IFLA_STATS64"))?;
    Ok(IfStats {
        up: header.flags.contains(LinkFlags::Up),
        rx_bytes: stats.rx_bytes,
        tx_bytes: stats.tx_bytes,
        rx_errors: stats.rx_errors,
        tx_errors: stats.tx_errors,
        rx_packets: stats.rx_packets,
        tx_packets: stats.tx_packets,
        rx_dropped: stats.rx_dropped,
        tx_dropped: stats.tx_dropped,
        name,
    })
}

#[cfg(test)]
mod tests;
