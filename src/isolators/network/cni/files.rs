//! A pod's `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf`, generated into the pod's
//! `etc/` directory (`containerizer::paths::pod_etc`) and bind-mounted into each of its
//! containers, as containerd and CRI-O do for their sandboxes (and as Mesos's
//! `network/cni` does, whose files these are here too).
//!
//! Every file is written atomically (a temporary file renamed over the old one), so a
//! reader never sees half a file. Renaming swaps the inode, though: a container that
//! already bind-mounted the old file keeps seeing it. So write these before the pod's
//! containers start (the containerizer does, right after the pod's network is set up).
//!
//! Values that end up in these files come from the CRI client and are validated first:
//! a space or newline in a search domain could otherwise smuggle in a `nameserver` line.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::net::{IpAddr, Ipv6Addr};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{io_kind, ErrorKind, Kind};

pub const HOSTS: &str = "hosts";
pub const HOSTNAME: &str = "hostname";
pub const RESOLV_CONF: &str = "resolv.conf";
/// Copied into pods whose DNS config is empty, as kubelet's runtimes do.
pub const HOST_RESOLV_CONF: &str = "/etc/resolv.conf";

/// kubelet's limits (`MaxDNSSearchPaths` and `MaxDNSSearchListChars` in its API
/// validation, since Kubernetes 1.28's expanded DNS config); kubelet never sends more, so
/// anything beyond is a client bypassing it. Older glibc read only 6 domains and 256
/// characters; newer glibc and musl read these, and the rest is harmlessly ignored.
pub const MAX_SEARCHES: usize = 32;
pub const MAX_SEARCH_LINE: usize = 2048;
/// `HOST_NAME_MAX`: `sethostname(2)` refuses longer names.
pub const MAX_HOSTNAME: usize = 64;

/// The CRI's `DNSConfig`, as plain Rust types. Resolvers read only the first 3 servers
/// (`MAXNS`); kubelet already truncates to 3, so more are written as given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DnsConfig {
    pub servers: Vec<String>,
    pub searches: Vec<String>,
    pub options: Vec<String>,
}

