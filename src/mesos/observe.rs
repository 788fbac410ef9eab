//! The Mesos door's span per call (the call type, and the container id when the call
//! names one) and its count by call type and HTTP status
//! (`ucr_mesos_requests_total`). The label is the protobuf enum's name, never the
//! client's text: an unknown type decodes as `UNKNOWN`.

use super::wire::v1::agent::Call;
use super::wire::v1::ContainerId;

/// The label for a request whose body could not be read or parsed into a Call.
pub const UNPARSED: &str = "UNPARSED";

pub fn call_name(call: &Call) -> &'static str {
    call.r#type().as_str_name()
}

pub fn span(call: &Call) -> tracing::Span {
    let span = tracing::info_span!(
        "mesos",
        otel.name = call_name(call),
        call = call_name(call),
        container_id = tracing::field::Empty,
    );
    if let Some(id) = container_id(call) {
        span.record("container_id", id.value.as_str());
    }
    span
}

fn container_id(call: &Call) -> Option<&ContainerId> {
    let launch = call.launch_container.as_ref().map(|c| &c.container_id);
    let wait = call.wait_container.as_ref().map(|c| &c.container_id);
    let kill = call.kill_container.as_ref().map(|c| &c.container_id);
    let remove = call.remove_container.as_ref().map(|c| &c.container_id);
    launch.or(wait).or(kill).or(remove)
}

pub fn counted(call: &'static str, status: http::StatusCode) {
    crate::metrics::prometheus::families().mesos_call(call, status.as_u16());
}
