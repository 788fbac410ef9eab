//! One network configuration: a `.conflist` (a named chain of plugins) or a single-plugin
//! `.conf`/`.json`, which is wrapped into a one-plugin list as libcni does, so everything
//! past this file only ever sees lists.
//!
//! Plugin configs are kept as raw JSON objects: plugins own their keys, and whatever we
//! do not understand must reach them untouched.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

/// The version a config without `cniVersion` speaks: plugins read a missing version as
/// 0.1.0 (the CNI spec's original shape), so we say so explicitly.
const IMPLICIT_VERSION: &str = "0.1.0";

/// A parsed, validated network configuration list.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkList {
    pub name: String,
    pub cni_version: String,
    /// `disableCheck`: the network's plugins do not implement CHECK.
    pub disable_check: bool,
    pub plugins: Vec<PluginConf>,
    /// The list as JSON, exactly what ADD used (the cache keeps it for DEL).
    pub raw: Value,
}

/// One plugin of a list.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginConf {
    /// Its `type`: the binary's file name in the bin dirs.
    pub kind: String,
    /// Capabilities it declares with `true` (`portMappings`, `bandwidth`, …): only these
    /// runtime settings are passed to it, as the CNI conventions require.
    pub capabilities: BTreeSet<String>,
    pub raw: Map<String, Value>,
}

/// A `major.minor.patch` version, compared numerically.
pub type Version = (u32, u32, u32);

/// Parses `0.4.0`-style versions; `None` if it is not one.
pub fn parse_version(text: &str) -> Option<Version> {
    let mut parts = text.split('.').map(|p| p.parse::<u32>().ok());
    let v = (
        parts.next()??,
        parts.next()??,
        parts.next().unwrap_or(Some(0))?,
    );
    parts.next().is_none().then_some(v)
}

impl NetworkList {
    /// Whether this list's version is at least `min` (CHECK and prevResult on DEL came in
    /// 0.4.0). Versions were validated at parse time; an unparsable one counts as oldest.
    pub fn version_at_least(&self, min: Version) -> bool {
        parse_version(&self.cni_version).is_some_and(|v| v >= min)
    }
}

/// Parses a config file's bytes. A JSON object with `plugins` is a list whatever its file
/// extension; anything else must be a single plugin config.
pub fn parse(bytes: &[u8]) -> Result<NetworkList, String> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| format!("not valid JSON: {e}"))?;
    let Value::Object(obj) = value else {
        return Err("not a JSON object".into());
    };
    if obj.contains_key("plugins") {
        from_list(Value::Object(obj))
    } else {
        from_single(obj)
    }
}

/// Wraps a single plugin config into a list named after it.
fn from_single(conf: Map<String, Value>) -> Result<NetworkList, String> {
    let mut list = Map::new();
    if let Some(v) = conf.get("cniVersion") {
        list.insert("cniVersion".into(), v.clone());
    }
    if let Some(v) = conf.get("name") {
        list.insert("name".into(), v.clone());
    }
    list.insert("plugins".into(), Value::Array(vec![Value::Object(conf)]));
    from_list(Value::Object(list))
}

/// Validates a list (from a file, or from the cache for DEL).
pub fn from_list(raw: Value) -> Result<NetworkList, String> {
    let obj = raw.as_object().ok_or("not a JSON object")?;
    let name = match obj.get("name") {
        Some(Value::String(n)) => n.clone(),
        Some(_) => return Err("\"name\" is not a string".into()),
        None => return Err("no \"name\"".into()),
    };
    check_name(&name)?;
    let cni_version = match obj.get("cniVersion") {
        Some(Value::String(v)) => v.clone(),
        Some(_) => return Err("\"cniVersion\" is not a string".into()),
        None => IMPLICIT_VERSION.to_owned(),
    };
    match parse_version(&cni_version) {
        Some((major, _, _)) if major <= 1 => {}
        _ => return Err(format!("unsupported cniVersion {cni_version:?}")),
    }
    let disable_check = match obj.get("disableCheck") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        // libcni accepts the string form too.
        Some(Value::String(s)) if s == "true" || s == "false" => s == "true",
        Some(other) => return Err(format!("\"disableCheck\" is not a boolean: {other}")),
    };
    let plugins = match obj.get("plugins") {
        Some(Value::Array(p)) if !p.is_empty() => p,
        Some(Value::Array(_)) => return Err("\"plugins\" is empty".into()),
        _ => return Err("\"plugins\" is not an array".into()),
    };
    let plugins = plugins
        .iter()
        .enumerate()
        .map(|(i, p)| plugin(p).map_err(|e| format!("plugin {i}: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(NetworkList {
        name,
        cni_version,
        disable_check,
        plugins,
        raw,
    })
}

