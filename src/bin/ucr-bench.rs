//! `ucr-bench`: a benchmark client of a running daemon, not part of the runtime (so not
//! part of the library either). It
//! drives the seven CRI calls kubelet makes over a pod's life (RunPodSandbox,
//! CreateContainer, StartContainer, StopContainer, RemoveContainer, StopPodSandbox,
//! RemovePodSandbox) for N pods, P at a time, each pod with one container running
//! `sleep 3600`, and times every call on the client side (so the figures include the
//! gRPC round trip over the unix socket, as kubelet sees them).
//!
//! With `--hold N` it instead starts N such pods, prints `holding`, waits for end of
//! input and then removes them: `hack/bench-runtime.sh` measures memory in between. The
//! held pods share their process namespace (`shareProcessNamespace`), so each also has
//! its pod init to measure. With `--hold N --stats ROUNDS` it times ListContainerStats
//! and ListPodSandboxStats over the N running containers ROUNDS times each instead of
//! waiting (`hack/bench-stats.sh`).

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use k8s_cri::v1 as cri;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use tonic::transport::Channel;

use clap::Parser;

/// Times the pod and container lifecycle over the CRI (see the module docs).
#[derive(Debug, Parser)]
#[command(name = "ucr-bench", version)]
struct BenchFlags {
    /// The daemon's socket.
    #[arg(long, default_value = ucr::config::DEFAULT_LISTEN)]
    listen: std::path::PathBuf,
    /// Pods to run through the whole lifecycle.
    #[arg(long, default_value_t = 100)]
    pods: usize,
    /// Pods in flight at once.
    #[arg(long, default_value_t = 1)]
    parallel: usize,
    /// The image of each pod's one container (it runs `sleep 3600`).
    #[arg(long)]
    image: String,
    /// StopContainer's timeout in seconds (0: SIGKILL at once).
    #[arg(long, default_value_t = 0)]
    stop_timeout: i64,
    /// Instead: start this many pods with a running container, print `holding`, wait
    /// for end of input, then remove them (for measuring memory).
    #[arg(long)]
    hold: Option<usize>,
    /// With `--hold`: time the stats calls this many times each, then remove the pods.
    #[arg(long)]
    stats: Option<usize>,
}

fn main() -> std::process::ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_env("UCR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let flags = BenchFlags::parse();
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|rt| rt.block_on(run(flags)));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ucr-bench: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

type Rt = RuntimeServiceClient<Channel>;

/// The calls, in the order a pod goes through them.
const CALLS: [&str; 7] = [
    "RunPodSandbox",
    "CreateContainer",
    "StartContainer",
    "StopContainer",
    "RemoveContainer",
    "StopPodSandbox",
    "RemovePodSandbox",
];

/// One pod's timings, indexed like [`CALLS`].
type Timings = [Duration; 7];

/// What every pod of a run shares.
struct Plan {
    image: String,
    stop_timeout: i64,
    /// Makes names unique across runs against the same daemon: a pod with the same
    /// namespace, name, uid and attempt would be taken for a retry and returned as is.
    run_tag: String,
    log_dir: std::path::PathBuf,
    /// One PID namespace per pod (kubelet's `shareProcessNamespace`), held by a pod init.
    share_pid: bool,
}

/// A pod with its running container, and the times of the calls that got it there.
struct Started {
    pod: String,
    container: String,
    timings: Timings,
}

