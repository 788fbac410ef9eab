//! Image garbage collection, Mesos semantics (ucr-spec.md §4): every
//! `image_disk_watch_interval`, if the store's filesystem is fuller than
//! `1 - image_disk_headroom`, remove the least recently used images that no container uses
//! and that are neither excluded nor pinned, until it is not; then every layer no image
//! references. A manual prune (`ucr prune`, later Mesos `PRUNE_IMAGES`) runs the same code
//! without the stopping rule.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::images::matches_reference;
use super::{Store, StoreError};
use crate::provisioner::reference::Reference;

#[derive(Debug, Clone, PartialEq)]
pub struct GcConfig {
    pub headroom: f64,
    pub interval: Duration,
    pub excluded: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("--image-gc-config: {reason}")]
pub struct GcConfigError {
    reason: String,
}

impl GcConfig {
    /// A path or JSON text (Mesos' `--image_gc_config`). The interval may be Mesos'
    /// `{"nanoseconds": N}` or a duration string; excluded images may be plain references
    /// or Mesos `Image` objects (`{"type":"DOCKER","docker":{"name":"x"}}`).
    pub fn parse(value: &str) -> Result<Self, GcConfigError> {
        let bad = |reason: String| GcConfigError { reason };
        let text = if value.trim_start().starts_with('{') {
            value.to_string()
        } else {
            std::fs::read_to_string(value).map_err(|e| bad(format!("reading {value}: {e}")))?
        };
        let json: Value = serde_json::from_str(&text).map_err(|e| bad(format!("not JSON: {e}")))?;
        let headroom = match json.get("image_disk_headroom") {
            None => 0.1,
            Some(v) => v
                .as_f64()
                .filter(|h| (0.0..=1.0).contains(h))
                .ok_or_else(|| {
                    bad(format!(
                        "image_disk_headroom {v} must be a number in [0, 1]"
                    ))
                })?,
        };
        let interval = match json.get("image_disk_watch_interval") {
            None => Duration::from_secs(300),
            Some(Value::Object(o)) => o
                .get("nanoseconds")
                .and_then(Value::as_u64)
                .filter(|n| *n > 0)
                .map(Duration::from_nanos)
                .ok_or_else(|| {
                    bad("image_disk_watch_interval.nanoseconds must be a positive integer".into())
                })?,
            Some(Value::String(s)) => crate::config::parse_duration(s)
                .map_err(|e| bad(format!("image_disk_watch_interval: {e}")))?,
            Some(v) => {
                return Err(bad(format!(
                    "image_disk_watch_interval {v} is neither a duration nor {{\"nanoseconds\":N}}"
                )))
            }
        };
        let mut excluded = Vec::new();
        for item in json
            .get("excluded_images")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            let name = item
                .as_str()
                .or_else(|| item.pointer("/docker/name").and_then(Value::as_str))
                .ok_or_else(|| {
                    bad(format!(
                        "excluded image {item} is neither a reference nor a DOCKER image"
                    ))
                })?;
            Reference::parse(name).map_err(|e| bad(format!("excluded image: {e}")))?;
            excluded.push(name.to_string());
        }
        Ok(GcConfig {
            headroom,
            interval,
            excluded,
        })
    }
}

/// What a prune removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    pub images: Vec<String>,
    pub layers: u64,
    pub bytes: u64,
}

impl Store {
    /// Removes unused, unexcluded, unpinned images, least recently used first, while
    /// `keep_going` says so (always, for a manual prune), then unreferenced layers.
    pub async fn prune(
        &self,
        excluded: &[String],
        keep_going: &(dyn Fn() -> bool + Sync),
    ) -> Result<PruneReport, StoreError> {
        self.prune_as(excluded, keep_going, true).await
    }

