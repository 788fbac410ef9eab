//! Namespace isolators: which PID and IPC namespaces a pod's containers live in.

pub mod ipc;
pub mod pid;
pub mod user;
