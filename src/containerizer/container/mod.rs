//! Containers, by concern:
//! - `create`: CreateContainer: the rootfs, the isolators' launch spec, the record;
//! - `launch`: the launch spec the isolators fill in, and its context;
//! - `lifecycle`: StartContainer, StopContainer, RemoveContainer;
//! - `monitor`: the daemon's side of a container's monitor (spawn, hold, handshake);
//! - `status`: what a container's monitor says of it: its end, as it happens and after a
//!   restart; ContainerStatus, ListContainers, ReopenContainerLog.
//!
//! The monitor's files in the bundle are the truth about a running container: its
//! process (pid and start time), and its exit once it has ended, also when the daemon
//! was down at the time.

mod create;
mod launch;
mod lifecycle;
mod monitor;
mod resources;
pub use resources::{ContainerStats, PodStats};
mod status;
