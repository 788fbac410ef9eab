//! Unix SEQPACKET sockets: connected, reliable, and each `send` arrives as one message
//! (its boundaries kept), so a small tagged protocol needs no framing of its own. Used by
//! the monitor's attach socket (`monitor::attach`) and the daemon's client of it.
//!
//! Everything here is non-blocking and close-on-exec: the monitor is a single poll(2)
//! loop that must never wait on one peer, and the daemon drives its end from tokio.
//!
//! A socket's path must fit `sun_path` (107 bytes and a NUL). A longer one is reached as
//! `/proc/self/fd/<dir>/<name>` through an `O_PATH` descriptor of its directory, as
//! conmon does for its attach socket.

use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sys::socket::{
    self, AddressFamily, Backlog, MsgFlags, Shutdown, SockFlag, SockType, UnixAddr,
};
use nix::sys::stat::Mode;

/// Longest path `sun_path` holds, without its terminating NUL.
const SUN_PATH_MAX: usize = 107;

/// A listening socket at `dir/name`; the file is removed when it is dropped.
#[derive(Debug)]
pub struct Listener {
    fd: OwnedFd,
    path: PathBuf,
}

impl Listener {
    /// Binds and listens at `dir/name` (a stale socket file there is replaced), then sets
    /// the file's mode to `mode`. The mode is set after bind (the kernel makes the file
    /// with the umask's bits, and fchmod on a socket does not reach it); callers keep the
    /// socket in a directory only its owner can enter, so the moment in between is
    /// harmless.
    pub fn bind(dir: &Path, name: &str, mode: u32, backlog: i32) -> io::Result<Listener> {
        let path = dir.join(name);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let fd = new_socket()?;
        with_address(dir, name, |addr| socket::bind(fd.as_raw_fd(), addr))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))?;
        let backlog = Backlog::new(backlog).map_err(io::Error::from)?;
        socket::listen(&fd, backlog)?;
        Ok(Listener { fd, path })
    }

    /// The next waiting connection, non-blocking and close-on-exec; `None` when there is
    /// none (or it went away before it was taken).
    pub fn accept(&self) -> io::Result<Option<OwnedFd>> {
        match socket::accept4(
            self.fd.as_raw_fd(),
            SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        ) {
            // SAFETY: accept4 just returned this new descriptor; nothing else owns it.
            Ok(fd) => Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) })),
            Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::ECONNABORTED) => Ok(None),
            Err(nix::errno::Errno::EINTR) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

impl AsFd for Listener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Connects to the socket at `dir/name`; the connection is non-blocking. A listener
/// whose backlog is full answers `WouldBlock`; one that is gone, `ConnectionRefused`
/// (a stale file) or `NotFound`.
pub fn connect(dir: &Path, name: &str) -> io::Result<OwnedFd> {
    let fd = new_socket()?;
    with_address(dir, name, |addr| socket::connect(fd.as_raw_fd(), addr))?;
    Ok(fd)
}

/// The uid of the process at the other end of a connection (SO_PEERCRED), as it was when
/// it connected.
pub fn peer_uid(fd: impl AsFd) -> io::Result<u32> {
    let cred = socket::getsockopt(&fd, socket::sockopt::PeerCredentials)?;
    Ok(cred.uid())
}

/// Sends `parts`, concatenated, as one message; `WouldBlock` when the peer's queue is
/// full (nothing is sent then). Never raises SIGPIPE: a gone peer is `BrokenPipe`, or
/// `ConnectionReset` when it left messages unread.
pub fn send(fd: impl AsFd, parts: &[&[u8]]) -> io::Result<()> {
    let iov: Vec<IoSlice<'_>> = parts.iter().map(|p| IoSlice::new(p)).collect();
    socket::sendmsg::<()>(
        fd.as_fd().as_raw_fd(),
        &iov,
        &[],
        MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL,
        None,
    )?;
    Ok(())
}

/// Lets up to `bytes` of messages wait in the kernel for the peer to read them:
/// SO_SNDBUFFORCE (past the host's `net.core.wmem_max`, as root may), else SO_SNDBUF
/// (capped by it). The kernel counts each message with its overhead (an 8 KiB message
/// takes about 16 KiB of it) and doubles the value given, as socket(7) says.
pub fn set_send_buffer(fd: impl AsFd, bytes: usize) -> io::Result<()> {
    let fd = fd.as_fd();
    if socket::setsockopt(&fd, socket::sockopt::SndBufForce, &bytes).is_ok() {
        return Ok(());
    }
    socket::setsockopt(&fd, socket::sockopt::SndBuf, &bytes)?;
    Ok(())
}

/// What one [`recv`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// A message of `len` bytes in the buffer; `truncated`: it was longer, and the rest
    /// is lost (a peer that broke the protocol's size limit).
    Message { len: usize, truncated: bool },
    /// The peer closed its end (or shut down its writing): no message will come.
    Closed,
}

/// Takes the next message into `buf`; `WouldBlock` when none is waiting. Messages the
/// peer sent before it went are read first; then [`Received::Closed`], or
/// `ConnectionReset` when it left some of ours unread.
pub fn recv(fd: impl AsFd, buf: &mut [u8]) -> io::Result<Received> {
    let mut iov = [IoSliceMut::new(buf)];
    let msg = socket::recvmsg::<()>(
        fd.as_fd().as_raw_fd(),
        &mut iov,
        None,
        MsgFlags::MSG_DONTWAIT,
    )?;
    let truncated = msg.flags.contains(MsgFlags::MSG_TRUNC);
    // A zero-length message cannot be told from the end on a SEQPACKET socket; the
    // protocols here never send one.
    Ok(match msg.bytes {
        0 => Received::Closed,
        len => Received::Message { len, truncated },
    })
}

