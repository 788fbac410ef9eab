//! Plugins that fail, lie or hang: the error carries their words, and nothing is left
//! behind (the chain is DELeted, the cache entry goes once DEL succeeded).

use std::time::Instant;

use super::*;
use crate::error::{ErrorKind, Kind};

fn world_with_b(b_body: &str) -> World {
    let w = World::new();
    w.ok_plugin("a", RESULT_A);
    w.plugin("b", b_body);
    w.conf("10-podnet.conflist", LIST);
    w
}

fn commands(w: &World) -> Vec<String> {
    w.calls()
        .iter()
        .map(|c| format!("{} {}", c.plugin, c.command))
        .collect()
}

#[tokio::test]
async fn a_json_error_is_reported_verbatim_and_the_chain_is_undone() {
    let w = world_with_b(
        r#"[ "$CNI_COMMAND" = ADD ] || exit 0
echo '{"cniVersion":"1.0.0","code":7,"msg":"failed to set up \"eth0\": no bridge","details":"lookup cni0: no such device"}'
echo 'stderr noise' >&2
exit 1"#,
    );
    let cni = w.cni();
    let err = cni.add(&attachment("c1", w.dir.path())).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(r#"failed to set up "eth0": no bridge: lookup cni0: no such device"#),
        "{text}"
    );
    assert!(
        text.contains("CNI ADD of c1 on network \"podnet\": plugin b ("),
        "{text}"
    );
    assert!(
        text.contains(&w.bin_dir().join("b").display().to_string()),
        "{text}"
    );
    assert_eq!(err.kind(), ErrorKind::Internal);
    assert!(matches!(err, CniError::PluginFailed { code: Some(7), .. }));
    assert_eq!(commands(&w), ["a ADD", "b ADD", "b DEL", "a DEL"]);
    assert!(w.cache_entries().is_empty());
    assert_eq!(cni.cached("c1", "eth0"), None);
}

#[tokio::test]
async fn stderr_is_the_message_when_stdout_is_not_json() {
    let w = world_with_b(
        "[ \"$CNI_COMMAND\" = ADD ] || exit 0\necho 'half a line'\necho 'iptables: No chain/target/match by that name.' >&2\nexit 2",
    );
    let err = w
        .cni()
        .add(&attachment("c1", w.dir.path()))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .ends_with("failed: iptables: No chain/target/match by that name."),
        "{err}"
    );
}

