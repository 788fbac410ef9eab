//! Images end to end: the real `ucr serve`, driven over its CRI socket, against the real
//! local registries that `hack/test-env.sh` starts.

mod common;

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use common::proxy::{Fault, Proxy};
use common::push::{self, Entry};
use common::*;
use k8s_cri::v1 as cri;
use tonic::Code;

fn tagged(repo: &str) -> String {
    format!("{REGISTRY}/{repo}:latest")
}

#[tokio::test]
async fn every_manifest_kind_pulls() {
    require_registries();
    let d = Daemon::start(&[]);
    let mut c = d.images().await;
    let v2 = pull(&mut c, &tagged("ucr-test/busybox"))
        .await
        .expect("docker schema 2");
    let oci = pull(&mut c, &tagged("ucr-test/busybox-oci"))
        .await
        .expect("OCI manifest");
    let s1 = pull(
        &mut c,
        &format!("{SCHEMA1_REGISTRY}/ucr-test/busybox:schema1"),
    )
    .await
    .expect("schema 1 (signed)");
    let from_list = pull(&mut c, &tagged("ucr-test/multiarch"))
        .await
        .expect("docker manifest list");
    let index = pull(&mut c, &tagged("ucr-test/multiarch-oci"))
        .await
        .expect("OCI index");
    let layered = pull(&mut c, &tagged("ucr-test/layered"))
        .await
        .expect("multi-layer");
    // The lists' amd64 entries are the busybox images: same config, same image.
    assert_eq!(
        from_list, v2,
        "manifest list must resolve to the amd64 entry"
    );
    assert_eq!(index, oci, "OCI index must resolve to the amd64 entry");
    assert_ne!(s1, v2, "schema 1 has a reconstructed config");
    assert_ne!(layered, v2);

    let img = status(&mut c, &tagged("ucr-test/multiarch"))
        .await
        .expect("status by tag");
    assert_eq!(img.id, v2);
    assert!(img.repo_tags.contains(&tagged("ucr-test/busybox")));
    assert!(img.repo_tags.contains(&tagged("ucr-test/multiarch")));
    // The list's digest is recorded, and the image can be found by it.
    let by_list_digest = img
        .repo_digests
        .iter()
        .find(|d| d.starts_with(&format!("{REGISTRY}/ucr-test/multiarch@sha256:")))
        .expect("repo digest of the list")
        .clone();
    assert_eq!(
        status(&mut c, &by_list_digest)
            .await
            .expect("status by digest")
            .id,
        v2
    );
    assert_eq!(status(&mut c, &v2).await.expect("status by id").id, v2);
    assert_eq!(
        status(&mut c, &v2[7..19])
            .await
            .expect("status by short id")
            .id,
        v2
    );
    let s1img = status(
        &mut c,
        &format!("{SCHEMA1_REGISTRY}/ucr-test/busybox:schema1"),
    )
    .await
    .expect("schema1");
    assert!(
        s1img.size > 500_000,
        "busybox is about a megabyte: {}",
        s1img.size
    );
    let mut distinct = vec![v2.clone(), oci.clone(), s1.clone(), layered.clone()];
    distinct.sort();
    distinct.dedup();
    assert_eq!(list(&mut c).await.len(), distinct.len());
    assert!(d.scratch_entries().is_empty(), "{:?}", d.scratch_entries());
}

#[tokio::test]
async fn pull_by_digest_records_no_tag() {
    require_registries();
    let d = Daemon::start(&[]);
    let mut c = d.images().await;
    let repo = push::unique_repo("bydigest");
    let pushed = push::push_image(
        REGISTRY,
        &repo,
        "v1",
        &[push::layer(&[Entry::File("hello", b"hi\n")])],
    )
    .await;
    let by_digest = format!("{REGISTRY}/{repo}@{}", pushed.manifest_digest);
    let id = pull(&mut c, &by_digest).await.expect("pull by digest");
    assert_eq!(id, pushed.config_digest);
    let img = status(&mut c, &by_digest).await.expect("status");
    assert!(img.repo_tags.is_empty(), "{:?}", img.repo_tags);
    assert_eq!(img.repo_digests, vec![by_digest.clone()]);
    // A digest that does not match what the registry serves is refused.
    let wrong = format!("{REGISTRY}/{repo}@sha256:{}", "0".repeat(64));
    let e = pull(&mut c, &wrong).await.expect_err("unknown digest");
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
}

