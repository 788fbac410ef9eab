//! The calls of the agent operator API that ucr answers, each by the Mesos agent's rules
//! (`ucr-spec.md` §6). Call types ucr does not serve yet are answered 501 and named, never
//! faked. A nested id (one with a parent) goes to `sessions`; the streaming calls are
//! answered by `attach` and `sessions` before they get here (see `server`).

use http::StatusCode;

use super::codec::Refused;
use super::wire::v1::agent::{call, response, Call, Response};
use super::wire::v1::{Flag, VersionInfo};

/// What the calls need to know of the daemon.
pub struct Agent {
    /// The daemon's settings as `name = value` pairs, Mesos spellings where Mesos has them.
    pub flags: Vec<(String, String)>,
    pub core: std::sync::Arc<crate::core::Core>,
    /// Where standalone containers' sandboxes are (`<work_dir>/containers/<id>` in
    /// Mesos); each holds the container's output.
    pub sandboxes: std::path::PathBuf,
    /// Who may call what (`--authenticate_http_*`, `--http_credentials`).
    pub auth: super::auth::Auth,
    /// This agent's id, kept across restarts (`/state`).
    pub agent_id: String,
    /// Where a container sees its sandbox (`--sandbox_directory`).
    pub sandbox_directory: String,
    /// The door's nested containers (sessions), in memory.
    pub sessions: std::sync::Arc<super::sessions::Sessions>,
}

/// What a call's success gives: a status (200, or 202 for a launch of an id that
/// exists) and maybe a body.
pub type Answer = (StatusCode, Option<Response>);

/// Answers `call`.
pub async fn answer(agent: &Agent, call: &Call) -> Result<Answer, Refused> {
    use call::Type;
    let missing = |what: &str| {
        Refused(
            StatusCode::BAD_REQUEST,
            format!("Failed to validate agent::Call: Expecting '{what}' to be present"),
        )
    };
    let ok = |r: Response| Ok((StatusCode::OK, Some(r)));
    if let Some(answer) = super::nested::deprecated(agent, call).await {
        return answer;
    }
    match call.r#type() {
        Type::LaunchContainer => {
            let launch = call
                .launch_container
                .as_ref()
                .ok_or_else(|| missing("launch_container"))?;
            if launch.container_id.parent.is_some() {
                return Ok((super::nested::launch(agent, launch).await?, None));
            }
            Ok((super::containers::launch(agent, launch).await?, None))
        }
        Type::GetMetrics => {
            ok(super::metrics::get_metrics(agent, call.get_metrics.as_ref()).await?)
        }
        Type::GetContainers => {
            let show = call.get_containers.as_ref();
            let standalone = show.and_then(|g| g.show_standalone).unwrap_or(false);
            let mut listed = super::containers::list(agent, standalone).await?;
            if show.and_then(|g| g.show_nested).unwrap_or(false) {
                if let Some(l) = listed.get_containers.as_mut() {
                    l.containers.extend(super::sessions::list(agent));
                }
            }
            ok(listed)
        }
        Type::WaitContainer => {
            let wait = call
                .wait_container
                .as_ref()
                .ok_or_else(|| missing("wait_container"))?;
            if wait.container_id.parent.is_some() {
                return ok(super::sessions::wait(agent, &wait.container_id).await?);
            }
            ok(super::containers::wait(agent, &wait.container_id).await?)
        }
        Type::KillContainer => {
            let kill = call
                .kill_container
                .as_ref()
                .ok_or_else(|| missing("kill_container"))?;
            if kill.container_id.parent.is_some() {
                let signal = kill.signal.unwrap_or(libc::SIGKILL);
                super::sessions::kill(agent, &kill.container_id, signal).await?;
                return Ok((StatusCode::OK, None));
            }
            super::containers::kill(agent, kill).await?;
            Ok((StatusCode::OK, None))
        }
        Type::RemoveContainer => {
            let remove = call
                .remove_container
                .as_ref()
                .ok_or_else(|| missing("remove_container"))?;
            if remove.container_id.parent.is_some() {
                super::sessions::remove(agent, &remove.container_id)?;
                return Ok((StatusCode::OK, None));
            }
            super::containers::remove(agent, &remove.container_id).await?;
            Ok((StatusCode::OK, None))
        }
        Type::ListFiles => {
            let list = call
                .list_files
                .as_ref()
                .ok_or_else(|| missing("list_files"))?;
            ok(super::files::list(agent, list).await?)
        }
        Type::ReadFile => {
            let read = call
                .read_file
                .as_ref()
                .ok_or_else(|| missing("read_file"))?;
            ok(super::files::read(agent, read).await?)
        }
        Type::PruneImages => {
            // The same code as the image GC and `ucr prune`; images in use are kept, and
            // so are the `--image_gc_config` exclusions, as in Mesos.
            let mut excluded: Vec<String> = call
                .prune_images
                .iter()
                .flat_map(|p| &p.excluded_images)
                .filter_map(|i| i.docker.as_ref().map(|d| d.name.clone()))
                .collect();
            excluded.extend(agent.core.gc_excluded.iter().cloned());
            let report = agent
                .core
                .store
                .prune(&excluded, &|| true)
                .await
                .map_err(|e| {
                    Refused(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        format!("Failed to prune images: {}", crate::error::chain(&e)),
                    )
                })?;
            tracing::info!(
                images = report.images.len(),
                bytes = report.bytes,
                "PRUNE_IMAGES"
            );
            Ok((StatusCode::OK, None))
        }
        other => simple(agent, other).map(|r| (StatusCode::OK, Some(r))),
    }
}

