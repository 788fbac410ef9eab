use super::*;
use crate::isolators::docker::runtime::fixtures::*;
use crate::isolators::docker::runtime::{ImageRuntime, RuntimeError};

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
    img = parse_config(serde_json::json!({"WorkingDir": ""}));
    assert_eq!(cri_working_dir(&img, ""), "/");
    img = parse_config(serde_json::json!({"WorkingDir": "/app"}));
    assert_eq!(cri_working_dir(&img, ""), "/app");
    assert_eq!(cri_working_dir(&img, "/override"), "/override");
}

#[test]
fn cri_user_request_then_image() {
    let mut img = no_image();
    assert_eq!(cri_user(&img, None), None);
    assert_eq!(cri_user(&img, Some("")), None);
    img = parse_config(serde_json::json!({"User": ""}));
    assert_eq!(cri_user(&img, None), None);
    img = parse_config(serde_json::json!({"User": "nginx:nginx"}));
    assert_eq!(cri_user(&img, None), Some("nginx:nginx"));
    assert_eq!(cri_user(&img, Some("")), Some("nginx:nginx"));
    assert_eq!(cri_user(&img, Some("1000:1000")), Some("1000:1000"));
}
