//! `cgroups` (ucr-spec.md §5): the resource isolators, as Mesos's cgroups isolator with
//! one subsystem per controller (`subsystems/`, each under its Mesos name:
//! `cgroups/devices`, `cgroups/cpu`, `cgroups/mem`, `cgroups/pids`, `cgroups/cpuset`,
//! `cgroups/hugetlb`, `cgroups/blkio`, `cgroups/net_cls`).
//!
//! # Placement (the cgroupfs driver)
//! ```text
//! <pod>              kubelet's cgroup_parent (/kubepods/burstable/pod<uid>), or
//!                    <--cgroups-root>/<pod id> for a pod without one
//! <pod>/<pod id>     the pod's init, when the pod shares a PID namespace
//! <pod>/<cid>        each container of the pod
//! <root>/<cid>       a standalone container (the Mesos door)
//! <root>/monitors    every container's monitor, out of the daemon's cgroup: a service
//!                    manager restarting the daemon does not touch them
//! ```
//! A systemd-style parent (`kubepods-burstable-pod<uid>.slice`) is refused: only the
//! cgroupfs driver is supported, and RuntimeConfig says so.
//!
//! # When
//! - `prepare`: the container's cgroup is made in every hierarchy its subsystems use
//!   (and the freezer's, through which stop ends all of its processes), and each
//!   subsystem writes its limits; a value the kernel refuses is InvalidArgument naming it.
//! - The process joins before it execs: on v2 the launcher clones it straight into the
//!   cgroup (`CLONE_INTO_CGROUP`); on v1 `isolate` writes its pid while the monitor holds
//!   it at the launcher's barrier. `ucr nsexec` and the pod init join theirs too.
//! - `update` rewrites the limits live; `usage` reads the kernel's counters;
//!   `limitation` tells an OOM kill (also one that happened while the daemon was down).
//! - `kill_all` freezes the cgroup, kills every process in it and thaws it (v2:
//!   `cgroup.kill`), so a host-PID container's children do not outlive it.
//! - `cleanup` removes the cgroups once empty; `recover` removes those of pods and
//!   containers the daemon no longer knows (`record`), and relearns net_cls handles.

pub mod cgroup;
pub mod devices;
pub mod error;
pub mod layout;
pub mod path;
pub mod record;
pub mod subsystems;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;

use self::cgroup::Cgroup;
use self::error::{write_file, CgroupsError};
use self::layout::Layout;
use self::path::CgroupPath;
use self::record::{Record, Records};
use self::subsystems::{Spec, Subsystem};
use crate::containerizer::types::{ContainerConfig, PidMode, Pod, PodConfig};
use crate::isolators::{
    blocking, ContainerContext, Isolator, IsolatorError, IsolatorStatus, Known, Limitation,
    PodContext, PodPlan, Resources, Usage,
};
use crate::launcher::LaunchSpec;
use crate::sys::pidfd::ProcessId;

/// The leaf below `--cgroups-root` that holds the monitors.
const MONITORS: &str = "monitors";

/// How the daemon was told to place cgroups.
#[derive(Debug, Clone)]
pub struct CgroupsOptions {
    /// Where missing v1 hierarchies are mounted (Mesos `--cgroups_hierarchy`).
    pub hierarchy: PathBuf,
    /// Parent of pods without a `cgroup_parent` and of standalone containers (Mesos
    /// `--cgroups_root`).
    pub root: CgroupPath,
    /// `cgroups/net_cls`'s handles; `None`: no net_cls isolation.
    pub net_cls: Option<subsystems::net_cls::Handles>,
    /// The pids limit of containers whose request sets none.
    pub pids_limit: Option<i64>,
    /// Where the records of what was made live (`<run-root>/cgroups`).
    pub state_dir: PathBuf,
}

#[derive(Clone)]
pub struct Cgroups {
    layout: Arc<Layout>,
    root: CgroupPath,
    subsystems: Arc<Vec<Box<dyn Subsystem>>>,
    records: Records,
}

impl Cgroups {
    /// Discovers this node's hierarchies and mounts the v1 ones the subsystems need that
    /// are missing (Mesos does the same under `--cgroups_hierarchy`).
    pub fn new(opts: CgroupsOptions) -> Result<Cgroups, CgroupsError> {
        let kernel = layout::kernel_controllers()?;
        let subsystems = default_subsystems(&opts);
        let mut wanted: Vec<&str> = vec!["freezer"];
        for s in &subsystems {
            wanted.extend(s.controllers().iter().copied());
        }
        let layout = Layout::discover()?.mount_missing(&opts.hierarchy, &wanted, &kernel)?;
        Cgroups::with_layout(layout, opts, subsystems)
    }

