//! The Mesos door's streaming calls against the real daemon: nested container sessions
//! (LAUNCH_NESTED_CONTAINER_SESSION), their output and input over RecordIO
//! (ATTACH_CONTAINER_OUTPUT, ATTACH_CONTAINER_INPUT), with and without a terminal, what
//! WAIT/KILL/REMOVE_CONTAINER and GET_CONTAINERS do with nested ids, and the refusals.
//! JSON and protobuf records both. Needs root (the daemon); says so and skips otherwise.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use futures::StreamExt;
use prost::Message;
use tokio::sync::mpsc;
use ucr::mesos::wire::v1::agent::{call, process_io, Call, ProcessIo};
use ucr::mesos::wire::v1::{ContainerId, TtyInfo};

const RECORDIO: &str = "application/recordio";
const JSON: &str = "application/json";
const PROTOBUF: &str = "application/x-protobuf";

fn daemon() -> (Daemon, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let listen = format!("127.0.0.1:{port}");
    let d = Daemon::start(&["--mesos-listen", &listen]);
    (d, format!("http://{listen}"))
}

/// RecordIO framing, written here again rather than taken from the daemon's code.
fn frame(record: &[u8]) -> Vec<u8> {
    let mut out = format!("{}\n", record.len()).into_bytes();
    out.extend_from_slice(record);
    out
}

/// Splits whole records off the front of `buf`.
fn unframe(buf: &mut Vec<u8>) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let Some(nl) = buf.iter().position(|b| *b == b'\n') else {
            return out;
        };
        let len: usize = std::str::from_utf8(&buf[..nl])
            .expect("ascii length")
            .parse()
            .expect("a decimal length");
        if buf.len() < nl + 1 + len {
            return out;
        }
        out.push(buf[nl + 1..nl + 1 + len].to_vec());
        buf.drain(..nl + 1 + len);
    }
}

async fn json_call(base: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
    let resp = reqwest::Client::new()
        .post(format!("{base}/api/v1"))
        .header("Content-Type", JSON)
        .body(body.to_string())
        .send()
        .await
        .expect("request");
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.expect("body");
    (
        status,
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&bytes).into())),
    )
}

