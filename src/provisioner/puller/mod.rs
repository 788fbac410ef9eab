//! Where image content comes from. A puller *resolves* a reference into an [`ImagePlan`]
//! (the config plus the layer list, base first) and then *opens* each layer as a byte
//! stream; the store does the rest (verification, unpacking, deduplication, metadata), so
//! every puller gets the same safety and the same sharing.
//!
//! - `registry/`: Docker Registry HTTP API v2 / OCI distribution (mirrors, auth, every
//!   manifest kind);
//! - `archive`: Mesos' local puller, `docker save` and OCI archives in a directory;
//! - `oci`: the OCI image-spec documents both read (manifests, indexes, configs), parsed
//!   with `oci-spec`'s types.

pub mod archive;
pub mod oci;
pub mod registry;

use std::path::PathBuf;
use std::pin::Pin;

use bytes::Bytes;
use futures::Stream;

use crate::error::{ErrorKind, Kind};
use crate::provisioner::reference::{Digest, Reference};

/// A layer's bytes as they arrive.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, PullError>> + Send>>;

/// Everything the store needs to materialise one image.
#[derive(Debug, Clone)]
pub struct ImagePlan {
    pub reference: Reference,
    /// The digest of what the reference resolved to (index or manifest), for the repo
    /// digest. `None` for archives, which have no registry identity.
    pub manifest_digest: Option<Digest>,
    pub config: ConfigSource,
    /// Base layer first.
    pub layers: Vec<LayerSource>,
}

#[derive(Debug, Clone)]
pub enum ConfigSource {
    /// The config blob, already fetched and checked against its digest.
    Blob(Bytes),
    /// Schema 1 carries no config blob: the store builds one from this v1 JSON (the
    /// first `v1Compatibility` entry, i.e. the top layer's) once the layers' diff ids are
    /// known, as docker and containerd do. Docker's v1 JSON has no oci-spec type, and is
    /// copied into the config as it is (see `registry::manifest::schema1_config`).
    Schema1 {
        v1_compat: serde_json::Value,
        history: Vec<serde_json::Value>,
    },
}

/// One layer to fetch.
#[derive(Debug, Clone)]
pub struct LayerSource {
    pub location: LayerLocation,
    /// The uncompressed digest, known up front from the image config (not for schema 1).
    pub diff_id: Option<Digest>,
    pub media_type: String,
}

#[derive(Debug, Clone)]
pub enum LayerLocation {
    /// A content-addressed blob: verified against digest and size while it streams.
    Blob { digest: Digest, size: Option<u64> },
    /// A file inside an unpacked archive, verified by its diff id.
    File(PathBuf),
}

impl LayerSource {
    /// The key two pulls sharing this layer agree on, before anything is downloaded.
    pub fn dedup_key(&self) -> String {
        match (&self.diff_id, &self.location) {
            (Some(d), _) => d.to_string(),
            (None, LayerLocation::Blob { digest, .. }) => digest.to_string(),
            (None, LayerLocation::File(p)) => p.display().to_string(),
        }
    }
}

/// Opens layer streams for a resolved plan (holds the session: auth tokens, endpoint,
/// or the unpacked archive directory).
#[async_trait::async_trait]
pub trait LayerFetcher: Send + Sync {
    async fn open(&self, layer: &LayerSource) -> Result<ByteStream, PullError>;
}

/// Credentials for one pull, from the CRI `AuthConfig` or `--docker-config`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
    /// An OAuth2 refresh token exchanged at the token endpoint.
    pub identity_token: String,
    /// A bearer token sent as is.
    pub registry_token: String,
}

