//! A tiny synchronous rtnetlink (`NETLINK_ROUTE`) client with the two requests pods need:
//! set a link up, and dump every link with its counters.
//!
//! Why raw sockets rather than a crate: both messages have fixed layouts (a `nlmsghdr`,
//! an `ifinfomsg`, a few attributes), the netlink-packet-* crates change their API often
//! and pull in several crates, and `rtnetlink` is async, which a short-lived thread that
//! sits inside another namespace does not want. Layouts and constants are from the uapi
//! headers `linux/netlink.h`, `linux/rtnetlink.h` and `linux/if_link.h`; messages are
//! packed and parsed as bytes, so the only `unsafe` is the socket syscalls.
//!
//! The socket talks to the network namespace of the thread that *opened* it.

use std::io;
use std::mem;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::IfStats;

// linux/netlink.h
const NLMSG_HDRLEN: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLMSG_OVERRUN: u16 = 4;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
/// Set on dump messages when the table changed while it was being dumped: the dump may
/// be inconsistent and should be redone.
const NLM_F_DUMP_INTR: u16 = 0x10;
const NLM_F_DUMP: u16 = 0x300;
// linux/rtnetlink.h
const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const IFINFOMSG_LEN: usize = 16;
const RTA_HDRLEN: usize = 4;
// linux/if_link.h
const IFLA_IFNAME: u16 = 3;
const IFLA_STATS: u16 = 7;
const IFLA_STATS64: u16 = 23;
// linux/if.h
const IFF_UP: u32 = 0x1;

/// How often a dump the kernel flagged as interrupted (links changed meanwhile) is
/// retried before giving up; iproute2 simply warns, but callers here want real numbers.
const DUMP_ATTEMPTS: usize = 5;

/// Large enough for one datagram of a dump: the kernel sizes dump skbs to at most 32 KiB
/// (less overhead). Bigger datagrams are still read whole: see [`Socket::recv`].
const RECV_BUF: usize = 32 * 1024;

pub(super) struct Socket {
    fd: OwnedFd,
    seq: u32,
}

impl Socket {
    /// Opens a route netlink socket in the calling thread's network namespace.
    pub(super) fn open() -> io::Result<Socket> {
        // SAFETY: plain socket(2) with constant arguments; the result is checked before use.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by socket(2), is valid, and nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Socket { fd, seq: 0 })
    }

    /// Sets `IFF_UP` on the link called `name` (`ip link set NAME up`).
    pub(super) fn set_link_up(&mut self, name: &str) -> io::Result<()> {
        let seq = self.next_seq();
        let mut name_attr = name.as_bytes().to_vec();
        name_attr.push(0);
        // Index 0 with IFLA_IFNAME: the kernel looks the link up by name.
        let msg = link_request(
            RTM_NEWLINK,
            NLM_F_REQUEST | NLM_F_ACK,
            seq,
            IFF_UP,
            IFF_UP,
            &[(IFLA_IFNAME, &name_attr)],
        );
        self.send(&msg)?;
        let mut buf = Vec::new();
        loop {
            let n = self.recv(&mut buf)?;
            for msg in parse_messages(&buf[..n])? {
                if msg.seq != seq {
                    continue;
                }
                if msg.ty == NLMSG_ERROR {
                    return match error_code(msg.payload)? {
                        0 => Ok(()),
                        code => Err(io::Error::from_raw_os_error(code)),
                    };
                }
            }
        }
    }

