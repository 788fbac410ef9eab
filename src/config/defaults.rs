//! `ucr config default`: the whole config file, every `ucr serve` flag with its help as
//! a comment and its default as the value. A flag whose default is derived from another
//! (`listen` from `run-root`) or that has none (`docker-config`) is written commented
//! out, so the file means exactly what no file means: it round-trips through `--config`
//! (tested). The help comes from the flags' own documentation (clap), so it cannot drift
//! from `ucr serve --help`; the defaults are listed here, and a test fails when a flag is
//! added without one.

use clap::Args as _;

use super::settings::{DEFAULT_CNI_BIN_DIR, DEFAULT_CNI_CONF_DIR, DEFAULT_MESOS_LISTEN};
use super::ServeFlags;

/// How a flag appears in the default file.
enum Default {
    /// `key = <TOML value>`: what resolving no value gives.
    Value(&'static str),
    /// The same for a default the settings keep as a constant: a TOML string of it.
    Str(&'static str),
    /// `# key = <example>`, with why it is commented out.
    Commented(&'static str, &'static str),
}

/// Every flag of `ucr serve` but `--config` and `--config-dir`, by clap id.
fn default_of(id: &str) -> Option<Default> {
    use Default::*;
    Some(match id {
        "root" => Value("\"/var/lib/ucr\""),
        "run_root" => Value("\"/run/ucr\""),
        "listen" => Commented("\"/run/ucr/ucr.sock\"", "default: <run-root>/ucr.sock"),
        "listen_group" => Commented("\"ucr\"", "no default: root's group"),
        "docker_store_dir" => Commented("\"/var/lib/ucr/images\"", "default: <root>/images"),
        "registry_mirror" => Value("[]"),
        "insecure_registry" => Value("[]"),
        "docker_registry" => Commented("\"https://registry-1.docker.io\"", "no default"),
        "docker_config" => Commented("\"/root/.docker/config.json\"", "no default"),
        "image_gc_config" => Commented(
            "'{\"image_disk_headroom\": 0.1, \"image_disk_watch_interval\": {\"nanoseconds\": 3600000000000}}'",
            "no default: no automatic image GC",
        ),
        "max_concurrent_downloads" => Value("3"),
        "image_pull_progress_timeout" => Value("\"60s\""),
        "pinned_images" => Value("[]"),
        "log_level" => Value("\"info\""),
        "log_format" => Value("\"text\""),
        "metrics_listen" => Commented("\"127.0.0.1:9401\"", "no default: not served"),
        "otlp_endpoint" => Commented("\"http://127.0.0.1:4318\"", "no default: no export"),
        "recover" => Value("\"reconnect\""),
        "image_provisioner_backend" => Value("\"auto\""),
        "cni_conf_dir" => Str(DEFAULT_CNI_CONF_DIR),
        "cni_bin_dir" => Str(DEFAULT_CNI_BIN_DIR),
        "cni_plugin_timeout" => Value("\"60s\""),
        "cgroups_hierarchy" => Value("\"/sys/fs/cgroup\""),
        "cgroups_root" => Value("\"ucr\""),
        "cgroups_net_cls_primary_handle" => Commented("\"0x0001\"", "no default: net_cls off"),
        "cgroups_net_cls_secondary_handles" => {
            Commented("\"0x0001,0xffff\"", "no default: net_cls off")
        }
        "pids_limit" => Commented("4096", "no default: no limit"),
        "isolation" => Commented(
            "\"docker/runtime,filesystem/linux,cgroups/all,namespaces/pid,network/cni,disk/du\"",
            "default: every isolator ucr has but disk/xfs",
        ),
        "image_providers" => Value("\"docker\""),
        "authenticate_http_readwrite" => Value("false"),
        "authenticate_http_readonly" => Value("false"),
        "http_credentials" => Commented("\"/etc/ucr/credentials.json\"", "no default"),
        "container_disk_watch_interval" => Value("\"15s\""),
        "enforce_container_disk_quota" => Value("false"),
        "xfs_project_range" => Value("\"[5000-10000]\""),
        "seccomp_default" => Value("false"),
        "seccomp_profile_root" => Value("\"/var/lib/kubelet/seccomp\""),
        "stream_address" => Value("\"127.0.0.1\""),
        "stream_port" => Value("0"),
        "mesos_listen" => Str(DEFAULT_MESOS_LISTEN),
        "sandbox_directory" => Value("\"/mnt/mesos/sandbox\""),
        "stream_tls_cert" => Commented("\"/etc/ucr/stream.crt\"", "no default: plain HTTP"),
        "stream_tls_key" => Commented("\"/etc/ucr/stream.key\"", "no default: plain HTTP"),
        _ => return None,
    })
}

/// The flags of `ucr serve` in the file: clap id, long name, help.
fn flags() -> Vec<(String, String, String)> {
    ServeFlags::augment_args(clap::Command::new("serve"))
        .get_arguments()
        .filter(|a| !matches!(a.get_id().as_str(), "config" | "config_dir"))
        .filter_map(|a| {
            let long = a.get_long()?.to_string();
            let help = a
                .get_long_help()
                .or(a.get_help())
                .map(|h| h.to_string())
                .unwrap_or_default();
            Some((a.get_id().to_string(), long, help))
        })
        .collect()
}

/// The default config file.
pub fn render() -> String {
    let mut out = String::from(
        "# ucr's configuration: `ucr serve --config FILE` (default /etc/ucr/config.toml), with\n\
         # drop-ins from --config-dir (default /etc/ucr/config.d/*.toml) merged over it in\n\
         # lexical order. Keys are `ucr serve`'s flags (any of their names, `-` or `_`); the\n\
         # command line wins over MESOS_<FLAG> environment variables, which win over these\n\
         # files. Printed by `ucr config default`: every flag with its default.\n",
    );
    for (id, long, help) in flags() {
        out.push('\n');
        for line in wrap(&help, 86) {
            out.push_str(&format!("# {line}\n").replace("# \n", "#\n"));
        }
        match default_of(&id) {
            Some(Default::Value(v)) => out.push_str(&format!("{long} = {v}\n")),
            // A Rust string's Debug form is a TOML basic string for these paths.
            Some(Default::Str(v)) => out.push_str(&format!("{long} = {v:?}\n")),
            Some(Default::Commented(example, why)) => {
                out.push_str(&format!("# ({why})\n# {long} = {example}\n"))
            }
            None => out.push_str(&format!("# (default not documented)\n# {long} =\n")),
        }
    }
    out
}

/// `text` in lines of at most `width` columns (words longer than that stay whole).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    for paragraph in text.split('\n') {
        let mut line = String::new();
        for word in paragraph.split_whitespace() {
            if !line.is_empty() && line.len() + 1 + word.len() > width {
                lines.push(std::mem::take(&mut line));
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_flag_has_a_documented_default_and_help() {
        for (id, long, help) in flags() {
            assert!(
                default_of(&id).is_some(),
                "--{long}: add its default to config::defaults"
            );
            assert!(!help.trim().is_empty(), "--{long} has no help");
        }
    }

    #[test]
    fn the_default_file_round_trips_to_the_defaults() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("config.toml");
        std::fs::write(&file, render()).expect("write");
        let none = std::path::PathBuf::new();
        let from_file = ServeFlags {
            config: Some(file),
            config_dir: Some(none.clone()),
            ..ServeFlags::default()
        }
        .resolve_with_env(Vec::new())
        .expect("the default file is valid");
        let without = ServeFlags {
            config: Some(none.clone()),
            config_dir: Some(none),
            ..ServeFlags::default()
        }
        .resolve_with_env(Vec::new())
        .expect("defaults");
        // Every setting, not only those GET_FLAGS shows.
        assert_eq!(format!("{from_file:#?}"), format!("{without:#?}"));
        // Every uncommented key was read: the file sets what it says.
        let text = render();
        assert!(text.contains("\nroot = \"/var/lib/ucr\"\n"), "{text}");
        assert!(text.contains("\n# listen = "), "{text}");
    }
}
