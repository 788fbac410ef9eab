//! Reading a plugin's result into a [`PodNetwork`]. Two shapes exist: 0.3.0 and later
//! (`interfaces`, `ips[].address` with an `interface` index, `routes`, `dns`), and the
//! original 0.1/0.2 one (`ip4`/`ip6` objects, each with `ip` and `routes`), which is what
//! Mesos reads. The shape is told from the keys, not from `cniVersion`, since some
//! plugins print a version different from the one asked for.

use std::net::IpAddr;

use serde_json::Value;

use super::types::{Dns, Interface, IpConfig, PodNetwork, Route};

/// Parses `result` for the pod's interface `ifname`.
pub fn parse(result: &Value, ifname: &str) -> Result<PodNetwork, String> {
    let obj = result.as_object().ok_or("not a JSON object")?;
    let (interfaces, ips, routes) = if obj.contains_key("ip4") || obj.contains_key("ip6") {
        legacy(obj)?
    } else {
        current(obj, ifname)?
    };
    let mut ips = ips;
    // Stable: keeps the plugin's order within each family.
    ips.sort_by_key(|ip| ip.is_ipv6());
    Ok(PodNetwork {
        ips,
        interfaces,
        routes,
        dns: dns(obj.get("dns"))?,
        raw: result.clone(),
    })
}

type Parts = (Vec<Interface>, Vec<IpAddr>, Vec<Route>);

/// 0.3.0 and later.
fn current(obj: &serde_json::Map<String, Value>, ifname: &str) -> Result<Parts, String> {
    let mut interfaces = Vec::new();
    for (i, iface) in array(obj, "interfaces")?.iter().enumerate() {
        let name =
            string(iface, "name").ok_or_else(|| format!("interfaces[{i}] has no \"name\""))?;
        interfaces.push(Interface {
            name,
            mac: string(iface, "mac"),
            sandbox: string(iface, "sandbox").filter(|s| !s.is_empty()),
            ips: Vec::new(),
        });
    }
    // The pod's addresses: those on the sandbox interface we asked for. Plugins that do
    // not report interfaces (or indexes) get the benefit of the doubt: every address not
    // known to be on a host-side interface counts.
    let mut on_ifname = Vec::new();
    let mut unplaced = Vec::new();
    for (i, ip) in array(obj, "ips")?.iter().enumerate() {
        let address =
            string(ip, "address").ok_or_else(|| format!("ips[{i}] has no \"address\""))?;
        let (address, prefix_len) = cidr(&address).map_err(|e| format!("ips[{i}]: {e}"))?;
        let gateway = optional_ip(ip, "gateway").map_err(|e| format!("ips[{i}]: {e}"))?;
        let config = IpConfig {
            address,
            prefix_len,
            gateway,
        };
        let index = ip.get("interface").and_then(Value::as_u64);
        match index.and_then(|x| interfaces.get_mut(usize::try_from(x).ok()?)) {
            Some(iface) => {
                iface.ips.push(config);
                if iface.name == ifname && iface.sandbox.is_some() {
                    on_ifname.push(address);
                } else if iface.sandbox.is_some() {
                    unplaced.push(address);
                }
            }
            None => unplaced.push(address),
        }
    }
    let ips = if on_ifname.is_empty() {
        unplaced
    } else {
        on_ifname
    };
    let routes = array(obj, "routes")?
        .iter()
        .enumerate()
        .map(|(i, r)| route(r).map_err(|e| format!("routes[{i}]: {e}")))
        .collect::<Result<_, _>>()?;
    Ok((interfaces, ips, routes))
}

/// 0.1.0/0.2.0: `{"ip4": {"ip": "10.1.0.5/16", "gateway": .., "routes": [..]}, "ip6": ..}`.
fn legacy(obj: &serde_json::Map<String, Value>) -> Result<Parts, String> {
    let mut ips = Vec::new();
    let mut routes = Vec::new();
    for key in ["ip4", "ip6"] {
        let Some(family) = obj.get(key).filter(|v| !v.is_null()) else {
            continue;
        };
        let ip = string(family, "ip").ok_or_else(|| format!("{key} has no \"ip\""))?;
        ips.push(cidr(&ip).map_err(|e| format!("{key}: {e}"))?.0);
        for (i, r) in array_of(family, "routes")?.iter().enumerate() {
            routes.push(route(r).map_err(|e| format!("{key}.routes[{i}]: {e}"))?);
        }
    }
    Ok((Vec::new(), ips, routes))
}

fn dns(value: Option<&Value>) -> Result<Dns, String> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Ok(Dns::default());
    };
    let list = |key: &str| -> Result<Vec<String>, String> {
        match value.get(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_owned)
                        .ok_or(format!("dns.{key} holds a non-string"))
                })
                .collect(),
            Some(_) => Err(format!("dns.{key} is not an array")),
        }
    };
    let mut searches = list("search")?;
    if let Some(domain) = string(value, "domain").filter(|d| !d.is_empty()) {
        if !searches.contains(&domain) {
            searches.insert(0, domain);
        }
    }
    Ok(Dns {
        servers: list("nameservers")?,
        searches,
        options: list("options")?,
    })
}

fn route(r: &Value) -> Result<Route, String> {
    let dst = string(r, "dst").ok_or("no \"dst\"")?;
    cidr(&dst)?;
    Ok(Route {
        dst,
        gateway: optional_ip(r, "gw")?,
    })
}

/// `10.88.0.5/16` → (address, prefix length).
pub fn cidr(text: &str) -> Result<(IpAddr, u8), String> {
    let (addr, len) = text
        .split_once('/')
        .ok_or_else(|| format!("{text:?} is not in CIDR form"))?;
    let addr: IpAddr = addr.parse().map_err(|_| format!("{text:?}: bad address"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    match len.parse::<u8>() {
        Ok(len) if len <= max => Ok((addr, len)),
        _ => Err(format!("{text:?}: bad prefix length")),
    }
}

fn optional_ip(v: &Value, key: &str) -> Result<Option<IpAddr>, String> {
    match string(v, key).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => s
            .parse()
            .map(Some)
            .map_err(|_| format!("{key} {s:?} is not an IP")),
    }
}

fn string(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn array<'a>(obj: &'a serde_json::Map<String, Value>, key: &str) -> Result<&'a [Value], String> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(_) => Err(format!("\"{key}\" is not an array")),
    }
}

fn array_of<'a>(v: &'a Value, key: &str) -> Result<&'a [Value], String> {
    v.as_object().map_or(Ok(&[]), |o| array(o, key))
}

#[cfg(test)]
mod tests;
