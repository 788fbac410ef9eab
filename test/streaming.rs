//! The streaming server end to end: CRI Exec, Attach and PortForward return URLs, and
//! real clients (our WebSocket client and our SPDY client) upgrade on them against the
//! real daemon and real containers. Needs root; says so and skips otherwise.

mod common;

use std::time::Duration;

use common::pods::{
    assert_nothing_left, container_config, daemon, pod_config, run_pod, running, settle_sleeps,
    stop_remove_pod, Rt,
};
use common::*;
use common::{spdy, ws};
use k8s_cri::v1 as cri;
use tonic::Code;

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const ERROR: u8 = 3;
const RESIZE: u8 = 4;
const LIMIT: Duration = Duration::from_secs(20);

async fn exec_url(rt: &mut Rt, id: &str, cmd: &[&str], stdin: bool, tty: bool) -> String {
    rt.exec(cri::ExecRequest {
        container_id: id.into(),
        cmd: cmd.iter().map(|s| s.to_string()).collect(),
        tty,
        stdin,
        stdout: true,
        stderr: !tty,
    })
    .await
    .expect("Exec")
    .into_inner()
    .url
}

fn status(error_channel: Option<&Vec<u8>>) -> serde_json::Value {
    serde_json::from_slice(error_channel.expect("a status on the error channel")).expect("json")
}

#[tokio::test]
async fn websocket_exec_carries_output_exit_codes_and_stdin() {
    require_root!("websocket_exec_carries_output_exit_codes_and_stdin");
    let (d, mut rt) = daemon().await;
    let pc = pod_config("ws-exec", &d.dir.path().join("logs"));
    let pod = run_pod(&mut rt, &pc).await;
    let id = running(&mut rt, &pod, &pc, container_config("c", "exec sleep 1000")).await;

    // Output on both streams, and the exit code as a Status cause.
    let url = exec_url(
        &mut rt,
        &id,
        &["sh", "-c", "echo out; echo err >&2; exit 3"],
        false,
        false,
    )
    .await;
    let (mut s, chosen) = ws::connect(&url, &["v5.channel.k8s.io", "v4.channel.k8s.io"])
        .await
        .expect("upgrade");
    assert_eq!(chosen, "v5.channel.k8s.io");
    let got = ws::read_all(&mut s, LIMIT).await;
    assert_eq!(got.get(&STDOUT).map(|v| &v[..]), Some(&b"out\n"[..]));
    assert_eq!(got.get(&STDERR).map(|v| &v[..]), Some(&b"err\n"[..]));
    let st = status(got.get(&ERROR));
    assert_eq!(st["status"], "Failure", "{st}");
    assert_eq!(st["reason"], "NonZeroExitCode", "{st}");
    assert_eq!(st["details"]["causes"][0]["reason"], "ExitCode", "{st}");
    assert_eq!(st["details"]["causes"][0]["message"], "3", "{st}");

    // The URL was single-use.
    assert_eq!(
        ws::connect(&url, &["v5.channel.k8s.io"]).await.err(),
        Some(404)
    );
    assert_eq!(
        ws::connect(&url.replace("/exec/", "/exec/x"), &["v5.channel.k8s.io"])
            .await
            .err(),
        Some(404)
    );

    // stdin reaches the command, and closing it (v5) is its end of file.
    let url = exec_url(&mut rt, &id, &["cat"], true, false).await;
    let (mut s, _) = ws::connect(&url, &["v5.channel.k8s.io"])
        .await
        .expect("upgrade");
    ws::send(&mut s, STDIN, b"hello through stdin\n").await;
    ws::close_channel(&mut s, STDIN).await;
    let got = ws::read_all(&mut s, LIMIT).await;
    assert_eq!(
        String::from_utf8_lossy(got.get(&STDOUT).map(|v| &v[..]).unwrap_or_default()),
        "hello through stdin\n"
    );
    assert_eq!(status(got.get(&ERROR))["status"], "Success");

    // A program that does not exist: an error status, not an exit code.
    let url = exec_url(&mut rt, &id, &["no-such-program"], false, false).await;
    let (mut s, _) = ws::connect(&url, &["v4.channel.k8s.io"])
        .await
        .expect("upgrade");
    let got = ws::read_all(&mut s, LIMIT).await;
    let st = status(got.get(&ERROR));
    assert_eq!(st["status"], "Failure", "{st}");
    assert!(
        st["message"]
            .as_str()
            .unwrap_or_default()
            .contains("no-such-program"),
        "{st}"
    );

    stop_remove_pod(&mut rt, &pod).await;
    assert_nothing_left(&d);
}

