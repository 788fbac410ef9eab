//! The daemon's logs: text (the default) or JSON lines (`--log-format json`), to stderr.
//! Each JSON line carries its spans' fields (`call`, `pod_id`, `container_id`), so a log
//! pipeline can group a call's lines without parsing text.
//!
//! The filter: `UCR_LOG` if set, else `RUST_LOG` if set, else `--log-level` (default
//! `info`). The environment wins over the flag, as it did before `RUST_LOG` was read:
//! it is how one turns on debugging of a daemon started by a unit file without editing
//! the unit's command line.

use std::io::IsTerminal;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("{other:?}: expected text or json")),
        }
    }
}

/// The filter from the environment, else `level`.
pub fn filter(level: &str) -> EnvFilter {
    ["UCR_LOG", "RUST_LOG"]
        .into_iter()
        .find_map(|var| {
            std::env::var(var)
                .ok()
                .filter(|v| !v.is_empty())
                .and_then(|v| EnvFilter::try_new(v).ok())
        })
        .unwrap_or_else(|| EnvFilter::new(level))
}

/// Installs the global subscriber, with the OTLP exporter when `otlp` names a collector.
/// The returned guard flushes the exporter when dropped: hold it until the daemon ends,
/// and drop it outside the async runtime.
pub fn init(
    level: &str,
    format: LogFormat,
    otlp: Option<&str>,
) -> Result<Option<super::otlp::Otlp>, super::otlp::OtlpError> {
    let (guard, tracer) = match otlp {
        Some(url) => {
            let (guard, tracer) = super::otlp::start(url)?;
            (Some(guard), Some(tracer))
        }
        None => (None, None),
    };
    let registry = tracing_subscriber::registry()
        .with(filter(level))
        .with(tracer.map(|t| tracing_opentelemetry::layer().with_tracer(t)));
    match format {
        // Colours for a terminal only: a log file or journald gets plain text.
        LogFormat::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(std::io::stderr().is_terminal())
                    .with_writer(std::io::stderr),
            )
            .init(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_span_list(true)
                    .with_writer(std::io::stderr),
            )
            .init(),
    }
    Ok(guard)
}
