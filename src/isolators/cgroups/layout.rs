//! Where the node's cgroup hierarchies are, learnt from `/proc/self/mountinfo` (never
//! assumed: one node mounts `cpu,cpuacct` together, another apart, as this project's own
//! machines do), and the v1 hierarchies a subsystem needs but nobody mounted, mounted
//! under `--cgroups-hierarchy` as Mesos does.
//!
//! - **v1** (legacy or hybrid): one hierarchy per mount, each with its controllers
//!   (`memory`; `cpu,cpuacct`; `name=systemd` for a named one). A cgroup is a directory in
//!   every hierarchy it is placed in.
//! - **v2** (unified): one hierarchy with every controller. ucr uses it for limits only
//!   when no v1 hierarchy has controllers (runc's rule); in hybrid mode the cgroup2 mount
//!   (controller-less, systemd's process tracking) is only where the monitors leave the
//!   daemon's cgroup (`Layout::tracking`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// One mounted hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    pub mount_point: PathBuf,
    /// Its controllers, as the mount options name them (`name=systemd` included).
    pub controllers: BTreeSet<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    V1 {
        hierarchies: Vec<Hierarchy>,
        /// A controller-less cgroup2 mount (hybrid mode), if any.
        unified: Option<PathBuf>,
    },
    V2 {
        root: PathBuf,
        /// What `cgroup.controllers` at the root offers.
        controllers: BTreeSet<String>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no cgroup hierarchy is mounted (neither cgroup nor cgroup2 in {0})")]
    NoCgroups(PathBuf),
    #[error("mounting the {controller} cgroup hierarchy at {path}: {source}")]
    Mount {
        controller: String,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A line of mountinfo: mount point, filesystem type, super options.
struct Mount<'a> {
    root: &'a str,
    point: String,
    fstype: &'a str,
    options: &'a str,
}

fn parse_line(line: &str) -> Option<Mount<'_>> {
    // `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue`:
    // optional fields end at " - ".
    let (left, right) = line.split_once(" - ")?;
    let mut l = left.split(' ');
    let root = l.nth(3)?;
    let point = unescape(l.next()?);
    let mut r = right.split(' ');
    let fstype = r.next()?;
    let _source = r.next()?;
    let options = r.next().unwrap_or("");
    Some(Mount {
        root,
        point,
        fstype,
        options,
    })
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], octal) {
            (b'\\', Some(d)) => {
                let v = d.iter().fold(0u32, |v, c| v * 8 + u32::from(c - b'0'));
                out.push(v as u8);
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The options of a v1 mount that name controllers (not `rw`, `relatime`…).
fn controllers_of(options: &str, known: &BTreeSet<String>) -> BTreeSet<String> {
    options
        .split(',')
        .filter(|o| o.starts_with("name=") || known.contains(*o))
        .map(str::to_string)
        .collect()
}

impl Layout {
    /// The layout `mountinfo` describes; `kernel` is every controller the kernel has
    /// (`/proc/cgroups`), to tell controllers from mount options. `v2_controllers` reads
    /// a cgroup2 root's `cgroup.controllers`.
    pub fn parse(
        mountinfo: &str,
        kernel: &BTreeSet<String>,
        v2_controllers: impl Fn(&Path) -> BTreeSet<String>,
    ) -> Option<Layout> {
        let mut hierarchies: Vec<Hierarchy> = Vec::new();
        let mut unified = None;
        for m in mountinfo.lines().filter_map(parse_line) {
            match m.fstype {
                "cgroup" => {
                    let controllers = controllers_of(m.options, kernel);
                    // The same hierarchy mounted twice (or a sub-directory of it bound
                    // somewhere): the first mount of its root wins.
                    if m.root != "/" || hierarchies.iter().any(|h| h.controllers == controllers) {
                        continue;
                    }
                    hierarchies.push(Hierarchy {
                        mount_point: PathBuf::from(m.point),
                        controllers,
                    });
                }
                "cgroup2" if m.root == "/" && unified.is_none() => {
                    unified = Some(PathBuf::from(m.point));
                }
                _ => {}
            }
        }
        let has_controllers = hierarchies
            .iter()
            .any(|h| h.controllers.iter().any(|c| !c.starts_with("name=")));
        match (has_controllers, unified) {
            (false, Some(root)) => {
                let controllers = v2_controllers(&root);
                Some(Layout::V2 { root, controllers })
            }
            (false, None) if hierarchies.is_empty() => None,
            (_, unified) => Some(Layout::V1 {
                hierarchies,
                unified,
            }),
        }
    }

    /// This node's layout.
    pub fn discover() -> Result<Layout, LayoutError> {
        let mountinfo = Path::new("/proc/self/mountinfo");
        let text = std::fs::read_to_string(mountinfo).map_err(|source| LayoutError::Read {
            path: mountinfo.into(),
            source,
        })?;
        let kernel = kernel_controllers()?;
        Layout::parse(&text, &kernel, read_v2_controllers)
            .ok_or_else(|| LayoutError::NoCgroups(mountinfo.into()))
    }

    pub fn is_v2(&self) -> bool {
        matches!(self, Layout::V2 { .. })
    }

    /// The v1 hierarchy holding `controller`; the unified root on v2 when it offers the
    /// controller (`freezer` is built into every v2 cgroup).
    pub fn mount_of(&self, controller: &str) -> Option<&Path> {
        match self {
            Layout::V1 { hierarchies, .. } => hierarchies
                .iter()
                .find(|h| h.controllers.contains(controller))
                .map(|h| h.mount_point.as_path()),
            Layout::V2 { root, controllers } => (controller == "freezer"
                || controllers.contains(controller))
            .then_some(root.as_path()),
        }
    }

    /// Every hierarchy a process is tracked in (named and controller-less ones too): where
    /// the monitors go to leave the daemon's cgroup, so that a service manager stopping
    /// the daemon does not find them in its cgroup.
    pub fn tracking(&self) -> Vec<&Path> {
        match self {
            Layout::V1 {
                hierarchies,
                unified,
            } => hierarchies
                .iter()
                .map(|h| h.mount_point.as_path())
                .chain(unified.as_deref())
                .collect(),
            Layout::V2 { root, .. } => vec![root.as_path()],
        }
    }

    /// Mounts, under `base`, a v1 hierarchy for each of `wanted` that the kernel has but
    /// no mounted hierarchy holds (Mesos mounts missing subsystems the same way), and
    /// returns the layout with them. Nothing to do on v2.
    pub fn mount_missing(
        mut self,
        base: &Path,
        wanted: &[&str],
        kernel: &BTreeSet<String>,
    ) -> Result<Layout, LayoutError> {
        let Layout::V1 { hierarchies, .. } = &mut self else {
            return Ok(self);
        };
        for &c in wanted {
            if !kernel.contains(c) || hierarchies.iter().any(|h| h.controllers.contains(c)) {
                continue;
            }
            let path = base.join(c);
            let err = |source| LayoutError::Mount {
                controller: c.to_string(),
                path: path.clone(),
                source,
            };
            std::fs::create_dir_all(&path).map_err(err)?;
            crate::sys::mount::mount_cgroup_v1(&path, c).map_err(err)?;
            tracing::info!(controller = c, path = %path.display(), "mounted a cgroup hierarchy");
            hierarchies.push(Hierarchy {
                mount_point: path,
                controllers: BTreeSet::from([c.to_string()]),
            });
        }
        Ok(self)
    }
}

/// The controllers the kernel has and enables (`/proc/cgroups`).
pub fn kernel_controllers() -> Result<BTreeSet<String>, LayoutError> {
    let path = Path::new("/proc/cgroups");
    let text = std::fs::read_to_string(path).map_err(|source| LayoutError::Read {
        path: path.into(),
        source,
    })?;
    Ok(parse_proc_cgroups(&text))
}

fn parse_proc_cgroups(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 4 && f[3] == "1").then(|| f[0].to_string())
        })
        .collect()
}

