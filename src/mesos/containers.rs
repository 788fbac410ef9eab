//! LAUNCH_CONTAINER, WAIT_CONTAINER, KILL_CONTAINER and REMOVE_CONTAINER for standalone
//! containers (no parent), by the Mesos agent's rules (`ucr-spec.md` §6): the id is the
//! client's and exact; a launch answers once the container runs (200), or 202 when the id
//! exists; a failed launch leaves nothing; WAIT blocks until the end and gives the raw
//! wait(2) status; KILL of an unknown or ended container is 404; REMOVE of a running one
//! is refused, never a kill, and takes the sandbox with it. Each container gets a sandbox
//! (`<root>/mesos/sandboxes/<id>`) holding its plain `stdout` and `stderr`; its volumes
//! and rlimits are checked by `sandbox` before anything is made.

use std::collections::BTreeMap;

use http::StatusCode;

use super::calls::Agent;
use super::codec::Refused;
use super::command::{self, CommandInfo};
use super::wire::v1::agent::{call, response, Response};
use super::wire::v1::{container_info, ContainerId, ContainerStatus, Resource, ResourceStatistics};
use crate::containerizer::types::{
    ContainerConfig, ContainerState, Ending, LogFormat, LogTarget, PortMapping, Resources, Sandbox,
};
use crate::containerizer::ContainerizerError;
use crate::error::{ErrorKind, Kind};
use crate::metrics::bump;

/// Mesos's limit on a container id's length.
const MAX_ID: usize = 242;

/// A standalone container's id (or one level of a nested one), checked as Mesos checks
/// it: not empty, at most 242 bytes, no `.`, `/` or whitespace (it names directories
/// and cgroups).
pub fn valid_id(id: &ContainerId) -> Result<&str, Refused> {
    let bad = |why: &str| {
        Err(Refused(
            StatusCode::BAD_REQUEST,
            format!(
                "Failed to validate agent::Call: container id {:?} {why}",
                id.value
            ),
        ))
    };
    // Nested ids are `sessions`' (which checks each level with this); a caller that
    // wants a standalone container and gets a nested id is refused.
    if id.parent.is_some() {
        return bad("has a parent: a standalone container was expected");
    }
    let v = id.value.as_str();
    if v.is_empty() {
        return bad("is empty");
    }
    if v.len() > MAX_ID {
        return bad("is longer than 242 bytes");
    }
    if v.chars().any(|c| c == '.' || c == '/' || c.is_whitespace()) {
        return bad("contains '.', '/' or whitespace");
    }
    Ok(v)
}

