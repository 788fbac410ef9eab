//! Shared pieces of the integration tests: the real daemon, a CRI client, a TCP proxy
//! that can break transfers, a pusher for crafted images, and for tests below the daemon
//! a store, a busybox rootfs and `ucr launch` / `ucr exec` runs from a spec.
//!
//! The registries and test images come from `hack/test-env.sh` (the README's test
//! command runs it). A missing registry fails the test with that advice rather than
//! skipping: a silent skip would let CI pass without testing anything.

#![allow(dead_code)] // each test binary uses a different subset

pub mod net;
pub mod pods;
pub mod proxy;
pub mod push;
pub mod spdy;
pub mod ws;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_cri::v1 as cri;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use tonic::transport::Channel;
use ucr::launcher::{LaunchSpec, Process};
use ucr::provisioner::puller::registry::{auth::DockerConfig, RegistryOptions};
use ucr::provisioner::store::{Store, StoreOptions};

pub const REGISTRY: &str = "127.0.0.1:5000";
pub const AUTH_REGISTRY: &str = "127.0.0.1:5001";
pub const SCHEMA1_REGISTRY: &str = "127.0.0.1:5002";
/// Bearer token auth: its tokens come from `TOKEN_SERVER` (`hack/token-server.py`).
pub const TOKEN_REGISTRY: &str = "127.0.0.1:5003";
pub const TOKEN_SERVER: &str = "127.0.0.1:5004";
/// The `service` the token registry names in its challenges (the tokens' `aud`).
pub const TOKEN_SERVICE: &str = "ucr-test-registry";
/// The refresh token (CRI `identity_token`) the token server accepts.
pub const TOKEN_REFRESH: &str = "ucr-refresh-token";
pub const AUTH_USER: &str = "ucr";
pub const AUTH_PASSWORD: &str = "ucr-secret";

pub fn test_dir() -> PathBuf {
    std::env::var_os("UCR_TEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/lib/ucr-test"))
}

pub fn archives_dir() -> PathBuf {
    test_dir().join("archives")
}

/// Storage of the plain registry, for tests that corrupt a blob behind its back.
pub fn registry_storage() -> PathBuf {
    test_dir().join("registry/plain/docker/registry/v2")
}

/// Panics with the fix when the test registries are not up.
pub fn require_registries() {
    for addr in [
        REGISTRY,
        AUTH_REGISTRY,
        SCHEMA1_REGISTRY,
        TOKEN_REGISTRY,
        TOKEN_SERVER,
    ] {
        if std::net::TcpStream::connect(addr).is_err() {
            panic!("no test registry on {addr}: run `eval \"$(hack/test-env.sh)\"` first (the README's test command does)");
        }
    }
}

/// The pod network of the daemons tests start (unless a test passes its own
/// `--cni-conf-dir`): one bridge shared by all of them, host-local addresses from
/// 10.214.0.0/16, portmap chained. Written once, atomically; returns its directory.
pub fn test_cni_conf_dir() -> PathBuf {
    let dir = test_dir().join("cni/net.d");
    let file = dir.join("10-ucr-test.conflist");
    if !file.exists() {
        std::fs::create_dir_all(&dir).expect("CNI conf dir");
        let tmp = dir.join(format!(".tmp-{}", std::process::id()));
        std::fs::write(&tmp, TEST_NETWORK).expect("write CNI conf");
        std::fs::rename(&tmp, &file).expect("install CNI conf");
    }
    dir
}

pub const TEST_NETWORK_NAME: &str = "ucr-test";
pub const TEST_BRIDGE: &str = "ucrtest0";
pub const TEST_SUBNET_PREFIX: &str = "10.214.";

const TEST_NETWORK: &str = r#"{
  "cniVersion": "1.0.0",
  "name": "ucr-test",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "ucrtest0",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{ "subnet": "10.214.0.0/16" }]],
        "routes": [{ "dst": "0.0.0.0/0" }]
      }
    },
    { "type": "portmap", "capabilities": { "portMappings": true } }
  ]
}
"#;

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// A `ucr serve` of our own, on its own root and socket, killed on drop.
pub struct Daemon {
    pub dir: tempfile::TempDir,
    pub root: PathBuf,
    pub socket: PathBuf,
    pub log: PathBuf,
    child: Option<Child>,
    args: Vec<String>,
    /// `UCR_CRASH_AT` for the next start (see `Daemon::restart_crashing_at`).
    crash_at: Option<String>,
    /// Extra environment variables (`MESOS_<FLAG>` flags).
    env: Vec<(String, String)>,
}

