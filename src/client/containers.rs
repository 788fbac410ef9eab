//! `ucr ps`, `ucr inspect` and `ucr rm`.

use std::collections::{BTreeMap, HashMap};

use k8s_cri::v1 as cri;
use serde::Serialize;

use super::output::{self, age, bytes, now_ns, rfc3339, short_id, Table};
use super::{resolve, ClientError, Conn};
use crate::config::{InspectFlags, OutputFormat, PsFlags, RmFlags};

/// One line of `ucr ps`, and its JSON/YAML form.
#[derive(Debug, Serialize)]
struct ContainerRow {
    id: String,
    name: String,
    attempt: u32,
    state: &'static str,
    image: String,
    image_ref: String,
    created: String,
    pod_id: String,
    pod: String,
    namespace: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    cpu_nano_cores: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    memory_working_set_bytes: Option<u64>,
    #[serde(skip)]
    created_ns: i64,
}

/// A container state as crictl prints it.
pub fn state_name(state: i32) -> &'static str {
    match cri::ContainerState::try_from(state) {
        Ok(cri::ContainerState::ContainerCreated) => "Created",
        Ok(cri::ContainerState::ContainerRunning) => "Running",
        Ok(cri::ContainerState::ContainerExited) => "Exited",
        _ => "Unknown",
    }
}

/// An image as a table shows it: a reference as it is, an image id shortened.
pub fn image_cell(image: &str) -> String {
    if image.starts_with("sha256:") {
        short_id(image).to_string()
    } else {
        image.to_string()
    }
}

pub async fn ps(flags: PsFlags) -> Result<(), ClientError> {
    let conn = Conn::open(&flags.list.endpoint.endpoint).await?;
    let pods: HashMap<String, cri::PodSandbox> = conn
        .pods()
        .await?
        .into_iter()
        .map(|p| (p.id.clone(), p))
        .collect();
    let running = cri::ContainerState::ContainerRunning as i32;
    let containers: Vec<cri::Container> = conn
        .containers()
        .await?
        .into_iter()
        .filter(|c| flags.all || c.state == running)
        .collect();
    let usage = if flags.stats {
        super::stats::usage(&conn).await?
    } else {
        HashMap::new()
    };
    let rows: Vec<ContainerRow> = containers
        .into_iter()
        .map(|c| {
            let pod = pods.get(&c.pod_sandbox_id).and_then(|p| p.metadata.clone());
            let meta = c.metadata.unwrap_or_default();
            let u = usage.get(&c.id);
            ContainerRow {
                name: meta.name,
                attempt: meta.attempt,
                state: state_name(c.state),
                image: c.image.map(|i| i.image).unwrap_or_default(),
                image_ref: c.image_ref,
                created: rfc3339(c.created_at),
                created_ns: c.created_at,
                pod_id: c.pod_sandbox_id,
                pod: pod.as_ref().map(|m| m.name.clone()).unwrap_or_default(),
                namespace: pod.map(|m| m.namespace).unwrap_or_default(),
                cpu_nano_cores: u.and_then(|u| u.cpu_nano_cores),
                memory_working_set_bytes: u.and_then(|u| u.memory_bytes),
                id: c.id,
            }
        })
        .collect();
    if flags.list.quiet {
        rows.iter().for_each(|r| println!("{}", r.id));
        return Ok(());
    }
    output::print(flags.list.output, &rows, || {
        let mut headers = vec![
            "CONTAINER",
            "IMAGE",
            "CREATED",
            "STATE",
            "NAME",
            "ATTEMPT",
            "POD ID",
            "POD",
            "NAMESPACE",
        ];
        if flags.stats {
            headers.extend(["CPU %", "MEM"]);
        }
        let mut t = Table::new(&headers);
        let now = now_ns();
        for r in &rows {
            let mut cells = vec![
                short_id(&r.id).to_string(),
                image_cell(&r.image),
                age(r.created_ns, now),
                r.state.to_string(),
                r.name.clone(),
                r.attempt.to_string(),
                short_id(&r.pod_id).to_string(),
                r.pod.clone(),
                r.namespace.clone(),
            ];
            if flags.stats {
                cells.push(r.cpu_nano_cores.map_or("-".into(), super::stats::percent));
                cells.push(r.memory_working_set_bytes.map_or("-".into(), bytes));
            }
            t.row(cells);
        }
        t
    })
}

