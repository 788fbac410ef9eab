//! What the exec'd command's process does between fork and exec, in order. It runs in a
//! fork of a single-threaded process that has already entered the container (namespaces
//! and root), so ordinary Rust is safe here; on failure it reports the error through the
//! pipe and exits 127, as the launcher's first process does.
//!
//! The identity steps and the `PATH` lookup repeat the launcher's (`launcher/child.rs`),
//! which keeps them private; both should move to one shared module.

use std::ffi::CString;
use std::fs::File;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::{ExecError, ExecSpec};
use crate::launcher::spec::{DEFAULT_CAPABILITIES, DEFAULT_PATH};
use crate::sys::process::{self, BlockedSignals};

/// Entry point of the forked child; returns an exit code only when setup failed, after
/// writing why to `report` (the write end of the parent's CLOEXEC pipe). `parent` is the
/// parent's pid as the host sees it.
pub fn run(spec: &ExecSpec, signals: &BlockedSignals, parent: u32, report: OwnedFd) -> i32 {
    let err = match setup_and_exec(spec, signals, parent) {
        Err(e) => e,
        Ok(never) => match never {},
    };
    let _ = File::from(report).write_all(crate::cri::status::chain(&err).as_bytes());
    127
}

fn io<'a>(step: &'static str, path: &'a str) -> impl FnOnce(std::io::Error) -> ExecError + 'a {
    move |source| ExecError::Setup {
        step,
        path: path.to_string(),
        source,
    }
}

fn setup_and_exec(
    spec: &ExecSpec,
    signals: &BlockedSignals,
    parent: u32,
) -> Result<std::convert::Infallible, ExecError> {
    // The daemon enforces ExecSync timeouts by SIGKILLing `ucr exec`; the command must
    // not outlive it.
    die_with_parent(parent)?;
    // Until exec, this process is visible in the container's PID namespace while still
    // holding every capability; non-dumpable keeps container processes out of its
    // /proc entries (`exe` is the host's ucr binary). execve resets it.
    process::set_dumpable(false).map_err(io("set dumpable", ""))?;
    signals.restore().map_err(io("restore signal mask", ""))?;
    process::default_signal_actions().map_err(io("reset signal actions", ""))?;

    let cwd = if spec.cwd.is_empty() { "/" } else { &spec.cwd };
    let executable = find_executable(&spec.args, &spec.env)?;
    std::env::set_current_dir(cwd).map_err(io("chdir", cwd))?;
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
    // The user switch cleared the parent-death signal (the kernel does on any uid change).
    die_with_parent(parent)?;

    let cstr = |s: &str| {
        CString::new(s).map_err(|_| ExecError::Nul {
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
    let err = process::exec(&path, &argv, &env);
    Err(ExecError::Exec {
        program: executable.display().to_string(),
        source: err,
    })
}

/// Sets PR_SET_PDEATHSIG, then checks the parent did not die before that took effect.
/// The parent is outside the container's PID namespace, where `getppid` reads 0; any other
/// value (but the parent's own pid, when the container shares the host's PID namespace)
/// means this process was already re-parented.
fn die_with_parent(parent: u32) -> Result<(), ExecError> {
    process::kill_with_parent().map_err(io("set parent death signal", ""))?;
    let ppid = process::parent_pid().as_raw();
    if ppid != 0 && ppid as u32 != parent {
        return Err(ExecError::ParentGone);
    }
    Ok(())
}

/// `args[0]` as a path: as given when it holds a `/`, else the first executable file of
/// that name in the command's `PATH` (runc's message when there is none).
fn find_executable(args: &[String], env: &[String]) -> Result<PathBuf, ExecError> {
    let program = args.first().ok_or(ExecError::NoCommand)?;
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
        .ok_or_else(|| ExecError::NotInPath {
            program: program.clone(),
        })
}
