//! Mesos' local puller: with `--docker-registry` set to a directory, a reference that names
//! no registry host is loaded from `<dir>/<name>:<tag>.tar`. Both `docker save` archives
//! (`manifest.json`) and OCI image layout archives (`index.json`) are accepted; Mesos' own
//! candidate names (`<name>.tar` for `:latest`, the repository with `library/`) are tried
//! too.
//!
//! The archive is unpacked into the store's temp area; its layers are then read as files
//! and verified by their diff ids like any other layer.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use oci_spec::image::{Descriptor, MediaType, ANNOTATION_REF_NAME};
use serde_json::Value;

use super::oci::{self, Sizes};
use super::{
    ByteStream, ConfigSource, ImagePlan, LayerFetcher, LayerLocation, LayerSource, PullError,
};
use crate::provisioner::reference::{Digest, Reference};

pub struct ArchivePuller {
    pub dir: PathBuf,
}

impl ArchivePuller {
    /// File names tried, in order, for a reference.
    pub fn candidates(reference: &Reference) -> Vec<String> {
        let repo = reference.repository();
        let short = repo.strip_prefix("library/").unwrap_or(repo);
        let tag = reference.tag().unwrap_or("latest");
        let mut out = vec![format!("{short}:{tag}.tar"), format!("{repo}:{tag}.tar")];
        if tag == "latest" {
            out.push(format!("{short}.tar"));
        }
        out.dedup();
        out
    }

    /// Unpacks the archive under `scratch` (a fresh directory the caller owns) and plans
    /// the image from it.
    pub async fn resolve(
        &self,
        reference: &Reference,
        scratch: PathBuf,
    ) -> Result<(ImagePlan, Arc<dyn LayerFetcher>), PullError> {
        let candidates = Self::candidates(reference);
        let file = candidates
            .iter()
            .map(|c| self.dir.join(c))
            .find(|p| p.is_file())
            .ok_or_else(|| PullError::ArchiveNotFound {
                reference: reference.to_string(),
                dir: self.dir.clone(),
                tried: candidates.join(", "),
            })?;
        let reference = reference.clone();
        let fetcher = Arc::new(ArchiveFetcher {
            scratch: scratch.clone(),
        });
        let plan = tokio::task::spawn_blocking(move || plan_archive(&file, &scratch, reference))
            .await
            .map_err(|e| PullError::InvalidArchive {
                path: PathBuf::new(),
                reason: format!("unpacking task failed: {e}"),
            })??;
        Ok((plan, fetcher))
    }
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> PullError + 'a {
    move |source| PullError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

fn plan_archive(file: &Path, scratch: &Path, reference: Reference) -> Result<ImagePlan, PullError> {
    let f = std::fs::File::open(file).map_err(io("open archive", file))?;
    let mut archive = tar::Archive::new(std::io::BufReader::new(f));
    // tar's unpack refuses `..` and never writes through symlinks it created, which is
    // what an archive a node operator placed needs; layers themselves go through the
    // store's own hostile-layer checks later.
    archive
        .unpack(scratch)
        .map_err(|e| PullError::InvalidArchive {
            path: file.to_path_buf(),
            reason: format!("cannot unpack: {e}"),
        })?;
    let bad = |reason: String| PullError::InvalidArchive {
        path: file.to_path_buf(),
        reason,
    };
    let read_json = |rel: &str| -> Result<Value, PullError> {
        let p = inside(scratch, rel).ok_or_else(|| bad(format!("{rel:?} escapes the archive")))?;
        let text = std::fs::read(&p).map_err(|e| bad(format!("reading {rel}: {e}")))?;
        serde_json::from_slice(&text).map_err(|e| bad(format!("{rel} is not JSON: {e}")))
    };
    let (config_path, layer_paths) = if scratch.join("manifest.json").is_file() {
        docker_save_layout(&read_json("manifest.json")?, &reference).map_err(bad)?
    } else if scratch.join("index.json").is_file() {
        oci_layout(read_json("index.json")?, &reference, &read_json).map_err(bad)?
    } else {
        return Err(bad(
            "neither manifest.json (docker save) nor index.json (OCI layout) is in it".into(),
        ));
    };
    let config_file = inside(scratch, &config_path)
        .ok_or_else(|| bad(format!("{config_path:?} escapes the archive")))?;
    let config = std::fs::read(&config_file)
        .map_err(|e| bad(format!("reading config {config_path}: {e}")))?;
    let diff_ids = oci::config_diff_ids(&config).map_err(bad)?;
    if diff_ids.len() != layer_paths.len() {
        return Err(bad(format!(
            "{} layers listed but the config has {} diff ids",
            layer_paths.len(),
            diff_ids.len()
        )));
    }
    let mut layers = Vec::new();
    for (rel, diff_id) in layer_paths.iter().zip(diff_ids) {
        let path = inside(scratch, rel)
            .ok_or_else(|| bad(format!("layer {rel:?} escapes the archive")))?;
        if !path.is_file() {
            return Err(bad(format!("layer {rel} is missing")));
        }
        layers.push(LayerSource {
            location: LayerLocation::File(path),
            diff_id: Some(diff_id),
            media_type: MediaType::ImageLayer.to_string(),
        });
    }
    Ok(ImagePlan {
        reference,
        manifest_digest: None,
        config: ConfigSource::Blob(config.into()),
        layers,
    })
}

/// A path from the archive's own index, kept inside the archive.
fn inside(root: &Path, rel: &str) -> Option<PathBuf> {
    let rel = Path::new(rel);
    if rel.is_absolute()
        || rel
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return None;
    }
    Some(root.join(rel))
}