/// The HTTP status for a core error, as the agent answers its calls.
fn refused(e: ContainerizerError, status_for_not_found: StatusCode) -> Refused {
    let status = match e.kind() {
        ErrorKind::NotFound => status_for_not_found,
        ErrorKind::InvalidArgument => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    Refused(status, crate::error::chain(&e))
}

pub async fn launch(agent: &Agent, launch: &call::LaunchContainer) -> Result<StatusCode, Refused> {
    let id = valid_id(&launch.container_id)?.to_string();
    // An id that exists is answered before anything is pulled or made, as the agent does
    // (create_container below catches a launch racing this one).
    let existing = agent.core.containerizer.container_status(&id).await;
    if existing.is_ok_and(|c| c.pod_id.is_none()) {
        return Ok(StatusCode::ACCEPTED);
    }
    let bad = |m: String| Refused(StatusCode::BAD_REQUEST, m);
    let info = launch.container.as_ref().ok_or_else(|| {
        bad("ucr launches containers from an image: `container` is required".into())
    })?;
    if info.r#type() != container_info::Type::Mesos {
        return Err(bad(format!(
            "unsupported ContainerInfo type {}: ucr is the MESOS containerizer",
            info.r#type().as_str_name()
        )));
    }
    let image = info
        .mesos
        .as_ref()
        .and_then(|m| m.image.as_ref())
        .ok_or_else(|| bad("`container.mesos.image` is required".into()))?;
    let cmd = launch.command.clone().unwrap_or_default();
    // Checked before the pull: a bad request changes nothing.
    let environment = super::environment::variables(cmd.environment.as_ref())?;
    let (sandbox_volumes, host_volumes) =
        super::sandbox::volumes(&info.volumes, &agent.sandbox_directory)?;
    let rlimits = super::sandbox::rlimits(info.rlimit_info.as_ref())?;
    let (networks, port_mappings) = networks(info)?;
    let name = super::image::provide(agent, image).await.inspect_err(|_| {
        bump(&agent.core.counters.container_launch_errors);
    })?;
    let core = &agent.core;
    let runtime = core
        .image_runtime(&name)
        .map_err(|e| refused(e, StatusCode::BAD_REQUEST))?;
    let sandbox = agent.sandboxes.join(&id);
    let fresh = !sandbox.exists();
    // Root's alone, as all of ucr's state (see `perm`); `volume/sandbox_path` gives the
    // sandbox itself to the container's user.
    crate::perm::private_dir(&sandbox).map_err(|e| {
        Refused(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("Failed to create the sandbox {}: {e}", sandbox.display()),
        )
    })?;
    let process = command::process(
        &runtime,
        &CommandInfo {
            shell: cmd.shell,
            value: cmd.value.clone(),
            arguments: cmd.arguments.clone(),
        },
        environment,
        cmd.user.clone(),
        &agent.sandbox_directory,
        false,
    )
    .map_err(|e| bad(format!("Failed to resolve the command: {e}")))?;
    let config = ContainerConfig {
        key: id.clone(),
        id: Some(id.clone()),
        image: name,
        process,
        // Plain `stdout` and `stderr` in the sandbox, written by the monitor.
        log: Some(LogTarget {
            dir: sandbox.clone(),
            path: Default::default(),
            format: LogFormat::Files,
        }),
        sandbox: Some(Sandbox {
            dir: sandbox.clone(),
            container_path: agent.sandbox_directory.clone(),
            volumes: sandbox_volumes,
        }),
        mounts: host_volumes,
        rlimits,
        resources: resources(&launch.resources, &launch.limits),
        networks,
        port_mappings,
        hostname: info.hostname.clone(),
        // `tty_info`: a terminal, and stdin kept open for ATTACH_CONTAINER_INPUT (Mesos
        // gives such a container an I/O switchboard).
        tty: info.tty_info.is_some(),
        stdin: info.tty_info.is_some(),
        ..Default::default()
    };
    let containerizer = &core.containerizer;
    let created = containerizer.create_container(None, config).await;
    let (_, new) = created.map_err(|e| {
        bump(&core.counters.container_launch_errors);
        if fresh {
            let _ = std::fs::remove_dir_all(&sandbox);
        }
        // The agent answers any failure to prepare a launch with 400 (ucr-spec.md §6).
        Refused(StatusCode::BAD_REQUEST, crate::error::chain(&e))
    })?;
    if !new {
        return Ok(StatusCode::ACCEPTED);
    }
    if let Err(e) = containerizer.start_container(&id).await {
        // A failed launch is destroyed, as the agent does.
        bump(&core.counters.container_launch_errors);
        if containerizer.remove_container(&id).await.is_err() {
            bump(&core.counters.container_destroy_errors);
        }
        let _ = std::fs::remove_dir_all(agent.sandboxes.join(&id));
        return Err(refused(e, StatusCode::BAD_REQUEST));
    }
    bump(&core.counters.containers_launched);
    Ok(StatusCode::OK)
}

/// The CNI networks `network_infos` names, in order (unnamed entries are skipped, as
/// Mesos skips them; none named: the host's network), and each one's host ports. What the
/// network/cni isolator refuses (an unknown or repeated name, ports on a network without
/// a port mapper) is its to say, at create.
type Networks = (Vec<String>, BTreeMap<String, Vec<PortMapping>>);

fn networks(info: &super::wire::v1::ContainerInfo) -> Result<Networks, Refused> {
    let mut names = Vec::new();
    let mut ports = BTreeMap::new();
    for n in &info.network_infos {
        let name = match n.name.as_deref() {
            Some("") | None => {
                if !n.port_mappings.is_empty() {
                    return Err(Refused(
                        StatusCode::BAD_REQUEST,
                        "network_infos: port_mappings need a named network".into(),
                    ));
                }
                continue;
            }
            Some(name) => name.to_string(),
        };
        let mapped = n
            .port_mappings
            .iter()
            .map(|p| port_mapping(&name, p))
            .collect::<Result<Vec<_>, _>>()?;
        if !mapped.is_empty() {
            ports.insert(name.clone(), mapped);
        }
        names.push(name);
    }
    Ok((names, ports))
}