/// Tells the peer no more messages will come from this end (it reads [`Received::Closed`])
/// while messages can still arrive the other way.
pub fn shutdown_write(fd: impl AsFd) -> io::Result<()> {
    socket::shutdown(fd.as_fd().as_raw_fd(), Shutdown::Write)?;
    Ok(())
}

/// A connected socket driven from tokio (the daemon's end of an attach socket): `&self`
/// methods, so one task may send while another receives.
#[derive(Debug)]
pub struct AsyncSeqpacket {
    fd: tokio::io::unix::AsyncFd<OwnedFd>,
}

impl AsyncSeqpacket {
    /// Takes a connected, non-blocking socket (as [`connect`] returns it). Must be called
    /// within a tokio runtime.
    pub fn new(fd: OwnedFd) -> io::Result<Self> {
        let fd = super::asyncfd::register(fd)?;
        Ok(AsyncSeqpacket { fd })
    }

    /// [`send`], waiting for room.
    pub async fn send(&self, parts: &[&[u8]]) -> io::Result<()> {
        loop {
            let mut ready = self.fd.writable().await?;
            match ready.try_io(|fd| send(fd, parts)) {
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }

    /// [`recv`], waiting for a message (or the end).
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<Received> {
        loop {
            let mut ready = self.fd.readable().await?;
            match ready.try_io(|fd| recv(fd, buf)) {
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }
}

fn new_socket() -> io::Result<OwnedFd> {
    Ok(socket::socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )?)
}

/// Runs `op` with the address of `dir/name`: the path itself when it fits `sun_path`,
/// else `/proc/self/fd/<n>/<name>` through an `O_PATH` descriptor of `dir`, held open
/// for the call.
fn with_address(
    dir: &Path,
    name: &str,
    op: impl FnOnce(&UnixAddr) -> nix::Result<()>,
) -> io::Result<()> {
    let path = dir.join(name);
    if path.as_os_str().len() <= SUN_PATH_MAX {
        let addr = UnixAddr::new(&path)?;
        return Ok(op(&addr)?);
    }
    let dirfd = nix::fcntl::open(
        dir,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let short = format!("/proc/self/fd/{}/{name}", dirfd.as_raw_fd());
    let addr = UnixAddr::new(short.as_str())?;
    Ok(op(&addr)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wait_accept(l: &Listener) -> OwnedFd {
        for _ in 0..100 {
            if let Some(fd) = l.accept().expect("accept") {
                return fd;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("no connection");
    }

    #[test]
    fn messages_keep_their_boundaries_and_the_end_is_seen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let l = Listener::bind(dir.path(), "s", 0o600, 4).expect("bind");
        let mode = std::fs::metadata(dir.path().join("s"))
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(l.accept().expect("accept").is_none(), "nobody yet");
        let c = connect(dir.path(), "s").expect("connect");
        let s = wait_accept(&l);
        assert_eq!(peer_uid(&s).expect("peer"), nix::unistd::geteuid().as_raw());
        send(&c, &[b"a", b"bc"]).expect("send");
        send(&c, &[b"def"]).expect("send");
        let mut buf = [0u8; 2];
        assert_eq!(
            recv(&s, &mut buf).expect("recv"),
            Received::Message {
                len: 2,
                truncated: true
            }
        );
        let mut buf = [0u8; 16];
        assert_eq!(
            recv(&s, &mut buf).expect("recv"),
            Received::Message {
                len: 3,
                truncated: false
            }
        );
        assert_eq!(&buf[..3], b"def");
        let err = recv(&s, &mut buf).expect_err("nothing waiting");
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        shutdown_write(&c).expect("shutdown");
        assert_eq!(recv(&s, &mut buf).expect("recv"), Received::Closed);
        // The other way still works.
        send(&s, &[b"back"]).expect("send back");
        assert!(matches!(
            recv(&c, &mut buf).expect("recv"),
            Received::Message { len: 4, .. }
        ));
        drop(l);
        assert!(!dir.path().join("s").exists(), "removed with the listener");
    }

    #[test]
    fn a_long_path_is_reached_through_proc_self_fd() {
        let dir = tempfile::tempdir().expect("tempdir");
        let deep = dir.path().join("d".repeat(60)).join("e".repeat(60));
        std::fs::create_dir_all(&deep).expect("mkdir");
        assert!(deep.join("attach").as_os_str().len() > SUN_PATH_MAX);
        let l = Listener::bind(&deep, "attach", 0o600, 4).expect("bind");
        assert!(deep.join("attach").exists());
        let c = connect(&deep, "attach").expect("connect");
        let s = wait_accept(&l);
        send(&c, &[b"x"]).expect("send");
        let mut buf = [0u8; 4];
        assert!(matches!(
            recv(&s, &mut buf).expect("recv"),
            Received::Message { len: 1, .. }
        ));
    }

    #[test]
    fn a_full_queue_would_block_and_a_gone_peer_is_a_broken_pipe() {
        let (a, b) = crate::sys::fdpass::socket_pair().expect("pair");
        crate::sys::signal::set_nonblocking(&a).expect("nonblocking");
        let chunk = [7u8; 8192];
        let mut sent = 0;
        let err = loop {
            match send(&a, &[&chunk]) {
                Ok(()) => sent += 1,
                Err(e) => break e,
            }
            assert!(sent < 10_000, "the queue never filled");
        };
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        drop(b);
        let err = send(&a, &[b"x"]).expect_err("gone");
        // Closed with our messages unread: reset, rather than a plain broken pipe.
        assert!(
            matches!(
                err.kind(),
                io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
            ),
            "{err}"
        );
    }
}