/// A standalone container running `sleep 1000` to nest sessions in.
async fn parent(base: &str, id: &str) {
    let (status, body) = json_call(
        base,
        serde_json::json!({
            "type": "LAUNCH_CONTAINER",
            "launch_container": {
                "container_id": {"value": id},
                "command": {"value": "sleep 1000"},
                "container": {
                    "type": "MESOS",
                    "mesos": {"image": {"type": "DOCKER", "docker": {"name": common::pods::BUSYBOX}}}
                }
            }
        }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

fn nested(parent: &str, id: &str) -> serde_json::Value {
    serde_json::json!({"value": id, "parent": {"value": parent}})
}

fn nested_id(parent: &str, id: &str) -> ContainerId {
    ContainerId {
        value: id.into(),
        parent: Some(Box::new(ContainerId {
            value: parent.into(),
            parent: None,
        })),
    }
}

/// What a session's or attachment's stream gave, decoded.
#[derive(Default, Debug)]
struct Output {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    records: usize,
}

impl Output {
    fn add(&mut self, io: &ProcessIo) {
        self.records += 1;
        if let Some(d) = &io.data {
            let bytes = d.data.clone().unwrap_or_default();
            match d.r#type() {
                process_io::data::Type::Stdout => self.stdout.extend(bytes),
                process_io::data::Type::Stderr => self.stderr.extend(bytes),
                other => panic!("unexpected output stream {other:?}"),
            }
        }
    }

    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// An open streaming answer, read record by record.
struct Stream {
    resp: Option<reqwest::Response>,
    buf: Vec<u8>,
    format: &'static str,
    out: Output,
}

impl Stream {
    /// Reads until `done` holds for what came so far, or the stream ends; false on end.
    async fn until(&mut self, done: impl Fn(&Output) -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !done(&self.out) {
            let resp = self.resp.as_mut().expect("open");
            let chunk = tokio::time::timeout_at(deadline.into(), resp.chunk())
                .await
                .unwrap_or_else(|_| panic!("no output in time; so far {:?}", self.out))
                .expect("read the stream");
            let Some(chunk) = chunk else { return false };
            self.buf.extend_from_slice(&chunk);
            for record in unframe(&mut self.buf) {
                let io = if self.format == JSON {
                    serde_json::from_slice::<ProcessIo>(&record).expect("a JSON ProcessIO")
                } else {
                    ProcessIo::decode(&record[..]).expect("a protobuf ProcessIO")
                };
                self.out.add(&io);
            }
        }
        true
    }

    async fn read_to_end(&mut self) -> &Output {
        assert!(!self.until(|_| false).await);
        assert!(self.buf.is_empty(), "a record cut short");
        &self.out
    }
}

/// Posts a streaming call (JSON or protobuf body, records in `format`); the status, and
/// the stream when 200.
async fn stream_call(base: &str, call: &Call, format: &'static str) -> (u16, Stream) {
    let body = if format == JSON {
        serde_json::to_vec(call).expect("json")
    } else {
        call.encode_to_vec()
    };
    let resp = reqwest::Client::new()
        .post(format!("{base}/api/v1"))
        .header("Content-Type", format)
        .header("Accept", RECORDIO)
        .header("Message-Accept", format)
        .body(body)
        .send()
        .await
        .expect("request");
    let status = resp.status().as_u16();
    if status == 200 {
        let h = |n: &str| {
            resp.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()
        };
        assert_eq!(h("content-type"), RECORDIO);
        assert_eq!(h("message-content-type"), format);
    }
    (
        status,
        Stream {
            resp: Some(resp),
            buf: Vec::new(),
            format,
            out: Output::default(),
        },
    )
}

fn session_call(parent: &str, id: &str, command: &str, tty: Option<(u32, u32)>) -> Call {
    let json = serde_json::json!({
        "type": "LAUNCH_NESTED_CONTAINER_SESSION",
        "launch_nested_container_session": {
            "container_id": nested(parent, id),
            "command": {"value": command},
            "container": match tty {
                Some((rows, columns)) => serde_json::json!({
                    "type": "MESOS",
                    "tty_info": {"window_size": {"rows": rows, "columns": columns}}
                }),
                None => serde_json::json!({"type": "MESOS"}),
            }
        }
    });
    serde_json::from_value(json).expect("a Call")
}

fn input_call(io: Option<ProcessIo>, id: Option<ContainerId>) -> Call {
    Call {
        r#type: Some(call::Type::AttachContainerInput as i32),
        attach_container_input: Some(call::AttachContainerInput {
            r#type: Some(if io.is_some() {
                call::attach_container_input::Type::ProcessIo as i32
            } else {
                call::attach_container_input::Type::ContainerId as i32
            }),
            container_id: id,
            process_io: io,
        }),
        ..Default::default()
    }
}

fn stdin(data: &[u8]) -> ProcessIo {
    ProcessIo {
        r#type: Some(process_io::Type::Data as i32),
        data: Some(process_io::Data {
            r#type: Some(process_io::data::Type::Stdin as i32),
            data: Some(data.to_vec()),
        }),
        control: None,
    }
}

fn resize(rows: u32, columns: u32) -> ProcessIo {
    ProcessIo {
        r#type: Some(process_io::Type::Control as i32),
        data: None,
        control: Some(process_io::Control {
            r#type: Some(process_io::control::Type::TtyInfo as i32),
            tty_info: Some(TtyInfo {
                window_size: Some(ucr::mesos::wire::v1::tty_info::WindowSize { rows, columns }),
            }),
            heartbeat: None,
        }),
    }
}

fn encode(call: &Call, format: &str) -> Vec<u8> {
    frame(&if format == JSON {
        serde_json::to_vec(call).expect("json")
    } else {
        call.encode_to_vec()
    })
}

/// An ATTACH_CONTAINER_INPUT whose body is streamed from the returned sender, records
/// framed in `format`; the answer's status and body once the body ends.
fn input_stream(
    base: &str,
    target: ContainerId,
    format: &'static str,
) -> (
    mpsc::Sender<Vec<u8>>,
    tokio::task::JoinHandle<(u16, String)>,
) {
    let (tx, rx) = mpsc::channel::<Vec<u8>>(16);
    let first = encode(&input_call(None, Some(target)), format);
    let body = futures::stream::once(async move { first })
        .chain(tokio_stream::wrappers::ReceiverStream::new(rx))
        .map(|b| Ok::<_, std::io::Error>(Bytes::from(b)));
    let req = reqwest::Client::new()
        .post(format!("{base}/api/v1"))
        .header("Content-Type", RECORDIO)
        .header("Message-Content-Type", format)
        .body(reqwest::Body::wrap_stream(body));
    let task = tokio::spawn(async move {
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        (status, resp.text().await.unwrap_or_default())
    });
    (tx, task)
}

/// A whole ATTACH_CONTAINER_INPUT body posted at once.
async fn post_recordio(base: &str, message_type: Option<&str>, body: Vec<u8>) -> (u16, String) {
    let mut req = reqwest::Client::new()
        .post(format!("{base}/api/v1"))
        .header("Content-Type", RECORDIO)
        .body(body);
    if let Some(t) = message_type {
        req = req.header("Message-Content-Type", t);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap_or_default())
}

/// A protobuf call with a protobuf answer: the status and the decoded Response.
async fn proto_call(
    base: &str,
    call: Call,
) -> (u16, Option<ucr::mesos::wire::v1::agent::Response>) {
    let resp = reqwest::Client::new()
        .post(format!("{base}/api/v1"))
        .header("Content-Type", PROTOBUF)
        .header("Accept", PROTOBUF)
        .body(call.encode_to_vec())
        .send()
        .await
        .expect("request");
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.expect("body");
    (
        status,
        ucr::mesos::wire::v1::agent::Response::decode(&bytes[..]).ok(),
    )
}

fn id_call(t: &str, id: serde_json::Value) -> serde_json::Value {
    let key = t.to_ascii_lowercase();
    serde_json::json!({"type": t, key: {"container_id": id}})
}

/// Host pids whose command line is exactly `argv`.
fn pids_running(argv: &[&str]) -> Vec<i32> {
    let want: Vec<u8> = argv
        .iter()
        .flat_map(|a| [a.as_bytes(), b"\0"].concat())
        .collect();
    std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .ok()
                .as_deref()
                == Some(&want[..])
        })
        .filter(|pid| {
            // A zombie is dead already.
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| {
                    !s.rsplit(')')
                        .next()
                        .unwrap_or_default()
                        .trim_start()
                        .starts_with('Z')
                })
                .unwrap_or(false)
        })
        .collect()
}

