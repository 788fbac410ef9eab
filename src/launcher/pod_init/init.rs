//! `ucr-pod-init`: the process that stays PID 1 of a pod's shared PID namespace, for as
//! long as the pod lives. Built by `build.rs` on its own, without std or libc (a static
//! binary of a few kilobytes), because one runs per such pod: a std program costs
//! several hundred kilobytes of private memory before `main`.
//!
//! `ucr pod-init` (see `mod.rs`) has already done everything that needs privilege or a
//! library: it is in an empty root of its own mount namespace, as uid 65535 with no
//! capabilities and `no_new_privs`, with SIGCHLD ignored (so the kernel reaps the
//! orphans reparented to it) and no open descriptors. What is left is this: turn off
//! dumpable (exec turned it back on), so that no process of the pod can ptrace it or
//! open its `/proc` entries, then sleep forever. It never exits on its own; a signal
//! from inside the namespace cannot touch it (an init has no default actions there), and
//! the daemon ends it with SIGKILL from outside.
//!
//! Not part of the `ucr` crate: `build.rs` compiles this file alone with `rustc
//! -C panic=abort`, and the crate embeds the result (`INIT_BINARY`).

#![no_std]
#![no_main]

#[cfg(target_arch = "x86_64")]
mod nr {
    pub const PRCTL: usize = 157;
    pub const PAUSE: usize = 34;
    pub const EXIT_GROUP: usize = 231;
}

#[cfg(target_arch = "aarch64")]
mod nr {
    pub const PRCTL: usize = 167;
    /// aarch64 has no pause(2); ppoll with no descriptors and no timeout waits alike.
    pub const PPOLL: usize = 73;
    pub const EXIT_GROUP: usize = 94;
}

const PR_SET_DUMPABLE: usize = 4;

/// A system call with up to five arguments.
///
/// # Safety
/// The caller passes arguments that are valid for `nr` (here: integers and null
/// pointers only, so no memory is handed to the kernel).
#[cfg(target_arch = "x86_64")]
unsafe fn syscall(nr: usize, a: [usize; 5]) -> isize {
    let ret: isize;
    // SAFETY: the x86_64 Linux system call convention: number in rax, arguments in
    // rdi, rsi, rdx, r10, r8; the kernel clobbers rcx and r11 and returns in rax.
    unsafe {
        core::arch::asm!(
            "syscall",
            inlateout("rax") nr as isize => ret,
            in("rdi") a[0], in("rsi") a[1], in("rdx") a[2], in("r10") a[3], in("r8") a[4],
            lateout("rcx") _, lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

#[cfg(target_arch = "aarch64")]
unsafe fn syscall(nr: usize, a: [usize; 5]) -> isize {
    let ret: isize;
    // SAFETY: the aarch64 Linux system call convention: number in x8, arguments in
    // x0-x4, result in x0.
    unsafe {
        core::arch::asm!(
            "svc 0",
            in("x8") nr,
            inlateout("x0") a[0] as isize => ret,
            in("x1") a[1], in("x2") a[2], in("x3") a[3], in("x4") a[4],
            options(nostack),
        );
    }
    ret
}

fn wait_for_a_signal() {
    // SAFETY: no arguments (x86_64 pause) or null pointers and zeros (aarch64 ppoll).
    unsafe {
        #[cfg(target_arch = "x86_64")]
        syscall(nr::PAUSE, [0; 5]);
        #[cfg(target_arch = "aarch64")]
        syscall(nr::PPOLL, [0; 5]);
    }
}

#[no_mangle]
pub extern "C" fn _start() -> ! {
    // SAFETY: prctl with integer arguments only.
    let rc = unsafe { syscall(nr::PRCTL, [PR_SET_DUMPABLE, 0, 0, 0, 0]) };
    if rc != 0 {
        // Better no init (the pod start fails) than one others can inspect.
        // SAFETY: exit_group with an integer status.
        unsafe { syscall(nr::EXIT_GROUP, [1, 0, 0, 0, 0]) };
    }
    loop {
        wait_for_a_signal();
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {
        wait_for_a_signal();
    }
}
