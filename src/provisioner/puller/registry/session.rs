//! One conversation with one registry endpoint (a mirror or the upstream) about one
//! repository: requests with the right credentials, a bearer token fetched on the first
//! 401 and reused, bodies read under the progress watchdog.

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use reqwest::{Response, StatusCode};
use tokio::sync::Mutex;

use super::auth::{parse_challenge, Challenge};
use crate::provisioner::puller::{watchdog, ByteStream, Credentials, PullError};
use crate::provisioner::reference::Digest;

/// Where requests go: `base` is `scheme://host[:port]`.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub base: String,
    pub is_mirror: bool,
}

pub struct Session {
    pub http: reqwest::Client,
    pub endpoint: Endpoint,
    pub repository: String,
    /// For error messages: the reference being pulled.
    pub reference: String,
    pub credentials: Option<Credentials>,
    pub progress_timeout: Duration,
    /// `Authorization` value that worked, reused for every later request.
    authorization: Mutex<Option<String>>,
}

impl Session {
    pub fn new(
        http: reqwest::Client,
        endpoint: Endpoint,
        repository: String,
        reference: String,
        credentials: Option<Credentials>,
        progress_timeout: Duration,
    ) -> Self {
        let authorization = credentials
            .as_ref()
            .filter(|c| !c.registry_token.is_empty())
            .map(|c| format!("Bearer {}", c.registry_token));
        Session {
            http,
            endpoint,
            repository,
            reference,
            credentials,
            progress_timeout,
            authorization: Mutex::new(authorization),
        }
    }

    fn url(&self, tail: &str) -> String {
        format!("{}/v2/{}/{tail}", self.endpoint.base, self.repository)
    }

