//! Pod networking end to end: the real daemon over its CRI socket with the real CNI
//! plugins (bridge, host-local, portmap from /usr/lib/cni) and fake ones, each test on a
//! network of its own (`common::net::TestNet`). Checked the way a user sees it: pod IPs
//! in the status and in /etc/hosts, HTTP from the host, from another pod and through a
//! host port, and after teardown no veth, address, iptables rule, pin or cache entry
//! left. Needs root; says so and skips otherwise.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use common::net::{iptables_lines_mentioning, TestNet};
use common::pods::{
    assert_nothing_left, container_config, create, describe, exec_ok, list_pods, live_processes,
    mounts_of_type_under, pod_config, pod_status, run_pod, running, start, stop_remove_pod, Rt,
    BUSYBOX,
};
use common::*;
use k8s_cri::v1 as cri;
use tonic::Code;

const VERSION_ANSWER: &str =
    r#"{"cniVersion":"1.0.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0"]}"#;

/// A daemon started with `args` (a test's own network), busybox pulled.
async fn net_daemon(args: &[String]) -> (Daemon, Rt) {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let d = Daemon::start(&args);
    let mut images = d.images().await;
    pull(&mut images, BUSYBOX).await.expect("pull busybox");
    let rt = d.runtime().await;
    (d, rt)
}

/// The pod's primary IP, which must be in `net`'s subnet.
async fn pod_ip(rt: &mut Rt, pod: &str, net: &TestNet) -> String {
    let status = pod_status(rt, pod).await;
    let network = status.network.expect("network status");
    assert!(
        network.ip.starts_with(&net.subnet_prefix),
        "pod {pod} has IP {:?}, not one from {}0/24 (additional: {:?})",
        network.ip,
        net.subnet_prefix,
        network.additional_ips
    );
    network.ip
}

