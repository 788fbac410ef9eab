//! CRI RuntimeService: each handler validates, translates (`pod`, `container`,
//! `resources`, `stats`) and calls the containerizer; the streaming calls park their
//! request on the streaming server (`streaming`). Checkpointing answers `Unimplemented`,
//! so a client gets an honest code rather than a fake success.

mod container;
mod ids;
mod pod;
mod process;
mod resources;
mod seccomp;
mod security;
mod stats;
mod streaming;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use k8s_cri::v1 as cri;
use tonic::{Request, Response, Status};

use super::status::{from_error, required};
use super::{instrument, Core};
use crate::containerizer::types::EventKind;

pub struct Runtime {
    core: Arc<Core>,
    rates: stats::CpuRates,
    /// Where Exec, Attach and PortForward send their clients; `None` when disabled.
    stream: Option<Arc<crate::streaming::StreamServer>>,
}

impl Runtime {
    pub fn new(core: Arc<Core>, stream: Option<Arc<crate::streaming::StreamServer>>) -> Self {
        Runtime {
            core,
            rates: stats::CpuRates::default(),
            stream,
        }
    }

    /// The pod a CRI id (or unique prefix of one) names, if any.
    fn pod_id(&self, wanted: &str) -> Result<Option<String>, Status> {
        ids::resolve("pod sandbox", self.core.containerizer.pod_ids(), wanted)
    }

    fn container_id(&self, wanted: &str) -> Result<Option<String>, Status> {
        // Only pods' containers: a Mesos standalone container is unknown here.
        ids::resolve(
            "container",
            self.core.containerizer.pod_container_ids(),
            wanted,
        )
    }

    fn known_pod(&self, wanted: &str) -> Result<String, Status> {
        self.pod_id(wanted)?
            .ok_or_else(|| Status::not_found(format!("pod sandbox {wanted:?} not found")))
    }

    fn known_container(&self, wanted: &str) -> Result<String, Status> {
        self.container_id(wanted)?
            .ok_or_else(|| Status::not_found(format!("container {wanted:?} not found")))
    }
}

pub const RUNTIME_NAME: &str = "ucr";
pub const CRI_API_VERSION: &str = "v1";

type EventStream =
    Pin<Box<dyn tokio_stream::Stream<Item = Result<cri::ContainerEventResponse, Status>> + Send>>;

/// Calls not built yet. `#[tonic::async_trait]` rewrites `async fn`s before this macro
/// expands, so the macro writes the rewritten signature itself.
macro_rules! not_yet {
    ($($name:ident($req:ty) -> $resp:ty;)*) => {$(
        fn $name<'life0, 'async_trait>(
            &'life0 self,
            _request: Request<$req>,
        ) -> Pin<Box<dyn Future<Output = Result<Response<$resp>, Status>> + Send + 'async_trait>>
        where
            'life0: 'async_trait,
            Self: 'async_trait,
        {
            Box::pin(async move {
                Err(Status::unimplemented(concat!(stringify!($name), " is not implemented yet")))
            })
        }
    )*};
}

#[tonic::async_trait]
impl cri::runtime_service_server::RuntimeService for Runtime {
    async fn version(
        &self,
        _request: Request<cri::VersionRequest>,
    ) -> Result<Response<cri::VersionResponse>, Status> {
        instrument("Version", "", async {
            Ok(cri::VersionResponse {
                version: "0.1.0".into(),
                runtime_name: RUNTIME_NAME.into(),
                runtime_version: env!("CARGO_PKG_VERSION").into(),
                runtime_api_version: CRI_API_VERSION.into(),
            })
        })
        .await
    }

