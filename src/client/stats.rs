//! `ucr stats`: containers' CPU, memory and writable-layer use, from the CRI's
//! ListContainerStats.

use std::collections::HashMap;

use k8s_cri::v1 as cri;
use serde::Serialize;

use super::output::{self, bytes, short_id, Table};
use super::{resolve, ClientError, Conn};
use crate::config::StatsFlags;

/// What `ps --stats` shows of a container.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    pub cpu_nano_cores: Option<u64>,
    pub memory_bytes: Option<u64>,
}

#[derive(Debug, Serialize)]
struct StatsRow {
    id: String,
    name: String,
    pod_id: String,
    cpu_nano_cores: Option<u64>,
    memory_working_set_bytes: Option<u64>,
    disk_used_bytes: Option<u64>,
}

/// Nanocores as a percentage of one CPU, as docker and crictl print it.
pub fn percent(nano_cores: u64) -> String {
    format!("{:.2}", nano_cores as f64 / 1e7)
}

async fn list(conn: &Conn) -> Result<Vec<cri::ContainerStats>, ClientError> {
    Ok(conn
        .runtime()
        .list_container_stats(cri::ListContainerStatsRequest { filter: None })
        .await
        .map_err(ClientError::call("ListContainerStats"))?
        .into_inner()
        .stats)
}

/// The CPU rate is measured between two readings: the first look at a container has
/// none yet, so look again a moment later, as crictl does.
async fn sampled(conn: &Conn) -> Result<Vec<cri::ContainerStats>, ClientError> {
    let first = list(conn).await?;
    let missing = first.iter().any(|s| {
        s.cpu
            .as_ref()
            .and_then(|c| c.usage_nano_cores.as_ref())
            .is_none()
    });
    if !missing {
        return Ok(first);
    }
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    list(conn).await
}

fn id_of(s: &cri::ContainerStats) -> &str {
    s.attributes.as_ref().map_or("", |a| a.id.as_str())
}

pub async fn usage(conn: &Conn) -> Result<HashMap<String, Usage>, ClientError> {
    Ok(sampled(conn)
        .await?
        .iter()
        .map(|s| {
            let usage = Usage {
                cpu_nano_cores: s
                    .cpu
                    .as_ref()
                    .and_then(|c| c.usage_nano_cores.as_ref())
                    .map(|v| v.value),
                memory_bytes: s
                    .memory
                    .as_ref()
                    .and_then(|m| m.working_set_bytes.as_ref())
                    .map(|v| v.value),
            };
            (id_of(s).to_string(), usage)
        })
        .collect())
}

pub async fn stats(flags: StatsFlags) -> Result<(), ClientError> {
    let conn = Conn::open(&flags.endpoint.endpoint).await?;
    let containers = conn.containers().await?;
    let wanted: Vec<String> = if flags.ids.is_empty() {
        let running = cri::ContainerState::ContainerRunning as i32;
        containers
            .iter()
            .filter(|c| c.state == running)
            .map(|c| c.id.clone())
            .collect()
    } else {
        flags
            .ids
            .iter()
            .map(|w| resolve::resolve("container", containers.iter().map(|c| c.id.as_str()), w))
            .collect::<Result<_, _>>()?
    };
    let stats = sampled(&conn).await?;
    let rows: Vec<StatsRow> = wanted
        .iter()
        .filter_map(|id| stats.iter().find(|s| id_of(s) == id))
        .map(|s| {
            let attributes = s.attributes.clone().unwrap_or_default();
            let pod_id = containers
                .iter()
                .find(|c| c.id == attributes.id)
                .map(|c| c.pod_sandbox_id.clone())
                .unwrap_or_default();
            StatsRow {
                name: attributes.metadata.map(|m| m.name).unwrap_or_default(),
                id: attributes.id,
                pod_id,
                cpu_nano_cores: s
                    .cpu
                    .as_ref()
                    .and_then(|c| c.usage_nano_cores.as_ref())
                    .map(|v| v.value),
                memory_working_set_bytes: s
                    .memory
                    .as_ref()
                    .and_then(|m| m.working_set_bytes.as_ref())
                    .map(|v| v.value),
                disk_used_bytes: s
                    .writable_layer
                    .as_ref()
                    .and_then(|d| d.used_bytes.as_ref())
                    .map(|v| v.value),
            }
        })
        .collect();
    output::print(flags.output, &rows, || {
        let mut t = Table::new(&["CONTAINER", "NAME", "CPU %", "MEM", "DISK"]);
        for r in &rows {
            t.row(vec![
                short_id(&r.id).to_string(),
                r.name.clone(),
                r.cpu_nano_cores.map_or("-".into(), percent),
                r.memory_working_set_bytes.map_or("-".into(), bytes),
                r.disk_used_bytes.map_or("-".into(), bytes),
            ]);
        }
        t
    })
}
