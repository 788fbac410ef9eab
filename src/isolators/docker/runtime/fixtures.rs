//! Image fixtures for the doors' command-rule tables (`cri/runtime/process.rs`,
//! `mesos/command.rs`): E = Entrypoint, C = Cmd.

use super::ImageRuntime;

pub fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

pub const E: &[&str] = &["/entry", "e1"];
pub const C: &[&str] = &["/cmd", "c1"];

pub fn image(entrypoint: &[&str], cmd: &[&str]) -> ImageRuntime {
    ImageRuntime::with_command(strings(entrypoint), strings(cmd))
}

/// An image whose config object is `config`.
pub fn parse_config(config: serde_json::Value) -> ImageRuntime {
    ImageRuntime::from_image_config(&serde_json::json!({ "config": config })).expect("valid config")
}

pub fn no_image() -> ImageRuntime {
    image(&[], &[])
}

pub fn cmd_only() -> ImageRuntime {
    image(&[], C)
}

pub fn entrypoint_only() -> ImageRuntime {
    image(E, &[])
}

pub fn entrypoint_and_cmd() -> ImageRuntime {
    image(E, C)
}
