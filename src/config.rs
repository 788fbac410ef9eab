//! Command line and configuration file. Every `serve` flag can also come from the TOML file
//! given with `--config` (keys spelled like the long flag, `-` or `_`); a flag on the command
//! line wins. Flags that mirror a Mesos agent flag also accept the Mesos spelling.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use serde::Deserialize;

#[derive(Debug, Parser)]
#[command(
    name = "ucr",
    version,
    about = "A container runtime for Kubernetes nodes (Mesos UCR design, CRI front door)"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: the CRI ImageService and RuntimeService on a unix socket.
    Serve(Box<ServeFlags>),
    /// Ask a running daemon to prune unused images and layers now (the same code as GC).
    Prune(PruneFlags),
    /// Ask a running daemon to pull an image (CRI PullImage); prints the image id.
    Pull(PullFlags),
    /// Run a launch spec (JSON) in the foreground and exit with its exit code: the
    /// launcher without the daemon, for tests and debugging.
    #[command(hide = true)]
    Launch(LaunchFlags),
    /// Internal: the per-container monitor (started by the daemon).
    #[command(hide = true)]
    Monitor(MonitorFlags),
    /// Internal: PID 1 of a pod's shared PID namespace (started by the daemon).
    #[command(hide = true)]
    PodInit(PodInitFlags),
    /// Internal: runs a command inside a running container's namespaces (ExecSync).
    #[command(hide = true)]
    Exec(ExecFlags),
    /// Benchmark: times the pod and container lifecycle over the CRI (see `ucr::bench`).
    #[command(hide = true)]
    BenchCri(BenchFlags),
}

#[derive(Debug, Args)]
pub struct BenchFlags {
    /// The daemon's socket.
    #[arg(long, default_value = DEFAULT_LISTEN)]
    pub listen: PathBuf,
    /// Pods to run through the whole lifecycle.
    #[arg(long, default_value_t = 100)]
    pub pods: usize,
    /// Pods in flight at once.
    #[arg(long, default_value_t = 1)]
    pub parallel: usize,
    /// The image of each pod's one container (it runs `sleep 3600`).
    #[arg(long)]
    pub image: String,
    /// StopContainer's timeout in seconds (0: SIGKILL at once).
    #[arg(long, default_value_t = 0)]
    pub stop_timeout: i64,
    /// Instead: start this many pods with a running container, print `holding`, wait
    /// for end of input, then remove them (for measuring memory).
    #[arg(long)]
    pub hold: Option<usize>,
}

#[derive(Debug, Args)]
pub struct MonitorFlags {
    /// The container's bundle directory (holds monitor.json; receives pid and exit files).
    #[arg(long)]
    pub bundle: PathBuf,
    /// An inherited descriptor on which the monitor reports `ok <pid>` or `error <why>`.
    #[arg(long)]
    pub sync_fd: Option<i32>,
}

#[derive(Debug, Args)]
pub struct PodInitFlags {
    /// The pod's run directory (receives init.pid).
    #[arg(long)]
    pub dir: PathBuf,
    /// An inherited descriptor on which it reports `ok <pid>` or `error <why>`.
    #[arg(long)]
    pub sync_fd: i32,
}

#[derive(Debug, Args)]
pub struct ExecFlags {
    /// The exec spec, as JSON (target process, argv, env, user, cwd).
    #[arg(long)]
    pub spec: PathBuf,
    /// An inherited descriptor on which a failure to start the command is reported, as
    /// one JSON line `{"kind": …, "message": …}`; nothing is written once it runs.
    #[arg(long)]
    pub report_fd: Option<i32>,
}

#[derive(Debug, Args)]
pub struct LaunchFlags {
    /// The launch spec, as JSON.
    #[arg(long)]
    pub spec: PathBuf,
}

#[derive(Debug, Args)]
pub struct PullFlags {
    /// The daemon's socket.
    #[arg(long, default_value = DEFAULT_LISTEN)]
    pub listen: PathBuf,
    /// Image reference.
    pub image: String,
}

