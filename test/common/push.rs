//! Pushes crafted images to a test registry through the distribution API, so tests can
//! make layers that no image tool would (hostile paths) or that are unique to one test
//! (safe to corrupt in the registry's storage).

use std::io::Write;

use sha2::{Digest as _, Sha256};

pub fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

pub enum Entry<'a> {
    File(&'a str, &'a [u8]),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
    /// A regular file whose raw name bytes go into the header unchecked (`../x`).
    RawFile(&'a [u8], &'a [u8]),
}

/// An uncompressed layer tar.
pub fn layer(entries: &[Entry]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        match e {
            Entry::File(path, data) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, path, *data).expect("file");
            }
            Entry::Dir(path) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_data(&mut h, path, std::io::empty()).expect("dir");
            }
            Entry::Symlink(path, target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                b.append_link(&mut h, path, target).expect("symlink");
            }
            Entry::Hardlink(path, target) => {
                h.set_entry_type(tar::EntryType::Link);
                h.set_mode(0o644);
                h.set_size(0);
                // append_link validates the target; write it raw so escapes can be tested.
                let gnu = h.as_gnu_mut().expect("gnu");
                gnu.linkname[..target.len()].copy_from_slice(target.as_bytes());
                gnu.name[..path.len()].copy_from_slice(path.as_bytes());
                h.set_cksum();
                b.append(&h, std::io::empty()).expect("hardlink");
            }
            Entry::RawFile(name, data) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(data.len() as u64);
                h.as_gnu_mut().expect("gnu").name[..name.len()].copy_from_slice(name);
                h.set_cksum();
                b.append(&h, *data).expect("raw file");
            }
        }
    }
    b.into_inner().expect("tar")
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).expect("gzip");
    enc.finish().expect("gzip")
}

pub struct Pushed {
    pub reference: String,
    pub manifest_digest: String,
    pub config_digest: String,
    /// Compressed layer digests, base first.
    pub layer_digests: Vec<String>,
}

pub async fn push_blob(registry: &str, repo: &str, data: &[u8]) -> String {
    let http = reqwest::Client::new();
    let digest = sha256(data);
    let resp = http
        .post(format!("http://{registry}/v2/{repo}/blobs/uploads/"))
        .send()
        .await
        .expect("start upload");
    assert_eq!(
        resp.status().as_u16(),
        202,
        "start upload: {}",
        resp.status()
    );
    let location = resp
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .expect("upload location")
        .to_string();
    let location = if location.starts_with("http") {
        location
    } else {
        format!("http://{registry}{location}")
    };
    let sep = if location.contains('?') { '&' } else { '?' };
    let resp = http
        .put(format!("{location}{sep}digest={digest}"))
        .header("content-type", "application/octet-stream")
        .body(data.to_vec())
        .send()
        .await
        .expect("finish upload");
    assert_eq!(
        resp.status().as_u16(),
        201,
        "finish upload: {}",
        resp.status()
    );
    digest
}

pub async fn push_manifest(
    registry: &str,
    repo: &str,
    tag: &str,
    media_type: &str,
    body: &[u8],
) -> String {
    let resp = reqwest::Client::new()
        .put(format!("http://{registry}/v2/{repo}/manifests/{tag}"))
        .header("content-type", media_type)
        .body(body.to_vec())
        .send()
        .await
        .expect("put manifest");
    assert_eq!(
        resp.status().as_u16(),
        201,
        "put manifest: {}",
        resp.text().await.unwrap_or_default()
    );
    sha256(body)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Gzip,
    Zstd,
    None,
}

/// Pushes an image of gzipped `layers` (uncompressed tars) as docker schema 2.
pub async fn push_image(registry: &str, repo: &str, tag: &str, layers: &[Vec<u8>]) -> Pushed {
    let gz: Vec<_> = layers
        .iter()
        .map(|l| (l.clone(), Compression::Gzip))
        .collect();
    push_image_with(registry, repo, tag, &gz).await
}

/// Pushes an image whose layers use the given compressions: docker schema 2 when every
/// layer is gzip, else OCI (whose layer media types can say zstd or none).
pub async fn push_image_with(
    registry: &str,
    repo: &str,
    tag: &str,
    layers: &[(Vec<u8>, Compression)],
) -> Pushed {
    let runtime = serde_json::json!({"Env": ["PATH=/bin"], "Cmd": ["sh"]});
    push_image_config(registry, repo, tag, layers, runtime).await
}

