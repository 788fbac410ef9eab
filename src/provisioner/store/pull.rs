//! Pulling: resolve the reference, bring in every missing layer (in parallel, bounded by
//! `--max-concurrent-downloads`, each shared with any other pull that needs it), then
//! record the image in one transaction. Concurrent pulls of one reference are one pull,
//! and every caller of it can watch the same progress (`progress`).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use super::db::{Batch, ImageRecord, LayerRecord};
use super::progress::{LayerState, LayerTracker, PullTracker};
use super::{ingest, Image, Store, StoreError};
use crate::metrics::prometheus::families as metrics;
use crate::provisioner::puller::registry::{config_diff_ids, manifest::schema1_config};
use crate::provisioner::puller::{
    ConfigSource, Credentials, ImagePlan, LayerFetcher, LayerLocation, LayerSource,
};
use crate::provisioner::reference::{Digest, Reference};

impl Store {
    /// Pulls `image` (any reference form) and returns the stored image.
    pub async fn pull(
        self: &Arc<Self>,
        image: &str,
        credentials: Option<Credentials>,
    ) -> Result<Image, StoreError> {
        self.pull_with_progress(image, credentials)?.1.await
    }

    /// Like [`Store::pull`], with the pull's progress to watch while the returned future
    /// runs. A caller joining a pull already under way gets that pull's tracker.
    pub fn pull_with_progress(
        self: &Arc<Self>,
        image: &str,
        credentials: Option<Credentials>,
    ) -> Result<
        (
            Arc<PullTracker>,
            impl std::future::Future<Output = Result<Image, StoreError>> + Send + 'static,
        ),
        StoreError,
    > {
        let reference = Reference::parse(image)?;
        let key = reference.to_string();
        let tracker = self.trackers.pull(&key);
        let me = Arc::clone(self);
        let (r, t) = (reference.clone(), Arc::clone(&tracker));
        let (flight, started) = self.pulls.join(&key, async move {
            // Timed inside the flight: a joined pull is one pull.
            let (clock, read) = (Instant::now(), metrics().pull_bytes_so_far());
            let result = me.pull_now(r, credentials, t).await;
            let read = metrics().pull_bytes_so_far().saturating_sub(read);
            metrics().pull_done(result.is_ok(), clock.elapsed(), read);
            result
        });
        if !started {
            tracing::info!(%reference, "joining a pull already under way");
        }
        let me = Arc::clone(self);
        let done = async move {
            let record = flight.await.map_err(StoreError::Shared)?;
            me.view(record)
        };
        Ok((tracker, done))
    }

    async fn pull_now(
        self: Arc<Self>,
        reference: Reference,
        credentials: Option<Credentials>,
        progress: Arc<PullTracker>,
    ) -> Result<ImageRecord, StoreError> {
        let _no_prune = self.gc_lock.read().await;
        let started = Instant::now();
        let (plan, fetcher) = match (&self.archive, reference.explicit_domain()) {
            (Some(archive), false) => {
                archive
                    .resolve(&reference, self.paths.scratch("archive"))
                    .await?
            }
            _ => {
                self.registry
                    .resolve(&reference, credentials.as_ref())
                    .await?
            }
        };
        let trackers: Vec<Arc<LayerTracker>> =
            plan.layers.iter().map(|l| self.trackers.layer(l)).collect();
        progress.set_layers(trackers.clone());
        // Wait for every layer even when one fails: the caller is told only once nothing
        // of this pull is still being written (finished layers stay for a retry; GC
        // sweeps them if none comes).
        let results =
            futures::future::join_all(plan.layers.iter().zip(&trackers).map(|(l, t)| {
                Arc::clone(&self).layer(l.clone(), Arc::clone(&fetcher), Arc::clone(t))
            }))
            .await;
        let layers = results.into_iter().collect::<Result<Vec<_>, _>>()?;
        drop(fetcher);
        let record = self.record_image(&plan, &layers)?;
        tracing::info!(
            %reference,
            id = %record.id,
            layers = layers.len(),
            seconds = started.elapsed().as_secs_f64(),
            "pulled image"
        );
        Ok(record)
    }

    /// A layer already in the store, if it is (its directory too: one deleted behind our
    /// back is fetched again, as Mesos does).
    fn existing_layer(&self, layer: &LayerSource) -> Result<Option<LayerRecord>, StoreError> {
        let diff_id = match (&layer.diff_id, &layer.location) {
            (Some(d), _) => Some(d.to_string()),
            (None, LayerLocation::Blob { digest, .. }) => {
                self.db.blob_layer(&digest.to_string())?
            }
            (None, LayerLocation::File(_)) => None,
        };
        let Some(diff_id) = diff_id else {
            return Ok(None);
        };
        let Some(record) = self.db.layer(&diff_id)? else {
            return Ok(None);
        };
        let on_disk = Digest::parse(&diff_id)
            .map(|d| self.paths.layer_rootfs(&d).is_dir())
            .unwrap_or(false);
        Ok(on_disk.then_some(record))
    }