    /// The isolator over a given layout and subsystems (tests use a fake v2 tree).
    pub fn with_layout(
        layout: Layout,
        opts: CgroupsOptions,
        subsystems: Vec<Box<dyn Subsystem>>,
    ) -> Result<Cgroups, CgroupsError> {
        let c = Cgroups {
            layout: Arc::new(layout),
            root: opts.root,
            subsystems: Arc::new(subsystems),
            records: Records::new(opts.state_dir)?,
        };
        c.make_monitors_cgroup()?;
        Ok(c)
    }

    /// Keeps only the subsystems `keep` accepts by Mesos name (`--isolation`). Called on
    /// the isolator just made, before anything shares it.
    pub fn retain_subsystems(mut self, keep: impl Fn(&str) -> bool) -> Self {
        match Arc::get_mut(&mut self.subsystems) {
            Some(list) => list.retain(|s| keep(s.name())),
            None => tracing::error!("cgroups subsystems selected after the isolator was shared"),
        }
        self
    }

    /// The Mesos names of the subsystems in force.
    pub fn subsystem_names(&self) -> Vec<&'static str> {
        self.subsystems.iter().map(|s| s.name()).collect()
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Every controller a container's cgroup is made in: the subsystems', and the
    /// freezer (stop ends every process through it).
    fn controllers(&self) -> Vec<&'static str> {
        let mut out = vec!["freezer"];
        for s in self.subsystems.iter() {
            for c in s.controllers() {
                if !out.contains(c) {
                    out.push(c);
                }
            }
        }
        out
    }

    fn cgroup(&self, path: CgroupPath) -> Cgroup {
        Cgroup::new(Arc::clone(&self.layout), path)
    }

    /// The pod's cgroup: kubelet's parent, or ours.
    pub fn pod_path(&self, pod: &Pod) -> Result<CgroupPath, CgroupsError> {
        match pod
            .config
            .cgroup_parent
            .as_deref()
            .filter(|p| !p.is_empty())
        {
            Some(parent) => Ok(CgroupPath::parse(parent)?),
            None => Ok(self.root.join(&pod.id)?),
        }
    }

    /// The container's cgroup: in its pod's, or under the root for a standalone one.
    pub fn container_path(&self, id: &str, pod: Option<&Pod>) -> Result<CgroupPath, CgroupsError> {
        match pod {
            Some(p) => Ok(self.pod_path(p)?.join(id)?),
            None => Ok(self.root.join(id)?),
        }
    }

    /// The `cgroup.procs` files a monitor writes itself into, in every hierarchy that
    /// tracks processes (named and controller-less ones too).
    pub fn monitor_procs(&self) -> Vec<PathBuf> {
        let Ok(path) = self.root.join(MONITORS) else {
            return Vec::new();
        };
        self.layout
            .tracking()
            .into_iter()
            .map(|m| path.under(m).join("cgroup.procs"))
            .collect()
    }

    /// Makes the monitors' cgroup in every tracking hierarchy (through `Cgroup::create`
    /// where it can: a v1 cpuset must be filled from its parent before anyone joins).
    fn make_monitors_cgroup(&self) -> Result<(), CgroupsError> {
        let path = self.root.join(MONITORS)?;
        let named: Vec<String> = match self.layout.as_ref() {
            Layout::V1 { hierarchies, .. } => hierarchies
                .iter()
                .filter_map(|h| h.controllers.iter().next().cloned())
                .collect(),
            Layout::V2 { .. } => vec!["freezer".into()],
        };
        let names: Vec<&str> = named.iter().map(String::as_str).collect();
        self.cgroup(path.clone()).create(&names)?;
        // The controller-less cgroup2 mount of a hybrid node has no controller to name.
        for m in self.layout.tracking() {
            let dir = path.under(m);
            std::fs::create_dir_all(&dir).map_err(error::io("create", &dir))?;
        }
        Ok(())
    }

    /// Every directory of `path` in every tracking hierarchy that exists.
    fn dirs_everywhere(&self, path: &CgroupPath) -> Vec<PathBuf> {
        self.layout
            .tracking()
            .into_iter()
            .map(|m| path.under(m))
            .filter(|d| d.exists())
            .collect()
    }

    /// Makes a cgroup and records it first; returns it.
    fn make(&self, id: &str, own: Vec<CgroupPath>) -> Result<Cgroup, CgroupsError> {
        let leaf = own
            .last()
            .cloned()
            .ok_or_else(|| CgroupsError::State("nothing to make".into()))?;
        let mut record = self.records.get(id).unwrap_or_default();
        for p in own {
            if !record.own.contains(&p) {
                record.own.push(p);
            }
        }
        self.records.put(id, &record)?;
        let cg = self.cgroup(leaf);
        let made = cg.create(&self.controllers())?;
        if !made.is_empty() {
            record.made.extend(made);
            self.records.put(id, &record)?;
        }
        Ok(cg)
    }

    /// Kills what is left in, and removes, everything `id`'s record names; then forgets
    /// the record. What is already gone is fine.
    fn unmake(&self, id: &str) -> Result<(), CgroupsError> {
        for s in self.subsystems.iter() {
            s.release(id);
        }
        let Some(record) = self.records.get(id) else {
            return Ok(());
        };
        let mut first = None;
        let mut own = record.own.clone();
        own.sort_by_key(|p| std::cmp::Reverse(p.as_str().len()));
        for p in &own {
            let cg = self.cgroup(p.clone());
            if let Err(e) = cg.kill_all() {
                first.get_or_insert(e);
            }
            if let Err(e) = cg.remove_dirs(&self.dirs_everywhere(p)) {
                first.get_or_insert(e);
            }
        }
        // Parents we made because they were missing: only once nothing else uses them.
        let mut made = record.made.clone();
        made.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
        for d in made {
            let _ = std::fs::remove_dir(&d);
        }
        if let Some(e) = first {
            return Err(e);
        }
        self.records.remove(id)
    }

    /// A pod's cgroups: its init's leaf, its own cgroup when ours, and parents made for
    /// it, each only once no child cgroup is left in it. At StopPodSandbox its exited
    /// containers still have theirs (their figures and OOM counters are read until they
    /// are removed), so what is still in use stays on record and goes at
    /// RemovePodSandbox, which runs the pod's cleanup again once its containers are gone.
    fn unmake_pod(&self, id: &str) -> Result<(), CgroupsError> {
        let Some(mut record) = self.records.get(id) else {
            return Ok(());
        };
        let has_children = |d: &PathBuf| {
            std::fs::read_dir(d).is_ok_and(|entries| {
                entries
                    .flatten()
                    .any(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            })
        };
        let mut own = record.own.clone();
        own.sort_by_key(|p| std::cmp::Reverse(p.as_str().len()));
        for p in &own {
            let dirs = self.dirs_everywhere(p);
            if dirs.iter().any(has_children) {
                continue;
            }
            let cg = self.cgroup(p.clone());
            cg.kill_all()?;
            cg.remove_dirs(&dirs)?;
        }
        let mut made = record.made.clone();
        made.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
        for d in made {
            let _ = std::fs::remove_dir(&d);
        }
        record.own.retain(|p| !self.dirs_everywhere(p).is_empty());
        record.made.retain(|d| d.exists());
        if record.own.is_empty() && record.made.is_empty() {
            self.records.remove(id)
        } else {
            self.records.put(id, &record)
        }
    }

    fn spec<'a>(&self, id: &'a str, c: &'a ContainerConfig, creating: bool) -> Spec<'a> {
        Spec {
            id,
            resources: &c.resources,
            privileged: c.privileged,
            devices: &c.devices,
            creating,
        }
    }

    fn apply(&self, cg: &Cgroup, spec: &Spec<'_>) -> Result<(), CgroupsError> {
        for s in self.subsystems.iter() {
            s.apply(cg, spec)?;
        }
        self.apply_unified(cg, &spec.resources.unified)
    }

    /// The CRI's `unified` map: v2 files written as they are, after the subsystems (a
    /// key the map shares with them wins, as in runc).
    fn apply_unified(
        &self,
        cg: &Cgroup,
        unified: &BTreeMap<String, String>,
    ) -> Result<(), CgroupsError> {
        if unified.is_empty() {
            return Ok(());
        }
        let Some(dir) = cg.dir("freezer") else {
            return Ok(());
        };
        for (key, value) in unified {
            write_file(&dir, key, &format!("unified[{key}]"), value)?;
        }
        Ok(())
    }

    /// Makes the pod's cgroup (and its init's, when the pod shares a PID namespace);
    /// returns the `cgroup.procs` files the init joins. kubelet's parent is made only if
    /// missing, and then removed with the pod.
    fn make_pod(&self, pod: &Pod) -> Result<Vec<PathBuf>, CgroupsError> {
        let pod_path = self.pod_path(pod)?;
        let mut own = Vec::new();
        if pod
            .config
            .cgroup_parent
            .as_deref()
            .is_none_or(str::is_empty)
        {
            own.push(pod_path.clone());
        }
        let init = pod.config.pid == PidMode::Pod;
        if init {
            own.push(pod_path.join(&pod.id)?);
        }
        let controllers = self.controllers();
        let cg = if own.is_empty() {
            let mut record = Record::default();
            self.records.put(&pod.id, &record)?;
            let cg = self.cgroup(pod_path);
            record.made = cg.create(&controllers)?;
            self.records.put(&pod.id, &record)?;
            cg
        } else {
            self.make(&pod.id, own)?
        };
        Ok(if init {
            cg.procs_files(&controllers)
        } else {
            Vec::new()
        })
    }

    /// Checks a request's resources against this node before anything is made.
    fn check_resources(&self, r: &Resources) -> Result<(), CgroupsError> {
        for key in r.unified.keys() {
            if !self.layout.is_v2() {
                return Err(CgroupsError::Unsupported {
                    field: "unified".into(),
                    value: key.clone(),
                    reason: "this node runs cgroup v1; the unified map needs cgroup v2".into(),
                });
            }
            // A plain file of the cgroup's own, never one that moves processes or reaches
            // elsewhere.
            let plain = key.contains('.')
                && !key.starts_with("cgroup.")
                && key
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_');
            if !plain {
                return Err(CgroupsError::Unsupported {
                    field: "unified".into(),
                    value: key.clone(),
                    reason: "not a controller file name (such as memory.high); cgroup.* files \
                             are not settable"
                        .into(),
                });
            }
        }
        for s in self.subsystems.iter() {
            s.check(r, &self.layout)?;
        }
        Ok(())
    }

    /// The container's cgroup, for the hooks that act on one that exists.
    fn container_cgroup(&self, c: &ContainerContext<'_>) -> Result<Cgroup, CgroupsError> {
        Ok(self.cgroup(self.container_path(c.id, c.pod)?))
    }
}

