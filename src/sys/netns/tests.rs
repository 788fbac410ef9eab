//! Pinning needs root (CAP_SYS_ADMIN for unshare, setns and mount); without it each test
//! prints why it is skipped. The tests that pin run one at a time. Leak checks count nsfs
//! mounts under the test's own directory only: mountinfo lists the whole mount namespace,
//! where a daemon under test elsewhere may be pinning pods at the same moment.

use std::net::UdpSocket;
use std::os::unix::fs::MetadataExt;
use std::process::Command;
use std::sync::{Mutex, MutexGuard};

use super::*;

static SERIAL: Mutex<()> = Mutex::new(());

/// The kernel creates these fallback tunnel devices in every new network namespace when
/// their modules are loaded (unless `net.core.fb_tunnels_only_for_init_net` is set); they
/// are always down.
const FALLBACK_TUNNELS: &[&str] = &[
    "tunl0", "sit0", "ip6tnl0", "ip6gre0", "gre0", "gretap0", "erspan0", "ip_vti0", "ip6_vti0",
];

fn privileged(test: &str) -> Option<MutexGuard<'static, ()>> {
    let root = nix::unistd::geteuid().is_root();
    let admin = caps::has_cap(
        None,
        caps::CapSet::Effective,
        caps::Capability::CAP_SYS_ADMIN,
    )
    .unwrap_or(false);
    if !(root && admin) {
        eprintln!("SKIPPED {test}: needs root with CAP_SYS_ADMIN (unshare, setns, mount)");
        return None;
    }
    Some(SERIAL.lock().unwrap_or_else(|e| e.into_inner()))
}

fn pins_in(dir: &Path) -> PodPins {
    PodPins {
        user: dir.join("user"),
        net: dir.join("net"),
        ipc: dir.join("ipc"),
        uts: dir.join("uts"),
    }
}

fn nsfs_mounts_under(dir: &Path) -> usize {
    let dir = std::fs::canonicalize(dir).expect("canonicalize");
    mount::mountinfo()
        .expect("mountinfo")
        .iter()
        .filter(|m| m.fs_type == "nsfs" && m.mount_point.starts_with(&dir))
        .count()
}

fn inode(path: &Path) -> u64 {
    std::fs::metadata(path).expect("stat").ino()
}

#[test]
fn hostname_without_uts_is_refused_before_anything_happens() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pins = pins_in(dir.path());
    let err = create_pinned(&[PodNamespace::Net], &pins, Some("pod-x")).expect_err("refused");
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    assert!(!pins.net.exists());
    // Nothing asked for: nothing done.
    create_pinned(&[], &pins, None).expect("no kinds");
    assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 0);
}

#[test]
fn removing_missing_pins_is_fine() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pins = pins_in(&dir.path().join("no-such-dir"));
    match remove_pinned(&pins) {
        Ok(()) => {}
        // Unprivileged umount2 fails with EPERM before looking at the path.
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            eprintln!("SKIPPED removing_missing_pins_is_fine: needs root (umount2)");
        }
        Err(e) => panic!("remove: {e}"),
    }
    assert!(!is_pinned(&pins.net));
}

#[test]
fn host_loopback_is_listed_with_counters() {
    let Some(_serial) = privileged("host_loopback_is_listed_with_counters") else {
        return;
    };
    let links = interface_stats(Path::new("/proc/self/ns/net")).expect("stats");
    assert!(links.iter().any(|l| l.name == "lo"), "{links:?}");
}

