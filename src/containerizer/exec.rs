//! ExecSync: a command in a running container's namespaces, through `ucr nsexec` (a
//! single-threaded helper that can setns into the mount namespace, which this
//! multi-threaded daemon cannot).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncReadExt;

use super::error::{io, ContainerizerError};
use super::types::{ContainerState, ExecOutput};
use super::{new_id, Containerizer};
use crate::launcher::exec::{ExecSpec, Report};
use crate::launcher::Process;
use crate::monitor::MonitorConfig;

/// Output kept per stream; more is dropped (a runaway command must not fill our memory).
const MAX_OUTPUT: usize = 16 << 20;
/// After the command exits, how long to keep reading what it already wrote. A child it
/// left running may hold the pipes open forever; we do not wait for that.
const DRAIN: Duration = Duration::from_millis(200);

/// What an exec runs, for a door whose rules say more than an argv.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecCommand {
    pub argv: Vec<String>,
    /// The program, when it is not `argv[0]` (Mesos's `shell=false` with a value).
    pub executable: Option<String>,
    /// Set over the container's environment (Mesos's `CommandInfo.environment` for a
    /// DEBUG container, which inherits its parent's).
    pub env: Vec<(String, String)>,
    /// With a terminal: its size before the command starts.
    pub window: Option<super::session::TermSize>,
    /// A user (name or uid, `user:group` too) resolved in the container's own
    /// `/etc/passwd` and `/etc/group` (Mesos's `CommandInfo.user`); `None`: the
    /// container's user.
    pub user: Option<String>,
}

impl Containerizer {
    /// Runs `cmd` in the container and returns its output and exit code. `timeout`
    /// seconds (0 or less: none; clamped to a year) bounds the wait; when it passes the
    /// command is killed and the call fails with DeadlineExceeded. A command that could
    /// not be started (no such program, the container's process gone) is an error of
    /// its own kind, never an exit code: a command may exit 127 or 255 too.
    pub async fn exec_sync(
        self: &Arc<Self>,
        id: &str,
        cmd: &[String],
        timeout: i64,
    ) -> Result<ExecOutput, ContainerizerError> {
        let command = ExecCommand {
            argv: cmd.to_vec(),
            ..Default::default()
        };
        let (id, file) = self.write_exec_spec(id, &command, false).await?;
        let result = self.run_exec(&file, super::timeout(timeout)).await;
        let _ = std::fs::remove_file(&file);
        match result {
            Err(Ran::TimedOut) => Err(ContainerizerError::ExecTimeout {
                id,
                seconds: timeout,
            }),
            Err(Ran::NotStarted(report)) => Err(ContainerizerError::Exec {
                id,
                kind: report.kind,
                message: report.message,
            }),
            Err(Ran::Failed(e)) => Err(e),
            Ok(output) => Ok(output),
        }
    }

    /// Checks the container runs and writes the spec `ucr nsexec` runs `cmd` from (the
    /// container's own process with this command); returns the container's id and the
    /// file. The caller removes the file once `ucr nsexec` is done with it.
    pub(super) async fn write_exec_spec(
        self: &Arc<Self>,
        id: &str,
        cmd: &ExecCommand,
        terminal: bool,
    ) -> Result<(String, std::path::PathBuf), ContainerizerError> {
        let c = self.container_status(id).await?;
        let (ContainerState::Running, Some(process)) = (c.state, c.process) else {
            return Err(ContainerizerError::BadState {
                id: c.id,
                state: c.state,
                op: "exec in it",
            });
        };
        // Checked here for a clear answer, and again by `ucr nsexec` around opening the
        // namespaces: a pid alone may name another process by now.
        if !process.is_running() {
            return Err(ContainerizerError::ProcessGone {
                id: c.id,
                pid: process.pid,
            });
        }
        let bundle = self.paths.bundle(&c.id);
        let launch = MonitorConfig::load(&bundle)
            .map_err(|e| ContainerizerError::Start {
                id: c.id.clone(),
                message: crate::error::chain(&e),
            })?
            .spec;
        // The container's own process (user, env, cwd, capabilities…) with the request's
        // argv, as containerd builds `runc exec`'s process from the container's spec.
        let mut env = launch.process.env.clone();
        for (key, value) in &cmd.env {
            env.retain(|e| e.split('=').next() != Some(key.as_str()));
            env.push(format!("{key}={value}"));
        }
        let mut identity = launch.process.clone();
        if let Some(user) = &cmd.user {
            let resolved = crate::launcher::user::resolve(&launch.rootfs, user, &[], false)
                .map_err(|e| ContainerizerError::Exec {
                    id: c.id.clone(),
                    kind: crate::error::Kind::kind(&e),
                    message: e.to_string(),
                })?;
            identity.uid = resolved.uid;
            identity.gid = resolved.gid;
            identity.additional_gids = resolved.additional_gids;
            // The user's home, unless the door set HOME itself.
            if !cmd.env.iter().any(|(k, _)| k == "HOME") {
                env.retain(|e| !e.starts_with("HOME="));
                env.push(format!("HOME={}", resolved.home));
            }
        }
        let spec = ExecSpec {
            terminal,
            window: cmd
                .window
                .filter(|_| terminal)
                .map(|w| crate::launcher::exec::TerminalSize {
                    rows: w.height,
                    cols: w.width,
                }),
            target: process,
            process: Process {
                args: cmd.argv.clone(),
                executable: cmd.executable.clone(),
                env,
                ..identity
            },
            // The command joins the container's cgroups: its limits are the container's,
            // and stopping the container ends it too.
            cgroup_procs: launch
                .cgroups
                .iter()
                .map(|d| d.join("cgroup.procs"))
                .collect(),
        };
        let file = bundle.join(format!("exec-{}.json", &new_id()[..16]));
        // 0600: it holds the container's environment (see `perm`).
        crate::perm::write_private(&file, &serde_json::to_vec(&spec).unwrap_or_default())
            .map_err(io("write exec spec", &file))?;
        Ok((c.id, file))
    }

