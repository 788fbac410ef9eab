//! Attach (CRI `Attach`, through `Containerizer::attach`, which the streaming server
//! serves) and containers with stdin and a terminal, against real containers of a
//! containerizer opened here (the daemon's wiring, without the CRI door): their output as
//! it comes, stdin through `cat`, `stdin_once`, several attachers, a terminal of the
//! container's own devpts with resizes, the CRI log beside it all, log reopening while
//! attached, attachers that vanish or stop reading. Needs root (namespaces, mounts,
//! cgroups); says so and skips otherwise.
//!
//! The run root is deliberately deeper than `sun_path` allows, so the monitor binds and
//! the daemon connects through `/proc/self/fd` (`sys::seqpacket`).

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use ucr::containerizer::session::{OutputStream, Session, SessionEnd, SessionStreams, TermSize};
use ucr::containerizer::types::{ContainerConfig, ContainerState, LogTarget, ProcessConfig};
use ucr::containerizer::{Containerizer, Options};
use ucr::error::{ErrorKind, Kind};

const WAIT: Duration = Duration::from_secs(20);

/// A containerizer of our own, with busybox in its store.
struct Rig {
    dir: tempfile::TempDir,
    c: Arc<Containerizer>,
    image: String,
    cgroups_root: String,
    ids: Vec<String>,
    finished: bool,
}

impl Drop for Rig {
    /// A test that failed before [`Rig::finish`]: its containers are killed, so none runs
    /// on (spinning, once the tempdir is deleted under it) after the test.
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        for id in &self.ids {
            let bundle = self.bundle(id);
            if let Ok(Some((pid, _))) = ucr::monitor::read_process(&bundle, "pid") {
                ucr::sys::kill::signal(pid, libc::SIGKILL);
            }
        }
    }
}

impl Rig {
    async fn open() -> Rig {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path().to_path_buf();
        let store = open_store(&d.join("store"));
        let image = format!("{REGISTRY}/ucr-test/busybox:latest");
        store.pull(&image, None).await.expect("pull");
        let backend = ucr::provisioner::backend::select("auto", &d.join("store")).expect("backend");
        let binary = PathBuf::from(env!("CARGO_BIN_EXE_ucr"));
        let cni = ucr::isolators::network::cni::Cni::new(ucr::isolators::network::cni::CniConfig {
            conf_dir: d.join("no-networks"),
            bin_dirs: Vec::new(),
            cache_dir: d.join("cni-cache"),
            plugin_timeout: Duration::from_secs(5),
        });
        let cgroups_root = format!("/{}", d.file_name().unwrap_or_default().to_string_lossy());
        let cgroups =
            ucr::isolators::cgroups::Cgroups::new(ucr::isolators::cgroups::CgroupsOptions {
                hierarchy: "/sys/fs/cgroup".into(),
                root: ucr::isolators::cgroups::path::CgroupPath::parse(&cgroups_root)
                    .expect("root"),
                net_cls: None,
                pids_limit: None,
                state_dir: d.join("cgroups-state"),
            })
            .expect("cgroups");
        // Deeper than sun_path's 108 bytes once the bundle's name and `attach` are added.
        let run_root = d.join(format!("run-{}", "x".repeat(70)));
        let c = Containerizer::open(Options {
            root: d.join("root"),
            run_root,
            store,
            backend,
            binary: binary.clone(),
            isolators: ucr::isolators::Isolators::standard(
                cni,
                binary,
                cgroups,
                Vec::new(),
                ucr::isolators::linux::seccomp::Seccomp::new(d.join("seccomp"), false),
            ),
        })
        .expect("containerizer");
        Rig {
            dir,
            c,
            image,
            cgroups_root,
            ids: Vec::new(),
            finished: false,
        }
    }

    fn bundle(&self, id: &str) -> PathBuf {
        self.dir
            .path()
            .join(format!("run-{}", "x".repeat(70)))
            .join("containers")
            .join(id)
    }

    fn log(&self, id: &str) -> PathBuf {
        self.dir.path().join("logs").join(format!("{id}.log"))
    }

