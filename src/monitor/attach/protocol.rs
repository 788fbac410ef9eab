//! The attach socket's messages, both ways (the layout is drawn in the module doc of
//! `monitor::attach`). Plain bytes, no allocation: the monitor parses into borrowed
//! slices of its receive buffer and sends a header and a payload as one message.

pub use crate::monitor::log::Stream;
use crate::sys::console::WindowSize;

/// The attach socket's name in the bundle.
pub const SOCKET: &str = "attach";

/// The protocol's version, in `Hello` and `Attached`. A monitor refuses a client of
/// another version (it disconnects it), so a daemon upgraded while containers run finds
/// out at once instead of misreading messages.
pub const VERSION: u8 = 1;

/// Most payload bytes in one message (stdin or output); conmon reads 8 KiB at a time too.
pub const MAX_DATA: usize = 8 * 1024;

/// Most bytes of one message, header included: what a receive buffer must hold.
pub const MAX_MESSAGE: usize = MAX_DATA + 1;

const HELLO: u8 = b'H';
const STDIN: u8 = b'I';
const RESIZE: u8 = b'R';
const CLOSE_STDIN: u8 = b'C';
const ATTACHED: u8 = b'A';
const STDOUT: u8 = b'1';
const STDERR: u8 = b'2';
const LOST: u8 = b'L';

const WANT_STDIN: u8 = 1;
const WANT_STDOUT: u8 = 2;
const WANT_STDERR: u8 = 4;

/// What an attacher asks to be connected to (its `Hello`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Wants {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
}

impl Wants {
    fn bits(self) -> u8 {
        let mut bits = 0;
        for (wanted, bit) in [
            (self.stdin, WANT_STDIN),
            (self.stdout, WANT_STDOUT),
            (self.stderr, WANT_STDERR),
        ] {
            if wanted {
                bits |= bit;
            }
        }
        bits
    }

    fn from_bits(bits: u8) -> Option<Self> {
        (bits & !(WANT_STDIN | WANT_STDOUT | WANT_STDERR) == 0).then_some(Wants {
            stdin: bits & WANT_STDIN != 0,
            stdout: bits & WANT_STDOUT != 0,
            stderr: bits & WANT_STDERR != 0,
        })
    }

    /// Whether output of `stream` goes to this attacher.
    pub fn wants(self, stream: Stream) -> bool {
        match stream {
            Stream::Stdout => self.stdout,
            Stream::Stderr => self.stderr,
        }
    }
}

/// An attacher's message to the monitor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientMessage<'a> {
    /// First, and only first: the protocol version and the streams wanted.
    Hello { version: u8, wants: Wants },
    /// Bytes for the container's stdin, at most [`MAX_DATA`].
    Stdin(&'a [u8]),
    /// The terminal's new size (containers with a terminal; ignored otherwise).
    Resize(WindowSize),
    /// This attacher's stdin has ended (its client closed it).
    CloseStdin,
}

/// The monitor's message to an attacher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MonitorMessage<'a> {
    /// The answer to `Hello`: output from now on is sent to this attacher.
    Attached { version: u8 },
    /// Container output, at most [`MAX_DATA`] bytes.
    Output(Stream, &'a [u8]),
    /// This many bytes of output were not sent to this attacher (its socket was full):
    /// the next `Output` does not follow on from the last.
    Lost(u64),
}

/// A message that breaks the protocol; the monitor disconnects its sender, the client
/// gives up on the attachment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("an empty message")]
    Empty,
    #[error("unknown message tag {0:#04x}")]
    UnknownTag(u8),
    #[error("message {tag:?} of {len} bytes is malformed")]
    BadLength { tag: char, len: usize },
    #[error("hello with unknown stream flags {0:#04x}")]
    BadFlags(u8),
}

/// A message's first bytes, sent before its payload in the same message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    bytes: [u8; 9],
    len: usize,
}

