//! The Mesos door: the container part of the Mesos agent operator API (v1), on the same
//! core as the CRI door. Built call by call (issue 13):
//!
//! - `server`: the HTTP server on `--mesos-listen` (`POST /api/v1`, `/health`,
//!   `/version`); `codec`: JSON/protobuf content negotiation with Mesos's status codes;
//! - `calls`: the calls answered so far (GET_HEALTH, GET_VERSION, GET_FLAGS, and in
//!   `containers` LAUNCH/WAIT/KILL/REMOVE_CONTAINER for standalone containers); the
//!   others get 501 naming them;
//! - `wire`: the types generated from `proto/mesos/v1/` (Mesos's names and numbers);
//! - `command`: the docker/runtime CommandInfo × Entrypoint/Cmd table (ucr-spec.md §5.1);
//! - the streaming calls: `stream` (their media types and RecordIO bodies), `recordio`
//!   (the framing), `sessions` (LAUNCH_NESTED_CONTAINER_SESSION and nested ids in
//!   WAIT/KILL/REMOVE_CONTAINER and GET_CONTAINERS), `nested` (LAUNCH_CONTAINER with a
//!   parent), `attach` (ATTACH_CONTAINER_INPUT and ATTACH_CONTAINER_OUTPUT).

pub mod attach;
pub mod calls;
pub mod codec;
pub mod command;
pub mod containers;
pub mod nested;
pub mod recordio;
pub mod server;
pub mod sessions;
pub mod stream;
pub mod wire;
