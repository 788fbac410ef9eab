//! A standalone Mesos container's sandbox against the real daemon, with JSON and protobuf
//! bodies: its `stdout`/`stderr` files read through READ_FILE and listed by LIST_FILES,
//! symlink escapes planted by the container refused, volumes (a private 1777 `/tmp`, a
//! read-only host path, a SANDBOX_PATH source), rlimits seen from inside, a `nobody`
//! launch writing its own sandbox, and the `disk` resource as the disk limit. Needs
//! root (the daemon); says so and skips otherwise.

mod common;

use std::os::unix::fs::MetadataExt;

use base64::Engine;
use common::*;
use prost::Message;
use ucr::mesos::wire::v1::agent::{call, response, Call, Response};

const DEBIAN: &str = "127.0.0.1:5000/ucr-test/debian:bookworm";

/// A daemon whose Mesos door listens on a port picked for it; the door's base URL.
fn daemon() -> (Daemon, String) {
    daemon_with(&[])
}

fn daemon_with(args: &[&str]) -> (Daemon, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let listen = format!("127.0.0.1:{port}");
    let mut all = vec!["--mesos-listen", &listen];
    all.extend(args);
    let d = Daemon::start(&all);
    (d, format!("http://{listen}"))
}

async fn post(base: &str, content_type: &str, accept: &str, body: Vec<u8>) -> (u16, Vec<u8>) {
    let resp = reqwest::Client::new()
        .post(format!("{base}/api/v1"))
        .header("Content-Type", content_type)
        .header("Accept", accept)
        .body(body)
        .send()
        .await
        .expect("request");
    let status = resp.status().as_u16();
    (status, resp.bytes().await.expect("body").to_vec())
}

/// A JSON call: the status, and the body as JSON (or as text, when it is not JSON).
async fn json_call(base: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
    let (status, bytes) = post(
        base,
        "application/json",
        "application/json",
        body.to_string().into(),
    )
    .await;
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&bytes).into()));
    (status, value)
}

async fn proto_call(base: &str, call: &Call) -> (u16, Option<Response>) {
    let (status, bytes) = post(
        base,
        "application/x-protobuf",
        "application/x-protobuf",
        call.encode_to_vec(),
    )
    .await;
    (status, Response::decode(&bytes[..]).ok())
}

fn launch(
    id: &str,
    image: &str,
    command: serde_json::Value,
    extra: serde_json::Value,
) -> serde_json::Value {
    let mut container = serde_json::json!({
        "type": "MESOS",
        "mesos": {"image": {"type": "DOCKER", "docker": {"name": image}}}
    });
    if let (Some(c), Some(e)) = (container.as_object_mut(), extra.as_object()) {
        c.extend(e.clone());
    }
    serde_json::json!({
        "type": "LAUNCH_CONTAINER",
        "launch_container": {
            "container_id": {"value": id},
            "command": command,
            "container": container,
        }
    })
}

fn id_call(t: &str, id: &str) -> serde_json::Value {
    serde_json::json!({"type": t, t.to_ascii_lowercase(): {"container_id": {"value": id}}})
}

async fn wait(base: &str, id: &str) -> i64 {
    let (status, body) = json_call(base, &id_call("WAIT_CONTAINER", id)).await;
    assert_eq!(status, 200, "{body}");
    body["wait_container"]["exit_status"]
        .as_i64()
        .expect("exit_status")
}

/// READ_FILE in JSON: status, size, data.
async fn read(
    base: &str,
    path: &str,
    offset: u64,
    length: Option<u64>,
) -> (u16, u64, Vec<u8>, String) {
    let mut payload = serde_json::json!({"path": path, "offset": offset});
    if let Some(l) = length {
        payload["length"] = l.into();
    }
    let (status, body) = json_call(
        base,
        &serde_json::json!({"type": "READ_FILE", "read_file": payload}),
    )
    .await;
    let size = body["read_file"]["size"].as_u64().unwrap_or(0);
    let data = base64::engine::general_purpose::STANDARD
        .decode(body["read_file"]["data"].as_str().unwrap_or(""))
        .expect("base64");
    (status, size, data, body.to_string())
}