    async fn status(
        &self,
        _request: Request<cri::StatusRequest>,
    ) -> Result<Response<cri::StatusResponse>, Status> {
        instrument("Status", "", async {
            Ok(cri::StatusResponse {
                status: Some(cri::RuntimeStatus {
                    conditions: vec![
                        cri::RuntimeCondition {
                            r#type: "RuntimeReady".into(),
                            status: true,
                            ..Default::default()
                        },
                        network_condition(self.core.containerizer.network_ready()),
                    ],
                }),
                // The one handler ucr has (the default, named ""): it gives a pod a user
                // namespace of its own (kubelet checks this before sending userns options).
                // Recursive read-only mounts are not offered.
                runtime_handlers: vec![cri::RuntimeHandler {
                    name: String::new(),
                    features: Some(cri::RuntimeHandlerFeatures {
                        recursive_read_only_mounts: false,
                        user_namespaces: true,
                    }),
                }],
                ..Default::default()
            })
        })
        .await
    }

    async fn run_pod_sandbox(
        &self,
        request: Request<cri::RunPodSandboxRequest>,
    ) -> Result<Response<cri::RunPodSandboxResponse>, Status> {
        let config = request
            .into_inner()
            .config
            .ok_or_else(|| Status::invalid_argument("config must be set"))?;
        let config = pod::config(config)?;
        let name = config.metadata.name.clone();
        instrument("RunPodSandbox", &name, async {
            let pod = self
                .core
                .containerizer
                .run_pod(config)
                .await
                .map_err(from_error)?;
            tracing::Span::current().record("pod_id", pod.id.as_str());
            Ok(cri::RunPodSandboxResponse {
                pod_sandbox_id: pod.id,
            })
        })
        .await
    }

    async fn stop_pod_sandbox(
        &self,
        request: Request<cri::StopPodSandboxRequest>,
    ) -> Result<Response<cri::StopPodSandboxResponse>, Status> {
        let id = request.into_inner().pod_sandbox_id;
        instrument("StopPodSandbox", &id, async {
            required(&id, "pod_sandbox_id")?;
            // An unknown pod is not an error: it may be removed already.
            if let Some(id) = self.pod_id(&id)? {
                self.core
                    .containerizer
                    .stop_pod(&id)
                    .await
                    .map_err(from_error)?;
            }
            Ok(cri::StopPodSandboxResponse {})
        })
        .await
    }

    async fn remove_pod_sandbox(
        &self,
        request: Request<cri::RemovePodSandboxRequest>,
    ) -> Result<Response<cri::RemovePodSandboxResponse>, Status> {
        let id = request.into_inner().pod_sandbox_id;
        instrument("RemovePodSandbox", &id, async {
            required(&id, "pod_sandbox_id")?;
            if let Some(id) = self.pod_id(&id)? {
                self.core
                    .containerizer
                    .remove_pod(&id)
                    .await
                    .map_err(from_error)?;
            }
            Ok(cri::RemovePodSandboxResponse {})
        })
        .await
    }

    async fn pod_sandbox_status(
        &self,
        request: Request<cri::PodSandboxStatusRequest>,
    ) -> Result<Response<cri::PodSandboxStatusResponse>, Status> {
        let req = request.into_inner();
        instrument("PodSandboxStatus", &req.pod_sandbox_id.clone(), async {
            required(&req.pod_sandbox_id, "pod_sandbox_id")?;
            let id = self.known_pod(&req.pod_sandbox_id)?;
            let p = self
                .core
                .containerizer
                .pod_status(&id)
                .map_err(from_error)?;
            Ok(cri::PodSandboxStatusResponse {
                status: Some(pod::status(&p)),
                info: if req.verbose {
                    pod::info(&p)
                } else {
                    Default::default()
                },
                ..Default::default()
            })
        })
        .await
    }

    async fn list_pod_sandbox(
        &self,
        request: Request<cri::ListPodSandboxRequest>,
    ) -> Result<Response<cri::ListPodSandboxResponse>, Status> {
        let mut filter = pod::filter(request.into_inner().filter);
        instrument("ListPodSandbox", "", async {
            if let Some(wanted) = filter.id.take() {
                match self.pod_id(&wanted)? {
                    Some(id) => filter.id = Some(id),
                    None => return Ok(cri::ListPodSandboxResponse { items: vec![] }),
                }
            }
            let pods = self.core.containerizer.list_pods(&filter);
            Ok(cri::ListPodSandboxResponse {
                items: pods.iter().map(pod::summary).collect(),
            })
        })
        .await
    }

