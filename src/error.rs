//! The core's one error *kind*. Every module keeps its own `thiserror` enum whose variants
//! name the failed operation and carry the id or path; each enum says which kind it is.
//! The front doors map kinds to their transport's codes in exactly one place each
//! (`cri::status` for gRPC; the Mesos adapter will add one for HTTP).

/// What sort of failure happened, independent of transport. Serializable, for helper
/// processes that report a failure to the daemon (`ucr nsexec`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ErrorKind {
    /// The request itself is malformed (a bad reference, an empty name).
    InvalidArgument,
    /// The thing named does not exist (no such image, tag or platform).
    NotFound,
    AlreadyExists,
    /// The request is valid but the current state forbids it (image in use).
    FailedPrecondition,
    /// The registry refused our credentials (HTTP 401).
    Unauthenticated,
    /// The registry understood who we are and still said no (HTTP 403).
    PermissionDenied,
    /// Something we depend on is unreachable or dropped the connection; retrying may work.
    Unavailable,
    /// A transfer made no progress for longer than allowed.
    DeadlineExceeded,
    /// Content did not match its digest or size: corrupt data was refused.
    DataLoss,
    /// The disk or a quota is full.
    ResourceExhausted,
    /// The call is not implemented yet.
    Unimplemented,
    /// A bug or an unexpected local failure (I/O on our own state).
    Internal,
}

/// Implemented by every module's error enum.
pub trait Kind {
    fn kind(&self) -> ErrorKind;
}

/// `outer: inner: innermost`, skipping causes whose text the outer one already holds: a
/// user sees "…: connection refused", not just the outermost context. Every door and
/// helper process renders errors this way.
pub fn chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// Maps an I/O error raised on our own files to a kind: a full disk is worth telling apart.
pub fn io_kind(err: &std::io::Error) -> ErrorKind {
    match err.raw_os_error() {
        Some(libc::ENOSPC) | Some(libc::EDQUOT) => ErrorKind::ResourceExhausted,
        _ => ErrorKind::Internal,
    }
}