impl DnsConfig {
    pub fn is_empty(&self) -> bool {
        self.servers.is_empty() && self.searches.is_empty() && self.options.is_empty()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PodFilesError {
    #[error("{field} {value:?}: {reason}")]
    Invalid {
        field: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error("{count} DNS search domains: at most {MAX_SEARCHES} are allowed")]
    TooManySearches { count: usize },
    #[error("DNS search line of {len} characters: at most {MAX_SEARCH_LINE} are allowed")]
    SearchLineTooLong { len: usize },
    #[error("reading the host's resolv.conf {path}: {source}")]
    ReadHostResolvConf { path: PathBuf, source: io::Error },
    #[error("writing {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
}

impl Kind for PodFilesError {
    fn kind(&self) -> ErrorKind {
        match self {
            PodFilesError::Invalid { .. }
            | PodFilesError::TooManySearches { .. }
            | PodFilesError::SearchLineTooLong { .. } => ErrorKind::InvalidArgument,
            PodFilesError::ReadHostResolvConf { source, .. }
            | PodFilesError::Write { source, .. } => io_kind(source),
        }
    }
}

/// Writes all three files into `dir` (which must exist). Everything is validated before
/// anything is written. An empty `dns` copies `host_resolv_conf` (normally
/// [`HOST_RESOLV_CONF`]).
pub fn write_all(
    dir: &Path,
    hostname: &str,
    pod_ips: &[IpAddr],
    dns: &DnsConfig,
    host_resolv_conf: &Path,
) -> Result<(), PodFilesError> {
    let hosts = hosts(hostname, pod_ips)?;
    let name = hostname_file(hostname)?;
    let resolv = resolv_conf(dns, host_resolv_conf)?;
    write_atomic(&dir.join(HOSTS), hosts.as_bytes())?;
    write_atomic(&dir.join(HOSTNAME), name.as_bytes())?;
    write_atomic(&dir.join(RESOLV_CONF), &resolv)
}

/// Checks what [`write_all`] would refuse, writing nothing (the DNS config is checked
/// only when given: an empty one copies the host's file).
pub fn check(hostname: &str, dns: &DnsConfig) -> Result<(), PodFilesError> {
    hostname_file(hostname)?;
    if !dns.is_empty() {
        render_dns(dns)?;
    }
    Ok(())
}

/// Writes `dir/hosts` alone (e.g. once the pod's IPs are known).
pub fn write_hosts(dir: &Path, hostname: &str, pod_ips: &[IpAddr]) -> Result<(), PodFilesError> {
    write_atomic(&dir.join(HOSTS), hosts(hostname, pod_ips)?.as_bytes())
}

pub fn write_hostname(dir: &Path, hostname: &str) -> Result<(), PodFilesError> {
    write_atomic(&dir.join(HOSTNAME), hostname_file(hostname)?.as_bytes())
}

pub fn write_resolv_conf(
    dir: &Path,
    dns: &DnsConfig,
    host_resolv_conf: &Path,
) -> Result<(), PodFilesError> {
    write_atomic(&dir.join(RESOLV_CONF), &resolv_conf(dns, host_resolv_conf)?)
}

/// The pod's hosts file: loopback names (the two lines Docker and kubelet start with),
/// then the pod's hostname on each of its IPs.
pub fn hosts(hostname: &str, pod_ips: &[IpAddr]) -> Result<String, PodFilesError> {
    check_hostname(hostname)?;
    let mut out = String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    for ip in pod_ips {
        out.push_str(&format!("{ip}\t{hostname}\n"));
    }
    Ok(out)
}

pub fn hostname_file(hostname: &str) -> Result<String, PodFilesError> {
    check_hostname(hostname)?;
    Ok(format!("{hostname}\n"))
}

/// The pod's resolv.conf: a copy of `host_resolv_conf` when `dns` is empty, otherwise
/// `search`, `nameserver` and `options` lines in containerd's order. A missing host file
/// gives an empty one (resolvers then fall back to their defaults) rather than failing
/// every pod on a node without DNS.
pub fn resolv_conf(dns: &DnsConfig, host_resolv_conf: &Path) -> Result<Vec<u8>, PodFilesError> {
    if dns.is_empty() {
        return match fs::read(host_resolv_conf) {
            Ok(bytes) => Ok(bytes),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(source) => Err(PodFilesError::ReadHostResolvConf {
                path: host_resolv_conf.to_path_buf(),
                source,
            }),
        };
    }
    Ok(render_dns(dns)?.into_bytes())
}

fn render_dns(dns: &DnsConfig) -> Result<String, PodFilesError> {
    for server in &dns.servers {
        check_server(server)?;
    }
    for search in &dns.searches {
        check_word("DNS search domain", search)?;
    }
    for option in &dns.options {
        check_word("DNS option", option)?;
    }
    if dns.searches.len() > MAX_SEARCHES {
        return Err(PodFilesError::TooManySearches {
            count: dns.searches.len(),
        });
    }
    let mut out = String::new();
    if !dns.searches.is_empty() {
        let line = dns.searches.join(" ");
        // Counted as kubelet does: the domains joined by single spaces.
        if line.len() > MAX_SEARCH_LINE {
            return Err(PodFilesError::SearchLineTooLong { len: line.len() });
        }
        out.push_str(&format!("search {line}\n"));
    }
    for server in &dns.servers {
        out.push_str(&format!("nameserver {server}\n"));
    }
    if !dns.options.is_empty() {
        out.push_str(&format!("options {}\n", dns.options.join(" ")));
    }
    Ok(out)
}

fn invalid(field: &'static str, value: &str, reason: &'static str) -> PodFilesError {
    PodFilesError::Invalid {
        field,
        value: value.to_owned(),
        reason,
    }
}

/// One whitespace-separated word of a config line: non-empty, no whitespace or control
/// characters (either would start a new field or a new line).
fn check_word(field: &'static str, value: &str) -> Result<(), PodFilesError> {
    if value.is_empty() {
        return Err(invalid(field, value, "is empty"));
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid(
            field,
            value,
            "contains whitespace or a control character",
        ));
    }
    Ok(())
}

/// A nameserver must be an IP address, as kubelet's validation requires; IPv6 may carry a
/// `%zone`, which glibc accepts and a host resolv.conf (passed on by kubelet for
/// `dnsPolicy: Default`) may contain.
fn check_server(value: &str) -> Result<(), PodFilesError> {
    check_word("DNS server", value)?;
    let ok = match value.split_once('%') {
        Some((addr, zone)) => !zone.is_empty() && addr.parse::<Ipv6Addr>().is_ok(),
        None => value.parse::<IpAddr>().is_ok(),
    };
    if !ok {
        return Err(invalid("DNS server", value, "is not an IP address"));
    }
    Ok(())
}

fn check_hostname(hostname: &str) -> Result<(), PodFilesError> {
    check_word("hostname", hostname)?;
    if hostname.len() > MAX_HOSTNAME {
        return Err(invalid("hostname", hostname, "is longer than 64 bytes"));
    }
    Ok(())
}

/// Distinguishes temporary files of concurrent writers in one process.
static TMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to a temporary file beside `path`, then renames it over `path`. No
/// fsync: these files live in the run root, which does not survive a reboot anyway; the
/// rename is what keeps readers from seeing a partial file.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), PodFilesError> {
    let werr = |source| PodFilesError::Write {
        path: path.to_path_buf(),
        source,
    };
    let name = path
        .file_name()
        .ok_or_else(|| werr(io::Error::from(io::ErrorKind::InvalidInput)))?;
    let tmp = path.with_file_name(format!(
        ".{}.{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id(),
        TMP_SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&tmp)?;
        // The umask may have cleared bits: containers running as any user must read these.
        file.set_permissions(fs::Permissions::from_mode(0o644))?;
        file.write_all(bytes)?;
        drop(file);
        fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(werr(e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dns(servers: &[&str], searches: &[&str], options: &[&str]) -> DnsConfig {
        let own = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        DnsConfig {
            servers: own(servers),
            searches: own(searches),
            options: own(options),
        }
    }

    fn read(dir: &Path, name: &str) -> String {
        fs::read_to_string(dir.join(name)).expect("read")
    }

    #[test]
    fn writes_all_three_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dns(
            &["10.96.0.10", "fd00::a"],
            &["default.svc.cluster.local", "svc.cluster.local"],
            &["ndots:5", "edns0"],
        );
        write_all(dir.path(), "pod-x", &[], &config, Path::new("/nonexistent")).expect("write");
        assert_eq!(
            read(dir.path(), HOSTS),
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
        );
        assert_eq!(read(dir.path(), HOSTNAME), "pod-x\n");
        assert_eq!(
            read(dir.path(), RESOLV_CONF),
            "search default.svc.cluster.local svc.cluster.local\n\
             nameserver 10.96.0.10\n\
             nameserver fd00::a\n\
             options ndots:5 edns0\n"
        );
        for name in [HOSTS, HOSTNAME, RESOLV_CONF] {
            let mode = fs::metadata(dir.path().join(name))
                .expect("stat")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o644, "{name}");
        }
        // No temporary files left beside them.
        assert_eq!(fs::read_dir(dir.path()).expect("ls").count(), 3);
    }

    #[test]
    fn hosts_lists_the_hostname_on_each_pod_ip() {
        let ips: Vec<IpAddr> = vec![
            "10.0.0.5".parse().expect("ip"),
            "fd00::5".parse().expect("ip"),
        ];
        let text = hosts("web-0", &ips).expect("hosts");
        let lines: Vec<Vec<&str>> = text
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(lines[0], ["127.0.0.1", "localhost"]);
        assert_eq!(
            lines[1],
            ["::1", "localhost", "ip6-localhost", "ip6-loopback"]
        );
        assert_eq!(lines[2], ["10.0.0.5", "web-0"]);
        assert_eq!(lines[3], ["fd00::5", "web-0"]);
        assert_eq!(lines.len(), 4);
    }

    #[test]
    fn empty_dns_copies_the_hosts_resolv_conf() {
        let dir = tempfile::tempdir().expect("tempdir");
        let host = dir.path().join("host-resolv.conf");
        fs::write(&host, "nameserver 192.0.2.1\nsearch example.org\n").expect("write");
        let etc = dir.path().join("etc");
        fs::create_dir(&etc).expect("mkdir");
        write_resolv_conf(&etc, &DnsConfig::default(), &host).expect("write");
        assert_eq!(
            read(&etc, RESOLV_CONF),
            "nameserver 192.0.2.1\nsearch example.org\n"
        );
        // No host file: an empty one, not an error.
        write_resolv_conf(&etc, &DnsConfig::default(), &dir.path().join("missing")).expect("write");
        assert_eq!(read(&etc, RESOLV_CONF), "");
        // A host file that cannot be read is an error naming it.
        let err = resolv_conf(&DnsConfig::default(), dir.path()).expect_err("a directory");
        assert!(
            matches!(err, PodFilesError::ReadHostResolvConf { .. }),
            "{err}"
        );
        assert!(err.to_string().contains(&dir.path().display().to_string()));
    }

    #[test]
    fn options_alone_are_written_without_copying_the_host() {
        let text =
            resolv_conf(&dns(&[], &[], &["ndots:2"]), Path::new("/nonexistent")).expect("resolv");
        assert_eq!(String::from_utf8(text).expect("utf8"), "options ndots:2\n");
    }

    #[test]
    fn injected_whitespace_is_refused_naming_the_value() {
        for (config, value) in [
            (
                dns(&[], &["a.com\nnameserver 6.6.6.6"], &[]),
                "a.com\nnameserver 6.6.6.6",
            ),
            (dns(&[], &["a b"], &[]), "a b"),
            (dns(&[], &[], &["ndots:5 x"]), "ndots:5 x"),
            (dns(&[], &[], &[""]), ""),
            (
                dns(&["10.0.0.1\nsearch evil"], &[], &[]),
                "10.0.0.1\nsearch evil",
            ),
            (dns(&["dns.example.com"], &[], &[]), "dns.example.com"),
            (dns(&["fe80::1%"], &[], &[]), "fe80::1%"),
        ] {
            let err = resolv_conf(&config, Path::new("/nonexistent")).expect_err(value);
            assert_eq!(err.kind(), ErrorKind::InvalidArgument);
            match &err {
                PodFilesError::Invalid { value: v, .. } => assert_eq!(v, value),
                other => panic!("{other}"),
            }
            assert!(err.to_string().contains(&format!("{value:?}")), "{err}");
        }
        resolv_conf(&dns(&["fe80::1%eth0"], &[], &[]), Path::new("/x")).expect("zone is fine");
    }

    #[test]
    fn kubelets_search_limits_are_enforced() {
        let many: Vec<String> = (0..=MAX_SEARCHES)
            .map(|i| format!("d{i}.example"))
            .collect();
        let config = DnsConfig {
            searches: many.clone(),
            ..DnsConfig::default()
        };
        let err = resolv_conf(&config, Path::new("/x")).expect_err("33 domains");
        assert!(
            matches!(err, PodFilesError::TooManySearches { count: 33 }),
            "{err}"
        );
        let ok = DnsConfig {
            searches: many[..MAX_SEARCHES].to_vec(),
            ..DnsConfig::default()
        };
        resolv_conf(&ok, Path::new("/x")).expect("32 domains");

        // 9 domains of 250 characters: 9*250 + 8 spaces = 2258 > 2048.
        let long = DnsConfig {
            searches: (0..9).map(|i| format!("{i}{}", "a".repeat(249))).collect(),
            ..DnsConfig::default()
        };
        let err = resolv_conf(&long, Path::new("/x")).expect_err("too long");
        assert!(
            matches!(err, PodFilesError::SearchLineTooLong { len: 2258 }),
            "{err}"
        );
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    }

    #[test]
    fn bad_hostnames_are_refused_and_nothing_is_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        for name in ["", "a b", "pod\n127.0.0.1 evil", &"h".repeat(65)] {
            let err = write_all(
                dir.path(),
                name,
                &[],
                &DnsConfig::default(),
                Path::new("/x"),
            )
            .expect_err(name);
            assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
        }
        // Validation of a later file happens before the first one is written.
        let bad_dns = dns(&["not-an-ip"], &[], &[]);
        write_all(dir.path(), "pod-x", &[], &bad_dns, Path::new("/x")).expect_err("bad dns");
        assert_eq!(fs::read_dir(dir.path()).expect("ls").count(), 0);
    }

    #[test]
    fn rewriting_replaces_the_file_and_a_missing_dir_is_an_error_naming_the_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_hosts(dir.path(), "pod-x", &[]).expect("first");
        write_hosts(dir.path(), "pod-x", &["10.1.2.3".parse().expect("ip")]).expect("second");
        assert!(read(dir.path(), HOSTS).ends_with("10.1.2.3\tpod-x\n"));
        write_hostname(dir.path(), "pod-y").expect("hostname");
        assert_eq!(read(dir.path(), HOSTNAME), "pod-y\n");
        assert_eq!(fs::read_dir(dir.path()).expect("ls").count(), 2);

        let missing = dir.path().join("no-such-dir");
        let err = write_hostname(&missing, "pod-x").expect_err("no dir");
        assert!(matches!(err, PodFilesError::Write { .. }), "{err}");
        assert!(err.to_string().contains("no-such-dir/hostname"), "{err}");
        assert_eq!(err.kind(), ErrorKind::Internal);
    }
}
