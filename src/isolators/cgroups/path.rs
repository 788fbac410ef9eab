//! Cgroup paths: where a pod's or container's cgroup sits below each hierarchy's root.
//! A client names the pod's parent (`cgroup_parent`), so the path is hostile input until
//! checked: absolute, made of plain names, never `..` (which would climb out of the
//! hierarchy onto the host's own cgroups), and in the cgroupfs driver's spelling.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A checked cgroup path: `/` followed by plain names separated by `/`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CgroupPath(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error(
        "cgroup_parent {0:?}: only the cgroupfs cgroup driver is supported, and this is a \
         systemd slice; run kubelet with --cgroup-driver=cgroupfs"
    )]
    Systemd(String),
    #[error("cgroup path {value:?}: {reason}")]
    Bad { value: String, reason: &'static str },
}

/// The longest path we accept: far more than kubelet's deepest
/// (`/kubepods/burstable/pod<uid>/<64 hex>`), far less than PATH_MAX below a mount.
const MAX_LEN: usize = 1024;

impl CgroupPath {
    /// The root of every hierarchy.
    pub fn root() -> CgroupPath {
        CgroupPath("/".into())
    }

    /// Checks a path given by a client or a flag.
    pub fn parse(value: &str) -> Result<CgroupPath, PathError> {
        let bad = |reason| PathError::Bad {
            value: value.to_string(),
            reason,
        };
        // The systemd driver's spelling: `kubepods-burstable-pod<uid>.slice`, sometimes
        // with a leading `/` or a scope.
        if value
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .is_some_and(|last| last.ends_with(".slice") || last.ends_with(".scope"))
        {
            return Err(PathError::Systemd(value.to_string()));
        }
        if !value.starts_with('/') {
            return Err(bad("must be absolute (start with /)"));
        }
        if value.len() > MAX_LEN {
            return Err(bad("is too long"));
        }
        let mut clean = String::new();
        for part in value.split('/').filter(|p| !p.is_empty()) {
            check_name(part).map_err(bad)?;
            clean.push('/');
            clean.push_str(part);
        }
        if clean.is_empty() {
            clean.push('/');
        }
        Ok(CgroupPath(clean))
    }

    /// The child `name` (an id, checked like any component).
    pub fn join(&self, name: &str) -> Result<CgroupPath, PathError> {
        check_name(name).map_err(|reason| PathError::Bad {
            value: name.to_string(),
            reason,
        })?;
        Ok(if self.0 == "/" {
            CgroupPath(format!("/{name}"))
        } else {
            CgroupPath(format!("{}/{name}", self.0))
        })
    }

    /// The directory of this cgroup in the hierarchy mounted at `mount`.
    pub fn under(&self, mount: &Path) -> PathBuf {
        mount.join(self.0.trim_start_matches('/'))
    }

    /// Its ancestors from the topmost down, without the root itself, and itself last.
    pub fn lineage(&self) -> Vec<CgroupPath> {
        let mut out = Vec::new();
        let mut at = String::new();
        for part in self.0.split('/').filter(|p| !p.is_empty()) {
            at.push('/');
            at.push_str(part);
            out.push(CgroupPath(at.clone()));
        }
        out
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn check_name(part: &str) -> Result<(), &'static str> {
    match part {
        "." | ".." => Err("must not contain . or .. components"),
        p if p.len() > 255 => Err("has a component longer than 255 bytes"),
        p if p.bytes().any(|b| b.is_ascii_control() || b == b'/') => {
            Err("must not contain control characters")
        }
        // Names the kernel's own files use: a cgroup called `cgroup.procs` cannot exist.
        p if p.starts_with("cgroup.") => Err("a component must not start with \"cgroup.\""),
        _ => Ok(()),
    }
}

impl fmt::Display for CgroupPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for CgroupPath {
    type Error = PathError;
    fn try_from(s: String) -> Result<Self, PathError> {
        CgroupPath::parse(&s)
    }
}

impl From<CgroupPath> for String {
    fn from(p: CgroupPath) -> String {
        p.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubelet_parents_are_accepted_and_cleaned() {
        for (given, clean) in [
            ("/kubepods/burstable/pod123", "/kubepods/burstable/pod123"),
            ("/kubepods/pod123/", "/kubepods/pod123"),
            ("//kubepods//besteffort/pod1", "/kubepods/besteffort/pod1"),
            ("/", "/"),
        ] {
            assert_eq!(CgroupPath::parse(given).expect(given).as_str(), clean);
        }
    }

    #[test]
    fn systemd_slices_are_refused_with_the_driver_named() {
        for v in [
            "kubepods-burstable-pod123.slice",
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice",
            "/system.slice/x.scope",
        ] {
            let e = CgroupPath::parse(v).expect_err(v);
            assert!(matches!(e, PathError::Systemd(_)), "{v}: {e}");
            assert!(e.to_string().contains("cgroupfs"), "{e}");
            assert!(e.to_string().contains(v), "{e}");
        }
    }

    #[test]
    fn escapes_and_junk_are_refused() {
        for v in [
            "relative/path",
            "/kubepods/../../etc",
            "/kubepods/./x",
            "/a/cgroup.procs",
            "/a\nb",
            &format!("/{}", "x".repeat(300)),
            &format!("/{}", "a/".repeat(600)),
        ] {
            let e = CgroupPath::parse(v).expect_err(v);
            assert!(matches!(e, PathError::Bad { .. }), "{v:?}: {e}");
        }
    }

    #[test]
    fn join_lineage_and_under() {
        let p = CgroupPath::parse("/kubepods/pod1").expect("parse");
        let c = p.join("abc").expect("join");
        assert_eq!(c.as_str(), "/kubepods/pod1/abc");
        assert!(p.join("..").is_err());
        assert_eq!(
            c.lineage()
                .iter()
                .map(CgroupPath::as_str)
                .collect::<Vec<_>>(),
            ["/kubepods", "/kubepods/pod1", "/kubepods/pod1/abc"]
        );
        assert_eq!(
            c.under(Path::new("/sys/fs/cgroup/memory")),
            Path::new("/sys/fs/cgroup/memory/kubepods/pod1/abc")
        );
        assert_eq!(CgroupPath::root().join("ucr").expect("j").as_str(), "/ucr");
    }
}
