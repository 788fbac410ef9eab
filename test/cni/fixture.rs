//! The integration tests' CNI world. Every test gets its own bridge, /24 and host-local data dir (a subnet is claimed with
//! an exclusive file under /run, so parallel tests never share one), and a guard that
//! removes the attachment, the namespace and the bridge even when the test fails.

use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ucr::isolators::network::cni::{Attachment, Cni, CniConfig, PortMapping};
use ucr::sys::netns::{create_pinned, remove_pinned, PodNamespace, PodPins};

use crate::probe::{iptables_lines, run, walk};

const PLUGINS: &str = "/usr/lib/cni";
const CLAIMS: &str = "/run/ucr-cni-test";

/// Whether the test can run here; prints why not (a skip must never look like a pass).
pub fn can_run(test: &str) -> bool {
    if !nix::unistd::geteuid().is_root() {
        println!("SKIP: {test}: needs root (network namespaces, bridges, iptables)");
        return false;
    }
    if !Path::new(PLUGINS).join("bridge").exists() {
        println!("SKIP: {test}: needs the CNI plugins in {PLUGINS}");
        return false;
    }
    true
}

/// One test's network world; everything it made goes on drop.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub octet: u8,
    pub bridge: String,
    pub network: String,
    pub container_id: String,
    pub pins: PodPins,
    /// The extra bin dir for fake plugins (searched before the real ones).
    pub fake_bin: PathBuf,
    claim: PathBuf,
    server: Option<Child>,
}

impl Fixture {
    pub fn new() -> Fixture {
        std::fs::create_dir_all(CLAIMS).expect("claims dir");
        let (octet, claim) = (0..1000)
            .find_map(|_| {
                let octet: u8 = rand::random_range(1..=254);
                let claim = Path::new(CLAIMS).join(octet.to_string());
                let free = !run("ip", &["route", "show", &format!("10.213.{octet}.0/24")])
                    .contains("10.213");
                (free
                    && std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .open(&claim)
                        .is_ok())
                .then_some((octet, claim))
            })
            .expect("a free test subnet");
        let dir = tempfile::tempdir().expect("tempdir");
        let suffix: u16 = rand::random();
        for d in ["conf", "cache", "ipam", "bin"] {
            std::fs::create_dir(dir.path().join(d)).expect("mkdir");
        }
        let pins = PodPins {
            user: dir.path().join("user"),
            net: dir.path().join("net"),
            ipc: dir.path().join("ipc"),
            uts: dir.path().join("uts"),
        };
        create_pinned(&[PodNamespace::Net], &pins, None).expect("network namespace");
        Fixture {
            fake_bin: dir.path().join("bin"),
            dir,
            octet,
            bridge: format!("ucrt{octet}x{suffix:04x}"),
            network: format!("ucrt-{octet}-{suffix:04x}"),
            container_id: format!("ucrtest{octet}x{suffix:04x}{:08x}", rand::random::<u32>()),
            pins,
            claim,
            server: None,
        }
    }

    pub fn subnet_prefix(&self) -> String {
        format!("10.213.{}.", self.octet)
    }

    pub fn conf_file(&self) -> PathBuf {
        self.dir.path().join("conf/10-test.conflist")
    }

    pub fn ipam_dir(&self) -> PathBuf {
        self.dir.path().join("ipam").join(&self.network)
    }

