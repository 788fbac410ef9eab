//! The stats calls' messages: the containerizer's `ContainerStats`/`PodStats` (the
//! kernel's counters, as the isolators read them) in the CRI's shapes, and the
//! cAdvisor-named metrics kubelet asks for when it takes its stats from the runtime.

use std::collections::HashMap;
use std::sync::Mutex;

use k8s_cri::v1 as cri;

use crate::containerizer::types::Labels;
use crate::containerizer::{ContainerStats, PodStats};
use crate::isolators::Usage;

fn to_map(labels: &Labels) -> HashMap<String, String> {
    labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn u64v(v: u64) -> Option<cri::UInt64Value> {
    Some(cri::UInt64Value { value: v })
}

/// The previous CPU reading of each container and pod, for `usage_nano_cores`: the rate
/// between two calls, as kubelet computes it between its own. The first call for one has
/// no previous reading; it gets the average since the container started, a real figure
/// rather than a zero.
#[derive(Default)]
pub struct CpuRates {
    last: Mutex<HashMap<String, (i64, u64)>>,
}

impl CpuRates {
    fn nano_cores(&self, key: &str, at_ns: i64, used_ns: u64, started_ns: i64) -> u64 {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let rate = match last.get(key) {
            Some((t, u)) if at_ns > *t && used_ns >= *u => {
                (used_ns - u) as u128 * 1_000_000_000 / (at_ns - t) as u128
            }
            _ if started_ns > 0 && at_ns > started_ns => {
                used_ns as u128 * 1_000_000_000 / (at_ns - started_ns) as u128
            }
            _ => 0,
        };
        last.insert(key.to_string(), (at_ns, used_ns));
        rate.min(u128::from(u64::MAX)) as u64
    }

    /// Forgets readings of what no longer exists.
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        last.retain(|k, _| keep(k));
    }
}

fn cpu(rates: &CpuRates, key: &str, u: &Usage, at: i64, started: i64) -> Option<cri::CpuUsage> {
    let used = u.cpu_ns?;
    Some(cri::CpuUsage {
        timestamp: at,
        usage_core_nano_seconds: u64v(used),
        usage_nano_cores: u64v(rates.nano_cores(key, at, used, started)),
    })
}

fn memory(u: &Usage, at: i64) -> Option<cri::MemoryUsage> {
    let m = u.memory.as_ref()?;
    Some(cri::MemoryUsage {
        timestamp: at,
        working_set_bytes: u64v(m.working_set),
        available_bytes: m
            .limit
            .map(|l| l.saturating_sub(m.working_set))
            .and_then(u64v),
        usage_bytes: u64v(m.usage),
        rss_bytes: u64v(m.rss),
        page_faults: u64v(m.page_faults),
        major_page_faults: u64v(m.major_page_faults),
    })
}

pub fn container(rates: &CpuRates, s: &ContainerStats) -> cri::ContainerStats {
    let c = &s.container;
    let at = s.timestamp_ns;
    cri::ContainerStats {
        attributes: Some(cri::ContainerAttributes {
            id: c.id.clone(),
            metadata: Some(cri::ContainerMetadata {
                name: c.config.metadata.name.clone(),
                attempt: c.config.metadata.attempt,
            }),
            labels: to_map(&c.config.labels),
            annotations: to_map(&c.config.annotations),
        }),
        cpu: cpu(rates, &c.id, &s.usage, at, c.started_at_ns),
        memory: memory(&s.usage, at),
        writable_layer: s.usage.disk.map(|d| cri::FilesystemUsage {
            timestamp: at,
            fs_id: None,
            used_bytes: u64v(d.bytes),
            inodes_used: u64v(d.inodes),
        }),
        swap: None,
    }
}

fn interface(i: &crate::isolators::InterfaceUsage) -> cri::NetworkInterfaceUsage {
    cri::NetworkInterfaceUsage {
        name: i.name.clone(),
        rx_bytes: u64v(i.rx_bytes),
        rx_errors: u64v(i.rx_errors),
        tx_bytes: u64v(i.tx_bytes),
        tx_errors: u64v(i.tx_errors),
    }
}

