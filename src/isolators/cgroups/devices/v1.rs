//! Applying a device policy to a cgroup v1 devices cgroup, and reading it back.
//!
//! The v1 controller takes one rule per write: a rule written to `devices.allow` allows,
//! one written to `devices.deny` denies, `a` in either resets the cgroup to allow or deny
//! everything. `devices.list` shows the result: `a *:* rwm` when the cgroup allows by
//! default (its deny exceptions are not shown), else one line per allow exception.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::effective::Effective;
use super::error::{io, DeviceError};
use super::rules::DeviceRule;

/// Where the devices v1 hierarchy is mounted (`/sys/fs/cgroup/devices` usually), found in
/// `/proc/self/mountinfo`; `None` on a host without one (pure cgroup v2).
pub fn hierarchy() -> std::io::Result<Option<PathBuf>> {
    Ok(crate::sys::mount::mountinfo()?
        .into_iter()
        .find(|m| m.fs_type == "cgroup" && m.super_options.split(',').any(|o| o == "devices"))
        .map(|m| m.mount_point))
}

/// Makes the devices cgroup `dir` deny everything, then writes `rules` in order.
///
/// The list is checked first ([`Effective::of`]): a list ucr refuses changes nothing.
/// Meant for a new cgroup: on a running container's cgroup, the reset leaves a moment in
/// which every device is denied.
pub fn apply_v1(dir: &Path, rules: &[DeviceRule]) -> Result<(), DeviceError> {
    Effective::of(rules)?;
    let open = |name: &str| {
        let path = dir.join(name);
        // Never create: in a real cgroup the file exists, anywhere else it is a mistake.
        OpenOptions::new()
            .write(true)
            .open(&path)
            .map(|f| (f, path.clone()))
            .map_err(io("open", &path))
    };
    let (mut allow, mut deny) = (open("devices.allow")?, open("devices.deny")?);
    write_rule(&mut deny, "a")?;
    for rule in rules {
        let file = if rule.allow { &mut allow } else { &mut deny };
        write_rule(file, &rule.to_string())?;
    }
    Ok(())
}

/// One write per rule: the kernel parses each write as one rule (and ignores the
/// newline, which keeps a fake file readable).
fn write_rule((file, path): &mut (File, PathBuf), rule: &str) -> Result<(), DeviceError> {
    file.write_all(format!("{rule}\n").as_bytes())
        .map_err(io("write device rule to", path))
}

/// The rules `devices.list` shows for the devices cgroup `dir`, all allow rules.
pub fn read_v1(dir: &Path) -> Result<Vec<DeviceRule>, DeviceError> {
    let path = dir.join("devices.list");
    let text = std::fs::read_to_string(&path).map_err(io("read", &path))?;
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            line.parse().map_err(|source| DeviceError::List {
                path: path.clone(),
                line: line.to_string(),
                source,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isolators::cgroups::devices::rules::{policy, Access};

    fn fake_cgroup() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        for name in ["devices.allow", "devices.deny", "devices.list"] {
            std::fs::write(dir.path().join(name), "").expect("fake file");
        }
        dir
    }

    fn lines(dir: &Path, name: &str) -> Vec<String> {
        std::fs::read_to_string(dir.join(name))
            .expect("read")
            .lines()
            .map(String::from)
            .collect()
    }

    #[test]
    fn writes_deny_all_then_each_rule_to_its_file() {
        let dir = fake_cgroup();
        let deny_tty = DeviceRule {
            allow: false,
            ..DeviceRule::char(Some(5), Some(0), Access::WRITE)
        };
        let rules = policy(false, &[deny_tty]);
        apply_v1(dir.path(), &rules).expect("apply");
        assert_eq!(
            lines(dir.path(), "devices.deny"),
            ["a", "a *:* rwm", "c 5:0 w"]
        );
        assert_eq!(
            lines(dir.path(), "devices.allow"),
            [
                "c *:* m",
                "b *:* m",
                "c 1:3 rwm",
                "c 1:8 rwm",
                "c 1:7 rwm",
                "c 5:0 rwm",
                "c 1:5 rwm",
                "c 1:9 rwm",
                "c 136:* rwm",
                "c 5:2 rwm",
                "c 10:200 rwm",
            ]
        );
    }

    #[test]
    fn privileged_allows_everything() {
        let dir = fake_cgroup();
        apply_v1(dir.path(), &policy(true, &[])).expect("apply");
        assert_eq!(lines(dir.path(), "devices.deny"), ["a"]);
        assert_eq!(lines(dir.path(), "devices.allow"), ["a *:* rwm"]);
    }

    #[test]
    fn a_refused_list_writes_nothing() {
        let dir = fake_cgroup();
        let hole = DeviceRule {
            allow: false,
            ..DeviceRule::char(Some(136), Some(3), Access::READ)
        };
        let err = apply_v1(dir.path(), &policy(false, &[hole])).expect_err("refused");
        assert!(matches!(err, DeviceError::Policy(_)), "{err}");
        assert!(lines(dir.path(), "devices.deny").is_empty());
        assert!(lines(dir.path(), "devices.allow").is_empty());
    }

    #[test]
    fn a_missing_file_names_its_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = apply_v1(dir.path(), &[]).expect_err("no cgroup files");
        let text = err.to_string();
        assert!(text.starts_with("open "), "{text}");
        assert!(text.contains("devices.allow"), "{text}");
        assert!(
            !dir.path().join("devices.allow").exists(),
            "created nothing"
        );
    }

    #[test]
    fn reads_devices_list() {
        let dir = fake_cgroup();
        std::fs::write(
            dir.path().join("devices.list"),
            "c 1:3 rwm\nb *:* m\nc 136:* rwm\n",
        )
        .expect("write");
        let rules = read_v1(dir.path()).expect("read");
        assert_eq!(
            rules,
            [
                DeviceRule::char(Some(1), Some(3), Access::ALL),
                DeviceRule::block(None, None, Access::MKNOD),
                DeviceRule::char(Some(136), None, Access::ALL),
            ]
        );
        std::fs::write(dir.path().join("devices.list"), "a *:* rwm\n").expect("write");
        assert_eq!(read_v1(dir.path()).expect("read"), [DeviceRule::all(true)]);
        std::fs::write(dir.path().join("devices.list"), "").expect("write");
        assert_eq!(read_v1(dir.path()).expect("read"), []);
    }

    #[test]
    fn a_bad_list_line_names_file_and_line() {
        let dir = fake_cgroup();
        std::fs::write(dir.path().join("devices.list"), "c 1:3 rwx\n").expect("write");
        let text = read_v1(dir.path()).expect_err("bad").to_string();
        assert!(text.contains("devices.list"), "{text}");
        assert!(text.contains("line \"c 1:3 rwx\""), "{text}");
    }

    #[test]
    fn finds_the_devices_hierarchy_if_any() {
        // Whatever the host has, the answer must be a v1 devices mount.
        match hierarchy().expect("mountinfo") {
            Some(path) => assert!(path.join("devices.list").exists(), "{}", path.display()),
            None => eprintln!("no devices v1 hierarchy on this host"),
        }
    }
}
