//! The docker store (Mesos' name): content-addressed, deduplicated layers plus image
//! metadata, with pulls, removal, usage and garbage collection.
//!
//! - `paths`: the on-disk layout; `db`: the metadata database;
//! - `ingest`: one layer from stream to `layers/` (verify, unpack, rename);
//! - `unpack`: hostile-safe tar extraction with whiteouts in overlayfs form;
//! - `pull`: resolving, fetching layers in parallel (shared between pulls), recording;
//! - `images`: lookups, removal, usage; `gc`: pruning and the disk watcher;
//! - `flight`: single-flight runs shared by concurrent callers;
//! - `progress`: what a pull has brought in so far, for clients that show it.

pub mod db;
pub mod flight;
pub mod gc;
mod images;
pub mod ingest;
pub mod paths;
pub mod progress;
mod pull;
pub mod unpack;

use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use tokio::sync::{RwLock, Semaphore};

use crate::error::{io_kind, ErrorKind, Kind};
use crate::provisioner::puller::archive::ArchivePuller;
use crate::provisioner::puller::registry::{RegistryOptions, RegistryPuller};
use crate::provisioner::puller::PullError;
use crate::provisioner::reference::{Reference, ReferenceError};
use db::{Db, DbError, ImageRecord, LayerRecord};
use flight::Flights;
use paths::StorePaths;
use unpack::UnpackError;

pub use images::{FsUsage, Image};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error(transparent)]
    Pull(#[from] PullError),
    #[error("unpacking layer {layer}: {source}")]
    Unpack { layer: String, source: UnpackError },
    #[error(
        "layer {layer}: unpacked content has diff id {actual}, the image config says {expected}"
    )]
    DiffIdMismatch {
        layer: String,
        expected: String,
        actual: String,
    },
    #[error("image {image}: config is unusable: {reason}")]
    BadConfig { image: String, reason: String },
    #[error("image {image} is used by {containers} container(s)")]
    InUse { image: String, containers: u64 },
    #[error("image {image} is not in the store")]
    UnknownImage { image: String },
    #[error("image {spec:?} matches {count} images; give more of the id")]
    Ambiguous { spec: String, count: usize },
    #[error("--pinned-images {value:?}: {source}")]
    Pinned {
        value: String,
        source: ReferenceError,
    },
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("background task failed: {0}")]
    Task(String),
    /// The same failure, seen by every caller of a shared pull.
    #[error(transparent)]
    Shared(Arc<StoreError>),
}

impl Kind for StoreError {
    fn kind(&self) -> ErrorKind {
        use StoreError::*;
        match self {
            Reference(e) => e.kind(),
            Pull(e) => e.kind(),
            Unpack { source, .. } => match source {
                UnpackError::Io { source, .. } => io_kind(source),
                // Broken compression or a truncated tar is corrupt data; escapes, bad
                // links and odd entries are an image we refuse to run.
                UnpackError::Read { .. }
                | UnpackError::Decompress { .. }
                | UnpackError::Tar { .. }
                | UnpackError::EntryData { .. }
                | UnpackError::Truncated { .. } => ErrorKind::DataLoss,
                _ => ErrorKind::InvalidArgument,
            },
            DiffIdMismatch { .. } => ErrorKind::DataLoss,
            BadConfig { .. } | Ambiguous { .. } | Pinned { .. } => ErrorKind::InvalidArgument,
            InUse { .. } => ErrorKind::FailedPrecondition,
            UnknownImage { .. } => ErrorKind::NotFound,
            Db(_) | Task(_) => ErrorKind::Internal,
            Io { source, .. } => io_kind(source),
            Shared(e) => e.kind(),
        }
    }
}

pub struct StoreOptions {
    pub dir: PathBuf,
    pub registry: RegistryOptions,
    /// Mesos `--docker_registry` as a directory: archives for host-less names.
    pub archive_dir: Option<PathBuf>,
    pub max_concurrent_downloads: usize,
    pub pinned: Vec<String>,
}

