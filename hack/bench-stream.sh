#!/usr/bin/env bash
# Benchmark (not a test): the streaming server. A fresh `ucr serve` on a temporary root;
# `ucr-bench-stream` starts a pod serving a file over HTTP and times exec round trips
# (ExecSync and streaming Exec over WebSocket) and port-forward throughput (1 and 10
# connections), next to a direct download from the pod's IP for scale.
#
# usage: hack/bench-stream.sh [ROUNDS] [MIB]   (default 50 and 256; needs root; builds the
#                                               release binaries)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
rounds=${1:-50}
mib=${2:-256}
[ "$(id -u)" = 0 ] || { echo "bench-stream.sh: needs root (namespaces, mounts, cgroups)" >&2; exit 1; }

eval "$(hack/test-env.sh)"
cargo build --release --locked -q
ucr=$PWD/target/release/ucr
bench=$PWD/target/release/ucr-bench-stream
work=$(mktemp -d /var/tmp/ucr-bench-stream.XXXXXX)
root_name=ucr-bench-$(basename "$work")
daemon=''
cleanup() {
  [ -n "$daemon" ] && kill "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null || true
  "$ucr" serve --root "$work/root" --run-root "$work/run" --listen "$work/cleanup.sock" \
    --cgroups-root "$root_name" --recover cleanup >/dev/null 2>&1 || true
  for h in /sys/fs/cgroup/*/"$root_name"; do [ -d "$h" ] && find "$h" -depth -type d -exec rmdir {} + 2>/dev/null; done
  ip link del ucrbench1 2>/dev/null
  rm -rf "$work" /var/lib/cni/networks/ucr-bench-stream
}
trap cleanup EXIT
# A bridge network of the bench's own, so the pod has an IP to download from directly.
UCR_POD_SUBNET=10.218.0.0/16 UCR_POD_BRIDGE=ucrbench1 UCR_POD_NETWORK=ucr-bench-stream \
  hack/cni-default.sh "$work/net.d" >&2
"$ucr" serve --root "$work/root" --run-root "$work/run" --listen "$work/ucr.sock" \
  --cgroups-root "$root_name" --cni-conf-dir "$work/net.d" --cni-bin-dir /usr/lib/cni \
  >"$work/ucr.log" 2>&1 &
daemon=$!
for _ in $(seq 200); do [ -S "$work/ucr.sock" ] && break; sleep 0.05; done
"$bench" --listen "$work/ucr.sock" --image 127.0.0.1:5000/ucr-test/busybox:latest \
  --rounds "$rounds" --mib "$mib"