#[tokio::test]
async fn zstd_gzip_and_uncompressed_layers_unpack_alike() {
    require_registries();
    let d = Daemon::start(&[]);
    let mut c = d.images().await;
    let repo = push::unique_repo("compression");
    let layers = [
        (
            push::layer(&[Entry::Dir("etc"), Entry::File("etc/gz", b"gzip layer\n")]),
            push::Compression::Gzip,
        ),
        (
            push::layer(&[Entry::File("etc/zst", b"zstd layer\n")]),
            push::Compression::Zstd,
        ),
        (
            push::layer(&[Entry::File("etc/plain", b"plain layer\n")]),
            push::Compression::None,
        ),
    ];
    let pushed = push::push_image_with(REGISTRY, &repo, "latest", &layers).await;
    let id = pull(&mut c, &pushed.reference)
        .await
        .expect("mixed compressions");
    assert_eq!(id, pushed.config_digest);
    let mut contents: Vec<String> = d
        .layer_dirs()
        .iter()
        .flat_map(|l| {
            std::fs::read_dir(l.join("rootfs/etc"))
                .into_iter()
                .flatten()
                .flatten()
        })
        .map(|e| std::fs::read_to_string(e.path()).expect("read"))
        .collect();
    contents.sort();
    assert_eq!(
        contents,
        vec!["gzip layer\n", "plain layer\n", "zstd layer\n"]
    );
}

#[tokio::test]
async fn whiteouts_are_recorded_in_overlay_form() {
    require_registries();
    let d = Daemon::start(&[]);
    let mut c = d.images().await;
    pull(&mut c, &tagged("ucr-test/layered"))
        .await
        .expect("pull");
    // The layer that deletes /data/gone and makes /opaque opaque (see
    // hack/build-test-images.sh) holds a 0/0 char device and the opaque xattr.
    let layer = d
        .layer_dirs()
        .into_iter()
        .map(|l| l.join("rootfs"))
        .find(|l| l.join("opaque/new").exists())
        .expect("whiteout layer");
    let gone = std::fs::symlink_metadata(layer.join("data/gone")).expect("whiteout device");
    assert!(
        gone.file_type().is_char_device() && gone.rdev() == 0,
        "{gone:?}"
    );
    assert!(!layer.join("data/.wh.gone").exists());
    assert!(!layer.join("opaque/.wh..wh..opq").exists());
    let opaque = ucr::sys::fs::lgetxattr(&layer.join("opaque"), b"trusted.overlay.opaque")
        .expect("getxattr");
    assert_eq!(opaque.as_deref(), Some(&b"y"[..]));
    // Hard links inside the layer stay hard links.
    let keep = std::fs::metadata(layer.join("data/keep")).expect("keep");
    let hard = std::fs::metadata(layer.join("data/hard")).expect("hard");
    assert_eq!(keep.ino(), hard.ino());
}

#[tokio::test]
async fn platform_mismatch_names_what_is_offered() {
    require_registries();
    let d = Daemon::start(&[]);
    let mut c = d.images().await;
    let e = pull(&mut c, &tagged("ucr-test/armonly"))
        .await
        .expect_err("no amd64");
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    assert!(
        e.message().contains("linux/arm64") && e.message().contains("linux/ppc64le"),
        "{}",
        e.message()
    );
    assert!(list(&mut c).await.is_empty());
}