pub fn pod(rates: &CpuRates, s: &PodStats) -> cri::PodSandboxStats {
    let p = &s.pod;
    let at = s.timestamp_ns;
    // The pod's default interface is the one CNI made (`eth0`), else the first.
    let default = s
        .usage
        .network
        .iter()
        .find(|i| i.name == "eth0")
        .or_else(|| s.usage.network.first());
    cri::PodSandboxStats {
        attributes: Some(cri::PodSandboxAttributes {
            id: p.id.clone(),
            metadata: Some(cri::PodSandboxMetadata {
                name: p.config.metadata.name.clone(),
                uid: p.config.metadata.uid.clone(),
                namespace: p.config.metadata.namespace.clone(),
                attempt: p.config.metadata.attempt,
            }),
            labels: to_map(&p.config.labels),
            annotations: to_map(&p.config.annotations),
        }),
        linux: Some(cri::LinuxPodSandboxStats {
            cpu: cpu(rates, &p.id, &s.usage, at, p.created_at_ns),
            memory: memory(&s.usage, at),
            network: default.map(|d| cri::NetworkUsage {
                timestamp: at,
                default_interface: Some(interface(d)),
                interfaces: s.usage.network.iter().map(interface).collect(),
            }),
            process: s.usage.processes.map(|n| cri::ProcessUsage {
                timestamp: at,
                process_count: u64v(n),
            }),
            containers: s.containers.iter().map(|c| container(rates, c)).collect(),
        }),
        windows: None,
    }
}

/// The labels every container metric carries, before a metric's own.
const BASE: [&str; 3] = ["id", "name", "image"];

struct Def {
    name: &'static str,
    help: &'static str,
    counter: bool,
    /// Per interface.
    network: bool,
}

/// cAdvisor's names and meanings, so kubelet's `/metrics/cadvisor` reads the same with
/// stats from ucr as with cAdvisor.
const METRICS: &[Def] = &[
    Def {
        name: "container_cpu_usage_seconds_total",
        help: "Cumulative cpu time consumed in seconds.",
        counter: true,
        network: false,
    },
    Def {
        name: "container_memory_usage_bytes",
        help:
            "Current memory usage in bytes, including all memory regardless of when it was accessed",
        counter: false,
        network: false,
    },
    Def {
        name: "container_memory_working_set_bytes",
        help: "Current working set in bytes.",
        counter: false,
        network: false,
    },
    Def {
        name: "container_memory_rss",
        help: "Size of RSS in bytes.",
        counter: false,
        network: false,
    },
    Def {
        name: "container_spec_memory_limit_bytes",
        help: "Memory limit for the container.",
        counter: false,
        network: false,
    },
    Def {
        name: "container_processes",
        help: "Number of processes running inside the container.",
        counter: false,
        network: false,
    },
    Def {
        name: "container_fs_usage_bytes",
        help: "Number of bytes that are consumed by the container on this filesystem.",
        counter: false,
        network: false,
    },
    Def {
        name: "container_fs_inodes_total",
        help: "Number of Inodes",
        counter: false,
        network: false,
    },
    Def {
        name: "container_network_receive_bytes_total",
        help: "Cumulative count of bytes received",
        counter: true,
        network: true,
    },
    Def {
        name: "container_network_receive_errors_total",
        help: "Cumulative count of errors encountered while receiving",
        counter: true,
        network: true,
    },
    Def {
        name: "container_network_transmit_bytes_total",
        help: "Cumulative count of bytes transmitted",
        counter: true,
        network: true,
    },
    Def {
        name: "container_network_transmit_errors_total",
        help: "Cumulative count of errors encountered while transmitting",
        counter: true,
        network: true,
    },
];

pub fn descriptors() -> Vec<cri::MetricDescriptor> {
    METRICS
        .iter()
        .map(|d| {
            let mut keys: Vec<String> = BASE.iter().map(|k| k.to_string()).collect();
            if d.network {
                keys.push("interface".into());
            }
            cri::MetricDescriptor {
                name: d.name.into(),
                help: d.help.into(),
                label_keys: keys,
            }
        })
        .collect()
}

fn metric(name: &str, labels: &[String], value: u64) -> cri::Metric {
    let d = METRICS.iter().find(|d| d.name == name);
    cri::Metric {
        name: name.into(),
        // Gathered live.
        timestamp: 0,
        metric_type: if d.is_some_and(|d| d.counter) {
            cri::MetricType::Counter as i32
        } else {
            cri::MetricType::Gauge as i32
        },
        label_values: labels.to_vec(),
        value: u64v(value),
    }
}