    /// Creates and starts a standalone container running `script` under `sh -c`, with
    /// `edit` applied to its config first.
    async fn run(&mut self, id: &str, script: &str, edit: impl FnOnce(&mut ContainerConfig)) {
        self.run_argv(id, &["sh", "-c", script], edit).await;
    }

    async fn run_argv(&mut self, id: &str, argv: &[&str], edit: impl FnOnce(&mut ContainerConfig)) {
        let mut config = ContainerConfig {
            key: id.into(),
            id: Some(id.into()),
            image: self.image.clone(),
            process: ProcessConfig {
                argv: argv.iter().map(|a| a.to_string()).collect(),
                executable: None,
                env: Vec::new(),
                cwd: "/".into(),
                user: None,
                supplemental_groups: Vec::new(),
                strict_groups: false,
                image_env: true,
            },
            log: Some(LogTarget {
                dir: self.dir.path().join("logs"),
                path: format!("{id}.log").into(),
                format: Default::default(),
            }),
            ..Default::default()
        };
        edit(&mut config);
        self.c.create_container(None, config).await.expect("create");
        self.ids.push(id.to_string());
        self.c.start_container(id).await.expect("start");
    }

    async fn state(&self, id: &str) -> ContainerState {
        self.c.container_status(id).await.expect("status").state
    }

