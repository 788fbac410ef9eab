//! A pod network of one test's own, for daemons started with it: its own bridge, /24
//! (10.215.<octet>.0/24) and host-local data dir, plus a bin dir for fake plugins, so
//! tests running in parallel never see each other's veths, addresses or iptables rules.
//! Everything it made on the host goes on drop, even when the test failed.
//!
//! A subnet is claimed by an exclusive `flock` on `/run/ucr-net-test/<octet>`, held for
//! the test's life: a test killed half-way (a nextest timeout) releases its claim with its
//! process, where a bare `create_new` file would block the octet until the next reboot.

use std::fs::File;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use nix::fcntl::{Flock, FlockArg};

const CLAIMS: &str = "/run/ucr-net-test";
pub const PLUGINS: &str = "/usr/lib/cni";

/// The bridge and host-local part of every test network's conflist; `{bridge}`,
/// `{octet}`, `{data}` filled in.
const BRIDGE: &str = r#"{
      "type": "bridge",
      "bridge": "{bridge}",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{ "subnet": "10.215.{octet}.0/24" }]{v6range}],
        "routes": [{ "dst": "0.0.0.0/0" }{v6route}],
        "dataDir": "{data}"
      }
    }"#;

const PORTMAP: &str = r#"{ "type": "portmap", "capabilities": { "portMappings": true } }"#;

pub struct TestNet {
    pub dir: tempfile::TempDir,
    pub octet: u8,
    /// The network's name (host-local keeps its reservations under `dataDir/<name>`).
    pub name: String,
    pub bridge: String,
    pub dual_stack: bool,
    /// `10.215.<octet>.`: every pod address starts with it.
    pub subnet_prefix: String,
    pub conf_dir: PathBuf,
    /// host-local's `dataDir`.
    pub ipam_dir: PathBuf,
    /// Searched before the real plugins: [`TestNet::fake_plugin`] writes here.
    pub fake_bin: PathBuf,
    claim: PathBuf,
    _lock: Flock<File>,
}

impl TestNet {
    /// A new network: bridge + host-local, portmap, then `extra_plugins_json` (one JSON
    /// object each), cniVersion 1.0.0, written to `conf/10-test.conflist`.
    pub fn new(extra_plugins_json: &[&str]) -> TestNet {
        Self::make(extra_plugins_json, false)
    }

    /// A network handing out an IPv6 address too, from `fd00:215:<octet>::/64`.
    pub fn dual_stack(extra_plugins_json: &[&str]) -> TestNet {
        Self::make(extra_plugins_json, true)
    }

    fn make(extra_plugins_json: &[&str], dual_stack: bool) -> TestNet {
        std::fs::create_dir_all(CLAIMS).expect("claims dir");
        let (octet, claim, lock) = (0..2000)
            .find_map(|_| {
                let octet: u8 = rand::random_range(1..=254);
                claim(octet).map(|(path, lock)| (octet, path, lock))
            })
            .expect("a free test subnet in 10.215.0.0/16");
        let dir = tempfile::Builder::new()
            .prefix("ucr-net-")
            .tempdir()
            .expect("tempdir");
        let conf_dir = dir.path().join("conf");
        let ipam_dir = dir.path().join("ipam");
        let fake_bin = dir.path().join("bin");
        for d in [&conf_dir, &ipam_dir, &fake_bin] {
            std::fs::create_dir(d).expect("mkdir");
        }
        let net = TestNet {
            octet,
            name: format!("ucrn-{octet}"),
            bridge: bridge_name(octet),
            subnet_prefix: format!("10.215.{octet}."),
            dual_stack,
            conf_dir,
            ipam_dir,
            fake_bin,
            claim,
            _lock: lock,
            dir,
        };
        std::fs::write(net.conf_file(), net.conflist(extra_plugins_json)).expect("write conf");
        net
    }

    pub fn conf_file(&self) -> PathBuf {
        self.conf_dir.join("10-test.conflist")
    }

