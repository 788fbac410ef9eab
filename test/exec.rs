//! `ucr nsexec` against a running container started by `ucr launch` on a real busybox
//! rootfs from the local registry. Needs root (namespaces, mounts); says so and skips
//! otherwise.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use ucr::error::ErrorKind;
use ucr::launcher::exec::{ExecSpec, Report};
use ucr::launcher::spec::LaunchSpec;
use ucr::sys::pidfd::ProcessId;

const HOSTNAME: &str = "exec-box";

/// `ucr launch` running a command in its own namespaces; SIGKILLed on drop, which ends
/// its PID namespace and so everything exec'd into it.
struct Container {
    launch: Child,
    pid: i32,
    rootfs: PathBuf,
}

impl Container {
    /// Runs `sleep 60`.
    fn start(dir: &Path, rootfs: &Path) -> Container {
        Self::start_with(dir, rootfs, &["sleep", "60"], &["sleep", "60"])
    }

    /// Runs `args`; ready once the first process's argv is `ready`.
    fn start_with(dir: &Path, rootfs: &Path, args: &[&str], ready: &[&str]) -> Container {
        let ready: String = ready.iter().map(|a| format!("{a}\0")).collect();
        let mut spec = LaunchSpec {
            hostname: Some(HOSTNAME.into()),
            ..launch_spec(rootfs, "")
        };
        spec.process.args = args.iter().map(|a| a.to_string()).collect();
        let launch = ucr_with_spec(dir, "launch", &spec)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("start ucr launch");
        let lp = launch.id();
        let mut c = Container {
            launch,
            pid: 0,
            rootfs: rootfs.to_path_buf(),
        };
        // The container's first process is `ucr launch`'s only child.
        c.pid = wait_for(|| {
            let children =
                std::fs::read_to_string(format!("/proc/{lp}/task/{lp}/children")).ok()?;
            let pid: i32 = children.split_whitespace().next()?.parse().ok()?;
            (cmdline(pid)? == ready).then_some(pid)
        })
        .expect("the container's first process did not start");
        c
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if self.pid > 0 {
            let _ = kill(Pid::from_raw(self.pid), Signal::SIGKILL);
        }
        let _ = self.launch.wait();
    }
}

fn cmdline(pid: i32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/cmdline")).ok()
}

/// Host pids of the processes whose argv is exactly `argv`.
fn processes(argv: &[&str]) -> Vec<i32> {
    let wanted: String = argv.iter().map(|a| format!("{a}\0")).collect();
    std::fs::read_dir("/proc")
        .expect("/proc")
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| cmdline(*pid).as_deref() == Some(wanted.as_str()))
        .collect()
}

