//! `ucr serve`: builds the core from the settings and runs the front doors until SIGTERM
//! or SIGINT.

use std::sync::Arc;

use crate::config::{DockerRegistry, Settings};
use crate::containerizer::{Containerizer, Options as ContainerizerOptions};
use crate::core::Core;
use crate::cri;
use crate::isolators::network::cni::{Cni, CniConfig};
use crate::isolators::Isolators;
use crate::provisioner::puller::registry::{auth::DockerConfig, RegistryOptions};
use crate::provisioner::store::gc::{self, GcConfig};
use crate::provisioner::store::{Store, StoreOptions};

pub async fn serve(settings: Settings) -> anyhow::Result<()> {
    // What the settings could not log (they are made before logging is set up).
    if !settings.env_read.is_empty() {
        tracing::info!(variables = ?settings.env_read, "flags from the environment");
    }
    if !settings.env_ignored.is_empty() {
        tracing::info!(variables = ?settings.env_ignored, "ignoring MESOS_* variables that name no flag of ucr's");
    }
    for note in &settings.isolation.deprecated {
        tracing::warn!("{note}");
    }
    let counters = crate::metrics::Counters::default();
    // Credentials are read first, as the Mesos agent does: a bad file stops the start.
    let auth = crate::mesos::auth::Auth::load(&settings.http_auth)?;
    // 0711, and what an older version left readable below them closed (see `perm`).
    for (dir, other) in [
        (&settings.root, &settings.run_root),
        (&settings.run_root, &settings.root),
    ] {
        crate::perm::root_dir(dir)
            .and_then(|()| crate::perm::tighten(dir, &[other.as_path()]))
            .map_err(|e| anyhow::anyhow!("preparing {}: {e}", dir.display()))?;
    }
    let docker_config = settings
        .docker_config
        .as_deref()
        .map(DockerConfig::load)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--docker-config: {e}"))?
        .unwrap_or_default();
    let gc_config = settings
        .image_gc_config
        .as_deref()
        .map(GcConfig::parse)
        .transpose()?;
    let (default_registry, archive_dir) = match &settings.docker_registry {
        Some(DockerRegistry::Url(u)) => (Some(u.clone()), None),
        Some(DockerRegistry::Dir(d)) => (None, Some(d.clone())),
        None => (None, None),
    };
    let opts = StoreOptions {
        dir: settings.store_dir.clone(),
        registry: RegistryOptions {
            mirrors: settings.mirrors.clone(),
            insecure: settings.insecure_registries.clone(),
            default_registry,
            docker_config,
            progress_timeout: settings.pull_progress_timeout,
        },
        archive_dir,
        max_concurrent_downloads: settings.max_concurrent_downloads,
        pinned: settings.pinned_images.clone(),
    };
    // Opening recovers from a crash (walks the store): keep it off the async threads.
    let store = tokio::task::spawn_blocking(move || Store::open(opts)).await??;
    let gc_excluded = gc_config
        .as_ref()
        .map(|c| c.excluded.clone())
        .unwrap_or_default();
    if let Some(config) = gc_config {
        tracing::info!(headroom = config.headroom, interval = ?config.interval, "image GC enabled");
        gc::spawn_watcher(store.clone(), config);
    }
    let (store_dir, requested) = (settings.store_dir.clone(), settings.backend.clone());
    let backend = tokio::task::spawn_blocking(move || {
        crate::provisioner::backend::select(&requested, &store_dir)
    })
    .await??;
    tracing::info!(backend = %backend.kind(), "rootfs backend");
    let binary = std::env::current_exe()?;
    // First: a refusal (disk/xfs without quotas) must come before anything is made.
    let disk = disk_isolators(&settings)?;
    let cgroups_options = crate::isolators::cgroups::CgroupsOptions {
        hierarchy: settings.cgroups_hierarchy.clone(),
        root: settings.cgroups_root.clone(),
        net_cls: settings.net_cls,
        pids_limit: settings.pids_limit,
        state_dir: settings.run_root.join("cgroups"),
    };
    // Discovers the hierarchies, and mounts missing ones: off the async threads.
    let cgroups = tokio::task::spawn_blocking(move || {
        crate::isolators::cgroups::Cgroups::new(cgroups_options)
    })
    .await??;
    let isolation = settings.isolation.clone();
    let cgroups = cgroups.retain_subsystems(|name| isolation.has(name));
    tracing::info!(layout = ?cgroups.layout(), subsystems = ?cgroups.subsystem_names(), "cgroups");
    let options = ContainerizerOptions {
        root: settings.root.clone(),
        run_root: settings.run_root.clone(),
        store: store.clone(),
        backend,
        binary: binary.clone(),
        isolators: Isolators::selected(
            Cni::new(CniConfig {
                conf_dir: settings.cni_conf_dir.clone(),
                bin_dirs: settings.cni_bin_dirs.clone(),
                cache_dir: settings.root.join("cni"),
                plugin_timeout: settings.cni_plugin_timeout,
            }),
            binary.clone(),
            cgroups,
            disk,
            crate::isolators::linux::seccomp::Seccomp::new(
                settings.seccomp_profile_root.clone(),
                settings.seccomp_default,
            ),
            // The cgroups isolator runs whenever one of its subsystems does.
            &|name| match name {
                "cgroups" => isolation
                    .isolators
                    .iter()
                    .any(|n| n.starts_with("cgroups/")),
                name => isolation.has(name),
            },
        ),
    };
    let recovery = std::time::Instant::now();
    // Recovery reads every bundle and may record ends: off the async threads.
    let containerizer = tokio::task::spawn_blocking(move || Containerizer::open(options)).await??;
    containerizer.sweep_half_made().await;
    containerizer.reconcile_images().await?;
    match containerizer.network_ready() {
        Ok(()) => tracing::info!(conf_dir = %settings.cni_conf_dir.display(), "pod network ready"),
        Err(reason) => tracing::warn!(%reason, "no pod network: only host-network pods can run"),
    }
    if settings.recover == crate::config::Recover::Cleanup {
        // Mesos semantics: kill and remove everything, then exit; the next start (with
        // the default `reconnect`) begins from a clean node.
        containerizer.remove_everything().await?;
        tracing::info!("--recover cleanup: every pod and container removed; exiting");
        return Ok(());
    }
    containerizer.resume();
    counters.recovered(recovery.elapsed());
    let core = Arc::new(Core {
        store,
        containerizer,
        gc_excluded,
        counters,
    });
    let stream = match settings.stream_address {
        Some(address) => Some(
            crate::streaming::StreamServer::start(
                address,
                settings.stream_tls.clone(),
                core.clone(),
            )
            .await?,
        ),
        None => {
            tracing::info!("no streaming server: Exec, Attach and PortForward are unavailable");
            None
        }
    };
    if let Some(address) = settings.metrics_listen {
        crate::telemetry::http::start(address, core.clone()).await?;
    }
    if let Some(address) = settings.mesos_listen {
        let agent = crate::mesos::calls::Agent {
            flags: settings.as_flags(),
            core: core.clone(),
            sandboxes: settings.root.join("mesos/sandboxes"),
            auth,
            agent_id: crate::mesos::legacy::agent_id(&settings.root.join("mesos"))?,
            sandbox_directory: settings.sandbox_directory.clone(),
            sessions: Default::default(),
        };
        crate::mesos::server::start(address, agent).await?;
    }
    cri::serve(
        &settings.listen,
        settings.listen_group,
        core,
        stream,
        shutdown_signal(),
    )
    .await?;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers we can still serve; we just cannot stop gracefully.
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = int.recv() => tracing::info!("SIGINT: shutting down"),
    }
}

/// The disk isolators `--isolation` asks for. `disk/xfs` on a filesystem or kernel
/// without project quotas stops the daemon here, with the reason.
fn disk_isolators(
    settings: &crate::config::Settings,
) -> anyhow::Result<Vec<Box<dyn crate::isolators::Isolator>>> {
    use crate::isolators::disk::{du::isolator::DiskDu, xfs::isolator::DiskXfs};
    let mut out: Vec<Box<dyn crate::isolators::Isolator>> = Vec::new();
    for name in &settings.isolation.isolators {
        match name.as_str() {
            "disk/du" => out.push(Box::new(DiskDu::new(
                settings.disk_watch_interval,
                settings.enforce_disk_quota,
                settings.run_root.join("disk"),
            )?)),
            "disk/xfs" => {
                std::fs::create_dir_all(&settings.root)?;
                out.push(Box::new(DiskXfs::new(
                    &settings.root,
                    settings.xfs_project_range.clone(),
                    settings.enforce_disk_quota,
                    settings.run_root.join("xfs"),
                )?))
            }
            _ => {}
        }
    }
    Ok(out)
}