async fn run(flags: BenchFlags) -> anyhow::Result<()> {
    anyhow::ensure!(flags.parallel > 0, "--parallel must be at least 1");
    let channel = ucr::cri::client::connect(&flags.listen)
        .await
        .with_context(|| format!("connecting to {}", flags.listen.display()))?;
    let pulled = Instant::now();
    pull(channel.clone(), &flags.image).await?;
    eprintln!("pulled {} in {:.1} ms", flags.image, ms(pulled.elapsed()));
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let run_tag = format!("{}-{nanos:x}", std::process::id());
    // Kubelet always gives a log directory and path; the monitor then opens a CRI log.
    let log_dir = std::env::temp_dir().join(format!("ucr-bench-logs-{run_tag}"));
    let plan = Arc::new(Plan {
        image: flags.image.clone(),
        stop_timeout: flags.stop_timeout,
        run_tag,
        log_dir: log_dir.clone(),
        share_pid: flags.hold.is_some(),
    });
    let result = match flags.hold {
        Some(n) => hold(channel, plan, n, flags.parallel, flags.stats).await,
        None => bench(channel, plan, flags.pods, flags.parallel).await,
    };
    let _ = std::fs::remove_dir_all(&log_dir);
    result
}

async fn pull(channel: Channel, image: &str) -> anyhow::Result<()> {
    ImageServiceClient::new(channel)
        .pull_image(cri::PullImageRequest {
            image: Some(cri::ImageSpec {
                image: image.to_string(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .map_err(|s| anyhow::anyhow!("PullImage {image}: {}: {}", s.code(), s.message()))?;
    Ok(())
}

/// The whole lifecycle for `pods` pods, `parallel` at a time; prints the table.
async fn bench(
    channel: Channel,
    plan: Arc<Plan>,
    pods: usize,
    parallel: usize,
) -> anyhow::Result<()> {
    let next = Arc::new(AtomicUsize::new(0));
    let wall = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..parallel.min(pods.max(1)) {
        let (mut rt, plan, next) = (Rt::new(channel.clone()), plan.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            let mut all = Vec::new();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= pods {
                    return Ok::<_, anyhow::Error>(all);
                }
                let started = start_pod(&mut rt, &plan, n).await?;
                all.push(finish_pod(&mut rt, &plan, started).await?);
            }
        }));
    }
    let mut all: Vec<Timings> = Vec::with_capacity(pods);
    let mut failure = None;
    for w in workers {
        match w.await.context("benchmark worker")? {
            Ok(t) => all.extend(t),
            Err(e) => failure = failure.or(Some(e)),
        }
    }
    let wall = wall.elapsed();
    if let Some(e) = failure {
        return Err(e);
    }
    print_table(&all, parallel, wall);
    Ok(())
}

/// Starts `n` pods with a running container, prints `holding`, waits for end of input,
/// removes them.
async fn hold(
    channel: Channel,
    plan: Arc<Plan>,
    n: usize,
    parallel: usize,
    stats: Option<usize>,
) -> anyhow::Result<()> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..parallel.min(n.max(1)) {
        let (mut rt, plan, next) = (Rt::new(channel.clone()), plan.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return (mine, None);
                }
                match start_pod(&mut rt, &plan, i).await {
                    Ok(s) => mine.push(s),
                    Err(e) => return (mine, Some(e)),
                }
            }
        }));
    }
    let mut held = Vec::new();
    let mut failure = None;
    for w in workers {
        let (mine, err) = w.await.context("hold worker")?;
        held.extend(mine);
        failure = failure.or(err);
    }
    if let (None, Some(rounds)) = (&failure, stats) {
        if let Err(e) = time_stats(Rt::new(channel.clone()), held.len(), rounds).await {
            failure = Some(e);
        }
    } else if failure.is_none() {
        println!("holding {} pods with a running container each", held.len());
        std::io::stdout().flush()?;
        tokio::task::spawn_blocking(|| std::io::copy(&mut std::io::stdin(), &mut std::io::sink()))
            .await
            .context("waiting for end of input")??;
    }
    let mut rt = Rt::new(channel);
    for s in held {
        let result = finish_pod(&mut rt, &plan, s).await;
        if let Err(e) = result {
            failure = failure.or(Some(e));
        }
    }
    match failure {
        Some(e) => Err(e),
        None => {
            println!("released");
            Ok(())
        }
    }
}

