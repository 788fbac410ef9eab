//! LAUNCH_CONTAINER with a parent: a nested container outside a session. ucr runs it as
//! it runs a session (a DEBUG-style process in the root container's namespaces, cgroups
//! and filesystem, see `sessions`), but its life is not a connection's: it runs until it
//! exits or KILL_CONTAINER ends it, and its output goes to `stdout` and `stderr` in its
//! own sandbox, `<parent's sandbox>/containers/<id>/`, Mesos's layout. WAIT, KILL,
//! REMOVE, GET_CONTAINERS and the attach calls treat it as a session.
//!
//! The deprecated LAUNCH/WAIT/KILL/REMOVE_NESTED_CONTAINER calls do the same as the
//! `*_CONTAINER` ones with a nested id, as the agent does.
//!
//! What Mesos gives such a container and ucr does not yet: a cgroup of its own under
//! its parent's (so resources and limits are refused, 400), a mount namespace and an
//! image of its own (an image is 501, see `sessions::Debug`).

use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use http::StatusCode;

use super::calls::{Agent, Answer};
use super::codec::Refused;
use super::sessions::{self, Debug, Sink};
use super::wire::v1::agent::{call, response, Call};
use super::wire::v1::ContainerId;

/// The deprecated `*_NESTED_CONTAINER` calls; `None` for the others.
pub async fn deprecated(agent: &Agent, call: &Call) -> Option<Result<Answer, Refused>> {
    use call::Type;
    let missing = |what: &str| {
        Refused(
            StatusCode::BAD_REQUEST,
            format!("Failed to validate agent::Call: Expecting '{what}' to be present"),
        )
    };
    let nested = |id: &ContainerId, what: &str| {
        if id.parent.is_some() {
            Ok(())
        } else {
            Err(missing(&format!("{what}.container_id.parent")))
        }
    };
    let ok = |status| Ok((status, None));
    Some(match call.r#type() {
        Type::LaunchNestedContainer => match &call.launch_nested_container {
            None => Err(missing("launch_nested_container")),
            Some(l) => match nested(&l.container_id, "launch_nested_container") {
                Err(e) => Err(e),
                Ok(()) => {
                    let launch = call::LaunchContainer {
                        container_id: l.container_id.clone(),
                        command: l.command.clone(),
                        container: l.container.clone(),
                        ..Default::default()
                    };
                    launch_answer(agent, &launch).await
                }
            },
        },
        Type::WaitNestedContainer => match &call.wait_nested_container {
            None => Err(missing("wait_nested_container")),
            Some(w) => match nested(&w.container_id, "wait_nested_container") {
                Err(e) => Err(e),
                Ok(()) => sessions::wait(agent, &w.container_id).await.map(|r| {
                    let w = r.wait_container.unwrap_or_default();
                    let answer = super::wire::v1::agent::Response {
                        r#type: Some(response::Type::WaitNestedContainer as i32),
                        wait_nested_container: Some(response::WaitNestedContainer {
                            exit_status: w.exit_status,
                            message: w.message,
                        }),
                        ..Default::default()
                    };
                    (StatusCode::OK, Some(answer))
                }),
            },
        },
        Type::KillNestedContainer => match &call.kill_nested_container {
            None => Err(missing("kill_nested_container")),
            Some(k) => match nested(&k.container_id, "kill_nested_container") {
                Err(e) => Err(e),
                Ok(()) => {
                    let signal = k.signal.unwrap_or(libc::SIGKILL);
                    match sessions::kill(agent, &k.container_id, signal).await {
                        Ok(()) => ok(StatusCode::OK),
                        Err(e) => Err(e),
                    }
                }
            },
        },
        Type::RemoveNestedContainer => match &call.remove_nested_container {
            None => Err(missing("remove_nested_container")),
            Some(r) => match nested(&r.container_id, "remove_nested_container") {
                Err(e) => Err(e),
                Ok(()) => sessions::remove(agent, &r.container_id).map(|()| (StatusCode::OK, None)),
            },
        },
        _ => return None,
    })
}

async fn launch_answer(agent: &Agent, launch: &call::LaunchContainer) -> Result<Answer, Refused> {
    Ok((self::launch(agent, launch).await?, None))
}