async fn eventually(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_session_streams_stdout_and_stderr_then_wait_gives_its_status() {
    require_root!("a_session_streams_stdout_and_stderr_then_wait_gives_its_status");
    let (_d, base) = daemon();
    parent(&base, "p").await;

    for (format, id) in [(JSON, "s-json"), (PROTOBUF, "s-proto")] {
        let call = session_call("p", id, "echo out; echo err >&2; exit 3", None);
        let (status, mut stream) = stream_call(&base, &call, format).await;
        assert_eq!(status, 200, "{format}");
        let out = stream.read_to_end().await;
        assert_eq!(out.stdout(), "out\n", "{format}: {out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n", "{format}");

        // exit 3 is the wait status 768; it is kept until removed.
        let (status, body) = json_call(&base, id_call("WAIT_CONTAINER", nested("p", id))).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["wait_container"]["exit_status"], 768, "{body}");
        // The id exists: a second launch is 202, as the agent answers.
        let (status, _) = stream_call(&base, &call, format).await;
        assert_eq!(status, 202);
        let (status, _) = json_call(&base, id_call("REMOVE_CONTAINER", nested("p", id))).await;
        assert_eq!(status, 200);
        let (status, _) = json_call(&base, id_call("WAIT_CONTAINER", nested("p", id))).await;
        assert_eq!(status, 404, "removed");
    }

    // `command.user` is resolved in the parent's image; an unknown one is refused.
    let mut call = session_call("p", "as-nobody", "id -u; echo $HOME", None);
    if let Some(l) = call.launch_nested_container_session.as_mut() {
        if let Some(c) = l.command.as_mut() {
            c.user = Some("nobody".into());
        }
    }
    let (status, mut stream) = stream_call(&base, &call, JSON).await;
    assert_eq!(status, 200);
    let out = stream.read_to_end().await.stdout();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.first(), Some(&"65534"), "busybox's nobody: {out:?}");
    assert!(lines.get(1).is_some_and(|home| !home.is_empty()), "{out:?}");
    if let Some(l) = call.launch_nested_container_session.as_mut() {
        l.container_id.value = "as-ghost".into();
        if let Some(c) = l.command.as_mut() {
            c.user = Some("ghost-user".into());
        }
    }
    let (status, _) = stream_call(&base, &call, JSON).await;
    assert_eq!(status, 400);

    // The older form: `Accept: application/json`, records framed all the same.
    let call = session_call("p", "s-old", "echo old", None);
    let resp = reqwest::Client::new()
        .post(format!("{base}/api/v1"))
        .header("Content-Type", JSON)
        .body(serde_json::to_vec(&call).expect("json"))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        resp.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some(JSON)
    );
    let mut stream = Stream {
        resp: Some(resp),
        buf: Vec::new(),
        format: JSON,
        out: Output::default(),
    };
    assert_eq!(stream.read_to_end().await.stdout(), "old\n");
}