#[tokio::test]
async fn websocket_exec_with_a_terminal_sees_its_size() {
    require_root!("websocket_exec_with_a_terminal_sees_its_size");
    let (d, mut rt) = daemon().await;
    let pc = pod_config("ws-tty", &d.dir.path().join("logs"));
    let pod = run_pod(&mut rt, &pc).await;
    let id = running(&mut rt, &pod, &pc, container_config("c", "exec sleep 1000")).await;

    let url = exec_url(
        &mut rt,
        &id,
        &["sh", "-c", "tty; read go; stty size; exit 7"],
        true,
        true,
    )
    .await;
    let (mut s, _) = ws::connect(&url, &["v5.channel.k8s.io"])
        .await
        .expect("upgrade");
    let first = ws::read_until(&mut s, STDOUT, "\n", LIMIT).await;
    assert!(first.starts_with("/dev/pts/"), "tty printed {first:?}");
    ws::send(&mut s, RESIZE, br#"{"Width":123,"Height":45}"#).await;
    // The resize is applied before the line that makes the command go on is read.
    tokio::time::sleep(Duration::from_millis(200)).await;
    ws::send(&mut s, STDIN, b"go\n").await;
    let rest = ws::read_all(&mut s, LIMIT).await;
    let out =
        String::from_utf8_lossy(rest.get(&STDOUT).map(|v| &v[..]).unwrap_or_default()).into_owned();
    assert!(
        out.contains("45 123"),
        "stty size after the resize: {out:?}"
    );
    assert_eq!(rest.get(&STDERR), None, "a terminal has no separate stderr");
    let st = status(rest.get(&ERROR));
    assert_eq!(st["details"]["causes"][0]["message"], "7", "{st}");

    stop_remove_pod(&mut rt, &pod).await;
    assert_nothing_left(&d);
}

#[tokio::test]
async fn a_client_that_vanishes_leaves_no_process() {
    require_root!("a_client_that_vanishes_leaves_no_process");
    let (d, mut rt) = daemon().await;
    let pc = pod_config("ws-gone", &d.dir.path().join("logs"));
    let pod = run_pod(&mut rt, &pc).await;
    let id = running(&mut rt, &pod, &pc, container_config("c", "exec sleep 1000")).await;

    for tty in [false, true] {
        let url = exec_url(&mut rt, &id, &["sleep", "4321"], true, tty).await;
        let (s, _) = ws::connect(&url, &["v5.channel.k8s.io"])
            .await
            .expect("upgrade");
        settle_sleeps(4321, 1).await;
        drop(s);
        settle_sleeps(4321, 0).await;
    }

    stop_remove_pod(&mut rt, &pod).await;
    assert_nothing_left(&d);
}

#[tokio::test]
async fn streaming_requests_are_validated_before_a_url_is_given() {
    require_root!("streaming_requests_are_validated_before_a_url_is_given");
    let (d, mut rt) = daemon().await;
    let pc = pod_config("ws-bad", &d.dir.path().join("logs"));
    let pod = run_pod(&mut rt, &pc).await;
    let id = running(&mut rt, &pod, &pc, container_config("c", "exec sleep 1000")).await;
    let exec = |tty, stdin, stdout, stderr, cmd: &[&str]| cri::ExecRequest {
        container_id: id.clone(),
        cmd: cmd.iter().map(|s| s.to_string()).collect(),
        tty,
        stdin,
        stdout,
        stderr,
    };
    for (req, want) in [
        (exec(false, false, false, false, &["true"]), "one of stdin"),
        (exec(true, false, true, true, &["true"]), "tty and stderr"),
        (exec(false, false, true, false, &[]), "cmd"),
    ] {
        let e = rt.exec(req).await.expect_err("refused");
        assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
        assert!(e.message().contains(want), "{e:?}");
    }
    let e = rt
        .exec(cri::ExecRequest {
            container_id: "no-such-container".into(),
            ..exec(false, false, true, false, &["true"])
        })
        .await
        .expect_err("unknown container");
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    let e = rt
        .port_forward(cri::PortForwardRequest {
            pod_sandbox_id: "no-such-pod".into(),
            port: vec![80],
        })
        .await
        .expect_err("unknown pod");
    assert_eq!(e.code(), Code::NotFound, "{e:?}");

    stop_remove_pod(&mut rt, &pod).await;
    assert_nothing_left(&d);
}

async fn port_forward_url(rt: &mut Rt, pod: &str) -> String {
    rt.port_forward(cri::PortForwardRequest {
        pod_sandbox_id: pod.into(),
        port: vec![8080],
    })
    .await
    .expect("PortForward")
    .into_inner()
    .url
}

/// A pod serving `hello-from-pod` over HTTP on its own loopback only, port 8080.
async fn http_pod(rt: &mut Rt, d: &Daemon, name: &str) -> String {
    let pc = pod_config(name, &d.dir.path().join("logs"));
    let pod = run_pod(rt, &pc).await;
    running(
        rt,
        &pod,
        &pc,
        container_config(
            "httpd",
            "mkdir -p /www && echo hello-from-pod > /www/index.html && exec httpd -f -p 127.0.0.1:8080 -h /www",
        ),
    )
    .await;
    pod
}

#[tokio::test]
async fn websocket_port_forward_reaches_the_pods_loopback() {
    require_root!("websocket_port_forward_reaches_the_pods_loopback");
    let (d, mut rt) = daemon().await;
    let pod = http_pod(&mut rt, &d, "ws-pf").await;

    // Ten requests at once, each on a WebSocket of its own.
    let mut requests = Vec::new();
    for _ in 0..10 {
        let url = format!("{}?port=8080", port_forward_url(&mut rt, &pod).await);
        requests.push(tokio::spawn(async move {
            let (mut s, _) = ws::connect(&url, &["v4.channel.k8s.io"])
                .await
                .expect("upgrade");
            // The server's first message on each channel is its port, little-endian.
            let mut port_seen = Vec::new();
            let mut body = Vec::new();
            let mut error = Vec::new();
            let mut sent = false;
            let read = async {
                use futures::StreamExt;
                while let Some(Ok(m)) = s.next().await {
                    let tokio_tungstenite::tungstenite::Message::Binary(b) = m else {
                        continue;
                    };
                    let (ch, data) = (b[0], &b[1..]);
                    if port_seen.len() < 2 {
                        port_seen.push((ch, data.to_vec()));
                        if port_seen.len() == 2 && !sent {
                            sent = true;
                            ws::send(&mut s, 0, b"GET /index.html HTTP/1.0\r\n\r\n").await;
                        }
                        continue;
                    }
                    match ch {
                        0 => body.extend_from_slice(data),
                        _ => error.extend_from_slice(data),
                    }
                }
            };
            tokio::time::timeout(LIMIT, read).await.expect("in time");
            (
                port_seen,
                String::from_utf8_lossy(&body).into_owned(),
                error,
            )
        }));
    }
    for r in requests {
        let (ports, body, error) = r.await.expect("task");
        assert_eq!(
            ports,
            [
                (0, 8080u16.to_le_bytes().to_vec()),
                (1, 8080u16.to_le_bytes().to_vec())
            ]
        );
        assert!(
            body.starts_with("HTTP/1.") && body.ends_with("hello-from-pod\n"),
            "{body:?}"
        );
        assert!(error.is_empty(), "{}", String::from_utf8_lossy(&error));
    }

    // Nothing listens on 8081: the error channel says so.
    let url = format!("{}?port=8081", port_forward_url(&mut rt, &pod).await);
    let (mut s, _) = ws::connect(&url, &["v4.channel.k8s.io"])
        .await
        .expect("upgrade");
    let got = ws::read_all(&mut s, LIMIT).await;
    let error =
        String::from_utf8_lossy(got.get(&1).map(|v| &v[..]).unwrap_or_default()).into_owned();
    assert!(
        error.contains("error forwarding port 8081") && error.contains("refused"),
        "{error:?}"
    );

    stop_remove_pod(&mut rt, &pod).await;
    assert_nothing_left(&d);
}

#[tokio::test]
async fn exec_sync_output_is_capped_at_16_mib_and_says_so() {
    require_root!("exec_sync_output_is_capped_at_16_mib_and_says_so");
    let (d, mut rt) = daemon().await;
    let pc = pod_config("execsync-cap", &d.dir.path().join("logs"));
    let pod = run_pod(&mut rt, &pc).await;
    let id = running(&mut rt, &pod, &pc, container_config("c", "exec sleep 1000")).await;
    // kubelet takes messages this big; tonic's default is 4 MiB.
    let mut big = rt.clone().max_decoding_message_size(64 << 20);
    let out = big
        .exec_sync(cri::ExecSyncRequest {
            container_id: id.clone(),
            cmd: ["sh", "-c", "head -c 17825792 /dev/zero; echo done >&2"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            timeout: 60,
        })
        .await
        .expect("ExecSync")
        .into_inner();
    assert_eq!(out.exit_code, 0);
    assert_eq!(out.stdout.len(), 16 << 20);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("done\n"), "{stderr:?}");
    assert!(
        stderr.contains("stdout truncated at 16 MiB: 1048576 bytes dropped"),
        "{stderr:?}"
    );
    stop_remove_pod(&mut rt, &pod).await;
    assert_nothing_left(&d);
}

/// A remote-command session as crictl opens it (error, stdin, stdout, stderr): writes
/// `input` and closes stdin, then reads stdout, stderr and the error stream to their ends.
async fn spdy_session(
    conn: &ucr::streaming::spdy::Connection,
    input: &[u8],
) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let error = spdy::open(conn, "error", &[], true).await;
    let mut stdin = spdy::open(conn, "stdin", &[], false).await;
    let stdout = spdy::open(conn, "stdout", &[], true).await;
    let stderr = spdy::open(conn, "stderr", &[], true).await;
    {
        use tokio::io::AsyncWriteExt;
        stdin.write_all(input).await.expect("stdin");
        stdin.shutdown().await.expect("close stdin");
    }
    tokio::time::timeout(
        LIMIT,
        futures::future::join3(
            spdy::read_to_end(stdout),
            spdy::read_to_end(stderr),
            spdy::read_to_end(error),
        ),
    )
    .await
    .expect("in time")
}