    async fn create_container(
        &self,
        request: Request<cri::CreateContainerRequest>,
    ) -> Result<Response<cri::CreateContainerResponse>, Status> {
        let req = request.into_inner();
        required(&req.pod_sandbox_id, "pod_sandbox_id")?;
        let config = req
            .config
            .ok_or_else(|| Status::invalid_argument("config must be set"))?;
        let name = config
            .metadata
            .as_ref()
            .map(|m| m.name.clone())
            .unwrap_or_default();
        instrument("CreateContainer", &name, async {
            let pod_id = self.known_pod(&req.pod_sandbox_id)?;
            tracing::Span::current().record("pod_id", pod_id.as_str());
            let pod = self
                .core
                .containerizer
                .pod_status(&pod_id)
                .map_err(from_error)?;
            let image_name = config
                .image
                .as_ref()
                .map(|i| i.image.clone())
                .unwrap_or_default();
            required(&image_name, "image.image")?;
            let image = self.core.image_runtime(&image_name).map_err(from_error)?;
            let config = container::config(config, &pod, &image)?;
            let (c, _) = self
                .core
                .containerizer
                .create_container(Some(&pod.id), config)
                .await
                .map_err(from_error)?;
            tracing::Span::current().record("container_id", c.id.as_str());
            Ok(cri::CreateContainerResponse { container_id: c.id })
        })
        .await
    }

    async fn start_container(
        &self,
        request: Request<cri::StartContainerRequest>,
    ) -> Result<Response<cri::StartContainerResponse>, Status> {
        let id = request.into_inner().container_id;
        instrument("StartContainer", &id, async {
            required(&id, "container_id")?;
            let id = self.known_container(&id)?;
            self.core
                .containerizer
                .start_container(&id)
                .await
                .map_err(from_error)?;
            Ok(cri::StartContainerResponse {})
        })
        .await
    }

    async fn stop_container(
        &self,
        request: Request<cri::StopContainerRequest>,
    ) -> Result<Response<cri::StopContainerResponse>, Status> {
        let req = request.into_inner();
        instrument("StopContainer", &req.container_id.clone(), async {
            required(&req.container_id, "container_id")?;
            let id = self.known_container(&req.container_id)?;
            self.core
                .containerizer
                .stop_container(&id, req.timeout)
                .await
                .map_err(from_error)?;
            Ok(cri::StopContainerResponse {})
        })
        .await
    }

    async fn remove_container(
        &self,
        request: Request<cri::RemoveContainerRequest>,
    ) -> Result<Response<cri::RemoveContainerResponse>, Status> {
        let id = request.into_inner().container_id;
        instrument("RemoveContainer", &id, async {
            required(&id, "container_id")?;
            // An unknown container is not an error: it may be removed already.
            if let Some(id) = self.container_id(&id)? {
                self.core
                    .containerizer
                    .remove_container(&id)
                    .await
                    .map_err(from_error)?;
            }
            Ok(cri::RemoveContainerResponse {})
        })
        .await
    }

    async fn list_containers(
        &self,
        request: Request<cri::ListContainersRequest>,
    ) -> Result<Response<cri::ListContainersResponse>, Status> {
        let mut filter = container::filter(request.into_inner().filter);
        instrument("ListContainers", "", async {
            let none = || cri::ListContainersResponse { containers: vec![] };
            if let Some(wanted) = filter.id.take() {
                match self.container_id(&wanted)? {
                    Some(id) => filter.id = Some(id),
                    None => return Ok(none()),
                }
            }
            if let Some(wanted) = filter.pod_id.take() {
                match self.pod_id(&wanted)? {
                    Some(id) => filter.pod_id = Some(id),
                    None => return Ok(none()),
                }
            }
            let list = self.core.containerizer.list_containers(&filter);
            Ok(cri::ListContainersResponse {
                containers: list.iter().map(container::summary).collect(),
            })
        })
        .await
    }

