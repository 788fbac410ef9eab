//! What the container's first process does between clone and exec, in order. It runs in
//! a fresh child of a single-threaded process (see `sys::process::clone_process`), so
//! ordinary Rust is safe here; on failure it reports the error through the pipe and exits
//! 127, never returning into the launcher's code.

use std::ffi::CString;
use std::os::fd::{OwnedFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::sched::CloneFlags;

use super::spec::{LaunchSpec, NamespaceKind, DEFAULT_CAPABILITIES, DEFAULT_PATH};
use super::{rootfs, LaunchError};
use crate::sys::{ns, process};

pub struct Stdio {
    pub stdin: RawFd,
    pub stdout: RawFd,
    pub stderr: RawFd,
}

/// Entry point of the cloned child; returns an exit code only when setup failed, after
/// writing why to `report` (the write end of the launcher's CLOEXEC pipe).
pub fn run(spec: &LaunchSpec, stdio: &Stdio, report: &OwnedFd) -> isize {
    let err = match setup_and_exec(spec, stdio) {
        Err(e) => e,
        Ok(never) => match never {},
    };
    let _ = nix::unistd::write(report, crate::cri::status::chain(&err).as_bytes());
    127
}

fn io<'a>(step: &'static str, path: &'a str) -> impl FnOnce(std::io::Error) -> LaunchError + 'a {
    move |source| LaunchError::Setup {
        step,
        path: path.to_string(),
        source,
    }
}

fn setup_and_exec(
    spec: &LaunchSpec,
    stdio: &Stdio,
) -> Result<std::convert::Infallible, LaunchError> {
    for j in &spec.join {
        let kind = match j.kind {
            NamespaceKind::Net => CloneFlags::CLONE_NEWNET,
            NamespaceKind::Ipc => CloneFlags::CLONE_NEWIPC,
            NamespaceKind::Uts => CloneFlags::CLONE_NEWUTS,
            NamespaceKind::Pid => CloneFlags::CLONE_NEWPID,
        };
        ns::join(&j.path, kind).map_err(io("join namespace", &j.path.display().to_string()))?;
    }
    rootfs::prepare(spec)?;
    // The working directory is created in the image before the pivot (as root, like
    // containerd), through the same symlink-refusing walk as mount targets.
    rootfs::target(&spec.rootfs, &spec.cwd, false)?;
    ns::pivot_into(&spec.rootfs).map_err(io("pivot_root", &spec.rootfs.display().to_string()))?;
    rootfs::finish(spec)?;
    if let Some(h) = &spec.hostname {
        ns::set_hostname(h).map_err(io("set hostname", h))?;
    }
    if let Some(adj) = spec.oom_score_adj {
        // Lowering it needs CAP_SYS_RESOURCE, which this host may withhold: not fatal.
        let _ = process::set_oom_score_adj(adj);
    }
    process::install_stdio(stdio.stdin, stdio.stdout, stdio.stderr)
        .map_err(io("install stdio", ""))?;
    let executable = find_executable(&spec.args, &spec.env)?;
    std::env::set_current_dir(&spec.cwd).map_err(io("chdir", &spec.cwd))?;
    let caps: Vec<String> = match &spec.capabilities {
        Some(c) => c.clone(),
        None => DEFAULT_CAPABILITIES.iter().map(|s| s.to_string()).collect(),
    };
    process::limit_bounding_set(&caps).map_err(io("limit capability bounding set", ""))?;
    process::switch_user(spec.uid, spec.gid, &spec.additional_gids)
        .map_err(io("switch user", ""))?;
    process::set_capabilities(&caps).map_err(io("set capabilities", ""))?;
    if spec.no_new_privs {
        process::set_no_new_privs().map_err(io("set no_new_privs", ""))?;
    }
    let cstr = |s: &str| {
        CString::new(s).map_err(|_| LaunchError::Nul {
            value: s.to_string(),
        })
    };
    let argv = spec
        .args
        .iter()
        .map(|a| cstr(a))
        .collect::<Result<Vec<_>, _>>()?;
    let env = spec
        .env
        .iter()
        .map(|e| cstr(e))
        .collect::<Result<Vec<_>, _>>()?;
    let path = cstr(&executable.display().to_string())?;
    // Rust's runtime ignores SIGPIPE, and an ignored signal stays ignored across exec:
    // give the container the default dispositions every process expects.
    process::default_signal_actions().map_err(io("reset signal dispositions", ""))?;
    let err = process::exec(&path, &argv, &env);
    Err(LaunchError::Exec {
        program: executable.display().to_string(),
        source: err,
    })
}

/// `args[0]` as a path: as given when it holds a `/`, else the first executable file of
/// that name in the container's `PATH` (runc's message when there is none).
fn find_executable(args: &[String], env: &[String]) -> Result<PathBuf, LaunchError> {
    let program = args.first().ok_or(LaunchError::NoCommand)?;
    if program.contains('/') {
        return Ok(PathBuf::from(program));
    }
    let path = env
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    path.split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(program))
        .find(|p| {
            std::fs::metadata(p)
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
        .ok_or_else(|| LaunchError::NotInPath {
            program: program.clone(),
        })
}
