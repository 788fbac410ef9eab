//! Running one plugin binary once: the CNI protocol's process half (environment in,
//! config on stdin, result or error on stdout, exit status).
//!
//! Each plugin runs in its own process group so a timeout can kill whatever it started
//! too (an IPAM plugin it delegated to, an `iptables` it is waiting on): a wedged plugin
//! must not wedge the pod's lifecycle, since kubelet retries RunPodSandbox after its own
//! timeout and would pile up stuck calls.

use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

use super::confdir::join_paths;
use super::error::{CniError, PluginCall};

/// PATH for plugins when the daemon has none (they run `iptables`, `ip`, `tc`, …).
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// How long to wait for a killed plugin to be reaped before giving up on it.
const REAP_GRACE: Duration = Duration::from_secs(5);

/// A CNI command (CNI_COMMAND).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Add,
    Del,
    Check,
    Version,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Add => "ADD",
            Op::Del => "DEL",
            Op::Check => "CHECK",
            Op::Version => "VERSION",
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The per-call environment besides CNI_COMMAND and CNI_PATH.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    pub op: Op,
    pub network: &'a str,
    pub container_id: &'a str,
    /// `""` when the namespace is gone (allowed for DEL by the spec).
    pub netns: &'a str,
    pub ifname: &'a str,
    /// CNI_ARGS, already joined (`args::cni_args`).
    pub args: &'a str,
}

/// The first `bin_dirs` entry holding an executable file named `kind` (libcni's
/// FindInPath order).
pub fn find_plugin(bin_dirs: &[PathBuf], kind: &str) -> Option<PathBuf> {
    bin_dirs.iter().map(|d| d.join(kind)).find(|p| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

/// Runs plugin `kind` for `call` with `stdin`; its stdout on success.
pub async fn run(
    bin_dirs: &[PathBuf],
    timeout: Duration,
    kind: &str,
    call: &Call<'_>,
    stdin: &[u8],
) -> Result<Vec<u8>, CniError> {
    let path = find_plugin(bin_dirs, kind).ok_or_else(|| CniError::PluginNotFound {
        op: call.op,
        network: call.network.to_owned(),
        plugin: kind.to_owned(),
        bin_dirs: join_paths(bin_dirs),
    })?;
    let mut cmd = command(&path, bin_dirs, call);
    let context = || {
        Box::new(PluginCall {
            op: call.op,
            network: call.network.to_owned(),
            container_id: call.container_id.to_owned(),
            plugin: kind.to_owned(),
            path: path.clone(),
        })
    };
    let mut child = spawn(&mut cmd)
        .await
        .map_err(|source| CniError::PluginSpawn {
            call: context(),
            source,
        })?;
    tracing::debug!(plugin = kind, op = %call.op, container = call.container_id, "CNI plugin started");
    let pgid = child.id();
    let done = tokio::time::timeout(timeout, communicate(&mut child, stdin)).await;
    let (status, stdout, stderr) = match done {
        Ok(Ok(done)) => done,
        Ok(Err(source)) => {
            kill_group(pgid, &mut child).await;
            return Err(CniError::PluginSpawn {
                call: context(),
                source,
            });
        }
        Err(_) => {
            kill_group(pgid, &mut child).await;
            return Err(CniError::PluginTimeout {
                call: context(),
                timeout,
            });
        }
    };
    if status.success() {
        if !stderr.is_empty() {
            let text = String::from_utf8_lossy(&stderr);
            tracing::debug!(plugin = kind, op = %call.op, "CNI plugin stderr: {}", text.trim_end());
        }
        return Ok(stdout);
    }
    let (code, message) = failure_message(status, &stdout, &stderr);
    Err(CniError::PluginFailed {
        call: context(),
        code,
        message,
    })
}

/// The plugin's environment: ours (plugins may rely on it, libcni passes it on) with
/// every CNI variable set for this call, so none leaks in from the daemon's own.
fn command(path: &Path, bin_dirs: &[PathBuf], call: &Call<'_>) -> Command {
    let mut cmd = Command::new(path);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .env("CNI_COMMAND", call.op.as_str())
        .env("CNI_PATH", join_paths(bin_dirs));
    if std::env::var_os("PATH").is_none() {
        cmd.env("PATH", DEFAULT_PATH);
    }
    crate::sys::spawn::die_with_spawner(&mut cmd);
    let vars = [
        ("CNI_CONTAINERID", call.container_id),
        ("CNI_NETNS", call.netns),
        ("CNI_IFNAME", call.ifname),
        ("CNI_ARGS", call.args),
    ];
    for (name, value) in vars {
        if call.op == Op::Version {
            cmd.env_remove(name);
        } else {
            cmd.env(name, value);
        }
    }
    cmd
}

/// Spawns, retrying briefly on ETXTBSY: a plugin binary just installed (or written by a
/// test) can still be open for writing in a process forked meanwhile.
async fn spawn(cmd: &mut Command) -> std::io::Result<Child> {
    let mut attempt = 0;
    loop {
        match cmd.spawn() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && attempt < 20 => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(10 * attempt)).await;
            }
            other => return other,
        }
    }
}

