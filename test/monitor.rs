//! The per-container monitor, `ucr monitor`, driven the way the daemon drives it: a bundle
//! with `monitor.json`, a pipe for the one-line report, then the files it leaves behind.
//! Containers run from a busybox rootfs out of the local registry. Needs root
//! (namespaces, mounts); says so and skips otherwise.

mod common;

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
use ucr::handshake::{self, Report as SyncReport};
use ucr::launcher::spec::Mount;
use ucr::launcher::LaunchSpec;
use ucr::monitor::{self, ExitRecord, MonitorConfig};

/// A bundle directory `dir/<name>` with its `monitor.json`; the log goes to
/// `dir/<name>.log`.
fn bundle(dir: &Path, name: &str, spec: LaunchSpec) -> (PathBuf, PathBuf) {
    let bundle = dir.join(name);
    std::fs::create_dir(&bundle).expect("bundle dir");
    let log_path = dir.join(format!("{name}.log"));
    MonitorConfig {
        spec,
        log_path: log_path.clone(),
        log_dir: Default::default(),
        log_format: Default::default(),
        stdin: false,
        stdin_once: false,
        tty: false,
    }
    .store(&bundle)
    .expect("monitor.json");
    (bundle, log_path)
}

/// Starts `ucr monitor` with the write end of a pipe inherited as `--sync-fd N`, waits
/// for the short-lived parent, and returns the report.
fn start(bundle: &Path) -> SyncReport {
    let (read_end, write_end) = nix::unistd::pipe2(OFlag::O_CLOEXEC).expect("pipe");
    // Only the write end is inherited, and only by this child (nextest runs each test in
    // its own process, so no other test's child can pick it up in between).
    fcntl(&write_end, FcntlArg::F_SETFD(FdFlag::empty())).expect("clear FD_CLOEXEC");
    let status = Command::new(env!("CARGO_BIN_EXE_ucr"))
        .arg("monitor")
        .arg("--bundle")
        .arg(bundle)
        .arg("--sync-fd")
        .arg(write_end.as_raw_fd().to_string())
        .status()
        .expect("run ucr monitor");
    drop(write_end);
    assert!(status.success(), "the detaching parent exits 0: {status}");
    read_report(File::from(read_end))
}

/// The monitor's report (`ucr::handshake`), with a generous deadline.
fn read_report<F: std::io::Read + std::os::fd::AsFd>(mut from: F) -> SyncReport {
    handshake::receive(&mut from, std::time::Duration::from_secs(30)).expect("report")
}

fn started(report: SyncReport) -> i32 {
    match report {
        SyncReport::Started { pid } => pid,
        SyncReport::Failed { message } => panic!("container did not start: {message}"),
        SyncReport::Held(p) => panic!("held without being asked to: {p:?}"),
    }
}

fn wait_for_exit(bundle: &Path) -> ExitRecord {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(record) = monitor::read_exit(bundle).expect("read exit.json") {
            return record;
        }
        assert!(Instant::now() < deadline, "no exit.json after 30 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Fields of `/proc/<pid>/stat` after the command name: state, ppid, pgrp, session.
fn stat(pid: i32) -> Option<(char, i32, i32, i32)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    let state = fields.next()?.chars().next()?;
    let mut num = || fields.next()?.parse().ok();
    Some((state, num()?, num()?, num()?))
}

/// The process is gone. A zombie counts as gone: the detached monitor's parent is init,
/// and this test machine's init (unlike systemd or tini) may never reap it.
fn assert_gone(pid: i32, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match stat(pid) {
            None => return,
            Some(('Z', ppid, ..)) => {
                assert_ne!(ppid, std::process::id() as i32, "{what} is not our zombie");
                eprintln!("note: {what} {pid} exited and waits for init (pid {ppid}) to reap it");
                return;
            }
            Some(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Some(s) => panic!("{what} {pid} still running: {s:?}"),
        }
    }
}

/// The monitor's pid, checked to be detached: not our child, leader of its own session.
fn detached_monitor(bundle: &Path) -> i32 {
    let pid = monitor::read_pid(bundle, monitor::MONITOR_PID_FILE)
        .expect("read monitor.pid")
        .expect("monitor.pid exists once the parent has exited");
    let (_, ppid, _, session) = stat(pid).expect("monitor running");
    assert_ne!(
        ppid,
        std::process::id() as i32,
        "the monitor is not our child"
    );
    assert_eq!(session, pid, "the monitor leads its own session");
    assert_eq!(
        monitor::live_monitor(bundle).expect("live").map(|m| m.pid),
        Some(pid)
    );
    pid
}

/// `(stream, tag, content)` of each record of a CRI log file.
fn records(log: &Path) -> Vec<(String, String, String)> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|line| {
            let mut parts = line.splitn(4, ' ');
            let ts = parts.next().expect("timestamp");
            assert!(
                chrono::DateTime::parse_from_rfc3339(ts).is_ok(),
                "bad timestamp {ts:?}"
            );
            let stream = parts.next().expect("stream").to_string();
            let tag = parts.next().expect("tag").to_string();
            (stream, tag, parts.next().unwrap_or_default().to_string())
        })
        .collect()
}

