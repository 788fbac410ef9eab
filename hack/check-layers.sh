#!/usr/bin/env bash
# The layering rule of ARCHITECTURE.md, checked: the front doors (src/cri and
# src/mesos) sit on top of a transport-neutral core. No module below them may
# import a door, or a transport type (tonic, prost, the CRI protobufs, HTTP).
# Allowed above the line: the doors themselves, src/transport (code below the
# protocols), the daemon's wiring (src/daemon.rs), the clients of the doors (src/client,
# the node CLI), the metrics endpoint (a read-only door of its own,
# src/telemetry/http.rs) and the binaries (src/main.rs, src/bin/).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

above='^src/(cri|mesos|streaming|transport|client)/|^src/telemetry/http\.rs:|^src/daemon\.rs:|^src/main\.rs:|^src/bin/'
found=$(grep -rnE 'crate::(cri|mesos)\b|\b(tonic|prost|k8s_cri|hyper|http)::' src --include='*.rs' |
  grep -vE "$above" || true)
if [[ -n $found ]]; then
  echo "check-layers: a module below the front doors reaches up into a door or a transport:" >&2
  echo "$found" >&2
  exit 1
fi
echo "check-layers: ok (no door or transport type below src/cri)" >&2
