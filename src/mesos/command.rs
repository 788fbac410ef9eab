//! The Mesos door's rules for a container's command: the `docker/runtime` isolator's
//! CommandInfo × Entrypoint/Cmd table (ucr-spec.md §5.1, Mesos
//! `isolators/docker/runtime.cpp`), folded together with the launcher's own rule for
//! `shell` (`/bin/sh -c value`) so the caller gets one exec. The door resolves a launch
//! with it and hands the containerizer the result, as the CRI door does with
//! containerd's rules (`cri/runtime/process.rs`).
//!
//! E = image Entrypoint, C = image Cmd, A = `CommandInfo.arguments`:
//!
//! | CommandInfo          | E-,C-                       | E-,C+             | E+,C-          | E+,C+                      |
//! |----------------------|-----------------------------|-------------------|----------------|----------------------------|
//! | sh=0, no value, no A | NoExecutable                | C[0]; argv C      | E[0]; argv E   | E[0]; argv E+C             |
//! | sh=0, no value, A    | NoExecutable                | C[0]; argv C[0]+A | E[0]; argv E+A | E[0]; argv E+A (C dropped) |
//! | sh=0, value          | value; argv A               | same              | same           | same                       |
//! | sh=1, no value       | ShellWithoutValue           | same              | same           | same                       |
//! | sh=1, value          | /bin/sh -c value, A ignored | same              | same           | same                       |

use crate::containerizer::types::ProcessConfig;
use crate::isolators::docker::runtime::{ImageRuntime, RuntimeError};

/// The shell for `shell=true`; `argv[0]` is `sh`, as Mesos's `os::Shell` passes it.
pub const SHELL: &str = "/bin/sh";

/// The part of Mesos's `CommandInfo` that decides what runs (URIs, environment and user are
/// handled elsewhere). Presence matters, as in the proto2 message: `value: Some("")` is a
/// value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommandInfo {
    /// Defaults to true, as in `mesos.proto`.
    pub shell: Option<bool>,
    pub value: Option<String>,
    pub arguments: Vec<String>,
}

impl CommandInfo {
    pub fn shell(&self) -> bool {
        self.shell.unwrap_or(true)
    }
}

/// What to exec: `executable` is looked up by the launcher (relative names in the working
/// dir, then `PATH`); `argv` is passed verbatim, `argv[0]` included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    pub executable: String,
    /// May be empty (`shell=false`, a value, no arguments): Mesos execs with an empty argv
    /// then, and so do we; the launcher decides whether to supply `argv[0]`.
    pub argv: Vec<String>,
}

/// Applies the table above. Pass `image.unless_ignored(flags.docker_ignore_runtime)` (or an
/// empty [`ImageRuntime`] for a container without an image) to let only the CommandInfo
/// decide; `shell=false` without a value is then [`RuntimeError::NoExecutable`], which Mesos
/// would only discover when exec failed.
pub fn mesos_launch(image: &ImageRuntime, cmd: &CommandInfo) -> Result<Launch, RuntimeError> {
    match (&cmd.value, cmd.shell()) {
        // Rows sh=1: the image is ignored, and so are the arguments.
        (None, true) => Err(RuntimeError::ShellWithoutValue),
        (Some(value), true) => Ok(Launch {
            executable: SHELL.to_owned(),
            argv: vec!["sh".to_owned(), "-c".to_owned(), value.clone()],
        }),
        // Row sh=0 with a value: the image is ignored.
        (Some(value), false) => Ok(Launch {
            executable: value.clone(),
            argv: cmd.arguments.clone(),
        }),
        // Rows sh=0 without a value: the image supplies the executable; the arguments, if
        // any, replace the image's default arguments (Cmd, or Cmd[1..] without Entrypoint).
        (None, false) => {
            let (head, defaults): (&[String], &[String]) = if !image.entrypoint().is_empty() {
                (image.entrypoint(), image.cmd())
            } else if let Some((first, rest)) = image.cmd().split_first() {
                (std::slice::from_ref(first), rest)
            } else {
                return Err(RuntimeError::NoExecutable);
            };
            let executable = head.first().ok_or(RuntimeError::NoExecutable)?.clone();
            let tail = if cmd.arguments.is_empty() {
                defaults
            } else {
                cmd.arguments.as_slice()
            };
            Ok(Launch {
                executable,
                argv: head.iter().chain(tail).cloned().collect(),
            })
        }
    }
}

/// The working directory the image asks for, if any; `None` means the sandbox directory
/// (Mesos's default). Mesos uses a non-empty `WorkingDir` only.
pub fn mesos_working_dir(image: &ImageRuntime) -> Option<&str> {
    image.working_dir()
}

/// The door's entry point: the container's process as the Mesos door hands it to the
/// containerizer (ucr-spec.md §5, "Env" and "Exec"): the table's launch; the working
/// directory, the image's `WorkingDir` else the sandbox; the image's `Env` under
/// `environment` unless `--docker_ignore_runtime`; and `user`, CommandInfo's (Mesos
/// ignores the image's `User`). An empty argv gets the executable as `argv[0]`: the
/// launcher needs one.
pub fn process(
    image: &ImageRuntime,
    cmd: &CommandInfo,
    environment: Vec<(String, String)>,
    user: Option<String>,
    sandbox: &str,
    docker_ignore_runtime: bool,
) -> Result<ProcessConfig, RuntimeError> {
    let image = image.unless_ignored(docker_ignore_runtime);
    let launch = mesos_launch(image, cmd)?;
    let argv = if launch.argv.is_empty() {
        vec![launch.executable.clone()]
    } else {
        launch.argv
    };
    Ok(ProcessConfig {
        argv,
        executable: Some(launch.executable),
        env: environment,
        cwd: mesos_working_dir(image).unwrap_or(sandbox).to_string(),
        user,
        supplemental_groups: Vec::new(),
        strict_groups: false,
        image_env: !docker_ignore_runtime,
    })
}

#[cfg(test)]
#[path = "command_tests.rs"]
mod tests;
