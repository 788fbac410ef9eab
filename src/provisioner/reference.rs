//! Image references, normalised as docker does: `busybox` is
//! `docker.io/library/busybox:latest`; a first component holding `.` or `:` or equal to
//! `localhost` is a registry host; `name:tag`, `name@sha256:…` and `name:tag@sha256:…`.
//!
//! Unlike Mesos (which keeps the name as written and has no default tag), the CRI wants
//! docker's normal form, so every reference handed to the store is fully qualified. We still
//! remember whether the user wrote a host, because the local archive provider only serves
//! host-less names (Mesos semantics).

use std::fmt;

use crate::error::{ErrorKind, Kind};

pub const DEFAULT_DOMAIN: &str = "docker.io";
/// Docker's registry is not served from the name the world uses for it.
pub const DOCKER_HUB_HOST: &str = "registry-1.docker.io";
const MAX_NAME_LEN: usize = 255;
const MAX_TAG_LEN: usize = 128;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReferenceError {
    #[error("invalid image reference {input:?}: {reason}")]
    Invalid { input: String, reason: &'static str },
    #[error("invalid digest {input:?}: {reason}")]
    Digest { input: String, reason: &'static str },
}

impl Kind for ReferenceError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidArgument
    }
}

/// A content digest `algorithm:hex`. Only the algorithms we can verify are accepted.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: Algorithm,
    hex: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }
}

impl Digest {
    pub fn parse(s: &str) -> Result<Self, ReferenceError> {
        let bad = |reason| ReferenceError::Digest {
            input: s.to_string(),
            reason,
        };
        let (alg, hex) = s.split_once(':').ok_or(bad("expected algorithm:hex"))?;
        let algorithm = match alg {
            "sha256" => Algorithm::Sha256,
            "sha512" => Algorithm::Sha512,
            _ => return Err(bad("unsupported digest algorithm (sha256 and sha512 are)")),
        };
        if hex.len() != algorithm.hex_len() {
            return Err(bad("wrong length for its algorithm"));
        }
        if !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(bad("not lowercase hexadecimal"));
        }
        Ok(Digest {
            algorithm,
            hex: hex.to_string(),
        })
    }

    pub fn sha256_of(data: &[u8]) -> Self {
        use sha2::Digest as _;
        Digest {
            algorithm: Algorithm::Sha256,
            hex: hex::encode(sha2::Sha256::digest(data)),
        }
    }

    pub fn from_sha256_hex(hex: String) -> Self {
        Digest {
            algorithm: Algorithm::Sha256,
            hex,
        }
    }

    /// A running hash in this digest's algorithm, for checking content as it streams.
    pub fn digester(&self) -> Digester {
        Digester::new(self.algorithm)
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
    pub fn hex(&self) -> &str {
        &self.hex
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.name(), self.hex)
    }
}

/// Incremental hashing in either supported algorithm.
pub enum Digester {
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
}

impl Digester {
    pub fn new(algorithm: Algorithm) -> Self {
        use sha2::Digest as _;
        match algorithm {
            Algorithm::Sha256 => Digester::Sha256(sha2::Sha256::new()),
            Algorithm::Sha512 => Digester::Sha512(sha2::Sha512::new()),
        }
    }
    pub fn update(&mut self, data: &[u8]) {
        use sha2::Digest as _;
        match self {
            Digester::Sha256(h) => h.update(data),
            Digester::Sha512(h) => h.update(data),
        }
    }
    pub fn finish(self) -> Digest {
        use sha2::Digest as _;
        let (algorithm, hex) = match self {
            Digester::Sha256(h) => (Algorithm::Sha256, hex::encode(h.finalize())),
            Digester::Sha512(h) => (Algorithm::Sha512, hex::encode(h.finalize())),
        };
        Digest { algorithm, hex }
    }
}

/// A normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    domain: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
    /// Whether the text named a registry host (see the module comment).
    explicit_domain: bool,
}

