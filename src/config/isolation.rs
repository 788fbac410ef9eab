//! Mesos's `--isolation` and `--image_providers`, checked as the Mesos agent checks them
//! (`containerizer.cpp`, `provisioner/store.cpp`), over ucr's isolator table:
//!
//! - the names are the table's (Mesos's names); the default is every isolator ucr has
//!   but `disk/xfs` (which needs an XFS `--work_dir` with project quotas, so it cannot be
//!   a default); a list given selects, in any order (the table fixes the order);
//! - Mesos's deprecated names still work, as in Mesos: `cgroups` is
//!   `cgroups/cpu,cgroups/mem`, `posix/disk` is `disk/du`, and `cgroups/all` is every
//!   cgroups subsystem ucr has; a duplicate entry or an unknown name is refused, the
//!   latter with the list of known ones;
//! - as in Mesos, `network/cni` is added when no network isolator is named, and
//!   `filesystem/linux` brings `volume/host_path` (Mesos adds its volume isolators);
//! - `--image_providers` takes `docker` (any case); `appc` is Mesos's but not ucr's.
//!   Images need `filesystem/linux`, and `docker` needs `docker/runtime`: refused with
//!   Mesos's messages otherwise;
//! - the CRI door uses the same table and relies on most of it (see [`CRI_NEEDS`]); a
//!   list that leaves one of those out is refused, naming them.

use super::ConfigError;

/// Every isolator ucr's table can hold, by its Mesos name, in the table's order.
pub const KNOWN: [&str; 26] = [
    "docker/runtime",
    "cgroups/devices",
    "cgroups/cpu",
    "cgroups/cpuset",
    "cgroups/mem",
    "cgroups/pids",
    "cgroups/hugetlb",
    "cgroups/blkio",
    "cgroups/net_cls",
    "namespaces/user",
    "namespaces/ipc",
    "linux/sysctls",
    "network/cni",
    "namespaces/pid",
    "filesystem/linux",
    "linux/devices",
    "volume/sandbox_path",
    "volume/host_path",
    "posix/rlimits",
    "disk/du",
    "disk/xfs",
    "linux/apparmor",
    "linux/selinux",
    "linux/capabilities",
    "linux/nnp",
    "linux/seccomp",
];

/// The isolators the CRI door relies on, and why: without them a pod's request would be
/// quietly run with less than it asked for (no device policy, no capability set, no
/// seccomp filter, no limits…), which the CRI must never do.
pub const CRI_NEEDS: [(&str, &str); 21] = [
    ("docker/runtime", "image Env, WorkingDir and user"),
    ("cgroups/devices", "the device policy"),
    ("cgroups/cpu", "CPU limits and stats"),
    ("cgroups/cpuset", "cpuset_cpus/cpuset_mems"),
    ("cgroups/mem", "memory limits, OOM and stats"),
    ("cgroups/pids", "pids limits"),
    ("cgroups/hugetlb", "hugepage limits"),
    ("namespaces/user", "user-namespaced pods"),
    ("namespaces/ipc", "pod IPC namespaces"),
    ("linux/sysctls", "pod sysctls"),
    ("network/cni", "pod networks"),
    ("namespaces/pid", "pod and container PID namespaces"),
    ("filesystem/linux", "container root filesystems"),
    ("linux/devices", "container devices"),
    ("volume/host_path", "container mounts"),
    ("linux/apparmor", "AppArmor profiles"),
    ("linux/selinux", "SELinux labels"),
    ("linux/capabilities", "capability sets"),
    ("linux/nnp", "no_new_privs"),
    ("linux/seccomp", "seccomp profiles"),
    // Not an isolator of the table, but what the CRI's images are.
    ("docker", "--image_providers: the CRI pulls docker images"),
];

/// Not in the default selection, and why (see the module docs).
const NOT_DEFAULT: [&str; 1] = ["disk/xfs"];

/// What `--isolation` and `--image_providers` selected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Isolation {
    /// The selected isolators' Mesos names, in the table's order.
    pub isolators: Vec<String>,
    /// The image providers, lower-case (`docker`).
    pub image_providers: Vec<String>,
    /// Deprecated names used, with what to say instead (logged once logging is up).
    pub deprecated: Vec<String>,
}

impl Isolation {
    pub fn has(&self, name: &str) -> bool {
        self.isolators.iter().any(|n| n == name)
    }

