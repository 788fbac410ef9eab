//! What the container's first process (`child`) and `ucr nsexec`'s command (`exec/child`)
//! share between clone or fork and exec: how one of their steps fails, and the exec that
//! ends them. The identity steps are in `identity`, the `PATH` lookup in `path`.

use std::convert::Infallible;
use std::ffi::CString;
use std::fmt::Display;
use std::path::Path;

use crate::error::{ErrorKind, Kind};
use crate::sys::process;

/// A failed step between clone or fork and exec, or the exec itself; the child reports it
/// to its parent through the error pipe.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("{step} {path}: {source}")]
    Step {
        step: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("no command to run")]
    NoCommand,
    #[error("exec: {program:?}: executable file not found in $PATH")]
    NotInPath { program: String },
    #[error("exec {program}: {source}")]
    Exec {
        program: String,
        source: std::io::Error,
    },
    #[error("{value:?} contains a NUL byte")]
    Nul { value: String },
}

impl Kind for SetupError {
    fn kind(&self) -> ErrorKind {
        match self {
            SetupError::NoCommand | SetupError::Nul { .. } => ErrorKind::InvalidArgument,
            SetupError::NotInPath { .. } => ErrorKind::NotFound,
            // A program or working directory named by path that is not there, or a file
            // that is not executable: what the caller asked for, not our failure.
            SetupError::Step { source, .. } | SetupError::Exec { source, .. } => {
                match source.raw_os_error() {
                    Some(libc::ENOENT) | Some(libc::ENOTDIR) => ErrorKind::NotFound,
                    Some(libc::EACCES) | Some(libc::ENOEXEC) => ErrorKind::FailedPrecondition,
                    _ => ErrorKind::Internal,
                }
            }
        }
    }
}

/// The failure of `step` on `path` (empty when the step has none), for `map_err`.
pub(crate) fn step<'a>(
    step: &'static str,
    path: impl Display + 'a,
) -> impl FnOnce(std::io::Error) -> SetupError + 'a {
    move |source| SetupError::Step {
        step,
        path: path.to_string(),
        source,
    }
}

/// Replaces this process with `executable`, given `args` as its argv and `env` as its
/// environment, once `last` (a seccomp filter `identity::apply` left) is loaded: after
/// everything is allocated, so that execve is the only call made under it. Returns only
/// on failure.
pub(crate) fn exec(
    executable: &Path,
    args: &[String],
    env: &[String],
    last: super::identity::BeforeExec,
) -> Result<Infallible, SetupError> {
    let cstr = |s: &str| {
        CString::new(s).map_err(|_| SetupError::Nul {
            value: s.to_string(),
        })
    };
    let argv = args
        .iter()
        .map(|a| cstr(a))
        .collect::<Result<Vec<_>, _>>()?;
    let env = env.iter().map(|e| cstr(e)).collect::<Result<Vec<_>, _>>()?;
    let program = executable.display().to_string();
    let path = cstr(&program)?;
    last.load()?;
    Err(SetupError::Exec {
        source: process::exec(&path, &argv, &env),
        program,
    })
}
