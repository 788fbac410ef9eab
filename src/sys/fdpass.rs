//! Handing an open descriptor to another process over a unix socket (SCM_RIGHTS): how a
//! container's process gives its monitor the master of the terminal it made (runc's
//! console socket does the same).

use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{
    self, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType,
};

/// A connected pair of SEQPACKET sockets, close-on-exec (each side's copy is closed in
/// whatever the holder execs, so the pair carries one hand-over and nothing leaks).
pub fn socket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(socket::socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )?)
}

/// Sends `fd` as one message on the socket `sock` (one byte of payload: a message without
/// data carries no descriptor on some kernels). `sock` is a number (as the launcher's
/// `Stdio` carries descriptors between clone and exec); a wrong one fails, nothing worse.
pub fn send_fd(sock: RawFd, fd: BorrowedFd<'_>) -> io::Result<()> {
    let fds = [fd.as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let iov = [IoSlice::new(b"F")];
    socket::sendmsg::<()>(sock, &iov, &cmsg, MsgFlags::MSG_NOSIGNAL, None)?;
    Ok(())
}

/// Takes a descriptor sent with [`send_fd`] if one is waiting (close-on-exec in this
/// process); `None` when no message is there. Never blocks.
pub fn try_recv_fd(sock: impl AsFd) -> io::Result<Option<OwnedFd>> {
    recv(sock, MsgFlags::MSG_DONTWAIT)
}

/// Waits for a descriptor sent with [`send_fd`]; `None` when the peer closed its end
/// without sending one (`ucr nsexec` failed before it made the terminal).
pub fn recv_fd(sock: impl AsFd) -> io::Result<Option<OwnedFd>> {
    recv(sock, MsgFlags::empty())
}

fn recv(sock: impl AsFd, flags: MsgFlags) -> io::Result<Option<OwnedFd>> {
    let mut byte = [0u8; 1];
    let mut iov = [IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = match socket::recvmsg::<()>(
        sock.as_fd().as_raw_fd(),
        &mut iov,
        Some(&mut space),
        flags | MsgFlags::MSG_CMSG_CLOEXEC,
    ) {
        Ok(msg) => msg,
        Err(nix::errno::Errno::EAGAIN) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let mut received = None;
    for cmsg in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            for fd in fds {
                // SAFETY: the kernel installed this descriptor in our table for this
                // message; nothing else knows of it. Any beyond the first (there should
                // be none) are owned too, and closed right away.
                let owned = unsafe { OwnedFd::from_raw_fd(fd) };
                received.get_or_insert(owned);
            }
        }
    }
    Ok(received)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn a_descriptor_crosses_the_pair() {
        let (a, b) = socket_pair().expect("pair");
        assert!(try_recv_fd(&b).expect("nothing yet").is_none());
        let (r, w) = crate::sys::process::cloexec_pipe().expect("pipe");
        send_fd(a.as_raw_fd(), w.as_fd()).expect("send");
        drop(w);
        let got = try_recv_fd(&b).expect("recv").expect("a descriptor");
        std::fs::File::from(got).write_all(b"via").expect("write");
        let mut text = String::new();
        std::fs::File::from(r)
            .read_to_string(&mut text)
            .expect("read");
        assert_eq!(text, "via");
        drop(a);
        assert!(
            recv_fd(&b).expect("recv after close").is_none(),
            "closed: none"
        );
    }
}
