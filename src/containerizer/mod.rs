//! The containerizer: pod sandboxes and containers, their lifecycle state machine,
//! persistence and recovery. The front doors (CRI now, the Mesos operator API later) call
//! it with plain Rust types (`types`); it drives the provisioner (rootfs backends), the
//! launcher (through one monitor process per container) and the isolators.
//!
//! - `pod`: RunPodSandbox/Stop/Remove: pinned namespaces, pod files, /dev/shm;
//! - `container`: Create/Start/Stop/Remove/Status; `exec`: ExecSync;
//! - `recover`: what a restarted daemon finds; `db`, `paths`, `types`, `error`.
//!
//! Concurrency: every change to one pod or container holds that id's async lock; the
//! in-memory maps are a cache of the database, updated after each commit. Creation is
//! single-flight by name, so kubelet's retries of a slow RunPodSandbox/CreateContainer get
//! the first call's result instead of "name is reserved".

mod container;
mod db;
pub mod error;
mod exec;
pub mod network;
pub mod paths;
mod pod;
pub mod pod_files;
mod recover;
mod sysctl;
pub mod types;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::broadcast;

use crate::isolators::network::cni::Cni;
use crate::provisioner::backend::Backend;
use crate::provisioner::store::flight::Flights;
use crate::provisioner::store::Store;
pub use error::ContainerizerError;
use paths::Paths;
use types::{Container, Event, EventKind, Pod};

pub struct Options {
    pub root: PathBuf,
    pub run_root: PathBuf,
    pub store: Arc<Store>,
    pub backend: Box<dyn Backend>,
    /// The `ucr` binary, re-executed as `ucr monitor` and `ucr exec`.
    pub binary: PathBuf,
    /// The pods' networks (see `network`).
    pub network: Cni,
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
    network: Cni,
    cache: Mutex<Cache>,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    pod_flights: Arc<Flights<String, ContainerizerError>>,
    container_flights: Arc<Flights<String, ContainerizerError>>,
    events: broadcast::Sender<Event>,
    /// Makes recording a container's exit atomic (see `refreshed`).
    exits: Mutex<()>,
}

impl Containerizer {
    /// Opens the database and reconciles it with what is really running.
    pub fn open(opts: Options) -> Result<Arc<Self>, ContainerizerError> {
        let paths = Paths::new(&opts.root, &opts.run_root);
        paths.prepare().map_err(error::io("prepare", &opts.root))?;
        let db = db::Db::open(&paths.db())?;
        let (events, _) = broadcast::channel(1024);
        let c = Containerizer {
            paths,
            db,
            store: opts.store,
            backend: opts.backend,
            binary: opts.binary,
            network: opts.network,
            cache: Mutex::default(),
            locks: Mutex::default(),
            pod_flights: Arc::default(),
            container_flights: Arc::default(),
            events,
            exits: Mutex::new(()),
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

    /// The async lock serialising changes to one pod or container.
    fn lock_for(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.locks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(id.to_string())
            .or_default()
            .clone()
    }

    fn forget_lock(&self, id: &str) {
        self.locks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }

    /// Full id for an id or a unique prefix of one (crictl passes short ids).
    fn resolve_id<'a>(
        what: &'static str,
        ids: impl Iterator<Item = &'a String>,
        wanted: &str,
    ) -> Result<Option<String>, ContainerizerError> {
        if wanted.is_empty() {
            return Err(ContainerizerError::Invalid {
                field: "id",
                value: String::new(),
                reason: "must not be empty",
            });
        }
        let matches: Vec<&String> = ids.filter(|id| id.starts_with(wanted)).collect();
        if let Some(exact) = matches.iter().find(|id| id.as_str() == wanted) {
            return Ok(Some((*exact).clone()));
        }
        match matches.len() {
            0 => Ok(None),
            1 => Ok(Some(matches[0].clone())),
            count => Err(ContainerizerError::Ambiguous {
                what,
                prefix: wanted.to_string(),
                count,
            }),
        }
    }

    fn pod_id(&self, wanted: &str) -> Result<Option<String>, ContainerizerError> {
        let cache = self.cache();
        Self::resolve_id("pod sandbox", cache.pods.keys(), wanted)
    }

    fn container_id(&self, wanted: &str) -> Result<Option<String>, ContainerizerError> {
        let cache = self.cache();
        Self::resolve_id("container", cache.containers.keys(), wanted)
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

/// Names, ids and other path-like strings a request carries become file names; refuse
/// what could escape or confuse.
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
    Ok(())
}