/// 200 once it runs, 202 when the id exists, 400 for an unknown or stopped parent.
pub async fn launch(agent: &Agent, launch: &call::LaunchContainer) -> Result<StatusCode, Refused> {
    let levels = sessions::levels(&launch.container_id)?;
    if !launch.resources.is_empty() || !launch.limits.is_empty() {
        return Err(Refused(
            StatusCode::BAD_REQUEST,
            "a nested container shares its parent's resources in ucr: leave out \
             `resources` and `limits`"
                .into(),
        ));
    }
    let what = Debug::new(launch.container.as_ref(), launch.command.as_ref())?;
    let sandbox = sandbox(&agent.sandboxes, &levels);
    let (stdout, stderr) = open_output(&agent.sandboxes, &levels).map_err(|e| {
        Refused(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("Failed to create the sandbox {}: {e}", sandbox.display()),
        )
    })?;
    let sink = Sink::Files {
        stdout: tokio::fs::File::from_std(stdout),
        stderr: tokio::fs::File::from_std(stderr),
    };
    if sessions::start(agent, &launch.container_id, &levels, what, sink).await? {
        Ok(StatusCode::OK)
    } else {
        Ok(StatusCode::ACCEPTED)
    }
}

/// `<sandboxes>/<root>/containers/<level>/…/containers/<leaf>`.
pub fn sandbox(sandboxes: &Path, levels: &[&str]) -> PathBuf {
    let mut dir = sandboxes.join(levels[0]);
    for level in &levels[1..] {
        dir = dir.join("containers").join(level);
    }
    dir
}

/// Creates the sandbox and opens its `stdout` and `stderr` for appending. Every
/// directory on the way below the root's sandbox must be a directory, not a symlink,
/// and the files are opened without following one: a sandbox may be visible to the
/// container, which must not steer the daemon's writes elsewhere on the host.
fn open_output(
    sandboxes: &Path,
    levels: &[&str],
) -> std::io::Result<(std::fs::File, std::fs::File)> {
    let mut dir = sandboxes.join(levels[0]);
    if !std::fs::symlink_metadata(&dir)?.is_dir() {
        return Err(std::io::Error::other(
            "the parent's sandbox is not a directory",
        ));
    }
    for level in &levels[1..] {
        for part in ["containers", level] {
            dir = dir.join(part);
            match std::fs::symlink_metadata(&dir) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    return Err(std::io::Error::other(format!(
                        "{} is not a directory",
                        dir.display()
                    )))
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    crate::perm::private_dir(&dir)?
                }
                Err(e) => return Err(e),
            }
        }
    }
    let open = |name: &str| {
        std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(dir.join(name))
    };
    Ok((open("stdout")?, open("stderr")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sandboxes_nest_as_mesos_lays_them_out_and_refuse_symlinks() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path();
        assert_eq!(
            sandbox(root, &["p", "a", "b"]),
            root.join("p/containers/a/containers/b")
        );
        // No parent sandbox: refused, nothing made.
        assert!(open_output(root, &["p", "a"]).is_err());
        std::fs::create_dir(root.join("p")).expect("mkdir");
        let (mut out, _) = open_output(root, &["p", "a"]).expect("open");
        std::io::Write::write_all(&mut out, b"x").expect("write");
        assert_eq!(
            std::fs::read(root.join("p/containers/a/stdout")).expect("read"),
            b"x"
        );
        // A symlink planted on the way, or as the file, is not followed.
        let elsewhere = root.join("elsewhere");
        std::fs::create_dir(&elsewhere).expect("mkdir");
        std::os::unix::fs::symlink(&elsewhere, root.join("p/containers/b")).expect("symlink");
        assert!(open_output(root, &["p", "b"]).is_err());
        std::fs::create_dir(root.join("p/containers/c")).expect("mkdir");
        std::os::unix::fs::symlink(elsewhere.join("f"), root.join("p/containers/c/stdout"))
            .expect("symlink");
        assert!(open_output(root, &["p", "c"]).is_err());
        assert!(std::fs::read_dir(&elsewhere).expect("ls").next().is_none());
    }
}
