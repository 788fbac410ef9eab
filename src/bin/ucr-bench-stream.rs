//! `ucr-bench-stream`: a benchmark client (not part of the runtime) for the streaming
//! server. Against a running daemon it starts one pod whose container serves a file of
//! `--mib` MiB over HTTP on port 8080 (busybox `httpd`), then measures:
//!
//! - exec round trip: `echo` through ExecSync, and through streaming Exec (the CRI call,
//!   the WebSocket upgrade, the command, the exit status), `--rounds` times each;
//! - port-forward throughput: the file downloaded through one forwarded connection, and
//!   through 10 at once: over WebSocket (each a PortForward URL of its own) and over
//!   SPDY (stream pairs on one session, as crictl and kubelet's proxy use it);
//! - for scale, the same download straight from the pod's IP (the veth path, no
//!   streaming server): the limit the forwarded figures are read against.
//!
//! `hack/bench-stream.sh` starts a daemon and runs it.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use futures::{SinkExt, StreamExt};
use k8s_cri::v1 as cri;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tonic::transport::Channel;
use ucr::streaming::client::Event;

#[derive(Debug, Parser)]
#[command(name = "ucr-bench-stream", version)]
struct Flags {
    /// The daemon's socket.
    #[arg(long, default_value = ucr::config::DEFAULT_LISTEN)]
    listen: std::path::PathBuf,
    /// A busybox image with `httpd`.
    #[arg(long)]
    image: String,
    /// Exec round trips to time, each way.
    #[arg(long, default_value_t = 50)]
    rounds: usize,
    /// Size of the file downloaded through port-forward.
    #[arg(long, default_value_t = 256)]
    mib: usize,
}

type Rt = RuntimeServiceClient<Channel>;

