//! CNI (Container Network Interface, spec 0.3.0–1.1.0) for pod networks: the runtime
//! side of the protocol that containerd's go-cni and CRI-O's ocicni implement, written
//! for ucr.
//!
//! - `confdir`: the config directory, rescanned when it changes (`conf` parses a file);
//! - `chain`/`exec`/`args`: running a network's plugins, one process per call;
//! - `result`: reading what they print into a [`PodNetwork`];
//! - `cache`: what DEL needs later, written before ADD starts;
//! - `bandwidth`: the Kubernetes bandwidth annotations;
//! - `isolator`: the `network/cni` isolator, on top of the library; `files`: the pod's
//!   `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf` it writes.
//!
//! [`Cni`] is the one entry point. It serialises nothing: the caller makes sure a pod is
//! not set up and torn down at once; different pods may be handled concurrently.

mod args;
mod bandwidth;
mod cache;
mod chain;
mod conf;
mod confdir;
mod error;
mod exec;
pub mod files;
pub mod isolator;
mod result;
pub mod standalone;
mod types;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use bandwidth::{bandwidth_from_annotations, EGRESS_ANNOTATION, INGRESS_ANNOTATION};
pub use error::{CniError, PluginCall};
pub use exec::Op;
pub use types::{Attachment, Bandwidth, Dns, Interface, IpConfig, PodNetwork, PortMapping, Route};

use args::RuntimeArgs;
use cache::{Cache, Entry};
use chain::Runner;
use confdir::{ConfDir, Network};
use exec::Call;

/// Where CNI configs, plugins and our cache live (kubelet's / containerd's defaults are
/// `/etc/cni/net.d`, `/opt/cni/bin`, `/var/lib/cni`).
#[derive(Debug, Clone)]
pub struct CniConfig {
    pub conf_dir: PathBuf,
    /// Searched in order for plugin binaries (CNI_PATH).
    pub bin_dirs: Vec<PathBuf>,
    /// Must survive daemon restarts (DEL after a restart reads it); a reboot-surviving
    /// disk is best, since a pod's IPs in host-local's store survive reboots too.
    pub cache_dir: PathBuf,
    /// The longest one plugin call may take before its process group is killed.
    pub plugin_timeout: Duration,
}

/// The CNI library. Cheap to clone; clones share the loaded configs.
#[derive(Clone)]
pub struct Cni {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Cni {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cni")
            .field("conf_dir", &self.inner.confdir.dir())
            .finish_non_exhaustive()
    }
}

struct Inner {
    confdir: ConfDir,
    cache: Cache,
    /// The cache dir, which also keeps standalone containers' network state.
    state_dir: PathBuf,
    runner: Runner,
}

impl Cni {
    /// Does no I/O: configs are loaded on first use and reloaded when they change.
    pub fn new(config: CniConfig) -> Cni {
        Cni::with_rescan_interval(config, confdir::RESCAN_INTERVAL)
    }

    fn with_rescan_interval(config: CniConfig, interval: Duration) -> Cni {
        Cni {
            inner: Arc::new(Inner {
                confdir: ConfDir::new(config.conf_dir, config.bin_dirs.clone(), interval),
                cache: Cache::new(&config.cache_dir),
                state_dir: config.cache_dir.clone(),
                runner: Runner {
                    bin_dirs: config.bin_dirs,
                    timeout: config.plugin_timeout,
                },
            }),
        }
    }

    /// `Ok` when a default network is loaded; else why not (the CRI's NetworkReady=false
    /// reason).
    pub fn ready(&self) -> Result<(), String> {
        let loaded = self.inner.confdir.current();
        if loaded.networks.is_empty() {
            return Err(self.inner.confdir.not_ready_reason(&loaded));
        }
        Ok(())
    }

    /// Names of all valid networks, the default first.
    pub fn networks(&self) -> Vec<String> {
        let loaded = self.inner.confdir.current();
        loaded
            .networks
            .iter()
            .map(|n| n.list.name.clone())
            .collect()
    }

