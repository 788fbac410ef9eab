//! Starting a nested container: the call's command and container info checked and
//! resolved (`Debug`), the parent checked, the id claimed, the exec session started and
//! its pump spawned.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Response, StatusCode};
use tokio::sync::{mpsc, watch};

use super::{bad, key, levels, Live, Nested, Reader, Sink, MAX_RUNNING};
use crate::containerizer::session::{SessionStreams, TermSize};
use crate::containerizer::types::ContainerState;
use crate::containerizer::ExecCommand;
use crate::error::{ErrorKind, Kind};
use crate::isolators::docker::runtime::ImageRuntime;
use crate::mesos::calls::Agent;
use crate::mesos::codec::Refused;
use crate::mesos::command::{self, CommandInfo};
use crate::mesos::stream::{self, Body, Media};
use crate::mesos::wire::v1::agent::call;
use crate::mesos::wire::v1::{container_info, ContainerId};

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
    /// The command resolved (its user too, in the parent's image, when the exec starts),
    /// and the container info checked: no image (501: not implemented), MESOS only
    /// (400).
    pub fn new(
        container: Option<&crate::mesos::wire::v1::ContainerInfo>,
        command: Option<&crate::mesos::wire::v1::CommandInfo>,
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
            // Mesos's DEBUG containers run as the command's user, else the parent's.
            user: cmd.user.clone(),
        };
        // The terminal has its size before the command runs, as in Mesos.
        exec.window = tty_size;
        Ok(Self { exec, tty })
    }
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
        let ending = super::live::pump(session, sink, &live).await;
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
