//! Isolators: each owns one aspect of a container (Mesos UCR design, ucr-spec.md §5).

pub mod docker;
pub mod network;
