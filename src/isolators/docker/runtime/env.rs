//! Environment merging: image `Env`, then what the request sets, then defaults.

use std::collections::HashMap;

/// Used when neither the image nor the request sets `PATH`: containerd's default
/// (`oci.WithDefaultPathEnv`), identical to Mesos's `os::host_default_path()`.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Reads image `Env` entries as Mesos does: split at the first `=` (values may hold more
/// `=`), entries without `=` skipped. A key given twice keeps its first position and its
/// last value, so the result has unique keys.
pub fn parse_env(image_env: &[String]) -> Vec<(String, String)> {
    let mut env = Env::default();
    for entry in image_env {
        // Mesos logs and skips these; containerd would read `KEY` alone as "unset KEY",
        // which for an image's own list means the same thing.
        if let Some((key, value)) = entry.split_once('=') {
            env.set(key, value);
        }
    }
    env.pairs
}

/// The process environment: the image's entries ([`parse_env`]), then `cri_env` overriding
/// by key (in place, keeping the image's order; new keys appended in request order; a key
/// repeated in the request takes its last value), then `PATH=`[`DEFAULT_PATH`] first if
/// nobody set `PATH` (where containerd puts it).
///
/// The Mesos door flattens its layers (executor env, `MESOS_SANDBOX`, isolator env,
/// `CommandInfo.environment`; later wins) into `cri_env` in that order.
pub fn merge_env(image_env: &[String], cri_env: &[(String, String)]) -> Vec<String> {
    let mut env = Env::default();
    for (key, value) in parse_env(image_env) {
        env.set(&key, &value);
    }
    for (key, value) in cri_env {
        env.set(key, value);
    }
    if !env.index.contains_key("PATH") {
        env.pairs
            .insert(0, ("PATH".to_owned(), DEFAULT_PATH.to_owned()));
    }
    env.pairs
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect()
}

/// Adds `HOSTNAME=<hostname>` unless the environment already has a `HOSTNAME`. containerd
/// sets it before applying the image and request env, so either of those overrides it; call
/// this after [`merge_env`] to get the same result.
pub fn with_hostname(mut env: Vec<String>, hostname: &str) -> Vec<String> {
    let present = env
        .iter()
        .any(|e| e.split_once('=').is_some_and(|(k, _)| k == "HOSTNAME"));
    if !present {
        env.push(format!("HOSTNAME={hostname}"));
    }
    env
}

/// An ordered map small enough not to need a crate: pairs in first-set order, plus an index.
#[derive(Default)]
struct Env {
    pairs: Vec<(String, String)>,
    index: HashMap<String, usize>,
}

impl Env {
    fn set(&mut self, key: &str, value: &str) {
        match self.index.get(key) {
            Some(&i) => self.pairs[i].1 = value.to_owned(),
            None => {
                self.index.insert(key.to_owned(), self.pairs.len());
                self.pairs.push((key.to_owned(), value.to_owned()));
            }
        }
    }
}
