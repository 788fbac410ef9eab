//! `ucr pods`.

use k8s_cri::v1 as cri;
use serde::Serialize;

use super::output::{self, age, now_ns, rfc3339, short_id, Table};
use super::{ClientError, Conn};
use crate::config::ListFlags;

#[derive(Debug, Serialize)]
struct PodRow {
    id: String,
    name: String,
    namespace: String,
    uid: String,
    attempt: u32,
    state: &'static str,
    created: String,
    runtime_handler: String,
    #[serde(skip)]
    created_ns: i64,
}

/// A pod state as crictl prints it.
pub fn state_name(state: i32) -> &'static str {
    match cri::PodSandboxState::try_from(state) {
        Ok(cri::PodSandboxState::SandboxReady) => "Ready",
        Ok(cri::PodSandboxState::SandboxNotready) => "NotReady",
        Err(_) => "Unknown",
    }
}

pub async fn pods(flags: ListFlags) -> Result<(), ClientError> {
    let conn = Conn::open(&flags.endpoint.endpoint).await?;
    let rows: Vec<PodRow> = conn
        .pods()
        .await?
        .into_iter()
        .map(|p| {
            let meta = p.metadata.unwrap_or_default();
            PodRow {
                id: p.id,
                name: meta.name,
                namespace: meta.namespace,
                uid: meta.uid,
                attempt: meta.attempt,
                state: state_name(p.state),
                created: rfc3339(p.created_at),
                created_ns: p.created_at,
                runtime_handler: p.runtime_handler,
            }
        })
        .collect();
    if flags.quiet {
        rows.iter().for_each(|r| println!("{}", r.id));
        return Ok(());
    }
    output::print(flags.output, &rows, || {
        let mut t = Table::new(&["POD ID", "CREATED", "STATE", "NAME", "NAMESPACE", "ATTEMPT"]);
        let now = now_ns();
        for r in &rows {
            t.row(vec![
                short_id(&r.id).to_string(),
                age(r.created_ns, now),
                r.state.to_string(),
                r.name.clone(),
                r.namespace.clone(),
                r.attempt.to_string(),
            ]);
        }
        t
    })
}
