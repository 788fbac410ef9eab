//! `docker/runtime` (ucr-spec.md §5.1): an image's runtime config (`Entrypoint`, `Cmd`,
//! `Env`, `WorkingDir`, `User`, `StopSignal`) and how it applies to a container.
//!
//! - [`ImageRuntime`] reads it from the image config document;
//! - `env`: image `KEY=VAL` entries, overridden by the request, with a default `PATH`;
//! - `isolator`: the isolator, which puts the image's `Env` under the request's and
//!   resolves the process's user against the image's `/etc/passwd`.
//!
//! How the command, working directory and user are chosen differs per door, so each door
//! applies its own rules before the containerizer sees the container: containerd's in
//! `cri/runtime/process.rs`, Mesos's table in `mesos/command.rs`. Under
//! `--docker_ignore_runtime` the Mesos door sees an empty image
//! ([`ImageRuntime::unless_ignored`]), so only the CommandInfo decides, and neither image
//! `Env` nor `WorkingDir` reach the container (Mesos returns no launch info at all then).

mod env;
#[cfg(test)]
pub(crate) mod fixtures;
mod isolator;
#[cfg(test)]
mod tests;

use serde_json::{Map, Value};

use crate::error::{ErrorKind, Kind};

pub use env::{merge_env, parse_env, with_hostname, DEFAULT_PATH};
pub use isolator::DockerRuntime;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum RuntimeError {
    /// CRI: neither the request nor the image names a process. containerd's wording, which
    /// critest and users grep for.
    #[error("no command specified")]
    NoCommand,
    /// Mesos: `shell=false`, no `value`, and the image has neither Entrypoint nor Cmd.
    /// Mesos's wording (`isolators/docker/runtime.cpp`).
    #[error("No executable is found")]
    NoExecutable,
    /// Mesos: `shell=true` (the default) without a `value`. Mesos's wording.
    #[error("Shell specified but no command value provided")]
    ShellWithoutValue,
    /// Parsing the image config document failed: not JSON, or not a JSON object.
    #[error("parse image config: {reason}")]
    ConfigJson { reason: String },
    /// A field of the image config's `config` object has the wrong JSON type.
    #[error("parse image config: field {field}: {reason}")]
    ConfigField {
        field: &'static str,
        reason: &'static str,
    },
}

impl Kind for RuntimeError {
    fn kind(&self) -> ErrorKind {
        // Every variant is something wrong with what a client sent or with the image it
        // named; nothing here is our own state.
        ErrorKind::InvalidArgument
    }
}

/// The runtime part of a docker/OCI image config: the `config` object of the image config
/// document (never `container_config`, which describes the container the image was
/// committed from — Mesos and containerd both read `config`).
///
/// Unset, `null` and `[]` are the same thing for Entrypoint and Cmd: docker, containerd and
/// Mesos all only ever test their length. Empty strings are "unset" for `WorkingDir`,
/// `User` and `StopSignal` (docker writes `""` rather than omitting them). The accessors
/// apply these rules; the fields keep what the image said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageRuntime {
    entrypoint: Vec<String>,
    cmd: Vec<String>,
    env: Vec<String>,
    working_dir: Option<String>,
    user: Option<String>,
    stop_signal: Option<String>,
}

/// What `--docker_ignore_runtime` leaves of any image.
static IGNORED: ImageRuntime = ImageRuntime {
    entrypoint: Vec::new(),
    cmd: Vec::new(),
    env: Vec::new(),
    working_dir: None,
    user: None,
    stop_signal: None,
};

impl ImageRuntime {
    /// An image with this Entrypoint and Cmd and nothing else.
    pub fn with_command(entrypoint: Vec<String>, cmd: Vec<String>) -> Self {
        ImageRuntime {
            entrypoint,
            cmd,
            ..Self::default()
        }
    }