pub async fn inspect(flags: InspectFlags) -> Result<(), ClientError> {
    let conn = Conn::open(&flags.endpoint.endpoint).await?;
    let containers: Vec<String> = conn.containers().await?.into_iter().map(|c| c.id).collect();
    let pods: Vec<String> = conn.pods().await?.into_iter().map(|p| p.id).collect();
    let id = resolve::resolve(
        "container or pod",
        containers.iter().chain(&pods).map(String::as_str),
        &flags.id,
    )?;
    let document = if containers.contains(&id) {
        let reply = conn
            .runtime()
            .container_status(cri::ContainerStatusRequest {
                container_id: id,
                verbose: true,
            })
            .await
            .map_err(ClientError::call("ContainerStatus"))?
            .into_inner();
        let mut status = to_value(&reply.status)?;
        name_state(&mut status, |s| state_name(s).to_string());
        serde_json::json!({ "container": status, "info": info(reply.info) })
    } else {
        let reply = conn
            .runtime()
            .pod_sandbox_status(cri::PodSandboxStatusRequest {
                pod_sandbox_id: id,
                verbose: true,
            })
            .await
            .map_err(ClientError::call("PodSandboxStatus"))?
            .into_inner();
        let mut status = to_value(&reply.status)?;
        name_state(&mut status, |s| super::pods::state_name(s).to_string());
        serde_json::json!({ "pod": status, "info": info(reply.info) })
    };
    let format = match flags.output {
        OutputFormat::Table => OutputFormat::Json,
        other => other,
    };
    output::print(format, &document, || Table::new(&[]))
}

fn to_value(status: &impl Serialize) -> Result<serde_json::Value, ClientError> {
    serde_json::to_value(status).map_err(|e| ClientError::Encode {
        format: "JSON",
        detail: e.to_string(),
    })
}

/// The CRI's enums are numbers on the wire; people read names.
fn name_state(status: &mut serde_json::Value, name: impl Fn(i32) -> String) {
    if let Some(state) = status.get_mut("state") {
        if let Some(n) = state.as_i64() {
            *state = serde_json::Value::String(name(n as i32));
        }
    }
}

/// The verbose info's values are JSON documents as text: shown as the documents they
/// are, as crictl does.
fn info(info: HashMap<String, String>) -> BTreeMap<String, serde_json::Value> {
    info.into_iter()
        .map(|(k, v)| {
            let value = serde_json::from_str(&v).unwrap_or(serde_json::Value::String(v));
            (k, value)
        })
        .collect()
}

pub async fn rm(flags: RmFlags) -> Result<(), ClientError> {
    let conn = Conn::open(&flags.endpoint.endpoint).await?;
    let all = conn.containers().await?;
    // Every name is resolved before anything is removed: a typo removes nothing.
    let mut chosen = Vec::new();
    for wanted in &flags.ids {
        let id = resolve::resolve("container", all.iter().map(|c| c.id.as_str()), wanted)?;
        chosen.push(id);
    }
    let running = cri::ContainerState::ContainerRunning as i32;
    let mut rt = conn.runtime();
    let mut failures = Vec::new();
    for id in chosen {
        let is_running = all.iter().any(|c| c.id == id && c.state == running);
        if is_running && !flags.force {
            failures.push(format!(
                "container {id} is running: stop it first or use rm -f"
            ));
            continue;
        }
        if is_running {
            // As `docker rm -f`: no grace period.
            let stopped = rt
                .stop_container(cri::StopContainerRequest {
                    container_id: id.clone(),
                    timeout: 0,
                })
                .await;
            if let Err(s) = stopped {
                failures.push(format!("stopping {id}: {}", s.message()));
                continue;
            }
        }
        match rt
            .remove_container(cri::RemoveContainerRequest {
                container_id: id.clone(),
            })
            .await
        {
            Ok(_) => println!("{id}"),
            Err(s) => failures.push(format!("removing {id}: {}", s.message())),
        }
    }
    if failures.is_empty() {
        return Ok(());
    }
    Err(ClientError::Several(failures))
}