/// One container's (or the pod's own) metrics from its usage. `labels` are the values
/// of [`BASE`].
fn metrics_of(u: &Usage, labels: &[String]) -> Vec<cri::Metric> {
    let mut out = Vec::new();
    if let Some(ns) = u.cpu_ns {
        // The CRI's value is an integer: whole seconds.
        out.push(metric(
            "container_cpu_usage_seconds_total",
            labels,
            ns / 1_000_000_000,
        ));
    }
    if let Some(m) = &u.memory {
        out.push(metric("container_memory_usage_bytes", labels, m.usage));
        out.push(metric(
            "container_memory_working_set_bytes",
            labels,
            m.working_set,
        ));
        out.push(metric("container_memory_rss", labels, m.rss));
        out.push(metric(
            "container_spec_memory_limit_bytes",
            labels,
            m.limit.unwrap_or(0),
        ));
    }
    if let Some(n) = u.processes {
        out.push(metric("container_processes", labels, n));
    }
    if let Some(d) = u.disk {
        out.push(metric("container_fs_usage_bytes", labels, d.bytes));
        out.push(metric("container_fs_inodes_total", labels, d.inodes));
    }
    for i in &u.network {
        let mut l = labels.to_vec();
        l.push(i.name.clone());
        out.push(metric(
            "container_network_receive_bytes_total",
            &l,
            i.rx_bytes,
        ));
        out.push(metric(
            "container_network_receive_errors_total",
            &l,
            i.rx_errors,
        ));
        out.push(metric(
            "container_network_transmit_bytes_total",
            &l,
            i.tx_bytes,
        ));
        out.push(metric(
            "container_network_transmit_errors_total",
            &l,
            i.tx_errors,
        ));
    }
    out
}

pub fn pod_metrics(s: &PodStats) -> cri::PodSandboxMetrics {
    let pod_labels = [
        s.pod.id.clone(),
        s.pod.config.metadata.name.clone(),
        String::new(),
    ];
    cri::PodSandboxMetrics {
        pod_sandbox_id: s.pod.id.clone(),
        metrics: metrics_of(&s.usage, &pod_labels),
        container_metrics: s
            .containers
            .iter()
            .map(|c| cri::ContainerMetrics {
                container_id: c.container.id.clone(),
                metrics: metrics_of(
                    &c.usage,
                    &[
                        c.container.id.clone(),
                        c.container.config.metadata.name.clone(),
                        c.container.config.image.clone(),
                    ],
                ),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isolators::{InterfaceUsage, MemoryUsage};

    #[test]
    fn nano_cores_is_the_rate_between_readings_and_the_average_at_first() {
        let r = CpuRates::default();
        // First reading: 1 s of CPU over the 2 s since the start: half a core.
        assert_eq!(
            r.nano_cores("c", 3_000_000_000, 1_000_000_000, 1_000_000_000),
            500_000_000
        );
        // Then 2 s of CPU in 1 s: two cores.
        assert_eq!(
            r.nano_cores("c", 4_000_000_000, 3_000_000_000, 1_000_000_000),
            2_000_000_000
        );
        // A reading at the same instant has no rate to give but the average.
        assert_eq!(r.nano_cores("c", 4_000_000_000, 3_000_000_000, 0), 0);
    }

    #[test]
    fn every_metric_uses_a_described_name_and_label_count() {
        let u = Usage {
            cpu_ns: Some(2_500_000_000),
            cpu_user_ns: None,
            cpu_system_ns: None,
            cpu_throttling: None,
            memory: Some(MemoryUsage {
                usage: 10,
                working_set: 8,
                rss: 5,
                page_faults: 1,
                major_page_faults: 0,
                limit: Some(100),
            }),
            processes: Some(3),
            disk: Some(crate::isolators::DiskUsage {
                bytes: 4096,
                inodes: 2,
            }),
            network: vec![InterfaceUsage {
                name: "eth0".into(),
                rx_bytes: 7,
                ..Default::default()
            }],
        };
        let ds = descriptors();
        let labels = ["id".to_string(), "n".into(), "img".into()];
        let ms = metrics_of(&u, &labels);
        assert_eq!(ms.len(), METRICS.len(), "one of each for this usage");
        for m in &ms {
            let d = ds.iter().find(|d| d.name == m.name).expect("described");
            assert_eq!(d.label_keys.len(), m.label_values.len(), "{}", m.name);
        }
        let cpu = ms
            .iter()
            .find(|m| m.name == "container_cpu_usage_seconds_total")
            .expect("cpu");
        assert_eq!(cpu.value.as_ref().map(|v| v.value), Some(2));
        assert_eq!(cpu.metric_type, cri::MetricType::Counter as i32);
    }
}
