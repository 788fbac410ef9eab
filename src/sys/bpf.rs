//! The bpf(2) calls a cgroup v2 device policy needs: load a `BPF_PROG_TYPE_CGROUP_DEVICE`
//! program, attach it to a cgroup (or atomically in place of the one attached before),
//! list what is attached, detach.
//!
//! Neither libc nor nix wraps bpf(2), so this calls `syscall(SYS_bpf, cmd, attr, size)`
//! with `#[repr(C)]` copies of the parts of `union bpf_attr` (include/uapi/linux/bpf.h)
//! each command reads. Each is passed inside a zeroed 512-byte buffer, larger than the
//! kernel's union (144 bytes in 6.x): the kernel requires every byte it does not read to
//! be zero, and some commands write results back into fields past the ones we set (the
//! query's `revision`, the load's `log_true_size`), which must land in our buffer.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

// Commands (enum bpf_cmd).
const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_PROG_ATTACH: libc::c_int = 8;
const BPF_PROG_DETACH: libc::c_int = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_int = 13;
const BPF_PROG_QUERY: libc::c_int = 16;
/// enum bpf_prog_type.
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
/// enum bpf_attach_type.
const BPF_CGROUP_DEVICE: u32 = 6;
/// Several programs per cgroup, all of which must allow: what runc and systemd use, so a
/// cgroup never holds a lone program that others cannot join.
const BPF_F_ALLOW_MULTI: u32 = 1 << 1;
/// Take the place of `replace_bpf_fd` in one step (Linux 5.6+).
const BPF_F_REPLACE: u32 = 1 << 2;

/// What `bpftool prog` shows for ucr's device programs (at most 15 bytes).
const PROGRAM_NAME: &[u8] = b"ucr_devices";
/// Room for the verifier's explanation when a load fails.
const LOG_SIZE: usize = 64 * 1024;

