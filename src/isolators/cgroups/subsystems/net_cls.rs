//! `cgroups/net_cls` (Mesos `--cgroups_net_cls_primary_handle` and
//! `--cgroups_net_cls_secondary_handles`): each container gets a secondary handle of its
//! own from the operator's range, and `net_cls.classid` = primary << 16 | secondary, so
//! traffic-control filters on the host can tell containers' packets apart. Handles are
//! freed with the container and learnt again from the kernel after a restart. Without the
//! flags the isolator is not in the table and net_cls is the operator's.

use std::collections::BTreeMap;
use std::sync::Mutex;

use cgroups_rs::fs::net_cls::NetClsController;

use super::{typed, Spec, Subsystem};
use crate::isolators::cgroups::cgroup::Cgroup;
use crate::isolators::cgroups::error::{from_setter, CgroupsError};

/// The operator's handles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handles {
    pub primary: u16,
    /// Inclusive.
    pub secondary: (u16, u16),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{flag} {value:?}: {reason}")]
pub struct HandleError {
    pub flag: &'static str,
    pub value: String,
    pub reason: &'static str,
}

fn parse_handle(flag: &'static str, value: &str) -> Result<u16, HandleError> {
    let err = |reason| HandleError {
        flag,
        value: value.to_string(),
        reason,
    };
    let v = value.trim();
    let parsed = match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(hex) => u16::from_str_radix(hex, 16),
        None => v.parse::<u16>(),
    };
    match parsed {
        Ok(0) => Err(err("a handle must not be 0")),
        Ok(h) => Ok(h),
        Err(_) => Err(err("expected a 16-bit handle such as 0x10 (1 to 0xffff)")),
    }
}

impl Handles {
    /// `primary` and `secondary` as the flags spell them: `0xAAAA` and `0xBBBB,0xCCCC`.
    pub fn parse(primary: &str, secondary: &str) -> Result<Handles, HandleError> {
        let p = parse_handle("--cgroups-net-cls-primary-handle", primary)?;
        let flag = "--cgroups-net-cls-secondary-handles";
        let (lo, hi) = secondary.split_once(',').ok_or(HandleError {
            flag,
            value: secondary.to_string(),
            reason: "expected a range FIRST,LAST such as 0x1,0xffff",
        })?;
        let (lo, hi) = (parse_handle(flag, lo)?, parse_handle(flag, hi)?);
        if lo > hi {
            return Err(HandleError {
                flag,
                value: secondary.to_string(),
                reason: "the first handle is above the last",
            });
        }
        Ok(Handles {
            primary: p,
            secondary: (lo, hi),
        })
    }

    pub fn classid(&self, secondary: u16) -> u64 {
        (u64::from(self.primary) << 16) | u64::from(secondary)
    }
}

pub struct NetCls {
    handles: Handles,
    /// Container id to its secondary handle.
    used: Mutex<BTreeMap<String, u16>>,
}

impl NetCls {
    pub fn new(handles: Handles) -> Self {
        NetCls {
            handles,
            used: Mutex::default(),
        }
    }

    fn used(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, u16>> {
        self.used.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The container's handle: the one it has, or the lowest free one.
    pub fn allocate(&self, id: &str) -> Result<u16, CgroupsError> {
        let mut used = self.used();
        if let Some(h) = used.get(id) {
            return Ok(*h);
        }
        let taken: std::collections::BTreeSet<u16> = used.values().copied().collect();
        let (lo, hi) = self.handles.secondary;
        let free = (lo..=hi).find(|h| !taken.contains(h)).ok_or_else(|| {
            CgroupsError::Exhausted(format!(
                "cgroups/net_cls: every secondary handle from {lo:#x} to {hi:#x} is in use"
            ))
        })?;
        used.insert(id.to_string(), free);
        Ok(free)
    }

    pub fn handle_of(&self, id: &str) -> Option<u16> {
        self.used().get(id).copied()
    }
}

impl Subsystem for NetCls {
    fn name(&self) -> &'static str {
        "cgroups/net_cls"
    }

    fn controllers(&self) -> &'static [&'static str] {
        &["net_cls"]
    }

    fn apply(&self, cg: &Cgroup, spec: &Spec<'_>) -> Result<(), CgroupsError> {
        if !spec.creating {
            return Ok(());
        }
        let (ctl, dir) = typed(cg, "net_cls", self.name(), |d, m, _| {
            NetClsController::new(d, m)
        })?;
        let secondary = self.allocate(spec.id)?;
        let classid = self.handles.classid(secondary);
        ctl.set_class(classid)
            .map_err(|e| from_setter("net_cls.classid", &format!("{classid:#x}"), &dir, e))
    }

    fn status(&self, id: &str, _cg: &Cgroup, info: &mut BTreeMap<String, String>) {
        if let Some(h) = self.handle_of(id) {
            info.insert(
                "netClsHandle".into(),
                format!("{:#06x}:{:#06x}", self.handles.primary, h),
            );
            info.insert("netClsClassid".into(), self.handles.classid(h).to_string());
        }
    }

    fn release(&self, id: &str) {
        self.used().remove(id);
    }

    fn recover(&self, id: &str, cg: &Cgroup) {
        let Some(dir) = cg.dir("net_cls") else {
            return;
        };
        let Ok(text) = std::fs::read_to_string(dir.join("net_cls.classid")) else {
            return;
        };
        let Ok(classid) = text.trim().parse::<u64>() else {
            return;
        };
        let (primary, secondary) = ((classid >> 16) as u16, (classid & 0xffff) as u16);
        let (lo, hi) = self.handles.secondary;
        if primary == self.handles.primary && (lo..=hi).contains(&secondary) {
            self.used().insert(id.to_string(), secondary);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse_in_hex_and_decimal_with_precise_errors() {
        let h = Handles::parse("0x10", "0x1,0xff").expect("parse");
        assert_eq!(h.primary, 0x10);
        assert_eq!(h.secondary, (1, 0xff));
        assert_eq!(h.classid(2), 0x0010_0002);
        assert_eq!(Handles::parse("16", "1,3").expect("dec").primary, 16);
        for (p, s, flag) in [
            ("0", "1,2", "primary"),
            ("0x10000", "1,2", "primary"),
            ("zz", "1,2", "primary"),
            ("1", "5", "secondary"),
            ("1", "5,3", "secondary"),
            ("1", "0,3", "secondary"),
        ] {
            let e = Handles::parse(p, s).expect_err(&format!("{p} {s}"));
            assert!(e.flag.contains(flag), "{e}");
        }
    }

    #[test]
    fn handles_are_unique_reused_after_release_and_run_out() {
        let n = NetCls::new(Handles::parse("0x1", "0x1,0x3").expect("parse"));
        let a = n.allocate("a").expect("a");
        let b = n.allocate("b").expect("b");
        let c = n.allocate("c").expect("c");
        assert_eq!(
            n.allocate("a").expect("again"),
            a,
            "a container keeps its handle"
        );
        let mut all = [a, b, c];
        all.sort();
        assert_eq!(all, [1, 2, 3]);
        let e = n.allocate("d").expect_err("exhausted");
        assert!(e.to_string().contains("0x1 to 0x3"), "{e}");
        n.release("b");
        assert_eq!(n.allocate("d").expect("freed"), b);
    }
}