#[tokio::test]
async fn auth_accepted_and_refused() {
    require_registries();
    let image = format!("{AUTH_REGISTRY}/ucr-test/busybox:latest");
    let d = Daemon::start(&[]);
    let mut c = d.images().await;
    let e = pull(&mut c, &image).await.expect_err("no credentials");
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
    let wrong = cri::AuthConfig {
        username: AUTH_USER.into(),
        password: "wrong".into(),
        ..Default::default()
    };
    let e = pull_with(&mut c, &image, Some(wrong))
        .await
        .expect_err("wrong password");
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
    assert!(list(&mut c).await.is_empty());
    let right = cri::AuthConfig {
        username: AUTH_USER.into(),
        password: AUTH_PASSWORD.into(),
        ..Default::default()
    };
    pull_with(&mut c, &image, Some(right))
        .await
        .expect("user and password");
    remove(&mut c, &image).await.expect("remove");
    use base64::Engine as _;
    let auth =
        base64::engine::general_purpose::STANDARD.encode(format!("{AUTH_USER}:{AUTH_PASSWORD}"));
    let encoded = cri::AuthConfig {
        auth: auth.clone(),
        ..Default::default()
    };
    pull_with(&mut c, &image, Some(encoded))
        .await
        .expect("auth field");
    drop(c);
    drop(d);

    // The same credentials from --docker-config.
    let config = format!(r#"{{"auths":{{"{AUTH_REGISTRY}":{{"auth":"{auth}"}}}}}}"#);
    let d = Daemon::start(&["--docker-config", &config]);
    let mut c = d.images().await;
    pull(&mut c, &image)
        .await
        .expect("credentials from --docker-config");
}

/// A pull token for `repository` straight from the token server, as a kubelet
/// credential provider would hand one over.
async fn fetch_token(repository: &str) -> String {
    let resp = reqwest::Client::new()
        .get(format!("http://{TOKEN_SERVER}/token"))
        .basic_auth(AUTH_USER, Some(AUTH_PASSWORD))
        .query(&[
            ("service", TOKEN_SERVICE.to_string()),
            ("scope", format!("repository:{repository}:pull")),
        ])
        .send()
        .await
        .expect("token server");
    assert!(
        resp.status().is_success(),
        "token server: {}",
        resp.status()
    );
    let json: serde_json::Value = resp.json().await.expect("token JSON");
    json["token"].as_str().expect("token field").to_string()
}

#[tokio::test]
async fn bearer_token_auth_every_credential_kind() {
    require_registries();
    let image = format!("{TOKEN_REGISTRY}/ucr-test/busybox:latest");
    let d = Daemon::start(&[]);
    let mut c = d.images().await;
    let refused = |what: &str, e: tonic::Status| {
        assert_eq!(e.code(), Code::Unauthenticated, "{what}: {e:?}");
    };

    // The token server gives no token without credentials.
    let e = pull(&mut c, &image).await.expect_err("no credentials");
    refused("no credentials", e);
    let wrong = cri::AuthConfig {
        username: AUTH_USER.into(),
        password: "wrong".into(),
        ..Default::default()
    };
    let e = pull_with(&mut c, &image, Some(wrong))
        .await
        .expect_err("wrong password");
    refused("wrong password", e);
    let wrong = cri::AuthConfig {
        identity_token: "not-the-refresh-token".into(),
        ..Default::default()
    };
    let e = pull_with(&mut c, &image, Some(wrong))
        .await
        .expect_err("wrong identity token");
    refused("wrong identity token", e);
    // A token for another repository: the registry refuses it, and without other
    // credentials the daemon cannot get a better one.
    let other = cri::AuthConfig {
        registry_token: fetch_token("ucr-test/other").await,
        ..Default::default()
    };
    let e = pull_with(&mut c, &image, Some(other))
        .await
        .expect_err("token for another repository");
    refused("token for another repository", e);
    assert!(list(&mut c).await.is_empty());

    // User and password: sent to the token server with HTTP Basic (GET).
    let right = cri::AuthConfig {
        username: AUTH_USER.into(),
        password: AUTH_PASSWORD.into(),
        ..Default::default()
    };
    let id = pull_with(&mut c, &image, Some(right))
        .await
        .expect("user and password");
    remove(&mut c, &image).await.expect("remove");

    // An identity token alone: only the OAuth2 POST refresh-token exchange gets a token
    // with it (a GET without Basic credentials is refused).
    let identity = cri::AuthConfig {
        identity_token: TOKEN_REFRESH.into(),
        ..Default::default()
    };
    let again = pull_with(&mut c, &image, Some(identity))
        .await
        .expect("identity token");
    assert_eq!(again, id);
    remove(&mut c, &image).await.expect("remove");

    // A registry token alone: it must reach the registry as is (any exchange would
    // be refused, having no credentials).
    let token = cri::AuthConfig {
        registry_token: fetch_token("ucr-test/busybox").await,
        ..Default::default()
    };
    let again = pull_with(&mut c, &image, Some(token))
        .await
        .expect("registry token");
    assert_eq!(again, id);
}

#[tokio::test]
async fn mirrors_are_tried_in_order_before_the_registry() {
    require_registries();
    // A mirror that refuses connections, then one that has the image; docker.io itself
    // is unreachable from here, so success proves the second mirror served it.
    let d = Daemon::start(&[
        "--registry-mirror",
        "docker.io=http://127.0.0.1:1",
        "--registry-mirror",
        &format!("docker.io=http://{REGISTRY}"),
    ]);
    let mut c = d.images().await;
    let id = pull(&mut c, "busybox")
        .await
        .expect("pull through the mirror");
    let img = status(&mut c, "docker.io/library/busybox:latest")
        .await
        .expect("normalised tag");
    assert_eq!(img.id, id);
    assert_eq!(
        img.repo_tags,
        vec!["docker.io/library/busybox:latest".to_string()]
    );
    assert!(img.repo_digests[0].starts_with("docker.io/library/busybox@sha256:"));
    assert!(
        d.logs().contains("127.0.0.1:1"),
        "the first mirror was tried"
    );
}

#[tokio::test]
async fn bad_input_gets_precise_errors_and_changes_nothing() {
    require_registries();
    let d = Daemon::start(&[]);
    let mut c = d.images().await;
    pull(&mut c, &tagged("ucr-test/busybox"))
        .await
        .expect("baseline");
    let before = tree(&d.store().join("layers"));
    for (image, code, needle) in [
        ("", Code::InvalidArgument, "image.image"),
        ("Busybox", Code::InvalidArgument, "lowercase"),
        ("busybox@sha256:abc", Code::InvalidArgument, "wrong length"),
        ("a@b@c", Code::InvalidArgument, "more than one"),
        ("busybox:bad tag", Code::InvalidArgument, "whitespace"),
        (
            &format!("{REGISTRY}/ucr-test/no-such-image:latest"),
            Code::NotFound,
            "manifest not found",
        ),
        ("127.0.0.1:1/x:latest", Code::Unavailable, "127.0.0.1:1"),
    ] {
        let e = pull(&mut c, image).await.expect_err(image);
        assert_eq!(e.code(), code, "{image}: {e:?}");
        assert!(e.message().contains(needle), "{image}: {}", e.message());
    }
    let e = c
        .image_status(cri::ImageStatusRequest {
            image: spec("Not A Ref"),
            verbose: false,
        })
        .await
        .expect_err("bad status ref");
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(list(&mut c).await.len(), 1);
    assert_eq!(tree(&d.store().join("layers")), before);
    assert!(d.scratch_entries().is_empty());
}

#[tokio::test]
async fn corrupted_blob_is_rejected_and_nothing_is_stored() {
    require_registries();
    let repo = push::unique_repo("corrupt");
    let random: Vec<u8> = (0..256 * 1024).map(|_| rand::random::<u8>()).collect();
    let pushed = push::push_image(
        REGISTRY,
        &repo,
        "latest",
        &[push::layer(&[Entry::File("blob", &random)])],
    )
    .await;
    let hex = &pushed.layer_digests[0][7..];
    let data = registry_storage().join(format!("blobs/sha256/{}/{hex}/data", &hex[..2]));
    let mut bytes = std::fs::read(&data).expect("blob in registry storage");
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 64] {
        *b ^= 0xff;
    }
    std::fs::write(&data, &bytes).expect("corrupt blob");

    let d = Daemon::start(&[]);
    let mut c = d.images().await;
    let e = pull(&mut c, &pushed.reference)
        .await
        .expect_err("corrupt blob");
    assert_eq!(e.code(), Code::DataLoss, "{e:?}");
    assert!(
        e.message().contains(&pushed.layer_digests[0]),
        "{}",
        e.message()
    );
    assert!(list(&mut c).await.is_empty());
    assert!(d.layer_dirs().is_empty(), "{:?}", d.layer_dirs());
    assert!(d.scratch_entries().is_empty(), "{:?}", d.scratch_entries());
}

