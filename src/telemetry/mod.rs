//! What the daemon shows its operators' monitoring: the Prometheus endpoint on
//! `--metrics-listen` (`http`, a front door of its own, above the core like `mesos`), and
//! the logs and spans (`logging`: text or JSON lines, the level's sources; `otlp`: the
//! spans sent to an OpenTelemetry collector).

pub mod http;
pub mod logging;
pub mod otlp;
