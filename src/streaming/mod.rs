//! The streaming server of the CRI: where `Exec`, `Attach` and `PortForward` send their
//! clients (crictl, critest, kubelet's proxy for kubectl). The CRI call validates the
//! request and parks it under a single-use token (`tokens`); the client upgrades an HTTP
//! connection on the returned URL (`server`) to SPDY/3.1 (`spdy`, our own framing) or
//! WebSocket (`ws`), and the session runs on the same core as every other door
//! (`dispatch`): the containerizer's door-neutral exec and attach sessions
//! (`remotecommand`), or connections into the pod's network namespace (`portforward`).
//! `client` is the other end of an exec or attach, for `ucr exec -it`.

pub mod client;
mod dispatch;
mod portforward;
mod remotecommand;
pub mod server;
pub mod spdy;
mod spdy_door;
mod status;
pub mod tls;
pub mod tokens;
mod ws;

pub use server::{StreamServer, StreamingError};
pub use tls::TlsFiles;
pub use tokens::Request;