#[derive(Debug, Args, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ServeFlags {
    /// TOML file holding any of these flags (command line wins).
    #[arg(long)]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Persistent state directory.
    #[arg(long)]
    pub root: Option<PathBuf>,
    /// Runtime state directory (lost at reboot).
    #[arg(long)]
    pub run_root: Option<PathBuf>,
    /// CRI unix socket path.
    #[arg(long)]
    pub listen: Option<PathBuf>,
    /// Image store directory (default `<root>/images`).
    #[arg(long, alias = "docker_store_dir")]
    #[serde(alias = "docker_store_dir")]
    pub docker_store_dir: Option<PathBuf>,
    /// `HOST=URL`: try URL before HOST for images of HOST (repeatable, tried in order).
    #[arg(long = "registry-mirror")]
    #[serde(default)]
    pub registry_mirror: Vec<String>,
    /// A registry host (`host[:port]`) reachable over plain HTTP (repeatable).
    #[arg(long = "insecure-registry")]
    #[serde(default)]
    pub insecure_registry: Vec<String>,
    /// Mesos `--docker_registry`: a URL is the registry for names without a host;
    /// a directory holds `docker save` archives for such names.
    #[arg(long, alias = "docker_registry")]
    #[serde(alias = "docker_registry")]
    pub docker_registry: Option<String>,
    /// Mesos `--docker_config`: a docker `config.json` path or its JSON text.
    #[arg(long, alias = "docker_config")]
    #[serde(alias = "docker_config")]
    pub docker_config: Option<String>,
    /// Mesos `--image_gc_config`: a path or JSON text.
    #[arg(long, alias = "image_gc_config")]
    #[serde(alias = "image_gc_config")]
    pub image_gc_config: Option<String>,
    /// Layer downloads running at once, over all pulls.
    #[arg(long)]
    pub max_concurrent_downloads: Option<usize>,
    /// Cancel a pull that receives no data for this long (`90s`, `1m`, `500ms`).
    #[arg(long)]
    pub image_pull_progress_timeout: Option<String>,
    /// Images never removed by GC, reported as pinned (repeatable).
    #[arg(long = "pinned-images")]
    #[serde(default)]
    pub pinned_images: Vec<String>,
    /// Log filter (`info`, `debug`, `ucr=trace`...).
    #[arg(long)]
    pub log_level: Option<String>,
    /// What to do with containers found at start-up (Mesos `--recover`): `reconnect`
    /// (default) keeps them; `cleanup` removes every pod and container, then exits.
    #[arg(long)]
    pub recover: Option<String>,
    /// Rootfs backend: overlay, copy, bind or auto (overlay when a trial mount works).
    #[arg(long, alias = "image_provisioner_backend")]
    #[serde(alias = "image_provisioner_backend")]
    pub image_provisioner_backend: Option<String>,
    /// CNI network configs (`*.conflist`, `*.conf`, `*.json`); the first in lexical order
    /// is the pods' network. Watched: changes apply without a restart.
    #[arg(long, alias = "network_cni_config_dir")]
    #[serde(alias = "network_cni_config_dir")]
    pub cni_conf_dir: Option<PathBuf>,
    /// Where CNI plugins are looked for, colon-separated, in order.
    #[arg(long, alias = "network_cni_plugins_dir")]
    #[serde(alias = "network_cni_plugins_dir")]
    pub cni_bin_dir: Option<String>,
    /// Longest a CNI plugin may run (`30s`, `2m`) before it is killed.
    #[arg(long)]
    pub cni_plugin_timeout: Option<String>,
}

#[derive(Debug, Args)]
pub struct PruneFlags {
    /// The daemon's socket.
    #[arg(long, default_value = DEFAULT_LISTEN)]
    pub listen: PathBuf,
    /// Images to keep even if unused (repeatable).
    #[arg(long = "exclude")]
    pub exclude: Vec<String>,
}

pub const DEFAULT_ROOT: &str = "/var/lib/ucr";
pub const DEFAULT_RUN_ROOT: &str = "/run/ucr";
pub const DEFAULT_LISTEN: &str = "/run/ucr/ucr.sock";
pub const DEFAULT_CNI_CONF_DIR: &str = "/etc/cni/net.d";
/// Where upstream's and Debian's packages put the plugins.
pub const DEFAULT_CNI_BIN_DIR: &str = "/opt/cni/bin:/usr/lib/cni";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("parsing config file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("--registry-mirror {value:?}: expected HOST=URL with an http(s) URL")]
    Mirror { value: String },
    #[error("--{flag} {value:?}: {reason}")]
    Value {
        flag: &'static str,
        value: String,
        reason: String,
    },
}

/// The daemon's settings after merging flags, file and defaults.
#[derive(Debug, Clone)]
pub struct Settings {
    pub root: PathBuf,
    pub run_root: PathBuf,
    pub listen: PathBuf,
    pub store_dir: PathBuf,
    pub mirrors: BTreeMap<String, Vec<String>>,
    pub insecure_registries: Vec<String>,
    pub docker_registry: Option<DockerRegistry>,
    pub docker_config: Option<String>,
    pub image_gc_config: Option<String>,
    pub max_concurrent_downloads: usize,
    pub pull_progress_timeout: Duration,
    pub pinned_images: Vec<String>,
    pub log_level: String,
    pub backend: String,
    pub recover: Recover,
    pub cni_conf_dir: PathBuf,
    pub cni_bin_dirs: Vec<PathBuf>,
    pub cni_plugin_timeout: Duration,
}