/// Times ListContainerStats and ListPodSandboxStats `rounds` times each over the held
/// pods (one running container each), checking every container has figures.
async fn time_stats(mut rt: Rt, held: usize, rounds: usize) -> anyhow::Result<()> {
    let mut containers = Vec::with_capacity(rounds);
    let mut pods = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let t = Instant::now();
        let list = rt
            .list_container_stats(cri::ListContainerStatsRequest { filter: None })
            .await
            .map_err(|s| call_error("ListContainerStats", "", s))?
            .into_inner()
            .stats;
        containers.push(t.elapsed());
        anyhow::ensure!(
            list.len() == held && list.iter().all(|s| s.cpu.is_some() && s.memory.is_some()),
            "ListContainerStats gave {} entries (with figures: {}) for {held} containers",
            list.len(),
            list.iter()
                .filter(|s| s.cpu.is_some() && s.memory.is_some())
                .count()
        );
        let t = Instant::now();
        let list = rt
            .list_pod_sandbox_stats(cri::ListPodSandboxStatsRequest { filter: None })
            .await
            .map_err(|s| call_error("ListPodSandboxStats", "", s))?
            .into_inner()
            .stats;
        pods.push(t.elapsed());
        anyhow::ensure!(
            list.len() == held,
            "ListPodSandboxStats gave {}",
            list.len()
        );
    }
    println!(
        "{:<22}{:>10}{:>10}{:>10}   ({held} running containers, {rounds} calls)",
        "call", "median", "p90", "max"
    );
    for (name, mut t) in [
        ("ListContainerStats", containers),
        ("ListPodSandboxStats", pods),
    ] {
        t.sort();
        println!(
            "{name:<22}{:>8.2}ms{:>8.2}ms{:>8.2}ms",
            ms(percentile(&t, 50)),
            ms(percentile(&t, 90)),
            ms(percentile(&t, 100))
        );
    }
    Ok(())
}

/// kubelet's namespace options for a pod that shares its process namespace, or not.
fn pid_options(share: bool) -> cri::NamespaceOption {
    let mode = if share {
        cri::NamespaceMode::Pod
    } else {
        cri::NamespaceMode::Container
    };
    cri::NamespaceOption {
        pid: mode as i32,
        ..Default::default()
    }
}