/// The attr buffer: `T` at its start, zeros after.
#[repr(C)]
union Attr<T: Copy> {
    attr: T,
    _room: [u64; 64],
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct ProgLoad {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct ProgAttach {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct ProgQuery {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    _pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct GetFdById {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

// The kernel refuses an attr with stray bytes where it expects zeros, and padding would
// be such bytes: the structs above have none (their sizes are their fields' sums).
const _: () = assert!(std::mem::size_of::<ProgLoad>() == 72);
const _: () = assert!(std::mem::size_of::<ProgAttach>() == 20);
const _: () = assert!(std::mem::size_of::<ProgQuery>() == 32);
const _: () = assert!(std::mem::size_of::<GetFdById>() == 12);

/// Runs bpf `cmd` on `attr` and returns what the kernel returned (a descriptor for the
/// commands that make one) with `attr` as the kernel left it.
fn bpf<T: Copy>(cmd: libc::c_int, attr: T) -> io::Result<(libc::c_long, T)> {
    let mut buf = Attr { _room: [0; 64] };
    buf.attr = attr;
    let size = std::mem::size_of::<Attr<T>>() as libc::c_uint;
    // SAFETY: `buf` is a live, writable buffer of `size` bytes for the whole call; every
    // pointer inside `attr` (instructions, license, log, id array) was set by our caller
    // from a borrow that outlives this call, with the matching length alongside.
    let ret = unsafe { libc::syscall(libc::SYS_bpf, cmd, &mut buf as *mut Attr<T>, size) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `T` is one of the plain integer structs above, for which any bytes the
    // kernel wrote back are a valid value.
    Ok((ret, unsafe { buf.attr }))
}

/// Takes ownership of a descriptor the kernel just returned.
fn owned(fd: libc::c_long) -> io::Result<OwnedFd> {
    let raw = i32::try_from(fd).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: the kernel returned this descriptor to us just now and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

fn fd_u32(fd: BorrowedFd<'_>) -> u32 {
    // A live descriptor is never negative.
    fd.as_raw_fd() as u32
}

/// Loads a cgroup device program (`insns`: one `struct bpf_insn` per `u64`, in memory
/// order). On failure the error carries the verifier's log, from a second load that
/// asks for it (the first does not, so a good program pays nothing for logging).
///
/// `license` is recorded by the kernel and only matters for GPL-only helpers, which a
/// device program does not call.
pub fn load_cgroup_device_program(insns: &[u64], license: &str) -> io::Result<OwnedFd> {
    let license = std::ffi::CString::new(license)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "license holds a NUL"))?;
    let mut attr = ProgLoad {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: u32::try_from(insns.len())
            .map_err(|_| io::Error::from_raw_os_error(libc::E2BIG))?,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        ..ProgLoad::default()
    };
    attr.prog_name[..PROGRAM_NAME.len()].copy_from_slice(PROGRAM_NAME);
    let first = match bpf(BPF_PROG_LOAD, attr) {
        Ok((fd, _)) => return owned(fd),
        Err(e) => e,
    };
    let mut log = vec![0u8; LOG_SIZE];
    let logged = ProgLoad {
        log_level: 1,
        log_size: LOG_SIZE as u32,
        log_buf: log.as_mut_ptr() as u64,
        ..attr
    };
    // A program the verifier accepts this time (it should not) is still a program.
    if let Ok((fd, _)) = bpf(BPF_PROG_LOAD, logged) {
        return owned(fd);
    }
    let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
    let text = String::from_utf8_lossy(&log[..end]);
    let text = text.trim_end();
    if text.is_empty() {
        // Refused before the verifier ran (no privilege, a bad attribute).
        return Err(first);
    }
    Err(io::Error::new(
        first.kind(),
        format!("{first}; verifier log: {text}"),
    ))
}

/// Attaches `prog` to `cgroup` for device checks, alongside whatever is attached there
/// (`BPF_F_ALLOW_MULTI`), or in place of `replace` in one step (`BPF_F_REPLACE`), so the
/// cgroup is never without a policy while one is changed.
pub fn attach(
    cgroup: BorrowedFd<'_>,
    prog: BorrowedFd<'_>,
    replace: Option<BorrowedFd<'_>>,
) -> io::Result<()> {
    let attr = ProgAttach {
        target_fd: fd_u32(cgroup),
        attach_bpf_fd: fd_u32(prog),
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI | replace.map_or(0, |_| BPF_F_REPLACE),
        replace_bpf_fd: replace.map_or(0, fd_u32),
    };
    bpf(BPF_PROG_ATTACH, attr).map(drop)
}

/// Detaches `prog` from `cgroup`'s device programs.
pub fn detach(cgroup: BorrowedFd<'_>, prog: BorrowedFd<'_>) -> io::Result<()> {
    let attr = ProgAttach {
        target_fd: fd_u32(cgroup),
        attach_bpf_fd: fd_u32(prog),
        attach_type: BPF_CGROUP_DEVICE,
        ..ProgAttach::default()
    };
    bpf(BPF_PROG_DETACH, attr).map(drop)
}

/// The ids of the device programs attached to `cgroup` itself (not those inherited from
/// its ancestors), in the order they run.
pub fn query(cgroup: BorrowedFd<'_>) -> io::Result<Vec<u32>> {
    let mut ids: Vec<u32> = Vec::new();
    loop {
        let attr = ProgQuery {
            target_fd: fd_u32(cgroup),
            attach_type: BPF_CGROUP_DEVICE,
            prog_ids: if ids.is_empty() {
                0
            } else {
                ids.as_mut_ptr() as u64
            },
            prog_cnt: ids.len() as u32,
            ..ProgQuery::default()
        };
        match bpf(BPF_PROG_QUERY, attr) {
            // With no array the kernel only counts.
            Ok((_, out)) if ids.is_empty() && out.prog_cnt > 0 => {
                ids = vec![0; out.prog_cnt as usize];
            }
            Ok((_, out)) => {
                ids.truncate(out.prog_cnt as usize);
                return Ok(ids);
            }
            // More were attached since we counted: count again.
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => ids.clear(),
            Err(e) => return Err(e),
        }
    }
}

/// A descriptor for the loaded program with this id (as [`query`] lists it).
pub fn program_by_id(id: u32) -> io::Result<OwnedFd> {
    let attr = GetFdById {
        prog_id: id,
        ..GetFdById::default()
    };
    let (fd, _) = bpf(BPF_PROG_GET_FD_BY_ID, attr)?;
    owned(fd)
}

#[cfg(test)]
#[path = "bpf_tests.rs"]
mod tests;
