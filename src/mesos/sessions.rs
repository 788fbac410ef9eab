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

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Response, StatusCode};
use tokio::sync::{mpsc, watch};

use super::calls::Agent;
use super::codec::{Format, Refused};
use super::command::{self, CommandInfo};
use super::stream::{self, Body, Media};
use super::wire::v1::agent::{call, process_io, response};
use super::wire::v1::{container_info, ContainerId, ContainerStatus};
use crate::containerizer::session::{OutputStream, Session, SessionEnd, SessionStreams, TermSize};
use crate::containerizer::types::ContainerState;
use crate::containerizer::ExecCommand;
use crate::error::{ErrorKind, Kind};
use crate::isolators::docker::runtime::ImageRuntime;

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

/// A session's shared parts: its output readers, its input, its end.
pub struct Live {
    pub tty: bool,
    /// `None` once the output is over: a reader added then gets an ended stream.
    readers: Mutex<Option<Vec<Reader>>>,
    /// Taken by the input attachment while it lasts (one at a time); `None` for good
    /// once it closed stdin.
    stdin: tokio::sync::Mutex<Option<mpsc::Sender<Bytes>>>,
    input_busy: AtomicBool,
    resize: Option<mpsc::Sender<TermSize>>,
    signal: Option<mpsc::Sender<i32>>,
    /// The last signal KILL_CONTAINER sent, to tell a kill from an exit code.
    killed_with: Mutex<Option<i32>>,
    ended: watch::Receiver<Option<Ending>>,
}

/// One client reading a session's output, in its own encoding.
pub struct Reader {
    format: Format,
    tx: mpsc::Sender<Bytes>,
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
/// the id exists (as the agent answers a launch of a known id), 400 for a parent that is
/// unknown or not running.
pub async fn launch(
    agent: &Agent,
    launch: &call::LaunchNestedContainerSession,
    media: &Media,
) -> Result<Response<Body>, Refused> {
    let levels = levels(&launch.container_id)?;
    if levels.len() < 2 {
        return Err(bad(
            "Failed to validate agent::Call: Expecting \
             'launch_nested_container_session.container_id.parent' to be present"
                .into(),
        ));
    }
    let what = Debug::new(launch.container.as_ref(), launch.command.as_ref())?;
    let (tx, rx) = mpsc::channel(stream::QUEUE);
    let sink = Sink::Client(Reader {
        format: media.output,
        tx,
    });
    if !start(agent, &launch.container_id, &levels, what, sink).await? {
        let mut resp = Response::new(stream::full(Bytes::new()));
        *resp.status_mut() = StatusCode::ACCEPTED;
        return Ok(resp);
    }
    Ok(stream::streaming_response(media, rx))
}

/// What a DEBUG nested container runs, from its call.
pub struct Debug {
    exec: ExecCommand,
    tty: bool,
}

impl Debug {
    /// The command resolved, and the container info checked: no image (501: not
    /// implemented), MESOS only (400).
    pub fn new(
        container: Option<&super::wire::v1::ContainerInfo>,
        command: Option<&super::wire::v1::CommandInfo>,
    ) -> Result<Self, Refused> {
        let mut tty_size = None;
        let mut tty = false;
        if let Some(info) = container {
            if info.r#type() != container_info::Type::Mesos {
                return Err(bad(format!(
                    "unsupported ContainerInfo type {} for a nested container",
                    info.r#type().as_str_name()
                )));
            }
            if info.mesos.as_ref().and_then(|m| m.image.as_ref()).is_some() {
                return Err(Refused(
                    StatusCode::NOT_IMPLEMENTED,
                    "a nested container with its own image is not implemented by ucr yet: \
                     nested containers run in their parent's filesystem (leave out \
                     `container.mesos.image`)"
                        .into(),
                ));
            }
            if let Some(t) = &info.tty_info {
                tty = true;
                tty_size = t.window_size.as_ref().map(|w| TermSize {
                    width: w.columns.min(u16::MAX as u32) as u16,
                    height: w.rows.min(u16::MAX as u32) as u16,
                });
            }
        }
        let cmd = command.cloned().unwrap_or_default();
        if cmd.user.is_some() {
            return Err(Refused(
                StatusCode::NOT_IMPLEMENTED,
                "`command.user` for a nested container is not implemented by ucr yet: it \
                 runs as its parent's user"
                    .into(),
            ));
        }
        // A DEBUG container has no image: the command alone decides (ucr-spec.md §5.1's
        // table with E- and C-).
        let resolved = command::mesos_launch(
            &ImageRuntime::default(),
            &CommandInfo {
                shell: cmd.shell,
                value: cmd.value.clone(),
                arguments: cmd.arguments.clone(),
            },
        )
        .map_err(|e| bad(format!("Failed to resolve the command: {e}")))?;
        let mut exec = ExecCommand {
            argv: if resolved.argv.is_empty() {
                vec![resolved.executable.clone()]
            } else {
                resolved.argv
            },
            executable: Some(resolved.executable),
            env: cmd
                .environment
                .iter()
                .flat_map(|e| &e.variables)
                .map(|v| (v.name.clone(), v.value.clone().unwrap_or_default()))
                .collect(),
            window: None,
        };
        // The terminal has its size before the command runs, as in Mesos.
        exec.window = tty_size;
        Ok(Self { exec, tty })
    }
}