    async fn run_exec(
        &self,
        spec: &std::path::Path,
        timeout: Option<Duration>,
    ) -> Result<ExecOutput, Ran> {
        let failed = |e| Ran::Failed(io("start ucr nsexec", &self.binary)(e));
        let (report_r, report_w) = crate::sys::process::cloexec_pipe().map_err(failed)?;
        let mut cmd = std::process::Command::new(&self.binary);
        cmd.arg("nsexec")
            .arg("--spec")
            .arg(spec)
            .arg("--report-fd")
            .arg(crate::sys::spawn::PASSED_FD.to_string())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        crate::sys::spawn::pass_fd(&mut cmd, &report_w);
        let mut child = tokio::process::Command::from(cmd)
            .kill_on_drop(true)
            .spawn()
            .map_err(failed)?;
        drop(report_w);
        // Read as it comes: EOF once `ucr nsexec` and the command's process before its
        // exec (both hold the descriptor, close-on-exec) are done with it.
        let report = tokio::task::spawn_blocking(move || {
            std::io::read_to_string(std::fs::File::from(report_r)).unwrap_or_default()
        });
        let out = Arc::new(Mutex::new(Output::default()));
        let err = Arc::new(Mutex::new(Output::default()));
        let readers = [
            tokio::spawn(collect(child.stdout.take(), out.clone())),
            tokio::spawn(collect(child.stderr.take(), err.clone())),
        ];
        let status = match timeout {
            Some(limit) => match tokio::time::timeout(limit, child.wait()).await {
                Ok(s) => s,
                Err(_) => {
                    // Ask `ucr nsexec` to kill and reap the command (see
                    // launcher::exec::KILL_COMMAND); force it if it does not finish.
                    if let Some(pid) = child.id() {
                        crate::sys::kill::signal(pid as i32, libc::SIGALRM);
                    }
                    if tokio::time::timeout(Duration::from_secs(2), child.wait())
                        .await
                        .is_err()
                    {
                        let _ = child.kill().await;
                    }
                    for r in readers {
                        r.abort();
                    }
                    return Err(Ran::TimedOut);
                }
            },
            None => child.wait().await,
        }
        .map_err(|e| Ran::Failed(io("wait for ucr nsexec", &self.binary)(e)))?;
        if let Ok(Ok(text)) = tokio::time::timeout(DRAIN, report).await {
            if let Some(report) = super::exec_session::parse_report(&text) {
                for r in readers {
                    r.abort();
                }
                return Err(Ran::NotStarted(report));
            }
        }
        for r in readers {
            if tokio::time::timeout(DRAIN, r).await.is_err() {
                tracing::debug!("exec left a process holding its output open; not waiting for it");
            }
        }
        let take = |b: &Arc<Mutex<Output>>| {
            std::mem::take(&mut *b.lock().unwrap_or_else(|p| p.into_inner()))
        };
        let (stdout, mut stderr) = (take(&out), take(&err));
        // Kept within kubelet's 16 MiB per stream; what was dropped is said where the
        // reader of the output will see it, and in our log.
        for (name, dropped) in [("stdout", stdout.dropped), ("stderr", stderr.dropped)] {
            if dropped > 0 {
                tracing::warn!(
                    stream = name,
                    dropped,
                    "ExecSync output over 16 MiB truncated"
                );
                stderr.bytes.extend_from_slice(
                    format!("\nucr: {name} truncated at 16 MiB: {dropped} bytes dropped\n")
                        .as_bytes(),
                );
            }
        }
        Ok(ExecOutput {
            stdout: stdout.bytes,
            stderr: stderr.bytes,
            // A signal has no code: 128 + signal, as the shell reports it.
            exit_code: status.code().unwrap_or_else(|| {
                128 + std::os::unix::process::ExitStatusExt::signal(&status).unwrap_or(0)
            }),
        })
    }
}

/// How a `ucr nsexec` run went wrong.
enum Ran {
    TimedOut,
    /// The command never ran; `ucr nsexec` said why.
    NotStarted(Report),
    Failed(ContainerizerError),
}

/// One stream's output, and how much of it did not fit.
#[derive(Default)]
struct Output {
    bytes: Vec<u8>,
    dropped: u64,
}

async fn collect(pipe: Option<impl tokio::io::AsyncRead + Unpin>, into: Arc<Mutex<Output>>) {
    let Some(mut pipe) = pipe else { return };
    let mut buf = vec![0u8; 64 * 1024];
    while let Ok(n) = pipe.read(&mut buf).await {
        if n == 0 {
            break;
        }
        let mut v = into.lock().unwrap_or_else(|p| p.into_inner());
        let room = MAX_OUTPUT.saturating_sub(v.bytes.len());
        v.bytes.extend_from_slice(&buf[..n.min(room)]);
        v.dropped += n.saturating_sub(room) as u64;
    }
}