#[tokio::test]
async fn hostile_layers_are_rejected() {
    require_registries();
    let d = Daemon::start(&[]);
    let mut c = d.images().await;
    let outside = d.dir.path().join("escaped");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "dotdot",
            push::layer(&[Entry::RawFile(b"../../../../escaped", b"x")]),
        ),
        (
            "symlink",
            push::layer(&[
                Entry::Symlink("evil", d.dir.path().to_str().expect("utf8")),
                Entry::File("evil/escaped", b"x"),
            ]),
        ),
        (
            "hardlink",
            push::layer(&[Entry::Hardlink("h", "../../../../etc/passwd")]),
        ),
    ];
    for (name, layer) in cases {
        let repo = push::unique_repo(name);
        let pushed = push::push_image(REGISTRY, &repo, "latest", &[layer]).await;
        let e = pull(&mut c, &pushed.reference).await.expect_err(name);
        assert_eq!(e.code(), Code::InvalidArgument, "{name}: {e:?}");
        assert!(!outside.exists(), "{name}: wrote outside the layer");
    }
    assert!(list(&mut c).await.is_empty());
    assert!(d.layer_dirs().is_empty());
    assert!(d.scratch_entries().is_empty());
}

#[tokio::test]
async fn a_connection_cut_mid_layer_leaves_nothing_and_a_retry_works() {
    require_registries();
    let proxy = Proxy::start(REGISTRY, Fault::CutBlobAfter(100_000)).await;
    let d = Daemon::start(&["--insecure-registry", &proxy.addr]);
    let mut c = d.images().await;
    let image = format!("{}/ucr-test/layered:latest", proxy.addr);
    let e = pull(&mut c, &image).await.expect_err("cut");
    assert_eq!(e.code(), Code::Unavailable, "{e:?}");
    assert!(list(&mut c).await.is_empty());
    assert!(d.scratch_entries().is_empty(), "{:?}", d.scratch_entries());
    proxy.disarm();
    pull(&mut c, &image).await.expect("retry");
    assert_eq!(list(&mut c).await.len(), 1);
}