/// The protocols crictl 1.26 and kubectl offer for remote commands.
const SPDY_REMOTE: [&str; 4] = [
    "v4.channel.k8s.io",
    "v3.channel.k8s.io",
    "v2.channel.k8s.io",
    "channel.k8s.io",
];

#[tokio::test]
async fn spdy_exec_carries_stdin_output_and_the_exit_code() {
    require_root!("spdy_exec_carries_stdin_output_and_the_exit_code");
    let (d, mut rt) = daemon().await;
    let pc = pod_config("spdy-exec", &d.dir.path().join("logs"));
    let pod = run_pod(&mut rt, &pc).await;
    let id = running(&mut rt, &pod, &pc, container_config("c", "exec sleep 1000")).await;

    let url = exec_url(
        &mut rt,
        &id,
        &["sh", "-c", "echo out; cat; echo err >&2; exit 5"],
        true,
        false,
    )
    .await;
    let (conn, chosen) = spdy::connect(&url, &SPDY_REMOTE).await.expect("upgrade");
    assert_eq!(chosen, "v4.channel.k8s.io");
    let (out, err, status) = spdy_session(&conn, b"from stdin\n").await;
    assert_eq!(String::from_utf8_lossy(&out), "out\nfrom stdin\n");
    assert_eq!(String::from_utf8_lossy(&err), "err\n");
    let st: serde_json::Value = serde_json::from_slice(&status).expect("status json");
    assert_eq!(st["reason"], "NonZeroExitCode", "{st}");
    assert_eq!(st["details"]["causes"][0]["message"], "5", "{st}");
    drop(conn);

    // The token was spent; a made-up one is unknown.
    assert_eq!(spdy::connect(&url, &SPDY_REMOTE).await.err(), Some(404));
    // A client with no protocol we speak is refused.
    let url = exec_url(&mut rt, &id, &["true"], false, false).await;
    assert_eq!(
        spdy::connect(&url, &["v9.channel.k8s.io"]).await.err(),
        Some(403)
    );

    stop_remove_pod(&mut rt, &pod).await;
    assert_nothing_left(&d);
}

