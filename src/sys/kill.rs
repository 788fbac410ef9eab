//! Signalling processes by pid, and signal names. Signals are numbers (`libc::SIGTERM`,
//! what [`parse_signal`] returns) so an image's `StopSignal` and a constant go the same way.

use std::io;

/// Sends signal `sig` to `pid` (a negative pid: to that process group). An unknown signal
/// number is `EINVAL`, as kill(2) says.
pub fn send(pid: i32, sig: i32) -> io::Result<()> {
    let sig = nix::sys::signal::Signal::try_from(sig)?;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig).map_err(io::Error::from)
}

/// [`send`] for the many callers with nothing to do about a failure (the process is
/// usually just gone): whether the signal was sent.
pub fn signal(pid: i32, sig: i32) -> bool {
    send(pid, sig).is_ok()
}

/// `SIGTERM`, `TERM`, `15` → 15 (an image's `StopSignal` comes in any of these forms).
pub fn parse_signal(name: &str) -> Option<i32> {
    if let Ok(n) = name.parse::<i32>() {
        return nix::sys::signal::Signal::try_from(n).ok().map(|s| s as i32);
    }
    let upper = name.to_ascii_uppercase();
    let full = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    full.parse::<nix::sys::signal::Signal>()
        .ok()
        .map(|s| s as i32)
}

#[cfg(test)]
mod tests {
    #[test]
    fn signal_names() {
        assert_eq!(super::parse_signal("SIGTERM"), Some(15));
        assert_eq!(super::parse_signal("quit"), Some(3));
        assert_eq!(super::parse_signal("9"), Some(9));
        assert_eq!(super::parse_signal("SIGNOPE"), None);
    }

    #[test]
    fn send_signals_and_says_why_not() {
        use std::os::unix::process::ExitStatusExt;

        let mut child = std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .expect("spawn sleep");
        let pid = child.id() as i32;
        let err = super::send(pid, 9999).expect_err("no such signal");
        assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
        assert!(super::signal(pid, libc::SIGKILL));
        let status = child.wait().expect("wait");
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        // Above any pid_max, so never a process (a reaped pid might be reused already).
        let err = super::send(i32::MAX, libc::SIGTERM).expect_err("no such process");
        assert_eq!(err.raw_os_error(), Some(libc::ESRCH));
        assert!(!super::signal(i32::MAX, libc::SIGTERM));
    }
}