    /// Stops and removes every container, and checks nothing is left mounted.
    async fn finish(mut self) {
        self.finished = true;
        for id in &self.ids {
            let _ = self.c.stop_container(id, 0).await;
            self.c.remove_container(id).await.expect("remove");
        }
        for dir in cgroup_dirs(&self.cgroups_root) {
            remove_cgroup_tree(&dir);
        }
        for _ in 0..100 {
            if mounts_under(self.dir.path()) == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(mounts_under(self.dir.path()), 0, "mounts left behind");
    }
}

fn streams(stdin: bool, stdout: bool, stderr: bool) -> SessionStreams {
    SessionStreams {
        stdin,
        stdout,
        stderr,
        tty: false,
    }
}

/// What a session has said so far, by stream.
#[derive(Default)]
struct Heard {
    stdout: String,
    stderr: String,
}

/// Reads `session`'s output until `done` holds of what was heard, or fails after
/// [`WAIT`] showing it.
async fn hear_until(session: &mut Session, heard: &mut Heard, done: impl Fn(&Heard) -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !done(heard) {
        let chunk = tokio::time::timeout_at(deadline, session.output.recv()).await;
        match chunk {
            Ok(Some((OutputStream::Stdout, b))) => heard.stdout += &String::from_utf8_lossy(&b),
            Ok(Some((OutputStream::Stderr, b))) => heard.stderr += &String::from_utf8_lossy(&b),
            Ok(None) => panic!(
                "the output ended first; stdout {:?}, stderr {:?}",
                heard.stdout, heard.stderr
            ),
            Err(_) => panic!(
                "waited {WAIT:?}; stdout {:?}, stderr {:?}",
                heard.stdout, heard.stderr
            ),
        }
    }
}

async fn hear(session: &mut Session, needle: &str) -> String {
    let mut heard = Heard::default();
    hear_until(session, &mut heard, |h| h.stdout.contains(needle)).await;
    heard.stdout
}

async fn end_of(session: Session) -> SessionEnd {
    let Session {
        mut output, end, ..
    } = session;
    // Whatever is left; the end comes after it.
    let drained = async { while output.recv().await.is_some() {} };
    tokio::time::timeout(WAIT, drained)
        .await
        .expect("output ends");
    tokio::time::timeout(WAIT, end)
        .await
        .expect("the session ends")
        .expect("an end is sent")
        .expect("a clean end")
}

/// The rest of the line after `key` in what the terminal says next (lines end `\r\n`
/// there).
async fn said(session: &mut Session, key: &str) -> String {
    let mut heard = Heard::default();
    let line = |h: &Heard| -> Option<String> {
        let at = h.stdout.find(key)? + key.len();
        let end = h.stdout[at..].find("\r\n")?;
        Some(h.stdout[at..at + end].to_string())
    };
    hear_until(session, &mut heard, |h| line(h).is_some()).await;
    line(&heard).unwrap_or_default()
}

async fn send(session: &Session, text: &str) {
    session
        .stdin
        .as_ref()
        .expect("stdin")
        .send(Bytes::copy_from_slice(text.as_bytes()))
        .await
        .expect("send stdin");
}

async fn log_text(path: &Path, needle: &str) -> String {
    for _ in 0..200 {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains(needle) {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let tail = &text[text.len().saturating_sub(1500)..];
    panic!(
        "{needle:?} never reached {}; it ends {tail:?}",
        path.display()
    );
}

const TICKS: &str = "i=0; while true; do echo out $i; echo err $i >&2; i=$((i+1)); sleep 0.1; done";

#[tokio::test]
async fn attach_hears_new_output_on_both_streams_and_the_log_can_be_reopened() {
    require_root!("attach_hears_new_output_on_both_streams_and_the_log_can_be_reopened");
    let mut rig = Rig::open().await;
    let id = "attach-ticks";
    rig.run(id, TICKS, |_| {}).await;
    // stdin asked of a container without stdin is ignored, as containerd does.
    let mut s = rig
        .c
        .attach(id, streams(true, true, true))
        .await
        .expect("attach");
    assert!(s.stdin.is_none(), "the container has no stdin");
    assert!(s.resize.is_none(), "nor a terminal");
    let mut heard = Heard::default();
    hear_until(&mut s, &mut heard, |h| {
        h.stdout.lines().filter(|l| l.starts_with("out ")).count() >= 3 && h.stderr.contains("err ")
    })
    .await;
    assert!(
        !heard.stdout.contains("err"),
        "stderr kept apart: {:?}",
        heard.stdout
    );
    // Output is still logged, tagged by stream.
    let log = rig.log(id);
    let text = log_text(&log, " stderr F err ").await;
    assert!(text.contains(" stdout F out "), "{text}");

    // ReopenContainerLog while attached: kubelet renames, then asks.
    let rotated = log.with_extension("log.1");
    std::fs::rename(&log, &rotated).expect("rotate");
    rig.c.reopen_log(id).await.expect("reopen");
    log_text(&log, " stdout F out ").await;
    let before = heard.stdout.len();
    hear_until(&mut s, &mut heard, |h| h.stdout.len() > before + 12).await;

    // Only stdout asked: no stderr.
    let mut only_out = rig
        .c
        .attach(id, streams(false, true, false))
        .await
        .expect("attach");
    let mut heard2 = Heard::default();
    hear_until(&mut only_out, &mut heard2, |h| {
        h.stdout.matches("out ").count() >= 3
    })
    .await;
    assert!(heard2.stderr.is_empty(), "{:?}", heard2.stderr);

    drop((s, only_out));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        rig.state(id).await,
        ContainerState::Running,
        "detaching leaves it running"
    );
    rig.finish().await;
}

#[tokio::test]
async fn stdin_round_trips_through_cat_and_stays_open_between_attachments() {
    require_root!("stdin_round_trips_through_cat_and_stays_open_between_attachments");
    let mut rig = Rig::open().await;
    let id = "attach-cat";
    rig.run_argv(id, &["cat"], |c| c.stdin = true).await;
    // Nobody attached: cat waits, no end of file.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(rig.state(id).await, ContainerState::Running);

    let mut s = rig
        .c
        .attach(id, streams(true, true, true))
        .await
        .expect("attach");
    send(&s, "hello through cat\n").await;
    hear(&mut s, "hello through cat\n").await;
    log_text(&rig.log(id), " stdout F hello through cat").await;
    // A big write arrives whole, in order (chunked below 8 KiB on the way).
    let big: String = (0..3000).map(|i| format!("{i:05}\n")).collect();
    send(&s, &big).await;
    let got = hear(&mut s, "02999\n").await;
    assert!(got.ends_with(&big), "all of it, in order");

    // The session's stdin ends: without stdin_once the attachment ends with it
    // (containerd's rule) and the container's stdin stays open.
    s.stdin = None;
    assert_eq!(end_of(s).await, SessionEnd::Detached);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        rig.state(id).await,
        ContainerState::Running,
        "cat saw no end of file"
    );

    // A second attacher that vanishes without a word: the container goes on.
    let vanishing = rig
        .c
        .attach(id, streams(true, true, false))
        .await
        .expect("attach");
    send(&vanishing, "from the vanishing one\n").await;
    // (What a dropped session had queued and not yet sent is dropped with it.)
    let mut vanishing = vanishing;
    hear(&mut vanishing, "from the vanishing one\n").await;
    drop(vanishing);
    let mut s = rig
        .c
        .attach(id, streams(true, true, false))
        .await
        .expect("attach again");
    send(&s, "still there\n").await;
    hear(&mut s, "still there\n").await;
    log_text(&rig.log(id), "from the vanishing one").await;
    assert_eq!(rig.state(id).await, ContainerState::Running);
    rig.finish().await;
}

#[tokio::test]
async fn stdin_once_gives_end_of_file_when_the_first_attachment_ends() {
    require_root!("stdin_once_gives_end_of_file_when_the_first_attachment_ends");
    let mut rig = Rig::open().await;
    let id = "attach-once";
    rig.run(id, "cat; echo cat-done", |c| {
        c.stdin = true;
        c.stdin_once = true;
    })
    .await;
    // An attacher without stdin comes and goes: it does not count.
    let watcher = rig
        .c
        .attach(id, streams(false, true, false))
        .await
        .expect("attach");
    drop(watcher);
    let mut s = rig
        .c
        .attach(id, streams(true, true, false))
        .await
        .expect("attach");
    send(&s, "last words\n").await;
    hear(&mut s, "last words\n").await;
    // Its stdin ends: the container's closes, and the session lasts until it exits.
    s.stdin = None;
    hear(&mut s, "cat-done\n").await;
    assert_eq!(end_of(s).await, SessionEnd::Exited(0));
    let c = rig.c.container_status(id).await.expect("status");
    assert_eq!((c.state, c.exit_code), (ContainerState::Exited, 0));
    // Nothing to attach to any more.
    let e = rig
        .c
        .attach(id, streams(false, true, false))
        .await
        .err()
        .expect("exited");
    assert_eq!(e.kind(), ErrorKind::FailedPrecondition, "{e}");
    rig.finish().await;
}

#[tokio::test]
async fn two_attachers_hear_the_same_output() {
    require_root!("two_attachers_hear_the_same_output");
    let mut rig = Rig::open().await;
    let id = "attach-two";
    rig.run(id, TICKS, |_| {}).await;
    let mut a = rig
        .c
        .attach(id, streams(false, true, false))
        .await
        .expect("a");
    let mut b = rig
        .c
        .attach(id, streams(false, true, false))
        .await
        .expect("b");
    let (mut ha, mut hb) = (Heard::default(), Heard::default());
    // Both attached before this line is printed: both hear it.
    let marker = |h: &Heard| -> Option<u32> {
        h.stdout
            .lines()
            .filter_map(|l| l.strip_prefix("out ")?.parse().ok())
            .max()
    };
    hear_until(&mut a, &mut ha, |h| marker(h).is_some()).await;
    let target = marker(&ha).expect("a line") + 3;
    let line = format!("out {target}\n");
    hear_until(&mut a, &mut ha, |h| h.stdout.contains(&line)).await;
    hear_until(&mut b, &mut hb, |h| h.stdout.contains(&line)).await;
    // What serving two attachers costs the monitor (shown, not asserted: this is a debug
    // build; the README's benchmark measures the release one).
    let bundle = rig.bundle(id);
    if let Ok(Some(m)) = ucr::monitor::live_monitor(&bundle) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", m.pid)).unwrap_or_default();
        let rss: Vec<&str> = status
            .lines()
            .filter(|l| l.starts_with("Rss") || l.starts_with("VmRSS"))
            .collect();
        eprintln!("monitor with two attachers: {rss:?}");
    }
    drop(a);
    // The other one is not disturbed by the first one leaving.
    let line = format!("out {}\n", target + 3);
    hear_until(&mut b, &mut hb, |h| h.stdout.contains(&line)).await;
    rig.finish().await;
}