async fn list(base: &str, path: &str) -> (u16, serde_json::Value) {
    json_call(
        base,
        &serde_json::json!({"type": "LIST_FILES", "list_files": {"path": path}}),
    )
    .await
}

fn text(data: &[u8]) -> String {
    String::from_utf8_lossy(data).into_owned()
}

#[tokio::test]
async fn output_files_are_read_and_listed_in_json_and_protobuf() {
    require_root!("output_files_are_read_and_listed_in_json_and_protobuf");
    let (d, base) = daemon();

    let (status, body) = json_call(&base, &serde_json::json!({"type": "GET_FLAGS"})).await;
    assert_eq!(status, 200);
    assert!(
        body["get_flags"]["flags"]
            .as_array()
            .expect("flags")
            .iter()
            .any(|f| f["name"] == "sandbox_directory" && f["value"] == "/mnt/mesos/sandbox"),
        "{body}"
    );

    let script = r#"echo out; echo err >&2; echo "sb=$MESOS_SANDBOX"; echo "pwd=$(pwd)"; printf 'tail\000x'"#;
    let (status, body) = json_call(
        &base,
        &launch(
            "talker",
            common::pods::BUSYBOX,
            serde_json::json!({"value": script}),
            serde_json::json!({}),
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(wait(&base, "talker").await, 0);

    let stdout = b"out\nsb=/mnt/mesos/sandbox\npwd=/mnt/mesos/sandbox\ntail\0x";
    let (status, size, data, body) = read(&base, "/containers/talker/stdout", 0, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((size, text(&data)), (stdout.len() as u64, text(stdout)));
    // Raw bytes on disk, as the process wrote them: no CRI framing.
    let on_disk = std::fs::read(d.root.join("mesos/sandboxes/talker/stdout")).expect("stdout");
    assert_eq!(on_disk, stdout);
    let (status, _, data, _) = read(&base, "/containers/talker/stderr", 0, None).await;
    assert_eq!((status, text(&data)), (200, "err\n".to_string()));
    // offset and length; past the end, nothing but the size.
    let (_, size, data, _) = read(&base, "/containers/talker/stdout", 4, Some(3)).await;
    assert_eq!(
        (size, text(&data)),
        (stdout.len() as u64, "sb=".to_string())
    );
    let (status, size, data, _) = read(&base, "/containers/talker/stdout", 1000, None).await;
    assert_eq!((status, size, data.len()), (200, stdout.len() as u64, 0));

    // The same in protobuf.
    let (status, resp) = proto_call(
        &base,
        &Call {
            r#type: Some(call::Type::ReadFile as i32),
            read_file: Some(call::ReadFile {
                path: "/containers/talker/stdout".into(),
                offset: 0,
                length: Some(3),
            }),
            ..Default::default()
        },
    )
    .await;
    let resp = resp.expect("a Response");
    assert_eq!((status, resp.r#type()), (200, response::Type::ReadFile));
    let r = resp.read_file.expect("read_file");
    assert_eq!(
        (r.size, r.data.as_slice()),
        (stdout.len() as u64, &b"out"[..])
    );

    let (status, body) = list(&base, "/containers/talker").await;
    assert_eq!(status, 200, "{body}");
    let infos = body["list_files"]["file_infos"]
        .as_array()
        .expect("file_infos");
    let paths: Vec<&str> = infos.iter().filter_map(|i| i["path"].as_str()).collect();
    assert_eq!(
        paths,
        ["/containers/talker/stderr", "/containers/talker/stdout"],
        "{body}"
    );
    let out = &infos[1];
    assert_eq!(out["size"], stdout.len() as u64, "{out}");
    assert_eq!(out["nlink"], 1);
    assert_eq!(out["uid"], "root");
    assert_eq!(
        out["mode"].as_u64().map(|m| m & 0o170000),
        Some(0o100000),
        "{out}"
    );
    assert!(out["mtime"]["nanoseconds"].as_i64().unwrap_or(0) > 1_700_000_000_000_000_000);
    let (status, resp) = proto_call(
        &base,
        &Call {
            r#type: Some(call::Type::ListFiles as i32),
            list_files: Some(call::ListFiles {
                path: "/containers/talker/".into(),
            }),
            ..Default::default()
        },
    )
    .await;
    let files = resp.and_then(|r| r.list_files).expect("list_files");
    assert_eq!(status, 200);
    assert_eq!(files.file_infos.len(), 2);

    // 404: no such container, no such file; 400: malformed paths, a directory read.
    assert_eq!(list(&base, "/containers/nobody-here").await.0, 404);
    assert_eq!(read(&base, "/containers/talker/nope", 0, None).await.0, 404);
    assert_eq!(
        read(&base, "/containers/talker/stdout/x", 0, None).await.0,
        404
    );
    assert_eq!(list(&base, "/slave/log").await.0, 404);
    for bad in [
        "/containers/talker/../talker",
        "containers/talker",
        "/containers/",
    ] {
        let (status, body) = list(&base, bad).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    let (status, _, _, body) = read(&base, "/containers/talker", 0, None).await;
    assert_eq!(status, 400, "{body}");
    let long = format!("/containers/talker/{}", "x".repeat(5000));
    assert_eq!(read(&base, &long, 0, None).await.0, 400);
    assert_eq!(
        read(&base, "/containers/talker/a\u{0}b", 0, None).await.0,
        400
    );

    // A running container with a `disk` resource: its disk limit in GET_CONTAINERS.
    let (status, body) = json_call(
        &base,
        &serde_json::json!({
            "type": "LAUNCH_CONTAINER",
            "launch_container": {
                "container_id": {"value": "disky"},
                "command": {"value": "sleep 1000"},
                "container": {"type": "MESOS", "mesos": {"image": {"type": "DOCKER", "docker": {"name": common::pods::BUSYBOX}}}},
                "resources": [{"name": "disk", "type": "SCALAR", "scalar": {"value": 10}}]
            }
        }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (_, body) = json_call(
        &base,
        &serde_json::json!({"type": "GET_CONTAINERS", "get_containers": {"show_standalone": true}}),
    )
    .await;
    let disky = body["get_containers"]["containers"]
        .as_array()
        .expect("containers")
        .iter()
        .find(|c| c["container_id"]["value"] == "disky")
        .expect("listed")
        .clone();
    assert_eq!(
        disky["resource_statistics"]["disk_limit_bytes"],
        10u64 << 20,
        "{disky}"
    );
    assert_eq!(
        json_call(&base, &id_call("KILL_CONTAINER", "disky"))
            .await
            .0,
        200
    );
    assert_eq!(wait(&base, "disky").await, 9);

    // Removed: the sandbox goes with it.
    for id in ["talker", "disky"] {
        assert_eq!(
            json_call(&base, &id_call("REMOVE_CONTAINER", id)).await.0,
            200
        );
    }
    assert_eq!(list(&base, "/containers/talker").await.0, 404);
    assert!(!d.root.join("mesos/sandboxes/talker").exists());
    common::pods::assert_nothing_left(&d);
}

#[tokio::test]
async fn symlinks_planted_in_the_sandbox_cannot_reach_the_host() {
    require_root!("symlinks_planted_in_the_sandbox_cannot_reach_the_host");
    let (d, base) = daemon();
    // A host file with a known secret, and its host path handed to the container, which
    // points symlinks at it (and at the host's root and /etc/shadow).
    let secret_dir = tempfile::tempdir().expect("tempdir");
    let secret = secret_dir.path().join("secret");
    std::fs::write(&secret, "host-secret-7d1f").expect("secret");
    let script = format!(
        "cd $MESOS_SANDBOX && ln -s / escape && ln -s /etc/shadow shadow && \
         ln -s {secret} x && ln -s ../../../../../../../..{secret} up && \
         mkdir d && ln -s ../stdout d/ok && ln -s /proc/self/root proc && echo planted",
        secret = secret.display()
    );
    let (status, body) = json_call(
        &base,
        &launch(
            "planter",
            common::pods::BUSYBOX,
            serde_json::json!({"value": script}),
            serde_json::json!({}),
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(wait(&base, "planter").await, 0);

    for path in [
        "/containers/planter/escape/etc/shadow",
        "/containers/planter/escape/etc/hostname",
        format!("/containers/planter/escape{}", secret.display()).as_str(),
        "/containers/planter/shadow",
        "/containers/planter/x",
        "/containers/planter/up",
        "/containers/planter/proc/etc/shadow",
    ] {
        let (status, _, data, body) = read(&base, path, 0, None).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert!(data.is_empty(), "{path}");
        assert!(!body.contains("host-secret"), "{path}: {body}");
    }
    for path in [
        "/containers/planter/escape",
        "/containers/planter/escape/etc",
    ] {
        let (status, body) = list(&base, path).await;
        assert_eq!(status, 400, "{path}: {body}");
    }
    // A symlink that stays inside is followed, as Mesos allows.
    let (status, _, data, body) = read(&base, "/containers/planter/d/ok", 0, None).await;
    assert_eq!(
        (status, text(&data)),
        (200, "planted\n".to_string()),
        "{body}"
    );
    // The listing shows the symlinks as symlinks, not as what they point at.
    let (status, body) = list(&base, "/containers/planter").await;
    assert_eq!(status, 200, "{body}");
    for info in body["list_files"]["file_infos"].as_array().expect("infos") {
        let name = info["path"].as_str().unwrap_or_default();
        if ["escape", "shadow", "x", "up", "proc"]
            .iter()
            .any(|n| name.ends_with(&format!("/{n}")))
        {
            assert_eq!(
                info["mode"].as_u64().map(|m| m & 0o170000),
                Some(0o120000),
                "{info}"
            );
        }
    }
    assert_eq!(
        json_call(&base, &id_call("REMOVE_CONTAINER", "planter"))
            .await
            .0,
        200
    );
    assert_eq!(
        std::fs::read_to_string(&secret).expect("secret"),
        "host-secret-7d1f"
    );
    common::pods::assert_nothing_left(&d);
}

#[tokio::test]
async fn volumes_give_a_private_tmp_and_read_only_host_paths() {
    require_root!("volumes_give_a_private_tmp_and_read_only_host_paths");
    let (d, base) = daemon();
    let host = tempfile::tempdir().expect("tempdir");
    std::fs::write(host.path().join("given"), "from the host\n").expect("file");
    let script = "stat -c '%a %u' /tmp; echo hi > /tmp/f; cat /data/given; \
                  (echo no > /data/f) 2>/dev/null && echo wrote || echo read-only; \
                  (echo no > /ro/f) 2>/dev/null && echo wrote || echo read-only; \
                  echo c > /cache/c; ls $MESOS_SANDBOX";
    // Protobuf in, to show the volume messages decode field for field.
    let body = launch(
        "vols",
        common::pods::BUSYBOX,
        serde_json::json!({"value": script}),
        serde_json::json!({"volumes": [
            {"container_path": "/tmp", "host_path": "tmp", "mode": "RW"},
            {"container_path": "/data", "host_path": host.path().display().to_string(), "mode": "RO"},
            {"container_path": "/ro", "host_path": "ro", "mode": "RO"},
            {"container_path": "/cache", "mode": "RW",
             "source": {"type": "SANDBOX_PATH", "sandbox_path": {"type": "SELF", "path": "cache"}}}
        ]}),
    );
    let call: Call = serde_json::from_value(body).expect("a Call");
    let (status, _) = proto_call(&base, &call).await;
    assert_eq!(status, 200);
    assert_eq!(wait(&base, "vols").await, 0);
    let (_, _, out, _) = read(&base, "/containers/vols/stdout", 0, None).await;
    let out = text(&out);
    let mut lines = out.lines();
    assert_eq!(
        lines.next(),
        Some("1777 0"),
        "a private /tmp like the image's: {out}"
    );
    assert_eq!(lines.next(), Some("from the host"), "{out}");
    assert_eq!(lines.next(), Some("read-only"), "the RO host path: {out}");
    assert_eq!(
        lines.next(),
        Some("read-only"),
        "the RO sandbox volume: {out}"
    );
    let rest: Vec<&str> = lines.collect();
    for name in ["cache", "ro", "stderr", "stdout", "tmp"] {
        assert!(rest.contains(&name), "{name} in the sandbox: {out}");
    }
    // What the container wrote in its volumes is in its sandbox, and readable there.
    let (status, _, data, _) = read(&base, "/containers/vols/tmp/f", 0, None).await;
    assert_eq!((status, text(&data)), (200, "hi\n".to_string()));
    let (status, _, data, _) = read(&base, "/containers/vols/cache/c", 0, None).await;
    assert_eq!((status, text(&data)), (200, "c\n".to_string()));
    let tmp = std::fs::metadata(d.root.join("mesos/sandboxes/vols/tmp")).expect("tmp");
    assert_eq!(tmp.mode() & 0o7777, 0o1777);
    assert!(!host.path().join("f").exists(), "the RO volume was written");
    assert!(!d.root.join("mesos/sandboxes/vols/ro/f").exists());

    // Refused with 400 naming the value, leaving no sandbox behind.
    for (id, volume, named) in [
        (
            "esc",
            serde_json::json!({"container_path": "/x", "host_path": "../../../etc", "mode": "RW"}),
            "../../../etc",
        ),
        (
            "esc2",
            serde_json::json!({"container_path": "/x", "mode": "RW",
            "source": {"type": "SANDBOX_PATH", "sandbox_path": {"type": "SELF", "path": "a/../../b"}}}),
            "a/../../b",
        ),
        (
            "gone",
            serde_json::json!({"container_path": "/x", "host_path": "/nonexistent/ucr", "mode": "RO"}),
            "/nonexistent/ucr",
        ),
    ] {
        let (status, body) = json_call(
            &base,
            &launch(
                id,
                common::pods::BUSYBOX,
                serde_json::json!({"value": "true"}),
                serde_json::json!({"volumes": [volume]}),
            ),
        )
        .await;
        assert_eq!(status, 400, "{id}: {body}");
        assert!(body.to_string().contains(named), "{id}: {body}");
        assert!(!d.root.join("mesos/sandboxes").join(id).exists(), "{id}");
    }
    assert_eq!(
        json_call(&base, &id_call("REMOVE_CONTAINER", "vols"))
            .await
            .0,
        200
    );
    common::pods::assert_nothing_left(&d);
}

#[tokio::test]
async fn rlimits_apply_and_a_user_owns_its_sandbox() {
    require_root!("rlimits_apply_and_a_user_owns_its_sandbox");
    let (d, base) = daemon();
    let rlimits = serde_json::json!({"rlimit_info": {"rlimits": [
        {"type": "RLMT_NOFILE", "soft": 100, "hard": 200},
        {"type": "RLMT_CORE"}
    ]}});
    let script = "ulimit -n; grep -E 'Max (open files|core file size)' /proc/self/limits; id -u; \
                  echo mine > $MESOS_SANDBOX/mine && echo wrote; touch /tmp/t 2>/dev/null || echo tmp-denied";
    let mut body = launch(
        "limited",
        DEBIAN,
        serde_json::json!({"value": script, "user": "nobody"}),
        rlimits.clone(),
    );
    body["launch_container"]["container"]["volumes"] =
        serde_json::json!([{"container_path": "/tmp", "host_path": "tmp", "mode": "RW"}]);
    let (status, body) = json_call(&base, &body).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(wait(&base, "limited").await, 0);
    let (_, _, out, _) = read(&base, "/containers/limited/stdout", 0, None).await;
    let (_, _, err, _) = read(&base, "/containers/limited/stderr", 0, None).await;
    let out = text(&out);
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["100"], "{out} {}", text(&err));
    assert_eq!(
        lines[1],
        [
            "Max",
            "core",
            "file",
            "size",
            "unlimited",
            "unlimited",
            "bytes"
        ],
        "{out}"
    );
    assert_eq!(
        lines[2],
        ["Max", "open", "files", "100", "200", "files"],
        "{out}"
    );
    assert_eq!(lines[3], ["65534"], "{out}");
    assert_eq!(lines[4], ["wrote"], "{out}");
    assert_eq!(
        lines.len(),
        5,
        "nobody may write the private 1777 /tmp: {out}"
    );
    // The sandbox and its files are nobody's; the directory above stays root's alone.
    let sandbox = d.root.join("mesos/sandboxes/limited");
    for f in ["", "stdout", "stderr", "mine"] {
        let m = std::fs::metadata(sandbox.join(f)).expect("metadata");
        assert_eq!((m.uid(), m.gid()), (65534, 65534), "{f}");
    }
    let parent = std::fs::metadata(d.root.join("mesos/sandboxes")).expect("parent");
    assert_eq!((parent.uid(), parent.mode() & 0o777), (0, 0o700));
    let (status, body) = list(&base, "/containers/limited").await;
    assert_eq!(status, 200);
    let mine = body["list_files"]["file_infos"]
        .as_array()
        .expect("infos")
        .iter()
        .find(|i| i["path"] == "/containers/limited/mine")
        .expect("mine")
        .clone();
    assert_eq!(mine["uid"], "nobody", "{mine}");

    // soft > hard, or one value alone: 400 naming the limit, nothing made.
    for (id, limit) in [
        (
            "soft-above",
            serde_json::json!({"type": "RLMT_NOFILE", "soft": 300, "hard": 200}),
        ),
        (
            "soft-only",
            serde_json::json!({"type": "RLMT_STACK", "soft": 300}),
        ),
    ] {
        let (status, body) = json_call(
            &base,
            &launch(
                id,
                DEBIAN,
                serde_json::json!({"value": "true"}),
                serde_json::json!({"rlimit_info": {"rlimits": [limit]}}),
            ),
        )
        .await;
        assert_eq!(status, 400, "{id}: {body}");
        let named = if id == "soft-above" {
            "RLMT_NOFILE"
        } else {
            "RLMT_STACK"
        };
        assert!(body.to_string().contains(named), "{id}: {body}");
        assert!(!sandbox.with_file_name(id).exists(), "{id}");
        assert_eq!(
            json_call(&base, &id_call("WAIT_CONTAINER", id)).await.0,
            404
        );
    }
    // A user the image does not have fails the launch in the isolators, after the
    // sandbox was made: it goes with the failed launch.
    let (status, body) = json_call(
        &base,
        &launch(
            "stranger",
            DEBIAN,
            serde_json::json!({"value": "true", "user": "no-such-user"}),
            serde_json::json!({}),
        ),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("no-such-user"), "{body}");
    assert!(!sandbox.with_file_name("stranger").exists());
    assert_eq!(
        json_call(&base, &id_call("REMOVE_CONTAINER", "limited"))
            .await
            .0,
        200
    );
    common::pods::assert_nothing_left(&d);
}

#[tokio::test]
async fn output_outlives_a_daemon_crash_and_cri_containers_have_no_sandbox() {
    require_root!("output_outlives_a_daemon_crash_and_cri_containers_have_no_sandbox");
    let (mut d, base) = daemon();
    // A CRI container beside it: its output stays CRI lines, and the files calls do not
    // see it.
    let mut images = d.images().await;
    pull(&mut images, common::pods::BUSYBOX)
        .await
        .expect("pull busybox");
    let mut rt = d.runtime().await;
    let logs = d.dir.path().join("pod-logs");
    let pc = common::pods::pod_config("files", &logs);
    let pod = common::pods::run_pod(&mut rt, &pc).await;
    let cri_id = common::pods::create(
        &mut rt,
        &pod,
        &pc,
        common::pods::container_config("c", "echo cri-out"),
    )
    .await
    .expect("create");
    common::pods::start(&mut rt, &cri_id).await;
    common::pods::wait_exited(&mut rt, &cri_id, std::time::Duration::from_secs(20)).await;
    assert_eq!(common::pods::stdout_lines(&logs.join("c.log")), ["cri-out"]);
    for path in [
        format!("/containers/{cri_id}"),
        format!("/containers/{cri_id}/c.log"),
    ] {
        assert_eq!(list(&base, &path).await.0, 404, "{path}");
        assert_eq!(read(&base, &path, 0, None).await.0, 404, "{path}");
    }

    let script = "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done";
    let (status, body) = json_call(
        &base,
        &launch(
            "ticker",
            common::pods::BUSYBOX,
            serde_json::json!({"value": script}),
            serde_json::json!({}),
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let stdout = d.root.join("mesos/sandboxes/ticker/stdout");
    let size = || std::fs::metadata(&stdout).map(|m| m.len()).unwrap_or(0);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    d.kill9();
    // No daemon: the monitor goes on writing the file.
    let before = size();
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    assert!(size() > before, "stdout grew without the daemon");
    d.restart();
    let (status, got, data, body) = read(&base, "/containers/ticker/stdout", 0, None).await;
    assert_eq!(status, 200, "{body}");
    assert!(got > before, "{got} > {before}");
    let text = text(&data);
    let ticks: Vec<&str> = text.lines().collect();
    for (n, line) in ticks.iter().enumerate() {
        assert_eq!(*line, format!("tick {n}"), "no tick lost or framed: {text}");
    }
    assert_eq!(
        json_call(&base, &id_call("KILL_CONTAINER", "ticker"))
            .await
            .0,
        200
    );
    assert_eq!(wait(&base, "ticker").await, 9);
    assert_eq!(
        json_call(&base, &id_call("REMOVE_CONTAINER", "ticker"))
            .await
            .0,
        200
    );
    common::pods::stop_remove_pod(&mut rt, &pod).await;
    common::pods::assert_nothing_left(&d);
}

#[tokio::test]
async fn what_a_container_writes_in_its_sandbox_counts_against_its_disk() {
    require_root!("what_a_container_writes_in_its_sandbox_counts_against_its_disk");
    let (d, base) = daemon_with(&[
        "--container-disk-watch-interval",
        "1s",
        "--enforce-container-disk-quota",
    ]);
    // 3 MB into the private /tmp (a directory in the sandbox) with `disk: 1`: disk/du
    // measures the sandbox with the writable layer, and kills it (ucr-spec.md §8.14).
    for (id, target) in [
        ("fills-tmp", "/tmp/fill"),
        ("fills-sandbox", "$MESOS_SANDBOX/fill"),
    ] {
        let mut body = launch(
            id,
            common::pods::BUSYBOX,
            serde_json::json!({"value": format!("head -c 3000000 /dev/zero > {target}; exec sleep 600")}),
            serde_json::json!({"volumes": [{"container_path": "/tmp", "host_path": "tmp", "mode": "RW"}]}),
        );
        body["launch_container"]["resources"] =
            serde_json::json!([{"name": "disk", "type": "SCALAR", "scalar": {"value": 1}}]);
        let (status, body) = json_call(&base, &body).await;
        assert_eq!(status, 200, "{body}");
        let status = tokio::time::timeout(std::time::Duration::from_secs(60), wait(&base, id))
            .await
            .unwrap_or_else(|_| panic!("{id} was not killed for its disk use"));
        assert_eq!(status, 9, "{id}: killed");
        assert_eq!(
            json_call(&base, &id_call("REMOVE_CONTAINER", id)).await.0,
            200
        );
    }
    common::pods::assert_nothing_left(&d);
}