/// One `NetworkInfo.PortMapping`: ports 1–65535, `tcp` (the default) or `udp`.
fn port_mapping(
    network: &str,
    p: &super::wire::v1::network_info::PortMapping,
) -> Result<PortMapping, Refused> {
    let bad = |what: String| {
        Refused(
            StatusCode::BAD_REQUEST,
            format!("network_infos {network:?} port_mappings: {what}"),
        )
    };
    let port = |v: u32, field: &str| {
        u16::try_from(v)
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| bad(format!("{field} {v} is not a port (1-65535)")))
    };
    let protocol = p.protocol.as_deref().unwrap_or("tcp").to_ascii_lowercase();
    if protocol != "tcp" && protocol != "udp" {
        return Err(bad(format!("protocol {protocol:?} is not tcp or udp")));
    }
    Ok(PortMapping {
        protocol,
        container_port: port(p.container_port, "container_port")?,
        host_port: port(p.host_port, "host_port")?,
        host_ip: String::new(),
    })
}

/// `cpus`, `mem` and `disk` (MiB) from the resources, `limits` over them: CPU shares and
/// a CFS quota, a memory limit (Mesos's cgroups/cpu and cgroups/mem with limits
/// enforced), a disk limit.
fn resources(
    given: &[Resource],
    limits: &std::collections::HashMap<String, super::wire::v1::value::Scalar>,
) -> Resources {
    let scalar = |name: &str| {
        limits.get(name).map(|s| s.value).or_else(|| {
            given
                .iter()
                .find(|r| r.name == name)
                .and_then(|r| r.scalar.as_ref())
                .map(|s| s.value)
        })
    };
    let mut r = Resources::default();
    if let Some(cpus) = scalar("cpus").filter(|c| c.is_finite() && *c > 0.0) {
        r.cpu_shares = Some(((cpus * 1024.0) as u64).max(2));
        r.cpu_period = Some(100_000);
        r.cpu_quota = Some(((cpus * 100_000.0) as i64).max(1000));
    }
    if let Some(mem) = scalar("mem").filter(|m| m.is_finite() && *m > 0.0) {
        r.memory_limit = Some((mem * 1024.0 * 1024.0) as i64);
    }
    // The sandbox's and writable layer's quota (disk/du, disk/xfs), as Mesos's non-persistent `disk`.
    if let Some(disk) = scalar("disk").filter(|d| d.is_finite() && *d > 0.0) {
        r.disk_limit = Some((disk * 1024.0 * 1024.0) as u64);
    }
    r
}

/// A standalone container known to the containerizer, or 404 (`not_found`).
async fn standalone(
    agent: &Agent,
    id: &ContainerId,
    not_found: StatusCode,
) -> Result<crate::containerizer::types::Container, Refused> {
    let id = valid_id(id)?;
    match agent.core.containerizer.container_status(id).await {
        Ok(c) if c.pod_id.is_none() => Ok(c),
        // A CRI container is not the Mesos door's to see.
        Ok(_) => Err(Refused(not_found, format!("Container {id} not found"))),
        Err(e) => Err(refused(e, not_found)),
    }
}

pub async fn wait(agent: &Agent, id: &ContainerId) -> Result<Response, Refused> {
    // Subscribed before the first look, so an end between the look and the wait is an
    // event we still get.
    let mut events = agent.core.containerizer.subscribe();
    loop {
        let c = standalone(agent, id, StatusCode::NOT_FOUND).await?;
        if c.state == ContainerState::Exited {
            return Ok(wait_response(&c));
        }
        loop {
            match events.recv().await {
                Ok(e) if e.container_id == c.id => break,
                Ok(_) => continue,
                // Missed some (or the containerizer is gone): look again.
                Err(_) => break,
            }
        }
    }
}