#[tokio::test]
async fn a_stalled_transfer_is_cancelled_by_the_progress_timeout() {
    require_registries();
    let proxy = Proxy::start(REGISTRY, Fault::StallBlobAfter(100_000)).await;
    let d = Daemon::start(&[
        "--insecure-registry",
        &proxy.addr,
        "--image-pull-progress-timeout",
        "2s",
    ]);
    let mut c = d.images().await;
    let e = pull(&mut c, &format!("{}/ucr-test/layered:latest", proxy.addr))
        .await
        .expect_err("stalled");
    assert_eq!(e.code(), Code::DeadlineExceeded, "{e:?}");
    assert!(
        e.message().contains("no progress for 2s"),
        "{}",
        e.message()
    );
    assert!(d.scratch_entries().is_empty());
}

#[tokio::test]
async fn concurrent_pulls_download_each_blob_once() {
    require_registries();
    let proxy = Proxy::start(REGISTRY, Fault::None).await;
    let d = Daemon::start(&["--insecure-registry", &proxy.addr]);
    let layered = format!("{}/ucr-test/layered:latest", proxy.addr);
    let layered_oci = format!("{}/ucr-test/layered-oci:latest", proxy.addr);
    let mut tasks = Vec::new();
    for i in 0..6 {
        let image = if i % 2 == 0 {
            layered.clone()
        } else {
            layered_oci.clone()
        };
        let mut c = d.images().await;
        tasks.push(tokio::spawn(async move { pull(&mut c, &image).await }));
    }
    for t in tasks {
        t.await.expect("join").expect("pull");
    }
    // layered (4 layers) and layered-oci (same layers, other blobs) share diff ids, so
    // the second image's layers need no download at all when the first got there first;
    // whatever the interleaving, no blob is fetched twice.
    let gets = proxy.blob_gets();
    let mut unique = gets.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        gets.len(),
        unique.len(),
        "a blob was downloaded twice: {gets:#?}"
    );
    let mut c = d.images().await;
    assert_eq!(
        list(&mut c).await.len(),
        1,
        "both tags name one image (same config)"
    );
}

