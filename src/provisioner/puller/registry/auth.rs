//! Registry authentication: `WWW-Authenticate` challenges (Basic and Bearer, as the
//! distribution spec describes them) and credentials from a docker `config.json`
//! (Mesos `--docker_config`: a path or the JSON itself; `auths` or the legacy
//! `.dockercfg` shape).

use std::collections::HashMap;

use base64::Engine as _;
use serde_json::Value;

use super::super::Credentials;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// Parses `Bearer realm="https://auth",service="registry",scope="repository:x:pull"` or
/// `Basic realm="..."`. Unknown schemes give `None`.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => Some(Challenge::Basic),
        "bearer" => {
            let params = parse_params(rest);
            Some(Challenge::Bearer {
                realm: params.get("realm")?.clone(),
                service: params.get("service").cloned(),
                scope: params.get("scope").cloned(),
            })
        }
        _ => None,
    }
}

/// `k="v", k2=v2`, where quoted values may hold commas.
fn parse_params(s: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value = chars.by_ref().take_while(|c| *c != ',').collect();
        }
        out.insert(key.trim().to_ascii_lowercase(), value.trim().to_string());
    }
    out
}

#[derive(Debug, thiserror::Error)]
pub enum DockerConfigError {
    #[error("docker config {source_name}: {reason}")]
    Invalid { source_name: String, reason: String },
}

/// The parsed `--docker-config`, kept for looking up credentials per registry host.
#[derive(Debug, Clone, Default)]
pub struct DockerConfig {
    entries: Vec<(String, Credentials)>,
}

impl DockerConfig {
    /// `value` is JSON text when it starts with `{`, else a file path (Mesos accepts both).
    pub fn load(value: &str) -> Result<Self, DockerConfigError> {
        let (name, text) = if value.trim_start().starts_with('{') {
            ("<inline JSON>".to_string(), value.to_string())
        } else {
            let text = std::fs::read_to_string(value).map_err(|e| DockerConfigError::Invalid {
                source_name: value.to_string(),
                reason: format!("cannot read: {e}"),
            })?;
            (value.to_string(), text)
        };
        Self::parse(&name, &text)
    }

    /// A config given as JSON text alone, never a path: what a client sends (a Mesos
    /// `Image.docker.config` secret) must not make the daemon read a file of its choice.
    /// `name` says where it came from, in errors.
    pub fn parse(name: &str, text: &str) -> Result<Self, DockerConfigError> {
        let bad = |reason: String| DockerConfigError::Invalid {
            source_name: name.to_string(),
            reason,
        };
        let json: Value = serde_json::from_str(text).map_err(|e| bad(format!("not JSON: {e}")))?;
        // `{"auths": {...}}` (config.json) or the legacy `.dockercfg` map itself: docker's
        // own files, which oci-spec has no type for.
        let auths = json.get("auths").unwrap_or(&json);
        let map = auths
            .as_object()
            .ok_or_else(|| bad("expected an object of registries".into()))?;
        let mut entries = Vec::new();
        for (key, entry) in map {
            let creds = credentials_of(entry).map_err(|r| bad(format!("entry {key:?}: {r}")))?;
            entries.push((registry_key(key), creds));
        }
        Ok(DockerConfig { entries })
    }

    /// Credentials for a registry host (`host[:port]`); docker.io matches any spelling of
    /// Docker Hub (`https://index.docker.io/v1/`, `registry-1.docker.io`...).
    pub fn lookup(&self, host: &str) -> Option<Credentials> {
        let host = registry_key(host);
        let hub = |h: &str| h.contains("docker.io");
        self.entries
            .iter()
            .find(|(k, _)| *k == host || (hub(k) && hub(&host)))
            .map(|(_, c)| c.clone())
    }
}

/// `https://host:5000/v1/` → `host:5000`.
fn registry_key(key: &str) -> String {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    key.split('/').next().unwrap_or(key).to_string()
}

fn credentials_of(entry: &Value) -> Result<Credentials, String> {
    let field = |k: &str| {
        entry
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let mut creds = Credentials {
        username: field("username"),
        password: field("password"),
        identity_token: field("identitytoken"),
        registry_token: field("registrytoken"),
    };
    let auth = field("auth");
    if !auth.is_empty() {
        let (user, pass) = decode_auth(&auth)?;
        creds.username = user;
        creds.password = pass;
    }
    Ok(creds)
}

/// The `auth` field: base64 of `user:password`.
pub fn decode_auth(auth: &str) -> Result<(String, String), String> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .map_err(|e| format!("auth is not base64: {e}"))?;
    let text = String::from_utf8(raw).map_err(|_| "auth is not UTF-8".to_string())?;
    let (u, p) = text
        .split_once(':')
        .ok_or_else(|| "auth is not user:password".to_string())?;
    Ok((u.to_string(), p.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenge_with_commas_in_scope() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(
            c,
            Some(Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into()),
                scope: Some("repository:a/b:pull,push".into()),
            })
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="ucr-test""#),
            Some(Challenge::Basic)
        );
        assert_eq!(
            parse_challenge("Bearer service=x"),
            None,
            "realm is required"
        );
        assert_eq!(parse_challenge("Negotiate"), None);
    }

    #[test]
    fn docker_config_lookup_by_host() {
        let json = r#"{"auths":{
            "https://index.docker.io/v1/":{"auth":"aHViOnNlY3JldA=="},
            "127.0.0.1:5001":{"username":"ucr","password":"pw"},
            "http://reg.local:5000/v2/":{"identitytoken":"tok"}}}"#;
        let cfg = DockerConfig::load(json).expect("valid");
        let hub = cfg.lookup("docker.io").expect("hub");
        assert_eq!(
            (hub.username.as_str(), hub.password.as_str()),
            ("hub", "secret")
        );
        assert_eq!(
            cfg.lookup("registry-1.docker.io").expect("hub").username,
            "hub"
        );
        assert_eq!(cfg.lookup("127.0.0.1:5001").expect("local").password, "pw");
        assert_eq!(
            cfg.lookup("reg.local:5000").expect("tok").identity_token,
            "tok"
        );
        assert!(cfg.lookup("127.0.0.1:5000").is_none());
    }

    #[test]
    fn legacy_dockercfg_and_errors() {
        let cfg = DockerConfig::load(r#"{"quay.io":{"auth":"dTpw"}}"#).expect("legacy");
        assert_eq!(cfg.lookup("quay.io").expect("quay").username, "u");
        let e = DockerConfig::load(r#"{"auths":{"x":{"auth":"!!"}}}"#).expect_err("bad base64");
        assert!(e.to_string().contains("\"x\""), "{e}");
        let e = DockerConfig::load("/no/such/config.json").expect_err("missing");
        assert!(e.to_string().contains("/no/such/config.json"), "{e}");
    }
}