    fn network(&self, name: Option<&str>) -> Result<Network, CniError> {
        let loaded = self.inner.confdir.current();
        let found = match name {
            None => loaded.networks.first(),
            Some(name) => loaded.find(name),
        };
        match (found, name) {
            (Some(n), _) => Ok(n.clone()),
            (None, None) => Err(CniError::NoNetwork {
                reason: self.inner.confdir.not_ready_reason(&loaded),
            }),
            (None, Some(name)) => Err(CniError::UnknownNetwork {
                name: name.to_owned(),
                conf_dir: self.inner.confdir.dir().to_path_buf(),
            }),
        }
    }

    /// ADD `att` to its network. The cache entry is written (pending) before the first
    /// plugin runs and completed before this returns `Ok`. On failure the whole chain is
    /// DELeted so nothing leaks, and the plugin's error is returned. Dropping the future
    /// part-way (or a crash) leaves the pending entry: `del`, or the next `add` of the
    /// same attachment, undoes what ran.
    pub async fn add(&self, att: &Attachment) -> Result<PodNetwork, CniError> {
        args::validate(att)?;
        let network = self.network(att.network.as_deref())?;
        let (cid, ifname) = (&att.container_id, &att.ifname);
        if let Some(old) = self.inner.cache.load(cid, ifname).await? {
            if old.result.is_some() {
                return Err(CniError::AlreadyAttached {
                    container_id: cid.clone(),
                    ifname: ifname.clone(),
                    network: old.network,
                });
            }
            // An ADD interrupted by a crash: undo it before starting again.
            tracing::info!("undoing an interrupted CNI ADD of {cid} {ifname}");
            self.del_entry(&old, Some(&att.netns)).await?;
        }
        let list = &network.list;
        let runtime = RuntimeArgs::from_attachment(att);
        let mut entry = Entry::new(
            &list.name,
            list.raw.clone(),
            cid,
            ifname,
            &att.netns,
            runtime,
        );
        self.inner.cache.store(entry.clone()).await?;
        let cni_args = entry.runtime.cni_args_string();
        let netns = att.netns.to_string_lossy();
        let call = call_for(Op::Add, list, &entry, &netns, &cni_args);
        let clock = std::time::Instant::now();
        let added = self.inner.runner.add(list, &call, &entry.runtime).await;
        crate::metrics::prometheus::families().cni("ADD", added.is_ok(), clock.elapsed());
        let added = added.and_then(|raw| {
            let net = result::parse(&raw, ifname).map_err(|reason| CniError::BadResult {
                op: Op::Add,
                network: list.name.clone(),
                plugin: list
                    .plugins
                    .last()
                    .map(|p| p.kind.clone())
                    .unwrap_or_default(),
                reason,
            })?;
            Ok((raw, net))
        });
        let failure = match added {
            Ok((raw, net)) => {
                entry.result = Some(raw);
                match self.inner.cache.store(entry.clone()).await {
                    Ok(()) => return Ok(net),
                    Err(e) => e,
                }
            }
            Err(e) => e,
        };
        // entry.result is the final result if only the cache write failed: DEL gets it.
        Err(match self.del_entry(&entry, Some(&att.netns)).await {
            Ok(()) => failure,
            Err(del) => CniError::RollbackFailed {
                add: Box::new(failure),
                del: Box::new(del),
            },
        })
    }

    /// DEL the attachment `(container_id, ifname)` with the config and result cached at
    /// ADD, so it works after a restart and after the config file is gone. Nothing cached
    /// is success (DEL is idempotent). A missing `netns` is passed as `CNI_NETNS=""`. The
    /// cache entry goes only when every plugin's DEL succeeded.
    pub async fn del(
        &self,
        container_id: &str,
        ifname: &str,
        netns: Option<&Path>,
    ) -> Result<(), CniError> {
        args::validate_ids(container_id, ifname)?;
        match self.inner.cache.load(container_id, ifname).await? {
            None => Ok(()),
            Some(entry) => self.del_entry(&entry, netns).await,
        }
    }