impl Reference {
    /// Parses and normalises. A reference with neither tag nor digest gets `latest`.
    pub fn parse(input: &str) -> Result<Self, ReferenceError> {
        let bad = |reason| ReferenceError::Invalid {
            input: input.to_string(),
            reason,
        };
        if input.is_empty() {
            return Err(bad("empty reference"));
        }
        if input.trim() != input || input.contains(char::is_whitespace) {
            return Err(bad("contains whitespace"));
        }
        let (rest, digest) = match input.split_once('@') {
            Some((rest, d)) => {
                if d.contains('@') {
                    return Err(bad("more than one '@'"));
                }
                (rest, Some(Digest::parse(d)?))
            }
            None => (input, None),
        };
        // A tag follows the last ':' unless that ':' belongs to a host:port (then a '/' follows it).
        let (name, tag) = match rest.rfind(':') {
            Some(i) if !rest[i + 1..].contains('/') => (&rest[..i], Some(&rest[i + 1..])),
            _ => (rest, None),
        };
        if let Some(tag) = tag {
            validate_tag(tag).map_err(bad)?;
        }
        if name.is_empty() {
            return Err(bad("empty repository name"));
        }
        let (domain, path, explicit_domain) = match name.split_once('/') {
            Some((first, path))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                validate_domain(first).map_err(bad)?;
                (first.to_string(), path.to_string(), true)
            }
            _ => (DEFAULT_DOMAIN.to_string(), name.to_string(), false),
        };
        // `index.docker.io` is an old spelling of the same registry.
        let domain = if domain == "index.docker.io" {
            DEFAULT_DOMAIN.to_string()
        } else {
            domain
        };
        validate_path(&path).map_err(bad)?;
        let repository = if domain == DEFAULT_DOMAIN && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        if domain.len() + 1 + repository.len() > MAX_NAME_LEN {
            return Err(bad("repository name longer than 255 characters"));
        }
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_string()),
            (None, Some(_)) => None,
            (None, None) => Some("latest".to_string()),
        };
        Ok(Reference {
            domain,
            repository,
            tag,
            digest,
            explicit_domain,
        })
    }

    /// The registry host as written in the normal form (`docker.io`, `127.0.0.1:5000`).
    pub fn domain(&self) -> &str {
        &self.domain
    }
    /// The repository path inside the registry (`library/busybox`).
    pub fn repository(&self) -> &str {
        &self.repository
    }
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }
    pub fn explicit_domain(&self) -> bool {
        self.explicit_domain
    }

    /// `docker.io/library/busybox`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.repository)
    }

    /// `docker.io/library/busybox:latest`, the form recorded as a repo tag.
    pub fn tagged_name(&self) -> Option<String> {
        self.tag.as_ref().map(|t| format!("{}:{t}", self.name()))
    }

    /// `docker.io/library/busybox@sha256:…`, the form recorded as a repo digest.
    pub fn digested_name(&self, digest: &Digest) -> String {
        format!("{}@{digest}", self.name())
    }

    /// What the registry is asked for: the digest when pinned, else the tag.
    pub fn manifest_reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_string(),
        }
    }
}

impl fmt::Display for Reference {
    /// Docker's printed form: digest wins over tag.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.digest, &self.tag) {
            (Some(d), _) => write!(f, "{}@{d}", self.name()),
            (None, Some(t)) => write!(f, "{}:{t}", self.name()),
            (None, None) => write!(f, "{}", self.name()),
        }
    }
}

fn validate_tag(tag: &str) -> Result<(), &'static str> {
    let mut bytes = tag.bytes();
    match bytes.next() {
        None => return Err("empty tag"),
        Some(b) if b.is_ascii_alphanumeric() || b == b'_' => {}
        Some(_) => return Err("tag must start with a letter, digit or '_'"),
    }
    if tag.len() > MAX_TAG_LEN {
        return Err("tag longer than 128 characters");
    }
    if !bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')) {
        return Err("tag may only hold letters, digits, '_', '.' and '-'");
    }
    Ok(())
}

fn validate_domain(domain: &str) -> Result<(), &'static str> {
    let (host, port) = match domain.rsplit_once(':') {
        // An IPv6 literal is bracketed; its colons are not a port separator.
        Some((h, p)) if !p.contains(']') => (h, Some(p)),
        _ => (domain, None),
    };
    if let Some(port) = port {
        if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
            return Err("registry port must be a number");
        }
    }
    if host.is_empty() {
        return Err("empty registry host");
    }
    let ipv6 = host.starts_with('[') && host.ends_with(']');
    if !ipv6
        && !host.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
    {
        return Err("registry host is not a valid host name");
    }
    Ok(())
}

