use serde_json::json;

use super::*;
use crate::error::{ErrorKind, Kind};

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

// Image fixtures: E = Entrypoint, C = Cmd.
const E: &[&str] = &["/entry", "e1"];
const C: &[&str] = &["/cmd", "c1"];

fn image(entrypoint: &[&str], cmd: &[&str]) -> ImageRuntime {
    ImageRuntime {
        entrypoint: strings(entrypoint),
        cmd: strings(cmd),
        ..ImageRuntime::default()
    }
}
fn no_image() -> ImageRuntime {
    image(&[], &[])
}
fn cmd_only() -> ImageRuntime {
    image(&[], C)
}
fn entrypoint_only() -> ImageRuntime {
    image(E, &[])
}
fn entrypoint_and_cmd() -> ImageRuntime {
    image(E, C)
}

// ---------------------------------------------------------------------------------------
// Mesos: one test per cell of the CommandInfo × Entrypoint/Cmd table (ucr-spec.md §5.1).

// CommandInfo.arguments fixture.
const A: &[&str] = &["a1", "a2"];
const NO_A: &[&str] = &[];

fn mesos(
    shell: bool,
    value: Option<&str>,
    arguments: &[&str],
    image: ImageRuntime,
) -> Result<Launch, RuntimeError> {
    let cmd = CommandInfo {
        shell: Some(shell),
        value: value.map(str::to_owned),
        arguments: strings(arguments),
    };
    mesos_launch(&image, &cmd)
}

fn launch(executable: &str, argv: &[&str]) -> Result<Launch, RuntimeError> {
    Ok(Launch {
        executable: executable.to_owned(),
        argv: strings(argv),
    })
}

fn shell(value: &str) -> Result<Launch, RuntimeError> {
    launch("/bin/sh", &["sh", "-c", value])
}

macro_rules! cell {
    ($name:ident: sh=$sh:literal, value=$value:expr, args=$args:expr, $image:expr => $expected:expr) => {
        #[test]
        fn $name() {
            assert_eq!(mesos($sh == 1, $value, $args, $image), $expected);
        }
    };
}

// Row: sh=0, no value, no arguments.
cell!(mesos_sh0_novalue_noargs_noimage_no_executable:
    sh=0, value=None, args=NO_A, no_image() => Err(RuntimeError::NoExecutable));
cell!(mesos_sh0_novalue_noargs_cmd_only_runs_cmd:
    sh=0, value=None, args=NO_A, cmd_only() => launch("/cmd", &["/cmd", "c1"]));
cell!(mesos_sh0_novalue_noargs_entrypoint_only_runs_entrypoint:
    sh=0, value=None, args=NO_A, entrypoint_only() => launch("/entry", &["/entry", "e1"]));
cell!(mesos_sh0_novalue_noargs_entrypoint_and_cmd_appends_cmd:
    sh=0, value=None, args=NO_A, entrypoint_and_cmd() =>
    launch("/entry", &["/entry", "e1", "/cmd", "c1"]));

// Row: sh=0, no value, arguments.
cell!(mesos_sh0_novalue_args_noimage_no_executable:
    sh=0, value=None, args=A, no_image() => Err(RuntimeError::NoExecutable));
cell!(mesos_sh0_novalue_args_cmd_only_replaces_cmd_tail:
    sh=0, value=None, args=A, cmd_only() => launch("/cmd", &["/cmd", "a1", "a2"]));
cell!(mesos_sh0_novalue_args_entrypoint_only_appends_args:
    sh=0, value=None, args=A, entrypoint_only() => launch("/entry", &["/entry", "e1", "a1", "a2"]));
cell!(mesos_sh0_novalue_args_entrypoint_and_cmd_drops_cmd:
    sh=0, value=None, args=A, entrypoint_and_cmd() =>
    launch("/entry", &["/entry", "e1", "a1", "a2"]));

// Row: sh=0, value, no arguments: the image is ignored, argv is empty (verbatim).
cell!(mesos_sh0_value_noargs_noimage_execs_value:
    sh=0, value=Some("/bin/true"), args=NO_A, no_image() => launch("/bin/true", &[]));
cell!(mesos_sh0_value_noargs_cmd_only_ignores_image:
    sh=0, value=Some("/bin/true"), args=NO_A, cmd_only() => launch("/bin/true", &[]));
cell!(mesos_sh0_value_noargs_entrypoint_only_ignores_image:
    sh=0, value=Some("/bin/true"), args=NO_A, entrypoint_only() => launch("/bin/true", &[]));
