use super::*;

fn rule(s: &str) -> DeviceRule {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

#[test]
fn parses_and_prints_the_v1_syntax() {
    for text in [
        "c 1:3 rwm",
        "a *:* rwm",
        "b 7:* r",
        "c *:* m",
        "b 8:16 rw",
        "c 136:* rwm",
    ] {
        assert_eq!(rule(text).to_string(), text);
    }
    assert_eq!(
        rule("b 7:* r"),
        DeviceRule::block(Some(7), None, Access::READ)
    );
    assert_eq!(
        rule("c 1:3 rwm"),
        DeviceRule::char(Some(1), Some(3), Access::ALL)
    );
}

#[test]
fn a_alone_is_everything() {
    assert_eq!(rule("a"), DeviceRule::all(true));
    assert_eq!(DeviceRule::all(false).to_string(), "a *:* rwm");
}

#[test]
fn access_is_printed_in_kernel_order() {
    assert_eq!(rule("c 1:3 mwr").to_string(), "c 1:3 rwm");
    assert_eq!(rule("c 1:3 rr").access, Access::READ);
    assert_eq!("wm".parse::<Access>(), Ok(Access::WRITE | Access::MKNOD));
}

#[test]
fn empty_access_is_an_error() {
    assert_eq!("".parse::<Access>(), Err(RuleError::EmptyAccess));
    // A rule with no access field at all is malformed in shape.
    assert_eq!(
        "c 1:3".parse::<DeviceRule>(),
        Err(RuleError::Shape {
            rule: "c 1:3".into()
        })
    );
}

#[test]
fn other_access_letters_are_errors_naming_the_letter() {
    let err = "rwx".parse::<Access>().expect_err("x");
    assert_eq!(
        err,
        RuleError::AccessLetter {
            access: "rwx".into(),
            letter: 'x'
        }
    );
    assert_eq!(
        err.to_string(),
        r#"device access "rwx": 'x' is not r, w or m"#
    );
    assert!(matches!(
        "c 1:3 RW".parse::<DeviceRule>(),
        Err(RuleError::AccessLetter { letter: 'R', .. })
    ));
}

#[test]
fn malformed_rules_name_the_bad_value() {
    let cases: &[(&str, RuleError)] = &[
        ("", RuleError::Shape { rule: "".into() }),
        (
            "x 1:3 r",
            RuleError::Kind {
                rule: "x 1:3 r".into(),
                kind: "x".into(),
            },
        ),
        (
            "c 1-3 r",
            RuleError::Shape {
                rule: "c 1-3 r".into(),
            },
        ),
        (
            "c one:3 r",
            RuleError::Number {
                rule: "c one:3 r".into(),
                which: "major",
                value: "one".into(),
            },
        ),
        (
            "c 1:+3 r",
            RuleError::Number {
                rule: "c 1:+3 r".into(),
                which: "minor",
                value: "+3".into(),
            },
        ),
        (
            "c 1: r",
            RuleError::Number {
                rule: "c 1: r".into(),
                which: "minor",
                value: "".into(),
            },
        ),
        (
            "c 4294967296:0 r",
            RuleError::Number {
                rule: "c 4294967296:0 r".into(),
                which: "major",
                value: "4294967296".into(),
            },
        ),
        (
            "c 1:3 r extra",
            RuleError::Shape {
                rule: "c 1:3 r extra".into(),
            },
        ),
        (
            "a 1:3 r",
            RuleError::PartialAll {
                rule: "a 1:3 r".into(),
            },
        ),
    ];
    for (text, want) in cases {
        assert_eq!(text.parse::<DeviceRule>().as_ref(), Err(want), "{text:?}");
        assert!(want.to_string().contains(&format!("{text:?}")), "{want}");
    }
}

#[test]
fn defaults_are_runcs_list() {
    let printed: Vec<String> = default_allowed().iter().map(|r| r.to_string()).collect();
    assert_eq!(
        printed,
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
    assert!(default_allowed().iter().all(|r| r.allow));
}

#[test]
fn policy_denies_everything_first_then_allows() {
    let extra = [DeviceRule::block(
        Some(7),
        Some(0),
        Access::READ | Access::WRITE,
    )];
    let rules = policy(false, &extra);
    assert_eq!(rules[0], DeviceRule::all(false));
    assert_eq!(&rules[1..rules.len() - 1], default_allowed().as_slice());
    assert_eq!(rules.last(), Some(&extra[0]));
    assert_eq!(policy(true, &extra), [DeviceRule::all(true)]);
}

#[test]
fn covers_device_honours_wildcards() {
    let pts = rule("c 136:* rwm");
    assert!(pts.covers_device(DeviceKind::Char, 136, 7));
    assert!(!pts.covers_device(DeviceKind::Block, 136, 7));
    assert!(!pts.covers_device(DeviceKind::Char, 137, 7));
    assert!(DeviceRule::all(true).covers_device(DeviceKind::Block, 7, 0));
}