    /// Every link in the namespace, with its counters.
    pub(super) fn links(&mut self) -> io::Result<Vec<IfStats>> {
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
        let seq = self.next_seq();
        self.send(&link_request(
            RTM_GETLINK,
            NLM_F_REQUEST | NLM_F_DUMP,
            seq,
            0,
            0,
            &[],
        ))?;
        let mut links = Vec::new();
        let mut interrupted = false;
        let mut buf = Vec::new();
        loop {
            let n = self.recv(&mut buf)?;
            for msg in parse_messages(&buf[..n])? {
                if msg.seq != seq {
                    continue;
                }
                interrupted |= msg.flags & NLM_F_DUMP_INTR != 0;
                match msg.ty {
                    RTM_NEWLINK => links.push(parse_link(msg.payload)?),
                    NLMSG_DONE => {
                        // DONE carries the dump's own error code (0 when it went well).
                        let code = if msg.payload.len() >= 4 {
                            error_code(msg.payload)?
                        } else {
                            0
                        };
                        if code != 0 {
                            return Err(io::Error::from_raw_os_error(code));
                        }
                        return Ok((!interrupted).then_some(links));
                    }
                    // A dump is not acknowledged; an error message with code 0 (an
                    // ack) would be harmless, so only real errors end it.
                    NLMSG_ERROR => match error_code(msg.payload)? {
                        0 => {}
                        code => return Err(io::Error::from_raw_os_error(code)),
                    },
                    NLMSG_OVERRUN => {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            "netlink reported an overrun (messages were lost)",
                        ))
                    }
                    // NLMSG_NOOP and anything newer kernels may add.
                    _ => {}
                }
            }
        }
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    fn send(&self, msg: &[u8]) -> io::Result<()> {
        let addr = kernel_addr();
        // SAFETY: `msg` is a valid buffer of `msg.len()` bytes and `addr` a valid
        // `sockaddr_nl` whose size is passed alongside; both outlive the call.
        let n = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                msg.as_ptr().cast(),
                msg.len(),
                0,
                (&addr as *const libc::sockaddr_nl).cast(),
                sockaddr_nl_len(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        if usize::try_from(n).ok() != Some(msg.len()) {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "short write on a netlink socket",
            ));
        }
        Ok(())
    }

    /// Reads one datagram from the kernel into `buf` (grown to fit) and returns its
    /// length. The size is peeked first (`MSG_PEEK | MSG_TRUNC` returns the real length)
    /// because a datagram read into a smaller buffer is silently cut. Datagrams from
    /// anyone but the kernel (port id 0) are dropped.
    fn recv(&self, buf: &mut Vec<u8>) -> io::Result<usize> {
        loop {
            if buf.len() < RECV_BUF {
                buf.resize(RECV_BUF, 0);
            }
            let size = self.recv_from(buf, libc::MSG_PEEK | libc::MSG_TRUNC)?.0;
            if size > buf.len() {
                buf.resize(size, 0);
            }
            let (n, from) = self.recv_from(buf, 0)?;
            if from == 0 {
                return Ok(n);
            }
        }
    }

    fn recv_from(&self, buf: &mut [u8], flags: libc::c_int) -> io::Result<(usize, u32)> {
        let mut addr = kernel_addr();
        let mut addr_len = sockaddr_nl_len();
        loop {
            // SAFETY: `buf` is writable for `buf.len()` bytes; `addr`/`addr_len` describe a
            // writable `sockaddr_nl`. All live across the call.
            let n = unsafe {
                libc::recvfrom(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    flags,
                    (&mut addr as *mut libc::sockaddr_nl).cast(),
                    &mut addr_len,
                )
            };
            if n < 0 {
                let err = io::Error::last_os_error();
                if err.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(err);
            }
            // n >= 0 was checked just above.
            return Ok((n.unsigned_abs(), addr.nl_pid));
        }
    }
}

/// The kernel's netlink address (port id 0).
fn kernel_addr() -> libc::sockaddr_nl {
    // SAFETY: sockaddr_nl is plain old data (integers and padding); all-zero is valid.
    let mut addr: libc::sockaddr_nl = unsafe { mem::zeroed() };
    addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    addr
}

fn sockaddr_nl_len() -> libc::socklen_t {
    // A 12-byte struct: the cast cannot truncate.
    mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t
}

