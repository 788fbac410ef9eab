use super::*;
use crate::isolators::cgroups::devices::rules::policy;

const R: Access = Access::READ;
const W: Access = Access::WRITE;
const M: Access = Access::MKNOD;
const C: DeviceKind = DeviceKind::Char;
const B: DeviceKind = DeviceKind::Block;

fn allow(s: &str) -> DeviceRule {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn deny(s: &str) -> DeviceRule {
    DeviceRule {
        allow: false,
        ..allow(s)
    }
}

fn of(rules: &[DeviceRule]) -> Effective {
    Effective::of(rules).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn empty_list_denies_everything() {
    let e = of(&[]);
    assert!(!e.default_allow && e.exceptions.is_empty());
    assert!(!e.permits(C, 1, 3, R));
    assert!(!e.permits(B, 7, 0, M));
}

#[test]
fn default_policy() {
    let e = of(&policy(false, &[]));
    assert!(e.permits(C, 1, 3, R | W));
    assert!(e.permits(C, 136, 42, R | W));
    assert!(e.permits(B, 7, 0, M));
    assert!(e.permits(C, 1, 1, M));
    assert!(!e.permits(C, 1, 1, R | W), "/dev/mem");
    assert!(!e.permits(B, 7, 0, R));
    // mknod of anything, but never mknod plus an open in one exception.
    assert!(!e.permits(B, 7, 0, R | M));
}

#[test]
fn privileged_allows_everything() {
    let e = of(&policy(true, &[]));
    assert!(e.default_allow && e.exceptions.is_empty());
    assert!(e.permits(C, 1, 1, R | W | M));
}

#[test]
fn same_device_merges_in_place() {
    let e = of(&[allow("c 1:3 r"), allow("c 1:5 r"), allow("c 1:3 w")]);
    assert_eq!(e.exceptions, [allow("c 1:3 rw"), allow("c 1:5 r")]);
}

#[test]
fn a_rule_forgets_what_came_before() {
    let e = of(&[allow("c 1:3 r"), DeviceRule::all(true), deny("c 1:3 r")]);
    assert!(e.default_allow);
    assert_eq!(e.exceptions, [deny("c 1:3 r")]);
    let e = of(&[
        DeviceRule::all(true),
        allow("c 1:3 r"),
        DeviceRule::all(false),
    ]);
    assert!(!e.default_allow && e.exceptions.is_empty());
}

#[test]
fn a_deny_removes_access_from_the_identical_rule_only() {
    let e = of(&[allow("c 1:3 rwm"), deny("c 1:3 w")]);
    assert_eq!(e.exceptions, [allow("c 1:3 rm")]);
    let e = of(&[allow("c 1:3 rw"), deny("c 1:3 rw")]);
    assert!(e.exceptions.is_empty());
    // Removing what is not there, or from another device, is a no-op (as in v1).
    let e = of(&[allow("c 1:3 r"), deny("c 1:4 r"), deny("b 1:3 r")]);
    assert_eq!(e.exceptions, [allow("c 1:3 r")]);
}

#[test]
fn holes_in_wildcards_are_refused() {
    let err = Effective::of(&[allow("c 1:* rwm"), deny("c 1:3 r")]).expect_err("hole");
    assert_eq!(
        err,
        PolicyError::CannotSplit {
            rule: deny("c 1:3 r"),
            exception: allow("c 1:* rwm"),
        }
    );
    assert!(err.to_string().contains("c 1:3 r (deny)"), "{err}");
    // A wider removal would leave the narrower exception behind: refused too.
    assert!(Effective::of(&[allow("c 1:3 r"), deny("c 1:* r")]).is_err());
    // No access in common: nothing would be ignored.
    assert!(Effective::of(&[allow("c 1:* m"), deny("c 1:3 r")]).is_ok());
    // Taking a default device away whole would leave its mknod to `c *:* m`: refused
    // (runc's emulator refuses it too); taking `rw` is fine.
    assert!(Effective::of(&policy(false, &[deny("c 10:200 rwm")])).is_err());
    let e = of(&policy(false, &[deny("c 10:200 rw")]));
    assert!(!e.permits(C, 10, 200, R) && e.permits(C, 10, 200, M));
    // The same in an allow-by-default cgroup.
    assert!(Effective::of(&[DeviceRule::all(true), deny("b *:* w"), allow("b 7:0 w")]).is_err());
}

#[test]
fn one_exception_must_cover_the_whole_access() {
    let e = of(&[allow("c 1:* r"), allow("c 1:3 w")]);
    assert!(e.permits(C, 1, 3, R));
    assert!(e.permits(C, 1, 3, W));
    assert!(!e.permits(C, 1, 3, R | W));
}

#[test]
fn allow_by_default_denies_on_any_shared_access() {
    let e = of(&[DeviceRule::all(true), deny("c 1:3 w")]);
    assert!(e.permits(C, 1, 3, R));
    assert!(!e.permits(C, 1, 3, W));
    assert!(!e.permits(C, 1, 3, R | W));
    assert!(e.permits(B, 1, 3, W));
}

#[test]
fn the_kernels_wildcard_number_is_a_wildcard() {
    let e = of(&[DeviceRule::char(Some(u32::MAX), Some(3), R)]);
    assert_eq!(e.exceptions, [allow("c *:3 r")]);
}

#[test]
fn empty_access_is_refused() {
    let rule = DeviceRule::char(Some(1), Some(3), Access::NONE);
    assert_eq!(
        Effective::of(&[rule]),
        Err(PolicyError::EmptyAccess { rule })
    );
}
