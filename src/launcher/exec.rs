//! `ucr exec` (being written).

/// `ucr exec` (being written).
pub fn main(_flags: &crate::config::ExecFlags) -> std::process::ExitCode {
    std::process::ExitCode::FAILURE
}
