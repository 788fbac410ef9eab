//! Pods and containers in an embedded database (redb, for the reasons the image store
//! gives in `provisioner/store/db.rs`): every state change is one committed transaction, so
//! a `kill -9` leaves the last committed state and nothing torn.

use std::path::Path;

pub use crate::db_json::DbError;
use crate::db_json::{JsonDb, JsonTable};

use super::types::{Container, Pod};

const PODS: JsonTable = JsonTable::new("pods");
const CONTAINERS: JsonTable = JsonTable::new("containers");

pub struct Db {
    db: JsonDb,
}

impl Db {
    pub fn open(path: &Path) -> Result<Self, DbError> {
        let db = JsonDb::open(path, "containerizer", |txn| {
            txn.open_table(PODS)?;
            txn.open_table(CONTAINERS)?;
            Ok(())
        })?;
        Ok(Db { db })
    }

    pub fn put_pod(&self, pod: &Pod) -> Result<(), DbError> {
        self.db.put(PODS, &pod.id, pod)
    }
    pub fn delete_pod(&self, id: &str) -> Result<(), DbError> {
        self.db.delete(PODS, id)
    }
    pub fn pods(&self) -> Result<Vec<Pod>, DbError> {
        self.db.all(PODS)
    }
    pub fn put_container(&self, c: &Container) -> Result<(), DbError> {
        self.db.put(CONTAINERS, &c.id, c)
    }
    pub fn delete_container(&self, id: &str) -> Result<(), DbError> {
        self.db.delete(CONTAINERS, id)
    }
    pub fn containers(&self) -> Result<Vec<Container>, DbError> {
        self.db.all(CONTAINERS)
    }
}