#[test]
fn root_pins_net_ipc_uts_with_hostname_and_removes_them() {
    let Some(_serial) = privileged("root_pins_net_ipc_uts_with_hostname_and_removes_them") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let pins = pins_in(dir.path());
    create_pinned(&PodNamespace::ON_A_THREAD, &pins, Some("pod-x")).expect("create");

    for kind in PodNamespace::ON_A_THREAD {
        let pin = pins.get(kind);
        assert!(is_pinned(pin), "{} is not an nsfs mount", pin.display());
        let host = Path::new("/proc/self/ns").join(kind.proc_name());
        assert_ne!(
            inode(pin),
            inode(&host),
            "{} is the host's",
            kind.proc_name()
        );
    }

    // Loopback is up, and is the only interface (bar always-down fallback tunnels).
    let links = interface_stats(&pins.net).expect("stats");
    let lo = links.iter().find(|l| l.name == "lo").expect("lo listed");
    assert!(lo.up, "lo is down: {links:?}");
    for l in links.iter().filter(|l| l.name != "lo") {
        assert!(
            FALLBACK_TUNNELS.contains(&l.name.as_str()) && !l.up,
            "unexpected interface in the pod: {links:?}"
        );
    }

    // Traffic on the pod's loopback shows in its counters, not the host's.
    let before = lo.rx_bytes;
    let pin = pins.net.clone();
    std::thread::spawn(move || {
        ns::join(&pin, CloneFlags::CLONE_NEWNET).expect("setns");
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind in pod");
        sock.send_to(&[0u8; 1000], sock.local_addr().expect("addr"))
            .expect("send");
        let mut buf = [0u8; 2000];
        assert_eq!(sock.recv(&mut buf).expect("recv"), 1000);
    })
    .join()
    .expect("pod thread");
    let links = interface_stats(&pins.net).expect("stats");
    let lo = links.iter().find(|l| l.name == "lo").expect("lo listed");
    assert!(lo.rx_bytes >= before + 1000, "{links:?}");
    assert!(lo.tx_bytes >= 1000, "{links:?}");

    // A process joining the UTS pin sees the pod's hostname.
    match Command::new("nsenter")
        .arg(format!("--uts={}", pins.uts.display()))
        .arg("hostname")
        .output()
    {
        Ok(out) => {
            assert!(out.status.success(), "nsenter: {out:?}");
            assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "pod-x");
        }
        Err(e) => eprintln!("SKIPPED the nsenter hostname check: nsenter: {e}"),
    }

    remove_pinned(&pins).expect("remove");
    for kind in PodNamespace::ALL {
        let pin = pins.get(kind);
        assert!(!is_pinned(pin));
        assert!(!pin.exists(), "{} left behind", pin.display());
    }
    assert!(mount::mounts_at_or_under(dir.path())
        .expect("mountinfo")
        .is_empty());
    remove_pinned(&pins).expect("remove twice");
}

#[test]
fn root_pins_only_the_kinds_asked_for() {
    let Some(_serial) = privileged("root_pins_only_the_kinds_asked_for") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let pins = pins_in(dir.path());
    let host_name = nix::unistd::gethostname().expect("hostname");
    create_pinned(&[PodNamespace::Ipc], &pins, None).expect("create");
    assert!(is_pinned(&pins.ipc));
    assert!(!pins.net.exists() && !pins.uts.exists());
    // The daemon's own threads were not moved anywhere.
    assert_eq!(nix::unistd::gethostname().expect("hostname"), host_name);
    remove_pinned(&pins).expect("remove");
    assert!(!pins.ipc.exists());
}

#[test]
fn root_failure_part_way_undoes_its_pins_and_keeps_others_files() {
    let Some(_serial) = privileged("root_failure_part_way_undoes_its_pins_and_keeps_others_files")
    else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let pins = pins_in(dir.path());
    // Net and IPC are pinned first (kinds go in order); the UTS pin already exists.
    std::fs::write(&pins.uts, b"someone else's").expect("write");
    let err =
        create_pinned(&PodNamespace::ON_A_THREAD, &pins, Some("pod-y")).expect_err("uts exists");
    assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
    assert!(err.to_string().contains("uts"), "{err}");
    assert!(!pins.net.exists() && !pins.ipc.exists());
    assert_eq!(std::fs::read(&pins.uts).expect("read"), b"someone else's");
    assert_eq!(nsfs_mounts_under(dir.path()), 0);
}

#[test]
fn root_entering_something_that_is_not_a_pin_fails_naming_it() {
    let Some(_serial) = privileged("root_entering_something_that_is_not_a_pin_fails_naming_it")
    else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let plain = dir.path().join("plain");
    std::fs::write(&plain, b"").expect("write");
    let err = interface_stats(&plain).expect_err("not a namespace");
    assert!(err.to_string().contains("plain"), "{err}");
    assert!(!is_pinned(&plain));
}

#[test]
fn root_fifty_cycles_leak_no_mounts_or_files() {
    let Some(_serial) = privileged("root_fifty_cycles_leak_no_mounts_or_files") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let pins = pins_in(dir.path());
    for i in 0..50 {
        create_pinned(&PodNamespace::ON_A_THREAD, &pins, Some(&format!("pod-{i}")))
            .expect("create");
        assert_eq!(nsfs_mounts_under(dir.path()), 3);
        remove_pinned(&pins).expect("remove");
        assert_eq!(nsfs_mounts_under(dir.path()), 0);
    }
    assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 0);
}

/// "mean …, median …, p99 …, max …" of a set of timings.
fn timing_summary(each: &mut [std::time::Duration]) -> String {
    each.sort();
    let n = each.len();
    let total: std::time::Duration = each.iter().sum();
    format!(
        "mean {:?}, median {:?}, p99 {:?}, max {:?}",
        total / n as u32,
        each[n / 2],
        each[n * 99 / 100],
        each[n - 1]
    )
}

