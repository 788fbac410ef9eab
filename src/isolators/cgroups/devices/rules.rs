//! Device rules in the cgroup v1 `devices.allow` syntax (`c 1:3 rwm`, `b 7:* r`, `a`), the
//! list runc allows every unprivileged container, and the policy a container gets.
//!
//! One rule type serves both cgroup versions: v1 writes the rules into the cgroup's files,
//! v2 compiles them into a BPF program (`program`); both read a list the same way
//! (`effective`).

use std::fmt;
use std::ops::BitOr;
use std::str::FromStr;

/// What a rule covers: every device (`a`), character (`c`) or block (`b`) devices.
///
/// The kernel reads any rule whose type is `a` as "every device, every access" whatever
/// else it says, and resets the cgroup to allow or deny everything: the whole list before
/// it is forgotten.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceKind {
    All,
    Char,
    Block,
}

impl DeviceKind {
    fn letter(self) -> char {
        match self {
            DeviceKind::All => 'a',
            DeviceKind::Char => 'c',
            DeviceKind::Block => 'b',
        }
    }
}

/// A set of accesses: read, write, mknod.
///
/// The bits are the kernel's `BPF_DEVCG_ACC_*` values (mknod 1, read 2, write 4), so the
/// v2 program compares them with the context's access without translating.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Access(u8);

impl Access {
    pub const NONE: Access = Access(0);
    pub const MKNOD: Access = Access(1);
    pub const READ: Access = Access(2);
    pub const WRITE: Access = Access(4);
    pub const ALL: Access = Access(7);

    pub const fn bits(self) -> u8 {
        self.0
    }
    /// The set with these bits; bits other than the three accesses are dropped.
    pub const fn from_bits(bits: u8) -> Access {
        Access(bits & Access::ALL.0)
    }
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
    pub const fn contains(self, other: Access) -> bool {
        self.0 & other.0 == other.0
    }
    pub const fn intersects(self, other: Access) -> bool {
        self.0 & other.0 != 0
    }
    pub const fn union(self, other: Access) -> Access {
        Access(self.0 | other.0)
    }
    pub const fn difference(self, other: Access) -> Access {
        Access(self.0 & !other.0)
    }
}

impl BitOr for Access {
    type Output = Access;
    fn bitor(self, other: Access) -> Access {
        self.union(other)
    }
}

impl fmt::Display for Access {
    /// Always in the kernel's order, `rwm`, whatever order it was written in.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (bit, letter) in [
            (Access::READ, 'r'),
            (Access::WRITE, 'w'),
            (Access::MKNOD, 'm'),
        ] {
            if self.contains(bit) {
                write!(f, "{letter}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Access({self})")
    }
}

impl FromStr for Access {
    type Err = RuleError;

    /// Letters in any order, repeats allowed (the kernel accepts `rr`); empty is an error:
    /// a rule that grants or takes nothing is a mistake in whatever produced it.
    fn from_str(s: &str) -> Result<Access, RuleError> {
        if s.is_empty() {
            return Err(RuleError::EmptyAccess);
        }
        s.chars().try_fold(Access::NONE, |acc, letter| {
            let bit = match letter {
                'r' => Access::READ,
                'w' => Access::WRITE,
                'm' => Access::MKNOD,
                _ => {
                    return Err(RuleError::AccessLetter {
                        access: s.to_string(),
                        letter,
                    })
                }
            };
            Ok(acc | bit)
        })
    }
}

/// One line of a devices list: allow (or deny) `access` to the devices of `kind` with
/// this major and minor number (`None` is `*`, any).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeviceRule {
    pub allow: bool,
    pub kind: DeviceKind,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub access: Access,
}

impl DeviceRule {
    /// `a *:* rwm`: every device, every access.
    pub const fn all(allow: bool) -> DeviceRule {
        DeviceRule {
            allow,
            kind: DeviceKind::All,
            major: None,
            minor: None,
            access: Access::ALL,
        }
    }

    /// An allow rule for character devices.
    pub const fn char(major: Option<u32>, minor: Option<u32>, access: Access) -> DeviceRule {
        DeviceRule {
            allow: true,
            kind: DeviceKind::Char,
            major,
            minor,
            access,
        }
    }

    /// An allow rule for block devices.
    pub const fn block(major: Option<u32>, minor: Option<u32>, access: Access) -> DeviceRule {
        DeviceRule {
            allow: true,
            kind: DeviceKind::Block,
            major,
            minor,
            access,
        }
    }

    /// Whether this rule's devices include device `kind major:minor` (a `*` includes every
    /// number). A rule of kind `All` includes every device.
    pub fn covers_device(&self, kind: DeviceKind, major: u32, minor: u32) -> bool {
        (self.kind == DeviceKind::All || self.kind == kind)
            && self.major.is_none_or(|m| m == major)
            && self.minor.is_none_or(|m| m == minor)
    }
}

impl fmt::Display for DeviceRule {
    /// The rule as written to `devices.allow` / `devices.deny`; whether it allows or
    /// denies is which file it goes to, so it is not part of the text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let number = |n: Option<u32>| n.map_or_else(|| "*".to_string(), |n| n.to_string());
        write!(
            f,
            "{} {}:{} {}",
            self.kind.letter(),
            number(self.major),
            number(self.minor),
            self.access
        )
    }
}