cell!(mesos_sh0_value_noargs_entrypoint_and_cmd_ignores_image:
    sh=0, value=Some("/bin/true"), args=NO_A, entrypoint_and_cmd() => launch("/bin/true", &[]));

// Row: sh=0, value, arguments: argv = arguments verbatim (argv[0] included).
cell!(mesos_sh0_value_args_noimage_argv_is_args:
    sh=0, value=Some("/bin/echo"), args=A, no_image() => launch("/bin/echo", &["a1", "a2"]));
cell!(mesos_sh0_value_args_cmd_only_ignores_image:
    sh=0, value=Some("/bin/echo"), args=A, cmd_only() => launch("/bin/echo", &["a1", "a2"]));
cell!(mesos_sh0_value_args_entrypoint_only_ignores_image:
    sh=0, value=Some("/bin/echo"), args=A, entrypoint_only() =>
    launch("/bin/echo", &["a1", "a2"]));
cell!(mesos_sh0_value_args_entrypoint_and_cmd_ignores_image:
    sh=0, value=Some("/bin/echo"), args=A, entrypoint_and_cmd() =>
    launch("/bin/echo", &["a1", "a2"]));

// Row: sh=1, no value, no arguments.
cell!(mesos_sh1_novalue_noargs_noimage_shell_without_value:
    sh=1, value=None, args=NO_A, no_image() => Err(RuntimeError::ShellWithoutValue));
cell!(mesos_sh1_novalue_noargs_cmd_only_shell_without_value:
    sh=1, value=None, args=NO_A, cmd_only() => Err(RuntimeError::ShellWithoutValue));
cell!(mesos_sh1_novalue_noargs_entrypoint_only_shell_without_value:
    sh=1, value=None, args=NO_A, entrypoint_only() => Err(RuntimeError::ShellWithoutValue));
cell!(mesos_sh1_novalue_noargs_entrypoint_and_cmd_shell_without_value:
    sh=1, value=None, args=NO_A, entrypoint_and_cmd() => Err(RuntimeError::ShellWithoutValue));

// Row: sh=1, no value, arguments: still an error, the arguments do not help.
cell!(mesos_sh1_novalue_args_noimage_shell_without_value:
    sh=1, value=None, args=A, no_image() => Err(RuntimeError::ShellWithoutValue));
cell!(mesos_sh1_novalue_args_cmd_only_shell_without_value:
    sh=1, value=None, args=A, cmd_only() => Err(RuntimeError::ShellWithoutValue));
cell!(mesos_sh1_novalue_args_entrypoint_only_shell_without_value:
    sh=1, value=None, args=A, entrypoint_only() => Err(RuntimeError::ShellWithoutValue));
cell!(mesos_sh1_novalue_args_entrypoint_and_cmd_shell_without_value:
    sh=1, value=None, args=A, entrypoint_and_cmd() => Err(RuntimeError::ShellWithoutValue));

// Row: sh=1, value, no arguments.
cell!(mesos_sh1_value_noargs_noimage_runs_shell:
    sh=1, value=Some("echo hi"), args=NO_A, no_image() => shell("echo hi"));
cell!(mesos_sh1_value_noargs_cmd_only_ignores_image:
    sh=1, value=Some("echo hi"), args=NO_A, cmd_only() => shell("echo hi"));
cell!(mesos_sh1_value_noargs_entrypoint_only_ignores_image:
    sh=1, value=Some("echo hi"), args=NO_A, entrypoint_only() => shell("echo hi"));
cell!(mesos_sh1_value_noargs_entrypoint_and_cmd_ignores_image:
    sh=1, value=Some("echo hi"), args=NO_A, entrypoint_and_cmd() => shell("echo hi"));

// Row: sh=1, value, arguments: the arguments are ignored too.
cell!(mesos_sh1_value_args_noimage_ignores_args:
    sh=1, value=Some("echo hi"), args=A, no_image() => shell("echo hi"));
cell!(mesos_sh1_value_args_cmd_only_ignores_image_and_args:
    sh=1, value=Some("echo hi"), args=A, cmd_only() => shell("echo hi"));
cell!(mesos_sh1_value_args_entrypoint_only_ignores_image_and_args:
    sh=1, value=Some("echo hi"), args=A, entrypoint_only() => shell("echo hi"));
cell!(mesos_sh1_value_args_entrypoint_and_cmd_ignores_image_and_args:
    sh=1, value=Some("echo hi"), args=A, entrypoint_and_cmd() => shell("echo hi"));