async fn network_ready(rt: &mut Rt) -> cri::RuntimeCondition {
    rt.status(cri::StatusRequest { verbose: false })
        .await
        .expect("Status")
        .into_inner()
        .status
        .expect("runtime status")
        .conditions
        .into_iter()
        .find(|c| c.r#type == "NetworkReady")
        .expect("a NetworkReady condition")
}

async fn try_run_pod(rt: &mut Rt, pc: &cri::PodSandboxConfig) -> Result<String, tonic::Status> {
    rt.run_pod_sandbox(cri::RunPodSandboxRequest {
        config: Some(pc.clone()),
        runtime_handler: String::new(),
    })
    .await
    .map(|r| r.into_inner().pod_sandbox_id)
}

/// A container script serving `hello-ucr` over HTTP on 8080.
const SERVE: &str =
    "mkdir /www && echo hello-ucr > /www/index.html && exec httpd -f -p 8080 -h /www";

/// `GET /` over HTTP/1.0, retried for up to `patience` until the answer contains `want`
/// (the server may still be starting); the last answer or error.
fn http_get(addr: SocketAddr, want: &str, patience: Duration) -> String {
    let deadline = Instant::now() + patience;
    loop {
        let answer = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
            .and_then(|mut s| {
                s.set_read_timeout(Some(Duration::from_secs(5)))?;
                s.write_all(b"GET / HTTP/1.0\r\nHost: ucr-test\r\n\r\n")?;
                let mut text = String::new();
                s.read_to_string(&mut text)?;
                Ok(text)
            })
            .unwrap_or_else(|e| format!("error: {e}"));
        if answer.contains(want) || Instant::now() > deadline {
            return answer;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// How long a container's server may take to answer.
const SERVER_START: Duration = Duration::from_secs(10);

/// A TCP port nobody listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn with_host_network(mut pc: cri::PodSandboxConfig) -> cri::PodSandboxConfig {
    let ns = pc
        .linux
        .as_mut()
        .and_then(|l| l.security_context.as_mut())
        .and_then(|s| s.namespace_options.as_mut())
        .expect("namespace options");
    ns.network = cri::NamespaceMode::Node as i32;
    pc
}

fn cache_entry(d: &Daemon, pod: &str) -> std::path::PathBuf {
    d.root.join("cni/ucr").join(pod).join("eth0.json")
}

/// What ADD made for these pods is gone: no veth on the bridge, no address held, no
/// iptables line naming a pod or the subnet (bridge 1.1.1's ipMasq chain and portmap's
/// DNAT chain both name the pod's address; their rules carry the id in a comment).
fn assert_network_clean(net: &TestNet, pods: &[&str]) {
    assert_eq!(
        net.veths_after_settling(),
        Vec::<String>::new(),
        "veths left on {}",
        net.bridge
    );
    assert_eq!(
        net.ipam_reservations(),
        Vec::<String>::new(),
        "addresses still reserved in {}",
        net.ipam_store().display()
    );
    for pod in pods {
        let lines = iptables_lines_mentioning(pod);
        assert!(lines.is_empty(), "iptables lines of pod {pod}: {lines:#?}");
    }
    let lines = iptables_lines_mentioning(&net.subnet_prefix);
    assert!(
        lines.is_empty(),
        "iptables lines naming {}0/24: {lines:#?}",
        net.subnet_prefix
    );
}

fn assert_no_pins(d: &Daemon) {
    let nsfs = mounts_of_type_under("nsfs", d.dir.path());
    assert!(nsfs.is_empty(), "leaked namespace pins: {nsfs:#?}");
}

#[tokio::test]
async fn pods_get_addresses_and_serve_http() {
    require_root!(
        "pods_get_addresses_and_serve_http",
        "namespaces, mounts, bridges, iptables"
    );
    let net = TestNet::new(&[]);
    let (d, mut rt) = net_daemon(&net.daemon_args()).await;
    let logs = d.dir.path().join("logs");

    // Pod A: its address, hosts, resolv.conf and hostname, and a web server.
    let mut pa = pod_config("web-a", &logs);
    pa.dns_config = Some(cri::DnsConfig {
        servers: vec!["192.0.2.53".into(), "192.0.2.54".into()],
        searches: vec!["ucr.test".into(), "svc.ucr.test".into()],
        options: vec!["ndots:3".into(), "timeout:2".into()],
    });
    let a = run_pod(&mut rt, &pa).await;
    let a_ip = pod_ip(&mut rt, &a, &net).await;
    let web = running(&mut rt, &a, &pa, container_config("web", SERVE)).await;
    let hosts = exec_ok(&mut rt, &web, &["cat", "/etc/hosts"]).await;
    let host_lines: Vec<&str> = hosts.lines().collect();
    assert!(
        host_lines.contains(&format!("{a_ip}\tweb-a-host").as_str()),
        "/etc/hosts names the pod IP:\n{hosts}"
    );
    assert!(
        host_lines.contains(&"127.0.0.1\tlocalhost")
            && host_lines.iter().any(|l| l.starts_with("::1\tlocalhost")),
        "/etc/hosts has the localhost lines:\n{hosts}"
    );
    let resolv = exec_ok(&mut rt, &web, &["cat", "/etc/resolv.conf"]).await;
    assert_eq!(
        resolv,
        "search ucr.test svc.ucr.test\nnameserver 192.0.2.53\nnameserver 192.0.2.54\n\
         options ndots:3 timeout:2\n"
    );
    let hostname = exec_ok(&mut rt, &web, &["hostname"]).await;
    assert_eq!(hostname.trim(), "web-a-host");
    let addr = exec_ok(
        &mut rt,
        &web,
        &["ip", "-o", "-4", "addr", "show", "dev", "eth0"],
    )
    .await;
    assert!(
        addr.contains(&format!("{a_ip}/24")),
        "eth0 in the pod: {addr}"
    );

    // From the host, straight to the pod's address.
    let a_addr: SocketAddr = format!("{a_ip}:8080").parse().expect("address");
    let answer = http_get(a_addr, "hello-ucr", SERVER_START);
    assert!(answer.contains("hello-ucr"), "GET {a_addr}: {answer}");

    // From another pod.
    let pb = pod_config("client-b", &logs);
    let b = run_pod(&mut rt, &pb).await;
    let b_ip = pod_ip(&mut rt, &b, &net).await;
    assert_ne!(a_ip, b_ip);
    let client = running(
        &mut rt,
        &b,
        &pb,
        container_config("client", "exec sleep 3600"),
    )
    .await;
    let url = format!("http://{a_ip}:8080/");
    let got = exec_ok(&mut rt, &client, &["wget", "-qO-", &url]).await;
    assert_eq!(got.trim(), "hello-ucr", "pod B fetching {url}");

    // Through a host port.
    let host_port = free_port();
    let mut pc = pod_config("web-c", &logs);
    pc.port_mappings = vec![cri::PortMapping {
        protocol: cri::Protocol::Tcp as i32,
        container_port: 8080,
        host_port: i32::from(host_port),
        host_ip: String::new(),
    }];
    let c = run_pod(&mut rt, &pc).await;
    let c_ip = pod_ip(&mut rt, &c, &net).await;
    running(&mut rt, &c, &pc, container_config("web", SERVE)).await;
    let local: SocketAddr = format!("127.0.0.1:{host_port}").parse().expect("address");
    let answer = http_get(local, "hello-ucr", SERVER_START);
    assert!(
        answer.contains("hello-ucr"),
        "GET {local} (host port of {c_ip}:8080): {answer}"
    );

    // What the teardown checks below look for is there now: they cannot pass vacuously.
    assert_eq!(net.veths_on_bridge().len(), 3, "one veth per pod");
    let mut ips = vec![a_ip.clone(), b_ip.clone(), c_ip.clone()];
    ips.sort();
    assert_eq!(net.ipam_reservations(), ips);
    for pod in [&a, &b, &c] {
        assert!(
            !iptables_lines_mentioning(pod).is_empty(),
            "no iptables rule names pod {pod} (bridge's ipMasq rules do)"
        );
        assert!(cache_entry(&d, pod).is_file(), "no CNI cache for {pod}");
    }
    assert!(
        iptables_lines_mentioning(&format!("{c_ip}:8080"))
            .iter()
            .any(|l| l.contains(&host_port.to_string())),
        "no DNAT of host port {host_port} to {c_ip}:8080"
    );

    for pod in [&a, &b, &c] {
        stop_remove_pod(&mut rt, pod).await;
    }
    assert!(list_pods(&mut rt, cri::PodSandboxFilter::default())
        .await
        .is_empty());
    assert_network_clean(&net, &[&a, &b, &c]);
    let answer = http_get(local, "hello-ucr", Duration::ZERO);
    assert!(
        !answer.contains("hello-ucr"),
        "host port still served: {answer}"
    );
    assert_no_pins(&d);
    assert_nothing_left(&d);
}

#[tokio::test]
async fn host_network_pods_need_no_cni() {
    require_root!(
        "host_network_pods_need_no_cni",
        "namespaces, mounts, bridges, iptables"
    );
    let net = TestNet::new(&[]);
    let empty = net.dir.path().join("empty-conf");
    std::fs::create_dir(&empty).expect("mkdir");
    let args = vec![
        "--cni-conf-dir".to_string(),
        empty.display().to_string(),
        "--cni-bin-dir".into(),
        net.bin_dirs(),
    ];
    let (d, mut rt) = net_daemon(&args).await;
    let logs = d.dir.path().join("logs");

    let cond = network_ready(&mut rt).await;
    assert!(!cond.status, "NetworkReady with no config: {cond:?}");
    assert!(!cond.message.is_empty(), "no reason given: {cond:?}");

    let err = try_run_pod(&mut rt, &pod_config("no-net", &logs))
        .await
        .expect_err("a pod without a network");
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    let msg = err.message();
    assert!(
        msg.contains(&empty.display().to_string()) || msg.to_lowercase().contains("no network"),
        "the error says why: {msg}"
    );
    assert!(list_pods(&mut rt, cri::PodSandboxFilter::default())
        .await
        .is_empty());
    assert_no_pins(&d);
    assert_nothing_left(&d);

    // Host network: no CNI involved, the host's interfaces and hostname.
    let ph = with_host_network(pod_config("host-net", &logs));
    let hp = run_pod(&mut rt, &ph).await;
    let c = running(&mut rt, &hp, &ph, container_config("c", "exec sleep 3600")).await;
    let inside: Vec<String> = exec_ok(&mut rt, &c, &["ls", "/sys/class/net"])
        .await
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let mut host: Vec<String> = std::fs::read_dir("/sys/class/net")
        .expect("/sys/class/net")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    host.sort();
    let first = host
        .iter()
        .find(|i| *i != "lo")
        .expect("a host interface besides lo");
    assert!(
        inside.contains(&"lo".to_string()) && inside.contains(first),
        "the pod sees {inside:?}, the host has {host:?}"
    );
    let hostname = exec_ok(&mut rt, &c, &["hostname"]).await;
    let host_name = nix::unistd::gethostname().expect("hostname");
    assert_eq!(hostname.trim(), host_name.to_string_lossy());
    assert!(
        net.veths_on_bridge().is_empty() && !net.bridge_exists(),
        "CNI ran for a host-network pod"
    );
    stop_remove_pod(&mut rt, &hp).await;

    // A config appears: ready within seconds, without a restart.
    let tmp = empty.join("10-test.conflist.tmp");
    std::fs::copy(net.conf_file(), &tmp).expect("copy conflist");
    std::fs::rename(&tmp, empty.join("10-test.conflist")).expect("install conflist");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let cond = network_ready(&mut rt).await;
        if cond.status {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "NetworkReady still false 5 s after the config appeared: {cond:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let p = run_pod(&mut rt, &pod_config("late-net", &logs)).await;
    pod_ip(&mut rt, &p, &net).await;
    assert_eq!(net.veths_on_bridge().len(), 1);
    stop_remove_pod(&mut rt, &p).await;
    assert_network_clean(&net, &[&p]);
    assert_no_pins(&d);
    assert_nothing_left(&d);
}

#[tokio::test]
async fn del_survives_a_daemon_kill_and_a_removed_config() {
    require_root!(
        "del_survives_a_daemon_kill_and_a_removed_config",
        "namespaces, mounts, bridges, iptables"
    );
    let net = TestNet::new(&[]);
    let (mut d, mut rt) = net_daemon(&net.daemon_args()).await;
    let logs = d.dir.path().join("logs");

    let pc1 = pod_config("p1", &logs);
    let p1 = run_pod(&mut rt, &pc1).await;
    let ip1 = pod_ip(&mut rt, &p1, &net).await;
    running(&mut rt, &p1, &pc1, container_config("c", "exec sleep 3600")).await;
    assert_eq!(net.veths_on_bridge().len(), 1);
    assert_eq!(net.ipam_reservations(), std::slice::from_ref(&ip1));
    assert!(!iptables_lines_mentioning(&p1).is_empty());

    d.kill9();
    d.restart();
    let mut rt = d.runtime().await;
    assert_eq!(
        pod_ip(&mut rt, &p1, &net).await,
        ip1,
        "the IP after a restart"
    );
    rt.stop_pod_sandbox(cri::StopPodSandboxRequest {
        pod_sandbox_id: p1.clone(),
    })
    .await
    .expect("StopPodSandbox after a restart");
    assert_network_clean(&net, &[&p1]);
    assert!(!cache_entry(&d, &p1).exists(), "CNI cache of p1 kept");

    let pc2 = pod_config("p2", &logs);
    let p2 = run_pod(&mut rt, &pc2).await;
    let ip2 = pod_ip(&mut rt, &p2, &net).await;
    assert_eq!(net.veths_on_bridge().len(), 1);
    assert_eq!(net.ipam_reservations(), [ip2]);
    assert!(!iptables_lines_mentioning(&p2).is_empty());

    // The config goes; the daemon notices (not ready), and DEL still works from its cache.
    std::fs::remove_file(net.conf_file()).expect("remove conflist");
    let deadline = Instant::now() + Duration::from_secs(5);
    while network_ready(&mut rt).await.status {
        assert!(
            Instant::now() < deadline,
            "still NetworkReady 5 s after the config went"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    rt.stop_pod_sandbox(cri::StopPodSandboxRequest {
        pod_sandbox_id: p2.clone(),
    })
    .await
    .expect("StopPodSandbox without a config");
    assert_network_clean(&net, &[&p1, &p2]);
    assert!(!cache_entry(&d, &p2).exists(), "CNI cache of p2 kept");

    for pod in [&p1, &p2] {
        stop_remove_pod(&mut rt, pod).await;
    }
    assert!(list_pods(&mut rt, cri::PodSandboxFilter::default())
        .await
        .is_empty());
    assert_no_pins(&d);
    assert_nothing_left(&d);
}

/// Processes (not zombies) whose environment contains `marker`.
fn processes_with_env(marker: &str) -> Vec<String> {
    live_processes()
        .iter()
        .filter(|(p, _)| {
            std::fs::read(p.join("environ"))
                .is_ok_and(|env| String::from_utf8_lossy(&env).contains(marker))
        })
        .map(describe)
        .collect()
}

/// The container ids a fake plugin logged for `op` (lines `<op> <id>`).
fn logged(log: &Path, op: &str) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.strip_prefix(&format!("{op} ")))
        .map(str::to_owned)
        .collect()
}

/// A failed ADD left nothing: the chain before the failing plugin really ran (the bridge
/// exists, an address was handed out), and everything it made is gone.
fn assert_failed_add_left_nothing(net: &TestNet, d: &Daemon, pod: &str) {
    assert!(net.bridge_exists(), "the bridge plugin never ran");
    assert!(
        std::fs::read_dir(net.ipam_store())
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| e
                .file_name()
                .to_string_lossy()
                .starts_with("last_reserved_ip")),
        "host-local never handed out an address"
    );
    assert_network_clean(net, &[pod]);
    assert!(!cache_entry(d, pod).exists(), "CNI cache of {pod} kept");
    assert_no_pins(d);
    assert_nothing_left(d);
}

#[tokio::test]
async fn a_failing_or_hanging_plugin_leaves_nothing() {
    require_root!(
        "a_failing_or_hanging_plugin_leaves_nothing",
        "namespaces, mounts, bridges, iptables"
    );
    // A plugin that refuses every ADD with a CNI error.
    {
        let net = TestNet::new(&[r#"{ "type": "failer" }"#]);
        let log = net.dir.path().join("failer.log");
        net.fake_plugin(
            "failer",
            &format!(
                r#"log={log}
case "$CNI_COMMAND" in
ADD) cat >/dev/null; echo "ADD $CNI_CONTAINERID" >>"$log"
     echo '{{"cniVersion":"1.0.0","code":7,"msg":"failer says no","details":"for testing"}}'
     exit 1 ;;
DEL) cat >/dev/null; echo "DEL $CNI_CONTAINERID" >>"$log"; exit 0 ;;
VERSION) echo '{VERSION_ANSWER}' ;;
*) cat >/dev/null ;;
esac"#,
                log = log.display()
            ),
        );
        let (d, mut rt) = net_daemon(&net.daemon_args()).await;
        let logs = d.dir.path().join("logs");
        let err = try_run_pod(&mut rt, &pod_config("failing", &logs))
            .await
            .expect_err("RunPodSandbox with a failing plugin");
        assert!(
            err.message().contains("failer says no"),
            "the plugin's message is passed on: {err:?}"
        );
        let added = logged(&log, "ADD");
        assert_eq!(added.len(), 1, "failer's ADDs: {added:?}");
        let pod = &added[0];
        assert!(
            logged(&log, "DEL").contains(pod),
            "the chain was not DELeted"
        );
        assert!(list_pods(&mut rt, cri::PodSandboxFilter::default())
            .await
            .is_empty());
        assert_failed_add_left_nothing(&net, &d, pod);
    }

    // A plugin that never answers ADD: killed after --cni-plugin-timeout.
    let net = TestNet::new(&[r#"{ "type": "hanger" }"#]);
    let marker = format!("UCR_HANGER={}", net.octet);
    let added_file = net.dir.path().join("hanger.log");
    net.fake_plugin(
        "hanger",
        &format!(
            r#"case "$CNI_COMMAND" in
ADD) cat >/dev/null; echo "ADD $CNI_CONTAINERID" >{added}; export {marker}; sleep 600 ;;
VERSION) echo '{VERSION_ANSWER}' ;;
*) cat >/dev/null ;;
esac"#,
            added = added_file.display()
        ),
    );
    let mut args = net.daemon_args();
    args.extend(["--cni-plugin-timeout".into(), "2s".into()]);
    let (d, mut rt) = net_daemon(&args).await;
    let logs = d.dir.path().join("logs");
    let t = Instant::now();
    let call = {
        let mut rt = rt.clone();
        let pc = pod_config("hanging", &logs);
        tokio::spawn(async move { try_run_pod(&mut rt, &pc).await })
    };
    // The hanging `sleep 600` is visible to the check below while the call waits.
    let mut seen = Vec::new();
    while seen.is_empty() && !call.is_finished() {
        seen = processes_with_env(&marker);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        seen.iter().any(|p| p.contains("sleep 600")),
        "never saw the hanger's sleep: {seen:?}"
    );
    let err = call
        .await
        .expect("join")
        .expect_err("RunPodSandbox with a hanging plugin");
    let took = t.elapsed();
    eprintln!("a hanging plugin: RunPodSandbox failed after {took:?}: {err:?}");
    assert!(took < Duration::from_secs(15), "took {took:?}");
    assert!(
        err.code() == Code::DeadlineExceeded || err.message().contains("2s"),
        "a timeout error: {err:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(3);
    while !processes_with_env(&marker).is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let left = processes_with_env(&marker);
    assert!(left.is_empty(), "the hanger's processes live on: {left:#?}");
    let pod = std::fs::read_to_string(&added_file).expect("the hanger's ADD ran");
    let pod = pod.trim().strip_prefix("ADD ").expect("ADD <id>");
    assert!(list_pods(&mut rt, cri::PodSandboxFilter::default())
        .await
        .is_empty());
    assert_failed_add_left_nothing(&net, &d, pod);
}

/// Churn over the network: 100 pods with a running container each, created and removed
/// by 8 concurrent workers; every ADD undone.
#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn a_hundred_pods_eight_at_a_time_leave_no_network_behind() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    require_root!(
        "a_hundred_pods_eight_at_a_time_leave_no_network_behind",
        "namespaces, mounts, bridges, iptables"
    );
    const PODS: usize = 100;
    const WORKERS: usize = 8;
    let net = Arc::new(TestNet::new(&[]));
    let (d, rt) = net_daemon(&net.daemon_args()).await;
    let logs = d.dir.path().join("logs");
    let next = Arc::new(AtomicUsize::new(0));
    let t = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..WORKERS {
        let (mut rt, next, logs, net) = (
            rt.clone(),
            Arc::clone(&next),
            logs.clone(),
            Arc::clone(&net),
        );
        workers.push(tokio::spawn(async move {
            let mut done = Vec::new();
            let mut seen = None;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= PODS {
                    return (done, seen);
                }
                let pc = pod_config(&format!("churn-{i}"), &logs.join(format!("churn-{i}")));
                let pod = run_pod(&mut rt, &pc).await;
                let ip = pod_ip(&mut rt, &pod, &net).await;
                let c = create(&mut rt, &pod, &pc, container_config("c", "sleep 3600"))
                    .await
                    .unwrap_or_else(|e| panic!("create in pod {i}: {e:?}"));
                start(&mut rt, &c).await;
                if i == 0 {
                    // Proof that the checks below can see what a pod holds; asserted
                    // after the teardown, so a failure leaks nothing.
                    seen = Some((
                        net.veths_on_bridge().len(),
                        net.ipam_reservations().contains(&ip),
                        iptables_lines_mentioning(&pod).len(),
                    ));
                }
                stop_remove_pod(&mut rt, &pod).await;
                done.push(pod);
            }
        }));
    }
    let (mut pods, mut seen) = (Vec::new(), None);
    for w in workers {
        let (done, s) = w.await.expect("worker");
        pods.extend(done);
        seen = seen.or(s);
    }
    let elapsed = t.elapsed();
    eprintln!(
        "a_hundred_pods_eight_at_a_time_leave_no_network_behind: {PODS} pods in {elapsed:?} \
         ({:?} per pod, {WORKERS} at a time)",
        elapsed / PODS as u32
    );
    let (veths, reserved, rules) = seen.expect("pod 0 was looked at");
    assert!(
        veths >= 1 && reserved && rules >= 1,
        "the checks cannot see a running pod's network: {veths} veths, reserved {reserved}, \
         {rules} iptables lines"
    );
    assert_eq!(pods.len(), PODS);
    let mut rt = rt;
    assert!(
        list_pods(&mut rt, cri::PodSandboxFilter::default())
            .await
            .is_empty(),
        "pods left listed"
    );
    // What the bridge plugin (1.1.1) keeps per network is the bridge and its gateway
    // address, not iptables rules: its ipMasq chain (`CNI-<hash>`, which names the /24)
    // is per attachment and goes with DEL, and portmap's shared CNI-HOSTPORT-* chains
    // name neither a pod nor the subnet. So no line may name the subnet or any pod.
    assert!(net.bridge_exists());
    let pod_refs: Vec<&str> = pods.iter().map(String::as_str).collect();
    assert_network_clean(&net, &pod_refs);
    assert_no_pins(&d);
    assert_nothing_left(&d);
}

