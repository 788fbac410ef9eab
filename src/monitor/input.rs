//! The container's stdin and terminal as its monitor holds them: what attachers write goes
//! in here, and terminal resizes land on the master.
//!
//! With `stdin` the monitor keeps the write side (a pipe's, or the terminal's master) for
//! the container's whole life, attached or not: the container sees no data and no end of
//! file until an attacher sends some, as with containerd and CRI-O. With `stdin_once`, the
//! first attacher with stdin that ends it (or goes away) closes it for good: the container
//! reads end of file. Not with a terminal: there, as in Docker and containerd (whose
//! comment says kubectl relies on it), stdin stays open and only the attachment ends.

use std::fs::File;
use std::io::{self, ErrorKind, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use super::attach::protocol::MAX_DATA;
use crate::sys::console::{self, WindowSize};
use crate::sys::signal::set_nonblocking;

pub(super) struct Input {
    /// Where stdin goes; `None` when the container has none (`/dev/null`) or it was
    /// closed.
    stdin: Option<File>,
    /// Bytes an attacher sent that the container has not taken yet (at most one
    /// message's). While any wait, attachers are not read: their sends wait instead.
    pending: Vec<u8>,
    /// Close stdin once `pending` is written.
    closing: bool,
    /// `stdin_once`.
    once: bool,
    /// The terminal's master, for resizes; `None` without a terminal.
    terminal: Option<File>,
}

impl Input {
    /// `stdin`: the write side of the container's stdin, if it has one; `terminal`: the
    /// master of its terminal, if it has one.
    pub(super) fn new(
        stdin: Option<OwnedFd>,
        terminal: Option<OwnedFd>,
        once: bool,
    ) -> io::Result<Self> {
        if let Some(fd) = &stdin {
            set_nonblocking(fd)?;
        }
        Ok(Input {
            stdin: stdin.map(File::from),
            pending: Vec::new(),
            closing: false,
            once,
            terminal: terminal.map(File::from),
        })
    }

    /// No stdin, no terminal: nothing an attacher sends goes anywhere.
    pub(super) fn none() -> Self {
        Input {
            stdin: None,
            pending: Vec::new(),
            closing: false,
            once: false,
            terminal: None,
        }
    }

    /// Whether an attacher's next message can be taken now.
    pub(super) fn can_take(&self) -> bool {
        self.pending.is_empty()
    }

    /// The descriptor to wait on for room, while bytes are waiting.
    pub(super) fn waiting_fd(&self) -> Option<BorrowedFd<'_>> {
        match &self.stdin {
            Some(f) if !self.pending.is_empty() => Some(f.as_fd()),
            _ => None,
        }
    }

    /// Bytes for stdin (dropped when it is closed or there is none).
    pub(super) fn write(&mut self, data: &[u8]) {
        if self.stdin.is_none() || self.closing {
            return;
        }
        debug_assert!(
            self.pending.is_empty(),
            "attachers are not read while bytes wait"
        );
        let written = self.write_now(data);
        if written < data.len() {
            let rest = &data[written..];
            // One message at most: `can_take` stops the reading meanwhile.
            self.pending.reserve_exact(rest.len().min(MAX_DATA));
            self.pending.extend_from_slice(rest);
        }
    }

    /// Writes what is waiting, as far as there is room (its descriptor was writable).
    pub(super) fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let pending = std::mem::take(&mut self.pending);
        let written = self.write_now(&pending);
        self.pending = pending;
        self.pending.drain(..written.min(self.pending.len()));
        if self.pending.is_empty() {
            // Its memory back: a burst of stdin should not stay resident.
            self.pending = Vec::new();
            if self.closing {
                self.close();
            }
        }
    }

    /// The terminal's new size; nothing without a terminal. A failure (the terminal is
    /// gone with the container) has nobody to be told to.
    pub(super) fn resize(&mut self, size: WindowSize) {
        if let Some(t) = &self.terminal {
            let _ = console::set_window_size(t, size);
        }
    }

    /// An attacher that had stdin is done with it: with `stdin_once` (and no terminal),
    /// the container's stdin closes, once what that attacher sent is written.
    pub(super) fn stdin_ended(&mut self) {
        if !self.once || self.terminal.is_some() {
            return;
        }
        self.closing = true;
        if self.pending.is_empty() {
            self.close();
        }
    }

    /// As much of `data` as fits now; what a closed reader makes of it: nothing.
    fn write_now(&mut self, data: &[u8]) -> usize {
        let Some(f) = self.stdin.as_mut() else {
            return data.len();
        };
        let mut written = 0;
        while written < data.len() {
            match f.write(&data[written..]) {
                Ok(0) => break,
                Ok(n) => written += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                // EPIPE: the container closed its stdin. Nothing more can go in.
                Err(_) => {
                    self.close();
                    return data.len();
                }
            }
        }
        written
    }

    fn close(&mut self) {
        self.stdin = None;
        self.pending = Vec::new();
        self.closing = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn piped(once: bool) -> (Input, File) {
        let (r, w) = crate::sys::process::cloexec_pipe().expect("pipe");
        (
            Input::new(Some(w), None, once).expect("input"),
            File::from(r),
        )
    }

    fn read_all(mut r: File) -> Vec<u8> {
        let mut out = Vec::new();
        r.read_to_end(&mut out).expect("read");
        out
    }

    #[test]
    fn bytes_go_through_and_stdin_once_closes_after_them() {
        let (mut input, r) = piped(true);
        input.write(b"hello ");
        input.write(b"world");
        input.stdin_ended();
        assert!(input.stdin.is_none(), "closed");
        input.write(b"late");
        assert_eq!(read_all(r), b"hello world");
    }

    #[test]
    fn without_stdin_once_stdin_stays_open() {
        let (mut input, r) = piped(false);
        input.stdin_ended();
        input.write(b"still");
        assert!(input.stdin.is_some());
        crate::sys::signal::set_nonblocking(&r).expect("nonblocking");
        let mut buf = [0u8; 8];
        assert_eq!((&r).read(&mut buf).expect("read"), 5);
    }

    #[test]
    fn a_full_pipe_holds_the_rest_until_there_is_room() {
        let (mut input, mut r) = piped(true);
        let chunk = vec![b'x'; MAX_DATA];
        // A pipe holds 64 KiB by default: fill it.
        let mut sent = 0;
        while input.can_take() {
            input.write(&chunk);
            sent += chunk.len();
            assert!(sent < 1 << 22, "never filled");
        }
        assert!(input.waiting_fd().is_some());
        // The one who had stdin leaves: it closes after what waits.
        input.stdin_ended();
        assert!(input.stdin.is_some(), "not before the bytes waiting");
        let mut got = 0;
        let mut buf = vec![0u8; 1 << 16];
        while input.stdin.is_some() {
            got += r.read(&mut buf).expect("read");
            input.flush();
        }
        got += read_all(r).len();
        assert_eq!(got, sent);
    }

    #[test]
    fn a_reader_that_went_away_closes_stdin() {
        let (mut input, r) = piped(false);
        drop(r);
        input.write(b"nobody");
        assert!(input.stdin.is_none());
        assert!(input.can_take());
    }

    #[test]
    fn a_terminal_keeps_stdin_open_with_stdin_once() {
        let (r, w) = crate::sys::process::cloexec_pipe().expect("pipe");
        let (_t, t) = crate::sys::process::cloexec_pipe().expect("pipe");
        let mut input = Input::new(Some(w), Some(t), true).expect("input");
        input.stdin_ended();
        assert!(input.stdin.is_some(), "Docker's and containerd's rule");
        drop(r);
    }
}
