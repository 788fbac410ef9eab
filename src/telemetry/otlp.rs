//! `--otlp-endpoint`: the daemon's spans (one per CRI and Mesos call, named for the call
//! through `otel.name`) exported over OTLP/HTTP with protobuf bodies, batched by the
//! OpenTelemetry SDK on a thread of its own, so a slow collector never holds up a call.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{SpanExporter, WithExportConfig};
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use opentelemetry_sdk::Resource;

#[derive(Debug, thiserror::Error)]
pub enum OtlpError {
    #[error("--otlp-endpoint {url:?}: expected an http:// or https:// URL")]
    Scheme { url: String },
    #[error("--otlp-endpoint {url:?}: building the exporter: {source}")]
    Exporter {
        url: String,
        source: opentelemetry_otlp::ExporterBuildError,
    },
}

/// The exporter's provider; dropping it flushes the spans not yet sent.
pub struct Otlp {
    provider: SdkTracerProvider,
}

impl Drop for Otlp {
    fn drop(&mut self) {
        if let Err(e) = self.provider.shutdown() {
            eprintln!("ucr: flushing the OTLP spans: {e}");
        }
    }
}

/// The traces URL: a bare collector address gets OTLP/HTTP's `/v1/traces` (what the
/// `OTEL_EXPORTER_OTLP_ENDPOINT` variable means); a URL with a path is used as it is.
pub fn traces_url(url: &str) -> Result<String, OtlpError> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .filter(|r| !r.is_empty())
        .ok_or_else(|| OtlpError::Scheme { url: url.into() })?;
    Ok(match rest.find('/') {
        None => format!("{url}/v1/traces"),
        Some(i) if rest[i..] == *"/" => format!("{}v1/traces", url),
        Some(_) => url.to_string(),
    })
}

/// Builds the exporter for `url`. Call outside any async runtime: the HTTP client is
/// a blocking one, which may not be made or dropped on a runtime's threads.
pub fn start(url: &str) -> Result<(Otlp, SdkTracer), OtlpError> {
    let traces = traces_url(url)?;
    let exporter = SpanExporter::builder()
        .with_http()
        .with_endpoint(&traces)
        .build()
        .map_err(|source| OtlpError::Exporter {
            url: url.into(),
            source,
        })?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(Resource::builder().with_service_name("ucr").build())
        .build();
    let tracer = provider.tracer("ucr");
    Ok((Otlp { provider }, tracer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traces_url_gets_the_signal_path_only_when_bare() {
        let url = |u| traces_url(u).expect(u);
        assert_eq!(url("http://c:4318"), "http://c:4318/v1/traces");
        assert_eq!(url("https://c:4318/"), "https://c:4318/v1/traces");
        assert_eq!(url("http://c/otlp/v1/traces"), "http://c/otlp/v1/traces");
        for bad in ["c:4318", "ftp://c", "http://"] {
            assert!(traces_url(bad).is_err(), "{bad}");
        }
    }
}