#[tokio::test]
async fn remove_by_tag_id_and_digest() {
    require_registries();
    let d = Daemon::start(&["--registry-mirror", &format!("docker.io=http://{REGISTRY}")]);
    let mut c = d.images().await;
    let id = pull(&mut c, &tagged("ucr-test/busybox"))
        .await
        .expect("pull");
    assert_eq!(pull(&mut c, "busybox").await.expect("second tag"), id);
    let layers = d.layer_dirs();
    assert_eq!(layers.len(), 1);
    // One of two tags: just the tag goes.
    remove(&mut c, "busybox").await.expect("untag");
    let img = status(&mut c, &id).await.expect("still there");
    assert_eq!(img.repo_tags, vec![tagged("ucr-test/busybox")]);
    assert!(status(&mut c, "busybox").await.is_none());
    // The last tag: the image and its layer go.
    remove(&mut c, &tagged("ucr-test/busybox"))
        .await
        .expect("last tag");
    assert!(status(&mut c, &id).await.is_none());
    assert!(d.layer_dirs().is_empty());
    // Unknown images are not an error.
    remove(&mut c, &tagged("ucr-test/busybox"))
        .await
        .expect("idempotent");
    remove(&mut c, &format!("sha256:{}", "a".repeat(64)))
        .await
        .expect("idempotent id");
    // By id and by digest.
    let id = pull(&mut c, &tagged("ucr-test/busybox"))
        .await
        .expect("pull again");
    remove(&mut c, &id).await.expect("by id");
    assert!(list(&mut c).await.is_empty());
    pull(&mut c, &tagged("ucr-test/busybox"))
        .await
        .expect("pull again");
    let digest = status(&mut c, &id).await.expect("status").repo_digests[0].clone();
    remove(&mut c, &digest).await.expect("by digest");
    assert!(list(&mut c).await.is_empty());
}

#[tokio::test]
async fn local_archives_serve_hostless_names() {
    require_registries();
    let archives = archives_dir();
    let d = Daemon::start(&["--docker-registry", archives.to_str().expect("utf8")]);
    let mut c = d.images().await;
    let docker_save = pull(&mut c, "busybox").await.expect("docker save archive");
    let oci = pull(&mut c, "busybox-oci").await.expect("OCI archive");
    assert_eq!(docker_save, oci, "the same image, packed two ways");
    pull(&mut c, "layered").await.expect("multi-layer archive");
    let e = pull(&mut c, "nothere").await.expect_err("no archive");
    assert_eq!(e.code(), Code::NotFound);
    assert!(
        e.message().contains(archives.to_str().expect("utf8")),
        "{}",
        e.message()
    );
    // A name with a registry host still goes to that registry.
    pull(&mut c, &tagged("ucr-test/busybox"))
        .await
        .expect("registry");
    assert!(
        d.scratch_entries().is_empty(),
        "archives are unpacked in tmp/ and removed"
    );
}

#[tokio::test]
async fn fs_info_and_pinned_images() {
    require_registries();
    let d = Daemon::start(&["--pinned-images", &tagged("ucr-test/busybox")]);
    let mut c = d.images().await;
    let empty = c
        .image_fs_info(cri::ImageFsInfoRequest {})
        .await
        .expect("fs info")
        .into_inner();
    pull(&mut c, &tagged("ucr-test/busybox"))
        .await
        .expect("pull");
    pull(&mut c, &tagged("ucr-test/layered"))
        .await
        .expect("pull");
    let info = c
        .image_fs_info(cri::ImageFsInfoRequest {})
        .await
        .expect("fs info")
        .into_inner();
    let fs = &info.image_filesystems[0];
    assert_eq!(
        fs.fs_id.as_ref().expect("fs id").mountpoint,
        d.store().display().to_string()
    );
    let used = fs.used_bytes.as_ref().expect("bytes").value;
    assert!(
        used > empty.image_filesystems[0]
            .used_bytes
            .as_ref()
            .expect("bytes")
            .value
            + 1_000_000
    );
    assert!(
        fs.inodes_used.as_ref().expect("inodes").value > 270,
        "busybox has ~270 entries"
    );
    assert!(
        status(&mut c, &tagged("ucr-test/busybox"))
            .await
            .expect("busybox")
            .pinned
    );
    assert!(
        !status(&mut c, &tagged("ucr-test/layered"))
            .await
            .expect("layered")
            .pinned
    );
}