impl Head {
    fn new(bytes: &[u8]) -> Head {
        let mut head = Head {
            bytes: [0; 9],
            len: bytes.len(),
        };
        head.bytes[..bytes.len()].copy_from_slice(bytes);
        head
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl<'a> ClientMessage<'a> {
    /// The message as a head and a payload, to send together (`seqpacket::send`).
    pub fn encode(&self) -> (Head, &'a [u8]) {
        match *self {
            ClientMessage::Hello { version, wants } => {
                (Head::new(&[HELLO, version, wants.bits()]), &[])
            }
            ClientMessage::Stdin(data) => (Head::new(&[STDIN]), data),
            ClientMessage::Resize(size) => {
                let [w1, w0] = size.cols.to_be_bytes();
                let [h1, h0] = size.rows.to_be_bytes();
                (Head::new(&[RESIZE, w1, w0, h1, h0]), &[])
            }
            ClientMessage::CloseStdin => (Head::new(&[CLOSE_STDIN]), &[]),
        }
    }

    pub fn parse(msg: &'a [u8]) -> Result<Self, ProtocolError> {
        let (&tag, rest) = msg.split_first().ok_or(ProtocolError::Empty)?;
        let bad = || ProtocolError::BadLength {
            tag: char::from(tag),
            len: msg.len(),
        };
        match tag {
            HELLO => match *rest {
                [version, flags] => Ok(ClientMessage::Hello {
                    version,
                    wants: Wants::from_bits(flags).ok_or(ProtocolError::BadFlags(flags))?,
                }),
                _ => Err(bad()),
            },
            STDIN if !rest.is_empty() && rest.len() <= MAX_DATA => Ok(ClientMessage::Stdin(rest)),
            STDIN => Err(bad()),
            RESIZE => match *rest {
                [w1, w0, h1, h0] => Ok(ClientMessage::Resize(WindowSize {
                    cols: u16::from_be_bytes([w1, w0]),
                    rows: u16::from_be_bytes([h1, h0]),
                })),
                _ => Err(bad()),
            },
            CLOSE_STDIN if rest.is_empty() => Ok(ClientMessage::CloseStdin),
            CLOSE_STDIN => Err(bad()),
            other => Err(ProtocolError::UnknownTag(other)),
        }
    }
}

impl<'a> MonitorMessage<'a> {
    pub fn encode(&self) -> (Head, &'a [u8]) {
        match *self {
            MonitorMessage::Attached { version } => (Head::new(&[ATTACHED, version]), &[]),
            MonitorMessage::Output(Stream::Stdout, data) => (Head::new(&[STDOUT]), data),
            MonitorMessage::Output(Stream::Stderr, data) => (Head::new(&[STDERR]), data),
            MonitorMessage::Lost(n) => {
                let mut head = [LOST; 9];
                head[1..].copy_from_slice(&n.to_be_bytes());
                (Head::new(&head), &[])
            }
        }
    }

    pub fn parse(msg: &'a [u8]) -> Result<Self, ProtocolError> {
        let (&tag, rest) = msg.split_first().ok_or(ProtocolError::Empty)?;
        let bad = || ProtocolError::BadLength {
            tag: char::from(tag),
            len: msg.len(),
        };
        match tag {
            ATTACHED => match *rest {
                [version] => Ok(MonitorMessage::Attached { version }),
                _ => Err(bad()),
            },
            STDOUT | STDERR if rest.is_empty() || rest.len() > MAX_DATA => Err(bad()),
            STDOUT => Ok(MonitorMessage::Output(Stream::Stdout, rest)),
            STDERR => Ok(MonitorMessage::Output(Stream::Stderr, rest)),
            LOST => match <[u8; 8]>::try_from(rest) {
                Ok(n) => Ok(MonitorMessage::Lost(u64::from_be_bytes(n))),
                Err(_) => Err(bad()),
            },
            other => Err(ProtocolError::UnknownTag(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn joined((head, payload): (Head, &[u8])) -> Vec<u8> {
        [head.as_bytes(), payload].concat()
    }

    #[test]
    fn client_messages_round_trip() {
        let data = [7u8; MAX_DATA];
        for msg in [
            ClientMessage::Hello {
                version: VERSION,
                wants: Wants {
                    stdin: true,
                    stdout: false,
                    stderr: true,
                },
            },
            ClientMessage::Stdin(b"echo hi\n"),
            ClientMessage::Stdin(&data),
            ClientMessage::Resize(WindowSize {
                rows: 40,
                cols: 300,
            }),
            ClientMessage::CloseStdin,
        ] {
            let bytes = joined(msg.encode());
            assert!(bytes.len() <= MAX_MESSAGE);
            assert_eq!(ClientMessage::parse(&bytes), Ok(msg));
        }
    }

    #[test]
    fn the_wire_bytes_are_as_documented() {
        let hello = ClientMessage::Hello {
            version: 1,
            wants: Wants {
                stdin: true,
                stdout: true,
                stderr: false,
            },
        };
        assert_eq!(joined(hello.encode()), b"H\x01\x03");
        let resize = ClientMessage::Resize(WindowSize {
            rows: 24,
            cols: 0x0102,
        });
        assert_eq!(joined(resize.encode()), b"R\x01\x02\x00\x18");
        assert_eq!(joined(ClientMessage::Stdin(b"x").encode()), b"Ix");
        assert_eq!(joined(ClientMessage::CloseStdin.encode()), b"C");
        let out = MonitorMessage::Output(Stream::Stderr, b"oops");
        assert_eq!(joined(out.encode()), b"2oops");
        assert_eq!(
            joined(MonitorMessage::Attached { version: 1 }.encode()),
            b"A\x01"
        );
        assert_eq!(
            joined(MonitorMessage::Lost(0x0102).encode()),
            b"L\x00\x00\x00\x00\x00\x00\x01\x02"
        );
    }

    #[test]
    fn monitor_messages_round_trip() {
        for msg in [
            MonitorMessage::Attached { version: VERSION },
            MonitorMessage::Output(Stream::Stdout, b"line\n"),
            MonitorMessage::Output(Stream::Stderr, b"\x00\xff"),
            MonitorMessage::Lost(1 << 40),
        ] {
            assert_eq!(MonitorMessage::parse(&joined(msg.encode())), Ok(msg));
        }
    }

    #[test]
    fn malformed_messages_are_refused() {
        assert_eq!(ClientMessage::parse(b""), Err(ProtocolError::Empty));
        assert_eq!(
            ClientMessage::parse(b"Z"),
            Err(ProtocolError::UnknownTag(b'Z'))
        );
        assert!(matches!(
            ClientMessage::parse(b"I"),
            Err(ProtocolError::BadLength { tag: 'I', .. })
        ));
        let too_long = [b'I'; MAX_MESSAGE + 1];
        assert!(ClientMessage::parse(&too_long).is_err());
        assert!(ClientMessage::parse(b"R\x00\x01\x00").is_err());
        assert!(ClientMessage::parse(b"C!").is_err());
        assert_eq!(
            ClientMessage::parse(b"H\x01\x08"),
            Err(ProtocolError::BadFlags(8))
        );
        assert!(MonitorMessage::parse(b"1").is_err(), "empty output");
        assert!(MonitorMessage::parse(b"A").is_err());
        assert!(MonitorMessage::parse(b"L\x01").is_err(), "a short count");
        assert_eq!(
            MonitorMessage::parse(b"I12"),
            Err(ProtocolError::UnknownTag(b'I'))
        );
    }
}
