//! The monitor's end of the attach socket: the listener in the bundle and the attachers
//! connected to it, served from the monitor's one poll loop (`supervise`).

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use super::protocol::{ClientMessage, MonitorMessage, Stream, Wants, MAX_MESSAGE, SOCKET, VERSION};
use crate::monitor::input::Input;
use crate::sys::seqpacket::{self, Listener, Received};

/// Most attachers at once; more are turned away (closed at once). kubelet opens one per
/// `kubectl attach`; the bound keeps the monitor's memory and each turn's work small.
pub const MAX_ATTACHERS: usize = 16;

/// Connections the kernel queues before the monitor takes them.
const BACKLOG: i32 = 8;

/// What may wait in the kernel for one attacher before it misses output: about 1 MiB
/// (see `seqpacket::set_send_buffer` for the kernel's accounting). Kernel memory, used
/// only while an attacher is behind; the kernel's default (13 messages of 8 KiB) is gone
/// in a moment when a burst meets a reader descheduled on a busy node.
const SEND_BUFFER: usize = 1 << 20;

/// Messages taken from one attacher per turn of the loop, so one busy attacher cannot
/// starve the container's output or the others.
const MESSAGES_PER_TURN: usize = 16;

struct Attacher {
    sock: OwnedFd,
    /// `None` until its `Hello`.
    wants: Option<Wants>,
    /// It asked for stdin and has not closed it yet.
    stdin: bool,
    /// To be dropped at the end of this turn (see [`Attachers::sweep`]).
    dead: bool,
    /// poll(2) said it hung up; what it sent before is still to be read.
    hung_up: bool,
    /// Bytes of output it missed since the last it was sent (its socket was full); it
    /// is told before the next output that reaches it.
    lost: u64,
}

/// The listening socket and the attachers.
pub(in crate::monitor) struct Attachers {
    listener: Option<Listener>,
    clients: Vec<Attacher>,
    /// Who may attach: the monitor's own user (the daemon's, root).
    uid: u32,
}

impl Attachers {
    /// Listens at `bundle/attach`, mode 0600 (and the bundle is 0700): only root, the
    /// daemon, can connect; a peer of another uid is turned away too.
    pub(in crate::monitor) fn listen(bundle: &Path) -> io::Result<Self> {
        let listener = Listener::bind(bundle, SOCKET, crate::perm::PRIVATE_FILE, BACKLOG)?;
        Ok(Attachers {
            listener: Some(listener),
            clients: Vec::new(),
            uid: nix::unistd::geteuid().as_raw(),
        })
    }