impl Daemon {
    pub fn start(args: &[&str]) -> Daemon {
        let dir = tempfile::Builder::new()
            .prefix("ucr-test-")
            .tempdir()
            .expect("tempdir");
        let root = dir.path().join("root");
        Self::start_at(dir, root, args)
    }

    /// A daemon whose `--root` is `root` (a mounted filesystem, say).
    pub fn start_at(dir: tempfile::TempDir, root: PathBuf, args: &[&str]) -> Daemon {
        let socket = dir.path().join("ucr.sock");
        let log = dir.path().join("ucr.log");
        let mut d = Daemon {
            root,
            socket,
            log,
            child: None,
            args: args.iter().map(|s| s.to_string()).collect(),
            crash_at: None,
            env: Vec::new(),
            dir,
        };
        d.spawn();
        d
    }

    /// A daemon started with these environment variables too.
    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Daemon {
        let dir = tempfile::Builder::new()
            .prefix("ucr-test-")
            .tempdir()
            .expect("tempdir");
        let mut d = Daemon {
            root: dir.path().join("root"),
            socket: dir.path().join("ucr.sock"),
            log: dir.path().join("ucr.log"),
            child: None,
            args: args.iter().map(|s| s.to_string()).collect(),
            crash_at: None,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            dir,
        };
        d.spawn();
        d
    }

    /// The Mesos door on a free port, unless the test chose one: test daemons run side by
    /// side, and the default port (5051) can be had by one of them only.
    fn mesos_args(&self) -> Vec<String> {
        if self.args.iter().any(|a| a.starts_with("--mesos-listen")) {
            return vec![];
        }
        vec!["--mesos-listen".into(), "127.0.0.1:0".into()]
    }

    /// The shared test network, unless the test chose its own.
    fn network_args(&self) -> Vec<String> {
        if self.args.iter().any(|a| a.starts_with("--cni-conf-dir")) {
            return vec![];
        }
        vec![
            "--cni-conf-dir".into(),
            test_cni_conf_dir().display().to_string(),
            "--cni-bin-dir".into(),
            "/usr/lib/cni".into(),
        ]
    }

    /// This daemon's `--cgroups-root`: one per test daemon (its tempdir's name), so
    /// daemons of tests running side by side never see each other's cgroups.
    pub fn cgroups_root(&self) -> String {
        self.args
            .iter()
            .position(|a| a == "--cgroups-root")
            .and_then(|i| self.args.get(i + 1).cloned())
            .unwrap_or_else(|| {
                let name = self.dir.path().file_name().unwrap_or_default();
                name.to_string_lossy().into_owned()
            })
    }