/// WAIT_CONTAINER's answer for an ended container.
fn wait_response(c: &crate::containerizer::types::Container) -> Response {
    let (status, message) = match &c.ending {
        // The raw wait(2) status: the code in the high byte, or the signal.
        Some(Ending::Exited {
            signal: Some(s), ..
        }) => (*s, None),
        Some(Ending::Exited { code, .. }) => ((*code & 0xff) << 8, None),
        Some(Ending::StartFailed { message }) | Some(Ending::Lost { message }) => {
            (c.exit_code, Some(message.clone()))
        }
        None => ((c.exit_code & 0xff) << 8, None),
    };
    Response {
        r#type: Some(response::Type::WaitContainer as i32),
        wait_container: Some(response::WaitContainer {
            exit_status: Some(status),
            message,
        }),
        ..Default::default()
    }
}

pub async fn kill(agent: &Agent, kill: &call::KillContainer) -> Result<(), Refused> {
    let c = standalone(agent, &kill.container_id, StatusCode::NOT_FOUND).await?;
    let signal = kill.signal.unwrap_or(libc::SIGKILL);
    if !(1..=64).contains(&signal) {
        return Err(Refused(
            StatusCode::BAD_REQUEST,
            format!("Failed to validate agent::Call: invalid signal {signal}"),
        ));
    }
    let gone = || {
        Refused(
            StatusCode::NOT_FOUND,
            format!("Container {} is not running", c.id),
        )
    };
    let (ContainerState::Running, Some(process)) = (c.state, c.process) else {
        return Err(gone());
    };
    let killed = || bump(&agent.core.counters.containers_killed);
    if signal == libc::SIGKILL {
        // Every process of the container, as StopContainer does.
        return agent
            .core
            .containerizer
            .stop_container(&c.id, 0)
            .await
            .map(|()| killed())
            .map_err(|e| refused(e, StatusCode::NOT_FOUND));
    }
    match process.signal(signal) {
        Ok(true) => {
            killed();
            Ok(())
        }
        Ok(false) => Err(gone()),
        Err(e) => Err(Refused(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
    }
}

pub async fn remove(agent: &Agent, id: &ContainerId) -> Result<(), Refused> {
    let c = standalone(agent, id, StatusCode::INTERNAL_SERVER_ERROR).await?;
    if matches!(c.state, ContainerState::Running | ContainerState::Starting) {
        return Err(Refused(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("Container {} is running: kill it first", c.id),
        ));
    }
    agent
        .core
        .containerizer
        .remove_container(&c.id)
        .await
        .map_err(|e| {
            bump(&agent.core.counters.container_destroy_errors);
            refused(e, StatusCode::INTERNAL_SERVER_ERROR)
        })?;
    let _ = std::fs::remove_dir_all(agent.sandboxes.join(&c.id));
    // Its nested containers ended with it (its PID namespace did); they go with it too.
    agent.sessions.forget_below(&c.id);
    Ok(())
}

/// GET_CONTAINERS: ucr runs no executors, so only standalone containers exist here, and
/// Mesos lists them only when `show_standalone` asks; CRI containers never. Running ones
/// carry their statistics (the same cgroup figures as the CRI's stats).
pub async fn list(agent: &Agent, show_standalone: bool) -> Result<Response, Refused> {
    let containerizer = &agent.core.containerizer;
    let mine: Vec<_> = if show_standalone {
        containerizer.list_containers(&crate::containerizer::types::ContainerFilter {
            in_pod: Some(false),
            ..Default::default()
        })
    } else {
        Vec::new()
    };
    let running: Vec<String> = mine
        .iter()
        .filter(|c| c.state == ContainerState::Running)
        .map(|c| c.id.clone())
        .collect();
    let stats = if running.is_empty() {
        Vec::new()
    } else {
        containerizer
            .container_stats(Some(running))
            .await
            .map_err(|e| refused(e, StatusCode::INTERNAL_SERVER_ERROR))?
    };
    let mut containers = Vec::with_capacity(mine.len());
    for c in mine {
        let s = stats.iter().find(|s| s.container.id == c.id);
        // Gone between the listing and now: shown without what it no longer has.
        let isolation = containerizer
            .isolation_status(&c.id)
            .await
            .unwrap_or_default();
        containers.push(response::get_containers::Container {
            container_id: ContainerId {
                value: c.id.clone(),
                parent: None,
            },
            container_status: Some(status(&c, &isolation)),
            resource_statistics: s.map(|s| statistics(&c, s)),
        });
    }
    Ok(Response {
        r#type: Some(response::Type::GetContainers as i32),
        get_containers: Some(response::GetContainers { containers }),
        ..Default::default()
    })
}

/// `ContainerStatus`: the networks asked for with the addresses their plugins gave
/// (Mesos reports the requested NetworkInfo filled in), the net_cls classid, the pid.
fn status(
    c: &crate::containerizer::types::Container,
    isolation: &crate::isolators::IsolatorStatus,
) -> ContainerStatus {
    use super::wire::v1::{cgroup_info, network_info, CgroupInfo, NetworkInfo};
    let mut network_infos: Vec<NetworkInfo> = c
        .config
        .networks
        .iter()
        .map(|name| NetworkInfo {
            name: Some(name.clone()),
            ..Default::default()
        })
        .collect();
    // Every address on the first entry: the plugins' results do not say which network
    // an address came from once merged, and Mesos's clients read the first.
    if let Some(first) = network_infos.first_mut() {
        first.ip_addresses = isolation
            .ips
            .iter()
            .map(|ip| {
                let v6 = ip.contains(':');
                network_info::IpAddress {
                    protocol: Some(if v6 {
                        network_info::Protocol::IPv6
                    } else {
                        network_info::Protocol::IPv4
                    } as i32),
                    ip_address: Some(ip.clone()),
                }
            })
            .collect();
    }
    let classid = isolation
        .info
        .get("netClsClassid")
        .and_then(|v| v.parse::<u32>().ok());
    ContainerStatus {
        container_id: Some(ContainerId {
            value: c.id.clone(),
            parent: None,
        }),
        network_infos,
        cgroup_info: classid.map(|classid| CgroupInfo {
            net_cls: Some(cgroup_info::NetCls {
                classid: Some(classid),
            }),
        }),
        executor_pid: c.process.map(|p| p.pid as u32),
    }
}

fn statistics(
    c: &crate::containerizer::types::Container,
    s: &crate::containerizer::ContainerStats,
) -> ResourceStatistics {
    let r = &c.config.resources;
    let cpus_limit = match (r.cpu_quota, r.cpu_period) {
        (Some(q), Some(p)) if q > 0 && p > 0 => Some(q as f64 / p as f64),
        _ => None,
    };
    let u = &s.usage;
    let memory = u.memory.as_ref();
    let secs = |ns: Option<u64>| ns.map(|n| n as f64 / 1e9);
    let u32_of = |n: u64| n.min(u32::MAX as u64) as u32;
    let throttling = u.cpu_throttling;
    // Mesos sums its interfaces' counters; so does this (none: host network, unmeasured).
    let net = |f: fn(&crate::isolators::InterfaceUsage) -> u64| {
        (!u.network.is_empty()).then(|| u.network.iter().map(f).sum())
    };
    ResourceStatistics {
        timestamp: s.timestamp_ns as f64 / 1e9,
        processes: u.processes.map(u32_of),
        cpus_user_time_secs: secs(u.cpu_user_ns),
        cpus_system_time_secs: secs(u.cpu_system_ns),
        cpus_limit,
        cpus_nr_periods: throttling.map(|t| u32_of(t.periods)),
        cpus_nr_throttled: throttling.map(|t| u32_of(t.throttled_periods)),
        cpus_throttled_time_secs: throttling.map(|t| t.throttled_ns as f64 / 1e9),
        mem_total_bytes: memory.map(|m| m.usage),
        mem_limit_bytes: memory.and_then(|m| m.limit),
        mem_rss_bytes: memory.map(|m| m.rss),
        disk_limit_bytes: r.disk_limit,
        disk_used_bytes: u.disk.map(|d| d.bytes),
        net_rx_packets: net(|i| i.rx_packets),
        net_rx_bytes: net(|i| i.rx_bytes),
        net_rx_errors: net(|i| i.rx_errors),
        net_rx_dropped: net(|i| i.rx_dropped),
        net_tx_packets: net(|i| i.tx_packets),
        net_tx_bytes: net(|i| i.tx_bytes),
        net_tx_errors: net(|i| i.tx_errors),
        net_tx_dropped: net(|i| i.tx_dropped),
    }
}
