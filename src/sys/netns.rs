//! Pod namespaces without a pause container: the daemon creates a pod's network, IPC and
//! UTS namespaces and *pins* them by bind-mounting their nsfs files onto files under the
//! run root, so they outlive every process in them; containers join them by path
//! (`launcher::spec::JoinNamespace`, `sys::ns::join`). Removing the pins (and the last
//! process leaving) frees the namespaces.
//!
//! Net, IPC and UTS namespaces belong to a *thread*, and the daemon is a multi-threaded
//! tokio process: unsharing on a runtime worker would silently move every task that later
//! runs on that worker into the pod's namespaces. So each operation here runs on a
//! dedicated, short-lived `std::thread` that unshares (or `setns`es), does its work and
//! exits; a thread that changed namespaces never serves other work. These calls block
//! (thread spawn and join): call them from `spawn_blocking` in async code.
//!
//! Links are set up and read over rtnetlink by the `link` submodule, which also says why
//! it uses the crates it does.
//!
//! Errors are `io::Error`s of the original kind whose message names the operation and
//! path ([`NetnsError`] inside).

mod link;

use std::collections::BTreeSet;
use std::fs::OpenOptions;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::sched::CloneFlags;

use super::{mount, ns};

/// A namespace a pod holds for its containers to join.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PodNamespace {
    /// A pod's own user namespace: made by a helper process (`launcher::pod_ns`), never
    /// on a thread of the daemon (a multi-threaded process cannot make or enter one).
    User,
    Net,
    Ipc,
    Uts,
}

impl PodNamespace {
    /// Those a daemon thread can make (all but the user namespace).
    pub const ON_A_THREAD: [PodNamespace; 3] =
        [PodNamespace::Net, PodNamespace::Ipc, PodNamespace::Uts];

    pub const ALL: [PodNamespace; 4] = [
        PodNamespace::User,
        PodNamespace::Net,
        PodNamespace::Ipc,
        PodNamespace::Uts,
    ];

    /// Its file name under `/proc/<pid>/ns/`.
    pub fn proc_name(self) -> &'static str {
        match self {
            PodNamespace::User => "user",
            PodNamespace::Net => "net",
            PodNamespace::Ipc => "ipc",
            PodNamespace::Uts => "uts",
        }
    }

    fn clone_flag(self) -> CloneFlags {
        match self {
            PodNamespace::User => CloneFlags::CLONE_NEWUSER,
            PodNamespace::Net => CloneFlags::CLONE_NEWNET,
            PodNamespace::Ipc => CloneFlags::CLONE_NEWIPC,
            PodNamespace::Uts => CloneFlags::CLONE_NEWUTS,
        }
    }
}

/// Where each of a pod's namespaces is pinned (the containerizer's `paths` decides).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodPins {
    pub user: PathBuf,
    pub net: PathBuf,
    pub ipc: PathBuf,
    pub uts: PathBuf,
}

impl PodPins {
    pub fn get(&self, kind: PodNamespace) -> &Path {
        match kind {
            PodNamespace::User => &self.user,
            PodNamespace::Net => &self.net,
            PodNamespace::Ipc => &self.ipc,
            PodNamespace::Uts => &self.uts,
        }
    }
}

/// One network interface's counters: what the CRI's `NetworkUsage` wants (kubelet's
/// per-interface rx/tx bytes and errors) and Mesos's `net_*` statistics (packets, drops). They are the kernel's 64-bit link counters
/// (`IFLA_STATS64`), so they do not wrap at 4 GiB as the 32-bit `IFLA_STATS` ones do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfStats {
    pub name: String,
    /// Administratively up (`IFF_UP`).
    pub up: bool,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub rx_errors: u64,
    pub tx_errors: u64,
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_dropped: u64,
    pub tx_dropped: u64,
}

/// What failed, carried inside the returned `io::Error` (which keeps the original kind).
#[derive(Debug, thiserror::Error)]
#[error("{op}: {source}")]
pub struct NetnsError {
    pub op: String,
    pub source: io::Error,
}

fn failed(op: impl Into<String>) -> impl FnOnce(io::Error) -> io::Error {
    let op = op.into();
    move |source| {
        io::Error::new(
            source.kind(),
            NetnsError {
                op: op.clone(),
                source,
            },
        )
    }
}

