//! The per-container monitor process: holds stdio, writes the CRI log, records the exit.

pub mod log;

/// `ucr monitor` (being written).
pub fn main(_flags: &crate::config::MonitorFlags) -> std::process::ExitCode {
    std::process::ExitCode::FAILURE
}
