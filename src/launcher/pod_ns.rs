//! A pod's namespaces inside a user namespace of its own (CRI `userns_options` mode POD,
//! Kubernetes `hostUsers: false`). The pod's network, IPC and UTS namespaces must belong
//! to its user namespace (so that the container's root, an unprivileged uid on the host,
//! is root in them: it can mount sysfs, open raw sockets, set sysctls), so they are made
//! from inside it. A multi-threaded process can neither make nor enter a user namespace,
//! so the daemon runs this helper, `ucr pod-ns`:
//!
//! 1. The helper makes a user namespace and reports `user`.
//! 2. The daemon writes its uid and gid mappings (`/proc/<pid>/{uid,gid}_map`, which
//!    only a process privileged in the parent namespace may) and says `go`.
//! 3. The helper makes the other namespaces inside it, sets the hostname, brings `lo` up,
//!    writes the sysctls, and reports `ready`.
//! 4. The daemon pins `/proc/<pid>/ns/{user,net,ipc,uts}` under the pod's directory and
//!    closes its end; the helper exits. The pins keep the namespaces.
//!
//! A failure on either side ends the helper (it reports `error <why>`), and the daemon
//! removes the pins it made.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde::{Deserialize, Serialize};

use crate::sys::netns::{self, PodNamespace, PodPins};
use crate::sys::userns::{self, Range};
use crate::sys::{process, signal, spawn};

/// What the helper makes, as the daemon passes it (JSON, one argument).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PodNsSpec {
    /// `net`, `ipc`, `uts` (the user namespace is always made).
    pub kinds: Vec<String>,
    pub hostname: Option<String>,
    pub sysctls: Vec<(PathBuf, String)>,
    #[serde(skip)]
    pub uids: Vec<Range>,
    #[serde(skip)]
    pub gids: Vec<Range>,
}

fn kind_of(name: &str) -> Option<PodNamespace> {
    PodNamespace::ALL
        .into_iter()
        .find(|k| k.proc_name() == name && *k != PodNamespace::User)
}

/// The daemon's side: runs `binary pod-ns`, maps its user namespace, pins what it made.
/// Blocking.
pub fn create(binary: &Path, spec: &PodNsSpec, pins: &PodPins) -> std::io::Result<()> {
    let (report_r, report_w) = process::cloexec_pipe()?;
    let (go_r, go_w) = process::cloexec_pipe()?;
    let json = serde_json::to_string(spec).map_err(std::io::Error::other)?;
    let mut cmd = std::process::Command::new(binary);
    cmd.arg("pod-ns")
        .arg("--spec")
        .arg(json)
        .arg("--report-fd")
        .arg(spawn::PASSED_FD.to_string())
        .arg("--go-fd")
        .arg((spawn::PASSED_FD + 1).to_string())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    spawn::pass_fds(&mut cmd, &[&report_w, &go_r]);
    let mut child = cmd.spawn()?;
    drop((report_w, go_r));
    let pid = child.id() as i32;
    let mut report = BufReader::new(std::fs::File::from(report_r));
    let mut go = std::fs::File::from(go_w);
    let result = (|| {
        expect(&mut report, "user")?;
        userns::write_maps(pid, &spec.uids, &spec.gids)?;
        go.write_all(b"g")?;
        expect(&mut report, "ready")?;
        let mut made = Vec::new();
        let kinds =
            std::iter::once(PodNamespace::User).chain(spec.kinds.iter().filter_map(|k| kind_of(k)));
        for kind in kinds {
            let source = PathBuf::from(format!("/proc/{pid}/ns/{}", kind.proc_name()));
            if let Err(e) = netns::pin(&source, pins.get(kind)) {
                for p in made {
                    let _ = netns::unpin(p);
                }
                return Err(e);
            }
            made.push(pins.get(kind));
        }
        Ok(())
    })();
    // Closing our end lets the helper exit (it had nothing more to do, or we failed).
    drop(go);
    let _ = child.wait();
    result
}

/// Reads the helper's next report line: `want`, or its error.
fn expect(report: &mut impl BufRead, want: &str) -> std::io::Result<()> {
    let mut line = String::new();
    report.read_line(&mut line)?;
    let line = line.trim_end();
    if line == want {
        return Ok(());
    }
    Err(std::io::Error::other(match line.strip_prefix("error ") {
        Some(why) => format!("making the pod's user namespace: {why}"),
        None if line.is_empty() => "the pod namespace helper ended without a report".into(),
        None => format!("the pod namespace helper said {line:?}"),
    }))
}

/// The helper: `ucr pod-ns --spec JSON --report-fd N --go-fd M`.
pub fn main(spec: &str, report_fd: i32, go_fd: i32) -> ExitCode {
    let (Ok(report), Ok(go)) = (
        signal::take_inherited_fd(report_fd),
        signal::take_inherited_fd(go_fd),
    ) else {
        return ExitCode::FAILURE;
    };
    let mut report = std::fs::File::from(report);
    let mut go = std::fs::File::from(go);
    match run(spec, &mut report, &mut go) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(report, "error {}", e.to_string().replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}

fn run(spec: &str, report: &mut impl Write, go: &mut impl Read) -> std::io::Result<()> {
    let spec: PodNsSpec = serde_json::from_str(spec).map_err(std::io::Error::other)?;
    let kinds: BTreeSet<PodNamespace> = spec.kinds.iter().filter_map(|k| kind_of(k)).collect();
    userns::unshare().map_err(|e| std::io::Error::new(e.kind(), format!("unshare user: {e}")))?;
    writeln!(report, "user")?;
    let mut byte = [0u8; 1];
    if go.read(&mut byte)? != 1 {
        return Err(std::io::Error::other(
            "the daemon did not map the user namespace",
        ));
    }
    netns::enter_new(&kinds, spec.hostname.as_deref(), &spec.sysctls)?;
    writeln!(report, "ready")?;
    // Held until the daemon has pinned the namespaces and closed its end.
    let _ = go.read(&mut byte);
    Ok(())
}
