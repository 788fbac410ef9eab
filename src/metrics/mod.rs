//! The daemon's own metrics, in one place both doors' exporters read: counters bumped
//! where things happen (`Counters`), and gauges read from the node (`system`). The Mesos
//! door serves them under Mesos's names (`mesos::metrics`: GET_METRICS and
//! `/metrics/snapshot`). The Prometheus families (`prometheus`) count other facts, where
//! they happen deep in the core, and read state gauges from the core when scraped.

pub mod prometheus;
pub mod system;
pub mod timer;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

/// What the daemon counts. Each counter only goes up; names are Mesos's where Mesos has
/// the metric (`slave/…`, `containerizer/mesos/…`), else in its style under `ucr/…`.
#[derive(Debug)]
pub struct Counters {
    started: Instant,
    started_at: SystemTime,
    /// How long recovery took at start, once it is done (Mesos
    /// `slave/recovery_time_secs`).
    recovery: Mutex<Option<Duration>>,
    /// Launches that failed after the request was accepted: pull, prepare, start
    /// (Mesos `slave/container_launch_errors`).
    pub container_launch_errors: AtomicU64,
    /// Containers that could not be destroyed (Mesos
    /// `containerizer/mesos/container_destroy_errors`).
    pub container_destroy_errors: AtomicU64,
    /// Standalone containers launched through the Mesos door.
    pub containers_launched: AtomicU64,
    /// KILL_CONTAINER calls that signalled a container.
    pub containers_killed: AtomicU64,
    /// Image pulls for the Mesos door's launches, failed ones too (Mesos's docker
    /// store timer `containerizer/mesos/provisioner/docker_store/image_pull`, over the
    /// last hour as there).
    pub image_pull: timer::Timer,
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            started: Instant::now(),
            started_at: SystemTime::now(),
            recovery: Mutex::new(None),
            container_launch_errors: AtomicU64::new(0),
            container_destroy_errors: AtomicU64::new(0),
            containers_launched: AtomicU64::new(0),
            containers_killed: AtomicU64::new(0),
            image_pull: timer::Timer::new(
                "containerizer/mesos/provisioner/docker_store/image_pull",
                Duration::from_secs(3600),
            ),
        }
    }
}

/// Adds one to a counter.
pub fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Counters {
    /// When the daemon started (Mesos's `start_time`, seconds since the epoch).
    pub fn start_time_secs(&self) -> f64 {
        self.started_at
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or_default()
    }

    pub fn recovered(&self, took: Duration) {
        if let Ok(mut r) = self.recovery.lock() {
            *r = Some(took);
        }
    }

    /// Every counter, timer and the uptime, by name.
    pub fn snapshot(&self) -> Vec<(String, f64)> {
        let n = |c: &AtomicU64| c.load(Ordering::Relaxed) as f64;
        let mut out = vec![
            ("slave/uptime_secs", self.started.elapsed().as_secs_f64()),
            (
                "slave/container_launch_errors",
                n(&self.container_launch_errors),
            ),
            (
                "containerizer/mesos/container_destroy_errors",
                n(&self.container_destroy_errors),
            ),
            (
                "ucr/mesos/containers_launched",
                n(&self.containers_launched),
            ),
            ("ucr/mesos/containers_killed", n(&self.containers_killed)),
        ];
        // Only once known, as Mesos adds it after recovery.
        if let Some(took) = self.recovery.lock().ok().and_then(|r| *r) {
            out.push(("slave/recovery_time_secs", took.as_secs_f64()));
        }
        let mut out: Vec<(String, f64)> =
            out.into_iter().map(|(n, v)| (n.to_string(), v)).collect();
        out.extend(self.image_pull.snapshot());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_move_and_uptime_grows() {
        let c = Counters::default();
        let value = |name: &str| {
            c.snapshot()
                .into_iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v)
        };
        assert_eq!(value("slave/container_launch_errors"), Some(0.0));
        bump(&c.container_launch_errors);
        bump(&c.container_launch_errors);
        assert_eq!(value("slave/container_launch_errors"), Some(2.0));
        assert_eq!(value("slave/recovery_time_secs"), None);
        c.recovered(Duration::from_millis(1500));
        assert_eq!(value("slave/recovery_time_secs"), Some(1.5));
        let before = value("slave/uptime_secs").expect("uptime");
        std::thread::sleep(Duration::from_millis(5));
        assert!(value("slave/uptime_secs").expect("uptime") > before);
        assert!(c.start_time_secs() > 1.7e9);
    }
}
