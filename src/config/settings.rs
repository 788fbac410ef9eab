//! The daemon's settings: `serve`'s flags from the command line, over `MESOS_<FLAG>`
//! environment variables, over the TOML file given with `--config` (keys spelled like any
//! of the flag's names, `-` or `_`), with defaults filled in and every value checked.
//! Flags that mirror a Mesos agent flag also accept the Mesos spelling (see `names`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::cli::ServeFlags;

pub const DEFAULT_ROOT: &str = "/var/lib/ucr";
pub const DEFAULT_RUN_ROOT: &str = "/run/ucr";
pub const DEFAULT_LISTEN: &str = "/run/ucr/ucr.sock";
pub const DEFAULT_CNI_CONF_DIR: &str = "/etc/cni/net.d";
/// Where upstream's and Debian's packages put the plugins.
pub const DEFAULT_CNI_BIN_DIR: &str = "/opt/cni/bin:/usr/lib/cni";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading config file {path}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("parsing config file {path}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("--registry-mirror {value:?}: expected HOST=URL with an http(s) URL")]
    Mirror { value: String },
    #[error("--isolation / --image_providers: {reason}")]
    Isolation { reason: String },
    #[error("environment variable {var}: {reason}")]
    Env { var: String, reason: String },
    #[error("--{flag} {value:?}: {reason}")]
    Value {
        flag: &'static str,
        value: String,
        reason: String,
    },
}

/// The Mesos agent's own port.
pub const DEFAULT_MESOS_LISTEN: &str = "127.0.0.1:5051";

/// The daemon's settings after merging flags, file and defaults.
#[derive(Debug, Clone)]
pub struct Settings {
    pub root: PathBuf,
    pub run_root: PathBuf,
    pub listen: PathBuf,
    /// The group given the CRI socket (mode 0660), besides root; `None`: root's group.
    pub listen_group: Option<u32>,
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
    pub cgroups_hierarchy: PathBuf,
    pub cgroups_root: crate::isolators::cgroups::path::CgroupPath,
    pub net_cls: Option<crate::isolators::cgroups::subsystems::net_cls::Handles>,
    pub pids_limit: Option<i64>,
    /// The isolators and image providers selected (`--isolation`, `--image_providers`).
    pub isolation: super::isolation::Isolation,
    /// The Mesos door's HTTP authentication flags.
    pub http_auth: HttpAuth,
    /// The `MESOS_*` variables read as flags, and those naming no flag (names only:
    /// values may be secrets), for the log.
    pub env_read: Vec<String>,
    pub env_ignored: Vec<String>,
    pub disk_watch_interval: Duration,
    pub enforce_disk_quota: bool,
    pub xfs_project_range: crate::isolators::disk::xfs::ProjectRange,
    /// `RuntimeDefault` seccomp for containers that ask for no profile.
    pub seccomp_default: bool,
    pub seccomp_profile_root: PathBuf,
    /// Where the streaming server listens; `None`: no streaming server.
    pub stream_address: Option<std::net::SocketAddr>,
    pub stream_tls: Option<crate::streaming::TlsFiles>,
    /// Where the Mesos operator API listens; `None`: not served.
    pub mesos_listen: Option<std::net::SocketAddr>,
    /// Where a Mesos container sees its sandbox (absolute).
    pub sandbox_directory: String,
    /// Where the Prometheus endpoint listens; `None`: not served.
    pub metrics_listen: Option<std::net::SocketAddr>,
    pub log_format: crate::telemetry::logging::LogFormat,
    /// The OpenTelemetry collector the spans go to; `None`: not exported.
    pub otlp_endpoint: Option<String>,
}

/// Mesos's `--sandbox_directory` default.
pub const DEFAULT_SANDBOX_DIRECTORY: &str = "/mnt/mesos/sandbox";

/// Mesos's `--authenticate_http_readwrite`, `--authenticate_http_readonly` and
/// `--http_credentials` (the file is read by the Mesos door at start).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpAuth {
    pub readwrite: bool,
    pub readonly: bool,
    pub credentials: Option<PathBuf>,
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

