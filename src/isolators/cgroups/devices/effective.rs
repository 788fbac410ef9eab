//! What a list of device rules comes to: a model of the state the kernel's v1 devices
//! cgroup is left in when the list is written to it one rule at a time, and of the check
//! the kernel then makes on every device open and mknod.
//!
//! The v1 controller keeps a *default* (allow or deny everything) and a list of
//! *exceptions* to it (Documentation/admin-guide/cgroup-v1/devices.rst and
//! security/device_cgroup.c):
//! - a rule of type `a` resets: allow (or deny) everything, and forget every exception;
//! - a rule whose action differs from the default adds an exception; one with the same
//!   type, major and minor as an existing exception merges its access into it;
//! - a rule whose action equals the default removes its access from the exception with
//!   *exactly* the same type, major and minor, and from no other. So under "deny all,
//!   allow `c 1:* rwm`", denying `c 1:3 r` changes nothing: v1 cannot punch a hole in a
//!   wildcard.
//!
//! The v2 program (`program`) is generated from this model, so both cgroup versions do
//! the same with a list. Like runc's devices emulator, a list with a removal that reaches
//! into a *different* exception (wider or narrower, sharing some access), which v1 would
//! silently leave as it is, is refused rather than applied: a policy that does not do
//! what it says is worse than an error. (runc only looks at wider exceptions.)

use super::rules::{Access, DeviceKind, DeviceRule};

/// The state a list leaves a v1 devices cgroup in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effective {
    /// The action for a device no exception matches.
    pub default_allow: bool,
    /// In the kernel's order (first added first). Each has `allow == !default_allow`, a
    /// kind of `Char` or `Block`, and some access.
    pub exceptions: Vec<DeviceRule>,
}

impl Effective {
    /// The state after writing `rules`, in order, to a cgroup that denies everything (as
    /// `apply_v1` first makes it).
    pub fn of(rules: &[DeviceRule]) -> Result<Effective, PolicyError> {
        let mut state = Effective {
            default_allow: false,
            exceptions: Vec::new(),
        };
        for rule in rules {
            state.apply(normalize(*rule))?;
        }
        Ok(state)
    }

    fn apply(&mut self, rule: DeviceRule) -> Result<(), PolicyError> {
        if rule.kind == DeviceKind::All {
            self.default_allow = rule.allow;
            self.exceptions.clear();
            return Ok(());
        }
        if rule.access.is_empty() {
            return Err(PolicyError::EmptyAccess { rule });
        }
        let same_place =
            |ex: &DeviceRule| (ex.kind, ex.major, ex.minor) == (rule.kind, rule.major, rule.minor);
        if rule.allow != self.default_allow {
            match self.exceptions.iter_mut().find(|ex| same_place(ex)) {
                Some(ex) => ex.access = ex.access | rule.access,
                None => self.exceptions.push(rule),
            }
            return Ok(());
        }
        if let Some(ex) = self
            .exceptions
            .iter()
            .find(|ex| !same_place(ex) && overlaps(ex, &rule) && ex.access.intersects(rule.access))
        {
            return Err(PolicyError::CannotSplit {
                rule,
                exception: *ex,
            });
        }
        for ex in self.exceptions.iter_mut().filter(|ex| same_place(ex)) {
            ex.access = ex.access.difference(rule.access);
        }
        self.exceptions.retain(|ex| !ex.access.is_empty());
        Ok(())
    }

    /// Whether a process in the cgroup may have `access` (read, write, mknod; one or more)
    /// to device `kind major:minor`. As the kernel decides it:
    /// - deny by default: some *single* exception must match the device and include every
    ///   access asked for (`c 1:* r` and `c 1:3 w` together do not give `rw` of 1:3);
    /// - allow by default: no exception may match the device and share *any* access.
    pub fn permits(&self, kind: DeviceKind, major: u32, minor: u32, access: Access) -> bool {
        let mut matching = self
            .exceptions
            .iter()
            .filter(|ex| ex.covers_device(kind, major, minor));
        if self.default_allow {
            !matching.any(|ex| ex.access.intersects(access))
        } else {
            matching.any(|ex| ex.access.contains(access))
        }
    }
}

/// The kernel stores `*` as the number 4294967295 (`~0`), so that number *is* a wildcard
/// to v1; the v2 program must read it the same way.
fn normalize(mut rule: DeviceRule) -> DeviceRule {
    let wild = |n: Option<u32>| n.filter(|&n| n != u32::MAX);
    rule.major = wild(rule.major);
    rule.minor = wild(rule.minor);
    rule
}

/// Whether some device is in both rules' sets (same kind; each number equal or `*`).
fn overlaps(a: &DeviceRule, b: &DeviceRule) -> bool {
    let meet = |x: Option<u32>, y: Option<u32>| x.is_none() || y.is_none() || x == y;
    a.kind == b.kind && meet(a.major, b.major) && meet(a.minor, b.minor)
}

/// A rule list ucr refuses to apply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error(
        "device rule {} ({}) cannot be applied: it overlaps the different rule {}, and \
         cgroup v1 only removes access from an identical rule (name the devices exactly)",
        .rule, action(.rule), .exception
    )]
    CannotSplit {
        rule: DeviceRule,
        exception: DeviceRule,
    },
    #[error("device rule {} ({}) grants or takes no access", .rule, action(.rule))]
    EmptyAccess { rule: DeviceRule },
}

fn action(rule: &DeviceRule) -> &'static str {
    if rule.allow {
        "allow"
    } else {
        "deny"
    }
}

#[cfg(test)]
#[path = "effective_tests.rs"]
mod tests;