    /// `prune`, saying for the metrics whether it was asked for (`manual`) or the
    /// GC watcher's.
    async fn prune_as(
        &self,
        excluded: &[String],
        keep_going: &(dyn Fn() -> bool + Sync),
        manual: bool,
    ) -> Result<PruneReport, StoreError> {
        let excluded = excluded
            .iter()
            .map(|e| Reference::parse(e))
            .collect::<Result<Vec<_>, _>>()?;
        let _exclusive = self.gc_lock.write().await;
        let _meta = self.meta_lock();
        let mut candidates: Vec<_> = self
            .db
            .images()?
            .into_iter()
            .filter(|i| i.use_count == 0)
            .filter(|i| {
                !excluded
                    .iter()
                    .chain(self.pinned.iter())
                    .any(|r| matches_reference(i, r))
            })
            .collect();
        candidates.sort_by_key(|i| i.last_used);
        let mut report = PruneReport::default();
        for image in candidates {
            if !keep_going() {
                break;
            }
            let id = image.id.clone();
            self.remove_image(image)?;
            // Free the space now, so the disk check before the next image sees it.
            let (layers, bytes) = self.sweep_layers()?;
            report.images.push(id);
            report.layers += layers;
            report.bytes += bytes;
        }
        let (layers, bytes) = self.sweep_layers()?;
        report.layers += layers;
        report.bytes += bytes;
        // The one prune the GC watcher, PruneImages and PRUNE_IMAGES all run: counted here.
        crate::metrics::prometheus::families().gc_run(manual, report.layers, report.bytes);
        Ok(report)
    }

    /// Fraction of the store's filesystem in use.
    pub fn disk_used_fraction(&self) -> Result<f64, StoreError> {
        let usage =
            crate::sys::statfs::usage(self.paths.root()).map_err(|source| StoreError::Io {
                op: "statfs",
                path: self.paths.root().to_path_buf(),
                source,
            })?;
        Ok(usage.used_fraction())
    }

    /// One disk check: prunes only when the filesystem is fuller than `1 - headroom`.
    pub async fn gc_once(&self, config: &GcConfig) -> Result<Option<PruneReport>, StoreError> {
        let used = self.disk_used_fraction()?;
        if used + config.headroom <= 1.0 {
            return Ok(None);
        }
        tracing::info!(
            used,
            headroom = config.headroom,
            "image store disk above threshold, collecting"
        );
        let over = || {
            self.disk_used_fraction()
                .map(|u| u + config.headroom > 1.0)
                .unwrap_or(false)
        };
        self.prune_as(&config.excluded, &over, false)
            .await
            .map(Some)
    }
}

/// Runs the disk watcher until the process ends.
pub fn spawn_watcher(store: Arc<Store>, config: GcConfig) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(config.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match store.gc_once(&config).await {
                Ok(Some(r)) => tracing::info!(
                    images = r.images.len(),
                    layers = r.layers,
                    bytes = r.bytes,
                    "image GC done"
                ),
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "image GC failed"),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mesos_and_plain_forms_parse() {
        let c = GcConfig::parse(
            r#"{"image_disk_headroom":0.2,"image_disk_watch_interval":{"nanoseconds":3600000000000},
                "excluded_images":["busybox",{"type":"DOCKER","docker":{"name":"mysql:latest"}}]}"#,
        )
        .expect("valid");
        assert_eq!(c.headroom, 0.2);
        assert_eq!(c.interval, Duration::from_secs(3600));
        assert_eq!(c.excluded, vec!["busybox", "mysql:latest"]);
        let c = GcConfig::parse(r#"{"image_disk_watch_interval":"2s"}"#).expect("valid");
        assert_eq!((c.headroom, c.interval), (0.1, Duration::from_secs(2)));
    }

    #[test]
    fn bad_values_are_named() {
        for (text, needle) in [
            (r#"{"image_disk_headroom":1.5}"#, "image_disk_headroom"),
            (
                r#"{"image_disk_watch_interval":{"nanoseconds":0}}"#,
                "nanoseconds",
            ),
            (r#"{"excluded_images":["Bad"]}"#, "lowercase"),
            ("/no/such/gc.json", "/no/such/gc.json"),
        ] {
            let e = GcConfig::parse(text).expect_err(text).to_string();
            assert!(e.contains(needle), "{text}: {e}");
        }
    }
}
