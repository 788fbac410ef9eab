//! The Mesos agent's legacy GET endpoints (`ucr-spec.md` §6), on the same core:
//!
//! - `/state`: the agent's state as Mesos writes it, with the fields ucr can honestly
//!   fill: `version`, `start_time`, `id` (made once and kept under `--work_dir`, as a
//!   Mesos agent keeps its id), `hostname`, `flags`, and `frameworks` /
//!   `completed_frameworks` (always empty: ucr runs no frameworks). No master, resources,
//!   attributes or libprocess `pid`: ucr has none. Its standalone containers are under
//!   `standalone_containers` (ucr's addition, entries as in `/containers`);
//! - `/flags`: `{"flags": {name: value}}`, the same flags as GET_FLAGS;
//! - `/monitor/statistics` (and `/monitor/statistics.json`, which the issue asks for):
//!   `[{container_id, statistics}]` for each running standalone container. Mesos lists
//!   executors here; ucr runs none, so it lists what it runs;
//! - `/containers`: each standalone container with `container_id`, `status` and, while
//!   it runs, `statistics`; Mesos's query filters (`container_id` alone, or
//!   `framework_id` with or without `executor_id`, else 400; ucr has no frameworks, so a
//!   `framework_id` matches nothing);
//! - `/metrics/snapshot`: the flat `{name: value}` of `metrics`, with Mesos's `timeout`.
//!
//! `?jsonp=cb` wraps the JSON in `cb(…)` as `text/javascript`, as libprocess does; unlike
//! libprocess the callback must be a JavaScript name (`a.b_c$1`), so nothing a client
//! sends is written into a script but a name. Any method but GET is 405.

use std::collections::BTreeMap;

use bytes::Bytes;
use http::{header, Method, Response, StatusCode, Uri};
use http_body_util::Full;
use serde_json::{json, Value};

use super::calls::Agent;
use super::codec::Refused;

const JAVASCRIPT: &str = "text/javascript";

/// The answer to a legacy endpoint, or `None` when `uri` names none.
pub async fn serve(agent: &Agent, method: &Method, uri: &Uri) -> Option<Response<Full<Bytes>>> {
    let path = uri.path();
    if !matches!(
        path,
        "/state"
            | "/flags"
            | "/monitor/statistics"
            | "/monitor/statistics.json"
            | "/containers"
            | "/metrics/snapshot"
    ) {
        return None;
    }
    if method != Method::GET {
        let mut resp = text(
            StatusCode::METHOD_NOT_ALLOWED,
            &format!("Expecting 'GET', received '{method}'"),
        );
        resp.headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("GET"));
        return Some(resp);
    }
    let query: BTreeMap<String, String> = uri
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let answer = match path {
        "/state" => state(agent).await,
        "/flags" => Ok(json!({ "flags": flags(agent) })),
        "/containers" => containers(agent, &query).await,
        "/metrics/snapshot" => metrics(agent, &query).await,
        _ => statistics(agent).await,
    }
    .and_then(|body| render(&body, query.get("jsonp")));
    Some(match answer {
        Ok(resp) => resp,
        Err(Refused(status, message)) => text(status, &message),
    })
}

fn flags(agent: &Agent) -> Value {
    Value::Object(
        agent
            .flags
            .iter()
            .map(|(n, v)| (n.clone(), Value::String(v.clone())))
            .collect(),
    )
}

async fn state(agent: &Agent) -> Result<Value, Refused> {
    let version = super::calls::version();
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    Ok(json!({
        "version": version.version,
        "start_time": agent.core.counters.start_time_secs(),
        "id": agent.agent_id,
        "hostname": hostname,
        "flags": flags(agent),
        "frameworks": [],
        "completed_frameworks": [],
        "standalone_containers": entries(agent, None).await?,
    }))
}

/// `/containers`' entries: every standalone container (or the one `only` names).
async fn entries(agent: &Agent, only: Option<&str>) -> Result<Vec<Value>, Refused> {
    let listed = super::containers::list(agent, true).await?;
    let to_json = |v| serde_json::to_value(v).unwrap_or(Value::Null);
    Ok(listed
        .get_containers
        .map(|g| g.containers)
        .unwrap_or_default()
        .into_iter()
        .filter(|c| only.is_none_or(|id| c.container_id.value == id))
        .map(|c| {
            let mut entry = json!({ "container_id": c.container_id.value });
            if let Some(status) = c.container_status {
                entry["status"] = to_json(status);
            }
            if let Some(stats) = c.resource_statistics {
                entry["statistics"] = serde_json::to_value(stats).unwrap_or(Value::Null);
            }
            entry
        })
        .collect())
}

