//! Loading the config directory: order, skipping, readiness reasons and reloads.

use super::*;

#[test]
fn files_load_in_lexical_order_and_the_first_valid_is_the_default() {
    let w = World::new();
    w.ok_plugin("a", "{}");
    w.conf(
        "20-b.conflist",
        r#"{"cniVersion":"1.0.0","name":"b","plugins":[{"type":"a"}]}"#,
    );
    w.conf(
        "10-a.conf",
        r#"{"cniVersion":"0.3.1","name":"a","type":"a"}"#,
    );
    w.conf(
        "30-c.json",
        r#"{"cniVersion":"0.4.0","name":"c","type":"a"}"#,
    );
    // Skipped: wrong extension, bad JSON, duplicate name, missing plugin binary.
    w.conf("00-readme.txt", "not a config");
    w.conf("05-broken.conflist", "{");
    w.conf("15-dup.conf", r#"{"name":"b","type":"a"}"#);
    w.conf("25-nobin.conf", r#"{"name":"nobin","type":"nope"}"#);
    let cni = w.cni();
    assert_eq!(cni.networks(), ["a", "b", "c"]);
    assert_eq!(cni.ready(), Ok(()));
}

#[test]
fn not_ready_reasons_name_the_directory_and_each_problem() {
    let w = World::new();
    let cni = w.cni();
    let reason = cni.ready().unwrap_err();
    assert_eq!(
        reason,
        format!("no network config found in {}", w.conf_dir().display())
    );
    w.conf(
        "10-x.conflist",
        r#"{"name":"x","plugins":[{"type":"nope"}]}"#,
    );
    w.conf("20-y.conf", "{");
    let reason = cni.ready().unwrap_err();
    assert!(
        reason.starts_with("no valid network config found in"),
        "{reason}"
    );
    assert!(
        reason.contains("10-x.conflist: plugin \"nope\" not found in"),
        "{reason}"
    );
    assert!(reason.contains("20-y.conf: not valid JSON"), "{reason}");
    assert!(cni.networks().is_empty());

    let missing = Cni::new(CniConfig {
        conf_dir: w.dir.path().join("absent"),
        ..w.config(Duration::from_secs(1))
    });
    let reason = missing.ready().unwrap_err();
    assert!(reason.contains("absent does not exist"), "{reason}");
}

#[tokio::test]
async fn without_a_network_add_fails_as_a_precondition() {
    use crate::error::{ErrorKind, Kind};
    let w = World::new();
    let err = w
        .cni()
        .add(&attachment("c1", w.dir.path()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::FailedPrecondition);
    assert!(err.to_string().contains("no network config found"), "{err}");
    assert!(w.cache_entries().is_empty());
}

#[test]
fn additions_changes_and_removals_take_effect() {
    let w = World::new();
    let cni = w.cni();
    assert!(cni.ready().is_err());
    // A config whose plugin is not installed yet becomes valid once it is.
    w.conf("10-a.conflist", r#"{"name":"a","plugins":[{"type":"a"}]}"#);
    assert!(cni.ready().is_err());
    w.ok_plugin("a", "{}");
    assert_eq!(cni.networks(), ["a"]);
    w.conf("05-z.conf", r#"{"name":"z","type":"a"}"#);
    assert_eq!(cni.networks(), ["z", "a"]);
    // Rewritten in place: same file name, new content.
    w.conf("05-z.conf", r#"{"name":"z2","type":"a"}"#);
    assert_eq!(cni.networks(), ["z2", "a"]);
    std::fs::remove_file(w.conf_dir().join("05-z.conf")).unwrap();
    std::fs::remove_file(w.conf_dir().join("10-a.conflist")).unwrap();
    assert!(cni.networks().is_empty());
    assert!(cni.ready().is_err());
}

#[test]
fn rescans_happen_at_most_once_per_interval() {
    let w = World::new();
    w.ok_plugin("a", "{}");
    let cni = Cni::new(w.config(Duration::from_secs(1)));
    assert!(cni.ready().is_err());
    w.conf("10-a.conf", r#"{"name":"a","type":"a"}"#);
    assert!(cni.ready().is_err(), "checked again within the interval");
    std::thread::sleep(confdir::RESCAN_INTERVAL + Duration::from_millis(100));
    assert_eq!(cni.ready(), Ok(()));
    assert_eq!(cni.networks(), ["a"]);
}

#[tokio::test]
async fn a_named_network_must_exist() {
    use crate::error::{ErrorKind, Kind};
    let w = World::new();
    w.ok_plugin("a", RESULT_A);
    w.conf(
        "10-a.conf",
        r#"{"cniVersion":"1.0.0","name":"first","type":"a"}"#,
    );
    w.conf(
        "20-b.conf",
        r#"{"cniVersion":"1.0.0","name":"second","type":"a"}"#,
    );
    let cni = w.cni();
    let mut att = attachment("c1", w.dir.path());
    att.network = Some("third".into());
    let err = cni.add(&att).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.to_string().contains("\"third\" not found"), "{err}");
    att.network = Some("second".into());
    cni.add(&att).await.unwrap();
    let calls = w.calls();
    assert_eq!(calls[0].stdin["name"], "second");
}