#[test]
fn mesos_shell_defaults_to_true() {
    let no_value = CommandInfo::default();
    assert!(no_value.shell());
    assert_eq!(
        mesos_launch(&entrypoint_and_cmd(), &no_value),
        Err(RuntimeError::ShellWithoutValue)
    );
    let value = CommandInfo {
        value: Some("exit 0".to_owned()),
        ..CommandInfo::default()
    };
    assert_eq!(mesos_launch(&no_image(), &value), shell("exit 0"));
}

#[test]
fn mesos_empty_value_is_still_a_value() {
    // proto2 presence: `value: ""` is set, so the image is not consulted.
    assert_eq!(
        mesos(false, Some(""), NO_A, entrypoint_and_cmd()),
        launch("", &[])
    );
}

#[test]
fn mesos_single_element_cmd_with_args_runs_sh_dash_c() {
    // ucr-spec.md §8.8: image `Cmd=["sh"]`, shell=false, arguments `-c "echo ..."`.
    assert_eq!(
        mesos(false, None, &["-c", "echo hello"], image(&[], &["sh"])),
        launch("sh", &["sh", "-c", "echo hello"])
    );
}

#[test]
fn mesos_entrypoint_of_one_empty_string_is_unset() {
    assert_eq!(
        mesos(false, None, NO_A, image(&[""], C)),
        launch("/cmd", &["/cmd", "c1"])
    );
    assert_eq!(
        mesos(false, None, NO_A, image(&[""], &[])),
        Err(RuntimeError::NoExecutable)
    );
}

#[test]
fn mesos_ignore_runtime_lets_only_command_info_decide() {
    let img = ImageRuntime::from_image_config(&json!({"config": {
        "Entrypoint": ["/entry"], "Cmd": ["c1"], "Env": ["IMAGE=1"], "WorkingDir": "/app",
        "User": "nobody",
    }}))
    .expect("valid config");
    let ignored = img.unless_ignored(true);
    assert_eq!(ignored, &ImageRuntime::default());
    assert_eq!(
        mesos(false, None, A, ignored.clone()),
        Err(RuntimeError::NoExecutable)
    );
    assert_eq!(
        mesos(false, Some("/bin/echo"), A, ignored.clone()),
        launch("/bin/echo", &["a1", "a2"])
    );
    assert_eq!(mesos_working_dir(ignored), None);
    assert_eq!(merge_env(ignored.env(), &[]), strings(&[PATH_ENTRY]));

    // Without the flag the image is used.
    let honoured = img.unless_ignored(false);
    assert_eq!(
        mesos(false, None, NO_A, honoured.clone()),
        launch("/entry", &["/entry", "c1"])
    );
    assert_eq!(mesos_working_dir(honoured), Some("/app"));
}

#[test]
fn mesos_working_dir_only_when_non_empty() {
    let mut img = no_image();
    assert_eq!(mesos_working_dir(&img), None);
    img.working_dir = Some(String::new());
    assert_eq!(mesos_working_dir(&img), None);
    img.working_dir = Some("/srv".to_owned());
    assert_eq!(mesos_working_dir(&img), Some("/srv"));
}

// ---------------------------------------------------------------------------------------
// CRI: every combination of command / args / Entrypoint / Cmd (containerd semantics).

const K_CMD: &[&str] = &["/cri", "k1"];
const K_ARGS: &[&str] = &["x1", "x2"];
const NONE: &[&str] = &[];

fn cri(image: ImageRuntime, command: &[&str], args: &[&str]) -> Result<Vec<String>, RuntimeError> {
    cri_argv(&image, &strings(command), &strings(args))
}

fn argv(items: &[&str]) -> Result<Vec<String>, RuntimeError> {
    Ok(strings(items))
}

macro_rules! cri_case {
    ($name:ident: $image:expr, command=$command:expr, args=$args:expr => $expected:expr) => {
        #[test]
        fn $name() {
            assert_eq!(cri($image, $command, $args), $expected);
        }
    };
}

// Neither command nor args: Entrypoint then Cmd.
cri_case!(cri_nocommand_noargs_noimage_no_command:
    no_image(), command=NONE, args=NONE => Err(RuntimeError::NoCommand));
cri_case!(cri_nocommand_noargs_cmd_only_runs_cmd:
    cmd_only(), command=NONE, args=NONE => argv(&["/cmd", "c1"]));
cri_case!(cri_nocommand_noargs_entrypoint_only_runs_entrypoint:
    entrypoint_only(), command=NONE, args=NONE => argv(&["/entry", "e1"]));