/// Creates new namespaces of the given kinds and pins each at its path in `pins` (kinds
/// not asked for are left alone, their pins untouched). With a UTS namespace, `hostname`
/// is set in it; loopback is brought up in a new network namespace, as a pause container's
/// runtime would (containers expect `127.0.0.1` to work before any CNI plugin runs).
///
/// Pin files must not exist yet (their directories must); on any failure, everything this
/// call did is undone: its pins are unmounted and removed, and the namespaces die with the
/// thread.
pub fn create_pinned(
    kinds: &[PodNamespace],
    pins: &PodPins,
    hostname: Option<&str>,
) -> io::Result<()> {
    create_pinned_with(kinds, pins, hostname, &[])
}

/// [`create_pinned`], also writing `sysctls` (a path under `/proc/sys` and its value)
/// from inside the new namespaces, where namespaced sysctls take effect for them alone.
/// The caller checks that each one belongs to a namespace being created.
pub fn create_pinned_with(
    kinds: &[PodNamespace],
    pins: &PodPins,
    hostname: Option<&str>,
    sysctls: &[(PathBuf, String)],
) -> io::Result<()> {
    let kinds: BTreeSet<PodNamespace> = kinds.iter().copied().collect();
    if hostname.is_some() && !kinds.contains(&PodNamespace::Uts) {
        // Setting it anyway would rename the host.
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a pod hostname needs a new UTS namespace",
        ));
    }
    if kinds.is_empty() {
        return Ok(());
    }
    if kinds.contains(&PodNamespace::User) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a user namespace cannot be made on a daemon thread (see launcher::pod_ns)",
        ));
    }
    let pins = pins.clone();
    let hostname = hostname.map(str::to_owned);
    let sysctls = sysctls.to_vec();
    on_own_thread("ucr-pod-ns", move || {
        create_here(&kinds, &pins, hostname.as_deref(), &sysctls)
    })
}

/// Unmounts (lazily) and deletes every pin. Pins that are missing or not mounted are
/// fine, so this is safe to repeat and to run on whatever a crash left. Each pin is tried
/// even if an earlier one failed; the first error is returned.
pub fn remove_pinned(pins: &PodPins) -> io::Result<()> {
    let mut first = None;
    for kind in PodNamespace::ALL {
        if let Err(e) = remove_pin(pins.get(kind)) {
            first.get_or_insert(e);
        }
    }
    first.map_or(Ok(()), Err)
}

/// Pins the namespace file `source` (e.g. `/proc/<pid>/ns/pid`) at `pin`, which must not
/// exist yet (its directory must). On failure nothing is left at `pin`.
pub fn pin(source: &Path, pin: &Path) -> io::Result<()> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o444)
        .open(pin)
        .map_err(failed(format!("creating pin file {}", pin.display())))?;
    mount::bind(source, pin).map_err(|e| {
        let _ = std::fs::remove_file(pin);
        failed(format!(
            "bind-mounting {} onto {}",
            source.display(),
            pin.display()
        ))(e)
    })
}

/// Unmounts and deletes one pin made by [`pin`]; a missing pin is fine.
pub fn unpin(pin: &Path) -> io::Result<()> {
    remove_pin(pin)
}

/// Whether a namespace is pinned at `path`, i.e. the file there is an nsfs file (a bind
/// mount of one), asked of the kernel with one statfs rather than a mountinfo scan:
/// StopPodSandbox asks it for every pod. A missing or plain file counts as no.
pub fn is_pinned(path: &Path) -> bool {
    nix::sys::statfs::statfs(path)
        .map(|st| st.filesystem_type() == nix::sys::statfs::NSFS_MAGIC)
        .unwrap_or(false)
}

/// The interfaces of the network namespace pinned at `netns_pin` and their counters, read
/// with an `RTM_GETLINK` dump from inside it. Any network namespace file works
/// (`/proc/<pid>/ns/net` too).
pub fn interface_stats(netns_pin: &Path) -> io::Result<Vec<IfStats>> {
    let pin = netns_pin.to_path_buf();
    on_own_thread("ucr-netns-stats", move || {
        ns::join(&pin, CloneFlags::CLONE_NEWNET).map_err(failed(format!(
            "entering network namespace {}",
            pin.display()
        )))?;
        // Opened after the setns, so the socket belongs to the pod's namespace.
        link::RouteSocket::open()
            .and_then(|mut s| s.link_stats())
            .map_err(failed(format!(
                "listing links in network namespace {}",
                pin.display()
            )))
    })
}

