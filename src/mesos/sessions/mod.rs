//! Nested containers of the Mesos door: LAUNCH_NESTED_CONTAINER_SESSION (and the start
//! `nested` shares for LAUNCH_CONTAINER with a parent), and what WAIT/KILL/
//! REMOVE_CONTAINER and GET_CONTAINERS do with a nested id.
//!
//! A session is Mesos's DEBUG nested container: a process in its parent's namespaces and
//! cgroups, in the parent's filesystem, with the parent's environment under the
//! command's (the containerizer's exec session). Its life is the connection's: the
//! answer streams its output as RecordIO `ProcessIO` records and ends when it exits;
//! when the client goes away, the process is killed (and WAIT then says SIGKILL, 9).
//! Nested ids may go deeper (`a.b.c`); every one runs in the root container, which must
//! be a running standalone container, and every level in between must be a running
//! session.
//!
//! Sessions live in the daemon's memory only: their process is the daemon's child and
//! their connection is to the daemon, so neither outlives it. An ended session's wait
//! status is kept for WAIT until REMOVE_CONTAINER, for at most [`KEEP_ENDED`] and for
//! at most [`MAX_ENDED`] of them (the oldest goes first), and at most [`MAX_RUNNING`]
//! run at once (503 beyond): what a client can make the daemon keep is bounded.

mod launch;
mod live;

pub use launch::{launch, start, Debug};
pub use live::{Live, Reader, Sink};

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::StatusCode;

use super::calls::Agent;
use super::codec::Refused;
use crate::mesos::wire::v1::agent::response;
use crate::mesos::wire::v1::{ContainerId, ContainerStatus};

/// How long an ended session's status is kept for WAIT when nobody removes it.
pub const KEEP_ENDED: Duration = Duration::from_secs(3600);
/// How many ended sessions are remembered at most.
pub const MAX_ENDED: usize = 1024;
/// How many sessions may run at once: each holds a process and its copies.
pub const MAX_RUNNING: usize = 1024;
/// How long a killed session's process gets to be reaped before the session is dropped.
const REAP: Duration = Duration::from_secs(2);

/// The door's nested containers.
#[derive(Default)]
pub struct Sessions {
    nested: Mutex<HashMap<String, Nested>>,
    /// Standalone containers (with a terminal) an input connection is attached to.
    standalone_input: Mutex<std::collections::HashSet<String>>,
}

struct Nested {
    /// The full id as the client gave it.
    id: ContainerId,
    live: Arc<Live>,
    /// When it ended; `None` while it runs.
    ended_at: Option<Instant>,
}

/// How a nested container ended, as WAIT_CONTAINER tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ending {
    /// The raw wait(2) status.
    pub status: Option<i32>,
    pub message: Option<String>,
}

/// The levels of a nested id, root first, each checked as Mesos checks ids.
pub fn levels(id: &ContainerId) -> Result<Vec<&str>, Refused> {
    let mut out = Vec::new();
    let mut level = Some(id);
    while let Some(l) = level {
        out.push(
            super::containers::valid_id(&ContainerId {
                value: l.value.clone(),
                parent: None,
            })
            .map(|_| l.value.as_str())?,
        );
        // Ids are checked as they are given: a client cannot make this loop long, its
        // body is at most 4 MiB; but a 2-level id needs no more than a few levels.
        if out.len() > 32 {
            return Err(Refused(
                StatusCode::BAD_REQUEST,
                "Failed to validate agent::Call: container id is nested more than 32 levels".into(),
            ));
        }
        level = l.parent.as_deref();
    }
    out.reverse();
    Ok(out)
}

/// The registry key of a nested id: its levels joined by `.`, as Mesos prints ids
/// (no level may contain a `.`).
fn key(levels: &[&str]) -> String {
    levels.join(".")
}

impl Sessions {
    fn live(&self, key: &str) -> Option<(Arc<Live>, bool)> {
        let nested = self.nested.lock().unwrap_or_else(|e| e.into_inner());
        nested
            .get(key)
            .map(|n| (n.live.clone(), n.ended_at.is_none()))
    }

    /// A running session, for attaching.
    pub fn running(&self, id: &ContainerId) -> Result<Arc<Live>, Refused> {
        let levels = levels(id)?;
        match self.live(&key(&levels)) {
            Some((live, true)) => Ok(live),
            _ => Err(not_found(&levels)),
        }
    }

