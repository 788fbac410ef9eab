//! The image of a LAUNCH_CONTAINER (`container.mesos.image`): a DOCKER image by name,
//! pulled when the store lacks it or when `cached: false` asks for a fresh pull (seed
//! 002's force-pull). An `Image.docker.config` secret (a docker `config.json`, which is
//! what DC/OS's `pullConfig` becomes) authenticates that pull alone: it is parsed in
//! memory, its credentials go to the store's pull, and nothing of it is written or logged.

use http::StatusCode;

use super::calls::Agent;
use super::codec::Refused;
use super::wire::v1::{image, secret, Image};
use crate::provisioner::puller::registry::auth::DockerConfig;
use crate::provisioner::puller::Credentials;
use crate::provisioner::reference::Reference;

/// Makes sure `image` is in the store; returns its name.
pub async fn provide(agent: &Agent, image: &Image) -> Result<String, Refused> {
    let bad = |m: String| Refused(StatusCode::BAD_REQUEST, m);
    let docker = match (image.r#type(), &image.docker) {
        (image::Type::Docker, Some(docker)) => docker,
        _ => {
            return Err(bad(
                "only DOCKER images (`image.docker.name`) are supported".into(),
            ))
        }
    };
    let name = docker.name.clone();
    let reference =
        Reference::parse(&name).map_err(|e| bad(format!("Invalid image name {name:?}: {e}")))?;
    let credentials = match &docker.config {
        Some(secret) => credentials(secret, reference.domain())?,
        None => None,
    };
    let store = &agent.core.store;
    let stored = store.status(&name).ok().flatten();
    if stored.is_none() || !image.cached() {
        // The docker store's pull timer, as Mesos's reports it.
        let started = std::time::Instant::now();
        let pulled = store.pull(&name, credentials).await;
        agent.core.counters.image_pull.record(started.elapsed());
        pulled.map_err(|e| {
            bad(format!(
                "Failed to pull image {name}: {}",
                crate::error::chain(&e)
            ))
        })?;
    }
    Ok(name)
}

/// The credentials a `config.json` secret holds for `host` (none when it names other
/// registries: the pull then goes as it would without it, as Mesos's does).
fn credentials(
    secret: &super::wire::v1::Secret,
    host: &str,
) -> Result<Option<Credentials>, Refused> {
    let bad = |m: &str| Refused(StatusCode::BAD_REQUEST, format!("Image.docker.config: {m}"));
    match secret.r#type() {
        secret::Type::Value => {}
        // A reference names a secret in a store a Mesos secret resolver module reads;
        // ucr has no such store.
        secret::Type::Reference => {
            return Err(bad(
                "secret references are not supported by ucr (it has no secret resolver); send the value",
            ))
        }
        secret::Type::Unknown => return Err(bad("the secret's type must be VALUE")),
    }
    let data = secret
        .value
        .as_ref()
        .map(|v| v.data.as_slice())
        .ok_or_else(|| bad("a VALUE secret needs `value.data`"))?;
    let text = std::str::from_utf8(data).map_err(|_| bad("the config is not UTF-8"))?;
    // Errors name the field, never the content: it holds passwords.
    let config = DockerConfig::parse("in Image.docker.config", text)
        .map_err(|e| Refused(StatusCode::BAD_REQUEST, e.to_string()))?;
    Ok(config.lookup(host))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesos::wire::v1::Secret;

    fn value(text: &str) -> Secret {
        Secret {
            r#type: Some(secret::Type::Value as i32),
            reference: None,
            value: Some(secret::Value {
                data: text.as_bytes().to_vec(),
            }),
        }
    }

    #[test]
    fn a_config_secret_gives_the_registrys_credentials() {
        // `dWNyOnVjci1zZWNyZXQ=` is `ucr:ucr-secret`.
        let s = value(r#"{"auths": {"127.0.0.1:5001": {"auth": "dWNyOnVjci1zZWNyZXQ="}}}"#);
        let c = credentials(&s, "127.0.0.1:5001")
            .expect("valid")
            .expect("found");
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("ucr", "ucr-secret")
        );
        assert!(credentials(&s, "quay.io").expect("valid").is_none());
    }

    #[test]
    fn a_secret_is_never_a_path_and_errors_do_not_echo_it() {
        // `DockerConfig::load` would read a file for this; a client's secret must not.
        let e = credentials(&value("/etc/shadow"), "x").expect_err("not JSON");
        assert_eq!(e.0, StatusCode::BAD_REQUEST);
        assert!(!e.1.contains("/etc/shadow"), "{}", e.1);
        let e = credentials(&value(r#"{"auths": {"h": {"auth": "!!hunter2"}}}"#), "h")
            .expect_err("bad base64");
        assert!(!e.1.contains("hunter2"), "{}", e.1);
        let reference = Secret {
            r#type: Some(secret::Type::Reference as i32),
            reference: Some(secret::Reference {
                name: "pull".into(),
                key: None,
            }),
            value: None,
        };
        assert!(credentials(&reference, "h")
            .expect_err("ref")
            .1
            .contains("not supported"));
    }
}