    pub(in crate::monitor) fn listener(&self) -> Option<BorrowedFd<'_>> {
        self.listener.as_ref().map(AsFd::as_fd)
    }

    pub(in crate::monitor) fn len(&self) -> usize {
        self.clients.len()
    }

    /// What to poll for attacher `index`: its socket, to be read when `reading` (the
    /// container's stdin can take a message). Not at all when it hung up and cannot be
    /// read: poll would report the hang-up again at once, forever, while the container
    /// does not read its stdin. Its last messages are read once it can take them.
    pub(in crate::monitor) fn poll_fd(
        &self,
        index: usize,
        reading: bool,
    ) -> Option<BorrowedFd<'_>> {
        let client = &self.clients[index];
        (reading || !client.hung_up).then(|| client.sock.as_fd())
    }

    pub(in crate::monitor) fn hung_up(&mut self, index: usize) {
        self.clients[index].hung_up = true;
    }

    /// Takes every waiting connection.
    pub(in crate::monitor) fn accept(&mut self) {
        let Some(listener) = &self.listener else {
            return;
        };
        while let Ok(Some(sock)) = listener.accept() {
            let ours = seqpacket::peer_uid(&sock).is_ok_and(|uid| uid == self.uid);
            if !ours || self.clients.len() >= MAX_ATTACHERS {
                continue; // dropped: closed
            }
            // Best effort: with the default it works, only with less slack.
            let _ = seqpacket::set_send_buffer(&sock, SEND_BUFFER);
            self.clients.push(Attacher {
                sock,
                wants: None,
                stdin: false,
                dead: false,
                hung_up: false,
                lost: 0,
            });
        }
    }

    /// Reads what attacher `index` sent (it was readable or hung up), while `input` can
    /// take stdin: one that cannot is left unread until it can (the attacher's sends
    /// then wait: backpressure, never a buffer of ours that grows).
    pub(in crate::monitor) fn serve(
        &mut self,
        index: usize,
        buf: &mut [u8; MAX_MESSAGE],
        input: &mut Input,
    ) {
        for _ in 0..MESSAGES_PER_TURN {
            if !input.can_take() {
                return;
            }
            let client = &mut self.clients[index];
            if client.dead {
                return;
            }
            let len = match seqpacket::recv(&client.sock, buf) {
                Ok(Received::Message {
                    len,
                    truncated: false,
                }) => len,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // Gone, or broke the size limit.
                _ => {
                    client.dead = true;
                    return;
                }
            };
            match ClientMessage::parse(&buf[..len]) {
                Ok(ClientMessage::Hello { version, wants }) if client.wants.is_none() => {
                    if version != VERSION {
                        client.dead = true;
                        return;
                    }
                    client.wants = Some(wants);
                    client.stdin = wants.stdin;
                    let (head, _) = MonitorMessage::Attached { version: VERSION }.encode();
                    if seqpacket::send(&client.sock, &[head.as_bytes()]).is_err() {
                        client.dead = true;
                    }
                }
                // Anything before the hello, a second hello, or garbage.
                Ok(ClientMessage::Hello { .. }) | Err(_) => client.dead = true,
                Ok(_) if client.wants.is_none() => client.dead = true,
                Ok(ClientMessage::Stdin(data)) => {
                    // From an attacher that did not ask for stdin, or closed it: dropped.
                    if client.stdin {
                        input.write(data);
                    }
                }
                Ok(ClientMessage::Resize(size)) => input.resize(size),
                Ok(ClientMessage::CloseStdin) => {
                    if std::mem::take(&mut client.stdin) {
                        input.stdin_ended();
                    }
                }
            }
        }
    }

    /// Copies a chunk of output to every attacher that wants `stream`. Never waits: an
    /// attacher whose socket is full misses the chunk, and is told how much it missed
    /// once there is room again (see the module doc, "A slow attacher").
    pub(in crate::monitor) fn broadcast(&mut self, stream: Stream, data: &[u8]) {
        let (head, payload) = MonitorMessage::Output(stream, data).encode();
        for client in &mut self.clients {
            let wanted = client.wants.is_some_and(|w| w.wants(stream));
            if !wanted || client.dead || data.is_empty() {
                continue;
            }
            let gap = (client.lost > 0).then(|| MonitorMessage::Lost(client.lost).encode().0);
            let sent = gap
                .map_or(Ok(()), |gap| {
                    seqpacket::send(&client.sock, &[gap.as_bytes()])
                })
                .and_then(|()| {
                    client.lost = 0;
                    seqpacket::send(&client.sock, &[head.as_bytes(), payload])
                });
            match sent {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    client.lost = client.lost.saturating_add(data.len() as u64);
                }
                // Gone (or reset): nothing more will reach it.
                Err(_) => client.dead = true,
            }
        }
    }

    /// Drops the attachers marked dead this turn (after the loop has used its indices).
    /// One that had stdin open counts as closing it (`Input::stdin_ended`), as containerd
    /// ends an attachment's stdin when its output side goes.
    pub(in crate::monitor) fn sweep(&mut self, input: &mut Input) {
        self.clients.retain(|c| {
            if c.dead && c.stdin {
                input.stdin_ended();
            }
            !c.dead
        });
    }
}