/// Feeds stdin and drains stdout and stderr together (a plugin that writes before it
/// reads must not deadlock on a full pipe), then reaps.
async fn communicate(
    child: &mut Child,
    input: &[u8],
) -> std::io::Result<(ExitStatus, Vec<u8>, Vec<u8>)> {
    let stdin = child.stdin.take();
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let write = async move {
        if let Some(mut pipe) = stdin {
            // A plugin may exit without reading its config (VERSION does): EPIPE is fine.
            let _ = pipe.write_all(input).await;
        }
    };
    let (_, out, err) = tokio::join!(write, drain(stdout), drain(stderr));
    let status = child.wait().await?;
    Ok((status, out?, err?))
}

async fn drain(pipe: Option<impl AsyncReadExt + Unpin>) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    if let Some(mut pipe) = pipe {
        pipe.read_to_end(&mut buf).await?;
    }
    Ok(buf)
}

/// Kills the plugin's whole process group and reaps the plugin.
async fn kill_group(pgid: Option<u32>, child: &mut Child) {
    if let Some(pgid) = pgid.and_then(|p| i32::try_from(p).ok()) {
        crate::sys::kill::signal(-pgid, libc::SIGKILL);
    }
    let _ = child.start_kill();
    if tokio::time::timeout(REAP_GRACE, child.wait())
        .await
        .is_err()
    {
        tracing::warn!("a killed CNI plugin (pid {pgid:?}) was not reaped");
    }
}

/// What a failed plugin said: the `msg` (and `details`) of the JSON error it printed on
/// stdout, as the spec asks plugins to; else its stderr; else its stdout; verbatim.
pub fn failure_message(status: ExitStatus, stdout: &[u8], stderr: &[u8]) -> (Option<u64>, String) {
    if let Ok(serde_json::Value::Object(err)) = serde_json::from_slice(stdout) {
        let code = err.get("code").and_then(|c| c.as_u64());
        let msg = err.get("msg").and_then(|m| m.as_str()).unwrap_or("");
        let details = err.get("details").and_then(|d| d.as_str()).unwrap_or("");
        let message = match (msg.is_empty(), details.is_empty()) {
            (false, false) => format!("{msg}: {details}"),
            (false, true) => msg.to_owned(),
            (true, false) => details.to_owned(),
            (true, true) => String::new(),
        };
        if !message.is_empty() {
            return (code, message);
        }
    }
    let text = [stderr, stdout]
        .iter()
        .map(|b| String::from_utf8_lossy(b).trim().to_owned())
        .find(|t| !t.is_empty());
    (
        None,
        text.unwrap_or_else(|| format!("{status} with no output")),
    )
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;

    use super::*;

    #[test]
    fn failure_messages_prefer_the_json_error_then_stderr() {
        let failed = ExitStatus::from_raw(1 << 8);
        let json = br#"{"code":7,"msg":"no \"eth0\"","details":"ENODEV"}"#;
        assert_eq!(
            failure_message(failed, json, b"noise"),
            (Some(7), r#"no "eth0": ENODEV"#.into())
        );
        assert_eq!(
            failure_message(failed, br#"{"msg":"only msg"}"#, b""),
            (None, "only msg".into())
        );
        assert_eq!(
            failure_message(failed, b"not json", b" oops \n"),
            (None, "oops".into())
        );
        assert_eq!(
            failure_message(failed, b"plain stdout\n", b""),
            (None, "plain stdout".into())
        );
        let (_, empty) = failure_message(failed, b"", b"");
        assert!(empty.contains("exit status: 1"), "{empty}");
    }

    #[test]
    fn plugins_are_found_in_the_first_dir_that_has_an_executable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::create_dir_all(&a).expect("mkdir");
        std::fs::create_dir_all(&b).expect("mkdir");
        std::fs::write(a.join("p"), "").expect("write");
        std::fs::write(b.join("p"), "").expect("write");
        std::fs::set_permissions(b.join("p"), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        let dirs = [a.clone(), b.clone()];
        assert_eq!(
            find_plugin(&dirs, "p"),
            Some(b.join("p")),
            "a's is not executable"
        );
        std::fs::set_permissions(a.join("p"), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        assert_eq!(find_plugin(&dirs, "p"), Some(a.join("p")));
        assert_eq!(find_plugin(&dirs, "q"), None);
    }
}
