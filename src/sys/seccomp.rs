//! seccomp(2): loading a classic BPF filter program into the calling process, and the
//! few host facts the daemon needs to compile one (the kernel's release, a scratch file
//! for libseccomp to write its program into).
//!
//! The program is made in the daemon (`isolators::linux::seccomp`) and travels in the
//! launch spec as bytes: 8 per instruction, `struct sock_filter` in the host's byte order
//! (`u16 code`, `u8 jt`, `u8 jf`, `u32 k`), which is what libseccomp's `seccomp_export_bpf`
//! writes. Loading needs nothing but this file.

use std::io;

/// One instruction, as `struct sock_filter` lays it out.
pub const INSTRUCTION_SIZE: usize = 8;
/// The kernel refuses longer programs (`BPF_MAXINSNS`).
pub const MAX_INSTRUCTIONS: usize = 4096;

/// `SECCOMP_FILTER_FLAG_*` bits the launcher may pass on (a profile's `flags`).
pub const FLAG_TSYNC: u32 = libc::SECCOMP_FILTER_FLAG_TSYNC as u32;
pub const FLAG_LOG: u32 = libc::SECCOMP_FILTER_FLAG_LOG as u32;
pub const FLAG_SPEC_ALLOW: u32 = libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW as u32;

/// A filter program ready to load: decoded and checked beforehand, so that loading it is
/// one system call with nothing allocated after it (the launcher loads it right before
/// exec, when every further call must pass the filter).
pub struct Program {
    insns: Vec<libc::sock_filter>,
}

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Program({} instructions)", self.insns.len())
    }
}

impl Program {
    /// Decodes `bytes` (whole `sock_filter`s, host byte order). Refuses what the kernel
    /// would: an empty program, a partial instruction, more than [`MAX_INSTRUCTIONS`].
    pub fn from_bytes(bytes: &[u8]) -> io::Result<Program> {
        let count = bytes.len() / INSTRUCTION_SIZE;
        if bytes.is_empty()
            || !bytes.len().is_multiple_of(INSTRUCTION_SIZE)
            || count > MAX_INSTRUCTIONS
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "a seccomp program of {} bytes: expected 1 to {MAX_INSTRUCTIONS} \
                     instructions of {INSTRUCTION_SIZE} bytes",
                    bytes.len()
                ),
            ));
        }
        let insns = bytes
            .chunks_exact(INSTRUCTION_SIZE)
            .map(|b| libc::sock_filter {
                code: u16::from_ne_bytes([b[0], b[1]]),
                jt: b[2],
                jf: b[3],
                k: u32::from_ne_bytes([b[4], b[5], b[6], b[7]]),
            })
            .collect();
        Ok(Program { insns })
    }

    pub fn len(&self) -> usize {
        self.insns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.insns.is_empty()
    }

    /// Loads the program as a filter of the calling thread (`SECCOMP_SET_MODE_FILTER`),
    /// for good: it is inherited across fork and exec and cannot be removed. The kernel
    /// allows this only with no_new_privs set or CAP_SYS_ADMIN held (EACCES otherwise).
    pub fn load(&self, flags: u32) -> io::Result<()> {
        let prog = libc::sock_fprog {
            // At most MAX_INSTRUCTIONS, checked in `from_bytes`.
            len: self.insns.len() as libc::c_ushort,
            filter: self.insns.as_ptr() as *mut libc::sock_filter,
        };
        // SAFETY: seccomp(SECCOMP_SET_MODE_FILTER, flags, &prog) reads `prog` and the
        // `len` instructions it points to, which `self.insns` owns and which outlive the
        // call; the kernel copies the program and keeps no pointer into our memory. No
        // flag we pass makes the kernel write back (NEW_LISTENER is never set here).
        let rc = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                libc::c_ulong::from(flags),
                &prog as *const libc::sock_fprog,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// The running kernel's version as `(major, minor)`, from its release as uname gives it
/// (`6.18.44-foo` is `(6, 18)`), for profiles whose rules need a `minKernel`.
pub fn kernel_version() -> io::Result<(u64, u64)> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")?;
    let release = release.trim();
    parse_release(release).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("kernel release {release:?} does not start with <major>.<minor>"),
        )
    })
}