/// Where a nested container's own output goes: its session's client, or (launched
/// without a session) files in its sandbox.
pub enum Sink {
    Client(Reader),
    Files {
        stdout: tokio::fs::File,
        stderr: tokio::fs::File,
    },
}

/// Starts a nested container under its running parent; `false` when the id exists.
pub async fn start(
    agent: &Agent,
    id: &ContainerId,
    levels: &[&str],
    what: Debug,
    sink: Sink,
) -> Result<bool, Refused> {
    let key = key(levels);
    let root = levels[0];
    check_parent(agent, levels).await?;

    // Claimed before the process starts, so a second launch of the id waits for
    // nothing and gets 202.
    let (ended_tx, ended_rx) = watch::channel(None);
    let placeholder = Arc::new(Live {
        tty: what.tty,
        readers: Mutex::new(Some(Vec::new())),
        stdin: tokio::sync::Mutex::new(None),
        input_busy: AtomicBool::new(false),
        resize: None,
        signal: None,
        killed_with: Mutex::new(None),
        ended: ended_rx.clone(),
    });
    {
        let mut nested = agent
            .sessions
            .nested
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if nested.contains_key(&key) {
            return Ok(false);
        }
        if nested.values().filter(|n| n.ended_at.is_none()).count() >= MAX_RUNNING {
            return Err(Refused(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("{MAX_RUNNING} nested containers run already: end some first"),
            ));
        }
        nested.insert(
            key.clone(),
            Nested {
                id: id.clone(),
                live: placeholder,
                ended_at: None,
            },
        );
    }
    let streams = SessionStreams {
        // Always: ATTACH_CONTAINER_INPUT may come later, as Mesos's switchboard
        // always has the container's stdin.
        stdin: true,
        stdout: true,
        stderr: !what.tty,
        tty: what.tty,
    };
    let mut session = match agent
        .core
        .containerizer
        .exec_command_session(root, &what.exec, streams)
        .await
    {
        Ok(s) => s,
        Err(e) => {
            agent
                .sessions
                .nested
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&key);
            let status = match e.kind() {
                ErrorKind::Internal | ErrorKind::Unavailable => StatusCode::INTERNAL_SERVER_ERROR,
                _ => StatusCode::BAD_REQUEST,
            };
            return Err(Refused(
                status,
                format!(
                    "Failed to launch nested container {key}: {}",
                    crate::error::chain(&e)
                ),
            ));
        }
    };
    let live = Arc::new(Live {
        tty: what.tty,
        readers: Mutex::new(Some(Vec::new())),
        // Moved, not cloned: the input's end of file is this sender's drop.
        stdin: tokio::sync::Mutex::new(session.stdin.take()),
        input_busy: AtomicBool::new(false),
        resize: session.resize.clone(),
        signal: session.signal.clone(),
        killed_with: Mutex::new(None),
        ended: ended_rx,
    });
    if let Some(n) = agent
        .sessions
        .nested
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_mut(&key)
    {
        n.live = live.clone();
    }
    tracing::info!(container = %key, tty = what.tty, "nested container started");
    let sessions = agent.sessions.clone();
    tokio::spawn(async move {
        let ending = pump(session, sink, &live).await;
        sessions.ended(&key, &ending);
        let _ = ended_tx.send(Some(ending));
    });
    Ok(true)
}