#[tokio::test]
async fn a_terminal_of_its_own_devpts_resizes_and_is_logged_as_stdout() {
    require_root!("a_terminal_of_its_own_devpts_resizes_and_is_logged_as_stdout");
    let mut rig = Rig::open().await;
    let id = "attach-tty";
    rig.run_argv(id, &["sh"], |c| {
        c.stdin = true;
        c.tty = true;
        c.process.user = Some("1000:1000".into());
    })
    .await;
    let mut s = rig
        .c
        .attach(
            id,
            SessionStreams {
                stdin: true,
                stdout: true,
                stderr: true,
                tty: true,
            },
        )
        .await
        .expect("attach");
    let resize = s.resize.clone().expect("a terminal takes resizes");
    // `"T""=…"`: the terminal echoes the command line, which must not match.
    send(&s, "echo \"T\"\"=$(tty)\"\n").await;
    let tty = said(&mut s, "T=").await;
    assert!(tty.starts_with("/dev/pts/"), "{tty}");
    // Its owner is the container's user; its group devpts's tty (5), as runc leaves it.
    send(&s, &format!("echo \"O\"\"=$(stat -c %u:%g {tty})\"\n")).await;
    assert_eq!(said(&mut s, "O=").await, "1000:5");
    // A controlling terminal: the shell's session has it (`ps -o tty` would say `?`).
    send(
        &s,
        "echo \"C\"\"=$(cat /proc/self/stat | cut -d' ' -f7)\"\n",
    )
    .await;
    assert_ne!(said(&mut s, "C=").await, "0", "a controlling terminal");
    resize
        .send(TermSize {
            width: 123,
            height: 45,
        })
        .await
        .expect("resize");
    // The resize and the command go by different channels: ask until it shows.
    let mut size = String::new();
    for _ in 0..50 {
        send(&s, "echo \"S\"\"=$(stty size)\"\n").await;
        size = said(&mut s, "S=").await;
        if size == "45 123" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(size, "45 123");
    // Everything is stdout in the log, as containerd logs a terminal.
    let text = log_text(&rig.log(id), "S=45 123").await;
    assert!(!text.contains(" stderr "), "{text}");
    send(&s, "exit 3\n").await;
    assert_eq!(end_of(s).await, SessionEnd::Exited(3));
    rig.finish().await;
}

#[tokio::test]
async fn an_attacher_that_stops_reading_misses_output_and_nothing_else_notices() {
    use ucr::monitor::attach::client::Connection;
    use ucr::monitor::attach::protocol::{MonitorMessage, Wants, MAX_MESSAGE};
    require_root!("an_attacher_that_stops_reading_misses_output_and_nothing_else_notices");
    let mut rig = Rig::open().await;
    let id = "attach-stuck";
    // A burst far larger than a socket holds, then ticks.
    rig.run(
        id,
        &format!("sleep 1; head -c 4000000 /dev/zero | tr '\\0' x; echo; {TICKS}"),
        |_| {},
    )
    .await;
    let bundle = rig.bundle(id);
    // Attached, and not reading.
    let stuck = Connection::open(
        &bundle,
        Wants {
            stdin: false,
            stdout: true,
            stderr: false,
        },
    )
    .await
    .expect("attach raw");
    let mut live = rig
        .c
        .attach(id, streams(false, true, true))
        .await
        .expect("attach");
    // The container went through its burst and on, and the log has all of it.
    let text = log_text(&rig.log(id), " stdout F out 2").await;
    let burst: usize = text
        .lines()
        .filter_map(|l| {
            Some(
                l.split_once(" stdout ")?.1[2..]
                    .bytes()
                    .filter(|b| *b == b'x')
                    .count(),
            )
        })
        .sum();
    assert!(burst >= 4_000_000, "the burst is logged whole: {burst}");
    assert_eq!(rig.state(id).await, ContainerState::Running);
    // The live one is still attached and hears the ticks on (reading as it comes, only a
    // tail kept: the burst is 4 MB; it may have missed some of it while this test looked
    // at the log).
    let mut tail = String::new();
    let mut first: Option<u32> = None;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let last = tail
            .lines()
            .filter_map(|l| l.strip_prefix("out ")?.parse::<u32>().ok())
            .max();
        if let (None, Some(n)) = (first, last) {
            first = Some(n);
        }
        if let (Some(f), Some(l)) = (first, last) {
            if l >= f + 2 {
                break;
            }
        }
        match tokio::time::timeout_at(deadline, live.output.recv()).await {
            Ok(Some((_, b))) => {
                tail += &String::from_utf8_lossy(&b);
                if tail.len() > 4096 {
                    let cut = tail.len() - 256;
                    tail.drain(..tail.ceil_char_boundary(cut));
                }
            }
            other => panic!("the live attacher: {other:?}, {tail:?}"),
        }
    }
    // Now the stuck one reads: what the kernel held for it (far less than the burst),
    // then how much it missed, then the ticks that came after.
    let mut buf = vec![0u8; MAX_MESSAGE];
    let (mut queued, mut lost, mut after) = (0usize, None, String::new());
    while !after.contains("out ") {
        let len = tokio::time::timeout(WAIT, stuck.recv(&mut buf))
            .await
            .expect("the stuck attacher hears on")
            .expect("recv")
            .expect("still attached");
        match MonitorMessage::parse(&buf[..len]).expect("a message") {
            MonitorMessage::Output(_, data) if lost.is_none() => queued += data.len(),
            MonitorMessage::Output(_, data) => after += &String::from_utf8_lossy(data),
            MonitorMessage::Lost(n) => lost = Some(n),
            MonitorMessage::Attached { .. } => panic!("attached twice"),
        }
    }
    let lost = lost.expect("told what it missed") as usize;
    assert!(queued < 3_000_000, "it was not sent everything: {queued}");
    assert!(queued + lost >= 4_000_000, "queued {queued} + lost {lost}");
    rig.finish().await;
}