#[tokio::test]
async fn a_daemon_killed_mid_pull_restarts_clean() {
    require_registries();
    let proxy = Proxy::start(REGISTRY, Fault::StallBlobAfter(100_000)).await;
    let mut d = Daemon::start(&["--insecure-registry", &proxy.addr]);
    let image = format!("{}/ucr-test/layered:latest", proxy.addr);
    let mut c = d.images().await;
    let pulling = tokio::spawn(async move { pull(&mut c, &image).await });
    // Wait until a layer is half-written in tmp/, then crash.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while d.scratch_entries().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the pull never started"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    d.kill9();
    let _ = pulling.await;
    assert!(
        !d.scratch_entries().is_empty(),
        "the crash left partial work"
    );
    proxy.disarm();
    d.restart();
    assert!(
        d.scratch_entries().is_empty(),
        "start-up removed the partial work"
    );
    let mut c = d.images().await;
    assert!(
        list(&mut c).await.is_empty(),
        "nothing half-pulled is visible"
    );
    pull(&mut c, &format!("{}/ucr-test/layered:latest", proxy.addr))
        .await
        .expect("pull after restart");
}

/// GC on a small loop-mounted filesystem: least recently used images go first until the
/// disk is under the threshold; excluded and pinned images stay. Needs root (mount).
#[tokio::test]
async fn gc_frees_a_full_disk_sparing_excluded_and_pinned_images() {
    require_registries();
    if !is_root() {
        eprintln!("SKIPPED gc_frees_a_full_disk…: needs root to loop-mount a filesystem");
        return;
    }
    let dir = tempfile::Builder::new()
        .prefix("ucr-gc-")
        .tempdir()
        .expect("tempdir");
    let mnt = dir.path().join("mnt");
    let _fs = LoopFs::new(dir.path(), &mnt, 64);
    let gc = r#"{"image_disk_headroom":0.5,"image_disk_watch_interval":"1s","excluded_images":["127.0.0.1:5000/ucr-test/busybox-oci:latest"]}"#;
    let daemon_dir = tempfile::Builder::new()
        .prefix("ucr-test-")
        .tempdir()
        .expect("tempdir");
    let d = Daemon::start_at(
        daemon_dir,
        mnt.join("root"),
        &[
            "--image-gc-config",
            gc,
            "--pinned-images",
            &tagged("ucr-test/multiarch"),
        ],
    );
    let mut c = d.images().await;
    for repo in [
        "ucr-test/busybox-oci",
        "ucr-test/multiarch",
        "ucr-test/layered",
    ] {
        pull(&mut c, &tagged(repo)).await.expect(repo);
    }
    // Fill the disk past 50%: GC must remove layered (not excluded, not pinned).
    let filler = mnt.join("filler");
    std::fs::write(&filler, vec![0u8; 40 << 20]).expect("filler");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while status(&mut c, &tagged("ucr-test/layered")).await.is_some() {
        assert!(
            std::time::Instant::now() < deadline,
            "GC did not run:\n{}",
            d.logs()
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(
        status(&mut c, &tagged("ucr-test/busybox-oci"))
            .await
            .is_some(),
        "excluded image kept"
    );
    assert!(
        status(&mut c, &tagged("ucr-test/multiarch"))
            .await
            .is_some(),
        "pinned image kept"
    );
    assert!(d.logs().contains("removed image"), "removals are logged");
    drop(c);
    drop(d);
}

/// A loop-mounted ext4 filesystem, unmounted on drop.
struct LoopFs {
    mnt: std::path::PathBuf,
}

impl LoopFs {
    fn new(dir: &Path, mnt: &Path, mib: u64) -> LoopFs {
        let img = dir.join("fs.img");
        std::fs::File::create(&img)
            .and_then(|f| f.set_len(mib << 20))
            .expect("image file");
        let ok = std::process::Command::new("mkfs.ext4")
            .args(["-q", "-F"])
            .arg(&img)
            .status()
            .expect("mkfs.ext4")
            .success();
        assert!(ok, "mkfs.ext4 failed");
        std::fs::create_dir_all(mnt).expect("mountpoint");
        let ok = std::process::Command::new("mount")
            .args(["-o", "loop"])
            .arg(&img)
            .arg(mnt)
            .status()
            .expect("mount")
            .success();
        assert!(ok, "loop mount failed");
        LoopFs {
            mnt: mnt.to_path_buf(),
        }
    }
}

impl Drop for LoopFs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.mnt)
            .status();
    }
}