impl FromStr for DeviceRule {
    type Err = RuleError;

    /// Parses an allow rule: `<a|b|c> <major|*>:<minor|*> <access>`, or `a` alone (which
    /// is how runc writes "everything"). An `a` rule must cover everything (`a *:* rwm`):
    /// the kernel would read `a 1:3 r` as all of that, so ucr refuses to pretend otherwise.
    fn from_str(s: &str) -> Result<DeviceRule, RuleError> {
        let shape = || RuleError::Shape {
            rule: s.to_string(),
        };
        let fields: Vec<&str> = s.split_ascii_whitespace().collect();
        let kind = match fields.first().copied() {
            Some("a") => DeviceKind::All,
            Some("b") => DeviceKind::Block,
            Some("c") => DeviceKind::Char,
            Some(other) => {
                return Err(RuleError::Kind {
                    rule: s.to_string(),
                    kind: other.to_string(),
                })
            }
            None => return Err(shape()),
        };
        if kind == DeviceKind::All && fields.len() == 1 {
            return Ok(DeviceRule::all(true));
        }
        let [_, numbers, access] = fields[..] else {
            return Err(shape());
        };
        let (major, minor) = numbers.split_once(':').ok_or_else(shape)?;
        let rule = DeviceRule {
            allow: true,
            kind,
            major: parse_number(s, "major", major)?,
            minor: parse_number(s, "minor", minor)?,
            access: access.parse()?,
        };
        if kind == DeviceKind::All && rule != DeviceRule::all(true) {
            return Err(RuleError::PartialAll {
                rule: s.to_string(),
            });
        }
        Ok(rule)
    }
}

fn parse_number(rule: &str, which: &'static str, value: &str) -> Result<Option<u32>, RuleError> {
    if value == "*" {
        return Ok(None);
    }
    // Digits only: `u32::from_str` would also take a leading `+`, which the kernel refuses.
    let bad = || RuleError::Number {
        rule: rule.to_string(),
        which,
        value: value.to_string(),
    };
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    value.parse().map(Some).map_err(|_| bad())
}

/// A malformed device rule or access string; each names the bad value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("device rule {rule:?}: expected `<a|b|c> <major>:<minor> <access>`")]
    Shape { rule: String },
    #[error("device rule {rule:?}: device type {kind:?} is not a, b or c")]
    Kind { rule: String, kind: String },
    #[error("device rule {rule:?}: {which} number {value:?} is neither a number nor *")]
    Number {
        rule: String,
        which: &'static str,
        value: String,
    },
    #[error("device access is empty: expected some of r, w, m")]
    EmptyAccess,
    #[error("device access {access:?}: {letter:?} is not r, w or m")]
    AccessLetter { access: String, letter: char },
    #[error(
        "device rule {rule:?}: an `a` rule means every device and every access to the \
         kernel; write `a *:* rwm` (or `a`)"
    )]
    PartialAll { rule: String },
}

/// The devices runc allows every container besides the ones it asks for, so images that
/// work under runc (containerd, CRI-O) find the same devices usable under ucr.
///
/// From runc's `libcontainer/specconv` `AllowedDevices` (runc 1.2.1 and later), which runc
/// appends after the spec's own device rules:
/// - mknod of any character or block device (`c *:* m`, `b *:* m`): creating a node
///   grants nothing by itself, opening it is checked separately;
/// - /dev/null 1:3, /dev/random 1:8, /dev/full 1:7, /dev/tty 5:0, /dev/zero 1:5,
///   /dev/urandom 1:9;
/// - /dev/pts/* (136:*) and /dev/ptmx (5:2), for terminals in the container's devpts;
/// - /dev/net/tun (10:200): runc 1.2.0 dropped it and 1.2.1 put it back because
///   orchestrators that cannot add device rules depended on it.
///
/// /dev/console (5:1) is *not* in runc's list (older libcontainer defaults had it): a
/// container's console is a pty bind-mounted there, which 136:* already covers.
pub fn default_allowed() -> Vec<DeviceRule> {
    let rwm = Access::ALL;
    let char = |major, minor| DeviceRule::char(Some(major), Some(minor), rwm);
    vec![
        DeviceRule::char(None, None, Access::MKNOD),
        DeviceRule::block(None, None, Access::MKNOD),
        char(1, 3),
        char(1, 8),
        char(1, 7),
        char(5, 0),
        char(1, 5),
        char(1, 9),
        DeviceRule::char(Some(136), None, rwm),
        char(5, 2),
        char(10, 200),
    ]
}

/// The device rules of a container, in the order they are applied.
///
/// Unprivileged: deny everything, then the defaults, then `extra` (the devices the CRI
/// request names). Privileged: everything (`a *:* rwm`), as runc gives a privileged
/// container (containerd asks for that rule; runc's defaults appended after it change
/// nothing).
pub fn policy(privileged: bool, extra: &[DeviceRule]) -> Vec<DeviceRule> {
    if privileged {
        return vec![DeviceRule::all(true)];
    }
    let mut rules = vec![DeviceRule::all(false)];
    rules.extend(default_allowed());
    rules.extend_from_slice(extra);
    rules
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