/// The CRI door carries `stdin`, `stdin_once` and `tty` to the container: through the
/// real daemon, a `tty` container's terminal is one of its own `/dev/pts` and its output
/// is logged as stdout; `stdin` keeps `cat` waiting instead of reading `/dev/null`.
#[tokio::test]
async fn the_cri_door_gives_containers_stdin_and_a_terminal() {
    use common::pods::*;
    use k8s_cri::v1 as cri;
    require_root!("the_cri_door_gives_containers_stdin_and_a_terminal");
    let (d, mut rt) = daemon().await;
    let logs = d.dir.path().join("logs");
    let pc = pod_config("attach-cri", &logs);
    let pod = run_pod(&mut rt, &pc).await;
    let tty = create(
        &mut rt,
        &pod,
        &pc,
        cri::ContainerConfig {
            tty: true,
            ..container_config("tty", "echo T=$(tty) 1>&2; exec sleep 600")
        },
    )
    .await
    .expect("create");
    start(&mut rt, &tty).await;
    let waiting = create(
        &mut rt,
        &pod,
        &pc,
        cri::ContainerConfig {
            stdin: true,
            stdin_once: true,
            ..container_config("waiting", "cat; echo cat ended")
        },
    )
    .await
    .expect("create");
    start(&mut rt, &waiting).await;
    let text = log_text(&logs.join("tty.log"), "T=").await;
    assert!(text.contains(" stdout F T=/dev/pts/"), "{text}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        status(&mut rt, &waiting).await.state,
        cri::ContainerState::ContainerRunning as i32,
        "cat waits on its open stdin"
    );
    stop_remove_pod(&mut rt, &pod).await;
    assert_nothing_left(&d);
}
