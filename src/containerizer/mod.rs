//! The containerizer: pod sandboxes and containers, their lifecycle state machine,
//! persistence and recovery. The front doors (the CRI now, the Mesos operator API next)
//! call it with plain, door-neutral types (`types`): a container arrives with its
//! process resolved by the door's rules; ids are exact (a door that allows prefixes
//! resolves them first, from [`Containerizer::container_ids`]); a container need not
//! belong to a pod (a Mesos standalone container has namespaces of its own).
//!
//! It drives the provisioner (rootfs backends), the isolators (one ordered table, see
//! `isolators`) and the launcher, through one monitor process per container.
//!
//! - `pod`: RunPodSandbox/Stop/Remove: the sandbox's namespaces and its isolators;
//! - `container/`: create, start/stop/remove, status, the launch spec, the monitor;
//! - `exec`: ExecSync; `attach`: Attach (a `session` on the monitor's attach socket);
//!   `recover`: what a restarted daemon finds; `trash`: removed
//!   containers deleted in the background;
//! - `locks`: per-pod (shared or exclusive) and per-container locks;
//! - `db`, `paths`, `types`, `error`.
//!
//! Concurrency: every change to one pod or container holds its lock (`locks` says in which
//! order); the in-memory maps are a cache of the database, updated after each commit.
//! Creation is single-flight by the door's key, so a client's retry of a slow
//! RunPodSandbox/CreateContainer gets the first call's result instead of a duplicate.

mod attach;
mod container;
mod db;
pub mod error;
mod exec;
mod exec_session;
mod locks;
pub mod paths;
mod pod;
mod recover;
pub mod session;
mod trash;
pub mod types;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::broadcast;

use crate::isolators::Isolators;
use crate::provisioner::backend::Backend;
use crate::provisioner::store::flight::Flights;
use crate::provisioner::store::Store;
pub use container::{ContainerStats, PodStats};
pub use error::ContainerizerError;
pub use exec::ExecCommand;
use paths::Paths;
use types::{Container, Event, EventKind, Pod};

pub struct Options {
    pub root: PathBuf,
    pub run_root: PathBuf,
    pub store: Arc<Store>,
    pub backend: Box<dyn Backend>,
    /// The `ucr` binary, re-executed as `ucr monitor` and `ucr nsexec`.
    pub binary: PathBuf,
    /// The isolator table (`Isolators::standard` on a node).
    pub isolators: Isolators,
}

#[derive(Default)]
struct Cache {
    pods: HashMap<String, Pod>,
    containers: HashMap<String, Container>,
}

pub struct Containerizer {
    paths: Paths,
    db: db::Db,
    store: Arc<Store>,
    backend: Box<dyn Backend>,
    binary: PathBuf,
    isolators: Isolators,
    cache: Mutex<Cache>,
    locks: locks::Locks,
    pod_flights: Arc<Flights<String, ContainerizerError>>,
    container_flights: Arc<Flights<String, ContainerizerError>>,
    events: broadcast::Sender<Event>,
    trash: trash::Trash,
}

impl Containerizer {
    /// Opens the database and reconciles it with what is really running. Blocking.
    pub fn open(opts: Options) -> Result<Arc<Self>, ContainerizerError> {
        let paths = Paths::new(&opts.root, &opts.run_root);
        paths.prepare().map_err(error::io("prepare", &opts.root))?;
        let db = db::Db::open(&paths.db())?;
        let (events, _) = broadcast::channel(1024);
        let trash = trash::Trash::new(paths.trash());
        let c = Containerizer {
            paths,
            db,
            store: opts.store,
            backend: opts.backend,
            binary: opts.binary,
            isolators: opts.isolators,
            cache: Mutex::default(),
            locks: locks::Locks::default(),
            pod_flights: Arc::default(),
            container_flights: Arc::default(),
            events,
            trash,
        };
        c.recover()?;
        if !crate::sys::process::has_sys_resource() {
            // Like containerd's restrict_oom_score_adj: containers still get kubelet's
            // value where it does not lower their score; said once, not per container.
            tracing::warn!("no CAP_SYS_RESOURCE: containers cannot get an oom_score_adj below the daemon's own");
        }
        Ok(Arc::new(c))
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every pod's id (for a door that resolves id prefixes).
    pub fn pod_ids(&self) -> Vec<String> {
        self.cache().pods.keys().cloned().collect()
    }

    /// Every container's id (for a door that resolves id prefixes).
    /// The ids of the containers in pods (what the CRI door may name).
    pub fn pod_container_ids(&self) -> Vec<String> {
        self.cache()
            .containers
            .values()
            .filter(|c| c.pod_id.is_some())
            .map(|c| c.id.clone())
            .collect()
    }

    /// Whether pods can be networked now; the reason when not (CRI `NetworkReady`).
    pub fn network_ready(&self) -> Result<(), String> {
        match self.isolators.get("network/cni") {
            Some(net) => net.ready(),
            None => Err("the network/cni isolator is not enabled".into()),
        }
    }

    /// The isolators, in the table's order (their Mesos names).
    pub fn isolators(&self) -> Vec<&'static str> {
        self.isolators.names()
    }

    fn emit(&self, container: &Container, kind: EventKind) {
        let _ = self.events.send(Event {
            container_id: container.id.clone(),
            pod_id: container.pod_id.clone(),
            kind,
            at_ns: now_ns(),
        });
    }

    /// Lifecycle events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }
}

/// The longest wait a client may ask for (StopContainer's grace period, ExecSync's
/// timeout): a year is "forever" for any real use, and anything longer could overflow
/// the clock arithmetic (`Instant + Duration` panics), which no request may make happen.
pub const MAX_TIMEOUT_SECS: i64 = 365 * 24 * 3600;

/// A client's timeout in seconds as a duration, clamped to [`MAX_TIMEOUT_SECS`]; `None`
/// for zero or less.
pub fn timeout(seconds: i64) -> Option<Duration> {
    (seconds > 0).then(|| Duration::from_secs(seconds.min(MAX_TIMEOUT_SECS) as u64))
}

pub fn now_ns() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
}

/// A fresh 64-hex-digit id, like containerd's and CRI-O's.
fn new_id() -> String {
    let a: u128 = rand::random();
    let b: u128 = rand::random();
    format!("{a:032x}{b:032x}")
}

/// Ids and names a request carries become file names; refuse what could escape or
/// confuse, whatever the door (each door adds its own rules on top).
fn validate_name(field: &'static str, value: &str) -> Result<(), ContainerizerError> {
    let bad = |reason| ContainerizerError::Invalid {
        field,
        value: value.to_string(),
        reason,
    };
    if value.is_empty() {
        return Err(bad("must not be empty"));
    }
    if value.contains('/') || value.contains('\0') {
        return Err(bad("must not contain '/' or NUL"));
    }
    if value == "." || value == ".." {
        return Err(bad("must not be . or .."));
    }
    if value.len() > 255 {
        return Err(bad("is longer than 255 bytes"));
    }
    Ok(())
}

/// A single flight's error, for each of its waiters.
fn flight_error(e: Arc<ContainerizerError>) -> ContainerizerError {
    Arc::try_unwrap(e).unwrap_or_else(|e| ContainerizerError::Start {
        id: String::new(),
        message: crate::error::chain(&*e),
    })
}

/// Runs blocking work (mounts, file trees, fsyncs) off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ContainerizerError> + Send + 'static,
) -> Result<T, ContainerizerError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ContainerizerError::Task(e.to_string()))?
}