#[tokio::test]
async fn input_reaches_a_session_through_attach_container_input() {
    require_root!("input_reaches_a_session_through_attach_container_input");
    let (_d, base) = daemon();
    parent(&base, "p").await;

    // One line in, JSON records in and out.
    let call = session_call("p", "reader", "read line; echo got:$line", None);
    let (status, mut session) = stream_call(&base, &call, JSON).await;
    assert_eq!(status, 200);
    let (tx, answer) = input_stream(&base, nested_id("p", "reader"), JSON);
    tx.send(encode(&input_call(Some(stdin(b"hello\n")), None), JSON))
        .await
        .expect("send");
    drop(tx);
    assert_eq!(answer.await.expect("answer"), (200, String::new()));
    assert_eq!(session.read_to_end().await.stdout(), "got:hello\n");

    // `cat`, protobuf records: a second input connection while one is open is 409; the
    // input may come in several connections; an empty STDIN record is end of file.
    let call = session_call("p", "cat", "cat", None);
    let (status, mut session) = stream_call(&base, &call, PROTOBUF).await;
    assert_eq!(status, 200);
    let (tx, first) = input_stream(&base, nested_id("p", "cat"), PROTOBUF);
    tx.send(encode(&input_call(Some(stdin(b"one\n")), None), PROTOBUF))
        .await
        .expect("send");
    assert!(session.until(|o| o.stdout() == "one\n").await);
    let (tx2, second) = input_stream(&base, nested_id("p", "cat"), PROTOBUF);
    drop(tx2);
    let (status, body) = second.await.expect("answer");
    assert_eq!(status, 409, "{body}");
    drop(tx);
    assert_eq!(first.await.expect("answer").0, 200);
    // Again, and this time end of file.
    let (tx, third) = input_stream(&base, nested_id("p", "cat"), PROTOBUF);
    for record in [stdin(b"two\n"), stdin(b"")] {
        tx.send(encode(&input_call(Some(record), None), PROTOBUF))
            .await
            .expect("send");
    }
    drop(tx);
    assert_eq!(third.await.expect("answer").0, 200);
    assert_eq!(session.read_to_end().await.stdout(), "one\ntwo\n");
    let (_, body) = json_call(&base, id_call("WAIT_CONTAINER", nested("p", "cat"))).await;
    assert_eq!(body["wait_container"]["exit_status"], 0, "{body}");
}

#[tokio::test]
async fn a_tty_session_merges_stderr_and_resizes() {
    require_root!("a_tty_session_merges_stderr_and_resizes");
    let (_d, base) = daemon();
    parent(&base, "p").await;
    // The first `stty size` runs at once: the terminal has its size before the command.
    let call = session_call(
        "p",
        "tty",
        "stty size; read a; echo to-stderr >&2; read b; stty size",
        Some((24, 80)),
    );
    let (status, mut session) = stream_call(&base, &call, JSON).await;
    assert_eq!(status, 200);
    let (tx, answer) = input_stream(&base, nested_id("p", "tty"), JSON);
    tx.send(encode(&input_call(Some(stdin(b"1\n")), None), JSON))
        .await
        .expect("send");
    assert!(
        session.until(|o| o.stdout().contains("24 80")).await,
        "{:?}",
        session.out
    );
    tx.send(encode(&input_call(Some(resize(40, 100)), None), JSON))
        .await
        .expect("send");
    // The resize and the input take different paths: let the resize land first.
    tokio::time::sleep(Duration::from_millis(500)).await;
    tx.send(encode(&input_call(Some(stdin(b"2\n")), None), JSON))
        .await
        .expect("send");
    drop(tx);
    let out = session.read_to_end().await;
    let text = out.stdout();
    assert!(text.contains("40 100"), "{text:?}");
    assert!(
        text.contains("to-stderr"),
        "a terminal merges stderr: {text:?}"
    );
    assert!(out.stderr.is_empty());
    assert_eq!(answer.await.expect("answer").0, 200);
}

#[tokio::test]
async fn closing_the_connection_kills_the_session() {
    require_root!("closing_the_connection_kills_the_session");
    let (_d, base) = daemon();
    parent(&base, "p").await;
    let call = session_call("p", "sleeper", "exec sleep 4242", None);
    let (status, stream) = stream_call(&base, &call, JSON).await;
    assert_eq!(status, 200);
    eventually("the session's process", || {
        !pids_running(&["sleep", "4242"]).is_empty()
    })
    .await;
    // Another reader of its output, which ends with it.
    let out_call = Call {
        r#type: Some(call::Type::AttachContainerOutput as i32),
        attach_container_output: Some(call::AttachContainerOutput {
            container_id: nested_id("p", "sleeper"),
        }),
        ..Default::default()
    };
    let (status, mut reader) = stream_call(&base, &out_call, PROTOBUF).await;
    assert_eq!(status, 200);
    drop(stream);
    eventually("the session's process to go", || {
        pids_running(&["sleep", "4242"]).is_empty()
    })
    .await;
    reader.read_to_end().await;
    let (_, body) = json_call(&base, id_call("WAIT_CONTAINER", nested("p", "sleeper"))).await;
    assert_eq!(body["wait_container"]["exit_status"], 9, "{body}");
    // The parent is unharmed.
    let (_, body) = json_call(
        &base,
        serde_json::json!({"type": "GET_CONTAINERS", "get_containers": {"show_standalone": true}}),
    )
    .await;
    assert_eq!(
        body["get_containers"]["containers"][0]["container_id"]["value"],
        "p"
    );
}