/// RunPodSandbox, CreateContainer, StartContainer. On failure the pod is removed.
async fn start_pod(rt: &mut Rt, plan: &Plan, n: usize) -> anyhow::Result<Started> {
    let mut timings = Timings::default();
    let name = format!("bench-{n}");
    let config = cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata {
            name: name.clone(),
            uid: format!("{}-{n}", plan.run_tag),
            namespace: "ucr-bench".into(),
            attempt: 0,
        }),
        hostname: name.clone(),
        log_directory: plan.log_dir.join(&name).display().to_string(),
        // As kubelet sends it.
        linux: Some(cri::LinuxPodSandboxConfig {
            security_context: Some(cri::LinuxSandboxSecurityContext {
                namespace_options: Some(pid_options(plan.share_pid)),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let t = Instant::now();
    let pod = rt
        .run_pod_sandbox(cri::RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: String::new(),
        })
        .await
        .map_err(|s| call_error("RunPodSandbox", &name, s))?
        .into_inner()
        .pod_sandbox_id;
    timings[0] = t.elapsed();
    let started = async {
        let t = Instant::now();
        let container = rt
            .create_container(cri::CreateContainerRequest {
                pod_sandbox_id: pod.clone(),
                config: Some(cri::ContainerConfig {
                    metadata: Some(cri::ContainerMetadata {
                        name: "sleep".into(),
                        attempt: 0,
                    }),
                    image: Some(cri::ImageSpec {
                        image: plan.image.clone(),
                        ..Default::default()
                    }),
                    command: vec!["sleep".into(), "3600".into()],
                    log_path: "sleep/0.log".into(),
                    linux: Some(cri::LinuxContainerConfig {
                        security_context: Some(cri::LinuxContainerSecurityContext {
                            namespace_options: Some(pid_options(plan.share_pid)),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                sandbox_config: Some(config.clone()),
            })
            .await
            .map_err(|s| call_error("CreateContainer", &pod, s))?
            .into_inner()
            .container_id;
        timings[1] = t.elapsed();
        let t = Instant::now();
        rt.start_container(cri::StartContainerRequest {
            container_id: container.clone(),
        })
        .await
        .map_err(|s| call_error("StartContainer", &container, s))?;
        timings[2] = t.elapsed();
        Ok::<_, anyhow::Error>(container)
    }
    .await;
    match started {
        Ok(container) => Ok(Started {
            pod,
            container,
            timings,
        }),
        Err(e) => {
            // Best effort: leave the daemon as we found it.
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
            Err(e)
        }
    }
}

/// StopContainer, RemoveContainer, StopPodSandbox, RemovePodSandbox.
async fn finish_pod(rt: &mut Rt, plan: &Plan, s: Started) -> anyhow::Result<Timings> {
    let Started {
        pod,
        container,
        mut timings,
    } = s;
    let t = Instant::now();
    rt.stop_container(cri::StopContainerRequest {
        container_id: container.clone(),
        timeout: plan.stop_timeout,
    })
    .await
    .map_err(|s| call_error("StopContainer", &container, s))?;
    timings[3] = t.elapsed();
    let t = Instant::now();
    rt.remove_container(cri::RemoveContainerRequest {
        container_id: container.clone(),
    })
    .await
    .map_err(|s| call_error("RemoveContainer", &container, s))?;
    timings[4] = t.elapsed();
    let t = Instant::now();
    rt.stop_pod_sandbox(cri::StopPodSandboxRequest {
        pod_sandbox_id: pod.clone(),
    })
    .await
    .map_err(|s| call_error("StopPodSandbox", &pod, s))?;
    timings[5] = t.elapsed();
    let t = Instant::now();
    rt.remove_pod_sandbox(cri::RemovePodSandboxRequest {
        pod_sandbox_id: pod.clone(),
    })
    .await
    .map_err(|s| call_error("RemovePodSandbox", &pod, s))?;
    timings[6] = t.elapsed();
    Ok(timings)
}

fn call_error(call: &str, id: &str, s: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{call} {id}: {}: {}", s.code(), s.message())
}

fn print_table(all: &[Timings], parallel: usize, wall: Duration) {
    println!(
        "{:<18} {:>6} {:>10} {:>10} {:>10}",
        "call", "count", "median ms", "p99 ms", "max ms"
    );
    for (i, call) in CALLS.iter().enumerate() {
        let mut times: Vec<Duration> = all.iter().map(|t| t[i]).collect();
        times.sort();
        println!(
            "{call:<18} {:>6} {:>10.2} {:>10.2} {:>10.2}",
            times.len(),
            ms(percentile(&times, 50)),
            ms(percentile(&times, 99)),
            ms(times.last().copied().unwrap_or_default()),
        );
    }
    let secs = wall.as_secs_f64();
    println!(
        "total: {} pods, {parallel} at a time, in {secs:.2} s: {:.1} pods/s",
        all.len(),
        all.len() as f64 / secs.max(f64::EPSILON)
    );
}

/// Nearest-rank percentile of sorted times: the smallest value with at least `p`% of
/// the samples at or below it.
fn percentile(sorted: &[Duration], p: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (sorted.len() * p).div_ceil(100).max(1);
    sorted[rank - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let times: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&times, 50), Duration::from_millis(50));
        assert_eq!(percentile(&times, 99), Duration::from_millis(99));
        assert_eq!(percentile(&times[..1], 99), Duration::from_millis(1));
        assert_eq!(percentile(&[], 50), Duration::ZERO);
    }
}
