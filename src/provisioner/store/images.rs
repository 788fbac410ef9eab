//! Looking images up, listing, removing, and what the store uses on disk.

use std::collections::HashSet;

use super::db::{Batch, ImageRecord};
use super::{ingest, Store, StoreError};
use crate::provisioner::reference::{Digest, Reference};

/// An image as the front doors see it.
#[derive(Debug, Clone)]
pub struct Image {
    pub id: String,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    pub size: u64,
    pub pinned: bool,
    /// The config's `config.User`, if any.
    pub user: Option<String>,
    pub use_count: u64,
    pub last_used: i64,
}

/// Bytes and inodes used by the store, for `ImageFsInfo`.
#[derive(Debug, Clone)]
pub struct FsUsage {
    pub mountpoint: String,
    pub used_bytes: u64,
    pub inodes_used: u64,
}

impl Store {
    pub(super) fn view(&self, record: ImageRecord) -> Result<Image, StoreError> {
        let config = self.db.config(&record.id)?;
        let user = config
            .as_deref()
            .and_then(|c| serde_json::from_slice::<serde_json::Value>(c).ok())
            .and_then(|c| {
                c.pointer("/config/User")
                    .and_then(|u| u.as_str())
                    .map(str::to_string)
            })
            .filter(|u| !u.is_empty());
        Ok(Image {
            pinned: self.is_pinned(&record),
            id: record.id,
            repo_tags: record.repo_tags,
            repo_digests: record.repo_digests,
            size: record.size,
            user,
            use_count: record.use_count,
            last_used: record.last_used,
        })
    }

    fn is_pinned(&self, record: &ImageRecord) -> bool {
        self.pinned.iter().any(|p| matches_reference(record, p))
    }

    /// Finds the image an id, id prefix, tag or digest reference names.
    pub fn resolve(&self, spec: &str) -> Result<Option<String>, StoreError> {
        let hex = spec.strip_prefix("sha256:").unwrap_or(spec);
        let is_hex = !hex.is_empty()
            && hex
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
        if is_hex && hex.len() == 64 {
            let id = format!("sha256:{hex}");
            if self.db.image(&id)?.is_some() {
                return Ok(Some(id));
            }
        }
        let parsed = Reference::parse(spec);
        if let Ok(r) = &parsed {
            let key = match r.digest() {
                Some(d) => Some(r.digested_name(d)),
                None => r.tagged_name(),
            };
            if let Some(id) = key.map(|k| self.db.resolve_ref(&k)).transpose()?.flatten() {
                return Ok(Some(id));
            }
        }
        // A short id, as `crictl images` prints them.
        if is_hex && hex.len() < 64 {
            let matches: Vec<String> = self
                .db
                .images()?
                .into_iter()
                .filter(|i| i.id.trim_start_matches("sha256:").starts_with(hex))
                .map(|i| i.id)
                .collect();
            match matches.len() {
                0 => {}
                1 => return Ok(matches.into_iter().next()),
                count => {
                    return Err(StoreError::Ambiguous {
                        spec: spec.to_string(),
                        count,
                    })
                }
            }
        }
        match parsed {
            Err(e) if !is_hex => Err(e.into()),
            _ => Ok(None),
        }
    }

    pub fn status(&self, spec: &str) -> Result<Option<Image>, StoreError> {
        match self.resolve(spec)? {
            Some(id) => self.db.image(&id)?.map(|r| self.view(r)).transpose(),
            None => Ok(None),
        }
    }

    /// The unpacked layer directories of image `id`, base first, for a rootfs backend.
    pub fn layer_dirs(&self, id: &str) -> Result<Vec<std::path::PathBuf>, StoreError> {
        let record = self.db.image(id)?.ok_or_else(|| StoreError::UnknownImage {
            image: id.to_string(),
        })?;
        record
            .layers
            .iter()
            .map(|d| Ok(self.paths.layer_rootfs(&Digest::parse(d)?)))
            .collect()
    }

