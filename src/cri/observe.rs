//! What `instrument` knows about a call beyond its name: which id its subject is (for the
//! span's `pod_id`/`container_id` fields), and its gRPC code as a metric label.

use tonic::Code;

/// The span of one CRI call. `subject` is what the handler passed: a pod id for the pod
/// calls that take one, a container id for the container calls, else a name or image
/// (kept as `subject`). Handlers that learn an id later record it on the current span.
pub(super) fn span(call: &'static str, subject: &str) -> tracing::Span {
    // `otel.name`: the span's name as an OpenTelemetry collector sees it.
    let span = tracing::info_span!(
        "cri",
        otel.name = call,
        call,
        subject,
        pod_id = tracing::field::Empty,
        container_id = tracing::field::Empty,
    );
    if !subject.is_empty() {
        match call {
            "StopPodSandbox" | "RemovePodSandbox" | "PodSandboxStatus" | "PodSandboxStats"
            | "PortForward" => {
                span.record("pod_id", subject);
            }
            "StartContainer"
            | "StopContainer"
            | "RemoveContainer"
            | "ContainerStatus"
            | "ReopenContainerLog"
            | "ExecSync"
            | "ContainerStats"
            | "Exec"
            | "Attach"
            | "UpdateContainerResources"
            | "CheckpointContainer" => {
                span.record("container_id", subject);
            }
            _ => {}
        }
    }
    span
}

/// The code's name as gRPC spells it in Go (`OK`, `NotFound`), as containerd's
/// `grpc_server_handled_total` labels it.
pub(super) fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "Canceled",
        Code::Unknown => "Unknown",
        Code::InvalidArgument => "InvalidArgument",
        Code::DeadlineExceeded => "DeadlineExceeded",
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::PermissionDenied => "PermissionDenied",
        Code::ResourceExhausted => "ResourceExhausted",
        Code::FailedPrecondition => "FailedPrecondition",
        Code::Aborted => "Aborted",
        Code::OutOfRange => "OutOfRange",
        Code::Unimplemented => "Unimplemented",
        Code::Internal => "Internal",
        Code::Unavailable => "Unavailable",
        Code::DataLoss => "DataLoss",
        Code::Unauthenticated => "Unauthenticated",
    }
}
