//! CRI ImageService: translation only; the store does the work.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_cri::v1 as cri;
use tonic::{Request, Response, Status};

use super::status::{from_error, required};
use super::{instrument, Core};
use crate::provisioner::puller::registry::auth::decode_auth;
use crate::provisioner::puller::Credentials;
use crate::provisioner::store::Image;

pub struct Images {
    core: Arc<Core>,
}

impl Images {
    pub fn new(core: Arc<Core>) -> Self {
        Images { core }
    }
}

fn image_spec(spec: &Option<cri::ImageSpec>) -> Result<&str, Status> {
    required(
        spec.as_ref().map(|s| s.image.as_str()).unwrap_or(""),
        "image.image",
    )
}

/// CRI `AuthConfig` → credentials. `auth` is base64 `user:password`, as in docker config.
fn credentials(auth: Option<cri::AuthConfig>) -> Result<Option<Credentials>, Status> {
    let Some(a) = auth else { return Ok(None) };
    let mut c = Credentials {
        username: a.username,
        password: a.password,
        identity_token: a.identity_token,
        registry_token: a.registry_token,
    };
    if !a.auth.is_empty() {
        let (u, p) = decode_auth(&a.auth)
            .map_err(|e| Status::invalid_argument(format!("auth.auth: {e}")))?;
        c.username = u;
        c.password = p;
    }
    Ok((!c.is_empty()).then_some(c))
}

/// `config.User` → uid or username, as containerd reports them: `1002` and `1003:1004`
/// give a uid, `www-data` and `www-data:1004` a name.
fn user_fields(user: Option<&str>) -> (Option<cri::Int64Value>, String) {
    let Some(user) = user else {
        return (None, String::new());
    };
    let name = user.split(':').next().unwrap_or("");
    match name.parse::<i64>() {
        Ok(uid) => (Some(cri::Int64Value { value: uid }), String::new()),
        Err(_) => (None, name.to_string()),
    }
}

fn to_cri(image: Image) -> cri::Image {
    let (uid, username) = user_fields(image.user.as_deref());
    cri::Image {
        id: image.id.clone(),
        repo_tags: image.repo_tags,
        repo_digests: image.repo_digests,
        size: image.size,
        uid,
        username,
        spec: Some(cri::ImageSpec {
            image: image.id,
            ..Default::default()
        }),
        pinned: image.pinned,
    }
}

#[tonic::async_trait]
impl cri::image_service_server::ImageService for Images {
    async fn list_images(
        &self,
        request: Request<cri::ListImagesRequest>,
    ) -> Result<Response<cri::ListImagesResponse>, Status> {
        let filter = request
            .into_inner()
            .filter
            .and_then(|f| f.image)
            .map(|s| s.image);
        instrument("ListImages", filter.as_deref().unwrap_or(""), async {
            let images = self
                .core
                .store
                .list(filter.as_deref())
                .map_err(from_error)?;
            Ok(cri::ListImagesResponse {
                images: images.into_iter().map(to_cri).collect(),
            })
        })
        .await
    }

    async fn image_status(
        &self,
        request: Request<cri::ImageStatusRequest>,
    ) -> Result<Response<cri::ImageStatusResponse>, Status> {
        let req = request.into_inner();
        let spec = image_spec(&req.image)?.to_string();
        instrument("ImageStatus", &spec, async {
            let Some(image) = self.core.store.status(&spec).map_err(from_error)? else {
                // Not an error: kubelet asks before pulling.
                return Ok(cri::ImageStatusResponse::default());
            };
            let mut info = HashMap::new();
            if req.verbose {
                let config = self.core.store.config(&image.id).map_err(from_error)?;
                let config: serde_json::Value = config
                    .and_then(|c| serde_json::from_slice(&c).ok())
                    .unwrap_or(serde_json::Value::Null);
                let verbose = serde_json::json!({
                    "id": image.id,
                    "imageSpec": config,
                    "useCount": image.use_count,
                    "lastUsed": image.last_used,
                });
                info.insert("info".to_string(), verbose.to_string());
            }
            Ok(cri::ImageStatusResponse {
                image: Some(to_cri(image)),
                info,
            })
        })
        .await
    }

    async fn pull_image(
        &self,
        request: Request<cri::PullImageRequest>,
    ) -> Result<Response<cri::PullImageResponse>, Status> {
        let req = request.into_inner();
        let spec = image_spec(&req.image)?.to_string();
        let creds = credentials(req.auth)?;
        instrument("PullImage", &spec, async {
            let image = self
                .core
                .store
                .pull(&spec, creds)
                .await
                .map_err(from_error)?;
            Ok(cri::PullImageResponse {
                image_ref: image.id,
            })
        })
        .await
    }

    async fn remove_image(
        &self,
        request: Request<cri::RemoveImageRequest>,
    ) -> Result<Response<cri::RemoveImageResponse>, Status> {
        let req = request.into_inner();
        let spec = image_spec(&req.image)?.to_string();
        instrument("RemoveImage", &spec, async {
            self.core.store.remove(&spec).await.map_err(from_error)?;
            Ok(cri::RemoveImageResponse {})
        })
        .await
    }

    async fn image_fs_info(
        &self,
        _request: Request<cri::ImageFsInfoRequest>,
    ) -> Result<Response<cri::ImageFsInfoResponse>, Status> {
        instrument("ImageFsInfo", "", async {
            let usage = self.core.store.usage().map_err(from_error)?;
            let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
            Ok(cri::ImageFsInfoResponse {
                image_filesystems: vec![cri::FilesystemUsage {
                    timestamp: now,
                    fs_id: Some(cri::FilesystemIdentifier {
                        mountpoint: usage.mountpoint,
                    }),
                    used_bytes: Some(cri::UInt64Value {
                        value: usage.used_bytes,
                    }),
                    inodes_used: Some(cri::UInt64Value {
                        value: usage.inodes_used,
                    }),
                }],
                container_filesystems: vec![],
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_map_like_containerd() {
        assert_eq!(
            user_fields(Some("1002")),
            (Some(cri::Int64Value { value: 1002 }), String::new())
        );
        assert_eq!(
            user_fields(Some("1003:1004")),
            (Some(cri::Int64Value { value: 1003 }), String::new())
        );
        assert_eq!(
            user_fields(Some("www-data")),
            (None, "www-data".to_string())
        );
        assert_eq!(
            user_fields(Some("www-data:1004")),
            (None, "www-data".to_string())
        );
        assert_eq!(user_fields(None), (None, String::new()));
    }

    #[test]
    fn auth_field_is_decoded_and_bad_auth_is_refused() {
        let c = credentials(Some(cri::AuthConfig {
            auth: "dWNyOnVjci1zZWNyZXQ=".into(),
            ..Default::default()
        }))
        .expect("valid")
        .expect("some");
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("ucr", "ucr-secret")
        );
        let e = credentials(Some(cri::AuthConfig {
            auth: "%%%".into(),
            ..Default::default()
        }))
        .expect_err("bad base64");
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        assert!(credentials(Some(cri::AuthConfig::default()))
            .expect("empty ok")
            .is_none());
    }
}