/// The subsystems every daemon runs, in the order their limits are written; net_cls
/// only when the operator gave its handles.
pub fn default_subsystems(opts: &CgroupsOptions) -> Vec<Box<dyn Subsystem>> {
    let mut list: Vec<Box<dyn Subsystem>> = vec![
        // First: the device policy is the one that keeps the node safe.
        Box::new(subsystems::devices::Devices),
        Box::new(subsystems::cpu::Cpu),
        Box::new(subsystems::cpuset::Cpuset),
        Box::new(subsystems::mem::Mem),
        Box::new(subsystems::pids::Pids {
            default: opts.pids_limit,
        }),
        Box::new(subsystems::hugetlb::HugeTlb),
        Box::new(subsystems::blkio::BlkIo),
    ];
    if let Some(h) = opts.net_cls {
        list.push(Box::new(subsystems::net_cls::NetCls::new(h)));
    }
    list
}

fn err(e: CgroupsError) -> IsolatorError {
    e.into()
}

#[async_trait]
impl Isolator for Cgroups {
    fn name(&self) -> &'static str {
        "cgroups"
    }

    fn plan_pod(&self, pod: &PodConfig, _plan: &mut PodPlan) -> Result<(), IsolatorError> {
        if let Some(parent) = pod.cgroup_parent.as_deref().filter(|p| !p.is_empty()) {
            CgroupPath::parse(parent).map_err(|e| err(e.into()))?;
        }
        Ok(())
    }

    async fn prepare_pod(&self, pod: &mut PodContext<'_>) -> Result<(), IsolatorError> {
        let (me, p) = (self.clone(), pod.pod.clone());
        pod.init_cgroups = blocking(move || me.make_pod(&p).map_err(err)).await?;
        Ok(())
    }

    async fn cleanup_pod(&self, pod: &mut PodContext<'_>) -> Result<(), IsolatorError> {
        // The pod's init is stopped by namespaces/pid, after this in the table, so before
        // this in cleanup; `unmake` kills whatever is left anyway.
        let (me, id) = (self.clone(), pod.pod.id.clone());
        blocking(move || me.unmake_pod(&id).map_err(err)).await
    }

    fn check(&self, c: &ContainerConfig, pod: Option<&Pod>) -> Result<(), IsolatorError> {
        if let Some(p) = pod {
            self.pod_path(p).map_err(err)?;
        }
        self.check_resources(&c.resources).map_err(err)
    }

    fn prepare(
        &self,
        c: &ContainerContext<'_>,
        launch: &mut LaunchSpec,
    ) -> Result<(), IsolatorError> {
        let path = self.container_path(c.id, c.pod).map_err(err)?;
        let cg = self.make(c.id, vec![path]).map_err(err)?;
        self.apply(&cg, &self.spec(c.id, c.config, true))
            .map_err(err)?;
        let controllers = self.controllers();
        launch.cgroups = cg.dirs(&controllers);
        if cg.is_v2() {
            launch.clone_into_cgroup = cg.dir("freezer");
        }
        launch.monitor_cgroups = self.monitor_procs();
        Ok(())
    }

    fn isolate(&self, c: &ContainerContext<'_>, process: ProcessId) -> Result<(), IsolatorError> {
        let cg = self.container_cgroup(c).map_err(err)?;
        if cg.is_v2() {
            // Cloned into it already (CLONE_INTO_CGROUP).
            return Ok(());
        }
        cg.join(&self.controllers(), process.pid).map_err(err)
    }

    fn update(&self, c: &ContainerContext<'_>, r: &Resources) -> Result<(), IsolatorError> {
        self.check_resources(r).map_err(err)?;
        let cg = self.container_cgroup(c).map_err(err)?;
        let mut config = c.config.clone();
        config.resources = r.clone();
        self.apply(&cg, &self.spec(c.id, &config, false))
            .map_err(err)
    }

    fn usage(&self, c: &ContainerContext<'_>, u: &mut Usage) -> Result<(), IsolatorError> {
        let cg = self.container_cgroup(c).map_err(err)?;
        for s in self.subsystems.iter() {
            s.usage(&cg, u).map_err(err)?;
        }
        Ok(())
    }

    fn pod_usage(&self, pod: &Pod, u: &mut Usage) -> Result<(), IsolatorError> {
        let cg = self.cgroup(self.pod_path(pod).map_err(err)?);
        for s in self.subsystems.iter() {
            s.usage(&cg, u).map_err(err)?;
        }
        Ok(())
    }

    fn status(
        &self,
        c: &ContainerContext<'_>,
        s: &mut IsolatorStatus,
    ) -> Result<(), IsolatorError> {
        let cg = self.container_cgroup(c).map_err(err)?;
        s.info
            .insert("cgroupsPath".into(), cg.path().as_str().to_string());
        for sub in self.subsystems.iter() {
            sub.status(c.id, &cg, &mut s.info);
        }
        Ok(())
    }

    fn kill_all(&self, c: &ContainerContext<'_>) -> Result<(), IsolatorError> {
        self.container_cgroup(c)
            .and_then(|cg| cg.kill_all())
            .map_err(err)
    }

    fn limitation(&self, c: &ContainerContext<'_>) -> Option<Limitation> {
        let cg = self.container_cgroup(c).ok()?;
        self.subsystems.iter().find_map(|s| s.limitation(&cg))
    }

    fn cleanup(&self, c: &ContainerContext<'_>) -> Result<(), IsolatorError> {
        self.unmake(c.id).map_err(err)
    }

    fn recover(&self, known: &Known<'_>) -> Result<Vec<String>, IsolatorError> {
        let live: BTreeSet<&str> = known
            .pods
            .iter()
            .map(|p| p.id.as_str())
            .chain(known.containers.iter().map(|c| c.id.as_str()))
            .collect();
        for c in known.containers {
            let pod = c
                .pod_id
                .as_ref()
                .and_then(|p| known.pods.iter().find(|x| &x.id == p));
            if let Ok(path) = self.container_path(&c.id, pod) {
                let cg = self.cgroup(path);
                for s in self.subsystems.iter() {
                    s.recover(&c.id, &cg);
                }
            }
        }
        let mut orphans = Vec::new();
        for id in self.records.ids() {
            if live.contains(id.as_str()) {
                continue;
            }
            tracing::warn!(id = %id, "removing the cgroups of a pod or container the daemon no longer knows");
            self.unmake(&id).map_err(err)?;
            orphans.push(id);
        }
        Ok(orphans)
    }
}

#[cfg(test)]
pub(crate) mod tests;