    /// The conflist `new` wrote (with other extra plugins), for tests that rewrite it.
    pub fn conflist(&self, extra_plugins_json: &[&str]) -> String {
        let bridge = BRIDGE
            .replace("{bridge}", &self.bridge)
            .replace("{octet}", &self.octet.to_string())
            .replace("{data}", &self.ipam_dir.display().to_string())
            .replace(
                "{v6range}",
                &self.v6(r#", [{ "subnet": "fd00:215:{octet}::/64" }]"#),
            )
            .replace("{v6route}", &self.v6(r#", { "dst": "::/0" }"#))
            .replace("{octet}", &self.octet.to_string());
        let mut plugins = vec![bridge, PORTMAP.to_string()];
        plugins.extend(extra_plugins_json.iter().map(|p| p.to_string()));
        format!(
            "{{\n  \"cniVersion\": \"1.0.0\",\n  \"name\": \"{}\",\n  \"plugins\": [\n    {}\n  ]\n}}\n",
            self.name,
            plugins.join(",\n    ")
        )
    }

    /// `text` on a dual-stack network, else nothing.
    fn v6(&self, text: &str) -> String {
        if self.dual_stack {
            text.to_string()
        } else {
            String::new()
        }
    }

    /// `fd00:215:<octet>:`: every pod IPv6 address starts with it (dual stack only).
    pub fn v6_prefix(&self) -> String {
        format!("fd00:215:{}:", self.octet)
    }

    /// `--cni-conf-dir` and `--cni-bin-dir` for a daemon on this network.
    pub fn daemon_args(&self) -> Vec<String> {
        vec![
            "--cni-conf-dir".into(),
            self.conf_dir.display().to_string(),
            "--cni-bin-dir".into(),
            self.bin_dirs(),
        ]
    }

    /// The fake bin dir, then the real plugins (a `--cni-bin-dir` value).
    pub fn bin_dirs(&self) -> String {
        format!("{}:{PLUGINS}", self.fake_bin.display())
    }

    /// An executable `#!/bin/sh` plugin `name` in the fake bin dir running `script`.
    pub fn fake_plugin(&self, name: &str, script: &str) -> PathBuf {
        let path = self.fake_bin.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).expect("write plugin");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        path
    }

    /// The host ends of pod veths: the ports of the bridge (none before the bridge
    /// plugin first made it).
    pub fn veths_on_bridge(&self) -> Vec<String> {
        let mut ports: Vec<String> =
            std::fs::read_dir(Path::new("/sys/class/net").join(&self.bridge).join("brif"))
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
        ports.sort();
        ports
    }

    /// Whether the bridge plugin has made the bridge (it keeps it after DEL).
    pub fn bridge_exists(&self) -> bool {
        Path::new("/sys/class/net").join(&self.bridge).exists()
    }

    /// host-local's store for this network.
    pub fn ipam_store(&self) -> PathBuf {
        self.ipam_dir.join(&self.name)
    }

    /// The addresses host-local holds (one file each, named by the address) for this
    /// network; its `last_reserved_ip.*` and `lock` files are bookkeeping, not holds.
    pub fn ipam_reservations(&self) -> Vec<String> {
        let mut held: Vec<String> = std::fs::read_dir(self.ipam_store())
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with("last_reserved_ip.") && n != "lock")
            .collect();
        held.sort();
        held
    }

    /// Waits up to 5 s for the bridge to lose its ports (a veth whose peer's namespace
    /// died goes asynchronously); the ports still there then.
    pub fn veths_after_settling(&self) -> Vec<String> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let ports = self.veths_on_bridge();
            if ports.is_empty() || std::time::Instant::now() > deadline {
                return ports;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

impl Drop for TestNet {
    fn drop(&mut self) {
        // Deleting the bridge also drops any veth a failed test left on it.
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .output();
        let _ = std::fs::remove_file(&self.claim);
        // The lock goes with the file handle, after the file is unlinked (`claim`
        // checks that the file it locked is still the one at the path).
    }
}

fn bridge_name(octet: u8) -> String {
    format!("ucrn{octet}")
}

/// Locks `/run/ucr-net-test/<octet>` when the subnet and bridge are free.
fn claim(octet: u8) -> Option<(PathBuf, Flock<File>)> {
    let path = Path::new(CLAIMS).join(octet.to_string());
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .ok()?;
    let lock = Flock::lock(file, FlockArg::LockExclusiveNonblock).ok()?;
    // The previous holder may have unlinked the file between our open and our lock:
    // then our lock is on a dead inode and someone else may hold the path's.
    let same = std::fs::metadata(&path)
        .ok()
        .zip(lock.metadata().ok())
        .is_some_and(|(a, b)| a.ino() == b.ino() && a.dev() == b.dev());
    if !same {
        return None;
    }
    // A network left by something else (or a test that was killed before its drop):
    // not ours to touch.
    let route = Command::new("ip")
        .args(["route", "show", &format!("10.215.{octet}.0/24")])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("10.215."))
        .unwrap_or(true);
    let link = Path::new("/sys/class/net")
        .join(bridge_name(octet))
        .exists();
    (!route && !link).then_some((path, lock))
}

/// Every line of `iptables-save` (all tables) and `iptables-save -t nat` that contains
/// `needle`.
pub fn iptables_lines_mentioning(needle: &str) -> Vec<String> {
    let mut lines = Vec::new();
    for args in [&[][..], &["-t", "nat"][..]] {
        let out = Command::new("iptables-save")
            .args(args)
            .output()
            .expect("iptables-save");
        assert!(out.status.success(), "iptables-save {args:?} failed");
        lines.extend(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| l.contains(needle))
                .map(str::to_owned),
        );
    }
    lines.sort();
    lines.dedup();
    lines
}
