//! The monitor's loop: copy the container's output into the CRI log and to its attachers,
//! their input to the container, reopen the log when asked, and wait for the container to
//! end. One thread, one poll(2) over the signalfd, the output pipes (or the terminal), the
//! container's stdin while bytes wait for it, the attach socket and each attacher; no
//! timers while the container runs, so an idle monitor costs nothing.

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant, SystemTime};

use nix::sys::signal::Signal;
use nix::unistd::Pid;

use super::attach::protocol::{MAX_DATA, MAX_MESSAGE};
use super::attach::Attachers;
use super::input::Input;
use super::log::{LogWriter, Stream};
use crate::sys::poll::PollSet;
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
/// monitor's heap holds only the log writer's line tails. One read is one message to
/// each attacher.
const READ_SIZE: usize = MAX_DATA;

/// After the container ended, output may still sit in the pipes, and a process it left
/// behind (outside a PID namespace) may hold them open. Keep reading while data keeps
/// coming within `QUIET_MS`, but no longer than `DRAIN_LIMIT` in all.
const QUIET_MS: i32 = 50;
const DRAIN_LIMIT: Duration = Duration::from_secs(1);

const STREAMS: [Stream; 2] = [Stream::Stdout, Stream::Stderr];

/// The read ends of the container's stdout and stderr pipes (or its terminal's master,
/// as stdout alone), where their lines go, and who else hears them.
pub(super) struct Output {
    /// Indexed like [`STREAMS`]; `None` once at end of file (or, for stderr, when the
    /// container has a terminal: it merges both, and containerd logs it all as stdout).
    pipes: [Option<File>; 2],
    /// `None` when the daemon gave no log path: output is read and dropped, so the
    /// container never blocks on a full pipe.
    log: Option<LogWriter>,
    /// Everyone attached; output goes to them as well as to the log.
    attachers: Attachers,
}

impl Output {
    /// Takes the pipes' read ends (made non-blocking: a poll wake-up is no promise that a
    /// read will not block, and draining reads until empty).
    pub(super) fn new(
        stdout: OwnedFd,
        stderr: Option<OwnedFd>,
        log: Option<LogWriter>,
        attachers: Attachers,
    ) -> std::io::Result<Self> {
        sys::set_nonblocking(&stdout)?;
        if let Some(stderr) = &stderr {
            sys::set_nonblocking(stderr)?;
        }
        Ok(Self {
            pipes: [Some(File::from(stdout)), stderr.map(File::from)],
            log,
            attachers,
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
                self.attachers.broadcast(STREAMS[index], &buf[..n]);
                true
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => false,
            // Not expected on a pipe; a terminal's master reads EIO once the container's
            // last descriptor of it is closed: the end of that stream either way.
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

/// Runs until `container` has ended and its output is in the log and sent to its
/// attachers; returns how it ended and when the monitor saw it end. The attachers stay
/// connected (the caller records the exit first, then drops `output`, which closes them:
/// an attacher that reads the end of its socket finds `exit.json` there).
pub(super) fn supervise(
    container: Pid,
    output: &mut Output,
    input: &mut Input,
    signals: &SignalQueue,
) -> std::io::Result<(ChildExit, SystemTime)> {
    let mut buf = [0u8; READ_SIZE];
    let mut message = [0u8; MAX_MESSAGE];
    let mut set = PollSet::default();
    // The container may have ended before SIGCHLD was blocked, when the default action
    // (ignore) discarded the signal: look once before waiting for the next one.
    let mut ended = sys::reap_children(container)?;
    let exit = loop {
        if let Some(exit) = ended {
            break exit;
        }
        set.clear();
        let signalled = set.add(Some(signals.as_fd()), true, false);
        let out = set.add(output.fd(0), true, false);
        let err = set.add(output.fd(1), true, false);
        let stdin = set.add(input.waiting_fd(), false, true);
        let listener = set.add(output.attachers.listener(), true, false);
        let first = listener + 1;
        let taking = input.can_take();
        for i in 0..output.attachers.len() {
            // Not read while stdin is full (see `Attachers::poll_fd`).
            set.add(output.attachers.poll_fd(i, taking), taking, false);
        }
        set.wait(-1)?;
        // Output first: a chunk read before the SIGCHLD is handled is not left for the
        // bounded drain.
        if set.ready(out).read {
            output.pump(0, &mut buf);
        }
        if set.ready(err).read {
            output.pump(1, &mut buf);
        }
        if set.ready(stdin).write {
            input.flush();
        }
        for i in 0..output.attachers.len() {
            let ready = set.ready(first + i);
            if ready.hangup {
                output.attachers.hung_up(i);
            }
            if ready.read || ready.hangup {
                output.attachers.serve(i, &mut message, input);
            }
        }
        output.attachers.sweep(input);
        if set.ready(listener).read {
            output.attachers.accept();
        }
        if set.ready(signalled).read {
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
    output.attachers.sweep(input);
    Ok((exit, finished))
}
