//! The operator's view against the real daemon: `--metrics-listen` scraped over HTTP
//! before and after a pull, a pod start, a prune and Mesos calls (each family moves by
//! what was done); `/healthz`; the endpoint's refusals; no endpoint without the flag;
//! JSON log lines carrying the calls' span fields; and spans exported over OTLP/HTTP to
//! a receiver this test runs. Needs root for the daemons (says so and skips otherwise).

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::pods::{self, BUSYBOX};
use common::*;
use k8s_cri::v1 as cri;
use prost::Message;

/// The address a daemon logged for a listener (`serving metrics`, `serving the Mesos
/// operator API`), text or JSON logs alike.
fn logged_address(d: &Daemon, what: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(line) = d.logs().lines().find(|l| l.contains(what)) {
            let rest = &line[line.find("address").expect("address field") + 7..];
            let start = rest.find(|c: char| c.is_ascii_digit()).expect("an address");
            return rest[start..]
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
                .collect();
        }
        assert!(Instant::now() < deadline, "no {what:?} in\n{}", d.logs());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A scrape: every sample line by its name and labels, as written.
async fn scrape(base: &str) -> BTreeMap<String, f64> {
    let resp = reqwest::get(format!("{base}/metrics")).await.expect("GET");
    assert_eq!(resp.status(), 200);
    let content_type = resp.headers()["content-type"].to_str().expect("ascii");
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let text = resp.text().await.expect("body");
    assert!(text.ends_with("# EOF\n"), "OpenMetrics ends with # EOF");
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let (name, value) = l.rsplit_once(' ').expect("name value");
            (name.to_string(), value.parse().expect("a number"))
        })
        .collect()
}

fn get(m: &BTreeMap<String, f64>, sample: &str) -> f64 {
    m.get(sample).copied().unwrap_or(0.0)
}

/// The compressed size of an image's layers, from its registry (what a pull reads).
async fn layer_bytes(image: &str) -> u64 {
    let (host, rest) = image.split_once('/').expect("host");
    let (name, tag) = rest.rsplit_once(':').expect("tag");
    let manifest: serde_json::Value = reqwest::Client::new()
        .get(format!("http://{host}/v2/{name}/manifests/{tag}"))
        .header(
            "Accept",
            "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json",
        )
        .send()
        .await
        .expect("manifest")
        .json()
        .await
        .expect("json");
    manifest["layers"]
        .as_array()
        .expect("a single-platform manifest")
        .iter()
        .map(|l| l["size"].as_u64().expect("size"))
        .sum()
}

async fn mesos(base: &str, body: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("{base}/api/v1"))
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("POST /api/v1")
        .status()
        .as_u16()
}

fn histogram_count(m: &BTreeMap<String, f64>, name: &str, labels: &str) -> f64 {
    get(m, &format!("{name}_count{{{labels}}}"))
}