    async fn container_status(
        &self,
        request: Request<cri::ContainerStatusRequest>,
    ) -> Result<Response<cri::ContainerStatusResponse>, Status> {
        let req = request.into_inner();
        instrument("ContainerStatus", &req.container_id.clone(), async {
            required(&req.container_id, "container_id")?;
            let id = self.known_container(&req.container_id)?;
            let c = self
                .core
                .containerizer
                .container_status(&id)
                .await
                .map_err(from_error)?;
            let info = if req.verbose {
                let isolation = self
                    .core
                    .containerizer
                    .isolation_info(&id)
                    .await
                    .unwrap_or_default();
                container::info(&c, &isolation)
            } else {
                Default::default()
            };
            Ok(cri::ContainerStatusResponse {
                status: Some(container::status(&c)),
                info,
            })
        })
        .await
    }

    async fn reopen_container_log(
        &self,
        request: Request<cri::ReopenContainerLogRequest>,
    ) -> Result<Response<cri::ReopenContainerLogResponse>, Status> {
        let id = request.into_inner().container_id;
        instrument("ReopenContainerLog", &id, async {
            required(&id, "container_id")?;
            let id = self.known_container(&id)?;
            self.core
                .containerizer
                .reopen_log(&id)
                .await
                .map_err(from_error)?;
            Ok(cri::ReopenContainerLogResponse {})
        })
        .await
    }

    async fn exec_sync(
        &self,
        request: Request<cri::ExecSyncRequest>,
    ) -> Result<Response<cri::ExecSyncResponse>, Status> {
        let req = request.into_inner();
        required(&req.container_id, "container_id")?;
        if req.cmd.is_empty() {
            return Err(Status::invalid_argument("cmd must not be empty"));
        }
        instrument("ExecSync", &req.container_id.clone(), async {
            let id = self.known_container(&req.container_id)?;
            let out = self
                .core
                .containerizer
                .exec_sync(&id, &req.cmd, req.timeout)
                .await
                .map_err(from_error)?;
            Ok(cri::ExecSyncResponse {
                stdout: out.stdout,
                stderr: out.stderr,
                exit_code: out.exit_code,
            })
        })
        .await
    }

    async fn update_runtime_config(
        &self,
        _request: Request<cri::UpdateRuntimeConfigRequest>,
    ) -> Result<Response<cri::UpdateRuntimeConfigResponse>, Status> {
        // kubelet sends the pod CIDR here; CNI configuration owns addressing in ucr.
        instrument("UpdateRuntimeConfig", "", async {
            Ok(cri::UpdateRuntimeConfigResponse {})
        })
        .await
    }

    async fn runtime_config(
        &self,
        _request: Request<cri::RuntimeConfigRequest>,
    ) -> Result<Response<cri::RuntimeConfigResponse>, Status> {
        instrument("RuntimeConfig", "", async {
            Ok(cri::RuntimeConfigResponse {
                linux: Some(cri::LinuxRuntimeConfiguration {
                    cgroup_driver: cri::CgroupDriver::Cgroupfs as i32,
                }),
            })
        })
        .await
    }

    type GetContainerEventsStream = EventStream;

