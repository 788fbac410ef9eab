//! The calls of the agent operator API that ucr answers, each by the Mesos agent's rules
//! (`ucr-spec.md` §6). Call types ucr does not serve yet are answered 501 and named, never
//! faked.

use http::StatusCode;

use super::codec::Refused;
use super::wire::v1::agent::{call, response, Call, Response};
use super::wire::v1::{Flag, VersionInfo};

/// What the calls need to know of the daemon.
pub struct Agent {
    /// The daemon's settings as `name = value` pairs, Mesos spellings where Mesos has them.
    pub flags: Vec<(String, String)>,
}

/// Answers `call`: `Ok(None)` for a call whose success has no body.
pub fn answer(agent: &Agent, call: &Call) -> Result<Option<Response>, Refused> {
    use call::Type;
    match call.r#type() {
        Type::Unknown => Err(Refused(
            StatusCode::BAD_REQUEST,
            "Failed to validate agent::Call: Expecting 'type' to be present".into(),
        )),
        Type::GetHealth => Ok(Some(Response {
            r#type: Some(response::Type::GetHealth as i32),
            get_health: Some(response::GetHealth { healthy: true }),
            ..Default::default()
        })),
        Type::GetVersion => Ok(Some(Response {
            r#type: Some(response::Type::GetVersion as i32),
            get_version: Some(response::GetVersion {
                version_info: version(),
            }),
            ..Default::default()
        })),
        Type::GetFlags => Ok(Some(Response {
            r#type: Some(response::Type::GetFlags as i32),
            get_flags: Some(response::GetFlags {
                flags: agent
                    .flags
                    .iter()
                    .map(|(name, value)| Flag {
                        name: name.clone(),
                        value: Some(value.clone()),
                    })
                    .collect(),
            }),
            ..Default::default()
        })),
        other => Err(Refused(
            StatusCode::NOT_IMPLEMENTED,
            format!("{} is not implemented by ucr yet", other.as_str_name()),
        )),
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

    fn agent() -> Agent {
        Agent {
            flags: vec![("isolation".into(), "disk/du".into())],
        }
    }

    fn call(json: &str) -> Call {
        serde_json::from_str(json).expect("a call")
    }

    #[test]
    fn health_version_and_flags_answer_in_mesos_shapes() {
        let health = answer(&agent(), &call(r#"{"type": "GET_HEALTH"}"#)).expect("ok");
        assert_eq!(
            serde_json::to_value(health).expect("json"),
            serde_json::json!({"type": "GET_HEALTH", "get_health": {"healthy": true}})
        );
        let flags = answer(&agent(), &call(r#"{"type": "GET_FLAGS"}"#)).expect("ok");
        assert_eq!(
            serde_json::to_value(flags).expect("json"),
            serde_json::json!({"type": "GET_FLAGS", "get_flags": {"flags": [{"name": "isolation", "value": "disk/du"}]}})
        );
        let version = answer(&agent(), &call(r#"{"type": "GET_VERSION"}"#)).expect("ok");
        let v = serde_json::to_value(version).expect("json");
        assert_eq!(
            v["get_version"]["version_info"]["version"],
            env!("CARGO_PKG_VERSION")
        );
    }

    #[test]
    fn a_call_without_type_is_400_and_one_not_served_yet_is_501() {
        let e = answer(&agent(), &call("{}")).expect_err("no type");
        assert_eq!(e.0, StatusCode::BAD_REQUEST);
        // A real client's LAUNCH_CONTAINER body decodes (payloads not modelled yet are
        // ignored) and is answered honestly.
        let launch = call(
            r#"{"type": "LAUNCH_CONTAINER", "launch_container": {"container_id": {"value": "c1"}, "command": {"value": "sleep 10"}}}"#,
        );
        let e = answer(&agent(), &launch).expect_err("not yet");
        assert_eq!(e.0, StatusCode::NOT_IMPLEMENTED);
        assert!(e.1.contains("LAUNCH_CONTAINER"), "{}", e.1);
    }
}
