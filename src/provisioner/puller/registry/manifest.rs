//! Manifest kinds a registry can answer with, and how each becomes a layer list:
//! docker v2 schema 2 and OCI image manifests, docker manifest lists and OCI indexes
//! (resolved to the host platform), and docker v2 schema 1 (signed or not).
//!
//! Schema 2 manifests, lists and indexes are read with `oci-spec`'s types (see
//! `puller/oci.rs` for what is filled in first); schema 1 has none and is read by hand.

use oci_spec::image::{Descriptor, MediaType, Platform};
use serde_json::Value;

use crate::provisioner::puller::oci::{self, Sizes};
use crate::provisioner::reference::Digest;

pub const DOCKER_V2: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_V1: &str = "application/vnd.docker.distribution.manifest.v1+json";
pub const DOCKER_V1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// What we send as `Accept`: newest first, so a registry that can convert picks schema 2.
pub const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.v2+json;q=0.9, \
application/vnd.docker.distribution.manifest.v1+prettyjws;q=0.5, \
application/vnd.docker.distribution.manifest.v1+json;q=0.5";

/// Docker writes this gzipped empty tar for history entries that made no layer; schema 1
/// manifests list it, and like docker we skip it.
const EMPTY_GZ_LAYER: &str =
    "sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4";

/// A descriptor as the puller acts on it: parsed by oci-spec, its digest turned into our
/// [`Digest`] (which the store can verify) when the manifest is read, so that a digest in
/// an algorithm we cannot check fails the pull before anything is fetched.
#[derive(Debug, Clone)]
pub struct Target {
    pub media_type: MediaType,
    pub digest: Digest,
    pub size: u64,
    pub platform: Option<Platform>,
}

impl Target {
    fn of(d: &Descriptor, what: &str) -> Result<Target, ParseError> {
        Ok(Target {
            media_type: d.media_type().clone(),
            digest: oci::digest(d).map_err(|e| ParseError::Invalid(format!("{what}: {e}")))?,
            size: d.size(),
            platform: d.platform().clone(),
        })
    }
}

#[derive(Debug, Clone)]
pub enum Manifest {
    Index(Vec<Target>),
    Image {
        config: Target,
        layers: Vec<Target>,
    },
    /// Layers base first, empty ones dropped; `v1_compat` is the top layer's v1 JSON.
    Schema1 {
        layers: Vec<Digest>,
        v1_compat: Value,
        history: Vec<Value>,
    },
}

/// Whether the manifest body is a signed schema 1, whose digest covers only the JWS
/// payload: then the registry's `Docker-Content-Digest` is the one to trust.
pub fn is_signed_schema1(content_type: &str) -> bool {
    media_type_of(content_type) == DOCKER_V1_SIGNED
}

fn media_type_of(content_type: &str) -> &str {
    content_type.split(';').next().unwrap_or("").trim()
}

/// Parses a manifest. The media type comes from `Content-Type`; registries that answer
/// `application/json` or nothing useful get the body's own `mediaType`/`schemaVersion`.
/// (oci-spec cannot make this choice: it has no docker media types and no schema 1, and
/// its types accept any `mediaType`, so the dispatch stays ours.)
pub fn parse(content_type: &str, body: &[u8]) -> Result<Manifest, ParseError> {
    let json: Value =
        serde_json::from_slice(body).map_err(|e| ParseError::Invalid(format!("not JSON: {e}")))?;
    let mut media_type = media_type_of(content_type).to_string();
    if !matches!(
        media_type.as_str(),
        DOCKER_V2 | DOCKER_LIST | DOCKER_V1 | DOCKER_V1_SIGNED | OCI_MANIFEST | OCI_INDEX
    ) {
        media_type = sniff(&json).ok_or(ParseError::Unsupported(media_type.clone()))?;
    }
    match media_type.as_str() {
        DOCKER_LIST | OCI_INDEX => parse_index(json),
        DOCKER_V2 | OCI_MANIFEST => parse_image(json),
        _ => parse_schema1(&json),
    }
}