    /// Forgets every nested container below the standalone container `root` (its
    /// removal: their sandboxes went with its own, and a later container of the same id
    /// starts with none). Returns how many.
    pub fn forget_below(&self, root: &str) -> usize {
        let prefix = format!("{root}.");
        let mut nested = self.nested.lock().unwrap_or_else(|e| e.into_inner());
        let before = nested.len();
        nested.retain(|k, _| !k.starts_with(&prefix));
        before - nested.len()
    }

    /// One input connection per standalone container at a time: `false` when taken.
    pub fn claim_standalone_input(&self, id: &str) -> bool {
        self.standalone_input
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.to_string())
    }

    pub fn release_standalone_input(&self, id: &str) {
        self.standalone_input
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }

    fn ended(&self, key: &str, ending: &Ending) {
        let mut nested = self.nested.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = nested.get_mut(key) {
            n.ended_at = Some(Instant::now());
        }
        tracing::info!(container = key, status = ?ending.status, "nested container ended");
        forget_old(&mut nested);
    }
}

/// Drops ended sessions past [`KEEP_ENDED`], then the oldest beyond [`MAX_ENDED`].
fn forget_old(nested: &mut HashMap<String, Nested>) {
    nested.retain(|_, n| n.ended_at.is_none_or(|t| t.elapsed() < KEEP_ENDED));
    let mut ended: Vec<(Instant, String)> = nested
        .iter()
        .filter_map(|(k, n)| n.ended_at.map(|t| (t, k.clone())))
        .collect();
    if ended.len() > MAX_ENDED {
        ended.sort();
        for (_, k) in &ended[..ended.len() - MAX_ENDED] {
            nested.remove(k);
        }
    }
}

fn not_found(levels: &[&str]) -> Refused {
    Refused(
        StatusCode::NOT_FOUND,
        format!("Container {} cannot be found", key(levels)),
    )
}

fn bad(message: String) -> Refused {
    Refused(StatusCode::BAD_REQUEST, message)
}

/// LAUNCH_NESTED_CONTAINER_SESSION: 200 with the session's output as it comes, 202 when
/// WAIT_CONTAINER on a nested id: blocks until it ends; 404 unknown.
pub async fn wait(
    agent: &Agent,
    id: &ContainerId,
) -> Result<crate::mesos::wire::v1::agent::Response, Refused> {
    let levels = levels(id)?;
    let Some((live, _)) = agent.sessions.live(&key(&levels)) else {
        return Err(not_found(&levels));
    };
    let mut ended = live.ended.clone();
    let ending = ended
        .wait_for(Option::is_some)
        .await
        .map(|e| e.clone())
        .ok()
        .flatten()
        .unwrap_or(Ending {
            status: None,
            message: Some("the session's supervisor went away".into()),
        });
    Ok(crate::mesos::wire::v1::agent::Response {
        r#type: Some(response::Type::WaitContainer as i32),
        wait_container: Some(response::WaitContainer {
            exit_status: ending.status,
            message: ending.message,
        }),
        ..Default::default()
    })
}

/// KILL_CONTAINER on a nested id: 404 unknown or ended. `ucr nsexec` can pass on SIGKILL,
/// SIGTERM, SIGINT, SIGHUP and SIGQUIT; other signals are refused rather than changed.
pub async fn kill(agent: &Agent, id: &ContainerId, signal: i32) -> Result<(), Refused> {
    let levels = levels(id)?;
    let passed = [
        libc::SIGKILL,
        libc::SIGTERM,
        libc::SIGINT,
        libc::SIGHUP,
        libc::SIGQUIT,
    ];
    if !passed.contains(&signal) {
        return Err(bad(format!(
            "Failed to validate agent::Call: signal {signal} cannot be sent to a nested \
             container by ucr (SIGKILL, SIGTERM, SIGINT, SIGHUP or SIGQUIT can)"
        )));
    }
    let (live, true) = agent
        .sessions
        .live(&key(&levels))
        .ok_or_else(|| not_found(&levels))?
    else {
        return Err(Refused(
            StatusCode::NOT_FOUND,
            format!("Container {} is not running", key(&levels)),
        ));
    };
    *live.killed_with.lock().unwrap_or_else(|e| e.into_inner()) = Some(signal);
    match &live.signal {
        Some(tx) if tx.send(signal).await.is_ok() => Ok(()),
        _ => Err(Refused(
            StatusCode::NOT_FOUND,
            format!("Container {} is not running", key(&levels)),
        )),
    }
}

