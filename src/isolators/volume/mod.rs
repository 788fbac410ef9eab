//! Volume isolators: host paths bound in (`host_path`), and a Mesos sandbox with the
//! volumes made inside it (`sandbox_path`).

pub mod host_path;
pub mod sandbox_path;