#[tokio::test]
async fn nested_ids_wait_kill_and_list() {
    require_root!("nested_ids_wait_kill_and_list");
    let (_d, base) = daemon();
    parent(&base, "p").await;
    let call = session_call("p", "victim", "exec sleep 4343", None);
    let (status, mut stream) = stream_call(&base, &call, JSON).await;
    assert_eq!(status, 200);
    eventually("the session's process", || {
        !pids_running(&["sleep", "4343"]).is_empty()
    })
    .await;

    // Listed with show_nested only: the leaf id, the whole id in its status.
    let (_, body) = json_call(
        &base,
        serde_json::json!({"type": "GET_CONTAINERS", "get_containers": {"show_nested": true}}),
    )
    .await;
    let listed = body["get_containers"]["containers"]
        .as_array()
        .expect("list");
    assert_eq!(listed.len(), 1, "{body}");
    assert_eq!(
        listed[0]["container_id"],
        serde_json::json!({"value": "victim"})
    );
    assert_eq!(
        listed[0]["container_status"]["container_id"],
        nested("p", "victim")
    );
    let (_, body) = json_call(&base, serde_json::json!({"type": "GET_CONTAINERS"})).await;
    assert!(
        body["get_containers"]["containers"]
            .as_array()
            .is_none_or(Vec::is_empty),
        "{body}"
    );

    // A running one cannot be removed; KILL (SIGKILL by default) ends it and its stream.
    let (status, _) = json_call(&base, id_call("REMOVE_CONTAINER", nested("p", "victim"))).await;
    assert_eq!(status, 500);
    let (status, body) = json_call(&base, id_call("KILL_CONTAINER", nested("p", "victim"))).await;
    assert_eq!(status, 200, "{body}");
    stream.read_to_end().await;
    let (_, body) = json_call(&base, id_call("WAIT_CONTAINER", nested("p", "victim"))).await;
    assert_eq!(body["wait_container"]["exit_status"], 9, "{body}");
    assert!(pids_running(&["sleep", "4343"]).is_empty());
    let (status, _) = json_call(&base, id_call("KILL_CONTAINER", nested("p", "victim"))).await;
    assert_eq!(status, 404, "ended");
    let (status, _) = json_call(&base, id_call("KILL_CONTAINER", nested("p", "nobody"))).await;
    assert_eq!(status, 404, "unknown");

    // SIGTERM is passed on: wait status 15.
    let call = session_call("p", "termed", "exec sleep 4344", None);
    let (status, mut stream) = stream_call(&base, &call, JSON).await;
    assert_eq!(status, 200);
    eventually("the session's process", || {
        !pids_running(&["sleep", "4344"]).is_empty()
    })
    .await;
    let mut kill = id_call("KILL_CONTAINER", nested("p", "termed"));
    kill["kill_container"]["signal"] = 15.into();
    assert_eq!(json_call(&base, kill).await.0, 200);
    stream.read_to_end().await;
    let (_, body) = json_call(&base, id_call("WAIT_CONTAINER", nested("p", "termed"))).await;
    assert_eq!(body["wait_container"]["exit_status"], 15, "{body}");

    // Three levels: a session under a running session, in the same root container.
    let call = session_call("p", "mid", "exec sleep 4345", None);
    let (status, _mid) = stream_call(&base, &call, JSON).await;
    assert_eq!(status, 200);
    let deep: Call = serde_json::from_value(serde_json::json!({
        "type": "LAUNCH_NESTED_CONTAINER_SESSION",
        "launch_nested_container_session": {
            "container_id": {"value": "leaf", "parent": nested("p", "mid")},
            "command": {"value": "echo deep"}
        }
    }))
    .expect("call");
    let (status, mut stream) = stream_call(&base, &deep, JSON).await;
    assert_eq!(status, 200);
    assert_eq!(stream.read_to_end().await.stdout(), "deep\n");
}

