//! ATTACH_CONTAINER_OUTPUT and ATTACH_CONTAINER_INPUT, by the rules of Mesos's I/O
//! switchboard (`src/slave/containerizer/mesos/io/switchboard.cpp`): only containers
//! with a switchboard can be attached to, which are sessions (DEBUG containers) and
//! containers launched with `container.tty_info`; any number of output readers at once;
//! one input connection at a time (409 for a second), which may come again once the
//! first is over.
//!
//! The input is a streamed request body: RecordIO records of `Call`s, the first
//! `attach_container_input{type: CONTAINER_ID}`, then `PROCESS_IO` ones carrying stdin
//! DATA (an empty one closes stdin when there is no terminal; with one the client sends
//! EOT, `\x04`, as at a keyboard), TTY_INFO resizes and HEARTBEATs. The answer comes
//! once the body ends: 200, or 400 naming the first bad record (what came before it was
//! delivered, as in Mesos).

use std::sync::Arc;

use bytes::Bytes;
use http::{Response, StatusCode};
use hyper::body::Incoming;
use tokio::sync::mpsc;

use super::calls::Agent;
use super::codec::Refused;
use super::stream::{self, Body, CallReader, Media};
use super::wire::v1::agent::{call, process_io, Call, ProcessIo};
use super::wire::v1::ContainerId;
use crate::containerizer::session::{OutputStream, Session, SessionStreams, TermSize};
use crate::containerizer::types::ContainerState;

/// Mesos's answer for a container without a switchboard (the containerizer's failure,
/// which the agent turns into a 500).
const NO_SWITCHBOARD: &str = "I/O switchboard server was disabled for this container";
/// The pieces a STDIN record is passed on in.
const STDIN_CHUNK: usize = 32 * 1024;
/// How long an input attachment to a standalone container may take to pass on what it
/// has queued once the body ended.
const FLUSH: std::time::Duration = std::time::Duration::from_secs(5);

/// The calls answered with a stream (LAUNCH_NESTED_CONTAINER_SESSION and
/// ATTACH_CONTAINER_OUTPUT); `None` for the others.
pub async fn streaming(
    agent: &Agent,
    call: &Call,
    media: &Media,
) -> Option<Result<Response<Body>, Refused>> {
    let missing = |what: &str| {
        Refused(
            StatusCode::BAD_REQUEST,
            format!("Failed to validate agent::Call: Expecting '{what}' to be present"),
        )
    };
    Some(match call.r#type() {
        call::Type::LaunchNestedContainerSession => match &call.launch_nested_container_session {
            Some(launch) => super::sessions::launch(agent, launch, media).await,
            None => Err(missing("launch_nested_container_session")),
        },
        call::Type::AttachContainerOutput => match &call.attach_container_output {
            Some(attach) => output(agent, attach, media).await,
            None => Err(missing("attach_container_output")),
        },
        _ => return None,
    })
}

/// A standalone container's attachable state: running with a terminal, else why not.
async fn standalone(agent: &Agent, id: &ContainerId) -> Result<String, Refused> {
    let value = super::containers::valid_id(id)?;
    let not_found = || {
        Refused(
            StatusCode::NOT_FOUND,
            format!("Container {value} cannot be found"),
        )
    };
    let c = match agent.core.containerizer.container_status(value).await {
        // A CRI container is not the Mesos door's to see.
        Ok(c) if c.pod_id.is_none() => c,
        _ => return Err(not_found()),
    };
    if c.state != ContainerState::Running {
        return Err(not_found());
    }
    if !c.config.tty {
        return Err(Refused(
            StatusCode::INTERNAL_SERVER_ERROR,
            NO_SWITCHBOARD.into(),
        ));
    }
    Ok(c.id)
}

