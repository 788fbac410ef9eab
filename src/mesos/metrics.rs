//! GET_METRICS and `/metrics/snapshot`: one snapshot, two shapes (`{metrics: [{name,
//! value}]}` and a flat `{name: value}` object), as Mesos serves its libprocess metrics.
//!
//! Every value is counted where it happens (`crate::metrics::Counters`: launch errors,
//! destroy errors, launches, kills and timed image pulls in `containers`) or read from the node and the core
//! when asked (`system/*` from `/proc`, the running standalone containers, the images in
//! the store). Names are Mesos's where Mesos has the metric, else Mesos-style under
//! `ucr/`. As in Mesos, a `timeout` bounds the collection: gauges not read in time are
//! left out of the answer rather than guessed.

use std::collections::BTreeMap;
use std::time::Duration;

use http::StatusCode;

use super::calls::Agent;
use super::codec::Refused;
use super::wire::v1::agent::{call, response, Response};
use super::wire::v1::Metric;
use crate::containerizer::types::ContainerState;
use crate::core::Core;

/// The metrics, by name. `timeout` bounds the gauges read from the core.
pub async fn snapshot(agent: &Agent, timeout: Option<Duration>) -> BTreeMap<String, f64> {
    let mut out: BTreeMap<String, f64> = agent.core.counters.snapshot().into_iter().collect();
    let core = agent.core.clone();
    // The store's database and /proc are read off the async threads.
    let read = tokio::task::spawn_blocking(move || gauges(&core));
    let gauges = match timeout {
        Some(t) => tokio::time::timeout(t, read).await.ok(),
        None => Some(read.await),
    };
    match gauges {
        Some(Ok(gauges)) => out.extend(gauges.into_iter().map(|(n, v)| (n.to_string(), v))),
        Some(Err(e)) => tracing::warn!(error = %e, "reading the metrics' gauges"),
        None => tracing::debug!(?timeout, "gauges not read within the metrics timeout"),
    }
    out
}

/// The gauges read from the node and the core.
fn gauges(core: &Core) -> Vec<(&'static str, f64)> {
    let mut out = crate::metrics::system::gauges(std::path::Path::new("/"));
    let running = core
        .containerizer
        .list_containers(&Default::default())
        .into_iter()
        .filter(|c| c.pod_id.is_none() && c.state == ContainerState::Running)
        .count();
    out.push(("ucr/mesos/containers_running", running as f64));
    match core.store.list(None) {
        Ok(images) => out.push(("ucr/store/images", images.len() as f64)),
        Err(e) => tracing::warn!(error = %crate::error::chain(&e), "counting the stored images"),
    }
    out
}

/// GET_METRICS.
pub async fn get_metrics(
    agent: &Agent,
    call: Option<&call::GetMetrics>,
) -> Result<Response, Refused> {
    let timeout = match call.and_then(|c| c.timeout.as_ref()) {
        None => None,
        Some(d) if d.nanoseconds >= 0 => Some(Duration::from_nanos(d.nanoseconds as u64)),
        Some(d) => {
            return Err(Refused(
                StatusCode::BAD_REQUEST,
                format!(
                    "Failed to validate agent::Call: get_metrics.timeout {}ns is negative",
                    d.nanoseconds
                ),
            ))
        }
    };
    let metrics = snapshot(agent, timeout)
        .await
        .into_iter()
        .map(|(name, value)| Metric {
            name,
            value: Some(value),
        })
        .collect();
    Ok(Response {
        r#type: Some(response::Type::GetMetrics as i32),
        get_metrics: Some(response::GetMetrics { metrics }),
        ..Default::default()
    })
}

/// A duration as Mesos's flags and query parameters spell one: a number and one of
/// `ns`, `us`, `ms`, `secs`, `mins`, `hrs`, `days`, `weeks` (`5secs`, `1.5mins`).
pub fn parse_duration(value: &str) -> Result<Duration, String> {
    let split = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| "missing a unit (ns, us, ms, secs, mins, hrs, days, weeks)".to_string())?;
    let (number, unit) = value.split_at(split);
    let n: f64 = number
        .parse()
        .map_err(|_| format!("{number:?} is not a number"))?;
    let secs = match unit {
        "ns" => n / 1e9,
        "us" => n / 1e6,
        "ms" => n / 1e3,
        "secs" => n,
        "mins" => n * 60.0,
        "hrs" => n * 3600.0,
        "days" => n * 86400.0,
        "weeks" => n * 604800.0,
        other => return Err(format!("unknown unit {other:?}")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mesos_durations() {
        assert_eq!(parse_duration("5secs"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("1.5mins"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("10ns"), Ok(Duration::from_nanos(10)));
        for bad in ["5", "5s", "secs", "1e400secs", "-1secs", ""] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn get_metrics_answers_in_mesos_shape() {
        let r = Response {
            r#type: Some(response::Type::GetMetrics as i32),
            get_metrics: Some(response::GetMetrics {
                metrics: vec![Metric {
                    name: "slave/uptime_secs".into(),
                    value: Some(1.5),
                }],
            }),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(r).expect("json"),
            serde_json::json!({"type": "GET_METRICS", "get_metrics": {"metrics": [{"name": "slave/uptime_secs", "value": 1.5}]}})
        );
    }
}