fn plugin(value: &Value) -> Result<PluginConf, String> {
    let raw = value.as_object().ok_or("not a JSON object")?.clone();
    let kind = match raw.get("type") {
        Some(Value::String(t)) => t.clone(),
        _ => return Err("no string \"type\"".into()),
    };
    // The type is a file name looked up in the bin dirs; a path would escape them.
    if kind.is_empty() || kind == "." || kind == ".." || kind.contains(['/', '\0']) {
        return Err(format!("invalid plugin type {kind:?}"));
    }
    let capabilities = match raw.get("capabilities") {
        None | Some(Value::Null) => BTreeSet::new(),
        Some(Value::Object(caps)) => caps
            .iter()
            .filter(|(_, on)| on.as_bool() == Some(true))
            .map(|(k, _)| k.clone())
            .collect(),
        Some(_) => return Err("\"capabilities\" is not an object".into()),
    };
    Ok(PluginConf {
        kind,
        capabilities,
        raw,
    })
}

/// Network names end up in file names (host-local's data dir, our cache): refuse those
/// that would escape a directory. The 1.0 spec's stricter pattern is not enforced, so
/// older configs keep working.
fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty()
        || name == "."
        || name == ".."
        || name.chars().any(|c| c == '/' || c.is_control())
    {
        return Err(format!("invalid network name {name:?}"));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_conflist_keeps_its_plugins_and_capabilities() {
        let l = parse(
            br#"{"cniVersion":"1.0.0","name":"k8s","plugins":[
                {"type":"bridge","bridge":"cni0","ipam":{"type":"host-local"}},
                {"type":"portmap","capabilities":{"portMappings":true,"bandwidth":false}}]}"#,
        )
        .unwrap();
        assert_eq!(l.name, "k8s");
        assert_eq!(l.cni_version, "1.0.0");
        assert!(!l.disable_check);
        assert_eq!(l.plugins.len(), 2);
        assert_eq!(l.plugins[0].kind, "bridge");
        assert_eq!(l.plugins[0].raw["bridge"], "cni0");
        assert!(l.plugins[0].capabilities.is_empty());
        assert_eq!(
            l.plugins[1].capabilities.iter().collect::<Vec<_>>(),
            ["portMappings"]
        );
    }

    #[test]
    fn a_single_plugin_conf_is_wrapped_into_a_list() {
        let l = parse(br#"{"cniVersion":"0.3.1","name":"old","type":"bridge"}"#).unwrap();
        assert_eq!((l.name.as_str(), l.cni_version.as_str()), ("old", "0.3.1"));
        assert_eq!(l.plugins.len(), 1);
        assert_eq!(
            l.raw,
            json!({"cniVersion":"0.3.1","name":"old",
                   "plugins":[{"cniVersion":"0.3.1","name":"old","type":"bridge"}]})
        );
        let implicit = parse(br#"{"name":"v","type":"bridge"}"#).unwrap();
        assert_eq!(implicit.cni_version, "0.1.0");
    }

    #[test]
    fn invalid_configs_say_why() {
        for (text, want) in [
            (&b"{"[..], "not valid JSON"),
            (b"[]", "not a JSON object"),
            (br#"{"name":"n","plugins":[]}"#, "\"plugins\" is empty"),
            (br#"{"plugins":[{"type":"x"}]}"#, "no \"name\""),
            (
                br#"{"name":"n","plugins":[{"ipam":{}}]}"#,
                "plugin 0: no string \"type\"",
            ),
            (
                br#"{"name":"n","type":"../../bin/sh"}"#,
                "invalid plugin type",
            ),
            (br#"{"name":"a/b","type":"x"}"#, "invalid network name"),
            (
                br#"{"name":"n","cniVersion":"2.0.0","type":"x"}"#,
                "unsupported cniVersion",
            ),
            (
                br#"{"name":"n","cniVersion":"latest","type":"x"}"#,
                "unsupported cniVersion",
            ),
        ] {
            let err = parse(text).unwrap_err();
            assert!(
                err.contains(want),
                "{}: {err}",
                String::from_utf8_lossy(text)
            );
        }
    }

    #[test]
    fn disable_check_accepts_bool_and_string() {
        let l = parse(br#"{"name":"n","disableCheck":"true","plugins":[{"type":"x"}]}"#).unwrap();
        assert!(l.disable_check);
        let l = parse(br#"{"name":"n","disableCheck":true,"plugins":[{"type":"x"}]}"#).unwrap();
        assert!(l.disable_check);
    }

    #[test]
    fn versions_compare_numerically() {
        assert_eq!(parse_version("0.4.0"), Some((0, 4, 0)));
        assert_eq!(parse_version("1.1"), Some((1, 1, 0)));
        assert_eq!(parse_version("1.x.0"), None);
        assert!(parse_version("0.10.0") > parse_version("0.4.0"));
        let l = parse(br#"{"name":"n","cniVersion":"0.3.1","type":"x"}"#).unwrap();
        assert!(!l.version_at_least((0, 4, 0)));
        assert!(l.version_at_least((0, 3, 0)));
    }
}