fn tag_matches(tags: &[&str], reference: &Reference) -> bool {
    tags.iter().any(|t| {
        Reference::parse(t)
            .map(|r| r.name() == reference.name() && r.tag() == reference.tag())
            .unwrap_or(false)
    })
}

/// `manifest.json`: `[{"Config": "...", "RepoTags": [...], "Layers": [...]}]`. This is
/// `docker save`'s own index, not an OCI document: oci-spec has no type for it, so it is
/// read by hand.
fn docker_save_layout(
    manifest: &Value,
    reference: &Reference,
) -> Result<(String, Vec<String>), String> {
    let entries = manifest.as_array().ok_or("manifest.json is not an array")?;
    fn tags_of(e: &Value) -> Vec<&str> {
        e.get("RepoTags")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    }
    let entry = entries
        .iter()
        .find(|e| tag_matches(&tags_of(e), reference))
        .or(if entries.len() == 1 {
            entries.first()
        } else {
            None
        })
        .ok_or_else(|| format!("no image tagged {reference} among {} images", entries.len()))?;
    let config = entry
        .get("Config")
        .and_then(Value::as_str)
        .ok_or("manifest.json entry has no Config")?
        .to_string();
    let layers = entry
        .get("Layers")
        .and_then(Value::as_array)
        .ok_or("manifest.json entry has no Layers")?
        .iter()
        .map(|l| {
            l.as_str()
                .map(str::to_string)
                .ok_or("layer path is not a string")
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((config, layers))
}

fn blob_path(digest: &oci_spec::image::Digest) -> Result<String, String> {
    // Our digest, not oci-spec's: it takes only sha256 and sha512, whose hex names are
    // safe to join to a path.
    let d = Digest::parse(digest.as_ref()).map_err(|e| e.to_string())?;
    Ok(format!("blobs/{}/{}", d.algorithm().name(), d.hex()))
}

/// `index.json` of an OCI image layout: the manifest named by the tag (annotation
/// `org.opencontainers.image.ref.name`) or the only one; nested indexes resolve to the
/// host platform. Indexes and manifests are read as oci-spec's `ImageIndex` and
/// `ImageManifest`; sizes may be absent (layers are checked by diff id here), and a
/// blob's kind is told by its shape, since a layout gives no content type and
/// `mediaType` is optional in both documents.
fn oci_layout(
    index: Value,
    reference: &Reference,
    read_json: &dyn Fn(&str) -> Result<Value, PullError>,
) -> Result<(String, Vec<String>), String> {
    let index = oci::image_index(index, Sizes::Optional).map_err(|e| format!("index.json: {e}"))?;
    let manifests = index.manifests();
    let tag = reference.tag().unwrap_or("latest");
    let named = |m: &&Descriptor| {
        m.annotations()
            .as_ref()
            .and_then(|a| a.get(ANNOTATION_REF_NAME))
            .is_some_and(|n| n == tag || n.ends_with(&format!(":{tag}")))
    };
    let mut entry = manifests
        .iter()
        .find(named)
        .or(if manifests.len() == 1 {
            manifests.first()
        } else {
            None
        })
        .ok_or_else(|| {
            format!(
                "no manifest named {tag:?} among {} in index.json",
                manifests.len()
            )
        })?
        .clone();
    for _ in 0..4 {
        let path = blob_path(entry.digest())?;
        let doc = read_json(&path).map_err(|e| e.to_string())?;
        if doc.get("manifests").is_some_and(Value::is_array) {
            let nested =
                oci::image_index(doc, Sizes::Optional).map_err(|e| format!("{path}: {e}"))?;
            let (os, arch) = super::host_platform();
            entry = nested
                .manifests()
                .iter()
                .find(|m| {
                    m.platform()
                        .as_ref()
                        .is_some_and(|p| oci::is_platform(p, os, arch))
                })
                .ok_or_else(|| format!("no {os}/{arch} manifest in the archive's index"))?
                .clone();
            continue;
        }
        let manifest =
            oci::image_manifest(doc, Sizes::Optional).map_err(|e| format!("{path}: {e}"))?;
        let layers = manifest
            .layers()
            .iter()
            .map(|l| blob_path(l.digest()))
            .collect::<Result<Vec<_>, _>>()?;
        return Ok((blob_path(manifest.config().digest())?, layers));
    }
    Err("indexes nested too deep".into())
}

/// Reads layers from the unpacked archive; removes it when the pull is over.
struct ArchiveFetcher {
    scratch: PathBuf,
}

impl Drop for ArchiveFetcher {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.scratch) {
            tracing::warn!(path = %self.scratch.display(), error = %e, "cannot remove unpacked archive");
        }
    }
}

