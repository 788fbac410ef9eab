//! The node CLI (`ucr ps`, `pods`, `inspect`, `images`, `pull`, `logs`, `exec`, `stats`,
//! `rm`, `prune`): the real `ucr` binary against the real daemon, checked by what a
//! person at the node sees (its output and exit code), in a pseudo-terminal where the
//! terminal matters (`exec -it`, pull's progress bars). Needs root; says so and skips
//! otherwise.

mod common;

use std::io::Read;
use std::os::fd::AsFd;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::pods::{
    container_config, create, daemon, pod_config, run_pod, start, status, stop_remove_pod,
    wait_exited, Rt, BUSYBOX,
};
use common::*;
use k8s_cri::v1 as cri;
use ucr::sys::console::{open_master, open_slave, set_window_size, WindowSize};

const DEBIAN: &str = "127.0.0.1:5000/ucr-test/debian:bookworm";

/// `ucr <args> --endpoint <the daemon's socket>`, run to its end.
fn ucr(d: &Daemon, args: &[&str]) -> Run {
    capture(&mut cli(d, args))
}

fn cli(d: &Daemon, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ucr"));
    cmd.args(args).arg("--endpoint").arg(&d.socket);
    cmd
}

/// Runs `ucr <args>` as `ucr exec -- …`-style commands need it: the endpoint flag
/// before the `--`.
fn ucr_exec(d: &Daemon, flags: &[&str], command: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ucr"));
    cmd.arg("exec")
        .args(flags)
        .arg("--endpoint")
        .arg(&d.socket)
        .arg("--")
        .args(command);
    cmd
}

fn ok(run: Run, what: &str) -> String {
    assert_eq!(
        run.code,
        Some(0),
        "{what} failed:\nstdout: {}\nstderr: {}",
        run.stdout,
        run.stderr
    );
    run.stdout
}

