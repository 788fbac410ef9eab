//! The streaming server's request cache: Exec, Attach and PortForward answer with a URL
//! holding a random token, and the client's upgrade request on that URL redeems it once.
//! As in kubelet's streaming library: tokens are single-use, live one minute, and at most
//! 1000 wait at a time, so a client that asks and never connects costs little.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use rand::RngCore;

use crate::containerizer::session::SessionStreams;

/// How long a URL stays valid.
pub const TTL: Duration = Duration::from_secs(60);
/// Requests waiting for their client at once.
pub const MAX_PENDING: usize = 1000;

/// What a token stands for: the request as the CRI call validated it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Exec {
        container: String,
        cmd: Vec<String>,
        streams: SessionStreams,
    },
    Attach {
        container: String,
        streams: SessionStreams,
    },
    PortForward {
        pod: String,
        /// The pod's network namespace; `None` for a host-network pod.
        netns: Option<std::path::PathBuf>,
    },
}

impl Request {
    /// The URL path segment of its kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Request::Exec { .. } => "exec",
            Request::Attach { .. } => "attach",
            Request::PortForward { .. } => "portforward",
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the streaming server has {MAX_PENDING} requests waiting for their clients already")]
pub struct TooMany;

#[derive(Default)]
pub struct Tokens {
    pending: Mutex<HashMap<String, (Request, Instant)>>,
}

impl Tokens {
    /// Stores `request` and returns its token (URL-safe, 8 random bytes as kubelet's).
    pub fn insert(&self, request: Request) -> Result<String, TooMany> {
        self.insert_at(request, Instant::now())
    }

    fn insert_at(&self, request: Request, now: Instant) -> Result<String, TooMany> {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.retain(|_, (_, expires)| *expires > now);
        if pending.len() >= MAX_PENDING {
            return Err(TooMany);
        }
        loop {
            let mut bytes = [0u8; 8];
            rand::rng().fill_bytes(&mut bytes);
            let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
            if !pending.contains_key(&token) {
                pending.insert(token.clone(), (request, now + TTL));
                return Ok(token);
            }
        }
    }

    /// Redeems `token` for a request of `kind`: `None` when unknown, expired, already
    /// used, or of another kind (an exec token is no good on the attach path). A token
    /// presented on the wrong path is spent all the same: it was seen where it should
    /// not have been.
    pub fn take(&self, kind: &str, token: &str) -> Option<Request> {
        self.take_at(kind, token, Instant::now())
    }

    fn take_at(&self, kind: &str, token: &str, now: Instant) -> Option<Request> {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let (request, expires) = pending.remove(token)?;
        (expires > now && request.kind() == kind).then_some(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attach() -> Request {
        Request::Attach {
            container: "c1".into(),
            streams: SessionStreams::default(),
        }
    }

    #[test]
    fn a_token_is_good_once_and_only_on_its_path() {
        let tokens = Tokens::default();
        let t = tokens.insert(attach()).expect("insert");
        assert!(t.len() >= 11 && !t.contains('/') && !t.contains('+'), "{t}");
        assert_eq!(tokens.take("attach", &t), Some(attach()));
        assert_eq!(tokens.take("attach", &t), None, "reused");
        let t = tokens.insert(attach()).expect("insert");
        assert_eq!(tokens.take("exec", &t), None, "wrong path");
        assert_eq!(tokens.take("attach", &t), None, "spent on the wrong path");
        assert_eq!(tokens.take("attach", "nonsense"), None);
    }

    #[test]
    fn tokens_expire_and_their_room_is_reused() {
        let tokens = Tokens::default();
        let start = Instant::now();
        let t = tokens.insert_at(attach(), start).expect("insert");
        assert_eq!(tokens.take_at("attach", &t, start + TTL), None, "expired");
        for _ in 0..MAX_PENDING {
            tokens.insert_at(attach(), start).expect("room");
        }
        assert_eq!(tokens.insert_at(attach(), start), Err(TooMany));
        // A minute later the stale ones are dropped to make room.
        tokens
            .insert_at(attach(), start + TTL + Duration::from_secs(1))
            .expect("room again");
    }
}