/// [`push_image_with`] with the image config's `config` object (Entrypoint, Cmd, Env,
/// WorkingDir, User…) as given, for tests of docker runtime semantics.
pub async fn push_image_config(
    registry: &str,
    repo: &str,
    tag: &str,
    layers: &[(Vec<u8>, Compression)],
    runtime: serde_json::Value,
) -> Pushed {
    let docker = layers.iter().all(|(_, c)| *c == Compression::Gzip);
    let diff_ids: Vec<String> = layers.iter().map(|(l, _)| sha256(l)).collect();
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": runtime,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let config = serde_json::to_vec(&config).expect("json");
    let config_digest = push_blob(registry, repo, &config).await;
    let mut descs = Vec::new();
    let mut layer_digests = Vec::new();
    for (l, compression) in layers {
        let (blob, media_type) = match (compression, docker) {
            (Compression::Gzip, true) => {
                (gzip(l), "application/vnd.docker.image.rootfs.diff.tar.gzip")
            }
            (Compression::Gzip, false) => (gzip(l), "application/vnd.oci.image.layer.v1.tar+gzip"),
            (Compression::Zstd, _) => (
                zstd::encode_all(l.as_slice(), 3).expect("zstd"),
                "application/vnd.oci.image.layer.v1.tar+zstd",
            ),
            (Compression::None, _) => (l.clone(), "application/vnd.oci.image.layer.v1.tar"),
        };
        let d = push_blob(registry, repo, &blob).await;
        descs.push(serde_json::json!({"mediaType": media_type, "digest": d, "size": blob.len()}));
        layer_digests.push(d);
    }
    let (manifest_type, config_type) = if docker {
        (
            "application/vnd.docker.distribution.manifest.v2+json",
            "application/vnd.docker.container.image.v1+json",
        )
    } else {
        (
            "application/vnd.oci.image.manifest.v1+json",
            "application/vnd.oci.image.config.v1+json",
        )
    };
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": manifest_type,
        "config": {"mediaType": config_type, "digest": config_digest, "size": config.len()},
        "layers": descs,
    });
    let body = serde_json::to_vec(&manifest).expect("json");
    let manifest_digest = push_manifest(registry, repo, tag, manifest_type, &body).await;
    Pushed {
        reference: format!("{registry}/{repo}:{tag}"),
        manifest_digest,
        config_digest,
        layer_digests,
    }
}

/// Pushes `repo:tag`: the layers of the docker schema 2 image `from_repo:from_tag` on the
/// same registry (copied blob by blob) under a new config whose `config` object is
/// `runtime`. For images that need a working userland (busybox's) but crafted runtime
/// settings.
pub async fn push_derived(
    registry: &str,
    from_repo: &str,
    from_tag: &str,
    repo: &str,
    tag: &str,
    runtime: serde_json::Value,
) -> Pushed {
    let http = reqwest::Client::new();
    let get = |url: String| {
        let http = http.clone();
        async move {
            let resp = http
                .get(&url)
                .header(
                    "accept",
                    "application/vnd.docker.distribution.manifest.v2+json",
                )
                .send()
                .await
                .expect("GET");
            assert!(resp.status().is_success(), "GET {url}: {}", resp.status());
            resp.bytes().await.expect("body").to_vec()
        }
    };
    let manifest: serde_json::Value = serde_json::from_slice(
        &get(format!(
            "http://{registry}/v2/{from_repo}/manifests/{from_tag}"
        ))
        .await,
    )
    .expect("manifest json");
    let config_digest = manifest["config"]["digest"]
        .as_str()
        .expect("config digest");
    let mut config: serde_json::Value = serde_json::from_slice(
        &get(format!(
            "http://{registry}/v2/{from_repo}/blobs/{config_digest}"
        ))
        .await,
    )
    .expect("config json");
    config["config"] = runtime;
    let config = serde_json::to_vec(&config).expect("json");
    let config_digest = push_blob(registry, repo, &config).await;
    let mut layer_digests = Vec::new();
    for l in manifest["layers"].as_array().expect("layers") {
        let d = l["digest"].as_str().expect("layer digest");
        let blob = get(format!("http://{registry}/v2/{from_repo}/blobs/{d}")).await;
        layer_digests.push(push_blob(registry, repo, &blob).await);
    }
    let mut manifest = manifest.clone();
    manifest["config"]["digest"] = config_digest.clone().into();
    manifest["config"]["size"] = config.len().into();
    let body = serde_json::to_vec(&manifest).expect("json");
    let manifest_digest = push_manifest(
        registry,
        repo,
        tag,
        "application/vnd.docker.distribution.manifest.v2+json",
        &body,
    )
    .await;
    Pushed {
        reference: format!("{registry}/{repo}:{tag}"),
        manifest_digest,
        config_digest,
        layer_digests,
    }
}

/// A repository name no other test run uses (tests may corrupt what they push).
pub fn unique_repo(prefix: &str) -> String {
    let n: u64 = rand::random();
    format!("ucr-it/{prefix}-{n:016x}")
}
