//! The Mesos door (agent operator API v1) against the real daemon: content negotiation
//! and its status codes, the calls answered so far, with JSON and protobuf bodies. Needs
//! root (the daemon); says so and skips otherwise.

mod common;

use common::*;
use prost::Message;
use ucr::mesos::wire::v1::agent::{call, response, Call, Response};

/// A daemon whose Mesos door listens on a port picked for it; the door's base URL.
fn daemon() -> (Daemon, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let listen = format!("127.0.0.1:{port}");
    let d = Daemon::start(&["--mesos-listen", &listen]);
    (d, format!("http://{listen}"))
}

async fn post(
    base: &str,
    content_type: Option<&str>,
    accept: Option<&str>,
    body: Vec<u8>,
) -> (u16, String, Vec<u8>) {
    let mut req = reqwest::Client::new()
        .post(format!("{base}/api/v1"))
        .body(body);
    if let Some(t) = content_type {
        req = req.header("Content-Type", t);
    }
    if let Some(a) = accept {
        req = req.header("Accept", a);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let ctype = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (status, ctype, resp.bytes().await.expect("body").to_vec())
}

async fn json_call(base: &str, body: &str) -> (u16, serde_json::Value) {
    let (status, _, bytes) = post(base, Some("application/json"), None, body.into()).await;
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

#[tokio::test]
async fn health_version_and_flags_in_json_and_protobuf() {
    require_root!("health_version_and_flags_in_json_and_protobuf");
    let (d, base) = daemon();

    let (status, body) = json_call(&base, r#"{"type": "GET_HEALTH"}"#).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        serde_json::json!({"type": "GET_HEALTH", "get_health": {"healthy": true}})
    );
    let (status, body) = json_call(&base, r#"{"type": "GET_FLAGS"}"#).await;
    assert_eq!(status, 200);
    let flags = body["get_flags"]["flags"].as_array().expect("flags");
    let work_dir = flags
        .iter()
        .find(|f| f["name"] == "work_dir")
        .expect("work_dir");
    assert_eq!(work_dir["value"], d.root.display().to_string());

    // Protobuf both ways: what a Mesos client built with Mesos's own protos sends.
    let call = Call {
        r#type: Some(call::Type::GetVersion as i32),
        ..Default::default()
    };
    let (status, ctype, bytes) = post(
        &base,
        Some("application/x-protobuf"),
        Some("application/x-protobuf"),
        call.encode_to_vec(),
    )
    .await;
    assert_eq!((status, ctype.as_str()), (200, "application/x-protobuf"));
    let resp = Response::decode(&bytes[..]).expect("a Response");
    assert_eq!(resp.r#type(), response::Type::GetVersion);
    assert_eq!(
        resp.get_version.expect("get_version").version_info.version,
        env!("CARGO_PKG_VERSION")
    );
    // Protobuf in, JSON out (no Accept: JSON).
    let (status, ctype, _) = post(
        &base,
        Some("application/x-protobuf"),
        None,
        Call {
            r#type: Some(call::Type::GetHealth as i32),
            ..Default::default()
        }
        .encode_to_vec(),
    )
    .await;
    assert_eq!((status, ctype.as_str()), (200, "application/json"));

    let health = reqwest::get(format!("{base}/health"))
        .await
        .expect("health");
    assert_eq!(health.status().as_u16(), 200);
}

#[tokio::test]
async fn refusals_carry_mesos_status_codes() {
    require_root!("refusals_carry_mesos_status_codes");
    let (_d, base) = daemon();
    let get = reqwest::get(format!("{base}/api/v1")).await.expect("GET");
    assert_eq!(get.status().as_u16(), 405);
    let health = br#"{"type": "GET_HEALTH"}"#.to_vec();
    assert_eq!(post(&base, None, None, health.clone()).await.0, 400);
    assert_eq!(
        post(&base, Some("text/plain"), None, health.clone())
            .await
            .0,
        415
    );
    assert_eq!(
        post(&base, Some("application/json"), Some("text/html"), health)
            .await
            .0,
        406
    );
    let (status, _, body) =
        post(&base, Some("application/json"), None, b"{not json".to_vec()).await;
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).contains("Failed to parse body into Call"));
    let (status, _, body) = post(
        &base,
        Some("application/x-protobuf"),
        None,
        vec![0xff, 0xff, 0xff],
    )
    .await;
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    assert_eq!(json_call(&base, "{}").await.0, 400, "no type");
    let (status, _, body) = post(
        &base,
        Some("application/json"),
        None,
        br#"{"type": "LAUNCH_CONTAINER", "launch_container": {"container_id": {"value": "c1"}}}"#
            .to_vec(),
    )
    .await;
    assert_eq!(status, 501);
    assert!(String::from_utf8_lossy(&body).contains("LAUNCH_CONTAINER"));
    // The daemon still answers after all that.
    assert_eq!(json_call(&base, r#"{"type": "GET_HEALTH"}"#).await.0, 200);
}
