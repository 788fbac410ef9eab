//! The registry puller: Docker Registry HTTP API v2 / OCI distribution.
//!
//! Endpoints for a registry host are its `--registry-mirror`s in order, then the host
//! itself (`docker.io` is really `registry-1.docker.io`, or Mesos' `--docker_registry`
//! URL when one is set). The first endpoint that resolves the reference serves the whole
//! pull. Plain HTTP is used for `--insecure-registry` hosts and for loopback hosts
//! (Mesos treats `localhost`/`127.0.0.1` the same way).
//!
//! # Why not `oci-client`
//!
//! `oci-client` (formerly `oci-distribution`; as of 0.17) speaks the same protocol but
//! does not do what this puller must:
//!
//! - **Schema 1.** It asks only for schema 2 and OCI media types and refuses a manifest
//!   whose `schemaVersion` is not 2; signed and unsigned schema 1 are pulled here.
//! - **Endpoints.** It takes one mirror per reference (`Reference::set_mirror_registry`,
//!   adding `?ns=`) and does not fall back. Here every `--registry-mirror` of the host is
//!   tried in order, then the registry; Mesos' `--docker_registry` replaces Docker Hub for
//!   names without a host when it is a URL, and sends them to `../archive.rs` when it is a
//!   directory (the store chooses the puller).
//! - **Verification on the way in.** Its `pull_blob_stream` checks the digest when the
//!   stream ends, not the descriptor's size. The store hashes and counts each layer as it
//!   streams into the unpacker, stops one that runs past its size, and makes it visible
//!   only once both match (`store/ingest.rs`, below every puller).
//! - **Sharing.** Its `pull` reads an image's layers into memory, at most
//!   `max_concurrent_download` at a time within that one call. The store joins concurrent
//!   pulls of a reference and of a layer into one (single flight), bounds downloads over
//!   all pulls (`--max-concurrent-downloads`) and never holds a whole layer.
//! - **Credentials.** It knows a user and password (Basic, or exchanged for a token by
//!   GET) and a bearer token sent as is; not a CRI `AuthConfig` identity token, which is
//!   an OAuth2 refresh token exchanged by POST as docker does, and it reads no docker
//!   `config.json`. Here the CRI's credentials go to the image's own registry, and
//!   otherwise `--docker-config`'s entry for the endpoint's host (a mirror's own), and
//!   each request's own Basic or Bearer challenge is answered (`auth.rs`, `session.rs`).

pub mod auth;
pub mod manifest;
pub mod session;

/// `rootfs.diff_ids` of an image config (read as oci-spec's `ImageConfiguration`); the
/// store checks the layers it unpacked against them.
pub use super::oci::config_diff_ids;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use manifest::Manifest;
use session::{verify_bytes, Endpoint, Session};

use super::{
    host_platform, ByteStream, ConfigSource, Credentials, ImagePlan, LayerFetcher, LayerLocation,
    LayerSource, PullError,
};
use crate::provisioner::reference::{Digest, Reference, DEFAULT_DOMAIN, DOCKER_HUB_HOST};

/// Image configs are small JSON documents; a bigger "config" is refused.
const MAX_CONFIG: u64 = 16 << 20;

pub struct RegistryPuller {
    http: reqwest::Client,
    mirrors: BTreeMap<String, Vec<String>>,
    insecure: Vec<String>,
    /// Mesos `--docker_registry` URL: replaces Docker Hub as the home of host-less names.
    default_registry: Option<String>,
    docker_config: auth::DockerConfig,
    progress_timeout: Duration,
}

pub struct RegistryOptions {
    pub mirrors: BTreeMap<String, Vec<String>>,
    pub insecure: Vec<String>,
    pub default_registry: Option<String>,
    pub docker_config: auth::DockerConfig,
    pub progress_timeout: Duration,
}