/// What a command printed into a terminal of `rows`x`cols` (its stdin, stdout and
/// stderr), and its exit code. Killed after `limit`.
fn in_pty(mut cmd: Command, rows: u16, cols: u16, limit: Duration) -> (Option<i32>, String) {
    let ptmx = Path::new("/dev/ptmx");
    let master = open_master(ptmx).expect("open /dev/ptmx");
    let slave = open_slave(master.as_fd(), ptmx).expect("pty slave");
    set_window_size(&master, WindowSize { rows, cols }).expect("pty size");
    let stdio = |fd: &std::os::fd::OwnedFd| Stdio::from(fd.try_clone().expect("dup"));
    let what = format!("{cmd:?}");
    let mut child = cmd
        .env("TERM", "xterm")
        .stdin(stdio(&slave))
        .stdout(stdio(&slave))
        .stderr(stdio(&slave))
        .spawn()
        .expect("spawn in pty");
    // Only the child may hold the terminal now (the command keeps its copies until it is
    // dropped): the child's end is the reader's end of input (EIO).
    drop(cmd);
    drop(slave);
    let reader = std::thread::spawn(move || {
        let mut m = std::fs::File::from(master);
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = m.read(&mut buf) {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&out).into_owned()
    });
    let deadline = Instant::now() + limit;
    let code = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish in {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (code, reader.join().expect("reader"))
}

async fn running_pod(rt: &mut Rt, d: &Daemon, name: &str) -> (String, cri::PodSandboxConfig) {
    let config = pod_config(name, &d.dir.path().join(format!("logs-{name}")));
    let pod = run_pod(rt, &config).await;
    (pod, config)
}

async fn started(
    rt: &mut Rt,
    pod: &str,
    config: &cri::PodSandboxConfig,
    name: &str,
    script: &str,
) -> String {
    let id = create(rt, pod, config, container_config(name, script))
        .await
        .expect("CreateContainer");
    start(rt, &id).await;
    id
}

fn short(id: &str) -> &str {
    &id[..13]
}

#[tokio::test(flavor = "multi_thread")]
async fn ps_pods_images_inspect_stats_and_rm_show_what_runs() {
    require_root!("ps_pods_images_inspect_stats_and_rm_show_what_runs");
    let (d, mut rt) = daemon().await;
    let (pod, config) = running_pod(&mut rt, &d, "cli-pod").await;
    let web = started(&mut rt, &pod, &config, "web", "exec sleep 1000").await;
    let done = started(&mut rt, &pod, &config, "done", "exit 0").await;
    wait_exited(&mut rt, &done, Duration::from_secs(20)).await;

    // ps: aligned columns, short ids, running containers only without -a.
    let table = ok(ucr(&d, &["ps"]), "ps");
    let mut lines = table.lines();
    let header = lines.next().expect("header");
    let columns: Vec<&str> = header
        .split("   ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(
        columns,
        [
            "CONTAINER",
            "IMAGE",
            "CREATED",
            "STATE",
            "NAME",
            "ATTEMPT",
            "POD ID",
            "POD",
            "NAMESPACE"
        ],
        "{table}"
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 1, "only the running one:\n{table}");
    let row = rows[0];
    assert!(
        row.starts_with(&format!("{}   {BUSYBOX}", short(&web))),
        "{table}"
    );
    for cell in ["Running", "web", short(&pod), "cli-pod", "default"] {
        assert!(row.contains(cell), "{cell:?} missing:\n{table}");
    }
    // Every column starts where its header does.
    assert_eq!(header.find("STATE"), row.find("Running"), "{table}");
    assert_eq!(header.find("NAMESPACE"), row.find("default"), "{table}");
    let all = ok(ucr(&d, &["ps", "-a"]), "ps -a");
    assert!(
        all.contains("Exited") && all.contains(short(&done)),
        "{all}"
    );
    assert_eq!(ok(ucr(&d, &["ps", "-q"]), "ps -q").trim(), web);

    // -o json and -o yaml: the same rows, full ids, for scripts.
    let json: serde_json::Value =
        serde_json::from_str(&ok(ucr(&d, &["ps", "-a", "-o", "json"]), "ps json")).expect("json");
    let list = json.as_array().expect("an array");
    assert_eq!(list.len(), 2, "{json}");
    let w = list
        .iter()
        .find(|c| c["id"] == web.as_str())
        .expect("web in json");
    assert_eq!(w["state"], "Running");
    assert_eq!(w["pod"], "cli-pod");
    assert_eq!(w["namespace"], "default");
    assert_eq!(w["pod_id"], pod.as_str());
    let yaml: serde_yaml::Value =
        serde_yaml::from_str(&ok(ucr(&d, &["ps", "-o", "yaml"]), "ps yaml")).expect("yaml");
    assert_eq!(yaml[0]["id"].as_str(), Some(web.as_str()));
    let bad = ucr(&d, &["ps", "-o", "xml"]);
    assert_eq!(bad.code, Some(2), "a bad -o is refused");
    assert!(bad.stderr.contains("'xml'"), "{}", bad.stderr);

    // pods
    let pods = ok(ucr(&d, &["pods"]), "pods");
    assert!(pods.starts_with("POD ID"), "{pods}");
    assert!(
        pods.contains(short(&pod)) && pods.contains("Ready") && pods.contains("cli-pod"),
        "{pods}"
    );
    let pods: serde_json::Value =
        serde_json::from_str(&ok(ucr(&d, &["pods", "-o", "json"]), "pods json")).expect("json");
    assert_eq!(pods[0]["id"], pod.as_str());
    assert_eq!(pods[0]["namespace"], "default");

    // images
    let images = ok(ucr(&d, &["images"]), "images");
    let image_row = images
        .lines()
        .find(|l| l.starts_with("127.0.0.1:5000/ucr-test/busybox "))
        .unwrap_or_else(|| panic!("no busybox row:\n{images}"));
    let listed: serde_json::Value =
        serde_json::from_str(&ok(ucr(&d, &["images", "-o", "json"]), "images json")).expect("json");
    let busybox = listed
        .as_array()
        .expect("array")
        .iter()
        .find(|i| i["repo_tags"][0] == BUSYBOX)
        .expect("busybox in json");
    let image_id = busybox["id"].as_str().expect("id");
    assert!(image_row.contains("latest"), "{images}");
    assert!(
        image_row.contains(&image_id[7..20]),
        "short image id:\n{images}"
    );
    let _: serde_yaml::Value =
        serde_yaml::from_str(&ok(ucr(&d, &["images", "-o", "yaml"]), "images yaml")).expect("yaml");

    // inspect: by a unique prefix, container or pod.
    let prefix = &web[..8];
    let shown: serde_json::Value =
        serde_json::from_str(&ok(ucr(&d, &["inspect", prefix]), "inspect")).expect("json");
    assert_eq!(shown["container"]["id"], web.as_str(), "{shown}");
    assert_eq!(shown["container"]["state"], "Running");
    assert!(shown["info"].is_object(), "verbose info: {shown}");
    let shown: serde_yaml::Value = serde_yaml::from_str(&ok(
        ucr(&d, &["inspect", "-o", "yaml", &pod[..10]]),
        "inspect pod",
    ))
    .expect("yaml");
    assert_eq!(shown["pod"]["id"].as_str(), Some(pod.as_str()));
    assert_eq!(shown["pod"]["state"].as_str(), Some("Ready"));
    let unknown = ucr(&d, &["inspect", "zzzz"]);
    assert_eq!(unknown.code, Some(1));
    assert!(
        unknown
            .stderr
            .contains("no container or pod matches \"zzzz\""),
        "{}",
        unknown.stderr
    );

    // An ambiguous prefix names what it matches: make ids until two share a first digit
    // (at most 17 ids in all by the pigeonhole principle).
    let mut extra = Vec::new();
    let ambiguous = loop {
        let ids: Vec<String> = [&web, &done, &pod]
            .into_iter()
            .cloned()
            .chain(extra.clone())
            .collect();
        let first = ids
            .iter()
            .find(|a| ids.iter().filter(|b| b[..1] == a[..1]).count() > 1);
        if let Some(first) = first {
            break first[..1].to_string();
        }
        let id = create(
            &mut rt,
            &pod,
            &config,
            container_config(&format!("x{}", extra.len()), "true"),
        )
        .await
        .expect("create");
        extra.push(id);
    };
    let run = ucr(&d, &["inspect", &ambiguous]);
    assert_eq!(run.code, Some(1));
    assert!(
        run.stderr.contains(&format!(
            "container or pod id prefix \"{ambiguous}\" is ambiguous: it matches"
        )),
        "{}",
        run.stderr
    );

    // stats: the running container, with memory and disk measured.
    let stats = ok(ucr(&d, &["stats"]), "stats");
    assert!(stats.starts_with("CONTAINER"), "{stats}");
    for column in ["NAME", "CPU %", "MEM", "DISK"] {
        assert!(
            stats.lines().next().unwrap_or("").contains(column),
            "{stats}"
        );
    }
    assert!(
        stats.contains(short(&web)) && stats.contains("web"),
        "{stats}"
    );
    let stats: serde_json::Value = serde_json::from_str(&ok(
        ucr(&d, &["stats", "-o", "json", &web[..6]]),
        "stats json",
    ))
    .expect("json");
    assert_eq!(stats[0]["id"], web.as_str());
    assert!(
        stats[0]["memory_working_set_bytes"].as_u64().unwrap_or(0) > 0,
        "{stats}"
    );

    // rm: prefixes work; a running container needs -f; removed ones are gone.
    let mut args = vec!["rm"];
    let prefixes: Vec<String> = extra.iter().map(|id| id[..12].to_string()).collect();
    args.extend(prefixes.iter().map(String::as_str));
    if !extra.is_empty() {
        let removed = ok(ucr(&d, &args), "rm created ones");
        assert_eq!(
            removed.lines().collect::<Vec<_>>(),
            extra,
            "full ids, in order"
        );
    }
    let refused = ucr(&d, &["rm", &web[..10]]);
    assert_eq!(refused.code, Some(1));
    assert!(
        refused
            .stderr
            .contains(&format!("container {web} is running")),
        "{}",
        refused.stderr
    );
    assert_eq!(
        ok(ucr(&d, &["rm", "-f", &web[..10], &done]), "rm -f")
            .lines()
            .count(),
        2
    );
    let left = ok(ucr(&d, &["ps", "-a", "-q"]), "ps -aq");
    assert!(left.trim().is_empty(), "all removed: {left}");
    let again = ucr(&d, &["rm", &web]);
    assert!(
        again
            .stderr
            .contains(&format!("no container matches \"{web}\"")),
        "{}",
        again.stderr
    );

    stop_remove_pod(&mut rt, &pod).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_print_and_follow_across_rotation() {
    require_root!("logs_print_and_follow_across_rotation");
    let (d, mut rt) = daemon().await;
    let (pod, config) = running_pod(&mut rt, &d, "cli-logs").await;
    let script =
        "echo oops >&2; i=0; while [ $i -lt 30 ]; do echo line $i; i=$((i+1)); sleep 0.1; done";
    let id = started(&mut rt, &pod, &config, "talker", script).await;
    let mut follow = cli(&d, &["logs", "-f", &id[..12]])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("logs -f");

    // kubelet's rotation while it runs: rename, then ReopenContainerLog.
    let log = std::path::PathBuf::from(status(&mut rt, &id).await.log_path);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("line 8")
    {
        assert!(
            Instant::now() < deadline,
            "the container never wrote line 8"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    std::fs::rename(&log, log.with_extension("log.1")).expect("rotate");
    tokio::time::sleep(Duration::from_millis(300)).await;
    rt.reopen_container_log(cri::ReopenContainerLogRequest {
        container_id: id.clone(),
    })
    .await
    .expect("ReopenContainerLog");
    assert!(
        status(&mut rt, &id).await.state == cri::ContainerState::ContainerRunning as i32,
        "rotated while running"
    );
    wait_exited(&mut rt, &id, Duration::from_secs(30)).await;

    // -f ends by itself once the container has ended, having printed every line once.
    let start = Instant::now();
    let out = loop {
        if follow.try_wait().expect("wait").is_some() {
            break follow.wait_with_output().expect("output");
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "logs -f did not end"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(out.status.success());
    let want: Vec<String> = (0..30).map(|i| format!("line {i}")).collect();
    let got = String::from_utf8_lossy(&out.stdout);
    assert_eq!(got.lines().collect::<Vec<_>>(), want, "{got}");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "oops\n");

    // Without -f: what the current file holds (after the rotation), then exit.
    let now = ok(ucr(&d, &["logs", &id]), "logs");
    assert!(
        now.ends_with("line 29\n") && !now.contains("line 0\n"),
        "{now}"
    );
    let none = ucr(&d, &["logs", "nosuch"]);
    assert_eq!(none.code, Some(1));
    assert!(
        none.stderr.contains("no container matches \"nosuch\""),
        "{}",
        none.stderr
    );

    stop_remove_pod(&mut rt, &pod).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_propagates_exit_codes_with_and_without_a_terminal() {
    require_root!("exec_propagates_exit_codes_with_and_without_a_terminal");
    let (d, mut rt) = daemon().await;
    let (pod, config) = running_pod(&mut rt, &d, "cli-exec").await;
    let id = started(&mut rt, &pod, &config, "shell", "exec sleep 1000").await;

    // ExecSync: output on the right streams, exit code ours.
    let run = capture(&mut ucr_exec(
        &d,
        &[&id[..9]],
        &["sh", "-c", "echo out; echo err >&2; exit 7"],
    ));
    assert_eq!(run.code, Some(7), "{}", run.stderr);
    assert_eq!(run.stdout, "out\n");
    assert_eq!(run.stderr, "err\n");

    // -i without a terminal: stdin streamed, then closed (cat ends).
    let mut cat = ucr_exec(&d, &["-i", &id], &["sh", "-c", "cat; exit 4"]);
    let mut child = cat
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("exec -i");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(b"hello through stdin\n").expect("write");
    }
    let out = child.wait_with_output().expect("exec -i");
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello through stdin\n"
    );

    // -it in a real terminal: the remote terminal has ours' size, exit code ours.
    let (code, screen) = in_pty(
        ucr_exec(
            &d,
            &["-it", &id[..7]],
            &["sh", "-c", "stty size; tty; exit 3"],
        ),
        33,
        101,
        Duration::from_secs(30),
    );
    assert_eq!(code, Some(3), "{screen}");
    assert!(screen.contains("33 101"), "terminal size: {screen:?}");
    assert!(
        screen.contains("/dev/pts/"),
        "a terminal inside: {screen:?}"
    );

    let gone = capture(&mut ucr_exec(&d, &["nosuch"], &["true"]));
    assert_eq!(gone.code, Some(1));
    assert!(
        gone.stderr.contains("no container matches \"nosuch\""),
        "{}",
        gone.stderr
    );

    stop_remove_pod(&mut rt, &pod).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pull_draws_bars_in_a_terminal_and_lines_in_a_pipe() {
    require_root!(
        "pull_draws_bars_in_a_terminal_and_lines_in_a_pipe",
        "a daemon"
    );
    let d = Daemon::start(&[]);

    // In a terminal: indicatif's bars, one per layer, with bytes, rate and ETA.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ucr"));
    cmd.args(["pull", "--endpoint"]).arg(&d.socket).arg(BUSYBOX);
    let (code, screen) = in_pty(cmd, 24, 160, Duration::from_secs(120));
    assert_eq!(code, Some(0), "{screen}");
    let listed: serde_json::Value =
        serde_json::from_str(&ok(ucr(&d, &["images", "-o", "json"]), "images")).expect("json");
    let id = listed[0]["id"].as_str().expect("image id").to_string();
    assert!(screen.contains(&id), "the image id last: {screen:?}");
    assert!(screen.contains("ETA"), "a progress bar: {screen:?}");
    assert!(screen.contains("[=="), "a bar drawn: {screen:?}");
    assert!(
        screen.contains(" B/") || screen.contains("iB/"),
        "bytes: {screen:?}"
    );
    assert!(screen.contains("done"), "the layer finished: {screen:?}");

    // Behind a pipe: plain lines, no escape codes, then the image id.
    let piped = ok(ucr(&d, &["pull", DEBIAN]), "pull | cat");
    assert!(!piped.contains('\u{1b}'), "no terminal codes: {piped:?}");
    let lines: Vec<&str> = piped.lines().collect();
    let (last, progress) = lines.split_last().expect("output");
    assert!(last.starts_with("sha256:") && last.len() == 71, "{piped}");
    assert!(!progress.is_empty(), "{piped}");
    for line in progress {
        let (layer, rest) = line.split_once(' ').expect("layer then bytes");
        assert_eq!(layer.len(), 12, "{line}");
        assert!(layer.chars().all(|c| c.is_ascii_hexdigit()), "{line}");
        let bytes = rest.strip_suffix(" done").unwrap_or(rest);
        let (done, total) = bytes
            .strip_suffix(" bytes")
            .and_then(|b| b.split_once('/'))
            .unwrap_or_else(|| panic!("`<done>/<total> bytes`: {line}"));
        assert!(done.parse::<u64>().expect("done") <= total.parse::<u64>().expect("total"));
    }
    assert!(progress.iter().any(|l| l.ends_with(" done")), "{piped}");

    // Pulled again: every layer is already there.
    let again = ok(ucr(&d, &["pull", DEBIAN]), "pull again");
    assert!(again.contains("already exists"), "{again}");

    // A bad image: a precise error naming it, non-zero.
    let missing = ucr(&d, &["pull", "127.0.0.1:5000/ucr-test/no-such-image:1"]);
    assert_eq!(missing.code, Some(1));
    assert!(
        missing
            .stderr
            .contains("127.0.0.1:5000/ucr-test/no-such-image:1"),
        "{}",
        missing.stderr
    );

    // prune: nothing uses either image.
    let pruned = ok(ucr(&d, &["prune"]), "prune");
    assert!(pruned.contains(&format!("removed {id}")), "{pruned}");
    assert!(pruned.contains("2 image(s)"), "{pruned}");
    let left = ok(ucr(&d, &["images", "-q"]), "images -q");
    assert!(left.trim().is_empty(), "{left}");

    // Two clients pulling one image at once: the store makes it one pull (when the
    // second arrives in time), and each client is shown progress and the same id.
    let spawn = || {
        cli(&d, &["pull", DEBIAN])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("pull")
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (
        a.wait_with_output().expect("a"),
        b.wait_with_output().expect("b"),
    );
    let (a, b) = (
        String::from_utf8_lossy(&a.stdout),
        String::from_utf8_lossy(&b.stdout),
    );
    assert_eq!(a.lines().last(), b.lines().last(), "one image:\n{a}\n{b}");
    for out in [&a, &b] {
        assert!(
            out.lines().any(|l| l.ends_with(" bytes done")),
            "progress shown:\n{out}"
        );
    }
    eprintln!(
        "second client joined the first's pull: {}",
        d.logs().contains("joining a pull already under way")
    );
}
