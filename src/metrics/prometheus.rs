//! The Prometheus families (`--metrics-listen`, served by `telemetry::http`), with
//! `prometheus-client`. Counters and histograms are bumped where the thing happens: the
//! doors' call wrappers, the store's blob reader and prune, the CNI library, the
//! containerizer's exit recording and its monitor watchers. Gauges of state (containers
//! and pods by state, the store's size) are read from the core when scraped
//! ([`Families::encode`]), so they cannot drift from it.
//!
//! One set per process (a static), because the store and the CNI library are built
//! before the `Core` and have no handle to it; the Mesos door's GET_METRICS keeps reading
//! `Counters`, which holds other facts (its launches and kills, the Mesos pull timer).
//!
//! Label values are never a client's string: CRI methods are the handlers' `&'static str`
//! names, codes the gRPC code set, Mesos calls the protobuf enum's names, HTTP statuses
//! numbers the server chose, states the core's enums.

use std::sync::atomic::AtomicU64;
use std::sync::LazyLock;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

use crate::containerizer::types::{ContainerState, PodState};
use crate::core::Core;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    pub method: &'static str,
    pub grpc_code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MethodLabels {
    pub method: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    pub state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TriggerLabels {
    pub trigger: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CniLabels {
    pub operation: &'static str,
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MesosLabels {
    pub call: &'static str,
    pub status: u16,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// Call latencies: 1 ms to about 65 s (kubelet's runtime deadline is 2 minutes).
fn call_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

/// Pull durations: 50 ms to about 27 minutes.
fn pull_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.05, 2.0, 16))
}

/// CNI plugin chains: 1 ms to about 33 s (the plugin timeout's default is 60 s).
fn cni_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

pub struct Families {
    registry: Registry,
    cri_calls: Family<CallLabels, Counter>,
    cri_latency: Histograms<MethodLabels>,
    mesos_calls: Family<MesosLabels, Counter>,
    pull_bytes: Counter,
    pull_duration: Histograms<ResultLabels>,
    pull_throughput: Gauge<f64, AtomicU64>,
    containers: Family<StateLabels, Gauge>,
    pods: Family<StateLabels, Gauge>,
    store_bytes: Gauge,
    store_layers: Gauge,
    store_images: Gauge,
    gc_runs: Family<TriggerLabels, Counter>,
    gc_freed_bytes: Counter,
    gc_removed_layers: Counter,
    monitors_alive: Gauge,
    oom_kills: Counter,
    cni_latency: Histograms<CniLabels>,
}

static FAMILIES: LazyLock<Families> = LazyLock::new(Families::new);

/// The process's families.
pub fn families() -> &'static Families {
    &FAMILIES
}

