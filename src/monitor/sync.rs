//! The sync descriptor: how the daemon learns, in one line, whether the container started.
//!
//! ```text
//! ok <container pid>\n          the container's process has exec'd
//! error <message>\n             nothing runs; <message> is a single line
//! ```
//!
//! The monitor writes exactly one line, then closes its end. EOF with no line means the
//! monitor died before getting that far.

use std::fs::File;
use std::io::{self, Read, Write};

use super::error::MonitorError;
use crate::sys::signal::take_inherited_fd;

/// One report line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncReport {
    Started { pid: i32 },
    Failed { message: String },
}

impl SyncReport {
    /// The line as written, newline included; newlines inside a message become spaces so
    /// the report stays one line.
    pub fn to_line(&self) -> String {
        match self {
            SyncReport::Started { pid } => format!("ok {pid}\n"),
            SyncReport::Failed { message } => format!("error {}\n", message.replace('\n', " ")),
        }
    }

    /// Parses one line (with or without its newline); `None` when it is neither form.
    pub fn parse(line: &str) -> Option<Self> {
        let line = line.strip_suffix('\n').unwrap_or(line);
        if let Some(pid) = line.strip_prefix("ok ") {
            return pid
                .parse()
                .ok()
                .filter(|p| *p > 0)
                .map(|pid| SyncReport::Started { pid });
        }
        line.strip_prefix("error ").map(|m| SyncReport::Failed {
            message: m.to_string(),
        })
    }
}

/// The daemon's side: reads the report from the read end of the sync pipe (until the
/// newline, or EOF). Blocking; the monitor writes within the container's start time.
pub fn read_report(mut from: impl Read) -> io::Result<SyncReport> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    // Byte by byte: the line is short, and nothing past the newline may be consumed.
    while from.read(&mut byte)? == 1 {
        line.push(byte[0]);
        if byte[0] == b'\n' {
            break;
        }
    }
    if line.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the monitor exited without reporting whether the container started",
        ));
    }
    let text = String::from_utf8_lossy(&line);
    SyncReport::parse(&text).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("unexpected report from the monitor: {text:?}"),
        )
    })
}

/// The monitor's end of the sync descriptor, if it was given one.
#[derive(Debug)]
pub(super) struct SyncFd(Option<File>);

impl SyncFd {
    pub(super) fn none() -> Self {
        Self(None)
    }

    pub(super) fn take(fd: Option<i32>) -> Result<Self, MonitorError> {
        let Some(fd) = fd else {
            return Ok(Self(None));
        };
        let owned = take_inherited_fd(fd).map_err(|source| MonitorError::SyncFd { fd, source })?;
        Ok(Self(Some(File::from(owned))))
    }

    /// Writes `report` and closes the descriptor; later reports are dropped. A write
    /// error is ignored: the daemon that would read it is gone, and the container's
    /// fate no longer depends on it.
    pub(super) fn report(&mut self, report: &SyncReport) {
        if let Some(mut file) = self.0.take() {
            let _ = file.write_all(report.to_line().as_bytes());
        }
    }

    /// Closes this process's copy without reporting (the detaching parent's).
    pub(super) fn close(&mut self) {
        self.0 = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip() {
        for report in [
            SyncReport::Started { pid: 42 },
            SyncReport::Failed {
                message: "exec: \"x\": executable file not found in $PATH".into(),
            },
        ] {
            assert_eq!(SyncReport::parse(&report.to_line()), Some(report));
        }
    }

    #[test]
    fn a_message_stays_on_one_line() {
        let line = SyncReport::Failed {
            message: "a\nb".into(),
        }
        .to_line();
        assert_eq!(line, "error a b\n");
    }

    #[test]
    fn reads_one_report_or_says_why_not() {
        assert_eq!(
            read_report(&b"ok 7\nrest"[..]).expect("report"),
            SyncReport::Started { pid: 7 }
        );
        let eof = read_report(&b""[..]).expect_err("eof");
        assert_eq!(eof.kind(), io::ErrorKind::UnexpectedEof);
        let junk = read_report(&b"ok zero\n"[..]).expect_err("junk");
        assert_eq!(junk.kind(), io::ErrorKind::InvalidData);
    }
}
