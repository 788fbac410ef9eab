#!/usr/bin/env bash
# Gives a fresh node a pod network: when the CNI config directory holds no
# network config (*.conflist, *.conf, *.json), writes one. It is a bridge
# (ucr0) with host-local addresses from its own subnet, masquerading traffic
# that leaves the node, chained with portmap (hostPort) and bandwidth (the
# kubernetes.io/*-bandwidth annotations). An existing config is never touched:
# the first one in lexical order is the pods' network, as for kubelet.
#
# usage: hack/cni-default.sh [CONF_DIR]   (default /etc/cni/net.d; needs root)
# Environment: UCR_POD_SUBNET (default 10.88.0.0/16), UCR_POD_BRIDGE (ucr0),
# UCR_POD_NETWORK (the network's name, also host-local's store; ucr).
set -euo pipefail

dir=${1:-/etc/cni/net.d}
subnet=${UCR_POD_SUBNET:-10.88.0.0/16}
bridge=${UCR_POD_BRIDGE:-ucr0}
name=${UCR_POD_NETWORK:-ucr}
mkdir -p "$dir"
shopt -s nullglob
existing=("$dir"/*.conflist "$dir"/*.conf "$dir"/*.json)
if (( ${#existing[@]} )); then
  echo "cni-default: $dir already has ${existing[0]##*/}: left alone"
  exit 0
fi
conf="$dir/10-ucr-bridge.conflist"
tmp=$(mktemp "$dir/.ucr-bridge.XXXXXX")
cat >"$tmp" <<JSON
{
  "cniVersion": "1.0.0",
  "name": "$name",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$bridge",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{ "subnet": "$subnet" }]],
        "routes": [{ "dst": "0.0.0.0/0" }]
      }
    },
    { "type": "portmap", "capabilities": { "portMappings": true } },
    { "type": "bandwidth", "capabilities": { "bandwidth": true } }
  ]
}
JSON
chmod 0644 "$tmp"
mv "$tmp" "$conf"
echo "cni-default: wrote $conf (network $name, bridge $bridge, subnet $subnet)"
