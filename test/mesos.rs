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
        br#"{"type": "GET_EXECUTORS"}"#.to_vec(),
    )
    .await;
    assert_eq!(status, 501);
    assert!(String::from_utf8_lossy(&body).contains("GET_EXECUTORS"));
    // A launch without its payload is malformed.
    assert_eq!(
        json_call(&base, r#"{"type": "LAUNCH_CONTAINER"}"#).await.0,
        400
    );
    // The daemon still answers after all that.
    assert_eq!(json_call(&base, r#"{"type": "GET_HEALTH"}"#).await.0, 200);
}

fn launch_body(id: &str, command: serde_json::Value) -> String {
    serde_json::json!({
        "type": "LAUNCH_CONTAINER",
        "launch_container": {
            "container_id": {"value": id},
            "command": command,
            "container": {
                "type": "MESOS",
                "mesos": {"image": {"type": "DOCKER", "docker": {"name": common::pods::BUSYBOX}}}
            },
            "resources": [
                {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.5}},
                {"name": "mem", "type": "SCALAR", "scalar": {"value": 64}}
            ]
        }
    })
    .to_string()
}

fn id_call(t: &str, id: &str) -> String {
    let key = t.to_ascii_lowercase();
    serde_json::json!({"type": t, key: {"container_id": {"value": id}}}).to_string()
}

#[tokio::test]
async fn standalone_containers_launch_wait_kill_and_remove() {
    require_root!("standalone_containers_launch_wait_kill_and_remove");
    let (d, base) = daemon();

    // exit 3 is the wait status 768, as waitpid(2) gives it.
    let (status, _) = json_call(
        &base,
        &launch_body("exits-3", serde_json::json!({"value": "echo hi; exit 3"})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = json_call(&base, &id_call("WAIT_CONTAINER", "exits-3")).await;
    assert_eq!(status, 200);
    assert_eq!(body["type"], "WAIT_CONTAINER");
    assert_eq!(body["wait_container"]["exit_status"], 768, "{body}");
    assert_eq!(
        json_call(&base, &id_call("REMOVE_CONTAINER", "exits-3"))
            .await
            .0,
        200
    );

    // A long-running one: the same id again is 202; it has its limits; removing it
    // while it runs is refused; SIGKILL ends it with wait status 9.
    let sleeper = launch_body(
        "sleeper",
        serde_json::json!({"shell": false, "value": "sleep", "arguments": ["sleep", "1000"]}),
    );
    assert_eq!(json_call(&base, &sleeper).await.0, 200);
    assert_eq!(json_call(&base, &sleeper).await.0, 202);
    let limit = cgroup_dirs(&d.cgroups_root())
        .into_iter()
        .map(|dir| dir.join("sleeper/memory.limit_in_bytes"))
        .find(|f| f.exists())
        .map(|f| std::fs::read_to_string(f).expect("read"))
        .expect("the container's memory cgroup");
    assert_eq!(limit.trim(), (64u64 << 20).to_string(), "mem: 64 (MiB)");
    // GET_CONTAINERS lists standalone containers only when asked, with statistics.
    let (status, body) = json_call(&base, r#"{"type": "GET_CONTAINERS"}"#).await;
    assert_eq!(status, 200);
    assert_eq!(
        body["get_containers"]["containers"]
            .as_array()
            .map(Vec::len)
            .unwrap_or(0),
        0,
        "{body}"
    );
    let (status, body) = json_call(
        &base,
        r#"{"type": "GET_CONTAINERS", "get_containers": {"show_standalone": true}}"#,
    )
    .await;
    assert_eq!(status, 200);
    let listed = &body["get_containers"]["containers"][0];
    assert_eq!(listed["container_id"]["value"], "sleeper", "{body}");
    let stats = &listed["resource_statistics"];
    assert_eq!(stats["mem_limit_bytes"], 64u64 << 20, "{stats}");
    assert_eq!(stats["cpus_limit"], 0.5, "{stats}");
    assert!(
        stats["timestamp"].as_f64().unwrap_or(0.0) > 1.7e9,
        "{stats}"
    );
    assert!(stats["mem_rss_bytes"].as_u64().is_some(), "{stats}");
    assert_eq!(
        json_call(&base, &id_call("REMOVE_CONTAINER", "sleeper"))
            .await
            .0,
        500
    );
    assert_eq!(
        json_call(&base, &id_call("KILL_CONTAINER", "sleeper"))
            .await
            .0,
        200
    );
    let (status, body) = json_call(&base, &id_call("WAIT_CONTAINER", "sleeper")).await;
    assert_eq!(
        (status, body["wait_container"]["exit_status"].clone()),
        (200, serde_json::json!(9))
    );
    // Killed already: 404; removed: gone for good.
    assert_eq!(
        json_call(&base, &id_call("KILL_CONTAINER", "sleeper"))
            .await
            .0,
        404
    );
    assert_eq!(
        json_call(&base, &id_call("REMOVE_CONTAINER", "sleeper"))
            .await
            .0,
        200
    );
    assert_eq!(
        json_call(&base, &id_call("WAIT_CONTAINER", "sleeper"))
            .await
            .0,
        404
    );

    // Ids as Mesos checks them, and a launch that cannot resolve its command.
    for bad in ["a.b", "a/b", "a b", ""] {
        let (status, _) = json_call(
            &base,
            &launch_body(bad, serde_json::json!({"value": "true"})),
        )
        .await;
        assert_eq!(status, 400, "id {bad:?}");
    }
    let (status, _) = json_call(
        &base,
        &launch_body("no-value", serde_json::json!({"shell": true})),
    )
    .await;
    assert_eq!(status, 400, "shell without a value");
    assert_eq!(
        json_call(&base, &id_call("WAIT_CONTAINER", "never-was"))
            .await
            .0,
        404
    );
    common::pods::assert_nothing_left(&d);
}

#[tokio::test]
async fn prune_images_spares_excluded_and_used_images() {
    require_root!("prune_images_spares_excluded_and_used_images");
    let (d, base) = daemon();
    let mut images = d.images().await;
    let layered = format!("{REGISTRY}/ucr-test/layered:latest");
    // Not busybox-oci: the same image as busybox (one config), so in use too.
    let unused = format!("{REGISTRY}/ucr-test/debian-layout:latest");
    for image in [&layered, &unused] {
        pull(&mut images, image).await.expect("pull");
    }
    // busybox is used by a running container.
    let busy = launch_body(
        "busy",
        serde_json::json!({"shell": false, "value": "sleep", "arguments": ["sleep", "1000"]}),
    );
    assert_eq!(json_call(&base, &busy).await.0, 200);
    let prune = serde_json::json!({
        "type": "PRUNE_IMAGES",
        "prune_images": {"excluded_images": [{"type": "DOCKER", "docker": {"name": layered}}]}
    });
    assert_eq!(json_call(&base, &prune.to_string()).await.0, 200);
    assert!(
        status(&mut images, &layered).await.is_some(),
        "excluded: kept"
    );
    assert!(
        status(&mut images, common::pods::BUSYBOX).await.is_some(),
        "in use: kept"
    );
    assert!(
        status(&mut images, &unused).await.is_none(),
        "neither: pruned"
    );

    assert_eq!(
        json_call(&base, &id_call("KILL_CONTAINER", "busy")).await.0,
        200
    );
    json_call(&base, &id_call("WAIT_CONTAINER", "busy")).await;
    assert_eq!(
        json_call(&base, &id_call("REMOVE_CONTAINER", "busy"))
            .await
            .0,
        200
    );
    common::pods::assert_nothing_left(&d);
}
