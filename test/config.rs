//! Configuration as an operator meets it, through the real binary: `ucr config default`
//! round-trips through `--config`, drop-ins merge in order, an unknown key is an error
//! naming it and its file, and the CRI socket belongs to root and `--listen-group` alone.

mod common;

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::process::Command;

use common::*;

fn ucr(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ucr"))
        .args(args)
        // The environment is a config source too; none of it here.
        .env_clear()
        .output()
        .expect("run ucr");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn config_default_round_trips_and_drop_ins_merge_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ok, default, err) = ucr(&["config", "default"]);
    assert!(ok, "{err}");
    assert!(default.contains("\nroot = \"/var/lib/ucr\"\n"), "{default}");
    assert!(
        default.contains("# Persistent state directory"),
        "commented: {default}"
    );
    let file = dir.path().join("config.toml");
    std::fs::write(&file, &default).expect("write");
    let file = file.to_str().expect("utf-8");
    let (ok, from_file, err) = ucr(&["config", "check", "--config", file, "--config-dir", ""]);
    assert!(ok, "{err}");
    let (ok, without, err) = ucr(&["config", "check", "--config", "", "--config-dir", ""]);
    assert!(ok, "{err}");
    assert_eq!(from_file, without, "the default file means no file");
    assert!(without.contains("work_dir = /var/lib/ucr"), "{without}");

    // Drop-ins over the file, in lexical order; the command line over both.
    let drop_ins = dir.path().join("config.d");
    std::fs::create_dir(&drop_ins).expect("mkdir");
    std::fs::write(drop_ins.join("50-b.toml"), "log_level = \"debug\"\n").expect("w");
    std::fs::write(
        drop_ins.join("10-a.toml"),
        "log-level = \"warn\"\nroot = \"/srv/ucr\"\n",
    )
    .expect("w");
    let d = drop_ins.to_str().expect("utf-8");
    let (ok, merged, err) = ucr(&["config", "check", "--config", file, "--config-dir", d]);
    assert!(ok, "{err}");
    assert!(merged.contains("logging_level = debug"), "{merged}");
    assert!(merged.contains("work_dir = /srv/ucr"), "{merged}");
    let (_, flagged, _) = ucr(&[
        "config",
        "check",
        "--config",
        file,
        "--config-dir",
        d,
        "--log-level",
        "error",
    ]);
    assert!(flagged.contains("logging_level = error"), "{flagged}");

    // A typo is an error naming the key and the file; nothing starts.
    std::fs::write(drop_ins.join("70-typo.toml"), "pids_limt = 5\n").expect("w");
    let (ok, _, err) = ucr(&["config", "check", "--config", file, "--config-dir", d]);
    assert!(!ok);
    assert!(
        err.contains("pids_limt") && err.contains("70-typo.toml"),
        "{err}"
    );
    let (ok, _, err) = ucr(&["serve", "--config", file, "--config-dir", d]);
    assert!(!ok && err.contains("pids_limt"), "{err}");
}

#[test]
fn the_cri_socket_is_root_and_the_listen_groups_alone() {
    require_root!("the_cri_socket_is_root_and_the_listen_groups_alone");
    // Debian's `nogroup` (65534), `nobody`'s group.
    let d = Daemon::start(&["--listen-group", "nogroup"]);
    let meta = std::fs::metadata(&d.socket).expect("socket");
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    assert_eq!((meta.uid(), meta.gid()), (0, 65534));
    // Others may traverse to it; only the group may connect.
    std::fs::set_permissions(d.dir.path(), std::fs::Permissions::from_mode(0o711)).expect("chmod");
    let prune_as = |gid: &str| {
        Command::new("setpriv")
            .args([
                "--reuid=65534",
                &format!("--regid={gid}"),
                "--clear-groups",
                "--",
            ])
            .arg(env!("CARGO_BIN_EXE_ucr"))
            .args(["prune", "--listen"])
            .arg(&d.socket)
            .output()
            .expect("setpriv")
    };
    let member = prune_as("65534");
    assert!(
        member.status.success(),
        "{}",
        String::from_utf8_lossy(&member.stderr)
    );
    let stranger = prune_as("65533");
    assert!(
        !stranger.status.success(),
        "a user outside the group connected"
    );
    // An unknown group stops the daemon before it serves, naming the group.
    let (ok, _, err) = ucr(&[
        "config",
        "check",
        "--config",
        "",
        "--config-dir",
        "",
        "--listen-group",
        "no-such-group",
    ]);
    assert!(!ok && err.contains("no-such-group"), "{err}");
}
