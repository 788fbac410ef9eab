//! HTTP basic authentication on the Mesos door, as the Mesos agent does it with its
//! default `basic` authenticator (libprocess's `BasicAuthenticator`, realms from
//! `slave.cpp`):
//!
//! - `--authenticate_http_readwrite` guards realm `mesos-agent-readwrite`: all of
//!   `/api/v1`, every call (Mesos routes the whole endpoint in that realm);
//! - `--authenticate_http_readonly` guards realm `mesos-agent-readonly`: `/state`,
//!   `/flags`, `/monitor/statistics`, `/containers`, `/metrics/snapshot`;
//! - `/health` and `/version` are never guarded (Mesos gives them no realm).
//!
//! Credentials come from `--http_credentials` (Mesos's JSON
//! `{"credentials":[{"principal":"p","secret":"s"}]}`), read once at start: a missing,
//! unparsable or empty file, or a guarded realm without credentials, stops the daemon
//! with Mesos's reasons. A refused request gets 401 with `WWW-Authenticate: Basic
//! realm="…"`, whatever was wrong (no header, another scheme, bad base64, unknown
//! principal, wrong secret), so nothing tells a prober which part was right. Secrets
//! are compared in constant time, as digests (so their lengths do not show either), and
//! never logged, shown or kept in a `Debug` output.

use std::path::{Path, PathBuf};

use base64::Engine;
use http::{header, HeaderMap, StatusCode};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub const READWRITE: &str = "mesos-agent-readwrite";
pub const READONLY: &str = "mesos-agent-readonly";

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("Failed to read credentials file '{path}': {source} (see --http_credentials flag)")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("Failed to parse credentials file '{path}': {reason} (see --http_credentials flag)")]
    Parse { path: PathBuf, reason: String },
    #[error("Credentials file '{path}' must contain at least one credential (see --http_credentials flag)")]
    Empty { path: PathBuf },
    #[error("No credentials provided for the default 'basic' HTTP authenticator for realm '{realm}' (see --http_credentials flag)")]
    NoCredentials { realm: &'static str },
}

/// One principal and the digest of its secret.
struct Credential {
    principal: [u8; 32],
    secret: [u8; 32],
}