impl Credentials {
    pub fn is_empty(&self) -> bool {
        self.username.is_empty() && self.identity_token.is_empty() && self.registry_token.is_empty()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error("{reference}: {status} from {url}{}", detail_suffix(.detail))]
    Http {
        reference: String,
        url: String,
        status: u16,
        detail: String,
    },
    #[error("{reference}: cannot reach {url}: {detail}")]
    Connect {
        reference: String,
        url: String,
        detail: String,
    },
    #[error("{reference}: authentication to {url} failed: {reason}")]
    Auth {
        reference: String,
        url: String,
        reason: String,
    },
    #[error("{reference}: manifest not found at {url}")]
    ManifestNotFound { reference: String, url: String },
    #[error("{reference}: unsupported manifest media type {media_type:?}")]
    UnsupportedManifest {
        reference: String,
        media_type: String,
    },
    #[error("{reference}: invalid manifest: {reason}")]
    InvalidManifest { reference: String, reason: String },
    #[error(
        "{reference}: no image for platform {wanted} in the manifest list; it offers {offered}"
    )]
    NoMatchingPlatform {
        reference: String,
        wanted: String,
        offered: String,
    },
    #[error("{what} {digest}: content has digest {actual}")]
    DigestMismatch {
        what: &'static str,
        digest: String,
        actual: String,
    },
    #[error("{what} {digest}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        what: &'static str,
        digest: String,
        expected: u64,
        actual: u64,
    },
    #[error("{what} {digest}: larger than the {limit}-byte limit")]
    TooLarge {
        what: &'static str,
        digest: String,
        limit: u64,
    },
    #[error("{url}: connection broke during transfer: {detail}")]
    Transfer { url: String, detail: String },
    #[error(
        "pull made no progress for {seconds}s (--image-pull-progress-timeout) while reading {what}"
    )]
    Stalled { what: String, seconds: u64 },
    #[error("{reference}: no archive for it in {dir} (looked for {tried})")]
    ArchiveNotFound {
        reference: String,
        dir: PathBuf,
        tried: String,
    },
    #[error("archive {path}: {reason}")]
    InvalidArchive { path: PathBuf, reason: String },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{reference}: every source failed: {}", join_errors(.errors))]
    AllSourcesFailed {
        reference: String,
        errors: Vec<PullError>,
    },
}

fn detail_suffix(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(": {detail}")
    }
}

fn join_errors(errors: &[PullError]) -> String {
    errors
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

impl Kind for PullError {
    fn kind(&self) -> ErrorKind {
        use PullError::*;
        match self {
            Http { status, .. } => match status {
                401 => ErrorKind::Unauthenticated,
                403 => ErrorKind::PermissionDenied,
                404 => ErrorKind::NotFound,
                429 | 500..=599 => ErrorKind::Unavailable,
                _ => ErrorKind::Internal,
            },
            Connect { .. } | Transfer { .. } => ErrorKind::Unavailable,
            Auth { .. } => ErrorKind::Unauthenticated,
            ManifestNotFound { .. } | NoMatchingPlatform { .. } | ArchiveNotFound { .. } => {
                ErrorKind::NotFound
            }
            UnsupportedManifest { .. } | InvalidManifest { .. } | InvalidArchive { .. } => {
                ErrorKind::InvalidArgument
            }
            DigestMismatch { .. } | SizeMismatch { .. } | TooLarge { .. } => ErrorKind::DataLoss,
            Stalled { .. } => ErrorKind::DeadlineExceeded,
            Io { source, .. } => crate::error::io_kind(source),
            // The most telling failure decides: the upstream's (tried last) unless a
            // mirror said something more specific than "not there".
            AllSourcesFailed { errors, .. } => errors
                .iter()
                .rev()
                .map(|e| e.kind())
                .find(|k| *k != ErrorKind::Unavailable)
                .unwrap_or(ErrorKind::Unavailable),
        }
    }
}

/// `linux/amd64` for this machine, in OCI platform terms.
pub fn host_platform() -> (&'static str, &'static str) {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    };
    ("linux", arch)
}

/// The digest of `data` in `algorithm`.
pub fn digest_of(algorithm: crate::provisioner::reference::Algorithm, data: &[u8]) -> Digest {
    let mut d = crate::provisioner::reference::Digester::new(algorithm);
    d.update(data);
    d.finish()
}

/// Fails a stream that yields nothing for `timeout`, as `--image-pull-progress-timeout`
/// asks: a slow transfer that keeps moving is never cut off, a stuck one is.
pub fn watchdog(stream: ByteStream, timeout: std::time::Duration, what: String) -> ByteStream {
    use futures::StreamExt;
    Box::pin(futures::stream::unfold(
        (stream, false),
        move |(mut stream, done)| {
            let what = what.clone();
            async move {
                if done {
                    return None;
                }
                match tokio::time::timeout(timeout, stream.next()).await {
                    Ok(Some(item)) => Some((item, (stream, false))),
                    Ok(None) => None,
                    Err(_) => Some((
                        Err(PullError::Stalled {
                            what,
                            seconds: timeout.as_secs(),
                        }),
                        (stream, true),
                    )),
                }
            }
        },
    ))
}