    fn cgroups_args(&self) -> Vec<String> {
        if self.args.iter().any(|a| a == "--cgroups-root") {
            return vec![];
        }
        vec!["--cgroups-root".into(), self.cgroups_root()]
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_ucr"))
            .arg("serve")
            .arg("--root")
            .arg(&self.root)
            .arg("--run-root")
            .arg(self.dir.path().join("run"))
            .arg("--listen")
            .arg(&self.socket)
            .args(self.network_args())
            .args(self.cgroups_args())
            .args(self.mesos_args())
            .args(&self.args)
            .env("UCR_LOG", "info,ucr=debug")
            .env("UCR_CRASH_AT", self.crash_at.clone().unwrap_or_default())
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup"))
            .stderr(log)
            .spawn()
            .expect("start ucr");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::os::unix::net::UnixStream::connect(&self.socket).is_err() {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("ucr exited with {status} before serving:\n{}", self.logs());
            }
            assert!(
                Instant::now() < deadline,
                "ucr did not start serving:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub async fn images(&self) -> ImageServiceClient<Channel> {
        let channel = ucr::cri::client::connect(&self.socket)
            .await
            .expect("connect");
        ImageServiceClient::new(channel)
    }

    pub async fn runtime(
        &self,
    ) -> k8s_cri::v1::runtime_service_client::RuntimeServiceClient<Channel> {
        let channel = ucr::cri::client::connect(&self.socket)
            .await
            .expect("connect");
        k8s_cri::v1::runtime_service_client::RuntimeServiceClient::new(channel)
    }

    pub fn run_root(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    pub fn store(&self) -> PathBuf {
        self.root.join("images")
    }

    /// Kills the daemon with SIGKILL (no cleanup), as a crash would.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same root after a kill.
    pub fn restart(&mut self) {
        self.kill9();
        self.crash_at = None;
        self.spawn();
    }

    /// Starts it again, to kill itself (SIGKILL) at the crash point `point` (a daemon
    /// built with the `crash-points` feature; see `src/crash.rs`).
    pub fn restart_crashing_at(&mut self, point: &str) {
        self.kill9();
        self.crash_at = Some(point.to_string());
        self.spawn();
    }

    /// Whether the daemon process has exited (a crash point fired).
    pub fn has_exited(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_some())
    }

    /// Files under tmp/ and gc/: a failed or finished pull must leave none.
    pub fn scratch_entries(&self) -> Vec<PathBuf> {
        ["tmp", "gc"]
            .iter()
            .flat_map(|d| {
                std::fs::read_dir(self.store().join(d))
                    .into_iter()
                    .flatten()
            })
            .flatten()
            .map(|e| e.path())
            .collect()
    }

    pub fn layer_dirs(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.store().join("layers"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .collect()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
        // A test that failed half-way leaves pods and containers (monitors outlive the
        // daemon by design): remove them the way an operator would, so one failure does
        // not leak mounts and processes into the next tests.
        let leftovers = [self.run_root().join("pods"), self.root.join("containers")]
            .iter()
            .any(|d| {
                std::fs::read_dir(d)
                    .map(|mut e| e.next().is_some())
                    .unwrap_or(false)
            });
        if leftovers {
            let _ = Command::new(env!("CARGO_BIN_EXE_ucr"))
                .arg("serve")
                .arg("--root")
                .arg(&self.root)
                .arg("--run-root")
                .arg(self.run_root())
                .arg("--listen")
                .arg(self.dir.path().join("cleanup.sock"))
                .args(self.network_args())
                .args(self.cgroups_args())
                .args(["--recover", "cleanup"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        // The daemon's cgroups root is its own (see `cgroups_root`): remove what is left
        // of it (the monitors' cgroup, emptied once the monitors are gone).
        for dir in cgroup_dirs(&self.cgroups_root()) {
            remove_cgroup_tree(&dir);
        }
    }
}

/// `<mount>/<name>` in every cgroup hierarchy mounted on this node (v1 and v2).
pub fn cgroup_dirs(name: &str) -> Vec<PathBuf> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let fstype = right.split(' ').next()?;
            let mut f = left.split(' ');
            let root = f.nth(3)?;
            let point = f.next()?;
            (matches!(fstype, "cgroup" | "cgroup2") && root == "/")
                .then(|| Path::new(point).join(name.trim_start_matches('/')))
        })
        .filter(|d| d.exists())
        .collect()
}

/// Removes a cgroup directory and those below it (rmdir, deepest first).
pub fn remove_cgroup_tree(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_cgroup_tree(&e.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}

/// The cgroups (directories) below `dir`, as paths relative to it.
pub fn cgroups_below(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                let p = e.path();
                out.push(p.strip_prefix(base).unwrap_or(&p).display().to_string());
                walk(base, &p, out);
            }
        }
    }
    walk(dir, dir, &mut out);
    out
}