/// A record's content, long ones shortened so a failed comparison stays readable.
fn summary(content: &str) -> String {
    if content.len() <= 80 {
        return content.to_string();
    }
    format!("{}… ({} bytes)", &content[..20], content.len())
}

fn vm_rss_kib(pid: i32) -> (u64, u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("RssAnon:"), field("RssFile:"))
}

#[tokio::test]
async fn output_goes_to_the_cri_log_and_the_exit_is_recorded() {
    require_root!("output_goes_to_the_cri_log_and_the_exit_is_recorded");
    let dir = tempfile::tempdir().expect("tempdir");
    let rootfs = busybox_rootfs(dir.path()).await;
    // The container waits for `gate/open`, so its monitor is still there to be inspected.
    let script = "while [ ! -e /gate/open ]; do sleep 0.05; done; \
                  echo hello; echo oops >&2; grep -E '^Sig(Blk|Ign)' /proc/self/status; \
                  head -c 20000 /dev/zero | tr '\\0' a; echo; printf tail; exit 3";
    let gate = dir.path().join("gate");
    std::fs::create_dir(&gate).expect("gate dir");
    let mut s = launch_spec(&rootfs, script);
    s.mounts.push(Mount {
        source: gate.clone(),
        destination: "/gate".into(),
        readonly: true,
        propagation: Default::default(),
    });
    let (bundle, log) = bundle(dir.path(), "c1", s);
    let before = std::time::SystemTime::now();

    let pid = started(start(&bundle));
    assert_eq!(
        monitor::read_pid(&bundle, monitor::CONTAINER_PID_FILE).expect("pid"),
        Some(pid),
        "pid is written before the report"
    );
    // With its start time, which names the process for good.
    assert_eq!(
        monitor::recorded_container(&bundle).expect("pid file"),
        Some(ucr::sys::pidfd::ProcessId::of(pid).expect("running"))
    );
    let monitor_pid = detached_monitor(&bundle);
    std::fs::write(gate.join("open"), b"").expect("open the gate");
    let exit = wait_for_exit(&bundle);
    assert_eq!(
        (exit.exit_code, exit.signal, exit.oom_killed),
        (3, None, false)
    );
    let before_ns = nanos(before);
    assert!(before_ns <= exit.started_at_ns && exit.started_at_ns <= exit.finished_at_ns);

    // The two pipes are read in whatever order the data arrives: compare each stream.
    let got = records(&log);
    let stream = |name: &str| -> Vec<(String, String)> {
        got.iter()
            .filter(|r| r.0 == name)
            .map(|r| (r.1.clone(), summary(&r.2)))
            .collect()
    };
    let line = |tag: &str, content: &str| (tag.to_string(), content.to_string());
    assert_eq!(stream("stderr"), [line("F", "oops")]);
    let stdout = stream("stdout");
    assert_eq!(
        stdout[..2],
        [line("F", "hello"), line("F", "SigBlk:\t0000000000000000")],
        "nothing blocked leaks from the monitor into the container"
    );
    // Bits 0-30 are signals 1-31 (SIGPIPE, SIGTERM, …); above are glibc-internal
    // real-time signals, which some test environments hand down ignored.
    let ignored = stdout[2].1.strip_prefix("SigIgn:\t").expect("SigIgn line");
    let ignored = u64::from_str_radix(ignored, 16).expect("hex mask");
    assert_eq!(
        ignored & 0x7fff_ffff,
        0,
        "SigIgn {ignored:x}: no standard signal ignored"
    );
    assert_eq!(
        stdout[3..],
        [
            // A 20000-byte line: one 16 KiB partial, then the rest as the full record.
            line("P", &summary(&"a".repeat(16 * 1024))),
            line("F", &summary(&"a".repeat(20_000 - 16 * 1024))),
            // No newline at the end of the stream: a partial, as containerd writes it.
            line("P", "tail"),
        ]
    );

    assert_gone(monitor_pid, "monitor");
    assert_gone(pid, "container");
    assert!(
        !bundle.join(monitor::MONITOR_PID_FILE).exists(),
        "monitor.pid removed on exit"
    );
    assert_eq!(mounts_under(&rootfs), 0, "no mount outlives the container");
    assert_eq!(mounts_under(&gate), 0);
}

