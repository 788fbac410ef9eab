//! Brings one layer into the store: stream → verify digest and size → decompress →
//! unpack safely into a scratch dir → check the diff id → atomic rename into `layers/`.
//!
//! The compressed blob is never written to disk (unpacking runs as the bytes arrive), so
//! verification has to happen on the way through: the layer only becomes visible after the
//! whole blob was read and matched its digest. Anything that fails leaves only a scratch
//! directory, which is deleted here, or at the next start-up if the daemon died.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use tokio_util::io::{StreamReader, SyncIoBridge};

use super::db::LayerRecord;
use super::paths::StorePaths;
use super::progress::LayerTracker;
use super::unpack::{unpack_layer, UnpackedLayer};
use super::StoreError;
use crate::provisioner::puller::{LayerFetcher, LayerLocation, LayerSource, PullError};
use crate::provisioner::reference::{Digest, Digester};

/// Checks a blob's digest and size as it is read. Reading past the announced size fails
/// at once (a registry cannot make us read forever); `finish` drains and compares.
struct Verifier<R> {
    inner: R,
    digester: Option<Digester>,
    expected: Option<(Digest, Option<u64>)>,
    read: u64,
}

impl<R: Read> Read for Verifier<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(d) = &mut self.digester {
            d.update(&buf[..n]);
        }
        self.read += n as u64;
        crate::metrics::prometheus::families().pulled_bytes(n as u64);
        if let Some((digest, Some(size))) = &self.expected {
            if self.read > *size {
                return Err(std::io::Error::other(PullError::SizeMismatch {
                    what: "layer",
                    digest: digest.to_string(),
                    expected: *size,
                    actual: self.read,
                }));
            }
        }
        Ok(n)
    }
}

impl<R: Read> Verifier<R> {
    fn new(inner: R, location: &LayerLocation) -> Self {
        let expected = match location {
            LayerLocation::Blob { digest, size } => Some((digest.clone(), *size)),
            LayerLocation::File(_) => None,
        };
        Verifier {
            inner,
            digester: expected.as_ref().map(|(d, _)| d.digester()),
            expected,
            read: 0,
        }
    }

    /// Reads what the unpacker left (compression trailers, padding) and checks it all.
    fn finish(mut self) -> Result<(), PullError> {
        let mut sink = vec![0u8; 64 * 1024];
        loop {
            match self.read(&mut sink) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => return Err(as_pull_error(e)),
            }
        }
        let (Some((digest, size)), Some(digester)) = (self.expected, self.digester) else {
            return Ok(());
        };
        if let Some(size) = size {
            if self.read != size {
                return Err(PullError::SizeMismatch {
                    what: "layer",
                    digest: digest.to_string(),
                    expected: size,
                    actual: self.read,
                });
            }
        }
        let actual = digester.finish();
        if actual != digest {
            return Err(PullError::DigestMismatch {
                what: "layer",
                digest: digest.to_string(),
                actual: actual.to_string(),
            });
        }
        Ok(())
    }
}

fn as_pull_error(e: std::io::Error) -> PullError {
    match e.into_inner().map(|inner| inner.downcast::<PullError>()) {
        Some(Ok(pull)) => *pull,
        Some(Err(other)) => PullError::Transfer {
            url: String::new(),
            detail: other.to_string(),
        },
        None => PullError::Transfer {
            url: String::new(),
            detail: "read failed".into(),
        },
    }
}

