//! The reading side of the two-stage pipeline (read, decompress, hash, parse), and
//! `unpack_stream`, which runs it alongside the filesystem worker and merges the outcomes.

use std::cell::Cell;
use std::io::{self, BufReader, Read};
use std::path::Path;
use std::rc::Rc;
use std::sync::mpsc::{self, Receiver};
use std::thread;

use sha2::{Digest, Sha256};

use super::apply::Unpacker;
use super::entry::plan;
use super::queue::{Node, Op, OpReceiver, OpSender, Stop, QUEUE_DEPTH};
use super::stream::{HashingReader, StreamErrors};
use super::{io_err, Compression, UnpackError, UnpackedLayer, IO_BUFFER};

pub(super) fn unpack_stream<S: Read>(
    stream: S,
    compression: Compression,
    dest: &Path,
) -> Result<UnpackedLayer, UnpackError> {
    let errs = StreamErrors {
        compression,
        failure: Rc::new(Cell::new(None)),
    };
    let hashing = HashingReader {
        inner: stream,
        hasher: Sha256::new(),
        failure: Rc::clone(&errs.failure),
    };
    // Hash before buffering so the hasher sees large chunks; tar reads 512-byte headers
    // from the buffer.
    let mut archive = tar::Archive::new(BufReader::with_capacity(IO_BUFFER, hashing));

    // Two-stage pipeline: this thread reads, decompresses, hashes and parses (CPU-bound);
    // a worker does the filesystem work (syscall-bound), so the two overlap. The worker
    // applies operations strictly in tar order, so the result is the same as a serial
    // unpack. The stream stays on this thread, so `R` need not be `Send`.
    let (ops_tx, ops_rx) = mpsc::sync_channel::<Vec<Op>>(QUEUE_DEPTH);
    let (recycle_tx, recycle_rx) = mpsc::channel::<Vec<u8>>();
    let span = tracing::Span::current();
    let (read, applied) = thread::scope(|scope| {
        let worker = thread::Builder::new()
            .name("ucr-unpack".into())
            .spawn_scoped(scope, move || {
                let _entered = span.enter();
                Unpacker::new(dest, recycle_tx).run(&mut OpReceiver::new(ops_rx))
            })
            .map_err(|source| io_err("spawn unpack thread for", dest, source))?;
        let mut ops = OpSender::new(ops_tx);
        let read = read_archive(&mut archive, &errs, &mut ops, &recycle_rx).and_then(|()| {
            // The archive ends at its first zero block; hash the rest (the second zero
            // block and any record padding) so the digest covers the whole stream.
            let mut rest = archive.into_inner();
            io::copy(&mut rest, &mut io::sink()).map_err(|e| {
                Stop::Failed(errs.classify(e, |source| UnpackError::Read { source }))
            })?;
            ops.push(Op::End, 0)?;
            ops.flush()?;
            Ok(rest.into_inner().hasher.finalize())
        });
        drop(ops);
        let applied = worker
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        Ok::<_, UnpackError>((read, applied))
    })?;
    match (read, applied) {
        // When both sides failed, the worker's error is about an earlier entry.
        (_, Err(e)) | (Err(Stop::Failed(e)), _) => Err(e),
        (Ok(digest), Ok(Some(mut layer))) => {
            layer.diff_id = format!("sha256:{}", hex::encode(digest));
            Ok(layer)
        }
        // Neither side stopped with an error yet the other saw it go away: cannot happen
        // (the worker only leaves early on error, and only without `End` when we failed),
        // but report it rather than panic.
        (Err(Stop::WorkerGone), Ok(_)) | (Ok(_), Ok(None)) => Err(io_err(
            "unpack layer into",
            dest,
            io::Error::other("unpack thread stopped before the end of the archive"),
        )),
    }
}

/// Reads every entry, turning each into an `Op` for the worker (plus `Data` for files).
fn read_archive<R: Read>(
    archive: &mut tar::Archive<R>,
    errs: &StreamErrors,
    ops: &mut OpSender,
    recycled: &Receiver<Vec<u8>>,
) -> Result<(), Stop> {
    let entries = archive
        .entries()
        .map_err(|source| UnpackError::Tar { source })?;
    for entry in entries {
        let mut entry =
            entry.map_err(|e| errs.classify(e, |source| UnpackError::Tar { source }))?;
        let Some(op) = plan(&mut entry, errs)? else {
            continue;
        };
        let file = match &op {
            Op::Create {
                raw,
                node: Node::File { size },
                ..
            } => Some((raw.clone(), *size)),
            _ => None,
        };
        ops.push(op, 0)?;
        if let Some((raw, size)) = file {
            send_data(&mut entry, &raw, size, errs, ops, recycled)?;
        }
    }
    Ok(())
}

/// Sends a regular file's `size` bytes of content in chunks of at most `IO_BUFFER`,
/// reusing buffers the worker hands back.
fn send_data<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    raw: &Path,
    size: u64,
    errs: &StreamErrors,
    ops: &mut OpSender,
    recycled: &Receiver<Vec<u8>>,
) -> Result<(), Stop> {
    let mut sent = 0u64;
    while sent < size {
        let want = usize::try_from(size - sent).map_or(IO_BUFFER, |left| left.min(IO_BUFFER));
        let mut chunk = if want == IO_BUFFER {
            recycled.try_recv().unwrap_or_default()
        } else {
            Vec::new()
        };
        chunk.resize(want, 0);
        let mut filled = 0;
        while filled < want {
            match entry.read(&mut chunk[filled..]) {
                Ok(0) => {
                    // The tar reader returns EOF early when the stream ends inside an entry.
                    return Err(Stop::Failed(errs.classify(
                        io::ErrorKind::UnexpectedEof.into(),
                        |_| UnpackError::Truncated {
                            entry: raw.to_path_buf(),
                            expected: size,
                            written: sent + filled as u64,
                        },
                    )));
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(Stop::Failed(errs.classify(e, |source| {
                        UnpackError::EntryData {
                            entry: raw.to_path_buf(),
                            source,
                        }
                    })))
                }
            }
        }
        sent += want as u64;
        ops.push(Op::Data(chunk), want)?;
    }
    Ok(())
}
