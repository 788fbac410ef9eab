//! Looking at the host from the outside: commands, iptables, files, TCP.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use ucr::isolators::network::cni::PodNetwork;

/// Runs a command; its trimmed stdout (failures show up in what the caller expects).
pub fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().expect(cmd);
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Every IPv4 and IPv6 iptables line mentioning `needle` (portmap tags its rules with
/// the container id).
pub fn iptables_lines(needle: &str) -> Vec<String> {
    let mut lines = Vec::new();
    for save in ["iptables-save", "ip6tables-save"] {
        lines.extend(
            run(save, &[])
                .lines()
                .filter(|l| l.contains(needle))
                .map(str::to_owned),
        );
    }
    lines
}

/// Files under `dir`, recursively.
pub fn walk(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| {
                    if e.path().is_dir() {
                        walk(&e.path())
                    } else {
                        1
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

pub fn pod_ipv4(net: &PodNetwork) -> IpAddr {
    *net.ips.first().expect("the pod got an IP")
}

/// Connects (retrying while the server starts) and returns what it says.
pub fn fetch(addr: SocketAddr) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
            Ok(mut s) => {
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                let _ = s.write_all(b"hi\n");
                let mut text = String::new();
                let _ = s.read_to_string(&mut text);
                if !text.is_empty() || Instant::now() > deadline {
                    return text.trim().to_owned();
                }
            }
            Err(e) if Instant::now() > deadline => panic!("connecting to {addr}: {e}"),
            Err(_) => {}
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
