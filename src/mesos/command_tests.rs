use super::*;
use crate::isolators::docker::runtime::fixtures::*;
use crate::isolators::docker::runtime::{merge_env, ImageRuntime, RuntimeError};

const PATH_ENTRY: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

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
    let img = ImageRuntime::from_image_config(&serde_json::json!({"config": {
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
    img = parse_config(serde_json::json!({"WorkingDir": ""}));
    assert_eq!(mesos_working_dir(&img), None);
    img = parse_config(serde_json::json!({"WorkingDir": "/srv"}));
    assert_eq!(mesos_working_dir(&img), Some("/srv"));
}

// ---------------------------------------------------------------------------------------
// The door's entry point: what the containerizer gets.

#[test]
fn process_applies_the_table_the_working_dir_and_the_env_rule() {
    let img = parse_config(serde_json::json!({
        "Entrypoint": ["/entry"], "Cmd": ["c1"], "Env": ["IMAGE=1"], "WorkingDir": "/app",
        "User": "nobody",
    }));
    let cmd = CommandInfo {
        shell: Some(false),
        value: None,
        arguments: strings(A),
    };
    let env = vec![("K".to_owned(), "v".to_owned())];
    let p = process(&img, &cmd, env.clone(), None, "/mnt/mesos/sandbox", false).expect("ok");
    assert_eq!(p.argv, strings(&["/entry", "a1", "a2"]));
    assert_eq!(p.executable.as_deref(), Some("/entry"));
    assert_eq!(p.cwd, "/app");
    assert_eq!((p.env, p.image_env, p.user), (env, true, None));

    // --docker_ignore_runtime: only the CommandInfo, the sandbox, no image Env.
    let shell = CommandInfo {
        shell: None,
        value: Some("echo hi".into()),
        arguments: Vec::new(),
    };
    let p = process(
        &img,
        &shell,
        Vec::new(),
        Some("app".into()),
        "/mnt/mesos/sandbox",
        true,
    )
    .expect("ok");
    assert_eq!(p.argv, strings(&["sh", "-c", "echo hi"]));
    assert_eq!(p.executable.as_deref(), Some(SHELL));
    assert_eq!(p.cwd, "/mnt/mesos/sandbox");
    assert!(!p.image_env);
    assert_eq!(p.user.as_deref(), Some("app"));

    // A value without arguments: the value is argv[0] too.
    let bare = CommandInfo {
        shell: Some(false),
        value: Some("/bin/true".into()),
        arguments: Vec::new(),
    };
    let p = process(&no_image(), &bare, Vec::new(), None, "/sb", false).expect("ok");
    assert_eq!(p.argv, strings(&["/bin/true"]));
    assert_eq!(
        process(
            &no_image(),
            &CommandInfo::default(),
            Vec::new(),
            None,
            "/sb",
            false
        ),
        Err(RuntimeError::ShellWithoutValue)
    );
}
