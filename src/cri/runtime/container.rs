//! Container messages ↔ containerizer types.

use std::collections::HashMap;

use k8s_cri::v1 as cri;
use tonic::Status;

use super::pod::labels;
use super::process;
use crate::containerizer::types::{
    Container, ContainerConfig, ContainerFilter, ContainerMetadata, ContainerState, Ending, Labels,
    LogFormat, LogTarget, Mount, Pod, ProcessConfig,
};
use crate::cri::status::from_error;
use crate::isolators::docker::runtime::ImageRuntime;
use crate::launcher::spec::MountPropagation;

fn to_map(labels: &Labels) -> HashMap<String, String> {
    labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// The docker user spec for a security context: a name or uid, with the group if given.
fn user_spec(sc: &cri::LinuxContainerSecurityContext) -> Option<String> {
    let user = if !sc.run_as_username.is_empty() {
        sc.run_as_username.clone()
    } else {
        sc.run_as_user.as_ref()?.value.to_string()
    };
    Some(match &sc.run_as_group {
        Some(g) => format!("{user}:{}", g.value),
        None => user,
    })
}

/// The container in `pod`, as the containerizer takes it: its process resolved against the
/// image by containerd's rules (`process`), its log path below the pod's log directory.
pub fn config(
    c: cri::ContainerConfig,
    pod: &Pod,
    image: &ImageRuntime,
) -> Result<ContainerConfig, Status> {
    let m = c.metadata.unwrap_or_default();
    crate::cri::validate::container_name(&m.name)?;
    let argv = process::cri_argv(image, &c.command, &c.args).map_err(from_error)?;
    let log = log_target(&pod.config.log_directory, &c.log_path)?;
    let oom_score_adj = c
        .linux
        .as_ref()
        .and_then(|l| l.resources.as_ref())
        .map(|r| r.oom_score_adj.clamp(-1000, 1000) as i32);
    let mut resources = match c.linux.as_ref().and_then(|l| l.resources.as_ref()) {
        Some(r) => super::resources::from_cri(r)?,
        None => crate::containerizer::types::Resources::default(),
    };
    if let Some(v) = c.annotations.get(super::resources::DISK_LIMIT_ANNOTATION) {
        resources.disk_limit = Some(super::resources::quantity(v)?);
    }
    let devices = super::resources::devices(&c.devices)?;
    let sc = c.linux.and_then(|l| l.security_context).unwrap_or_default();
    let ns = sc.namespace_options.clone().unwrap_or_default();
    let pid = super::pod::pid_mode(&ns);
    // A container lives in its pod's user namespace: kubelet sends the pod's options
    // again; anything else is a request ucr cannot honour.
    if ns.userns_options.is_some() && super::pod::userns(&ns)? != pod.config.userns {
        return Err(Status::invalid_argument(
            "namespace_options.userns_options: a container must have its pod's user namespace",
        ));
    }
    let caps = sc.capabilities.clone().unwrap_or_default();
    let groups = sc
        .supplemental_groups
        .iter()
        .map(|g| {
            u32::try_from(*g).map_err(|_| {
                Status::invalid_argument(format!("supplemental group {g} is out of range"))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if sc.run_as_group.is_some() && sc.run_as_user.is_none() && sc.run_as_username.is_empty() {
        return Err(Status::invalid_argument(
            "run_as_group is set without run_as_user or run_as_username",
        ));
    }
    if !caps.add_ambient_capabilities.is_empty() {
        // Not applied yet; refused rather than dropped (see the README's table).
        return Err(Status::invalid_argument(format!(
            "capabilities.add_ambient_capabilities {:?}: ambient capabilities are not supported",
            caps.add_ambient_capabilities
        )));
    }
    // The deprecated string is still what older kubelets and critest 1.26 send.
    #[allow(deprecated)]
    let apparmor = super::security::apparmor(sc.apparmor.as_ref(), &sc.apparmor_profile)?;
    let selinux = super::security::selinux(sc.selinux_options.as_ref());
    let user = user_spec(&sc);
    let strict_groups =
        sc.supplemental_groups_policy == cri::SupplementalGroupsPolicy::Strict as i32;
    let seccomp = super::seccomp::profile(&sc)?;
    let stop_signal = image.stop_signal().and_then(crate::sys::kill::parse_signal);
    Ok(ContainerConfig {
        // kubelet retries a slow CreateContainer with the same pod, name and attempt.
        key: format!("{}/{}/{}", pod.id, m.name, m.attempt),
        id: None,
        metadata: ContainerMetadata {
            name: m.name,
            attempt: m.attempt,
        },
        image: c.image.map(|i| i.image).unwrap_or_default(),
        process: ProcessConfig {
            argv,
            executable: None,
            env: c.envs.into_iter().map(|kv| (kv.key, kv.value)).collect(),
            cwd: process::cri_working_dir(image, &c.working_dir),
            user: process::cri_user(image, user.as_deref()).map(str::to_string),
            supplemental_groups: groups,
            strict_groups,
            image_env: true,
        },
        mounts: c
            .mounts
            .into_iter()
            .map(|m| Mount {
                propagation: match cri::MountPropagation::try_from(m.propagation) {
                    Ok(cri::MountPropagation::PropagationHostToContainer) => {
                        MountPropagation::HostToContainer
                    }
                    Ok(cri::MountPropagation::PropagationBidirectional) => {
                        MountPropagation::Bidirectional
                    }
                    _ => MountPropagation::Private,
                },
                host_path: m.host_path.into(),
                container_path: m.container_path,
                readonly: m.readonly,
            })
            .collect(),
        labels: labels(c.labels),
        annotations: labels(c.annotations),
        log,
        stop_signal,
        readonly_rootfs: sc.readonly_rootfs,
        no_new_privs: sc.no_new_privs,
        privileged: sc.privileged,
        add_capabilities: caps.add_capabilities,
        drop_capabilities: caps.drop_capabilities,
        oom_score_adj,
        pid,
        // The pod's network and hostname.
        networks: Vec::new(),
        port_mappings: Default::default(),
        hostname: None,
        masked_paths: sc.masked_paths,
        readonly_paths: sc.readonly_paths,
        resources,
        devices,
        apparmor,
        selinux,
        seccomp,
        stdin: c.stdin,
        stdin_once: c.stdin_once,
        tty: c.tty,
        // Mesos's alone.
        sandbox: None,
        rlimits: Vec::new(),
    })
}

/// kubelet's log path: relative to the pod's log directory, and staying inside it. No
/// log directory or no path: no log (the output is read and dropped, as containerd does).
fn log_target(dir: &str, path: &str) -> Result<Option<LogTarget>, Status> {
    if dir.is_empty() || path.is_empty() {
        return Ok(None);
    }
    let p = std::path::Path::new(path);
    if p.is_absolute()
        || p.components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(Status::invalid_argument(format!(
            "log_path {path:?}: must be relative to the pod's log directory and stay inside it"
        )));
    }
    Ok(Some(LogTarget {
        dir: dir.into(),
        path: p.to_path_buf(),
        format: LogFormat::Cri,
    }))
}

/// The CRI's reason and message for how a container ended (containerd's words).
fn reason(c: &Container) -> (String, String) {
    match &c.ending {
        None => (String::new(), String::new()),
        Some(Ending::Exited {
            oom_killed: true,
            limitation,
            ..
        }) => (
            "OOMKilled".into(),
            limitation
                .as_ref()
                .map(|l| l.message.clone())
                .unwrap_or_default(),
        ),
        // Not a reason kubelet knows, but one an operator reads (Mesos's
        // REASON_CONTAINER_LIMITATION_DISK).
        Some(Ending::Exited {
            limitation: Some(l),
            ..
        }) if l.kind == crate::isolators::LimitKind::Disk => {
            ("DiskQuotaExceeded".into(), l.message.clone())
        }
        Some(Ending::Exited { code: 0, .. }) => ("Completed".into(), String::new()),
        Some(Ending::Exited { .. }) => ("Error".into(), String::new()),
        Some(Ending::StartFailed { message }) => ("StartError".into(), message.clone()),
        Some(Ending::Lost { message }) => ("Unknown".into(), message.clone()),
    }
}

pub fn state(s: ContainerState) -> i32 {
    match s {
        // Starting is the moment between CreateContainer's and StartContainer's results.
        ContainerState::Created | ContainerState::Starting => {
            cri::ContainerState::ContainerCreated as i32
        }
        ContainerState::Running => cri::ContainerState::ContainerRunning as i32,
        ContainerState::Exited => cri::ContainerState::ContainerExited as i32,
        ContainerState::Unknown => cri::ContainerState::ContainerUnknown as i32,
    }
}

fn metadata(c: &Container) -> cri::ContainerMetadata {
    cri::ContainerMetadata {
        name: c.config.metadata.name.clone(),
        attempt: c.config.metadata.attempt,
    }
}

fn image(c: &Container) -> cri::ImageSpec {
    cri::ImageSpec {
        image: c.config.image.clone(),
        ..Default::default()
    }
}

pub fn summary(c: &Container) -> cri::Container {
    cri::Container {
        id: c.id.clone(),
        pod_sandbox_id: c.pod_id.clone().unwrap_or_default(),
        metadata: Some(metadata(c)),
        image: Some(image(c)),
        image_ref: c.image_id.clone(),
        state: state(c.state),
        created_at: c.created_at_ns,
        labels: to_map(&c.config.labels),
        annotations: to_map(&c.config.annotations),
        image_id: c.image_id.clone(),
    }
}

pub fn status(c: &Container) -> cri::ContainerStatus {
    cri::ContainerStatus {
        id: c.id.clone(),
        metadata: Some(metadata(c)),
        state: state(c.state),
        created_at: c.created_at_ns,
        started_at: c.started_at_ns,
        finished_at: c.finished_at_ns,
        exit_code: c.exit_code,
        image: Some(image(c)),
        image_ref: c.image_id.clone(),
        reason: reason(c).0,
        message: reason(c).1,
        labels: to_map(&c.config.labels),
        annotations: to_map(&c.config.annotations),
        mounts: c
            .config
            .mounts
            .iter()
            .map(|m| cri::Mount {
                host_path: m.host_path.display().to_string(),
                container_path: m.container_path.clone(),
                readonly: m.readonly,
                propagation: (match m.propagation {
                    MountPropagation::Private => cri::MountPropagation::PropagationPrivate,
                    MountPropagation::HostToContainer => {
                        cri::MountPropagation::PropagationHostToContainer
                    }
                    MountPropagation::Bidirectional => {
                        cri::MountPropagation::PropagationBidirectional
                    }
                }) as i32,
                ..Default::default()
            })
            .collect(),
        log_path: c
            .log_path()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        image_id: c.image_id.clone(),
        resources: Some(cri::ContainerResources {
            linux: Some(super::resources::to_cri(
                &c.config.resources,
                c.config.oom_score_adj,
            )),
            windows: None,
        }),
        ..Default::default()
    }
}

pub fn filter(f: Option<cri::ContainerFilter>) -> ContainerFilter {
    // The Mesos door's standalone containers are not the CRI's to see.
    let Some(f) = f else {
        return ContainerFilter {
            in_pod: Some(true),
            ..Default::default()
        };
    };
    ContainerFilter {
        id: (!f.id.is_empty()).then_some(f.id),
        pod_id: (!f.pod_sandbox_id.is_empty()).then_some(f.pod_sandbox_id),
        in_pod: Some(true),
        state: f.state.map(|s| match s.state {
            x if x == cri::ContainerState::ContainerCreated as i32 => ContainerState::Created,
            x if x == cri::ContainerState::ContainerRunning as i32 => ContainerState::Running,
            x if x == cri::ContainerState::ContainerExited as i32 => ContainerState::Exited,
            _ => ContainerState::Unknown,
        }),
        labels: labels(f.label_selector),
    }
}

/// Verbose `info`: the pid, the launch details, and what the isolators report
/// (`cgroupsPath`, the net_cls handle).
pub fn info(
    c: &Container,
    isolation: &std::collections::BTreeMap<String, String>,
) -> HashMap<String, String> {
    let info = serde_json::json!({
        "id": c.id,
        "pid": c.process.map(|p| p.pid),
        "podId": c.pod_id,
        "config": c.config,
        "isolation": isolation,
    });
    HashMap::from([("info".to_string(), info.to_string())])
}
