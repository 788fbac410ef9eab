use serde_json::json;

use super::fixtures::strings;
use super::*;
use crate::error::{ErrorKind, Kind};

// ---------------------------------------------------------------------------------------
// Environment.

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

const PATH_ENTRY: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

#[test]
fn env_cri_overrides_image_in_place() {
    let image_env = strings(&["PATH=/bin", "A=1", "B=2"]);
    assert_eq!(
        merge_env(&image_env, &pairs(&[("A", "override")])),
        strings(&["PATH=/bin", "A=override", "B=2"])
    );
}

#[test]
fn env_new_cri_keys_are_appended_in_request_order() {
    let image_env = strings(&["PATH=/bin", "A=1"]);
    assert_eq!(
        merge_env(&image_env, &pairs(&[("Z", "26"), ("C", "3")])),
        strings(&["PATH=/bin", "A=1", "Z=26", "C=3"])
    );
}

#[test]
fn env_malformed_image_entries_are_skipped() {
    let image_env = strings(&["PATH=/bin", "NOEQUALS", "A=1", ""]);
    assert_eq!(merge_env(&image_env, &[]), strings(&["PATH=/bin", "A=1"]));
}

#[test]
fn env_split_at_first_equals() {
    let image_env = strings(&["OPTS=-Dx=y -Dz=w", "EMPTY="]);
    assert_eq!(
        parse_env(&image_env),
        pairs(&[("OPTS", "-Dx=y -Dz=w"), ("EMPTY", "")])
    );
}

#[test]
fn env_path_defaulted_when_absent() {
    assert_eq!(DEFAULT_PATH, &PATH_ENTRY["PATH=".len()..]);
    assert_eq!(
        merge_env(&strings(&["A=1"]), &pairs(&[("B", "2")])),
        strings(&[PATH_ENTRY, "A=1", "B=2"])
    );
    assert_eq!(merge_env(&[], &[]), strings(&[PATH_ENTRY]));
}

#[test]
fn env_path_not_defaulted_when_image_or_request_sets_it() {
    assert_eq!(
        merge_env(&strings(&["A=1", "PATH=/opt/bin"]), &[]),
        strings(&["A=1", "PATH=/opt/bin"])
    );
    assert_eq!(
        merge_env(&strings(&["A=1"]), &pairs(&[("PATH", "/x")])),
        strings(&["A=1", "PATH=/x"])
    );
}

#[test]
fn env_later_duplicate_image_key_wins() {
    let image_env = strings(&["PATH=/bin", "A=first", "B=2", "A=second"]);
    assert_eq!(
        merge_env(&image_env, &[]),
        strings(&["PATH=/bin", "A=second", "B=2"])
    );
    assert_eq!(
        parse_env(&image_env),
        pairs(&[("PATH", "/bin"), ("A", "second"), ("B", "2")])
    );
}

#[test]
fn env_later_duplicate_cri_key_wins() {
    assert_eq!(
        merge_env(
            &strings(&["PATH=/bin"]),
            &pairs(&[("N", "1"), ("A", "x"), ("N", "2")])
        ),
        strings(&["PATH=/bin", "N=2", "A=x"])
    );
}

#[test]
fn env_hostname_added_when_absent() {
    let env = merge_env(&strings(&["PATH=/bin"]), &[]);
    assert_eq!(
        with_hostname(env, "pod-a"),
        strings(&["PATH=/bin", "HOSTNAME=pod-a"])
    );
}

#[test]
fn env_hostname_from_image_or_request_is_kept() {
    // containerd sets HOSTNAME before applying image and request env, so both win.
    let env = merge_env(&strings(&["PATH=/bin", "HOSTNAME=img"]), &[]);
    assert_eq!(
        with_hostname(env, "pod-a"),
        strings(&["PATH=/bin", "HOSTNAME=img"])
    );
    let env = merge_env(&strings(&["PATH=/bin"]), &pairs(&[("HOSTNAME", "req")]));
    assert_eq!(
        with_hostname(env, "pod-a"),
        strings(&["PATH=/bin", "HOSTNAME=req"])
    );
    // A key merely starting with HOSTNAME is another variable.
    assert_eq!(
        with_hostname(strings(&["HOSTNAMES=x"]), "pod-a"),
        strings(&["HOSTNAMES=x", "HOSTNAME=pod-a"])
    );
}

// ---------------------------------------------------------------------------------------
// Parsing the image config document.

fn parse(doc: serde_json::Value) -> Result<ImageRuntime, RuntimeError> {
    ImageRuntime::from_image_config(&doc)
}

#[test]
fn config_full_document() {
    let img = parse(json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Entrypoint": ["/docker-entrypoint.sh"],
            "Cmd": ["nginx", "-g", "daemon off;"],
            "Env": ["PATH=/usr/local/sbin:/usr/bin", "NGINX_VERSION=1.25.3"],
            "WorkingDir": "/srv",
            "User": "101:101",
            "StopSignal": "SIGQUIT",
            "ExposedPorts": {"80/tcp": {}},
            "Labels": {"maintainer": "x"}
        },
        "rootfs": {"type": "layers", "diff_ids": []}
    }))
    .expect("valid config");
    assert_eq!(img.entrypoint(), strings(&["/docker-entrypoint.sh"]));
    assert_eq!(img.cmd(), strings(&["nginx", "-g", "daemon off;"]));
    assert_eq!(
        img.env(),
        strings(&["PATH=/usr/local/sbin:/usr/bin", "NGINX_VERSION=1.25.3"])
    );
    assert_eq!(img.working_dir(), Some("/srv"));
    assert_eq!(img.user(), Some("101:101"));
    assert_eq!(img.stop_signal(), Some("SIGQUIT"));
}

