//! Single-flight: concurrent requests for the same key share one run. The run is a
//! spawned task, so a caller that gives up (a cancelled `PullImage`) never cancels work
//! another caller is waiting for.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use futures::future::{BoxFuture, FutureExt, Shared};

type Flight<T, E> = Shared<BoxFuture<'static, Result<T, Arc<E>>>>;

pub struct Flights<T, E> {
    running: Mutex<HashMap<String, Flight<T, E>>>,
}

impl<T, E> Default for Flights<T, E> {
    fn default() -> Self {
        Flights {
            running: Mutex::new(HashMap::new()),
        }
    }
}

impl<T, E> Flights<T, E>
where
    T: Clone + Send + Sync + 'static,
    E: Send + Sync + 'static,
{
    /// Joins the run for `key`, or starts `work` as that run. Returns whether this call
    /// started it (for counting downloads in logs and tests).
    pub fn join<F>(self: &Arc<Self>, key: &str, work: F) -> (Flight<T, E>, bool)
    where
        F: Future<Output = Result<T, E>> + Send + 'static,
    {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(f) = running.get(key) {
            return (f.clone(), false);
        }
        let me = Arc::clone(self);
        let owned_key = key.to_string();
        // The task removes its own entry; it cannot do so before we insert it, because
        // it needs the lock we are holding.
        let handle = tokio::spawn(async move {
            let result = work.await.map_err(Arc::new);
            me.running
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&owned_key);
            result
        });
        let flight: Flight<T, E> = async move {
            match handle.await {
                Ok(r) => r,
                // The task panicked: surface it as a panic in every waiter too.
                Err(e) => std::panic::resume_unwind(e.into_panic()),
            }
        }
        .boxed()
        .shared();
        running.insert(key.to_string(), flight.clone());
        (flight, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn concurrent_callers_share_one_run_and_survive_cancellation() {
        let flights: Arc<Flights<u32, String>> = Arc::default();
        let runs = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let r = runs.clone();
        let (first, started) = flights.join("k", async move {
            r.fetch_add(1, Ordering::SeqCst);
            rx.await.map_err(|e| e.to_string())?;
            Ok(7)
        });
        assert!(started);
        let (second, started) = flights.join("k", async { Ok(99) });
        assert!(!started);
        drop(first); // the first caller gives up
        tx.send(()).expect("task alive");
        assert_eq!(second.await.expect("ok"), 7);
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        // Done runs are forgotten: the next call starts afresh.
        let (third, started) = flights.join("k", async { Ok(8) });
        assert!(started);
        assert_eq!(third.await.expect("ok"), 8);
    }
}