impl Families {
    fn new() -> Families {
        let f = Families {
            registry: Registry::with_prefix("ucr"),
            cri_calls: Family::default(),
            cri_latency: Family::new_with_constructor(call_buckets),
            mesos_calls: Family::default(),
            pull_bytes: Counter::default(),
            pull_duration: Family::new_with_constructor(pull_buckets),
            pull_throughput: Gauge::default(),
            containers: Family::default(),
            pods: Family::default(),
            store_bytes: Gauge::default(),
            store_layers: Gauge::default(),
            store_images: Gauge::default(),
            gc_runs: Family::default(),
            gc_freed_bytes: Counter::default(),
            gc_removed_layers: Counter::default(),
            monitors_alive: Gauge::default(),
            oom_kills: Counter::default(),
            cni_latency: Family::new_with_constructor(cni_buckets),
        };
        let mut r = Registry::with_prefix("ucr");
        // The metric handles share their values with their registered clones.
        r.register(
            "cri_requests",
            "CRI calls handled, by method and gRPC code (containerd's grpc_server_handled_total)",
            f.cri_calls.clone(),
        );
        r.register_with_unit(
            "cri_request_duration",
            "Time spent handling a CRI call, by method",
            Unit::Seconds,
            f.cri_latency.clone(),
        );
        r.register(
            "mesos_requests",
            "Mesos operator API v1 calls, by call type and HTTP status",
            f.mesos_calls.clone(),
        );
        r.register_with_unit(
            "image_pull",
            "Compressed layer bytes read from registries and archives",
            Unit::Bytes,
            f.pull_bytes.clone(),
        );
        r.register_with_unit(
            "image_pull_duration",
            "Image pulls (shared pulls once), by result",
            Unit::Seconds,
            f.pull_duration.clone(),
        );
        r.register(
            "image_pull_throughput_bytes_per_second",
            "Layer bytes read during the last pull that downloaded any, over its duration (concurrent pulls' bytes included)",
            f.pull_throughput.clone(),
        );
        r.register(
            "containers",
            "Containers by state (pods' and standalone)",
            f.containers.clone(),
        );
        r.register("pods", "Pod sandboxes by state", f.pods.clone());
        r.register_with_unit(
            "image_store_size",
            "Recorded size of the image store's layers and metadata",
            Unit::Bytes,
            f.store_bytes.clone(),
        );
        r.register(
            "image_store_layers",
            "Layers in the image store",
            f.store_layers.clone(),
        );
        r.register(
            "image_store_images",
            "Images in the image store",
            f.store_images.clone(),
        );
        r.register(
            "image_gc_runs",
            "Image prunes that ran, by trigger (manual: PruneImages/PRUNE_IMAGES; disk: the GC watcher)",
            f.gc_runs.clone(),
        );
        r.register_with_unit(
            "image_gc_freed",
            "Bytes of layers removed by prunes",
            Unit::Bytes,
            f.gc_freed_bytes.clone(),
        );
        r.register(
            "image_gc_removed_layers",
            "Layers removed by prunes",
            f.gc_removed_layers.clone(),
        );
        r.register(
            "monitors_alive",
            "Per-container monitor processes the daemon is watching",
            f.monitors_alive.clone(),
        );
        r.register(
            "container_oom_kills",
            "Containers whose end was recorded as OOMKilled",
            f.oom_kills.clone(),
        );
        r.register_with_unit(
            "cni_operation_duration",
            "CNI plugin chain runs (ADD, DEL), by operation and result",
            Unit::Seconds,
            f.cni_latency.clone(),
        );
        Families { registry: r, ..f }
    }

    pub fn cri_call(&self, method: &'static str, grpc_code: &'static str, took: Duration) {
        self.cri_calls
            .get_or_create(&CallLabels { method, grpc_code })
            .inc();
        self.cri_latency
            .get_or_create(&MethodLabels { method })
            .observe(took.as_secs_f64());
    }

    pub fn mesos_call(&self, call: &'static str, status: u16) {
        self.mesos_calls
            .get_or_create(&MesosLabels { call, status })
            .inc();
    }

    /// Blob bytes as they are read (counted as they arrive, so a scrape during a pull
    /// sees it move).
    pub fn pulled_bytes(&self, n: u64) {
        self.pull_bytes.inc_by(n);
    }

    pub fn pull_bytes_so_far(&self) -> u64 {
        self.pull_bytes.get()
    }

    /// One pull ended; `read` is what the byte counter moved by meanwhile.
    pub fn pull_done(&self, ok: bool, took: Duration, read: u64) {
        let result = if ok { "success" } else { "failure" };
        self.pull_duration
            .get_or_create(&ResultLabels { result })
            .observe(took.as_secs_f64());
        if ok && read > 0 && !took.is_zero() {
            self.pull_throughput.set(read as f64 / took.as_secs_f64());
        }
    }

    pub fn gc_run(&self, manual: bool, layers: u64, bytes: u64) {
        let trigger = if manual { "manual" } else { "disk" };
        self.gc_runs.get_or_create(&TriggerLabels { trigger }).inc();
        self.gc_removed_layers.inc_by(layers);
        self.gc_freed_bytes.inc_by(bytes);
    }

