//! The one-line reports a helper process gives the daemon on an inherited pipe: the
//! monitor (`ucr monitor`, `ucr-monitor`) and the pod init's starter (`ucr pod-init`).
//!
//! ```text
//! held <pid> <start time>\n   the container's process exists and waits before exec
//!                             (the monitor, when asked to hold it): the daemon runs
//!                             its isolators' `isolate`, then releases it
//! ok <pid>\n                  it runs (exec'd)
//! error <message>\n           nothing runs; <message> is a single line
//! ```
//!
//! EOF without a line means the helper died before getting that far. The daemon reads
//! every report with a deadline, so a helper wedged on a hung mount source cannot wedge
//! the call (and every retry of it) with it.

use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use crate::sys::pidfd::ProcessId;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    Held(ProcessId),
    Started { pid: i32 },
    Failed { message: String },
}

impl Report {
    /// The line as written, newline included; newlines inside a message become spaces so
    /// the report stays one line.
    pub fn to_line(&self) -> String {
        match self {
            Report::Held(p) => format!("held {} {}\n", p.pid, p.start_time),
            Report::Started { pid } => format!("ok {pid}\n"),
            Report::Failed { message } => format!("error {}\n", message.replace('\n', " ")),
        }
    }

    /// Parses one line (with or without its newline); `None` when it is none of them.
    pub fn parse(line: &str) -> Option<Self> {
        let line = line.strip_suffix('\n').unwrap_or(line);
        if let Some(pid) = line.strip_prefix("ok ") {
            return pid
                .parse()
                .ok()
                .filter(|p| *p > 0)
                .map(|pid| Report::Started { pid });
        }
        if let Some(rest) = line.strip_prefix("held ") {
            let (pid, start) = rest.split_once(' ')?;
            let pid = pid.parse().ok().filter(|p| *p > 0)?;
            let start_time = start.parse().ok()?;
            return Some(Report::Held(ProcessId { pid, start_time }));
        }
        line.strip_prefix("error ").map(|m| Report::Failed {
            message: m.to_string(),
        })
    }
}

/// Writes `report`. A write error is returned for the caller to ignore or not: the
/// daemon that would read it may be gone.
pub fn send(to: &mut impl Write, report: &Report) -> io::Result<()> {
    to.write_all(report.to_line().as_bytes())
}

/// Reads one report from `from`, waiting at most `limit` for all of it.
pub fn receive<F: Read + AsFd>(from: &mut F, limit: Duration) -> io::Result<Report> {
    let deadline = Instant::now() + limit;
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    // Byte by byte: the line is short, and nothing past the newline may be consumed.
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no report within {limit:?}"),
            ));
        }
        let ms = i32::try_from(left.as_millis()).unwrap_or(i32::MAX).max(1);
        let [ready] = crate::sys::signal::wait_readable([Some(from.as_fd())], ms)?;
        if !ready {
            continue;
        }
        match from.read(&mut byte)? {
            0 => break,
            _ => {
                line.push(byte[0]);
                if byte[0] == b'\n' {
                    break;
                }
            }
        }
    }
    if line.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the helper exited without reporting",
        ));
    }
    let text = String::from_utf8_lossy(&line);
    Report::parse(&text).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("unexpected report: {text:?}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip() {
        for report in [
            Report::Started { pid: 42 },
            Report::Held(ProcessId {
                pid: 7,
                start_time: 12345,
            }),
            Report::Failed {
                message: "exec: \"x\": executable file not found in $PATH".into(),
            },
        ] {
            assert_eq!(Report::parse(&report.to_line()), Some(report));
        }
        let line = Report::Failed {
            message: "a\nb".into(),
        }
        .to_line();
        assert_eq!(line, "error a b\n");
        assert_eq!(Report::parse("ok zero"), None);
        assert_eq!(Report::parse("held 1"), None);
    }

    fn pipe_with(bytes: &[u8]) -> std::fs::File {
        let (r, w) = crate::sys::process::cloexec_pipe().expect("pipe");
        let mut w = std::fs::File::from(w);
        w.write_all(bytes).expect("write");
        drop(w);
        std::fs::File::from(r)
    }

    #[test]
    fn reads_one_report_or_says_why_not() {
        let second = Duration::from_secs(1);
        let mut p = pipe_with(b"ok 7\nrest");
        assert_eq!(
            receive(&mut p, second).expect("report"),
            Report::Started { pid: 7 }
        );
        let eof = receive(&mut pipe_with(b""), second).expect_err("eof");
        assert_eq!(eof.kind(), io::ErrorKind::UnexpectedEof);
        let junk = receive(&mut pipe_with(b"ok zero\n"), second).expect_err("junk");
        assert_eq!(junk.kind(), io::ErrorKind::InvalidData);
        // A helper that says nothing and keeps the pipe open: the deadline ends the wait.
        let (r, _w) = crate::sys::process::cloexec_pipe().expect("pipe");
        let started = Instant::now();
        let late =
            receive(&mut std::fs::File::from(r), Duration::from_millis(100)).expect_err("deadline");
        assert_eq!(late.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