    /// Reads the image config document (the blob a manifest's `config` descriptor names, or
    /// a schema1 `v1Compatibility` entry). A document without a `config` object (or with
    /// `"config": null`) yields an empty runtime; Mesos would `CHECK`-fail there instead.
    /// `ExposedPorts`, `Volumes`, `Labels` and the rest are ignored.
    pub fn from_image_config(doc: &Value) -> Result<Self, RuntimeError> {
        let Value::Object(doc) = doc else {
            return Err(RuntimeError::ConfigJson {
                reason: "the document is not a JSON object".to_owned(),
            });
        };
        match field(doc, "config") {
            None | Some(Value::Null) => Ok(Self::default()),
            Some(Value::Object(config)) => Self::from_config_object(config),
            Some(_) => Err(RuntimeError::ConfigField {
                field: "config",
                reason: "expected an object",
            }),
        }
    }

    /// [`Self::from_image_config`] over the raw bytes of the document.
    pub fn from_image_config_bytes(bytes: &[u8]) -> Result<Self, RuntimeError> {
        let doc: Value = serde_json::from_slice(bytes).map_err(|e| RuntimeError::ConfigJson {
            reason: e.to_string(),
        })?;
        Self::from_image_config(&doc)
    }

    fn from_config_object(config: &Map<String, Value>) -> Result<Self, RuntimeError> {
        Ok(Self {
            entrypoint: str_slice(config, "Entrypoint")?,
            cmd: str_slice(config, "Cmd")?,
            env: string_array(config, "Env")?,
            working_dir: string(config, "WorkingDir")?,
            user: string(config, "User")?,
            stop_signal: string(config, "StopSignal")?,
        })
    }

    /// The image as the Mesos door sees it: with `--docker_ignore_runtime` nothing of it
    /// (Mesos's isolator then returns no launch info, so no Env, WorkingDir or command).
    pub fn unless_ignored(&self, docker_ignore_runtime: bool) -> &ImageRuntime {
        if docker_ignore_runtime {
            &IGNORED
        } else {
            self
        }
    }

    /// The Entrypoint, with `[""]` read as unset. Docker records `--entrypoint ""` (and
    /// `ENTRYPOINT [""]`) as `[""]` to mean "no entrypoint"; containerd skips it explicitly.
    /// Mesos would try to exec `""` and fail, so both doors follow containerd here.
    pub fn entrypoint(&self) -> &[String] {
        match self.entrypoint.as_slice() {
            [only] if only.is_empty() => &[],
            all => all,
        }
    }

    pub fn cmd(&self) -> &[String] {
        &self.cmd
    }

    /// The raw `Env` entries, `KEY=VAL` (see [`parse_env`] for how they are read).
    pub fn env(&self) -> &[String] {
        &self.env
    }

    /// `WorkingDir` if non-empty.
    pub fn working_dir(&self) -> Option<&str> {
        non_empty(&self.working_dir)
    }

    /// `User` (`user`, `uid`, `user:group`, `uid:gid`) if non-empty.
    pub fn user(&self) -> Option<&str> {
        non_empty(&self.user)
    }

    /// `StopSignal` (`SIGTERM`, `TERM` or `15`) if non-empty.
    pub fn stop_signal(&self) -> Option<&str> {
        non_empty(&self.stop_signal)
    }
}

fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|s| !s.is_empty())
}

/// Go's `encoding/json`, which wrote and reads these documents for docker and containerd,
/// matches field names exactly first and then case-insensitively; some hand-made images
/// depend on that (`"cmd"`), so we do the same.
fn field<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    obj.get(name).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

/// Docker's `strslice.StrSlice`: `null`, an array of strings, or a lone string meaning a
/// one-element array (old docker versions wrote `"Entrypoint": "/bin/sh"`).
fn str_slice(obj: &Map<String, Value>, name: &'static str) -> Result<Vec<String>, RuntimeError> {
    match field(obj, name) {
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        _ => string_array(obj, name),
    }
}

fn string_array(obj: &Map<String, Value>, name: &'static str) -> Result<Vec<String>, RuntimeError> {
    let invalid = RuntimeError::ConfigField {
        field: name,
        reason: "expected an array of strings",
    };
    match field(obj, name) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned).ok_or(invalid.clone()))
            .collect(),
        Some(_) => Err(invalid),
    }
}

fn string(obj: &Map<String, Value>, name: &'static str) -> Result<Option<String>, RuntimeError> {
    match field(obj, name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(RuntimeError::ConfigField {
            field: name,
            reason: "expected a string",
        }),
    }
}
