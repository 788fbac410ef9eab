//! The command line: `ucr`'s subcommands and their flags. `serve`'s flags can also come
//! from a TOML file (`--config`), which is why [`ServeFlags`] deserializes too; turning
//! them into the daemon's [`Settings`](super::Settings) is `settings`' job.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Deserialize;

use super::DEFAULT_LISTEN;

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
    /// Pull an image, with a progress bar per layer in a terminal; prints the image id.
    Pull(PullFlags),
    /// The configuration: `default` prints the whole config file with every flag's
    /// default; `check` prints the settings the daemon would run with.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// List containers (running ones; `-a` for all).
    Ps(PsFlags),
    /// List pods.
    Pods(ListFlags),
    /// Show a container's or a pod's full status (by id or unique id prefix).
    Inspect(InspectFlags),
    /// List images.
    Images(ListFlags),
    /// Print a container's log (`-f` to follow it).
    Logs(LogsFlags),
    /// Run a command in a running container (`-it` for an interactive terminal).
    Exec(ExecCmdFlags),
    /// Show containers' CPU, memory and disk use.
    Stats(StatsFlags),
    /// Remove containers (`-f` stops running ones first).
    Rm(RmFlags),
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
    /// Named `nsexec` so that `exec` is the user's.
    #[command(hide = true)]
    Nsexec(ExecFlags),
    /// Internal: makes a pod's namespaces inside a user namespace of its own (started by
    /// the daemon; see `launcher::pod_ns`).
    #[command(hide = true)]
    PodNs(PodNsFlags),
}

#[derive(Debug, Args)]
pub struct PodNsFlags {
    /// What to make (JSON).
    #[arg(long)]
    pub spec: String,
    /// An inherited descriptor on which it reports `user`, `ready` or `error <why>`.
    #[arg(long)]
    pub report_fd: i32,
    /// An inherited descriptor on which the daemon says go, and closes when done.
    #[arg(long)]
    pub go_fd: i32,
}

#[derive(Debug, Args)]
pub struct MonitorFlags {
    /// The container's bundle directory (holds monitor.json; receives pid and exit files).
    #[arg(long)]
    pub bundle: PathBuf,
    /// An inherited descriptor on which the monitor reports (`held`, `ok <pid>`, `error
    /// <why>`; see `ucr::handshake`).
    #[arg(long)]
    pub sync_fd: Option<i32>,
    /// An inherited descriptor on which the daemon releases the container held before
    /// exec (without it the container is not held).
    #[arg(long)]
    pub hold_fd: Option<i32>,
}

#[derive(Debug, Args)]
pub struct PodInitFlags {
    /// The pod's run directory (receives init.pid).
    #[arg(long)]
    pub dir: PathBuf,
    /// An inherited descriptor on which it reports `ok <pid>` or `error <why>`.
    #[arg(long)]
    pub sync_fd: i32,
    /// The pod's user namespace, if it has one of its own.
    #[arg(long)]
    pub userns: Option<PathBuf>,
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
    /// With a spec that asks for a terminal: an inherited unix socket on which the master
    /// of the pty allocated inside the container is sent (SCM_RIGHTS).
    #[arg(long)]
    pub console_fd: Option<i32>,
}

#[derive(Debug, Args)]
pub struct LaunchFlags {
    /// The launch spec, as JSON.
    #[arg(long)]
    pub spec: PathBuf,
}

/// The daemon a client subcommand talks to.
#[derive(Debug, Args)]
pub struct EndpointFlag {
    /// The daemon's socket (`--listen` is an older name for it).
    #[arg(long, alias = "listen", default_value = DEFAULT_LISTEN)]
    pub endpoint: PathBuf,
}

/// How a client subcommand prints what it lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Aligned columns, short ids.
    Table,
    Json,
    Yaml,
}

#[derive(Debug, Args)]
pub struct PullFlags {
    #[command(flatten)]
    pub endpoint: EndpointFlag,
    /// Image reference.
    pub image: String,
}