fn main() -> std::process::ExitCode {
    let flags = Flags::parse();
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|rt| rt.block_on(run(flags)));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ucr-bench-stream: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(flags: Flags) -> anyhow::Result<()> {
    let channel = ucr::cri::client::connect(&flags.listen)
        .await
        .with_context(|| format!("connecting to {}", flags.listen.display()))?;
    let mut images = k8s_cri::v1::image_service_client::ImageServiceClient::new(channel.clone());
    images
        .pull_image(cri::PullImageRequest {
            image: Some(cri::ImageSpec {
                image: flags.image.clone(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .context("pull")?;
    let mut rt = RuntimeServiceClient::new(channel);
    let logs = std::env::temp_dir().join(format!("ucr-bench-stream-{}", std::process::id()));
    let pod_config = cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata {
            name: "bench-stream".into(),
            uid: format!("bench-stream-{}", std::process::id()),
            namespace: "default".into(),
            attempt: 0,
        }),
        log_directory: logs.display().to_string(),
        ..Default::default()
    };
    let pod = rt
        .run_pod_sandbox(cri::RunPodSandboxRequest {
            config: Some(pod_config.clone()),
            runtime_handler: String::new(),
        })
        .await
        .context("RunPodSandbox")?
        .into_inner()
        .pod_sandbox_id;
    let result = measure(&mut rt, &pod, &pod_config, &flags).await;
    let _ = rt
        .stop_pod_sandbox(cri::StopPodSandboxRequest {
            pod_sandbox_id: pod.clone(),
        })
        .await;
    let _ = rt
        .remove_pod_sandbox(cri::RemovePodSandboxRequest {
            pod_sandbox_id: pod,
        })
        .await;
    let _ = std::fs::remove_dir_all(&logs);
    result
}

async fn measure(
    rt: &mut Rt,
    pod: &str,
    pod_config: &cri::PodSandboxConfig,
    flags: &Flags,
) -> anyhow::Result<()> {
    let script = format!(
        "mkdir -p /www && head -c {} /dev/zero > /www/big && echo ready > /www/ready && exec httpd -f -p 8080 -h /www",
        flags.mib << 20
    );
    let container = rt
        .create_container(cri::CreateContainerRequest {
            pod_sandbox_id: pod.into(),
            config: Some(cri::ContainerConfig {
                metadata: Some(cri::ContainerMetadata {
                    name: "httpd".into(),
                    attempt: 0,
                }),
                image: Some(cri::ImageSpec {
                    image: flags.image.clone(),
                    ..Default::default()
                }),
                command: vec!["sh".into(), "-c".into(), script],
                log_path: "httpd.log".into(),
                ..Default::default()
            }),
            sandbox_config: Some(pod_config.clone()),
        })
        .await
        .context("CreateContainer")?
        .into_inner()
        .container_id;
    rt.start_container(cri::StartContainerRequest {
        container_id: container.clone(),
    })
    .await
    .context("StartContainer")?;
    let ip = rt
        .pod_sandbox_status(cri::PodSandboxStatusRequest {
            pod_sandbox_id: pod.into(),
            verbose: false,
        })
        .await?
        .into_inner()
        .status
        .and_then(|s| s.network)
        .map(|n| n.ip)
        .unwrap_or_default();
    // Ready once the file is written.
    for _ in 0..200 {
        let out = exec_sync(rt, &container, &["cat", "/www/ready"]).await?;
        if out == "ready\n" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let mut sync_times = Vec::new();
    for _ in 0..flags.rounds {
        let t = Instant::now();
        let out = exec_sync(rt, &container, &["echo", "hi"]).await?;
        sync_times.push(t.elapsed());
        anyhow::ensure!(out == "hi\n", "ExecSync echo said {out:?}");
    }
    report("ExecSync echo", &mut sync_times);
    let mut stream_times = Vec::new();
    for _ in 0..flags.rounds {
        let t = Instant::now();
        let out = stream_exec(rt, &container, &["echo", "hi"]).await?;
        stream_times.push(t.elapsed());
        anyhow::ensure!(out == "hi\n", "streaming echo said {out:?}");
    }
    report("streaming Exec echo (WebSocket)", &mut stream_times);

    let bytes = (flags.mib << 20) as f64;
    let mib_s = |bytes: f64, d: Duration| bytes / (1 << 20) as f64 / d.as_secs_f64();
    if !ip.is_empty() {
        let t = Instant::now();
        let n = download_direct(&ip).await?;
        anyhow::ensure!(n as f64 >= bytes, "direct download got {n} bytes");
        println!(
            "direct from the pod IP, 1 connection: {:.0} MiB/s",
            mib_s(bytes, t.elapsed())
        );
    }
    let t = Instant::now();
    let n = download_forwarded(rt, pod).await?;
    anyhow::ensure!(n as f64 >= bytes, "forwarded download got {n} bytes");
    println!(
        "port-forward (WebSocket), 1 connection: {:.0} MiB/s",
        mib_s(bytes, t.elapsed())
    );
    let t = Instant::now();
    let mut all = Vec::new();
    for _ in 0..10 {
        let url = port_forward_url(rt, pod).await?;
        all.push(tokio::spawn(async move { download_ws(&url).await }));
    }
    for d in all {
        let n = d.await??;
        anyhow::ensure!(n as f64 >= bytes, "a forwarded download got {n} bytes");
    }
    println!(
        "port-forward (WebSocket), 10 connections at once: {:.0} MiB/s in all",
        mib_s(bytes * 10.0, t.elapsed())
    );
    // SPDY, as crictl and kubelet's proxy speak it: one session, stream pairs on it.
    for n in [1usize, 10] {
        let url = port_forward_url(rt, pod).await?;
        let url = url.trim_end_matches("?port=8080").to_string();
        let conn = std::sync::Arc::new(spdy_connect(&url).await?);
        let t = Instant::now();
        let mut all = Vec::new();
        for i in 0..n {
            let conn = conn.clone();
            all.push(tokio::spawn(async move { download_spdy(&conn, i).await }));
        }
        for d in all {
            let got = d.await??;
            anyhow::ensure!(got as f64 >= bytes, "a SPDY download got {got} bytes");
        }
        println!(
            "port-forward (SPDY), {n} connection(s) on one session: {:.0} MiB/s in all",
            mib_s(bytes * n as f64, t.elapsed())
        );
        conn.close().await;
    }
    Ok(())
}

fn report(what: &str, times: &mut [Duration]) {
    times.sort();
    let at = |q: f64| times[((times.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "{what}: median {:.2} ms, p90 {:.2} ms, max {:.2} ms ({} rounds)",
        at(0.5).as_secs_f64() * 1e3,
        at(0.9).as_secs_f64() * 1e3,
        at(1.0).as_secs_f64() * 1e3,
        times.len()
    );
}

async fn exec_sync(rt: &mut Rt, id: &str, cmd: &[&str]) -> anyhow::Result<String> {
    let out = rt
        .exec_sync(cri::ExecSyncRequest {
            container_id: id.into(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            timeout: 30,
        })
        .await?
        .into_inner();
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

async fn websocket(
    url: &str,
    protocol: &str,
) -> anyhow::Result<tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>> {
    let mut request = url.replacen("http://", "ws://", 1).into_client_request()?;
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", protocol.parse()?);
    let host = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let tcp = tokio::net::TcpStream::connect(&host).await?;
    let (ws, _) = tokio_tungstenite::client_async(request, tcp).await?;
    Ok(ws)
}

/// `cmd` over streaming Exec: its stdout once the server closes.
async fn stream_exec(rt: &mut Rt, id: &str, cmd: &[&str]) -> anyhow::Result<String> {
    let url = rt
        .exec(cri::ExecRequest {
            container_id: id.into(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            stdout: true,
            stderr: true,
            ..Default::default()
        })
        .await?
        .into_inner()
        .url;
    // The library's client, as `ucr exec` uses it: the figure is what a user waits for.
    let (_input, mut events) = ucr::streaming::client::connect(&url).await?;
    let mut out = Vec::new();
    while let Some(event) = events.next().await? {
        match event {
            Event::Stdout(b) => out.extend_from_slice(&b),
            Event::Stderr(_) => {}
            Event::Exit(_) => break,
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

async fn port_forward_url(rt: &mut Rt, pod: &str) -> anyhow::Result<String> {
    let url = rt
        .port_forward(cri::PortForwardRequest {
            pod_sandbox_id: pod.into(),
            port: vec![8080],
        })
        .await?
        .into_inner()
        .url;
    Ok(format!("{url}?port=8080"))
}

async fn download_forwarded(rt: &mut Rt, pod: &str) -> anyhow::Result<usize> {
    let url = port_forward_url(rt, pod).await?;
    download_ws(&url).await
}

/// GET /big through a WebSocket port-forward; the bytes received (headers included).
async fn download_ws(url: &str) -> anyhow::Result<usize> {
    let mut ws = websocket(url, "v4.channel.k8s.io").await?;
    let mut announced = 0;
    let mut received = 0;
    while let Some(m) = ws.next().await {
        let Message::Binary(b) = m? else { continue };
        if announced < 2 {
            announced += 1;
            if announced == 2 {
                let mut req = vec![0u8];
                req.extend_from_slice(b"GET /big HTTP/1.0\r\n\r\n");
                ws.send(Message::binary(req)).await?;
            }
            continue;
        }
        match b.first() {
            Some(0) => received += b.len() - 1,
            Some(1) if b.len() > 1 => {
                bail!("port-forward error: {}", String::from_utf8_lossy(&b[1..]))
            }
            _ => {}
        }
    }
    Ok(received)
}

async fn download_direct(ip: &str) -> anyhow::Result<usize> {
    let mut tcp = tokio::net::TcpStream::connect((ip, 8080)).await?;
    tcp.write_all(b"GET /big HTTP/1.0\r\n\r\n").await?;
    let mut buf = vec![0u8; 256 * 1024];
    let mut received = 0;
    loop {
        let n = tcp.read(&mut buf).await?;
        if n == 0 {
            return Ok(received);
        }
        received += n;
    }
}

/// Upgrades to SPDY/3.1 with the port-forward protocol.
async fn spdy_connect(url: &str) -> anyhow::Result<ucr::streaming::spdy::Connection> {
    let rest = url.trim_start_matches("http://");
    let (host, path) = rest.split_once('/').context("no path in the URL")?;
    let mut tcp = tokio::net::TcpStream::connect(host).await?;
    let request = format!(
        "POST /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: portforward.k8s.io\r\nContent-Length: 0\r\n\r\n"
    );
    tcp.write_all(request.as_bytes()).await?;
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(tcp.read_u8().await?);
    }
    anyhow::ensure!(
        head.starts_with(b"HTTP/1.1 101"),
        "no upgrade: {}",
        String::from_utf8_lossy(&head)
    );
    let (conn, _incoming) = ucr::streaming::spdy::Connection::client(tcp);
    Ok(conn)
}

/// GET /big on a data/error stream pair of `conn`; the bytes received.
async fn download_spdy(conn: &ucr::streaming::spdy::Connection, i: usize) -> anyhow::Result<usize> {
    let headers = |kind: &str| {
        vec![
            ("streamtype".to_string(), kind.to_string()),
            ("port".to_string(), "8080".to_string()),
            ("requestid".to_string(), i.to_string()),
        ]
    };
    let _error = conn.open(headers("error"), true).await?;
    let mut data = conn.open(headers("data"), false).await?;
    data.write_all(b"GET /big HTTP/1.0\r\n\r\n").await?;
    let mut buf = vec![0u8; 256 * 1024];
    let mut received = 0;
    loop {
        let n = data.read(&mut buf).await?;
        if n == 0 {
            return Ok(received);
        }
        received += n;
    }
}
