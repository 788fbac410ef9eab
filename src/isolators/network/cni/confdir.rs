//! The config directory, kept current without a restart: CNI plugin installers (flannel,
//! calico, a DaemonSet of any kind) drop their config in after the runtime has started,
//! and kubelet keeps the node NotReady until the runtime reports the network ready.
//!
//! No watcher thread: on use, at most once per [`RESCAN_INTERVAL`], we stat the directory
//! and its config files (and the bin dirs, since a config whose plugins were missing
//! becomes valid when they are installed) and re-parse everything only if any name,
//! inode, size or mtime changed. Stat calls are cheap next to a pod start.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use super::conf::{self, NetworkList};
use super::exec::find_plugin;

/// How stale the loaded configs may be: kubelet polls the runtime status every few
/// seconds, so a second is invisible to it.
pub const RESCAN_INTERVAL: Duration = Duration::from_secs(1);

/// File extensions libcni loads, in the order it accepts them.
const EXTENSIONS: [&str; 3] = ["conflist", "conf", "json"];

/// One valid network and where it came from.
#[derive(Debug, Clone)]
pub struct Network {
    pub list: NetworkList,
    pub file: PathBuf,
}

/// The result of one scan.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Valid networks in file-name order; the first is the default. Names are unique
    /// (a later file reusing a name is skipped, as Mesos does).
    pub networks: Vec<Network>,
    /// Why each skipped file was skipped (for `ready()`'s reason).
    pub problems: Vec<String>,
}

impl Loaded {
    pub fn find(&self, name: &str) -> Option<&Network> {
        self.networks.iter().find(|n| n.list.name == name)
    }
}

/// What changes when anything we read changes: per path, its inode, size and mtime
/// (`None` when it does not exist).
#[derive(Debug, PartialEq, Eq)]
struct Stamp(Vec<(OsString, Option<FileStamp>)>);

type FileStamp = (u64, u64, SystemTime);

/// How recent an mtime must be to count as racy (filesystem timestamps come from a
/// coarse clock, a tick or more behind).
const RACY: Duration = Duration::from_secs(2);

impl Stamp {
    fn is_fresh(&self) -> bool {
        let now = SystemTime::now();
        self.0
            .iter()
            .filter_map(|(_, s)| s.as_ref())
            .any(|(_, _, mtime)| now.duration_since(*mtime).map_or(true, |age| age < RACY))
    }
}

pub struct ConfDir {
    dir: PathBuf,
    bin_dirs: Vec<PathBuf>,
    interval: Duration,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    checked: Option<Instant>,
    stamp: Option<Stamp>,
    loaded: Arc<Loaded>,
}

impl ConfDir {
    pub fn new(dir: PathBuf, bin_dirs: Vec<PathBuf>, interval: Duration) -> ConfDir {
        ConfDir {
            dir,
            bin_dirs,
            interval,
            state: Mutex::new(State::default()),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The current networks, rescanning first if the last check is older than the
    /// interval and something changed. Blocks on a few stat calls (and, after a change,
    /// on reading the files); callers are fine with that, it is bounded and rare.
    pub fn current(&self) -> Arc<Loaded> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let due = state.checked.is_none_or(|t| t.elapsed() >= self.interval);
        if due {
            state.checked = Some(Instant::now());
            let stamp = self.stamp();
            if state.stamp.as_ref() != Some(&stamp) {
                state.loaded = Arc::new(self.load());
                // A file modified within the clock's granularity of our read could be
                // rewritten again, same size, with the same mtime: do not trust the
                // stamp until it has aged ("racy git" has the same fix).
                state.stamp = (!stamp.is_fresh()).then_some(stamp);
            }
        }
        state.loaded.clone()
    }

    /// Config files in lexical order (libcni sorts the same way).
    fn files(&self) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| {
                p.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| EXTENSIONS.contains(&e))
            })
            .collect();
        files.sort();
        files
    }

    fn stamp(&self) -> Stamp {
        use std::os::unix::fs::MetadataExt;
        let meta = |p: &Path| {
            std::fs::metadata(p).ok().map(|m| {
                (
                    m.ino(),
                    m.size(),
                    m.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                )
            })
        };
        let mut parts = vec![(self.dir.clone().into_os_string(), meta(&self.dir))];
        for dir in &self.bin_dirs {
            parts.push((dir.clone().into_os_string(), meta(dir)));
        }
        for file in self.files() {
            let m = meta(&file);
            parts.push((file.into_os_string(), m));
        }
        Stamp(parts)
    }

    fn load(&self) -> Loaded {
        let mut loaded = Loaded::default();
        let files = self.files();
        if files.is_empty() {
            return loaded;
        }
        for file in files {
            match self.load_one(&file, &loaded) {
                Ok(list) => loaded.networks.push(Network { list, file }),
                Err(reason) => {
                    tracing::warn!("skipping CNI config {}: {reason}", file.display());
                    loaded
                        .problems
                        .push(format!("{}: {reason}", file.display()));
                }
            }
        }
        let names: Vec<&str> = loaded
            .networks
            .iter()
            .map(|n| n.list.name.as_str())
            .collect();
        tracing::info!("CNI networks in {}: {names:?}", self.dir.display());
        loaded
    }

    fn load_one(&self, file: &Path, so_far: &Loaded) -> Result<NetworkList, String> {
        let bytes = std::fs::read(file).map_err(|e| format!("reading: {e}"))?;
        let list = conf::parse(&bytes)?;
        if let Some(first) = so_far.find(&list.name) {
            return Err(format!(
                "network {:?} is already defined by {}",
                list.name,
                first.file.display()
            ));
        }
        for p in &list.plugins {
            if find_plugin(&self.bin_dirs, &p.kind).is_none() {
                return Err(format!(
                    "plugin {:?} not found in {}",
                    p.kind,
                    join_paths(&self.bin_dirs)
                ));
            }
        }
        Ok(list)
    }

    /// Why no network is usable, in words an operator can act on.
    pub fn not_ready_reason(&self, loaded: &Loaded) -> String {
        if !self.dir.is_dir() {
            return format!(
                "network config directory {} does not exist",
                self.dir.display()
            );
        }
        if loaded.problems.is_empty() {
            return format!("no network config found in {}", self.dir.display());
        }
        format!(
            "no valid network config found in {}: {}",
            self.dir.display(),
            loaded.problems.join("; ")
        )
    }
}

/// Paths joined with `:` (CNI_PATH, and messages).
pub fn join_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(":")
}
