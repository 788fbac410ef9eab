//! The one place core errors become gRPC statuses. The message is the whole error chain,
//! so a user sees "…: connection refused", not just the outermost context.

use tonic::{Code, Status};

use crate::error::{ErrorKind, Kind};

pub fn code(kind: ErrorKind) -> Code {
    match kind {
        ErrorKind::InvalidArgument => Code::InvalidArgument,
        ErrorKind::NotFound => Code::NotFound,
        ErrorKind::AlreadyExists => Code::AlreadyExists,
        ErrorKind::FailedPrecondition => Code::FailedPrecondition,
        ErrorKind::Unauthenticated => Code::Unauthenticated,
        ErrorKind::PermissionDenied => Code::PermissionDenied,
        ErrorKind::Unavailable => Code::Unavailable,
        ErrorKind::DeadlineExceeded => Code::DeadlineExceeded,
        ErrorKind::DataLoss => Code::DataLoss,
        ErrorKind::ResourceExhausted => Code::ResourceExhausted,
        ErrorKind::Unimplemented => Code::Unimplemented,
        ErrorKind::Internal => Code::Internal,
    }
}

pub fn from_error<E: Kind + std::error::Error>(err: E) -> Status {
    Status::new(code(err.kind()), chain(&err))
}

pub use crate::error::chain;

/// A request field that must not be empty.
pub fn required<'a>(value: &'a str, field: &str) -> Result<&'a str, Status> {
    if value.is_empty() {
        return Err(Status::invalid_argument(format!(
            "{field} must not be empty"
        )));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("pulling x")]
    struct Outer {
        #[source]
        source: std::io::Error,
    }
    impl Kind for Outer {
        fn kind(&self) -> ErrorKind {
            ErrorKind::Unavailable
        }
    }

    #[test]
    fn status_carries_code_and_whole_chain() {
        let s = from_error(Outer {
            source: std::io::Error::new(
                std::io::ErrorKind::ConnectionRefused,
                "connection refused",
            ),
        });
        assert_eq!(s.code(), Code::Unavailable);
        assert_eq!(s.message(), "pulling x: connection refused");
        assert_eq!(
            required("", "image.image").expect_err("empty").code(),
            Code::InvalidArgument
        );
    }
}
