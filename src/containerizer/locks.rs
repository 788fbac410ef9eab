//! Per-pod and per-container locks. A pod's lock is shared by what needs the pod to stay
//! as it is (creating and starting its containers) and exclusive for what changes it
//! (stopping and removing it), so StartContainer cannot run after StopPodSandbox tore the
//! network down, nor CreateContainer finish after RemovePodSandbox. A container's lock
//! serialises its own lifecycle calls.
//!
//! Order: a pod's lock before any of its containers' (every caller takes them so), so
//! the two kinds never deadlock.
//!
//! An entry is dropped only when nobody holds it or waits for it (the map's `Arc` is then
//! the only one); otherwise a caller that got the lock after its removal and one that
//! came later would hold two different locks for the same id.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{
    Mutex as AsyncMutex, OwnedMutexGuard, OwnedRwLockReadGuard, OwnedRwLockWriteGuard, RwLock,
};

#[derive(Default)]
pub struct Locks {
    pods: Mutex<HashMap<String, Arc<RwLock<()>>>>,
    containers: Mutex<HashMap<String, Arc<AsyncMutex<()>>>>,
    /// Held (briefly, never across an await) while recording a container's end, so that
    /// of two callers noticing it at once one records it and emits STOPPED; per
    /// container, so one slow fsync delays no other container's status.
    records: Mutex<HashMap<String, Arc<Mutex<()>>>>,
}

pub type PodShared = OwnedRwLockReadGuard<()>;
pub type PodExclusive = OwnedRwLockWriteGuard<()>;
pub type ContainerGuard = OwnedMutexGuard<()>;

impl Locks {
    fn pod(&self, id: &str) -> Arc<RwLock<()>> {
        entry(&self.pods, id)
    }

    pub async fn pod_shared(&self, id: &str) -> PodShared {
        self.pod(id).read_owned().await
    }

    pub async fn pod_exclusive(&self, id: &str) -> PodExclusive {
        self.pod(id).write_owned().await
    }

    pub async fn container(&self, id: &str) -> ContainerGuard {
        entry(&self.containers, id).lock_owned().await
    }

    pub fn record(&self, id: &str) -> Arc<Mutex<()>> {
        entry(&self.records, id)
    }

    /// Forgets the lock of a removed pod or container, unless someone holds or awaits it.
    pub fn forget(&self, id: &str) {
        unused_removed(&self.pods, id);
        unused_removed(&self.containers, id);
        unused_removed(&self.records, id);
    }
}

fn entry<T: Default>(map: &Mutex<HashMap<String, Arc<T>>>, id: &str) -> Arc<T> {
    map.lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(id.to_string())
        .or_default()
        .clone()
}

fn unused_removed<T>(map: &Mutex<HashMap<String, Arc<T>>>, id: &str) {
    let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
    if map.get(id).is_some_and(|a| Arc::strong_count(a) == 1) {
        map.remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_held_lock_is_not_forgotten_and_pods_are_shared_or_exclusive() {
        let locks = Locks::default();
        let held = locks.container("c").await;
        locks.forget("c");
        // Still the same lock: a second caller waits for the first.
        let waiting =
            tokio::time::timeout(std::time::Duration::from_millis(50), locks.container("c")).await;
        assert!(waiting.is_err(), "got a second lock for the same id");
        drop(held);
        locks.forget("c");
        assert!(locks.containers.lock().expect("map").is_empty());

        let a = locks.pod_shared("p").await;
        let b = locks.pod_shared("p").await;
        let excl = tokio::time::timeout(
            std::time::Duration::from_millis(50),
            locks.pod_exclusive("p"),
        )
        .await;
        assert!(excl.is_err(), "exclusive while shared");
        drop((a, b));
        let _excl = locks.pod_exclusive("p").await;
    }
}