    /// `--isolation` as GET_FLAGS reports it: the Mesos names, comma-separated.
    pub fn isolation_flag(&self) -> String {
        self.isolators.join(",")
    }

    /// Checks and expands both flags (`None`: the default).
    pub fn parse(isolation: Option<&str>, providers: Option<&str>) -> Result<Self, ConfigError> {
        let (isolators, deprecated) = select(isolation)?;
        let image_providers = image_providers(providers.unwrap_or("docker"))?;
        let s = Isolation {
            isolators,
            image_providers,
            deprecated,
        };
        if !s.image_providers.is_empty() && !s.has("filesystem/linux") {
            // Mesos's words (containerizer.cpp).
            return Err(refused(
                "The 'filesystem/linux' isolator must be enabled for container image support",
            ));
        }
        if s.image_providers.iter().any(|p| p == "docker") && !s.has("docker/runtime") {
            // Mesos's words (provisioner/store.cpp).
            return Err(refused(
                "Docker runtime isolator has to be specified if 'DOCKER' is included in \
                 'image_providers'. Please add 'docker/runtime' to '--isolation' flags",
            ));
        }
        let missing: Vec<String> = CRI_NEEDS
            .iter()
            .filter(|(name, _)| match *name {
                "docker" => !s.image_providers.iter().any(|p| p == "docker"),
                name => !s.has(name),
            })
            .map(|(name, why)| format!("{name} ({why})"))
            .collect();
        if !missing.is_empty() {
            return Err(refused(&format!(
                "the CRI door needs isolators that --isolation leaves out: {}",
                missing.join(", ")
            )));
        }
        Ok(s)
    }
}

fn refused(reason: &str) -> ConfigError {
    ConfigError::Isolation {
        reason: reason.to_string(),
    }
}

/// The isolators `value` selects, expanded and in the table's order, and the notes on
/// deprecated names used.
fn select(value: Option<&str>) -> Result<(Vec<String>, Vec<String>), ConfigError> {
    let Some(value) = value else {
        let all = KNOWN
            .iter()
            .filter(|n| !NOT_DEFAULT.contains(n))
            .map(|n| n.to_string())
            .collect();
        return Ok((all, Vec::new()));
    };
    let mut deprecated = Vec::new();
    let tokens: Vec<&str> = value
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .collect();
    let mut chosen: Vec<&str> = Vec::new();
    for (i, name) in tokens.iter().enumerate() {
        if tokens[..i].contains(name) {
            return Err(ConfigError::Value {
                flag: "isolation",
                value: value.to_string(),
                reason: format!("Duplicate entries found in --isolation flag ({name:?})"),
            });
        }
        match *name {
            // Mesos's deprecated aliases, expanded as Mesos expands them.
            "cgroups" => {
                deprecated.push("the 'cgroups' isolation flag is deprecated, please update your flags to '--isolation=cgroups/cpu,cgroups/mem'".to_string());
                chosen.extend(["cgroups/cpu", "cgroups/mem"]);
            }
            "posix/disk" => {
                deprecated.push("the 'posix/disk' isolation flag is deprecated, please update your flags to '--isolation=disk/du'".to_string());
                chosen.push("disk/du");
            }
            "cgroups/all" => chosen.extend(KNOWN.iter().filter(|n| n.starts_with("cgroups/"))),
            known if KNOWN.contains(&known) => chosen.push(known),
            unknown => {
                return Err(ConfigError::Value {
                    flag: "isolation",
                    value: unknown.to_string(),
                    reason: format!(
                        "Unknown or unsupported isolator; ucr has: {} (and Mesos's aliases \
                         cgroups, cgroups/all, posix/disk)",
                        KNOWN.join(", ")
                    ),
                })
            }
        }
    }
    // As Mesos: no network isolator named means network/cni; filesystem/linux brings the
    // volume isolators (host paths, and the Mesos sandbox and the volumes made in it).
    if !chosen.iter().any(|n| n.starts_with("network/")) {
        chosen.push("network/cni");
    }
    if chosen.contains(&"filesystem/linux") {
        chosen.extend(["volume/sandbox_path", "volume/host_path"]);
    }
    let selected = KNOWN
        .iter()
        .filter(|n| chosen.contains(n))
        .map(|n| n.to_string())
        .collect();
    Ok((selected, deprecated))
}