#[tokio::test]
async fn malformed_streams_and_headers_are_refused() {
    require_root!("malformed_streams_and_headers_are_refused");
    let (_d, base) = daemon();
    parent(&base, "p").await;
    let call = session_call("p", "target", "cat", None);
    let (status, mut session) = stream_call(&base, &call, JSON).await;
    assert_eq!(status, 200);
    let first = encode(&input_call(None, Some(nested_id("p", "target"))), JSON);

    // Malformed RecordIO: 400 before anything reaches the process.
    for body in [
        b"abc\n{}".to_vec(),
        b"99999999999999\n".to_vec(),
        b"12".to_vec(),
        [first.clone(), b"5\nab".to_vec()].concat(),
        [first.clone(), b"x\n".to_vec()].concat(),
    ] {
        let (status, text) = post_recordio(&base, Some(JSON), body.clone()).await;
        assert_eq!(status, 400, "{:?}: {text}", String::from_utf8_lossy(&body));
    }
    // An empty body, a first record of the wrong type, a bad record after the first.
    assert_eq!(post_recordio(&base, Some(JSON), Vec::new()).await.0, 400);
    let wrong_first = encode(&input_call(Some(stdin(b"x")), None), JSON);
    assert_eq!(post_recordio(&base, Some(JSON), wrong_first).await.0, 400);
    let stdout_record = encode(
        &input_call(
            Some(ProcessIo {
                r#type: Some(process_io::Type::Data as i32),
                data: Some(process_io::Data {
                    r#type: Some(process_io::data::Type::Stdout as i32),
                    data: Some(b"x".to_vec()),
                }),
                control: None,
            }),
            None,
        ),
        JSON,
    );
    let (status, text) =
        post_recordio(&base, Some(JSON), [first.clone(), stdout_record].concat()).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("STDIN"), "{text}");
    // Resizing a session without a terminal.
    let resize_record = encode(&input_call(Some(resize(10, 10)), None), JSON);
    assert_eq!(
        post_recordio(&base, Some(JSON), [first.clone(), resize_record].concat())
            .await
            .0,
        400
    );

    // Headers, as the agent checks them.
    assert_eq!(post_recordio(&base, None, first.clone()).await.0, 400);
    assert_eq!(
        post_recordio(&base, Some("text/plain"), first.clone())
            .await
            .0,
        415
    );
    let health = encode(
        &Call {
            r#type: Some(call::Type::GetHealth as i32),
            ..Default::default()
        },
        JSON,
    );
    assert_eq!(
        post_recordio(&base, Some(JSON), health).await.0,
        415,
        "not streamed"
    );
    let post = |headers: Vec<(&'static str, &'static str)>, body: Vec<u8>| {
        let mut req = reqwest::Client::new()
            .post(format!("{base}/api/v1"))
            .body(body);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        async move { req.send().await.expect("request").status().as_u16() }
    };
    let input_json =
        serde_json::to_vec(&input_call(None, Some(nested_id("p", "target")))).expect("json");
    assert_eq!(post(vec![("Content-Type", JSON)], input_json).await, 415);
    let health_json = br#"{"type": "GET_HEALTH"}"#.to_vec();
    assert_eq!(
        post(
            vec![("Content-Type", JSON), ("Accept", RECORDIO)],
            health_json.clone()
        )
        .await,
        406
    );
    assert_eq!(
        post(
            vec![("Content-Type", JSON), ("Message-Accept", JSON)],
            health_json.clone()
        )
        .await,
        406
    );
    assert_eq!(
        post(
            vec![("Content-Type", JSON), ("Message-Content-Type", JSON)],
            health_json
        )
        .await,
        415
    );
    let session_json = serde_json::to_vec(&session_call("p", "x", "true", None)).expect("json");
    assert_eq!(
        post(
            vec![
                ("Content-Type", JSON),
                ("Accept", RECORDIO),
                ("Message-Accept", "text/plain")
            ],
            session_json
        )
        .await,
        406
    );

    // Ids and parents.
    let unknown_parent = session_call("nobody", "x", "true", None);
    assert_eq!(stream_call(&base, &unknown_parent, JSON).await.0, 400);
    let mut no_parent = session_call("p", "x", "true", None);
    if let Some(l) = no_parent.launch_nested_container_session.as_mut() {
        l.container_id.parent = None;
    }
    assert_eq!(stream_call(&base, &no_parent, JSON).await.0, 400);
    let bad_level = session_call("p", "a.b", "true", None);
    assert_eq!(stream_call(&base, &bad_level, JSON).await.0, 400);
    let output_of = |id: ContainerId| Call {
        r#type: Some(call::Type::AttachContainerOutput as i32),
        attach_container_output: Some(call::AttachContainerOutput { container_id: id }),
        ..Default::default()
    };
    assert_eq!(
        stream_call(&base, &output_of(nested_id("p", "nobody")), JSON)
            .await
            .0,
        404
    );
    // A standalone container without a terminal has no switchboard: Mesos's 500.
    let (status, _) = stream_call(
        &base,
        &output_of(ContainerId {
            value: "p".into(),
            parent: None,
        }),
        JSON,
    )
    .await;
    assert_eq!(status, 500);
    // A nested container takes no resources of its own here, and no image yet.
    let (status, _) = json_call(
        &base,
        serde_json::json!({
            "type": "LAUNCH_CONTAINER",
            "launch_container": {
                "container_id": nested("p", "n"), "command": {"value": "true"},
                "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.5}}]
            }
        }),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = json_call(
        &base,
        serde_json::json!({
            "type": "LAUNCH_CONTAINER",
            "launch_container": {
                "container_id": nested("p", "n"), "command": {"value": "true"},
                "container": {"type": "MESOS", "mesos": {"image": {"type": "DOCKER", "docker": {"name": "busybox"}}}}
            }
        }),
    )
    .await;
    assert_eq!(status, 501);

    // None of that reached the session's process: its input is still open and empty.
    let (tx, answer) = input_stream(&base, nested_id("p", "target"), JSON);
    tx.send(encode(&input_call(Some(stdin(b"")), None), JSON))
        .await
        .expect("send");
    drop(tx);
    assert_eq!(answer.await.expect("answer").0, 200);
    assert_eq!(session.read_to_end().await.stdout(), "");
    assert_eq!(
        json_call(&base, serde_json::json!({"type": "GET_HEALTH"}))
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn a_standalone_container_with_a_tty_is_attachable() {
    require_root!("a_standalone_container_with_a_tty_is_attachable");
    let (_d, base) = daemon();
    let (status, body) = json_call(
        &base,
        serde_json::json!({
            "type": "LAUNCH_CONTAINER",
            "launch_container": {
                "container_id": {"value": "term"},
                "command": {"value": "read line; echo got:$line; read again; stty size"},
                "container": {
                    "type": "MESOS",
                    "mesos": {"image": {"type": "DOCKER", "docker": {"name": common::pods::BUSYBOX}}},
                    "tty_info": {}
                }
            }
        }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let term = ContainerId {
        value: "term".into(),
        parent: None,
    };
    let output = Call {
        r#type: Some(call::Type::AttachContainerOutput as i32),
        attach_container_output: Some(call::AttachContainerOutput {
            container_id: term.clone(),
        }),
        ..Default::default()
    };
    // Two readers at once, one per encoding.
    let (status, mut json_reader) = stream_call(&base, &output, JSON).await;
    assert_eq!(status, 200);
    let (status, mut proto_reader) = stream_call(&base, &output, PROTOBUF).await;
    assert_eq!(status, 200);
    let (tx, answer) = input_stream(&base, term.clone(), PROTOBUF);
    tx.send(encode(&input_call(Some(stdin(b"hi\n")), None), PROTOBUF))
        .await
        .expect("send");
    assert!(
        json_reader.until(|o| o.stdout().contains("got:hi")).await,
        "{:?}",
        json_reader.out
    );
    assert!(proto_reader.until(|o| o.stdout().contains("got:hi")).await);
    // One input connection at a time for a standalone container too.
    let (tx2, second) = input_stream(&base, term, JSON);
    drop(tx2);
    assert_eq!(second.await.expect("answer").0, 409);
    tx.send(encode(&input_call(Some(resize(33, 77)), None), PROTOBUF))
        .await
        .expect("send");
    tokio::time::sleep(Duration::from_millis(500)).await;
    tx.send(encode(&input_call(Some(stdin(b"go\n")), None), PROTOBUF))
        .await
        .expect("send");
    drop(tx);
    assert_eq!(answer.await.expect("answer").0, 200);
    let text = json_reader.read_to_end().await.stdout();
    assert!(text.contains("33 77"), "{text:?}");
    let (_, body) = json_call(
        &base,
        id_call("WAIT_CONTAINER", serde_json::json!({"value": "term"})),
    )
    .await;
    assert_eq!(body["wait_container"]["exit_status"], 0, "{body}");
}

#[tokio::test]
async fn a_nested_launch_container_writes_its_sandbox_and_waits() {
    require_root!("a_nested_launch_container_writes_its_sandbox_and_waits");
    let (d, base) = daemon();
    parent(&base, "p").await;
    let launch = |id: &str, command: &str| {
        serde_json::json!({
            "type": "LAUNCH_CONTAINER",
            "launch_container": {"container_id": nested("p", id), "command": {"value": command}}
        })
    };
    let (status, body) = json_call(&base, launch("n", "echo out; echo err >&2; exit 3")).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = json_call(&base, id_call("WAIT_CONTAINER", nested("p", "n"))).await;
    assert_eq!(status, 200);
    assert_eq!(body["wait_container"]["exit_status"], 768, "{body}");
    assert_eq!(
        json_call(&base, launch("n", "true")).await.0,
        202,
        "the id exists"
    );
    // Mesos's layout: <parent's sandbox>/containers/<id>/{stdout,stderr}.
    let sandbox = d.root.join("mesos/sandboxes/p/containers/n");
    assert_eq!(
        std::fs::read_to_string(sandbox.join("stdout")).expect("stdout"),
        "out\n"
    );
    assert_eq!(
        std::fs::read_to_string(sandbox.join("stderr")).expect("stderr"),
        "err\n"
    );
    assert_eq!(
        json_call(&base, id_call("REMOVE_CONTAINER", nested("p", "n")))
            .await
            .0,
        200
    );
    assert!(!sandbox.exists(), "removed with its container");

    // It outlives the connection that launched it; KILL ends it.
    let (status, _) = json_call(&base, launch("long", "exec sleep 4346")).await;
    assert_eq!(status, 200);
    eventually("the nested process", || {
        !pids_running(&["sleep", "4346"]).is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!pids_running(&["sleep", "4346"]).is_empty());
    assert_eq!(
        json_call(&base, id_call("KILL_CONTAINER", nested("p", "long")))
            .await
            .0,
        200
    );
    let (_, body) = json_call(&base, id_call("WAIT_CONTAINER", nested("p", "long"))).await;
    assert_eq!(body["wait_container"]["exit_status"], 9, "{body}");
    assert!(pids_running(&["sleep", "4346"]).is_empty());

    // The deprecated *_NESTED_CONTAINER calls do the same (protobuf here).
    let old = Call {
        r#type: Some(call::Type::LaunchNestedContainer as i32),
        launch_nested_container: Some(call::LaunchNestedContainer {
            container_id: nested_id("p", "old"),
            command: serde_json::from_value(serde_json::json!({"value": "exit 5"})).ok(),
            container: None,
        }),
        ..Default::default()
    };
    assert_eq!(proto_call(&base, old.clone()).await.0, 200);
    let wait = Call {
        r#type: Some(call::Type::WaitNestedContainer as i32),
        wait_nested_container: Some(call::WaitNestedContainer {
            container_id: nested_id("p", "old"),
        }),
        ..Default::default()
    };
    let (status, answer) = proto_call(&base, wait).await;
    assert_eq!(status, 200);
    let answer = answer.expect("a Response");
    assert_eq!(
        answer.r#type(),
        ucr::mesos::wire::v1::agent::response::Type::WaitNestedContainer
    );
    assert_eq!(
        answer.wait_nested_container.and_then(|w| w.exit_status),
        Some(5 << 8)
    );
    let remove = Call {
        r#type: Some(call::Type::RemoveNestedContainer as i32),
        remove_nested_container: Some(call::RemoveNestedContainer {
            container_id: nested_id("p", "old"),
        }),
        ..Default::default()
    };
    assert_eq!(proto_call(&base, remove).await.0, 200);
    // Without a parent they are malformed.
    let mut orphan = old;
    if let Some(l) = orphan.launch_nested_container.as_mut() {
        l.container_id.parent = None;
    }
    assert_eq!(proto_call(&base, orphan).await.0, 400);

    // Removing the parent takes its nested containers along: a new parent of the same id
    // starts with none, so the same nested id launches anew (200, not 202).
    let (status, _) = json_call(&base, launch("kept", "exit 0")).await;
    assert_eq!(status, 200);
    json_call(&base, id_call("WAIT_CONTAINER", nested("p", "kept"))).await;
    let root = serde_json::json!({"value": "p"});
    assert_eq!(
        json_call(&base, id_call("KILL_CONTAINER", root.clone()))
            .await
            .0,
        200
    );
    json_call(&base, id_call("WAIT_CONTAINER", root.clone())).await;
    assert_eq!(
        json_call(&base, id_call("REMOVE_CONTAINER", root)).await.0,
        200
    );
    assert_eq!(
        json_call(&base, id_call("WAIT_CONTAINER", nested("p", "kept")))
            .await
            .0,
        404,
        "forgotten with its parent"
    );
    parent(&base, "p").await;
    let (status, body) = json_call(&base, launch("kept", "exit 0")).await;
    assert_eq!(status, 200, "{body}");
}