/// Not a pass/fail check of speed (the machine may be busy): prints how long one
/// `interface_stats` call takes, thread spawn and `setns` included, and the netlink part
/// alone (socket, dump, decoding), since stats for a hundred pods are asked for in one
/// request. Run with `--nocapture` to see the figures.
#[test]
fn root_interface_stats_timing() {
    let Some(_serial) = privileged("root_interface_stats_timing") else {
        return;
    };
    const CALLS: usize = 500;
    let dir = tempfile::tempdir().expect("tempdir");
    let pins = pins_in(dir.path());
    create_pinned(&[PodNamespace::Net], &pins, None).expect("create");

    interface_stats(&pins.net).expect("warm up");
    let mut each = Vec::with_capacity(CALLS);
    for _ in 0..CALLS {
        let start = std::time::Instant::now();
        let links = interface_stats(&pins.net).expect("stats");
        each.push(start.elapsed());
        assert!(links.iter().any(|l| l.name == "lo"));
    }
    eprintln!(
        "interface_stats, {CALLS} calls: {}",
        timing_summary(&mut each)
    );

    let pin = pins.net.clone();
    let mut each = std::thread::spawn(move || {
        ns::join(&pin, CloneFlags::CLONE_NEWNET).expect("setns");
        (0..CALLS)
            .map(|_| {
                let start = std::time::Instant::now();
                let links = link::RouteSocket::open()
                    .and_then(|mut s| s.link_stats())
                    .expect("links");
                let took = start.elapsed();
                assert!(links.iter().any(|l| l.name == "lo"));
                took
            })
            .collect::<Vec<_>>()
    })
    .join()
    .expect("timing thread");
    eprintln!(
        "netlink socket + link dump alone, {CALLS} calls: {}",
        timing_summary(&mut each)
    );
    remove_pinned(&pins).expect("remove");
}

/// Removes pins when a test ends, even by panicking, so no namespace outlives it.
struct RemoveOnDrop(Vec<PodPins>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        for pins in &self.0 {
            if let Err(e) = remove_pinned(pins) {
                eprintln!("removing test pins: {e}");
            }
        }
    }
}

/// Runs `ip ARGS` (iproute2) inside the network namespace pinned at `netns`; `None` when
/// `nsenter` or `ip` is not installed.
fn ip_in(netns: &Path, args: &[&str]) -> Option<()> {
    let out = match Command::new("nsenter")
        .arg(format!("--net={}", netns.display()))
        .arg("ip")
        .args(args)
        .output()
    {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
        other => other.expect("running nsenter"),
    };
    // nsenter exits 127 when it cannot find the command it should run.
    if out.status.code() == Some(127) {
        return None;
    }
    assert!(out.status.success(), "ip {args:?}: {out:?}");
    Some(())
}

fn link_named(netns: &Path, name: &str) -> IfStats {
    let links = interface_stats(netns).expect("stats");
    links
        .into_iter()
        .find(|l| l.name == name)
        .unwrap_or_else(|| panic!("no {name} in {}", netns.display()))
}

