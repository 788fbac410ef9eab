//! The Mesos door: the container part of the Mesos agent operator API (v1), on the same
//! core as the CRI door. Only its rules exist so far, ready for the door itself:
//!
//! - `command`: the docker/runtime CommandInfo × Entrypoint/Cmd table (ucr-spec.md §5.1).

pub mod command;
