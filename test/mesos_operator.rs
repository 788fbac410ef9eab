//! The Mesos door's operator side against the real daemon: basic authentication by
//! realm, the legacy GET endpoints with a running standalone container, GET_METRICS and
//! `/metrics/snapshot` with counters that move, Mesos's `--isolation` and
//! `--image_providers` refusals at start, and `MESOS_<FLAG>` variables between the
//! command line and the `--config` file. Needs root for the daemons that start (says so
//! and skips otherwise); the refused starts need nothing.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use common::*;
use prost::Message;
use ucr::mesos::wire::v1::agent::{call, response, Call, Response};

const PRINCIPAL: &str = "operator";
const SECRET: &str = "s3cret:with-colon";

fn free_address() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    format!("127.0.0.1:{port}")
}

/// A daemon with the Mesos door on a free port, and its base URL.
fn daemon(args: &[&str], env: &[(&str, &str)]) -> (Daemon, String) {
    let listen = free_address();
    let mut all = vec!["--mesos-listen", &listen];
    all.extend_from_slice(args);
    let d = Daemon::start_with_env(&all, env);
    (d, format!("http://{listen}"))
}

fn credentials_file(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("credentials.json");
    let body = serde_json::json!({"credentials": [
        {"principal": "someone", "secret": "else"},
        {"principal": PRINCIPAL, "secret": SECRET},
    ]});
    std::fs::write(&path, body.to_string()).expect("write credentials");
    path
}

fn basic(user: &str, password: &str) -> String {
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {token}")
}