    /// The raw image config JSON.
    pub fn config(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.db.config(id)?)
    }

    /// All images, or those `filter` (any reference form) names.
    pub fn list(&self, filter: Option<&str>) -> Result<Vec<Image>, StoreError> {
        let wanted = match filter.filter(|f| !f.is_empty()) {
            Some(f) => match self.resolve(f)? {
                Some(id) => Some(id),
                None => return Ok(vec![]),
            },
            None => None,
        };
        let mut out = Vec::new();
        for record in self.db.images()? {
            if wanted.as_ref().is_none_or(|w| *w == record.id) {
                out.push(self.view(record)?);
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// Removes what `spec` names. A tag of an image that has other tags removes just that
    /// tag; the last tag, an id or a digest removes the image, unless a container uses it.
    /// Unknown images are not an error (the CRI asks for idempotence).
    pub async fn remove(&self, spec: &str) -> Result<(), StoreError> {
        let _exclusive = self.gc_lock.write().await;
        let _meta = self.meta_lock();
        let Some(id) = self.resolve(spec)? else {
            return Ok(());
        };
        let Some(mut record) = self.db.image(&id)? else {
            return Ok(());
        };
        let tag = Reference::parse(spec)
            .ok()
            .filter(|r| r.digest().is_none())
            .and_then(|r| r.tagged_name())
            .filter(|t| record.repo_tags.contains(t));
        if let Some(tag) = tag.filter(|_| record.repo_tags.len() > 1) {
            record.repo_tags.retain(|t| *t != tag);
            self.db.commit(Batch {
                put_images: vec![record],
                del_refs: vec![tag.clone()],
                ..Default::default()
            })?;
            tracing::info!(%tag, image = %id, "removed tag");
            return Ok(());
        }
        self.remove_image(record)?;
        self.sweep_layers()?;
        Ok(())
    }

    /// Drops an image and all its references (caller holds the GC and meta locks).
    pub(super) fn remove_image(&self, record: ImageRecord) -> Result<(), StoreError> {
        if record.use_count > 0 {
            return Err(StoreError::InUse {
                image: record.id,
                containers: record.use_count,
            });
        }
        let mut del_refs = record.repo_tags.clone();
        del_refs.extend(record.repo_digests.iter().cloned());
        self.db.commit(Batch {
            del_images: vec![record.id.clone()],
            del_refs,
            ..Default::default()
        })?;
        tracing::info!(image = %record.id, tags = ?record.repo_tags, "removed image");
        Ok(())
    }

    /// Counts a container that uses image `id` (the containerizer calls this when it
    /// creates one): a used image is never removed, by GC or by `RemoveImage`.
    pub async fn acquire(&self, id: &str) -> Result<(), StoreError> {
        self.adjust_use(id, 1).await
    }

    /// The container using image `id` is gone.
    pub async fn release(&self, id: &str) -> Result<(), StoreError> {
        self.adjust_use(id, -1).await
    }

    async fn adjust_use(&self, id: &str, delta: i64) -> Result<(), StoreError> {
        // Shared with pulls, exclusive of removal: a prune cannot slip in between the
        // check and the count.
        let _no_prune = self.gc_lock.read().await;
        let _meta = self.meta_lock();
        let mut record = self.db.image(id)?.ok_or_else(|| StoreError::UnknownImage {
            image: id.to_string(),
        })?;
        record.use_count = record.use_count.saturating_add_signed(delta);
        if delta > 0 {
            record.last_used = chrono::Utc::now().timestamp();
        }
        self.db.commit(Batch {
            put_images: vec![record],
            ..Default::default()
        })?;
        Ok(())
    }

    /// Sets every image's use count to what `counts` says (images it does not name: 0).
    /// The counts live here and the containers in the containerizer's database, with no
    /// transaction spanning both: a crash between the two writes would leak a count (the
    /// image could never be removed) or drop one (GC could delete layers under a running
    /// container). So the containerizer recomputes them from its records at start-up.
    pub async fn reconcile_use_counts(
        &self,
        counts: &std::collections::HashMap<String, u64>,
    ) -> Result<(), StoreError> {
        let _no_prune = self.gc_lock.read().await;
        let _meta = self.meta_lock();
        let mut changed = Vec::new();
        for mut record in self.db.images()? {
            let wanted = counts.get(&record.id).copied().unwrap_or(0);
            if record.use_count != wanted {
                tracing::warn!(image = %record.id, recorded = record.use_count, actual = wanted, "image use count corrected");
                record.use_count = wanted;
                changed.push(record);
            }
        }
        if !changed.is_empty() {
            self.db.commit(Batch {
                put_images: changed,
                ..Default::default()
            })?;
        }
        Ok(())
    }

    /// Deletes every layer no image references: records first, then directories (a crash
    /// in between leaves unrecorded directories, which start-up removes).
    pub(super) fn sweep_layers(&self) -> Result<(u64, u64), StoreError> {
        let referenced: HashSet<String> = self
            .db
            .images()?
            .into_iter()
            .flat_map(|i| i.layers)
            .collect();
        let dead: Vec<_> = self
            .db
            .layers()?
            .into_iter()
            .filter(|l| !referenced.contains(&l.diff_id))
            .collect();
        if dead.is_empty() {
            return Ok((0, 0));
        }
        self.db.commit(Batch {
            del_layers: dead.iter().map(|l| l.diff_id.clone()).collect(),
            ..Default::default()
        })?;
        let mut bytes = 0;
        for layer in &dead {
            let digest = Digest::parse(&layer.diff_id)?;
            let dir = self.paths.layer_dir(&digest);
            if dir.exists() {
                ingest::retire(&dir, &self.paths.gc())?;
            }
            bytes += layer.size;
            tracing::info!(layer = %layer.diff_id, bytes = layer.size, "removed unreferenced layer");
        }
        Ok((dead.len() as u64, bytes))
    }

    /// What the store holds, from the recorded layer sizes (walking the tree on every
    /// kubelet poll would be far too slow), plus the metadata file.
    pub fn usage(&self) -> Result<FsUsage, StoreError> {
        let layers = self.db.layers()?;
        let db_bytes = std::fs::metadata(self.paths.db())
            .map(|m| m.len())
            .unwrap_or(0);
        Ok(FsUsage {
            mountpoint: self.paths.root().display().to_string(),
            used_bytes: layers.iter().map(|l| l.size).sum::<u64>() + db_bytes,
            inodes_used: layers.iter().map(|l| l.inodes).sum::<u64>() + 1,
        })
    }
}

/// How many images and layers the store records (the metrics' gauges).
impl Store {
    pub fn counts(&self) -> Result<(usize, usize), StoreError> {
        Ok((self.db.images()?.len(), self.db.layers()?.len()))
    }
}

/// Whether an image carries a reference (tag or digest form) or is that id.
pub(super) fn matches_reference(record: &ImageRecord, r: &Reference) -> bool {
    match r.digest() {
        Some(d) => record.repo_digests.contains(&r.digested_name(d)) || record.id == d.to_string(),
        None => r
            .tagged_name()
            .is_some_and(|t| record.repo_tags.contains(&t)),
    }
}
