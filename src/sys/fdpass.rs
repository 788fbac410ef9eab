//! Passing a descriptor over a unix socket (SCM_RIGHTS): how `ucr exec` hands the
//! daemon the master of a pty it allocated inside a container, where the daemon cannot
//! reach.

use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};

use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};

/// A connected pair of unix stream sockets, close-on-exec.
pub fn socketpair() -> io::Result<(OwnedFd, OwnedFd)> {
    let (a, b) = rustix::net::socketpair(
        rustix::net::AddressFamily::UNIX,
        rustix::net::SocketType::STREAM,
        rustix::net::SocketFlags::CLOEXEC,
        None,
    )?;
    Ok((a, b))
}

/// Sends `fd` with one byte of data (a message must carry some).
pub fn send(socket: impl AsFd, fd: impl AsFd) -> io::Result<()> {
    let fds = [fd.as_fd()];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
        return Err(io::Error::other(
            "descriptor does not fit the control buffer",
        ));
    }
    rustix::net::sendmsg(
        socket,
        &[IoSlice::new(b"f")],
        &mut control,
        SendFlags::NOSIGNAL,
    )?;
    Ok(())
}

/// Receives one descriptor; `None` when the peer closed without sending one. Blocks.
pub fn recv(socket: impl AsFd) -> io::Result<Option<OwnedFd>> {
    let mut byte = [0u8; 1];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let got = rustix::net::recvmsg(
        socket,
        &mut [IoSliceMut::new(&mut byte)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    )?;
    let mut received = None;
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(fds) = message {
            // Every descriptor received is ours to close; only the first is kept.
            for fd in fds {
                received.get_or_insert(fd);
            }
        }
    }
    if got.bytes == 0 && received.is_none() {
        return Ok(None);
    }
    received
        .map(Some)
        .ok_or_else(|| io::Error::other("a message without a descriptor"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn a_descriptor_crosses_and_a_closed_peer_is_none() {
        let (a, b) = socketpair().expect("socketpair");
        let (r, w) = crate::sys::process::cloexec_pipe().expect("pipe");
        send(&a, &w).expect("send");
        drop(w);
        let got = recv(&b).expect("recv").expect("a descriptor");
        std::fs::File::from(got).write_all(b"x").expect("write");
        let mut buf = [0u8; 1];
        std::fs::File::from(r).read_exact(&mut buf).expect("read");
        assert_eq!(&buf, b"x");
        drop(a);
        assert!(recv(&b).expect("recv after close").is_none());
    }
}