/// The realms guarded, and who may pass.
#[derive(Default)]
pub struct Auth {
    readwrite: bool,
    readonly: bool,
    credentials: Vec<Credential>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("readwrite", &self.readwrite)
            .field("readonly", &self.readonly)
            .field("credentials", &self.credentials.len())
            .finish()
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialsFile {
    #[serde(default)]
    credentials: Vec<CredentialJson>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialJson {
    principal: String,
    #[serde(default)]
    secret: String,
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// The realm guarding `path`, if one does.
pub fn realm(path: &str) -> Option<&'static str> {
    match path {
        "/api/v1" => Some(READWRITE),
        "/state"
        | "/flags"
        | "/monitor/statistics"
        | "/monitor/statistics.json"
        | "/containers"
        | "/metrics/snapshot" => Some(READONLY),
        _ => None,
    }
}

impl Auth {
    /// Reads the credentials (if a file is named) and checks that every guarded realm
    /// has some.
    pub fn load(settings: &crate::config::HttpAuth) -> Result<Auth, AuthError> {
        let credentials = match &settings.credentials {
            Some(path) => read(path)?,
            None => Vec::new(),
        };
        for (on, realm) in [
            (settings.readonly, READONLY),
            (settings.readwrite, READWRITE),
        ] {
            if on && credentials.is_empty() {
                return Err(AuthError::NoCredentials { realm });
            }
        }
        Ok(Auth {
            readwrite: settings.readwrite,
            readonly: settings.readonly,
            credentials,
        })
    }

    /// `Ok` when `path` may be served to a request with these headers; otherwise the
    /// realm that refuses it (the caller answers 401 with its challenge).
    pub fn check(&self, path: &str, headers: &HeaderMap) -> Result<(), &'static str> {
        let Some(realm) = realm(path) else {
            return Ok(());
        };
        let guarded = match realm {
            READWRITE => self.readwrite,
            _ => self.readonly,
        };
        if !guarded || self.admits(headers) {
            return Ok(());
        }
        Err(realm)
    }

    fn admits(&self, headers: &HeaderMap) -> bool {
        let Some((principal, secret)) = basic(headers) else {
            return false;
        };
        let (principal, secret) = (digest(principal.as_bytes()), digest(secret.as_bytes()));
        // Every credential is compared, whichever matches: the time taken says nothing
        // about which principal exists.
        let mut ok = subtle::Choice::from(0);
        for c in &self.credentials {
            ok |= c.principal.ct_eq(&principal) & c.secret.ct_eq(&secret);
        }
        ok.into()
    }
}

/// The user and password of an `Authorization: Basic …` header. RFC 7617 splits at
/// the first `:` (a password may hold more; Mesos refuses those, which is stricter
/// than needed).
fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    if scheme != "Basic" {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(token.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// The 401 a refused request gets: Mesos's challenge, and a body saying what to do.
pub fn unauthorized(realm: &str) -> http::Response<http_body_util::Full<bytes::Bytes>> {
    let mut resp = http::Response::new(http_body_util::Full::new(bytes::Bytes::from(format!(
        "Unauthorized: realm {realm} needs HTTP basic credentials (--http_credentials)"
    ))));
    *resp.status_mut() = StatusCode::UNAUTHORIZED;
    if let Ok(v) = header::HeaderValue::from_str(&format!("Basic realm=\"{realm}\"")) {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    resp
}

fn read(path: &Path) -> Result<Vec<Credential>, AuthError> {
    let text = std::fs::read_to_string(path).map_err(|source| AuthError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    if text.trim().is_empty() {
        return Err(AuthError::Empty {
            path: path.to_path_buf(),
        });
    }
    // As Mesos: a file others can read is used, with a warning.
    if let Ok(meta) = std::fs::metadata(path) {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o007 != 0 {
            tracing::warn!(path = %path.display(), "permissions on the credentials file are too open; it is recommended that it is NOT accessible by others");
        }
    }
    // serde_json's messages give the line and column, never the text around them, so
    // no secret leaks into the refusal.
    let file: CredentialsFile = serde_json::from_str(&text).map_err(|e| AuthError::Parse {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    if file.credentials.is_empty() {
        return Err(AuthError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(file
        .credentials
        .into_iter()
        .map(|c| Credential {
            principal: digest(c.principal.as_bytes()),
            secret: digest(c.secret.as_bytes()),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::HttpAuth;

    fn auth_with(text: &str, readwrite: bool, readonly: bool) -> Result<Auth, AuthError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("credentials.json");
        std::fs::write(&path, text).expect("write");
        Auth::load(&HttpAuth {
            readwrite,
            readonly,
            credentials: Some(path),
        })
    }

    fn headers(user_password: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        let token = base64::engine::general_purpose::STANDARD.encode(user_password);
        h.insert(
            header::AUTHORIZATION,
            format!("Basic {token}").parse().expect("header"),
        );
        h
    }

    const FILE: &str = r#"{"credentials":[{"principal":"yoda","secret":"use:the:force"},{"principal":"op","secret":"s"}]}"#;

    #[test]
    fn realms_guard_their_endpoints_only() {
        let a = auth_with(FILE, true, false).expect("valid");
        assert_eq!(a.check("/api/v1", &HeaderMap::new()), Err(READWRITE));
        assert_eq!(
            a.check("/state", &HeaderMap::new()),
            Ok(()),
            "readonly is off"
        );
        assert_eq!(a.check("/health", &HeaderMap::new()), Ok(()));
        assert_eq!(a.check("/api/v1", &headers("yoda:use:the:force")), Ok(()));
        assert_eq!(a.check("/api/v1", &headers("op:s")), Ok(()));
        for wrong in ["yoda:s", "op:use:the:force", "op:", "op", "nobody:s", ""] {
            assert_eq!(
                a.check("/api/v1", &headers(wrong)),
                Err(READWRITE),
                "{wrong}"
            );
        }
        let mut bearer = HeaderMap::new();
        bearer.insert(header::AUTHORIZATION, "Bearer abc".parse().expect("h"));
        assert_eq!(a.check("/api/v1", &bearer), Err(READWRITE));
        let mut garbage = HeaderMap::new();
        garbage.insert(header::AUTHORIZATION, "Basic %%%".parse().expect("h"));
        assert_eq!(a.check("/api/v1", &garbage), Err(READWRITE));
        let a = auth_with(FILE, false, true).expect("valid");
        assert_eq!(
            a.check("/metrics/snapshot", &HeaderMap::new()),
            Err(READONLY)
        );
        assert_eq!(a.check("/api/v1", &HeaderMap::new()), Ok(()));
    }

    #[test]
    fn bad_files_are_refused_naming_the_file_not_the_secrets() {
        let e = auth_with("{\"credentials\": [}", true, false).expect_err("bad json");
        assert!(e.to_string().contains("credentials.json"), "{e}");
        let e = auth_with(r#"{"credentials": []}"#, true, false).expect_err("empty");
        assert!(e.to_string().contains("at least one credential"), "{e}");
        let e = auth_with(r#"{"credentials": [{"secret": "hunter2"}]}"#, true, false)
            .expect_err("no principal");
        assert!(!e.to_string().contains("hunter2"), "{e}");
        let e = Auth::load(&HttpAuth {
            readwrite: false,
            readonly: true,
            credentials: None,
        })
        .expect_err("no credentials");
        assert!(e.to_string().contains(READONLY), "{e}");
        let e = Auth::load(&HttpAuth {
            readwrite: true,
            readonly: false,
            credentials: Some("/nonexistent/creds".into()),
        })
        .expect_err("missing file");
        assert!(e.to_string().contains("/nonexistent/creds"), "{e}");
        let a = auth_with(FILE, true, true).expect("valid");
        assert!(!format!("{a:?}").contains("force"));
    }
}