/// Path components: lowercase alphanumerics joined by `.`, `_`, `__` or runs of `-`.
fn validate_path(path: &str) -> Result<(), &'static str> {
    for component in path.split('/') {
        if component.is_empty() {
            return Err("empty path component in repository name");
        }
        if component.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err("repository name must be lowercase");
        }
        let bytes = component.as_bytes();
        let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        if !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
            return Err("repository path components must start and end with a letter or digit");
        }
        let mut i = 0;
        while i < bytes.len() {
            if alnum(bytes[i]) {
                i += 1;
                continue;
            }
            // A separator: '.', '_', '__' or one or more '-'.
            let start = i;
            match bytes[i] {
                b'.' => i += 1,
                b'_' => {
                    i += 1;
                    if i < bytes.len() && bytes[i] == b'_' {
                        i += 1;
                    }
                }
                b'-' => {
                    while i < bytes.len() && bytes[i] == b'-' {
                        i += 1;
                    }
                }
                _ => {
                    return Err(
                        "repository name may only hold [a-z0-9] and separators '.', '_', '__', '-'",
                    )
                }
            }
            if i < bytes.len() && !alnum(bytes[i]) || i == start {
                return Err("repository name has two separators in a row");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        Reference::parse(s)
            .map(|r| r.to_string())
            .unwrap_or_else(|e| e.to_string())
    }

    #[test]
    fn docker_hub_names_get_library_and_latest() {
        assert_eq!(norm("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(
            norm("library/busybox:1.36"),
            "docker.io/library/busybox:1.36"
        );
        assert_eq!(
            norm("docker.io/busybox"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(
            norm("index.docker.io/busybox"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(norm("myorg/app"), "docker.io/myorg/app:latest");
    }

    #[test]
    fn host_and_port_prefix_is_a_registry() {
        let r = Reference::parse("127.0.0.1:5000/ucr-test/busybox").expect("valid");
        assert_eq!(r.domain(), "127.0.0.1:5000");
        assert_eq!(r.repository(), "ucr-test/busybox");
        assert_eq!(r.tag(), Some("latest"));
        assert!(r.explicit_domain());
        assert_eq!(norm("localhost/x:1"), "localhost/x:1");
        assert_eq!(
            norm("registry.k8s.io/pause:3.9"),
            "registry.k8s.io/pause:3.9"
        );
        // No dot, colon or localhost: a path component, not a host.
        assert_eq!(norm("foo/bar"), "docker.io/foo/bar:latest");
        assert!(!Reference::parse("foo/bar")
            .expect("valid")
            .explicit_domain());
    }

    #[test]
    fn digests_and_tags() {
        let d = format!("sha256:{}", "a".repeat(64));
        let r = Reference::parse(&format!("busybox@{d}")).expect("valid");
        assert_eq!(r.tag(), None);
        assert_eq!(r.manifest_reference(), d);
        assert_eq!(r.to_string(), format!("docker.io/library/busybox@{d}"));
        let r = Reference::parse(&format!("busybox:1.0@{d}")).expect("valid");
        assert_eq!(r.tag(), Some("1.0"));
        assert_eq!(r.manifest_reference(), d);
        let r = Reference::parse("host:5000/r").expect("valid");
        assert_eq!(r.domain(), "host:5000");
        assert_eq!(r.tag(), Some("latest"));
    }

    #[test]
    fn malformed_references_say_why() {
        for (input, why) in [
            ("", "empty reference"),
            ("Busybox", "must be lowercase"),
            ("busybox:", "empty tag"),
            ("busybox:-x", "tag must start"),
            ("busybox@sha256:abc", "wrong length"),
            ("busybox@md5:abc", "unsupported digest"),
            ("a@b@c", "more than one"),
            ("a//b", "empty path component"),
            ("a b", "whitespace"),
            ("-a", "start and end"),
            ("a..b", "two separators"),
            ("a/b$c", "may only hold"),
            ("host:port/x", "port must be a number"),
        ] {
            let err = Reference::parse(input).expect_err(input).to_string();
            assert!(err.contains(why), "{input:?}: {err}");
            assert!(
                err.contains(&format!("{input:?}")) || input.contains('@'),
                "{err}"
            );
        }
    }

    #[test]
    fn long_names_are_refused() {
        let long = format!("a/{}", "b".repeat(300));
        assert!(Reference::parse(&long).is_err());
        assert!(Reference::parse(&format!("a:{}", "t".repeat(129))).is_err());
    }
}