/// Mesos `--recover`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recover {
    Reconnect,
    Cleanup,
}

/// Mesos `--docker_registry`: where names without a registry host come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DockerRegistry {
    /// Registry base URL (`https://host:port`).
    Url(String),
    /// Directory of `docker save` / OCI archives, Mesos' local puller.
    Dir(PathBuf),
}

impl ServeFlags {
    /// Merges the command line over the file named by `--config` and fills in defaults.
    pub fn resolve(self) -> Result<Settings, ConfigError> {
        let file = match &self.config {
            Some(path) => read_file(path)?,
            None => ServeFlags::default(),
        };
        let cli = self;
        macro_rules! pick {
            ($f:ident) => {
                cli.$f.or(file.$f)
            };
        }
        let list = |a: Vec<String>, b: Vec<String>| if a.is_empty() { b } else { a };
        let root = pick!(root).unwrap_or_else(|| PathBuf::from(DEFAULT_ROOT));
        let run_root = pick!(run_root).unwrap_or_else(|| PathBuf::from(DEFAULT_RUN_ROOT));
        let listen = pick!(listen).unwrap_or_else(|| run_root.join("ucr.sock"));
        let store_dir = pick!(docker_store_dir).unwrap_or_else(|| root.join("images"));
        let mut mirrors: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for m in list(cli.registry_mirror, file.registry_mirror) {
            let (host, url) = parse_mirror(&m)?;
            mirrors.entry(host).or_default().push(url);
        }
        let docker_registry = pick!(docker_registry)
            .map(|v| parse_docker_registry(&v))
            .transpose()?;
        let timeout = pick!(image_pull_progress_timeout)
            .map(|v| {
                parse_duration(&v).map_err(|reason| ConfigError::Value {
                    flag: "image-pull-progress-timeout",
                    value: v.clone(),
                    reason,
                })
            })
            .transpose()?
            .unwrap_or(Duration::from_secs(60));
        let cni_plugin_timeout = pick!(cni_plugin_timeout)
            .map(|v| {
                parse_duration(&v).map_err(|reason| ConfigError::Value {
                    flag: "cni-plugin-timeout",
                    value: v.clone(),
                    reason,
                })
            })
            .transpose()?
            .unwrap_or(Duration::from_secs(60));
        let cni_bin_dirs = pick!(cni_bin_dir)
            .unwrap_or_else(|| DEFAULT_CNI_BIN_DIR.into())
            .split(':')
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .collect();
        let max_concurrent_downloads = pick!(max_concurrent_downloads).unwrap_or(3);
        if max_concurrent_downloads == 0 {
            return Err(ConfigError::Value {
                flag: "max-concurrent-downloads",
                value: "0".into(),
                reason: "must be at least 1".into(),
            });
        }
        Ok(Settings {
            root,
            run_root,
            listen,
            store_dir,
            mirrors,
            insecure_registries: list(cli.insecure_registry, file.insecure_registry),
            docker_registry,
            docker_config: pick!(docker_config),
            image_gc_config: pick!(image_gc_config),
            max_concurrent_downloads,
            pull_progress_timeout: timeout,
            pinned_images: list(cli.pinned_images, file.pinned_images),
            log_level: pick!(log_level).unwrap_or_else(|| "info".into()),
            backend: pick!(image_provisioner_backend).unwrap_or_else(|| "auto".into()),
            cni_conf_dir: pick!(cni_conf_dir).unwrap_or_else(|| DEFAULT_CNI_CONF_DIR.into()),
            cni_bin_dirs,
            cni_plugin_timeout,
            recover: match pick!(recover).as_deref() {
                None | Some("reconnect") => Recover::Reconnect,
                Some("cleanup") => Recover::Cleanup,
                Some(other) => {
                    return Err(ConfigError::Value {
                        flag: "recover",
                        value: other.to_string(),
                        reason: "expected reconnect or cleanup".into(),
                    })
                }
            },
        })
    }
}

fn read_file(path: &Path) -> Result<ServeFlags, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    // Accept snake_case keys too (the Mesos spelling) by normalising before parsing.
    toml::from_str::<toml::Table>(&text)
        .and_then(|table| {
            let table: toml::Table = table
                .into_iter()
                .map(|(k, v)| (k.replace('_', "-"), v))
                .collect();
            table.try_into()
        })
        .map_err(|source| ConfigError::Parse {
            path: path.to_path_buf(),
            source: Box::new(source),
        })
}

fn parse_mirror(value: &str) -> Result<(String, String), ConfigError> {
    let bad = || ConfigError::Mirror {
        value: value.to_string(),
    };
    let (host, url) = value.split_once('=').ok_or_else(bad)?;
    if host.is_empty() || !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(bad());
    }
    Ok((host.to_string(), url.trim_end_matches('/').to_string()))
}

