//! The Mesos door (agent operator API v1) against the real daemon: content negotiation
//! and its status codes, the calls answered so far, with JSON and protobuf bodies. Needs
//! root (the daemon); says so and skips otherwise.

mod common;

use common::*;
use k8s_cri::v1 as cri;
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

/// The first standalone container GET_CONTAINERS lists.
async fn listed(base: &str) -> serde_json::Value {
    let (status, body) = json_call(
        base,
        r#"{"type": "GET_CONTAINERS", "get_containers": {"show_standalone": true}}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["get_containers"]["containers"][0].clone()
}

fn with_container(mut body: serde_json::Value, extra: serde_json::Value) -> String {
    let container = &mut body["launch_container"]["container"];
    for (k, v) in extra.as_object().expect("an object") {
        container[k] = v.clone();
    }
    body.to_string()
}

fn launch_json(id: &str, command: serde_json::Value) -> serde_json::Value {
    serde_json::from_str(&launch_body(id, command)).expect("json")
}

#[tokio::test]
async fn a_standalone_container_joins_the_cni_networks_it_names() {
    require_root!("a_standalone_container_joins_the_cni_networks_it_names");
    let (d, base) = daemon();
    let host_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let web = with_container(
        launch_json(
            "web",
            serde_json::json!({"value": "echo hello > /tmp/index.html; exec httpd -f -p 8080 -h /tmp"}),
        ),
        serde_json::json!({
            "network_infos": [{
                "name": common::TEST_NETWORK_NAME,
                "port_mappings": [{"host_port": host_port, "container_port": 8080}]
            }],
            "hostname": "web-1"
        }),
    );
    let (status, body) = json_call(&base, &web).await;
    assert_eq!(status, 200, "{body}");
    // Its address, as the plugin gave it, in the requested NetworkInfo.
    let entry = listed(&base).await;
    let network = &entry["container_status"]["network_infos"][0];
    assert_eq!(network["name"], common::TEST_NETWORK_NAME, "{entry}");
    assert_eq!(network["ip_addresses"][0]["protocol"], "IPv4", "{entry}");
    let ip = network["ip_addresses"][0]["ip_address"]
        .as_str()
        .expect("an address")
        .to_string();
    assert!(ip.starts_with(common::TEST_SUBNET_PREFIX), "{ip}");
    // Reachable from the node, through the test bridge.
    let mut page = None;
    for _ in 0..50 {
        if let Ok(r) = reqwest::get(format!("http://{ip}:8080/index.html")).await {
            page = Some(r.text().await.expect("body"));
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(page.as_deref(), Some("hello\n"));
    // And through its host port (the network's portmap plugin).
    let mapped = reqwest::get(format!("http://127.0.0.1:{host_port}/index.html"))
        .await
        .expect("the host port answers");
    assert_eq!(mapped.text().await.expect("body"), "hello\n");
    // The interface's counters moved with that request.
    let stats = &listed(&base).await["resource_statistics"];
    assert!(stats["net_rx_packets"].as_u64().unwrap_or(0) > 0, "{stats}");
    assert!(stats["net_tx_bytes"].as_u64().unwrap_or(0) > 0, "{stats}");
    assert!(stats["cpus_user_time_secs"].as_f64().is_some(), "{stats}");
    assert!(stats["cpus_system_time_secs"].as_f64().is_some(), "{stats}");

    // Its hostname, in its own UTS namespace and its hosts file; the node's is untouched.
    let node = nix::unistd::gethostname().expect("hostname");
    let check = with_container(
        launch_json(
            "check",
            serde_json::json!({"value": "test \"$(hostname)\" = web-2 && grep -q 'web-2' /etc/hosts && ip -4 addr show eth0 | grep -q 'inet 10.214.' && exit 7"}),
        ),
        serde_json::json!({"network_infos": [{"name": common::TEST_NETWORK_NAME}], "hostname": "web-2"}),
    );
    assert_eq!(json_call(&base, &check).await.0, 200);
    let (_, body) = json_call(&base, &id_call("WAIT_CONTAINER", "check")).await;
    assert_eq!(body["wait_container"]["exit_status"], 7 << 8, "{body}");
    assert_eq!(nix::unistd::gethostname().expect("hostname"), node);
    assert_eq!(
        json_call(&base, &id_call("REMOVE_CONTAINER", "check"))
            .await
            .0,
        200
    );

    // Refused before anything is made: an unknown network, one named twice, a hostname
    // without a network of its own.
    for (extra, named) in [
        (
            serde_json::json!({"network_infos": [{"name": "no-such-net"}]}),
            "no-such-net",
        ),
        (
            serde_json::json!({"network_infos": [{"name": common::TEST_NETWORK_NAME}, {"name": common::TEST_NETWORK_NAME}]}),
            "twice",
        ),
        (serde_json::json!({"hostname": "lonely"}), "lonely"),
        (
            serde_json::json!({"network_infos": [{"name": common::TEST_NETWORK_NAME, "port_mappings": [{"host_port": 0, "container_port": 80}]}]}),
            "host_port 0",
        ),
        (
            serde_json::json!({"network_infos": [{"name": common::TEST_NETWORK_NAME, "port_mappings": [{"host_port": 70000, "container_port": 80}]}]}),
            "host_port 70000",
        ),
        (
            serde_json::json!({"network_infos": [{"name": common::TEST_NETWORK_NAME, "port_mappings": [{"host_port": 9, "container_port": 80, "protocol": "sctp"}]}]}),
            "sctp",
        ),
    ] {
        let body = with_container(
            launch_json("refused", serde_json::json!({"value": "true"})),
            extra,
        );
        let (status, _, bytes) = post(&base, Some("application/json"), None, body.into()).await;
        let message = String::from_utf8_lossy(&bytes);
        assert_eq!(status, 400, "{message}");
        assert!(message.contains(named), "{message}");
        assert_eq!(
            json_call(&base, &id_call("WAIT_CONTAINER", "refused"))
                .await
                .0,
            404
        );
    }

    assert_eq!(
        json_call(&base, &id_call("KILL_CONTAINER", "web")).await.0,
        200
    );
    json_call(&base, &id_call("WAIT_CONTAINER", "web")).await;
    assert_eq!(
        json_call(&base, &id_call("REMOVE_CONTAINER", "web"))
            .await
            .0,
        200
    );
    // DEL ran: no namespace pin, no cached attachment.
    assert_eq!(
        common::tree(&d.root.join("cni"))
            .iter()
            .filter(|p| p.contains("web"))
            .count(),
        0
    );
    common::pods::assert_nothing_left(&d);
}

#[tokio::test]
async fn a_docker_config_secret_authenticates_its_pull_alone() {
    require_root!("a_docker_config_secret_authenticates_its_pull_alone");
    let (d, base) = daemon();
    let image = "127.0.0.1:5001/ucr-test/busybox:latest";
    let body = |id: &str, config: Option<&str>| {
        let mut docker = serde_json::json!({"name": image});
        if let Some(c) = config {
            use base64::Engine as _;
            docker["config"] = serde_json::json!({
                "type": "VALUE",
                "value": {"data": base64::engine::general_purpose::STANDARD.encode(c)}
            });
        }
        let mut b = launch_json(id, serde_json::json!({"value": "true"}));
        b["launch_container"]["container"]["mesos"]["image"]["docker"] = docker;
        b.to_string()
    };
    // Without credentials the registry says no.
    assert_eq!(json_call(&base, &body("anonymous", None)).await.0, 400);
    // `dWNyOnVjci1zZWNyZXQ=` is `ucr:ucr-secret`.
    let config = r#"{"auths": {"127.0.0.1:5001": {"auth": "dWNyOnVjci1zZWNyZXQ="}}}"#;
    let (status, _) = json_call(&base, &body("authed", Some(config))).await;
    assert_eq!(status, 200);
    let (_, waited) = json_call(&base, &id_call("WAIT_CONTAINER", "authed")).await;
    assert_eq!(waited["wait_container"]["exit_status"], 0, "{waited}");
    // A secret that is not JSON is refused, never read as a path.
    let (status, _) = json_call(&base, &body("path", Some("/etc/shadow"))).await;
    assert_eq!(status, 400);
    // The secret is nowhere on disk, in either spelling.
    let found = std::process::Command::new("grep")
        .args(["-rlaE", "ucr-secret|dWNyOnVjci1zZWNyZXQ"])
        .arg(&d.root)
        .arg(d.run_root())
        .output()
        .expect("grep");
    assert!(
        found.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&found.stdout)
    );
    assert_eq!(
        json_call(&base, &id_call("REMOVE_CONTAINER", "authed"))
            .await
            .0,
        200
    );
    common::pods::assert_nothing_left(&d);
}

#[tokio::test]
async fn mesos_and_cri_containers_stay_apart_and_survive_a_daemon_kill() {
    require_root!("mesos_and_cri_containers_stay_apart_and_survive_a_daemon_kill");
    let (mut d, base) = daemon();
    let sleeper = launch_body(
        "survivor",
        serde_json::json!({"shell": false, "value": "sleep", "arguments": ["sleep", "1000"]}),
    );
    assert_eq!(json_call(&base, &sleeper).await.0, 200);
    let pid = listed(&base).await["container_status"]["executor_pid"]
        .as_u64()
        .expect("a pid");

    // The CRI door sees none of it.
    let mut rt = d.runtime().await;
    let listed_cri = rt
        .list_containers(cri::ListContainersRequest::default())
        .await
        .expect("ListContainers")
        .into_inner();
    assert!(listed_cri.containers.is_empty(), "{listed_cri:?}");
    let status = rt
        .container_status(cri::ContainerStatusRequest {
            container_id: "survivor".into(),
            verbose: false,
        })
        .await
        .expect_err("not the CRI's");
    assert_eq!(status.code(), tonic::Code::NotFound);
    let stats = rt
        .list_container_stats(cri::ListContainerStatsRequest::default())
        .await
        .expect("ListContainerStats")
        .into_inner();
    assert!(stats.stats.is_empty(), "{stats:?}");

    // kill -9 of the daemon: the container runs on, and the door finds it again.
    d.kill9();
    d.restart();
    let mut again = serde_json::Value::Null;
    for _ in 0..100 {
        if let (200, body) = json_call(
            &base,
            r#"{"type": "GET_CONTAINERS", "get_containers": {"show_standalone": true}}"#,
        )
        .await
        {
            again = body["get_containers"]["containers"][0].clone();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(again["container_id"]["value"], "survivor", "{again}");
    assert_eq!(again["container_status"]["executor_pid"], pid, "{again}");
    assert!(
        again["resource_statistics"]["timestamp"].is_number(),
        "{again}"
    );
    assert_eq!(json_call(&base, &sleeper).await.0, 202);
    assert_eq!(
        json_call(&base, &id_call("KILL_CONTAINER", "survivor"))
            .await
            .0,
        200
    );
    let (_, body) = json_call(&base, &id_call("WAIT_CONTAINER", "survivor")).await;
    assert_eq!(body["wait_container"]["exit_status"], 9, "{body}");
    assert_eq!(
        json_call(&base, &id_call("REMOVE_CONTAINER", "survivor"))
            .await
            .0,
        200
    );
    common::pods::assert_nothing_left(&d);
}

/// Posts a JSON call as protobuf (decoded with the door's own types first), so half of a
/// test's calls take the protobuf path; the status and the body's text.
async fn proto_call(base: &str, json: &str) -> (u16, String) {
    let call: Call = serde_json::from_str(json).expect("a Call");
    let (status, _, bytes) = post(
        base,
        Some("application/x-protobuf"),
        None,
        call.encode_to_vec(),
    )
    .await;
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

#[tokio::test]
async fn launches_follow_the_docker_runtime_table() {
    require_root!("launches_follow_the_docker_runtime_table");
    let (d, base) = daemon();
    // Each program exits with a code that says how it was run: an entrypoint exits 10 +
    // its argument count, a cmd 20 + its argument count.
    let entrypoint = serde_json::json!(["sh", "-c", "exit $((10 + $#))", "e"]);
    let cmd = serde_json::json!(["sh", "-c", "exit $((20 + $#))", "c"]);
    let env = serde_json::json!(["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]);
    let mut images = Vec::new();
    for (name, runtime) in [
        ("e0c0", serde_json::json!({"Env": env})),
        ("e0c1", serde_json::json!({"Env": env, "Cmd": cmd})),
        (
            "e1c0",
            serde_json::json!({"Env": env, "Entrypoint": entrypoint}),
        ),
        (
            "e1c1",
            serde_json::json!({"Env": env, "Entrypoint": entrypoint, "Cmd": ["a", "b"]}),
        ),
    ] {
        let repo = push::unique_repo(&format!("mesos-table-{name}"));
        let pushed = push::push_derived(
            REGISTRY,
            "ucr-test/busybox",
            "latest",
            &repo,
            "latest",
            runtime,
        )
        .await;
        images.push((name, pushed.reference));
    }
    // Rows of ucr-spec.md §5.1, with what each image column gives: an exit code, or a
    // refusal (None).
    let rows: [(&str, serde_json::Value, [Option<i32>; 4]); 6] = [
        (
            "no value",
            serde_json::json!({"shell": false}),
            [None, Some(20), Some(10), Some(12)],
        ),
        (
            "arguments",
            serde_json::json!({"shell": false, "arguments": ["-c", "exit 33"]}),
            // C[0] + A: `sh -c 'exit 33'`; E + A: three arguments after the name.
            [None, Some(33), Some(12), Some(12)],
        ),
        (
            "value",
            serde_json::json!({"shell": false, "value": "sh", "arguments": ["sh", "-c", "exit 44"]}),
            [Some(44); 4],
        ),
        (
            "value alone",
            serde_json::json!({"shell": false, "value": "true"}),
            [Some(0); 4],
        ),
        (
            "shell, no value",
            serde_json::json!({"shell": true}),
            [None; 4],
        ),
        (
            "shell",
            serde_json::json!({"shell": true, "value": "exit 55", "arguments": ["ignored"]}),
            [Some(55); 4],
        ),
    ];
    let mut n = 0;
    for (row, command, expected) in &rows {
        for ((column, image), want) in images.iter().zip(expected) {
            n += 1;
            let id = format!("t{n}");
            let mut body = launch_json(&id, command.clone());
            body["launch_container"]["container"]["mesos"]["image"]["docker"]["name"] =
                image.clone().into();
            let body = body.to_string();
            // Every other launch as protobuf.
            let (status, text) = if n % 2 == 0 {
                proto_call(&base, &body).await
            } else {
                let (s, _, b) = post(&base, Some("application/json"), None, body.into()).await;
                (s, String::from_utf8_lossy(&b).into_owned())
            };
            match want {
                None => assert_eq!(status, 400, "{row} × {column}: {text}"),
                Some(code) => {
                    assert_eq!(status, 200, "{row} × {column}: {text}");
                    let (_, waited) = json_call(&base, &id_call("WAIT_CONTAINER", &id)).await;
                    assert_eq!(
                        waited["wait_container"]["exit_status"],
                        code << 8,
                        "{row} × {column}: {waited}"
                    );
                    assert_eq!(
                        json_call(&base, &id_call("REMOVE_CONTAINER", &id)).await.0,
                        200
                    );
                }
            }
        }
    }
    common::pods::assert_nothing_left(&d);
}