    async fn del_entry(&self, entry: &Entry, netns: Option<&Path>) -> Result<(), CniError> {
        let list = self.list_of(entry)?;
        let netns = netns
            .filter(|p| p.exists())
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let cni_args = entry.runtime.cni_args_string();
        let call = call_for(Op::Del, &list, entry, &netns, &cni_args);
        let clock = std::time::Instant::now();
        let deleted = self
            .inner
            .runner
            .del(&list, &call, &entry.runtime, entry.result.as_ref())
            .await;
        crate::metrics::prometheus::families().cni("DEL", deleted.is_ok(), clock.elapsed());
        deleted?;
        self.inner
            .cache
            .forget(&entry.container_id, &entry.ifname)
            .await
    }

    /// CHECK the attachment against the config and result ADD used. Networks that
    /// predate CHECK (cniVersion < 0.4.0) or set `disableCheck` pass without a call.
    pub async fn check(&self, att: &Attachment) -> Result<(), CniError> {
        args::validate(att)?;
        let (cid, ifname) = (&att.container_id, &att.ifname);
        let not_attached = || CniError::NotAttached {
            container_id: cid.clone(),
            ifname: ifname.clone(),
        };
        let entry = self
            .inner
            .cache
            .load(cid, ifname)
            .await?
            .ok_or_else(not_attached)?;
        let result = entry.result.as_ref().ok_or_else(not_attached)?;
        let list = self.list_of(&entry)?;
        if list.disable_check || !list.version_at_least((0, 4, 0)) {
            return Ok(());
        }
        let cni_args = entry.runtime.cni_args_string();
        let netns = att.netns.to_string_lossy();
        let call = call_for(Op::Check, &list, &entry, &netns, &cni_args);
        self.inner
            .runner
            .check(&list, &call, &entry.runtime, result)
            .await
    }

    /// The network list `entry` was made with. DEL and CHECK use it, not the config dir,
    /// whose file may have changed or gone since.
    fn list_of(&self, entry: &Entry) -> Result<conf::NetworkList, CniError> {
        conf::from_list(entry.config.clone()).map_err(|reason| CniError::CorruptCache {
            path: self.inner.cache.path(&entry.container_id, &entry.ifname),
            reason,
        })
    }

    /// Where a standalone container's network namespace pins and `/etc` files are kept
    /// (see `standalone`): beside the cache, so both survive a restart together.
    pub fn standalone_dir(&self, container_id: &str) -> PathBuf {
        self.inner.state_dir.join("standalone").join(container_id)
    }

    /// Whether network `name` has a plugin that takes `capability` (`portMappings`):
    /// without one, what the runtime passes for it would be dropped silently.
    pub fn has_capability(&self, name: &str, capability: &str) -> bool {
        let loaded = self.inner.confdir.current();
        loaded.find(name).is_some_and(|n| {
            n.list
                .plugins
                .iter()
                .any(|p| p.capabilities.contains(capability))
        })
    }

    /// The ids of the standalone containers that have network state (pins or files).
    pub fn standalone_ids(&self) -> Vec<String> {
        list_names(&self.inner.state_dir.join("standalone"))
    }

    /// The ids with cached attachments (pods' and standalone containers').
    pub fn cached_ids(&self) -> Vec<String> {
        list_names(&self.inner.state_dir.join("ucr"))
    }

    /// The cached result of a completed ADD (for pod status after a restart).
    pub fn cached(&self, container_id: &str, ifname: &str) -> Option<PodNetwork> {
        args::validate_ids(container_id, ifname).ok()?;
        let entry = self.inner.cache.read(container_id, ifname).ok()??;
        result::parse(entry.result.as_ref()?, ifname).ok()
    }

    /// Asks every plugin of the network (the default when `None`) for its VERSION and
    /// checks it speaks the network's `cniVersion`.
    pub async fn validate(&self, network: Option<&str>) -> Result<(), CniError> {
        let network = self.network(network)?;
        self.inner.runner.versions(&network.list).await
    }
}

/// The call that runs `op` for the attachment `entry` records.
fn call_for<'a>(
    op: Op,
    list: &'a conf::NetworkList,
    entry: &'a Entry,
    netns: &'a str,
    args: &'a str,
) -> Call<'a> {
    Call {
        op,
        network: &list.name,
        container_id: &entry.container_id,
        netns,
        ifname: &entry.ifname,
        args,
    }
}

fn list_names(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .collect()
}