#[tokio::test]
async fn spdy_port_forward_carries_ten_connections_on_one_session() {
    require_root!("spdy_port_forward_carries_ten_connections_on_one_session");
    let (d, mut rt) = daemon().await;
    let pod = http_pod(&mut rt, &d, "spdy-pf").await;
    let url = port_forward_url(&mut rt, &pod).await;
    let (conn, chosen) = spdy::connect(&url, &["portforward.k8s.io"])
        .await
        .expect("upgrade");
    assert_eq!(chosen, "portforward.k8s.io");
    let conn = std::sync::Arc::new(conn);
    let mut requests = Vec::new();
    for i in 0..10 {
        let conn = conn.clone();
        requests.push(tokio::spawn(async move {
            let rid = i.to_string();
            let headers = [("port", "8080"), ("requestid", rid.as_str())];
            let error = spdy::open(&conn, "error", &headers, true).await;
            let mut data = spdy::open(&conn, "data", &headers, false).await;
            use tokio::io::AsyncWriteExt;
            data.write_all(b"GET /index.html HTTP/1.0\r\n\r\n")
                .await
                .expect("request");
            let (body, error) = tokio::time::timeout(
                LIMIT,
                futures::future::join(spdy::read_to_end(data), spdy::read_to_end(error)),
            )
            .await
            .expect("in time");
            (String::from_utf8_lossy(&body).into_owned(), error)
        }));
    }
    for r in requests {
        let (body, error) = r.await.expect("task");
        assert!(body.ends_with("hello-from-pod\n"), "{body:?}");
        assert!(error.is_empty(), "{}", String::from_utf8_lossy(&error));
    }
    // Nothing listens on 8081: the error stream says so.
    let headers = [("port", "8081"), ("requestid", "99")];
    let error = spdy::open(&conn, "error", &headers, true).await;
    let data = spdy::open(&conn, "data", &headers, false).await;
    let error = tokio::time::timeout(LIMIT, spdy::read_to_end(error))
        .await
        .expect("in time");
    drop(data);
    let error = String::from_utf8_lossy(&error);
    assert!(error.contains("error forwarding port 8081"), "{error}");

    drop(conn);
    stop_remove_pod(&mut rt, &pod).await;
    assert_nothing_left(&d);
}