struct Reply {
    status: u16,
    content_type: String,
    challenge: String,
    allow: String,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

async fn send(req: reqwest::RequestBuilder, auth: Option<&str>) -> Reply {
    let req = match auth {
        Some(a) => req.header("Authorization", a),
        None => req,
    };
    let resp = req.send().await.expect("request");
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    Reply {
        status: resp.status().as_u16(),
        content_type: header("content-type"),
        challenge: header("www-authenticate"),
        allow: header("allow"),
        body: resp.bytes().await.expect("body").to_vec(),
    }
}

async fn get(base: &str, path: &str, auth: Option<&str>) -> Reply {
    send(reqwest::Client::new().get(format!("{base}{path}")), auth).await
}

async fn call_json(base: &str, body: &str, auth: Option<&str>) -> Reply {
    let req = reqwest::Client::new()
        .post(format!("{base}/api/v1"))
        .header("Content-Type", "application/json")
        .body(body.to_string());
    send(req, auth).await
}

async fn call_protobuf(base: &str, call: &Call, auth: Option<&str>) -> Reply {
    let req = reqwest::Client::new()
        .post(format!("{base}/api/v1"))
        .header("Content-Type", "application/x-protobuf")
        .header("Accept", "application/x-protobuf")
        .body(call.encode_to_vec());
    send(req, auth).await
}

fn launch_body(id: &str, image: &str, command: serde_json::Value) -> String {
    serde_json::json!({
        "type": "LAUNCH_CONTAINER",
        "launch_container": {
            "container_id": {"value": id},
            "command": command,
            "container": {"type": "MESOS", "mesos": {"image": {"type": "DOCKER", "docker": {"name": image}}}},
            "resources": [{"name": "mem", "type": "SCALAR", "scalar": {"value": 64}}]
        }
    })
    .to_string()
}

fn id_call(t: &str, id: &str) -> String {
    let key = t.to_ascii_lowercase();
    serde_json::json!({"type": t, key: {"container_id": {"value": id}}}).to_string()
}

fn sleeper(id: &str) -> String {
    launch_body(
        id,
        common::pods::BUSYBOX,
        serde_json::json!({"shell": false, "value": "sleep", "arguments": ["sleep", "1000"]}),
    )
}

/// Kills, waits for and removes a standalone container.
async fn end(base: &str, id: &str, auth: Option<&str>) {
    assert_eq!(
        call_json(base, &id_call("KILL_CONTAINER", id), auth)
            .await
            .status,
        200
    );
    assert_eq!(
        call_json(base, &id_call("WAIT_CONTAINER", id), auth)
            .await
            .status,
        200
    );
    assert_eq!(
        call_json(base, &id_call("REMOVE_CONTAINER", id), auth)
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn basic_auth_guards_each_realm() {
    require_root!("basic_auth_guards_each_realm");
    let dir = tempfile::tempdir().expect("tempdir");
    let creds = credentials_file(dir.path());
    let creds_arg = creds.display().to_string();
    let (d, base) = daemon(
        &[
            "--authenticate-http-readwrite",
            "--authenticate_http_readonly=true",
            "--http-credentials",
            &creds_arg,
        ],
        &[],
    );
    let right = basic(PRINCIPAL, SECRET);
    let health = r#"{"type": "GET_HEALTH"}"#;

    // Read-write realm: /api/v1, every call.
    for auth in [
        None,
        Some(basic(PRINCIPAL, "wrong")),
        Some(basic("nobody", SECRET)),
        Some(basic("someone", SECRET)),
        Some("Bearer x".to_string()),
        Some("Basic !!notbase64".to_string()),
    ] {
        let r = call_json(&base, health, auth.as_deref()).await;
        assert_eq!(r.status, 401, "{auth:?}");
        assert_eq!(r.challenge, r#"Basic realm="mesos-agent-readwrite""#);
    }
    let r = call_json(&base, health, Some(&right)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["get_health"]["healthy"], true);
    let r = call_json(&base, health, Some(&basic("someone", "else"))).await;
    assert_eq!(r.status, 200, "either credential");
    let version = Call {
        r#type: Some(call::Type::GetVersion as i32),
        ..Default::default()
    };
    assert_eq!(call_protobuf(&base, &version, None).await.status, 401);
    let r = call_protobuf(&base, &version, Some(&right)).await;
    assert_eq!(r.status, 200);
    let resp = Response::decode(&r.body[..]).expect("protobuf");
    assert_eq!(resp.r#type(), response::Type::GetVersion);

    // Read-only realm: the legacy endpoints; /health and /version never.
    for path in [
        "/state",
        "/flags",
        "/monitor/statistics",
        "/monitor/statistics.json",
        "/containers",
        "/metrics/snapshot",
    ] {
        let r = get(&base, path, None).await;
        assert_eq!(r.status, 401, "{path}");
        assert_eq!(
            r.challenge, r#"Basic realm="mesos-agent-readonly""#,
            "{path}"
        );
        assert_eq!(
            get(&base, path, Some(&basic(PRINCIPAL, "x"))).await.status,
            401
        );
        let r = get(&base, path, Some(&right)).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text());
    }
    assert_eq!(get(&base, "/health", None).await.status, 200);
    assert_eq!(get(&base, "/version", None).await.status, 200);

    // GET_FLAGS shows the file's path, never its secrets; nor do the logs.
    let r = call_json(&base, r#"{"type": "GET_FLAGS"}"#, Some(&right)).await;
    let flags = r.json()["get_flags"]["flags"].clone();
    let flag = |name: &str| {
        flags
            .as_array()
            .into_iter()
            .flatten()
            .find(|f| f["name"] == name)
            .map(|f| f["value"].clone())
    };
    assert_eq!(flag("http_credentials"), Some(creds_arg.clone().into()));
    assert_eq!(flag("authenticate_http_readwrite"), Some("true".into()));
    assert_eq!(flag("authenticate_http_readonly"), Some("true".into()));
    assert!(!r.text().contains(SECRET));
    assert!(!get(&base, "/flags", Some(&right))
        .await
        .text()
        .contains(SECRET));
    assert!(!d.logs().contains(SECRET), "a secret in the logs");
}

#[tokio::test]
async fn legacy_endpoints_with_a_running_container() {
    require_root!("legacy_endpoints_with_a_running_container");
    let (d, base) = daemon(&[], &[]);
    assert_eq!(call_json(&base, &sleeper("legacy"), None).await.status, 200);

    let state = get(&base, "/state", None).await;
    assert_eq!(
        (state.status, state.content_type.as_str()),
        (200, "application/json")
    );
    let s = state.json();
    assert_eq!(s["version"], env!("CARGO_PKG_VERSION"));
    assert!(s["start_time"].as_f64().unwrap_or(0.0) > 1.7e9, "{s}");
    assert!(
        s["id"].as_str().is_some_and(|id| id.ends_with("-S0")),
        "{s}"
    );
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("hostname");
    assert_eq!(s["hostname"], hostname.trim());
    assert_eq!(s["flags"]["work_dir"], d.root.display().to_string());
    assert!(s["flags"]["isolation"]
        .as_str()
        .is_some_and(|i| i.contains("docker/runtime") && i.contains("filesystem/linux")));
    assert_eq!(s["flags"]["image_providers"], "docker");
    assert_eq!(s["frameworks"], serde_json::json!([]));
    assert_eq!(
        s["standalone_containers"][0]["container_id"], "legacy",
        "{s}"
    );

    let flags = get(&base, "/flags", None).await.json();
    assert_eq!(flags["flags"]["work_dir"], d.root.display().to_string());
    assert_eq!(flags["flags"]["authenticate_http_readwrite"], "false");

    for path in ["/monitor/statistics", "/monitor/statistics.json"] {
        let r = get(&base, path, None).await;
        assert_eq!(r.status, 200, "{path}");
        let list = r.json();
        assert_eq!(list.as_array().map(Vec::len), Some(1), "{path}: {list}");
        assert_eq!(list[0]["container_id"], "legacy");
        let stats = &list[0]["statistics"];
        assert_eq!(stats["mem_limit_bytes"], 64u64 << 20, "{stats}");
        assert!(
            stats["timestamp"].as_f64().unwrap_or(0.0) > 1.7e9,
            "{stats}"
        );
    }

    let containers = get(&base, "/containers", None).await.json();
    assert_eq!(containers[0]["container_id"], "legacy", "{containers}");
    assert_eq!(
        containers[0]["status"]["container_id"]["value"], "legacy",
        "{containers}"
    );
    assert!(containers[0]["status"]["executor_pid"].as_u64().is_some());
    assert!(containers[0]["statistics"]["mem_rss_bytes"]
        .as_u64()
        .is_some());
    let one = get(&base, "/containers?container_id=legacy", None)
        .await
        .json();
    assert_eq!(one.as_array().map(Vec::len), Some(1));
    let none = get(&base, "/containers?container_id=other", None)
        .await
        .json();
    assert_eq!(none, serde_json::json!([]));
    let none = get(&base, "/containers?framework_id=f1", None).await.json();
    assert_eq!(none, serde_json::json!([]), "ucr has no frameworks");
    for bad in ["executor_id=e", "container_id=legacy&framework_id=f"] {
        let r = get(&base, &format!("/containers?{bad}"), None).await;
        assert_eq!(r.status, 400, "{bad}");
        assert!(
            r.text().contains("Supported query parameters"),
            "{}",
            r.text()
        );
    }

    // JSONP, as libprocess: callback(json) as JavaScript; only names are callbacks.
    let r = get(&base, "/flags?jsonp=my.cb_1", None).await;
    assert_eq!(
        (r.status, r.content_type.as_str()),
        (200, "text/javascript")
    );
    let text = r.text();
    let inner = text
        .strip_prefix("my.cb_1(")
        .and_then(|t| t.strip_suffix(')'))
        .expect("wrapped");
    let inner: serde_json::Value = serde_json::from_str(inner).expect("json inside");
    assert_eq!(inner["flags"]["work_dir"], d.root.display().to_string());
    let r = get(&base, "/state?jsonp=alert(document.cookie)//", None).await;
    assert_eq!(r.status, 400);
    assert!(
        r.text().contains("alert(document.cookie)//"),
        "names the value"
    );

    // The wrong method.
    for path in ["/state", "/flags", "/containers", "/metrics/snapshot"] {
        let r = send(reqwest::Client::new().post(format!("{base}{path}")), None).await;
        assert_eq!((r.status, r.allow.as_str()), (405, "GET"), "{path}");
        let r = send(reqwest::Client::new().delete(format!("{base}{path}")), None).await;
        assert_eq!(r.status, 405, "{path}");
    }

    // The flat metrics, from real state.
    let r = get(&base, "/metrics/snapshot", None).await;
    assert_eq!(
        (r.status, r.content_type.as_str()),
        (200, "application/json")
    );
    let m = r.json();
    assert_eq!(m["ucr/mesos/containers_running"], 1.0, "{m}");
    assert_eq!(m["ucr/mesos/containers_launched"], 1.0, "{m}");
    assert!(m["ucr/store/images"].as_f64().unwrap_or(0.0) >= 1.0, "{m}");
    let cpus = std::fs::read_to_string("/sys/devices/system/cpu/online").expect("cpus");
    assert!(!cpus.is_empty());
    assert!(m["system/cpus_total"].as_f64().unwrap_or(0.0) >= 1.0, "{m}");
    assert!(
        m["system/mem_total_bytes"].as_f64().unwrap_or(0.0) > 1e6,
        "{m}"
    );
    assert!(m["system/load_1min"].is_number(), "{m}");
    assert!(m["slave/recovery_time_secs"].is_number(), "{m}");
    let r = get(&base, "/metrics/snapshot?timeout=5secs&jsonp=cb", None).await;
    assert_eq!(r.status, 200);
    assert!(r.text().starts_with("cb({"));
    let r = get(&base, "/metrics/snapshot?timeout=soon", None).await;
    assert_eq!(r.status, 400);
    assert!(r.text().contains("soon"), "{}", r.text());

    end(&base, "legacy", None).await;
    let gone = get(&base, "/metrics/snapshot", None).await.json();
    assert_eq!(gone["ucr/mesos/containers_running"], 0.0);
    assert_eq!(gone["ucr/mesos/containers_killed"], 1.0);
    assert_eq!(
        get(&base, "/monitor/statistics", None).await.json(),
        serde_json::json!([])
    );
    common::pods::assert_nothing_left(&d);
}

fn metric(resp: &Response, name: &str) -> Option<f64> {
    resp.get_metrics
        .as_ref()?
        .metrics
        .iter()
        .find(|m| m.name == name)
        .and_then(|m| m.value)
}

#[tokio::test]
async fn get_metrics_counts_launches_in_json_and_protobuf() {
    require_root!("get_metrics_counts_launches_in_json_and_protobuf");
    let (d, base) = daemon(&[], &[]);
    let r = call_json(&base, r#"{"type": "GET_METRICS", "get_metrics": {}}"#, None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let before = r.json();
    assert_eq!(before["type"], "GET_METRICS");
    let find = |v: &serde_json::Value, name: &str| {
        v["get_metrics"]["metrics"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|m| m["name"] == name)
            .map(|m| m["value"].as_f64().unwrap_or(f64::NAN))
    };
    assert_eq!(find(&before, "ucr/mesos/containers_launched"), Some(0.0));
    assert_eq!(find(&before, "slave/container_launch_errors"), Some(0.0));
    assert_eq!(
        find(
            &before,
            "containerizer/mesos/provisioner/docker_store/image_pull_ms"
        ),
        None,
        "no pull yet"
    );
    let uptime = find(&before, "slave/uptime_secs").expect("uptime");

    // A launch that works, and one whose image cannot be pulled.
    let ok = launch_body(
        "counted",
        common::pods::BUSYBOX,
        serde_json::json!({"value": "exit 0"}),
    );
    assert_eq!(call_json(&base, &ok, None).await.status, 200);
    let missing = format!("{REGISTRY}/ucr-test/no-such-image:latest");
    let bad = launch_body(
        "not-counted",
        &missing,
        serde_json::json!({"value": "true"}),
    );
    assert_eq!(call_json(&base, &bad, None).await.status, 400);

    let get_metrics = Call {
        r#type: Some(call::Type::GetMetrics as i32),
        get_metrics: Some(call::GetMetrics {
            timeout: Some(ucr::mesos::wire::v1::DurationInfo {
                nanoseconds: 5_000_000_000,
            }),
        }),
        ..Default::default()
    };
    let r = call_protobuf(&base, &get_metrics, None).await;
    assert_eq!(
        (r.status, r.content_type.as_str()),
        (200, "application/x-protobuf")
    );
    let after = Response::decode(&r.body[..]).expect("protobuf");
    assert_eq!(after.r#type(), response::Type::GetMetrics);
    assert_eq!(metric(&after, "ucr/mesos/containers_launched"), Some(1.0));
    assert_eq!(metric(&after, "slave/container_launch_errors"), Some(1.0));
    assert!(metric(&after, "slave/uptime_secs").expect("uptime") > uptime);
    assert!(metric(&after, "system/mem_free_bytes").expect("free") > 0.0);
    // Both pulls timed (the failed one too, as Mesos's timer does), in milliseconds.
    let pull = "containerizer/mesos/provisioner/docker_store/image_pull_ms";
    assert!(metric(&after, pull).expect("a pull timed") > 0.0);
    assert_eq!(metric(&after, &format!("{pull}/count")), Some(2.0));
    assert!(metric(&after, &format!("{pull}/max")) >= metric(&after, &format!("{pull}/min")));

    let r = call_json(
        &base,
        r#"{"type": "GET_METRICS", "get_metrics": {"timeout": {"nanoseconds": -1}}}"#,
        None,
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(r.text().contains("-1"), "{}", r.text());

    assert_eq!(
        call_json(&base, &id_call("WAIT_CONTAINER", "counted"), None)
            .await
            .status,
        200
    );
    assert_eq!(
        call_json(&base, &id_call("REMOVE_CONTAINER", "counted"), None)
            .await
            .status,
        200
    );
    common::pods::assert_nothing_left(&d);
}

/// Runs `ucr serve` expecting a refusal; whether it exited by itself, and its output.
fn serve_refused(args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ucr"))
        .arg("serve")
        .arg("--root")
        .arg(dir.path().join("root"))
        .arg("--run-root")
        .arg(dir.path().join("run"))
        .arg("--listen")
        .arg(dir.path().join("ucr.sock"))
        .args(["--mesos-listen", &free_address()])
        .args(["--cgroups-root", "ucr-test-operator-refusal"])
        .args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ucr serve");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut exited = false;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            exited = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    if !exited {
        let _ = child.kill();
    }
    let out = child.wait_with_output().expect("output");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (exited && !out.status.success(), text)
}

/// Every isolator of ucr's but these.
fn all_but(left_out: &[&str]) -> String {
    ucr::config::isolation::KNOWN
        .iter()
        .filter(|n| !left_out.contains(n) && **n != "disk/xfs")
        .copied()
        .collect::<Vec<_>>()
        .join(",")
}

/// A start that must be refused, and what its output must say.
struct Refusal {
    args: Vec<String>,
    env: Vec<(&'static str, String)>,
    says: Vec<&'static str>,
}

fn refusal(args: &[&str], env: &[(&'static str, &str)], says: &[&'static str]) -> Refusal {
    Refusal {
        args: args.iter().map(|a| a.to_string()).collect(),
        env: env.iter().map(|(k, v)| (*k, v.to_string())).collect(),
        says: says.to_vec(),
    }
}

#[test]
fn starts_refused_for_isolation_providers_and_credentials() {
    let no_docker_runtime = all_but(&["docker/runtime"]);
    let no_pid_ns = all_but(&["namespaces/pid", "linux/seccomp"]);
    let cases = [
        refusal(
            &["--isolation", "filesystem/linux,gpu/nvidia"],
            &[],
            &[
                "gpu/nvidia",
                "Unknown or unsupported isolator",
                "docker/runtime, cgroups/devices",
            ],
        ),
        refusal(
            &["--isolation", &no_docker_runtime, "--image_providers", "docker"],
            &[],
            &["Docker runtime isolator has to be specified if 'DOCKER' is included in 'image_providers'"],
        ),
        refusal(
            &["--isolation", &no_pid_ns],
            &[],
            &["the CRI door needs", "namespaces/pid", "linux/seccomp"],
        ),
        refusal(
            &["--image-providers", "appc"],
            &[],
            &["appc", "not supported by ucr"],
        ),
        refusal(
            &[],
            &[("MESOS_ISOLATION", "filesystem/linux,filesystem/linux")],
            &["Duplicate entries"],
        ),
        refusal(
            &["--authenticate-http-readwrite"],
            &[],
            &["No credentials provided", "mesos-agent-readwrite"],
        ),
        refusal(
            &[
                "--authenticate-http-readonly",
                "--http-credentials",
                "/nonexistent/ucr-creds.json",
            ],
            &[],
            &["/nonexistent/ucr-creds.json"],
        ),
        refusal(
            &[],
            &[("MESOS_AUTHENTICATE_HTTP_READWRITE", "yes")],
            &["MESOS_AUTHENTICATE_HTTP_READWRITE", "Expecting a boolean"],
        ),
    ];
    for case in cases {
        let args: Vec<&str> = case.args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = case.env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (refused, out) = serve_refused(&args, &env);
        assert!(refused, "{args:?} {env:?} started:\n{out}");
        for w in case.says {
            assert!(out.contains(w), "{args:?} {env:?}: no {w:?} in:\n{out}");
        }
    }
}

#[tokio::test]
async fn mesos_env_flags_sit_between_the_command_line_and_the_file() {
    require_root!("mesos_env_flags_sit_between_the_command_line_and_the_file");
    let dir = tempfile::tempdir().expect("tempdir");
    let creds = credentials_file(dir.path());
    let config = dir.path().join("ucr.toml");
    std::fs::write(
        &config,
        "logging_level = \"debug\"\nimage_gc_config = '{\"image_disk_headroom\": 0.1}'\nauthenticate_http_readonly = false\n",
    )
    .expect("config");
    let config_arg = config.display().to_string();
    let isolation = all_but(&["disk/du"]);
    let creds_env = creds.display().to_string();
    let (d, base) = daemon(
        &["--config", &config_arg],
        &[
            // Over the file.
            ("MESOS_LOGGING_LEVEL", "info"),
            ("MESOS_AUTHENTICATE_HTTP_READONLY", "true"),
            ("MESOS_HTTP_CREDENTIALS", &creds_env),
            ("MESOS_ISOLATION", &isolation),
            // Under the command line (the test daemon's --root).
            ("MESOS_WORK_DIR", "/nonexistent/from-env"),
            // Not a flag of ucr's: ignored, as Mesos ignores unknown ones.
            ("MESOS_MASTER", "zk://127.0.0.1:2181/mesos"),
        ],
    );
    let r = call_json(&base, r#"{"type": "GET_FLAGS"}"#, None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let flags: std::collections::BTreeMap<String, String> = r.json()["get_flags"]["flags"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| {
            (
                f["name"].as_str().unwrap_or_default().to_string(),
                f["value"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(flags["logging_level"], "info", "env over file");
    assert_eq!(flags["authenticate_http_readonly"], "true", "env over file");
    assert_eq!(
        flags["work_dir"],
        d.root.display().to_string(),
        "flag over env"
    );
    assert!(
        flags["image_gc_config"].contains("image_disk_headroom"),
        "from the file"
    );
    assert_eq!(
        flags["isolation"], isolation,
        "from the env, in the table's order"
    );
    assert!(!flags.contains_key("master"));
    // The log names the variables read and ignored, never their values.
    let logs = d.logs();
    assert!(
        logs.contains("flags from the environment") && logs.contains("MESOS_MASTER"),
        "{logs}"
    );
    assert!(!logs.contains("zk://127.0.0.1"), "a value in the log");
    // The environment's readonly flag is in force.
    assert_eq!(get(&base, "/flags", None).await.status, 401);
    let r = get(&base, "/flags", Some(&basic(PRINCIPAL, SECRET))).await;
    assert_eq!(r.json()["flags"]["logging_level"], "info");
}