fn read_v2_controllers(root: &Path) -> BTreeSet<String> {
    std::fs::read_to_string(root.join("cgroup.controllers"))
        .map(|s| s.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
25 30 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
33 25 0:28 / /sys/fs/cgroup rw,relatime shared:9 - tmpfs tmpfs rw,mode=755
34 33 0:29 / /sys/fs/cgroup/unified rw,relatime shared:10 - cgroup2 cgroup2 rw
35 33 0:30 / /sys/fs/cgroup/cpu rw,relatime shared:11 - cgroup cgroup rw,cpu
36 33 0:31 / /sys/fs/cgroup/cpuacct rw,relatime shared:12 - cgroup cgroup rw,cpuacct
37 33 0:32 / /sys/fs/cgroup/memory rw,relatime shared:13 - cgroup cgroup rw,memory
38 33 0:33 / /sys/fs/cgroup/systemd rw,relatime shared:14 - cgroup cgroup rw,name=systemd
39 33 0:32 /sub /mnt/memory-again rw,relatime shared:13 - cgroup cgroup rw,memory
";

    fn kernel() -> BTreeSet<String> {
        parse_proc_cgroups(
            "#subsys_name\thierarchy\tnum_cgroups\tenabled\n\
             cpu\t1\t1\t1\ncpuacct\t2\t1\t1\nmemory\t4\t25\t1\nnet_cls\t0\t1\t1\nrdma\t0\t1\t0\n",
        )
    }

    #[test]
    fn proc_cgroups_lists_enabled_controllers_only() {
        let k = kernel();
        assert!(k.contains("net_cls") && k.contains("memory"));
        assert!(!k.contains("rdma"), "disabled controllers are left out");
    }

    #[test]
    fn hybrid_mountinfo_is_v1_with_separate_cpu_and_cpuacct() {
        let l = Layout::parse(HYBRID, &kernel(), |_| BTreeSet::new()).expect("layout");
        assert!(!l.is_v2());
        assert_eq!(l.mount_of("cpu"), Some(Path::new("/sys/fs/cgroup/cpu")));
        assert_eq!(
            l.mount_of("cpuacct"),
            Some(Path::new("/sys/fs/cgroup/cpuacct"))
        );
        assert_eq!(
            l.mount_of("memory"),
            Some(Path::new("/sys/fs/cgroup/memory")),
            "a bind of a sub-directory is not the hierarchy's root"
        );
        assert_eq!(l.mount_of("net_cls"), None);
        let tracking = l.tracking();
        assert!(tracking.contains(&Path::new("/sys/fs/cgroup/systemd")));
        assert!(tracking.contains(&Path::new("/sys/fs/cgroup/unified")));
    }

    #[test]
    fn combined_cpu_cpuacct_mount_serves_both() {
        let text = "35 33 0:30 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n";
        let l = Layout::parse(text, &kernel(), |_| BTreeSet::new()).expect("layout");
        assert_eq!(l.mount_of("cpu"), l.mount_of("cpuacct"));
    }

    #[test]
    fn a_lone_cgroup2_mount_is_v2_with_its_controllers() {
        let text = "30 25 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
        let l = Layout::parse(text, &kernel(), |root| {
            assert_eq!(root, Path::new("/sys/fs/cgroup"));
            ["cpu", "memory", "pids"].map(String::from).into()
        })
        .expect("layout");
        assert!(l.is_v2());
        assert_eq!(l.mount_of("memory"), Some(Path::new("/sys/fs/cgroup")));
        assert_eq!(l.mount_of("freezer"), Some(Path::new("/sys/fs/cgroup")));
        assert_eq!(l.mount_of("hugetlb"), None);
    }

    #[test]
    fn no_cgroup_mount_is_no_layout() {
        let text = "25 30 0:23 / /sys rw - sysfs sysfs rw\n";
        assert_eq!(Layout::parse(text, &kernel(), |_| BTreeSet::new()), None);
    }

    #[test]
    fn escaped_mount_points_are_decoded() {
        assert_eq!(unescape(r"/a\040b"), "/a b");
        assert_eq!(unescape(r"/plain"), "/plain");
        assert_eq!(unescape(r"/trailing\04"), r"/trailing\04");
    }

    #[test]
    fn mounting_missing_skips_present_and_unknown_controllers() {
        let l = Layout::parse(HYBRID, &kernel(), |_| BTreeSet::new()).expect("layout");
        // Nothing to mount: memory is there, rdma is not in the kernel's enabled list.
        let same = l
            .clone()
            .mount_missing(Path::new("/nonexistent"), &["memory", "rdma"], &kernel())
            .expect("nothing to mount");
        assert_eq!(same, l);
    }
}
