//! The pod init: PID 1 of a pod's shared PID namespace (CRI `NamespaceMode POD`, a pod
//! with `shareProcessNamespace`). A PID namespace, unlike a network or IPC one, cannot be
//! held by a bind mount alone: once its first process exits, no process can enter it
//! again. So a pod that shares one gets a tiny process of ours instead of a pause
//! container, which does nothing but sit there and let the kernel reap the orphans
//! reparented to it.
//!
//! Every process of the pod sees it as PID 1, and one with `SYS_PTRACE` (which `kubectl
//! debug --profile=general` adds) could reach it through `/proc/1`. So, as the pause
//! container effectively is, it is nobody: uid and gid 65535, no capabilities in any set,
//! `no_new_privs`, not dumpable, no open descriptors, in a mount namespace of its own
//! whose root is an empty read-only tmpfs (`/proc/1/root` shows nothing of the host).
//! And it is small: `init.rs`, a static program of about a kilobyte without std or libc
//! (12 KiB resident), built by `build.rs` and embedded here as [`INIT_BINARY`].
//!
//! # Contract with the daemon
//! 1. The daemon runs `ucr pod-init --dir <pod dir> --sync-fd 3` (descriptor 3 the write
//!    end of a pipe, see `sys::spawn::pass_fd`) and waits for that process.
//! 2. It starts a new session, puts [`INIT_BINARY`] in a sealed memfd, unshares its PID
//!    namespace and forks: the child is PID 1 of the new PID namespace. The child makes
//!    a mount namespace of its own, builds its empty root there, becomes nobody
//!    (`jail_and_exec`) and execs the init from the
//!    memfd; it reports a failure on a close-on-exec pipe, whose EOF means the exec
//!    happened. The parent then writes the child's host pid and start time to
//!    `<dir>/init.pid` (atomically), reports `ok <pid>` on the sync pipe and exits; the
//!    init is reparented to the host's init and outlives the daemon, like a monitor.
//! 3. Containers of the pod enter the namespace through `/proc/<pid>/ns/pid` (the daemon
//!    pins it under the pod's `ns/` directory).
//! 4. [`stop`] kills it with SIGKILL (the only signal an init takes from outside its
//!    namespace without a handler), through a pidfd checked against the recorded start
//!    time; the kernel then kills every process left in the namespace. `init.pid` is
//!    written before the daemon hears of the init, so a daemon killed at any point leaves
//!    a file that [`stop`] can act on.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use nix::sched::CloneFlags;

use crate::sys::inroot::Root;
use crate::sys::mount::{self, Attrs, Propagation};
use crate::sys::pidfd::ProcessId;
use crate::sys::process::{self, Forked};
use crate::sys::{kill, ns, signal, spawn};

/// The init program (`init.rs`), as `build.rs` built it.
pub const INIT_BINARY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/ucr-pod-init"));

/// Who the init runs as: the pause image's user and group.
const NOBODY: u32 = 65535;

/// The file under the pod directory holding the init's host pid and start time.
pub const PID_FILE: &str = "init.pid";

/// The subcommand name; also how [`stop`] recognises the init of an older version,
/// whose pid file holds no start time.
const SUBCOMMAND: &str = "pod-init";

/// Starts the init of the pod whose run directory is `dir`, in the cgroups whose
/// `cgroup.procs` files are `cgroups` (the pod's, from the cgroups isolator); returns it
/// once it runs and `init.pid` is written. Blocking (spawns and waits for a process).
pub fn start(
    binary: &Path,
    dir: &Path,
    cgroups: &[PathBuf],
    userns: Option<&Path>,
) -> io::Result<ProcessId> {
    let (read_end, write_end) = process::cloexec_pipe()?;
    let mut cmd = std::process::Command::new(binary);
    cmd.arg(SUBCOMMAND)
        .arg("--dir")
        .arg(dir)
        .arg("--sync-fd")
        .arg(spawn::PASSED_FD.to_string())
        .args(
            userns
                .iter()
                .flat_map(|u| [std::ffi::OsStr::new("--userns"), u.as_os_str()]),
        )
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    spawn::pass_fd(&mut cmd, &write_end);
    spawn::join_cgroups(&mut cmd, cgroups)?;
    let mut child = cmd.spawn()?;
    drop(write_end);
    let report = std::io::read_to_string(std::fs::File::from(read_end)).unwrap_or_default();
    let _ = child.wait();
    let report = report.trim();
    match (report.strip_prefix("ok "), read_init(dir)) {
        (Some(pid), Ok(Some(Recorded::Process(p)))) if pid.parse() == Ok(p.pid) => Ok(p),
        _ => Err(io::Error::other(format!(
            "pod init did not start: {}",
            report.strip_prefix("error ").unwrap_or(report)
        ))),
    }
}