fn nanos(t: std::time::SystemTime) -> i64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_nanos() as i64
}

#[tokio::test]
async fn sigkill_is_recorded_as_137_and_the_monitor_stays_small() {
    require_root!("sigkill_is_recorded_as_137_and_the_monitor_stays_small");
    let dir = tempfile::tempdir().expect("tempdir");
    let rootfs = busybox_rootfs(dir.path()).await;
    let (bundle, _log) = bundle(dir.path(), "c2", launch_spec(&rootfs, "sleep 5"));
    let pid = started(start(&bundle));
    let monitor_pid = detached_monitor(&bundle);

    // The monitor ignores what would stop a daemon's child.
    for signal in [
        nix::sys::signal::Signal::SIGTERM,
        nix::sys::signal::Signal::SIGINT,
        nix::sys::signal::Signal::SIGHUP,
    ] {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(monitor_pid), signal).expect("signal");
    }
    std::thread::sleep(Duration::from_millis(500));
    let (rss, anon, file) = vm_rss_kib(monitor_pid);
    println!("monitor RSS while `sleep 5` runs: VmRSS {rss} KiB (RssAnon {anon} KiB, RssFile {file} KiB)");
    eprintln!("monitor RSS while `sleep 5` runs: VmRSS {rss} KiB (RssAnon {anon} KiB, RssFile {file} KiB)");
    assert_eq!(
        monitor::read_exit(&bundle).expect("read"),
        None,
        "still running"
    );
    assert_eq!(stat(monitor_pid).map(|s| s.0 != 'Z'), Some(true));

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill the container");
    let exit = wait_for_exit(&bundle);
    assert_eq!((exit.exit_code, exit.signal), (137, Some(9)));
    assert_gone(monitor_pid, "monitor");
    assert_eq!(mounts_under(&rootfs), 0);
}