#[async_trait::async_trait]
impl LayerFetcher for ArchiveFetcher {
    async fn open(&self, layer: &LayerSource) -> Result<ByteStream, PullError> {
        use futures::StreamExt;
        let LayerLocation::File(path) = &layer.location else {
            return Err(PullError::InvalidArchive {
                path: self.scratch.clone(),
                reason: "an archive plan names a registry blob".into(),
            });
        };
        let file = tokio::fs::File::open(path)
            .await
            .map_err(io("open layer", path))?;
        let path = path.clone();
        Ok(Box::pin(
            tokio_util::io::ReaderStream::with_capacity(file, 1 << 20).map(move |r| {
                r.map_err(|source| PullError::Io {
                    op: "read layer",
                    path: path.clone(),
                    source,
                })
            }),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidate_names_follow_mesos_and_the_issue() {
        let r = Reference::parse("busybox").expect("valid");
        assert_eq!(
            ArchivePuller::candidates(&r),
            vec![
                "busybox:latest.tar",
                "library/busybox:latest.tar",
                "busybox.tar"
            ]
        );
        let r = Reference::parse("org/app:1.0").expect("valid");
        assert_eq!(ArchivePuller::candidates(&r), vec!["org/app:1.0.tar"]);
    }

    #[test]
    fn docker_save_manifest_picks_the_tag() {
        let m = serde_json::json!([
            {"Config": "a.json", "RepoTags": ["other:1"], "Layers": ["x/layer.tar"]},
            {"Config": "b.json", "RepoTags": ["busybox:latest"], "Layers": ["y/layer.tar", "z/layer.tar"]}
        ]);
        let r = Reference::parse("busybox").expect("valid");
        let (cfg, layers) = docker_save_layout(&m, &r).expect("found");
        assert_eq!(cfg, "b.json");
        assert_eq!(layers, vec!["y/layer.tar", "z/layer.tar"]);
        let r = Reference::parse("nothere").expect("valid");
        assert!(docker_save_layout(&m, &r)
            .expect_err("absent")
            .contains("no image tagged"));
    }

    #[test]
    fn paths_from_the_index_stay_inside() {
        assert!(inside(Path::new("/s"), "../etc/passwd").is_none());
        assert!(inside(Path::new("/s"), "/etc/passwd").is_none());
        assert_eq!(
            inside(Path::new("/s"), "a/b"),
            Some(PathBuf::from("/s/a/b"))
        );
    }
}