/// Fetches, verifies and unpacks one layer; returns its record once it is in `layers/`.
pub async fn ingest(
    paths: &StorePaths,
    fetcher: Arc<dyn LayerFetcher>,
    layer: &LayerSource,
    progress: &Arc<LayerTracker>,
) -> Result<LayerRecord, StoreError> {
    let stream = fetcher.open(layer).await?;
    let counter = Arc::clone(progress);
    // The first transport error is kept aside: once it crosses the blocking bridge it is
    // only an io::Error, and "connection broke" must not be reported as "bad gzip".
    let failure: Arc<Mutex<Option<PullError>>> = Arc::default();
    let seen = failure.clone();
    let stream = stream.map(move |r| {
        if let Ok(chunk) = &r {
            counter.add(chunk.len() as u64);
        }
        r.map_err(|e| {
            let msg = e.to_string();
            seen.lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_or_insert(e);
            std::io::Error::other(msg)
        })
    });
    let reader = SyncIoBridge::new(StreamReader::new(stream));
    let scratch = paths.scratch("layer");
    let rootfs = scratch.join("rootfs");
    let location = layer.location.clone();
    let work_dir = rootfs.clone();
    let outcome = tokio::task::spawn_blocking(move || -> Result<UnpackedLayer, StoreError> {
        std::fs::create_dir_all(&work_dir).map_err(|source| StoreError::Io {
            op: "create scratch dir",
            path: work_dir.clone(),
            source,
        })?;
        let mut verifier = Verifier::new(
            std::io::BufReader::with_capacity(1 << 20, reader),
            &location,
        );
        match unpack_layer(&mut verifier, &work_dir) {
            Ok(unpacked) => {
                verifier.finish()?;
                Ok(unpacked)
            }
            // A corrupt blob usually breaks decompression before its end: if the bytes
            // don't match the digest, that is the real story, so check before blaming
            // the layer's contents.
            Err(unpack) => match verifier.finish() {
                Err(e @ (PullError::DigestMismatch { .. } | PullError::SizeMismatch { .. })) => {
                    Err(e.into())
                }
                _ => Err(StoreError::Unpack {
                    layer: location_name(&location),
                    source: unpack,
                }),
            },
        }
    })
    .await
    .map_err(|e| StoreError::Task(e.to_string()))
    .and_then(|r| r);

    let result = match outcome {
        Ok(unpacked) => finish(paths, layer, unpacked, &scratch).await,
        Err(e) => Err(failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .map(StoreError::from)
            .unwrap_or(e)),
    };
    if result.is_err() {
        remove_quietly(scratch).await;
    }
    result
}

fn location_name(location: &LayerLocation) -> String {
    match location {
        LayerLocation::Blob { digest, .. } => digest.to_string(),
        LayerLocation::File(p) => p.display().to_string(),
    }
}

/// Checks the diff id and moves the scratch dir into place.
async fn finish(
    paths: &StorePaths,
    layer: &LayerSource,
    unpacked: UnpackedLayer,
    scratch: &Path,
) -> Result<LayerRecord, StoreError> {
    let diff_id = Digest::parse(&unpacked.diff_id).map_err(|e| StoreError::Task(e.to_string()))?;
    if let Some(expected) = &layer.diff_id {
        if *expected != diff_id {
            return Err(StoreError::DiffIdMismatch {
                layer: location_name(&layer.location),
                expected: expected.to_string(),
                actual: diff_id.to_string(),
            });
        }
    }
    let target = paths.layer_dir(&diff_id);
    let record = LayerRecord {
        diff_id: diff_id.to_string(),
        size: unpacked.size,
        inodes: unpacked.inodes,
        whiteouts: unpacked
            .whiteouts
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
        opaque_dirs: unpacked
            .opaque_dirs
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
    };
    let layers = paths.layers();
    let gc = paths.gc();
    let scratch = scratch.to_path_buf();
    tokio::task::spawn_blocking(move || -> Result<(), StoreError> {
        std::fs::create_dir_all(&layers).map_err(|source| StoreError::Io {
            op: "create layers dir",
            path: layers.clone(),
            source,
        })?;
        // Same content under the same name: a leftover from a run that died after the
        // rename but before its record was committed. Ours replaces it.
        if target.exists() {
            retire(&target, &gc)?;
        }
        std::fs::rename(&scratch, &target).map_err(|source| StoreError::Io {
            op: "move layer into place",
            path: target.clone(),
            source,
        })
    })
    .await
    .map_err(|e| StoreError::Task(e.to_string()))??;
    Ok(record)
}

/// Moves a directory out of the way under gc/ and deletes it. The rename is atomic, so
/// after a crash nothing half-deleted is ever found where a live layer would be.
pub fn retire(dir: &Path, gc: &Path) -> Result<(), StoreError> {
    std::fs::create_dir_all(gc).map_err(|source| StoreError::Io {
        op: "create gc dir",
        path: gc.to_path_buf(),
        source,
    })?;
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let grave = gc.join(format!("{name}.{nanos}"));
    std::fs::rename(dir, &grave).map_err(|source| StoreError::Io {
        op: "retire directory",
        path: dir.to_path_buf(),
        source,
    })?;
    std::fs::remove_dir_all(&grave).map_err(|source| StoreError::Io {
        op: "delete retired directory",
        path: grave,
        source,
    })
}

async fn remove_quietly(dir: PathBuf) {
    let _ = tokio::task::spawn_blocking(move || {
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(path = %dir.display(), error = %e, "cannot remove scratch dir");
            }
        }
    })
    .await;
}