impl RegistryPuller {
    pub fn new(opts: RegistryOptions) -> Result<Self, reqwest::Error> {
        // No overall timeout: a big layer on a slow link must be allowed to finish; the
        // progress watchdog (in the session) catches transfers that stop moving.
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(30))
            .user_agent(concat!("ucr/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(RegistryPuller {
            http,
            mirrors: opts.mirrors,
            insecure: opts.insecure,
            default_registry: opts.default_registry,
            docker_config: opts.docker_config,
            progress_timeout: opts.progress_timeout,
        })
    }

    fn endpoints(&self, reference: &Reference) -> Vec<Endpoint> {
        let domain = reference.domain();
        let mut out: Vec<Endpoint> = self
            .mirrors
            .get(domain)
            .into_iter()
            .flatten()
            .map(|url| Endpoint {
                base: url
                    .trim_end_matches('/')
                    .trim_end_matches("/v2")
                    .to_string(),
                is_mirror: true,
            })
            .collect();
        let upstream = match (&self.default_registry, domain) {
            (Some(url), DEFAULT_DOMAIN) if !reference.explicit_domain() => url.clone(),
            (_, DEFAULT_DOMAIN) => format!("https://{DOCKER_HUB_HOST}"),
            (_, host) if self.plain_http(host) => format!("http://{host}"),
            (_, host) => format!("https://{host}"),
        };
        out.push(Endpoint {
            base: upstream,
            is_mirror: false,
        });
        out
    }

    fn plain_http(&self, host: &str) -> bool {
        let name = host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host);
        self.insecure.iter().any(|h| h == host || h == name)
            || name == "localhost"
            || name.starts_with("127.")
            || name == "[::1]"
    }

    /// Credentials for an endpoint: the CRI's for the image's own registry, else
    /// `--docker-config`'s entry for the endpoint's host.
    fn credentials_for(
        &self,
        endpoint: &Endpoint,
        reference: &Reference,
        cri: Option<&Credentials>,
    ) -> Option<Credentials> {
        if !endpoint.is_mirror {
            if let Some(c) = cri.filter(|c| !c.is_empty()) {
                return Some(c.clone());
            }
        }
        let host = if endpoint.is_mirror {
            endpoint.base.split("://").nth(1).unwrap_or(&endpoint.base)
        } else {
            reference.domain()
        };
        self.docker_config.lookup(host)
    }

    /// Resolves a reference to a plan, trying mirrors first.
    pub async fn resolve(
        &self,
        reference: &Reference,
        credentials: Option<&Credentials>,
    ) -> Result<(ImagePlan, Arc<dyn LayerFetcher>), PullError> {
        let mut errors = Vec::new();
        for endpoint in self.endpoints(reference) {
            let session = Session::new(
                self.http.clone(),
                endpoint.clone(),
                reference.repository().to_string(),
                reference.to_string(),
                self.credentials_for(&endpoint, reference, credentials),
                self.progress_timeout,
            );
            match resolve_on(&session, reference).await {
                Ok(plan) => {
                    if !errors.is_empty() {
                        tracing::info!(%reference, endpoint = %endpoint.base, "resolved after {} source(s) failed", errors.len());
                    }
                    return Ok((plan, Arc::new(RegistryFetcher { session })));
                }
                Err(e) => {
                    tracing::warn!(%reference, endpoint = %endpoint.base, error = %e, "registry endpoint failed");
                    errors.push(e);
                }
            }
        }
        if errors.len() == 1 {
            return Err(errors.remove(0));
        }
        Err(PullError::AllSourcesFailed {
            reference: reference.to_string(),
            errors,
        })
    }
}

