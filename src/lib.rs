//! ucr: a container runtime for Kubernetes nodes built on the Mesos Universal Container
//! Runtime design (see `../shared/ARCHITECTURE.md` for the picture).
//!
//! The folder tree is the architecture:
//! - `core`: what the front doors serve (store + containerizer), transport-neutral;
//! - `cri/`: the Kubernetes CRI front door (thin; translates protobuf to core calls);
//! - `containerizer/`: pods and containers: state, persistence, recovery;
//! - `provisioner/`: image references, pullers, the layer store and its GC, rootfs
//!   backends;
//! - `isolators/`: one aspect of a container each (docker/runtime first);
//! - `launcher/`: turning a launch spec into a process (user resolution first);
//! - `monitor/`: the per-container process that holds stdio (CRI log format first);
//! - `streaming/`: the CRI streaming server (Exec, Attach, PortForward over SPDY/3.1 and
//!   WebSocket);
//! - `sys/`: the only module allowed to call libc/nix with `unsafe`;
//! - `perm`: the modes of ucr's state (nobody but root reads it);
//! - `db_json`: JSON records in redb, shared by the containerizer's and the image store's
//!   databases.

pub mod client;
pub mod config;
pub mod containerizer;
pub mod core;
pub mod crash;
pub mod cri;
pub mod daemon;
pub mod db_json;
pub mod error;
pub mod handshake;
pub mod isolators;
pub mod launcher;
pub mod mesos;
pub mod metrics;
pub mod monitor;
pub mod perm;
pub mod provisioner;
pub mod streaming;
#[allow(unsafe_code)]
pub mod sys;
pub mod telemetry;
pub mod transport;
