//! `Cni` end to end against fake plugins: small shell scripts in a tempdir that log how
//! they were called (environment and stdin, one file per call) and print canned results
//! or errors. The real plugins are exercised, as root, by `test/cni.rs`.

#![allow(clippy::unwrap_used)]

mod configs;
mod failures;
mod lifecycle;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use super::*;

/// A scratch CNI world: config dir, bin dir, cache dir and the plugins' call log.
struct World {
    dir: tempfile::TempDir,
}

/// One logged plugin call.
#[derive(Debug)]
struct Logged {
    plugin: String,
    command: String,
    env: Vec<(String, String)>,
    stdin: Value,
}

impl Logged {
    fn env(&self, name: &str) -> &str {
        self.env
            .iter()
            .find(|(k, _)| k == name)
            .map_or("<unset>", |(_, v)| v.as_str())
    }
}

impl World {
    fn new() -> World {
        let w = World {
            dir: tempfile::tempdir().unwrap(),
        };
        for d in ["conf", "bin", "cache", "log"] {
            std::fs::create_dir(w.dir.path().join(d)).unwrap();
        }
        w
    }

    fn conf_dir(&self) -> PathBuf {
        self.dir.path().join("conf")
    }
    fn bin_dir(&self) -> PathBuf {
        self.dir.path().join("bin")
    }
    fn cache_dir(&self) -> PathBuf {
        self.dir.path().join("cache")
    }
    fn log_dir(&self) -> PathBuf {
        self.dir.path().join("log")
    }

    fn config(&self, timeout: Duration) -> CniConfig {
        CniConfig {
            conf_dir: self.conf_dir(),
            // A missing first dir checks the search goes on to the next.
            bin_dirs: vec![self.dir.path().join("nobin"), self.bin_dir()],
            cache_dir: self.cache_dir(),
            plugin_timeout: timeout,
        }
    }

    /// A `Cni` that rescans on every call (the interval has its own test).
    fn cni(&self) -> Cni {
        Cni::with_rescan_interval(self.config(Duration::from_secs(10)), Duration::ZERO)
    }

    fn conf(&self, file: &str, text: &str) {
        std::fs::write(self.conf_dir().join(file), text).unwrap();
    }

    /// Installs plugin `name`: it logs its call, then runs `body` (shell).
    fn plugin(&self, name: &str, body: &str) {
        let log = self.log_dir();
        let script = format!(
            "#!/bin/sh\n\
             f=\"{log}/$(printf %03d $(ls '{log}' | wc -l))-{name}-$CNI_COMMAND\"\n\
             env | grep -E '^(CNI_|PATH=)' | sort > \"$f.tmp\"\n\
             echo STDIN >> \"$f.tmp\"\n\
             cat >> \"$f.tmp\"\n\
             mv \"$f.tmp\" \"$f\"\n\
             {body}\n",
            log = log.display()
        );
        let path = self.bin_dir().join(name);
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// A plugin that prints `result` on ADD and nothing otherwise.
    fn ok_plugin(&self, name: &str, result: &str) {
        self.plugin(
            name,
            &format!("[ \"$CNI_COMMAND\" = ADD ] && cat <<'EOF'\n{result}\nEOF\nexit 0"),
        );
    }

    /// Every call so far, in order; clears the log.
    fn calls(&self) -> Vec<Logged> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.log_dir())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_none())
            .collect();
        files.sort();
        files
            .iter()
            .map(|f| {
                let text = std::fs::read_to_string(f).unwrap();
                std::fs::remove_file(f).unwrap();
                let (env, stdin) = text.split_once("STDIN\n").unwrap();
                let name = f.file_name().unwrap().to_str().unwrap();
                let mut parts = name.splitn(2, '-');
                parts.next();
                let (plugin, command) = parts.next().unwrap().rsplit_once('-').unwrap();
                Logged {
                    plugin: plugin.into(),
                    command: command.into(),
                    env: env
                        .lines()
                        .filter_map(|l| l.split_once('='))
                        .map(|(k, v)| (k.into(), v.into()))
                        .collect(),
                    stdin: serde_json::from_str(stdin).unwrap_or(Value::Null),
                }
            })
            .collect()
    }

    fn cache_entries(&self) -> Vec<PathBuf> {
        let root = self.cache_dir().join("ucr");
        let Ok(dirs) = std::fs::read_dir(root) else {
            return Vec::new();
        };
        dirs.flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
            .map(|e| e.unwrap().path())
            .collect()
    }
}

fn attachment(cid: &str, netns: &Path) -> Attachment {
    Attachment {
        container_id: cid.into(),
        netns: netns.into(),
        ifname: "eth0".into(),
        network: None,
        pod_namespace: "default".into(),
        pod_name: "web".into(),
        pod_uid: "uid-1".into(),
        port_mappings: vec![PortMapping {
            host_port: 8080,
            container_port: 80,
            protocol: "TCP".into(),
            host_ip: String::new(),
        }],
        bandwidth: None,
        dns: Some(Dns {
            servers: vec!["10.96.0.10".into()],
            searches: vec!["svc.cluster.local".into()],
            options: vec!["ndots:5".into()],
        }),
        ips: Vec::new(),
    }
}

/// What the fake "ipam-ish" first plugin prints.
const RESULT_A: &str = r#"{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"/ns"}],"ips":[{"address":"fd00::2/64","interface":0},{"address":"10.9.0.2/24","gateway":"10.9.0.1","interface":0}],"dns":{"nameservers":["10.9.0.1"]}}"#;
/// What the second plugin prints (a meta plugin passes its prevResult on; ours says so
/// by adding a route, so the test can tell the two results apart).
const RESULT_B: &str = r#"{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"/ns"}],"ips":[{"address":"fd00::2/64","interface":0},{"address":"10.9.0.2/24","gateway":"10.9.0.1","interface":0}],"routes":[{"dst":"0.0.0.0/0","gw":"10.9.0.1"}],"dns":{"nameservers":["10.9.0.1"]}}"#;

/// The usual two-plugin list: `a` (no capabilities), then `b` (portMappings and
/// bandwidth).
const LIST: &str = r#"{"cniVersion":"1.0.0","name":"podnet","plugins":[
    {"type":"a","subnet":"10.9.0.0/24"},
    {"type":"b","capabilities":{"portMappings":true,"bandwidth":true}}]}"#;