fn parse_release(release: &str) -> Option<(u64, u64)> {
    let mut parts = release.splitn(3, '.');
    let major = parts.next()?.parse().ok()?;
    let minor: String = parts
        .next()?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    Some((major, minor.parse().ok()?))
}

/// An anonymous file for a library that writes its output to a descriptor
/// (`seccomp_export_bpf`), read back once it has.
pub fn scratch_file(name: &str) -> io::Result<std::fs::File> {
    let fd = rustix::fs::memfd_create(name, rustix::fs::MemfdFlags::CLOEXEC)?;
    Ok(std::fs::File::from(fd))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_parse_to_major_and_minor() {
        assert_eq!(parse_release("6.18.44-fc-v1098"), Some((6, 18)));
        assert_eq!(parse_release("5.10.0-28-amd64"), Some((5, 10)));
        assert_eq!(parse_release("4.8"), Some((4, 8)));
        assert_eq!(parse_release("6.1-rc3"), Some((6, 1)));
        assert_eq!(parse_release("linux"), None);
        assert!(kernel_version().is_ok());
    }

    fn insn(code: u16, jt: u8, jf: u8, k: u32) -> Vec<u8> {
        [&code.to_ne_bytes()[..], &[jt, jf], &k.to_ne_bytes()].concat()
    }

    /// Loaded for real, in a forked child (no_new_privs set, so no privilege needed): a
    /// program that answers getppid with errno 77 and allows everything else.
    #[test]
    fn a_loaded_filter_is_in_force() {
        let program = Program::from_bytes(
            &[
                insn(0x20, 0, 0, 0),                        // A = nr
                insn(0x15, 0, 1, libc::SYS_getppid as u32), // nr == getppid?
                insn(0x06, 0, 0, 0x0005_0000 | 77),         // ERRNO(77)
                insn(0x06, 0, 0, 0x7fff_0000),              // ALLOW
            ]
            .concat(),
        )
        .expect("program");
        // The child makes system calls only, allocating nothing (the test harness has
        // other threads, whose locks the child's copy could hold).
        match crate::sys::process::fork().expect("fork") {
            crate::sys::process::Forked::Child => {
                let code = (|| {
                    crate::sys::process::set_no_new_privs().map_err(|_| 1)?;
                    program.load(0).map_err(|_| 2)?;
                    // SAFETY: prctl(PR_GET_SECCOMP) takes no pointer; getppid takes no
                    // argument.
                    let (mode, ppid) = unsafe {
                        (
                            libc::prctl(libc::PR_GET_SECCOMP),
                            libc::syscall(libc::SYS_getppid),
                        )
                    };
                    let err = io::Error::last_os_error().raw_os_error();
                    if mode != 2 {
                        return Err(3);
                    }
                    if ppid != -1 || err != Some(77) {
                        return Err(4);
                    }
                    Ok(0)
                })()
                .unwrap_or_else(|e| e);
                crate::sys::process::exit_now(code)
            }
            crate::sys::process::Forked::Parent { child } => {
                let code = crate::sys::process::wait_exit_code(child).expect("wait");
                assert_eq!(
                    code, 0,
                    "1: no_new_privs, 2: load, 3: mode, 4: getppid passed"
                );
            }
        }
    }

    #[test]
    fn a_program_is_whole_instructions_within_the_kernel_limit() {
        let ret_allow = [
            0x06u16.to_ne_bytes().as_slice(),
            &[0, 0],
            &0x7fff_0000u32.to_ne_bytes(),
        ]
        .concat();
        let p = Program::from_bytes(&ret_allow).expect("one instruction");
        assert_eq!(p.len(), 1);
        for bad in [
            Vec::new(),
            ret_allow[..7].to_vec(),
            ret_allow.repeat(MAX_INSTRUCTIONS + 1),
        ] {
            let e = Program::from_bytes(&bad).expect_err("refused");
            assert!(
                e.to_string().contains(&format!("{} bytes", bad.len())),
                "{e}"
            );
        }
    }
}