impl Settings {
    /// The settings as GET_FLAGS reports them: `name = value`, Mesos's spelling where
    /// Mesos has the flag.
    pub fn as_flags(&self) -> Vec<(String, String)> {
        let path = |p: &std::path::Path| p.display().to_string();
        let mut flags = vec![
            ("work_dir".to_string(), path(&self.root)),
            ("runtime_dir".into(), path(&self.run_root)),
            ("docker_store_dir".into(), path(&self.store_dir)),
            ("isolation".into(), self.isolation.isolation_flag()),
            (
                "image_providers".into(),
                self.isolation.image_providers.join(","),
            ),
            (
                "authenticate_http_readwrite".into(),
                self.http_auth.readwrite.to_string(),
            ),
            (
                "authenticate_http_readonly".into(),
                self.http_auth.readonly.to_string(),
            ),
            ("image_provisioner_backend".into(), self.backend.clone()),
            ("cgroups_hierarchy".into(), path(&self.cgroups_hierarchy)),
            ("cgroups_root".into(), self.cgroups_root.to_string()),
            ("network_cni_config_dir".into(), path(&self.cni_conf_dir)),
            (
                "network_cni_plugins_dir".into(),
                self.cni_bin_dirs
                    .iter()
                    .map(|d| path(d))
                    .collect::<Vec<_>>()
                    .join(":"),
            ),
            (
                "seccomp_config_dir".into(),
                path(&self.seccomp_profile_root),
            ),
            ("cri_listen".into(), path(&self.listen)),
            (
                "cri_listen_group".into(),
                self.listen_group.map_or("root".into(), |g| g.to_string()),
            ),
            ("logging_level".into(), self.log_level.clone()),
        ];
        if let Some(registry) = &self.docker_registry {
            let value = match registry {
                DockerRegistry::Url(u) => u.clone(),
                DockerRegistry::Dir(d) => path(d),
            };
            flags.push(("docker_registry".into(), value));
        }
        // A path is shown; inline JSON (Mesos allows it) holds credentials and is not.
        if let Some(config) = &self.docker_config {
            let shown = if config.trim_start().starts_with('{') {
                "(inline JSON, not shown)".to_string()
            } else {
                config.clone()
            };
            flags.push(("docker_config".into(), shown));
        }
        flags.extend([
            (
                "recover".to_string(),
                match self.recover {
                    Recover::Reconnect => "reconnect",
                    Recover::Cleanup => "cleanup",
                }
                .to_string(),
            ),
            (
                "container_disk_watch_interval".into(),
                mesos_duration(self.disk_watch_interval),
            ),
            (
                "enforce_container_disk_quota".into(),
                self.enforce_disk_quota.to_string(),
            ),
            (
                "xfs_project_range".into(),
                self.xfs_project_range.to_string(),
            ),
            (
                "max_concurrent_downloads".into(),
                self.max_concurrent_downloads.to_string(),
            ),
            (
                "image_pull_progress_timeout".into(),
                mesos_duration(self.pull_progress_timeout),
            ),
            ("seccomp_default".into(), self.seccomp_default.to_string()),
        ]);
        if let Some(h) = &self.net_cls {
            flags.push((
                "cgroups_net_cls_primary_handle".into(),
                format!("{:#x}", h.primary),
            ));
            flags.push((
                "cgroups_net_cls_secondary_handles".into(),
                format!("{:#x},{:#x}", h.secondary.0, h.secondary.1),
            ));
        }
        if let Some(limit) = self.pids_limit {
            flags.push(("pids_limit".into(), limit.to_string()));
        }
        // The path, never the secrets in it.
        if let Some(credentials) = &self.http_auth.credentials {
            flags.push(("http_credentials".into(), path(credentials)));
        }
        if let Some(gc) = &self.image_gc_config {
            flags.push(("image_gc_config".into(), gc.clone()));
        }
        if let Some(listen) = self.mesos_listen {
            flags.push(("mesos_listen".into(), listen.to_string()));
        }
        if let Some(listen) = self.metrics_listen {
            flags.push(("metrics_listen".into(), listen.to_string()));
        }
        flags.push(("sandbox_directory".into(), self.sandbox_directory.clone()));
        flags.sort();
        flags
    }
}