/// REMOVE_CONTAINER on a nested id: forgets an ended one; a running or unknown one is
/// 500, as the agent answers.
pub fn remove(agent: &Agent, id: &ContainerId) -> Result<(), Refused> {
    let levels = levels(id)?;
    let key = key(&levels);
    let mut nested = agent
        .sessions
        .nested
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    match nested.get(&key) {
        None => Err(Refused(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("Container {key} cannot be found"),
        )),
        Some(n) if n.ended_at.is_none() => Err(Refused(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("Container {key} is running: kill it first"),
        )),
        Some(_) => {
            nested.remove(&key);
            // A nested container launched without a session has a sandbox (see
            // `nested`); nobody needs it once the container is forgotten.
            let sandbox = super::nested::sandbox(&agent.sandboxes, &levels);
            if let Err(e) = std::fs::remove_dir_all(&sandbox) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(sandbox = %sandbox.display(), error = %e, "removing a nested sandbox");
                }
            }
            Ok(())
        }
    }
}

/// GET_CONTAINERS' entries for the running nested containers (`show_nested`): the leaf
/// id as `container_id`, as the agent lists them, the whole id in the status.
pub fn list(agent: &Agent) -> Vec<response::get_containers::Container> {
    let nested = agent
        .sessions
        .nested
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let mut out: Vec<_> = nested
        .values()
        .filter(|n| n.ended_at.is_none())
        .map(|n| response::get_containers::Container {
            container_id: ContainerId {
                value: n.id.value.clone(),
                parent: None,
            },
            container_status: Some(ContainerStatus {
                container_id: Some(n.id.clone()),
                ..Default::default()
            }),
            resource_statistics: None,
        })
        .collect();
    out.sort_by(|a, b| a.container_id.value.cmp(&b.container_id.value));
    out
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;

    use tokio::sync::watch;

    use super::*;

    fn nested(path: &[&str]) -> ContainerId {
        let mut id: Option<ContainerId> = None;
        for v in path {
            id = Some(ContainerId {
                value: v.to_string(),
                parent: id.map(Box::new),
            });
        }
        id.expect("a level")
    }

    #[test]
    fn every_level_is_checked_root_first() {
        assert_eq!(
            levels(&nested(&["a", "b", "c"])).expect("ok"),
            ["a", "b", "c"]
        );
        assert_eq!(key(&["a", "b"]), "a.b");
        for bad in [&["a", "b.c"][..], &["a/b", "c"], &["", "c"], &["a", "b c"]] {
            let id = nested(bad);
            let r = levels(&id).map(|_| ()).map_err(|r| r.0);
            assert_eq!(r, Err(StatusCode::BAD_REQUEST), "{bad:?}");
        }
        let deep: Vec<String> = (0..40).map(|i| format!("l{i}")).collect();
        let deep: Vec<&str> = deep.iter().map(String::as_str).collect();
        let id = nested(&deep);
        assert_eq!(
            levels(&id).map(|_| ()).map_err(|r| r.0),
            Err(StatusCode::BAD_REQUEST)
        );
    }

    #[test]
    fn ended_sessions_are_bounded() {
        let (_tx, rx) = watch::channel(None);
        let live = Arc::new(Live {
            tty: false,
            readers: Mutex::new(Some(Vec::new())),
            stdin: tokio::sync::Mutex::new(None),
            input_busy: AtomicBool::new(false),
            resize: None,
            signal: None,
            killed_with: Mutex::new(None),
            ended: rx,
        });
        let mut map = HashMap::new();
        let now = Instant::now();
        for i in 0..MAX_ENDED + 10 {
            map.insert(
                format!("p.{i}"),
                Nested {
                    id: nested(&["p", "x"]),
                    live: live.clone(),
                    ended_at: Some(now + Duration::from_millis(i as u64)),
                },
            );
        }
        map.insert(
            "p.running".into(),
            Nested {
                id: nested(&["p", "running"]),
                live: live.clone(),
                ended_at: None,
            },
        );
        if let Some(old) = now.checked_sub(KEEP_ENDED + Duration::from_secs(1)) {
            map.insert(
                "p.stale".into(),
                Nested {
                    id: nested(&["p", "stale"]),
                    live,
                    ended_at: Some(old),
                },
            );
        }
        forget_old(&mut map);
        assert_eq!(map.len(), MAX_ENDED + 1);
        assert!(map.contains_key("p.running"));
        assert!(!map.contains_key("p.stale"));
        // The oldest went first.
        assert!(!map.contains_key("p.0") && map.contains_key(&format!("p.{}", MAX_ENDED + 9)));
    }
}
