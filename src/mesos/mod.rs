//! The Mesos door: the container part of the Mesos agent operator API (v1), on the same
//! core as the CRI door (`ucr-spec.md` §6–§7; the README's "The Mesos door").
//!
//! - `server`: the HTTP server on `--mesos-listen` (`POST /api/v1`, the legacy GETs);
//!   `codec`: JSON/protobuf content negotiation with Mesos's status codes;
//! - `auth`: HTTP basic authentication, Mesos's realms and credentials file;
//! - `legacy`: the GET endpoints `/state`, `/flags`, `/monitor/statistics`,
//!   `/containers`, `/metrics/snapshot`; `metrics`: GET_METRICS and the snapshot;
//! - `calls`: the dispatch of the calls (the agent's others are 501, naming them);
//! - `containers`: LAUNCH/WAIT/KILL/REMOVE_CONTAINER and GET_CONTAINERS for standalone
//!   containers; `image`: the launch's pull (`cached`, the `Image.docker.config`
//!   secret); `environment`: `CommandInfo.environment` (VALUE and SECRET variables);
//!   `command`: the docker/runtime CommandInfo × Entrypoint/Cmd table (§5.1);
//! - `sandbox`: a launch's volumes and rlimits checked and translated (§5.2, §5.8); the
//!   sandbox itself (output files, volumes, owner, mount at `--sandbox_directory`) is
//!   the `volume/sandbox_path` isolator's;
//! - `files`: LIST_FILES and READ_FILE below `/containers/<id>`, inside the sandbox;
//!   `wire_json`: their answers (and one enum) in Mesos's JSON;
//! - the streaming calls: `stream` (their media types and RecordIO bodies), `recordio`
//!   (the framing), `sessions` (LAUNCH_NESTED_CONTAINER_SESSION and nested ids in
//!   WAIT/KILL/REMOVE_CONTAINER and GET_CONTAINERS), `nested` (LAUNCH_CONTAINER with a
//!   parent, and the deprecated `*_NESTED_CONTAINER` calls), `attach`
//!   (ATTACH_CONTAINER_INPUT and ATTACH_CONTAINER_OUTPUT);
//! - `observe`: each call's span and its count for the Prometheus metrics;
//! - `wire`: the types generated from `proto/mesos/v1/` (Mesos's names and numbers).

pub mod attach;
pub mod auth;
pub mod calls;
pub mod codec;
pub mod command;
pub mod containers;
pub mod environment;
pub mod files;
pub mod image;
pub mod legacy;
pub mod metrics;
pub mod nested;
pub mod observe;
pub mod recordio;
pub mod sandbox;
pub mod server;
pub mod sessions;
pub mod stream;
pub mod wire;
mod wire_json;