/// Kills the pod's init, if one runs (and is ours: the pid file may be stale and the pid
/// reused), and removes its pid file. Safe to repeat.
pub fn stop(dir: &Path) -> io::Result<()> {
    match read_init(dir)? {
        None => return Ok(()),
        Some(Recorded::Process(p)) => {
            p.signal(libc::SIGKILL)?;
        }
        Some(Recorded::Pid(pid)) => {
            if is_init_of(pid, dir) {
                kill::signal(pid, libc::SIGKILL);
            }
        }
    }
    match std::fs::remove_file(dir.join(PID_FILE)) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// What `init.pid` holds: pid and start time, or (written by an older version) a pid.
enum Recorded {
    Process(ProcessId),
    Pid(i32),
}

fn read_init(dir: &Path) -> io::Result<Option<Recorded>> {
    let text = match std::fs::read_to_string(dir.join(PID_FILE)) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut fields = text.split_ascii_whitespace().map(str::parse::<u64>);
    Ok(match (fields.next(), fields.next()) {
        (Some(Ok(pid)), Some(Ok(start_time))) if pid > 0 && pid <= i32::MAX as u64 => {
            Some(Recorded::Process(ProcessId {
                pid: pid as i32,
                start_time,
            }))
        }
        (Some(Ok(pid)), None) if pid > 0 && pid <= i32::MAX as u64 => {
            Some(Recorded::Pid(pid as i32))
        }
        _ => None,
    })
}

/// Whether `pid` is a live `ucr pod-init --dir <dir>` (its command line says so).
fn is_init_of(pid: i32, dir: &Path) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    let dir = dir.as_os_str().as_encoded_bytes();
    args.contains(&SUBCOMMAND.as_bytes()) && args.contains(&dir)
}

/// `ucr pod-init`: see the module docs. Single-threaded, like the monitor. With
/// `userns` (a pod with a user namespace of its own), the PID namespace is made inside it,
/// so that its containers' root may mount `/proc` for it.
pub fn main(dir: &Path, sync_fd: i32, userns: Option<&Path>) -> ExitCode {
    let Ok(fd) = signal::take_inherited_fd(sync_fd) else {
        return ExitCode::FAILURE;
    };
    let mut sync = std::fs::File::from(fd);
    let fail = |sync: &mut std::fs::File, what: &str, e: &dyn std::fmt::Display| {
        let _ = writeln!(sync, "error {what}: {e}");
        ExitCode::FAILURE
    };
    let init = match crate::sys::fs::sealed_memfd("ucr-pod-init", INIT_BINARY) {
        Ok(fd) => fd,
        Err(e) => return fail(&mut sync, "loading the init program", &e),
    };
    // In a pod's user namespace this process is an ordinary uid on the host and cannot
    // write the pod directory: the pid file is opened before, and written in one go.
    let mut pid_file = None;
    if let Some(u) = userns {
        match crate::perm::create_private(&dir.join(PID_FILE)) {
            Ok(f) => pid_file = Some(f),
            Err(e) => return fail(&mut sync, "creating the pid file", &e),
        }
        // As the namespace's root (see `launcher::userns`): the host's has no id there.
        if let Err(e) = crate::sys::userns::enter(u).and_then(|_| process::switch_user(0, 0, &[])) {
            return fail(&mut sync, "entering the pod's user namespace", &e);
        }
    }
    // The PID namespace is for the child; the child makes its own mount namespace
    // (this process must keep seeing the pod directory to write `init.pid`).
    if let Err(e) = signal::setsid().and_then(|_| ns::unshare(CloneFlags::CLONE_NEWPID)) {
        return fail(&mut sync, "preparing the pod init", &e);
    }
    let (report_r, report_w) = match process::cloexec_pipe() {
        Ok(pipe) => pipe,
        Err(e) => return fail(&mut sync, "pipe", &e),
    };
    let forked = match process::fork() {
        Ok(f) => f,
        Err(e) => return fail(&mut sync, "fork", &e),
    };
    let child = match forked {
        Forked::Child => {
            // The sync pipe must close here, or the daemon would wait for EOF forever.
            drop(sync);
            drop(report_r);
            let e = jail_and_exec(dir, &init);
            let _ = std::fs::File::from(report_w).write_all(e.to_string().as_bytes());
            process::exit_now(1)
        }
        Forked::Parent { child } => child.as_raw(),
    };
    drop(report_w);
    let mut why = String::new();
    let _ = std::fs::File::from(report_r).read_to_string(&mut why);
    if !why.is_empty() {
        let _ = process::wait_exit_code(nix::unistd::Pid::from_raw(child));
        return fail(&mut sync, "starting the pod init", &why);
    }
    // Our unreaped child: its pid cannot have been reused, so its start time is its own.
    let written = ProcessId::of(child).and_then(|p| match pid_file.take() {
        Some(mut f) => f.write_all(format!("{} {}\n", p.pid, p.start_time).as_bytes()),
        None => write_pid(dir, p),
    });
    if let Err(e) = written {
        kill::signal(child, libc::SIGKILL);
        let what = format!("writing {}", dir.join(PID_FILE).display());
        return fail(&mut sync, &what, &e);
    }
    let _ = writeln!(sync, "ok {child}");
    ExitCode::SUCCESS
}