/// `--image_providers`: Mesos's image types, any case; ucr has the docker store only.
fn image_providers(value: &str) -> Result<Vec<String>, ConfigError> {
    let mut out: Vec<String> = Vec::new();
    for t in value.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let bad = |reason: &str| ConfigError::Value {
            flag: "image_providers",
            value: t.to_string(),
            reason: reason.to_string(),
        };
        match t.to_ascii_lowercase().as_str() {
            "docker" if !out.iter().any(|p| p == "docker") => out.push("docker".into()),
            "docker" => return Err(bad("given twice")),
            "appc" => return Err(bad("APPC images are Mesos's, not supported by ucr")),
            _ => return Err(bad("Unknown image type (ucr supports docker)")),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn everything_but(leave_out: &[&str]) -> String {
        KNOWN
            .iter()
            .filter(|n| !leave_out.contains(n) && **n != "disk/xfs")
            .copied()
            .collect::<Vec<_>>()
            .join(",")
    }

    #[test]
    fn the_default_is_everything_but_xfs() {
        let s = Isolation::parse(None, None).expect("default");
        assert!(s.has("disk/du") && s.has("network/cni") && s.has("cgroups/net_cls"));
        assert!(!s.has("disk/xfs"));
        assert_eq!(s.image_providers, ["docker"]);
        assert_eq!(s.isolation_flag().split(',').count(), KNOWN.len() - 1);
    }

    #[test]
    fn a_list_selects_in_table_order_with_mesos_aliases() {
        let list = format!("disk/xfs,{}", everything_but(&["disk/du", "cgroups/blkio"]));
        let s = Isolation::parse(Some(&list), Some("DOCKER")).expect("valid");
        assert!(s.has("disk/xfs") && !s.has("disk/du") && !s.has("cgroups/blkio"));
        assert_eq!(s.isolators[0], "docker/runtime", "the table's order");
        // `cgroups/all` is every cgroups subsystem; `posix/disk` is disk/du; network/cni
        // and volume/host_path come by themselves, as in Mesos.
        let cgroups_free = everything_but(&["network/cni", "volume/host_path", "disk/du"])
            .split(',')
            .filter(|n| !n.starts_with("cgroups/"))
            .collect::<Vec<_>>()
            .join(",");
        let s = Isolation::parse(
            Some(&format!("{cgroups_free},cgroups/all,posix/disk")),
            None,
        )
        .expect("aliases");
        assert!(s.has("cgroups/blkio") && s.has("disk/du") && s.has("network/cni"));
        assert!(s.has("volume/host_path"));
        assert_eq!(s.deprecated.len(), 1, "posix/disk: {:?}", s.deprecated);
    }

    #[test]
    fn refusals_name_what_is_wrong() {
        let e = Isolation::parse(Some("disk/du,gpu/nvidia"), None).expect_err("unknown");
        let m = e.to_string();
        assert!(
            m.contains("gpu/nvidia") && m.contains("filesystem/linux, linux/devices"),
            "{m}"
        );
        let e = Isolation::parse(Some("disk/du,disk/du"), None).expect_err("duplicate");
        assert!(e.to_string().contains("Duplicate"), "{e}");
        let e = Isolation::parse(None, Some("appc")).expect_err("appc");
        assert!(e.to_string().contains("not supported by ucr"), "{e}");
        let e = Isolation::parse(None, Some("rkt")).expect_err("unknown type");
        assert!(e.to_string().contains("Unknown image type"), "{e}");
        let e = Isolation::parse(Some(&everything_but(&["docker/runtime"])), None)
            .expect_err("docker needs docker/runtime");
        assert!(e.to_string().contains("Please add 'docker/runtime'"), "{e}");
        let e = Isolation::parse(
            Some(&everything_but(&["filesystem/linux", "volume/host_path"])),
            None,
        )
        .expect_err("images need filesystem/linux");
        assert!(
            e.to_string()
                .contains("'filesystem/linux' isolator must be enabled"),
            "{e}"
        );
        let e = Isolation::parse(
            Some(&everything_but(&["namespaces/pid", "linux/seccomp"])),
            None,
        )
        .expect_err("the CRI needs them");
        let m = e.to_string();
        assert!(
            m.contains("namespaces/pid (") && m.contains("linux/seccomp ("),
            "{m}"
        );
        let e = Isolation::parse(None, Some("")).expect_err("the CRI needs docker images");
        assert!(e.to_string().contains("docker ("), "{e}");
    }
}