/// ATTACH_CONTAINER_OUTPUT: the target's output from now on, until it ends.
pub async fn output(
    agent: &Agent,
    attach: &call::AttachContainerOutput,
    media: &Media,
) -> Result<Response<Body>, Refused> {
    let id = &attach.container_id;
    if id.parent.is_some() {
        let live = agent.sessions.running(id)?;
        return Ok(stream::streaming_response(
            media,
            live.add_reader(media.output),
        ));
    }
    let value = standalone(agent, id).await?;
    let streams = SessionStreams {
        stdin: false,
        stdout: true,
        stderr: true,
        tty: true,
    };
    let session = agent
        .core
        .containerizer
        .attach(&value, streams)
        .await
        .map_err(|e| Refused(StatusCode::INTERNAL_SERVER_ERROR, crate::error::chain(&e)))?;
    let (tx, rx) = mpsc::channel(stream::QUEUE);
    tokio::spawn(copy_attached(session, tx, media.output));
    Ok(stream::streaming_response(media, rx))
}

/// Copies an attachment's output to one reader until either ends; heartbeats on idle.
async fn copy_attached(
    mut session: Session,
    tx: mpsc::Sender<Bytes>,
    format: super::codec::Format,
) {
    let mut heartbeat = tokio::time::interval(stream::HEARTBEAT);
    heartbeat.tick().await;
    loop {
        let io = tokio::select! {
            chunk = session.output.recv() => match chunk {
                Some((which, bytes)) => stream::data(
                    match which {
                        OutputStream::Stdout => process_io::data::Type::Stdout,
                        OutputStream::Stderr => process_io::data::Type::Stderr,
                    },
                    bytes,
                ),
                None => return,
            },
            _ = heartbeat.tick() => stream::heartbeat(),
            _ = tx.closed() => return,
        };
        if tx.send(stream::record(format, &io)).await.is_err() {
            return;
        }
    }
}

/// Where input goes: a session's, or a standalone container's attachment.
enum Target {
    Session(Arc<super::sessions::Live>),
    Standalone(Session),
}

