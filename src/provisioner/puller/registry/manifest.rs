//! Manifest kinds a registry can answer with, and how each becomes a layer list:
//! docker v2 schema 2 and OCI image manifests, docker manifest lists and OCI indexes
//! (resolved to the host platform), and docker v2 schema 1 (signed or not).

use serde_json::Value;

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

#[derive(Debug, Clone)]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    pub platform: Option<Platform>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub enum Manifest {
    Index(Vec<Descriptor>),
    Image {
        config: Descriptor,
        layers: Vec<Descriptor>,
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
        DOCKER_LIST | OCI_INDEX => parse_index(&json),
        DOCKER_V2 | OCI_MANIFEST => parse_image(&json),
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

fn descriptor(v: &Value, what: &str) -> Result<Descriptor, ParseError> {
    let digest = v
        .get("digest")
        .and_then(Value::as_str)
        .ok_or_else(|| ParseError::Invalid(format!("{what} has no digest")))?;
    let digest = Digest::parse(digest).map_err(|e| ParseError::Invalid(format!("{what}: {e}")))?;
    let size = v
        .get("size")
        .and_then(Value::as_u64)
        .ok_or_else(|| ParseError::Invalid(format!("{what} {digest} has no size")))?;
    let platform = v.get("platform").map(|p| Platform {
        os: p
            .get("os")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        architecture: p
            .get("architecture")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        variant: p.get("variant").and_then(Value::as_str).map(str::to_string),
    });
    Ok(Descriptor {
        media_type: v
            .get("mediaType")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        digest,
        size,
        platform,
    })
}

fn parse_index(json: &Value) -> Result<Manifest, ParseError> {
    let entries = json
        .get("manifests")
        .and_then(Value::as_array)
        .ok_or_else(|| ParseError::Invalid("manifest list has no manifests array".into()))?;
    let list = entries
        .iter()
        .map(|e| descriptor(e, "manifest list entry"))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Manifest::Index(list))
}

fn parse_image(json: &Value) -> Result<Manifest, ParseError> {
    if json.get("schemaVersion").and_then(Value::as_u64) != Some(2) {
        return Err(ParseError::Invalid("schemaVersion is not 2".into()));
    }
    let config = descriptor(
        json.get("config")
            .ok_or_else(|| ParseError::Invalid("manifest has no config".into()))?,
        "config",
    )?;
    let layers = json
        .get("layers")
        .and_then(Value::as_array)
        .ok_or_else(|| ParseError::Invalid("manifest has no layers array".into()))?
        .iter()
        .map(|l| descriptor(l, "layer"))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Manifest::Image { config, layers })
}

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

/// Picks the entry for `os/arch` (and, for arm, the variant when the list names one).
pub fn choose_platform(entries: &[Descriptor], os: &str, arch: &str) -> Result<Descriptor, String> {
    let found = entries.iter().find(|d| {
        d.platform
            .as_ref()
            .is_some_and(|p| p.os == os && p.architecture == arch)
    });
    match found {
        Some(d) => Ok(d.clone()),
        None => {
            let offered: Vec<String> = entries
                .iter()
                .map(|d| {
                    d.platform
                        .as_ref()
                        .map(|p| p.to_string())
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
