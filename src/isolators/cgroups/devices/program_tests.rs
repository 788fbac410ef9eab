//! The generated programs run in an eBPF interpreter (rbpf) over hand-made contexts, as
//! the kernel would run them on a device open or mknod.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;
use crate::isolators::cgroups::devices::insn::to_bytes;
use crate::isolators::cgroups::devices::rules::{policy, Access};

const R: Access = Access::READ;
const W: Access = Access::WRITE;
const M: Access = Access::MKNOD;
const C: DeviceKind = DeviceKind::Char;
const B: DeviceKind = DeviceKind::Block;

/// A `struct bpf_cgroup_dev_ctx`, as the kernel fills it.
fn context(kind: DeviceKind, major: u32, minor: u32, access: Access) -> [u8; 12] {
    let kind = match kind {
        DeviceKind::Block => DEV_BLOCK as u32,
        DeviceKind::Char => DEV_CHAR as u32,
        DeviceKind::All => panic!("the kernel asks about one kind of device"),
    };
    let access_type = (u32::from(access.bits()) << 16) | kind;
    let mut ctx = [0u8; 12];
    ctx[0..4].copy_from_slice(&access_type.to_ne_bytes());
    ctx[4..8].copy_from_slice(&major.to_ne_bytes());
    ctx[8..12].copy_from_slice(&minor.to_ne_bytes());
    ctx
}

/// Runs the program; true when it allows.
fn run(program: &[Insn], kind: DeviceKind, major: u32, minor: u32, access: Access) -> bool {
    let bytes = to_bytes(program);
    let mut ctx = context(kind, major, minor, access);
    let vm = rbpf::EbpfVmRaw::new(Some(&bytes)).expect("the interpreter accepts the program");
    match vm.execute_program(&mut ctx).expect("the program runs") {
        0 => false,
        1 => true,
        other => panic!("the program returned {other}"),
    }
}

fn rules(text: &[&str]) -> Vec<DeviceRule> {
    text.iter()
        .map(|s| s.parse().unwrap_or_else(|e| panic!("{s}: {e}")))
        .collect()
}

fn compiled(rules: &[DeviceRule]) -> Vec<Insn> {
    program(rules).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn default_policy() {
    let p = compiled(&policy(false, &[]));
    assert!(run(&p, C, 1, 3, R | W), "/dev/null");
    assert!(run(&p, C, 1, 3, R));
    assert!(run(&p, C, 1, 9, R), "/dev/urandom");
    assert!(run(&p, C, 136, 5, R | W), "/dev/pts/5");
    assert!(run(&p, C, 10, 200, R | W), "/dev/net/tun");
    assert!(!run(&p, B, 7, 0, R), "a loop device");
    assert!(!run(&p, C, 1, 1, R | W), "/dev/mem");
    assert!(!run(&p, C, 5, 1, R | W), "/dev/console");
    for (kind, major, minor) in [(B, 7, 0), (C, 1, 1), (B, 8, 0), (C, 4000, 70000)] {
        assert!(
            run(&p, kind, major, minor, M),
            "mknod {kind:?} {major}:{minor}"
        );
    }
}

#[test]
fn privileged_allows_everything() {
    let p = compiled(&policy(true, &[]));
    for access in [R, W, M, R | W | M] {
        assert!(run(&p, B, 7, 0, access));
        assert!(run(&p, C, 1, 1, access));
    }
}

#[test]
fn an_extra_block_device() {
    let p = compiled(&policy(false, &rules(&["b 7:0 rw"])));
    assert!(run(&p, B, 7, 0, R | W));
    assert!(run(&p, B, 7, 0, R));
    assert!(run(&p, B, 7, 0, W));
    assert!(run(&p, B, 7, 0, M), "mknod comes from b *:* m");
    // No single exception holds all three (v1 needs one that does).
    assert!(!run(&p, B, 7, 0, R | W | M));
    assert!(!run(&p, B, 7, 1, R), "another minor");
    assert!(!run(&p, C, 7, 0, R), "a char device with the same numbers");
}

#[test]
fn wildcards() {
    let p = compiled(&rules(&["b 8:* r", "c *:5 w"]));
    assert!(run(&p, B, 8, 0, R));
    assert!(run(&p, B, 8, 17, R));
    assert!(!run(&p, B, 8, 17, W));
    assert!(!run(&p, B, 9, 0, R));
    assert!(run(&p, C, 1, 5, W));
    assert!(run(&p, C, 4095, 5, W));
    assert!(!run(&p, C, 1, 6, W));
    assert!(!run(&p, B, 1, 5, W));
}

#[test]
fn empty_list_denies_everything() {
    let p = compiled(&[]);
    for access in [R, W, M, R | W] {
        assert!(!run(&p, C, 1, 3, access));
        assert!(!run(&p, B, 7, 0, access));
    }
    assert_eq!(p.len(), 8, "the loads, then return 0");
}

#[test]
fn allow_by_default_with_a_deny_exception() {
    let deny_write = DeviceRule {
        allow: false,
        ..DeviceRule::char(Some(1), Some(3), W)
    };
    let p = compiled(&[DeviceRule::all(true), deny_write]);
    assert!(run(&p, C, 1, 3, R));
    assert!(!run(&p, C, 1, 3, W));
    assert!(
        !run(&p, C, 1, 3, R | W),
        "any shared access denies, as in v1"
    );
    assert!(run(&p, C, 1, 4, R | W));
}

#[test]
fn numbers_above_two_to_the_31_compare_as_unsigned() {
    let big = 0x8000_0005;
    let p = compiled(&[DeviceRule::char(Some(big), Some(u32::MAX - 1), R)]);
    assert!(run(&p, C, big, u32::MAX - 1, R));
    assert!(!run(&p, C, 5, u32::MAX - 1, R));
}

/// Random rule lists, each compared with the v1 model on a grid of requests: the program
/// must decide every request exactly as `Effective::permits` does.
#[test]
fn programs_decide_as_the_v1_model_does() {
    let mut rng = StdRng::seed_from_u64(0x0dec_1ce5);
    let numbers = [0u32, 1, 3, 5, 7, 136];
    let number = |rng: &mut StdRng| {
        if rng.random_ratio(1, 4) {
            None
        } else {
            Some(numbers[rng.random_range(0..numbers.len())])
        }
    };
    let mut checked = 0;
    for _ in 0..300 {
        let mut list = Vec::new();
        for _ in 0..rng.random_range(0..8) {
            let kind = match rng.random_range(0..10) {
                0 => DeviceKind::All,
                1..=5 => C,
                _ => B,
            };
            let rule = if kind == DeviceKind::All {
                DeviceRule::all(rng.random_bool(0.5))
            } else {
                DeviceRule {
                    allow: rng.random_ratio(3, 4),
                    kind,
                    major: number(&mut rng),
                    minor: number(&mut rng),
                    access: Access::from_bits(rng.random_range(1..8)),
                }
            };
            list.push(rule);
        }
        // Lists v1 could not honour are refused before any program exists.
        let Ok(state) = Effective::of(&list) else {
            continue;
        };
        let p = compile(&state);
        for kind in [C, B] {
            for &major in &numbers {
                for &minor in &numbers {
                    for bits in 1..8 {
                        let access = Access::from_bits(bits);
                        let want = state.permits(kind, major, minor, access);
                        let got = run(&p, kind, major, minor, access);
                        assert_eq!(
                            got, want,
                            "{kind:?} {major}:{minor} {access} under {list:?}"
                        );
                        checked += 1;
                    }
                }
            }
        }
    }
    assert!(checked > 100_000, "only {checked} requests checked");
}
