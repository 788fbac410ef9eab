//! The disk watcher: measures each registered container's directories with [`du`] every
//! interval (Mesos's `--container_disk_watch_interval`, 15 s by default), keeps the last
//! figure for the CRI stats and `usage`, and reports a container whose usage went over
//! its limit (for `disk/du` to kill it when `--enforce-container-disk-quota` is on, with
//! Mesos's reason, [`OverLimit::message`]).
//!
//! It runs on a thread of its own, not on the tokio runtime: a measurement is a long run
//! of blocking syscalls (seconds for a big tree), which would hold a `spawn_blocking`
//! worker the isolators' hooks need, and a dedicated thread measures one container at a
//! time, as Mesos does, so the watcher never loads the disk with parallel walks.
//!
//! Each container is measured at most once per interval; a new one is measured at once,
//! so its first figure does not wait a whole interval.
//!
//! [`du`]: super

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{measure, DiskUsage};

/// Mesos's default `--container_disk_watch_interval`.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(15);

/// A container whose measured usage went over its limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverLimit {
    pub id: String,
    pub usage: DiskUsage,
    pub limit: u64,
}

impl OverLimit {
    /// The reason Mesos's `disk/du` gives when it kills a task for this
    /// (`REASON_CONTAINER_LIMITATION_DISK`): "Disk usage (3MB) exceeds quota (2MB)".
    pub fn message(&self) -> String {
        format!(
            "Disk usage ({}) exceeds quota ({})",
            mesos_bytes(self.usage.bytes),
            mesos_bytes(self.limit)
        )
    }
}

/// Bytes as Mesos's stout prints them: the largest unit (B, KB, MB, GB, TB; powers of
/// 1024) that loses nothing, so "1536KB", not "1.5MB".
pub fn mesos_bytes(bytes: u64) -> String {
    let mut value = bytes;
    for unit in ["B", "KB", "MB", "GB"] {
        if value == 0 || !value.is_multiple_of(1024) {
            return format!("{value}{unit}");
        }
        value /= 1024;
    }
    format!("{value}TB")
}

/// Measures registered containers in the background; stops (and joins its thread) when
/// dropped.
pub struct Watcher {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    state: Mutex<State>,
    /// Signalled on registration (a new container is due now) and on stop.
    wake: Condvar,
    interval: Duration,
}

#[derive(Default)]
struct State {
    containers: HashMap<String, Watched>,
    stopping: bool,
    /// Bumped on every (re-)registration and limit change, so a measurement started
    /// before one is not stored after it.
    generation: u64,
}

struct Watched {
    dirs: Vec<PathBuf>,
    limit: Option<u64>,
    last: Option<(DiskUsage, Instant)>,
    next_due: Instant,
    generation: u64,
    /// Reported over its limit already: the isolator acts on the first report.
    reported: bool,
}

impl Watcher {
    /// Starts the watcher thread. `on_over_limit` runs on it, once per registration or
    /// limit change, when a measurement finds the container's bytes over its limit; it
    /// should hand the report over (to a channel) rather than act itself.
    pub fn start(
        interval: Duration,
        on_over_limit: impl Fn(OverLimit) + Send + 'static,
    ) -> io::Result<Watcher> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            interval,
        });
        let thread = std::thread::Builder::new()
            .name("ucr-disk-watch".into())
            .spawn({
                let shared = Arc::clone(&shared);
                move || run(&shared, &on_over_limit)
            })?;
        Ok(Watcher {
            shared,
            thread: Some(thread),
        })
    }

    /// Watches container `id`'s `dirs` (measured together: see [`measure`]), replacing
    /// what was registered under `id` before. `limit`: bytes over which it is reported.
    pub fn register(&self, id: &str, dirs: Vec<PathBuf>, limit: Option<u64>) {
        let mut state = self.shared.lock();
        state.generation += 1;
        let watched = Watched {
            dirs,
            limit,
            last: None,
            next_due: Instant::now(),
            generation: state.generation,
            reported: false,
        };
        state.containers.insert(id.to_string(), watched);
        drop(state);
        self.shared.wake.notify_all();
    }

    /// Changes `id`'s limit (the isolator's `update`); a container over the new limit
    /// is reported again. Returns whether `id` is registered.
    pub fn set_limit(&self, id: &str, limit: Option<u64>) -> bool {
        let mut state = self.shared.lock();
        state.generation += 1;
        let generation = state.generation;
        let Some(watched) = state.containers.get_mut(id) else {
            return false;
        };
        watched.limit = limit;
        watched.reported = false;
        watched.generation = generation;
        true
    }

    /// Stops watching `id` and forgets its figure.
    pub fn unregister(&self, id: &str) {
        self.shared.lock().containers.remove(id);
    }

    /// The last figure measured for `id`, and when it was taken.
    pub fn last(&self, id: &str) -> Option<(DiskUsage, Instant)> {
        self.shared.lock().containers.get(id).and_then(|w| w.last)
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.shared.lock().stopping = true;
        self.shared.wake.notify_all();
        if let Some(thread) = self.thread.take() {
            // A measurement under way finishes first; the thread checks between
            // containers.
            let _ = thread.join();
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent whatever panicked while holding the lock (each
        // change is one assignment), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn run(shared: &Shared, on_over_limit: &dyn Fn(OverLimit)) {
    let mut state = shared.lock();
    loop {
        if state.stopping {
            return;
        }
        let now = Instant::now();
        let due = state
            .containers
            .iter()
            .filter(|(_, w)| w.next_due <= now)
            .min_by_key(|(_, w)| w.next_due)
            .map(|(id, w)| (id.clone(), w.dirs.clone(), w.generation));
        let Some((id, dirs, generation)) = due else {
            let next = state.containers.values().map(|w| w.next_due).min();
            let wait = next.map_or(shared.interval, |t| t.saturating_duration_since(now));
            state = shared
                .wake
                .wait_timeout(state, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
            continue;
        };
        drop(state);
        let report = measure_one(shared, &id, &dirs, generation);
        if let Some(report) = report {
            on_over_limit(report);
        }
        state = shared.lock();
    }
}

/// Measures one container without holding the lock, then stores the figure if the
/// registration it was taken for still stands. Returns a report to make.
fn measure_one(shared: &Shared, id: &str, dirs: &[PathBuf], generation: u64) -> Option<OverLimit> {
    let refs: Vec<&Path> = dirs.iter().map(PathBuf::as_path).collect();
    let result = measure(&refs);
    let now = Instant::now();
    let mut state = shared.lock();
    let watched = state.containers.get_mut(id)?;
    if watched.generation != generation {
        // Re-registered or given a new limit meanwhile: measure again, now.
        watched.next_due = now;
        return None;
    }
    // Due again one interval after this measurement, success or not: a failing one
    // (a directory removed under a container being torn down) is not retried in a loop.
    watched.next_due = now + shared.interval;
    let usage = match result {
        Ok(usage) => usage,
        Err(e) => {
            tracing::warn!(container = id, "disk usage not measured: {e}");
            return None;
        }
    };
    watched.last = Some((usage, now));
    let limit = watched.limit?;
    if usage.bytes > limit && !watched.reported {
        watched.reported = true;
        return Some(OverLimit {
            id: id.to_string(),
            usage,
            limit,
        });
    }
    None
}

#[cfg(test)]
#[path = "watch_tests.rs"]
mod tests;