/// kubelet calls RunPodSandbox again when its call times out, which a slow CNI ADD can
/// cause: a retry while ADD runs must wait for it, not start a second one.
#[tokio::test]
async fn a_retried_run_pod_sandbox_runs_add_once() {
    require_root!(
        "a_retried_run_pod_sandbox_runs_add_once",
        "namespaces, mounts, bridges, iptables"
    );
    let (net, log) = slow_network(2);
    let (d, rt) = net_daemon(&net.daemon_args()).await;
    let pc = pod_config("retried", &d.dir.path().join("logs"));
    let first = {
        let (mut rt, pc) = (rt.clone(), pc.clone());
        tokio::spawn(async move { try_run_pod(&mut rt, &pc).await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut rt = rt;
    let second = try_run_pod(&mut rt, &pc).await.expect("the retry");
    let first = first.await.expect("task").expect("the first call");
    assert_eq!(first, second, "the retry returned another pod");
    assert_eq!(logged(&log, "ADD"), vec![first.clone()], "ADDs run");
    let ip = pod_ip(&mut rt, &first, &net).await;
    assert!(ip.starts_with(&net.subnet_prefix), "{ip}");
    stop_remove_pod(&mut rt, &first).await;
    assert_eq!(logged(&log, "DEL"), vec![first.clone()], "DELs run");
    assert_network_clean(&net, &[&first]);
    assert_nothing_left(&d);
}

/// A dual-stack network: the pod's IPv4 address is its primary IP, the IPv6 one comes
/// in `additional_ips`, both name the pod in its /etc/hosts, and both are released.
#[tokio::test]
async fn dual_stack_pods_report_both_addresses() {
    require_root!(
        "dual_stack_pods_report_both_addresses",
        "namespaces, mounts, bridges, iptables"
    );
    let net = TestNet::dual_stack(&[]);
    let (d, mut rt) = net_daemon(&net.daemon_args()).await;
    let pc = pod_config("dual", &d.dir.path().join("logs"));
    let pod = run_pod(&mut rt, &pc).await;
    let network = pod_status(&mut rt, &pod)
        .await
        .network
        .expect("network status");
    assert!(
        network.ip.starts_with(&net.subnet_prefix),
        "primary {} is not the IPv4 one",
        network.ip
    );
    let extra: Vec<&str> = network
        .additional_ips
        .iter()
        .map(|p| p.ip.as_str())
        .collect();
    assert_eq!(extra.len(), 1, "additional ips {extra:?}");
    assert!(extra[0].starts_with(&net.v6_prefix()), "{extra:?}");
    let c = running(&mut rt, &pod, &pc, container_config("c", "exec sleep 1000")).await;
    let hosts = exec_ok(&mut rt, &c, &["cat", "/etc/hosts"]).await;
    for ip in [network.ip.as_str(), extra[0]] {
        assert!(
            hosts.lines().any(|l| l == format!("{ip}\tdual-host")),
            "{ip} missing from /etc/hosts:\n{hosts}"
        );
    }
    let inside = exec_ok(&mut rt, &c, &["ip", "-6", "addr", "show", "eth0"]).await;
    assert!(inside.contains(extra[0]), "eth0 inside:\n{inside}");
    assert_eq!(
        net.ipam_reservations().len(),
        2,
        "one address of each family"
    );
    stop_remove_pod(&mut rt, &pod).await;
    assert_network_clean(&net, &[&pod]);
    assert_nothing_left(&d);
}

/// A network whose chain ends with `slowpoke`: it logs each ADD and DEL (`<op> <pod>`
/// lines in the returned log), takes `seconds` over an ADD, and passes the previous
/// result on (a chained plugin's output is the chain's result so far).
fn slow_network(seconds: u32) -> (TestNet, std::path::PathBuf) {
    let net = TestNet::new(&[r#"{ "type": "slowpoke" }"#]);
    let log = net.dir.path().join("slowpoke.log");
    net.fake_plugin(
        "slowpoke",
        &format!(
            r#"log={log}
case "$CNI_COMMAND" in
ADD) conf=$(cat); echo "ADD $CNI_CONTAINERID" >>"$log"; sleep {seconds}
     printf '%s' "$conf" | jq -c '.prevResult' ;;
DEL) cat >/dev/null; echo "DEL $CNI_CONTAINERID" >>"$log" ;;
VERSION) echo '{VERSION_ANSWER}' ;;
esac"#,
            log = log.display()
        ),
    );
    (net, log)
}

/// `kill -9` of the daemon while a pod's CNI ADD runs: the pod never reached the
/// database, and the next start undoes it, network included (DEL from the entry the
/// isolator wrote before ADD began).
#[tokio::test]
async fn a_daemon_killed_during_add_leaves_nothing_after_restart() {
    require_root!(
        "a_daemon_killed_during_add_leaves_nothing_after_restart",
        "namespaces, mounts, bridges, iptables"
    );
    let (net, log) = slow_network(3);
    let (mut d, rt) = net_daemon(&net.daemon_args()).await;
    let pc = pod_config("interrupted", &d.dir.path().join("logs"));
    let call = {
        let (mut rt, pc) = (rt.clone(), pc.clone());
        tokio::spawn(async move { try_run_pod(&mut rt, &pc).await })
    };
    // Wait until slowpoke runs: bridge and portmap have attached the pod by then.
    let deadline = Instant::now() + Duration::from_secs(20);
    while logged(&log, "ADD").is_empty() {
        assert!(Instant::now() < deadline, "ADD never reached slowpoke");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pod = logged(&log, "ADD").remove(0);
    assert_eq!(net.veths_on_bridge().len(), 1, "the pod was attached");
    let plugin = net.fake_bin.join("slowpoke").display().to_string();
    let running_plugin = || {
        live_processes()
            .into_iter()
            .any(|(_, cmd)| cmd.contains(&plugin))
    };
    assert!(running_plugin(), "the scan cannot see slowpoke running");
    d.kill9();
    assert!(
        call.await.expect("task").is_err(),
        "the call died with the daemon"
    );
    // The plugin dies with the daemon: it must not finish its ADD behind the back of
    // the restarted daemon.
    let deadline = Instant::now() + Duration::from_secs(2);
    while running_plugin() {
        assert!(Instant::now() < deadline, "slowpoke outlived the daemon");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    d.restart();
    let mut rt = d.runtime().await;
    assert!(
        list_pods(&mut rt, cri::PodSandboxFilter::default())
            .await
            .is_empty(),
        "a half-made pod is listed"
    );
    assert_eq!(
        logged(&log, "DEL"),
        vec![pod.clone()],
        "DEL after the restart"
    );
    assert_network_clean(&net, &[&pod]);
    assert!(!cache_entry(&d, &pod).exists(), "CNI cache of {pod} kept");
    assert_no_pins(&d);
    assert_nothing_left(&d);
}
