//! Records as JSON in an embedded redb database: what the containerizer's database
//! (`containerizer/db.rs`) and the image store's (`provisioner/store/db.rs`) share. Why
//! redb and why JSON records: see the latter. Each database names itself ("metadata",
//! "containerizer") so its errors say which one failed.

use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use redb::{
    Database, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition, TableError,
    WriteTransaction,
};
use serde::{de::DeserializeOwned, Serialize};

/// A table of JSON records by key.
pub type JsonTable = TableDefinition<'static, &'static str, &'static [u8]>;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("{name} database {op}: {source}")]
    Db {
        name: &'static str,
        op: &'static str,
        source: Box<redb::Error>,
    },
    #[error("{name} record {key} is corrupt: {source}")]
    Corrupt {
        name: &'static str,
        key: String,
        source: serde_json::Error,
    },
}

/// A redb database and the name its errors carry.
pub struct JsonDb {
    db: Database,
    name: &'static str,
}

impl JsonDb {
    /// Opens (creating if missing) the database at `path`, then runs `create_tables` in
    /// one committed transaction: opening every table once there means readers never meet
    /// a missing one.
    pub fn open(
        path: &Path,
        name: &'static str,
        create_tables: impl FnOnce(&WriteTransaction) -> Result<(), TableError>,
    ) -> Result<Self, DbError> {
        // Created 0600: records hold container environments (see `perm`).
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(crate::perm::PRIVATE_FILE)
            .open(path)
            .map_err(|e| db_err(name, "open")(redb::StorageError::from(e)))?;
        let db = redb::backends::FileBackend::new(file)
            .and_then(|backend| redb::Builder::new().create_with_backend(backend))
            .map_err(db_err(name, "open"))?;
        let db = JsonDb { db, name };
        let txn = db.begin_write()?;
        create_tables(&txn).map_err(db.err("create table"))?;
        txn.commit().map_err(db.err("commit"))?;
        Ok(db)
    }

    /// Maps a redb failure of `op` to [`DbError::Db`].
    pub fn err<E: Into<redb::Error>>(&self, op: &'static str) -> impl FnOnce(E) -> DbError {
        db_err(self.name, op)
    }

    pub fn begin_write(&self) -> Result<WriteTransaction, DbError> {
        self.db.begin_write().map_err(self.err("begin"))
    }

    pub fn begin_read(&self) -> Result<ReadTransaction, DbError> {
        self.db.begin_read().map_err(self.err("begin read"))
    }

    /// Stores `value` under `key`, in a transaction of its own.
    pub fn put<T: Serialize>(&self, table: JsonTable, key: &str, value: &T) -> Result<(), DbError> {
        let bytes = encode(value);
        let txn = self.begin_write()?;
        txn.open_table(table)
            .map_err(self.err("open table"))?
            .insert(key, bytes.as_slice())
            .map_err(self.err("insert"))?;
        txn.commit().map_err(self.err("commit"))
    }

    /// Removes `key`, in a transaction of its own; a missing key is fine.
    pub fn delete(&self, table: JsonTable, key: &str) -> Result<(), DbError> {
        let txn = self.begin_write()?;
        txn.open_table(table)
            .map_err(self.err("open table"))?
            .remove(key)
            .map_err(self.err("remove"))?;
        txn.commit().map_err(self.err("commit"))
    }

    pub fn get<T: DeserializeOwned>(
        &self,
        table: JsonTable,
        key: &str,
    ) -> Result<Option<T>, DbError> {
        let txn = self.begin_read()?;
        let t = txn.open_table(table).map_err(self.err("open table"))?;
        let Some(v) = t.get(key).map_err(self.err("get"))? else {
            return Ok(None);
        };
        self.decode(key, v.value()).map(Some)
    }

    /// Every record of `table`, in key order.
    pub fn all<T: DeserializeOwned>(&self, table: JsonTable) -> Result<Vec<T>, DbError> {
        let txn = self.begin_read()?;
        let t = txn.open_table(table).map_err(self.err("open table"))?;
        let mut out = Vec::new();
        for entry in t.iter().map_err(self.err("scan"))? {
            let (k, v) = entry.map_err(self.err("scan"))?;
            out.push(self.decode(k.value(), v.value())?);
        }
        Ok(out)
    }

    fn decode<T: DeserializeOwned>(&self, key: &str, bytes: &[u8]) -> Result<T, DbError> {
        serde_json::from_slice(bytes).map_err(|source| DbError::Corrupt {
            name: self.name,
            key: key.to_string(),
            source,
        })
    }
}

/// A record's JSON. Our records are plain structs with string keys, which always
/// serialize; were one not to, the empty value stored would read back as corrupt.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

fn db_err<E: Into<redb::Error>>(name: &'static str, op: &'static str) -> impl FnOnce(E) -> DbError {
    move |e| DbError::Db {
        name,
        op,
        source: Box::new(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: JsonTable = JsonTable::new("t");

    fn open(dir: &tempfile::TempDir) -> JsonDb {
        JsonDb::open(&dir.path().join("db.redb"), "test", |txn| {
            txn.open_table(T)?;
            Ok(())
        })
        .expect("open")
    }

    #[test]
    fn records_round_trip_and_go() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = open(&dir);
        assert_eq!(db.all::<u32>(T).expect("all"), Vec::<u32>::new());
        db.put(T, "b", &2u32).expect("put");
        db.put(T, "a", &1u32).expect("put");
        assert_eq!(db.get::<u32>(T, "a").expect("get"), Some(1));
        assert_eq!(db.all::<u32>(T).expect("all"), vec![1, 2], "key order");
        db.delete(T, "a").expect("delete");
        db.delete(T, "a").expect("deleting a missing key is fine");
        assert_eq!(db.get::<u32>(T, "a").expect("get"), None);
    }

    #[test]
    fn a_corrupt_record_names_its_database_and_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = open(&dir);
        db.put(T, "k", &"not a number").expect("put");
        let err = db.get::<u32>(T, "k").expect_err("corrupt");
        assert!(
            err.to_string().starts_with("test record k is corrupt: "),
            "{err}"
        );
        assert!(db.all::<u32>(T).is_err());
    }
}