async fn resolve_on(session: &Session, reference: &Reference) -> Result<ImagePlan, PullError> {
    let (content_type, body, header_digest) =
        session.manifest(&reference.manifest_reference()).await?;
    let top_digest = manifest_digest(reference.digest(), &content_type, &body, header_digest)?;
    let mut parsed = parse(session, &content_type, &body)?;
    if let Manifest::Index(entries) = &parsed {
        let (os, arch) = host_platform();
        let chosen = manifest::choose_platform(entries, os, arch).map_err(|offered| {
            PullError::NoMatchingPlatform {
                reference: reference.to_string(),
                wanted: format!("{os}/{arch}"),
                offered,
            }
        })?;
        let (ct, body, hd) = session.manifest(&chosen.digest.to_string()).await?;
        manifest_digest(Some(&chosen.digest), &ct, &body, hd)?;
        parsed = parse(session, &ct, &body)?;
    }
    let (config, layers) = match parsed {
        Manifest::Index(_) => {
            return Err(PullError::InvalidManifest {
                reference: reference.to_string(),
                reason: "a manifest list points at another manifest list".into(),
            })
        }
        Manifest::Image { config, layers } => {
            let bytes = session.blob_bytes(&config.digest, MAX_CONFIG).await?;
            let diff_ids =
                config_diff_ids(&bytes).map_err(|reason| PullError::InvalidManifest {
                    reference: reference.to_string(),
                    reason,
                })?;
            if diff_ids.len() != layers.len() {
                return Err(PullError::InvalidManifest {
                    reference: reference.to_string(),
                    reason: format!(
                        "manifest lists {} layers but the config has {} diff ids",
                        layers.len(),
                        diff_ids.len()
                    ),
                });
            }
            let layers = layers
                .into_iter()
                .zip(diff_ids)
                .map(|(l, diff_id)| LayerSource {
                    location: LayerLocation::Blob {
                        digest: l.digest,
                        size: Some(l.size),
                    },
                    diff_id: Some(diff_id),
                    media_type: l.media_type.to_string(),
                })
                .collect();
            (ConfigSource::Blob(bytes), layers)
        }
        Manifest::Schema1 {
            layers,
            v1_compat,
            history,
        } => {
            let layers = layers
                .into_iter()
                .map(|digest| LayerSource {
                    location: LayerLocation::Blob { digest, size: None },
                    diff_id: None,
                    media_type: "application/vnd.docker.image.rootfs.diff.tar.gzip".into(),
                })
                .collect();
            (ConfigSource::Schema1 { v1_compat, history }, layers)
        }
    };
    Ok(ImagePlan {
        reference: reference.clone(),
        manifest_digest: Some(top_digest),
        config,
        layers,
    })
}

fn parse(session: &Session, content_type: &str, body: &[u8]) -> Result<Manifest, PullError> {
    manifest::parse(content_type, body).map_err(|e| match e {
        manifest::ParseError::Unsupported(media_type) => PullError::UnsupportedManifest {
            reference: session.reference.clone(),
            media_type,
        },
        manifest::ParseError::Invalid(reason) => PullError::InvalidManifest {
            reference: session.reference.clone(),
            reason,
        },
    })
}

/// The manifest's digest, checked against the one asked for. A signed schema 1 body's
/// digest covers only its JWS payload, so there the registry's header is taken.
fn manifest_digest(
    wanted: Option<&Digest>,
    content_type: &str,
    body: &[u8],
    header: Option<String>,
) -> Result<Digest, PullError> {
    if manifest::is_signed_schema1(content_type) {
        let from_header = header.as_deref().and_then(|h| Digest::parse(h).ok());
        return Ok(wanted
            .cloned()
            .or(from_header)
            .unwrap_or_else(|| Digest::sha256_of(body)));
    }
    match wanted {
        Some(d) => {
            verify_bytes("manifest", d, body)?;
            Ok(d.clone())
        }
        None => Ok(Digest::sha256_of(body)),
    }
}

struct RegistryFetcher {
    session: Session,
}

#[async_trait::async_trait]
impl LayerFetcher for RegistryFetcher {
    async fn open(&self, layer: &LayerSource) -> Result<ByteStream, PullError> {
        match &layer.location {
            LayerLocation::Blob { digest, .. } => self.session.blob_stream(digest).await,
            LayerLocation::File(path) => Err(PullError::InvalidArchive {
                path: path.clone(),
                reason: "a registry plan cannot name a local file".into(),
            }),
        }
    }
}
