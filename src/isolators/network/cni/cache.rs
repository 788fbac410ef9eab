//! The attachment cache: what DEL needs after a daemon restart, a reboot or the config
//! file's removal (the CNI spec has runtimes DEL with the config ADD used, and portmap
//! can only remove the rules it is told about).
//!
//! ```text
//! <cache_dir>/ucr/<container_id>/<ifname>.json   one Entry per attachment
//! ```
//! Ours alone (libcni's own `results/` files, should the dir be shared with another
//! runtime, have a different shape). An entry is written *pending* (no result) before the
//! first plugin runs and completed after the last, so a crash in between leaves a record
//! that a later DEL uses to undo whatever the plugins did. Writes are atomic and synced:
//! losing an entry would leak an IP and iptables rules for good.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::args::RuntimeArgs;
use super::error::CniError;

/// Bumped if the entry's meaning changes; entries of other formats are refused.
const FORMAT: u32 = 1;

/// One attachment as ADD set it up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub format: u32,
    pub network: String,
    /// The whole network list ADD ran (`conf::from_list` reads it back).
    pub config: Value,
    pub container_id: String,
    pub ifname: String,
    pub netns: PathBuf,
    pub runtime: RuntimeArgs,
    /// The final result; `None` while ADD is under way (or was interrupted).
    pub result: Option<Value>,
}

impl Entry {
    pub fn new(
        network: &str,
        config: Value,
        container_id: &str,
        ifname: &str,
        netns: &Path,
        runtime: RuntimeArgs,
    ) -> Entry {
        Entry {
            format: FORMAT,
            network: network.to_owned(),
            config,
            container_id: container_id.to_owned(),
            ifname: ifname.to_owned(),
            netns: netns.to_path_buf(),
            runtime,
            result: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
}

impl Cache {
    pub fn new(cache_dir: &Path) -> Cache {
        Cache {
            root: cache_dir.join("ucr"),
        }
    }

    fn dir(&self, container_id: &str) -> PathBuf {
        self.root.join(container_id)
    }

    pub fn path(&self, container_id: &str, ifname: &str) -> PathBuf {
        self.dir(container_id).join(format!("{ifname}.json"))
    }

    /// The entry, or `None` when there is none.
    pub fn read(&self, container_id: &str, ifname: &str) -> Result<Option<Entry>, CniError> {
        let path = self.path(container_id, ifname);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(CniError::Cache {
                    op: "reading",
                    path,
                    source,
                })
            }
        };
        let entry: Entry = serde_json::from_slice(&bytes).map_err(|e| CniError::CorruptCache {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        if entry.format != FORMAT {
            return Err(CniError::CorruptCache {
                path,
                reason: format!("unknown format {}", entry.format),
            });
        }
        Ok(Some(entry))
    }

    /// Writes the entry atomically and durably (temporary file, fsync, rename, fsync of
    /// the directory).
    pub fn write(&self, entry: &Entry) -> Result<(), CniError> {
        let dir = self.dir(&entry.container_id);
        let path = self.path(&entry.container_id, &entry.ifname);
        let err = |op, source| CniError::Cache {
            op,
            path: path.clone(),
            source,
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| err("creating the directory of", e))?;
        let bytes = serde_json::to_vec_pretty(entry)
            .map_err(|e| err("serialising", std::io::Error::other(e)))?;
        let temp = dir.join(format!(".{}.{}.tmp", entry.ifname, std::process::id()));
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temp)
            .and_then(|mut f| f.write_all(&bytes).and_then(|()| f.sync_all()))
            .and_then(|()| std::fs::rename(&temp, &path));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&temp);
            return Err(err("writing", e));
        }
        std::fs::File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| err("syncing the directory of", e))
    }

    /// Removes the entry (a missing one is fine), and the container's directory once it
    /// holds nothing else.
    pub fn remove(&self, container_id: &str, ifname: &str) -> Result<(), CniError> {
        let path = self.path(container_id, ifname);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(CniError::Cache {
                    op: "removing",
                    path,
                    source,
                })
            }
        }
        let dir = self.dir(container_id);
        // Temporary files a crash left behind would keep the directory forever.
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().ends_with(".tmp") {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        // Another interface of the same container may still be attached: then it stays.
        let _ = std::fs::remove_dir(&dir);
        Ok(())
    }
}

/// The same, off the async workers (they fsync).
impl Cache {
    pub async fn load(&self, container_id: &str, ifname: &str) -> Result<Option<Entry>, CniError> {
        let (cache, cid, ifname) = (self.clone(), container_id.to_owned(), ifname.to_owned());
        blocking(move || cache.read(&cid, &ifname)).await
    }

    pub async fn store(&self, entry: Entry) -> Result<(), CniError> {
        let cache = self.clone();
        blocking(move || cache.write(&entry)).await
    }

    pub async fn forget(&self, container_id: &str, ifname: &str) -> Result<(), CniError> {
        let (cache, cid, ifname) = (self.clone(), container_id.to_owned(), ifname.to_owned());
        blocking(move || cache.remove(&cid, &ifname)).await
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, CniError> + Send + 'static,
) -> Result<T, CniError> {
    tokio::task::spawn_blocking(work).await.unwrap_or_else(|e| {
        Err(CniError::Cache {
            op: "accessing",
            path: PathBuf::new(),
            source: std::io::Error::other(format!("cache task failed: {e}")),
        })
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn entry(ifname: &str) -> Entry {
        Entry::new(
            "net",
            serde_json::json!({"name": "net", "plugins": [{"type": "x"}]}),
            "c1",
            ifname,
            Path::new("/run/netns/x"),
            RuntimeArgs::default(),
        )
    }

    #[test]
    fn entries_round_trip_and_leave_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        assert_eq!(cache.read("c1", "eth0").unwrap(), None);
        let mut e = entry("eth0");
        cache.write(&e).unwrap();
        e.result = Some(serde_json::json!({"cniVersion": "1.0.0"}));
        cache.write(&e).unwrap();
        cache.write(&entry("eth1")).unwrap();
        assert_eq!(cache.read("c1", "eth0").unwrap(), Some(e));
        let names: Vec<_> = std::fs::read_dir(dir.path().join("ucr/c1"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 2, "no temporary files: {names:?}");
        cache.remove("c1", "eth0").unwrap();
        assert!(dir.path().join("ucr/c1").exists(), "eth1 is still there");
        cache.remove("c1", "eth1").unwrap();
        cache.remove("c1", "eth1").unwrap();
        assert!(!dir.path().join("ucr/c1").exists());
    }

    #[test]
    fn a_corrupt_entry_is_reported_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        std::fs::create_dir_all(dir.path().join("ucr/c1")).unwrap();
        std::fs::write(cache.path("c1", "eth0"), b"{").unwrap();
        let err = cache.read("c1", "eth0").unwrap_err().to_string();
        assert!(err.contains("ucr/c1/eth0.json is corrupt"), "{err}");
    }
}
