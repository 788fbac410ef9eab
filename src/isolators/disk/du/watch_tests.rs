//! The watcher with a short interval, on real directories.

use std::fs;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::*;

const INTERVAL: Duration = Duration::from_millis(50);
const PATIENCE: Duration = Duration::from_secs(10);

/// Waits until `cond` holds, or fails the test after [`PATIENCE`].
fn eventually<T>(what: &str, mut cond: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = cond() {
            return v;
        }
        assert!(start.elapsed() < PATIENCE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn watcher() -> (Watcher, mpsc::Receiver<OverLimit>) {
    let (tx, rx) = mpsc::channel();
    let w = Watcher::start(INTERVAL, move |over| {
        let _ = tx.send(over);
    })
    .expect("start watcher");
    (w, rx)
}

#[test]
fn figures_follow_the_tree_and_go_with_unregister() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("c1");
    fs::create_dir(&dir).expect("mkdir");
    fs::write(dir.join("a"), vec![1u8; 8192]).expect("write");
    let (w, rx) = watcher();
    assert_eq!(w.last("c1"), None);

    w.register("c1", vec![dir.clone()], None);
    let (first, at) = eventually("a first figure", || w.last("c1"));
    assert_eq!(first, measure(&[&dir]).expect("measure"));

    fs::write(dir.join("b"), vec![2u8; 1 << 20]).expect("write");
    let (second, later) = eventually("a figure with b", || {
        w.last("c1")
            .filter(|(u, _)| u.bytes >= first.bytes + (1 << 20))
    });
    assert_eq!(second.inodes, first.inodes + 1);
    // At most one measurement per interval.
    assert!(
        later.duration_since(at) >= INTERVAL,
        "{:?}",
        later.duration_since(at)
    );
    assert!(rx.try_recv().is_err(), "no limit, no report");

    w.unregister("c1");
    assert_eq!(w.last("c1"), None);
}

#[test]
fn over_the_limit_is_reported_once_per_limit() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("c2");
    fs::create_dir(&dir).expect("mkdir");
    fs::write(dir.join("big"), vec![3u8; 2 << 20]).expect("write");
    let (w, rx) = watcher();

    w.register("c2", vec![dir.clone()], Some(1 << 20));
    let over = rx.recv_timeout(PATIENCE).expect("an over-limit report");
    assert_eq!(over.id, "c2");
    assert_eq!(over.limit, 1 << 20);
    assert!(over.usage.bytes > 2 << 20, "{over:?}");
    assert_eq!(w.last("c2").map(|(u, _)| u), Some(over.usage));
    // Later rounds do not repeat it.
    assert!(rx.recv_timeout(INTERVAL * 5).is_err(), "reported twice");

    // A limit above the usage: quiet; lowered again: reported again.
    assert!(w.set_limit("c2", Some(100 << 20)));
    assert!(rx.recv_timeout(INTERVAL * 4).is_err());
    assert!(w.set_limit("c2", Some(4096)));
    let again = rx.recv_timeout(PATIENCE).expect("a second report");
    assert_eq!(again.limit, 4096);
    assert!(!w.set_limit("nobody", None));
}

#[test]
fn a_failing_measurement_keeps_the_watcher_going() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let good = tmp.path().join("good");
    fs::create_dir(&good).expect("mkdir");
    let (w, _rx) = watcher();
    w.register("gone", vec![tmp.path().join("never-made")], Some(0));
    w.register("good", vec![good.clone()], None);
    eventually("the good container's figure", || w.last("good"));
    assert_eq!(
        w.last("gone"),
        None,
        "no figure for a directory that is not there"
    );
}

#[test]
fn dropping_the_watcher_stops_it_without_waiting_an_interval() {
    let w = Watcher::start(Duration::from_secs(3600), |_| {}).expect("start");
    let t = Instant::now();
    drop(w);
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
}

#[test]
fn sizes_print_as_mesos_prints_them() {
    let cases = [
        (0, "0B"),
        (1, "1B"),
        (1023, "1023B"),
        (1024, "1KB"),
        (1536, "1536B"),
        (3 << 20, "3MB"),
        ((1 << 20) + 1024, "1025KB"),
        (5 << 30, "5GB"),
        (2 << 40, "2TB"),
        (2048 << 40, "2048TB"),
    ];
    for (bytes, text) in cases {
        assert_eq!(mesos_bytes(bytes), text, "{bytes}");
    }
    let over = OverLimit {
        id: "c".into(),
        usage: DiskUsage {
            bytes: 3 << 20,
            inodes: 3,
        },
        limit: 2 << 20,
    };
    assert_eq!(over.message(), "Disk usage (3MB) exceeds quota (2MB)");
}
