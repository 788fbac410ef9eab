//! The store's metadata, in an embedded database.
//!
//! Why redb: it is pure Rust (no C library to build or ship), gives ACID transactions on
//! copy-on-write B-trees with fsync'd commits (a `kill -9` or power cut leaves the last
//! committed state, never a torn file), and locks its file so two daemons cannot share a
//! root by mistake. SQLite would do the same with a C dependency and SQL we do not need:
//! the data is a handful of key→record maps.
//!
//! Records are JSON inside the database: readable with a debugger, and tolerant of new
//! optional fields as later issues add them.

use std::path::Path;

use redb::{ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

pub use crate::db_json::DbError;
use crate::db_json::{encode, JsonDb, JsonTable};

/// image id (`sha256:<config digest hex>`) → [`ImageRecord`].
const IMAGES: JsonTable = JsonTable::new("images");
/// repo tag or repo digest (`docker.io/library/busybox:latest`, `…@sha256:…`) → image id.
const REFS: TableDefinition<&str, &str> = TableDefinition::new("refs");
/// diff id → [`LayerRecord`].
const LAYERS: JsonTable = JsonTable::new("layers");
/// compressed blob digest → diff id, so a schema 1 pull (no diff ids up front) still
/// finds layers it already has.
const BLOBS: TableDefinition<&str, &str> = TableDefinition::new("blobs");
/// image id → raw config JSON.
const CONFIGS: TableDefinition<&str, &[u8]> = TableDefinition::new("configs");

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ImageRecord {
    pub id: String,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    /// Diff ids, base first.
    pub layers: Vec<String>,
    /// Chain ids, base first (what a stacked snapshot would be called).
    pub chain_ids: Vec<String>,
    /// Unpacked bytes of all layers.
    pub size: u64,
    /// Seconds since the epoch.
    pub created_at: i64,
    pub last_used: i64,
    /// Containers using this image (maintained by the containerizer).
    #[serde(default)]
    pub use_count: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LayerRecord {
    pub diff_id: String,
    pub size: u64,
    pub inodes: u64,
    /// Paths (relative) this layer deletes from lower layers.
    pub whiteouts: Vec<String>,
    /// Directories whose lower content this layer hides.
    pub opaque_dirs: Vec<String>,
}

pub struct Db {
    db: JsonDb,
}

/// Everything a write transaction may change, applied atomically by [`Db::commit`].
#[derive(Default)]
pub struct Batch {
    pub put_images: Vec<ImageRecord>,
    pub del_images: Vec<String>,
    pub put_configs: Vec<(String, Vec<u8>)>,
    pub put_refs: Vec<(String, String)>,
    pub del_refs: Vec<String>,
    pub put_layers: Vec<LayerRecord>,
    pub del_layers: Vec<String>,
    pub put_blobs: Vec<(String, String)>,
}

impl Db {
    pub fn open(path: &Path) -> Result<Self, DbError> {
        let db = JsonDb::open(path, "metadata", |txn| {
            txn.open_table(IMAGES)?;
            txn.open_table(REFS)?;
            txn.open_table(LAYERS)?;
            txn.open_table(BLOBS)?;
            txn.open_table(CONFIGS)?;
            Ok(())
        })?;
        Ok(Db { db })
    }

    pub fn commit(&self, batch: Batch) -> Result<(), DbError> {
        let db = &self.db;
        let txn = db.begin_write()?;
        {
            let mut images = txn.open_table(IMAGES).map_err(db.err("open images"))?;
            for id in &batch.del_images {
                images.remove(id.as_str()).map_err(db.err("remove image"))?;
            }
            for rec in &batch.put_images {
                let bytes = encode(rec);
                images
                    .insert(rec.id.as_str(), bytes.as_slice())
                    .map_err(db.err("insert image"))?;
            }
            let mut configs = txn.open_table(CONFIGS).map_err(db.err("open configs"))?;
            for id in &batch.del_images {
                configs
                    .remove(id.as_str())
                    .map_err(db.err("remove config"))?;
            }
            for (id, bytes) in &batch.put_configs {
                configs
                    .insert(id.as_str(), bytes.as_slice())
                    .map_err(db.err("insert config"))?;
            }
            let mut refs = txn.open_table(REFS).map_err(db.err("open refs"))?;
            for r in &batch.del_refs {
                refs.remove(r.as_str()).map_err(db.err("remove ref"))?;
            }
            for (r, id) in &batch.put_refs {
                refs.insert(r.as_str(), id.as_str())
                    .map_err(db.err("insert ref"))?;
            }
            let mut layers = txn.open_table(LAYERS).map_err(db.err("open layers"))?;
            for d in &batch.del_layers {
                layers.remove(d.as_str()).map_err(db.err("remove layer"))?;
            }
            for rec in &batch.put_layers {
                let bytes = encode(rec);
                layers
                    .insert(rec.diff_id.as_str(), bytes.as_slice())
                    .map_err(db.err("insert layer"))?;
            }
            let mut blobs = txn.open_table(BLOBS).map_err(db.err("open blobs"))?;
            if !batch.del_layers.is_empty() {
                // Forget blob→layer mappings of removed layers.
                let stale: Vec<String> = blobs
                    .iter()
                    .map_err(db.err("scan blobs"))?
                    .filter_map(|e| e.ok())
                    .filter(|(_, v)| batch.del_layers.iter().any(|d| d == v.value()))
                    .map(|(k, _)| k.value().to_string())
                    .collect();
                for k in stale {
                    blobs.remove(k.as_str()).map_err(db.err("remove blob"))?;
                }
            }
            for (b, d) in &batch.put_blobs {
                blobs
                    .insert(b.as_str(), d.as_str())
                    .map_err(db.err("insert blob"))?;
            }
        }
        txn.commit().map_err(db.err("commit"))
    }

    pub fn image(&self, id: &str) -> Result<Option<ImageRecord>, DbError> {
        self.db.get(IMAGES, id)
    }
    pub fn images(&self) -> Result<Vec<ImageRecord>, DbError> {
        self.db.all(IMAGES)
    }
    pub fn layer(&self, diff_id: &str) -> Result<Option<LayerRecord>, DbError> {
        self.db.get(LAYERS, diff_id)
    }
    pub fn layers(&self) -> Result<Vec<LayerRecord>, DbError> {
        self.db.all(LAYERS)
    }

    pub fn config(&self, id: &str) -> Result<Option<Vec<u8>>, DbError> {
        let txn = self.db.begin_read()?;
        let t = txn
            .open_table(CONFIGS)
            .map_err(self.db.err("open configs"))?;
        Ok(t.get(id)
            .map_err(self.db.err("get config"))?
            .map(|v| v.value().to_vec()))
    }

    pub fn resolve_ref(&self, reference: &str) -> Result<Option<String>, DbError> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(REFS).map_err(self.db.err("open refs"))?;
        Ok(t.get(reference)
            .map_err(self.db.err("get ref"))?
            .map(|v| v.value().to_string()))
    }

    pub fn blob_layer(&self, blob: &str) -> Result<Option<String>, DbError> {
        let txn = self.db.begin_read()?;
        let t = txn.open_table(BLOBS).map_err(self.db.err("open blobs"))?;
        Ok(t.get(blob)
            .map_err(self.db.err("get blob"))?
            .map(|v| v.value().to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(d: &str) -> LayerRecord {
        LayerRecord {
            diff_id: d.into(),
            size: 1,
            inodes: 1,
            whiteouts: vec![],
            opaque_dirs: vec![],
        }
    }

    #[test]
    fn batches_commit_and_survive_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("meta.redb");
        {
            let db = Db::open(&path).expect("open");
            db.commit(Batch {
                put_layers: vec![layer("sha256:l1")],
                put_blobs: vec![("sha256:b1".into(), "sha256:l1".into())],
                put_refs: vec![("docker.io/library/x:latest".into(), "sha256:i1".into())],
                put_configs: vec![("sha256:i1".into(), b"{}".to_vec())],
                ..Default::default()
            })
            .expect("commit");
        }
        let db = Db::open(&path).expect("reopen");
        assert_eq!(
            db.layer("sha256:l1").expect("get"),
            Some(layer("sha256:l1"))
        );
        assert_eq!(
            db.blob_layer("sha256:b1").expect("get").as_deref(),
            Some("sha256:l1")
        );
        assert_eq!(
            db.resolve_ref("docker.io/library/x:latest")
                .expect("get")
                .as_deref(),
            Some("sha256:i1")
        );
        db.commit(Batch {
            del_layers: vec!["sha256:l1".into()],
            ..Default::default()
        })
        .expect("delete");
        assert_eq!(db.layer("sha256:l1").expect("get"), None);
        assert_eq!(
            db.blob_layer("sha256:b1").expect("get"),
            None,
            "blob mapping goes with its layer"
        );
    }

    #[test]
    fn a_second_daemon_cannot_open_the_same_database() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("meta.redb");
        let _first = Db::open(&path).expect("open");
        assert!(Db::open(&path).is_err());
    }
}