/// ATTACH_CONTAINER_INPUT, from its streamed body.
pub async fn input(agent: &Agent, media: Media, body: Incoming) -> Result<Response<Body>, Refused> {
    let mut reader = CallReader::new(body, media.input);
    let first = match reader.next().await {
        Ok(Some(call)) => call,
        Ok(None) => {
            return Err(Refused(
                StatusCode::BAD_REQUEST,
                "Received EOF while reading request body".into(),
            ))
        }
        Err(e) => return Err(Refused(StatusCode::BAD_REQUEST, e)),
    };
    stream::check_call(&media, first.r#type())?;
    let attach = first
        .attach_container_input
        .as_ref()
        .filter(|a| a.r#type() == call::attach_container_input::Type::ContainerId)
        .ok_or_else(|| {
            Refused(
                StatusCode::BAD_REQUEST,
                "Expecting 'attach_container_input.type' to be CONTAINER_ID".into(),
            )
        })?;
    let id = attach.container_id.as_ref().ok_or_else(|| {
        Refused(
            StatusCode::BAD_REQUEST,
            "Failed to validate agent::Call: Expecting \
             'attach_container_input.container_id' to be present"
                .into(),
        )
    })?;
    let target = if id.parent.is_some() {
        Target::Session(agent.sessions.running(id)?)
    } else {
        let value = standalone(agent, id).await?;
        if !agent.sessions.claim_standalone_input(&value) {
            return Err(busy());
        }
        let streams = SessionStreams {
            stdin: true,
            stdout: false,
            stderr: false,
            tty: true,
        };
        match agent.core.containerizer.attach(&value, streams).await {
            Ok(s) => Target::Standalone(s),
            Err(e) => {
                agent.sessions.release_standalone_input(&value);
                return Err(Refused(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    crate::error::chain(&e),
                ));
            }
        }
    };
    let result = match target {
        Target::Session(live) => {
            if !live.claim_input() {
                return Err(busy());
            }
            let mut stdin = live.stdin().lock().await;
            let mut taken = stdin.take();
            let result = tokio::select! {
                r = feed(&mut reader, &mut taken, live.resize(), live.tty) => r,
                // The process ended: nothing more can be delivered, and the answer is
                // the end of the attachment, as the switchboard gives it.
                _ = live.ended() => Ok(()),
            };
            *stdin = taken;
            live.release_input();
            result
        }
        Target::Standalone(mut session) => {
            let mut taken = session.stdin.take();
            let r = feed(&mut reader, &mut taken, session.resize.as_ref(), true).await;
            // Closing our side lets the attachment send what is queued, then end (a
            // terminal's stdin stays open for the next attachment); dropping the
            // session at once would lose the queue.
            drop(taken);
            let _ = tokio::time::timeout(FLUSH, &mut session.end).await;
            drop(session);
            if let Ok(id) = super::containers::valid_id(id) {
                agent.sessions.release_standalone_input(id);
            }
            r
        }
    };
    result.map(|()| Response::new(stream::full(Bytes::new())))
}

fn busy() -> Refused {
    Refused(
        StatusCode::CONFLICT,
        "Multiple input connections are not allowed".into(),
    )
}

/// Delivers the body's PROCESS_IO records until it ends.
async fn feed(
    reader: &mut CallReader,
    stdin: &mut Option<mpsc::Sender<Bytes>>,
    resize: Option<&mpsc::Sender<TermSize>>,
    tty: bool,
) -> Result<(), Refused> {
    let bad = |m: String| Refused(StatusCode::BAD_REQUEST, m);
    while let Some(call) = reader.next().await.map_err(bad)? {
        let io = process_io_of(&call).map_err(|m| bad(m.into()))?;
        match io.r#type() {
            process_io::Type::Data => {
                let data = io
                    .data
                    .as_ref()
                    .and_then(|d| d.data.clone())
                    .unwrap_or_default();
                // An empty record is end of file for a pipe; a terminal's client sends EOT.
                if data.is_empty() && !tty {
                    stdin.take();
                    continue;
                }
                let Some(tx) = stdin.as_ref() else {
                    return Err(Refused(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "Failed writing to stdin: it is closed".into(),
                    ));
                };
                // In slices of one allocation: what waits in the stdin queue is never
                // more than this one record.
                let data = Bytes::from(data);
                for start in (0..data.len()).step_by(STDIN_CHUNK) {
                    let chunk = data.slice(start..data.len().min(start + STDIN_CHUNK));
                    if tx.send(chunk).await.is_err() {
                        return Err(Refused(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            "Failed writing to stdin: the process is gone".into(),
                        ));
                    }
                }
            }
            process_io::Type::Control => {
                let control = io
                    .control
                    .as_ref()
                    .ok_or_else(|| bad("Expecting 'process_io.control' to be present".into()))?;
                if control.r#type() == process_io::control::Type::TtyInfo {
                    let size = control
                        .tty_info
                        .as_ref()
                        .and_then(|t| t.window_size.as_ref())
                        .ok_or_else(|| {
                            bad("Expecting 'tty_info.window_size' to be present".into())
                        })?;
                    let Some(resize) = resize else {
                        return Err(bad(
                            "Unable to set the window size: the container has no terminal".into(),
                        ));
                    };
                    let _ = resize
                        .send(TermSize {
                            width: size.columns.min(u16::MAX as u32) as u16,
                            height: size.rows.min(u16::MAX as u32) as u16,
                        })
                        .await;
                }
                // HEARTBEAT: nothing to do; its interval is not used, as in Mesos.
            }
            process_io::Type::Unknown => unreachable!("refused by process_io_of"),
        }
    }
    Ok(())
}