#[tokio::test]
async fn spdy_attach_reaches_stdin_and_stdin_once_ends_the_container() {
    require_root!("spdy_attach_reaches_stdin_and_stdin_once_ends_the_container");
    let (d, mut rt) = daemon().await;
    let pc = pod_config("spdy-attach", &d.dir.path().join("logs"));
    let pod = run_pod(&mut rt, &pc).await;
    let mut c = container_config("cat", "echo started; exec cat");
    c.stdin = true;
    c.stdin_once = true;
    let id = running(&mut rt, &pod, &pc, c).await;

    let url = rt
        .attach(cri::AttachRequest {
            container_id: id.clone(),
            stdin: true,
            tty: false,
            stdout: true,
            stderr: true,
        })
        .await
        .expect("Attach")
        .into_inner()
        .url;
    let (conn, _) = spdy::connect(&url, &SPDY_REMOTE).await.expect("upgrade");
    // stdin_once: the end of this attacher's stdin is the container's.
    let (out, _, status) = spdy_session(&conn, b"through attach\n").await;
    assert_eq!(String::from_utf8_lossy(&out), "through attach\n");
    let st: serde_json::Value = serde_json::from_slice(&status).expect("status json");
    assert_eq!(st["status"], "Success", "{st}");
    let ended = common::pods::wait_exited(&mut rt, &id, LIMIT).await;
    assert_eq!(ended.exit_code, 0, "cat saw the end of its input");
    let log = std::path::Path::new(&pc.log_directory).join("cat.log");
    assert_eq!(
        common::pods::stdout_lines(&log),
        ["started", "through attach"]
    );

    drop(conn);
    stop_remove_pod(&mut rt, &pod).await;
    assert_nothing_left(&d);
}

