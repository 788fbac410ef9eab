//! The OCI image-spec documents both pullers read (image manifests, image indexes and
//! docker manifest lists, image configs) are parsed with `oci-spec`'s types. Around them
//! the puller keeps three things of its own:
//!
//! - digests become our [`Digest`], which accepts only the algorithms the store can
//!   verify (oci-spec's takes any well-formed one: `sha384`, `multihash+base58`…);
//! - a field oci-spec requires but the puller never read is filled in when a document
//!   leaves it out (`fill_in`), so that what pulled before still pulls;
//! - errors name the part of the document at fault, which serde's do not (`locate`).
//!
//! What oci-spec has no type for stays hand-parsed where it is read: docker schema 1
//! (`registry/manifest.rs`) and `docker save`'s `manifest.json` (`archive.rs`).

use oci_spec::image::{
    Arch, Descriptor, ImageConfiguration, ImageIndex, ImageManifest, Os, Platform,
};
use serde::de::DeserializeOwned;
use serde::Deserialize as _;
use serde_json::{Map, Value};

use crate::provisioner::reference::Digest;

/// Whether descriptors must state their size. Registry blobs are checked against it as
/// they stream; an archive's files are checked by diff id only, and its index was never
/// required to carry sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sizes {
    Required,
    Optional,
}

/// An image manifest (docker schema 2 or OCI), read from its JSON.
pub fn image_manifest(mut doc: Value, sizes: Sizes) -> Result<ImageManifest, String> {
    fill_in(&mut doc, sizes);
    typed(&doc, "manifest")
}

/// An OCI image index or a docker manifest list, read from its JSON.
pub fn image_index(mut doc: Value, sizes: Sizes) -> Result<ImageIndex, String> {
    fill_in(&mut doc, sizes);
    typed(&doc, "manifest list")
}

/// An image config. oci-spec requires `architecture`, `os` and `rootfs.type`, which the
/// puller never read or checked (and our own schema 1 conversion, `schema1_config`, has
/// no `architecture` when the v1 JSON had none): absent ones are filled in, empty, for
/// the parse. The config the store keeps is the original bytes.
pub fn image_config(config: &[u8]) -> Result<ImageConfiguration, String> {
    let mut doc: Value =
        serde_json::from_slice(config).map_err(|e| format!("image config is not JSON: {e}"))?;
    if let Some(obj) = doc.as_object_mut() {
        fill(obj, "architecture", Value::from(""));
        fill(obj, "os", Value::from(""));
        if let Some(rootfs) = obj.get_mut("rootfs").and_then(Value::as_object_mut) {
            fill(rootfs, "type", Value::from(""));
        }
    }
    ImageConfiguration::deserialize(&doc).map_err(|e| format!("image config: {e}"))
}

/// `rootfs.diff_ids` of an image config, base layer first.
pub fn config_diff_ids(config: &[u8]) -> Result<Vec<Digest>, String> {
    image_config(config)?
        .rootfs()
        .diff_ids()
        .iter()
        .map(|s| Digest::parse(s).map_err(|e| e.to_string()))
        .collect()
}

/// A descriptor's digest as the store verifies it.
pub fn digest(d: &Descriptor) -> Result<Digest, String> {
    Digest::parse(d.digest().as_ref()).map_err(|e| e.to_string())
}

/// `os/architecture[/variant]`, as docker and containerd name platforms.
///
/// oci-spec reads every GOARCH name back as itself but one: `armbe` becomes `arm64be`
/// (a slip in its table), so an entry for `armbe` is named that way here.
pub fn platform_name(p: &Platform) -> String {
    let mut name = format!("{}/{}", p.os(), p.architecture());
    if let Some(v) = p.variant() {
        name.push('/');
        name.push_str(v);
    }
    name
}

/// Whether `p` is `os/arch` (the variant is not compared: the host's is not known).
pub fn is_platform(p: &Platform, os: &str, arch: &str) -> bool {
    *p.os() == Os::from(os) && *p.architecture() == Arch::from(arch)
}

fn typed<T: DeserializeOwned>(doc: &Value, what: &str) -> Result<T, String> {
    T::deserialize(doc).map_err(|e| locate(doc, what, e))
}

/// Completes what oci-spec requires and the puller never needed, where it is absent (a
/// field present with the wrong type is still refused):
///
/// - `schemaVersion`: a registry's manifest lists and indexes were read without looking
///   at it, and so were an archive's OCI layout documents; registry image manifests are
///   checked to say 2 before they get here;
/// - a descriptor's `mediaType`: what a descriptor points at is told by the content type
///   the registry answers with, or by its shape, never by this field;
/// - a descriptor's `size`, when [`Sizes::Optional`];
/// - a platform's `os` and `architecture`: an entry without them matches no host, and is
///   listed with the part missing (`/arm64`) when none matches.
///
/// The filled-in values are empty (or 0 for a size) and mean "not stated".
fn fill_in(doc: &mut Value, sizes: Sizes) {
    let Some(obj) = doc.as_object_mut() else {
        return;
    };
    fill(obj, "schemaVersion", Value::from(2));
    if let Some(config) = obj.get_mut("config") {
        fill_descriptor(config, sizes);
    }
    for list in ["layers", "manifests"] {
        if let Some(entries) = obj.get_mut(list).and_then(Value::as_array_mut) {
            entries.iter_mut().for_each(|d| fill_descriptor(d, sizes));
        }
    }
}

fn fill_descriptor(d: &mut Value, sizes: Sizes) {
    let Some(obj) = d.as_object_mut() else {
        return;
    };
    fill(obj, "mediaType", Value::from(""));
    if sizes == Sizes::Optional {
        fill(obj, "size", Value::from(0));
    }
    if let Some(platform) = obj.get_mut("platform").and_then(Value::as_object_mut) {
        fill(platform, "os", Value::from(""));
        fill(platform, "architecture", Value::from(""));
    }
}

