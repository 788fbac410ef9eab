//! How `linux/seccomp` fails: each error names the profile (its file, or
//! `RuntimeDefault`) and what is wrong with it.

use std::path::PathBuf;

use super::compile::CompileError;
use super::profile::ProfileError;
use crate::error::{ErrorKind, Kind};

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("seccomp profile path is empty")]
    EmptyPath,
    #[error("seccomp profile {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "seccomp profile {path:?} leads out of the profile root {root} (--seccomp-profile-root)"
    )]
    Escapes { path: PathBuf, root: PathBuf },
    #[error("seccomp profile {path}: larger than {limit} bytes")]
    TooLarge { path: PathBuf, limit: u64 },
    #[error("seccomp profile {path} is not a valid profile: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("seccomp profile {path}: {problem}")]
    Invalid {
        path: PathBuf,
        problem: ProfileError,
    },
    #[error("seccomp profile {name}: {source}")]
    Compile { name: String, source: CompileError },
    #[error("reading the kernel version for seccomp profiles: {0}")]
    Kernel(#[source] std::io::Error),
}

impl Kind for SeccompError {
    fn kind(&self) -> ErrorKind {
        match self {
            // Writing to a memfd failed, or the kernel's version is unreadable: ours.
            SeccompError::Compile {
                source: CompileError::Export(_),
                ..
            }
            | SeccompError::Kernel(_) => ErrorKind::Internal,
            // Everything else is the profile the request named.
            _ => ErrorKind::InvalidArgument,
        }
    }
}