cri_case!(cri_nocommand_noargs_entrypoint_and_cmd_runs_both:
    entrypoint_and_cmd(), command=NONE, args=NONE => argv(&["/entry", "e1", "/cmd", "c1"]));

// Only args: they replace Cmd.
cri_case!(cri_nocommand_args_noimage_runs_args:
    no_image(), command=NONE, args=K_ARGS => argv(&["x1", "x2"]));
cri_case!(cri_nocommand_args_cmd_only_replaces_cmd:
    cmd_only(), command=NONE, args=K_ARGS => argv(&["x1", "x2"]));
cri_case!(cri_nocommand_args_entrypoint_only_appends_args:
    entrypoint_only(), command=NONE, args=K_ARGS => argv(&["/entry", "e1", "x1", "x2"]));
cri_case!(cri_nocommand_args_entrypoint_and_cmd_replaces_cmd:
    entrypoint_and_cmd(), command=NONE, args=K_ARGS => argv(&["/entry", "e1", "x1", "x2"]));

// Only command: it replaces Entrypoint and drops Cmd.
cri_case!(cri_command_noargs_noimage_runs_command:
    no_image(), command=K_CMD, args=NONE => argv(&["/cri", "k1"]));
cri_case!(cri_command_noargs_cmd_only_drops_cmd:
    cmd_only(), command=K_CMD, args=NONE => argv(&["/cri", "k1"]));
cri_case!(cri_command_noargs_entrypoint_only_replaces_entrypoint:
    entrypoint_only(), command=K_CMD, args=NONE => argv(&["/cri", "k1"]));
cri_case!(cri_command_noargs_entrypoint_and_cmd_drops_both:
    entrypoint_and_cmd(), command=K_CMD, args=NONE => argv(&["/cri", "k1"]));

// Both: the image is not consulted.
cri_case!(cri_command_args_noimage_runs_both:
    no_image(), command=K_CMD, args=K_ARGS => argv(&["/cri", "k1", "x1", "x2"]));
cri_case!(cri_command_args_cmd_only_ignores_image:
    cmd_only(), command=K_CMD, args=K_ARGS => argv(&["/cri", "k1", "x1", "x2"]));
cri_case!(cri_command_args_entrypoint_only_ignores_image:
    entrypoint_only(), command=K_CMD, args=K_ARGS => argv(&["/cri", "k1", "x1", "x2"]));
cri_case!(cri_command_args_entrypoint_and_cmd_ignores_image:
    entrypoint_and_cmd(), command=K_CMD, args=K_ARGS => argv(&["/cri", "k1", "x1", "x2"]));

// Entrypoint `[""]` is "no entrypoint" (containerd checks for it explicitly).
cri_case!(cri_nocommand_noargs_empty_string_entrypoint_runs_cmd:
    image(&[""], C), command=NONE, args=NONE => argv(&["/cmd", "c1"]));
cri_case!(cri_nocommand_noargs_empty_string_entrypoint_alone_no_command:
    image(&[""], &[]), command=NONE, args=NONE => Err(RuntimeError::NoCommand));
cri_case!(cri_nocommand_args_empty_string_entrypoint_runs_args:
    image(&[""], C), command=NONE, args=K_ARGS => argv(&["x1", "x2"]));

#[test]
fn cri_working_dir_request_then_image_then_root() {
    let mut img = no_image();
    assert_eq!(cri_working_dir(&img, ""), "/");
    img.working_dir = Some(String::new());
    assert_eq!(cri_working_dir(&img, ""), "/");
    img.working_dir = Some("/app".to_owned());
    assert_eq!(cri_working_dir(&img, ""), "/app");
    assert_eq!(cri_working_dir(&img, "/override"), "/override");
}

#[test]
fn cri_user_request_then_image() {
    let mut img = no_image();
    assert_eq!(cri_user(&img, None), None);
    assert_eq!(cri_user(&img, Some("")), None);
    img.user = Some(String::new());
    assert_eq!(cri_user(&img, None), None);
    img.user = Some("nginx:nginx".to_owned());
    assert_eq!(cri_user(&img, None), Some("nginx:nginx"));
    assert_eq!(cri_user(&img, Some("")), Some("nginx:nginx"));
    assert_eq!(cri_user(&img, Some("1000:1000")), Some("1000:1000"));
}

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
        assert_eq!(cri_argv(&img, &[], &[]), Ok(strings(&["sh"])), "{config}");
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