#[tokio::test]
async fn families_move_with_a_pull_a_pod_start_a_prune_and_mesos_calls() {
    require_root!("families_move_with_a_pull_a_pod_start_a_prune_and_mesos_calls");
    let d = Daemon::start(&["--metrics-listen", "127.0.0.1:0", "--log-format", "json"]);
    let base = format!("http://{}", logged_address(&d, "serving metrics"));
    let mesos_base = format!(
        "http://{}",
        logged_address(&d, "serving the Mesos operator API")
    );
    let before = scrape(&base).await;
    for family in ["ucr_image_store_layers", "ucr_monitors_alive"] {
        assert_eq!(get(&before, family), 0.0, "{family} on a fresh daemon");
    }

    // A pull: its call counted and timed, its layer bytes read, its duration recorded.
    let mut images = d.images().await;
    pull(&mut images, BUSYBOX).await.expect("pull");
    let pulled = scrape(&base).await;
    let pull_call = "ucr_cri_requests_total{method=\"PullImage\",grpc_code=\"OK\"}";
    assert_eq!(get(&pulled, pull_call) - get(&before, pull_call), 1.0);
    assert_eq!(
        histogram_count(
            &pulled,
            "ucr_cri_request_duration_seconds",
            "method=\"PullImage\""
        ),
        1.0
    );
    let bytes = get(&pulled, "ucr_image_pull_bytes_total");
    assert_eq!(
        bytes as u64,
        layer_bytes(BUSYBOX).await,
        "the layers' compressed bytes, once"
    );
    assert_eq!(
        histogram_count(
            &pulled,
            "ucr_image_pull_duration_seconds",
            "result=\"success\""
        ),
        1.0
    );
    assert!(get(&pulled, "ucr_image_pull_throughput_bytes_per_second") > 0.0);
    assert!(get(&pulled, "ucr_image_store_size_bytes") > bytes);
    assert_eq!(get(&pulled, "ucr_image_store_layers"), 1.0);
    assert_eq!(get(&pulled, "ucr_image_store_images"), 1.0);

    // A pod start: RunPodSandbox (with a CNI ADD), CreateContainer, StartContainer.
    let mut rt = d.runtime().await;
    let logs = d.dir.path().join("pod-logs");
    std::fs::create_dir_all(&logs).expect("logs dir");
    let config = pods::pod_config("metrics", &logs);
    let pod = pods::run_pod(&mut rt, &config).await;
    let c = pods::create(
        &mut rt,
        &pod,
        &config,
        pods::container_config("sleeper", "sleep 300"),
    )
    .await
    .expect("CreateContainer");
    pods::start(&mut rt, &c).await;
    let started = scrape(&base).await;
    for method in ["RunPodSandbox", "CreateContainer", "StartContainer"] {
        let ok = format!("ucr_cri_requests_total{{method=\"{method}\",grpc_code=\"OK\"}}");
        assert_eq!(get(&started, &ok), 1.0, "{ok}");
        let timed = format!("method=\"{method}\"");
        assert_eq!(
            histogram_count(&started, "ucr_cri_request_duration_seconds", &timed),
            1.0,
            "{method} timed"
        );
    }
    assert_eq!(get(&started, "ucr_containers{state=\"running\"}"), 1.0);
    assert_eq!(get(&started, "ucr_containers{state=\"created\"}"), 0.0);
    assert_eq!(get(&started, "ucr_pods{state=\"ready\"}"), 1.0);
    assert_eq!(get(&started, "ucr_monitors_alive"), 1.0);
    assert_eq!(
        histogram_count(
            &started,
            "ucr_cni_operation_duration_seconds",
            "operation=\"ADD\",result=\"success\""
        ),
        1.0
    );

    // A failed call is counted by its code, under the handler's name only.
    let missing = rt
        .container_status(cri::ContainerStatusRequest {
            container_id: "no-such-container".into(),
            verbose: false,
        })
        .await
        .expect_err("unknown container");
    assert_eq!(missing.code(), tonic::Code::NotFound);
    // A request refused before it reaches the core is counted too.
    let empty = rt
        .container_status(cri::ContainerStatusRequest::default())
        .await
        .expect_err("no id");
    assert_eq!(empty.code(), tonic::Code::InvalidArgument);
    let failed = scrape(&base).await;
    assert_eq!(
        get(
            &failed,
            "ucr_cri_requests_total{method=\"ContainerStatus\",grpc_code=\"NotFound\"}"
        ),
        1.0
    );
    assert_eq!(
        get(
            &failed,
            "ucr_cri_requests_total{method=\"ContainerStatus\",grpc_code=\"InvalidArgument\"}"
        ),
        1.0
    );

    // The pod goes: a CNI DEL, the monitor's exit seen, then busybox is unused and a
    // prune (PruneImages) removes it.
    pods::stop_remove_pod(&mut rt, &pod).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let stopped = loop {
        let m = scrape(&base).await;
        if get(&m, "ucr_monitors_alive") == 0.0 || Instant::now() > deadline {
            break m;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(get(&stopped, "ucr_monitors_alive"), 0.0);
    assert_eq!(get(&stopped, "ucr_containers{state=\"running\"}"), 0.0);
    assert_eq!(get(&stopped, "ucr_pods{state=\"ready\"}"), 0.0);
    assert_eq!(
        histogram_count(
            &stopped,
            "ucr_cni_operation_duration_seconds",
            "operation=\"DEL\",result=\"success\""
        ),
        1.0
    );
    let channel = ucr::cri::client::connect(&d.socket).await.expect("connect");
    let report = ucr::cri::admin_api::admin_client::AdminClient::new(channel)
        .prune_images(ucr::cri::admin_api::PruneImagesRequest::default())
        .await
        .expect("PruneImages")
        .into_inner();
    assert_eq!(report.removed_images.len(), 1, "busybox, unused");
    let pruned = scrape(&base).await;
    assert_eq!(
        get(&pruned, "ucr_image_gc_runs_total{trigger=\"manual\"}"),
        1.0
    );
    assert_eq!(
        get(&pruned, "ucr_image_gc_freed_bytes_total") as u64,
        report.reclaimed_bytes
    );
    assert!(report.reclaimed_bytes > 0);
    assert_eq!(get(&pruned, "ucr_image_gc_removed_layers_total"), 1.0);
    assert_eq!(get(&pruned, "ucr_image_store_layers"), 0.0);
    assert_eq!(
        get(
            &pruned,
            "ucr_cri_requests_total{method=\"PruneImages\",grpc_code=\"OK\"}"
        ),
        1.0
    );

    // The Mesos door: a call by its type and status; PRUNE_IMAGES shares the prune's
    // count; a body that is no Call is counted without a client-chosen label.
    assert_eq!(mesos(&mesos_base, r#"{"type":"GET_HEALTH"}"#).await, 200);
    assert_eq!(mesos(&mesos_base, r#"{"type":"PRUNE_IMAGES"}"#).await, 200);
    assert_eq!(mesos(&mesos_base, r#"{"type":"{evil}"}"#).await, 400);
    let m = scrape(&base).await;
    assert_eq!(
        get(
            &m,
            "ucr_mesos_requests_total{call=\"GET_HEALTH\",status=\"200\"}"
        ),
        1.0
    );
    assert_eq!(
        get(
            &m,
            "ucr_mesos_requests_total{call=\"PRUNE_IMAGES\",status=\"200\"}"
        ),
        1.0
    );
    assert_eq!(
        get(
            &m,
            "ucr_mesos_requests_total{call=\"UNPARSED\",status=\"400\"}"
        ),
        1.0
    );
    assert_eq!(get(&m, "ucr_image_gc_runs_total{trigger=\"manual\"}"), 2.0);
    assert!(
        !m.keys().any(|k| k.contains("evil")),
        "no client text as a label"
    );

    // The JSON log lines: every one parses; the calls' lines carry their span's ids.
    let lines: Vec<serde_json::Value> = d
        .logs()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let span_of = |call: &str| {
        lines
            .iter()
            .find(|l| l["span"]["call"] == call && l["span"]["name"] == "cri")
            .map(|l| l["span"].clone())
            .unwrap_or_else(|| panic!("no line in a {call} span"))
    };
    assert_eq!(span_of("RunPodSandbox")["pod_id"], pod.as_str());
    assert_eq!(span_of("CreateContainer")["pod_id"], pod.as_str());
    assert_eq!(span_of("CreateContainer")["container_id"], c.as_str());
    assert_eq!(span_of("StartContainer")["container_id"], c.as_str());
    assert_eq!(span_of("StopPodSandbox")["pod_id"], pod.as_str());
    let mesos_line = lines
        .iter()
        .find(|l| l["span"]["name"] == "mesos" && l["span"]["call"] == "PRUNE_IMAGES");
    assert!(mesos_line.is_some(), "a line in the PRUNE_IMAGES span");
}

#[tokio::test]
async fn the_endpoint_is_read_only_and_has_a_health_check() {
    require_root!("the_endpoint_is_read_only_and_has_a_health_check");
    let d = Daemon::start(&["--metrics-listen", "127.0.0.1:0"]);
    let base = format!("http://{}", logged_address(&d, "serving metrics"));
    let client = reqwest::Client::new();
    let health = client
        .get(format!("{base}/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(health.status(), 200);
    for method in [
        reqwest::Method::POST,
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
    ] {
        for path in ["/metrics", "/healthz"] {
            let resp = client
                .request(method.clone(), format!("{base}{path}"))
                .body("x")
                .send()
                .await
                .expect("request");
            assert_eq!(resp.status(), 405, "{method} {path}");
            assert_eq!(resp.headers()["allow"], "GET");
        }
    }
    let other = client
        .get(format!("{base}/metrics/../state"))
        .send()
        .await
        .expect("request");
    assert_eq!(other.status(), 404);
}

#[tokio::test]
async fn no_endpoint_without_the_flag() {
    require_root!("no_endpoint_without_the_flag");
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let d = Daemon::start(&[]);
    // The daemon serves (its CRI socket answers) and logs no metrics listener.
    let mut images = d.images().await;
    assert!(list(&mut images).await.is_empty());
    assert!(
        !d.logs().contains("serving metrics"),
        "metrics served without --metrics-listen:\n{}",
        d.logs()
    );
    assert!(
        std::net::TcpStream::connect(free).is_err(),
        "nothing listens on a port it was not given"
    );
    // And the flag is checked: a bad address stops the start.
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_ucr"))
        .args(["serve", "--metrics-listen", "localhost"])
        .output()
        .expect("run ucr");
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("metrics-listen"), "{stderr}");
}

/// What an OTLP/HTTP collector received: the spans' names and string attributes.
type Received = Arc<Mutex<Vec<(String, BTreeMap<String, String>)>>>;

/// A minimal OTLP/HTTP traces receiver: decodes each `POST /v1/traces` body as the
/// collector would and answers with an empty ExportTraceServiceResponse.
async fn otlp_receiver() -> (String, Received) {
    use http_body_util::BodyExt;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let received: Received = Arc::default();
    let store = received.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let store = store.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: http::Request<_>| {
                    let store = store.clone();
                    async move {
                        let path = req.uri().path().to_string();
                        let body = BodyExt::collect(req.into_body())
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        if path == "/v1/traces" {
                            let export =
                                ExportTraceServiceRequest::decode(body).expect("OTLP protobuf");
                            let spans = export
                                .resource_spans
                                .into_iter()
                                .flat_map(|r| r.scope_spans)
                                .flat_map(|s| s.spans);
                            let mut store = store.lock().expect("lock");
                            for span in spans {
                                let attributes = span
                                    .attributes
                                    .into_iter()
                                    .filter_map(|kv| match kv.value?.value? {
                                        Value::StringValue(s) => Some((kv.key, s)),
                                        _ => None,
                                    })
                                    .collect();
                                store.push((span.name, attributes));
                            }
                        }
                        let mut resp =
                            http::Response::new(http_body_util::Full::new(bytes::Bytes::new()));
                        resp.headers_mut().insert(
                            "content-type",
                            http::HeaderValue::from_static("application/x-protobuf"),
                        );
                        Ok::<_, std::convert::Infallible>(resp)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (format!("http://{address}"), received)
}

#[tokio::test]
async fn spans_reach_an_otlp_collector_named_for_the_call_with_the_pod_id() {
    require_root!("spans_reach_an_otlp_collector_named_for_the_call_with_the_pod_id");
    let (url, received) = otlp_receiver().await;
    // The batch exporter's delay, shortened so the test need not wait 5 s.
    let d = Daemon::start_with_env(
        &["--otlp-endpoint", &url],
        &[("OTEL_BSP_SCHEDULE_DELAY", "100")],
    );
    let mut rt = d.runtime().await;
    let status = rt
        .pod_sandbox_status(cri::PodSandboxStatusRequest {
            pod_sandbox_id: "pod-otlp-1".into(),
            verbose: false,
        })
        .await
        .expect_err("no such pod");
    assert_eq!(status.code(), tonic::Code::NotFound);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let found = received.lock().expect("lock").iter().any(|(name, attrs)| {
            name == "PodSandboxStatus"
                && attrs.get("pod_id").map(String::as_str) == Some("pod-otlp-1")
                && attrs.get("call").map(String::as_str) == Some("PodSandboxStatus")
        });
        if found {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no PodSandboxStatus span with the pod id; received {:?}\n{}",
            received.lock().expect("lock"),
            d.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