/// The calls that only read the agent's own state.
fn simple(agent: &Agent, t: call::Type) -> Result<Response, Refused> {
    use call::Type;
    match t {
        Type::Unknown => Err(Refused(
            StatusCode::BAD_REQUEST,
            "Failed to validate agent::Call: Expecting 'type' to be present".into(),
        )),
        Type::GetHealth => Ok(health_response()),
        Type::GetVersion => Ok(Response {
            r#type: Some(response::Type::GetVersion as i32),
            get_version: Some(response::GetVersion {
                version_info: version(),
            }),
            ..Default::default()
        }),
        Type::GetFlags => Ok(flags_response(&agent.flags)),
        other => Err(Refused(
            StatusCode::NOT_IMPLEMENTED,
            format!("{} is not implemented by ucr yet", other.as_str_name()),
        )),
    }
}

fn health_response() -> Response {
    Response {
        r#type: Some(response::Type::GetHealth as i32),
        get_health: Some(response::GetHealth { healthy: true }),
        ..Default::default()
    }
}

fn flags_response(flags: &[(String, String)]) -> Response {
    Response {
        r#type: Some(response::Type::GetFlags as i32),
        get_flags: Some(response::GetFlags {
            flags: flags
                .iter()
                .map(|(name, value)| Flag {
                    name: name.clone(),
                    value: Some(value.clone()),
                })
                .collect(),
        }),
        ..Default::default()
    }
}

/// ucr's version, as Mesos reports its own.
pub fn version() -> VersionInfo {
    VersionInfo {
        version: env!("CARGO_PKG_VERSION").to_string(),
        build_date: None,
        build_time: None,
        build_user: None,
        git_sha: None,
        git_branch: None,
        git_tag: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_and_flags_answer_in_mesos_shapes() {
        assert_eq!(
            serde_json::to_value(health_response()).expect("json"),
            serde_json::json!({"type": "GET_HEALTH", "get_health": {"healthy": true}})
        );
        let flags = flags_response(&[("isolation".into(), "disk/du".into())]);
        assert_eq!(
            serde_json::to_value(flags).expect("json"),
            serde_json::json!({"type": "GET_FLAGS", "get_flags": {"flags": [{"name": "isolation", "value": "disk/du"}]}})
        );
        assert_eq!(version().version, env!("CARGO_PKG_VERSION"));
    }

    #[test]
    fn a_real_clients_launch_call_decodes() {
        let launch: Call = serde_json::from_str(
            r#"{"type": "LAUNCH_CONTAINER", "launch_container": {"container_id": {"value": "c1"}, "command": {"value": "sleep 10", "shell": true}, "container": {"type": "MESOS", "mesos": {"image": {"type": "DOCKER", "docker": {"name": "busybox"}, "cached": false}}}, "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.5}}]}}"#,
        )
        .expect("a call");
        let l = launch.launch_container.expect("payload");
        assert_eq!(l.container_id.value, "c1");
        let image = l
            .container
            .and_then(|c| c.mesos)
            .and_then(|m| m.image)
            .expect("image");
        assert!(!image.cached());
        assert_eq!(l.resources[0].scalar.as_ref().map(|s| s.value), Some(0.5));
    }
}