async fn containers(agent: &Agent, query: &BTreeMap<String, String>) -> Result<Value, Refused> {
    let (container, framework, executor) = (
        query.get("container_id"),
        query.get("framework_id"),
        query.get("executor_id"),
    );
    // Mesos's rule and words.
    if (container.is_some() && (framework.is_some() || executor.is_some()))
        || (executor.is_some() && framework.is_none())
    {
        return Err(Refused(
            StatusCode::BAD_REQUEST,
            "Supported query parameters are container_id only, framework_id only, or \
             executor_id and framework_id only"
                .into(),
        ));
    }
    if framework.is_some() {
        // No container of ucr's belongs to a framework.
        return Ok(json!([]));
    }
    Ok(Value::Array(
        entries(agent, container.map(String::as_str)).await?,
    ))
}

async fn statistics(agent: &Agent) -> Result<Value, Refused> {
    Ok(Value::Array(
        entries(agent, None)
            .await?
            .into_iter()
            .filter(|e| e.get("statistics").is_some())
            .map(|e| json!({"container_id": e["container_id"], "statistics": e["statistics"]}))
            .collect(),
    ))
}

async fn metrics(agent: &Agent, query: &BTreeMap<String, String>) -> Result<Value, Refused> {
    let timeout = query
        .get("timeout")
        .map(|t| {
            super::metrics::parse_duration(t).map_err(|e| {
                Refused(
                    StatusCode::BAD_REQUEST,
                    format!("Invalid timeout {t:?}: {e}"),
                )
            })
        })
        .transpose()?;
    let snapshot = super::metrics::snapshot(agent, timeout).await;
    Ok(Value::Object(
        snapshot.into_iter().map(|(n, v)| (n, json!(v))).collect(),
    ))
}

/// JSON, or JSONP for a callback that is a JavaScript name.
fn render(body: &Value, jsonp: Option<&String>) -> Result<Response<Full<Bytes>>, Refused> {
    let json = body.to_string();
    let (bytes, content_type) = match jsonp {
        None => (json, super::codec::JSON),
        Some(cb) if callback_ok(cb) => (format!("{cb}({json})"), JAVASCRIPT),
        Some(cb) => {
            return Err(Refused(
                StatusCode::BAD_REQUEST,
                format!(
                    "Invalid jsonp callback {cb:?}: expected a JavaScript name like cb or a.b_c"
                ),
            ))
        }
    };
    let mut resp = Response::new(Full::new(Bytes::from(bytes)));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    Ok(resp)
}

fn callback_ok(cb: &str) -> bool {
    let ident = |s: &str| {
        let mut chars = s.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
    };
    cb.len() <= 128 && cb.split('.').all(ident)
}

fn text(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(message.to_string())));
    *resp.status_mut() = status;
    resp
}

/// This agent's id: made once (a UUID and `-S0`, Mesos's shape) and kept in `dir`, so
/// it stays the same across restarts as a Mesos agent's does.
pub fn agent_id(dir: &std::path::Path) -> std::io::Result<String> {
    let file = dir.join("agent_id");
    match std::fs::read_to_string(&file) {
        Ok(id) if !id.trim().is_empty() => return Ok(id.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    // A version-4 UUID: random, with the version and variant bits set.
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex = hex::encode(b);
    let id = format!(
        "{}-{}-{}-{}-{}-S0",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    );
    crate::perm::private_dir(dir)?;
    crate::perm::write_private_atomic(&file, id.as_bytes())?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonp_callbacks_are_names() {
        for ok in ["cb", "a.b_c", "$x1", "jQuery123_456"] {
            assert!(callback_ok(ok), "{ok}");
        }
        for bad in ["", "1a", "a..b", "alert(1)//", "a b", "x;y", "<script>"] {
            assert!(!callback_ok(bad), "{bad}");
        }
        let resp = render(&json!({"a": 1}), Some(&"cb".to_string())).expect("jsonp");
        assert_eq!(resp.headers()[header::CONTENT_TYPE], JAVASCRIPT);
    }

    #[test]
    fn the_agent_id_is_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = agent_id(&dir.path().join("mesos")).expect("made");
        assert!(first.ends_with("-S0") && first.len() == 39, "{first}");
        assert_eq!(agent_id(&dir.path().join("mesos")).expect("read"), first);
    }
}