fn parse_docker_registry(value: &str) -> Result<DockerRegistry, ConfigError> {
    if value.starts_with('/') {
        return Ok(DockerRegistry::Dir(PathBuf::from(value)));
    }
    if value.starts_with("http://") || value.starts_with("https://") {
        // Mesos ignores any path in the URL; so do we.
        let scheme_end = value.find("://").map(|i| i + 3).unwrap_or(0);
        let host_end = value[scheme_end..]
            .find('/')
            .map(|i| scheme_end + i)
            .unwrap_or(value.len());
        return Ok(DockerRegistry::Url(value[..host_end].to_string()));
    }
    Err(ConfigError::Value {
        flag: "docker-registry",
        value: value.to_string(),
        reason: "expected an http(s) URL or an absolute directory".into(),
    })
}

/// `500ms`, `30s`, `5m`, `1h`, or a bare number of seconds.
pub fn parse_duration(value: &str) -> Result<Duration, String> {
    let value = value.trim();
    let split = value
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(value.len());
    let (num, unit) = value.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{value:?} is not a duration like 90s or 5m"))?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("unknown unit {unit:?} (ms, s, m, h)")),
    };
    if !secs.is_finite() || secs <= 0.0 {
        return Err(format!("{value:?} must be positive"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(args: &[&str]) -> ServeFlags {
        let mut argv = vec!["ucr", "serve"];
        argv.extend_from_slice(args);
        match Cli::parse_from(argv).command {
            Command::Serve(f) => *f,
            other => panic!("not serve: {other:?}"),
        }
    }

    #[test]
    fn defaults() {
        let s = flags(&[]).resolve().expect("defaults resolve");
        assert_eq!(s.root, PathBuf::from("/var/lib/ucr"));
        assert_eq!(s.listen, PathBuf::from("/run/ucr/ucr.sock"));
        assert_eq!(s.store_dir, PathBuf::from("/var/lib/ucr/images"));
        assert_eq!(s.max_concurrent_downloads, 3);
        assert_eq!(s.pull_progress_timeout, Duration::from_secs(60));
    }

    #[test]
    fn mesos_spellings_and_mirrors() {
        let s = flags(&[
            "--docker_registry",
            "/srv/archives",
            "--registry-mirror",
            "docker.io=http://127.0.0.1:5000/",
            "--registry-mirror",
            "docker.io=http://127.0.0.1:5001",
            "--docker_store_dir",
            "/x/store",
        ])
        .resolve()
        .expect("valid");
        assert_eq!(
            s.docker_registry,
            Some(DockerRegistry::Dir("/srv/archives".into()))
        );
        assert_eq!(
            s.mirrors["docker.io"],
            vec!["http://127.0.0.1:5000", "http://127.0.0.1:5001"]
        );
        assert_eq!(s.store_dir, PathBuf::from("/x/store"));
        let s = flags(&["--docker-registry", "https://reg.example:5000/ignored/path"])
            .resolve()
            .expect("valid");
        assert_eq!(
            s.docker_registry,
            Some(DockerRegistry::Url("https://reg.example:5000".into()))
        );
    }

    #[test]
    fn bad_values_name_the_flag() {
        let e = flags(&["--registry-mirror", "nourl"])
            .resolve()
            .expect_err("bad");
        assert!(e.to_string().contains("nourl"), "{e}");
        let e = flags(&["--image-pull-progress-timeout", "3 parsecs"])
            .resolve()
            .expect_err("bad");
        assert!(e.to_string().contains("image-pull-progress-timeout"), "{e}");
        let e = flags(&["--docker-registry", "relative/dir"])
            .resolve()
            .expect_err("bad");
        assert!(e.to_string().contains("docker-registry"), "{e}");
    }

    #[test]
    fn file_is_read_and_command_line_wins() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ucr.toml");
        std::fs::write(
            &path,
            "root = \"/from/file\"\nmax_concurrent_downloads = 7\nimage-pull-progress-timeout = \"90s\"\n",
        )
        .expect("write");
        let s = flags(&[
            "--config",
            path.to_str().expect("utf8"),
            "--root",
            "/from/flag",
        ])
        .resolve()
        .expect("valid");
        assert_eq!(s.root, PathBuf::from("/from/flag"));
        assert_eq!(s.max_concurrent_downloads, 7);
        assert_eq!(s.pull_progress_timeout, Duration::from_secs(90));
        std::fs::write(&path, "no_such_flag = 1\n").expect("write");
        let e = flags(&["--config", path.to_str().expect("utf8")])
            .resolve()
            .expect_err("unknown key");
        assert!(e.to_string().contains("no-such-flag"), "{e}");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("1d").is_err());
    }
}
