//! Attaching to a running container (CRI `Attach`): a unix socket in the bundle,
//! `<bundle>/attach`, on which the monitor copies the container's output to whoever is
//! attached and their input to the container. conmon's attach socket is the model.
//!
//! # The socket
//!
//! `SOCK_SEQPACKET`, so each message keeps its boundaries and needs no framing. Mode 0600
//! in the 0700 bundle, and a peer whose uid is not the monitor's is turned away: only the
//! daemon (root) attaches. A bundle path too long for `sun_path` is reached through
//! `/proc/self/fd/<O_PATH dir fd>/attach` (`sys::seqpacket`). The socket exists from
//! before the container starts until its monitor exits (which removes it).
//!
//! # Messages
//!
//! Each message starts with a one-byte tag. Sizes are bytes; integers are big-endian.
//!
//! ```text
//! attacher → monitor
//!   'H' version:u8 wants:u8      hello, first and once; wants: 1 stdin, 2 stdout, 4 stderr
//!   'I' data (1..=8192)          bytes for the container's stdin
//!   'R' width:u16 height:u16     the terminal's new size (TIOCSWINSZ on the master)
//!   'C'                          this attacher's stdin has ended
//! monitor → attacher
//!   'A' version:u8               attached: every chunk of output from now on is sent
//!   '1' data (1..=8192)          stdout (everything, for a container with a terminal)
//!   '2' data (1..=8192)          stderr
//!   'L' count:u64                bytes of output this attacher missed (see below)
//! ```
//!
//! The monitor answers `H` with `A` (or closes the connection: another version, a
//! malformed or oversized message, a message before `H`). Output goes to an attacher only
//! for the streams it asked for, and still to the CRI log. `I` from an attacher that did
//! not ask for stdin, or when the container has none, is dropped; `R` without a terminal
//! is ignored.
//!
//! When the container ends, each attacher gets the output that was left, then the monitor
//! writes `exit.json` and closes the connections: an attacher that reads the end of its
//! socket finds how the container ended in `exit.json` (none there: the monitor closed it
//! for breaking the protocol, or died).
//!
//! # stdin
//!
//! See `monitor::input`: a container with `stdin` keeps it open without attachers; with
//! `stdin_once`, `C` from (or the disconnection of) the first attacher that asked for
//! stdin closes it, after what it sent, unless the container has a terminal (Docker's and
//! containerd's rule). While the container has not taken an attacher's last `I`, no
//! attacher is read: their sends wait (backpressure), and the monitor holds at most one
//! message of stdin.
//!
//! # A slow attacher
//!
//! A slow or stuck attacher must never block the container or its log, so sends never
//! wait. What cannot be sent waits in the kernel, not in the monitor (whose memory stays
//! small): about 1 MiB of output per attacher (`SO_SNDBUFFORCE`). Past that, the
//! attacher misses output: each chunk that finds its socket full is dropped for it alone,
//! and before the next chunk that reaches it the monitor sends `L`, how many bytes it
//! missed, so the gap is known, never silent. The daemon logs it.
//!
//! Dropping rather than disconnecting: a burst at memory speed (a stack trace, `cat` of a
//! file) outruns any reader that is descheduled for a moment on a busy node, or behind a
//! slow network, and ending the session then would make `kubectl attach` to any chatty
//! container unusable; a terminal session shows the gap and goes on. A stuck attacher
//! costs its kernel buffer and one failed send per chunk, and goes when its client does.
//! (conmon and containerd write to attachers with blocking writes: there, a stuck
//! attacher stalls the container's output, and with it the container.)
//!
//! - `protocol`: the messages; `server`: the monitor's side; `client`: the daemon's.

pub mod client;
pub mod protocol;
mod server;

pub(super) use server::Attachers;