    /// GET with auth: on a 401 we answer the challenge once and retry.
    async fn get(&self, url: &str, accept: Option<&str>) -> Result<Response, PullError> {
        let mut answered = false;
        loop {
            let mut req = self.http.get(url);
            if let Some(a) = accept {
                req = req.header(ACCEPT, a);
            }
            if let Some(auth) = self.authorization.lock().await.clone() {
                req = req.header(AUTHORIZATION, auth);
            }
            let resp = self.send(req, url).await?;
            if resp.status() != StatusCode::UNAUTHORIZED {
                return Ok(resp);
            }
            if answered {
                return Err(self.auth_error(url, "the registry refused the credentials".into()));
            }
            let challenge = resp
                .headers()
                .get(WWW_AUTHENTICATE)
                .and_then(|h| h.to_str().ok())
                .and_then(parse_challenge)
                .ok_or_else(|| {
                    self.auth_error(
                        url,
                        "401 without a usable WWW-Authenticate challenge".into(),
                    )
                })?;
            let value = self.answer(challenge, url).await?;
            *self.authorization.lock().await = Some(value);
            answered = true;
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder, url: &str) -> Result<Response, PullError> {
        // The watchdog covers waiting for headers too: a registry that accepts the
        // connection and then says nothing is as stuck as one that stops mid-body.
        match tokio::time::timeout(self.progress_timeout, req.send()).await {
            Err(_) => Err(PullError::Stalled {
                what: url.to_string(),
                seconds: self.progress_timeout.as_secs(),
            }),
            Ok(Err(e)) => Err(PullError::Connect {
                reference: self.reference.clone(),
                url: url.to_string(),
                detail: error_chain(&e),
            }),
            Ok(Ok(resp)) => Ok(resp),
        }
    }

    fn auth_error(&self, url: &str, reason: String) -> PullError {
        PullError::Auth {
            reference: self.reference.clone(),
            url: url.to_string(),
            reason,
        }
    }

    /// Turns a challenge into an `Authorization` header value.
    async fn answer(&self, challenge: Challenge, url: &str) -> Result<String, PullError> {
        let creds = self.credentials.clone().unwrap_or_default();
        match challenge {
            Challenge::Basic => {
                if creds.username.is_empty() {
                    return Err(self
                        .auth_error(url, "the registry requires a user name and password".into()));
                }
                Ok(basic(&creds.username, &creds.password))
            }
            Challenge::Bearer {
                realm,
                service,
                scope,
            } => {
                let scope = scope.unwrap_or_else(|| format!("repository:{}:pull", self.repository));
                let mut query: Vec<(&str, String)> = vec![("scope", scope.clone())];
                if let Some(s) = &service {
                    query.push(("service", s.clone()));
                }
                let req = if !creds.identity_token.is_empty() {
                    // An identity token is an OAuth2 refresh token (docker login with a
                    // token server): exchange it by POST, as docker does.
                    let mut form = query.clone();
                    form.push(("grant_type", "refresh_token".into()));
                    form.push(("refresh_token", creds.identity_token.clone()));
                    form.push(("client_id", "ucr".into()));
                    self.http.post(&realm).form(&form)
                } else {
                    let mut req = self.http.get(&realm).query(&query);
                    if !creds.username.is_empty() {
                        req = req.header(AUTHORIZATION, basic(&creds.username, &creds.password));
                    }
                    req
                };
                let resp = self.send(req, &realm).await?;
                if !resp.status().is_success() {
                    return Err(self.auth_error(
                        url,
                        format!("token endpoint {realm} answered {}", resp.status()),
                    ));
                }
                let body = self.read_limited(resp, &realm, 1 << 20).await?;
                // Docker's token answer (`token`, or OAuth2's `access_token`) has no type
                // in oci-spec, whose `image` types cover only the image documents.
                let json: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
                    self.auth_error(url, format!("token endpoint {realm} sent bad JSON: {e}"))
                })?;
                let token = json
                    .get("token")
                    .or_else(|| json.get("access_token"))
                    .and_then(|t| t.as_str())
                    .ok_or_else(|| {
                        self.auth_error(url, format!("token endpoint {realm} sent no token"))
                    })?;
                Ok(format!("Bearer {token}"))
            }
        }
    }

    fn check_status(&self, resp: &Response, url: &str) -> Result<(), PullError> {
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        Err(match status {
            StatusCode::FORBIDDEN => self.auth_error(url, "403 Forbidden".into()),
            _ => PullError::Http {
                reference: self.reference.clone(),
                url: url.to_string(),
                status: status.as_u16(),
                detail: String::new(),
            },
        })
    }

    /// Reads a whole (small) body under the watchdog and a size cap.
    async fn read_limited(
        &self,
        resp: Response,
        url: &str,
        limit: u64,
    ) -> Result<Bytes, PullError> {
        let mut stream = watchdog(
            body_stream(resp, url),
            self.progress_timeout,
            url.to_string(),
        );
        let mut out = Vec::new();
        while let Some(chunk) = stream.next().await {
            out.extend_from_slice(&chunk?);
            if out.len() as u64 > limit {
                return Err(PullError::TooLarge {
                    what: "response",
                    digest: url.to_string(),
                    limit,
                });
            }
        }
        Ok(Bytes::from(out))
    }

    /// Fetches a manifest: (content type, body, the registry's `Docker-Content-Digest`).
    pub async fn manifest(
        &self,
        reference: &str,
    ) -> Result<(String, Bytes, Option<String>), PullError> {
        let url = self.url(&format!("manifests/{reference}"));
        let resp = self.get(&url, Some(super::manifest::ACCEPT)).await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Err(PullError::ManifestNotFound {
                reference: self.reference.clone(),
                url,
            });
        }
        self.check_status(&resp, &url)?;
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let content_type = header(CONTENT_TYPE.as_str()).unwrap_or_default();
        let digest = header("docker-content-digest");
        let body = self.read_limited(resp, &url, MAX_MANIFEST).await?;
        Ok((content_type, body, digest))
    }

    /// A small blob (an image config) read whole and checked against its digest.
    pub async fn blob_bytes(&self, digest: &Digest, limit: u64) -> Result<Bytes, PullError> {
        let url = self.url(&format!("blobs/{digest}"));
        let resp = self.get(&url, None).await?;
        self.check_status(&resp, &url)?;
        let body = self.read_limited(resp, &url, limit).await?;
        verify_bytes("config", digest, &body)?;
        Ok(body)
    }

    /// A layer blob as a stream; the store verifies it while unpacking.
    pub async fn blob_stream(&self, digest: &Digest) -> Result<ByteStream, PullError> {
        let url = self.url(&format!("blobs/{digest}"));
        let resp = self.get(&url, None).await?;
        self.check_status(&resp, &url)?;
        Ok(watchdog(
            body_stream(resp, &url),
            self.progress_timeout,
            format!("layer {digest}"),
        ))
    }
}

/// Manifests are small; anything bigger is not one (and must not fill our memory).
pub const MAX_MANIFEST: u64 = 4 << 20;

fn basic(user: &str, pass: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    )
}

fn body_stream(resp: Response, url: &str) -> ByteStream {
    let url = url.to_string();
    Box::pin(resp.bytes_stream().map(move |r| {
        r.map_err(|e| PullError::Transfer {
            url: url.clone(),
            detail: error_chain(&e),
        })
    }))
}

/// reqwest hides the useful part ("connection refused") in the source chain.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

pub fn verify_bytes(what: &'static str, digest: &Digest, body: &[u8]) -> Result<(), PullError> {
    let actual = crate::provisioner::puller::digest_of(digest.algorithm(), body);
    if actual != *digest {
        return Err(PullError::DigestMismatch {
            what,
            digest: digest.to_string(),
            actual: actual.to_string(),
        });
    }
    Ok(())
}
