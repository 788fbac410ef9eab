//! The monitor's loop: copy the container's output into the CRI log, reopen the log when
//! asked, and wait for the container to end. One thread, one poll(2) over the signalfd and
//! the two pipes; no timers while the container runs, so an idle monitor costs nothing.

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant, SystemTime};

use nix::sys::signal::Signal;
use nix::unistd::Pid;

use super::log::{CriLogWriter, Stream};
use crate::sys::signal::{self as sys, ChildExit, SignalQueue};

/// The signals the monitor takes through its signalfd. SIGCHLD: the container ended;
/// SIGUSR1: reopen the log (CRI `ReopenContainerLog`). SIGTERM, SIGINT and SIGHUP are
/// taken only to be ignored: the container's life is its own, and the daemon stops it
/// by signalling the container, never its monitor.
pub(super) const SIGNALS: [Signal; 5] = [
    Signal::SIGCHLD,
    Signal::SIGUSR1,
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
];

/// One read's worth; conmon reads 8 KiB at a time too. Lives on the stack, so the
/// monitor's heap holds only the log writer's line tails.
const READ_SIZE: usize = 8 * 1024;

/// After the container ended, output may still sit in the pipes, and a process it left
/// behind (outside a PID namespace) may hold them open. Keep reading while data keeps
/// coming within `QUIET_MS`, but no longer than `DRAIN_LIMIT` in all.
const QUIET_MS: i32 = 50;
const DRAIN_LIMIT: Duration = Duration::from_secs(1);

const STREAMS: [Stream; 2] = [Stream::Stdout, Stream::Stderr];

/// The read ends of the container's stdout and stderr pipes, and where their lines go.
pub(super) struct Output {
    /// Indexed like [`STREAMS`]; `None` once at end of file.
    pipes: [Option<File>; 2],
    /// `None` when the daemon gave no log path: output is read and dropped, so the
    /// container never blocks on a full pipe.
    log: Option<CriLogWriter>,
}

impl Output {
    /// Takes the pipes' read ends (made non-blocking: a poll wake-up is no promise that a
    /// read will not block, and draining reads until empty).
    pub(super) fn new(
        stdout: OwnedFd,
        stderr: OwnedFd,
        log: Option<CriLogWriter>,
    ) -> std::io::Result<Self> {
        sys::set_nonblocking(&stdout)?;
        sys::set_nonblocking(&stderr)?;
        Ok(Self {
            pipes: [Some(File::from(stdout)), Some(File::from(stderr))],
            log,
        })
    }

    fn fd(&self, index: usize) -> Option<BorrowedFd<'_>> {
        self.pipes[index].as_ref().map(|f| f.as_fd())
    }

    fn is_open(&self) -> bool {
        self.pipes.iter().any(Option::is_some)
    }

    /// One read from stream `index`; true when it produced data.
    fn pump(&mut self, index: usize, buf: &mut [u8; READ_SIZE]) -> bool {
        let Some(pipe) = self.pipes[index].as_mut() else {
            return false;
        };
        match pipe.read(buf) {
            Ok(0) => {
                self.close(index);
                false
            }
            Ok(n) => {
                if let Some(log) = self.log.as_mut() {
                    // A write error (full disk) loses these records, not the stream: the
                    // writer carries on, and there is nobody to tell from here.
                    let _ = log.write(STREAMS[index], &buf[..n], SystemTime::now());
                }
                true
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => false,
            // Not expected on a pipe; treat it as the end of that stream.
            Err(_) => {
                self.close(index);
                false
            }
        }
    }

    /// End of a stream: its unterminated last line becomes a `P` record.
    fn close(&mut self, index: usize) {
        self.pipes[index] = None;
        if let Some(log) = self.log.as_mut() {
            let _ = log.flush_partial(STREAMS[index], SystemTime::now());
        }
    }

    fn reopen(&mut self) {
        if let Some(log) = self.log.as_mut() {
            // On failure the writer keeps the old file, and kubelet, seeing the CRI call
            // fail, renames it back (see `CriLogWriter::reopen`). The daemon's call does
            // not wait for this, so there is no one to return the error to.
            let _ = log.reopen();
        }
    }

    /// After the container ended: reads what is left, then closes both streams.
    fn drain(&mut self, buf: &mut [u8; READ_SIZE]) {
        let deadline = Instant::now() + DRAIN_LIMIT;
        while self.is_open() && Instant::now() < deadline {
            let Ok(ready) = sys::wait_readable([self.fd(0), self.fd(1)], QUIET_MS) else {
                break;
            };
            if ready == [false, false] {
                break;
            }
            for (index, ready) in ready.into_iter().enumerate() {
                if ready {
                    self.pump(index, buf);
                }
            }
        }
        for index in 0..STREAMS.len() {
            if self.pipes[index].is_some() {
                self.close(index);
            }
        }
    }
}

/// Runs until `container` has ended and its output is in the log; returns how it ended
/// and when the monitor saw it end.
pub(super) fn supervise(
    container: Pid,
    output: &mut Output,
    signals: &SignalQueue,
) -> std::io::Result<(ChildExit, SystemTime)> {
    let mut buf = [0u8; READ_SIZE];
    // The container may have ended before SIGCHLD was blocked, when the default action
    // (ignore) discarded the signal: look once before waiting for the next one.
    let mut ended = sys::reap_children(container)?;
    let exit = loop {
        if let Some(exit) = ended {
            break exit;
        }
        let [signalled, out, err] =
            sys::wait_readable([Some(signals.as_fd()), output.fd(0), output.fd(1)], -1)?;
        // Output first: a chunk read before the SIGCHLD is handled is not left for the
        // bounded drain.
        if out {
            output.pump(0, &mut buf);
        }
        if err {
            output.pump(1, &mut buf);
        }
        if signalled {
            while let Some(signal) = signals.next()? {
                match signal {
                    Signal::SIGCHLD => ended = sys::reap_children(container)?.or(ended),
                    Signal::SIGUSR1 => output.reopen(),
                    _ => {}
                }
            }
        }
    };
    let finished = SystemTime::now();
    output.drain(&mut buf);
    Ok((exit, finished))
}