impl ServeFlags {
    /// Merges the command line over the `MESOS_*` environment over the file named by
    /// `--config`, and fills in defaults.
    pub fn resolve(self) -> Result<Settings, ConfigError> {
        // `vars()` would panic on a variable that is not UTF-8, which any process may
        // have; such a MESOS_* value is refused by its flag's parser instead.
        self.resolve_with_env(std::env::vars_os().map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                v.to_string_lossy().into_owned(),
            )
        }))
    }

    /// [`resolve`](Self::resolve) with the environment given.
    pub fn resolve_with_env(
        self,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings, ConfigError> {
        let (env, env_read, env_ignored) = super::names::from_env(vars)?;
        let file = super::file::load(
            self.config.as_deref().or(env.config.as_deref()),
            self.config_dir.as_deref().or(env.config_dir.as_deref()),
        )?;
        let cli = self;
        macro_rules! pick {
            ($f:ident) => {
                cli.$f.or(env.$f).or(file.$f)
            };
        }
        let list = |a: Vec<String>, e: Vec<String>, f: Vec<String>| {
            [a, e, f]
                .into_iter()
                .find(|l| !l.is_empty())
                .unwrap_or_default()
        };
        let root = pick!(root).unwrap_or_else(|| PathBuf::from(DEFAULT_ROOT));
        let run_root = pick!(run_root).unwrap_or_else(|| PathBuf::from(DEFAULT_RUN_ROOT));
        let listen = pick!(listen).unwrap_or_else(|| run_root.join("ucr.sock"));
        let listen_group = pick!(listen_group).map(|g| group_id(&g)).transpose()?;
        let store_dir = pick!(docker_store_dir).unwrap_or_else(|| root.join("images"));
        let mut mirrors: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for m in list(
            cli.registry_mirror,
            env.registry_mirror,
            file.registry_mirror,
        ) {
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
        let root_value = pick!(cgroups_root).unwrap_or_else(|| "ucr".into());
        // Mesos spells the root without a leading slash (`mesos`); both mean the same.
        let cgroups_root = crate::isolators::cgroups::path::CgroupPath::parse(&format!(
            "/{}",
            root_value.trim_start_matches('/')
        ))
        .map_err(|e| ConfigError::Value {
            flag: "cgroups-root",
            value: root_value.clone(),
            reason: e.to_string(),
        })?;
        let primary_handle = pick!(cgroups_net_cls_primary_handle);
        let net_cls = match (
            primary_handle.clone(),
            pick!(cgroups_net_cls_secondary_handles),
        ) {
            (None, None) => None,
            (Some(p), Some(s)) => Some(
                crate::isolators::cgroups::subsystems::net_cls::Handles::parse(&p, &s).map_err(
                    |e| ConfigError::Value {
                        flag: e.flag.trim_start_matches("--"),
                        value: e.value.clone(),
                        reason: e.reason.to_string(),
                    },
                )?,
            ),
            (p, s) => {
                return Err(ConfigError::Value {
                    flag: "cgroups-net-cls-secondary-handles",
                    value: format!("{p:?} / {s:?}"),
                    reason: "the primary handle and the secondary handles go together".into(),
                })
            }
        };
        let pids_limit = pick!(pids_limit);
        if pids_limit.is_some_and(|l| l == 0 || l < -1) {
            return Err(ConfigError::Value {
                flag: "pids-limit",
                value: format!("{pids_limit:?}"),
                reason: "expected a positive number, or -1 for no limit".into(),
            });
        }
        let isolation = super::isolation::Isolation::parse(
            pick!(isolation).as_deref(),
            pick!(image_providers).as_deref(),
        )?;
        if net_cls.is_some() && !isolation.has("cgroups/net_cls") {
            return Err(ConfigError::Value {
                flag: "cgroups-net-cls-primary-handle",
                value: primary_handle.unwrap_or_default(),
                reason: "--isolation leaves out cgroups/net_cls, which uses the handles".into(),
            });
        }
        let http_auth = HttpAuth {
            readwrite: pick!(authenticate_http_readwrite).unwrap_or(false),
            readonly: pick!(authenticate_http_readonly).unwrap_or(false),
            // Mesos takes `file:///path` as well as `/path`.
            credentials: pick!(http_credentials).map(|p| {
                p.to_str()
                    .and_then(|s| s.strip_prefix("file://"))
                    .map(PathBuf::from)
                    .unwrap_or(p)
            }),
        };
        let disk_watch_interval = pick!(container_disk_watch_interval)
            .map(|v| {
                parse_duration(&v).map_err(|reason| ConfigError::Value {
                    flag: "container-disk-watch-interval",
                    value: v.clone(),
                    reason,
                })
            })
            .transpose()?
            .unwrap_or(Duration::from_secs(15));
        if disk_watch_interval.is_zero() {
            return Err(ConfigError::Value {
                flag: "container-disk-watch-interval",
                value: "0".into(),
                reason: "must be longer than zero".into(),
            });
        }
        let range = pick!(xfs_project_range)
            .unwrap_or_else(|| crate::isolators::disk::xfs::DEFAULT_PROJECT_RANGE.to_string());
        let xfs_project_range =
            crate::isolators::disk::xfs::ProjectRange::parse(&range).map_err(|e| {
                ConfigError::Value {
                    flag: "xfs-project-range",
                    value: range.clone(),
                    reason: e.to_string(),
                }
            })?;
        let stream_address = match pick!(stream_address).as_deref().map(str::trim) {
            Some("") => None,
            value => {
                let ip = value.unwrap_or("127.0.0.1");
                let ip: std::net::IpAddr =
                    ip.trim_matches(['[', ']'])
                        .parse()
                        .map_err(|e| ConfigError::Value {
                            flag: "stream-address",
                            value: ip.to_string(),
                            reason: format!("not an IP address: {e}"),
                        })?;
                Some(std::net::SocketAddr::new(
                    ip,
                    pick!(stream_port).unwrap_or(0),
                ))
            }
        };
        let stream_tls = match (pick!(stream_tls_cert), pick!(stream_tls_key)) {
            (Some(cert), Some(key)) => Some(crate::streaming::TlsFiles { cert, key }),
            (None, None) => None,
            (cert, key) => {
                return Err(ConfigError::Value {
                    flag: "stream-tls-cert",
                    value: format!("{cert:?} / {key:?}"),
                    reason: "the certificate and the key go together".into(),
                })
            }
        };
        let mesos_listen = match pick!(mesos_listen).as_deref().map(str::trim) {
            Some("") => None,
            value => {
                let value = value.unwrap_or(DEFAULT_MESOS_LISTEN);
                Some(value.parse().map_err(|e| ConfigError::Value {
                    flag: "mesos-listen",
                    value: value.to_string(),
                    reason: format!("expected IP:PORT: {e}"),
                })?)
            }
        };
        let metrics_listen = match pick!(metrics_listen).as_deref().map(str::trim) {
            None | Some("") => None,
            Some(value) => Some(value.parse().map_err(|e| ConfigError::Value {
                flag: "metrics-listen",
                value: value.to_string(),
                reason: format!("expected IP:PORT: {e}"),
            })?),
        };
        let log_format = match pick!(log_format) {
            None => Default::default(),
            Some(value) => value.parse().map_err(|reason| ConfigError::Value {
                flag: "log-format",
                value: value.clone(),
                reason,
            })?,
        };
        let sandbox_directory =
            pick!(sandbox_directory).unwrap_or_else(|| DEFAULT_SANDBOX_DIRECTORY.into());
        let normal = std::path::Path::new(&sandbox_directory)
            .components()
            .all(|c| !matches!(c, std::path::Component::ParentDir));
        if !sandbox_directory.starts_with('/') || sandbox_directory == "/" || !normal {
            return Err(ConfigError::Value {
                flag: "sandbox-directory",
                value: sandbox_directory,
                reason: "expected an absolute path below / without '..'".into(),
            });
        }
        let otlp_endpoint = pick!(otlp_endpoint).filter(|u| !u.trim().is_empty());
        if let Some(url) = &otlp_endpoint {
            crate::telemetry::otlp::traces_url(url).map_err(|e| ConfigError::Value {
                flag: "otlp-endpoint",
                value: url.clone(),
                reason: e.to_string(),
            })?;
        }
        Ok(Settings {
            otlp_endpoint,
            metrics_listen,
            log_format,
            env_read,
            env_ignored,
            http_auth,
            mesos_listen,
            sandbox_directory,
            stream_address,
            stream_tls,
            isolation,
            disk_watch_interval,
            enforce_disk_quota: pick!(enforce_container_disk_quota).unwrap_or(false),
            xfs_project_range,
            seccomp_default: pick!(seccomp_default).unwrap_or(false),
            seccomp_profile_root: pick!(seccomp_profile_root)
                .unwrap_or_else(|| crate::isolators::linux::seccomp::DEFAULT_PROFILE_ROOT.into()),
            cgroups_hierarchy: pick!(cgroups_hierarchy)
                .unwrap_or_else(|| PathBuf::from("/sys/fs/cgroup")),
            cgroups_root,
            net_cls,
            pids_limit,
            root,
            run_root,
            listen,
            listen_group,
            store_dir,
            mirrors,
            insecure_registries: list(
                cli.insecure_registry,
                env.insecure_registry,
                file.insecure_registry,
            ),
            docker_registry,
            docker_config: pick!(docker_config),
            image_gc_config: pick!(image_gc_config),
            max_concurrent_downloads,
            pull_progress_timeout: timeout,
            pinned_images: list(cli.pinned_images, env.pinned_images, file.pinned_images),
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

/// `--listen-group`: a group name from the group database, or a numeric gid.
fn group_id(value: &str) -> Result<u32, ConfigError> {
    if let Ok(gid) = value.parse::<u32>() {
        return Ok(gid);
    }
    match nix::unistd::Group::from_name(value) {
        Ok(Some(g)) => Ok(g.gid.as_raw()),
        Ok(None) => Err(ConfigError::Value {
            flag: "listen-group",
            value: value.to_string(),
            reason: "no such group (create it: groupadd --system ucr)".into(),
        }),
        Err(e) => Err(ConfigError::Value {
            flag: "listen-group",
            value: value.to_string(),
            reason: format!("looking it up: {e}"),
        }),
    }
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

/// A duration as Mesos's flags print one (`15secs`, `2mins`, `500ms`).
fn mesos_duration(d: Duration) -> String {
    match (d.subsec_nanos(), d.as_secs()) {
        (0, s) if s >= 60 && s % 60 == 0 => format!("{}mins", s / 60),
        (0, s) => format!("{s}secs"),
        _ => format!("{}ms", d.as_millis()),
    }
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
    use crate::config::cli::{Cli, Command};
    use clap::Parser;

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
    fn sandbox_directory_in_its_mesos_spelling() {
        let s = flags(&[]).resolve().expect("default");
        assert_eq!(s.sandbox_directory, "/mnt/mesos/sandbox");
        let s = flags(&["--sandbox_directory", "/sandbox"])
            .resolve()
            .expect("valid");
        assert!(s
            .as_flags()
            .contains(&("sandbox_directory".into(), "/sandbox".into())));
        for bad in ["relative", "/", "/a/../b"] {
            let e = flags(&["--sandbox-directory", bad])
                .resolve()
                .expect_err(bad);
            assert!(e.to_string().contains("sandbox-directory"), "{e}");
        }
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
        let e = crate::error::chain(&e);
        assert!(e.contains("no_such_flag") && e.contains("ucr.toml"), "{e}");
    }

    #[test]
    fn command_line_over_environment_over_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ucr.toml");
        std::fs::write(
            &path,
            "work_dir = \"/file\"\nlogging_level = \"debug\"\nnetwork_cni_config_dir = \"/file/cni\"\nmax-concurrent-downloads = 2\n",
        )
        .expect("write");
        let env = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let s = flags(&["--config", path.to_str().expect("utf8"), "--root", "/flag"])
            .resolve_with_env(env(&[
                ("MESOS_WORK_DIR", "/env"),
                ("MESOS_LOGGING_LEVEL", "warn"),
                ("MESOS_AUTHENTICATE_HTTP_READWRITE", "true"),
            ]))
            .expect("valid");
        assert_eq!(s.root, PathBuf::from("/flag"), "the command line wins");
        assert_eq!(s.log_level, "warn", "the environment over the file");
        assert_eq!(
            s.cni_conf_dir,
            PathBuf::from("/file/cni"),
            "the file's Mesos key"
        );
        assert_eq!(s.max_concurrent_downloads, 2);
        assert!(s.http_auth.readwrite && !s.http_auth.readonly);
        // The file can come from the environment too.
        let s = flags(&[])
            .resolve_with_env(env(&[("MESOS_CONFIG", path.to_str().expect("utf8"))]))
            .expect("valid");
        assert_eq!(s.root, PathBuf::from("/file"));
        let flags_shown = s.as_flags();
        let shown = |name: &str| {
            flags_shown
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(shown("image_providers").as_deref(), Some("docker"));
        assert_eq!(
            shown("authenticate_http_readwrite").as_deref(),
            Some("false")
        );
        assert!(shown("isolation").is_some_and(|i| i.contains("filesystem/linux")));
        assert_eq!(
            shown("container_disk_watch_interval").as_deref(),
            Some("15secs")
        );
        assert_eq!(shown("xfs_project_range").as_deref(), Some("[5000-10000]"));
        assert_eq!(mesos_duration(Duration::from_secs(120)), "2mins");
        assert_eq!(mesos_duration(Duration::from_millis(1500)), "1500ms");
    }

    #[test]
    fn auth_and_isolation_flags_from_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ucr.toml");
        std::fs::write(
            &path,
            "authenticate_http_readwrite = true\nhttp_credentials = \"file:///etc/ucr/creds.json\"\nimage_providers = \"DOCKER\"\n",
        )
        .expect("write");
        let s = flags(&["--config", path.to_str().expect("utf8")])
            .resolve_with_env(Vec::new())
            .expect("valid");
        assert!(s.http_auth.readwrite && !s.http_auth.readonly);
        assert_eq!(
            s.http_auth.credentials,
            Some(PathBuf::from("/etc/ucr/creds.json")),
            "Mesos's file:// form"
        );
        assert_eq!(s.isolation.image_providers, ["docker"]);
        std::fs::write(&path, "isolation = \"disk/du\"\n").expect("write");
        let e = flags(&["--config", path.to_str().expect("utf8")])
            .resolve_with_env(Vec::new())
            .expect_err("images need filesystem/linux");
        assert!(e.to_string().contains("'filesystem/linux' isolator"), "{e}");
    }

    #[test]
    fn seccomp_flags() {
        let s = flags(&[]).resolve().expect("defaults");
        assert!(!s.seccomp_default);
        assert_eq!(
            s.seccomp_profile_root,
            PathBuf::from("/var/lib/kubelet/seccomp")
        );
        let s = flags(&[
            "--seccomp-default",
            "--seccomp-profile-root",
            "/etc/profiles",
        ])
        .resolve()
        .expect("valid");
        assert!(s.seccomp_default);
        assert_eq!(s.seccomp_profile_root, PathBuf::from("/etc/profiles"));
        assert!(
            !flags(&["--seccomp-default=false"])
                .resolve()
                .expect("valid")
                .seccomp_default
        );
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
