//! The node CLI: `ucr ps`, `pods`, `inspect`, `images`, `pull`, `logs`, `exec`, `stats`,
//! `rm` and `prune`, small clients of a running daemon over its socket (the CRI, plus
//! ucr's admin API for what the CRI has no call for), in the spirit of `docker ps` and
//! crictl. They live above the front doors, as any other client does.
//!
//! - `output`: tables, `-o json|yaml`; `resolve`: id prefixes;
//! - `containers`: ps, inspect, rm; `pods`; `images`: images, prune; `pull`: with bars;
//! - `logs`: the CRI log file, followed across rotation; `exec`; `stats`.

mod containers;
mod error;
mod exec;
mod images;
mod logs;
pub mod output;
mod pods;
mod pull;
pub mod resolve;
mod stats;

use std::path::Path;

use k8s_cri::v1 as cri;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use tonic::transport::Channel;

use crate::cri::admin_api::admin_client::AdminClient;

pub use containers::{inspect, ps, rm};
pub use error::ClientError;
pub use exec::exec;
pub use images::{images, prune};
pub use logs::logs;
pub use pods::pods;
pub use pull::pull;
pub use stats::stats;

/// A node lists thousands of containers in one message, as kubelet's calls do.
const MAX_MESSAGE: usize = 64 << 20;

/// A connection to the daemon.
pub struct Conn {
    channel: Channel,
}

impl Conn {
    pub async fn open(endpoint: &Path) -> Result<Conn, ClientError> {
        let channel =
            crate::cri::client::connect(endpoint)
                .await
                .map_err(|e| ClientError::Connect {
                    endpoint: endpoint.display().to_string(),
                    detail: crate::error::chain(&e),
                })?;
        Ok(Conn { channel })
    }

    pub fn runtime(&self) -> RuntimeServiceClient<Channel> {
        RuntimeServiceClient::new(self.channel.clone()).max_decoding_message_size(MAX_MESSAGE)
    }

    pub fn images(&self) -> ImageServiceClient<Channel> {
        ImageServiceClient::new(self.channel.clone()).max_decoding_message_size(MAX_MESSAGE)
    }

    pub fn admin(&self) -> AdminClient<Channel> {
        AdminClient::new(self.channel.clone())
    }

    /// Every container, whatever its state, oldest first.
    pub async fn containers(&self) -> Result<Vec<cri::Container>, ClientError> {
        let mut list = self
            .runtime()
            .list_containers(cri::ListContainersRequest { filter: None })
            .await
            .map_err(ClientError::call("ListContainers"))?
            .into_inner()
            .containers;
        list.sort_by_key(|c| c.created_at);
        Ok(list)
    }

    /// Every pod, whatever its state, oldest first.
    pub async fn pods(&self) -> Result<Vec<cri::PodSandbox>, ClientError> {
        let mut list = self
            .runtime()
            .list_pod_sandbox(cri::ListPodSandboxRequest { filter: None })
            .await
            .map_err(ClientError::call("ListPodSandbox"))?
            .into_inner()
            .items;
        list.sort_by_key(|p| p.created_at);
        Ok(list)
    }

    /// The full id of the container `wanted` names (an id or a unique prefix).
    pub async fn container_id(&self, wanted: &str) -> Result<String, ClientError> {
        let all = self.containers().await?;
        resolve::resolve("container", all.iter().map(|c| c.id.as_str()), wanted)
    }
}