/// Known traffic over a veth pair between two pod namespaces shows in the counters of
/// both ends, by at least the bytes sent and in the right direction. The pair is made
/// with iproute2, a tool independent of the netlink code under test.
#[test]
fn root_veth_counters_move_by_the_traffic_sent() {
    let Some(_serial) = privileged("root_veth_counters_move_by_the_traffic_sent") else {
        return;
    };
    const DATAGRAMS: usize = 20;
    const PAYLOAD: usize = 1000;
    const SENT: u64 = (DATAGRAMS * PAYLOAD) as u64;
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (
        pins_in(&dir.path().join("a")),
        pins_in(&dir.path().join("b")),
    );
    for pins in [&a, &b] {
        std::fs::create_dir(pins.net.parent().expect("parent")).expect("mkdir");
        create_pinned(&[PodNamespace::Net], pins, None).expect("create");
    }
    let _remove = RemoveOnDrop(vec![a.clone(), b.clone()]);

    // ucr-a in namespace a, its peer ucr-b created straight into namespace b: the host
    // never sees either end.
    let b_net = b.net.display().to_string();
    let made = ip_in(
        &a.net,
        &[
            "link", "add", "ucr-a", "type", "veth", "peer", "name", "ucr-b", "netns", &b_net,
        ],
    );
    if made.is_none() {
        eprintln!(
            "SKIPPED root_veth_counters_move_by_the_traffic_sent: needs nsenter and ip (iproute2)"
        );
        return;
    }
    for (pins, dev, addr) in [
        (&a, "ucr-a", "10.231.0.1/30"),
        (&b, "ucr-b", "10.231.0.2/30"),
    ] {
        ip_in(&pins.net, &["addr", "add", addr, "dev", dev]).expect("ip");
        ip_in(&pins.net, &["link", "set", dev, "up"]).expect("ip");
    }
    let (a_before, b_before) = (link_named(&a.net, "ucr-a"), link_named(&b.net, "ucr-b"));
    assert!(a_before.up && b_before.up, "{a_before:?} {b_before:?}");

    // The receiver binds first and says where; the sender then sends DATAGRAMS datagrams
    // from a to b, and the receiver waits for all of them.
    let (bound_tx, bound_rx) = std::sync::mpsc::channel();
    let b_net = b.net.clone();
    let receiver = std::thread::spawn(move || {
        ns::join(&b_net, CloneFlags::CLONE_NEWNET).expect("setns b");
        let sock = UdpSocket::bind("10.231.0.2:0").expect("bind in b");
        sock.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .expect("timeout");
        bound_tx
            .send(sock.local_addr().expect("addr"))
            .expect("tell");
        let mut buf = [0u8; 2 * PAYLOAD];
        for i in 0..DATAGRAMS {
            let n = sock
                .recv(&mut buf)
                .unwrap_or_else(|e| panic!("datagram {i} of {DATAGRAMS}: {e}"));
            assert_eq!(n, PAYLOAD);
        }
    });
    let to = bound_rx.recv().expect("receiver bound");
    let a_net = a.net.clone();
    std::thread::spawn(move || {
        ns::join(&a_net, CloneFlags::CLONE_NEWNET).expect("setns a");
        let sock = UdpSocket::bind("10.231.0.1:0").expect("bind in a");
        for _ in 0..DATAGRAMS {
            assert_eq!(sock.send_to(&[7u8; PAYLOAD], to).expect("send"), PAYLOAD);
        }
    })
    .join()
    .expect("sender");
    receiver.join().expect("receiver");

    let (a_after, b_after) = (link_named(&a.net, "ucr-a"), link_named(&b.net, "ucr-b"));
    let report = format!("a {a_before:?} -> {a_after:?}, b {b_before:?} -> {b_after:?}");
    eprintln!(
        "sent {SENT} payload bytes a->b: a tx +{}, b rx +{}; back: b tx +{}, a rx +{}",
        a_after.tx_bytes.saturating_sub(a_before.tx_bytes),
        b_after.rx_bytes.saturating_sub(b_before.rx_bytes),
        b_after.tx_bytes.saturating_sub(b_before.tx_bytes),
        a_after.rx_bytes.saturating_sub(a_before.rx_bytes),
    );
    assert!(
        a_after.tx_bytes.saturating_sub(a_before.tx_bytes) >= SENT,
        "{report}"
    );
    assert!(
        b_after.rx_bytes.saturating_sub(b_before.rx_bytes) >= SENT,
        "{report}"
    );
    // Back from b went only the ARP reply and IPv6 chatter, far less than was sent.
    assert!(
        b_after.tx_bytes.saturating_sub(b_before.tx_bytes) < SENT,
        "{report}"
    );
    assert!(
        a_after.rx_bytes.saturating_sub(a_before.rx_bytes) < SENT,
        "{report}"
    );
    assert_eq!((a_after.rx_errors, a_after.tx_errors), (0, 0), "{report}");
    assert_eq!((b_after.rx_errors, b_after.tx_errors), (0, 0), "{report}");

    let host = interface_stats(Path::new("/proc/self/ns/net")).expect("host stats");
    assert!(
        !host.iter().any(|l| l.name.starts_with("ucr-")),
        "a veth end is in the host: {host:?}"
    );
}

/// The kernel's refusal comes back as the errno it sent (here ENODEV), not as a hang or a
/// decoding error; checked in a throwaway namespace of a thread of its own.
#[test]
fn root_setting_up_a_missing_link_reports_the_kernels_errno() {
    let Some(_serial) = privileged("root_setting_up_a_missing_link_reports_the_kernels_errno")
    else {
        return;
    };
    let err = std::thread::spawn(|| {
        ns::unshare(CloneFlags::CLONE_NEWNET).expect("unshare");
        link::RouteSocket::open()
            .and_then(|mut s| s.set_link_up("no-such-link"))
            .expect_err("no such link")
    })
    .join()
    .expect("thread");
    assert_eq!(err.raw_os_error(), Some(libc::ENODEV), "{err}");
}