    pub fn oom_killed(&self) {
        self.oom_kills.inc();
    }

    /// A monitor being watched; the count goes down when the guard drops (its exit seen).
    pub fn monitor_watched(&self) -> MonitorGuard {
        self.monitors_alive.inc();
        MonitorGuard(())
    }

    pub fn cni(&self, operation: &'static str, ok: bool, took: Duration) {
        let result = if ok { "success" } else { "failure" };
        self.cni_latency
            .get_or_create(&CniLabels { operation, result })
            .observe(took.as_secs_f64());
    }

    /// Reads the state gauges from `core`, then the whole text exposition (OpenMetrics).
    /// Blocking: the store's database is read.
    pub fn encode(&self, core: &Core) -> Result<String, std::fmt::Error> {
        self.read_state(core);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }

    fn read_state(&self, core: &Core) {
        let containers = core.containerizer.list_containers(&Default::default());
        for state in CONTAINER_STATES {
            let n = containers.iter().filter(|c| c.state == state).count();
            self.containers
                .get_or_create(&StateLabels {
                    state: container_state(state),
                })
                .set(n as i64);
        }
        let pods = core.containerizer.list_pods(&Default::default());
        for state in [PodState::Ready, PodState::NotReady] {
            let n = pods.iter().filter(|p| p.state == state).count();
            let state = match state {
                PodState::Ready => "ready",
                PodState::NotReady => "notready",
            };
            self.pods
                .get_or_create(&StateLabels { state })
                .set(n as i64);
        }
        match core.store.usage() {
            Ok(u) => {
                self.store_bytes
                    .set(i64::try_from(u.used_bytes).unwrap_or(i64::MAX));
            }
            Err(e) => tracing::warn!(error = %crate::error::chain(&e), "metrics: store usage"),
        }
        match core.store.counts() {
            Ok((images, layers)) => {
                self.store_images.set(images as i64);
                self.store_layers.set(layers as i64);
            }
            Err(e) => tracing::warn!(error = %crate::error::chain(&e), "metrics: store counts"),
        }
    }
}

const CONTAINER_STATES: [ContainerState; 5] = [
    ContainerState::Created,
    ContainerState::Starting,
    ContainerState::Running,
    ContainerState::Exited,
    ContainerState::Unknown,
];

fn container_state(s: ContainerState) -> &'static str {
    match s {
        ContainerState::Created => "created",
        ContainerState::Starting => "starting",
        ContainerState::Running => "running",
        ContainerState::Exited => "exited",
        ContainerState::Unknown => "unknown",
    }
}

/// Held while a monitor is known to be alive.
#[must_use]
pub struct MonitorGuard(());

impl Drop for MonitorGuard {
    fn drop(&mut self) {
        families().monitors_alive.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_types_and_labels_in_the_exposition() {
        let f = Families::new();
        f.cri_call("RunPodSandbox", "OK", Duration::from_millis(3));
        f.mesos_call("GET_HEALTH", 200);
        f.cni("ADD", true, Duration::from_millis(20));
        f.gc_run(true, 2, 4096);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &f.registry).expect("encode");
        for line in [
            "# TYPE ucr_cri_requests counter",
            "ucr_cri_requests_total{method=\"RunPodSandbox\",grpc_code=\"OK\"} 1",
            "# TYPE ucr_cri_request_duration_seconds histogram",
            "ucr_cri_request_duration_seconds_bucket{le=\"0.004\",method=\"RunPodSandbox\"} 1",
            "ucr_mesos_requests_total{call=\"GET_HEALTH\",status=\"200\"} 1",
            "ucr_cni_operation_duration_seconds_count{operation=\"ADD\",result=\"success\"} 1",
            "ucr_image_gc_runs_total{trigger=\"manual\"} 1",
            "ucr_image_gc_freed_bytes_total 4096",
        ] {
            assert!(out.lines().any(|l| l == line), "{line} not in\n{out}");
        }
    }
}
