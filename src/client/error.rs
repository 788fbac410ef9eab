//! What can go wrong in a client subcommand, each naming the value at fault.

use crate::streaming::client::StreamClientError;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the daemon at {endpoint}: {detail}")]
    Connect { endpoint: String, detail: String },
    #[error("{call}: {message} ({code:?})")]
    Call {
        call: &'static str,
        code: tonic::Code,
        message: String,
    },
    #[error("no {what} matches {id:?}")]
    NotFound { what: &'static str, id: String },
    #[error("{what} id prefix {prefix:?} is ambiguous: it matches {}", .matches.join(", "))]
    Ambiguous {
        what: &'static str,
        prefix: String,
        matches: Vec<String>,
    },
    #[error("container {container} has no log file (its pod has no log directory)")]
    NoLog { container: String },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("writing {format}: {detail}")]
    Encode {
        format: &'static str,
        detail: String,
    },
    /// Some of several items failed (the others were done).
    #[error("{}", .0.join("\n"))]
    Several(Vec<String>),
    #[error("the terminal: {0}")]
    Terminal(std::io::Error),
    #[error("exec: {0}")]
    Stream(#[from] StreamClientError),
}

impl ClientError {
    /// A failed call, keeping the daemon's words.
    pub fn call(call: &'static str) -> impl FnOnce(tonic::Status) -> ClientError {
        move |s| ClientError::Call {
            call,
            code: s.code(),
            message: s.message().to_string(),
        }
    }
}