/// Builds `nlmsghdr + ifinfomsg + attributes` for a link request on any link (index 0).
fn link_request(
    ty: u16,
    flags: u16,
    seq: u32,
    ifi_flags: u32,
    ifi_change: u32,
    attrs: &[(u16, &[u8])],
) -> Vec<u8> {
    let mut msg = vec![0u8; NLMSG_HDRLEN];
    // ifinfomsg: family (AF_UNSPEC), pad, type, index, flags, change.
    msg.extend_from_slice(&[libc::AF_UNSPEC as u8, 0]);
    msg.extend_from_slice(&0u16.to_ne_bytes());
    msg.extend_from_slice(&0i32.to_ne_bytes());
    msg.extend_from_slice(&ifi_flags.to_ne_bytes());
    msg.extend_from_slice(&ifi_change.to_ne_bytes());
    for (kind, data) in attrs {
        let len = RTA_HDRLEN + data.len();
        msg.extend_from_slice(&(len as u16).to_ne_bytes());
        msg.extend_from_slice(&kind.to_ne_bytes());
        msg.extend_from_slice(data);
        msg.resize(align4(msg.len()), 0);
    }
    let total = msg.len() as u32;
    msg[0..4].copy_from_slice(&total.to_ne_bytes());
    msg[4..6].copy_from_slice(&ty.to_ne_bytes());
    msg[6..8].copy_from_slice(&flags.to_ne_bytes());
    msg[8..12].copy_from_slice(&seq.to_ne_bytes());
    // nlmsg_pid stays 0: the kernel fills in our port id.
    msg
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

#[derive(Debug, PartialEq, Eq)]
struct Message<'a> {
    ty: u16,
    flags: u16,
    seq: u32,
    payload: &'a [u8],
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("malformed netlink message: {what}"),
    )
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_ne_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Splits one datagram into its netlink messages.
fn parse_messages(mut buf: &[u8]) -> io::Result<Vec<Message<'_>>> {
    let mut out = Vec::new();
    while buf.len() >= NLMSG_HDRLEN {
        let len = u32_at(buf, 0).ok_or_else(|| invalid("header"))? as usize;
        if len < NLMSG_HDRLEN || len > buf.len() {
            return Err(invalid("length out of bounds"));
        }
        out.push(Message {
            ty: u16_at(buf, 4).ok_or_else(|| invalid("header"))?,
            flags: u16_at(buf, 6).ok_or_else(|| invalid("header"))?,
            seq: u32_at(buf, 8).ok_or_else(|| invalid("header"))?,
            payload: &buf[NLMSG_HDRLEN..len],
        });
        buf = buf.get(align4(len)..).unwrap_or(&[]);
    }
    Ok(out)
}

/// The errno of an `NLMSG_ERROR` (or `NLMSG_DONE`) payload, as a positive number; 0 is an
/// acknowledgement.
fn error_code(payload: &[u8]) -> io::Result<i32> {
    let raw = u32_at(payload, 0).ok_or_else(|| invalid("short error message"))?;
    Ok((raw as i32).saturating_neg())
}