#[tokio::test]
async fn the_streaming_server_speaks_tls_when_given_a_certificate() {
    require_root!("the_streaming_server_speaks_tls_when_given_a_certificate");
    use rustls_pki_types::pem::PemObject;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let certs = tempfile::tempdir().expect("tempdir");
    let dir = certs.path();
    let (cert, key, ca) = (
        dir.join("cert.pem"),
        dir.join("key.pem"),
        dir.join("ca.pem"),
    );
    // A test CA, and a certificate for 127.0.0.1 signed by it.
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").expect("ext");
    for args in [
        "req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=ucr-test-ca -keyout ca.key -out ca.pem",
        "req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout key.pem -out leaf.csr",
        "x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 -extfile san.ext -out cert.pem",
    ] {
        let made = std::process::Command::new("openssl")
            .args(args.split(' '))
            .current_dir(dir)
            .output()
            .expect("run openssl");
        assert!(made.status.success(), "openssl {args}: {}", String::from_utf8_lossy(&made.stderr));
    }
    let d = Daemon::start(&[
        "--stream-tls-cert",
        cert.to_str().expect("utf8"),
        "--stream-tls-key",
        key.to_str().expect("utf8"),
    ]);
    pull(&mut d.images().await, common::pods::BUSYBOX)
        .await
        .expect("pull");
    let mut rt = d.runtime().await;
    let pc = pod_config("tls", &d.dir.path().join("logs"));
    let pod = run_pod(&mut rt, &pc).await;
    let id = running(&mut rt, &pod, &pc, container_config("c", "exec sleep 1000")).await;
    let url = exec_url(&mut rt, &id, &["true"], false, false).await;
    let rest = url.strip_prefix("https://").expect("an https URL");
    let (host, path) = rest.split_once('/').expect("path");

    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls_pki_types::CertificateDer::from_pem_file(&ca).expect("CA"))
        .expect("root");
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    // A plain GET on the URL, over TLS: the server answers (400: no upgrade asked for),
    // and the token is spent.
    for want in ["400", "404"] {
        let tcp = tokio::net::TcpStream::connect(host).await.expect("connect");
        let name = rustls_pki_types::ServerName::try_from("127.0.0.1").expect("name");
        let mut tls = connector.connect(name, tcp).await.expect("TLS handshake");
        tls.write_all(
            format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .expect("request");
        let mut response = String::new();
        let _ = tls.read_to_string(&mut response).await;
        assert!(
            response.starts_with(&format!("HTTP/1.1 {want}")),
            "{response}"
        );
    }
    stop_remove_pod(&mut rt, &pod).await;
    assert_nothing_left(&d);
}