fn fill(obj: &mut Map<String, Value>, key: &str, value: Value) {
    obj.entry(key).or_insert(value);
}

/// serde's error says what is wrong but not where; find the descriptor it is about.
fn locate(doc: &Value, what: &str, e: serde_json::Error) -> String {
    let mut parts: Vec<(String, &Value)> = Vec::new();
    if let Some(config) = doc.get("config") {
        parts.push(("config".into(), config));
    }
    for list in ["layers", "manifests"] {
        if let Some(entries) = doc.get(list).and_then(Value::as_array) {
            parts.extend(
                entries
                    .iter()
                    .enumerate()
                    .map(|(i, d)| (format!("{list}[{i}]"), d)),
            );
        }
    }
    for (name, part) in parts {
        if let Err(e) = Descriptor::deserialize(part) {
            return match part.get("digest").and_then(Value::as_str) {
                Some(digest) => format!("{name} {digest}: {e}"),
                None => format!("{name}: {e}"),
            };
        }
    }
    format!("{what}: {e}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    #[test]
    fn docker_media_types_and_platform_extras_are_read() {
        // A docker manifest list states docker media types, which oci-spec keeps as
        // `Other`; `os.version` and `features` are accepted (and not used).
        let list = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
            "manifests": [{
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "digest": d('a'), "size": 5_000_000_000u64,
                "platform": {"os": "windows", "architecture": "amd64",
                             "os.version": "10.0.17763.1", "variant": "v3", "features": ["sse4"]}
            }]
        });
        let index = image_index(list, Sizes::Required).expect("parses");
        let entry = &index.manifests()[0];
        assert_eq!(entry.size(), 5_000_000_000);
        assert_eq!(
            entry.media_type().to_string(),
            "application/vnd.docker.distribution.manifest.v2+json"
        );
        let platform = entry.platform().as_ref().expect("platform");
        assert_eq!(platform_name(platform), "windows/amd64/v3");
        assert!(is_platform(platform, "windows", "amd64"));
        assert!(!is_platform(platform, "linux", "amd64"));
    }

    #[test]
    fn what_the_puller_never_needed_may_be_absent() {
        // No schemaVersion, no mediaType, no size (optional here), a platform without os.
        let index = serde_json::json!({
            "manifests": [{"digest": d('a'), "platform": {"architecture": "arm64"}}]
        });
        let index = image_index(index, Sizes::Optional).expect("parses");
        let entry = &index.manifests()[0];
        assert_eq!(entry.media_type().to_string(), "");
        assert_eq!(
            platform_name(entry.platform().as_ref().expect("p")),
            "/arm64"
        );
        let manifest = serde_json::json!({
            "config": {"digest": d('c')}, "layers": [{"digest": d('e')}]
        });
        let m = image_manifest(manifest.clone(), Sizes::Optional).expect("parses");
        assert_eq!(digest(m.config()).expect("ours").to_string(), d('c'));
        let e = image_manifest(manifest, Sizes::Required).expect_err("sizes required");
        assert_eq!(e, format!("config {}: missing field `size`", d('c')));
    }

    #[test]
    fn errors_name_the_part_at_fault() {
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "config": {"mediaType": "x", "digest": d('c'), "size": 1},
            "layers": [{"mediaType": "x", "digest": d('a'), "size": 1},
                       {"mediaType": "x", "digest": "sha256:zz", "size": 1}]
        });
        let e = image_manifest(manifest, Sizes::Required).expect_err("bad digest");
        assert!(e.starts_with("layers[1] sha256:zz: "), "{e}");
        let e = image_manifest(serde_json::json!({"layers": []}), Sizes::Required)
            .expect_err("no config");
        assert!(e.starts_with("manifest: missing field `config`"), "{e}");
        // oci-spec takes any well-formed algorithm; the store verifies only these.
        let m = image_manifest(
            serde_json::json!({
                "config": {"mediaType": "x", "digest": format!("sha384:{}", "a".repeat(96)), "size": 1},
                "layers": []
            }),
            Sizes::Required,
        )
        .expect("oci-spec accepts sha384");
        assert!(digest(m.config())
            .expect_err("we do not")
            .contains("unsupported digest algorithm"));
    }

    #[test]
    fn config_diff_ids_need_only_the_rootfs() {
        let full = serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"], "ExposedPorts": {"80/tcp": {}},
                       "Volumes": null, "Labels": {"a": "b"}, "Hostname": "h"},
            "rootfs": {"type": "layers", "diff_ids": [d('a'), d('b')]},
            "history": [{"created_by": "x", "empty_layer": true}]
        });
        let ids = config_diff_ids(&serde_json::to_vec(&full).expect("json")).expect("ids");
        assert_eq!(
            ids.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
            vec![d('a'), d('b')]
        );
        // What schema1_config makes from v1 JSON without an architecture.
        let bare = format!(r#"{{"os":"linux","rootfs":{{"diff_ids":["{}"]}}}}"#, d('a'));
        assert_eq!(config_diff_ids(bare.as_bytes()).expect("ids").len(), 1);
        let e = config_diff_ids(br#"{"architecture":"amd64","os":"linux"}"#).expect_err("none");
        assert_eq!(e, "image config: missing field `rootfs`");
        let e = config_diff_ids(br#"{"rootfs":{"diff_ids":["sha256:abc"]}}"#).expect_err("bad");
        assert!(e.contains("wrong length"), "{e}");
        let e = config_diff_ids(b"nope").expect_err("not json");
        assert!(e.starts_with("image config is not JSON"), "{e}");
    }
}