/// Parses an `RTM_NEWLINK` payload: `ifinfomsg` then attributes.
fn parse_link(payload: &[u8]) -> io::Result<IfStats> {
    if payload.len() < IFINFOMSG_LEN {
        return Err(invalid("short ifinfomsg"));
    }
    let flags = u32_at(payload, 8).ok_or_else(|| invalid("ifinfomsg"))?;
    let mut link = IfStats {
        name: String::new(),
        up: flags & IFF_UP != 0,
        rx_bytes: 0,
        tx_bytes: 0,
        rx_errors: 0,
        tx_errors: 0,
    };
    let mut have_stats64 = false;
    let mut attrs = &payload[IFINFOMSG_LEN..];
    while attrs.len() >= RTA_HDRLEN {
        let len = usize::from(u16_at(attrs, 0).ok_or_else(|| invalid("attribute"))?);
        // The top bits of the type are NLA_F_NESTED / NLA_F_NET_BYTEORDER.
        let kind = u16_at(attrs, 2).ok_or_else(|| invalid("attribute"))? & 0x3fff;
        if len < RTA_HDRLEN || len > attrs.len() {
            return Err(invalid("attribute length out of bounds"));
        }
        let data = &attrs[RTA_HDRLEN..len];
        match kind {
            IFLA_IFNAME => {
                let name = data.split(|&b| b == 0).next().unwrap_or(&[]);
                link.name = String::from_utf8_lossy(name).into_owned();
            }
            // rtnl_link_stats64: rx_packets, tx_packets, rx_bytes, tx_bytes, rx_errors,
            // tx_errors, ... all u64.
            IFLA_STATS64 => {
                let field = |i: usize| u64_at(data, i * 8).ok_or_else(|| invalid("stats64"));
                link.rx_bytes = field(2)?;
                link.tx_bytes = field(3)?;
                link.rx_errors = field(4)?;
                link.tx_errors = field(5)?;
                have_stats64 = true;
            }
            // The 32-bit rtnl_link_stats, same order; only if the 64-bit one is absent.
            IFLA_STATS if !have_stats64 => {
                let field = |i: usize| {
                    u32_at(data, i * 4)
                        .map(u64::from)
                        .ok_or_else(|| invalid("stats"))
                };
                link.rx_bytes = field(2)?;
                link.tx_bytes = field(3)?;
                link.rx_errors = field(4)?;
                link.tx_errors = field(5)?;
            }
            _ => {}
        }
        attrs = attrs.get(align4(len)..).unwrap_or(&[]);
    }
    if link.name.is_empty() {
        return Err(invalid("link without IFLA_IFNAME"));
    }
    Ok(link)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(kind: u16, data: &[u8]) -> Vec<u8> {
        let mut a = ((RTA_HDRLEN + data.len()) as u16).to_ne_bytes().to_vec();
        a.extend_from_slice(&kind.to_ne_bytes());
        a.extend_from_slice(data);
        a.resize(align4(a.len()), 0);
        a
    }

    fn newlink(seq: u32) -> Vec<u8> {
        link_request(RTM_NEWLINK, 0, seq, 0, 0, &[])
    }

    #[test]
    fn request_layout_matches_the_uapi_headers() {
        let msg = link_request(
            RTM_NEWLINK,
            NLM_F_REQUEST | NLM_F_ACK,
            7,
            1,
            1,
            &[(3, b"lo\0")],
        );
        // header 16 + ifinfomsg 16 + attribute 4+3 padded to 8.
        assert_eq!(msg.len(), 40);
        assert_eq!(u32_at(&msg, 0), Some(40));
        assert_eq!(u16_at(&msg, 4), Some(RTM_NEWLINK));
        assert_eq!(u16_at(&msg, 6), Some(NLM_F_REQUEST | NLM_F_ACK));
        assert_eq!(u32_at(&msg, 8), Some(7));
        assert_eq!(u32_at(&msg, 24), Some(1), "ifi_flags");
        assert_eq!(u32_at(&msg, 28), Some(1), "ifi_change");
        assert_eq!(u16_at(&msg, 32), Some(7), "rta_len");
        assert_eq!(u16_at(&msg, 34), Some(IFLA_IFNAME));
        assert_eq!(&msg[36..40], b"lo\0\0");
    }

    #[test]
    fn parses_links_with_64_bit_counters_over_32_bit_ones() {
        let mut stats64 = Vec::new();
        for v in [1u64, 2, 300, 400, 5, 6, 0, 0] {
            stats64.extend_from_slice(&v.to_ne_bytes());
        }
        let mut stats32 = Vec::new();
        for v in [9u32, 9, 9, 9, 9, 9] {
            stats32.extend_from_slice(&v.to_ne_bytes());
        }
        let mut payload = link_request(RTM_NEWLINK, 0, 1, IFF_UP, 0, &[])[NLMSG_HDRLEN..].to_vec();
        payload.extend(attr(IFLA_IFNAME, b"eth0\0"));
        payload.extend(attr(IFLA_STATS64, &stats64));
        payload.extend(attr(IFLA_STATS, &stats32));
        let link = parse_link(&payload).expect("parse");
        assert_eq!(
            link,
            IfStats {
                name: "eth0".into(),
                up: true,
                rx_bytes: 300,
                tx_bytes: 400,
                rx_errors: 5,
                tx_errors: 6,
            }
        );
    }

    #[test]
    fn splits_datagrams_and_rejects_bad_lengths() {
        let mut dgram = newlink(3);
        dgram.extend(newlink(4));
        let msgs = parse_messages(&dgram).expect("parse");
        assert_eq!(msgs.len(), 2);
        assert_eq!((msgs[0].seq, msgs[1].seq), (3, 4));
        assert_eq!(msgs[0].payload.len(), IFINFOMSG_LEN);

        let mut bad = newlink(1);
        bad[0..4].copy_from_slice(&1000u32.to_ne_bytes());
        assert_eq!(
            parse_messages(&bad).expect_err("too long").kind(),
            io::ErrorKind::InvalidData
        );
        let mut payload = vec![0u8; IFINFOMSG_LEN];
        payload.extend_from_slice(&[200, 0, 3, 0]);
        assert!(parse_link(&payload).is_err(), "attribute past the end");
        assert!(parse_link(&[0u8; IFINFOMSG_LEN]).is_err(), "no name");
    }

    #[test]
    fn error_codes_are_positive_errnos() {
        assert_eq!(
            error_code(&(-libc::EPERM).to_ne_bytes()).expect("code"),
            libc::EPERM
        );
        assert_eq!(error_code(&0i32.to_ne_bytes()).expect("code"), 0);
        assert!(error_code(&[1, 2]).is_err());
    }
}