fn sniff(json: &Value) -> Option<String> {
    if json.get("schemaVersion").and_then(Value::as_u64) == Some(1) {
        return Some(DOCKER_V1.to_string());
    }
    if let Some(mt) = json.get("mediaType").and_then(Value::as_str) {
        return matches!(mt, DOCKER_V2 | DOCKER_LIST | OCI_MANIFEST | OCI_INDEX)
            .then(|| mt.to_string());
    }
    // OCI lets the mediaType field be absent; the shape tells.
    if json.get("manifests").is_some() {
        Some(OCI_INDEX.to_string())
    } else if json.get("layers").is_some() && json.get("config").is_some() {
        Some(OCI_MANIFEST.to_string())
    } else {
        None
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("unsupported manifest media type {0:?}")]
    Unsupported(String),
    #[error("{0}")]
    Invalid(String),
}

/// A docker manifest list or an OCI index, as oci-spec's `ImageIndex` (docker's list
/// has the same shape; its media types are kept as `MediaType::Other`).
fn parse_index(json: Value) -> Result<Manifest, ParseError> {
    let index = oci::image_index(json, Sizes::Required).map_err(ParseError::Invalid)?;
    let list = index
        .manifests()
        .iter()
        .enumerate()
        .map(|(i, e)| Target::of(e, &format!("manifests[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Manifest::Index(list))
}

/// A docker schema 2 or OCI image manifest, as oci-spec's `ImageManifest` (a docker
/// `mediaType` in the body is kept as `MediaType::Other`; skopeo's OCI manifests have none).
fn parse_image(json: Value) -> Result<Manifest, ParseError> {
    // oci-spec takes any number here; only 2 is this format.
    if json.get("schemaVersion").and_then(Value::as_u64) != Some(2) {
        return Err(ParseError::Invalid("schemaVersion is not 2".into()));
    }
    let manifest = oci::image_manifest(json, Sizes::Required).map_err(ParseError::Invalid)?;
    let config = Target::of(manifest.config(), "config")?;
    let layers = manifest
        .layers()
        .iter()
        .enumerate()
        .map(|(i, l)| Target::of(l, &format!("layers[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Manifest::Image { config, layers })
}

/// Docker schema 1 (signed or not) has no type in oci-spec, which knows only the OCI
/// formats: its `fsLayers`/`history` pairs and the `v1Compatibility` JSON strings inside
/// are read by hand, top layer first, as docker does.
fn parse_schema1(json: &Value) -> Result<Manifest, ParseError> {
    let fs_layers = json
        .get("fsLayers")
        .and_then(Value::as_array)
        .ok_or_else(|| ParseError::Invalid("schema 1 manifest has no fsLayers".into()))?;
    let history = json
        .get("history")
        .and_then(Value::as_array)
        .ok_or_else(|| ParseError::Invalid("schema 1 manifest has no history".into()))?;
    if fs_layers.is_empty() || fs_layers.len() != history.len() {
        return Err(ParseError::Invalid(format!(
            "schema 1 manifest has {} fsLayers and {} history entries",
            fs_layers.len(),
            history.len()
        )));
    }
    let mut v1: Vec<Value> = Vec::with_capacity(history.len());
    for h in history {
        let text = h
            .get("v1Compatibility")
            .and_then(Value::as_str)
            .ok_or_else(|| ParseError::Invalid("history entry without v1Compatibility".into()))?;
        v1.push(
            serde_json::from_str(text)
                .map_err(|e| ParseError::Invalid(format!("v1Compatibility is not JSON: {e}")))?,
        );
    }
    // Entries run top (child) to base; images are built base first.
    let mut layers = Vec::new();
    let mut out_history = Vec::new();
    for (layer, compat) in fs_layers.iter().zip(v1.iter()).rev() {
        let sum = layer
            .get("blobSum")
            .and_then(Value::as_str)
            .ok_or_else(|| ParseError::Invalid("fsLayer without blobSum".into()))?;
        let throwaway = compat.get("throwaway").and_then(Value::as_bool) == Some(true);
        let empty = throwaway || sum == EMPTY_GZ_LAYER;
        let created_by = compat
            .pointer("/container_config/Cmd")
            .and_then(Value::as_array)
            .map(|cmd| {
                cmd.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        let mut entry = serde_json::json!({ "created_by": created_by });
        if let Some(created) = compat.get("created") {
            entry["created"] = created.clone();
        }
        if empty {
            entry["empty_layer"] = Value::Bool(true);
        } else {
            layers.push(
                Digest::parse(sum).map_err(|e| ParseError::Invalid(format!("fsLayer: {e}")))?,
            );
        }
        out_history.push(entry);
    }
    Ok(Manifest::Schema1 {
        layers,
        v1_compat: v1.swap_remove(0),
        history: out_history,
    })
}

/// Picks the entry for `os/arch` (the first one; the variant is not compared).
pub fn choose_platform(entries: &[Target], os: &str, arch: &str) -> Result<Target, String> {
    let found = entries.iter().find(|d| {
        d.platform
            .as_ref()
            .is_some_and(|p| oci::is_platform(p, os, arch))
    });
    match found {
        Some(d) => Ok(d.clone()),
        None => {
            let offered: Vec<String> = entries
                .iter()
                .map(|d| {
                    d.platform
                        .as_ref()
                        .map(oci::platform_name)
                        .unwrap_or_else(|| "unknown".into())
                })
                .collect();
            Err(if offered.is_empty() {
                "nothing".into()
            } else {
                offered.join(", ")
            })
        }
    }
}

/// Builds an image config (OCI shape) from a schema 1 manifest's top v1 JSON, with the
/// diff ids found while unpacking. Its digest becomes the image id.
///
/// Assembled as JSON, not as oci-spec's `ImageConfiguration`: docker's v1 `config` is
/// copied verbatim, and oci-spec's `Config` would drop the keys it does not know
/// (`Hostname`, `OnBuild`…) and reorder the rest, changing these bytes and so the id of
/// every schema 1 image already pulled.
pub fn schema1_config(v1_compat: &Value, history: &[Value], diff_ids: &[Digest]) -> Vec<u8> {
    let mut config = serde_json::Map::new();
    for key in ["architecture", "os", "created", "author", "config"] {
        if let Some(v) = v1_compat.get(key) {
            config.insert(key.to_string(), v.clone());
        }
    }
    config
        .entry("os")
        .or_insert_with(|| Value::String("linux".into()));
    config.insert(
        "rootfs".into(),
        serde_json::json!({
            "type": "layers",
            "diff_ids": diff_ids.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
        }),
    );
    config.insert("history".into(), Value::Array(history.to_vec()));
    serde_json::to_vec(&Value::Object(config)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    #[test]
    fn docker_v2_and_oci_without_media_type() {
        let body = serde_json::json!({
            "schemaVersion": 2,
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": d('c'), "size": 10},
            "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": d('a'), "size": 5},
                       {"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": d('b'), "size": 6}]
        });
        let bytes = serde_json::to_vec(&body).expect("json");
        for ct in [DOCKER_V2, "application/json", ""] {
            match parse(ct, &bytes).expect("parses") {
                Manifest::Image { config, layers } => {
                    assert_eq!(config.digest.to_string(), d('c'));
                    assert_eq!(layers.len(), 2);
                    assert_eq!(layers[1].size, 6);
                }
                other => panic!("{ct}: {other:?}"),
            }
        }
    }

    #[test]
    fn index_platform_choice_names_what_is_offered() {
        let body = serde_json::json!({
            "schemaVersion": 2, "mediaType": OCI_INDEX,
            "manifests": [
                {"mediaType": OCI_MANIFEST, "digest": d('a'), "size": 1, "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
                {"mediaType": OCI_MANIFEST, "digest": d('b'), "size": 1, "platform": {"os": "linux", "architecture": "amd64"}}
            ]
        });
        let Manifest::Index(list) =
            parse(OCI_INDEX, &serde_json::to_vec(&body).expect("json")).expect("parses")
        else {
            panic!("not an index")
        };
        assert_eq!(
            choose_platform(&list, "linux", "amd64")
                .expect("amd64")
                .digest
                .to_string(),
            d('b')
        );
        let offered = choose_platform(&list, "linux", "s390x").expect_err("none");
        assert_eq!(offered, "linux/arm64/v8, linux/amd64");
    }

    #[test]
    fn schema1_is_reversed_and_skips_empty_layers() {
        let body = serde_json::json!({
            "schemaVersion": 1, "name": "x", "tag": "latest",
            "fsLayers": [{"blobSum": d('b')}, {"blobSum": EMPTY_GZ_LAYER}, {"blobSum": d('a')}],
            "history": [
                {"v1Compatibility": "{\"id\":\"top\",\"config\":{\"Cmd\":[\"sh\"]},\"architecture\":\"amd64\"}"},
                {"v1Compatibility": "{\"id\":\"mid\",\"throwaway\":true}"},
                {"v1Compatibility": "{\"id\":\"base\"}"}
            ],
            "signatures": []
        });
        let parsed =
            parse(DOCKER_V1_SIGNED, &serde_json::to_vec(&body).expect("json")).expect("parses");
        let Manifest::Schema1 {
            layers,
            v1_compat,
            history,
        } = parsed
        else {
            panic!("not schema1")
        };
        assert_eq!(
            layers.iter().map(|l| l.to_string()).collect::<Vec<_>>(),
            vec![d('a'), d('b')]
        );
        assert_eq!(v1_compat["id"], "top");
        assert_eq!(history.len(), 3);
        assert_eq!(history[1]["empty_layer"], true);
        let cfg: Value = serde_json::from_slice(&schema1_config(
            &v1_compat,
            &history,
            &[Digest::parse(&d('e')).expect("d")],
        ))
        .expect("config json");
        assert_eq!(cfg["config"]["Cmd"][0], "sh");
        assert_eq!(cfg["rootfs"]["diff_ids"][0], d('e'));
    }

    /// The schema 1 config's digest is the image id: its bytes must not drift.
    #[test]
    fn schema1_config_bytes_are_stable() {
        let body = serde_json::json!({
            "schemaVersion": 1, "name": "x", "tag": "latest",
            "fsLayers": [{"blobSum": d('b')}, {"blobSum": EMPTY_GZ_LAYER}, {"blobSum": d('a')}],
            "history": [
                {"v1Compatibility": "{\"id\":\"top\",\"created\":\"2020-01-02T03:04:05Z\",\"author\":\"me\",\"container_config\":{\"Cmd\":[\"/bin/sh\",\"-c\",\"#(nop) CMD [\\\"sh\\\"]\"]},\"config\":{\"Hostname\":\"h\",\"Cmd\":[\"sh\"],\"OnBuild\":null},\"architecture\":\"amd64\",\"os\":\"linux\"}"},
                {"v1Compatibility": "{\"id\":\"mid\",\"throwaway\":true,\"created\":\"2020-01-01T00:00:00Z\"}"},
                {"v1Compatibility": "{\"id\":\"base\",\"container_config\":{\"Cmd\":[\"/bin/sh\",\"-c\",\"#(nop) ADD file\"]}}"}
            ]
        });
        let Manifest::Schema1 {
            v1_compat, history, ..
        } = parse(DOCKER_V1, &serde_json::to_vec(&body).expect("json")).expect("parses")
        else {
            panic!("not schema1")
        };
        let cfg = schema1_config(
            &v1_compat,
            &history,
            &[
                Digest::parse(&d('e')).expect("d"),
                Digest::parse(&d('f')).expect("d"),
            ],
        );
        assert_eq!(
            String::from_utf8(cfg).expect("utf8"),
            concat!(
                r#"{"architecture":"amd64","author":"me","config":{"Cmd":["sh"],"Hostname":"h","OnBuild":null},"#,
                r#""created":"2020-01-02T03:04:05Z","history":[{"created_by":"/bin/sh -c #(nop) ADD file"},"#,
                r#"{"created":"2020-01-01T00:00:00Z","created_by":"","empty_layer":true},"#,
                r#"{"created":"2020-01-02T03:04:05Z","created_by":"/bin/sh -c #(nop) CMD [\"sh\"]"}],"#,
                r#""os":"linux","rootfs":{"diff_ids":["sha256:eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee","#,
                r#""sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"],"type":"layers"}}"#
            )
        );
    }

    #[test]
    fn media_type_names_agree_with_oci_spec() {
        use oci_spec::image::ToDockerV2S2 as _;
        assert_eq!(MediaType::ImageManifest.as_ref(), OCI_MANIFEST);
        assert_eq!(MediaType::ImageIndex.as_ref(), OCI_INDEX);
        assert_eq!(MediaType::ImageManifest.to_docker_v2s2(), Ok(DOCKER_V2));
        assert_eq!(MediaType::ImageIndex.to_docker_v2s2(), Ok(DOCKER_LIST));
    }

    #[test]
    fn docker_list_and_media_types_in_bodies_are_read() {
        // A docker v2 manifest stating its docker media type, a docker list whose entries
        // do, and one entry with a variant and an `os.version`.
        let body = serde_json::json!({
            "schemaVersion": 2, "mediaType": DOCKER_V2,
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": d('c'), "size": 10},
            "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": d('a'), "size": 5}]
        });
        let bytes = serde_json::to_vec(&body).expect("json");
        let Manifest::Image { layers, .. } = parse("application/json", &bytes).expect("parses")
        else {
            panic!("not an image")
        };
        assert_eq!(
            layers[0].media_type.to_string(),
            "application/vnd.docker.image.rootfs.diff.tar.gzip"
        );
        let list = serde_json::json!({
            "schemaVersion": 2, "mediaType": DOCKER_LIST,
            "manifests": [
                {"mediaType": DOCKER_V2, "digest": d('a'), "size": 1,
                 "platform": {"os": "windows", "architecture": "amd64", "os.version": "10.0.17763.1"}},
                {"mediaType": DOCKER_V2, "digest": d('b'), "size": 1,
                 "platform": {"os": "linux", "architecture": "arm", "variant": "v7"}}
            ]
        });
        let Manifest::Index(list) =
            parse(DOCKER_LIST, &serde_json::to_vec(&list).expect("json")).expect("parses")
        else {
            panic!("not a list")
        };
        assert_eq!(
            choose_platform(&list, "linux", "arm")
                .expect("arm")
                .digest
                .to_string(),
            d('b')
        );
        assert_eq!(
            choose_platform(&list, "linux", "amd64").expect_err("none"),
            "windows/amd64, linux/arm/v7"
        );
    }

    #[test]
    fn descriptor_errors_name_the_descriptor() {
        let e = parse(
            OCI_MANIFEST,
            format!(
                r#"{{"schemaVersion":2,"config":{{"digest":"{}","size":1}},"layers":[{{"digest":"{}"}}]}}"#,
                d('c'),
                d('a')
            )
            .as_bytes(),
        )
        .expect_err("no size");
        assert_eq!(
            e,
            ParseError::Invalid(format!("layers[0] {}: missing field `size`", d('a')))
        );
        let e = parse(
            OCI_INDEX,
            format!(
                r#"{{"manifests":[{{"digest":"sha384:{}","size":1}}]}}"#,
                "a".repeat(96)
            )
            .as_bytes(),
        )
        .expect_err("sha384");
        assert!(
            e.to_string().starts_with("manifests[0]: invalid digest")
                && e.to_string().contains("unsupported digest algorithm"),
            "{e}"
        );
        let e = parse(OCI_INDEX, br#"{"schemaVersion":2}"#).expect_err("no manifests");
        assert_eq!(
            e,
            ParseError::Invalid("manifest list: missing field `manifests`".into())
        );
    }

    #[test]
    fn bad_manifests_say_why() {
        let e = parse(
            DOCKER_V1,
            br#"{"schemaVersion":1,"fsLayers":[],"history":[]}"#,
        )
        .expect_err("empty");
        assert!(e.to_string().contains("0 fsLayers"), "{e}");
        let e = parse(
            "application/vnd.foo",
            br#"{"mediaType":"application/vnd.foo"}"#,
        )
        .expect_err("unknown");
        assert_eq!(e, ParseError::Unsupported("application/vnd.foo".into()));
        let e = parse(
            DOCKER_V2,
            br#"{"schemaVersion":2,"config":{"digest":"sha256:zz","size":1},"layers":[]}"#,
        )
        .expect_err("bad digest");
        assert!(e.to_string().contains("config"), "{e}");
    }
}
