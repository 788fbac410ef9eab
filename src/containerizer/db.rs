//! Pods and containers in an embedded database (redb, for the reasons the image store
//! gives in `provisioner/store/db.rs`): every state change is one committed transaction, so
//! a `kill -9` leaves the last committed state and nothing torn.

use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{de::DeserializeOwned, Serialize};

use super::types::{Container, Pod};

const PODS: TableDefinition<&str, &[u8]> = TableDefinition::new("pods");
const CONTAINERS: TableDefinition<&str, &[u8]> = TableDefinition::new("containers");

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("containerizer database {op}: {source}")]
    Db {
        op: &'static str,
        source: Box<redb::Error>,
    },
    #[error("containerizer record {key} is corrupt: {source}")]
    Corrupt {
        key: String,
        source: serde_json::Error,
    },
}

fn err<E: Into<redb::Error>>(op: &'static str) -> impl FnOnce(E) -> DbError {
    move |e| DbError::Db {
        op,
        source: Box::new(e.into()),
    }
}

pub struct Db {
    db: Database,
}

impl Db {
    pub fn open(path: &Path) -> Result<Self, DbError> {
        let db = Database::create(path).map_err(err("open"))?;
        let txn = db.begin_write().map_err(err("begin"))?;
        txn.open_table(PODS).map_err(err("create table"))?;
        txn.open_table(CONTAINERS).map_err(err("create table"))?;
        txn.commit().map_err(err("commit"))?;
        Ok(Db { db })
    }

    fn put<T: Serialize>(
        &self,
        table: TableDefinition<&str, &[u8]>,
        key: &str,
        value: &T,
    ) -> Result<(), DbError> {
        let bytes = serde_json::to_vec(value).unwrap_or_default();
        let txn = self.db.begin_write().map_err(err("begin"))?;
        txn.open_table(table)
            .map_err(err("open table"))?
            .insert(key, bytes.as_slice())
            .map_err(err("insert"))?;
        txn.commit().map_err(err("commit"))
    }

    fn delete(&self, table: TableDefinition<&str, &[u8]>, key: &str) -> Result<(), DbError> {
        let txn = self.db.begin_write().map_err(err("begin"))?;
        txn.open_table(table)
            .map_err(err("open table"))?
            .remove(key)
            .map_err(err("remove"))?;
        txn.commit().map_err(err("commit"))
    }

    fn all<T: DeserializeOwned>(
        &self,
        table: TableDefinition<&str, &[u8]>,
    ) -> Result<Vec<T>, DbError> {
        let txn = self.db.begin_read().map_err(err("begin read"))?;
        let t = txn.open_table(table).map_err(err("open table"))?;
        let mut out = Vec::new();
        for entry in t.iter().map_err(err("scan"))? {
            let (k, v) = entry.map_err(err("scan"))?;
            out.push(
                serde_json::from_slice(v.value()).map_err(|source| DbError::Corrupt {
                    key: k.value().to_string(),
                    source,
                })?,
            );
        }
        Ok(out)
    }

    pub fn put_pod(&self, pod: &Pod) -> Result<(), DbError> {
        self.put(PODS, &pod.id, pod)
    }
    pub fn delete_pod(&self, id: &str) -> Result<(), DbError> {
        self.delete(PODS, id)
    }
    pub fn pods(&self) -> Result<Vec<Pod>, DbError> {
        self.all(PODS)
    }
    pub fn put_container(&self, c: &Container) -> Result<(), DbError> {
        self.put(CONTAINERS, &c.id, c)
    }
    pub fn delete_container(&self, id: &str) -> Result<(), DbError> {
        self.delete(CONTAINERS, id)
    }
    pub fn containers(&self) -> Result<Vec<Container>, DbError> {
        self.all(CONTAINERS)
    }
}