#[tokio::test]
async fn try_again_later_is_unavailable() {
    let w = world_with_b(
        r#"[ "$CNI_COMMAND" = ADD ] || exit 0; echo '{"code":11,"msg":"busy"}'; exit 1"#,
    );
    let err = w
        .cni()
        .add(&attachment("c1", w.dir.path()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
}

#[tokio::test]
async fn a_result_that_is_not_json_fails_the_add_and_is_undone() {
    let w = world_with_b(r#"[ "$CNI_COMMAND" = ADD ] && echo 'all good!'; exit 0"#);
    let err = w
        .cni()
        .add(&attachment("c1", w.dir.path()))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("plugin b printed an invalid result"),
        "{err}"
    );
    assert_eq!(commands(&w), ["a ADD", "b ADD", "b DEL", "a DEL"]);
    assert!(w.cache_entries().is_empty());
}

#[tokio::test]
async fn a_failed_undo_keeps_the_entry_for_a_later_del() {
    let w = world_with_b(r#"echo "b cannot $CNI_COMMAND" >&2; exit 1"#);
    let cni = w.cni();
    let err = cni.add(&attachment("c1", w.dir.path())).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("failed: b cannot ADD (undoing it with DEL also failed"),
        "{text}"
    );
    assert!(text.contains("failed: b cannot DEL)"), "{text}");
    // a was still asked to DEL although b's DEL failed.
    assert_eq!(commands(&w), ["a ADD", "b ADD", "b DEL", "a DEL"]);
    assert_eq!(w.cache_entries().len(), 1);
    assert_eq!(
        cni.cached("c1", "eth0"),
        None,
        "a pending entry has no result"
    );
    assert!(cni.del("c1", "eth0", None).await.is_err());
    assert_eq!(w.cache_entries().len(), 1);
    w.ok_plugin("b", "{}");
    cni.del("c1", "eth0", None).await.unwrap();
    assert!(w.cache_entries().is_empty());
}

#[tokio::test]
async fn an_add_interrupted_by_a_crash_is_undone_first() {
    let w = World::new();
    w.ok_plugin("a", RESULT_A);
    w.ok_plugin("b", RESULT_B);
    w.conf("10-podnet.conflist", LIST);
    let att = attachment("c1", w.dir.path());
    // What a kill -9 during ADD leaves: the pending entry.
    let list = conf::parse(LIST.as_bytes()).unwrap();
    let entry = Entry::new(
        "podnet",
        list.raw,
        "c1",
        "eth0",
        w.dir.path(),
        RuntimeArgs::from_attachment(&att),
    );
    Cache::new(&w.cache_dir()).write(&entry).unwrap();
    let cni = w.cni();
    cni.add(&att).await.unwrap();
    let calls = w.calls();
    let order: Vec<_> = calls
        .iter()
        .map(|c| format!("{} {}", c.plugin, c.command))
        .collect();
    assert_eq!(order, ["b DEL", "a DEL", "a ADD", "b ADD"]);
    assert!(
        calls[0].stdin.get("prevResult").is_none(),
        "no result was ever cached"
    );
    assert_eq!(
        calls[0].stdin["runtimeConfig"]["portMappings"][0]["hostPort"],
        8080
    );
    assert!(cni.cached("c1", "eth0").is_some());
}

#[tokio::test]
async fn a_hanging_plugin_is_killed_with_its_children() {
    let w = World::new();
    let pids = w.dir.path().join("pids");
    w.plugin(
        "a",
        &format!(
            "[ \"$CNI_COMMAND\" = ADD ] || exit 0\nsleep 300 &\necho $$ $! > '{}'\nwait",
            pids.display()
        ),
    );
    w.conf(
        "10-hang.conf",
        r#"{"cniVersion":"1.0.0","name":"hang","type":"a"}"#,
    );
    let cni = Cni::with_rescan_interval(w.config(Duration::from_millis(500)), Duration::ZERO);
    let started = Instant::now();
    let err = cni.add(&attachment("c1", w.dir.path())).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(err.kind(), ErrorKind::DeadlineExceeded);
    assert!(
        err.to_string()
            .contains("did not finish within 500ms and was killed"),
        "{err}"
    );
    let text = std::fs::read_to_string(&pids).unwrap();
    for pid in text.split_whitespace() {
        let pid: i32 = pid.parse().unwrap();
        assert!(!running(pid), "process {pid} survived");
    }
    // The undo DEL ran (and succeeded), so nothing is cached.
    assert!(w.cache_entries().is_empty());
}

/// Alive and not a zombie (the orphaned `sleep` is reaped by init, not by us).
fn running(pid: i32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| rest.chars().next()))
            .flatten();
        if !matches!(state, Some(s) if s != 'Z' && s != 'X') {
            return false;
        }
        if Instant::now() > deadline {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn bad_attachments_are_refused_before_any_plugin_runs() {
    let w = World::new();
    w.ok_plugin("a", RESULT_A);
    w.conf(
        "10-a.conf",
        r#"{"cniVersion":"1.0.0","name":"a","type":"a"}"#,
    );
    let cni = w.cni();
    let base = attachment("c1", w.dir.path());
    let cases: Vec<(Attachment, &str)> = vec![
        (
            Attachment {
                container_id: "../x".into(),
                ..base.clone()
            },
            "container_id",
        ),
        (
            Attachment {
                ifname: "a-very-long-ifname".into(),
                ..base.clone()
            },
            "ifname",
        ),
        (
            Attachment {
                netns: "relative".into(),
                ..base.clone()
            },
            "netns",
        ),
        (
            Attachment {
                pod_name: "a;b".into(),
                ..base.clone()
            },
            "pod_name",
        ),
        (
            Attachment {
                ips: vec!["nope".into()],
                ..base.clone()
            },
            "ips",
        ),
        (
            Attachment {
                port_mappings: vec![PortMapping {
                    protocol: "icmp".into(),
                    ..base.port_mappings[0].clone()
                }],
                ..base.clone()
            },
            "port_mappings.protocol",
        ),
    ];
    for (att, field) in cases {
        let err = cni.add(&att).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
        assert!(err.to_string().contains(field), "{err}");
    }
    assert!(cni.del("../x", "eth0", None).await.is_err());
    assert!(w.calls().is_empty());
    assert!(w.cache_entries().is_empty());
}