pub struct Store {
    paths: StorePaths,
    db: Db,
    registry: RegistryPuller,
    archive: Option<ArchivePuller>,
    /// Bounds layer downloads over all pulls (`--max-concurrent-downloads`).
    downloads: Arc<Semaphore>,
    pulls: Arc<Flights<ImageRecord, StoreError>>,
    layer_flights: Arc<Flights<LayerRecord, StoreError>>,
    /// Pulls hold it shared, pruning exclusively: a prune must never delete a layer a pull
    /// has just unpacked but not yet recorded in an image.
    gc_lock: RwLock<()>,
    /// Serialises read-modify-write of image records (two pulls resolving to one image
    /// each add a tag; without this one tag could be lost). Never held across an await.
    meta: std::sync::Mutex<()>,
    pinned: Vec<Reference>,
    /// Layer downloads started since start-up (logged; the tests read it from the logs).
    downloads_started: AtomicU64,
    /// Progress of the pulls and layer downloads in flight.
    trackers: progress::Trackers,
}

impl Store {
    /// Opens (or creates) the store and recovers from whatever a crash left.
    pub fn open(opts: StoreOptions) -> Result<Arc<Self>, StoreError> {
        let paths = StorePaths::new(opts.dir);
        // 0700 (see `perm`): a store dir of an older version is closed too.
        let prepared = crate::perm::own_dir(paths.root())
            .and_then(|()| crate::perm::tighten(paths.root(), &[]));
        prepared.map_err(|source| StoreError::Io {
            op: "prepare store dir",
            path: paths.root().to_path_buf(),
            source,
        })?;
        for dir in [paths.layers(), paths.tmp(), paths.gc()] {
            crate::perm::private_dir(&dir).map_err(|source| StoreError::Io {
                op: "create store dir",
                path: dir.clone(),
                source,
            })?;
        }
        let db = Db::open(&paths.db())?;
        let pinned = opts
            .pinned
            .iter()
            .map(|p| {
                Reference::parse(p).map_err(|source| StoreError::Pinned {
                    value: p.clone(),
                    source,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let registry = RegistryPuller::new(opts.registry)
            .map_err(|e| StoreError::Task(format!("HTTP client: {e}")))?;
        let store = Store {
            paths,
            db,
            registry,
            archive: opts.archive_dir.map(|dir| ArchivePuller { dir }),
            downloads: Arc::new(Semaphore::new(opts.max_concurrent_downloads.max(1))),
            pulls: Arc::default(),
            layer_flights: Arc::default(),
            gc_lock: RwLock::new(()),
            meta: std::sync::Mutex::new(()),
            pinned,
            downloads_started: AtomicU64::new(0),
            trackers: progress::Trackers::default(),
        };
        store.recover()?;
        Ok(Arc::new(store))
    }

    /// Start-up cleanup. tmp/ and gc/ only ever hold work of a run that died; a layer
    /// directory without a record was renamed into place just before a crash and is
    /// dropped (its image was never recorded, so nothing refers to it).
    fn recover(&self) -> Result<(), StoreError> {
        for dir in [self.paths.tmp(), self.paths.gc()] {
            wipe_children(&dir)?;
        }
        let known: std::collections::HashSet<String> = self
            .db
            .layers()?
            .into_iter()
            .filter_map(|l| l.diff_id.split_once(':').map(|(_, hex)| hex.to_string()))
            .collect();
        let layers = self.paths.layers();
        let entries = std::fs::read_dir(&layers).map_err(|source| StoreError::Io {
            op: "list layers",
            path: layers.clone(),
            source,
        })?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            if !known.contains(&name) {
                tracing::info!(layer = %name, "removing unrecorded layer left by an interrupted pull");
                ingest::retire(&entry.path(), &self.paths.gc())?;
            }
        }
        Ok(())
    }

    pub fn paths(&self) -> &StorePaths {
        &self.paths
    }

    fn meta_lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.meta.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn wipe_children(dir: &std::path::Path) -> Result<(), StoreError> {
    let entries = std::fs::read_dir(dir).map_err(|source| StoreError::Io {
        op: "list",
        path: dir.to_path_buf(),
        source,
    })?;
    for entry in entries.flatten() {
        let path = entry.path();
        let res = if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        res.map_err(|source| StoreError::Io {
            op: "remove leftover",
            path: path.clone(),
            source,
        })?;
        tracing::info!(path = %path.display(), "removed leftover of an interrupted run");
    }
    Ok(())
}