    async fn layer(
        self: Arc<Self>,
        layer: LayerSource,
        fetcher: Arc<dyn LayerFetcher>,
        progress: Arc<LayerTracker>,
    ) -> Result<LayerRecord, StoreError> {
        if let Some(record) = self.existing_layer(&layer)? {
            progress.set_state(LayerState::Exists);
            return Ok(record);
        }
        let me = Arc::clone(&self);
        let key = layer.dedup_key();
        let (flight, _) = self.layer_flights.join(&key, async move {
            let _slot = me
                .downloads
                .acquire()
                .await
                .map_err(|e| StoreError::Task(e.to_string()))?;
            // Another flight (keyed by blob rather than diff id) may have brought it in
            // while we waited for a slot.
            if let Some(record) = me.existing_layer(&layer)? {
                progress.set_state(LayerState::Exists);
                return Ok(record);
            }
            progress.set_state(LayerState::Downloading);
            let n = me.downloads_started.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::info!(layer = %key_of(&layer), downloads_started = n, "downloading layer");
            let record = ingest::ingest(&me.paths, fetcher, &layer, &progress).await?;
            let put_blobs = match &layer.location {
                LayerLocation::Blob { digest, .. } => {
                    vec![(digest.to_string(), record.diff_id.clone())]
                }
                LayerLocation::File(_) => vec![],
            };
            me.db.commit(Batch {
                put_layers: vec![record.clone()],
                put_blobs,
                ..Default::default()
            })?;
            progress.set_state(LayerState::Done);
            Ok(record)
        });
        flight.await.map_err(StoreError::Shared)
    }

    /// Writes the image, its config and its references in one transaction. A tag that
    /// pointed at another image moves here (that image stays, untagged, until GC).
    fn record_image(
        &self,
        plan: &ImagePlan,
        layers: &[LayerRecord],
    ) -> Result<ImageRecord, StoreError> {
        let diff_ids: Vec<Digest> = layers
            .iter()
            .map(|l| Digest::parse(&l.diff_id))
            .collect::<Result<_, _>>()?;
        let config = match &plan.config {
            ConfigSource::Blob(bytes) => bytes.to_vec(),
            ConfigSource::Schema1 { v1_compat, history } => {
                schema1_config(v1_compat, history, &diff_ids)
            }
        };
        let id = Digest::sha256_of(&config).to_string();
        let listed = config_diff_ids(&config).map_err(|reason| StoreError::BadConfig {
            image: id.clone(),
            reason,
        })?;
        if listed != diff_ids {
            return Err(StoreError::BadConfig {
                image: id,
                reason: "rootfs.diff_ids do not match the layers".into(),
            });
        }
        let now = chrono::Utc::now().timestamp();
        let _meta = self.meta_lock();
        let mut batch = Batch::default();
        let mut record = self.db.image(&id)?.unwrap_or_else(|| ImageRecord {
            id: id.clone(),
            repo_tags: vec![],
            repo_digests: vec![],
            layers: vec![],
            chain_ids: vec![],
            size: 0,
            created_at: now,
            last_used: now,
            use_count: 0,
        });
        record.layers = diff_ids.iter().map(|d| d.to_string()).collect();
        record.chain_ids = chain_ids(&diff_ids);
        record.size = layers.iter().map(|l| l.size).sum();
        record.last_used = now;
        let reference = &plan.reference;
        let tag = if reference.digest().is_none() {
            reference.tagged_name()
        } else {
            None
        };
        if let Some(tag) = tag {
            if let Some(old_id) = self.db.resolve_ref(&tag)?.filter(|old| *old != id) {
                if let Some(mut old) = self.db.image(&old_id)? {
                    old.repo_tags.retain(|t| *t != tag);
                    tracing::info!(%tag, from = %old_id, to = %id, "tag moved to a newer image");
                    batch.put_images.push(old);
                }
            }
            if !record.repo_tags.contains(&tag) {
                record.repo_tags.push(tag.clone());
            }
            batch.put_refs.push((tag, id.clone()));
        }
        if let Some(d) = &plan.manifest_digest {
            let name = reference.digested_name(d);
            if !record.repo_digests.contains(&name) {
                record.repo_digests.push(name.clone());
            }
            batch.put_refs.push((name, id.clone()));
        }
        batch.put_configs.push((id.clone(), config));
        batch.put_images.push(record.clone());
        self.db.commit(batch)?;
        Ok(record)
    }
}

fn key_of(layer: &LayerSource) -> String {
    match &layer.location {
        LayerLocation::Blob { digest, .. } => digest.to_string(),
        LayerLocation::File(p) => p.display().to_string(),
    }
}

/// OCI chain ids: `chain(0) = diff(0)`, `chain(n) = sha256(chain(n-1) + " " + diff(n))`.
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.to_string(),
            Some(prev) => Digest::sha256_of(format!("{prev} {d}").as_bytes()).to_string(),
        };
        out.push(next);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids_follow_the_oci_definition() {
        let a = Digest::sha256_of(b"a");
        let b = Digest::sha256_of(b"b");
        let chain = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(chain[0], a.to_string());
        assert_eq!(
            chain[1],
            Digest::sha256_of(format!("{a} {b}").as_bytes()).to_string()
        );
    }
}