#[tokio::test]
async fn the_monitor_outlives_its_daemon_and_reopens_the_log() {
    require_root!("the_monitor_outlives_its_daemon_and_reopens_the_log");
    let dir = tempfile::tempdir().expect("tempdir");
    let rootfs = busybox_rootfs(dir.path()).await;
    let script = "i=0; while [ $i -lt 20 ]; do echo line$i; i=$((i+1)); sleep 0.1; done";
    let (bundle, log) = bundle(dir.path(), "c3", launch_spec(&rootfs, script));

    // A stand-in daemon that starts the monitor (report on its stdout, `--sync-fd 1`,
    // the way a threaded daemon avoids leaking descriptors) and then lingers.
    let mut daemon = Command::new("sh")
        .arg("-c")
        .arg("\"$0\" monitor --bundle \"$1\" --sync-fd 1 && exec sleep 60")
        .arg(env!("CARGO_BIN_EXE_ucr"))
        .arg(&bundle)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the stand-in daemon");
    let report = read_report(daemon.stdout.take().expect("stdout"));
    let pid = started(report);
    let monitor_pid = detached_monitor(&bundle);
    daemon.kill().expect("SIGKILL the daemon");
    daemon.wait().expect("reap the daemon");

    wait_until("three lines logged", || records(&log).len() >= 3);
    std::fs::rename(&log, dir.path().join("c3.log.1")).expect("rotate");
    monitor::request_reopen(&bundle).expect("reopen");
    wait_until("the new log file", || log.exists());

    let exit = wait_for_exit(&bundle);
    assert_eq!(exit.exit_code, 0);
    let old = records(&dir.path().join("c3.log.1"));
    let new = records(&log);
    assert!(
        !old.is_empty() && !new.is_empty(),
        "old {old:?} new {new:?}"
    );
    let all: Vec<String> = old.iter().chain(&new).map(|r| r.2.clone()).collect();
    let want: Vec<String> = (0..20).map(|i| format!("line{i}")).collect();
    assert_eq!(all, want, "every line once, in order, across the rotation");
    assert_gone(monitor_pid, "monitor");
    assert_gone(pid, "container");
    assert_eq!(mounts_under(&rootfs), 0);
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[tokio::test]
async fn a_launch_failure_is_reported_and_leaves_nothing() {
    require_root!("a_launch_failure_is_reported_and_leaves_nothing");
    let dir = tempfile::tempdir().expect("tempdir");
    let rootfs = busybox_rootfs(dir.path()).await;
    let mut s = launch_spec(&rootfs, "");
    s.process.args = vec!["no-such-program".into()];
    let (bundle, log) = bundle(dir.path(), "c4", s);

    match start(&bundle) {
        SyncReport::Failed { message } => assert_eq!(
            message,
            "exec: \"no-such-program\": executable file not found in $PATH"
        ),
        other => panic!("expected an error, got {other:?}"),
    }
    wait_until("monitor.pid removed", || {
        !bundle.join(monitor::MONITOR_PID_FILE).exists()
    });
    assert_eq!(
        monitor::read_exit(&bundle).expect("read"),
        None,
        "no exit.json"
    );
    assert!(!bundle.join(monitor::CONTAINER_PID_FILE).exists(), "no pid");
    assert_eq!(no_monitor_left(&bundle), Vec::<i32>::new());
    assert!(records(&log).is_empty());
    assert_eq!(mounts_under(&rootfs), 0);
}

/// Running (not zombie) processes whose command line names `bundle`.
fn no_monitor_left(bundle: &Path) -> Vec<i32> {
    let needle = bundle.display().to_string();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let alive: Vec<i32> = std::fs::read_dir("/proc")
            .expect("/proc")
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&needle))
                    && stat(*pid).is_some_and(|s| s.0 != 'Z')
            })
            .collect();
        if alive.is_empty() || Instant::now() > deadline {
            return alive;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_bad_bundle_is_reported_before_detaching() {
    // No root needed: nothing is started.
    let dir = tempfile::tempdir().expect("tempdir");
    let (read_end, write_end): (OwnedFd, OwnedFd) =
        nix::unistd::pipe2(OFlag::O_CLOEXEC).expect("pipe");
    let out = Command::new(env!("CARGO_BIN_EXE_ucr"))
        .arg("monitor")
        .arg("--bundle")
        .arg(dir.path())
        .arg("--sync-fd")
        .arg("1")
        .stdout(write_end)
        .output()
        .expect("run ucr monitor");
    assert_eq!(out.status.code(), Some(1));
    let report = read_report(File::from(read_end));
    let SyncReport::Failed { message } = report else {
        panic!("expected an error, got {report:?}");
    };
    assert!(
        message.starts_with("reading the monitor config "),
        "{message}"
    );
    assert!(message.contains("monitor.json"), "{message}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&message), "{stderr}");

    let err = Command::new(env!("CARGO_BIN_EXE_ucr"))
        .args(["monitor", "--bundle", "/nonexistent", "--sync-fd", "999"])
        .output()
        .expect("run ucr monitor");
    assert_eq!(err.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&err.stderr).contains("taking the sync descriptor 999"),
        "{}",
        String::from_utf8_lossy(&err.stderr)
    );
}
