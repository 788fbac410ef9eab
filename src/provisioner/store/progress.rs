//! Pull progress, for clients that want to show it (`ucr pull`'s bars). Each layer being
//! brought in has one [`LayerTracker`], shared by every pull that needs the layer (as the
//! download itself is); each pull has one [`PullTracker`], shared by every caller joined
//! to that pull. The download path only adds to an atomic per chunk, so a pull nobody
//! watches pays next to nothing; watchers take [`PullTracker::snapshot`]s at their own
//! pace.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use crate::provisioner::puller::{LayerLocation, LayerSource};

/// Where a layer of a pull stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerState {
    /// Waiting for a download slot (`--max-concurrent-downloads`).
    Waiting = 0,
    Downloading = 1,
    /// Downloaded, verified and unpacked.
    Done = 2,
    /// Already in the store: nothing to fetch.
    Exists = 3,
}

impl LayerState {
    fn from_u8(v: u8) -> Self {
        match v {
            1 => Self::Downloading,
            2 => Self::Done,
            3 => Self::Exists,
            _ => Self::Waiting,
        }
    }
}

/// One layer's bytes so far (compressed bytes as they arrive, the unit of its size).
#[derive(Debug)]
pub struct LayerTracker {
    /// The blob digest, or the file name inside an archive.
    pub name: String,
    /// The announced size, when the source says (registry blobs; archive files).
    pub total: Option<u64>,
    done: AtomicU64,
    state: AtomicU8,
}

impl LayerTracker {
    pub fn new(layer: &LayerSource) -> Self {
        let (name, total) = match &layer.location {
            LayerLocation::Blob { digest, size } => (digest.to_string(), *size),
            LayerLocation::File(p) => (
                p.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| p.display().to_string()),
                std::fs::metadata(p).ok().map(|m| m.len()),
            ),
        };
        LayerTracker {
            name,
            total,
            done: AtomicU64::new(0),
            state: AtomicU8::new(LayerState::Waiting as u8),
        }
    }

    /// Called per chunk on the download path: one relaxed atomic add.
    pub fn add(&self, bytes: u64) {
        self.done.fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn set_state(&self, state: LayerState) {
        self.state.store(state as u8, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> LayerProgress {
        let state = LayerState::from_u8(self.state.load(Ordering::Relaxed));
        let mut done = self.done.load(Ordering::Relaxed);
        // A layer that was already there, or finished, counts as whole.
        if matches!(state, LayerState::Exists | LayerState::Done) {
            done = self.total.unwrap_or(done).max(done);
        }
        LayerProgress {
            name: self.name.clone(),
            done,
            total: self.total,
            state,
        }
    }
}

/// A layer's progress at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerProgress {
    pub name: String,
    pub done: u64,
    pub total: Option<u64>,
    pub state: LayerState,
}

/// One pull's layers, known once the reference is resolved (empty before).
#[derive(Debug, Default)]
pub struct PullTracker {
    layers: OnceLock<Vec<Arc<LayerTracker>>>,
}

impl PullTracker {
    pub(super) fn set_layers(&self, layers: Vec<Arc<LayerTracker>>) {
        let _ = self.layers.set(layers);
    }

    /// Base layer first; empty while the reference is being resolved.
    pub fn snapshot(&self) -> Vec<LayerProgress> {
        self.layers
            .get()
            .map(|l| l.iter().map(|t| t.snapshot()).collect())
            .unwrap_or_default()
    }
}

/// The trackers of what is in flight, keyed as the flights are (pull reference, layer
/// dedup key). Weak: a tracker lives as long as a pull or a watcher holds it.
#[derive(Default)]
pub(super) struct Trackers {
    pulls: Mutex<HashMap<String, Weak<PullTracker>>>,
    layers: Mutex<HashMap<String, Weak<LayerTracker>>>,
}

impl Trackers {
    pub fn pull(&self, key: &str) -> Arc<PullTracker> {
        get_or_insert(&self.pulls, key, PullTracker::default)
    }

    pub fn layer(&self, layer: &LayerSource) -> Arc<LayerTracker> {
        get_or_insert(&self.layers, &layer.dedup_key(), || {
            LayerTracker::new(layer)
        })
    }
}

fn get_or_insert<T>(
    map: &Mutex<HashMap<String, Weak<T>>>,
    key: &str,
    make: impl FnOnce() -> T,
) -> Arc<T> {
    let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(live) = map.get(key).and_then(Weak::upgrade) {
        return live;
    }
    // Forget the dead while we hold the lock: the map stays as small as what is in flight.
    map.retain(|_, w| w.strong_count() > 0);
    let fresh = Arc::new(make());
    map.insert(key.to_string(), Arc::downgrade(&fresh));
    fresh
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provisioner::reference::Digest;

    fn blob(data: &[u8], size: u64) -> LayerSource {
        LayerSource {
            location: LayerLocation::Blob {
                digest: Digest::sha256_of(data),
                size: Some(size),
            },
            diff_id: None,
            media_type: String::new(),
        }
    }

    #[test]
    fn shared_layers_share_one_tracker_and_finished_ones_count_whole() {
        let trackers = Trackers::default();
        let a = trackers.layer(&blob(b"a", 100));
        let again = trackers.layer(&blob(b"a", 100));
        assert!(
            Arc::ptr_eq(&a, &again),
            "two pulls of one layer see one count"
        );
        a.set_state(LayerState::Downloading);
        a.add(40);
        assert_eq!(again.snapshot().done, 40);
        assert_eq!(again.snapshot().state, LayerState::Downloading);
        a.set_state(LayerState::Done);
        assert_eq!(a.snapshot().done, 100);
        let pull = trackers.pull("r");
        assert!(pull.snapshot().is_empty(), "nothing before resolution");
        pull.set_layers(vec![a.clone()]);
        assert_eq!(trackers.pull("r").snapshot().len(), 1);
        drop((a, again, pull));
        // Nobody holds them: the next one is fresh.
        assert_eq!(trackers.layer(&blob(b"a", 100)).snapshot().done, 0);
    }
}
