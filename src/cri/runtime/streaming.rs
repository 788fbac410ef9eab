//! Exec, Attach and PortForward: validated here as containerd validates them, then parked
//! on the streaming server, whose URL the client upgrades on (see `crate::streaming`).

use k8s_cri::v1 as cri;
use tonic::Status;

use super::Runtime;
use crate::containerizer::session::SessionStreams;
use crate::containerizer::types::{ContainerState, PodState};
use crate::cri::status::{from_error, required};
use crate::streaming::Request;

/// The streams a request asks for, refused as containerd refuses them: something must
/// be connected, and a terminal has no separate stderr.
fn streams(stdin: bool, stdout: bool, stderr: bool, tty: bool) -> Result<SessionStreams, Status> {
    if !stdin && !stdout && !stderr {
        return Err(Status::invalid_argument(
            "one of stdin, stdout, or stderr must be set",
        ));
    }
    if tty && stderr {
        return Err(Status::invalid_argument(
            "tty and stderr cannot both be true",
        ));
    }
    Ok(SessionStreams {
        stdin,
        stdout,
        stderr,
        tty,
    })
}

impl Runtime {
    fn url(&self, request: Request) -> Result<String, Status> {
        let server = self
            .stream
            .as_ref()
            .ok_or_else(|| Status::unavailable("the streaming server is not running"))?;
        server
            .url_for(request)
            .map_err(|e| Status::resource_exhausted(e.to_string()))
    }

    /// The container's exact id, if it runs.
    async fn running(&self, wanted: &str, op: &str) -> Result<String, Status> {
        let id = self.known_container(wanted)?;
        let c = self
            .core
            .containerizer
            .container_status(&id)
            .await
            .map_err(from_error)?;
        if c.state != ContainerState::Running {
            return Err(Status::failed_precondition(format!(
                "cannot {op} container {id}: it is {:?}, not running",
                c.state
            )));
        }
        Ok(id)
    }

    pub(super) async fn stream_exec(
        &self,
        req: cri::ExecRequest,
    ) -> Result<cri::ExecResponse, Status> {
        required(&req.container_id, "container_id")?;
        if req.cmd.is_empty() {
            return Err(Status::invalid_argument("cmd must not be empty"));
        }
        let streams = streams(req.stdin, req.stdout, req.stderr, req.tty)?;
        let container = self.running(&req.container_id, "exec in").await?;
        let url = self.url(Request::Exec {
            container,
            cmd: req.cmd,
            streams,
        })?;
        Ok(cri::ExecResponse { url })
    }

    pub(super) async fn stream_attach(
        &self,
        req: cri::AttachRequest,
    ) -> Result<cri::AttachResponse, Status> {
        required(&req.container_id, "container_id")?;
        let streams = streams(req.stdin, req.stdout, req.stderr, req.tty)?;
        let container = self.running(&req.container_id, "attach to").await?;
        let url = self.url(Request::Attach { container, streams })?;
        Ok(cri::AttachResponse { url })
    }

    pub(super) async fn stream_port_forward(
        &self,
        req: cri::PortForwardRequest,
    ) -> Result<cri::PortForwardResponse, Status> {
        required(&req.pod_sandbox_id, "pod_sandbox_id")?;
        if let Some(bad) = req.port.iter().find(|p| !(1..=65535).contains(*p)) {
            return Err(Status::invalid_argument(format!("invalid port {bad}")));
        }
        let id = self.known_pod(&req.pod_sandbox_id)?;
        let pod = self
            .core
            .containerizer
            .pod_status(&id)
            .map_err(from_error)?;
        if pod.state != PodState::Ready {
            return Err(Status::failed_precondition(format!(
                "cannot forward ports to pod sandbox {id}: it is not ready"
            )));
        }
        let url = self.url(Request::PortForward {
            pod: id,
            netns: pod.netns,
        })?;
        Ok(cri::PortForwardResponse { url })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_refused_as_containerd_refuses_them() {
        let none = streams(false, false, false, false).expect_err("nothing");
        assert_eq!(none.code(), tonic::Code::InvalidArgument);
        let tty_err = streams(true, true, true, true).expect_err("tty + stderr");
        assert!(tty_err.message().contains("tty and stderr"), "{tty_err:?}");
        assert!(streams(true, true, false, true).is_ok());
    }
}