impl Daemon {
    /// SIGTERM, then SIGKILL if it does not stop within 5 s.
    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(c.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn spec(image: &str) -> Option<cri::ImageSpec> {
    Some(cri::ImageSpec {
        image: image.to_string(),
        ..Default::default()
    })
}

pub async fn pull(
    client: &mut ImageServiceClient<Channel>,
    image: &str,
) -> Result<String, tonic::Status> {
    pull_with(client, image, None).await
}

pub async fn pull_with(
    client: &mut ImageServiceClient<Channel>,
    image: &str,
    auth: Option<cri::AuthConfig>,
) -> Result<String, tonic::Status> {
    client
        .pull_image(cri::PullImageRequest {
            image: spec(image),
            auth,
            sandbox_config: None,
        })
        .await
        .map(|r| r.into_inner().image_ref)
}

pub async fn status(client: &mut ImageServiceClient<Channel>, image: &str) -> Option<cri::Image> {
    client
        .image_status(cri::ImageStatusRequest {
            image: spec(image),
            verbose: false,
        })
        .await
        .expect("ImageStatus")
        .into_inner()
        .image
}

pub async fn list(client: &mut ImageServiceClient<Channel>) -> Vec<cri::Image> {
    client
        .list_images(cri::ListImagesRequest { filter: None })
        .await
        .expect("ListImages")
        .into_inner()
        .images
}

pub async fn remove(
    client: &mut ImageServiceClient<Channel>,
    image: &str,
) -> Result<(), tonic::Status> {
    client
        .remove_image(cri::RemoveImageRequest { image: spec(image) })
        .await
        .map(|_| ())
}

/// Every file under `root` (relative paths), for before/after comparisons.
pub fn tree(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let p = e.path();
            out.push(p.strip_prefix(root).unwrap_or(&p).display().to_string());
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

/// A store at `dir` that pulls from the local registries, as the daemon would open it.
pub fn open_store(dir: &Path) -> Arc<Store> {
    Store::open(StoreOptions {
        dir: dir.to_path_buf(),
        registry: RegistryOptions {
            mirrors: BTreeMap::new(),
            insecure: vec![],
            default_registry: None,
            docker_config: DockerConfig::default(),
            progress_timeout: Duration::from_secs(30),
        },
        archive_dir: None,
        max_concurrent_downloads: 3,
        pinned: vec![],
    })
    .expect("open store")
}

/// A writable copy of the busybox image's single layer at `dir/rootfs`, pulled from the
/// local registry into a store under `dir/store` (for tests that run containers).
pub async fn busybox_rootfs(dir: &Path) -> PathBuf {
    let store = open_store(&dir.join("store"));
    store
        .pull(&format!("{REGISTRY}/ucr-test/busybox:latest"), None)
        .await
        .expect("pull busybox");
    let layer = std::fs::read_dir(dir.join("store/layers"))
        .expect("layers")
        .flatten()
        .map(|e| e.path().join("rootfs"))
        .next()
        .expect("one layer");
    let rootfs = dir.join("rootfs");
    let ok = Command::new("cp")
        .arg("-a")
        .arg(&layer)
        .arg(&rootfs)
        .status()
        .expect("cp")
        .success();
    assert!(ok, "copying the layer");
    rootfs
}

/// How many mounts of this mount namespace involve `path` (0 once a container is gone).
pub fn mounts_under(path: &Path) -> usize {
    let p = path.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(&p))
        .count()
}

/// Starts a test that needs the registries and root. Without root it says so, naming the
/// test and what root is needed for (namespaces and mounts unless told), and returns: a
/// skip that shows, never a silent pass.
#[allow(unused_macros)] // each test binary uses a different subset
macro_rules! require_root {
    ($name:expr) => {
        $crate::common::require_root!($name, "namespaces, mounts")
    };
    ($name:expr, $needs:expr) => {
        $crate::common::require_registries();
        if !$crate::common::is_root() {
            eprintln!("SKIPPED {}: needs root ({})", $name, $needs);
            return;
        }
    };
}
#[allow(unused_imports)] // each test binary uses a different subset
pub(crate) use require_root;

/// `sh -c script` as root in `/`, with `PATH=/bin` (busybox's applets), Docker's default
/// capabilities and no no_new_privs.
pub fn sh_process(script: &str) -> Process {
    Process {
        executable: None,
        args: vec!["sh".into(), "-c".into(), script.into()],
        env: vec!["PATH=/bin".into()],
        cwd: "/".into(),
        uid: 0,
        gid: 0,
        additional_gids: vec![],
        capabilities: None,
        no_new_privs: false,
        apparmor_profile: None,
        seccomp: None,
    }
}

/// A container's first process running [`sh_process`] in `rootfs`, with its own PID
/// namespace, no hostname and nothing joined, the default masked and read-only kernel
/// paths.
pub fn launch_spec(rootfs: &Path, script: &str) -> LaunchSpec {
    LaunchSpec {
        rootfs: rootfs.to_path_buf(),
        process: sh_process(script),
        hostname: None,
        join: vec![],
        new_pid_namespace: true,
        new_ipc_namespace: true,
        mounts: vec![],
        shm: None,
        readonly_rootfs: false,
        oom_score_adj: None,
        masked_paths: strings(ucr::launcher::spec::MASKED_PATHS),
        readonly_paths: strings(ucr::launcher::spec::READONLY_PATHS),
        privileged: false,
        devices: Vec::new(),
        cgroups: Vec::new(),
        clone_into_cgroup: None,
        monitor_cgroups: Vec::new(),
        userns: None,
        idmap_rootfs: false,
        rlimits: Vec::new(),
    }
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// `ucr <command> --spec FILE` (`launch` or `exec`), with `spec` written as JSON to a
/// new file in `dir`.
pub fn ucr_with_spec(dir: &Path, command: &str, spec: &impl serde::Serialize) -> Command {
    let file = dir.join(format!("{command}-{}.json", rand::random::<u32>()));
    std::fs::write(&file, serde_json::to_vec(spec).expect("json")).expect("write spec");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ucr"));
    cmd.args([command, "--spec"]).arg(&file);
    cmd
}

/// How a command ended (`None`: killed by a signal) and what it wrote.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `cmd` to its end, its stdin empty, capturing stdout and stderr.
pub fn capture(cmd: &mut Command) -> Run {
    let out = cmd.stdin(Stdio::null()).output().expect("run the command");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