/// Connects to `port` on the loopback of the network namespace pinned at `netns_pin`
/// (port-forwarding into a pod): IPv4 first, then IPv6, as kubelet's runtimes do. The
/// socket is made inside the namespace and stays there, usable from any thread.
pub fn connect_loopback(
    netns_pin: &Path,
    port: u16,
    timeout: std::time::Duration,
) -> io::Result<std::net::TcpStream> {
    let pin = netns_pin.to_path_buf();
    on_own_thread("ucr-netns-connect", move || {
        ns::join(&pin, CloneFlags::CLONE_NEWNET).map_err(failed(format!(
            "entering network namespace {}",
            pin.display()
        )))?;
        let v4 = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let v6 = std::net::SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port));
        std::net::TcpStream::connect_timeout(&v4, timeout)
            .or_else(|first| std::net::TcpStream::connect_timeout(&v6, timeout).map_err(|_| first))
    })
}

/// Runs `work` on a new thread that exits when it is done, so whatever namespaces it
/// entered die with it (or stay only where pinned).
fn on_own_thread<T: Send + 'static>(
    name: &str,
    work: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(work)
        .map_err(failed(format!("spawning thread {name}")))?
        .join()
        .map_err(|_| io::Error::other(format!("thread {name} panicked")))?
}

/// Runs on the dedicated thread: unshare, set up, pin.
fn create_here(
    kinds: &BTreeSet<PodNamespace>,
    pins: &PodPins,
    hostname: Option<&str>,
    sysctls: &[(PathBuf, String)],
) -> io::Result<()> {
    enter_new(kinds, hostname, sysctls)?;
    let mut undo = Undo(Vec::new());
    for &kind in kinds {
        let source = Path::new("/proc/thread-self/ns").join(kind.proc_name());
        // `pin` never takes over an existing file (it may be someone's live pin) and
        // leaves nothing on failure; only pins it made are pushed for undo.
        pin(&source, pins.get(kind))?;
        undo.0.push(pins.get(kind).to_path_buf());
    }
    undo.0.clear();
    Ok(())
}

/// Moves the calling thread (or single-threaded process) into new namespaces of `kinds`
/// and sets them up: the hostname, `lo` up, the sysctls. Pinning is the caller's.
pub fn enter_new(
    kinds: &BTreeSet<PodNamespace>,
    hostname: Option<&str>,
    sysctls: &[(PathBuf, String)],
) -> io::Result<()> {
    let flags = kinds
        .iter()
        .fold(CloneFlags::empty(), |f, k| f | k.clone_flag());
    let names: Vec<&str> = kinds.iter().map(|k| k.proc_name()).collect();
    ns::unshare(flags).map_err(failed(format!("unsharing {} namespaces", names.join("+"))))?;
    if let Some(name) = hostname {
        ns::set_hostname(name).map_err(failed(format!("setting hostname {name:?}")))?;
    }
    if kinds.contains(&PodNamespace::Net) {
        link::RouteSocket::open()
            .and_then(|mut s| s.set_link_up("lo"))
            .map_err(failed("bringing up lo in the new network namespace"))?;
    }
    // /proc/sys/net and the IPC sysctls show the namespaces of the task reading them:
    // this one's, now.
    for (path, value) in sysctls {
        std::fs::write(path, value).map_err(failed(format!(
            "setting sysctl {} to {value:?}",
            path.display()
        )))?;
    }
    Ok(())
}

/// Removes the pins created so far when creation fails part-way.
struct Undo(Vec<PathBuf>);

impl Drop for Undo {
    fn drop(&mut self) {
        for pin in &self.0 {
            if let Err(e) = remove_pin(pin) {
                tracing::warn!("undoing a failed pod namespace pin: {e}");
            }
        }
    }
}

/// The most mounts peeled off one pin. More than one only happens if something stacked
/// mounts on it; the bound keeps a path that cannot be unmounted from looping forever.
const MAX_STACKED: usize = 16;

fn remove_pin(pin: &Path) -> io::Result<()> {
    for _ in 0..MAX_STACKED {
        let unmounted =
            mount::detach(pin).map_err(failed(format!("unmounting pin {}", pin.display())))?;
        if !unmounted {
            break;
        }
    }
    match std::fs::remove_file(pin) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            Err(failed(format!("removing pin {}", pin.display()))(e))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests;