/// A record after the first, checked as the switchboard checks them.
fn process_io_of(call: &Call) -> Result<&ProcessIo, &'static str> {
    use process_io::{control, data};
    if call.r#type() != call::Type::AttachContainerInput {
        return Err("Expecting every record to be an ATTACH_CONTAINER_INPUT call");
    }
    let attach = call
        .attach_container_input
        .as_ref()
        .ok_or("Expecting 'attach_container_input' to be present")?;
    if attach.r#type() != call::attach_container_input::Type::ProcessIo {
        return Err("Expecting 'attach_container_input.type' to be 'PROCESS_IO'");
    }
    let io = attach
        .process_io
        .as_ref()
        .ok_or("Expecting 'attach_container_input.process_io' to be present")?;
    match io.r#type {
        None => Err("Expecting 'process_io.type' to be present"),
        Some(_) if io.r#type() == process_io::Type::Unknown => Err("'process_io.type' is unknown"),
        Some(_) if io.r#type() == process_io::Type::Control => {
            let c = io
                .control
                .as_ref()
                .ok_or("Expecting 'process_io.control' to be present")?;
            match c.r#type {
                None => Err("Expecting 'process_io.control.type' to be present"),
                Some(_) if c.r#type() == control::Type::Unknown => {
                    Err("'process_io.control.type' is unknown")
                }
                Some(_) if c.r#type() == control::Type::TtyInfo && c.tty_info.is_none() => {
                    Err("Expecting 'process_io.control.tty_info' to be present")
                }
                Some(_) if c.r#type() == control::Type::Heartbeat && c.heartbeat.is_none() => {
                    Err("Expecting 'process_io.control.heartbeat' to be present")
                }
                Some(_) => Ok(io),
            }
        }
        Some(_) => {
            let d = io
                .data
                .as_ref()
                .ok_or("Expecting 'process_io.data' to be present")?;
            match d.r#type {
                None => Err("Expecting 'process_io.data.type' to be present"),
                Some(_) if d.r#type() != data::Type::Stdin => {
                    Err("Expecting 'process_io.data.type' to be 'STDIN'")
                }
                Some(_) if d.data.is_none() => {
                    Err("Expecting 'process_io.data.data' to be present")
                }
                Some(_) => Ok(io),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(io: ProcessIo) -> Call {
        Call {
            r#type: Some(call::Type::AttachContainerInput as i32),
            attach_container_input: Some(call::AttachContainerInput {
                r#type: Some(call::attach_container_input::Type::ProcessIo as i32),
                container_id: None,
                process_io: Some(io),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn records_are_checked_as_the_switchboard_checks_them() {
        let stdin = stream::data(process_io::data::Type::Stdin, Bytes::from_static(b"x"));
        assert!(process_io_of(&record(stdin)).is_ok());
        assert!(process_io_of(&record(stream::heartbeat())).is_ok());
        let stdout = stream::data(process_io::data::Type::Stdout, Bytes::new());
        assert_eq!(
            process_io_of(&record(stdout)),
            Err("Expecting 'process_io.data.type' to be 'STDIN'")
        );
        let mut no_data = stream::data(process_io::data::Type::Stdin, Bytes::new());
        if let Some(d) = no_data.data.as_mut() {
            d.data = None;
        }
        assert!(process_io_of(&record(no_data)).is_err());
        let mut no_type = stream::heartbeat();
        no_type.r#type = None;
        assert_eq!(
            process_io_of(&record(no_type)),
            Err("Expecting 'process_io.type' to be present")
        );
        let mut tty_without_size = stream::heartbeat();
        if let Some(c) = tty_without_size.control.as_mut() {
            c.r#type = Some(process_io::control::Type::TtyInfo as i32);
        }
        assert!(process_io_of(&record(tty_without_size)).is_err());
        let mut first_again = record(stream::heartbeat());
        if let Some(a) = first_again.attach_container_input.as_mut() {
            a.r#type = Some(call::attach_container_input::Type::ContainerId as i32);
        }
        assert!(process_io_of(&first_again).is_err());
        assert!(process_io_of(&Call::default()).is_err());
    }
}