    async fn get_container_events(
        &self,
        _request: Request<cri::GetEventsRequest>,
    ) -> Result<Response<Self::GetContainerEventsStream>, Status> {
        use tokio_stream::StreamExt;
        let rx = self.core.containerizer.subscribe();
        let stream = tokio_stream::wrappers::BroadcastStream::new(rx).filter_map(|e| {
            // A slow reader that fell behind just misses events (kubelet relists).
            let e = e.ok()?;
            // The Mesos door's standalone containers are not kubelet's business.
            e.pod_id.as_ref()?;
            let kind = match e.kind {
                EventKind::Created => cri::ContainerEventType::ContainerCreatedEvent,
                EventKind::Started => cri::ContainerEventType::ContainerStartedEvent,
                EventKind::Stopped => cri::ContainerEventType::ContainerStoppedEvent,
                EventKind::Deleted => cri::ContainerEventType::ContainerDeletedEvent,
            };
            Some(Ok(cri::ContainerEventResponse {
                container_id: e.container_id,
                container_event_type: kind as i32,
                created_at: e.at_ns,
                ..Default::default()
            }))
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn update_container_resources(
        &self,
        request: Request<cri::UpdateContainerResourcesRequest>,
    ) -> Result<Response<cri::UpdateContainerResourcesResponse>, Status> {
        let req = request.into_inner();
        required(&req.container_id, "container_id")?;
        instrument(
            "UpdateContainerResources",
            &req.container_id.clone(),
            async {
                let id = self.known_container(&req.container_id)?;
                let resources = match &req.linux {
                    Some(r) => resources::from_cri(r)?,
                    None => Default::default(),
                };
                self.core
                    .containerizer
                    .update_container_resources(&id, resources)
                    .await
                    .map_err(from_error)?;
                Ok(cri::UpdateContainerResourcesResponse {})
            },
        )
        .await
    }

    async fn container_stats(
        &self,
        request: Request<cri::ContainerStatsRequest>,
    ) -> Result<Response<cri::ContainerStatsResponse>, Status> {
        let req = request.into_inner();
        instrument("ContainerStats", &req.container_id.clone(), async {
            required(&req.container_id, "container_id")?;
            let id = self.known_container(&req.container_id)?;
            let list = self
                .core
                .containerizer
                .container_stats(Some(vec![id.clone()]))
                .await
                .map_err(from_error)?;
            let Some(s) = list.first() else {
                return Err(Status::failed_precondition(format!(
                    "container {id} is not running: it has no stats"
                )));
            };
            Ok(cri::ContainerStatsResponse {
                stats: Some(stats::container(&self.rates, s)),
            })
        })
        .await
    }

    async fn list_container_stats(
        &self,
        request: Request<cri::ListContainerStatsRequest>,
    ) -> Result<Response<cri::ListContainerStatsResponse>, Status> {
        let f = request.into_inner().filter.unwrap_or_default();
        instrument("ListContainerStats", "", async {
            let filter = container::filter(Some(cri::ContainerFilter {
                id: match f.id.as_str() {
                    "" => String::new(),
                    id => match self.container_id(id)? {
                        Some(full) => full,
                        None => return Ok(cri::ListContainerStatsResponse::default()),
                    },
                },
                pod_sandbox_id: match f.pod_sandbox_id.as_str() {
                    "" => String::new(),
                    id => match self.pod_id(id)? {
                        Some(full) => full,
                        None => return Ok(cri::ListContainerStatsResponse::default()),
                    },
                },
                label_selector: f.label_selector,
                state: None,
            }));
            let ids = self
                .core
                .containerizer
                .list_containers(&filter)
                .into_iter()
                .map(|c| c.id)
                .collect();
            let list = self
                .core
                .containerizer
                .container_stats(Some(ids))
                .await
                .map_err(from_error)?;
            Ok(cri::ListContainerStatsResponse {
                stats: list
                    .iter()
                    .map(|s| stats::container(&self.rates, s))
                    .collect(),
            })
        })
        .await
    }

    async fn pod_sandbox_stats(
        &self,
        request: Request<cri::PodSandboxStatsRequest>,
    ) -> Result<Response<cri::PodSandboxStatsResponse>, Status> {
        let req = request.into_inner();
        instrument("PodSandboxStats", &req.pod_sandbox_id.clone(), async {
            required(&req.pod_sandbox_id, "pod_sandbox_id")?;
            let id = self.known_pod(&req.pod_sandbox_id)?;
            let list = self
                .core
                .containerizer
                .pod_stats(Some(vec![id.clone()]))
                .await
                .map_err(from_error)?;
            let Some(s) = list.first() else {
                return Err(Status::failed_precondition(format!(
                    "pod sandbox {id} is not ready: it has no stats"
                )));
            };
            Ok(cri::PodSandboxStatsResponse {
                stats: Some(stats::pod(&self.rates, s)),
            })
        })
        .await
    }

    async fn list_pod_sandbox_stats(
        &self,
        request: Request<cri::ListPodSandboxStatsRequest>,
    ) -> Result<Response<cri::ListPodSandboxStatsResponse>, Status> {
        let f = request.into_inner().filter.unwrap_or_default();
        instrument("ListPodSandboxStats", "", async {
            let filter = pod::filter(Some(cri::PodSandboxFilter {
                id: match f.id.as_str() {
                    "" => String::new(),
                    id => match self.pod_id(id)? {
                        Some(full) => full,
                        None => return Ok(cri::ListPodSandboxStatsResponse::default()),
                    },
                },
                label_selector: f.label_selector,
                state: None,
            }));
            let ids = self
                .core
                .containerizer
                .list_pods(&filter)
                .into_iter()
                .map(|p| p.id)
                .collect();
            let list = self
                .core
                .containerizer
                .pod_stats(Some(ids))
                .await
                .map_err(from_error)?;
            Ok(cri::ListPodSandboxStatsResponse {
                stats: list.iter().map(|s| stats::pod(&self.rates, s)).collect(),
            })
        })
        .await
    }

    async fn list_metric_descriptors(
        &self,
        _request: Request<cri::ListMetricDescriptorsRequest>,
    ) -> Result<Response<cri::ListMetricDescriptorsResponse>, Status> {
        instrument("ListMetricDescriptors", "", async {
            Ok(cri::ListMetricDescriptorsResponse {
                descriptors: stats::descriptors(),
            })
        })
        .await
    }

    async fn list_pod_sandbox_metrics(
        &self,
        _request: Request<cri::ListPodSandboxMetricsRequest>,
    ) -> Result<Response<cri::ListPodSandboxMetricsResponse>, Status> {
        instrument("ListPodSandboxMetrics", "", async {
            let list = self
                .core
                .containerizer
                .pod_stats(None)
                .await
                .map_err(from_error)?;
            // Readings of pods and containers that are gone are dropped here, the one
            // call that sees them all.
            let live: std::collections::HashSet<String> = list
                .iter()
                .flat_map(|p| {
                    std::iter::once(p.pod.id.clone())
                        .chain(p.containers.iter().map(|c| c.container.id.clone()))
                })
                .collect();
            self.rates.retain(|k| live.contains(k));
            Ok(cri::ListPodSandboxMetricsResponse {
                pod_metrics: list.iter().map(stats::pod_metrics).collect(),
            })
        })
        .await
    }

    async fn exec(
        &self,
        request: Request<cri::ExecRequest>,
    ) -> Result<Response<cri::ExecResponse>, Status> {
        let req = request.into_inner();
        instrument("Exec", &req.container_id.clone(), self.stream_exec(req)).await
    }

    async fn attach(
        &self,
        request: Request<cri::AttachRequest>,
    ) -> Result<Response<cri::AttachResponse>, Status> {
        let req = request.into_inner();
        instrument("Attach", &req.container_id.clone(), self.stream_attach(req)).await
    }

    async fn port_forward(
        &self,
        request: Request<cri::PortForwardRequest>,
    ) -> Result<Response<cri::PortForwardResponse>, Status> {
        let req = request.into_inner();
        instrument(
            "PortForward",
            &req.pod_sandbox_id.clone(),
            self.stream_port_forward(req),
        )
        .await
    }

    not_yet! {
        checkpoint_container(cri::CheckpointContainerRequest) -> cri::CheckpointContainerResponse;
    }
}

/// CRI `NetworkReady`: true once a CNI network is configured, else false with the reason
/// (kubelet reports the node NotReady and says why).
fn network_condition(ready: Result<(), String>) -> cri::RuntimeCondition {
    let (status, reason, message) = match ready {
        Ok(()) => (true, String::new(), String::new()),
        Err(why) => (false, "NetworkPluginNotReady".into(), why),
    };
    cri::RuntimeCondition {
        r#type: "NetworkReady".into(),
        status,
        reason,
        message,
    }
}
