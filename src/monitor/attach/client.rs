//! The daemon's end of a monitor's attach socket: connect, say hello, wait to be
//! attached, then send and receive messages from tokio (`AsyncFd` over the non-blocking
//! SEQPACKET socket of `sys::seqpacket`).

use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::protocol::{ClientMessage, MonitorMessage, ProtocolError, Wants, SOCKET, VERSION};
use crate::error::{io_kind, ErrorKind, Kind};
use crate::sys::seqpacket::{self, AsyncSeqpacket, Received};

/// How long the monitor may take to accept and answer: it serves its attach socket between
/// copies of output, so anything longer means it is wedged or gone.
const HELLO_DEADLINE: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    #[error("connecting to the attach socket in {bundle}: {source}")]
    Connect { bundle: PathBuf, source: io::Error },
    #[error("attaching through {bundle}: {source}")]
    Io { bundle: PathBuf, source: io::Error },
    #[error("attaching through {bundle}: the monitor sent {source}")]
    Protocol {
        bundle: PathBuf,
        source: ProtocolError,
    },
    #[error("attaching through {bundle}: the monitor closed the connection without attaching it (the container ended, or another protocol version)")]
    Refused { bundle: PathBuf },
    #[error("attaching through {bundle}: the monitor did not answer within {deadline:?}", deadline = HELLO_DEADLINE)]
    Timeout { bundle: PathBuf },
}

impl Kind for AttachError {
    fn kind(&self) -> ErrorKind {
        match self {
            // No socket (a monitor of a version before attach, or gone), or nobody behind
            // it: the container cannot be attached to, which is not the caller's fault.
            AttachError::Connect { source, .. }
                if matches!(
                    source.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
                ) =>
            {
                ErrorKind::FailedPrecondition
            }
            AttachError::Connect { source, .. } | AttachError::Io { source, .. } => io_kind(source),
            AttachError::Refused { .. } => ErrorKind::FailedPrecondition,
            AttachError::Timeout { .. } => ErrorKind::Unavailable,
            AttachError::Protocol { .. } => ErrorKind::Internal,
        }
    }
}

/// One attachment. `&self` methods: a reader and a writer may use it at once.
pub struct Connection {
    sock: AsyncSeqpacket,
}

impl Connection {
    /// Connects to the monitor of `bundle` and attaches with `wants`; returns once the
    /// monitor has said so, so that no output produced after this returns is missed.
    pub async fn open(bundle: &Path, wants: Wants) -> Result<Connection, AttachError> {
        let conn = tokio::time::timeout(HELLO_DEADLINE, Self::handshake(bundle, wants))
            .await
            .map_err(|_| AttachError::Timeout {
                bundle: bundle.to_path_buf(),
            })??;
        Ok(conn)
    }

    async fn handshake(bundle: &Path, wants: Wants) -> Result<Connection, AttachError> {
        let fd = connect(bundle).await?;
        let io_err = |source| AttachError::Io {
            bundle: bundle.to_path_buf(),
            source,
        };
        let conn = Connection {
            sock: AsyncSeqpacket::new(fd).map_err(io_err)?,
        };
        conn.send(ClientMessage::Hello {
            version: VERSION,
            wants,
        })
        .await
        .map_err(io_err)?;
        let mut buf = [0u8; 8];
        let len = match conn.recv(&mut buf).await {
            Ok(Some(len)) => len,
            // Closed (the monitor refused us or is exiting), or reset.
            Ok(None) => {
                return Err(AttachError::Refused {
                    bundle: bundle.to_path_buf(),
                })
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                return Err(AttachError::Refused {
                    bundle: bundle.to_path_buf(),
                })
            }
            Err(e) => return Err(io_err(e)),
        };
        match MonitorMessage::parse(&buf[..len]) {
            Ok(MonitorMessage::Attached { version: VERSION }) => Ok(conn),
            Ok(_) => Err(AttachError::Refused {
                bundle: bundle.to_path_buf(),
            }),
            Err(source) => Err(AttachError::Protocol {
                bundle: bundle.to_path_buf(),
                source,
            }),
        }
    }

    /// Sends one message, waiting for room (the monitor stops reading while the
    /// container's stdin is full).
    pub async fn send(&self, msg: ClientMessage<'_>) -> io::Result<()> {
        let (head, payload) = msg.encode();
        self.sock.send(&[head.as_bytes(), payload]).await
    }

    /// The next message into `buf` (its length), or `None` once the monitor has closed
    /// the connection. A message longer than `buf` is an error (`InvalidData`).
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        match self.sock.recv(buf).await? {
            Received::Message {
                len,
                truncated: false,
            } => Ok(Some(len)),
            Received::Message { len, .. } => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a message longer than {len} bytes"),
            )),
            Received::Closed => Ok(None),
        }
    }
}

/// Connects, retrying while the monitor's backlog is full (it takes connections between
/// copies of output).
async fn connect(bundle: &Path) -> Result<OwnedFd, AttachError> {
    loop {
        match seqpacket::connect(bundle, SOCKET) {
            Ok(fd) => return Ok(fd),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(source) => {
                return Err(AttachError::Connect {
                    bundle: bundle.to_path_buf(),
                    source,
                })
            }
        }
    }
}
