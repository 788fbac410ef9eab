//! Running a whole network list, in the order the CNI spec gives for each operation:
//! ADD in order, each plugin getting the previous one's result as `prevResult`; DEL in
//! reverse with the cached final result; CHECK in order with the cached final result.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use super::args::{plugin_stdin, RuntimeArgs};
use super::conf::NetworkList;
use super::error::CniError;
use super::exec::{self, Call, Op};

/// Plugins send `prevResult` on DEL only from 0.4.0 on (earlier plugins do not expect it).
const DEL_PREV_RESULT_SINCE: (u32, u32, u32) = (0, 4, 0);

/// Where plugins live and how long each call may take.
#[derive(Debug, Clone)]
pub struct Runner {
    pub bin_dirs: Vec<PathBuf>,
    pub timeout: Duration,
}

impl Runner {
    async fn run(
        &self,
        list: &NetworkList,
        index: usize,
        call: &Call<'_>,
        runtime: &RuntimeArgs,
        prev: Option<&Value>,
    ) -> Result<Vec<u8>, CniError> {
        let plugin = &list.plugins[index];
        let stdin = plugin_stdin(list, plugin, runtime, prev);
        exec::run(&self.bin_dirs, self.timeout, &plugin.kind, call, &stdin).await
    }

    /// ADD through the chain; the last plugin's result. Stops at the first failure (the
    /// caller undoes the chain with DEL).
    pub async fn add(
        &self,
        list: &NetworkList,
        call: &Call<'_>,
        runtime: &RuntimeArgs,
    ) -> Result<Value, CniError> {
        let mut prev: Option<Value> = None;
        for (i, plugin) in list.plugins.iter().enumerate() {
            let out = self.run(list, i, call, runtime, prev.as_ref()).await?;
            let bad = |reason: String| CniError::BadResult {
                op: Op::Add,
                network: list.name.clone(),
                plugin: plugin.kind.clone(),
                reason,
            };
            let result: Value = serde_json::from_slice(&out)
                .map_err(|e| bad(format!("{e}: {:?}", String::from_utf8_lossy(&out))))?;
            if !result.is_object() {
                return Err(bad(format!("not a JSON object: {result}")));
            }
            prev = Some(result);
        }
        prev.ok_or_else(|| CniError::BadResult {
            op: Op::Add,
            network: list.name.clone(),
            plugin: String::new(),
            reason: "the list has no plugins".into(),
        })
    }

    /// DEL through the chain in reverse. Every plugin is asked even after one fails, so
    /// one broken plugin does not leak what the others hold (an IP, a veth, iptables
    /// rules); the first failure is returned.
    pub async fn del(
        &self,
        list: &NetworkList,
        call: &Call<'_>,
        runtime: &RuntimeArgs,
        cached_result: Option<&Value>,
    ) -> Result<(), CniError> {
        let prev = cached_result.filter(|_| list.version_at_least(DEL_PREV_RESULT_SINCE));
        let mut first_error = None;
        for i in (0..list.plugins.len()).rev() {
            if let Err(e) = self.run(list, i, call, runtime, prev).await {
                tracing::warn!("{e}");
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// CHECK through the chain; stops at the first failure.
    pub async fn check(
        &self,
        list: &NetworkList,
        call: &Call<'_>,
        runtime: &RuntimeArgs,
        cached_result: &Value,
    ) -> Result<(), CniError> {
        for i in 0..list.plugins.len() {
            self.run(list, i, call, runtime, Some(cached_result))
                .await?;
        }
        Ok(())
    }

    /// VERSION of every plugin: each must list the network's `cniVersion`.
    pub async fn versions(&self, list: &NetworkList) -> Result<(), CniError> {
        let call = Call {
            op: Op::Version,
            network: &list.name,
            container_id: "",
            netns: "",
            ifname: "",
            args: "",
        };
        for plugin in &list.plugins {
            let stdin = serde_json::json!({"cniVersion": list.cni_version}).to_string();
            let out = exec::run(
                &self.bin_dirs,
                self.timeout,
                &plugin.kind,
                &call,
                stdin.as_bytes(),
            )
            .await?;
            let supported: Vec<String> = serde_json::from_slice::<Value>(&out)
                .ok()
                .and_then(|v| v.get("supportedVersions").cloned())
                .and_then(|v| serde_json::from_value(v).ok())
                .ok_or_else(|| CniError::BadResult {
                    op: Op::Version,
                    network: list.name.clone(),
                    plugin: plugin.kind.clone(),
                    reason: format!(
                        "no supportedVersions in {:?}",
                        String::from_utf8_lossy(&out)
                    ),
                })?;
            if !supported.contains(&list.cni_version) {
                return Err(CniError::UnsupportedVersion {
                    network: list.name.clone(),
                    plugin: plugin.kind.clone(),
                    version: list.cni_version.clone(),
                    supported,
                });
            }
        }
        Ok(())
    }
}
