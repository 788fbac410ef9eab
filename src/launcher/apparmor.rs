//! Setting the AppArmor profile the next exec runs under: `exec <profile>` written to
//! `/proc/self/attr/apparmor/exec` (Linux 5.8+, where each LSM has its own directory),
//! or the older shared `/proc/self/attr/exec`. The kernel switches profiles at the exec
//! itself, so everything before it still runs under the launcher's own.

use std::path::Path;

/// Asks the kernel to run the next exec under `profile`; `proc` is procfs's mount point
/// (`/proc`; a fake tree in tests).
pub fn set_exec_profile(proc: &Path, profile: &str) -> std::io::Result<()> {
    let line = format!("exec {profile}");
    let own = proc.join("self/attr/apparmor/exec");
    match std::fs::OpenOptions::new().write(true).open(&own) {
        Ok(mut f) => std::io::Write::write_all(&mut f, line.as_bytes()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .open(proc.join("self/attr/exec"))?;
            std::io::Write::write_all(&mut f, line.as_bytes())
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_per_lsm_file_is_preferred_and_the_shared_one_used_without_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let attr = dir.path().join("self/attr");
        std::fs::create_dir_all(attr.join("apparmor")).expect("dirs");
        std::fs::write(attr.join("apparmor/exec"), "").expect("w");
        std::fs::write(attr.join("exec"), "").expect("w");
        set_exec_profile(dir.path(), "k8s-nginx").expect("set");
        assert_eq!(
            std::fs::read_to_string(attr.join("apparmor/exec")).expect("r"),
            "exec k8s-nginx"
        );
        assert_eq!(std::fs::read_to_string(attr.join("exec")).expect("r"), "");
        std::fs::remove_dir_all(attr.join("apparmor")).expect("rm");
        set_exec_profile(dir.path(), "other").expect("set");
        assert_eq!(
            std::fs::read_to_string(attr.join("exec")).expect("r"),
            "exec other"
        );
        let gone = tempfile::tempdir().expect("tempdir");
        assert!(
            set_exec_profile(gone.path(), "x").is_err(),
            "no procfs, no success"
        );
    }
}