    /// Writes the conflist: a dual-stack bridge (+host-local), then `extra` plugins.
    /// Dual stack so the real plugins' results show the IPv4-first ordering kubelet
    /// relies on.
    pub fn write_conf(&self, extra: &[&str]) {
        let mut plugins = vec![format!(
            r#"{{"type":"bridge","bridge":"{}","isGateway":true,"ipMasq":false,
                "ipam":{{"type":"host-local",
                         "ranges":[[{{"subnet":"10.213.{o}.0/24"}}],[{{"subnet":"fd00:213:{o}::/64"}}]],
                         "routes":[{{"dst":"0.0.0.0/0"}},{{"dst":"::/0"}}],"dataDir":"{d}"}}}}"#,
            self.bridge,
            o = self.octet,
            d = self.dir.path().join("ipam").display()
        )];
        plugins.extend(extra.iter().map(|s| s.to_string()));
        let conf = format!(
            r#"{{"cniVersion":"1.0.0","name":"{}","plugins":[{}]}}"#,
            self.network,
            plugins.join(",")
        );
        std::fs::write(self.conf_file(), conf).expect("write conf");
    }

    pub fn fake_plugin(&self, name: &str, body: &str) {
        let path = self.fake_bin.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write plugin");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }

    pub fn cni(&self, timeout: Duration) -> Cni {
        Cni::new(CniConfig {
            conf_dir: self.dir.path().join("conf"),
            bin_dirs: vec![self.fake_bin.clone(), PathBuf::from(PLUGINS)],
            cache_dir: self.dir.path().join("cache"),
            plugin_timeout: timeout,
        })
    }

    pub fn attachment(&self) -> Attachment {
        Attachment {
            container_id: self.container_id.clone(),
            netns: self.pins.net.clone(),
            ifname: "eth0".into(),
            network: None,
            pod_namespace: "default".into(),
            pod_name: format!("pod-{}", self.octet),
            pod_uid: "11111111-2222-3333-4444-555555555555".into(),
            port_mappings: vec![PortMapping {
                host_port: 30000 + u16::from(self.octet) * 10,
                container_port: 8080,
                protocol: "tcp".into(),
                host_ip: String::new(),
            }],
            bandwidth: None,
            dns: None,
            ips: Vec::new(),
        }
    }

    /// Runs `args` inside the pod's network namespace.
    pub fn in_pod(&self, args: &[&str]) -> (bool, String) {
        let net = format!("--net={}", self.pins.net.display());
        let mut all = vec![net.as_str()];
        all.extend_from_slice(args);
        let out = Command::new("nsenter")
            .args(&all)
            .output()
            .expect("nsenter");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    /// Interfaces enslaved to our bridge (the host ends of pod veths).
    pub fn bridge_ports(&self) -> String {
        run("ip", &["-o", "link", "show", "master", &self.bridge])
    }

    pub fn iptables_mentions(&self) -> Vec<String> {
        iptables_lines(&self.container_id)
    }

    pub fn cache_files(&self) -> usize {
        walk(&self.dir.path().join("cache"))
    }

    /// A server in the pod answering every TCP connection on 8080 with "hello".
    pub fn serve(&mut self) {
        let net = format!("--net={}", self.pins.net.display());
        let child = Command::new("nsenter")
            .args([
                &net, "busybox", "nc", "-ll", "-p", "8080", "-e", "echo", "hello",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nc");
        self.server = Some(child);
    }

    /// The addresses host-local holds for this network (one file per address).
    pub fn reserved_ips(&self) -> Vec<String> {
        std::fs::read_dir(self.ipam_dir())
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| e.file_name().into_string().ok())
                    .filter(|n| n.parse::<IpAddr>().is_ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Waits (the kernel destroys a dead namespace's veths asynchronously) until no
    /// veth is left on the bridge.
    pub fn wait_for_no_ports(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.bridge_ports().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Everything ADD made is gone: veth, IP reservation, iptables rules, cache entry.
    pub fn assert_clean(&self, ip: Option<IpAddr>) {
        assert_eq!(self.bridge_ports(), "", "a veth is left on {}", self.bridge);
        if let Some(ip) = ip {
            let reservation = self.ipam_dir().join(ip.to_string());
            assert!(
                !reservation.exists(),
                "{} still reserved",
                reservation.display()
            );
        }
        assert_eq!(
            self.reserved_ips(),
            Vec::<String>::new(),
            "IPs still reserved"
        );
        assert_eq!(self.iptables_mentions(), Vec::<String>::new());
        assert_eq!(self.cache_files(), 0, "cache entries are left");
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(mut s) = self.server.take() {
            let _ = s.kill();
            let _ = s.wait();
        }
        // Best effort: a failed test may have left the attachment.
        let cni = self.cni(Duration::from_secs(10));
        let cid = self.container_id.clone();
        let net = self.pins.net.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(rt) = rt {
                let _ = rt.block_on(cni.del(&cid, "eth0", Some(&net)));
            }
        })
        .join();
        let _ = remove_pinned(&self.pins);
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .output();
        let _ = std::fs::remove_file(&self.claim);
    }
}