/// The parent must exist and run: the root a standalone container, every level between
/// a running session. Else 400, as the agent refuses a launch under an unknown parent.
async fn check_parent(agent: &Agent, levels: &[&str]) -> Result<(), Refused> {
    let root = levels[0];
    match agent.core.containerizer.container_status(root).await {
        Ok(c) if c.pod_id.is_none() && c.state == ContainerState::Running => {}
        Ok(c) if c.pod_id.is_none() => {
            return Err(bad(format!(
                "Parent container {root} is not running ({:?})",
                c.state
            )))
        }
        // A CRI container is not the Mesos door's to see.
        _ => return Err(bad(format!("Unknown parent container {root}"))),
    }
    for depth in 2..levels.len() {
        let parent = key(&levels[..depth]);
        if !matches!(agent.sessions.live(&parent), Some((_, true))) {
            return Err(bad(format!("Unknown parent container {parent}")));
        }
    }
    Ok(())
}

/// Copies the session's output to its sink and readers until it ends, heartbeats on
/// idle streams; kills the process when the session's own client goes away.
async fn pump(mut session: Session, mut sink: Sink, live: &Live) -> Ending {
    let mut heartbeat = tokio::time::interval(stream::HEARTBEAT);
    heartbeat.tick().await;
    let detached = loop {
        tokio::select! {
            chunk = session.output.recv() => {
                let Some((which, bytes)) = chunk else { break false };
                let stream_type = match which {
                    OutputStream::Stdout => process_io::data::Type::Stdout,
                    OutputStream::Stderr => process_io::data::Type::Stderr,
                };
                let io = stream::data(stream_type, bytes.clone());
                // Its own client is waited for (back-pressure to the process); extra
                // readers are not, and one that falls a queue behind is cut off.
                let sent = match &mut sink {
                    Sink::Client(primary) => tokio::select! {
                        r = primary.tx.send(stream::record(primary.format, &io)) => r.is_ok(),
                        _ = primary.tx.closed() => false,
                    },
                    Sink::Files { stdout, stderr } => {
                        use tokio::io::AsyncWriteExt;
                        let file = if which == OutputStream::Stderr { stderr } else { stdout };
                        if let Err(e) = file.write_all(&bytes).await {
                            tracing::warn!(error = %e, "writing a nested container's output");
                        }
                        true
                    }
                };
                if !sent {
                    break true;
                }
                fan_out(live, &io);
            }
            _ = client_gone(&sink) => break true,
            _ = heartbeat.tick() => {
                let io = stream::heartbeat();
                if let Sink::Client(primary) = &sink {
                    let _ = primary.tx.try_send(stream::record(primary.format, &io));
                }
                fan_out(live, &io);
            }
        }
    };
    if detached {
        // The client went away: the process goes, killed and reaped.
        tracing::info!("nested container session's client went away: killing it");
        if let Some(signal) = &session.signal {
            let _ = signal.send(libc::SIGKILL).await;
        }
        let end = tokio::time::timeout(REAP, &mut session.end).await;
        drop(session);
        live.close_readers();
        let _ = end;
        return Ending {
            status: Some(libc::SIGKILL),
            message: Some("Killed: the session's connection closed".into()),
        };
    }
    let end = (&mut session.end).await;
    drop(sink);
    live.close_readers();
    let killed_with = *live.killed_with.lock().unwrap_or_else(|e| e.into_inner());
    match end.unwrap_or(Ok(SessionEnd::Detached)) {
        Ok(SessionEnd::Exited(code)) => Ending {
            status: Some(wait_status(code, killed_with)),
            message: None,
        },
        Ok(SessionEnd::Detached) => Ending {
            status: Some(libc::SIGKILL),
            message: None,
        },
        Err(e) => Ending {
            status: None,
            message: Some(crate::error::chain(&e)),
        },
    }
}

