//! The store as a library, against the real local registries: what the containerizer
//! (next issue) relies on — use counts that protect images — and concurrency rules that
//! are hard to observe through the CRI.

mod common;

use common::*;
use ucr::error::{ErrorKind, Kind};

#[tokio::test]
async fn used_images_survive_prune_and_refuse_removal() {
    require_registries();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_store(dir.path());
    let used = store
        .pull(&format!("{REGISTRY}/ucr-test/busybox:latest"), None)
        .await
        .expect("pull");
    let unused = store
        .pull(&format!("{REGISTRY}/ucr-test/layered:latest"), None)
        .await
        .expect("pull");
    store.acquire(&used.id).await.expect("acquire");
    store.acquire(&used.id).await.expect("second container");

    let report = store.prune(&[], &|| true).await.expect("prune");
    assert_eq!(report.images, vec![unused.id.clone()]);
    assert!(store.status(&used.id).expect("status").is_some());
    let e = store.remove(&used.id).await.expect_err("in use");
    assert_eq!(e.kind(), ErrorKind::FailedPrecondition);
    assert!(e.to_string().contains("2 container"), "{e}");

    store.release(&used.id).await.expect("release");
    store.release(&used.id).await.expect("release");
    store.remove(&used.id).await.expect("no longer used");
    assert!(store.list(None).expect("list").is_empty());
    assert_eq!(
        store.acquire(&used.id).await.expect_err("gone").kind(),
        ErrorKind::NotFound
    );
}

// Multi-threaded, like the daemon: the two pulls must really record at the same time.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_pulls_of_two_tags_of_one_image_keep_both_tags() {
    require_registries();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_store(dir.path());
    // ucr-test/busybox and library/busybox are the same image under two names.
    let (first, second) = (
        format!("{REGISTRY}/ucr-test/busybox:latest"),
        format!("{REGISTRY}/library/busybox:latest"),
    );
    for _ in 0..10 {
        let (a, b) = tokio::join!(store.pull(&first, None), store.pull(&second, None));
        let (a, b) = (a.expect("pull a"), b.expect("pull b"));
        assert_eq!(a.id, b.id);
        let image = store.status(&a.id).expect("status").expect("present");
        assert_eq!(image.repo_tags.len(), 2, "{:?}", image.repo_tags);
        store.remove(&a.id).await.expect("remove");
    }
}

#[tokio::test]
async fn a_reopened_store_keeps_images_and_drops_unrecorded_layers() {
    require_registries();
    let dir = tempfile::tempdir().expect("tempdir");
    let id = {
        let store = open_store(dir.path());
        store
            .pull(&format!("{REGISTRY}/ucr-test/busybox:latest"), None)
            .await
            .expect("pull")
            .id
    };
    // A layer renamed into place just before a crash, never recorded.
    let stray = dir.path().join("layers").join("f".repeat(64));
    std::fs::create_dir_all(stray.join("rootfs")).expect("stray layer");
    std::fs::write(dir.path().join("tmp/partial"), b"x").expect("partial");
    let store = open_store(dir.path());
    assert!(store.status(&id).expect("status").is_some());
    assert!(!stray.exists(), "unrecorded layer removed at start-up");
    assert!(!dir.path().join("tmp/partial").exists());
}