#[test]
fn config_missing_config_object_is_empty() {
    assert_eq!(parse(json!({"os": "linux"})), Ok(ImageRuntime::default()));
    assert_eq!(parse(json!({"config": null})), Ok(ImageRuntime::default()));
}

#[test]
fn config_container_config_is_ignored() {
    // schema1 v1Compatibility and old docker configs carry both; only `config` counts.
    let img = parse(json!({
        "container_config": {"Cmd": ["/bin/sh", "-c", "#(nop) CMD [\"sh\"]"], "Env": ["X=1"]},
        "config": {"Cmd": ["sh"]}
    }))
    .expect("valid config");
    assert_eq!(img.cmd(), strings(&["sh"]));
    assert!(img.env().is_empty());

    let only_container_config = parse(json!({"container_config": {"Cmd": ["sh"]}}));
    assert_eq!(only_container_config, Ok(ImageRuntime::default()));
}

#[test]
fn config_null_missing_and_empty_entrypoint_are_unset() {
    for config in [
        json!({"Entrypoint": null, "Cmd": ["sh"]}),
        json!({"Cmd": ["sh"]}),
        json!({"Entrypoint": [], "Cmd": ["sh"]}),
        json!({"Entrypoint": [""], "Cmd": ["sh"]}),
    ] {
        let img = parse(json!({ "config": config })).expect("valid config");
        assert!(img.entrypoint().is_empty(), "{config}");
        assert_eq!(img.cmd(), strings(&["sh"]), "{config}");
    }
}

#[test]
fn config_null_fields_are_unset() {
    let img = parse(json!({"config": {
        "Entrypoint": null, "Cmd": null, "Env": null, "WorkingDir": null, "User": null,
        "StopSignal": null
    }}))
    .expect("valid config");
    assert_eq!(img, ImageRuntime::default());
}

#[test]
fn config_empty_strings_are_unset() {
    let img = parse(json!({"config": {"WorkingDir": "", "User": "", "StopSignal": ""}}))
        .expect("valid config");
    assert_eq!(img.working_dir(), None);
    assert_eq!(img.user(), None);
    assert_eq!(img.stop_signal(), None);
}

#[test]
fn config_lone_string_entrypoint_is_one_element() {
    // docker's strslice accepts a bare string.
    let img = parse(json!({"config": {"Entrypoint": "/bin/sh", "Cmd": "-c"}})).expect("valid");
    assert_eq!(img.entrypoint(), strings(&["/bin/sh"]));
    assert_eq!(img.cmd(), strings(&["-c"]));
}

#[test]
fn config_field_names_match_case_insensitively() {
    // Go's encoding/json does; exact matches are preferred.
    let img = parse(json!({"Config": {"cmd": ["sh"], "workingdir": "/w"}})).expect("valid");
    assert_eq!(img.cmd(), strings(&["sh"]));
    assert_eq!(img.working_dir(), Some("/w"));
}

#[test]
fn config_wrong_types_are_rejected() {
    assert_eq!(
        parse(json!({"config": {"Cmd": [1, 2]}})),
        Err(RuntimeError::ConfigField {
            field: "Cmd",
            reason: "expected an array of strings"
        })
    );
    assert_eq!(
        parse(json!({"config": {"Env": "A=1"}})),
        Err(RuntimeError::ConfigField {
            field: "Env",
            reason: "expected an array of strings"
        })
    );
    assert_eq!(
        parse(json!({"config": {"WorkingDir": 5}})),
        Err(RuntimeError::ConfigField {
            field: "WorkingDir",
            reason: "expected a string"
        })
    );
    assert_eq!(
        parse(json!({"config": ["not", "an", "object"]})),
        Err(RuntimeError::ConfigField {
            field: "config",
            reason: "expected an object"
        })
    );
    assert!(matches!(
        parse(json!(["not an object"])),
        Err(RuntimeError::ConfigJson { .. })
    ));
}

#[test]
fn config_from_bytes() {
    let img = ImageRuntime::from_image_config_bytes(br#"{"config":{"Cmd":["sh"],"Env":["A=1"]}}"#)
        .expect("valid config");
    assert_eq!(img.cmd(), strings(&["sh"]));
    assert_eq!(img.env(), strings(&["A=1"]));
    let err = ImageRuntime::from_image_config_bytes(b"{not json").expect_err("invalid JSON");
    assert!(matches!(err, RuntimeError::ConfigJson { .. }), "{err:?}");
    assert!(err.to_string().starts_with("parse image config: "), "{err}");
}

// ---------------------------------------------------------------------------------------
// Errors.

#[test]
fn errors_carry_the_outside_world_messages_and_are_invalid_argument() {
    let all = [
        (RuntimeError::NoCommand, "no command specified"),
        (RuntimeError::NoExecutable, "No executable is found"),
        (
            RuntimeError::ShellWithoutValue,
            "Shell specified but no command value provided",
        ),
        (
            RuntimeError::ConfigJson {
                reason: "eof".to_owned(),
            },
            "parse image config: eof",
        ),
        (
            RuntimeError::ConfigField {
                field: "Cmd",
                reason: "expected an array of strings",
            },
            "parse image config: field Cmd: expected an array of strings",
        ),
    ];
    for (err, message) in all {
        assert_eq!(err.to_string(), message);
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    }
}
