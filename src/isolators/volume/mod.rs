//! Volume isolators.

pub mod host_path;