/// The child's part: an empty root, nobody, then the init. Returns only on failure.
fn jail_and_exec(dir: &Path, init: &OwnedFd) -> io::Error {
    let step =
        |what: &'static str| move |e: io::Error| io::Error::new(e.kind(), format!("{what}: {e}"));
    let jailed = (|| -> io::Result<()> {
        ns::unshare(CloneFlags::CLONE_NEWNS).map_err(step("unshare the mount namespace"))?;
        // Nothing of ours may reach the host's mount table, and the old root must be free
        // to go.
        mount::set_propagation_recursive(Path::new("/"), Propagation::Private)
            .map_err(step("make / private"))?;
        let empty = mount::new_fs(
            "tmpfs",
            &[("size", Some("4k")), ("mode", Some("0555"))],
            Attrs::MOUNT_ATTR_RDONLY
                | Attrs::MOUNT_ATTR_NOSUID
                | Attrs::MOUNT_ATTR_NODEV
                | Attrs::MOUNT_ATTR_NOEXEC,
        )
        .map_err(step("mount an empty root"))?;
        // Attached anywhere (here, over `/`, in this namespace only): pivot_root wants a
        // mount in the tree. Not over the pod directory: in a pod's user namespace this
        // process could not walk the daemon's 0700 directories to it.
        let at = Root::open(Path::new("/")).map_err(step("open /"))?;
        mount::attach(empty.as_fd(), at.as_fd()).map_err(step("attach the empty root"))?;
        ns::pivot_into(empty.as_fd()).map_err(step("pivot_root"))?;
        process::close_stdio().map_err(step("close stdio"))?;
        // The kernel reaps what is reparented to a PID 1 that ignores SIGCHLD; the
        // disposition survives the exec.
        signal::autoreap_children().map_err(step("ignore SIGCHLD"))?;
        let no_caps: &[String] = &[];
        // No seccomp filter: the init makes a handful of calls, none a filter would
        // refuse it, and it holds no capability to misuse.
        let _nothing = super::identity::apply(NOBODY, NOBODY, &[], Some(no_caps), true, None)
            .map_err(|e| io::Error::other(crate::error::chain(&e)))?;
        process::set_dumpable(false).map_err(step("set dumpable"))?;
        Ok(())
    })();
    match jailed {
        Err(e) => e,
        // `ucr-pod-init <pod id>`: what `ps` on the node shows, so an operator can tell
        // whose init it is (the pod directory is named by the sandbox id).
        Ok(()) => {
            let pod = dir.file_name().unwrap_or_default().to_string_lossy();
            step("exec the init")(process::exec_fd(init, &["ucr-pod-init", &pod]))
        }
    }
}

fn write_pid(dir: &Path, init: ProcessId) -> io::Result<()> {
    let tmp: PathBuf = dir.join(format!(".{PID_FILE}.tmp"));
    crate::perm::write_private(
        &tmp,
        format!("{} {}\n", init.pid, init.start_time).as_bytes(),
    )?;
    std::fs::rename(&tmp, dir.join(PID_FILE))
}