fn wait_for<T>(mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An exec into the process that has `pid` now.
fn spec(pid: i32, script: &str) -> ExecSpec {
    let target = ProcessId::of(pid).unwrap_or(ProcessId { pid, start_time: 1 });
    spec_for(target, script)
}

fn spec_for(target: ProcessId, script: &str) -> ExecSpec {
    ExecSpec {
        target,
        process: sh_process(script),
        cgroup_procs: Vec::new(),
        terminal: false,
        window: None,
    }
}

fn exec_command(dir: &Path, spec: &ExecSpec) -> Command {
    ucr_with_spec(dir, "nsexec", spec)
}

fn exec(dir: &Path, spec: &ExecSpec) -> Run {
    capture(&mut exec_command(dir, spec))
}

/// [`exec`] as the daemon runs it, with a report descriptor: the run, and what `ucr nsexec`
/// reported on it (nothing once the command has started).
fn exec_reporting(dir: &Path, spec: &ExecSpec) -> (Run, Option<Report>) {
    let (read_end, write_end) = nix::unistd::pipe().expect("pipe");
    let mut cmd = exec_command(dir, spec);
    cmd.arg("--report-fd").arg("3");
    ucr::sys::spawn::pass_fd(&mut cmd, &write_end);
    let run = capture(&mut cmd);
    drop(write_end);
    let text = std::io::read_to_string(std::fs::File::from(read_end)).expect("read report");
    let report = text
        .lines()
        .next()
        .map(|l| serde_json::from_str(l).expect("a JSON report line"));
    (run, report)
}

/// Kills the container and checks nothing of it (or of the execs) is left.
fn stop(mut c: Container, leftovers: &[&[&str]]) {
    let pid = c.pid;
    let rootfs = c.rootfs.clone();
    kill(Pid::from_raw(pid), Signal::SIGKILL).expect("kill the container");
    let status = c.launch.wait().expect("wait for ucr launch");
    assert_eq!(status.code(), Some(128 + 9), "ucr launch reports the kill");
    c.pid = 0;
    assert!(
        cmdline(pid).is_none(),
        "container process {pid} still there"
    );
    for argv in leftovers {
        assert_eq!(processes(argv), Vec::<i32>::new(), "{argv:?} left running");
    }
    assert_eq!(mounts_under(&rootfs), 0, "no mount outlives the container");
}

#[tokio::test]
async fn exec_runs_a_command_inside_the_running_container() {
    require_root!(
        "exec_runs_a_command_inside_the_running_container",
        "namespaces"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let rootfs = busybox_rootfs(d).await;
    let c = Container::start(d, &rootfs);
    let pid = c.pid;

    // Its hostname, its PID namespace (PID 1 is the container's sleep), every namespace
    // of its first process.
    let r = exec(
        d,
        &spec(
            pid,
            "hostname; tr '\\0' ' ' < /proc/1/cmdline; echo; \
             for n in ipc uts net pid mnt; do readlink /proc/self/ns/$n; done",
        ),
    );
    assert_eq!(r.code, Some(0), "stderr: {}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines[0], HOSTNAME);
    assert_eq!(lines[1], "sleep 60 ");
    for (i, n) in ["ipc", "uts", "net", "pid", "mnt"].iter().enumerate() {
        let host_view = std::fs::read_link(format!("/proc/{pid}/ns/{n}")).expect("ns link");
        assert_eq!(
            lines[2 + i],
            host_view.to_str().expect("utf-8"),
            "{n} namespace"
        );
    }

    // Its rootfs, not the host's.
    let marker = format!("ucr-exec-host-marker-{}", std::process::id());
    std::fs::write(Path::new("/tmp").join(&marker), b"x").expect("host marker");
    let r = exec(
        d,
        &spec(
            pid,
            &format!("test -x /bin/busybox && echo busybox; test -e /tmp/{marker} || echo no-host"),
        ),
    );
    std::fs::remove_file(Path::new("/tmp").join(&marker)).ok();
    assert_eq!(r.stdout, "busybox\nno-host\n", "{}", r.stderr);

    // Root gets Docker's default capabilities; a user, groups, no capabilities and
    // no_new_privs as asked.
    let r = exec(d, &spec(pid, "id -u; grep CapEff /proc/self/status"));
    assert_eq!(r.stdout, "0\nCapEff:\t00000000a80425fb\n", "{}", r.stderr);
    let mut s = spec(
        pid,
        "id -u; id -g; id -G; grep -E 'CapEff|NoNewPrivs' /proc/self/status",
    );
    s.process.uid = 1000;
    s.process.gid = 1000;
    s.process.additional_gids = vec![10, 1000];
    s.process.no_new_privs = true;
    let r = exec(d, &s);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(
        r.stdout,
        "1000\n1000\n1000 10\nCapEff:\t0000000000000000\nNoNewPrivs:\t1\n"
    );

    // Environment and working directory.
    let mut s = spec(pid, "echo $GREETING; pwd");
    s.process.env.push("GREETING=hello".into());
    s.process.cwd = "/etc".into();
    let r = exec(d, &s);
    assert_eq!(r.stdout, "hello\n/etc\n", "{}", r.stderr);

    // Exit codes and signals come back.
    assert_eq!(exec(d, &spec(pid, "exit 5")).code, Some(5));
    assert_eq!(exec(d, &spec(pid, "kill -9 $$")).code, Some(128 + 9));
    // No standard signal ignored, whatever ucr nsexec inherited (Rust ignores SIGPIPE).
    // Run without a shell: busybox sh ignores SIGQUIT for its commands. Real-time
    // signals are out of reach (glibc keeps two for itself).
    let mut s = spec(pid, "");
    s.process.args = vec!["grep".into(), "SigIgn".into(), "/proc/self/status".into()];
    let r = exec(d, &s);
    let ignored = r.stdout.trim().trim_start_matches("SigIgn:").trim();
    let ignored = u64::from_str_radix(ignored, 16).expect("SigIgn mask");
    assert_eq!(ignored & 0x7fff_ffff, 0, "ignored signals: {ignored:#x}");

    // A missing program, or a working directory: 127 and why, and on the report
    // descriptor a failure of the right kind (the daemon's error, not an exit code).
    let mut s = spec(pid, "");
    s.process.args = vec!["no-such-program".into()];
    let (r, report) = exec_reporting(d, &s);
    assert_eq!(r.code, Some(127));
    let why = r#"exec: "no-such-program": executable file not found in $PATH"#;
    assert!(r.stderr.contains(why), "{}", r.stderr);
    let report = report.expect("a report");
    assert_eq!(report.kind, ErrorKind::NotFound);
    assert!(report.message.contains(why), "{report:?}");
    let mut s = spec(pid, "true");
    s.process.cwd = "/no/such/dir".into();
    let (r, report) = exec_reporting(d, &s);
    assert_eq!(r.code, Some(127));
    assert!(r.stderr.contains("chdir /no/such/dir"), "{}", r.stderr);
    assert_eq!(report.map(|r| r.kind), Some(ErrorKind::NotFound));
    assert!(
        !rootfs.join("no").exists(),
        "exec creates no working directory"
    );
    // A command that exits 255 or 127 by itself is just that: nothing is reported.
    for code in [255, 127] {
        let (r, report) = exec_reporting(d, &spec(pid, &format!("exit {code}")));
        assert_eq!((r.code, report), (Some(code), None));
    }

    // The hook for the cgroups isolators: the command's process writes "0" (itself) into
    // each `cgroup.procs` it is given before it execs; a plain file stands in for one.
    let fake = d.join("cgroup.procs");
    std::fs::write(&fake, "").expect("fake cgroup.procs");
    let mut s = spec(pid, "true");
    s.cgroup_procs = vec![fake.clone()];
    assert_eq!(exec(d, &s).code, Some(0));
    assert_eq!(std::fs::read_to_string(&fake).expect("read"), "0");

    // The recorded pid now names another process (a host `sleep`, standing in for a pid
    // the kernel reused after the container ended): refused, nothing runs there.
    let container = ProcessId::of(pid).expect("the container's process");
    let mut host = Command::new("sleep").arg("60").spawn().expect("host sleep");
    let reused = ProcessId {
        pid: host.id() as i32,
        start_time: container.start_time,
    };
    let marker = std::env::temp_dir().join(format!("ucr-exec-reused-{}", std::process::id()));
    let (r, report) = exec_reporting(d, &spec_for(reused, &format!("touch {}", marker.display())));
    assert_eq!(r.code, Some(255), "{}", r.stderr);
    let report = report.expect("a report");
    assert_eq!(report.kind, ErrorKind::FailedPrecondition, "{report:?}");
    assert!(
        report.message.contains("the container is not running"),
        "{report:?}"
    );
    assert!(
        !marker.exists(),
        "the command ran in the host process's namespaces"
    );
    host.kill().expect("kill host sleep");
    host.wait().expect("wait");

    stop(c, &[]);

    // A container that is not running (any more): 255, said plainly.
    for gone in [
        container,
        ProcessId {
            pid: i32::MAX,
            start_time: 1,
        },
        ProcessId {
            pid: -1,
            start_time: 1,
        },
    ] {
        let r = exec(d, &spec_for(gone, "true"));
        assert_eq!(r.code, Some(255), "{gone:?}");
        assert!(
            r.stderr.contains(&format!(
                "the container is not running: its process {} (started at tick {}) has ended",
                gone.pid, gone.start_time
            )),
            "{}",
            r.stderr
        );
    }
}

#[tokio::test]
async fn exec_forwards_signals_and_dies_with_ucr_exec() {
    require_root!("exec_forwards_signals_and_dies_with_ucr_exec", "namespaces");
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let rootfs = busybox_rootfs(d).await;
    let c = Container::start(d, &rootfs);

    // SIGTERM to `ucr nsexec` reaches the command, which decides what to do with it.
    let mut s = spec(
        c.pid,
        "trap 'echo got TERM; exit 3' TERM; echo ready; while true; do sleep 0.1; done",
    );
    s.process.env.push("X=1".into());
    let mut child = exec_command(d, &s)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("ucr nsexec");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("read");
    assert_eq!(line, "ready\n");
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).expect("SIGTERM");
    line.clear();
    out.read_line(&mut line).expect("read");
    assert_eq!(line, "got TERM\n");
    assert_eq!(child.wait().expect("wait").code(), Some(3));

    // A command that does not handle it dies of it, and ucr nsexec says so.
    let mut child = exec_command(d, &spec(c.pid, "exec sleep 976"))
        .spawn()
        .expect("ucr nsexec");
    wait_for(|| processes(&["sleep", "976"]).first().copied()).expect("sleep 976 started");
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).expect("SIGINT");
    assert_eq!(child.wait().expect("wait").code(), Some(128 + 2));
    assert_eq!(processes(&["sleep", "976"]), Vec::<i32>::new());

    // The daemon ends a timed-out ExecSync by SIGKILLing ucr nsexec: the command goes too,
    // as another user as well (the user switch resets the parent-death signal).
    let mut s = spec(c.pid, "exec sleep 977");
    s.process.uid = 1000;
    s.process.gid = 1000;
    let mut child = exec_command(d, &s).spawn().expect("ucr nsexec");
    wait_for(|| processes(&["sleep", "977"]).first().copied()).expect("sleep 977 started");
    child.kill().expect("SIGKILL ucr nsexec");
    child.wait().expect("wait");
    assert!(
        wait_for(|| processes(&["sleep", "977"]).is_empty().then_some(())).is_some(),
        "the command outlived ucr exec"
    );

    // One left running when the container stops dies with it.
    let mut child = exec_command(d, &spec(c.pid, "exec sleep 978"))
        .spawn()
        .expect("ucr nsexec");
    wait_for(|| processes(&["sleep", "978"]).first().copied()).expect("sleep 978 started");
    stop(c, &[&["sleep", "976"], &["sleep", "977"]]);
    assert_eq!(child.wait().expect("wait").code(), Some(128 + 9));
    assert_eq!(processes(&["sleep", "978"]), Vec::<i32>::new());
}

#[tokio::test]
async fn exec_enters_the_first_process_root_directory() {
    require_root!("exec_enters_the_first_process_root_directory", "namespaces");
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let rootfs = busybox_rootfs(d).await;
    // A first process that chroots further: joining the mount namespace alone would land
    // at the rootfs; ucr exec follows the process's own root (as `nsenter --root` does).
    let script = "mkdir -p /inner/bin && cp /bin/busybox /inner/bin/ && \
                  ln -s busybox /inner/bin/sh && ln -s busybox /inner/bin/sleep && \
                  touch /inner/inner-marker && exec chroot /inner /bin/sleep 61";
    let c = Container::start_with(d, &rootfs, &["sh", "-c", script], &["/bin/sleep", "61"]);
    let r = exec(
        d,
        &spec(
            c.pid,
            "test -e /inner-marker && echo inner; test -e /inner || echo chrooted",
        ),
    );
    assert_eq!(r.stdout, "inner\nchrooted\n", "{}", r.stderr);
    stop(c, &[]);
}