#[derive(Debug, Args)]
pub struct ListFlags {
    #[command(flatten)]
    pub endpoint: EndpointFlag,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value = "table")]
    pub output: OutputFormat,
    /// Only the ids, one a line (full ids).
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct PsFlags {
    #[command(flatten)]
    pub list: ListFlags,
    /// All containers, not only running ones.
    #[arg(short, long)]
    pub all: bool,
    /// Add CPU and memory columns (one stats call).
    #[arg(short, long)]
    pub stats: bool,
}

#[derive(Debug, Args)]
pub struct InspectFlags {
    #[command(flatten)]
    pub endpoint: EndpointFlag,
    /// Output format (`table` prints JSON too: a status is not a table).
    #[arg(short = 'o', long = "output", value_enum, default_value = "json")]
    pub output: OutputFormat,
    /// A container or pod id, or a unique prefix of one.
    pub id: String,
}

#[derive(Debug, Args)]
pub struct LogsFlags {
    #[command(flatten)]
    pub endpoint: EndpointFlag,
    /// Keep printing what the container writes, across log rotation.
    #[arg(short, long)]
    pub follow: bool,
    /// A container id or unique prefix.
    pub id: String,
}

#[derive(Debug, Args)]
pub struct ExecCmdFlags {
    #[command(flatten)]
    pub endpoint: EndpointFlag,
    /// Keep stdin open (stream it to the command).
    #[arg(short, long)]
    pub interactive: bool,
    /// Give the command a terminal (with `-i`: the session is interactive, in raw mode).
    #[arg(short, long)]
    pub tty: bool,
    /// Seconds after which a non-interactive command is killed (0: no limit).
    #[arg(long, default_value_t = 0)]
    pub timeout: i64,
    /// A container id or unique prefix.
    pub id: String,
    /// The command and its arguments (after `--`).
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct StatsFlags {
    #[command(flatten)]
    pub endpoint: EndpointFlag,
    #[arg(short = 'o', long = "output", value_enum, default_value = "table")]
    pub output: OutputFormat,
    /// Containers (ids or unique prefixes); all running ones when none.
    pub ids: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RmFlags {
    #[command(flatten)]
    pub endpoint: EndpointFlag,
    /// Stop running containers first (otherwise they are refused).
    #[arg(short, long)]
    pub force: bool,
    /// Container ids or unique prefixes.
    #[arg(required = true)]
    pub ids: Vec<String>,
}

#[derive(Debug, Args, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ServeFlags {
    /// TOML file holding any of these flags, keyed by any of their names (default
    /// `/etc/ucr/config.toml` when it exists; `ucr config default` prints one with every
    /// flag; empty: none). Every flag can also come from a `MESOS_<FLAG>` environment
    /// variable (`MESOS_WORK_DIR`, `MESOS_IMAGE_GC_CONFIG`), as the Mesos agent reads its
    /// own: the command line wins over the environment, the environment over the files.
    #[arg(long, value_parser = any_path())]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Drop-in config files, `*.toml` merged over `--config` in lexical order, a later
    /// file's key replacing an earlier one (default `/etc/ucr/config.d` when it exists;
    /// empty: none).
    #[arg(long, value_parser = any_path())]
    #[serde(skip)]
    pub config_dir: Option<PathBuf>,
    /// Persistent state directory (Mesos `--work_dir`).
    #[arg(long, alias = "work_dir")]
    pub root: Option<PathBuf>,
    /// Runtime state directory, lost at reboot (Mesos `--runtime_dir`).
    #[arg(long, alias = "runtime_dir")]
    pub run_root: Option<PathBuf>,
    /// CRI unix socket path.
    #[arg(long)]
    pub listen: Option<PathBuf>,
    /// The group that may use the CRI socket too (a name or gid): the socket is 0660,
    /// root's and this group's; unset: root's group. Other users never can.
    #[arg(long)]
    pub listen_group: Option<String>,
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
    /// Log filter (`info`, `debug`, `ucr=trace`...; Mesos `--logging_level`).
    #[arg(long, alias = "logging_level")]
    pub log_level: Option<String>,
    /// How log lines are written: `text` (default) or `json` (one object a line, with
    /// the fields of the call's span: `call`, `pod_id`, `container_id`).
    #[arg(long)]
    pub log_format: Option<String>,
    /// Where the Prometheus endpoint listens (`IP:PORT`: `GET /metrics`, `GET /healthz`);
    /// unset or empty: not served.
    #[arg(long, alias = "metrics_listen")]
    #[serde(alias = "metrics_listen")]
    pub metrics_listen: Option<String>,
    /// Send the spans (one per CRI and Mesos call) to this OpenTelemetry collector over
    /// OTLP/HTTP (protobuf): `http://HOST:4318` (`/v1/traces` is added to a URL without
    /// a path). Unset: nothing is exported.
    #[arg(long)]
    pub otlp_endpoint: Option<String>,
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
    /// Where missing cgroup v1 hierarchies are mounted (Mesos `--cgroups_hierarchy`).
    #[arg(long, alias = "cgroups_hierarchy")]
    #[serde(alias = "cgroups_hierarchy")]
    pub cgroups_hierarchy: Option<PathBuf>,
    /// Parent cgroup of pods without a `cgroup_parent` and of standalone containers,
    /// and of the monitors (Mesos `--cgroups_root`; default `ucr`).
    #[arg(long, alias = "cgroups_root")]
    #[serde(alias = "cgroups_root")]
    pub cgroups_root: Option<String>,
    /// `cgroups/net_cls`: the primary handle of every container's `net_cls.classid`
    /// (`0xAAAA`); with the secondary handles, turns net_cls isolation on.
    #[arg(long, alias = "cgroups_net_cls_primary_handle")]
    #[serde(alias = "cgroups_net_cls_primary_handle")]
    pub cgroups_net_cls_primary_handle: Option<String>,
    /// `cgroups/net_cls`: the range each container's secondary handle comes from
    /// (`0xBBBB,0xCCCC`).
    #[arg(long, alias = "cgroups_net_cls_secondary_handles")]
    #[serde(alias = "cgroups_net_cls_secondary_handles")]
    pub cgroups_net_cls_secondary_handles: Option<String>,
    /// Most processes a container may have at once, for containers whose request sets
    /// none (CRI-O's `pids_limit`); unset: no limit.
    #[arg(long)]
    pub pids_limit: Option<i64>,
    /// The isolators to run, comma-separated Mesos names (Mesos `--isolation`; default:
    /// all of ucr's but `disk/xfs`). Unknown names are refused with the known ones, and
    /// so is a list without an isolator the CRI door needs (see the README).
    #[arg(long)]
    pub isolation: Option<String>,
    /// Mesos `--image_providers`: `docker` (the default; needs `docker/runtime` and
    /// `filesystem/linux` in `--isolation`). `appc` is refused.
    #[arg(long, alias = "image_providers")]
    pub image_providers: Option<String>,
    /// Require HTTP basic authentication (realm `mesos-agent-readwrite`) on the Mesos
    /// operator API `/api/v1` (Mesos `--authenticate_http_readwrite`; `true`/`false`).
    #[arg(long, alias = "authenticate_http_readwrite", num_args = 0..=1, default_missing_value = "true", value_parser = super::names::mesos_bool)]
    pub authenticate_http_readwrite: Option<bool>,
    /// Require HTTP basic authentication (realm `mesos-agent-readonly`) on the Mesos
    /// door's read-only endpoints: `/state`, `/flags`, `/monitor/statistics`,
    /// `/containers`, `/metrics/snapshot` (Mesos `--authenticate_http_readonly`).
    #[arg(long, alias = "authenticate_http_readonly", num_args = 0..=1, default_missing_value = "true", value_parser = super::names::mesos_bool)]
    pub authenticate_http_readonly: Option<bool>,
    /// Mesos `--http_credentials`: a JSON file (or `file://` URL)
    /// `{"credentials":[{"principal":"p","secret":"s"}]}`, read at start.
    #[arg(long, alias = "http_credentials")]
    pub http_credentials: Option<PathBuf>,
    /// How often `disk/du` measures each container's writable layer (Mesos
    /// `--container_disk_watch_interval`; default 15s).
    #[arg(long, alias = "container_disk_watch_interval")]
    #[serde(alias = "container_disk_watch_interval")]
    pub container_disk_watch_interval: Option<String>,
    /// Kill a container that goes over its disk limit (`disk/du`), and have `disk/xfs`
    /// insist on an enforcing filesystem (Mesos `--enforce_container_disk_quota`).
    #[arg(long, alias = "enforce_container_disk_quota", num_args = 0..=1, default_missing_value = "true", value_parser = super::names::mesos_bool)]
    #[serde(alias = "enforce_container_disk_quota")]
    pub enforce_container_disk_quota: Option<bool>,
    /// `disk/xfs`'s project ids (Mesos `--xfs_project_range`; default `[5000-10000]`).
    #[arg(long, alias = "xfs_project_range")]
    #[serde(alias = "xfs_project_range")]
    pub xfs_project_range: Option<String>,
    /// Give containers that ask for no seccomp profile `RuntimeDefault` instead of none
    /// (kubelet's `--seccomp-default`).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_parser = super::names::mesos_bool)]
    pub seccomp_default: Option<bool>,
    /// Where relative `Localhost` seccomp profiles are (default
    /// `/var/lib/kubelet/seccomp`, kubelet's).
    #[arg(long)]
    pub seccomp_profile_root: Option<PathBuf>,
    /// The streaming server's address (Exec, Attach, PortForward URLs; default 127.0.0.1:
    /// kubelet reaches it through its own proxy). Empty disables streaming.
    #[arg(long)]
    pub stream_address: Option<String>,
    /// The streaming server's port (default 0: a free one).
    #[arg(long)]
    pub stream_port: Option<u16>,
    /// Where the Mesos agent operator API (v1) listens (default 127.0.0.1:5051, the Mesos
    /// agent's port); empty disables it.
    #[arg(long, alias = "mesos_listen")]
    #[serde(alias = "mesos_listen")]
    pub mesos_listen: Option<String>,
    /// Where a Mesos container sees its sandbox, an absolute path (Mesos
    /// `--sandbox_directory`, default `/mnt/mesos/sandbox`); `MESOS_SANDBOX` names it.
    #[arg(long, alias = "sandbox_directory")]
    #[serde(alias = "sandbox_directory")]
    pub sandbox_directory: Option<String>,
    /// PEM certificate chain for serving the streaming server over TLS.
    #[arg(long, requires = "stream_tls_key")]
    pub stream_tls_cert: Option<PathBuf>,
    /// PEM private key for the streaming server's certificate.
    #[arg(long, requires = "stream_tls_cert")]
    pub stream_tls_key: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the whole config file (TOML): every `ucr serve` flag, its help as a
    /// comment, its default as the value. `ucr serve --config` reads it back unchanged.
    Default,
    /// Resolve the configuration as `ucr serve` would (the same flags, environment and
    /// files) and print the resulting settings, or the error that would stop the daemon.
    Check(Box<ServeFlags>),
}

#[derive(Debug, Args)]
pub struct PruneFlags {
    #[command(flatten)]
    pub endpoint: EndpointFlag,
    /// Images to keep even if unused (repeatable).
    #[arg(long = "exclude")]
    pub exclude: Vec<String>,
}

/// A path that may be empty (clap's own refuses `""`, which turns a config source off).
fn any_path() -> impl clap::builder::TypedValueParser<Value = PathBuf> {
    use clap::builder::TypedValueParser as _;
    clap::builder::OsStringValueParser::new().map(PathBuf::from)
}