/// The raw wait status from `ucr exec`'s exit code (the command's, 128 + signal when
/// killed): a code of 128 + the signal KILL_CONTAINER sent is that signal; others are
/// exit codes (a command may exit 137 on its own).
fn wait_status(code: i32, killed_with: Option<i32>) -> i32 {
    match killed_with {
        Some(sig) if code == 128 + sig => sig,
        _ => (code & 0xff) << 8,
    }
}

/// Resolves when a session's client went away; never for files.
async fn client_gone(sink: &Sink) {
    match sink {
        Sink::Client(primary) => primary.tx.closed().await,
        Sink::Files { .. } => std::future::pending().await,
    }
}

fn fan_out(live: &Live, io: &super::wire::v1::agent::ProcessIo) {
    let mut readers = live.readers.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(readers) = readers.as_mut() {
        readers.retain(|r| r.tx.try_send(stream::record(r.format, io)).is_ok());
    }
}

impl Live {
    /// Another reader of the output from now on (ATTACH_CONTAINER_OUTPUT).
    pub fn add_reader(&self, format: Format) -> mpsc::Receiver<Bytes> {
        let (tx, rx) = mpsc::channel(stream::QUEUE);
        if let Some(readers) = self
            .readers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            readers.push(Reader { format, tx });
        }
        rx
    }

    /// Ends every reader's stream, and those added later.
    fn close_readers(&self) {
        self.readers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
    }

    /// The input attachment's claim; `false` when another one holds it.
    pub fn claim_input(&self) -> bool {
        !self.input_busy.swap(true, Ordering::SeqCst)
    }

    pub fn release_input(&self) {
        self.input_busy.store(false, Ordering::SeqCst);
    }

    pub fn stdin(&self) -> &tokio::sync::Mutex<Option<mpsc::Sender<Bytes>>> {
        &self.stdin
    }

    pub fn resize(&self) -> Option<&mpsc::Sender<TermSize>> {
        self.resize.as_ref()
    }

    /// Resolves when the session has ended.
    pub async fn ended(&self) {
        let mut ended = self.ended.clone();
        let _ = ended.wait_for(Option::is_some).await;
    }
}

/// WAIT_CONTAINER on a nested id: blocks until it ends; 404 unknown.
pub async fn wait(
    agent: &Agent,
    id: &ContainerId,
) -> Result<super::wire::v1::agent::Response, Refused> {
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
    Ok(super::wire::v1::agent::Response {
        r#type: Some(response::Type::WaitContainer as i32),
        wait_container: Some(response::WaitContainer {
            exit_status: ending.status,
            message: ending.message,
        }),
        ..Default::default()
    })
}

/// KILL_CONTAINER on a nested id: 404 unknown or ended. `ucr exec` can pass on SIGKILL,
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
                executor_pid: None,
            }),
            resource_statistics: None,
        })
        .collect();
    out.sort_by(|a, b| a.container_id.value.cmp(&b.container_id.value));
    out
}

#[cfg(test)]
mod tests {
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
    fn wait_statuses_tell_kills_from_exit_codes() {
        assert_eq!(wait_status(3, None), 768);
        assert_eq!(wait_status(0, None), 0);
        assert_eq!(wait_status(137, Some(libc::SIGKILL)), 9);
        assert_eq!(wait_status(143, Some(libc::SIGTERM)), 15);
        // Exiting 137 by itself is an exit code.
        assert_eq!(wait_status(137, None), 137 << 8);
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
