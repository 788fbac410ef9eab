//! The queue between the reading thread and the filesystem worker: the operations it
//! carries, in tar order, and the batching at both ends.

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, SyncSender};

use super::meta::Meta;
use super::{UnpackError, IO_BUFFER};

/// Batches of operations queued between the reading thread and the filesystem worker.
/// A batch holds at most about `IO_BUFFER` bytes of file data (one chunk may overshoot it),
/// so this bounds memory in flight to about 16 MiB.
pub(super) const QUEUE_DEPTH: usize = 8;
/// Operations per batch: batching keeps the two threads from waking each other once per
/// small file, which on a layer of many small files costs more than it overlaps.
const BATCH_OPS: usize = 512;

/// Why the reading side stopped early.
pub(super) enum Stop {
    Failed(UnpackError),
    /// The worker hung up: it failed, and its error is the one to report.
    WorkerGone,
}

impl From<UnpackError> for Stop {
    fn from(e: UnpackError) -> Self {
        Stop::Failed(e)
    }
}

/// Filesystem work for the worker, in tar order.
pub(super) enum Op {
    Create {
        raw: PathBuf,
        rel: PathBuf,
        meta: Meta,
        node: Node,
    },
    /// `.wh.<name>` in `parent`.
    Whiteout {
        raw: PathBuf,
        rel: PathBuf,
        parent: PathBuf,
        name: OsString,
    },
    /// `.wh..wh..opq` in `parent`.
    Opaque {
        raw: PathBuf,
        rel: PathBuf,
        parent: PathBuf,
    },
    /// Content of the regular file created by the preceding `Create`, in order; exactly
    /// `size` bytes in total follow it.
    Data(Vec<u8>),
    /// The archive was read completely: apply directory times and report.
    End,
}

pub(super) enum Node {
    File { size: u64 },
    Dir,
    Symlink { target: PathBuf },
    HardLink { target: PathBuf },
    Char { major: u64, minor: u64 },
    Block { major: u64, minor: u64 },
    Fifo,
}

/// The reading side of the queue: collects operations into batches.
pub(super) struct OpSender {
    tx: SyncSender<Vec<Op>>,
    batch: Vec<Op>,
    bytes: usize,
}

impl OpSender {
    pub(super) fn new(tx: SyncSender<Vec<Op>>) -> Self {
        Self {
            tx,
            batch: Vec::with_capacity(BATCH_OPS),
            bytes: 0,
        }
    }

    /// Queues `op` (carrying `bytes` of file data), sending the batch when it is full.
    pub(super) fn push(&mut self, op: Op, bytes: usize) -> Result<(), Stop> {
        self.batch.push(op);
        self.bytes += bytes;
        if self.batch.len() >= BATCH_OPS || self.bytes >= IO_BUFFER {
            self.flush()?;
        }
        Ok(())
    }

    pub(super) fn flush(&mut self) -> Result<(), Stop> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH_OPS));
        self.bytes = 0;
        self.tx.send(batch).map_err(|_| Stop::WorkerGone)
    }
}

/// The worker side of the queue: yields operations one by one, `None` once the reading
/// side has hung up and everything it sent was consumed.
pub(super) struct OpReceiver {
    rx: Receiver<Vec<Op>>,
    current: std::vec::IntoIter<Op>,
}

impl OpReceiver {
    pub(super) fn new(rx: Receiver<Vec<Op>>) -> Self {
        Self {
            rx,
            current: Vec::new().into_iter(),
        }
    }

    pub(super) fn next(&mut self) -> Option<Op> {
        loop {
            if let Some(op) = self.current.next() {
                return Some(op);
            }
            self.current = self.rx.recv().ok()?.into_iter();
        }
    }
}
